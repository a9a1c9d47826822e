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
import { loadavg } from 'node:os'
import { parseArgs } from 'node:util'
import { readUdpSocketStats } from '../src/telemetry/kernel-drops.ts'
import { numberArg } from './lib/args.ts'
import { runEntryPoint } from './lib/entry-point.ts'
import { canPin } from './lib/machine.ts'
import { readMachineUdp } from './lib/proc.ts'
import { saveReport } from './lib/results.ts'
import { median } from './lib/stats.ts'
import { int, loadText, mb, pct } from './lib/table.ts'
import type { GeneratorSnapshot, GeneratorStart, GeneratorTarget } from './load-generator.ts'
import { DELIVERY_GRACE_MS, sleep, startSession, type Bench, type ProxyHandle, type RunResult } from './measure.ts'
import type { ProxySnapshot } from './proxy-child.ts'
import { proxyWorkers, type ProxyKind } from './proxy-kinds.ts'
import type { SinkSnapshot } from './sink.ts'
import { lostUnaccounted, renderSoak, type Sample, type SoakSettings, type SoakResult } from './soak-report.ts'

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
const DRAIN = { quietMs: 300, limitMs: 30_000, emptyQueue: true }
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
if (!Object.hasOwn(SOAK_KINDS, kindArg))
  throw new Error(`--kind: expected ${Object.keys(SOAK_KINDS).join(' or ')}, got ${kindArg}`)
const kind = kindArg as ProxyKind
/** ours-w2: several processes, never pinned; heap and GCs observed for the primary only. */
const multiProcess = proxyWorkers(kind) > 1
const minutes = Number(flags.minutes)
if (!(minutes > 0 && minutes <= 180)) throw new Error(`--minutes: expected a number in (0, 180], got ${flags.minutes}`)
const linesPerDatagram = Number(flags.lines)
if (linesPerDatagram !== 1 && linesPerDatagram !== 10) throw new Error(`--lines: expected 1 or 10, got ${flags.lines}`)
const fixedRate =
  flags.rate === undefined ? null : numberArg(flags.rate, '--rate (datagrams per second)', 1, 10_000_000, true)
const nodeBinary = flags.node ?? process.execPath
const pin = canPin(flags['no-pin'])
const soakMs = Math.round(minutes * 60_000)
/** Start-up, the saturation runs, the soak and the drain; whatever wedges, the soak ends by itself. */
const HARD_LIMIT_MS = soakMs + 5 * 60_000

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

/** Starts the proxy under soak and checks it has the processes its kind says. */
async function startProxy(bench: Bench): Promise<ProxyHandle> {
  const proxy = await bench.proxy(kind, RULES)
  const processes = 1 + proxy.ready.workerPids.length
  if (processes !== proxyWorkers(kind) + (multiProcess ? 1 : 0))
    throw new Error(`${kind}: expected ${proxyWorkers(kind)} worker(s), got pids ${proxy.ready.workerPids.join(', ')}`)
  return proxy
}

/** The previous sample's snapshots: rates are over the interval since. */
interface Previous {
  p: ProxySnapshot
  g: GeneratorSnapshot | null
}

/** One row of the samples, at `t` ms since the generator started; counts are since p0 and s0 (the soak's start). */
function sampleOf(
  t: number,
  g: GeneratorSnapshot | null,
  p: ProxySnapshot,
  s: SinkSnapshot,
  prev: Previous,
  start: { p0: ProxySnapshot; s0: SinkSnapshot },
): Sample {
  const { p0, s0 } = start
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
    generatorRate:
      g === null
        ? 0
        : prev.g === null
          ? g.datagrams / (t / 1000)
          : genS === 0
            ? 0
            : (g.datagrams - prev.g.datagrams) / genS,
    offeredLines: g?.lines ?? 0,
    expectedLines: g?.survivors ?? 0,
    linesIn: p.counters.linesIn - p0.counters.linesIn,
    forwarded: p.counters.linesForwarded - p0.counters.linesForwarded,
    blocked: p.counters.linesBlocked - p0.counters.linesBlocked,
    kernelDrops: drops(p) - drops(p0),
    delivered: s.lines - s0.lines,
  }
}

function progress(x: Sample): void {
  console.error(
    `soak: ${String(Math.round(x.t / 1000)).padStart(5)} s  RSS ${mb(x.rss).padStart(6)} MB${multiProcess ? ` (${x.processRss.map(mb).join(' + ')})` : ''}  ` +
      `${multiProcess ? 'primary heap' : 'heap'} ${mb(x.heapUsed).padStart(6)} MB  load ${x.load1.toFixed(2)}  ` +
      `CPU ${pct(x.cpuShare, 0).padStart(4)} (waited ${pct(x.cpuWaitShare, 0).padStart(3)})  gen ${int(x.generatorRate).padStart(8)} dgram/s  in ${int(x.linesIn).padStart(12)}  ` +
      `kernel drops ${int(x.kernelDrops)}  delivered ${x.expectedLines === 0 ? '-' : pct(x.delivered / x.expectedLines, 3)}`,
  )
}

