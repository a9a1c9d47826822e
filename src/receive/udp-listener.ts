import dgram from 'node:dgram'
import { resolveHost } from '../net/address.ts'
import type { ListenOptions, Listener } from './listener.ts'

/** One socket, udp4 or udp6 by the listen host's address family. */
export async function listenUdp(options: ListenOptions): Promise<Listener> {
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
