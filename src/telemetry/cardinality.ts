import { fmix, IDENTITY1, IDENTITY2, NAME_HASH1, NAME_HASH2, type SeriesHasher } from '../scan/series-hash.ts'
import { hllAdd, hllEstimate, hllMerge } from './hyperloglog.ts'
import { EMPTY, linkSlot, unlinkSlot } from './slot-table.ts'

/** What {@link CardinalityTracker} keeps, at the defaults /cardinality runs with. */
export interface CardinalityOptions {
  /** Metric names with their own sketches: the heavy distinct hitters. */
  trackedNames: number
  /** Tag keys with their own sketches per tracked name, the first that come; later keys are only counted. */
  maxKeysPerName: number
  /** The window view covers between windowMs/2 and windowMs of history. */
  windowMs: number
  /** HyperLogLog precision of a name's series sketches (12: 4,096 bytes, 1.6% standard error). */
  precision: number
  /** HyperLogLog precision of a tag key's value sketches (9: 512 bytes, 4.6% standard error). */
  keyPrecision: number
  /** Name bytes kept for display. */
  maxNameBytes: number
  /** Key bytes kept for display. */
  maxKeyBytes: number
}

export const CARDINALITY_DEFAULTS: Readonly<CardinalityOptions> = {
  trackedNames: 64,
  maxKeysPerName: 16,
  windowMs: 600_000,
  precision: 12,
  keyPrecision: 9,
  maxNameBytes: 128,
  maxKeyBytes: 64,
}

/** Precision of the per-name sketch of the distinct keys past maxKeysPerName (64 bytes, 13%: a rough count). */
const UNTRACKED_PRECISION = 6
/** Slots of the distinct sampler's seen-set; it is thinned when it holds SEEN_LIMIT sampled series (50%). */
const SEEN_SLOTS = 65_536
const SEEN_LIMIT = SEEN_SLOTS / 2
const TRUNCATION_MARK = '…'
/**
 * Recent lines of tracked names, by their identity as sent (lineHash of series-hash.ts: two 32-bit chains over the
 * name and the fields after the value), in a direct-mapped cache: a line the cache holds adds nothing to any sketch (a
 * HyperLogLog add is idempotent), so it skips the series hashing and eight scattered sketch updates. 320 KB.
 */
const RECENT_ENTRIES = 16_384
const RECENT_FIELDS = 5

const decoder = new TextDecoder()

/** One tag key of a {@link NameReport}: its value sketches, registers copied. */
export interface KeyReport {
  key: string
  keyHash: number
  sinceStart: Uint8Array
  window: Uint8Array
}

/** One tracked name of a {@link CardinalityReport}: its series sketches, registers copied, window halves unioned. */
export interface NameReport {
  name: string
  nameHash: number
  nameHash2: number
  sinceStart: Uint8Array
  window: Uint8Array
  keys: KeyReport[]
  /** Sketch of the distinct keys past maxKeysPerName since the name got its counter. */
  untrackedKeys: Uint8Array
}

/** One tracker's sketches, structured-cloneable, for {@link mergeCardinality}. */
export interface CardinalityReport {
  precision: number
  keyPrecision: number
  windowMs: number
  memoryBytes: number
  names: NameReport[]
}

/** One name of a /cardinality ranking. */
export interface CardinalityRow {
  name: string
  /** Estimated distinct series in the period. */
  series: number
  /** The tracked keys by estimated distinct values in the period, most first. */
  keys: { key: string; values: number }[]
  /** Estimated distinct keys past maxKeysPerName, since the name got its counter. */
  keysUntracked: number
}

/** What GET /cardinality shows. */
export interface CardinalityView {
  /** Distinct names the reports carried. */
  trackedNames: number
  /** Estimated distinct series of the tracked names together (the union of their sketches, not a sum). */
  totalSeries: { sinceStart: number; window: number }
  memoryBytes: number
  windowMs: number
  sinceStart: CardinalityRow[]
  window: CardinalityRow[]
}

