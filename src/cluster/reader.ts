// A reader thread of `workers: N`: the local data plane on the listen socket reader 0 opened, driven by messages.
// Rules, snapshot requests and shutdown come from the control plane's thread, which also reads the counters this
// thread writes into shared memory; admin, reloads, kernel drops and reports live there.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import { pino } from 'pino'
import { startLocalPlane, type LocalPlane } from '../data-plane.ts'
import { Trie } from '../match/trie.ts'
import { Counters } from '../telemetry/counters.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { FromReader, ReaderData, RulesPayload, SnapshotRequest, ToReader } from './messages.ts'

if (parentPort === null) throw new Error('reader.ts runs as a worker thread of the proxy')
const port: MessagePort = parentPort
const data = workerData as ReaderData
const send = (message: FromReader): void => port.postMessage(message)

/**
 * Records go to the control plane's logger as JSON lines (one log stream, in the order they happen), which adds
 * the time, pid, name and `worker`: none of them here, or they would appear twice.
 */
const log: Logger = pino(
  { level: data.rules.settings.log.level, base: null, timestamp: false },
  { write: (line: string) => send({ type: 'log', line }) },
)

/**
 * The longest the event loop (the data path) stood still while a rule set was put in force: sampled only
 * then, and reported with the confirmation.
 */
function measurePause(apply: () => Promise<void>): Promise<number> {
  const TICK_MS = 2
  let last = performance.now()
  let longest = 0
  const timer = setInterval(() => {
    const now = performance.now()
    longest = Math.max(longest, now - last - TICK_MS)
    last = now
  }, TICK_MS)
  return apply().then(() => {
    clearInterval(timer)
    return Math.max(longest, performance.now() - last - TICK_MS)
  })
}

const inForce = (payload: RulesPayload) => ({ ...payload, trie: new Trie(payload.trie) })

async function snapshot(plane: LocalPlane, request: SnapshotRequest): Promise<void> {
  const rules = await plane.ruleHits()
  send({
    type: 'snapshot',
    id: request.id,
    generation: rules.generation,
    sendPoolInUse: plane.sendPool().inUse,
    sendQueue: plane.sendQueue(),
    hits: request.hits
      ? {
          hits: rules.hits,
          lastHitMs: rules.lastHitMs,
          linesStripped: rules.linesStripped,
          tagsStripped: rules.tagsStripped,
          forecast: rules.forecast,
          forecastSlot: rules.forecastSlot,
        }
      : null,
    top: request.top > 0 ? await plane.top(request.top) : null,
    cardinality: request.cardinality > 0 ? plane.cardinalityReport(request.cardinality) : null,
  })
}

async function main(): Promise<void> {
  let plane: LocalPlane
  try {
    plane = await startLocalPlane({
      settings: data.rules.settings,
      rules: inForce(data.rules),
      log,
      socket: data.socket,
      counters: new Counters(data.counters),
    })
  } catch (err) {
    send({ type: 'failed', error: (err as Error).message })
    port.close()
    return
  }
  // Messages are handled one after the other, so a snapshot never sees a rule set half applied.
  let queue = Promise.resolve()
  const handle = async (message: ToReader): Promise<void> => {
    switch (message.type) {
      case 'rules': {
        log.level = message.rules.settings.log.level
        const pauseMs = await measurePause(() => plane.apply(inForce(message.rules)))
        return send({ type: 'applied', generation: message.rules.generation, pauseMs: Math.round(pauseMs * 10) / 10 })
      }
      case 'snapshot':
        return snapshot(plane, message)
      case 'shutdown':
        // The thread ends with the port; the control plane waits for its exit.
        await plane.close()
        port.close()
    }
  }
  port.on('message', (message: ToReader) => {
    queue = queue.then(() => handle(message))
  })
  send({ type: 'ready' })
}

void main()
