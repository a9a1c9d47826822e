// Turns the runs into the markdown report: medians per scenario, the targets with a verdict each, the ratios.
import { median } from './lib/stats.ts'
import { int, MB, mb, MIB, pct, table } from './lib/table.ts'
import {
  DELIVERY_GRACE_MS,
  type BaselineLatency,
  type RunResult,
  type RunSpec,
  type TagCheck,
  type Timing,
} from './measure.ts'
import type { ProxyReady } from './proxy-child.ts'
import type { ProxyKind } from './proxy-kinds.ts'
import { SUSTAINED_RATIO, type SearchResult } from './search.ts'
import { STRIP_KEEP_ONLY, STRIP_KEYS, stripTagRules } from './workload.ts'

export interface BenchReport {
  startedAt: Date
  elapsedMs: number
  node: string
  cpu: string
  timing: Timing
  reps: number
  pinned: boolean
  /** The sink ran at a raised priority (measure.ts SINK_NICE), so it preempts the spinning generator at once. */
  sinkNiced: boolean
  /** net.core.rmem_max: caps every socket's receive buffer, so it bounds the bursts a proxy can absorb. */
  rmemMax: number | null
  saturation: RunResult[]
  fixed: RunResult[]
  /** The generator straight to the sink, once per repetition. */
  baselines: BaselineLatency[]
  /** RSS of a bare `node -e` process waiting (lib/machine.ts bareNodeRss). */
  bareNodeRss: number
  searches: SearchResult[]
  /** What the strip rules do to the workloads' bytes, checked before the runs (measure.ts checkTagStripping). */
  tagChecks: TagCheck[]
  /** Every run, search steps included: RSS figures are maxima over a proxy's whole life. */
  all: RunResult[]
  /** `cpus`: the CPUs its processes may run on once started (Cpus_allowed_list), to show the pinning. */
  proxies: { kind: ProxyKind; rules: number; ready: ProxyReady; cpus: string }[]
  /** os.loadavg() (1, 5, 15 min) when the bench started and when it ended: how busy the shared machine was. */
  loadAverage?: { start: number[]; end: number[] }
}

/** The generator-bound threshold: the proxy read (nearly) every datagram, so it was not the bottleneck. */
const READ_ALL = 0.99

/** Medians of repeated runs of one scenario, each metric on its own (the runs are noisy independently). */
export interface Summary {
  spec: RunSpec
  runs: number
  linesPerSecond: number
  linesPerSecondMin: number
  linesPerSecondMax: number
  cpuUsPerLine: number
  /** 1 / CPU time per line: the throughput on one full core, whatever share of it the noisy machine allowed. */
  linesPerCpuSecond: number
  cpuShare: number
  cpuWaitShare: number
  rssMaxBytes: number
  scavengesPerMLines: number
  markSweepsPerMLines: number
  blockedShare: number
  strippedShare: number
  tagsPerStrippedLine: number
  deliveredRatio: number
  offeredLines: number
  expectedLines: number
  deliveredLines: number
  generatorDatagramsPerSecond: number
  proxyReadShare: number
  forwardedLines: number
  droppedLines: number
  processes: number
  /** Median of each worker's share of the lines (ours-w2); null for a single process. */
  workerLineShares: number[] | null
  /** Some run's proxy read nearly all it was sent: its throughput is a floor, set by the generator. */
  generatorBound: boolean
  generatorShort: boolean
  sinkLinesPerDatagram: number
  /** Medians of the runs' probe percentiles (µs); NaN at saturation. */
  latencyP50Us: number
  latencyP99Us: number
  generatorCpuShare: number
  generatorSendUs: number
}

export function summarize(results: readonly RunResult[]): Summary[] {
  const groups = new Map<string, RunResult[]>()
  for (const r of results) {
    const key = specKey(r.spec)
    groups.set(key, [...(groups.get(key) ?? []), r])
  }
  return [...groups.values()].map((runs) => {
    const med = (f: (r: RunResult) => number): number => median(runs.map(f))
    const rates = runs.map((r) => r.linesPerSecond)
    return {
      spec: runs[0].spec,
      runs: runs.length,
      linesPerSecond: med((r) => r.linesPerSecond),
      linesPerSecondMin: Math.min(...rates),
      linesPerSecondMax: Math.max(...rates),
      cpuUsPerLine: med((r) => r.cpuUsPerLine),
      linesPerCpuSecond: 1e6 / med((r) => r.cpuUsPerLine),
      cpuShare: med((r) => r.cpuShare),
      cpuWaitShare: med((r) => r.cpuWaitShare),
      rssMaxBytes: Math.max(...runs.map((r) => r.rssMaxBytes)),
      scavengesPerMLines: med((r) => r.scavengesPerMLines),
      markSweepsPerMLines: med((r) => r.markSweepsPerMLines),
      blockedShare: med((r) => r.blockedShare),
      strippedShare: med((r) => r.strippedShare),
      tagsPerStrippedLine: med((r) => r.tagsPerStrippedLine),
      deliveredRatio: med((r) => r.deliveredRatio),
      offeredLines: med((r) => r.offeredLines),
      expectedLines: med((r) => r.expectedLines),
      deliveredLines: med((r) => r.deliveredLines),
      generatorDatagramsPerSecond: med((r) => r.generatorDatagramsPerSecond),
      proxyReadShare: med((r) => r.proxyReadShare),
      forwardedLines: med((r) => r.forwardedLines),
      droppedLines: med((r) => r.droppedLines),
      processes: runs[0].processes,
      workerLineShares:
        runs[0].workerLineShares === null
          ? null
          : runs[0].workerLineShares.map((_, i) => med((r) => r.workerLineShares?.[i] ?? 0)),
      generatorBound: runs.some((r) => r.spec.rate === null && r.proxyReadShare >= READ_ALL),
      generatorShort: runs.some((r) => r.generatorShort),
      sinkLinesPerDatagram: med((r) => r.sinkLinesPerDatagram),
      latencyP50Us: med((r) => r.latency?.p50Us ?? NaN),
      latencyP99Us: med((r) => r.latency?.p99Us ?? NaN),
      generatorCpuShare: med((r) => r.generatorCpuShare),
      generatorSendUs: med((r) => r.generatorSendUs),
    }
  })
}

