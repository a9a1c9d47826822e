// In-process micro-benchmark of the per-line path (scan -> match -> batch), without sockets.
// Pushes 10 million prebuilt lines through LineFilter and counts garbage collections while it runs: the path
// must allocate nothing per line or per datagram, so the count must be 0 (an allocation of even a few bytes per
// line would fill the young generation every few hundred thousand lines and show up here as scavenges).
//
//   npm run build && node dist/bench/micro.js [lines=10000000] [rules=1000]
import { PerformanceObserver } from 'node:perf_hooks'
import { Assembler } from '../src/batch/assembler.ts'
import { BufferPool } from '../src/batch/pool.ts'
import { LineFilter } from '../src/filter.ts'
import { RuleSet } from '../src/match/rule-set.ts'
import { TOP_TALKERS } from '../src/data-path.ts'
import { TopTalkers } from '../src/telemetry/top-talkers.ts'
import type { SendDone, Target } from '../src/send/target.ts'
import { Counters } from '../src/telemetry/counters.ts'
import { WarningGate } from '../src/telemetry/rate-limit.ts'

const totalLines = Number(process.argv[2] ?? 10_000_000)
const ruleCount = Number(process.argv[3] ?? 1_000)
const LINES_PER_DATAGRAM = 10

/** Completes every send at once, like a kernel that always has room: the pool never runs dry. */
class NullTarget implements Target {
  datagrams = 0
  bytes = 0
  send(_buf: Buffer, _offset: number, length: number, done: SendDone): void {
    this.datagrams++
    this.bytes += length
    done(null)
  }
  close(): Promise<void> {
    return Promise.resolve()
  }
}

function buildDatagrams(rules: number): Buffer[] {
  const datagrams: Buffer[] = []
  for (let d = 0; d < 1024; d++) {
    const lines: string[] = []
    for (let l = 0; l < LINES_PER_DATAGRAM; l++) {
      const n = d * LINES_PER_DATAGRAM + l
      // Every third line hits a rule somewhere in the list; the rest share the rules' first bytes but miss.
      const name = n % 3 === 0 ? `legacy.team${(n * 7919) % rules}.requests` : `app.svc${n % 50}.requests.latency`
      lines.push(`${name}:${n % 1000}|ms|#env:prod,service:svc${n % 50},region:us-east-1`)
    }
    datagrams.push(Buffer.from(lines.join('\n')))
  }
  return datagrams
}

async function main(): Promise<void> {
  const prefixes = Array.from({ length: ruleCount }, (_, i) => `legacy.team${i}.`)
  const ruleSet = RuleSet.fromBlocklist({ prefixes, names: [] }, 'enforce')
  // The production path: per-rule hits and both top-talker sketches on.
  const insights = {
    forwarded: new TopTalkers(TOP_TALKERS.capacity, TOP_TALKERS.maxNameBytes, TOP_TALKERS.sampleEvery),
    blocked: new TopTalkers(TOP_TALKERS.capacity, TOP_TALKERS.maxNameBytes, TOP_TALKERS.sampleEvery),
  }
  const counters = new Counters()
  const target = new NullTarget()
  const assembler = new Assembler(new BufferPool(128, 8192), target, counters, () => {})
  const gate = new WarningGate(60_000)
  const filter = new LineFilter(ruleSet, assembler, counters, gate, () => {}, insights)
  const datagrams = buildDatagrams(ruleCount)
  const rounds = Math.ceil(totalLines / LINES_PER_DATAGRAM)

  // Warm up so the measured loop runs optimized code, then settle the heap.
  for (let i = 0; i < 200_000; i++) filter.handleDatagram(datagrams[i & 1023])
  const gcs = { minor: 0, major: 0, other: 0 }
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind
      if (kind === 1) gcs.minor++
      else if (kind === 2 || kind === 4) gcs.major++
      else gcs.other++
    }
  })
  await new Promise((resolve) => setImmediate(resolve))
  const linesBefore = counters.linesIn
  observer.observe({ entryTypes: ['gc'] })
  const heapBefore = process.memoryUsage().heapUsed
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < rounds; i++) filter.handleDatagram(datagrams[i & 1023])
  const ns = Number(process.hrtime.bigint() - t0)
  const heapAfter = process.memoryUsage().heapUsed
  await new Promise((resolve) => setTimeout(resolve, 50)) // let the gc entries arrive
  observer.disconnect()
  gate.close()

  const lines = counters.linesIn - linesBefore
  const result = {
    lines,
    rules: ruleCount,
    nsPerLine: +(ns / lines).toFixed(1),
    linesPerSecond: Math.round(lines / (ns / 1e9)),
    scavenges: gcs.minor,
    markSweeps: gcs.major,
    heapGrowthBytes: heapAfter - heapBefore,
    forwarded: counters.linesForwarded,
    blocked: counters.linesBlocked,
    datagramsOut: target.datagrams,
  }
  console.log(JSON.stringify(result))
  if (gcs.minor + gcs.major > 0) {
    console.error(`FAIL: the scan+match+batch path allocated (${gcs.minor} scavenges, ${gcs.major} mark-sweeps)`)
    process.exitCode = 1
  }
}

await main()
