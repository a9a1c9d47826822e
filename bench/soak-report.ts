// Turns a soak (bench/soak.ts) into its markdown report: the settings, every sample, the memory trend and the
// accounting of every line offered.
import { cpus } from 'node:os'
import type { UdpSocketStats } from '../src/telemetry/kernel-drops.ts'
import { cpuDescription } from './lib/machine.ts'
import type { MachineUdp } from './lib/proc.ts'
import { slope } from './lib/stats.ts'
import { int, loadText, MB, mb, pct, table } from './lib/table.ts'
import type { GeneratorSnapshot } from './load-generator.ts'
import type { ProxyHandle, RunResult } from './measure.ts'
import type { ProxySnapshot } from './proxy-child.ts'
import { proxyWorkers, type ProxyKind } from './proxy-kinds.ts'
import type { SinkSnapshot } from './sink.ts'

export interface Sample {
  /** Since the generator started, ms. */
  t: number
  /** Summed over the proxy's processes (ours-w2), and each process's: [primary, worker 1, worker 2]. */
  rss: number
  processRss: number[]
  /** The primary's alone for ours-w2. */
  heapUsed: number
  /** Proxy CPU time over wall time since the previous sample (summed over its processes: up to 2 on 2 cores). */
  cpuShare: number
  /** Share of that wall time the proxy was ready to run but another process had its CPU (schedstat; summed). */
  cpuWaitShare: number
  /** The machine's 1-minute load average at the sample. */
  load1: number
  /** Datagrams the generator sent per second since the previous sample. */
  generatorRate: number
  // Cumulative since the soak started (the saturation runs before it excluded).
  offeredLines: number
  expectedLines: number
  linesIn: number
  forwarded: number
  blocked: number
  kernelDrops: number
  delivered: number
}

export interface SoakSettings {
  kind: ProxyKind
  rules: number
  linesPerDatagram: number
  minutes: number
  /** Datagrams/s offered. */
  rate: number
  /** Of the saturation rate (when it was measured). */
  loadShare: number
  sampleMs: number
  /** Samples before this are warm-up: the slopes leave them out. */
  warmupMs: number
  saturationRuns: number
  /** The generator and the sink pinned to CPU 0; proxyPinned: the proxy to CPU 1. */
  pin: boolean
  proxyPinned: boolean
}

/** What the soak measured: the samples, and the counters at its start (p0, s0) and after the drain (pEnd, sEnd). */
export interface SoakResult {
  samples: Sample[]
  p0: ProxySnapshot
  s0: SinkSnapshot
  pEnd: ProxySnapshot
  sEnd: SinkSnapshot
  gEnd: GeneratorSnapshot
  soakSeconds: number
  /** Before and after: the sink's socket, and the machine-wide UDP counters. */
  sinkSocket: [UdpSocketStats | null, UdpSocketStats | null]
  machine: [MachineUdp | null, MachineUdp | null]
}

export interface SoakReport {
  startedAt: Date
  node: string
  settings: SoakSettings
  proxy: ProxyHandle
  /** null when the rate was given (--rate). */
  saturation: { rate: number; runs: RunResult[] } | null
  /** os.loadavg() at the start and at the end. */
  load: { start: number[]; end: number[] }
  result: SoakResult
}

const drops = (s: ProxySnapshot): number => s.kernel?.drops ?? 0

/** Lines offered that the proxy did not count and the kernel did not drop at its socket: must be 0. */
export function lostUnaccounted(r: SoakResult, linesPerDatagram: number): number {
  const linesIn = r.pEnd.counters.linesIn - r.p0.counters.linesIn
  return r.gEnd.lines - (linesIn + (drops(r.pEnd) - drops(r.p0)) * linesPerDatagram)
}

export function renderSoak(report: SoakReport): string {
  return [...header(report), ...samplesSection(report), ...memorySection(report), ...accountingSection(report)].join(
    '\n',
  )
}

const isMultiProcess = (s: SoakSettings): boolean => proxyWorkers(s.kind) > 1
const processCount = (report: SoakReport): number => 1 + report.proxy.ready.workerPids.length

