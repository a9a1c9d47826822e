import type { Settings } from '../config/config.ts'
import { ruleKinds, type RunnableRules } from '../match/rule-set.ts'
import { loadAndCompile, type Compiled } from '../config/compile.ts'
import { ConfigError, formatProblem } from '../config/errors.ts'
import type { Logger } from '../telemetry/logger.ts'
import { FileWatch } from './watch.ts'

export type ReloadTrigger = 'watch' | 'signal' | 'http'

export interface ReloadResult {
  ok: boolean
  /** False when the file's content was what is already running (a watch event without a real change). */
  changed: boolean
  /** Settings that differ in the file but apply only after a restart. */
  restartNeeded: string[]
  /** file:line:column: path: reason, one per problem, when not ok. */
  errors: string[]
}

export interface ReloadStatus {
  successes: number
  failures: number
  /** When the last reload attempt ended (ms since the epoch); null before any. */
  lastAttemptMs: number | null
  lastOk: boolean | null
  /** Hash of the config file in force; null when it was not loaded from a file. */
  hash: string | null
}

/** Settings bound to sockets, buffers or timers made at start: a reload reports them instead of applying them. */
const RESTART_ONLY: readonly (keyof Settings)[] = [
  'listen',
  'forward',
  'maxPacketSize',
  'recvBufferSize',
  'sendBufferSize',
  'admin',
  'selfMetrics',
  'insights',
  'workers',
  'cardinalityView',
]

export interface ReloaderOptions {
  file: string
  /** The settings in force (owned by the caller, which apply() updates). */
  settings: () => Settings
  /** The rule table in force, whose hit history a reload carries over. */
  rules: () => RunnableRules
  /** Of the file in force; null for a config built in memory, which cannot be reloaded. */
  hash: string | null
  log: Logger
  /**
   * Puts the new rules (and mode, log level) in force, between two datagrams; with workers, resolves once
   * every worker has them.
   */
  apply: (compiled: Compiled) => void | Promise<void>
  watch: { debounceMs: number; pollMs: number } | null
}

/**
 * Reloads the config file. A reload parses, validates and compiles the whole file on a worker
 * thread first; an invalid file changes nothing but the failure count and the log. Reloads never overlap:
 * triggers that arrive during one are served by a single reload right after it.
 */
export class Reloader {
  private readonly options: ReloaderOptions
  private readonly watcher: FileWatch | null
  /** Settles when the last reload asked for has ended; the next one starts after it. */
  private tail: Promise<unknown> = Promise.resolve()
  /** A reload asked for but not started yet: later triggers join it. */
  private waiting: Promise<ReloadResult> | null = null
  readonly status: ReloadStatus

  constructor(options: ReloaderOptions) {
    this.options = options
    this.status = { successes: 0, failures: 0, lastAttemptMs: null, lastOk: null, hash: options.hash }
    this.watcher =
      options.watch === null || options.hash === null
        ? null
        : new FileWatch(options.file, { ...options.watch, onChange: () => void this.reload('watch') })
  }

  reload(trigger: ReloadTrigger): Promise<ReloadResult> {
    if (this.options.hash === null)
      return Promise.reject(new Error('this config was not loaded from a file: there is nothing to reload'))
    if (this.waiting !== null) return this.waiting
    const next = this.tail.then(() => {
      this.waiting = null
      return this.attempt(trigger)
    })
    this.waiting = next
    this.tail = next.catch(() => {})
    return next
  }

  close(): void {
    this.watcher?.close()
  }

  private async attempt(trigger: ReloadTrigger): Promise<ReloadResult> {
    const { file, log } = this.options
    let compiled: Compiled
    try {
      const current = this.options.rules()
      compiled = await loadAndCompile(file, { rules: current.rules, tagRules: current.tags?.info ?? [] })
    } catch (err) {
      const errors =
        err instanceof ConfigError ? err.problems.map((p) => formatProblem(file, p)) : [String((err as Error).message)]
      this.status.failures++
      this.status.lastAttemptMs = Date.now()
      this.status.lastOk = false
      log.error({ trigger, file, errors }, 'config reload failed: the rules in force stay unchanged')
      return { ok: false, changed: false, restartNeeded: [], errors }
    }
    // A watch event for the content in force changes nothing, unless it ends a failure (the file put back).
    if (trigger === 'watch' && compiled.hash === this.status.hash && this.status.lastOk !== false) {
      return { ok: true, changed: false, restartNeeded: [], errors: [] }
    }

    const current = this.options.settings()
    const restartNeeded = RESTART_ONLY.filter(
      (key) => JSON.stringify(compiled.config[key]) !== JSON.stringify(current[key]),
    )
    // The running proxy keeps the values it was started with; the file's rules, mode and log level apply now.
    const next: Settings = { ...compiled.config }
    for (const key of restartNeeded) (next as unknown as Record<string, unknown>)[key] = current[key]
    await this.options.apply({ ...compiled, config: next })
    this.status.successes++
    this.status.lastAttemptMs = Date.now()
    this.status.lastOk = true
    this.status.hash = compiled.hash
    for (const warning of compiled.config.warnings) log.warn(formatProblem(file, warning))
    if (restartNeeded.length > 0) {
      log.warn(
        { keys: restartNeeded },
        'config reload: these settings changed in the file but apply only after a restart',
      )
    }
    log.info({ trigger, file, hash: compiled.hash, mode: next.mode, rules: ruleKinds(compiled) }, 'config reloaded')
    return { ok: true, changed: true, restartNeeded, errors: [] }
  }
}
