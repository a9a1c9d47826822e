import { listenUdp } from './udp-listener.ts'

/** `batch`: recvmmsg(2) on a self-pacing tick (Linux, native); `dgram`: Node's socket, one callback per datagram. */
export type ReceiveMode = 'batch' | 'dgram'

export interface ListenOptions {
  host: string
  port: number
  /** SO_RCVBUF to ask for: the kernel's queue is what absorbs bursts while the event loop is busy. */
  recvBufferSize: number
  onDatagram: (msg: Buffer) => void
  /** Errors on the bound socket (e.g. ENOBUFS); they are transient and the socket keeps receiving. */
  onError: (err: Error) => void
}

/** Where the listen socket is bound, and what the kernel granted it. */
export interface ListenInfo {
  readonly address: string
  readonly port: number
  /** What the kernel granted, in the unit asked for (Linux reports twice the usable size; halved here). */
  readonly recvBufferGranted: number
}

/** The receive side of a transport: every listener is a factory behind listen() returning this interface. */
export interface Listener extends ListenInfo {
  /** Stops receiving; datagrams still in the kernel queue are not read. */
  close(): Promise<void>
}

/** The listen socket: UDP, udp4 or udp6 by the host's address family (the one transport so far). */
export function listen(options: ListenOptions): Promise<Listener> {
  return listenUdp(options)
}
