// What the control plane's thread and its reader threads say to each other (structured clone; the rules' and
// counters' arrays live in SharedArrayBuffers, so they cross as references, never as copies).
import type { Settings } from '../config/config.ts'
import type { AdmissionData } from '../match/admission.ts'
import type { PackedRules } from '../match/packed-rules.ts'
import type { RuleHits } from '../match/rule-set.ts'
import type { TagRulesData } from '../match/tag-rules.ts'
import type { TrieData } from '../match/trie.ts'
import type { SharedSocket } from '../receive/listener.ts'
import type { SendQueue } from '../send/target.ts'
import type { CardinalityReport } from '../telemetry/cardinality.ts'
import type { TopReport } from '../telemetry/top-talkers.ts'

/** A rule set in force as it crosses to a reader thread. */
export interface RulesPayload {
  generation: number
  settings: Settings
  rules: PackedRules
  trie: TrieData
  tags: TagRulesData | null
  admission: readonly AdmissionData[]
  inherit: Int32Array | null
}

/** What a reader thread starts with. */
export interface ReaderData {
  /** 1..N-1 (reader 0 is the control plane's thread), which names it in logs and metrics. */
  index: number
  socket: SharedSocket
  /** Its slots of the shared counters (Counters.size of them). */
  counters: Float64Array
  rules: RulesPayload
}

/**
 * Asks for the reader's send pool and queue; with `hits`, its per-rule hits; with `top` > 0, that many top
 * talkers; with `cardinality` > 0, the cardinality sketches of that many names.
 */
export interface SnapshotRequest {
  type: 'snapshot'
  id: number
  hits: boolean
  top: number
  cardinality: number
}

export type ToReader = { type: 'rules'; rules: RulesPayload } | SnapshotRequest | { type: 'shutdown' }

export interface ReaderSnapshot {
  type: 'snapshot'
  id: number
  generation: number
  sendPoolInUse: number
  sendQueue: SendQueue
  hits: RuleHits | null
  top: TopReport | null
  cardinality: CardinalityReport | null
}

export type FromReader =
  | { type: 'ready' }
  | ReaderSnapshot
  /** The longest event-loop pause while the rules were put in force. */
  | { type: 'applied'; generation: number; pauseMs: number }
  /** A log line of the reader's logger (JSON), for the control plane's logger to write. */
  | { type: 'log'; line: string }
  /** The data path could not start (the forward host unknown). */
  | { type: 'failed'; error: string }
