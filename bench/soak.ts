// Soak: our proxy (1,000 rules, as shipped) carries a steady 80% of its saturation rate for minutes while its memory,
// its counters and the kernel's drop count for its listen socket are sampled every 10 s. The report says whether
// memory grows (least-squares slopes after a warm-up minute) and whether every line offered is accounted for.
// Prints a markdown report on stdout (progress goes to stderr) and writes it to bench/results/soak-<ISO>.md
// (soak-w2-<ISO>.md for --kind ours-w2).
//
// --kind ours-w2 soaks the proxy with `workers: 2`: a cluster primary and two worker processes on the one shared
// listen socket, not pinned (they may run on every core, the generator and the sink's included). Its CPU, wait and
// RSS figures are sums over the three processes (RSS also process by process); its heap figure is the primary's
// alone and its GC counts are not reported (the workers' heaps and collections are not observable from the bench);
// its line counters are the workers' summed, and the kernel's drops are the shared socket's.
//
//   npm run bench:soak                              10 minutes at 80% of a saturation rate measured first (about 11 minutes)
//   node dist/bench/soak.js --minutes 1             a quick check
//   node dist/bench/soak.js --kind ours-w2          the same for the 2-worker proxy
//   options: --kind <ours|ours-w2> --minutes <m> --rate <datagrams/s> (skip the saturation runs)
//            --lines <lines per datagram, 1 or 10> --node <path to another node binary> --no-pin
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { readUdpSocketStats } from '../src/telemetry/kernel-drops.ts'
import { runEntryPoint, saveReport, type Child } from './ipc.ts'
import type { GeneratorSnapshot, GeneratorTarget } from './load-generator.ts'
import { Bench, DELIVERY_GRACE_MS, hasTaskset, sleep, type RunResult } from './measure.ts'
import type { ProxySnapshot } from './proxy-child.ts'
import { proxyWorkers, type ProxyKind } from './proxy-kinds.ts'
import { int, pct } from './report.ts'
import type { SinkSnapshot } from './sink.ts'

const RULES = 1000
/** Of the rate the proxy reached at saturation. */
const LOAD_SHARE = 0.8
const SAMPLE_MS = 10_000
/** Samples before this are warm-up: the slopes leave them out. */
const WARMUP_MS = 60_000
/** Saturation: this many short runs, the median taken (a shared machine makes any one run noisy). */
const SATURATION_RUNS = 3
const SATURATION_TIMING = { warmupMs: 500, measureMs: 2000 }
/** Drained means the proxy's socket queue is empty and neither it nor the sink counted anything new for this long. */
const QUIET_MS = 300
const DRAIN_LIMIT_MS = 30_000
/** Decimal, as in bench/report.ts. */
const MB = 1e6
/** The kinds a soak runs, and the prefix of their report's file name. */
const SOAK_KINDS: Readonly<Partial<Record<ProxyKind, string>>> = { ours: 'soak-', 'ours-w2': 'soak-w2-' }

const { values: flags } = parseArgs({
  options: {
    kind: { type: 'string', default: 'ours' },
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string' },
    lines: { type: 'string', default: '1' },
    node: { type: 'string', default: process.execPath },
    'no-pin': { type: 'boolean', default: false },
  },
})
const kindArg = flags.kind ?? 'ours'
if (!Object.hasOwn(SOAK_KINDS, kindArg)) throw new Error(`--kind: expected ${Object.keys(SOAK_KINDS).join(' or ')}, got ${kindArg}`)
const kind = kindArg as ProxyKind
/** ours-w2: several processes, never pinned; heap and GCs observed for the primary only. */
const multiProcess = proxyWorkers(kind) > 1
const minutes = Number(flags.minutes)
if (!(minutes > 0 && minutes <= 180)) throw new Error(`--minutes: expected a number in (0, 180], got ${flags.minutes}`)
const linesPerDatagram = Number(flags.lines)
if (linesPerDatagram !== 1 && linesPerDatagram !== 10) throw new Error(`--lines: expected 1 or 10, got ${flags.lines}`)
const fixedRate = flags.rate === undefined ? null : Number(flags.rate)
if (fixedRate !== null && !(Number.isInteger(fixedRate) && fixedRate >= 1 && fixedRate <= 10_000_000)) {
  throw new Error(`--rate: expected datagrams per second, an integer from 1 to 10,000,000, got ${flags.rate}`)
}
const nodeBinary = flags.node ?? process.execPath
const pin = !flags['no-pin'] && cpus().length >= 2 && hasTaskset()
const soakMs = Math.round(minutes * 60_000)
/** Start-up, the saturation runs, the soak and the drain; whatever wedges, the soak ends by itself. */
const HARD_LIMIT_MS = soakMs + 5 * 60_000