/**
 * Distinct series per metric name, and per name distinct values per tag key, for the names with the most distinct
 * series, in memory fixed at construction (3,169,600 bytes at the defaults, so that two readers stay under 8 MB).
 *
 * Which names: a heavy-distinct-hitter sketch. Distinct sampling on the line identity (the name and the fields
 * after the value, hashed as the line is copied: a series as one client sends it; an identity is sampled while the top
 * `level` bits of its hash are 0; the seen-set of sampled identities is thinned, level + 1, when it holds
 * SEEN_LIMIT) feeds weighted Space-Saving over the names, identified by their hash pair (64 bits, bytes not
 * compared): each newly seen sampled identity adds 2^level to its name's counter. So lines do not count, series
 * do: a name with one series and a million lines adds at most once (a series sent with its tags in k orders ranks
 * as k). Sampling the identity, not the series, leaves the tags of an untracked name's lines unhashed. Each counter
 * owns its name's HyperLogLogs (series by `seriesHash`, order-free; each key's values by `tagHash`), cleared when
 * another name takes the counter over: a name's figures count from the moment it got its counter.
 *
 * Windows: two tumbling halves of windowMs/2, switched by `tick`; the window view is their union, so it covers
 * between windowMs/2 and windowMs of history. `observe` and `tick` allocate nothing and never read the clock.
 */
export class CardinalityTracker {
  /**
   * Bytes held in typed arrays: per name 3 × 2^precision + maxKeysPerName × (3 × 2^keyPrecision + maxKeyBytes + 9)
   * + maxNameBytes + 93, plus 4 × (tableSize + SEEN_SLOTS + SEEN_LIMIT + 5 × RECENT_ENTRIES), tableSize the least
   * power of two ≥ 2 × trackedNames. At the defaults:
   * 64 × (12,288 + 16 × 1,609 + 221) + 4 × (128 + 65,536 + 32,768 + 81,920) = 3,169,600.
   */
  readonly memoryBytes: number
  private readonly options: Readonly<CardinalityOptions>

  private readonly capacity: number
  private readonly maxKeys: number
  private readonly m: number
  private readonly keyM: number
  private readonly halfMs: number

  /** Name table: hash position -> counter slot, or EMPTY (linear probing, backward-shift deletion). */
  private readonly table: Int32Array
  private readonly mask: number
  private readonly hash1: Int32Array
  private readonly hash2: Int32Array
  /** Space-Saving counts: estimated distinct series, a sampled series weighing 2^level. */
  private readonly counts: Float64Array
  private used = 0

  /** Series sketches, slot × m: since the slot's name got it, and the two window halves. */
  private readonly series: Uint8Array
  private readonly seriesHalf0: Uint8Array
  private readonly seriesHalf1: Uint8Array
  /** Key value sketches, (slot × maxKeys + key) × keyM, likewise. */
  private readonly values: Uint8Array
  private readonly valuesHalf0: Uint8Array
  private readonly valuesHalf1: Uint8Array
  private readonly untracked: Uint8Array
  private readonly keysUsed: Int32Array
  private readonly keyHashes: Int32Array

  private readonly names: Uint8Array
  private readonly nameLengths: Int32Array
  private readonly nameCut: Uint8Array
  private readonly keys: Uint8Array
  private readonly keyLengths: Int32Array
  private readonly keyCut: Uint8Array

  /** Sampled identities' hashes (never 0), open addressing by their low bits; 0 is empty. */
  private readonly seen: Int32Array
  /** The survivors while the seen-set is thinned. */
  private readonly thinned: Int32Array
  private seenCount = 0
  private level = 0
  /** sample & sampleMask === 0 samples an identity: the top `level` bits of its hash. */
  private sampleMask = 0

  /** The window half observe writes: 0 or 1; halfIndex is its number, floor(now / halfMs), -1 before a tick. */
  private current = 0
  private halfIndex = -1

