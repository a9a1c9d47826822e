import dgram from 'node:dgram'
import { resolveHost } from '../send/address.ts'

export interface UdpListenerOptions {
  host: string
  port: number
  /** SO_RCVBUF to ask for: the kernel's queue is what absorbs bursts while the event loop is busy. */
  recvBufferSize: number
  onDatagram: (msg: Buffer) => void
  /** Errors on the bound socket (e.g. ENOBUFS); they are transient and the socket keeps receiving. */
  onError: (err: Error) => void
}

export interface UdpListener {
  readonly address: string
  readonly port: number
  /** What the kernel granted, in the unit asked for (Linux reports twice the usable size; halved here). */
  readonly recvBufferGranted: number
  /** Stops receiving; datagrams still in the kernel queue are not read. */
  close(): Promise<void>
}

/** One socket, udp4 or udp6 by the listen host's address family. */
export async function listenUdp(options: UdpListenerOptions): Promise<UdpListener> {
  const { address, family } = await resolveHost(options.host)
  const socket = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', recvBufferSize: options.recvBufferSize })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(options.port, address, () => {
      socket.off('error', reject)
      resolve()
    })
  })
  socket.on('error', options.onError)
  socket.on('message', options.onDatagram)
  const kernel = socket.getRecvBufferSize()
  const bound = socket.address()
  let closed: Promise<void> | null = null
  return {
    address: bound.address,
    port: bound.port,
    recvBufferGranted: process.platform === 'linux' ? Math.floor(kernel / 2) : kernel,
    close() {
      closed ??= new Promise((resolve) => socket.close(() => resolve()))
      return closed
    },
  }
}