export function render(report: BenchReport): string {
  const sat = summarize(report.saturation)
  const fixed = summarize(report.fixed)
  const out: string[] = []
  out.push(`# statsd-filter-proxy bench, ${report.startedAt.toISOString()}`, '')
  out.push(
    `Node ${report.node}, ${report.cpu}. Each run: ${report.timing.warmupMs / 1000} s warm-up, ${report.timing.measureMs / 1000} s measured; ` +
      `saturation and fixed-rate figures are medians of ${report.reps} runs, the proxies interleaved within each repetition. ` +
      'ours = this proxy as configured by default (`workers: 1`, `receive: { mode: batch }`, per-rule hits and top talkers on); ' +
      'ours-dgram = the same with `receive: { mode: dgram }`; lean = ours with `insights: false`; ours-w2 = ours with ' +
      '`workers: 2` (two readers of the one listen socket, in the processes or threads src/cluster runs them in; its CPU ' +
      'and RSS figures cover all of them, see Proxy processes for how many processes); ours-tags = ours with 100 ' +
      'stripTags rules added (see Tag rules); naive = bench/naive-proxy.ts. Fixed rates are offered evenly paced (each ' +
      'datagram sent on its own when due, as independent application threads send) unless marked bursty (what is due ' +
      'sent every 1 ms timer tick, back to back). ' +
      (report.pinned
        ? 'The proxy under test is pinned to CPU 1; the load generator and the sink share CPU 0' +
          (report.sinkNiced ? ', the sink at nice -10 so that it preempts the spinning generator' : '') +
          ". ours-w2 is not pinned: its readers may run on every core, the generator and the sink's included. "
        : 'Processes are not pinned: the proxy, the load generator and the sink share the cores. ') +
      (report.loadAverage === undefined
        ? ''
        : `Load average (1/5/15 min) ${report.loadAverage.start.map((x) => x.toFixed(2)).join(' / ')} at the start, ` +
          `${report.loadAverage.end.map((x) => x.toFixed(2)).join(' / ')} at the end (this machine is shared). `) +
      (report.rmemMax === null
        ? ''
        : `net.core.rmem_max = ${(report.rmemMax / MIB).toFixed(1)} MiB caps every receive buffer. `) +
      `MB = 10⁶ bytes. Whole bench: ${(report.elapsedMs / 60_000).toFixed(1)} min.`,
    '',
  )
  out.push('## Targets', '', ...targets(report, sat, fixed), '')
  const tags = tagsSection(report, sat, fixed)
  if (tags.length > 0) out.push(...tags, '')
  out.push(...receiveSection(report, sat, fixed), '')
  out.push(...memorySection(report), '')
  out.push(...generatorSection(sat, fixed), '')
  const workers = workersSection(report, sat)
  if (workers.length > 0) out.push(...workers, '')
  out.push(
    '## Proxy processes',
    '',
    'Each proxy loads its config the way the CLI does (a YAML file, compiled on the event loop up to 64 KiB, on a worker thread beyond), in ' +
      'its own process, and lives for the whole bench. Start-up = process start to listening. RSS under load = ' +
      "highest RSS sampled (every 100 ms) in the measurement windows; RSS peak = the kernel's maxrss for the " +
      'process, start-up (config loading) included. For ours-w2 each is summed over its processes (RSS: the sum at ' +
      "one sampling moment; peak: the sum of each process's VmHWM). CPUs allowed = Cpus_allowed_list of its processes " +
      'once started.',
    '',
    ...proxiesTable(report),
    '',
  )
  out.push('## Saturation (the generator sends as fast as it can)', '')
  out.push(
    'lines/s = lines the proxy forwarded or blocked per second of wall time (its own counters). ' +
      '"per CPU-s" = 1 / CPU time per line: the rate on a core of its own; "proxy CPU" = the share of a core it got ' +
      '(well under 100% at saturation means it was short of CPU); "waited for CPU" = the share of the time it was ' +
      "ready to run while another process had its core (from the kernel's schedstat, main threads only). For ours-w2 " +
      'CPU is summed over its processes and threads (up to 200% on two cores), and scavenges are n/a when it has ' +
      'worker processes (their collections are not observed). Delivered < 100% is ' +
      'expected here: the kernel drops what the proxy cannot read. "proxy read" = datagrams the proxy read / sent; at ' +
      `${pct(READ_ALL, 0)} or more the generator, not the proxy, was the limit (marked ≥).`,
    '',
  )
  out.push(...saturationTable(sat), '')
  out.push(
    '## Fixed offered rate',
    '',
    'Delivered ratio over the whole run, as in the search below. A run in which the generator fell short of the rate ' +
      'is repeated once (not in quick mode); "(short)" marks one that still was.',
    '',
    ...fixedTable(fixed),
    '',
  )
  out.push(
    `## Highest sustained rate (≥ ${pct(SUSTAINED_RATIO, 1)} of surviving lines delivered)`,
    '',
    "Stepped up in fractions of the capacity on one core (the saturation runs' per CPU-s figure); a failing step " +
      'is run twice before it counts. Delivered ratio over the whole run, warm-up included, counting what reached the ' +
      `sink within ${DELIVERY_GRACE_MS} ms of the generator stopping (a proxy that only queued the excess does not pass).`,
    '',
    ...searchTable(report.searches),
    '',
  )
  return out.join('\n')
}

function targets(report: BenchReport, sat: Summary[], fixed: Summary[]): string[] {
  const rows = [
    ...ratioTargets(sat),
    ...fixedTargets(fixed),
    ...coreTargets(sat),
    ...rssTargets(report),
    ...insightsTargets(sat),
    ...workersRows(report, sat),
    ...tagsTargets(report, sat, fixed),
  ]
  return table(['figure', 'target', 'measured', 'verdict'], rows, 'llll')
}

const floor = (...s: Summary[]): string => (s.some((x) => x.generatorBound) ? ' (generator-bound: a floor)' : '')

interface SaturationPair {
  lpd: number
  a: Summary
  b: Summary
  /** a / b, in lines per second of wall time and per CPU second. */
  wall: number
  perCpu: number
}