  /** Bumped when a slot is given to a name: a recent line of the slot's previous name no longer counts. */
  private readonly slotGeneration: Int32Array
  /**
   * Recent line e at recent[e × RECENT_FIELDS]: its identity (2 words), its name's slot, the slot's generation
   * then (0: empty), and the window half it was counted in (a line must be counted again in a new half). One
   * array, so a lookup reads one place of memory, not five.
   */
  private readonly recentLines: Int32Array
  constructor(options: Partial<CardinalityOptions> = {}) {
    const o: CardinalityOptions = { ...CARDINALITY_DEFAULTS, ...options }
    for (const [what, value] of Object.entries(o)) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`${what} must be a positive integer, got ${value}`)
      }
    }
    for (const what of ['precision', 'keyPrecision'] as const) {
      if (o[what] < 4 || o[what] > 16) throw new RangeError(`${what} must be 4 to 16, got ${o[what]}`)
    }
    if (o.windowMs < 2) throw new RangeError(`windowMs must be at least 2, got ${o.windowMs}`)
    this.options = o
    const capacity = (this.capacity = o.trackedNames)
    const maxKeys = (this.maxKeys = o.maxKeysPerName)
    const m = (this.m = 1 << o.precision)
    const keyM = (this.keyM = 1 << o.keyPrecision)
    this.halfMs = o.windowMs / 2
    const tableSize = 2 ** Math.ceil(Math.log2(2 * capacity))
    this.mask = tableSize - 1
    this.table = new Int32Array(tableSize).fill(EMPTY)
    this.hash1 = new Int32Array(capacity)
    this.hash2 = new Int32Array(capacity)
    this.counts = new Float64Array(capacity)
    this.series = new Uint8Array(capacity * m)
    this.seriesHalf0 = new Uint8Array(capacity * m)
    this.seriesHalf1 = new Uint8Array(capacity * m)
    this.values = new Uint8Array(capacity * maxKeys * keyM)
    this.valuesHalf0 = new Uint8Array(capacity * maxKeys * keyM)
    this.valuesHalf1 = new Uint8Array(capacity * maxKeys * keyM)
    this.untracked = new Uint8Array(capacity << UNTRACKED_PRECISION)
    this.keysUsed = new Int32Array(capacity)
    this.keyHashes = new Int32Array(capacity * maxKeys)
    this.names = new Uint8Array(capacity * o.maxNameBytes)
    this.nameLengths = new Int32Array(capacity)
    this.nameCut = new Uint8Array(capacity)
    this.keys = new Uint8Array(capacity * maxKeys * o.maxKeyBytes)
    this.keyLengths = new Int32Array(capacity * maxKeys)
    this.keyCut = new Uint8Array(capacity * maxKeys)
    this.seen = new Int32Array(SEEN_SLOTS)
    this.thinned = new Int32Array(SEEN_LIMIT)
    this.slotGeneration = new Int32Array(capacity)
    this.recentLines = new Int32Array(RECENT_ENTRIES * RECENT_FIELDS)
    this.memoryBytes = [
      this.table,
      this.hash1,
      this.hash2,
      this.counts,
      this.series,
      this.seriesHalf0,
      this.seriesHalf1,
      this.values,
      this.valuesHalf0,
      this.valuesHalf1,
      this.untracked,
      this.keysUsed,
      this.keyHashes,
      this.names,
      this.nameLengths,
      this.nameCut,
      this.keys,
      this.keyLengths,
      this.keyCut,
      this.seen,
      this.thinned,
      this.slotGeneration,
      this.recentLines,
    ].reduce((bytes, array) => bytes + array.byteLength, 0)
  }

  /**
   * Counts the forwarded metric line `buf[nameStart, end)` (its name up to nameEnd; its identity and its name's
   * hashes in `line`, as lineHash of series-hash.ts leaves them). Returns whether its tags were hashed: only for a
   * tracked name, and then only when the line is not a recent one of that name in this window half (a HyperLogLog
   * add is idempotent). A line of an untracked name costs a name lookup and, when its identity is sampled, a
   * seen-set lookup. On udpload's corpus
   * (22,633 names in 100,000 lines, 64 tracked; 1,000 prefixes, insights on, in one process) a line costs 0.75x
   * what it did when every line not recent had its tags hashed and its series folded (785-990 ns against
   * 1,067-1,313 on a loaded host).
   */
  observe(
    hasher: SeriesHasher,
    buf: Uint8Array,
    nameStart: number,
    nameEnd: number,
    end: number,
    line: Int32Array,
  ): boolean {
    const hash1 = line[IDENTITY1]
    const hash2 = line[IDENTITY2]
    const h1 = line[NAME_HASH1]
    const h2 = line[NAME_HASH2]
    let slot = this.find(h1, h2)
    // The sampler reads the top bits: the identity's words mixed, so that they depend on all.
    const sample = fmix(hash1 ^ Math.imul(hash2, 0x9e3779b1)) || 1
    if ((sample & this.sampleMask) === 0 && this.firstSight(sample)) {
      const weight = 2 ** this.level
      if (slot !== EMPTY) this.counts[slot] += weight
      else slot = this.takeOver(h1, h2, weight, buf, nameStart, nameEnd)
      // Thinning after the count: the weight is the level the identity was sampled at.
      if (this.seenCount >= SEEN_LIMIT) this.thin()
    }
    if (slot === EMPTY) return false
    let x = Math.imul(hash1 ^ (hash1 >>> 16), 0x85ebca6b)
    x ^= x >>> 13
    const at = (x & (RECENT_ENTRIES - 1)) * RECENT_FIELDS
    const lines = this.recentLines
    const generation = this.slotGeneration[slot]
    if (
      lines[at] === hash1 &&
      lines[at + 1] === hash2 &&
      lines[at + 2] === slot &&
      lines[at + 3] === generation &&
      lines[at + 4] === this.halfIndex
    )
      return false
    lines[at] = hash1
    lines[at + 1] = hash2
    lines[at + 2] = slot
    lines[at + 3] = generation
    lines[at + 4] = this.halfIndex
    hasher.useName(h1, h2)
    hasher.collectTags(buf, nameEnd, end)
    hasher.series(null)

    const p = this.options.precision
    const seriesOffset = slot * this.m
    hllAdd(this.series, seriesOffset, p, hasher.seriesHash)
    hllAdd(this.current === 0 ? this.seriesHalf0 : this.seriesHalf1, seriesOffset, p, hasher.seriesHash)

    const kp = this.options.keyPrecision
    const keyM = this.keyM
    const values = this.values
    const halfValues = this.current === 0 ? this.valuesHalf0 : this.valuesHalf1
    const keyHashes = this.keyHashes
    const tagKeyHashes = hasher.keyHash
    const tagHashes = hasher.tagHash
    const first = slot * this.maxKeys
    const count = hasher.count
    for (let i = 0; i < count; i++) {
      const keyHash = tagKeyHashes[i]
      const last = first + this.keysUsed[slot]
      let k = first
      while (k < last && keyHashes[k] !== keyHash) k++
      if (k === last) {
        if (k === first + this.maxKeys) {
          hllAdd(this.untracked, slot << UNTRACKED_PRECISION, UNTRACKED_PRECISION, keyHash)
          continue
        }
        this.addKey(slot, k, keyHash, buf, hasher.tagStart[i], hasher.keyEnd[i])
      }
      hllAdd(values, k * keyM, kp, tagHashes[i])
      hllAdd(halfValues, k * keyM, kp, tagHashes[i])
    }
    return true
  }

  /** Forgets every recent line (the rules changed: a line may leave otherwise than it did). */
  forgetRecent(): void {
    const lines = this.recentLines
    for (let at = 3; at < lines.length; at += RECENT_FIELDS) lines[at] = 0
  }

  /**
   * Moves the window to the half that `nowMs` falls in, clearing it when the half-window changed (both halves
   * after a jump of more than one half, either way). Called about once a second, off the per-line path.
   */
  tick(nowMs: number): void {
    const index = Math.floor(nowMs / this.halfMs)
    if (index === this.halfIndex) return
    if (this.halfIndex !== -1) {
      if (index !== this.halfIndex + 1) this.clearHalf(this.current)
      this.current ^= 1
      this.clearHalf(this.current)
    }
    this.halfIndex = index
  }

  /**
   * The sketches of the names in this tracker's top `n` since start or in the window, by its own estimates, for
   * {@link mergeCardinality}.
   */
  report(n: number): CardinalityReport {
    const p = this.options.precision
    const kp = this.options.keyPrecision
    const m = this.m
    const keyM = this.keyM
    const sinceStart: number[] = []
    const window: Uint8Array[] = []
    for (let slot = 0; slot < this.used; slot++) {
      sinceStart.push(hllEstimate(this.series, slot * m, p))
      const union = this.seriesHalf0.slice(slot * m, (slot + 1) * m)
      hllMerge(union, 0, this.seriesHalf1, slot * m, p)
      window.push(union)
    }
    const windowEstimates = window.map((registers) => hllEstimate(registers, 0, p))
    const chosen = new Set([...topSlots(sinceStart, n), ...topSlots(windowEstimates, n)])
    const names: NameReport[] = []
    for (const slot of [...chosen].sort((a, b) => a - b)) {
      const keys: KeyReport[] = []
      for (let k = slot * this.maxKeys; k < slot * this.maxKeys + this.keysUsed[slot]; k++) {
        const values = this.valuesHalf0.slice(k * keyM, (k + 1) * keyM)
        hllMerge(values, 0, this.valuesHalf1, k * keyM, kp)
        keys.push({
          key: text(this.keys, k * this.options.maxKeyBytes, this.keyLengths[k], this.keyCut[k]),
          keyHash: this.keyHashes[k],
          sinceStart: this.values.slice(k * keyM, (k + 1) * keyM),
          window: values,
        })
      }
      names.push({
        name: text(this.names, slot * this.options.maxNameBytes, this.nameLengths[slot], this.nameCut[slot]),
        nameHash: this.hash1[slot],
        nameHash2: this.hash2[slot],
        sinceStart: this.series.slice(slot * m, (slot + 1) * m),
        window: window[slot],
        keys,
        untrackedKeys: this.untracked.slice(slot << UNTRACKED_PRECISION, (slot + 1) << UNTRACKED_PRECISION),
      })
    }
    return { precision: p, keyPrecision: kp, windowMs: this.options.windowMs, memoryBytes: this.memoryBytes, names }
  }

  private find(h1: number, h2: number): number {
    const table = this.table
    const mask = this.mask
    for (let i = h1 & mask; ; i = (i + 1) & mask) {
      const slot = table[i]
      if (slot === EMPTY || (this.hash1[slot] === h1 && this.hash2[slot] === h2)) return slot
    }
  }

  /** Adds the sampled series `s` (not 0) to the seen-set; true if it was not there. */
  private firstSight(s: number): boolean {
    const seen = this.seen
    const mask = SEEN_SLOTS - 1
    let i = s & mask
    for (let v = seen[i]; v !== 0; v = seen[i]) {
      if (v === s) return false
      i = (i + 1) & mask
    }
    seen[i] = s
    this.seenCount++
    return true
  }

  /** Raises the level until the seen-set holds fewer than SEEN_LIMIT series: those still sampled stay. */
  private thin(): void {
    const seen = this.seen
    const thinned = this.thinned
    const mask = SEEN_SLOTS - 1
    while (this.seenCount >= SEEN_LIMIT && this.level < 31) {
      this.level++
      this.sampleMask = -1 << (32 - this.level)
      let kept = 0
      for (let i = 0; i < SEEN_SLOTS; i++) {
        const v = seen[i]
        if (v !== 0 && (v & this.sampleMask) === 0) thinned[kept++] = v
      }
      seen.fill(0)
      for (let j = 0; j < kept; j++) {
        const v = thinned[j]
        let i = v & mask
        while (seen[i] !== 0) i = (i + 1) & mask
        seen[i] = v
      }
      this.seenCount = kept
    }
  }

  /** Gives the name a counter: a free one, or Space-Saving's smallest, whose count it inherits. */
  private takeOver(h1: number, h2: number, weight: number, buf: Uint8Array, start: number, end: number): number {
    let slot: number
    if (this.used < this.capacity) {
      slot = this.used++
      this.counts[slot] = weight
    } else {
      // A scan: a newly seen sampled series of an untracked name is rare next to the lines.
      slot = 0
      for (let s = 1; s < this.capacity; s++) if (this.counts[s] < this.counts[slot]) slot = s
      this.counts[slot] += weight
      unlinkSlot(this.table, this.hash1, slot)
      const m = this.m
      this.series.fill(0, slot * m, (slot + 1) * m)
      this.seriesHalf0.fill(0, slot * m, (slot + 1) * m)
      this.seriesHalf1.fill(0, slot * m, (slot + 1) * m)
      this.untracked.fill(0, slot << UNTRACKED_PRECISION, (slot + 1) << UNTRACKED_PRECISION)
      this.keysUsed[slot] = 0
    }
    this.hash1[slot] = h1
    this.hash2[slot] = h2
    this.slotGeneration[slot]++
    linkSlot(this.table, h1, slot)
    this.nameLengths[slot] = copyCut(
      buf,
      start,
      end,
      this.options.maxNameBytes,
      this.names,
      slot * this.options.maxNameBytes,
    )
    this.nameCut[slot] = end - start > this.options.maxNameBytes ? 1 : 0
    return slot
  }

  /** Gives the key `buf[start, end)` the key sketch k of its name's slot, cleared. */
  private addKey(slot: number, k: number, keyHash: number, buf: Uint8Array, start: number, end: number): void {
    this.keysUsed[slot]++
    this.keyHashes[k] = keyHash
    const keyM = this.keyM
    this.values.fill(0, k * keyM, (k + 1) * keyM)
    this.valuesHalf0.fill(0, k * keyM, (k + 1) * keyM)
    this.valuesHalf1.fill(0, k * keyM, (k + 1) * keyM)
    this.keyLengths[k] = copyCut(buf, start, end, this.options.maxKeyBytes, this.keys, k * this.options.maxKeyBytes)
    this.keyCut[k] = end - start > this.options.maxKeyBytes ? 1 : 0
  }

  private clearHalf(half: number): void {
    ;(half === 0 ? this.seriesHalf0 : this.seriesHalf1).fill(0)
    ;(half === 0 ? this.valuesHalf0 : this.valuesHalf1).fill(0)
  }
}

