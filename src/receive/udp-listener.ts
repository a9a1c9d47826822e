import dgram from 'node:dgram'
import { resolveHost } from '../net/address.ts'
import type { ListenOptions, Listener } from './listener.ts'

/** One socket, udp4 or udp6 by the listen host's address family; `fallback` says why batch mode is not used. */
export async function listenUdp(options: ListenOptions, fallback: string | null): Promise<Listener> {
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
  const { onDatagram } = options
  socket.on('message', (msg) => onDatagram(msg, 0, msg.length))
  const kernel = socket.getRecvBufferSize()
  const bound = socket.address()
  let closed: Promise<void> | null = null
  return {
    mode: 'dgram',
    fallback,
    shared: () => null,
    address: bound.address,
    port: bound.port,
    recvBufferGranted: process.platform === 'linux' ? Math.floor(kernel / 2) : kernel,
    close() {
      closed ??= new Promise((resolve) => socket.close(() => resolve()))
      return closed
    },
  }
}
