import { listenBatch } from './batch-listener.ts'
import { loadLibc } from './libc.ts'
import { listenUdp } from './udp-listener.ts'

/** `batch`: recvmmsg(2) on a self-pacing tick (Linux, native); `dgram`: Node's socket, one callback per datagram. */
export type ReceiveMode = 'batch' | 'dgram'

export interface ListenOptions {
  host: string
  port: number
  /** SO_RCVBUF to ask for: the kernel's queue is what absorbs bursts while the event loop is busy. */
  recvBufferSize: number
  /**
   * One datagram, `buf[start, end)`; `buf[end]` is `\n` or past the buffer's end, so a search for a line end
   * never runs into other bytes. In batch mode `buf` is the receive area, overwritten by the next read: whatever
   * must outlive the call is copied.
   */
  onDatagram: (buf: Buffer, start: number, end: number) => void
  /** Errors on the bound socket (e.g. ENOBUFS); they are transient and the socket keeps receiving. */
  onError: (err: Error) => void
}

export interface ReceiveOptions {
  mode: ReceiveMode
  /** Batch mode: the longest a datagram waits in the kernel's queue before a read. */
  maxDelayMs: number
}

/** Where the listen socket is bound, and what the kernel granted it. */
export interface ListenInfo {
  readonly address: string
  readonly port: number
  /** What the kernel granted, in the unit asked for (Linux reports twice the usable size; halved here). */
  readonly recvBufferGranted: number
  /** How the socket is read: batch unless dgram was asked for or batch cannot work here. */
  readonly mode: ReceiveMode
  /** Why batch was asked for and dgram is used; null otherwise. */
  readonly fallback: string | null
}

/** A bound socket that other readers in this process (worker threads) can read too: its descriptor. */
export interface SharedSocket {
  readonly fd: number
  readonly address: string
  readonly port: number
  readonly recvBufferGranted: number
}

/** The receive side of a transport: every listener is a factory behind listen() returning this interface. */
export interface Listener extends ListenInfo {
  /** The socket for other readers; null in dgram mode (Node's socket cannot be shared between threads). */
  shared(): SharedSocket | null
  /** Stops receiving; datagrams still in the kernel queue are not read. The socket's owner closes it. */
  close(): Promise<void>
}

/**
 * The listen socket: UDP, udp4 or udp6 by the host's address family, read in batches where the platform can.
 * With `shared`, another reader of a socket a listener of this process opened (batch mode only).
 */
export async function listen(options: ListenOptions & ReceiveOptions & { shared?: SharedSocket }): Promise<Listener> {
  if (options.mode === 'dgram') return listenUdp(options, null)
  const libc = await loadLibc()
  if (typeof libc !== 'string') return listenBatch(libc, options, options.shared ?? null)
  if (options.shared !== undefined) throw new Error(`a shared socket needs batch mode: ${libc}`)
  return listenUdp(options, libc)
}