/**
 * Several trackers' reports as one view (reader threads each keep a tracker): a name's sketches, matched by hash
 * pair, and its keys', matched by key hash, are unioned, so a series two readers both saw counts once.
 */
export function mergeCardinality(reports: readonly CardinalityReport[], n: number): CardinalityView {
  interface Merged {
    name: string
    sinceStart: Uint8Array
    window: Uint8Array
    untrackedKeys: Uint8Array
    keys: Map<number, { key: string; sinceStart: Uint8Array; window: Uint8Array }>
  }
  const p = reports[0]?.precision ?? CARDINALITY_DEFAULTS.precision
  const kp = reports[0]?.keyPrecision ?? CARDINALITY_DEFAULTS.keyPrecision
  const byName = new Map<string, Merged>()
  const allSinceStart = new Uint8Array(1 << p)
  const allWindow = new Uint8Array(1 << p)
  for (const report of reports) {
    if (report.precision !== p || report.keyPrecision !== kp) throw new RangeError('reports differ in precision')
    for (const entry of report.names) {
      hllMerge(allSinceStart, 0, entry.sinceStart, 0, p)
      hllMerge(allWindow, 0, entry.window, 0, p)
      const id = `${entry.nameHash}:${entry.nameHash2}`
      let merged = byName.get(id)
      if (merged === undefined) {
        merged = {
          name: entry.name,
          sinceStart: entry.sinceStart.slice(),
          window: entry.window.slice(),
          untrackedKeys: entry.untrackedKeys.slice(),
          keys: new Map(),
        }
        byName.set(id, merged)
      } else {
        hllMerge(merged.sinceStart, 0, entry.sinceStart, 0, p)
        hllMerge(merged.window, 0, entry.window, 0, p)
        hllMerge(merged.untrackedKeys, 0, entry.untrackedKeys, 0, UNTRACKED_PRECISION)
      }
      for (const key of entry.keys) {
        const seen = merged.keys.get(key.keyHash)
        if (seen === undefined) {
          merged.keys.set(key.keyHash, { key: key.key, sinceStart: key.sinceStart.slice(), window: key.window.slice() })
        } else {
          hllMerge(seen.sinceStart, 0, key.sinceStart, 0, kp)
          hllMerge(seen.window, 0, key.window, 0, kp)
        }
      }
    }
  }
  const rank = (period: 'sinceStart' | 'window'): CardinalityRow[] => {
    const rows = [...byName.values()].map((merged): CardinalityRow => ({
      name: merged.name,
      series: Math.round(hllEstimate(merged[period], 0, p)),
      keys: [...merged.keys.values()]
        .map((key) => ({ key: key.key, values: Math.round(hllEstimate(key[period], 0, kp)) }))
        .sort((a, b) => b.values - a.values || compare(a.key, b.key)),
      keysUntracked: Math.round(hllEstimate(merged.untrackedKeys, 0, UNTRACKED_PRECISION)),
    }))
    rows.sort((a, b) => b.series - a.series || compare(a.name, b.name))
    return rows.slice(0, Math.max(0, n))
  }
  return {
    trackedNames: byName.size,
    totalSeries: {
      sinceStart: Math.round(hllEstimate(allSinceStart, 0, p)),
      window: Math.round(hllEstimate(allWindow, 0, p)),
    },
    memoryBytes: reports.reduce((bytes, report) => bytes + report.memoryBytes, 0),
    windowMs: reports[0]?.windowMs ?? CARDINALITY_DEFAULTS.windowMs,
    sinceStart: rank('sinceStart'),
    window: rank('window'),
  }
}

/** The slots of the `n` highest estimates. */
function topSlots(estimates: readonly number[], n: number): number[] {
  return estimates
    .map((_, slot) => slot)
    .sort((a, b) => estimates[b] - estimates[a] || a - b)
    .slice(0, Math.max(0, n))
}

/**
 * Copies `buf[start, end)` to `into[offset...]`, cut to `max` bytes at a UTF-8 sequence boundary (the first byte
 * left out is not a continuation byte); returns the bytes copied.
 */
function copyCut(buf: Uint8Array, start: number, end: number, max: number, into: Uint8Array, offset: number): number {
  let length = end - start
  if (length > max) {
    length = max
    while (length > 0 && (buf[start + length] & 0xc0) === 0x80) length--
  }
  for (let i = 0; i < length; i++) into[offset + i] = buf[start + i]
  return length
}

/** The stored bytes as text, '…' after a cut. */
function text(bytes: Uint8Array, offset: number, length: number, cut: number): string {
  const name = decoder.decode(bytes.subarray(offset, offset + length))
  return cut === 1 ? name + TRUNCATION_MARK : name
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
