import { Worker } from 'node:worker_threads'
import type { Settings } from '../config/config.ts'
import {
  DRAIN_TIMEOUT_MS,
  startLocalPlane,
  type DataPlane,
  type LocalPlane,
  type RulesInForce,
  type WorkerStats,
} from '../data-plane.ts'
import { RuleStats } from '../match/rule-set.ts'
import type { ResolvedAddress } from '../net/address.ts'
import { siblingModule } from '../sibling-module.ts'
import type { SendQueue } from '../send/target.ts'
import { Counters } from '../telemetry/counters.ts'
import type { Logger } from '../telemetry/logger.ts'
import { mergeCardinality, type CardinalityView } from '../telemetry/cardinality.ts'
import { mergeReports, TOP_TALKERS, type TopReport } from '../telemetry/top-talkers.ts'
import type { FromReader, ReaderData, ReaderSnapshot, RulesPayload, ToReader } from './messages.ts'

// How long the control plane waits for a reader's answer before reporting what it last heard; how fresh the
// summed counters are (self-metrics, the log line); how long a reader gets to take new rules before the reload
// reports it as lagging; how long past the drain a reader may take to stop before it is terminated.
const ANSWER_TIMEOUT_MS = 1_000
const REFRESH_INTERVAL_MS = 1_000
const APPLY_TIMEOUT_MS = 10_000
const STOP_GRACE_MS = DRAIN_TIMEOUT_MS + 3_000

export interface WorkerPlaneOptions {
  settings: Settings
  count: number
  /** The rules in force at start, their arrays in shared memory (shareRules). */
  rules: RulesInForce
  log: Logger
  /** For reader 0, on this thread (functions do not cross to threads). */
  dnsIntervalMs?: number
  resolve?: (host: string) => Promise<ResolvedAddress>
}

const payload = (rules: RulesInForce): RulesPayload => ({ ...rules, trie: rules.trie.data() })

/** One reader thread: its worker, and what it last reported of what the shared counters do not hold. */
class Reader {
  readonly index: number
  readonly worker: Worker
  ready = false
  stopped = false
  sendPoolInUse = 0
  sendQueue: SendQueue = { count: 0, bytes: 0 }
  private nextId = 0
  private readonly answers = new Map<number, (reply: ReaderSnapshot | null) => void>()
  private readonly applied = new Map<number, (pauseMs: number | null) => void>()

  constructor(index: number, worker: Worker) {
    this.index = index
    this.worker = worker
  }

  post(message: ToReader): void {
    if (!this.stopped) this.worker.postMessage(message)
  }

  /** Resolves with the reader's snapshot, or null if it did not answer in time or is not running. */
  ask(hits: boolean, top: number, cardinality = 0): Promise<ReaderSnapshot | null> {
    if (!this.ready || this.stopped) return Promise.resolve(null)
    const id = this.nextId++
    return awaitReply(this.answers, id, ANSWER_TIMEOUT_MS, () =>
      this.post({ type: 'snapshot', id, hits, top, cardinality }),
    )
  }

  /** Resolves with the reader's longest event-loop pause once it runs this generation; null if not in time. */
  apply(rules: RulesPayload): Promise<number | null> {
    if (!this.ready || this.stopped) return Promise.resolve(0)
    return awaitReply(this.applied, rules.generation, APPLY_TIMEOUT_MS, () => this.post({ type: 'rules', rules }))
  }

  onSnapshot(reply: ReaderSnapshot): void {
    this.sendPoolInUse = reply.sendPoolInUse
    this.sendQueue = reply.sendQueue
    this.answers.get(reply.id)?.(reply)
  }

