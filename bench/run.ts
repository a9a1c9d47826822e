// End-to-end bench: our proxy against a naive Node proxy, each in its own process, fed by a load generator
// process and forwarding to a sink process, all over loopback UDP; and our proxy with `workers: 1` against
// `workers: 2` (ours-w2, a cluster of three processes, not pinned) at saturation. Prints a markdown report on
// stdout (progress goes to stderr) and writes it to bench/results/.
//
//   npm run bench                      full run, about 5 minutes
//   node dist/bench/run.js --quick     every scenario once, short windows (about 1 minute)
//   options: --warmup <s> --seconds <s> --reps <n> --node <path to another node binary> --no-pin
import { execFileSync } from 'node:child_process'
import { copyFileSync, readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { runEntryPoint, saveReport } from './ipc.ts'
import { Bench, hasTaskset, type RunResult, type RunSpec, type Timing } from './measure.ts'
import type { ProxyKind } from './proxy-child.ts'
import { int, pct, render, summarize, type BenchReport } from './report.ts'
import { searchSustainedRate, type SearchResult } from './search.ts'

/**
 * Saturation scenarios, in the order each repetition runs them (ours, lean and naive interleaved). Lean (ours with
 * `insights: false`) sits next to ours at 1,000 rules, before it in one repetition and after it in the next, so
 * the pair whose ratio is the insights' cost sees the same machine. ours-w2 (ours with `workers: 2`) sits on
 * ours's other side for the same reason: ours is `workers: 1`, and the pair is the 1-vs-2-workers comparison.
 */
const SATURATION: readonly { kind: ProxyKind; rules: number }[] = [
  { kind: 'ours-w2', rules: 1000 },
  { kind: 'ours', rules: 1000 },
  { kind: 'lean', rules: 1000 },
  { kind: 'naive', rules: 1000 },
  { kind: 'ours', rules: 10 },
  { kind: 'ours', rules: 100_000 },
  { kind: 'naive', rules: 10 },
]
const LINES_PER_DATAGRAM = [1, 10] as const
/** Scenario 3: a steady load that ours must carry without loss, at well under one core. */
const FIXED = { rules: 1000, linesPerDatagram: 1, rate: 50_000 } as const
const SEARCH_RULES = 1000
/** Whatever happens (a wedged child, a proxy that never drains), the bench ends by itself. */
const HARD_LIMIT_MS = 20 * 60_000

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    warmup: { type: 'string' },
    seconds: { type: 'string' },
    reps: { type: 'string' },
    node: { type: 'string', default: process.execPath },
    'no-pin': { type: 'boolean', default: false },
  },
})
const quick = flags.quick === true
const nodeBinary = flags.node ?? process.execPath
const timing: Timing = {
  warmupMs: seconds(flags.warmup, quick ? 0.3 : 0.5),
  measureMs: seconds(flags.seconds, quick ? 1 : 3),
}
const reps = flags.reps === undefined ? (quick ? 1 : 3) : positiveInt(flags.reps, '--reps')
/** Of the proxy's capacity on a full core; see searchSustainedRate. */
const searchFractions = quick ? [0.4, 0.6, 0.8, 1] : [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1]
const pin = !flags['no-pin'] && cpus().length >= 2 && hasTaskset()

function seconds(arg: string | undefined, fallback: number): number {
  if (arg === undefined) return fallback * 1000
  const s = Number(arg)
  if (!(s > 0 && s <= 60)) throw new Error(`expected seconds in (0, 60], got ${arg}`)
  return s * 1000
}

function positiveInt(arg: string, name: string): number {
  const n = Number(arg)
  if (!Number.isInteger(n) || n < 1 || n > 20) throw new Error(`${name}: expected an integer from 1 to 20, got ${arg}`)
  return n
}

function readRmemMax(): number | null {
  try {
    return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'))
  } catch {
    return null // not Linux
  }
}

