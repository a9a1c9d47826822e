// Stands in for the DogStatsD agent: counts the lines the proxies forward. It shares the machine with the proxy
// under test, so it does as little as it can per datagram: no decoding, a plain byte loop (a buf.indexOf call per
// line costs far more than the few bytes between two newlines).
import dgram from 'node:dgram'
import { serve } from './lib/ipc.ts'

export interface SinkReady {
  port: number
}

export interface SinkSnapshot {
  datagrams: number
  lines: number
}

/** Asked of the kernel; it grants at most net.core.rmem_max. Bursts of coalesced 8 KiB datagrams need room. */
const RECV_BUFFER = 8 * 1024 * 1024
const LF = 0x0a

let datagrams = 0
let lines = 0
const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: RECV_BUFFER })
socket.on('message', (buf) => {
  datagrams++
  // Forwarded datagrams never end in '\n': n newlines separate n + 1 lines.
  let n = 1
  for (let i = 0; i < buf.length; i++) if (buf[i] === LF) n++
  lines += n
})
await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))

serve({ port: socket.address().port } satisfies SinkReady, {
  snapshot: (): SinkSnapshot => ({ datagrams, lines }),
})
