/** {@link AdmissionTable.admit}: the value is known in this window, or has just been admitted. */
export const ADMITTED = 0
/** {@link AdmissionTable.admit}: a new value, and its (name, key) pair already has maxValuesPerTag values. */
export const OVER = 1
/** {@link AdmissionTable.admit}: a new (name, key) pair, and maxKeys pairs are already tracked in this window. */
export const FULL = 2

export interface AdmissionOptions {
  /** Distinct values one tag key may take per metric name within a window. */
  maxValuesPerTag: number
  /** (Metric name, tag key) pairs tracked per window: the memory bound. */
  maxKeys: number
  /** The window's length: values admitted are forgotten when the window ends. */
  windowMs: number
  /** The clock at creation (Date.now() if absent): the window the table starts in. */
  nowMs?: number
}

/** A table's shared memory and parameters: structured-cloneable, for `new AdmissionTable(data)` in another thread. */
export interface AdmissionData {
  buffer: SharedArrayBuffer
  maxValuesPerTag: number
  maxKeys: number
  windowMs: number
}

// The header, one cache line: CURRENT is read by every admit(); LOCK and the labels change twice a window.
const CURRENT = 0
const LOCK = 1
const LABEL = 2
const HEADER_WORDS = 16
// A window half: its two counters on a line of their own, then the pair table, then the sets.
const PAIRS = 0
const SETS = 1
const HALF_HEADER_WORDS = 16
const PAIR_WORDS = 3
/** CURRENT while the current half is being cleared for a window that reuses it: odd, so no window's tag. */
const TRANSITION = 1
/** A half's label until its first window: odd, so no window's tag; the half is clean. */
const FRESH = 1
/** A wrapper's tag before it first follows CURRENT: neither a window's tag nor TRANSITION. */
const UNSET = -1
const GOLDEN = 0x9e3779b1 | 0
/** Loads a racer waits for the winner of a new pair to publish its set (one Atomics.add away) before giving up. */
const SPIN_LIMIT = 1 << 16
// Negative results of the pair lookup; a set's offset is never negative.
const ABSENT = -1
const NO_ROOM = -2
const UNPUBLISHED = -3

/**
 * The admitted values of one cardinality limit: per (metric name, tag key) pair, the first maxValuesPerTag distinct
 * values seen in the current window are admitted, later new values are over. Every structure is in one
 * SharedArrayBuffer, so all reader threads share one table and the limit holds across them (never N times the cap
 * for N threads); `data()` crosses to a thread and `new AdmissionTable(data)` wraps it there. A reload hands the
 * same table to the next rule set: nothing is lost.
 *
 * The caller hashes: a pair is two independent 32-bit hashes, a value one (0 is taken as 1). Two pairs (or two
 * values of a pair) whose hashes all collide count as one.
 *
 * Windows are tumbling and aligned to the clock: window e is [e × windowMs, (e + 1) × windowMs). What users see:
 * values admitted in one window are forgotten when it ends, and the next window admits a new set of maxValuesPerTag
 * values per pair (the values of the previous window get no preference). The boundary is observed within one tick
 * of its time: `tick(nowMs)`, called by every reader about once a second (never per line), moves the table into the
 * clock's window; admit() only compares a word.
 *
 * Memory is two halves, the window e using half e & 1, each a pair table (open addressing, linear probing, capacity
 * the least power of two ≥ maxKeys / 0.7, entries [hash1, hash2, set + 1]) and maxKeys sets, each a count word and
 * a value array (capacity the least power of two ≥ 1.25 × maxValuesPerTag, 0 = empty). Words only go from 0 to
 * nonzero within a window, so a probe that finds an empty slot proves the key absent. The header holds CURRENT
 * (the current window's tag, e << 1), each half's label (the window it is clean for) and a lock for changing them.
 *
 * Clearing: the first tick past the middle of window e takes the lock and zeroes the other half for e + 1, so the
 * boundary itself costs one compare-and-swap of CURRENT. A tick that finds its window unprepared (the midpoint tick
 * never came: readers stalled for more than half a window) prepares it synchronously under the same lock. If that
 * window reuses the current half (the table went a whole window without a tick), CURRENT is TRANSITION while the
 * half is zeroed, and admit() answers OVER meanwhile: nothing is admitted yet in a window not ready, so this never
 * rejects an admitted value. A tick that finds the lock taken does nothing: another thread is changing the window,
 * and this one follows CURRENT at its next admit() (its next tick retries if needed). No thread ever waits.
 *
 * Exactness. admit() returns ADMITTED for every value whose insertion completed before the call began: a set is
 * found through its pair entry, which is complete (both hashes and the set published) before any value is inserted,
 * and a value's probe passes only slots filled before it, which stay filled. The probes of a hit are plain reads
 * (a word read is one that was written, so a hit is true); a miss is probed again with Atomics.load before anything
 * is answered OVER or FULL, so a stale plain read costs time, never a false rejection. A new value then reserves a
 * count (Atomics.add), undone if it exceeds maxValuesPerTag, so at most maxValuesPerTag values are ever inserted;
 * a compare-and-swap of an empty slot inserts it, and a thread that finds the same value there (a racer inserted
 * it first) undoes its reservation and answers ADMITTED. Pairs are reserved against maxKeys the same way, and their
 * two-word keys need no lock: hash1 is claimed by CAS 0 → hash1, then hash2 by CAS 0 → hash2; whoever sets hash2
 * defines the entry and allocates its set, a racer with the same hash2 uses it, one with another moves on probing.
 *
 * The races that remain, each among threads inserting at the same instant:
 * - A reservation counts from its Atomics.add: a new value (pair) checked while a racer's duplicate reservation is
 *   not undone yet, or while a racer's insertion of that same pair is not complete, may be answered OVER (FULL)
 *   although the set holds fewer than maxValuesPerTag values (the table fewer than maxKeys pairs). It is a value
 *   (pair) not admitted yet, and a later line with it is admitted if there is room.
 * - A racer on a new pair waits up to SPIN_LIMIT loads for the winner to publish the set (one Atomics.add after its
 *   CAS); if the winner is descheduled for longer, the racer answers OVER. No value of that pair is admitted yet.
 * - A half is zeroed only once CURRENT names neither of its windows, but a thread that has not yet seen CURRENT move
 *   (inside an admit() call, or a plain read not yet current) goes on in its half. Should it lag for half a window
 *   (the whole process suspended and resumed), or while a window that reuses its half is prepared after a whole
 *   window without ticks, its writes can land in the half being prepared: at worst a stray value or pair in the new
 *   window. Probes are bounded and set indices checked, so such words can never hang or overrun.
 *
 * Cost: an admitted value is a plain read of CURRENT, then plain-read probes of the pair table and of the set (no
 * writes, no allocation): ≈ 25 ns per admit() on Node 20 (x86-64, maxValuesPerTag 100 and maxKeys 1,000, every
 * pair full; an Atomics.load of CURRENT would add ≈ 13 ns), no garbage collection in 20 million calls. tick()
 * allocates nothing either (TypedArray.fill to clear).
 */
