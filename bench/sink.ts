// Stands in for the DogStatsD agent: counts the lines the proxies forward, and the latency of the generator's
// probes. It shares the machine with the proxy under test, so it does as little as it can per datagram: no
// decoding, a plain byte loop (a buf.indexOf call per line costs far more than the few bytes between two
// newlines), and a look at the first byte of each line for a probe.
import dgram from 'node:dgram'
import { serve } from './lib/ipc.ts'
import { PROBE_PREFIX, PROBE_TIME_DIGITS, PROBE_TIME_OFFSET, probeTimeNs } from './workload.ts'

export interface SinkReady {
  port: number
}

export interface SinkSnapshot {
  datagrams: number
  lines: number
}

/** Generator send → sink receive, over the probes since the previous `latency` call; µs, NaN without probes. */
export interface SinkLatency {
  probes: number
  p50Us: number
  p99Us: number
  maxUs: number
}

/** Asked of the kernel; it grants at most net.core.rmem_max. Bursts of coalesced 8 KiB datagrams need room. */
const RECV_BUFFER = 8 * 1024 * 1024
const LF = 0x0a
const PROBE_FIRST_BYTE = PROBE_PREFIX.charCodeAt(0)
const PROBE_LENGTH = PROBE_TIME_OFFSET + PROBE_TIME_DIGITS
/** Latency samples kept between two reads: a 3 s window at 150,000 datagrams/s brings 4,500. */
const MAX_SAMPLES = 1 << 16

let datagrams = 0
let lines = 0
const samples = new Float64Array(MAX_SAMPLES)
let sampled = 0

function probe(buf: Buffer, start: number, nowNs: number): number {
  if (nowNs === 0) nowNs = Number(process.hrtime.bigint())
  if (start + PROBE_LENGTH <= buf.length && sampled < MAX_SAMPLES) samples[sampled++] = nowNs - probeTimeNs(buf, start)
  return nowNs
}

const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: RECV_BUFFER })
socket.on('message', (buf) => {
  datagrams++
  // One clock read per datagram that holds a probe, taken at the first.
  let nowNs = buf[0] === PROBE_FIRST_BYTE ? probe(buf, 0, 0) : 0
  // Forwarded datagrams never end in '\n': n newlines separate n + 1 lines.
  let n = 1
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === LF) {
      n++
      if (buf[i + 1] === PROBE_FIRST_BYTE) nowNs = probe(buf, i + 1, nowNs)
    }
  }
  lines += n
})
await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve))

function latency(): SinkLatency {
  const sorted = samples.slice(0, sampled).sort()
  sampled = 0
  const at = (q: number): number =>
    sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] / 1000
  return { probes: sorted.length, p50Us: at(0.5), p99Us: at(0.99), maxUs: at(1) }
}

serve({ port: socket.address().port } satisfies SinkReady, {
  snapshot: (): SinkSnapshot => ({ datagrams, lines }),
  latency,
})