/** The saturation summaries of two scenarios side by side, at 1 and at 10 lines per datagram (where both ran). */
function saturationPairs(
  sat: Summary[],
  a: { kind: ProxyKind; rules: number },
  b: { kind: ProxyKind; rules: number },
): SaturationPair[] {
  const find = (x: { kind: ProxyKind; rules: number }, lpd: number): Summary | undefined =>
    sat.find((s) => s.spec.kind === x.kind && s.spec.rules === x.rules && s.spec.linesPerDatagram === lpd)
  return [1, 10].flatMap((lpd) => {
    const sa = find(a, lpd)
    const sb = find(b, lpd)
    if (sa === undefined || sb === undefined) return []
    return [
      {
        lpd,
        a: sa,
        b: sb,
        wall: sa.linesPerSecond / sb.linesPerSecond,
        perCpu: sa.linesPerCpuSecond / sb.linesPerCpuSecond,
      },
    ]
  })
}

/** Targets 1 (ours / naive) and 2 (100,000 rules / 10 rules). */
function ratioTargets(sat: Summary[]): string[][] {
  const naive = saturationPairs(sat, { kind: 'ours', rules: 1000 }, { kind: 'naive', rules: 1000 }).map(
    ({ lpd, a: ours, b: naive, wall, perCpu }) => [
      `1. saturation, 1,000 rules, ${lpd} line(s)/datagram: ours / naive`,
      '≥ 3×',
      `${wall.toFixed(2)}× (${int(ours.linesPerSecond)} vs ${int(naive.linesPerSecond)} lines/s)${floor(ours)}; per CPU-s ${perCpu.toFixed(2)}×`,
      verdict(wall >= 3, perCpu >= 3),
    ],
  )
  const rules = saturationPairs(sat, { kind: 'ours', rules: 100_000 }, { kind: 'ours', rules: 10 }).map(
    ({ lpd, a: big, b: small, wall, perCpu }) => [
      `2. saturation, ours, ${lpd} line(s)/datagram: 100,000 rules / 10 rules`,
      'within ±10%',
      `${pct(wall, 1)} (${int(big.linesPerSecond)} vs ${int(small.linesPerSecond)} lines/s)${floor(big, small)}; per CPU-s ${pct(perCpu, 1)}`,
      verdict(Math.abs(1 - wall) <= 0.1, Math.abs(1 - perCpu) <= 0.1),
    ],
  )
  return [...naive, ...rules]
}

/** The fixed-rate summary of a kind at `rate` offered with `pacing`. */
function fixedAt(fixed: Summary[], kind: ProxyKind, rate: number, pacing: string): Summary | undefined {
  return fixed.find((s) => s.spec.kind === kind && s.spec.rate === rate && pacingOf(s.spec) === pacing)
}

/** The rate targets 3a and 3b are stated for, evenly paced. */
const TARGET_RATE = 50_000

/** Targets 3a and 3b: ours and naive at TARGET_RATE, evenly paced. */
function fixedTargets(fixed: Summary[]): string[][] {
  const rows: string[][] = []
  const fOurs = fixedAt(fixed, 'ours', TARGET_RATE, 'even')
  const fNaive = fixedAt(fixed, 'naive', TARGET_RATE, 'even')
  if (fOurs !== undefined) {
    rows.push([
      `3a. ${int(fOurs.spec.rate ?? 0)} datagrams/s (even) × ${fOurs.spec.linesPerDatagram} line(s), ${int(fOurs.spec.rules)} rules: ours delivered`,
      '≥ 99.9%',
      `${pct(fOurs.deliveredRatio, 3)}${fOurs.generatorShort ? ' (the generator fell short of the rate)' : ''}`,
      verdict(fOurs.deliveredRatio >= 0.999 && !fOurs.generatorShort),
    ])
  }
  if (fOurs !== undefined && fNaive !== undefined) {
    const ratio = fOurs.cpuUsPerLine / fNaive.cpuUsPerLine
    rows.push([
      '3b. same load: CPU per line, ours / naive',
      '≤ 0.5',
      `${ratio.toFixed(2)} (${fOurs.cpuUsPerLine.toFixed(2)} vs ${fNaive.cpuUsPerLine.toFixed(2)} µs/line)`,
      verdict(ratio <= 0.5),
    ])
  }
  return rows
}

/** Target 4: a million lines per second on one core. */
function coreTargets(sat: Summary[]): string[][] {
  return sat
    .filter((x) => x.spec.kind === 'ours' && x.spec.linesPerDatagram === 10)
    .map((s) => [
      `4. saturation, ours, 10 lines/datagram, ${int(s.spec.rules)} rules: lines/s on one core`,
      '≥ 1,000,000',
      `${int(s.linesPerSecond)}${floor(s)} at ${pct(s.cpuShare, 0)} of a core; per CPU-s ${int(s.linesPerCpuSecond)}`,
      verdict(s.linesPerSecond >= 1e6, s.linesPerCpuSecond >= 1e6),
    ])
}

/** Target 5: RSS under 80 MB. */
function rssTargets(report: BenchReport): string[][] {
  return report.proxies
    .filter((x) => x.kind === 'ours')
    .map((p) => {
      const loaded = rssUnderLoad(report, p.kind, p.rules)
      const peak = rssPeak(report, p.kind, p.rules)
      const startup = peak > 80 * MB ? ' (over 80 MB: a container memory limit must allow for it)' : ''
      return [
        `5. RSS of ours, ${int(p.rules)} rules, under load (max sampled over all its runs)`,
        '< 80 MB',
        `${mb(loaded)} MB; start-up peak ${mb(peak)} MB${startup}`,
        verdict(loaded < 80 * MB),
      ]
    })
}

/** Target 6: what per-rule hits and top talkers cost (ours against lean). */
function insightsTargets(sat: Summary[]): string[][] {
  return saturationPairs(sat, { kind: 'ours', rules: 1000 }, { kind: 'lean', rules: 1000 }).map(
    ({ lpd, a: ours, b: lean, wall, perCpu }) => {
      // A generator-bound lean run understates lean, so the ratio overstates ours; a generator-bound ours, the reverse.
      const bound = lean.generatorBound
        ? ' (lean generator-bound: the ratio is a ceiling)'
        : ours.generatorBound
          ? ' (ours generator-bound: the ratio is a floor)'
          : ''
      return [
        `6. insights (per-rule hits + top talkers), 1,000 rules, ${lpd} line(s)/datagram: ours / lean saturation throughput`,
        '≥ 90%',
        `${pct(wall, 1)} (${int(ours.linesPerSecond)} vs ${int(lean.linesPerSecond)} lines/s)${bound}; per CPU-s ${pct(perCpu, 1)} ` +
          `(${int(ours.linesPerCpuSecond)} vs ${int(lean.linesPerCpuSecond)}: insights cost ${(ours.cpuUsPerLine - lean.cpuUsPerLine).toFixed(3)} µs/line)`,
        verdict(wall >= 0.9, perCpu >= 0.9),
      ]
    },
  )
}

