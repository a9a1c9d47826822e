// One measurement: offer load to one proxy, read every process's counters around a fixed window, drain.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadAndCompile } from '../src/config/compile.ts'
import { RuleSet } from '../src/match/rule-set.ts'
import { createPipeline } from '../src/pipeline.ts'
import type { SendDone, Target } from '../src/send/target.ts'
import { createLogger } from '../src/telemetry/logger.ts'
import { Child } from './lib/ipc.ts'
import { nodeVersion, pinToCpu, setNice } from './lib/machine.ts'
import { readCpusAllowed } from './lib/proc.ts'
import type { GeneratorSnapshot, GeneratorStart, GeneratorTarget, Pacing } from './load-generator.ts'
import type { ProxyReady, ProxySnapshot } from './proxy-child.ts'
import { proxyConfig, proxyWorkers, type ProxyKind } from './proxy-kinds.ts'
import type { SinkLatency, SinkReady, SinkSnapshot } from './sink.ts'
import { blockedPrefixes, buildWorkload, configYaml, expectedStrip, stripTagRules } from './workload.ts'

/** As in package.json's start script, the Dockerfile's ENTRYPOINT and the CLI's shebang (test/launch.test.ts). */
export const PRODUCTION_NODE_FLAGS = ['--max-semi-space-size=1']

export interface Timing {
  warmupMs: number
  measureMs: number
}

export interface RunSpec {
  kind: ProxyKind
  rules: number
  linesPerDatagram: number
  /** Offered datagrams per second; null = saturation (the generator sends as fast as it can). */
  rate: number | null
  /** How a rate is offered (load-generator.ts); 'even' when absent; meaningless at saturation. */
  pacing?: Pacing
}

export interface RunResult {
  spec: RunSpec
  // Whole run, warm-up included: it starts with nothing in flight, and a line counts as delivered if the sink has
  // it DELIVERY_GRACE_MS after the generator stopped. A proxy that merely queued the excess in its socket buffer
  // (4 MiB holds seconds of load for a slow proxy) does not pass for one that kept up.
  offeredLines: number
  expectedLines: number
  deliveredLines: number
  deliveredRatio: number
  /** Where the missing lines went: forwarded by the proxy (so lost after it, or late), or dropped inside it. */
  forwardedLines: number
  /** Lines the proxy gave up on for want of a free send buffer (ours only). */
  droppedLines: number
  // The measurement window.
  linesPerSecond: number
  cpuUsPerLine: number
  /**
   * Proxy CPU time over wall time: 1 is one core; well under 1 at saturation means it was starved of CPU. For a
   * proxy of several processes (ours-w2), their sum: up to the number of cores.
   */
  cpuShare: number
  /**
   * Share of wall time the proxy was ready to run but another process had its CPU (noise on a shared machine);
   * for several processes, the sum over their main threads.
   */
  cpuWaitShare: number
  /** Highest RSS sampled in the window (for several processes, the highest sum of their RSS at one moment). */
  rssMaxBytes: number
  /** Highest RSS since the proxy started, as of the end of this run (for several processes, the sum of their peaks). */
  rssPeakBytes: number
  /** NaN for a proxy of several processes: its workers' collections are not observed. */
  scavengesPerMLines: number
  markSweepsPerMLines: number
  /** The proxy's processes: 1, or a cluster primary and its workers. */
  processes: number
  /** Each worker's share of the lines read in the window (ours-w2); null for a single process. */
  workerLineShares: number[] | null
  blockedShare: number
  /** Of the lines forwarded in the window, those a strip rule removed a tag from (the proxy's counters). */
  strippedShare: number
  /** Tags removed per stripped line in the window; 0 when none was stripped. */
  tagsPerStrippedLine: number
  generatorDatagramsPerSecond: number
  /** The generator fell more than 1% short of the offered rate: the row does not test that rate. */
  generatorShort: boolean
  /** Share of the datagrams sent that the proxy read; near 1 at saturation means the generator was the limit. */
  proxyReadShare: number
  /** Whole run: datagrams the sink received, and delivered lines / those (what coalescing achieved). */
  sinkDatagrams: number
  sinkLinesPerDatagram: number
  /** Probes sent → received in the window (paced runs); null at saturation. */
  latency: SinkLatency | null
  /** The generator's CPU time over wall time in the window: 1 is all of CPU 0, the sink's core too. */
  generatorCpuShare: number
  /** Wall time the generator spent per datagram sent, in its send loop (not waiting): 1e6 / it is its ceiling. */
  generatorSendUs: number
}

