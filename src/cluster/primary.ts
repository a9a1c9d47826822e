import cluster, { type Worker } from 'node:cluster'
import { fileURLToPath } from 'node:url'
import type { Settings } from '../config/config.ts'
import { DRAIN_TIMEOUT_MS, type DataPlane, type RulesInForce, type WorkerStats } from '../data-plane.ts'
import { RuleStats } from '../match/rule-set.ts'
import { siblingModule } from '../sibling-module.ts'
import type { SendQueue } from '../send/target.ts'
import { Counters, type CounterSnapshot } from '../telemetry/counters.ts'
import type { Logger } from '../telemetry/logger.ts'
import { mergeReports, TOP_TALKERS, type TopReport } from '../telemetry/top-talkers.ts'
import { WORKER_SLOT_ENV, type FromWorker, type ReadyMessage, type ToWorker, type WorkerSnapshot } from './messages.ts'
import { decodeFloat64, splitRules, type RulesPayload } from './transfer.ts'

// How long the primary waits for a worker's answer before reporting what it last heard; how fresh the summed
// counters are (self-metrics, the log line); the pause before a dead worker is replaced, so a crash loop does not
// spin; how long a worker gets to take new rules before the reload reports it as lagging.
const ANSWER_TIMEOUT_MS = 1_000
const REFRESH_INTERVAL_MS = 1_000
const RESTART_DELAY_MS = 1_000
const APPLY_TIMEOUT_MS = 10_000

export interface WorkerPlaneOptions {
  settings: Settings
  count: number
  /** The rules in force, which the control plane owns: what a worker starting now is given. */
  rules: () => RulesInForce
  log: Logger
}

const zeroCounters = (): CounterSnapshot => new Counters().snapshot()

function add(into: CounterSnapshot, from: CounterSnapshot): void {
  for (const key of Object.keys(into) as (keyof CounterSnapshot)[]) into[key] += from[key]
}

function payload(rules: RulesInForce): RulesPayload {
  return {
    generation: rules.generation,
    settings: rules.settings,
    rules: rules.rules,
    trie: rules.trie.data(),
    inherit: rules.inherit,
  }
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
  private readonly applied = new Map<number, (pauseMs: number | null) => void>()

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
    return awaitReply(this.answers, id, ANSWER_TIMEOUT_MS, () => post(worker, { type: 'snapshot', id, hits, top }))
  }

  /**
   * Resolves with the worker's longest event-loop pause once it runs this generation; null if it did not say so
   * in time; 0 for a worker not running (its replacement starts on the rules in force).
   */
  apply(rules: RulesPayload): Promise<number | null> {
    const worker = this.worker
    if (worker === null || !this.ready) return Promise.resolve(0)
    return awaitReply(this.applied, rules.generation, APPLY_TIMEOUT_MS, () => void sendRules(worker, rules))
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

/** Resolves with the reply filed under `key`, or null after `timeoutMs`. */
function awaitReply<T>(
  pending: Map<number, (reply: T | null) => void>,
  key: number,
  timeoutMs: number,
  ask: () => void,
): Promise<T | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => settle(null), timeoutMs)
    const settle = (reply: T | null): void => {
      clearTimeout(timer)
      pending.delete(key)
      resolve(reply)
    }
    pending.set(key, settle)
    ask()
  })
}

function post(worker: Worker, message: ToWorker): void {
  // A worker that is exiting has closed its channel; its exit handler takes care of it.
  if (worker.isConnected()) worker.send(message)
}

/** Part after part, each once the previous one is written: the primary never holds the whole set serialized. */
async function sendRules(worker: Worker, rules: RulesPayload): Promise<void> {
  for (const message of splitRules(rules)) {
    if (!worker.isConnected()) return
    await new Promise<void>((resolve) => worker.send(message, () => resolve()))
  }
}

/**
 * `workers: N`: N worker processes (src/cluster/worker.ts), each running the local data plane on the one listen
 * socket the cluster module shares among them, so the kernel hands each datagram to whichever worker is free,
 * even when it all comes from a single client socket (measured against SO_REUSEPORT, which pins each sender to
 * one worker: README, Workers). This process runs no data path: it sums the workers' reports, passes rule
 * updates to every worker, and replaces a worker that dies (its counts up to its last report are kept).
 */