/** The 1-vs-2-workers pairs: ours (workers: 1) and ours-w2 at 1,000 rules, run next to each other every repetition. */
function workerPairs(
  report: BenchReport,
  sat: Summary[],
): { lpd: number; one: Summary; two: Summary; runs: [RunResult, RunResult][] }[] {
  return saturationPairs(sat, { kind: 'ours', rules: 1000 }, { kind: 'ours-w2', rules: 1000 }).map(
    ({ lpd, a: one, b: two }) => {
      const runsOf = (kind: ProxyKind): RunResult[] =>
        report.saturation.filter(
          (r) => r.spec.kind === kind && r.spec.rules === 1000 && r.spec.linesPerDatagram === lpd,
        )
      const ones = runsOf('ours')
      const twos = runsOf('ours-w2')
      // The i-th run of each is from the same repetition (both run once per repetition, side by side).
      return { lpd, one, two, runs: ones.slice(0, twos.length).map((r, i): [RunResult, RunResult] => [r, twos[i]]) }
    },
  )
}

function workersRows(report: BenchReport, sat: Summary[]): string[][] {
  const pairs = workerPairs(report, sat)
  const rows = pairs.map(({ lpd, one, two, runs }) => {
    // The workers share CPU 0 with the generator: a 2-worker run that read all it was sent was held back by a
    // generator they slowed down, which the generator's rate shows.
    const bound = two.generatorBound
      ? ' (2 workers: some run read all the generator sent, a floor)'
      : one.generatorBound
        ? ' (1 worker generator-bound: a floor)'
        : ''
    return [
      `7. saturation, workers 1 vs 2, 1,000 rules, ${lpd} line(s)/datagram`,
      'shown (no target)',
      `${int(one.linesPerSecond)} vs ${int(two.linesPerSecond)} lines/s (${(two.linesPerSecond / one.linesPerSecond).toFixed(2)}×)${bound}; ` +
        `runs ${runs.map(([a]) => int(a.linesPerSecond)).join(', ')} vs ${runs.map(([, b]) => int(b.linesPerSecond)).join(', ')}; ` +
        `CPU ${pct(one.cpuShare, 0)} vs ${pct(two.cpuShare, 0)} of a core (2 workers: all its threads and processes), ` +
        `waited for CPU ${pct(one.cpuWaitShare, 0)} vs ${pct(two.cpuWaitShare, 0)}; ` +
        `generator ${int(one.generatorDatagramsPerSecond)} vs ${int(two.generatorDatagramsPerSecond)} dgram/s` +
        (two.workerLineShares === null
          ? ''
          : `; worker shares ${two.workerLineShares.map((x) => pct(x, 0)).join(' / ')}`) +
        (coresOf(report) > 0 && coresOf(report) <= 2 ? '; bounded by this machine, see below' : ''),
      '—',
    ]
  })
  if (pairs.length > 0) {
    rows.push([
      `7. RSS at saturation, workers 1 vs 2, 1,000 rules (max sampled; 2 workers: summed over its processes)`,
      'shown (no target)',
      pairs
        .map(({ lpd, one, two }) => `${lpd} line(s)/datagram: ${mb(one.rssMaxBytes)} vs ${mb(two.rssMaxBytes)} MB`)
        .join('; '),
      '—',
    ])
  }
  return rows
}

/** The machine's CPU count, from the report's CPU line ("2 × Xeon …"); 0 if it does not say. */
function coresOf(report: BenchReport): number {
  return Number(/^(\d+) ×/.exec(report.cpu)?.[1] ?? 0)
}

/** What the 2-worker figure means on this machine, and the pairs run by run. */
function workersSection(report: BenchReport, sat: Summary[]): string[] {
  const pairs = workerPairs(report, sat)
  if (pairs.length === 0) return []
  const cores = coresOf(report)
  const cpus = report.proxies.find((p) => p.kind === 'ours-w2')?.cpus ?? '?'
  const w2 = report.proxies.find((p) => p.kind === 'ours-w2')
  const processes = w2 === undefined ? '?' : String(1 + w2.ready.workerPids.length)
  return [
    '## Workers 1 vs 2 (saturation, 1,000 rules)',
    '',
    `ours is \`workers: 1\`${report.pinned ? ', pinned to CPU 1' : ''}; ours-w2 is \`workers: 2\`, ${processes} process(es) ` +
      `not pinned (CPUs allowed: ${cpus}). ` +
      (cores > 0 && cores <= 2
        ? `This machine has ${cores} cores, and the load generator and the sink${report.pinned ? ' (pinned to CPU 0)' : ''} need most of one ` +
          'at saturation: the two workers share what is left with them, so the 2-worker figure is bounded by the machine, not by ' +
          'the proxy ("waited for CPU", of each process\'s main thread, is the CPU they were ready to use and did not get). '
        : '') +
      'CPU and "waited for CPU" are shares of one core (200% = two whole cores); RSS is the highest sum of the processes\' RSS ' +
      'sampled at one moment. The runs of a repetition ran one right after the other; the order alternates between repetitions.',
    '',
    ...table(
      [
        'lines/dgram',
        'rep',
        'workers 1 lines/s',
        'workers 2 lines/s',
        '2 / 1',
        'CPU 1 / 2',
        'waited for CPU 1 / 2',
        'proxy read 1 / 2',
        'gen dgram/s 1 / 2',
        'worker shares (2)',
        'RSS max MB 1 / 2',
      ],
      pairs.flatMap(({ lpd, one, two, runs }) => [
        ...runs.map(([a, b], i) => [
          String(lpd),
          String(i + 1),
          int(a.linesPerSecond),
          int(b.linesPerSecond),
          `${(b.linesPerSecond / a.linesPerSecond).toFixed(2)}×`,
          `${pct(a.cpuShare, 0)} / ${pct(b.cpuShare, 0)}`,
          `${pct(a.cpuWaitShare, 0)} / ${pct(b.cpuWaitShare, 0)}`,
          `${pct(a.proxyReadShare, 1)} / ${pct(b.proxyReadShare, 1)}`,
          `${int(a.generatorDatagramsPerSecond)} / ${int(b.generatorDatagramsPerSecond)}`,
          b.workerLineShares?.map((x) => pct(x, 1)).join(' / ') ?? '',
          `${mb(a.rssMaxBytes)} / ${mb(b.rssMaxBytes)}`,
        ]),
        [
          String(lpd),
          '**median**',
          (one.generatorBound ? '≥ ' : '') + int(one.linesPerSecond),
          (two.generatorBound ? '≥ ' : '') + int(two.linesPerSecond),
          `**${(two.linesPerSecond / one.linesPerSecond).toFixed(2)}×**`,
          `${pct(one.cpuShare, 0)} / ${pct(two.cpuShare, 0)}`,
          `${pct(one.cpuWaitShare, 0)} / ${pct(two.cpuWaitShare, 0)}`,
          `${pct(one.proxyReadShare, 1)} / ${pct(two.proxyReadShare, 1)}`,
          `${int(one.generatorDatagramsPerSecond)} / ${int(two.generatorDatagramsPerSecond)}`,
          two.workerLineShares?.map((x) => pct(x, 1)).join(' / ') ?? '',
          `${mb(one.rssMaxBytes)} / ${mb(two.rssMaxBytes)} (max)`,
        ],
      ]),
      'lrrrrrrrrrr',
    ),
  ]
}