/** Probe latency with no proxy: the generator sends straight to the sink (the floor the proxies' figures include). */
export interface BaselineLatency {
  rate: number
  latency: SinkLatency
}

/** Generous for a proxy that keeps up (its latency is well under a millisecond), short for a growing backlog. */
export const DELIVERY_GRACE_MS = 200
export interface DrainOptions {
  /** Drained means the proxy and the sink counted nothing new for this long. */
  quietMs: number
  limitMs: number
  /** Also wait for the proxy's socket queue to be empty (/proc/net/udp rx_queue). */
  emptyQueue: boolean
}

/** Between two runs of the end-to-end bench. */
const DRAIN: DrainOptions = { quietMs: 150, limitMs: 15_000, emptyQueue: false }
/**
 * The sink's nice value when it is pinned with the generator. Evenly paced, the generator spins between datagrams
 * and the sink must preempt it to read: with no proxy at 50,000 datagrams/s (load average 7–8), the probes' p50
 * was 1.9–3.3 ms at nice 0 (the sink waited for the spinner's time slice) and 37–50 µs at nice -10. The sink takes
 * only what its datagrams need; the rest of CPU 0 stays the generator's.
 */
const SINK_NICE = -10
/** Loading 100,000 rules takes seconds (and far more if rule compilation regresses: start-up is reported). */
const PROXY_START_TIMEOUT_MS = 180_000
const CHILD_START_TIMEOUT_MS = 10_000

const moduleUrl = (name: string): string => fileURLToPath(new URL(`./${name}.js`, import.meta.url))

export interface ProxyHandle {
  kind: ProxyKind
  rules: number
  child: Child
  ready: ProxyReady
  /** Cpus_allowed_list of its processes once started (and pinned): "1", or "0-1" for an unpinned one. */
  cpus: string
}

/** The long-lived processes of one bench run: a sink, a load generator and the proxies, started on demand. */
export class Bench {
  private readonly execPath: string
  private readonly pin: boolean
  /** The sink, the generator and the sink's port are public for drivers that pace a run themselves (bench/soak). */
  readonly sink: Child
  readonly generator: Child
  readonly sinkPort: number
  /** The sink runs at SINK_NICE (false: not pinned, or not allowed to raise its priority). */
  readonly sinkNiced: boolean
  private readonly proxies = new Map<string, Promise<ProxyHandle>>()

  private constructor(
    execPath: string,
    pin: boolean,
    sink: Child,
    sinkPort: number,
    generator: Child,
    sinkNiced: boolean,
  ) {
    this.execPath = execPath
    this.pin = pin
    this.sink = sink
    this.sinkPort = sinkPort
    this.generator = generator
    this.sinkNiced = sinkNiced
  }

  /**
   * With `pin`, each proxy gets CPU 1 to itself and the generator and sink share CPU 0: the proxy's figures are
   * then "on one core", and the sink's work (heavier for the naive proxy, which forwards one datagram per
   * datagram) cannot take CPU from the proxy it measures. A proxy of several worker processes (ours-w2) is not
   * pinned: its primary and workers may run on every core, which they share with the generator and the sink.
   */
  static async start(execPath: string, pin: boolean): Promise<Bench> {
    const sink = await Child.start<SinkReady>('sink', moduleUrl('sink'), [], execPath, CHILD_START_TIMEOUT_MS)
    const generator = await Child.start<null>(
      'load-generator',
      moduleUrl('load-generator'),
      [],
      execPath,
      CHILD_START_TIMEOUT_MS,
    )
    if (pin) {
      pinToCpu(sink.child.pid, 0)
      pinToCpu(generator.child.pid, 0)
    }
    const niced = pin && setNice(sink.child.pid, SINK_NICE)
    return new Bench(execPath, pin, sink.child, sink.ready.port, generator.child, niced)
  }

  proxy(kind: ProxyKind, rules: number): Promise<ProxyHandle> {
    const key = `${kind}/${rules}`
    let handle = this.proxies.get(key)
    if (handle === undefined) {
      handle = Child.start<ProxyReady>(
        `proxy ${key}`,
        moduleUrl('proxy-child'),
        [kind, String(rules), String(this.sinkPort)],
        this.execPath,
        PROXY_START_TIMEOUT_MS,
        // Ours runs with the V8 flags it ships with (npm start, the image); the naive proxy with Node's defaults.
        kind === 'naive' ? [] : PRODUCTION_NODE_FLAGS,
      ).then(({ child, ready }) => {
        if (this.pin && proxyWorkers(kind) === 1) pinToCpu(child.pid, 1)
        const cpus = [...new Set([child.pid, ...ready.workerPids].map((pid) => readCpusAllowed(pid) ?? '?'))].join(', ')
        return { kind, rules, child, ready, cpus }
      })
      this.proxies.set(key, handle)
    }
    return handle
  }