export class AdmissionTable {
  /**
   * The buffer's size, fixed at creation: 4 × (16 + 2 × (16 + 3 × pairCapacity + maxKeys × (1 + valueCapacity)))
   * bytes, pairCapacity the least power of two ≥ maxKeys / 0.7, valueCapacity the least power of two ≥ 1.25 ×
   * maxValuesPerTag (maxValuesPerTag 100, maxKeys 1,000: pairCapacity 2,048, valueCapacity 128, 1,081,344 bytes).
   */
  readonly memoryBytes: number
  readonly maxValuesPerTag: number
  readonly maxKeys: number
  readonly windowMs: number

  private readonly buffer: SharedArrayBuffer
  private readonly words: Int32Array
  private readonly halfWords: number
  private readonly pairMask: number
  private readonly pairShift: number
  private readonly valueMask: number
  private readonly valueShift: number
  /** Words per set: the count, then the value array. */
  private readonly setWords: number
  /** This thread's copy of CURRENT, and the offset of its half. */
  private tag = UNSET
  private base = HEADER_WORDS

  constructor(data: AdmissionData) {
    const layout = layOut(data)
    if (data.buffer.byteLength !== layout.bytes) {
      throw new RangeError(`an admission table of these parameters takes ${layout.bytes} bytes`)
    }
    this.maxValuesPerTag = data.maxValuesPerTag
    this.maxKeys = data.maxKeys
    this.windowMs = data.windowMs
    this.buffer = data.buffer
    this.words = new Int32Array(data.buffer)
    this.memoryBytes = layout.bytes
    this.halfWords = layout.halfWords
    this.pairMask = layout.pairCapacity - 1
    this.pairShift = 32 - Math.log2(layout.pairCapacity)
    this.valueMask = layout.valueCapacity - 1
    this.valueShift = 32 - Math.log2(layout.valueCapacity)
    this.setWords = 1 + layout.valueCapacity
  }

  /** A table in the window of `nowMs`, both halves clean. */
  static create(options: AdmissionOptions): AdmissionTable {
    const { maxValuesPerTag, maxKeys, windowMs } = options
    const buffer = new SharedArrayBuffer(layOut({ maxValuesPerTag, maxKeys, windowMs }).bytes)
    const words = new Int32Array(buffer)
    const epoch = Math.floor((options.nowMs ?? Date.now()) / windowMs)
    words[CURRENT] = epoch << 1
    words[LABEL + (epoch & 1)] = epoch << 1
    words[LABEL + ((epoch + 1) & 1)] = FRESH
    return new AdmissionTable({ buffer, maxValuesPerTag, maxKeys, windowMs })
  }

