// End-to-end bench: our proxy (receive.mode batch, the default, and dgram) against a naive Node proxy, each in
// its own process, fed by a load generator process and forwarding to a sink process, all over loopback UDP; and
// our proxy with `workers: 1` against `workers: 2` (ours-w2, two readers of the listen socket, not pinned) at
// saturation; and ours against ours-tags (ours plus 100 stripTags rules, issue 10) at every fixed rate and at
// saturation, the pair always one right after the other. Fixed rates are offered evenly paced (each datagram on its own, as independent application threads
// send) and, at one rate, bursty (what is due every 1 ms tick). Prints a markdown report on stdout (progress goes
// to stderr) and writes it to bench/results/.
//
//   npm run bench                      full run, about 10 minutes
//   node dist/bench/run.js --quick     every scenario once, short windows (about 2 minutes)
//   node dist/bench/run.js --only tags only ours and ours-tags: at saturation (1,000 rules) and the fixed rates
//   options: --warmup <s> --seconds <s> --reps <n> --node <path to another node binary> --no-pin --only tags
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { numberArg } from './lib/args.ts'
import { runEntryPoint } from './lib/entry-point.ts'
import { bareNodeRss, canPin, cpuDescription } from './lib/machine.ts'
import { readRmemMax } from './lib/proc.ts'
import { saveReport } from './lib/results.ts'
import { int, loadText, mb, pct } from './lib/table.ts'
import type { Pacing } from './load-generator.ts'
import {
  checkTagStripping,
  startSession,
  type Bench,
  type BaselineLatency,
  type RunResult,
  type RunSpec,
  type TagCheck,
  type Timing,
} from './measure.ts'
import type { ProxyKind } from './proxy-child.ts'
import { render, summarize, type BenchReport } from './report.ts'
import { searchSustainedRate, type SearchResult } from './search.ts'

/**
 * Saturation scenarios, in the order each repetition runs them (the kinds interleaved). Lean (ours with
 * `insights: false`) and ours-dgram sit next to ours at 1,000 rules, before it in one repetition and after it in
 * the next, so the pairs whose ratios are the insights' cost and batch vs dgram see the same machine. ours-w2
 * (ours with `workers: 2`) sits on ours's other side for the same reason: the 1-vs-2-workers comparison, and
 * ours-tags right after ours (right before it in the reversed order): tag rules vs name rules alone.
 */
const ALL_SATURATION: readonly { kind: ProxyKind; rules: number }[] = [
  { kind: 'ours-w2', rules: 1000 },
  { kind: 'ours', rules: 1000 },
  { kind: 'ours-tags', rules: 1000 },
  { kind: 'ours-dgram', rules: 1000 },
  { kind: 'lean', rules: 1000 },
  { kind: 'naive', rules: 1000 },
  { kind: 'ours', rules: 10 },
  { kind: 'ours', rules: 100_000 },
  { kind: 'naive', rules: 10 },
]
const LINES_PER_DATAGRAM = [1, 10] as const
/** The kinds every fixed-rate scenario and the search run, side by side. */
const COMPARED: readonly ProxyKind[] = ['ours', 'ours-dgram', 'naive']
/** Runs at every fixed rate right next to ours (after it, or before it every other repetition); not searched. */
const TAGS_KIND: ProxyKind = 'ours-tags'
const FIXED_RULES = 1000
/** Fixed offered rates, 1 line per datagram: evenly paced at each, bursty (per 1 ms tick) at 50,000 as well. */
const FIXED: readonly { rate: number; pacing: Pacing }[] = [
  { rate: 5_000, pacing: 'even' },
  { rate: 50_000, pacing: 'even' },
  { rate: 150_000, pacing: 'even' },
  { rate: 50_000, pacing: 'bursty' },
]
/**
 * The latency baseline (the generator straight to the sink) at a rate near what the proxies send the sink (ours
 * coalesces 50,000 datagrams/s into about 1,000, naive forwards at most about 20,000): at 50,000 the sink itself
 * would be the busiest process on CPU 0 and its own queue the figure.
 */
const BASELINE_RATE = 5_000
/** Whatever happens (a wedged child, a proxy that never drains), the bench ends by itself. */
const HARD_LIMIT_MS = 30 * 60_000

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    warmup: { type: 'string' },
    seconds: { type: 'string' },
    reps: { type: 'string' },
    node: { type: 'string', default: process.execPath },
    'no-pin': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
})
if (flags.only !== undefined && flags.only !== 'tags') throw new Error(`--only: expected tags, got ${flags.only}`)
/** `--only tags`: ours and ours-tags alone (saturation at 1,000 rules and the fixed rates; no search). */
const onlyTags = flags.only === 'tags'
const SATURATION = onlyTags
  ? ALL_SATURATION.filter((s) => (s.kind === 'ours' || s.kind === TAGS_KIND) && s.rules === FIXED_RULES)
  : ALL_SATURATION