  startedProxies(): Promise<ProxyHandle[]> {
    return Promise.all(this.proxies.values())
  }

  async run(spec: RunSpec, timing: Timing): Promise<RunResult> {
    const proxy = await this.proxy(spec.kind, spec.rules)
    const target: GeneratorTarget = {
      port: proxy.ready.port,
      rules: spec.rules,
      linesPerDatagram: spec.linesPerDatagram,
    }
    await this.generator.call('configure', target, 30_000)
    const [sink0, p0] = await Promise.all([
      this.sink.call<SinkSnapshot>('snapshot'),
      proxy.child.call<ProxySnapshot>('snapshot'),
    ])

    await this.generator.call('start', { rate: spec.rate, pacing: spec.pacing ?? 'even' } satisfies GeneratorStart)
    await sleep(timing.warmupMs)
    // The sink's latency read at the window's start discards the warm-up's probes.
    const [g1, p1] = await Promise.all([
      this.generator.call<GeneratorSnapshot>('snapshot'),
      proxy.child.call<ProxySnapshot>('snapshot'),
      this.sink.call<SinkLatency>('latency'),
    ])
    await sleep(timing.measureMs)
    const [g2, p2, latency] = await Promise.all([
      this.generator.call<GeneratorSnapshot>('snapshot'),
      proxy.child.call<ProxySnapshot>('snapshot'),
      this.sink.call<SinkLatency>('latency'),
    ])
    const gEnd = await this.generator.call<GeneratorSnapshot>('stop')
    // On loopback a send fails only if nothing listens any more (ICMP port unreachable): the run means nothing.
    if (gEnd.sendErrors > 0)
      throw new Error(`${proxy.child.name}: ${gEnd.sendErrors} sends to it failed; is it still running?`)
    await sleep(DELIVERY_GRACE_MS)
    const [sink1, pEnd] = await Promise.all([
      this.sink.call<SinkSnapshot>('snapshot'),
      proxy.child.call<ProxySnapshot>('snapshot'),
    ])
    await this.drain(proxy.child)
    return runResult(spec, { sink0, p0, g1, p1, g2, p2, gEnd, sink1, pEnd }, latency)
  }

  /**
   * The generator straight to the sink, evenly paced at `rate` for the warm-up and the window: the latency of
   * loopback and of the sink's wake-up on its shared core, which every proxy's figure includes.
   */
  async baselineLatency(rate: number, timing: Timing): Promise<BaselineLatency> {
    const pacing: Pacing = 'even'
    await this.generator.call('configure', {
      port: this.sinkPort,
      rules: 1,
      linesPerDatagram: 1,
    } satisfies GeneratorTarget)
    await this.generator.call('start', { rate, pacing } satisfies GeneratorStart)
    await sleep(timing.warmupMs)
    await this.sink.call<SinkLatency>('latency')
    await sleep(timing.measureMs)
    const latency = await this.sink.call<SinkLatency>('latency')
    await this.generator.call('stop')
    await sleep(DELIVERY_GRACE_MS)
    return { rate, latency }
  }

  /**
   * Waits until the proxy has read what its socket queue held and the sink has counted what it sent, so that
   * nothing spills into the next run: until neither counted anything new for `quietMs` (and, with
   * `emptyQueue`, the kernel shows nothing queued at the proxy's socket). At saturation the proxy's queue is full
   * (net.core.rmem_max), so a slow proxy can take a while.
   */
  async drain(proxy: Child, { quietMs, limitMs, emptyQueue }: DrainOptions = DRAIN): Promise<void> {
    const deadline = Date.now() + limitMs
    let last = { proxy: -1, sink: -1 }
    for (;;) {
      const [p, s] = await Promise.all([
        proxy.call<ProxySnapshot>('snapshot'),
        this.sink.call<SinkSnapshot>('snapshot'),
      ])
      const now = { proxy: p.counters.datagramsIn, sink: s.lines }
      if (now.proxy === last.proxy && now.sink === last.sink && (!emptyQueue || (p.kernel?.rxQueue ?? 0) === 0)) return
      if (Date.now() > deadline) throw new Error(`${proxy.name} was still draining after ${limitMs} ms`)
      last = now
      await sleep(quietMs)
    }
  }
}

