// In-process micro-benchmark of the per-line path (scan -> match -> batch), without sockets.
// Pushes 10 million prebuilt lines through LineFilter and counts garbage collections while it runs: the path
// must allocate nothing per line or per datagram, so the count must be 0 (an allocation of even a few bytes per
// line would fill the young generation every few hundred thousand lines and show up here as scavenges).
//
//   npm run build && node --expose-gc dist/bench/micro.js [lines=10000000] [rules=1000]
import type { LineFilter } from '../src/filter.ts'
import { DEFAULTS } from '../src/config/config.ts'
import { RuleSet } from '../src/match/rule-set.ts'
import { createPipeline, type Pipeline } from '../src/pipeline.ts'
import type { Counters } from '../src/telemetry/counters.ts'
import { createLogger } from '../src/telemetry/logger.ts'
import { NullTarget } from './lib/null-target.ts'
import { countGcs, type GcCounts } from './lib/gc.ts'
import { receiveArea, type ReceiveArea } from './lib/receive-area.ts'
import { median } from './lib/stats.ts'
import { blockedPrefixes } from './workload.ts'

const totalLines = Number(process.argv[2] ?? 10_000_000)
const ruleCount = Number(process.argv[3] ?? 1_000)
const LINES_PER_DATAGRAM = 10

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

/**
 * The production path: per-rule hits and both top-talker sketches on, sending to a NullTarget; with `view`, the
 * cardinality view too (its defaults, as the proxy runs it).
 */
function buildFilter(view: boolean): { path: Pipeline; target: NullTarget } {
  const rules = RuleSet.fromBlocklist({ prefixes: blockedPrefixes(ruleCount), names: [] }, 'enforce')
  const target = new NullTarget()
  const path = createPipeline({
    rules,
    target,
    maxPacketSize: 8192,
    insights: true,
    cardinality: view ? { ...DEFAULTS.cardinalityView } : null,
    log: createLogger('silent'),
  })
  return { path, target }
}

/** Runs `rounds` datagrams through the filter, counting collections; warmed up first so it runs optimized code. */
async function measure(
  { filter, counters }: { filter: LineFilter; counters: Counters },
  { area, starts, ends }: ReceiveArea,
  rounds: number,
): Promise<{ lines: number; ns: number; heapGrowthBytes: number; gcs: GcCounts }> {
  for (let i = 0; i < 200_000; i++) filter.handleDatagram(area, starts[i & 1023], ends[i & 1023])
  await new Promise((resolve) => setImmediate(resolve)) // settle the heap
  // Each timed loop starts on an empty young generation (with --expose-gc, as npm run bench runs it): a
  // scavenge the bench's own garbage (its rounds, timers, output) brings due must not land in a timed loop.
  ;(globalThis as { gc?: () => void }).gc?.()
  const linesBefore = counters.linesIn
  const gc = countGcs()
  const heapBefore = process.memoryUsage().heapUsed
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < rounds; i++) filter.handleDatagram(area, starts[i & 1023], ends[i & 1023])
  const ns = Number(process.hrtime.bigint() - t0)
  const heapGrowthBytes = process.memoryUsage().heapUsed - heapBefore
  await new Promise((resolve) => setTimeout(resolve, 50)) // let the gc entries arrive
  gc.stop()
  return { lines: counters.linesIn - linesBefore, ns, heapGrowthBytes, gcs: gc.counts }
}

/**
 * Rounds per variant, alternated (off, on, off, on, ...) so that the machine's drift hits both alike; the view's
 * cost is the median of each round's on/off ratio (a pair half a second apart). Within a run the rounds agree to
 * ±0.02; between runs the cost moves by up to 0.2 (1.07-1.28 over ten runs), with the code V8 generates for the
 * process: compare several runs.
 */
const ROUNDS = 7

async function main(): Promise<void> {
  const datagrams = receiveArea(buildDatagrams(ruleCount))
  const variants = [
    { name: 'cardinality view off', view: false },
    { name: 'cardinality view on', view: true },
  ].map((v) => ({ ...v, ...buildFilter(v.view), nsPerLine: [] as number[], gcs: 0, heapGrowthBytes: 0, lines: 0 }))
  for (let round = 0; round < ROUNDS; round++) {
    for (const v of variants) {
      const { lines, ns, heapGrowthBytes, gcs } = await measure(
        v.path,
        datagrams,
        Math.ceil(totalLines / LINES_PER_DATAGRAM),
      )
      v.nsPerLine.push(ns / lines)
      v.gcs += gcs.minor + gcs.major
      v.heapGrowthBytes = Math.max(v.heapGrowthBytes, heapGrowthBytes)
      v.lines = lines
    }
  }
  for (const v of variants) {
    v.path.close()
    const { counters } = v.path
    const ns = median(v.nsPerLine)
    console.log(
      JSON.stringify({
        variant: v.name,
        lines: v.lines,
        rules: ruleCount,
        nsPerLine: +ns.toFixed(1),
        rounds: v.nsPerLine.map((x) => +x.toFixed(1)),
        linesPerSecond: Math.round(1e9 / ns),
        gcs: v.gcs,
        heapGrowthBytes: v.heapGrowthBytes,
        forwarded: counters.linesForwarded,
        blocked: counters.linesBlocked,
        datagramsOut: v.target.datagrams,
      }),
    )
  }
  const [off, on] = variants.map((v) => v.nsPerLine)
  const perRound = on.map((ns, round) => ns / off[round])
  console.log(
    JSON.stringify({ cardinalityViewCost: +median(perRound).toFixed(2), perRound: perRound.map((x) => +x.toFixed(2)) }),
  )
  for (const v of variants)
    if (v.gcs > 0) {
      console.error(`FAIL: the scan+match+batch path allocated (${v.name}: ${v.gcs} collections)`)
      process.exitCode = 1
    }
}

await main()