function progress(phase: string, r: RunResult): void {
  const s = r.spec
  console.error(
    `${phase.padEnd(10)} ${s.kind.padEnd(7)} ${String(s.rules).padStart(6)} rules ${String(s.linesPerDatagram).padStart(2)} l/d ` +
      `${(s.rate === null ? 'max' : int(s.rate)).padStart(8)} dgram/s: ${int(r.linesPerSecond).padStart(10)} lines/s, ` +
      `${r.cpuUsPerLine.toFixed(2)} µs/line, cpu ${pct(r.cpuShare, 0)} (waited ${pct(r.cpuWaitShare, 0)}), gen ${int(r.generatorDatagramsPerSecond)} dgram/s, ` +
      `read ${pct(r.proxyReadShare, 1)}, delivered ${pct(r.deliveredRatio, 2)}, RSS ${(r.rssMaxBytes / 1e6).toFixed(1)} MB` +
      (r.workerLineShares === null ? '' : `, worker shares ${r.workerLineShares.map((x) => pct(x, 0)).join(' / ')}`) +
      (r.generatorShort ? ' GENERATOR SHORT' : ''),
  )
}

async function main(): Promise<void> {
  const startedAt = new Date()
  const loadAtStart = loadavg()
  const bench = await Bench.start(nodeBinary, pin)
  const node = execFileSync(nodeBinary, ['--version'], { encoding: 'utf8' }).trim()
  console.error(
    `bench: node ${node}, ${reps} rep(s), ${timing.warmupMs} ms warm-up + ${timing.measureMs} ms per run, pinned: ${pin}, ` +
      `load average ${loadAtStart.map((x) => x.toFixed(2)).join(' ')}`,
  )
  // Start every proxy before any load: loading the 100,000-rule config takes seconds of CPU.
  for (const { kind, rules } of SATURATION) await bench.proxy(kind, rules)

  const all: RunResult[] = []
  const measure = async (phase: string, spec: RunSpec): Promise<RunResult> => {
    const r = await bench.run(spec, timing)
    progress(phase, r)
    all.push(r)
    return r
  }

  const saturation: RunResult[] = []
  for (let rep = 0; rep < reps; rep++) {
    // Reverse the order every other repetition, so no scenario always runs right after the same one.
    const order = rep % 2 === 0 ? SATURATION : [...SATURATION].reverse()
    for (const linesPerDatagram of LINES_PER_DATAGRAM) {
      for (const { kind, rules } of order) saturation.push(await measure('saturation', { kind, rules, linesPerDatagram, rate: null }))
    }
  }

  const fixed: RunResult[] = []
  for (let rep = 0; rep < reps; rep++) {
    const kinds: ProxyKind[] = rep % 2 === 0 ? ['ours', 'naive'] : ['naive', 'ours']
    for (const kind of kinds) {
      // A run in which the generator could not keep the rate (it was short of CPU) did not test that rate.
      let r = await measure('fixed', { kind, ...FIXED })
      for (let retry = 0; retry < 2 && r.generatorShort; retry++) r = await measure('fixed', { kind, ...FIXED })
      fixed.push(r)
    }
  }

  const searches: SearchResult[] = []
  const capacities = summarize(saturation)
  for (const linesPerDatagram of LINES_PER_DATAGRAM) {
    for (const kind of ['ours', 'naive'] as const) {
      const seed = capacities.find((s) => s.spec.kind === kind && s.spec.rules === SEARCH_RULES && s.spec.linesPerDatagram === linesPerDatagram)
      if (seed === undefined) continue
      const base = { kind, rules: SEARCH_RULES, linesPerDatagram }
      const capacity = 1e6 / (seed.cpuUsPerLine * linesPerDatagram)
      searches.push(await searchSustainedRate(bench, base, capacity, searchFractions, timing, (r) => {
        progress('search', r)
        all.push(r)
      }))
    }
  }

  const report: BenchReport = {
    startedAt,
    elapsedMs: Date.now() - startedAt.getTime(),
    node,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}`,
    timing,
    reps,
    pinned: pin,
    rmemMax: readRmemMax(),
    saturation,
    fixed,
    searches,
    all,
    proxies: (await bench.startedProxies()).map(({ kind, rules, ready, cpus }) => ({ kind, rules, ready, cpus })),
    loadAverage: { start: loadAtStart, end: loadavg() },
  }
  const markdown = render(report)
  process.stdout.write(markdown + '\n')
  const name = saveReport('', markdown, startedAt)
  const dir = new URL('../../bench/results/', import.meta.url)
  copyFileSync(new URL(name, dir), new URL('latest.md', dir))
  console.error(`bench: report written to bench/results/${name} and bench/results/latest.md`)
}

await runEntryPoint('bench', HARD_LIMIT_MS, main)
