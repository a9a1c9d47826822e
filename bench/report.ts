// Turns the runs into the markdown report: medians per scenario, the targets with a verdict each, the ratios.
import type { RunResult, RunSpec, Timing } from './measure.ts'
import type { ProxyKind, ProxyReady } from './proxy-child.ts'
import { SUSTAINED_RATIO, type SearchResult } from './search.ts'

export interface BenchReport {
  startedAt: Date
  elapsedMs: number
  node: string
  cpu: string
  timing: Timing
  reps: number
  pinned: boolean
  sinkRecvBuffer: number
  saturation: RunResult[]
  fixed: RunResult[]
  searches: SearchResult[]
  /** Every run, search steps included: RSS is a peak over the proxy's whole life. */
  all: RunResult[]
  proxies: { kind: ProxyKind; rules: number; ready: ProxyReady }[]
}

/** The generator-bound threshold: the proxy read (nearly) every datagram, so it was not the bottleneck. */
const READ_ALL = 0.99
const MB = 1024 * 1024

/** Medians of repeated runs of one scenario, each metric on its own (the runs are noisy independently). */
export interface Summary {
  spec: RunSpec
  runs: number
  linesPerSecond: number
  linesPerSecondMin: number
  linesPerSecondMax: number
  cpuUsPerLine: number
  cpuShare: number
  rssMaxBytes: number
  scavengesPerMLines: number
  markSweepsPerMLines: number
  blockedShare: number
  deliveredRatio: number
  offeredLines: number
  expectedLines: number
  deliveredLines: number
  generatorDatagramsPerSecond: number
  proxyReadShare: number
  linesDropped: number
  /** Some run's proxy read nearly all it was sent: its throughput is a floor, set by the generator. */
  generatorBound: boolean
  generatorShort: boolean
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
      cpuShare: med((r) => r.cpuShare),
      rssMaxBytes: Math.max(...runs.map((r) => r.rssMaxBytes)),
      scavengesPerMLines: med((r) => r.scavengesPerMLines),
      markSweepsPerMLines: med((r) => r.markSweepsPerMLines),
      blockedShare: med((r) => r.blockedShare),
      deliveredRatio: med((r) => r.deliveredRatio),
      offeredLines: med((r) => r.offeredLines),
      expectedLines: med((r) => r.expectedLines),
      deliveredLines: med((r) => r.deliveredLines),
      generatorDatagramsPerSecond: med((r) => r.generatorDatagramsPerSecond),
      proxyReadShare: med((r) => r.proxyReadShare),
      linesDropped: runs.reduce((sum, r) => sum + r.linesDropped, 0),
      generatorBound: runs.some((r) => r.spec.rate === null && r.proxyReadShare >= READ_ALL),
      generatorShort: runs.some((r) => r.generatorShort),
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
      `saturation and fixed-rate figures are medians of ${report.reps} runs, ours and naive alternating. ` +
      (report.pinned
        ? 'The proxy under test is pinned to CPU 1; the load generator and the sink share CPU 0. '
        : 'Processes are not pinned: the proxy, the load generator and the sink share the cores. ') +
      `Sink receive buffer: ${(report.sinkRecvBuffer / MB).toFixed(1)} MiB (as reported by the kernel). ` +
      `Whole bench: ${(report.elapsedMs / 60_000).toFixed(1)} min.`,
    '',
  )
  out.push('## Targets', '', ...targets(report, sat, fixed), '')
  out.push(
    '## Proxy processes',
    '',
    'Each proxy loads its rules through the proxy\'s own YAML config loader, in its own process, and lives for the ' +
      'whole bench. Start-up = process start to listening.',
    '',
    ...proxiesTable(report),
    '',
  )
  out.push('## Saturation (the generator sends as fast as it can)', '')
  out.push(
    'lines/s = lines the proxy forwarded or blocked per second (its own counters). Delivered < 100% is expected ' +
      'here: the kernel drops what the proxy cannot read. "proxy read" = datagrams the proxy read / datagrams sent; ' +
      `at ${pct(READ_ALL, 0)} or more the generator, not the proxy, was the limit (marked ≥).`,
    '',
  )
  out.push(...saturationTable(sat), '')
  out.push('## Fixed offered rate', '', ...fixedTable(fixed), '')
  out.push(
    `## Highest sustained rate (≥ ${pct(SUSTAINED_RATIO, 1)} of surviving lines delivered)`,
    '',
    'Stepped up from half of the saturation throughput; a failing step is run twice before it counts. ' +
      'Delivered ratio over the whole run, warm-up included, after the proxy and sink drained.',
    '',
    ...searchTable(report.searches, sat),
    '',
  )
  return out.join('\n')
}

