import { createUdpTarget } from './udp-target.ts'
import type { ResolvedAddress } from '../net/address.ts'

/** Called once per send, with the error if the datagram could not be handed to the kernel. */
export type SendDone = (err: Error | null) => void

/** Sends a target holds in user space because the kernel's send buffer was full: bounded by the sender's pool. */
export interface SendQueue {
  count: number
  bytes: number
}

/**
 * Where forwarded datagrams go. Every transport (UDP today; UDS and mirroring later) is a factory behind
 * createTarget returning this same small interface, so nothing above send/ knows which one it holds.
 */
export interface Target {
  /** Where datagrams go now (an address follows its DNS name), as text for logs. */
  readonly address: string
  /** Sends `buf[offset, offset + length)` as one datagram; `buf` must not change until `done` is called. */
  send(buf: Buffer, offset: number, length: number, done: SendDone): void
  queue(): SendQueue
  /** Stops sending; sends still queued are cancelled (their `done` gets an error). */
  close(): Promise<void>
}

export interface TargetOptions {
  host: string
  port: number
  /** How often a DNS name is resolved again; an IP literal never is. */
  resolveIntervalMs: number
  /** Asynchronous socket errors, e.g. ECONNREFUSED reported by the kernel after an ICMP port unreachable. */
  onError: (err: Error) => void
  /** The name now resolves elsewhere and later datagrams go there. */
  onAddressChange: (from: ResolvedAddress, to: ResolvedAddress) => void
  /** SO_SNDBUF; the kernel's default when absent. */
  sendBufferSize?: number
  /** The system resolver unless given (tests move a name between addresses with it). */
  resolve?: (host: string) => Promise<ResolvedAddress>
}

/** The forward target: a connected UDP socket (the one transport so far). */
export function createTarget(options: TargetOptions): Promise<Target> {
  return createUdpTarget(options)
}