/** The counters a run reads: at the start (0), around the measurement window (1, 2), when the generator stopped and DELIVERY_GRACE_MS later. */
interface RunSnapshots {
  sink0: SinkSnapshot
  p0: ProxySnapshot
  g1: GeneratorSnapshot
  p1: ProxySnapshot
  g2: GeneratorSnapshot
  p2: ProxySnapshot
  gEnd: GeneratorSnapshot
  sink1: SinkSnapshot
  pEnd: ProxySnapshot
}

function runResult(
  spec: RunSpec,
  { sink0, p0, g1, p1, g2, p2, gEnd, sink1, pEnd }: RunSnapshots,
  latency: SinkLatency,
): RunResult {
  const forwarded = p2.counters.linesForwarded - p1.counters.linesForwarded
  const blocked = p2.counters.linesBlocked - p1.counters.linesBlocked
  const stripped = p2.counters.linesTagsStripped - p1.counters.linesTagsStripped
  const tagsStripped = p2.counters.tagsStripped - p1.counters.tagsStripped
  const lines = forwarded + blocked
  const seconds = (p2.timeNs - p1.timeNs) / 1e9
  const cpuUs = p2.cpuUserUs + p2.cpuSystemUs - (p1.cpuUserUs + p1.cpuSystemUs)
  const perMLines = (n: number): number => (lines === 0 ? 0 : (n * 1e6) / lines)
  const generatorSeconds = (g2.timeNs - g1.timeNs) / 1e9
  const sent = g2.datagrams - g1.datagrams
  const generatorDatagramsPerSecond = sent / generatorSeconds
  const delivered = sink1.lines - sink0.lines
  const sinkDatagrams = sink1.datagrams - sink0.datagrams
  // The cluster's workers' collections are not observed: no GC figure rather than the primary's alone.
  const gcSeen = p2.processes === 1
  const workerLines = p2.workerLinesIn?.map((n, i) => n - (p1.workerLinesIn?.[i] ?? 0)) ?? null
  const workerLinesTotal = workerLines?.reduce((a, b) => a + b, 0) ?? 0
  return {
    spec,
    offeredLines: gEnd.lines,
    expectedLines: gEnd.survivors,
    deliveredLines: delivered,
    deliveredRatio: gEnd.survivors === 0 ? 1 : delivered / gEnd.survivors,
    forwardedLines: pEnd.counters.linesForwarded - p0.counters.linesForwarded,
    droppedLines: pEnd.counters.linesDropped - p0.counters.linesDropped,
    linesPerSecond: lines / seconds,
    cpuUsPerLine: lines === 0 ? 0 : cpuUs / lines,
    cpuShare: cpuUs / 1e6 / seconds,
    cpuWaitShare: (p2.runQueueWaitNs - p1.runQueueWaitNs) / 1e9 / seconds,
    rssMaxBytes: p2.rssMax,
    rssPeakBytes: pEnd.rssPeak,
    scavengesPerMLines: gcSeen ? perMLines(p2.gcMinor - p1.gcMinor) : NaN,
    markSweepsPerMLines: gcSeen ? perMLines(p2.gcMajor - p1.gcMajor) : NaN,
    processes: p2.processes,
    workerLineShares:
      workerLines === null ? null : workerLines.map((n) => (workerLinesTotal === 0 ? 0 : n / workerLinesTotal)),
    blockedShare: lines === 0 ? 0 : blocked / lines,
    strippedShare: forwarded === 0 ? 0 : stripped / forwarded,
    tagsPerStrippedLine: stripped === 0 ? 0 : tagsStripped / stripped,
    generatorDatagramsPerSecond,
    generatorShort:
      spec.rate !== null &&
      (generatorDatagramsPerSecond < 0.99 * spec.rate || gEnd.due - gEnd.datagrams > 0.01 * gEnd.due),
    proxyReadShare: sent === 0 ? 0 : (p2.counters.datagramsIn - p1.counters.datagramsIn) / sent,
    sinkDatagrams,
    sinkLinesPerDatagram: sinkDatagrams === 0 ? 0 : delivered / sinkDatagrams,
    latency: spec.rate === null ? null : latency,
    generatorCpuShare: (g2.cpuUs - g1.cpuUs) / 1e6 / generatorSeconds,
    generatorSendUs: sent === 0 ? 0 : (g2.busyNs - g1.busyNs) / 1e3 / sent,
  }
}