  /** The shared memory and parameters, to wrap the same table in another thread. */
  data(): AdmissionData {
    return {
      buffer: this.buffer,
      maxValuesPerTag: this.maxValuesPerTag,
      maxKeys: this.maxKeys,
      windowMs: this.windowMs,
    }
  }

  /** Pairs tracked in the current window. */
  keys(): number {
    const current = Atomics.load(this.words, CURRENT)
    if ((current & 1) !== 0) return 0
    return Math.min(this.maxKeys, Atomics.load(this.words, this.halfBase(current) + SETS))
  }

  /**
   * Admits the value `valueHash` of the pair (`setHash1`, `setHash2`) in the current window: ADMITTED, OVER or
   * FULL. Allocates nothing.
   */
  admit(setHash1: number, setHash2: number, valueHash: number): number {
    // A plain read (an atomic one costs more than the rest of a hit): a stale CURRENT only delays following it.
    if (this.words[CURRENT] !== this.tag && !this.follow()) return OVER
    const base = this.base
    const hash1 = setHash1 | 0 || 1
    const hash2 = setHash2 | 0 || 1
    let set = this.findPair(base, hash1, hash2)
    if (set === ABSENT) set = this.addPair(base, hash1, hash2)
    if (set < 0) return set === NO_ROOM ? FULL : OVER
    const words = this.words
    const value = valueHash | 0 || 1
    const mask = this.valueMask
    let slot = Math.imul(value, GOLDEN) >>> this.valueShift
    for (let probes = 0; probes <= mask; probes++) {
      const found = words[set + 1 + slot]
      if (found === value) return ADMITTED
      if (found === 0) break
      slot = (slot + 1) & mask
    }
    return this.addValue(set, slot, value)
  }

  /** Moves the table into the window of `nowMs`, or prepares the next window once past the middle of this one. */
  tick(nowMs: number): void {
    const epoch = Math.floor(nowMs / this.windowMs)
    const tag = epoch << 1
    const current = Atomics.load(this.words, CURRENT)
    if (current !== tag) {
      // A later window (a difference of tags, wrapped), unless another thread is changing the window (TRANSITION).
      if ((current & 1) === 0 && ((tag - current) | 0) > 0) this.change(tag, true)
      return
    }
    const next = (epoch + 1) << 1
    if (2 * (nowMs - epoch * this.windowMs) >= this.windowMs && Atomics.load(this.words, this.label(next)) !== next) {
      this.change(next, false)
    }
  }

  /** Adopts CURRENT; false while there is no window to admit in (TRANSITION). */
  private follow(): boolean {
    const current = Atomics.load(this.words, CURRENT)
    if ((current & 1) !== 0) return false
    this.tag = current
    this.base = this.halfBase(current)
    return true
  }

  /**
   * Under the lock, if still due: enters the window `tag` (`enter`) or prepares it as the next one. A thread that
   * finds the lock taken leaves it to its holder.
   */
  private change(tag: number, enter: boolean): void {
    const words = this.words
    if (Atomics.compareExchange(words, LOCK, 0, 1) !== 0) return
    const current = Atomics.load(words, CURRENT)
    if (enter ? ((tag - current) | 0) > 0 : current === ((tag - 2) | 0)) {
      const label = this.label(tag)
      if (Atomics.load(words, label) !== tag) {
        const base = this.halfBase(tag)
        if (enter && base === this.halfBase(current)) Atomics.store(words, CURRENT, TRANSITION)
        if (Atomics.load(words, label) !== FRESH) words.fill(0, base, base + this.halfWords)
        Atomics.store(words, label, tag)
      }
      if (enter) Atomics.store(words, CURRENT, tag)
    }
    Atomics.store(words, LOCK, 0)
  }

  private label(tag: number): number {
    return LABEL + ((tag >> 1) & 1)
  }

  private halfBase(tag: number): number {
    return HEADER_WORDS + ((tag >> 1) & 1) * this.halfWords
  }

  /** The offset of the pair's set, or ABSENT (or not complete yet): plain reads, a miss left to addPair to verify. */
  private findPair(base: number, hash1: number, hash2: number): number {
    const words = this.words
    const mask = this.pairMask
    let slot = Math.imul(hash1, GOLDEN) >>> this.pairShift
    for (let probes = 0; probes <= mask; probes++) {
      const at = base + HALF_HEADER_WORDS + PAIR_WORDS * slot
      const first = words[at]
      if (first === hash1 && words[at + 1] === hash2) {
        const set = words[at + 2]
        return set === 0 ? ABSENT : this.setOffset(base, set)
      }
      if (first === 0) return ABSENT
      slot = (slot + 1) & mask
    }
    return ABSENT
  }

