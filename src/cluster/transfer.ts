// Rules cross from the primary to a worker in parts. A million rules are about 160 MB of trie arrays and text:
// as one IPC message, the worker's event loop would stop for its whole deserialization (measured: 170 ms for
// 120 MB), and its data path with it. In parts of PART_BYTES each step is a copy of a few milliseconds.
//
// The channel is Node's default JSON one, so typed arrays cross as base64. The 'advanced' (structured clone)
// channel would carry them as they are, but on Node 20 the garbage of its per-message buffers kept growing both
// processes' RSS (measured: 43 -> 110 MB over 60,000 one-second snapshot round trips; JSON stayed at 51 MB).
import type { Settings } from '../config/config.ts'
import type { PackedRules } from '../match/packed-rules.ts'
import type { TrieData } from '../match/trie.ts'

const PART_BYTES = 1024 * 1024

/** Everything a worker needs to run a rule set. */
export interface RulesPayload {
  generation: number
  settings: Settings
  rules: PackedRules
  trie: TrieData
  /** Maps generation - 1's rules onto these (see RuleStats.inherit); null for a worker starting afresh. */
  inherit: Int32Array | null
}

type ArrayField = 'starts' | 'dryRun' | 'base' | 'check' | 'prefixRule' | 'exactRule' | 'inherit'
type Field = ArrayField | 'text'

/** Announces a payload: its scalars and the length of each array; the parts follow in order. */
export interface RulesHeader {
  type: 'rules'
  generation: number
  settings: Settings
  prefixCount: number
  nodeCount: number
  ruleCount: number
  lengths: Record<Field, number>
}

export interface RulesPart {
  type: 'rules-part'
  generation: number
  field: Field
  /** In elements of the field (characters of the text). */
  offset: number
  /** A slice of the text, or the base64 of an array's slice. */
  data: string
}

type NumberArray = Int32Array | Uint8Array | Float64Array

/** An array's bytes as base64, for the JSON channel. */
export function encodeArray(array: NumberArray): string {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength).toString('base64')
}

/** Per-rule hits or times as sent by a worker. */
export function decodeFloat64(base64: string): Float64Array {
  const bytes = Buffer.from(base64, 'base64')
  const array = new Float64Array(bytes.length / Float64Array.BYTES_PER_ELEMENT)
  new Uint8Array(array.buffer).set(bytes)
  return array
}

/** Copies base64-encoded elements into `target` from element `offset` on; returns how many. */
function decodeInto(target: NumberArray, offset: number, base64: string): number {
  const bytes = Buffer.from(base64, 'base64')
  // Through a byte view of the target: the decoded Buffer may sit at an offset no Int32Array could start at.
  new Uint8Array(target.buffer, target.byteOffset + offset * target.BYTES_PER_ELEMENT, bytes.length).set(bytes)
  return bytes.length / target.BYTES_PER_ELEMENT
}

function arrays(payload: RulesPayload): Record<ArrayField, Int32Array | Uint8Array> {
  const { rules, trie } = payload
  return {
    starts: rules.starts,
    dryRun: rules.dryRun,
    base: trie.base,
    check: trie.check,
    prefixRule: trie.prefixRule,
    exactRule: trie.exactRule,
    inherit: payload.inherit ?? new Int32Array(0),
  }
}

/** The header, then the parts: slices of the text and views of the arrays (copied only when sent). */
export function* splitRules(payload: RulesPayload, partBytes = PART_BYTES): Generator<RulesHeader | RulesPart> {
  const { generation, rules, trie } = payload
  const fields = arrays(payload)
  const lengths = { text: rules.text.length } as Record<Field, number>
  for (const [field, array] of Object.entries(fields) as [ArrayField, Int32Array | Uint8Array][])
    lengths[field] = array.length
  yield {
    type: 'rules',
    generation,
    settings: payload.settings,
    prefixCount: rules.prefixCount,
    nodeCount: trie.nodeCount,
    ruleCount: trie.ruleCount,
    lengths,
  }
  // A JS string is up to 2 bytes per character on the wire.
  for (let at = 0; at < rules.text.length; at += partBytes / 2) {
    yield { type: 'rules-part', generation, field: 'text', offset: at, data: rules.text.slice(at, at + partBytes / 2) }
  }
  for (const [field, array] of Object.entries(fields) as [ArrayField, Int32Array | Uint8Array][]) {
    const step = partBytes / array.BYTES_PER_ELEMENT
    for (let at = 0; at < array.length; at += step)
      yield { type: 'rules-part', generation, field, offset: at, data: encodeArray(array.subarray(at, at + step)) }
  }
}

/** Reassembles one payload in a worker from its header and parts. */
export class RulesAssembly {
  private readonly header: RulesHeader
  private readonly arrays: Record<ArrayField, Int32Array | Uint8Array>
  private readonly text: string[] = []
  private remaining: number

  constructor(header: RulesHeader) {
    this.header = header
    const { lengths } = header
    this.arrays = {
      starts: new Int32Array(lengths.starts),
      dryRun: new Uint8Array(lengths.dryRun),
      base: new Int32Array(lengths.base),
      check: new Int32Array(lengths.check),
      prefixRule: new Int32Array(lengths.prefixRule),
      exactRule: new Int32Array(lengths.exactRule),
      inherit: new Int32Array(lengths.inherit),
    }
    this.remaining = Object.values(lengths).reduce((n, length) => n + length, 0)
  }

  get generation(): number {
    return this.header.generation
  }

  /** Takes one part; returns the whole payload once the last part is in, null before. */
  add(part: RulesPart): RulesPayload | null {
    if (part.field === 'text') {
      this.text.push(part.data)
      this.remaining -= part.data.length
    } else this.remaining -= decodeInto(this.arrays[part.field], part.offset, part.data)
    return this.remaining === 0 ? this.payload() : null
  }

  private payload(): RulesPayload {
    const { header, arrays: a } = this
    return {
      generation: header.generation,
      settings: header.settings,
      rules: {
        text: this.text.join(''),
        starts: a.starts as Int32Array,
        prefixCount: header.prefixCount,
        dryRun: a.dryRun as Uint8Array,
      },
      trie: {
        nodeCount: header.nodeCount,
        ruleCount: header.ruleCount,
        base: a.base as Int32Array,
        check: a.check as Int32Array,
        prefixRule: a.prefixRule as Int32Array,
        exactRule: a.exactRule as Int32Array,
      },
      inherit: header.lengths.inherit === 0 ? null : (a.inherit as Int32Array),
    }
  }
}
