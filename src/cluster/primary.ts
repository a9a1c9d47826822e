import cluster, { type Worker } from 'node:cluster'
import { fileURLToPath } from 'node:url'
import type { WorkerStats } from '../admin/metrics.ts'
import type { AdminServer } from '../admin/server.ts'
import type { Compiled } from '../config/compile.ts'
import type { Settings } from '../config/config.ts'
import { formatProblem } from '../config/errors.ts'
import { DRAIN_TIMEOUT_MS, TOP_TALKERS, type SendQueue, type TopReport } from '../data-path.ts'
import { ruleCount } from '../match/packed-rules.ts'
import { RuleStats } from '../match/rule-set.ts'
import { startOperations, type Operations } from '../operations.ts'
import { Reloader, type ReloadResult, type ReloadTrigger } from '../reload/reloader.ts'
import { Counters, type CounterSnapshot } from '../telemetry/counters.ts'
import type { Logger } from '../telemetry/logger.ts'
import { mergeTop } from '../telemetry/top-talkers.ts'
import { WORKER_SLOT_ENV, type FromWorker, type ReadyMessage, type ToWorker, type WorkerSnapshot } from './messages.ts'
import { decodeFloat64, splitRules, type RulesPayload } from './transfer.ts'

/** How long the primary waits for a worker's answer before reporting what it last heard. */
const ANSWER_TIMEOUT_MS = 1_000
/** The aggregate counters (self-metrics, the log line) are this fresh. */
const REFRESH_INTERVAL_MS = 1_000
/** A worker that died is replaced after this pause, so a crash loop does not spin. */
const RESTART_DELAY_MS = 1_000
/** A worker gets this long to take new rules before the reload reports it as lagging. */
const APPLY_TIMEOUT_MS = 10_000

export interface ClusterOptions {
  watch?: { debounceMs: number; pollMs: number } | null
  reportIntervalMs?: number
  kernelDropsIntervalMs?: number
}

export interface ClusterProxy {
  readonly listen: { address: string; port: number }
  readonly admin: AdminServer | null
  /** Every worker's counters, summed (asked for now). */
  counters(): Promise<CounterSnapshot>
  workerStats(): WorkerStats
  config(): Settings
  /** Reloads the file and resolves once every worker runs the new rules. */
  reload(trigger: ReloadTrigger): Promise<ReloadResult>
  /** Every worker drains as the single process does; resolves when all have exited. */
  close(): Promise<void>
}

function zeroCounters(): CounterSnapshot {
  return new Counters().snapshot()
}

function add(into: CounterSnapshot, from: CounterSnapshot): void {
  for (const key of Object.keys(into) as (keyof CounterSnapshot)[]) into[key] += from[key]
}

/**
 * One worker process's place: its current process, and what it last reported. A replaced worker's counts move
 * to `retired`, so the sum over slots never goes down.
 */
class Slot {
  readonly index: number
  worker: Worker | null = null
  ready = false
  retired = zeroCounters()
  last = zeroCounters()
  sendPoolInUse = 0
  sendQueue: SendQueue = { count: 0, bytes: 0 }
  private nextId = 0
  private readonly answers = new Map<number, (reply: WorkerSnapshot | null) => void>()
  private readonly applied = new Map<number, (pauseMs: number) => void>()

  constructor(index: number) {
    this.index = index
  }

  get linesIn(): number {
    return this.retired.linesIn + this.last.linesIn
  }

  /** Resolves with the worker's snapshot, or null if it did not answer in time or is not running. */
  ask(hits: boolean, top: number): Promise<WorkerSnapshot | null> {
    const worker = this.worker
    if (worker === null || !this.ready) return Promise.resolve(null)
    const id = this.nextId++
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(null), ANSWER_TIMEOUT_MS)
      const settle = (reply: WorkerSnapshot | null): void => {
        clearTimeout(timer)
        this.answers.delete(id)
        resolve(reply)
      }
      this.answers.set(id, settle)
      post(worker, { type: 'snapshot', id, hits, top })
    })
  }

  /**
   * Resolves with the worker's longest event-loop pause once it runs this generation; null if it did not say so
   * in time; 0 for a worker not running (its replacement starts on the rules in force).
   */
  apply(payload: RulesPayload): Promise<number | null> {
    const worker = this.worker
    if (worker === null || !this.ready) return Promise.resolve(0)
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(null), APPLY_TIMEOUT_MS)
      const settle = (pauseMs: number | null): void => {
        clearTimeout(timer)
        this.applied.delete(payload.generation)
        resolve(pauseMs)
      }
      this.applied.set(payload.generation, settle)
      void sendRules(worker, payload)
    })
  }

  onSnapshot(reply: WorkerSnapshot): void {
    this.last = reply.counters
    this.sendPoolInUse = reply.sendPoolInUse
    this.sendQueue = reply.sendQueue
    this.answers.get(reply.id)?.(reply)
  }

  onApplied(generation: number, pauseMs: number): void {
    this.applied.get(generation)?.(pauseMs)
  }

  /** The worker is gone: its counts are kept, its pending questions answered with nothing. */
  retire(): void {
    add(this.retired, this.last)
    this.last = zeroCounters()
    this.sendPoolInUse = 0
    this.sendQueue = { count: 0, bytes: 0 }
    this.worker = null
    this.ready = false
    for (const settle of this.answers.values()) settle(null)
    for (const settle of this.applied.values()) settle(0)
  }
}

