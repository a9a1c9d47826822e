// A proxy under test, alone in its process so its CPU time, RSS and GCs are its own.
//   node dist/bench/proxy-child.js <ours|naive> <rules> <sink port>
// Both kinds get their config the same way (the proxy's own YAML loader), so the only difference measured is
// the data path.
import { parseConfig } from '../src/config/load.ts'
import { startProxy } from '../src/proxy.ts'
import { createLogger } from '../src/telemetry/logger.ts'
import { serve } from './ipc.ts'
import { startNaiveProxy } from './naive-proxy.ts'
import { ProcessStats, type ProcessSnapshot } from './process-stats.ts'
import { configYaml } from './workload.ts'

export type ProxyKind = 'ours' | 'naive'

export interface ProxyReady {
  port: number
  /** From process start to listening: Node's boot, loading the config, compiling the rules. */
  startupMs: number
  /** RSS once the config is loaded and the proxy started, before any traffic. */
  rssAtStart: number
}

export interface ProxyLineCounters {
  datagramsIn: number
  linesForwarded: number
  linesBlocked: number
  /** Lines the proxy gave up on for want of a free send buffer (ours only). */
  linesDropped: number
  datagramsOut: number
}

export interface ProxySnapshot extends ProcessSnapshot {
  counters: ProxyLineCounters
}

const [kind, rulesArg, sinkPortArg] = process.argv.slice(2)
if ((kind !== 'ours' && kind !== 'naive') || rulesArg === undefined || sinkPortArg === undefined) {
  throw new Error('usage: proxy-child <ours|naive> <rules> <sink port>')
}
const config = parseConfig(`bench-${rulesArg}-rules.yaml`, configYaml(Number(rulesArg), Number(sinkPortArg)))

let port: number
let counters: () => ProxyLineCounters
if (kind === 'ours') {
  const proxy = await startProxy(config, createLogger(config.log.level))
  port = proxy.listener.port
  counters = () => {
    const c = proxy.counters
    return {
      datagramsIn: c.datagramsIn,
      linesForwarded: c.linesForwarded,
      linesBlocked: c.linesBlocked,
      linesDropped: c.linesDroppedBackpressure,
      datagramsOut: c.datagramsOut,
    }
  }
} else {
  const proxy = await startNaiveProxy({
    listen: config.listen,
    forward: config.forward,
    prefixes: config.blocklist.prefixes,
    recvBufferSize: config.recvBufferSize,
  })
  port = proxy.port
  counters = () => {
    const c = proxy.counters
    return { datagramsIn: c.datagramsIn, linesForwarded: c.linesForwarded, linesBlocked: c.linesBlocked, linesDropped: 0, datagramsOut: c.datagramsOut }
  }
}

const stats = new ProcessStats()
serve({ port, startupMs: process.uptime() * 1000, rssAtStart: process.memoryUsage.rss() } satisfies ProxyReady, {
  snapshot: (): ProxySnapshot => ({ ...stats.snapshot(), counters: counters() }),
})
