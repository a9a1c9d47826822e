// What the primary and its workers say to each other over the cluster's IPC channel ('advanced'
// serialization, so typed arrays cross as they are).
import type { Settings } from '../config/config.ts'
import type { SendQueue, TopReport } from '../data-path.ts'
import type { PackedRules } from '../match/packed-rules.ts'
import type { TrieData } from '../match/trie.ts'
import type { CounterSnapshot } from '../telemetry/counters.ts'

/** The environment variable that tells a worker its slot (0..N-1), which names it in logs and metrics. */
export const WORKER_SLOT_ENV = 'STATSD_FILTER_PROXY_WORKER'

/**
 * The rules to run: the first one starts the worker's data path, each later one is a reload. `inherit` maps
 * generation - 1's rules onto these (see RuleStats.inherit); a worker on another generation ignores it.
 */
export interface RulesMessage {
  type: 'rules'
  generation: number
  settings: Settings
  rules: PackedRules
  trie: TrieData
  inherit: Int32Array | null
}

/** Asks for the worker's counters; with `hits`, its per-rule hits; with `top` > 0, that many top talkers. */
export interface SnapshotRequest {
  type: 'snapshot'
  id: number
  hits: boolean
  top: number
}

export type ToWorker = RulesMessage | SnapshotRequest | { type: 'shutdown' }

export interface ReadyMessage {
  type: 'ready'
  address: string
  port: number
  recvBufferGranted: number
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
  hits: { hits: Float64Array; lastHitMs: Float64Array } | null
  top: TopReport | null
}

export type FromWorker =
  /** Listening for messages: a message sent before that would be lost while the worker's modules load. */
  | { type: 'hello' }
  | ReadyMessage
  | WorkerSnapshot
  | { type: 'applied'; generation: number }
  /** The data path drained and closed: the worker's final counters. */
  | { type: 'stopped'; counters: CounterSnapshot }
  /** The data path could not start (the listen port taken, the forward host unknown). */
  | { type: 'failed'; error: string }