function targets(report: BenchReport, sat: Summary[], fixed: Summary[]): string[] {
  const rows: string[][] = []
  const find = (set: Summary[], kind: ProxyKind, rules: number, lpd: number): Summary | undefined =>
    set.find((s) => s.spec.kind === kind && s.spec.rules === rules && s.spec.linesPerDatagram === lpd)
  const caveat = (...s: (Summary | undefined)[]): string => (s.some((x) => x?.generatorBound) ? ' (generator-bound: a floor)' : '')

  for (const lpd of [1, 10]) {
    const ours = find(sat, 'ours', 1000, lpd)
    const naive = find(sat, 'naive', 1000, lpd)
    if (ours === undefined || naive === undefined) continue
    const ratio = ours.linesPerSecond / naive.linesPerSecond
    rows.push([
      `1. saturation, 1,000 rules, ${lpd} line(s)/datagram: ours / naive`,
      '≥ 3×',
      `${ratio.toFixed(2)}× (${int(ours.linesPerSecond)} vs ${int(naive.linesPerSecond)} lines/s)${caveat(ours)}`,
      verdict(ratio >= 3),
    ])
  }
  for (const lpd of [1, 10]) {
    const big = find(sat, 'ours', 100_000, lpd)
    const small = find(sat, 'ours', 10, lpd)
    if (big === undefined || small === undefined) continue
    const ratio = big.linesPerSecond / small.linesPerSecond
    rows.push([
      `2. saturation, ours, ${lpd} line(s)/datagram: 100,000 rules / 10 rules`,
      'within ±10%',
      `${pct(ratio, 1)} (${int(big.linesPerSecond)} vs ${int(small.linesPerSecond)} lines/s)${caveat(big, small)}`,
      verdict(Math.abs(1 - ratio) <= 0.1),
    ])
  }
  const fOurs = find(fixed, 'ours', 1000, 1)
  const fNaive = find(fixed, 'naive', 1000, 1)
  if (fOurs !== undefined) {
    const rate = fOurs.spec.rate ?? 0
    rows.push([
      `3a. ${int(rate)} datagrams/s × 1 line, 1,000 rules: ours delivered`,
      '≥ 99.9%',
      `${pct(fOurs.deliveredRatio, 3)}${fOurs.generatorShort ? ' (generator fell short of the rate)' : ''}`,
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
  const ours10 = sat.filter((s) => s.spec.kind === 'ours' && s.spec.linesPerDatagram === 10)
  for (const s of ours10) {
    rows.push([
      `4. saturation, ours, 10 lines/datagram, ${int(s.spec.rules)} rules: lines/s on one core`,
      '≥ 1,000,000',
      `${int(s.linesPerSecond)}${caveat(s)} at ${pct(s.cpuShare, 0)} of a core`,
      verdict(s.linesPerSecond >= 1e6),
    ])
  }
  for (const p of report.proxies.filter((x) => x.kind === 'ours')) {
    const peak = rssPeak(report, p.kind, p.rules)
    rows.push([`5. RSS of ours, ${int(p.rules)} rules (peak over all its runs)`, '< 80 MB', `${mb(peak)} MB`, verdict(peak < 80 * MB)])
  }
  return table(['figure', 'target', 'measured', 'verdict'], rows)
}

function proxiesTable(report: BenchReport): string[] {
  return table(
    ['proxy', 'rules', 'start-up s', 'RSS at start MB', 'RSS peak MB'],
    report.proxies.map((p) => [p.kind, int(p.rules), (p.ready.startupMs / 1000).toFixed(2), mb(p.ready.rssAtStart), mb(rssPeak(report, p.kind, p.rules))]),
  )
}

function rssPeak(report: BenchReport, kind: ProxyKind, rules: number): number {
  const start = report.proxies.find((p) => p.kind === kind && p.rules === rules)?.ready.rssAtStart ?? 0
  return Math.max(start, ...report.all.filter((r) => r.spec.kind === kind && r.spec.rules === rules).map((r) => r.rssMaxBytes))
}

function saturationTable(sat: Summary[]): string[] {
  return table(
    ['proxy', 'rules', 'lines/dgram', 'lines/s (median)', 'range', 'CPU µs/line', 'proxy CPU', 'RSS max MB', 'scavenges /M lines', 'mark-sweeps /M lines', 'blocked', 'gen dgram/s', 'proxy read', 'delivered'],
    sat.map((s) => [
      s.spec.kind,
      int(s.spec.rules),
      String(s.spec.linesPerDatagram),
      (s.generatorBound ? '≥ ' : '') + int(s.linesPerSecond),
      `${int(s.linesPerSecondMin)} – ${int(s.linesPerSecondMax)}`,
      s.cpuUsPerLine.toFixed(2),
      pct(s.cpuShare, 0),
      mb(s.rssMaxBytes),
      s.scavengesPerMLines.toFixed(1),
      s.markSweepsPerMLines.toFixed(2),
      pct(s.blockedShare, 1),
      int(s.generatorDatagramsPerSecond),
      pct(s.proxyReadShare, 1),
      pct(s.deliveredRatio, 1) + (s.linesDropped > 0 ? ` (${int(s.linesDropped)} dropped: no free send buffer)` : ''),
    ]),
  )
}

function fixedTable(fixed: Summary[]): string[] {
  return table(
    ['proxy', 'rules', 'lines/dgram', 'offered dgram/s', 'achieved', 'offered lines', 'surviving (expected)', 'delivered', 'delivered ratio', 'CPU µs/line', 'proxy CPU', 'RSS max MB', 'scavenges /M lines', 'mark-sweeps /M lines'],
    fixed.map((s) => [
      s.spec.kind,
      int(s.spec.rules),
      String(s.spec.linesPerDatagram),
      int(s.spec.rate ?? 0),
      int(s.generatorDatagramsPerSecond) + (s.generatorShort ? ' (short)' : ''),
      int(s.offeredLines),
      int(s.expectedLines),
      int(s.deliveredLines),
      pct(s.deliveredRatio, 3),
      s.cpuUsPerLine.toFixed(2),
      pct(s.cpuShare, 0),
      mb(s.rssMaxBytes),
      s.scavengesPerMLines.toFixed(1),
      s.markSweepsPerMLines.toFixed(2),
    ]),
  )
}

function searchTable(searches: SearchResult[], sat: Summary[]): string[] {
  return table(
    ['proxy', 'rules', 'lines/dgram', 'saturation dgram/s', 'highest sustained dgram/s', 'lines/s', 'stopped by', 'steps: offered dgram/s → delivered'],
    searches.map((s) => {
      const seed = sat.find((x) => x.spec.kind === s.kind && x.spec.rules === s.rules && x.spec.linesPerDatagram === s.linesPerDatagram)
      const first = s.steps[0]?.rate ?? 0
      return [
        s.kind,
        int(s.rules),
        String(s.linesPerDatagram),
        seed === undefined ? '' : int(seed.linesPerSecond / s.linesPerDatagram),
        s.best === null ? `< ${int(first)}` : int(s.best),
        s.best === null ? '' : int(s.best * s.linesPerDatagram),
        s.stoppedBy === 'loss' ? 'line loss' : s.stoppedBy === 'generator' ? 'generator could not offer more' : 'last step passed',
        s.steps.map((step) => `${int(step.rate)} → ${pct(step.deliveredRatio, 2)}${step.generatorShort ? ' (gen short)' : ''}`).join(', '),
      ]
    }),
  )
}

function table(header: string[], rows: string[][]): string[] {
  const right = header.map((_, i) => rows.length > 0 && rows.every((r) => /^[≥<]?\s?[\d.,%×]/.test(r[i] ?? '')))
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (right[i] ? ' ---: ' : ' --- ')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ]
}

export function specKey(spec: RunSpec): string {
  return `${spec.kind}/${spec.rules}/${spec.linesPerDatagram}/${spec.rate ?? 'max'}`
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function verdict(ok: boolean): string {
  return ok ? 'PASS' : '**MISS**'
}

export const int = (n: number): string => Math.round(n).toLocaleString('en-US')
export const pct = (ratio: number, digits: number): string => `${(ratio * 100).toFixed(digits)}%`
const mb = (bytes: number): string => (bytes / MB).toFixed(1)