export async function startWorkerPlane(options: WorkerPlaneOptions): Promise<DataPlane> {
  const { settings, count, log } = options
  cluster.setupPrimary({ exec: fileURLToPath(siblingModule(import.meta.url, 'worker')) })

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
    let startedOn = options.rules()
    slot.worker = worker
    worker.on('message', (message: FromWorker) => {
      switch (message.type) {
        case 'hello':
          startedOn = options.rules()
          return void sendRules(worker, { ...payload(startedOn), inherit: null })
        case 'ready':
          slot.ready = true
          // A reload while it was starting: the rules it started on are no longer in force.
          if (options.rules() !== startedOn) void sendRules(worker, { ...payload(options.rules()), inherit: null })
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

  const total = (read: (slot: Slot) => number): number => slots.reduce((n, slot) => n + read(slot), 0)
  const refreshTimer = setInterval(() => void refresh(), REFRESH_INTERVAL_MS)
  refreshTimer.unref()

  const close = async (): Promise<void> => {
    stopping = true
    clearInterval(refreshTimer)
    const running = slots.flatMap((slot) => (slot.worker === null ? [] : [slot.worker]))
    const exits = running.map((worker) => new Promise<void>((resolve) => worker.once('exit', () => resolve())))
    for (const worker of running) post(worker, { type: 'shutdown' })
    const killer = setTimeout(() => {
      const stuck = slots.filter((slot) => slot.worker !== null)
      log.warn({ workers: stuck.map((slot) => slot.index) }, 'workers did not drain in time: killing them')
      for (const slot of stuck) slot.worker?.process.kill('SIGKILL')
    }, DRAIN_TIMEOUT_MS + 3_000)
    await Promise.all(exits)
    clearTimeout(killer)
    sum()
  }
  let closing: Promise<void> | null = null
  return {
    listen: { address: started.address, port: started.port, recvBufferGranted: started.recvBufferGranted },
    forwardAddress: started.forwardAddress,
    maxPacketSize: started.maxPacketSize,
    sendPoolSize: started.sendPoolSize,
    counters: aggregate,
    refresh: async () => void (await refresh()),
    apply: async (next) => {
      const rules = payload(next)
      const pauses = await Promise.all(slots.map((slot) => slot.apply(rules)))
      const lagging = slots.filter((_, i) => pauses[i] === null).map((slot) => slot.index)
      if (lagging.length > 0)
        log.error({ workers: lagging, generation: next.generation }, 'workers did not confirm the new rules in time')
      log.info({ generation: next.generation, workerPauseMs: pauses }, 'workers run the new rules')
    },
    ruleHits: async () => {
      const current = options.rules()
      const stats = new RuleStats(current.rules, current.settings.mode, current.generation)
      for (const reply of await refresh(true, 0)) {
        // A worker still on the previous rules (mid-reload) has hits for another table.
        if (reply?.hits == null || reply.generation !== current.generation) continue
        const hits = { hits: decodeFloat64(reply.hits.hits), lastHitMs: decodeFloat64(reply.hits.lastHitMs) }
        if (hits.hits.length === stats.size && hits.lastHitMs.length === stats.size) stats.inherit(hits, null)
      }
      return stats
    },
    top: async (n): Promise<TopReport | null> => {
      if (!settings.insights) return null
      const replies = await refresh(false, TOP_TALKERS.capacity)
      return mergeReports(
        replies.flatMap((reply) => (reply?.top == null ? [] : [reply.top])),
        n,
      )
    },
    sendPool: () => ({ size: started.sendPoolSize * count, inUse: total((slot) => slot.sendPoolInUse) }),
    sendQueue: () => ({ count: total((slot) => slot.sendQueue.count), bytes: total((slot) => slot.sendQueue.bytes) }),
    workers: (): WorkerStats => ({
      configured: count,
      running: slots.filter((slot) => slot.ready).length,
      restarts,
      linesIn: slots.map((slot) => slot.linesIn),
    }),
    close: () => (closing ??= close()),
  }
}