const FIXED_COMPARED: readonly ProxyKind[] = onlyTags ? ['ours'] : COMPARED
const quick = flags.quick === true
const nodeBinary = flags.node ?? process.execPath
const timing: Timing = {
  warmupMs: seconds(flags.warmup, '--warmup', quick ? 0.3 : 0.5),
  measureMs: seconds(flags.seconds, '--seconds', quick ? 1 : 3),
}
const reps = flags.reps === undefined ? (quick ? 1 : 3) : numberArg(flags.reps, '--reps', 1, 20, true)
/**
 * Re-runs of a fixed-rate run the generator fell short in; none in quick mode, which a busy machine would
 * otherwise stretch past 2 minutes (28 fixed runs instead of 12 at a load average of 6).
 */
const fixedRetries = quick ? 0 : 1
/** Of the proxy's capacity on a full core; see searchSustainedRate. */
const searchFractions = quick ? [0.4, 0.6, 0.8, 1] : [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1]
const pin = canPin(flags['no-pin'])

/** Seconds in (0, 60] as ms; `fallback` (seconds) when not given. */
function seconds(arg: string | undefined, name: string, fallback: number): number {
  if (arg === undefined) return fallback * 1000
  const s = numberArg(arg, name, 0, 60)
  if (s === 0) throw new Error(`${name}: expected seconds in (0, 60], got ${arg}`)
  return s * 1000
}

function progress(phase: string, r: RunResult): void {
  const s = r.spec
  console.error(
    `${phase.padEnd(10)} ${s.kind.padEnd(10)} ${String(s.rules).padStart(6)} rules ${String(s.linesPerDatagram).padStart(2)} l/d ` +
      `${(s.rate === null ? 'max' : `${int(s.rate)} ${s.pacing ?? 'even'}`).padStart(14)} dgram/s: ${int(r.linesPerSecond).padStart(10)} lines/s, ` +
      `${r.cpuUsPerLine.toFixed(2)} µs/line, cpu ${pct(r.cpuShare, 0)} (waited ${pct(r.cpuWaitShare, 0)}), gen ${int(r.generatorDatagramsPerSecond)} dgram/s, ` +
      `gen CPU ${pct(r.generatorCpuShare, 0)} (${r.generatorSendUs.toFixed(2)} µs/send), ` +
      `read ${pct(r.proxyReadShare, 1)}, delivered ${pct(r.deliveredRatio, 2)}, sink ${r.sinkLinesPerDatagram.toFixed(1)} lines/dgram, ` +
      (r.latency === null ? '' : `latency p50/p99 ${r.latency.p50Us.toFixed(0)}/${r.latency.p99Us.toFixed(0)} µs, `) +
      `RSS ${mb(r.rssMaxBytes)} MB` +
      (r.workerLineShares === null ? '' : `, worker shares ${r.workerLineShares.map((x) => pct(x, 0)).join(' / ')}`) +
      (r.generatorShort ? ' GENERATOR SHORT' : ''),
  )
}

/** Every run of a bench, in the order they ran, each reported as it ends. */
type Measure = (phase: string, spec: RunSpec) => Promise<RunResult>

async function runSaturation(measure: Measure): Promise<RunResult[]> {
  const saturation: RunResult[] = []
  for (let rep = 0; rep < reps; rep++) {
    // Reverse the order every other repetition, so no scenario always runs right after the same one.
    const order = rep % 2 === 0 ? SATURATION : [...SATURATION].reverse()
    for (const linesPerDatagram of LINES_PER_DATAGRAM) {
      for (const { kind, rules } of order)
        saturation.push(await measure('saturation', { kind, rules, linesPerDatagram, rate: null }))
    }
  }
  return saturation
}

/**
 * Every fixed-rate scenario for the compared kinds, one right after the other (their order rotated each
 * repetition, the scenarios' reversed every other), and the latency baseline at BASELINE_RATE once per repetition.
 */
async function runFixed(bench: Bench, measure: Measure): Promise<{ fixed: RunResult[]; baselines: BaselineLatency[] }> {
  const fixed: RunResult[] = []
  const baselines: BaselineLatency[] = []
  for (let rep = 0; rep < reps; rep++) {
    const rotated = FIXED_COMPARED.map((_, i) => FIXED_COMPARED[(i + rep) % FIXED_COMPARED.length])
    // ours-tags right after ours, or right before it every other repetition.
    const kinds = rotated.flatMap((k) => (k !== 'ours' ? [k] : rep % 2 === 0 ? [k, TAGS_KIND] : [TAGS_KIND, k]))
    baselines.push(await bench.baselineLatency(BASELINE_RATE, timing))
    for (const { rate, pacing } of rep % 2 === 0 ? FIXED : [...FIXED].reverse()) {
      for (const kind of kinds) {
        const spec: RunSpec = { kind, rules: FIXED_RULES, linesPerDatagram: 1, rate, pacing }
        // A run in which the generator could not keep the rate (it was short of CPU) did not test that rate.
        let r = await measure('fixed', spec)
        for (let retry = 0; retry < fixedRetries && r.generatorShort; retry++) r = await measure('fixed', spec)
        fixed.push(r)
      }
    }
  }
  return { fixed, baselines }
}

