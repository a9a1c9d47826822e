/** The counters, in the order of their slots in `Counters.values`. */
const FIELDS = [
  'datagramsIn',
  'bytesIn',
  'linesIn',
  'linesForwarded',
  'linesBlocked',
  'linesMalformed',
  'linesDroppedBackpressure',
  'linesWouldBlock',
  'linesNotAllowed',
  'linesOverLimit',
  'linesWouldNotAllow',
  'linesWouldOverLimit',
  'linesTagsStripped',
  'tagsStripped',
  'linesTagsWouldStrip',
  'tagsWouldStrip',
  'linesStrippedC',
  'linesStrippedG',
  'linesStrippedMs',
  'linesStrippedH',
  'linesStrippedS',
  'linesStrippedD',
  'linesStrippedOther',
  'linesCardinalityDropped',
  'linesCardinalityOverflow',
  'linesCardinalityDropTag',
  'linesCardinalityWouldOverflow',
  'linesCardinalityWouldDropTag',
  'linesCardinalityWouldDropLine',
  'tagsCardinalityLimited',
  'cardinalityKeysFull',
  'linesOversize',
  'linesSendFailed',
  'datagramsOut',
  'bytesOut',
  'sendErrors',
] as const

/**
 * The data path's counters, incremented in place by the stage that observes the event (no calls, no maps on the
 * hot path). Every line received ends in exactly one of forwarded, blocked, notAllowed, overLimit,
 * cardinalityDropped, malformed or droppedBackpressure, so `linesIn` always equals their sum; the other line counters say more about some of those lines.
 *
 * Each counter is a slot of one Float64Array, which may live in shared memory: a reader thread increments its
 * own slots and the control plane reads them live, without asking. One writer per array.
 */
export class Counters {
  static readonly size = FIELDS.length
  /** The slot of linesStrippedC; the other types follow in the order of METRIC_TYPE_SLOTS (src/scan/tags.ts). */
  static readonly strippedByTypeSlot = FIELDS.indexOf('linesStrippedC')
  readonly values: Float64Array
  declare datagramsIn: number
  declare bytesIn: number
  declare linesIn: number
  declare linesForwarded: number
  declare linesBlocked: number
  declare linesMalformed: number
  declare linesDroppedBackpressure: number
  /** Lines a dry-run block rule matched: what enforcing it would drop (a later step may still drop them). */
  declare linesWouldBlock: number
  /** Metric lines whose name no allowlist entry matches. */
  declare linesNotAllowed: number
  /** Metric lines over one of the limits (name length, tags per line, tag length). */
  declare linesOverLimit: number
  /** Lines a dry-run allowlist would have dropped (they went on). */
  declare linesWouldNotAllow: number
  /** Lines over a dry-run limit (they went on). */
  declare linesWouldOverLimit: number
  /** Forwarded lines from which at least one tag was removed; by type in linesStripped<Type>. */
  declare linesTagsStripped: number
  declare tagsStripped: number
  /** Forwarded lines with tags that only dry-run strip rules remove, and those tags (forwarded unchanged). */
  declare linesTagsWouldStrip: number
  declare tagsWouldStrip: number
  declare linesStrippedC: number
  declare linesStrippedG: number
  declare linesStrippedMs: number
  declare linesStrippedH: number
  declare linesStrippedS: number
  declare linesStrippedD: number
  /** Stripped lines of a type other than c, g, ms, h, s, d. */
  declare linesStrippedOther: number
  /** Metric lines dropped by a cardinality limit (over: dropLine). */
  declare linesCardinalityDropped: number
  /** Forwarded lines in which a cardinality limit replaced a tag's value by __overflow__ / removed a tag. */
  declare linesCardinalityOverflow: number
  declare linesCardinalityDropTag: number
  /** Lines a dry-run cardinality limit would have changed (overflow, dropTag) or dropped (dropLine). */
  declare linesCardinalityWouldOverflow: number
  declare linesCardinalityWouldDropTag: number
  declare linesCardinalityWouldDropLine: number
  /** Tags over a cardinality limit (enforced), whatever the action. */
  declare tagsCardinalityLimited: number
  /** Values of a new (metric name, tag key) pair found a limit's maxKeys reached: treated as over the limit. */
  declare cardinalityKeysFull: number
  /** Forwarded lines longer than maxPacketSize, each sent in a datagram of its own. */
  declare linesOversize: number
  /** Forwarded lines in datagrams whose send failed (as far as the socket reported it; see sendErrors). */
  declare linesSendFailed: number
  declare datagramsOut: number
  declare bytesOut: number
  /** Failed sends plus asynchronous socket errors such as ECONNREFUSED (which no single send owns). */
  declare sendErrors: number

  /** Over `values` (Counters.size slots, e.g. a view of a SharedArrayBuffer) or an array of its own. */
  constructor(values: Float64Array = new Float64Array(Counters.size)) {
    if (values.length !== Counters.size) throw new Error(`counters need ${Counters.size} slots, got ${values.length}`)
    this.values = values
  }

  snapshot(): CounterSnapshot {
    const out = {} as CounterSnapshot
    for (let i = 0; i < FIELDS.length; i++) out[FIELDS[i]] = this.values[i]
    return out
  }
}

FIELDS.forEach((name, slot) => {
  Object.defineProperty(Counters.prototype, name, {
    get(this: Counters) {
      return this.values[slot]
    },
    set(this: Counters, value: number) {
      this.values[slot] = value
    },
  })
})

export type CounterSnapshot = { [K in (typeof FIELDS)[number]]: number }