/** Issue 10: name rules plus 100 stripTags rules cost at most this much CPU per line of name rules alone. */
const TAGS_TARGET = 1.5

interface TagsPair {
  /** e.g. "50,000 dgram/s even, 1 line/dgram" or "saturation, 10 lines/dgram". */
  scenario: string
  ours: Summary
  tags: Summary
  /** Median CPU µs per line of ours-tags over ours's, and each repetition's own ratio. */
  ratio: number
  perRep: number[]
}

/** ours and ours-tags side by side: every fixed rate they both ran at, then saturation at 1 and 10 lines/datagram. */
function tagsPairs(report: BenchReport, sat: Summary[], fixed: Summary[]): TagsPair[] {
  const pairs: TagsPair[] = []
  const add = (scenario: string, runs: readonly RunResult[], ours: Summary | undefined, tags: Summary | undefined) => {
    if (ours === undefined || tags === undefined) return
    pairs.push({
      scenario,
      ours,
      tags,
      ratio: tags.cpuUsPerLine / ours.cpuUsPerLine,
      perRep: perRepRatios(runs, tags.spec, ours.spec, (r) => r.cpuUsPerLine),
    })
  }
  for (const o of fixed.filter((s) => s.spec.kind === 'ours')) {
    const t = fixed.find((s) => specKey(s.spec) === specKey({ ...o.spec, kind: 'ours-tags' }))
    add(
      `${int(o.spec.rate ?? 0)} dgram/s ${pacingOf(o.spec)}, ${o.spec.linesPerDatagram} line/dgram`,
      report.fixed,
      o,
      t,
    )
  }
  for (const lpd of [1, 10]) {
    const find = (kind: ProxyKind): Summary | undefined =>
      sat.find((s) => s.spec.kind === kind && s.spec.rules === 1000 && s.spec.linesPerDatagram === lpd)
    add(`saturation, ${lpd} line(s)/dgram`, report.saturation, find('ours'), find('ours-tags'))
  }
  return pairs
}

/** Target 8 (issue 10): ours-tags / ours CPU per line, at 50,000 dgram/s evenly paced and at saturation. */
function tagsTargets(report: BenchReport, sat: Summary[], fixed: Summary[]): string[][] {
  return tagsPairs(report, sat, fixed)
    .filter((p) => p.ours.spec.rate === null || (p.ours.spec.rate === TARGET_RATE && pacingOf(p.ours.spec) === 'even'))
    .map((p) => [
      `8. tag rules (1,000 name rules + 100 stripTags, ${pct(p.tags.strippedShare, 0)} of forwarded lines stripped), ${p.scenario}: CPU per line, ours-tags / ours`,
      `≤ ${TAGS_TARGET}×`,
      `${p.ratio.toFixed(2)}× (${p.tags.cpuUsPerLine.toFixed(2)} vs ${p.ours.cpuUsPerLine.toFixed(2)} µs/line; runs ${p.perRep.map((x) => x.toFixed(2)).join(', ')})`,
      verdict(p.ratio <= TAGS_TARGET),
    ])
}