/** The highest sustained rate of the compared kinds, stepped in fractions of their capacity at saturation. */
async function runSearches(
  bench: Bench,
  saturation: RunResult[],
  onRun: (r: RunResult) => void,
): Promise<SearchResult[]> {
  const searches: SearchResult[] = []
  if (onlyTags) return searches
  const capacities = summarize(saturation)
  for (const linesPerDatagram of LINES_PER_DATAGRAM) {
    for (const kind of COMPARED) {
      const seed = capacities.find(
        (s) => s.spec.kind === kind && s.spec.rules === FIXED_RULES && s.spec.linesPerDatagram === linesPerDatagram,
      )
      if (seed === undefined) continue
      const base = { kind, rules: FIXED_RULES, linesPerDatagram }
      const capacity = 1e6 / (seed.cpuUsPerLine * linesPerDatagram)
      searches.push(await searchSustainedRate(bench, base, capacity, searchFractions, timing, onRun))
    }
  }
  return searches
}

async function main(): Promise<void> {
  const { startedAt, loadAtStart, bench, node } = await startSession(nodeBinary, pin)
  console.error(
    `bench: node ${node}, ${reps} rep(s), ${timing.warmupMs} ms warm-up + ${timing.measureMs} ms per run, pinned: ${pin}, load average ${loadText(loadAtStart, ' ')}`,
  )
  // What Node itself takes, before any proxy starts (the proxies' idle RSS is measured against it).
  const bareRss = await bareNodeRss(nodeBinary)
  // What the strip rules do to the bytes, checked on the generator's workloads before any run (the sink counts
  // lines only): ours-tags, and ours (which must leave every surviving line byte-identical).
  const tagChecks: TagCheck[] = []
  for (const kind of ['ours', TAGS_KIND] as const) {
    for (const linesPerDatagram of LINES_PER_DATAGRAM) {
      const check = await checkTagStripping(kind, FIXED_RULES, linesPerDatagram)
      console.error(
        `check      ${kind.padEnd(10)} ${linesPerDatagram} l/d: ${int(check.lines)} lines, ${int(check.forwarded)} forwarded ` +
          `(${pct(check.forwardedTagged / check.forwarded, 1)} tagged), ${pct(check.stripped / check.forwarded, 1)} of them stripped, ` +
          `${int(check.tagsStripped)} tags: every line as expected`,
      )
      tagChecks.push(check)
    }
  }
  // Start every proxy before any load: loading the 100,000-rule config takes seconds of CPU.
  for (const { kind, rules } of SATURATION) await bench.proxy(kind, rules)

  const all: RunResult[] = []
  const record =
    (phase: string) =>
    (r: RunResult): RunResult => {
      progress(phase, r)
      all.push(r)
      return r
    }
  const measure: Measure = async (phase, spec) => record(phase)(await bench.run(spec, timing))
  const saturation = await runSaturation(measure)
  const { fixed, baselines } = await runFixed(bench, measure)
  const searches = await runSearches(bench, saturation, record('search'))

  const report: BenchReport = {
    startedAt,
    elapsedMs: Date.now() - startedAt.getTime(),
    node,
    cpu: cpuDescription(),
    timing,
    reps,
    pinned: pin,
    sinkNiced: bench.sinkNiced,
    rmemMax: readRmemMax(),
    saturation,
    fixed,
    baselines,
    bareNodeRss: bareRss,
    searches,
    tagChecks,
    all,
    proxies: (await bench.startedProxies()).map(({ kind, rules, ready, cpus }) => ({ kind, rules, ready, cpus })),
    loadAverage: { start: loadAtStart, end: loadavg() },
  }
  const markdown = render(report)
  process.stdout.write(markdown + '\n')
  // A partial run (--only) is saved under a prefix of its own and leaves latest.md, the last full report, alone.
  const name = onlyTags ? saveReport('tags-', markdown, startedAt) : saveReport('', markdown, startedAt, 'latest.md')
  console.error(`bench: report written to bench/results/${name}${onlyTags ? '' : ' and bench/results/latest.md'}`)
}

await runEntryPoint('bench', HARD_LIMIT_MS, main)
