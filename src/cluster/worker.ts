// A worker process of `workers: N`: the local data plane on the listen socket the primary shares with every
// worker, driven over IPC. Rules, snapshot requests and shutdown come from the primary; the control plane
// (admin server, reloads, kernel drops, reports) lives there.
import { startLocalPlane, type DataPlane } from '../data-plane.ts'
import { Trie } from '../match/trie.ts'
import { createLogger, type Logger } from '../telemetry/logger.ts'
import { WORKER_SLOT_ENV, type FromWorker, type SnapshotRequest, type ToWorker } from './messages.ts'
import { encodeArray, RulesAssembly, type RulesPayload } from './transfer.ts'

const slot = Number(process.env[WORKER_SLOT_ENV])
let log: Logger | null = null
let plane: DataPlane | null = null
let stopping: Promise<void> | null = null
/** The rule set arriving; a newer header replaces it (its remaining parts are then ignored). */
let arriving: RulesAssembly | null = null
/** Messages are handled one after the other, so a reload never races the start it follows. */
let queue: Promise<void> = Promise.resolve()

/**
 * The longest the event loop (the data path) stood still while a rule set arrived and was put in force:
 * sampled only then, and reported with the reload's confirmation.
 */
class PauseSampler {
  private static readonly TICK_MS = 2
  private readonly timer: NodeJS.Timeout
  private last = performance.now()
  private longest = 0

  constructor() {
    this.timer = setInterval(() => {
      const now = performance.now()
      this.longest = Math.max(this.longest, now - this.last - PauseSampler.TICK_MS)
      this.last = now
    }, PauseSampler.TICK_MS)
  }

  stop(): number {
    clearInterval(this.timer)
    return Math.max(this.longest, performance.now() - this.last - PauseSampler.TICK_MS)
  }
}
let sampler: PauseSampler | null = null

function send(message: FromWorker, then?: () => void): void {
  // A cluster worker always has its IPC channel; once the primary is gone there is nobody to tell.
  process.send?.(message, undefined, undefined, then)
}

async function applyRules(message: RulesPayload): Promise<void> {
  const rules = { ...message, trie: new Trie(message.trie) }
  // This process's logger follows the level of the config in force, which the primary's reloader owns.
  log ??= createLogger(message.settings.log.level).child({ worker: slot })
  log.level = message.settings.log.level
  if (plane === null) {
    try {
      plane = await startLocalPlane({ settings: message.settings, rules, log })
    } catch (err) {
      send({ type: 'failed', error: (err as Error).message }, () => process.exit(1))
      return
    }
    const { listen, forwardAddress, maxPacketSize, sendPoolSize } = plane
    send({ type: 'ready', ...listen, forwardAddress, maxPacketSize, sendPoolSize })
    return
  }
  await plane.apply(rules)
  const pauseMs = sampler?.stop() ?? 0
  sampler = null
  send({ type: 'applied', generation: message.generation, pauseMs: Math.round(pauseMs * 10) / 10 })
}

async function snapshot(request: SnapshotRequest): Promise<void> {
  if (plane === null) return
  const rules = await plane.ruleHits()
  send({
    type: 'snapshot',
    id: request.id,
    generation: rules.generation,
    counters: plane.counters.snapshot(),
    sendPoolInUse: plane.sendPool().inUse,
    sendQueue: plane.sendQueue(),
    hits: request.hits ? { hits: encodeArray(rules.hits), lastHitMs: encodeArray(rules.lastHitMs) } : null,
    top: request.top > 0 ? await plane.top(request.top) : null,
  })
}

/** Drains like the single process does, reports the final counters, exits. */
function stop(): Promise<void> {
  stopping ??= (async () => {
    if (plane === null) process.exit(0)
    await plane.close()
    send({ type: 'stopped', counters: plane.counters.snapshot() }, () => process.exit(0))
  })()
  return stopping
}

process.on('message', (message: ToWorker) => {
  if (message.type === 'rules') {
    arriving = new RulesAssembly(message)
    if (plane !== null) sampler ??= new PauseSampler()
    return
  }
  if (message.type === 'rules-part') {
    if (arriving?.generation !== message.generation) return
    const payload = arriving.add(message)
    if (payload === null) return
    arriving = null
    queue = queue.then(() => applyRules(payload))
    return
  }
  queue = queue.then(() => (message.type === 'snapshot' ? snapshot(message) : stop()))
})
// Ctrl-C signals the whole process group: drain as for the primary's shutdown. SIGHUP is the primary's
// (it reloads and tells the workers); its default action would kill the worker.
process.on('SIGTERM', () => void stop())
process.on('SIGINT', () => void stop())
process.on('SIGHUP', () => {})
send({ type: 'hello' })
