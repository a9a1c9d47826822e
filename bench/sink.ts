// Stands in for the DogStatsD agent: counts the lines the proxies forward. It shares the machine with the proxy
// under test, so it does as little as it can per datagram (no decoding, one native scan for '\n').
import dgram from 'node:dgram'
import { serve } from './ipc.ts'

export interface SinkReady {
  port: number
  recvBufferSize: number
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
  for (let i = buf.indexOf(LF); i !== -1; i = buf.indexOf(LF, i + 1)) n++
  lines += n
})
await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))

serve({ port: socket.address().port, recvBufferSize: socket.getRecvBufferSize() } satisfies SinkReady, {
  snapshot: (): SinkSnapshot => ({ datagrams, lines }),
})
