// The baseline: the filtering proxy most people would write first in Node. It is deliberately plain (decode,
// split, loop over the prefixes, join, one send per datagram to host+port), so the bench measures what the
// real proxy's design buys, not a strawman: no logging, no validation, nothing it does not need.
import dgram from 'node:dgram'
import type { SharedLineCounters } from './proxy-kinds.ts'

export interface NaiveProxyOptions {
  listen: { host: string; port: number }
  forward: { host: string; port: number }
  prefixes: readonly string[]
  recvBufferSize: number
}

/** Same meaning as the real proxy's counters of the same names. */
export type NaiveCounters = SharedLineCounters & { sendErrors: number }

export interface NaiveProxy {
  readonly port: number
  readonly counters: NaiveCounters
  close(): Promise<void>
}

export async function startNaiveProxy(options: NaiveProxyOptions): Promise<NaiveProxy> {
  const { prefixes, forward } = options
  const counters: NaiveCounters = {
    datagramsIn: 0,
    linesIn: 0,
    linesForwarded: 0,
    linesBlocked: 0,
    datagramsOut: 0,
    sendErrors: 0,
  }
  const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: options.recvBufferSize })
  socket.on('message', (msg) => {
    counters.datagramsIn++
    const lines = msg.toString().split('\n')
    counters.linesIn += lines.length
    const kept: string[] = []
    for (const line of lines) {
      const colon = line.indexOf(':')
      const name = colon === -1 ? line : line.slice(0, colon)
      let blocked = false
      for (const prefix of prefixes) {
        if (name.startsWith(prefix)) {
          blocked = true
          break
        }
      }
      if (blocked) counters.linesBlocked++
      else kept.push(line)
    }
    if (kept.length === 0) return
    counters.linesForwarded += kept.length
    counters.datagramsOut++
    socket.send(kept.join('\n'), forward.port, forward.host)
  })
  // Without a listener a failed send (e.g. ECONNREFUSED) would crash the process.
  socket.on('error', () => counters.sendErrors++)
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(options.listen.port, options.listen.host, () => {
      socket.off('error', reject)
      resolve()
    })
  })
  return {
    port: socket.address().port,
    counters,
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  }
}