/** ours-tags against ours: the rules, the shares the check and the proxy's counters found, CPU per line side by side. */
function tagsSection(report: BenchReport, sat: Summary[], fixed: Summary[]): string[] {
  const pairs = tagsPairs(report, sat, fixed)
  if (pairs.length === 0) return []
  const rules = stripTagRules()
  const prefixes = rules.filter((r) => r.prefix !== null).length
  const globs = rules.length - prefixes
  const checks = report.tagChecks.filter((c) => c.kind === 'ours-tags')
  const checkText = checks
    .map(
      (c) =>
        `${c.linesPerDatagram} line(s)/datagram: ${int(c.lines)} lines, ${int(c.forwarded)} forwarded, ` +
        `${pct(c.tagged / c.lines, 1)} of all lines and ${pct(c.forwardedTagged / c.forwarded, 1)} of forwarded ones tagged, ` +
        `${pct(c.stripped / c.forwarded, 1)} of forwarded lines stripped (${pct(c.stripped / c.lines, 1)} of all), ` +
        `${(c.tagsStripped / Math.max(1, c.stripped)).toFixed(2)} tags per stripped line`,
    )
    .join('; ')
  const oursChecks = report.tagChecks.filter((c) => c.kind === 'ours')
  return [
    '## Tag rules: ours-tags vs ours (1,000 name rules)',
    '',
    `ours-tags = ours (\`workers: 1\`, batch) with ${rules.length} stripTags rules added to the same 1,000 blocklist prefixes: ` +
      `${prefixes} prefix selectors \`app.svc<i>.\` with \`keys: [${STRIP_KEYS.join(', ')}]\` and ${globs} glob selectors ` +
      `with \`keepOnly: [${STRIP_KEEP_ONLY.join(', ')}]\` (36 \`*.*.<component>.<measure>\`, which select every forwarded line, and ` +
      `${globs - 36} \`**.svc<i>.**\`), on the same workload as every kind (bench/workload.ts stripTagRules). Every workload ` +
      'line carries tags (issue 10 states 65%), and every forwarded line is selected by strip rules (app lines by a prefix ' +
      'and one or two globs, the near-miss legacy lines by one glob), so every forwarded line pays for its tags being ' +
      "looked at, a harder case than the issue's; a line loses its `pod:` or its `version:` tag when it has one, which " +
      'half of them do. Checked before the runs on the ' +
      "generator's own datagrams, through the proxy's pipeline with these rules (every line out byte for byte as a " +
      `string-based account of the rules says, and the proxy's counts of stripped lines and tags equal to it): ${checkText}. ` +
      (oursChecks.length > 0
        ? `The same check of ours: ${oursChecks.map((c) => `${int(c.stripped)} lines changed`).join(', ')} (every forwarded line byte-identical). `
        : '') +
      "Stripped (below) = stripped lines / forwarded lines in the measurement window, from the proxy's counters (the " +
      '1% latency probes, which no rule selects, are among the forwarded lines in paced runs). The sink counts lines, ' +
      "and stripping removes no line, so delivered compares against the generator's exact survivor count as for every kind. " +
      "ours-tags / ours = CPU µs per line, the median of ours-tags over the median of ours, then each repetition's own " +
      'ratio (the two ran one right after the other).',
    '',
    ...table(
      [
        'scenario',
        'ours CPU µs/line',
        'ours-tags CPU µs/line',
        'ours-tags / ours',
        'stripped',
        'tags per stripped line',
        'delivered ours / ours-tags',
        'latency p50 µs ours / ours-tags',
        'proxy CPU ours / ours-tags',
      ],
      pairs.map((p) => [
        p.scenario,
        p.ours.cpuUsPerLine.toFixed(3),
        p.tags.cpuUsPerLine.toFixed(3),
        ratioText(p.ratio, p.perRep),
        pct(p.tags.strippedShare, 1),
        p.tags.tagsPerStrippedLine.toFixed(2),
        `${pct(p.ours.deliveredRatio, 2)} / ${pct(p.tags.deliveredRatio, 2)}`,
        p.ours.spec.rate === null ? '' : `${int(p.ours.latencyP50Us)} / ${int(p.tags.latencyP50Us)}`,
        `${pct(p.ours.cpuShare, 0)} / ${pct(p.tags.cpuShare, 0)}`,
      ]),
      'lrrrrrrrr',
    ),
  ]
}

/** The kinds compared at every fixed rate, in the order of the columns. */
const COMPARED: readonly ProxyKind[] = ['ours', 'ours-dgram', 'naive']

/** a / b of the runs of two kinds that ran in the same repetition (the i-th of each), for each repetition. */
function perRepRatios(runs: readonly RunResult[], a: RunSpec, b: RunSpec, f: (r: RunResult) => number): number[] {
  const of = (spec: RunSpec): RunResult[] => runs.filter((r) => specKey(r.spec) === specKey(spec))
  const bs = of(b)
  return of(a)
    .slice(0, bs.length)
    .map((r, i) => f(r) / f(bs[i]))
}

const ratioText = (median: number, runs: number[]): string =>
  `**${median.toFixed(2)}** (${runs.map((x) => x.toFixed(2)).join(', ')})`

const latencyText = (s: Summary | undefined): string =>
  s === undefined || Number.isNaN(s.latencyP50Us) ? '' : `${int(s.latencyP50Us)} / ${int(s.latencyP99Us)}`

/** Batch vs dgram receive: the compared kinds side by side at each fixed rate and at saturation. */
function receiveSection(report: BenchReport, sat: Summary[], fixed: Summary[]): string[] {
  const cells = (xs: (Summary | undefined)[], f: (s: Summary) => string): string =>
    xs.map((x) => (x === undefined ? '—' : f(x))).join(' / ')
  const scenarios = [...new Map(fixed.map((s) => [`${s.spec.rate}/${pacingOf(s.spec)}`, s.spec])).values()]
  const fixedRows = scenarios.map((spec) => {
    const xs = COMPARED.map((kind) => fixed.find((s) => specKey(s.spec) === specKey({ ...spec, kind })))
    const [batch, dgram] = xs
    const ratio =
      batch === undefined || dgram === undefined
        ? ''
        : ratioText(
            batch.cpuUsPerLine / dgram.cpuUsPerLine,
            perRepRatios(report.fixed, batch.spec, dgram.spec, (r) => r.cpuUsPerLine),
          )
    return [
      int(spec.rate ?? 0),
      pacingOf(spec),
      cells(xs, (s) => s.cpuUsPerLine.toFixed(2)),
      ratio,
      cells(xs, (s) => pct(s.deliveredRatio, 2) + (s.generatorShort ? ' (gen short)' : '')),
      cells(xs, (s) => s.sinkLinesPerDatagram.toFixed(1)),
      cells(xs, (s) => int(s.latencyP50Us)),
      cells(xs, (s) => int(s.latencyP99Us)),
      cells(xs, (s) => pct(s.cpuShare, 0)),
    ]
  })
  const satRows = [1, 10].flatMap((lpd) => {
    const xs = COMPARED.map((kind) =>
      sat.find((s) => s.spec.kind === kind && s.spec.rules === 1000 && s.spec.linesPerDatagram === lpd),
    )
    const [batch, dgram] = xs
    if (batch === undefined || dgram === undefined) return []
    return [
      [
        String(lpd),
        cells(xs, (s) => (s.generatorBound ? '≥ ' : '') + int(s.linesPerSecond)),
        cells(xs, (s) => int(s.linesPerCpuSecond)),
        cells(xs, (s) => s.cpuUsPerLine.toFixed(2)),
        ratioText(
          batch.cpuUsPerLine / dgram.cpuUsPerLine,
          perRepRatios(report.saturation, batch.spec, dgram.spec, (r) => r.cpuUsPerLine),
        ),
        cells(xs, (s) => pct(s.cpuShare, 0)),
        cells(xs, (s) => s.sinkLinesPerDatagram.toFixed(1)),
        cells(xs, (s) => pct(s.deliveredRatio, 1)),
      ],
    ]
  })
  const baseline = report.baselines.map((b) => b.latency)
  const baselineText =
    baseline.length === 0
      ? ''
      : `With no proxy (the generator straight to the sink, ${int(report.baselines[0].rate)} datagrams/s evenly paced, once per repetition) ` +
        `the probes took ${int(median(baseline.map((l) => l.p50Us)))} / ${int(median(baseline.map((l) => l.p99Us)))} µs ` +
        `(p50 / p99, median of ${baseline.length}; runs ${baseline.map((l) => `${int(l.p50Us)}/${int(l.p99Us)}`).join(', ')}): ` +
        "loopback and the sink's wake-up on the core it shares with the generator, included in every latency figure below. "
  return [
    '## Receive: batch vs dgram (1,000 rules)',
    '',
    `Each cell is ${COMPARED.join(' / ')}. batch / dgram = CPU µs per line of ours over ours-dgram: the median ` +
      "of the medians, then each repetition's own ratio (the two ran one right after the other). Fixed rates are " +
      '1 line per datagram; delivered is over the whole run; sink lines/dgram = lines the sink received / datagrams ' +
      'it received (what coalescing achieved: 1.0 means one datagram out per datagram in); latency = a probe ' +
      "datagram's send time (in a `#t:` tag) to the sink's receive time, same host and clock, p50 / p99 in µs, medians " +
      `of the runs. ${baselineText}`,
    '',
    ...table(
      [
        'offered dgram/s',
        'pacing',
        'CPU µs/line',
        'batch / dgram',
        'delivered',
        'sink lines/dgram',
        'latency p50 µs',
        'latency p99 µs',
        'proxy CPU',
      ],
      fixedRows,
      'lrrrrrrrr',
    ),
    '',
    'At saturation (the generator sends as fast as it can): lines/s of wall time, lines per CPU-second (the rate on ' +
      'a core of its own), CPU µs per line.',
    '',
    ...table(
      [
        'lines/dgram',
        'lines/s',
        'per CPU-s',
        'CPU µs/line',
        'batch / dgram',
        'proxy CPU',
        'sink lines/dgram',
        'delivered',
      ],
      satRows,
      'lrrrrrrr',
    ),
  ]
}

