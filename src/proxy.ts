import { readFileSync } from 'node:fs'
import type { AdminServer } from './admin/server.ts'
import { workerCount } from './cluster/worker-count.ts'
import { startWorkerPlane } from './cluster/primary.ts'
import { compileConfig, type Compiled } from './config/compile.ts'
import type { Config, Settings } from './config/config.ts'
import { formatProblem } from './config/errors.ts'
import { startLocalPlane, type DataPlane, type RulesInForce, type WorkerStats } from './data-plane.ts'
import { admissionFor, shareRules, type RuleStats, type RunnableRules } from './match/rule-set.ts'
import { Trie } from './match/trie.ts'
import type { ResolvedAddress } from './net/address.ts'
import { startOperations, type Operations } from './operations.ts'
import { releaseFreeMemory } from './receive/libc.ts'
import type { ListenInfo } from './receive/listener.ts'
import { Reloader, type ReloadResult, type ReloadTrigger } from './reload/reloader.ts'
import type { SendQueue } from './send/target.ts'
import type { CardinalityView } from './telemetry/cardinality.ts'
import type { CounterSnapshot } from './telemetry/counters.ts'
import type { Logger } from './telemetry/logger.ts'
import type { TopReport } from './telemetry/top-talkers.ts'

export const WATCH = { debounceMs: 200, pollMs: 5_000 } as const

export interface ProxyOptions {
  /** Watch the config file and reload on change (and on reload()); off for configs built in memory. */
  watch?: { debounceMs: number; pollMs: number } | null
  /** Counters are logged this often at info; tests shorten it. */
  reportIntervalMs?: number
  kernelDropsIntervalMs?: number
  /** How often the forward host's name is resolved again (reader 0 only: functions do not cross to threads). */
  dnsIntervalMs?: number
  resolve?: (host: string) => Promise<ResolvedAddress>
}

/** A running proxy, whatever its topology. */
export interface Proxy {
  readonly listen: ListenInfo
  readonly maxPacketSize: number
  readonly admin: AdminServer | null
  /** The data plane's counters, brought up to date. */
  counters(): Promise<CounterSnapshot>
  /** The rules in force with their hits up to date. */
  rules(): Promise<RuleStats>
  top(n: number): Promise<TopReport | null>
  cardinality(n: number): Promise<CardinalityView | null>
  sendQueue(): SendQueue
  workers(): WorkerStats
  /** The settings in force (mode and log level follow reloads; the rest is what the proxy started with). */
  config(): Settings
  /** Re-reads the config file; rejects for a config that did not come from a file. */
  reload(trigger: ReloadTrigger): Promise<ReloadResult>
  /** Stops receiving, sends what is buffered, waits (bounded) for sends in flight, closes everything. */
  close(): Promise<void>
}

/**
 * The control plane, written once over either data plane: it owns the rules in force (with their generation,
 * mode and log level), reloads them, and runs the operator's side (admin, self-metrics, kernel drops, the
 * start, counters and stopped lines). Starts on a config (compiled here) or on one compiled off the event loop.
 */
export async function startProxy(source: Config | Compiled, log: Logger, options: ProxyOptions = {}): Promise<Proxy> {
  const compiled = 'blocklist' in source ? compileConfig(source) : source
  const settings = compiled.config
  for (const warning of settings.warnings) log.warn(formatProblem(settings.file, warning))
  const count = workerCount(settings.workers)
  // Reader threads share one copy of the rules (a rule set from the loader thread is there already).
  const inMemory = ({ rules, trie, tags }: RunnableRules): RunnableRules => {
    if (count === 1) return { rules, trie, tags }
    const inShared = shareRules({ rules, trie: trie.data(), tags })
    return { ...inShared, trie: new Trie(inShared.trie) }
  }
  const start = inMemory(compiled)
  let inForce: RulesInForce = {
    generation: 0,
    settings,
    ...start,
    admission: admissionFor(start.tags, null, null),
    inherit: null,
  }
  const planeOptions = { settings, rules: inForce, log, dnsIntervalMs: options.dnsIntervalMs, resolve: options.resolve }
  const plane: DataPlane =
    count > 1 ? await startWorkerPlane({ ...planeOptions, count }) : await startLocalPlane(planeOptions)

  const reloader = new Reloader({
    file: settings.file,
    settings: () => inForce.settings,
    rules: () => inForce,
    hash: compiled.hash,
    log,
    watch: options.watch ?? null,
    apply: async (next) => {
      const inherit = next.inherit !== null && next.inherit.from === inForce.rules ? next.inherit.to : null
      const runnable = inMemory(next)
      inForce = {
        generation: inForce.generation + 1,
        settings: next.config,
        ...runnable,
        admission: admissionFor(runnable.tags, inForce, inherit),
        inherit,
      }
      log.level = next.config.log.level
      await plane.apply(inForce)
      releaseMemory(log)
    },
  })

  let closing: Promise<void> | null = null
  let operations: Operations
  try {
    operations = await startOperations({
      settings,
      plane,
      rules: () => inForce,
      reloader,
      log,
      ready: () => closing === null && plane.workers().running > 0,
      reportIntervalMs: options.reportIntervalMs,
      kernelDropsIntervalMs: options.kernelDropsIntervalMs,
    })
  } catch (err) {
    reloader.close()
    await plane.close()
    throw err
  }

  releaseMemory(log)

  const close = async (): Promise<void> => {
    await plane.close()
    reloader.close()
    await operations.close()
    log.info({ counters: plane.counters.snapshot(), workers: plane.workers() }, 'statsd-filter-proxy stopped')
  }
  return {
    listen: plane.listen,
    maxPacketSize: plane.maxPacketSize,
    admin: operations.admin,
    counters: async () => {
      await plane.refresh()
      return plane.counters.snapshot()
    },
    rules: () => plane.ruleHits(),
    top: (n) => plane.top(n),
    cardinality: (n) => plane.cardinality(n),
    sendQueue: () => plane.sendQueue(),
    workers: () => plane.workers(),
    config: () => inForce.settings,
    reload: (trigger) => reloader.reload(trigger),
    close: () => (closing ??= close()),
  }
}

/**
 * After start-up and after each reload: what the compile (and a loader thread, once it has exited) freed goes back
 * to the kernel (see releaseFreeMemory), RssAnon before and after logged at debug (read only then).
 */
function releaseMemory(log: Logger): void {
  const debug = log.isLevelEnabled('debug')
  const before = debug ? rssAnonKb() : null
  void releaseFreeMemory().then((released) => {
    if (released && debug)
      log.debug({ rssAnonKb: { before, after: rssAnonKb() } }, 'free memory returned to the system')
  })
}

/** RssAnon of this process in kB (Linux), or null. */
function rssAnonKb(): number | null {
  try {
    const status = readFileSync('/proc/self/status', 'latin1')
    const at = status.indexOf('RssAnon:')
    return at === -1 ? null : parseInt(status.slice(at + 8), 10)
  } catch {
    return null
  }
}
