import dgram from 'node:dgram'
import { isIP } from 'node:net'
import { resolveHost, type ResolvedAddress } from '../net/address.ts'
import type { SendDone, SendQueue, Target, TargetOptions } from './target.ts'

/**
 * A connected UDP socket: the kernel keeps the destination, so a send does no lookup and no address parsing.
 * A DNS name is resolved at start and re-resolved on a timer; when the address moves, a socket connected to
 * the new address replaces the old one once it is ready.
 */
export async function createUdpTarget(options: TargetOptions): Promise<Target> {
  const first = await (options.resolve ?? resolveHost)(options.host)
  const target = new ConnectedUdpTarget(options, first, await connect(first, options))
  if (isIP(options.host) === 0) target.watchDns()
  return target
}

class ConnectedUdpTarget implements Target {
  private resolved: ResolvedAddress
  private socket: dgram.Socket
  private readonly options: TargetOptions
  private timer: NodeJS.Timeout | null = null
  private closed = false

  constructor(options: TargetOptions, address: ResolvedAddress, socket: dgram.Socket) {
    this.options = options
    this.resolved = address
    this.socket = socket
  }

  get address(): string {
    return this.resolved.address
  }

  send(buf: Buffer, offset: number, length: number, done: SendDone): void {
    try {
      this.socket.send(buf, offset, length, done)
    } catch (err) {
      // Only if the socket is already closed (shutdown race): report it like any failed send.
      done(err as Error)
    }
  }

  queue(): SendQueue {
    // Closed, nothing is queued; and Node 24 throws for a closed socket's queue (Node 20 said 0).
    if (this.closed) return { count: 0, bytes: 0 }
    return { count: this.socket.getSendQueueCount(), bytes: this.socket.getSendQueueSize() }
  }

  watchDns(): void {
    this.timer = setInterval(() => void this.reresolve(), this.options.resolveIntervalMs)
    this.timer.unref()
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer !== null) clearInterval(this.timer)
    await closeSocket(this.socket)
  }

  private async reresolve(): Promise<void> {
    let next: ResolvedAddress
    try {
      next = await (this.options.resolve ?? resolveHost)(this.options.host)
    } catch (err) {
      // Keep sending to the last good address; the next tick tries again.
      this.options.onError(err as Error)
      return
    }
    if (this.closed || next.address === this.resolved.address) return
    let socket: dgram.Socket
    try {
      socket = await connect(next, this.options)
    } catch (err) {
      this.options.onError(err as Error)
      return
    }
    if (this.closed) {
      await closeSocket(socket)
      return
    }
    const previous = this.resolved
    const old = this.socket
    this.socket = socket
    this.resolved = next
    this.options.onAddressChange(previous, next)
    await closeSocket(old)
  }
}

function connect(to: ResolvedAddress, options: TargetOptions): Promise<dgram.Socket> {
  const { port, onError, sendBufferSize } = options
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type: to.family === 6 ? 'udp6' : 'udp4', sendBufferSize })
    const fail = (err: Error): void => {
      socket.close()
      reject(err)
    }
    socket.once('error', fail)
    socket.connect(port, to.address, () => {
      socket.off('error', fail)
      // Without a listener an ECONNREFUSED (nothing listening on the target yet) would crash the process.
      socket.on('error', onError)
      resolve(socket)
    })
  })
}

function closeSocket(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve())
    } catch {
      resolve() // already closed
    }
  })
}
