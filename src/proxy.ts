import type { AdminServer } from './admin/server.ts'
import { compileConfig, type Compiled } from './config/compile.ts'
import type { Config, Settings } from './config/config.ts'
import { formatProblem } from './config/errors.ts'
import { startDataPath, type DataPathOptions } from './data-path.ts'
import type { Insights } from './filter.ts'
import { RuleSet } from './match/rule-set.ts'
import { ruleCount } from './match/packed-rules.ts'
import { startOperations } from './operations.ts'
import type { UdpListener } from './receive/udp-listener.ts'
import { Reloader, type ReloadResult, type ReloadTrigger } from './reload/reloader.ts'
import type { UdpTarget } from './send/udp-target.ts'
import type { Counters } from './telemetry/counters.ts'
import type { Logger } from './telemetry/logger.ts'

export const WATCH = { debounceMs: 200, pollMs: 5_000 } as const

export interface ProxyOptions extends DataPathOptions {
  /** The config compiled off the event loop (loadAndCompile); the config is compiled here when absent. */
  compiled?: Compiled
  /** Watch config.file and reload on change (and on reload()); off for configs built in memory. */
  watch?: { debounceMs: number; pollMs: number } | null
  /** Counters are logged this often at info; tests shorten it. */
  reportIntervalMs?: number
  kernelDropsIntervalMs?: number
}

export interface Proxy {
  readonly counters: Counters
  readonly listener: UdpListener
  readonly target: UdpTarget
  readonly maxPacketSize: number
  readonly admin: AdminServer | null
  readonly insights: Insights | null
  /** The rules in force. */
  rules(): RuleSet
  /** The settings in force (mode and log level follow reloads; the rest is what the proxy started with). */
  config(): Settings
  /** Re-reads config.file; rejects for a config that did not come from a file. */
  reload(trigger: ReloadTrigger): Promise<ReloadResult>
  /** Stops receiving, sends what is buffered, waits (bounded) for sends in flight, closes the sockets. */
  close(): Promise<void>
}

/** One process: the data path with the operator's side around it. Starts on a config (compiled here), or on its settings with `options.compiled`. */
export async function startProxy(config: Config, log: Logger, options?: ProxyOptions): Promise<Proxy>
export async function startProxy(config: Settings, log: Logger, options: ProxyOptions & { compiled: Compiled }): Promise<Proxy>
export async function startProxy(config: Config | Settings, log: Logger, options: ProxyOptions = {}): Promise<Proxy> {
  for (const warning of config.warnings) log.warn(formatProblem(config.file, warning))
  const compiled = options.compiled ?? compileConfig(config as Config)
  const path = await startDataPath(config, new RuleSet(compiled.rules, compiled.trie, config.mode), log, options)
  const { listener, target } = path

  const reloader = new Reloader({
    file: config.file,
    config: compiled.config,
    rules: () => path.rules().table,
    hash: compiled.hash,
    log,
    watch: options.watch ?? null,
    apply: (next) => {
      const rules = new RuleSet(next.rules, next.trie, next.config.mode)
      const current = path.rules()
      if (next.inherit !== null && next.inherit.from === current.table) rules.inherit(current, next.inherit.to)
      path.setRules(rules)
      log.level = next.config.log.level
    },
  })

  let ready = true
  let operations
  try {
    operations = await startOperations(
      config,
      {
        counters: path.counters,
        listen: { address: listener.address, port: listener.port, recvBufferGranted: listener.recvBufferGranted },
        rules: () => path.rules(),
        ruleHits: async () => path.rules(),
        top: async (n) => path.top(n),
        sendPool: () => path.sendPool(),
        sendQueue: () => target.queue(),
        workers: () => ({ configured: 1, running: 1, restarts: 0, linesIn: [path.counters.linesIn] }),
        refresh: async () => {},
      },
      reloader,
      log,
      {
        reportIntervalMs: options.reportIntervalMs,
        kernelDropsIntervalMs: options.kernelDropsIntervalMs,
        ready: () => ready,
        started: {
          forwardAddress: target.address.address,
          rules: { prefixes: compiled.rules.prefixCount, names: ruleCount(compiled.rules) - compiled.rules.prefixCount, trieNodes: compiled.trie.nodeCount },
          maxPacketSize: path.maxPacketSize,
          sendPool: path.sendPool().size,
          workers: 1,
        },
      },
    )
  } catch (err) {
    reloader.close()
    await path.close()
    throw err
  }

  let closing: Promise<void> | null = null
  const close = async (): Promise<void> => {
    ready = false
    await path.close()
    reloader.close()
    await operations.close()
    log.info({ counters: path.counters.snapshot() }, 'statsd-filter-proxy stopped')
  }
  return {
    counters: path.counters,
    listener,
    target,
    maxPacketSize: path.maxPacketSize,
    admin: operations.admin,
    insights: path.insights,
    rules: () => path.rules(),
    config: () => reloader.current,
    reload: (trigger) => reloader.reload(trigger),
    close: () => (closing ??= close()),
  }
}
