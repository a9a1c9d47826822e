// A metric line's series identity, as the Datadog agent counts contexts: the metric name plus the SET of its tags
// (order-independent, equal tags once, empty tags ignored), hashed in place on the received bytes.

const PIPE = 0x7c
const HASH = 0x23
const COMMA = 0x2c
const COLON = 0x3a
const FNV_OFFSET = 0x811c9dc5 | 0
const FNV_PRIME = 0x01000193
/** What series(keep) does with tag i, by keep[i]: leaves it out, counts it, or counts it with a value of its own. */
export const DROP_FROM_SERIES = 0
export const KEEP_IN_SERIES = 1
/** The tag as `key:<a value no line carries>`: what a cardinality limit's overflow makes of it. */
export const OVERFLOW_IN_SERIES = 2
const OVERFLOW_SEED = 0x3c6ef372

/**
 * A line's identity as sent (its name and the fields after its value, tag order included), and its name's two
 * hashes (SeriesHasher.hashName's), from one pass: two independent chains over 4-byte blocks (little-endian), then
 * the last bytes one by one. Both step over every block of the name, side by side (a block costs one step's
 * latency, not two), and the name's hashes are the chains where it ends, finalized; then the chains share the
 * fields' blocks (stepFields). What the cardinality view and the forecasts key their recent lines by: two lines
 * taken for one another skip one line's count. The assembler computes it while it copies a line (appendHashing),
 * lineHash() the same elsewhere.
 */
const LINE_SEED = 0x811c9dc5 | 0
/** The second chain's seed. */
const LINE_SEED2 = 0x9e3779b9 | 0
/** The first chain's step with the block (or last byte) w: a multiply and a shift-xor. */
export function lineStep(h: number, w: number): number {
  h = Math.imul(h ^ w, 0x9e3779b1)
  return h ^ (h >>> 15)
}
/** The second chain's step (murmur2's m): a multiply-rotate, another family than the first. */
export function lineStep2(h: number, w: number): number {
  return Math.imul(((h << 5) | (h >>> 27)) ^ w, 0x5bd1e995)
}

/** The chains' state while a line is stepped: [first, second]. */
export const chains = new Int32Array(2)

/** The last line hashed (by nameDone and lineDone): its identity's two words and its name's two hashes. */
export const lineHashes = new Int32Array(4)
export const IDENTITY1 = 0
export const IDENTITY2 = 1
export const NAME_HASH1 = 2
export const NAME_HASH2 = 3

/** Restarts the chains for a new line. */
export function startLine(): void {
  chains[0] = LINE_SEED
  chains[1] = LINE_SEED2
}

/** Steps the chains over `buf[from, to)`: 4-byte blocks, then the last bytes one by one. */
export function stepRange(buf: Uint8Array, from: number, to: number): void {
  let h = chains[0]
  let h2 = chains[1]
  let i = from
  for (; i + 3 < to; i += 4) {
    const w = buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24)
    h = lineStep(h, w)
    h2 = lineStep2(h2, w)
  }
  for (; i < to; i++) {
    h = lineStep(h, buf[i])
    h2 = lineStep2(h2, buf[i])
  }
  chains[0] = h
  chains[1] = h2
}

/**
 * Steps the chains over the fields `buf[from, to)` in turns: a block to the first, the next to the second, the last
 * bytes to the first. Each chain takes half the blocks, so a line's identity costs the latency of half its fields'
 * blocks after its name's: a 24-byte name and 44 bytes of fields take 12 steps, where one chain over both and a
 * second pass for the name's hashes took 23. A line that differs in one block differs in that block's chain.
 */
export function stepFields(buf: Uint8Array, from: number, to: number): void {
  let h = chains[0]
  let h2 = chains[1]
  let i = from
  for (; i + 7 < to; i += 8) {
    h = lineStep(h, buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24))
    h2 = lineStep2(h2, buf[i + 4] | (buf[i + 5] << 8) | (buf[i + 6] << 16) | (buf[i + 7] << 24))
  }
  if (i + 3 < to) {
    h = lineStep(h, buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24))
    i += 4
  }
  for (; i < to; i++) h = lineStep(h, buf[i])
  chains[0] = h
  chains[1] = h2
}

/** The chains stepped over a name of `nameLength` bytes: its hashes into lineHashes (SeriesHasher.hashName's). */
export function nameDone(nameLength: number): void {
  lineHashes[NAME_HASH1] = fmix(chains[0])
  lineHashes[NAME_HASH2] = fmix(chains[1] ^ nameLength)
}