function post(worker: Worker, message: ToWorker): void {
  // A worker that is exiting has closed its channel; its exit handler takes care of it.
  if (worker.isConnected()) worker.send(message)
}

/** Part after part, each once the previous one is written: the primary never holds the whole set serialized. */
async function sendRules(worker: Worker, payload: RulesPayload): Promise<void> {
  for (const message of splitRules(payload)) {
    if (!worker.isConnected()) return
    await new Promise<void>((resolve) => worker.send(message, () => resolve()))
  }
}

function rulesPayload(generation: number, compiled: Compiled): RulesPayload {
  return { generation, settings: compiled.config, rules: compiled.rules, trie: compiled.trie.data(), inherit: compiled.inherit?.to ?? null }
}

/**
 * `workers: N`: N worker processes (src/cluster/worker.ts) read the one listen socket the cluster module shares
 * among them, so the kernel hands each datagram to whichever worker is free, even when it all comes from a
 * single client socket (bench/workers.ts measured this against SO_REUSEPORT, which pins each sender to one
 * worker). The primary runs no data path: it owns the config (reloads reach every worker), the admin server,
 * the kernel's drop count, self-metrics and the log line, all on the sum of the workers' counters. A worker
 * that dies is replaced; its counts up to its last report are kept.
 */
export async function startCluster(compiled: Compiled, count: number, log: Logger, options: ClusterOptions = {}): Promise<ClusterProxy> {
  const settings = compiled.config
  for (const warning of settings.warnings) log.warn(formatProblem(settings.file, warning))
  // Under a TypeScript test runner this module is .ts, compiled it is .js: the worker is its sibling either way.
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
  cluster.setupPrimary({ exec: fileURLToPath(new URL(`./worker${ext}`, import.meta.url)) })

  let generation = 0
  let inForce: RulesPayload = { ...rulesPayload(generation, compiled), inherit: null }
  let stats = new RuleStats(compiled.rules, settings.mode)
  const slots = Array.from({ length: count }, (_, i) => new Slot(i))
  const aggregate = new Counters()
  let restarts = 0
  let stopping = false
  let starting = true
  let startFailed: (err: Error) => void = () => {}

  const sum = (): void => {
    const total = zeroCounters()
    for (const slot of slots) {
      add(total, slot.retired)
      add(total, slot.last)
    }
    Object.assign(aggregate, total)
  }
  const refresh = async (hits = false, top = 0): Promise<(WorkerSnapshot | null)[]> => {
    const replies = await Promise.all(slots.map((slot) => slot.ask(hits, top)))
    sum()
    return replies
  }

  const fork = (slot: Slot, onReady: (ready: ReadyMessage) => void): void => {
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot.index) })
    let startedOn = inForce
    slot.worker = worker
    worker.on('message', (message: FromWorker) => {
      switch (message.type) {
        case 'hello':
          startedOn = inForce
          return void sendRules(worker, startedOn)
        case 'ready':
          slot.ready = true
          // A reload while it was starting: the rules it started on are no longer in force.
          if (inForce !== startedOn) void sendRules(worker, inForce)
          onReady(message)
          return
        case 'snapshot':
          return slot.onSnapshot(message)
        case 'applied':
          return slot.onApplied(message.generation, message.pauseMs)
        case 'stopped':
          slot.last = message.counters
          return
        case 'failed':
          startFailed(new Error(`worker ${slot.index}: ${message.error}`))
          return
      }
    })
    worker.on('exit', (code, signal) => {
      if (slot.worker !== worker) return
      slot.retire()
      sum()
      if (stopping) return
      if (starting) {
        startFailed(new Error(`worker ${slot.index} exited during start-up (code ${code}, signal ${signal})`))
        return
      }
      restarts++
      log.error({ worker: slot.index, code, signal, restarts }, 'worker exited unexpectedly; starting a new one')
      setTimeout(() => {
        if (!stopping) fork(slot, () => log.info({ worker: slot.index }, 'worker replaced'))
      }, RESTART_DELAY_MS).unref()
    })
  }

  let started: ReadyMessage
  try {
    started = await new Promise<ReadyMessage>((resolve, reject) => {
      startFailed = reject
      let waiting = count
      for (const slot of slots) {
        fork(slot, (ready) => {
          if (--waiting === 0) resolve(ready)
        })
      }
    })
  } catch (err) {
    stopping = true
    for (const slot of slots) slot.worker?.process.kill('SIGKILL')
    throw err
  }
  starting = false
  startFailed = (err) => log.error({ err: { message: err.message } }, 'a replacement worker could not start')
  const listen = { address: started.address, port: started.port, recvBufferGranted: started.recvBufferGranted }

  const reloader = new Reloader({
    file: settings.file,
    config: settings,
    rules: () => stats.table,
    hash: compiled.hash,
    log,
    watch: options.watch ?? null,
    apply: async (next) => {
      generation++
      const payload = rulesPayload(generation, next)
      inForce = { ...payload, inherit: null }
      stats = new RuleStats(next.rules, next.config.mode)
      log.level = next.config.log.level
      const pauses = await Promise.all(slots.map((slot) => slot.apply(payload)))
      const lagging = slots.filter((_, i) => pauses[i] === null).map((slot) => slot.index)
      if (lagging.length > 0) log.error({ workers: lagging, generation }, 'workers did not confirm the new rules in time')
      log.info({ generation, workerPauseMs: pauses }, 'workers run the new rules')
    },
  })

  const refreshTimer = setInterval(() => void refresh(), REFRESH_INTERVAL_MS)
  refreshTimer.unref()
  const workerStats = (): WorkerStats => ({
    configured: count,
    running: slots.filter((slot) => slot.ready).length,
    restarts,
    linesIn: slots.map((slot) => slot.linesIn),
  })

  let ready = true
  let operations: Operations
  try {
    operations = await startOperations(
      settings,
      {
        counters: aggregate,
        listen,
        rules: () => stats,
        ruleHits: async () => {
          const current = stats
          const replies = await refresh(true, 0)
          current.hits.fill(0)
          current.lastHitMs.fill(0)
          for (const reply of replies) {
            // A worker still on the previous rules (mid-reload) has hits for another table.
            if (reply?.hits == null || reply.generation !== generation) continue
            const hits = decodeFloat64(reply.hits.hits)
            const lastHitMs = decodeFloat64(reply.hits.lastHitMs)
            if (hits.length !== current.size || lastHitMs.length !== current.size) continue
            for (let i = 0; i < current.size; i++) {
              current.hits[i] += hits[i]
              if (lastHitMs[i] > current.lastHitMs[i]) current.lastHitMs[i] = lastHitMs[i]
            }
          }
          return current
        },
        top: async (n): Promise<TopReport | null> => {
          if (!settings.insights) return null
          const reports = (await refresh(false, TOP_TALKERS.capacity)).flatMap((reply) => (reply?.top == null ? [] : [reply.top]))
          return {
            sampleEvery: TOP_TALKERS.sampleEvery,
            memoryBytes: reports.reduce((bytes, report) => bytes + report.memoryBytes, 0),
            forwarded: mergeTop(reports.map((report) => report.forwarded), n),
            blocked: mergeTop(reports.map((report) => report.blocked), n),
          }
        },
        sendPool: () => ({ size: started.sendPoolSize * count, inUse: slots.reduce((n, slot) => n + slot.sendPoolInUse, 0) }),
        sendQueue: () => ({
          count: slots.reduce((n, slot) => n + slot.sendQueue.count, 0),
          bytes: slots.reduce((n, slot) => n + slot.sendQueue.bytes, 0),
        }),
        workers: workerStats,
        refresh: async () => void (await refresh()),
      },
      reloader,
      log,
      {
        reportIntervalMs: options.reportIntervalMs,
        kernelDropsIntervalMs: options.kernelDropsIntervalMs,
        // Not ready while no worker reads the socket (all of them died and are being replaced).
        ready: () => ready && slots.some((slot) => slot.ready),
        started: {
          forwardAddress: started.forwardAddress,
          rules: { prefixes: compiled.rules.prefixCount, names: ruleCount(compiled.rules) - compiled.rules.prefixCount, trieNodes: compiled.trie.nodeCount },
          maxPacketSize: started.maxPacketSize,
          sendPool: started.sendPoolSize,
          workers: count,
        },
      },
    )
  } catch (err) {
    clearInterval(refreshTimer)
    reloader.close()
    stopping = true
    for (const slot of slots) slot.worker?.process.kill('SIGKILL')
    throw err
  }

  let closing: Promise<void> | null = null
  const close = async (): Promise<void> => {
    ready = false
    stopping = true
    clearInterval(refreshTimer)
    reloader.close()
    const exits = slots.flatMap((slot) => (slot.worker === null ? [] : [new Promise<void>((resolve) => slot.worker!.once('exit', () => resolve()))]))
    for (const slot of slots) if (slot.worker !== null) post(slot.worker, { type: 'shutdown' })
    const killer = setTimeout(() => {
      const stuck = slots.filter((slot) => slot.worker !== null)
      log.warn({ workers: stuck.map((slot) => slot.index) }, 'workers did not drain in time: killing them')
      for (const slot of stuck) slot.worker?.process.kill('SIGKILL')
    }, DRAIN_TIMEOUT_MS + 3_000)
    await Promise.all(exits)
    clearTimeout(killer)
    sum()
    await operations.close()
    log.info({ counters: aggregate.snapshot(), workers: workerStats() }, 'statsd-filter-proxy stopped')
  }

  return {
    listen,
    admin: operations.admin,
    counters: async () => {
      await refresh()
      return aggregate.snapshot()
    },
    workerStats,
    config: () => reloader.current,
    reload: (trigger) => reloader.reload(trigger),
    close: () => (closing ??= close()),
  }
}