function header(report: SoakReport): string[] {
  const { settings: s, proxy, saturation, result, startedAt } = report
  const multiProcess = isMultiProcess(s)
  const processes = processCount(report)
  const workers = proxyWorkers(s.kind)
  const loaded = result.samples.slice(1)
  const load1 = loaded.map((x) => x.load1)
  const achieved = result.gEnd.datagrams / result.soakSeconds
  const sumNote = multiProcess ? ` (sum over its ${processes} processes)` : ''
  const proxyText = multiProcess
    ? `Proxy: ${s.kind} = ours with \`workers: ${workers}\` (a cluster primary and ${workers} worker processes sharing the one listen socket), ` +
      `${int(s.rules)} rules, production V8 flags, not pinned (CPUs allowed: ${proxy.cpus}): its processes may run on every core` +
      (s.pin
        ? ', CPU 0 included, which the generator and the sink are pinned to. '
        : ', as may the generator and the sink. ') +
      `Its CPU, waited-for-CPU and RSS figures are sums over the ${processes} processes (RSS also shown process by process); ` +
      "its heap figure is the primary's alone and its GC counts are n/a: the workers' heaps and collections are not observable from the bench. "
    : `Proxy: ${s.kind}, ${int(s.rules)} rules, production V8 flags, ` +
      (s.proxyPinned ? 'pinned to CPU 1 (the generator and the sink share CPU 0). ' : 'not pinned. ')
  return [
    `# statsd-filter-proxy soak${multiProcess ? ` (${s.kind}: \`workers: ${workers}\`)` : ''}, ${startedAt.toISOString()}`,
    '',
    `Node ${report.node}, ${cpuDescription()}. ` +
      proxyText +
      `Load: ${s.linesPerDatagram} line(s) per datagram, ${int(s.rate)} datagrams/s ` +
      (saturation === null
        ? '(given with --rate). '
        : `= ${pct(s.loadShare, 0)} of ${int(saturation.rate)} datagrams/s, the median of ${s.saturationRuns} saturation runs of ${s.kind} ` +
          `(${saturation.runs.map((r) => int(r.linesPerSecond / s.linesPerDatagram)).join(', ')}; proxy CPU${sumNote} ${saturation.runs.map((r) => pct(r.cpuShare, 0)).join(', ')}, waited for CPU ${saturation.runs.map((r) => pct(r.cpuWaitShare, 0)).join(', ')}). `) +
      `Soak: ${s.minutes} min (${result.soakSeconds.toFixed(0)} s), a sample every ${s.sampleMs / 1000} s; the generator achieved ${int(achieved)} datagrams/s ` +
      `(${int(result.gEnd.due - result.gEnd.datagrams)} datagrams behind schedule at the end). ` +
      `Load average (1/5/15 min) ${loadText(report.load.start)} at the start, ${loadText(report.load.end)} at the end; the 1-minute figure ranged ` +
      `${load1.length === 0 ? 'n/a' : `${Math.min(...load1).toFixed(2)} – ${Math.max(...load1).toFixed(2)}`} over the samples under load (this machine is shared). ` +
      `MB = 10⁶ bytes. Whole run: ${((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)} min.`,
    '',
  ]
}

/** Per process (ours-w2): [primary, worker 1, worker 2]; [] for a single process. */
function processNames(report: SoakReport): string[] {
  return isMultiProcess(report.settings)
    ? ['primary', ...report.proxy.ready.workerPids.map((_, i) => `worker ${i + 1}`)]
    : []
}

function samplesSection(report: SoakReport): string[] {
  const { settings: s } = report
  const multiProcess = isMultiProcess(s)
  const names = processNames(report)
  return [
    '## Samples',
    '',
    'Counts are cumulative from the start of the soak (the saturation runs before it are excluded). Kernel drops = datagrams ' +
      `the kernel discarded at the proxy's listen socket (its receive queue was full), from /proc/net/udp; × ${s.linesPerDatagram} for lines. ` +
      'Delivered = lines the sink received so far; expected = surviving lines the generator had sent so far (a few ms of ' +
      'lines are always in flight). Proxy CPU = its CPU time over wall time, waited = the share of the time it was ready ' +
      'to run while another process had its CPU (the machine is shared), gen = datagrams/s the generator sent; all three ' +
      'over the interval since the previous sample. ' +
      (multiProcess
        ? `For ${s.kind}, RSS, proxy CPU and waited are sums over the primary and the workers (CPU up to ${pct(cpus().length, 0)} on ` +
          `${cpus().length} cores; waited counts each process's main thread), RSS per process is primary / worker 1 / worker 2, ` +
          "heap is the primary's alone, and lines in, forwarded and blocked are the workers' counters summed (as the primary " +
          'collects them). '
        : '') +
      "Load = the machine's 1-minute load average. Row 0 is before the load starts.",
    '',
    ...table(
      [
        'time s',
        multiProcess ? 'RSS MB (sum)' : 'RSS MB',
        ...(multiProcess ? [`RSS MB ${names.join(' / ')}`] : []),
        multiProcess ? 'primary heap MB' : 'heap MB',
        multiProcess ? 'proxy CPU (sum)' : 'proxy CPU',
        multiProcess ? 'waited for CPU (sum)' : 'waited for CPU',
        'load',
        'gen dgram/s',
        'offered lines',
        'lines in',
        'forwarded',
        'blocked',
        'kernel drops',
        'delivered so far',
        'expected so far',
      ],
      report.result.samples.map((x) => [
        (x.t / 1000).toFixed(0),
        mb(x.rss),
        ...(multiProcess ? [x.processRss.map(mb).join(' / ')] : []),
        mb(x.heapUsed),
        x.t === 0 ? '' : pct(x.cpuShare, 0),
        x.t === 0 ? '' : pct(x.cpuWaitShare, 0),
        x.load1.toFixed(2),
        x.t === 0 ? '' : int(x.generatorRate),
        int(x.offeredLines),
        int(x.linesIn),
        int(x.forwarded),
        int(x.blocked),
        int(x.kernelDrops),
        int(x.delivered),
        int(x.expectedLines),
      ]),
    ),
    '',
  ]
}

function memorySection(report: SoakReport): string[] {
  const { settings: s, proxy, result } = report
  const { samples, p0, pEnd } = result
  const multiProcess = isMultiProcess(s)
  const names = processNames(report)
  const warm = samples.filter((x) => x.t >= s.warmupMs)
  const loaded = samples.slice(1)
  const first = samples[0]
  const last = samples[samples.length - 1]
  /** MB per hour of a figure, by least squares over the samples given. */
  const slopeOf = (xs: Sample[], f: (x: Sample) => number): number | null =>
    slope(xs.map((x) => ({ x: x.t / 3_600_000, y: f(x) / MB })))
  const perHour = (v: number | null): string =>
    v === null ? 'n/a (fewer than 2 samples)' : `${v >= 0 ? '+' : ''}${v.toFixed(2)} MB/h`
  const range = (xs: Sample[], f: (x: Sample) => number): string =>
    xs.length === 0 ? 'n/a' : `${mb(Math.min(...xs.map(f)))} – ${mb(Math.max(...xs.map(f)))} MB`
  const memoryRow = (name: string, f: (x: Sample) => number): string[] => [
    name,
    perHour(slopeOf(warm, f)),
    perHour(slopeOf(loaded, f)),
    range(warm, f),
    `${mb(f(first))} MB`,
    `${mb(f(last))} MB`,
  ]
  const processRssOf =
    (i: number) =>
    (x: Sample): number =>
      x.processRss[i] ?? 0
  return [
    '## Memory trend',
    '',
    `Least-squares slope over the ${warm.length} samples after the first minute (warm-up excluded), and over all ${loaded.length} samples under load for comparison.`,
    '',
    ...table(
      [
        '',
        'slope after warm-up',
        'slope, all samples under load',
        'range after warm-up',
        'at start (before load)',
        'last sample',
      ],
      [
        memoryRow(multiProcess ? `RSS, sum of the ${processCount(report)} processes` : 'RSS', (x) => x.rss),
        ...names.map((name, i) =>
          memoryRow(
            `– RSS, ${name} (pid ${i === 0 ? proxy.child.pid : proxy.ready.workerPids[i - 1]})`,
            processRssOf(i),
          ),
        ),
        memoryRow(
          multiProcess ? "heap used, primary only (the workers' heaps are not observable)" : 'heap used',
          (x) => x.heapUsed,
        ),
      ],
    ),
    '',
    multiProcess
      ? "Proxy GCs during the soak: n/a (the workers' collections are not observable from the bench, and the primary's alone " +
        "would say nothing about the data path); RSS peak over the proxy's life, the sum of each process's own peak (the primary's " +
        "ru_maxrss, each worker's VmHWM; reached at different moments, so an upper bound on their sum at any one moment; start-up and " +
        `saturation runs included): ${mb(pEnd.rssPeak)} MB.`
      : `Proxy GCs during the soak: ${int(pEnd.gcMinor - p0.gcMinor)} scavenges, ${int(pEnd.gcMajor - p0.gcMajor)} mark-sweeps; ` +
        `RSS peak over the proxy's life (ru_maxrss, start-up and saturation runs included): ${mb(pEnd.rssPeak)} MB.`,
    '',
  ]
}

/** Accounting, from the generator's counts and the proxy's and kernel's after the drain. */
function accountingSection(report: SoakReport): string[] {
  const { settings: s, result } = report
  const { p0, s0, pEnd, sEnd, gEnd } = result
  const multiProcess = isMultiProcess(s)
  const c0 = p0.counters
  const c1 = pEnd.counters
  const linesIn = c1.linesIn - c0.linesIn
  const kernelDropDatagrams = drops(pEnd) - drops(p0)
  const lost = lostUnaccounted(result, s.linesPerDatagram)
  const forwarded = c1.linesForwarded - c0.linesForwarded
  const blocked = c1.linesBlocked - c0.linesBlocked
  const malformed = c1.linesMalformed - c0.linesMalformed
  const droppedInProxy = c1.linesDropped - c0.linesDropped
  const delivered = sEnd.lines - s0.lines
  /** Each worker's lines in during the soak (ours-w2). */
  const workerLinesIn = pEnd.workerLinesIn?.map((n, i) => n - (p0.workerLinesIn?.[i] ?? 0)) ?? null
  const expected = gEnd.survivors
  const share = (n: number): string => (expected === 0 ? '' : ` (${pct(n / expected, 4)})`)
  const [sinkSocket0, sinkSocket1] = result.sinkSocket
  const rows: string[][] = [
    [
      'lines offered by the generator',
      int(gEnd.lines),
      `${int(gEnd.datagrams)} datagrams; ${int(gEnd.sendErrors)} send errors`,
    ],
    [
      multiProcess
        ? `lines counted by the proxy (lines in, its ${proxyWorkers(s.kind)} workers summed)`
        : 'lines counted by the proxy (lines in)',
      int(linesIn),
      `${int(forwarded)} forwarded + ${int(blocked)} blocked + ${int(malformed)} malformed + ${int(droppedInProxy)} dropped for want of a send buffer` +
        (workerLinesIn === null
          ? ''
          : `; by worker: ${workerLinesIn.map((n) => `${int(n)} (${pct(linesIn === 0 ? 0 : n / linesIn, 1)})`).join(', ')}`),
    ],
    [
      'kernel drops at the proxy socket',
      int(kernelDropDatagrams * s.linesPerDatagram),
      `${int(kernelDropDatagrams)} datagrams × ${s.linesPerDatagram}; ${pEnd.kernel === null ? 'no /proc/net/udp' : `${pEnd.kernel.sockets} socket(s) on the port`}` +
        (multiProcess ? " (the primary's, which the workers share)" : ''),
    ],
    [
      '**lost unaccounted** = offered − (lines in + kernel drops)',
      `**${int(lost)}**`,
      lost === 0 ? 'PASS' : '**FAIL**',
    ],
    ['surviving lines expected at the sink', int(expected), 'lines the generator sent that no rule blocks'],
    ['delivered to the sink', int(delivered), `${expected === 0 ? '' : pct(delivered / expected, 4)} of expected`],
    [
      '– lost before the proxy (kernel drops of surviving lines)',
      int(expected - forwarded - droppedInProxy),
      share(expected - forwarded - droppedInProxy).trim(),
    ],
    ['– dropped in the proxy (no free send buffer)', int(droppedInProxy), share(droppedInProxy).trim()],
    [
      '– lost after the proxy (forwarded, not delivered)',
      int(forwarded - delivered),
      `${share(forwarded - delivered).trim()}; sink socket kernel drops: ${sinkSocket0 === null || sinkSocket1 === null ? 'n/a' : `${int(sinkSocket1.drops - sinkSocket0.drops)} datagrams`}`,
    ],
  ]
  const [machine0, machine1] = result.machine
  if (machine0 !== null && machine1 !== null) {
    rows.push([
      'machine-wide, for reference (every process)',
      '',
      `UDP RcvbufErrors +${int(machine1.rcvbufErrors - machine0.rcvbufErrors)}, InErrors +${int(machine1.inErrors - machine0.inErrors)}, ` +
        `softnet backlog drops +${int(machine1.backlogDrops - machine0.backlogDrops)}`,
    ])
  }
  return [
    '## Accounting',
    '',
    "After the generator stopped, the proxy was drained (its socket queue empty, its counters and the sink's quiet). " +
      'Every line offered must have been either read by the proxy (its lines in) or dropped by the kernel at its socket.',
    '',
    ...table(['', 'lines', ''], rows),
    '',
  ]
}
