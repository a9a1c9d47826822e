// A proxy under test, alone in its process so its CPU time, RSS and GCs are its own.
//   node dist/bench/proxy-child.js <ours|lean|naive> <rules> <sink port>
// Every kind loads its config the way the CLI does (a YAML file, read and compiled on a worker thread), so the
// only difference measured is the data path; the naive proxy simply ignores the compiled trie. `lean` is ours
// with `insights: false` (no per-rule hit counts, no top-talker sketches): what those cost on the hot path.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { unpackRules } from '../src/match/packed-rules.ts'
import { loadAndCompile } from '../src/config/compile.ts'
import { startProxy } from '../src/proxy.ts'
import { readUdpSocketStats, type UdpSocketStats } from '../src/telemetry/kernel-drops.ts'
import { createLogger } from '../src/telemetry/logger.ts'
import { serve } from './ipc.ts'
import { startNaiveProxy } from './naive-proxy.ts'
import { ProcessStats, type ProcessSnapshot } from './process-stats.ts'
import { configYaml } from './workload.ts'

export type ProxyKind = 'ours' | 'lean' | 'naive'
export const PROXY_KINDS: readonly ProxyKind[] = ['ours', 'lean', 'naive']

export interface ProxyReady {
  port: number
  /** From process start to listening: Node's boot, loading the config, compiling the rules. */
  startupMs: number
  /** RSS once the config is loaded and the proxy started, before any traffic. */
  rssAtStart: number
}

export interface ProxyLineCounters {
  datagramsIn: number
  /** Every line read; each ends forwarded, blocked, malformed or dropped. */
  linesIn: number
  linesForwarded: number
  linesBlocked: number
  /** Lines that are not metrics, events or service checks (ours only; the naive proxy forwards them). */
  linesMalformed: number
  /** Lines the proxy gave up on for want of a free send buffer (ours only). */
  linesDropped: number
  datagramsOut: number
}

export interface ProxySnapshot extends ProcessSnapshot {
  counters: ProxyLineCounters
  /** process.memoryUsage() at the snapshot (rssMax is the highest sampled since the previous one). */
  rss: number
  heapUsed: number
  /**
   * The kernel's counters for the proxy's own listen socket (/proc/net/udp; null where it does not exist): `drops`
   * is every datagram the kernel discarded before the proxy could read it.
   */
  kernel: UdpSocketStats | null
}

const [kind, rulesArg, sinkPortArg] = process.argv.slice(2)
if (!(PROXY_KINDS as readonly string[]).includes(kind) || rulesArg === undefined || sinkPortArg === undefined) {
  throw new Error(`usage: proxy-child <${PROXY_KINDS.join('|')}> <rules> <sink port>`)
}
const dir = mkdtempSync(join(tmpdir(), 'statsd-bench-'))
const file = join(dir, `bench-${rulesArg}-rules.yaml`)
writeFileSync(file, configYaml(Number(rulesArg), Number(sinkPortArg), kind !== 'lean'))
const compiled = await loadAndCompile(file).finally(() => rmSync(dir, { recursive: true, force: true }))
const { config } = compiled

let port: number
let counters: () => ProxyLineCounters
if (kind === 'ours' || kind === 'lean') {
  if (config.insights !== (kind === 'ours')) throw new Error(`${kind}: the config has insights: ${config.insights}`)
  const proxy = await startProxy(config, createLogger(config.log.level), { compiled })
  port = proxy.listener.port
  counters = () => {
    const c = proxy.counters
    return {
      datagramsIn: c.datagramsIn,
      linesIn: c.linesIn,
      linesForwarded: c.linesForwarded,
      linesBlocked: c.linesBlocked,
      linesMalformed: c.linesMalformed,
      linesDropped: c.linesDroppedBackpressure,
      datagramsOut: c.datagramsOut,
    }
  }
} else {
  const proxy = await startNaiveProxy({
    listen: config.listen,
    forward: config.forward,
    prefixes: unpackRules(compiled.rules).flatMap((rule) => (rule.kind === 'prefix' ? [rule.pattern] : [])),
    recvBufferSize: config.recvBufferSize,
  })
  port = proxy.port
  counters = () => {
    const c = proxy.counters
    return {
      datagramsIn: c.datagramsIn,
      linesIn: c.linesIn,
      linesForwarded: c.linesForwarded,
      linesBlocked: c.linesBlocked,
      linesMalformed: 0,
      linesDropped: 0,
      datagramsOut: c.datagramsOut,
    }
  }
}

const stats = new ProcessStats()
serve({ port, startupMs: process.uptime() * 1000, rssAtStart: process.memoryUsage.rss() } satisfies ProxyReady, {
  snapshot: async (): Promise<ProxySnapshot> => {
    // Counters, CPU time and memory first, in one synchronous step; the kernel's table is read after.
    const own = stats.snapshot()
    const lines = counters()
    const { rss, heapUsed } = process.memoryUsage()
    return { ...own, counters: lines, rss, heapUsed, kernel: await readUdpSocketStats(port) }
  },
})