/** RSS idle (started, before any traffic), under load and at peak, against a bare Node process. */
function memorySection(report: BenchReport): string[] {
  return [
    '## Memory',
    '',
    `A bare \`node -e\` process waiting takes ${mb(report.bareNodeRss)} MB RSS on this Node. Idle = once the config is ` +
      'loaded and the proxy listening, before any traffic; under load = highest sampled over all its runs; peak = the ' +
      "kernel's maxrss, start-up included.",
    '',
    ...table(
      ['proxy', 'rules', 'RSS idle MB', 'idle − bare node MB', 'RSS under load MB', 'RSS peak MB'],
      report.proxies.map((p) => [
        p.kind,
        int(p.rules),
        mb(p.ready.rssAtStart),
        mb(p.ready.rssAtStart - report.bareNodeRss),
        mb(rssUnderLoad(report, p.kind, p.rules)),
        mb(rssPeak(report, p.kind, p.rules)),
      ]),
      'lrrrrr',
    ),
  ]
}

/** The generator's own cost: whether it, not the proxy, could have limited a run. */
function generatorSection(sat: Summary[], fixed: Summary[]): string[] {
  const rows = [...fixed, ...sat.filter((s) => s.spec.rules === 1000 && COMPARED.includes(s.spec.kind))].map((s) => [
    s.spec.kind,
    String(s.spec.linesPerDatagram),
    s.spec.rate === null ? 'max' : int(s.spec.rate),
    pacingOf(s.spec),
    int(s.generatorDatagramsPerSecond) + (s.generatorShort ? ' (short)' : ''),
    pct(s.generatorCpuShare, 0),
    s.generatorSendUs.toFixed(2),
    int(1e6 / s.generatorSendUs),
  ])
  return [
    '## Load generator',
    '',
    'One Node process, one connected socket, on CPU 0 with the sink. Evenly paced it spins between datagrams (its ' +
      'CPU share is then near 100% whatever the rate; the sink, at a higher priority, preempts it); send µs = wall ' +
      'time in its send loop per datagram sent (spinning excluded; time it was descheduled inside a send included). ' +
      'About 80% of a send is the kernel (loopback delivery into the receiving socket, measured with a bare send loop: ' +
      '4.6–5.8 µs per send, 4.1–4.6 µs of it system time, the same from 1 or 4 sockets), so more sockets do not raise ' +
      'the ceiling; at low rates a send costs more again, as it wakes a sleeping receiver on the other vCPU. The ' +
      "generator's ceiling is the saturation rows: every turn of its loop sends, and the sink shares its core.",
    '',
    ...table(
      [
        'proxy',
        'lines/dgram',
        'offered dgram/s',
        'pacing',
        'sent dgram/s',
        'gen CPU',
        'send µs/dgram',
        '1e6 / send µs',
      ],
      rows,
      'lrrlrrrr',
    ),
  ]
}

function proxiesTable(report: BenchReport): string[] {
  return table(
    [
      'proxy',
      'rules',
      'processes',
      'CPUs allowed',
      'start-up s',
      'RSS at start MB',
      'RSS under load MB',
      'RSS peak MB',
    ],
    report.proxies.map((p) => [
      p.kind,
      int(p.rules),
      String(1 + p.ready.workerPids.length),
      p.cpus,
      (p.ready.startupMs / 1000).toFixed(2),
      mb(p.ready.rssAtStart),
      mb(rssUnderLoad(report, p.kind, p.rules)),
      mb(rssPeak(report, p.kind, p.rules)),
    ]),
    'lrrlrrrr',
  )
}

/** Highest RSS sampled under load over every run of the proxy. */
function rssUnderLoad(report: BenchReport, kind: ProxyKind, rules: number): number {
  return maxOverRuns(report, kind, rules, (r) => r.rssMaxBytes)
}

/** The proxy's lifetime peak, start-up included (loading the config is where a big rule list costs most). */
function rssPeak(report: BenchReport, kind: ProxyKind, rules: number): number {
  return maxOverRuns(report, kind, rules, (r) => r.rssPeakBytes)
}