interface Sample {
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

/** Machine-wide counters a lost datagram could show up in if not in the proxy socket's own drop count. */
interface MachineUdp {
  /** /proc/net/snmp Udp: InErrors, RcvbufErrors (every UDP socket on the machine). */
  inErrors: number
  rcvbufErrors: number
  /** /proc/net/softnet_stat, column 2 summed over CPUs: packets dropped because a CPU's input backlog was full. */
  backlogDrops: number
}

function readMachineUdp(): MachineUdp | null {
  try {
    const snmp = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'))
    const names = snmp[0].split(/\s+/)
    const values = snmp[1].split(/\s+/).map(Number)
    const field = (name: string): number => values[names.indexOf(name)] ?? 0
    let backlogDrops = 0
    for (const line of readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n')) backlogDrops += parseInt(line.trim().split(/\s+/)[1], 16)
    return { inErrors: field('InErrors'), rcvbufErrors: field('RcvbufErrors'), backlogDrops }
  } catch {
    return null // not Linux
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Least-squares slope of y over x; null for fewer than two points. */
function slope(points: readonly { x: number; y: number }[]): number | null {
  if (points.length < 2) return null
  const mx = points.reduce((s, p) => s + p.x, 0) / points.length
  const my = points.reduce((s, p) => s + p.y, 0) / points.length
  let num = 0
  let den = 0
  for (const p of points) {
    num += (p.x - mx) * (p.y - my)
    den += (p.x - mx) ** 2
  }
  return den === 0 ? null : num / den
}

const mb = (bytes: number): string => (bytes / MB).toFixed(1)
const drops = (s: ProxySnapshot): number => s.kernel?.drops ?? 0

async function measureSaturation(bench: Bench): Promise<{ rate: number; runs: RunResult[] }> {
  const runs: RunResult[] = []
  for (let i = 0; i < SATURATION_RUNS; i++) {
    const r = await bench.run({ kind, rules: RULES, linesPerDatagram, rate: null }, SATURATION_TIMING)
    console.error(
      `soak: saturation run ${i + 1}/${SATURATION_RUNS}: ${int(r.linesPerSecond)} lines/s, proxy CPU ${pct(r.cpuShare, 0)} ` +
        `(waited ${pct(r.cpuWaitShare, 0)}), proxy read ${pct(r.proxyReadShare, 1)} of ${int(r.generatorDatagramsPerSecond)} dgram/s sent`,
    )
    runs.push(r)
  }
  return { rate: median(runs.map((r) => r.linesPerSecond)) / linesPerDatagram, runs }
}

/** Until the proxy's socket queue is empty and neither the proxy nor the sink counts anything new. */
async function drain(bench: Bench, proxy: Child): Promise<void> {
  const deadline = Date.now() + DRAIN_LIMIT_MS
  let last = { proxy: -1, sink: -1 }
  for (;;) {
    const [p, s] = await Promise.all([proxy.call<ProxySnapshot>('snapshot'), bench.sink.call<SinkSnapshot>('snapshot')])
    const now = { proxy: p.counters.datagramsIn, sink: s.lines }
    if (now.proxy === last.proxy && now.sink === last.sink && (p.kernel?.rxQueue ?? 0) === 0) return
    if (Date.now() > deadline) throw new Error(`the proxy was still draining after ${DRAIN_LIMIT_MS} ms`)
    last = now
    await sleep(QUIET_MS)
  }
}

async function main(): Promise<void> {
  const startedAt = new Date()
  const loadAtStart = loadavg()
  const bench = await Bench.start(nodeBinary, pin)
  const node = execFileSync(nodeBinary, ['--version'], { encoding: 'utf8' }).trim()
  const proxy = await bench.proxy(kind, RULES)
  const processes = 1 + proxy.ready.workerPids.length
  if (processes !== proxyWorkers(kind) + (multiProcess ? 1 : 0)) throw new Error(`${kind}: expected ${proxyWorkers(kind)} worker(s), got pids ${proxy.ready.workerPids.join(', ')}`)
  // Bench pins a single-process proxy to CPU 1 (with pin); never one of several processes.
  const proxyPinned = pin && !multiProcess
  console.error(
    `soak: node ${node}, ${kind} with ${int(RULES)} rules up in ${(proxy.ready.startupMs / 1000).toFixed(2)} s, ${processes} process(es), ` +
      `proxy pinned: ${proxyPinned} (CPUs allowed: ${proxy.cpus}), generator and sink pinned to CPU 0: ${pin}, ` +
      `load average ${loadAtStart.map((x) => x.toFixed(2)).join(' ')}`,
  )

  let saturation: { rate: number; runs: RunResult[] } | null = null
  let rate: number
  if (fixedRate === null) {
    saturation = await measureSaturation(bench)
    rate = Math.round(saturation.rate * LOAD_SHARE)
  } else {
    rate = fixedRate
  }
  console.error(`soak: offering ${int(rate)} datagrams/s × ${linesPerDatagram} line(s) for ${minutes} min, a sample every ${SAMPLE_MS / 1000} s`)

  const target: GeneratorTarget = { port: proxy.ready.port, rules: RULES, linesPerDatagram }
  await bench.generator.call('configure', target, 30_000)
  const sinkSocket0 = await readUdpSocketStats(bench.sinkPort)
  const machine0 = readMachineUdp()
  const [p0, s0] = await Promise.all([proxy.child.call<ProxySnapshot>('snapshot'), bench.sink.call<SinkSnapshot>('snapshot')])
  const sample = (t: number, g: GeneratorSnapshot | null, p: ProxySnapshot, prev: { p: ProxySnapshot; g: GeneratorSnapshot | null }, s: SinkSnapshot): Sample => {
    const wallS = (p.timeNs - prev.p.timeNs) / 1e9
    const cpuUs = p.cpuUserUs + p.cpuSystemUs - (prev.p.cpuUserUs + prev.p.cpuSystemUs)
    const genS = g === null || prev.g === null ? 0 : (g.timeNs - prev.g.timeNs) / 1e9
    return {
      t,
      rss: p.rss,
      processRss: p.processRss,
      heapUsed: p.heapUsed,
      load1: loadavg()[0],
      cpuShare: wallS > 0 ? cpuUs / 1e6 / wallS : 0,
      cpuWaitShare: wallS > 0 ? (p.runQueueWaitNs - prev.p.runQueueWaitNs) / 1e9 / wallS : 0,
      // The first interval starts when the generator did (its counts start at 0 then).
      generatorRate: g === null ? 0 : prev.g === null ? g.datagrams / (t / 1000) : genS === 0 ? 0 : (g.datagrams - prev.g.datagrams) / genS,
      offeredLines: g?.lines ?? 0,
      expectedLines: g?.survivors ?? 0,
      linesIn: p.counters.linesIn - p0.counters.linesIn,
      forwarded: p.counters.linesForwarded - p0.counters.linesForwarded,
      blocked: p.counters.linesBlocked - p0.counters.linesBlocked,
      kernelDrops: drops(p) - drops(p0),
      delivered: s.lines - s0.lines,
    }
  }
  const samples: Sample[] = [sample(0, null, p0, { p: p0, g: null }, s0)]
  const progress = (x: Sample): void =>
    console.error(
      `soak: ${String(Math.round(x.t / 1000)).padStart(5)} s  RSS ${mb(x.rss).padStart(6)} MB${multiProcess ? ` (${x.processRss.map(mb).join(' + ')})` : ''}  ` +
        `${multiProcess ? 'primary heap' : 'heap'} ${mb(x.heapUsed).padStart(6)} MB  load ${x.load1.toFixed(2)}  ` +
        `CPU ${pct(x.cpuShare, 0).padStart(4)} (waited ${pct(x.cpuWaitShare, 0).padStart(3)})  gen ${int(x.generatorRate).padStart(8)} dgram/s  in ${int(x.linesIn).padStart(12)}  ` +
        `kernel drops ${int(x.kernelDrops)}  delivered ${x.expectedLines === 0 ? '-' : pct(x.delivered / x.expectedLines, 3)}`,
    )
  progress(samples[0])

  await bench.generator.call('start', rate)
  const t0 = Date.now()
  let prev = { p: p0, g: null as GeneratorSnapshot | null }
  for (let k = 1; ; k++) {
    const at = Math.min(k * SAMPLE_MS, soakMs)
    await sleep(t0 + at - Date.now())
    const [g, p, s] = await Promise.all([
      bench.generator.call<GeneratorSnapshot>('snapshot'),
      proxy.child.call<ProxySnapshot>('snapshot'),
      bench.sink.call<SinkSnapshot>('snapshot'),
    ])
    if (g.sendErrors > 0) throw new Error(`${g.sendErrors} sends to the proxy failed; is it still running?`)
    const x = sample(Date.now() - t0, g, p, prev, s)
    samples.push(x)
    progress(x)
    prev = { p, g }
    if (at >= soakMs) break
  }
  const gEnd = await bench.generator.call<GeneratorSnapshot>('stop')
  const soakSeconds = (Date.now() - t0) / 1000
  await sleep(DELIVERY_GRACE_MS)
  await drain(bench, proxy.child)
  const [pEnd, sEnd] = await Promise.all([proxy.child.call<ProxySnapshot>('snapshot'), bench.sink.call<SinkSnapshot>('snapshot')])
  const sinkSocket1 = await readUdpSocketStats(bench.sinkPort)
  const machine1 = readMachineUdp()
  const loadAtEnd = loadavg()
  if (pEnd.processes !== processes) throw new Error(`${kind}: ${processes} processes at the start, ${pEnd.processes} at the end`)

  // Accounting, from the generator's counts and the proxy's and kernel's after the drain.
  const c0 = p0.counters
  const c1 = pEnd.counters
  const linesIn = c1.linesIn - c0.linesIn
  const kernelDropDatagrams = drops(pEnd) - drops(p0)
  const kernelDropLines = kernelDropDatagrams * linesPerDatagram
  const lostUnaccounted = gEnd.lines - (linesIn + kernelDropLines)
  const forwarded = c1.linesForwarded - c0.linesForwarded
  const blocked = c1.linesBlocked - c0.linesBlocked
  const malformed = c1.linesMalformed - c0.linesMalformed
  const droppedInProxy = c1.linesDropped - c0.linesDropped
  const delivered = sEnd.lines - s0.lines
  /** Each worker's lines in during the soak (ours-w2). */
  const workerLinesIn = pEnd.workerLinesIn?.map((n, i) => n - (p0.workerLinesIn?.[i] ?? 0)) ?? null
  const expected = gEnd.survivors

  const warm = samples.filter((x) => x.t >= WARMUP_MS)
  const hours = (x: Sample): number => x.t / 3_600_000
  const rssSlope = slope(warm.map((x) => ({ x: hours(x), y: x.rss / MB })))
  /** Per process (ours-w2): [primary, worker 1, worker 2]. */
  const processNames = multiProcess ? ['primary', ...proxy.ready.workerPids.map((_, i) => `worker ${i + 1}`)] : []
  const heapSlope = slope(warm.map((x) => ({ x: hours(x), y: x.heapUsed / MB })))
  const loaded = samples.slice(1)
  const rssSlopeAll = slope(loaded.map((x) => ({ x: hours(x), y: x.rss / MB })))
  const heapSlopeAll = slope(loaded.map((x) => ({ x: hours(x), y: x.heapUsed / MB })))
  const processRssOf = (i: number) => (x: Sample): number => x.processRss[i] ?? 0
  const processRssSlopes = processNames.map((_, i) => slope(warm.map((x) => ({ x: hours(x), y: processRssOf(i)(x) / MB }))))
  const processRssSlopesAll = processNames.map((_, i) => slope(loaded.map((x) => ({ x: hours(x), y: processRssOf(i)(x) / MB }))))
  const perHour = (v: number | null): string => (v === null ? 'n/a (fewer than 2 samples)' : `${v >= 0 ? '+' : ''}${v.toFixed(2)} MB/h`)
  const achieved = gEnd.datagrams / soakSeconds

  const load1 = loaded.map((x) => x.load1)
  const loadText = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' / ')
  const sumNote = multiProcess ? ` (sum over its ${processes} processes)` : ''

  const out: string[] = []
  out.push(`# statsd-filter-proxy soak${multiProcess ? ` (${kind}: \`workers: ${proxyWorkers(kind)}\`)` : ''}, ${startedAt.toISOString()}`, '')
  const proxyText = multiProcess
    ? `Proxy: ${kind} = ours with \`workers: ${proxyWorkers(kind)}\` (a cluster primary and ${proxyWorkers(kind)} worker processes sharing the one listen socket), ` +
      `${int(RULES)} rules, production V8 flags, not pinned (CPUs allowed: ${proxy.cpus}): its processes may run on every core` +
      (pin ? ', CPU 0 included, which the generator and the sink are pinned to. ' : ', as may the generator and the sink. ') +
      `Its CPU, waited-for-CPU and RSS figures are sums over the ${processes} processes (RSS also shown process by process); ` +
      "its heap figure is the primary's alone and its GC counts are n/a: the workers' heaps and collections are not observable from the bench. "
    : `Proxy: ${kind}, ${int(RULES)} rules, production V8 flags, ` + (proxyPinned ? 'pinned to CPU 1 (the generator and the sink share CPU 0). ' : 'not pinned. ')
  out.push(
    `Node ${node}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}. ` +
      proxyText +
      `Load: ${linesPerDatagram} line(s) per datagram, ${int(rate)} datagrams/s ` +
      (saturation === null
        ? '(given with --rate). '
        : `= ${pct(LOAD_SHARE, 0)} of ${int(saturation.rate)} datagrams/s, the median of ${SATURATION_RUNS} saturation runs of ${kind} ` +
          `(${saturation.runs.map((r) => int(r.linesPerSecond / linesPerDatagram)).join(', ')}; proxy CPU${sumNote} ${saturation.runs.map((r) => pct(r.cpuShare, 0)).join(', ')}, waited for CPU ${saturation.runs.map((r) => pct(r.cpuWaitShare, 0)).join(', ')}). `) +
      `Soak: ${minutes} min (${soakSeconds.toFixed(0)} s), a sample every ${SAMPLE_MS / 1000} s; the generator achieved ${int(achieved)} datagrams/s ` +
      `(${int(gEnd.due - gEnd.datagrams)} datagrams behind schedule at the end). ` +
      `Load average (1/5/15 min) ${loadText(loadAtStart)} at the start, ${loadText(loadAtEnd)} at the end; the 1-minute figure ranged ` +
      `${load1.length === 0 ? 'n/a' : `${Math.min(...load1).toFixed(2)} – ${Math.max(...load1).toFixed(2)}`} over the samples under load (this machine is shared). ` +
      `MB = 10⁶ bytes. Whole run: ${((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)} min.`,
    '',
  )

  out.push('## Samples', '')
  out.push(
    'Counts are cumulative from the start of the soak (the saturation runs before it are excluded). Kernel drops = datagrams ' +
      `the kernel discarded at the proxy's listen socket (its receive queue was full), from /proc/net/udp; × ${linesPerDatagram} for lines. ` +
      'Delivered = lines the sink received so far; expected = surviving lines the generator had sent so far (a few ms of ' +
      'lines are always in flight). Proxy CPU = its CPU time over wall time, waited = the share of the time it was ready ' +
      'to run while another process had its CPU (the machine is shared), gen = datagrams/s the generator sent; all three ' +
      'over the interval since the previous sample. ' +
      (multiProcess
        ? `For ${kind}, RSS, proxy CPU and waited are sums over the primary and the workers (CPU up to ${pct(cpus().length, 0)} on ` +
          `${cpus().length} cores; waited counts each process's main thread), RSS per process is primary / worker 1 / worker 2, ` +
          "heap is the primary's alone, and lines in, forwarded and blocked are the workers' counters summed (as the primary " +
          'collects them). '
        : '') +
      'Load = the machine\'s 1-minute load average. Row 0 is before the load starts.',
    '',
  )
  out.push(
    ...table(
      [
        'time s',
        multiProcess ? 'RSS MB (sum)' : 'RSS MB',
        ...(multiProcess ? [`RSS MB ${processNames.join(' / ')}`] : []),
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
      samples.map((x) => [
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
  )

  out.push('## Memory trend', '')
  const range = (xs: Sample[], f: (x: Sample) => number): string =>
    xs.length === 0 ? 'n/a' : `${mb(Math.min(...xs.map(f)))} – ${mb(Math.max(...xs.map(f)))} MB`
  const first = samples[0]
  const last = samples[samples.length - 1]
  const memoryRow = (name: string, up: number | null, all: number | null, f: (x: Sample) => number): string[] => [
    name,
    perHour(up),
    perHour(all),
    range(warm, f),
    `${mb(f(first))} MB`,
    `${mb(f(last))} MB`,
  ]
  out.push(
    `Least-squares slope over the ${warm.length} samples after the first minute (warm-up excluded), and over all ${loaded.length} samples under load for comparison.`,
    '',
    ...table(
      ['', 'slope after warm-up', 'slope, all samples under load', 'range after warm-up', 'at start (before load)', 'last sample'],
      [
        memoryRow(multiProcess ? `RSS, sum of the ${processes} processes` : 'RSS', rssSlope, rssSlopeAll, (x) => x.rss),
        ...processNames.map((name, i) => memoryRow(`– RSS, ${name} (pid ${i === 0 ? proxy.child.pid : proxy.ready.workerPids[i - 1]})`, processRssSlopes[i], processRssSlopesAll[i], processRssOf(i))),
        memoryRow(multiProcess ? "heap used, primary only (the workers' heaps are not observable)" : 'heap used', heapSlope, heapSlopeAll, (x) => x.heapUsed),
      ],
    ),
    '',
    (multiProcess
      ? "Proxy GCs during the soak: n/a (the workers' collections are not observable from the bench, and the primary's alone " +
        "would say nothing about the data path); RSS peak over the proxy's life, the sum of each process's own peak (the primary's " +
        "ru_maxrss, each worker's VmHWM; reached at different moments, so an upper bound on their sum at any one moment; start-up and " +
        `saturation runs included): ${mb(pEnd.rssPeak)} MB.`
      : `Proxy GCs during the soak: ${int(pEnd.gcMinor - p0.gcMinor)} scavenges, ${int(pEnd.gcMajor - p0.gcMajor)} mark-sweeps; ` +
        `RSS peak over the proxy's life (ru_maxrss, start-up and saturation runs included): ${mb(pEnd.rssPeak)} MB.`),
    '',
  )

  out.push('## Accounting', '')
  out.push(
    'After the generator stopped, the proxy was drained (its socket queue empty, its counters and the sink\'s quiet). ' +
      'Every line offered must have been either read by the proxy (its lines in) or dropped by the kernel at its socket.',
    '',
  )
  const verdict = lostUnaccounted === 0 ? 'PASS' : '**FAIL**'
  const share = (n: number): string => (expected === 0 ? '' : ` (${pct(n / expected, 4)})`)
  const rows: string[][] = [
    ['lines offered by the generator', int(gEnd.lines), `${int(gEnd.datagrams)} datagrams; ${int(gEnd.sendErrors)} send errors`],
    [
      multiProcess ? `lines counted by the proxy (lines in, its ${proxyWorkers(kind)} workers summed)` : 'lines counted by the proxy (lines in)',
      int(linesIn),
      `${int(forwarded)} forwarded + ${int(blocked)} blocked + ${int(malformed)} malformed + ${int(droppedInProxy)} dropped for want of a send buffer` +
        (workerLinesIn === null ? '' : `; by worker: ${workerLinesIn.map((n) => `${int(n)} (${pct(linesIn === 0 ? 0 : n / linesIn, 1)})`).join(', ')}`),
    ],
    [
      'kernel drops at the proxy socket',
      int(kernelDropLines),
      `${int(kernelDropDatagrams)} datagrams × ${linesPerDatagram}; ${pEnd.kernel === null ? 'no /proc/net/udp' : `${pEnd.kernel.sockets} socket(s) on the port`}` +
        (multiProcess ? ' (the primary\'s, which the workers share)' : ''),
    ],
    ['**lost unaccounted** = offered − (lines in + kernel drops)', `**${int(lostUnaccounted)}**`, verdict],
    ['surviving lines expected at the sink', int(expected), 'lines the generator sent that no rule blocks'],
    ['delivered to the sink', int(delivered), `${expected === 0 ? '' : pct(delivered / expected, 4)} of expected`],
    ['– lost before the proxy (kernel drops of surviving lines)', int(expected - forwarded - droppedInProxy), share(expected - forwarded - droppedInProxy).trim()],
    ['– dropped in the proxy (no free send buffer)', int(droppedInProxy), share(droppedInProxy).trim()],
    [
      '– lost after the proxy (forwarded, not delivered)',
      int(forwarded - delivered),
      `${share(forwarded - delivered).trim()}; sink socket kernel drops: ${sinkSocket0 === null || sinkSocket1 === null ? 'n/a' : `${int(sinkSocket1.drops - sinkSocket0.drops)} datagrams`}`,
    ],
  ]
  if (machine0 !== null && machine1 !== null) {
    rows.push([
      'machine-wide, for reference (every process)',
      '',
      `UDP RcvbufErrors +${int(machine1.rcvbufErrors - machine0.rcvbufErrors)}, InErrors +${int(machine1.inErrors - machine0.inErrors)}, ` +
        `softnet backlog drops +${int(machine1.backlogDrops - machine0.backlogDrops)}`,
    ])
  }
  out.push(...table(['', 'lines', ''], rows), '')

  const markdown = out.join('\n')
  process.stdout.write(markdown + '\n')
  console.error(`soak: report written to bench/results/${saveReport(SOAK_KINDS[kind] ?? 'soak-', markdown, startedAt)}`)
  if (lostUnaccounted !== 0) {
    console.error(`soak: ${int(lostUnaccounted)} lines lost unaccounted`)
    process.exitCode = 1
  }
}

function table(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ]
}

await runEntryPoint('soak', HARD_LIMIT_MS, main)
