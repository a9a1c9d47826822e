// What the primary and its workers say to each other over the cluster's IPC channel (JSON; typed arrays
// cross as base64, see transfer.ts).
import type { ListenInfo } from '../receive/listener.ts'
import type { SendQueue } from '../send/target.ts'
import type { TopReport } from '../telemetry/top-talkers.ts'
import type { CounterSnapshot } from '../telemetry/counters.ts'
import type { RulesHeader, RulesPart } from './transfer.ts'

/** The environment variable that tells a worker its slot (0..N-1), which names it in logs and metrics. */
export const WORKER_SLOT_ENV = 'STATSD_FILTER_PROXY_WORKER'

/** Asks for the worker's counters; with `hits`, its per-rule hits; with `top` > 0, that many top talkers. */
export interface SnapshotRequest {
  type: 'snapshot'
  id: number
  hits: boolean
  top: number
}

/**
 * Rules come as a header and parts (see transfer.ts): the first set starts the worker's data path, each later one
 * is a reload.
 */
export type ToWorker = RulesHeader | RulesPart | SnapshotRequest | { type: 'shutdown' }

export interface ReadyMessage extends ListenInfo {
  type: 'ready'
  forwardAddress: string
  maxPacketSize: number
  sendPoolSize: number
}

export interface WorkerSnapshot {
  type: 'snapshot'
  id: number
  generation: number
  counters: CounterSnapshot
  sendPoolInUse: number
  sendQueue: SendQueue
  /** Per-rule hits and last-hit times, base64 of their Float64Arrays (encodeArray). */
  hits: { hits: string; lastHitMs: string } | null
  top: TopReport | null
}

export type FromWorker =
  /** Listening for messages: a message sent before that would be lost while the worker's modules load. */
  | { type: 'hello' }
  | ReadyMessage
  | WorkerSnapshot
  /** The longest event-loop pause while the rules arrived and were applied. */
  | { type: 'applied'; generation: number; pauseMs: number }
  /** The data path drained and closed: the worker's final counters. */
  | { type: 'stopped'; counters: CounterSnapshot }
  /** The data path could not start (the listen port taken, the forward host unknown). */
  | { type: 'failed'; error: string }