function maxOverRuns(report: BenchReport, kind: ProxyKind, rules: number, f: (r: RunResult) => number): number {
  return Math.max(0, ...report.all.filter((r) => r.spec.kind === kind && r.spec.rules === rules).map(f))
}

/** The first three columns of the saturation and fixed-rate tables: proxy, rules, lines per datagram. */
function scenarioCells(spec: RunSpec): string[] {
  return [spec.kind, int(spec.rules), String(spec.linesPerDatagram)]
}

function saturationTable(sat: Summary[]): string[] {
  return table(
    [
      'proxy',
      'rules',
      'lines/dgram',
      'lines/s (median)',
      'range',
      'CPU µs/line',
      'per CPU-s',
      'proxy CPU',
      'waited for CPU',
      'RSS max MB',
      'scavenges /M lines',
      'mark-sweeps /M lines',
      'blocked',
      'gen dgram/s',
      'proxy read',
      'delivered',
      'sink lines/dgram',
    ],
    sat.map((s) => [
      ...scenarioCells(s.spec),
      (s.generatorBound ? '≥ ' : '') + int(s.linesPerSecond),
      `${int(s.linesPerSecondMin)} – ${int(s.linesPerSecondMax)}`,
      s.cpuUsPerLine.toFixed(2),
      int(s.linesPerCpuSecond),
      pct(s.cpuShare, 0),
      pct(s.cpuWaitShare, 0),
      mb(s.rssMaxBytes),
      fixedOrNa(s.scavengesPerMLines, 1),
      fixedOrNa(s.markSweepsPerMLines, 2),
      pct(s.blockedShare, 1),
      int(s.generatorDatagramsPerSecond),
      pct(s.proxyReadShare, 1),
      pct(s.deliveredRatio, 1) + (s.droppedLines > 0 ? ` (${int(s.droppedLines)} dropped: no free send buffer)` : ''),
      s.sinkLinesPerDatagram.toFixed(1),
    ]),
    'lrrrrrrrrrrrrrrrr',
  )
}

function fixedTable(fixed: Summary[]): string[] {
  return table(
    [
      'proxy',
      'rules',
      'lines/dgram',
      'offered dgram/s',
      'pacing',
      'achieved',
      'offered lines',
      'surviving (expected)',
      'delivered',
      'delivered ratio',
      'lost',
      'CPU µs/line',
      'proxy CPU',
      'waited for CPU',
      'RSS max MB',
      'scavenges /M lines',
      'mark-sweeps /M lines',
      'sink lines/dgram',
      'latency p50 / p99 µs',
    ],
    fixed.map((s) => [
      ...scenarioCells(s.spec),
      int(s.spec.rate ?? 0),
      pacingOf(s.spec),
      int(s.generatorDatagramsPerSecond) + (s.generatorShort ? ' (short)' : ''),
      int(s.offeredLines),
      int(s.expectedLines),
      int(s.deliveredLines),
      pct(s.deliveredRatio, 3),
      losses(s),
      s.cpuUsPerLine.toFixed(2),
      pct(s.cpuShare, 0),
      pct(s.cpuWaitShare, 0),
      mb(s.rssMaxBytes),
      s.scavengesPerMLines.toFixed(1),
      s.markSweepsPerMLines.toFixed(2),
      s.sinkLinesPerDatagram.toFixed(1),
      latencyText(s),
    ]),
    'lrrrlrrrrrlrrrrrrrr',
  )
}

function searchTable(searches: SearchResult[]): string[] {
  return table(
    [
      'proxy',
      'rules',
      'lines/dgram',
      'capacity on one core, dgram/s',
      'highest sustained dgram/s',
      'lines/s',
      'stopped by',
      'steps: offered dgram/s → delivered',
    ],
    searches.map((s) => [
      s.kind,
      int(s.rules),
      String(s.linesPerDatagram),
      int(s.capacity),
      s.best === null ? `< ${int(s.steps[0]?.run.spec.rate ?? 0)}` : int(s.best),
      s.best === null ? '' : int(s.best * s.linesPerDatagram),
      s.stoppedBy === 'loss'
        ? 'line loss'
        : s.stoppedBy === 'generator'
          ? 'the generator fell short'
          : 'last step passed',
      s.steps
        .map(({ run, passed }) => {
          const note = run.generatorShort ? ' (gen short)' : passed ? '' : ` (lost ${losses(run)})`
          return `${int(run.spec.rate ?? 0)} → ${pct(run.deliveredRatio, 2)}${note}`
        })
        .join(', '),
    ]),
    'lrrrrrll',
  )
}

type Accounting = Pick<RunResult, 'expectedLines' | 'forwardedLines' | 'droppedLines' | 'deliveredLines'>

/**
 * Where surviving lines went missing, as shares of the expected count: before the proxy (the kernel dropped them
 * at its full socket, or they were still queued when the run ended), inside it (no free send buffer), after it
 * (sink's socket, or still in flight at the deadline).
 */
function losses(r: Accounting): string {
  if (r.expectedLines === 0) return ''
  const before = r.expectedLines - r.forwardedLines - r.droppedLines
  const after = r.forwardedLines - r.deliveredLines
  const share = (n: number): string => pct(n / r.expectedLines, 2)
  return `before proxy ${share(before)}, in ${share(r.droppedLines)}, after ${share(after)}`
}

export function specKey(spec: RunSpec): string {
  return `${spec.kind}/${spec.rules}/${spec.linesPerDatagram}/${spec.rate ?? 'max'}/${pacingOf(spec)}`
}

/** 'max' at saturation, where the generator sends as fast as it can. */
function pacingOf(spec: RunSpec): string {
  return spec.rate === null ? 'max' : (spec.pacing ?? 'even')
}

/**
 * Wall-clock figures decide. When only the per-CPU-second figure passes, the proxy was short of CPU (other
 * processes on a shared machine), which the verdict says rather than hides.
 */
function verdict(ok: boolean, okPerCpuSecond?: boolean): string {
  if (ok) return 'PASS'
  return okPerCpuSecond === true ? '**MISS** (PASS per CPU-s: the proxy was short of CPU)' : '**MISS**'
}

/** GC counts of a proxy of several processes are not observed (NaN). */
const fixedOrNa = (n: number, digits: number): string => (Number.isNaN(n) ? 'n/a' : n.toFixed(digits))
