/** Called once per send, with the error if the datagram could not be handed to the kernel. */
export type SendDone = (err: Error | null) => void

/**
 * Where forwarded datagrams go. Every transport (UDP today; UDS and mirroring later) is a factory returning
 * this same small interface, so the batching stage never knows which one it feeds.
 */
export interface Target {
  /** Sends `buf[offset, offset + length)` as one datagram; `buf` must not change until `done` is called. */
  send(buf: Buffer, offset: number, length: number, done: SendDone): void
  /** Stops sending; sends still queued are cancelled (their `done` gets an error). */
  close(): Promise<void>
}
