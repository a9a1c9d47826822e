// A proxy under test, alone in its process so its CPU time, RSS and GCs are its own.
//   node dist/bench/proxy-child.js <ours|ours-dgram|lean|ours-w2|ours-tags|naive> <rules> <sink port>
// Every kind loads its config the way the CLI does (a YAML file, read and compiled on a worker thread), so the
// only difference measured is the data path; the naive proxy simply ignores the compiled trie. `ours-dgram` is
// ours with `receive: { mode: dgram }`. `lean` is ours with `insights: false` (no per-rule hit counts, no
// top-talker sketches): what those cost on the hot path. `ours-tags` is ours with the bench's 100 stripTags rules
// (workload.ts stripTagRules).
// `ours-w2` is ours with `workers: 2`, started as src/cli.ts starts it (startProxy): its figures are this
// process's (every thread: readers that run as worker threads are covered) plus those of any cluster worker
// processes it forks.
import cluster from 'node:cluster'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { workerCount } from '../src/cluster/worker-count.ts'
import { unpackRules } from '../src/match/packed-rules.ts'
import { loadAndCompile } from '../src/config/compile.ts'
import { startProxy } from '../src/proxy.ts'
import { readUdpSocketStats, type UdpSocketStats } from '../src/telemetry/kernel-drops.ts'
import { createLogger } from '../src/telemetry/logger.ts'
import { serve } from './lib/ipc.ts'
import { readProcRss } from './lib/proc.ts'
import { startNaiveProxy } from './naive-proxy.ts'
import { ProcessGroupStats, ProcessStats, type ProcessSnapshot } from './process-stats.ts'
import {
  lineCounters,
  naiveLineCounters,
  proxyConfig,
  PROXY_KINDS,
  proxyWorkers,
  type ProxyKind,
  type ProxyLineCounters,
} from './proxy-kinds.ts'
import { configYaml } from './workload.ts'

export type { ProxyKind, ProxyLineCounters } from './proxy-kinds.ts'

export interface ProxyReady {
  port: number
  /** From process start to listening: Node's boot, loading the config, compiling the rules. */
  startupMs: number
  /** RSS once the config is loaded and the proxy started, before any traffic (summed over its processes). */
  rssAtStart: number
  /** The cluster's worker processes (ours-w2); [] for a proxy that is this one process. */
  workerPids: number[]
}

export interface ProxySnapshot extends ProcessSnapshot {
  counters: ProxyLineCounters
  /**
   * RSS at the snapshot (rssMax is the highest sampled since the previous one): process.memoryUsage().rss, or for
   * several processes (ours-w2) the sum of this process's and each worker's VmRSS (/proc/<pid>/status).
   */
  rss: number
  /** `rss` process by process: [this process] or [the primary, worker 1, worker 2, …]; they sum to `rss`. */
  processRss: number[]
  /** This process's V8 heap in use (process.memoryUsage()); a cluster's workers' heaps are not observed. */
  heapUsed: number
  /**
   * The kernel's counters for the proxy's own listen socket (/proc/net/udp; null where it does not exist): `drops`
   * is every datagram the kernel discarded before the proxy could read it.
   */
  kernel: UdpSocketStats | null
  /**
   * Processes the figures are summed over: 1, or the primary and its workers (ours-w2). CPU time, run-queue wait
   * and RSS (rss, rssMax and rssPeak) cover them all; heapUsed, gcMinor and gcMajor are this process's only.
   */
  processes: number
  /** Lines each worker read (ours-w2, workerStats().linesIn); null for a single process. */
  workerLinesIn: number[] | null
}

/** A worker that answers the primary no faster than this may have left stale counts in the sum (primary.ts). */
const CLUSTER_ANSWER_TIMEOUT_MS = 1_000

type Compiled = Awaited<ReturnType<typeof loadAndCompile>>

/** A started proxy of any kind, as the orchestrator sees it. */
interface Started {
  port: number
  snapshot: () => Promise<ProxySnapshot>
  /** The cluster's worker processes (ours-w2); [] otherwise. */
  workerPids: () => number[]
}

/** Writes the kind's filter.yaml and loads it as the CLI does. */
async function loadConfig(kind: ProxyKind, rules: number, sinkPort: number): Promise<Compiled> {
  const dir = mkdtempSync(join(tmpdir(), 'statsd-bench-'))
  const file = join(dir, `bench-${rules}-rules.yaml`)
  writeFileSync(file, configYaml(rules, sinkPort, proxyConfig(kind)))
  return loadAndCompile(file).finally(() => rmSync(dir, { recursive: true, force: true }))
}