/** What checkTagStripping found on one workload: every line through the kind's compiled rules. */
export interface TagCheck {
  kind: ProxyKind
  rules: number
  linesPerDatagram: number
  lines: number
  /** Lines with a `|#` field. */
  tagged: number
  forwarded: number
  /** Forwarded lines with a `|#` field. */
  forwardedTagged: number
  /** Forwarded lines that lost at least one tag, and the tags they lost. */
  stripped: number
  tagsStripped: number
}

/**
 * The sink counts lines, not bytes (stripping changes bytes, never which lines survive, so the generator's
 * survivor counts stay exact). What stripping does to the bytes is checked here instead, once per workload: the
 * kind's filter.yaml, loaded and compiled as the CLI does, runs every datagram of the generator's workload through
 * the proxy's own pipeline (src/pipeline.ts) into a capturing target, and every line that leaves must equal what a
 * string-based account of the rules says (workload.ts expectedStrip): blocked lines gone, stripped tags gone,
 * the rest byte for byte. The pipeline's stripped-line and stripped-tag counters must match too. Throws if not.
 */
export async function checkTagStripping(kind: ProxyKind, rules: number, linesPerDatagram: number): Promise<TagCheck> {
  const dir = mkdtempSync(join(tmpdir(), 'statsd-bench-check-'))
  const file = join(dir, 'filter.yaml')
  writeFileSync(file, configYaml(rules, 9, proxyConfig(kind)))
  const compiled = await loadAndCompile(file).finally(() => rmSync(dir, { recursive: true, force: true }))
  const out: string[] = []
  const target: Target = {
    address: 'capture',
    send(buf, offset, length, done: SendDone) {
      out.push(...buf.toString('latin1', offset, offset + length).split('\n'))
      done(null)
    },
    queue: () => ({ count: 0, bytes: 0 }),
    close: () => Promise.resolve(),
  }
  const pipeline = createPipeline({
    rules: new RuleSet(compiled, compiled.config.mode),
    target,
    maxPacketSize: compiled.config.maxPacketSize ?? 8192,
    insights: compiled.config.insights,
    log: createLogger('silent'),
  })
  const { datagrams } = buildWorkload(rules, linesPerDatagram)
  const blocked = new Set(blockedPrefixes(rules))
  const stripRules = proxyConfig(kind).stripTags ? stripTagRules() : []
  const expected: string[] = []
  const check: TagCheck = {
    kind,
    rules,
    linesPerDatagram,
    lines: 0,
    tagged: 0,
    forwarded: 0,
    forwardedTagged: 0,
    stripped: 0,
    tagsStripped: 0,
  }
  for (const datagram of datagrams) {
    pipeline.filter.handleDatagram(datagram, 0, datagram.length)
    for (const line of datagram.toString('latin1').split('\n')) {
      check.lines++
      const tagged = line.includes('|#')
      if (tagged) check.tagged++
      const [first, second] = line.split('.')
      if (blocked.has(`${first}.${second}.`)) continue
      const after = expectedStrip(line, stripRules)
      expected.push(after.line)
      check.forwarded++
      if (tagged) check.forwardedTagged++
      if (after.removed > 0) check.stripped++
      check.tagsStripped += after.removed
    }
  }
  pipeline.assembler.flush()
  await pipeline.assembler.idle()
  const { counters } = pipeline
  pipeline.close()
  const mismatch = expected.findIndex((line, i) => out[i] !== line)
  if (mismatch !== -1 || out.length !== expected.length)
    throw new Error(
      `${kind}: line ${mismatch} left the proxy as ${JSON.stringify(out[mismatch])}, expected ${JSON.stringify(expected[mismatch])} ` +
        `(${out.length} lines out, ${expected.length} expected)`,
    )
  if (counters.linesTagsStripped !== check.stripped || counters.tagsStripped !== check.tagsStripped)
    throw new Error(
      `${kind}: the proxy counted ${counters.linesTagsStripped} stripped lines and ${counters.tagsStripped} tags, ` +
        `expected ${check.stripped} and ${check.tagsStripped}`,
    )
  return check
}

/** A bench entry point's start: when, the machine's load then, its Bench, and the Node version the children run. */
export async function startSession(
  nodeBinary: string,
  pin: boolean,
): Promise<{ startedAt: Date; loadAtStart: number[]; bench: Bench; node: string }> {
  const startedAt = new Date()
  const loadAtStart = loadavg()
  const bench = await Bench.start(nodeBinary, pin)
  return { startedAt, loadAtStart, bench, node: nodeVersion(nodeBinary) }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