/**
 * The chains stepped over the name and then the fields: the identity into lineHashes. Each chain took only half
 * the fields' blocks, so the first word mixes both: the tables of recent lines are indexed by it (a first word of
 * the first chain alone put the forecasts' 3,400 stripped lines of bench/tag-rules.ts in a few places, re-adding
 * a line 22 times as often). The two words still hold both chains whole.
 */
export function lineDone(nameLength: number, fieldsLength: number): void {
  lineHashes[IDENTITY1] = fmix(chains[0] ^ Math.imul(chains[1], 0x9e3779b1))
  lineHashes[IDENTITY2] = fmix(chains[1] ^ ((nameLength << 16) ^ fieldsLength))
}

/**
 * The identity and name hashes of `buf[start, end)` (its name ends at nameEnd, its value at `fields`: the fields'
 * `|` or the end) into lineHashes: the name stepped by stepRange, then the fields by stepFields.
 */
export function lineHash(buf: Uint8Array, start: number, nameEnd: number, fields: number, end: number): void {
  startLine()
  stepRange(buf, start, nameEnd)
  nameDone(nameEnd - start)
  stepFields(buf, fields, end)
  lineDone(nameEnd - start, end - fields)
}

/** Seed of the series fold. */
const SERIES_SEED = 0x2545f491

/**
 * The tags of one metric line and the hashes of its name, tags and series, in arrays preallocated for `maxTags`
 * tags and reused for every line: `collect` fills them in one pass over the line's bytes, `series` folds the set of
 * tags (all, or those a keep mask selects) into a 32-bit series hash. Neither allocates.
 *
 * Measured (Node 20.20, a shared 2-core x64 VM, 84-byte lines `name:value|ms|@0.5|#env:..,user_id:..,region:..`
 * over 50 names): collect + series(null) 133-175 ns/line, with CardinalityTracker.observe on top 168-280 ns/line
 * (the spread is the VM's load), 0 scavenges over 5,120,000 lines; 2,000,000 distinct series over 3,000 names
 * (takeovers, seen-set thinning, ticks): 199 ns/line for all three, 0 scavenges.
 */
export class SeriesHasher {
  readonly maxTags: number
  /** Tag i is buf[tagStart[i], tagEnd[i]); its key ends at keyEnd[i], its first `:` (or tagEnd[i] without one). */
  readonly tagStart: Int32Array
  readonly keyEnd: Int32Array
  readonly tagEnd: Int32Array
  /** Hash of tag i's key bytes buf[tagStart[i], keyEnd[i]). */
  readonly keyHash: Int32Array
  /** Hash of tag i's bytes buf[tagStart[i], tagEnd[i]), never 0. Equal tags have equal hashes. */
  readonly tagHash: Int32Array
  /** Tags recorded by the last collect. */
  count = 0
  /** Two independent hashes of the last collected name's bytes (multiply-xorshift, multiply-rotate; 4-byte blocks). */
  nameHash = 0
  nameHash2 = 0
  /** Hash of the series (name, set of kept tags) that the last `series` call folded. */
  seriesHash = 0
  /** The kept tag hashes, sorted: the set's canonical order. */
  private readonly sorted: Int32Array

  constructor(maxTags: number) {
    if (!Number.isSafeInteger(maxTags) || maxTags < 1) {
      throw new RangeError(`maxTags must be a positive integer, got ${maxTags}`)
    }
    this.maxTags = maxTags
    this.tagStart = new Int32Array(maxTags)
    this.keyEnd = new Int32Array(maxTags)
    this.tagEnd = new Int32Array(maxTags)
    this.keyHash = new Int32Array(maxTags)
    this.tagHash = new Int32Array(maxTags)
    this.sorted = new Int32Array(maxTags)
  }

  /**
   * Hashes the name `buf[nameStart, nameEnd)` of the metric line that ends at `end` (`buf[nameEnd]` is the `:`
   * before its value) and records the tags of every `|#` field after the type, in line order. Empty tags (`a,,b`,
   * `|#` alone) are skipped; tags past `maxTags` are ignored, so two lines that differ only there share a series.
   * Returns `count`.
   */
  collect(buf: Uint8Array, nameStart: number, nameEnd: number, end: number): number {
    this.hashName(buf, nameStart, nameEnd)
    return this.collectTags(buf, nameEnd, end)
  }