/** ours-w2: its figures are summed over this process and the worker processes it forks, if any. */
async function startClusterKind(kind: ProxyKind, compiled: Compiled): Promise<Started> {
  const { config } = compiled
  const workers = workerCount(config.workers)
  if (workers !== proxyWorkers(kind)) throw new Error(`${kind}: the config asks for ${workers} workers`)
  let closing = false
  // The bench measures these workers: one that dies (and would be replaced) makes the figures meaningless.
  cluster.on('exit', (worker, code, signal) => {
    if (closing) return
    console.error(`proxy-child ${kind}: worker ${worker.process.pid} exited (code ${code}, signal ${signal})`)
    process.exit(1)
  })
  // A worker also exits by itself when this process goes (its IPC channel closes); this covers exit() paths.
  process.on('exit', () => {
    closing = true
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL')
  })
  const workerPids = (): number[] =>
    Object.values(cluster.workers ?? {}).flatMap((w) => (w?.process.pid === undefined ? [] : [w.process.pid]))
  // As src/cli.ts starts workers > 1 (without the file watch, as the single-process kinds here run without it).
  const proxy = await startProxy(compiled, createLogger(config.log.level))
  const port = proxy.listen.port
  const stats = new ProcessGroupStats(workerPids)
  const snapshot = async (): Promise<ProxySnapshot> => {
    // The primary asks every worker for its counters; the figures stand for the middle of that round trip.
    const t0 = Number(process.hrtime.bigint())
    const c = await proxy.counters()
    const t1 = Number(process.hrtime.bigint())
    if ((t1 - t0) / 1e6 >= CLUSTER_ANSWER_TIMEOUT_MS)
      throw new Error(`${kind}: a worker took ${((t1 - t0) / 1e6).toFixed(0)} ms to report: the sums may be stale`)
    const group = stats.snapshot()
    const { rss, heapUsed } = process.memoryUsage()
    const processRss = [rss, ...workerPids().map(readProcRss)]
    return {
      ...group,
      timeNs: (t0 + t1) / 2,
      counters: lineCounters(c),
      rss: processRss.reduce((a, b) => a + b, 0),
      processRss,
      heapUsed,
      // One socket on the port: the primary's, shared by the workers.
      kernel: await readUdpSocketStats(port),
      processes: 1 + workerPids().length,
      workerLinesIn: [...proxy.workers().linesIn],
    }
  }
  return { port, snapshot, workerPids }
}

/** ours, ours-dgram, lean and naive: the proxy runs in this one process. */
async function startSingleKind(kind: ProxyKind, compiled: Compiled): Promise<Started> {
  const { config } = compiled
  let port: number
  let counters: () => ProxyLineCounters | Promise<ProxyLineCounters>
  if (kind !== 'naive') {
    const wanted = proxyConfig(kind)
    if (config.insights !== wanted.insights || config.receive.mode !== wanted.receive)
      throw new Error(`${kind}: the config has insights: ${config.insights}, receive.mode: ${config.receive.mode}`)
    if ((compiled.tags !== null) !== wanted.stripTags)
      throw new Error(`${kind}: the config ${compiled.tags === null ? 'has no' : 'has'} tag rules`)
    const proxy = await startProxy(compiled, createLogger(config.log.level))
    port = proxy.listen.port
    counters = async () => lineCounters(await proxy.counters())
  } else {
    const proxy = await startNaiveProxy({
      listen: config.listen,
      forward: config.forward,
      prefixes: unpackRules(compiled.rules).flatMap((rule) => (rule.kind === 'prefix' ? [rule.pattern] : [])),
      recvBufferSize: config.recvBufferSize,
    })
    port = proxy.port
    counters = () => naiveLineCounters(proxy.counters)
  }
  const stats = new ProcessStats()
  const snapshot = async (): Promise<ProxySnapshot> => {
    // Counters, CPU time and memory first, with nothing between them but a resolved promise (one process has
    // its counters at hand); the kernel's table is read after.
    const lines = counters()
    const own = stats.snapshot()
    const { rss, heapUsed } = process.memoryUsage()
    return {
      ...own,
      counters: await lines,
      rss,
      processRss: [rss],
      heapUsed,
      kernel: await readUdpSocketStats(port),
      processes: 1,
      workerLinesIn: null,
    }
  }
  return { port, snapshot, workerPids: () => [] }
}

async function main(): Promise<void> {
  const [kindArg, rulesArg, sinkPortArg] = process.argv.slice(2)
  if (!(PROXY_KINDS as readonly string[]).includes(kindArg) || rulesArg === undefined || sinkPortArg === undefined) {
    throw new Error(`usage: proxy-child <${PROXY_KINDS.join('|')}> <rules> <sink port>`)
  }
  const kind = kindArg as ProxyKind
  const compiled = await loadConfig(kind, Number(rulesArg), Number(sinkPortArg))
  const { port, snapshot, workerPids } =
    kind === 'ours-w2' ? await startClusterKind(kind, compiled) : await startSingleKind(kind, compiled)
  const pids = workerPids()
  const rssAtStart = process.memoryUsage.rss() + pids.reduce((sum, pid) => sum + readProcRss(pid), 0)
  serve({ port, startupMs: process.uptime() * 1000, rssAtStart, workerPids: pids } satisfies ProxyReady, { snapshot })
}

await main()
