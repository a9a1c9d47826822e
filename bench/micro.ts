// In-process micro-benchmark of the per-line path (scan -> match -> batch), without sockets.
// Pushes 10 million prebuilt lines through LineFilter and counts garbage collections while it runs: the path
// must allocate nothing per line or per datagram, so the count must be 0 (an allocation of even a few bytes per
// line would fill the young generation every few hundred thousand lines and show up here as scavenges).
//
//   npm run build && node dist/bench/micro.js [lines=10000000] [rules=1000]
import type { LineFilter } from '../src/filter.ts'
import { RuleSet } from '../src/match/rule-set.ts'
import { createPipeline, type Pipeline } from '../src/pipeline.ts'
import type { SendDone, SendQueue, Target } from '../src/send/target.ts'
import type { Counters } from '../src/telemetry/counters.ts'
import { createLogger } from '../src/telemetry/logger.ts'
import { countGcs, type GcCounts } from './lib/gc.ts'
import { blockedPrefixes } from './workload.ts'

const totalLines = Number(process.argv[2] ?? 10_000_000)
const ruleCount = Number(process.argv[3] ?? 1_000)
const LINES_PER_DATAGRAM = 10

/** Completes every send at once, like a kernel that always has room: the pool never runs dry. */
class NullTarget implements Target {
  readonly address = 'null'
  datagrams = 0
  bytes = 0
  send(_buf: Buffer, _offset: number, length: number, done: SendDone): void {
    this.datagrams++
    this.bytes += length
    done(null)
  }
  queue(): SendQueue {
    return { count: 0, bytes: 0 }
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

/** The production path: per-rule hits and both top-talker sketches on, sending to a NullTarget. */
function buildFilter(): { path: Pipeline; target: NullTarget } {
  const rules = RuleSet.fromBlocklist({ prefixes: blockedPrefixes(ruleCount), names: [] }, 'enforce')
  const target = new NullTarget()
  const path = createPipeline({ rules, target, maxPacketSize: 8192, insights: true, log: createLogger('silent') })
  return { path, target }
}

/** Runs `rounds` datagrams through the filter, counting collections; warmed up first so it runs optimized code. */
async function measure(
  { filter, counters }: { filter: LineFilter; counters: Counters },
  datagrams: Buffer[],
  rounds: number,
): Promise<{ lines: number; ns: number; heapGrowthBytes: number; gcs: GcCounts }> {
  for (let i = 0; i < 200_000; i++) filter.handleDatagram(datagrams[i & 1023], 0, datagrams[i & 1023].length)
  await new Promise((resolve) => setImmediate(resolve)) // settle the heap
  const linesBefore = counters.linesIn
  const gc = countGcs()
  const heapBefore = process.memoryUsage().heapUsed
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < rounds; i++) filter.handleDatagram(datagrams[i & 1023], 0, datagrams[i & 1023].length)
  const ns = Number(process.hrtime.bigint() - t0)
  const heapGrowthBytes = process.memoryUsage().heapUsed - heapBefore
  await new Promise((resolve) => setTimeout(resolve, 50)) // let the gc entries arrive
  gc.stop()
  return { lines: counters.linesIn - linesBefore, ns, heapGrowthBytes, gcs: gc.counts }
}

async function main(): Promise<void> {
  const { path, target } = buildFilter()
  const { counters } = path
  const { lines, ns, heapGrowthBytes, gcs } = await measure(
    path,
    buildDatagrams(ruleCount),
    Math.ceil(totalLines / LINES_PER_DATAGRAM),
  )
  path.close()
  const result = {
    lines,
    rules: ruleCount,
    nsPerLine: +(ns / lines).toFixed(1),
    linesPerSecond: Math.round(lines / (ns / 1e9)),
    scavenges: gcs.minor,
    markSweeps: gcs.major,
    heapGrowthBytes,
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