  /**
   * Probes again with atomic reads (the pair may have been added since the plain reads), then reserves room for a
   * new pair and claims its entry: the offset of its set, NO_ROOM or UNPUBLISHED.
   */
  private addPair(base: number, hash1: number, hash2: number): number {
    const words = this.words
    const mask = this.pairMask
    let slot = Math.imul(hash1, GOLDEN) >>> this.pairShift
    let probes = 0
    for (; probes <= mask; probes++) {
      const at = base + HALF_HEADER_WORDS + PAIR_WORDS * slot
      const first = Atomics.load(words, at)
      if (first === 0) break
      if (first === hash1) {
        const second = Atomics.load(words, at + 1)
        if (second === hash2) return this.published(base, at)
        if (second === 0) break
      }
      slot = (slot + 1) & mask
    }
    const pairs = base + PAIRS
    if (probes > mask || Atomics.load(words, pairs) >= this.maxKeys) return NO_ROOM
    if (Atomics.add(words, pairs, 1) >= this.maxKeys) {
      Atomics.sub(words, pairs, 1)
      return NO_ROOM
    }
    for (; probes <= mask; probes++) {
      const at = base + HALF_HEADER_WORDS + PAIR_WORDS * slot
      const first = Atomics.compareExchange(words, at, 0, hash1)
      if (first === 0 || first === hash1) {
        const second = Atomics.compareExchange(words, at + 1, 0, hash2)
        if (second === 0) {
          // Each entry's definer holds a reservation, so sets never run out, bar stray words (see the class).
          const set = Atomics.add(words, base + SETS, 1)
          if (set >= this.maxKeys) return NO_ROOM
          Atomics.store(words, at + 2, set + 1)
          return this.setOffset(base, set + 1)
        }
        if (second === hash2) {
          Atomics.sub(words, pairs, 1)
          return this.published(base, at)
        }
      }
      slot = (slot + 1) & mask
    }
    Atomics.sub(words, pairs, 1)
    return NO_ROOM
  }

  /** The set of the complete entry at `at`, once its definer has published it; UNPUBLISHED after SPIN_LIMIT loads. */
  private published(base: number, at: number): number {
    for (let spins = 0; spins < SPIN_LIMIT; spins++) {
      const set = Atomics.load(this.words, at + 2)
      if (set !== 0) return this.setOffset(base, set)
    }
    return UNPUBLISHED
  }

  private setOffset(base: number, setPlusOne: number): number {
    return base + HALF_HEADER_WORDS + PAIR_WORDS * (this.pairMask + 1) + (setPlusOne - 1) * this.setWords
  }

  /**
   * Probes again from `slot`, where plain reads found an empty slot, with atomic reads (the value may have been
   * inserted since), then reserves a count for the new value and inserts it.
   */
  private addValue(set: number, slot: number, value: number): number {
    const words = this.words
    const mask = this.valueMask
    let probes = 0
    for (; probes <= mask; probes++) {
      const found = Atomics.load(words, set + 1 + slot)
      if (found === value) return ADMITTED
      if (found === 0) break
      slot = (slot + 1) & mask
    }
    if (probes > mask || Atomics.load(words, set) >= this.maxValuesPerTag) return OVER
    if (Atomics.add(words, set, 1) >= this.maxValuesPerTag) {
      Atomics.sub(words, set, 1)
      return OVER
    }
    for (; probes <= mask; probes++) {
      const found = Atomics.compareExchange(words, set + 1 + slot, 0, value)
      if (found === 0) return ADMITTED
      if (found === value) {
        Atomics.sub(words, set, 1)
        return ADMITTED
      }
      slot = (slot + 1) & mask
    }
    Atomics.sub(words, set, 1)
    return OVER
  }
}

interface Layout {
  bytes: number
  halfWords: number
  pairCapacity: number
  valueCapacity: number
}

function layOut(parameters: Omit<AdmissionData, 'buffer'>): Layout {
  const { maxValuesPerTag, maxKeys, windowMs } = parameters
  requirePositiveInteger('maxValuesPerTag', maxValuesPerTag)
  requirePositiveInteger('maxKeys', maxKeys)
  requirePositiveInteger('windowMs', windowMs)
  const pairCapacity = 2 ** Math.ceil(Math.log2(maxKeys / 0.7))
  const valueCapacity = 2 ** Math.ceil(Math.log2(1.25 * maxValuesPerTag))
  const halfWords = HALF_HEADER_WORDS + PAIR_WORDS * pairCapacity + maxKeys * (1 + valueCapacity)
  const words = HEADER_WORDS + 2 * halfWords
  if (words > 2 ** 30) throw new RangeError('an admission table of these parameters takes over 4 GiB')
  return { bytes: 4 * words, halfWords, pairCapacity, valueCapacity }
}

function requirePositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name} must be a positive integer, got ${value}`)
}