  onApplied(generation: number, pauseMs: number): void {
    this.applied.get(generation)?.(pauseMs)
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

/**
 * `workers: N`: this thread's local data plane (reader 0) opens the listen socket, and N - 1 worker threads
 * (src/cluster/reader.ts) read the same descriptor, each with its own receive area, tick, pipeline and forward
 * socket, so the kernel hands each datagram to whichever reader asks first, even when all come from one client.
 * The rules' arrays are in shared memory (one copy for every reader, nothing serialized on reload) and so are
 * the counters (each reader writes its own slots; the sum is read live). A reader thread that fails takes the
 * process down: its state is the process's, and a restarted pod is cleaner than a proxy reading with fewer.
 */
export async function startWorkerPlane(options: WorkerPlaneOptions): Promise<DataPlane> {
  const { settings, count, log } = options
  // An idle reader waits in poll(2) on a libuv pool thread. The pool (4 threads unless UV_THREADPOOL_SIZE says
  // otherwise) also serves fs and dns.lookup: it must hold every reader's wait and still have 4 for the rest.
  // This takes effect when the pool has not started yet, as in the CLI (nothing before this reads a file
  // asynchronously or resolves a name).
  process.env.UV_THREADPOOL_SIZE = String(Math.max(Number(process.env.UV_THREADPOOL_SIZE ?? 4) || 4, count + 4))
  const slots = new Float64Array(new SharedArrayBuffer(count * Counters.size * 8))
  const slot = (i: number): Float64Array => slots.subarray(i * Counters.size, (i + 1) * Counters.size)
  const local: LocalPlane = await startLocalPlane({
    settings,
    rules: options.rules,
    log,
    counters: new Counters(slot(0)),
    dnsIntervalMs: options.dnsIntervalMs,
    resolve: options.resolve,
  })
  const socket = local.socket
  if (socket === null) {
    log.warn({ workers: count }, 'workers need receive.mode batch: reading the socket with one reader')
    return local
  }

  let current = options.rules
  let stopping = false
  const readers: Reader[] = []
  const failed = (reader: Reader, err: Error): never => {
    log.fatal({ worker: reader.index, err }, 'a reader thread failed: stopping the proxy')
    throw err
  }
  try {
    await Promise.all(
      Array.from({ length: count - 1 }, (_, i) => {
        const index = i + 1
        const data: ReaderData = { index, socket, counters: slot(index), rules: payload(current) }
        const reader = new Reader(index, new Worker(siblingModule(import.meta.url, 'reader'), { workerData: data }))
        readers.push(reader)
        const readerLog = log.child({ worker: index })
        return new Promise<void>((resolve, reject) => {
          reader.worker.on('message', (message: FromReader) => {
            switch (message.type) {
              case 'ready':
                reader.ready = true
                return resolve()
              case 'failed':
                return reject(new Error(`worker ${index}: ${message.error}`))
              case 'log':
                return relay(readerLog, message.line)
              case 'snapshot':
                return reader.onSnapshot(message)
              case 'applied':
                return reader.onApplied(message.generation, message.pauseMs)
            }
          })
          reader.worker.on('error', (err) => (reader.ready ? failed(reader, err) : reject(err)))
          reader.worker.on('exit', (code) => {
            reader.stopped = true
            if (!stopping && reader.ready) failed(reader, new Error(`worker ${index} exited (code ${code})`))
            reject(new Error(`worker ${index} exited during start-up (code ${code})`))
          })
        })
      }),
    )
  } catch (err) {
    stopping = true
    await Promise.all(readers.map((reader) => reader.worker.terminate()))
    await local.close()
    throw err
  }

  const aggregate = new Counters()
  const sum = (): void => {
    const total = aggregate.values
    total.fill(0)
    for (let i = 0; i < slots.length; i++) total[i % Counters.size] += slots[i]
  }
  const asks = async (hits: boolean, top: number, cardinality = 0): Promise<(ReaderSnapshot | null)[]> => {
    const replies = await Promise.all(readers.map((reader) => reader.ask(hits, top, cardinality)))
    sum()
    return replies
  }
  const refreshTimer = setInterval(() => void asks(false, 0), REFRESH_INTERVAL_MS)
  refreshTimer.unref()
  const others = (read: (reader: Reader) => number): number => readers.reduce((n, reader) => n + read(reader), 0)

  const close = async (): Promise<void> => {
    stopping = true
    clearInterval(refreshTimer)
    const running = readers.filter((reader) => !reader.stopped)
    const exits = running.map((reader) => new Promise<void>((resolve) => reader.worker.once('exit', () => resolve())))
    for (const reader of running) reader.post({ type: 'shutdown' })
    const killer = setTimeout(() => {
      const stuck = readers.filter((reader) => !reader.stopped)
      log.warn({ workers: stuck.map((reader) => reader.index) }, 'workers did not drain in time: stopping them')
      for (const reader of stuck) void reader.worker.terminate()
    }, STOP_GRACE_MS)
    await Promise.all(exits)
    clearTimeout(killer)
    // Last: reader 0 owns the socket the others read.
    await local.close()
    sum()
  }
  let closing: Promise<void> | null = null
  sum()
  return {
    listen: local.listen,
    forwardAddress: local.forwardAddress,
    maxPacketSize: local.maxPacketSize,
    sendPoolSize: local.sendPoolSize,
    counters: aggregate,
    refresh: async () => void (await asks(false, 0)),
    apply: async (next) => {
      current = next
      const rules = payload(next)
      const [, ...pauses] = await Promise.all([
        local.apply(next).then(() => 0),
        ...readers.map((reader) => reader.apply(rules)),
      ])
      const lagging = readers.filter((_, i) => pauses[i] === null).map((reader) => reader.index)
      if (lagging.length > 0)
        log.error({ workers: lagging, generation: next.generation }, 'workers did not confirm the new rules in time')
      log.info({ generation: next.generation, workerPauseMs: pauses }, 'workers run the new rules')
    },
    ruleHits: async () => {
      const stats = new RuleStats(current.rules, current.tags, current.settings.mode, current.generation)
      const own = await local.ruleHits()
      if (own.generation === current.generation) stats.inherit(own, null)
      for (const reply of await asks(true, 0)) {
        // A reader still on the previous rules (mid-reload) has hits for another table.
        if (reply?.hits == null || reply.generation !== current.generation) continue
        if (reply.hits.hits.length === stats.size) stats.inherit(reply.hits, null)
      }
      return stats
    },
    top: async (n): Promise<TopReport | null> => {
      if (!settings.insights) return null
      const own = await local.top(TOP_TALKERS.capacity)
      const replies = await asks(false, TOP_TALKERS.capacity)
      const reports = replies.flatMap((reply) => (reply?.top == null ? [] : [reply.top]))
      return mergeReports(own === null ? reports : [own, ...reports], n)
    },
    cardinality: async (n): Promise<CardinalityView | null> => {
      const own = local.cardinalityReport(n)
      if (own === null) return null
      const replies = await asks(false, 0, n)
      return mergeCardinality(
        [own, ...replies.flatMap((reply) => (reply?.cardinality == null ? [] : [reply.cardinality]))],
        n,
      )
    },
    sendPool: () => ({
      size: local.sendPoolSize * count,
      inUse: local.sendPool().inUse + others((reader) => reader.sendPoolInUse),
    }),
    sendQueue: () => {
      const own = local.sendQueue()
      return {
        count: own.count + others((reader) => reader.sendQueue.count),
        bytes: own.bytes + others((reader) => reader.sendQueue.bytes),
      }
    },
    workers: (): WorkerStats => ({
      configured: count,
      running: local.workers().running + readers.filter((reader) => reader.ready && !reader.stopped).length,
      linesIn: Array.from({ length: count }, (_, i) => new Counters(slot(i)).linesIn),
    }),
    close: () => (closing ??= close()),
  }
}

/** A reader's log record (pino JSON) written by this thread's logger, at its level, with its fields. */
function relay(log: Logger, line: string): void {
  const { level, msg, ...fields } = JSON.parse(line) as { level: number; msg?: string } & Record<string, unknown>
  const label = log.levels.labels[level] as 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | undefined
  if (label !== undefined) log[label](fields, msg)
}