  /** Takes the name's hashes from where they were computed already (lineHashes after a copy that hashed). */
  useName(nameHash: number, nameHash2: number): void {
    this.nameHash = nameHash
    this.nameHash2 = nameHash2
  }

  /** Sets `nameHash` and `nameHash2` for the name `buf[nameStart, nameEnd)` (as lineHash does): collect's first step. */
  hashName(buf: Uint8Array, nameStart: number, nameEnd: number): void {
    startLine()
    stepRange(buf, nameStart, nameEnd)
    nameDone(nameEnd - nameStart)
    this.nameHash = lineHashes[NAME_HASH1]
    this.nameHash2 = lineHashes[NAME_HASH2]
  }

  /**
   * collect's second step: records the tags of the metric line whose name ends at `nameEnd` (its `:`) and which
   * ends at `end`, leaving the name's hashes as they are. Returns `count`.
   */
  collectTags(buf: Uint8Array, nameEnd: number, end: number): number {
    this.count = 0
    // Past the value and the type: fields start after the second `|`.
    let i = nameEnd
    while (i < end && buf[i] !== PIPE) i++
    i++
    while (i < end && buf[i] !== PIPE) i++
    const tagStart = this.tagStart
    const keyEnd = this.keyEnd
    const tagEnd = this.tagEnd
    const keyHash = this.keyHash
    const tagHash = this.tagHash
    const maxTags = this.maxTags
    let count = 0
    // buf[i] is a field's `|` (or i is end).
    while (i < end) {
      i++
      if (i >= end || buf[i] !== HASH) {
        while (i < end && buf[i] !== PIPE) i++
        continue
      }
      // A tag field: tags separated by `,` until the next `|`. i is on the `#` or a `,`.
      let b = 0
      do {
        const start = ++i
        let th = FNV_OFFSET
        // The key: up to the first `:`; then the value, which may hold more.
        while (i < end && (b = buf[i]) !== COMMA && b !== PIPE && b !== COLON) {
          th = Math.imul(th ^ b, FNV_PRIME)
          i++
        }
        const colon = i
        const kh = th
        if (b === COLON && i < end) {
          while (i < end && (b = buf[i]) !== COMMA && b !== PIPE) {
            th = Math.imul(th ^ b, FNV_PRIME)
            i++
          }
        }
        if (i > start) {
          if (count === maxTags) {
            this.count = count
            return count
          }
          tagStart[count] = start
          tagEnd[count] = i
          keyEnd[count] = colon
          keyHash[count] = fmix(kh)
          tagHash[count] = fmix(th) || 1
          count++
        }
      } while (i < end && b === COMMA)
    }
    this.count = count
    return count
  }

  /**
   * Sets `seriesHash` for the last collected line: the name and the set of its tags, each as
   * keep[i] says (DROP_FROM_SERIES, KEEP_IN_SERIES, OVERFLOW_IN_SERIES; every tag kept when keep is null). Tags
   * are told apart by their 32-bit tagHash, so equal bytes count once.
   */
  series(keep: Uint8Array | null): void {
    const tagHash = this.tagHash
    const sorted = this.sorted
    const count = this.count
    let n = 0
    // Insertion sort: a line carries a handful of tags.
    for (let i = 0; i < count; i++) {
      const what = keep === null ? KEEP_IN_SERIES : keep[i]
      if (what === DROP_FROM_SERIES) continue
      const v = what === OVERFLOW_IN_SERIES ? fmix(this.keyHash[i] ^ OVERFLOW_SEED) || 1 : tagHash[i]
      let j = n++
      while (j > 0 && sorted[j - 1] > v) {
        sorted[j] = sorted[j - 1]
        j--
      }
      sorted[j] = v
    }
    let h = this.nameHash ^ SERIES_SEED
    let unique = 0
    for (let i = 0; i < n; i++) {
      const v = sorted[i]
      if (i > 0 && v === sorted[i - 1]) continue
      unique++
      h = murmurStep(h, v)
    }
    this.seriesHash = fmix(h ^ unique)
  }
}

/** One round of murmur3_32's body: mixes the 32-bit word k into the state h. */
function murmurStep(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51)
  k = (k << 15) | (k >>> 17)
  h ^= Math.imul(k, 0x1b873593)
  h = (h << 13) | (h >>> 19)
  return (Math.imul(h, 5) + 0xe6546b64) | 0
}

/**
 * murmur3's finalizer: FNV-1a's multiply carries only upward, so without it the low bits would depend on the low
 * bits of the bytes alone, and the sketches read the high bits.
 */
export function fmix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}
