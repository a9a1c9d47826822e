// Soak: our proxy (1,000 rules, as shipped) carries a steady 80% of its saturation rate for minutes while its memory,
// its counters and the kernel's drop count for its listen socket are sampled every 10 s. The report says whether
// memory grows (least-squares slopes after a warm-up minute) and whether every line offered is accounted for.
// Prints a markdown report on stdout (progress goes to stderr) and writes it to bench/results/soak-<ISO>.md.
//
//   npm run bench:soak                      10 minutes at 80% of a saturation rate measured first (about 11 minutes)
//   node dist/bench/soak.js --minutes 1     a quick check
//   options: --minutes <m> --rate <datagrams/s> (skip the saturation runs) --lines <lines per datagram, 1 or 10>
//            --node <path to another node binary> --no-pin
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { readUdpSocketStats } from '../src/telemetry/kernel-drops.ts'
import { runEntryPoint, saveReport, type Child } from './ipc.ts'
import type { GeneratorSnapshot, GeneratorTarget } from './load-generator.ts'
import { Bench, DELIVERY_GRACE_MS, sleep, type RunResult } from './measure.ts'
import type { ProxySnapshot } from './proxy-child.ts'
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

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string' },
    lines: { type: 'string', default: '1' },
    node: { type: 'string', default: process.execPath },
    'no-pin': { type: 'boolean', default: false },
  },
})
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
  rss: number
  heapUsed: number
  /** Proxy CPU time over wall time since the previous sample. */
  cpuShare: number
  /** Share of that wall time the proxy was ready to run but another process had its CPU (schedstat). */
  cpuWaitShare: number
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

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
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
    const r = await bench.run({ kind: 'ours', rules: RULES, linesPerDatagram, rate: null }, SATURATION_TIMING)
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
  const bench = await Bench.start(nodeBinary, pin)
  const node = execFileSync(nodeBinary, ['--version'], { encoding: 'utf8' }).trim()
  const proxy = await bench.proxy('ours', RULES)
  console.error(`soak: node ${node}, ours with ${int(RULES)} rules up in ${(proxy.ready.startupMs / 1000).toFixed(2)} s, pinned: ${pin}`)

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
      heapUsed: p.heapUsed,
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
      `soak: ${String(Math.round(x.t / 1000)).padStart(5)} s  RSS ${mb(x.rss).padStart(6)} MB  heap ${mb(x.heapUsed).padStart(6)} MB  ` +
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
  const expected = gEnd.survivors

  const warm = samples.filter((x) => x.t >= WARMUP_MS)
  const hours = (x: Sample): number => x.t / 3_600_000
  const rssSlope = slope(warm.map((x) => ({ x: hours(x), y: x.rss / MB })))
  const heapSlope = slope(warm.map((x) => ({ x: hours(x), y: x.heapUsed / MB })))
  const loaded = samples.slice(1)
  const rssSlopeAll = slope(loaded.map((x) => ({ x: hours(x), y: x.rss / MB })))
  const heapSlopeAll = slope(loaded.map((x) => ({ x: hours(x), y: x.heapUsed / MB })))
  const perHour = (v: number | null): string => (v === null ? 'n/a (fewer than 2 samples)' : `${v >= 0 ? '+' : ''}${v.toFixed(2)} MB/h`)
  const achieved = gEnd.datagrams / soakSeconds

  const out: string[] = []
  out.push(`# statsd-filter-proxy soak, ${startedAt.toISOString()}`, '')
  out.push(
    `Node ${node}, ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}. Proxy: ours, ${int(RULES)} rules, production V8 flags, ` +
      (pin ? 'pinned to CPU 1 (the generator and the sink share CPU 0). ' : 'not pinned. ') +
      `Load: ${linesPerDatagram} line(s) per datagram, ${int(rate)} datagrams/s ` +
      (saturation === null
        ? '(given with --rate). '
        : `= ${pct(LOAD_SHARE, 0)} of ${int(saturation.rate)} datagrams/s, the median of ${SATURATION_RUNS} saturation runs ` +
          `(${saturation.runs.map((r) => int(r.linesPerSecond / linesPerDatagram)).join(', ')}; proxy CPU ${saturation.runs.map((r) => pct(r.cpuShare, 0)).join(', ')}, waited for CPU ${saturation.runs.map((r) => pct(r.cpuWaitShare, 0)).join(', ')}). `) +
      `Soak: ${minutes} min (${soakSeconds.toFixed(0)} s), a sample every ${SAMPLE_MS / 1000} s; the generator achieved ${int(achieved)} datagrams/s ` +
      `(${int(gEnd.due - gEnd.datagrams)} datagrams behind schedule at the end). MB = 10⁶ bytes. ` +
      `Whole run: ${((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)} min.`,
    '',
  )

  out.push('## Samples', '')
  out.push(
    'Counts are cumulative from the start of the soak (the saturation runs before it are excluded). Kernel drops = datagrams ' +
      `the kernel discarded at the proxy's listen socket (its receive queue was full), from /proc/net/udp; × ${linesPerDatagram} for lines. ` +
      'Delivered = lines the sink received so far; expected = surviving lines the generator had sent so far (a few ms of ' +
      'lines are always in flight). Proxy CPU = its CPU time over wall time, waited = the share of the time it was ready ' +
      'to run while another process had its CPU (the machine is shared), gen = datagrams/s the generator sent; all three ' +
      'over the interval since the previous sample. Row 0 is before the load starts.',
    '',
  )
  out.push(
    ...table(
      ['time s', 'RSS MB', 'heap MB', 'proxy CPU', 'waited for CPU', 'gen dgram/s', 'offered lines', 'lines in', 'forwarded', 'blocked', 'kernel drops', 'delivered so far', 'expected so far'],
      samples.map((x) => [
        (x.t / 1000).toFixed(0),
        mb(x.rss),
        mb(x.heapUsed),
        x.t === 0 ? '' : pct(x.cpuShare, 0),
        x.t === 0 ? '' : pct(x.cpuWaitShare, 0),
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
  out.push(
    `Least-squares slope over the ${warm.length} samples after the first minute (warm-up excluded), and over all ${loaded.length} samples under load for comparison.`,
    '',
    ...table(
      ['', 'slope after warm-up', 'slope, all samples under load', 'range after warm-up', 'at start (before load)', 'last sample'],
      [
        ['RSS', perHour(rssSlope), perHour(rssSlopeAll), range(warm, (x) => x.rss), `${mb(samples[0].rss)} MB`, `${mb(samples[samples.length - 1].rss)} MB`],
        ['heap used', perHour(heapSlope), perHour(heapSlopeAll), range(warm, (x) => x.heapUsed), `${mb(samples[0].heapUsed)} MB`, `${mb(samples[samples.length - 1].heapUsed)} MB`],
      ],
    ),
    '',
    `Proxy GCs during the soak: ${int(pEnd.gcMinor - p0.gcMinor)} scavenges, ${int(pEnd.gcMajor - p0.gcMajor)} mark-sweeps; ` +
      `RSS peak over the proxy's life (ru_maxrss, start-up and saturation runs included): ${mb(pEnd.rssPeak)} MB.`,
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
    ['lines counted by the proxy (lines in)', int(linesIn), `${int(forwarded)} forwarded + ${int(blocked)} blocked + ${int(malformed)} malformed + ${int(droppedInProxy)} dropped for want of a send buffer`],
    ['kernel drops at the proxy socket', int(kernelDropLines), `${int(kernelDropDatagrams)} datagrams × ${linesPerDatagram}; ${pEnd.kernel === null ? 'no /proc/net/udp' : `${pEnd.kernel.sockets} socket(s) on the port`}`],
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
  console.error(`soak: report written to bench/results/${saveReport('soak-', markdown, startedAt)}`)
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