/** Offers `rate` for the soak's minutes, a sample every SAMPLE_MS; then stops the generator and drains the proxy. */
async function soak(bench: Bench, proxy: ProxyHandle, rate: number): Promise<SoakResult> {
  const target: GeneratorTarget = { port: proxy.ready.port, rules: RULES, linesPerDatagram }
  await bench.generator.call('configure', target, 30_000)
  const sinkSocket0 = await readUdpSocketStats(bench.sinkPort)
  const machine0 = readMachineUdp()
  const [p0, s0] = await Promise.all([
    proxy.child.call<ProxySnapshot>('snapshot'),
    bench.sink.call<SinkSnapshot>('snapshot'),
  ])
  const samples: Sample[] = [sampleOf(0, null, p0, s0, { p: p0, g: null }, { p0, s0 })]
  progress(samples[0])

  await bench.generator.call('start', { rate, pacing: 'even' } satisfies GeneratorStart)
  const t0 = Date.now()
  let prev: Previous = { p: p0, g: null }
  for (let k = 1; ; k++) {
    const at = Math.min(k * SAMPLE_MS, soakMs)
    await sleep(t0 + at - Date.now())
    const [g, p, s] = await Promise.all([
      bench.generator.call<GeneratorSnapshot>('snapshot'),
      proxy.child.call<ProxySnapshot>('snapshot'),
      bench.sink.call<SinkSnapshot>('snapshot'),
    ])
    if (g.sendErrors > 0) throw new Error(`${g.sendErrors} sends to the proxy failed; is it still running?`)
    const x = sampleOf(Date.now() - t0, g, p, s, prev, { p0, s0 })
    samples.push(x)
    progress(x)
    prev = { p, g }
    if (at >= soakMs) break
  }
  const gEnd = await bench.generator.call<GeneratorSnapshot>('stop')
  const soakSeconds = (Date.now() - t0) / 1000
  await sleep(DELIVERY_GRACE_MS)
  await bench.drain(proxy.child, DRAIN)
  const [pEnd, sEnd] = await Promise.all([
    proxy.child.call<ProxySnapshot>('snapshot'),
    bench.sink.call<SinkSnapshot>('snapshot'),
  ])
  const sinkSocket1 = await readUdpSocketStats(bench.sinkPort)
  return {
    samples,
    p0,
    s0,
    pEnd,
    sEnd,
    gEnd,
    soakSeconds,
    sinkSocket: [sinkSocket0, sinkSocket1],
    machine: [machine0, readMachineUdp()],
  }
}

async function main(): Promise<void> {
  const { startedAt, loadAtStart, bench, node } = await startSession(nodeBinary, pin)
  const proxy = await startProxy(bench)
  const processes = 1 + proxy.ready.workerPids.length
  // Bench pins a single-process proxy to CPU 1 (with pin); never one of several processes.
  const proxyPinned = pin && !multiProcess
  console.error(
    `soak: node ${node}, ${kind} with ${int(RULES)} rules up in ${(proxy.ready.startupMs / 1000).toFixed(2)} s, ${processes} process(es), ` +
      `proxy pinned: ${proxyPinned} (CPUs allowed: ${proxy.cpus}), generator and sink pinned to CPU 0: ${pin}, load average ${loadText(loadAtStart, ' ')}`,
  )

  const saturation = fixedRate === null ? await measureSaturation(bench) : null
  const rate = saturation === null ? (fixedRate ?? 0) : Math.round(saturation.rate * LOAD_SHARE)
  console.error(
    `soak: offering ${int(rate)} datagrams/s × ${linesPerDatagram} line(s) for ${minutes} min, a sample every ${SAMPLE_MS / 1000} s`,
  )
  const result = await soak(bench, proxy, rate)
  if (result.pEnd.processes !== processes)
    throw new Error(`${kind}: ${processes} processes at the start, ${result.pEnd.processes} at the end`)

  const settings: SoakSettings = {
    kind,
    rules: RULES,
    linesPerDatagram,
    minutes,
    rate,
    loadShare: LOAD_SHARE,
    sampleMs: SAMPLE_MS,
    warmupMs: WARMUP_MS,
    saturationRuns: SATURATION_RUNS,
    pin,
    proxyPinned,
  }
  const markdown = renderSoak({
    startedAt,
    node,
    settings,
    proxy,
    saturation,
    load: { start: loadAtStart, end: loadavg() },
    result,
  })
  process.stdout.write(markdown + '\n')
  console.error(`soak: report written to bench/results/${saveReport(SOAK_KINDS[kind] ?? 'soak-', markdown, startedAt)}`)
  const lost = lostUnaccounted(result, linesPerDatagram)
  if (lost !== 0) {
    console.error(`soak: ${int(lost)} lines lost unaccounted`)
    process.exitCode = 1
  }
}

await runEntryPoint('soak', HARD_LIMIT_MS, main)
