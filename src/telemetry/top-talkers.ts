import { EMPTY, linkSlot, unlinkSlot } from './slot-table.ts'

/** One row of {@link TopTalkers.top}. */
export interface TopEntry {
  /** The name as UTF-8 text (invalid bytes shown as U+FFFD); a name cut to maxNameBytes ends in '…'. */
  name: string
  /** Estimated lines with this name, scaled by the sampling: an overestimate by at most `error` plus sampling noise. */
  count: number
  /** Space-Saving's bound on how much `count` overestimates the sampled lines, scaled by the sampling. */
  error: number
}

const TRUNCATION_MARK = '…'
const FNV_OFFSET = 0x811c9dc5 | 0
const FNV_PRIME = 0x01000193
const SEED = 0x9e3779b9 | 0
/** Bytes per counter besides its name: hash, name length, heap, heap position (Int32), cut flag, count, error. */
const SLOT_OVERHEAD_BYTES = 4 + 4 + 4 + 4 + 1 + 8 + 8

const decoder = new TextDecoder()

/**
 * The metric names with the most lines, approximately, in memory fixed at construction: Space-Saving (Metwally,
 * Agrawal, El Abbadi 2005) over `capacity` counters, fed a random sample of the lines.
 *
 * Each line is sampled with probability 1/sampleEvery by a xorshift32 draw rather than every sampleEvery-th line,
 * so a client that emits a fixed cycle of names cannot alias with the sampler and hide all but one of them.
 *
 * A name is its bytes, not its text. Names longer than `maxNameBytes` are cut to their first `maxNameBytes` bytes,
 * and all cut names sharing those bytes count as one (kept apart from the uncut name of exactly those bytes).
 *
 * The counters live in typed arrays: a min-heap by count gives Space-Saving its minimum in O(1) and re-sorts an
 * incremented counter in O(log capacity); an open-addressing table (linear probing, backward-shift deletion, so
 * replacing names forever never degrades it) finds a name's counter by its FNV-1a hash and confirmed bytes.
 * `observe` allocates nothing.
 */
export class TopTalkers {
  /**
   * Bytes held in typed arrays, fixed at construction:
   * capacity × (maxNameBytes + 33) + 4 × tableSize, where tableSize is the least power of two ≥ 2 × capacity
   * (capacity 1000, maxNameBytes 128: 161,000 + 8,192 = 169,192 bytes).
   */
  readonly memoryBytes: number

  private readonly capacity: number
  private readonly maxNameBytes: number
  private readonly weight: number
  /** A line is sampled when the unsigned xorshift32 draw is below this: probability ≈ 1/sampleEvery. */
  private readonly threshold: number
  private readonly mask: number

  /** Hash table position -> counter slot, or EMPTY. */
  private readonly table: Int32Array
  /** Counter slot i's name is names[i × maxNameBytes, + nameLengths[i]). */
  private readonly names: Uint8Array
  private readonly nameLengths: Int32Array
  private readonly truncated: Uint8Array
  private readonly hashes: Int32Array
  private readonly counts: Float64Array
  private readonly errors: Float64Array
  private readonly heapPositions: Int32Array
  /** Heap position -> counter slot. */
  private readonly heap: Int32Array

  /** Counter slots in use, which is also the heap's size: a new counter takes slot and heap position `used`. */
  private used = 0
  private lines = 0
  private random = SEED

  /**
   * @param capacity the number of counters: names whose share of the sampled lines is above 1/capacity are
   *   guaranteed a counter
   * @param maxNameBytes name bytes kept per counter
   * @param sampleEvery 1 counts every line; n counts about one line in n, each weighing n
   */
  constructor(capacity: number, maxNameBytes: number, sampleEvery: number) {
    requirePositiveInteger('capacity', capacity)
    requirePositiveInteger('maxNameBytes', maxNameBytes)
    requirePositiveInteger('sampleEvery', sampleEvery)
    this.capacity = capacity
    this.maxNameBytes = maxNameBytes
    this.weight = sampleEvery
    this.threshold = Math.floor(2 ** 32 / sampleEvery)
    const tableSize = 2 ** Math.ceil(Math.log2(2 * capacity))
    this.mask = tableSize - 1
    this.table = new Int32Array(tableSize).fill(EMPTY)
    this.names = new Uint8Array(capacity * maxNameBytes)
    this.nameLengths = new Int32Array(capacity)
    this.truncated = new Uint8Array(capacity)
    this.hashes = new Int32Array(capacity)
    this.counts = new Float64Array(capacity)
    this.errors = new Float64Array(capacity)
    this.heapPositions = new Int32Array(capacity)
    this.heap = new Int32Array(capacity)
    this.memoryBytes = capacity * (maxNameBytes + SLOT_OVERHEAD_BYTES) + 4 * tableSize
  }

  /** Lines passed to `observe` since construction or `reset`, sampled or not. */
  get observed(): number {
    return this.lines
  }

  /** Counts the line whose metric name is `buf[start, end)`, if the sampler picks it. */
  observe(buf: Uint8Array, start: number, end: number): void {
    this.lines++
    let x = this.random
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.random = x
    if (x >>> 0 < this.threshold) this.record(buf, start, end)
  }

  /** The `n` names with the highest counts, highest first, equal counts by name. */
  top(n: number): TopEntry[] {
    const entries: TopEntry[] = []
    for (let slot = 0; slot < this.used; slot++) {
      const offset = slot * this.maxNameBytes
      const length = this.nameLengths[slot]
      const cut = this.truncated[slot] === 1
      const end = cut ? completeUtf8End(this.names, offset, offset + length) : offset + length
      const text = decoder.decode(this.names.subarray(offset, end))
      entries.push({
        name: cut ? text + TRUNCATION_MARK : text,
        count: this.counts[slot] * this.weight,
        error: this.errors[slot] * this.weight,
      })
    }
    entries.sort(byCount)
    return entries.slice(0, Math.max(0, n))
  }

  /** Forgets every name and count, and restarts the sampler as if newly constructed. */
  reset(): void {
    this.table.fill(EMPTY)
    this.used = 0
    this.lines = 0
    this.random = SEED
  }

  private record(buf: Uint8Array, start: number, end: number): void {
    let length = end - start
    let cut = 0
    if (length > this.maxNameBytes) {
      length = this.maxNameBytes
      cut = 1
    }
    const hash = hashName(buf, start, length, cut)
    const table = this.table
    const mask = this.mask
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const slot = table[i]
      if (slot === EMPTY) break
      if (this.hashes[slot] === hash && this.holds(slot, buf, start, length, cut)) {
        this.counts[slot]++
        this.siftDown(this.heapPositions[slot])
        return
      }
    }

    if (this.used < this.capacity) {
      const slot = this.used++
      this.counts[slot] = 1
      this.errors[slot] = 0
      this.store(slot, buf, start, length, cut, hash)
      this.heap[slot] = slot
      this.siftUp(slot)
      return
    }
    // Space-Saving: the new name takes over the smallest counter and inherits its count as possible overcount.
    const slot = this.heap[0]
    const min = this.counts[slot]
    unlinkSlot(this.table, this.hashes, slot)
    this.counts[slot] = min + 1
    this.errors[slot] = min
    this.store(slot, buf, start, length, cut, hash)
    this.siftDown(0)
  }

  private holds(slot: number, buf: Uint8Array, start: number, length: number, cut: number): boolean {
    if (this.nameLengths[slot] !== length || this.truncated[slot] !== cut) return false
    const names = this.names
    const offset = slot * this.maxNameBytes - start
    for (let i = start; i < start + length; i++) if (names[offset + i] !== buf[i]) return false
    return true
  }

  /** Writes the name into the slot and links the slot into the hash table. */
  private store(slot: number, buf: Uint8Array, start: number, length: number, cut: number, hash: number): void {
    const names = this.names
    const offset = slot * this.maxNameBytes - start
    for (let i = start; i < start + length; i++) names[offset + i] = buf[i]
    this.nameLengths[slot] = length
    this.truncated[slot] = cut
    this.hashes[slot] = hash
    linkSlot(this.table, hash, slot)
  }

  /** Moves the counter at heap position `pos` up to its place: a new counter, below counters that have grown. */
  private siftUp(pos: number): void {
    const heap = this.heap
    const heapPositions = this.heapPositions
    const counts = this.counts
    const slot = heap[pos]
    const count = counts[slot]
    while (pos > 0) {
      const parent = (pos - 1) >> 1
      const parentSlot = heap[parent]
      if (counts[parentSlot] <= count) break
      heap[pos] = parentSlot
      heapPositions[parentSlot] = pos
      pos = parent
    }
    heap[pos] = slot
    heapPositions[slot] = pos
  }

  /** Moves the counter at heap position `pos` down to restore the heap after its count grew. */
  private siftDown(pos: number): void {
    const heap = this.heap
    const heapPositions = this.heapPositions
    const counts = this.counts
    const size = this.used
    const slot = heap[pos]
    const count = counts[slot]
    for (;;) {
      let child = 2 * pos + 1
      if (child >= size) break
      if (child + 1 < size && counts[heap[child + 1]] < counts[heap[child]]) child++
      const childSlot = heap[child]
      if (counts[childSlot] >= count) break
      heap[pos] = childSlot
      heapPositions[childSlot] = pos
      pos = child
    }
    heap[pos] = slot
    heapPositions[slot] = pos
  }
}

function requirePositiveInteger(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${what} must be a positive integer, got ${value}`)
  }
}

/**
 * FNV-1a over the kept bytes and the cut flag, then murmur3's finalizer: FNV-1a's multiply carries only upward, so
 * the k low bits the table mask keeps would otherwise depend on nothing but the k low bits of each byte.
 */
function hashName(buf: Uint8Array, start: number, length: number, cut: number): number {
  let h = FNV_OFFSET
  for (let i = start; i < start + length; i++) h = Math.imul(h ^ buf[i], FNV_PRIME)
  h = Math.imul(h ^ cut, FNV_PRIME)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}

/** `end`, or less so that a UTF-8 sequence cut off by truncation is left out instead of shown as U+FFFD. */
function completeUtf8End(bytes: Uint8Array, start: number, end: number): number {
  let lead = end - 1
  while (lead > start && lead > end - 4 && (bytes[lead] & 0xc0) === 0x80) lead--
  const b = bytes[lead]
  const sequenceLength = b >= 0xf8 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1
  return end - lead < sequenceLength ? lead : end
}

/** Names tracked per sketch, bytes kept per name, and one line in this many sampled. */
export const TOP_TALKERS = { capacity: 1000, maxNameBytes: 128, sampleEvery: 16 } as const

/** The heaviest metric names, forwarded and blocked apart, as /top reports them. */
export interface TopReport {
  sampleEvery: number
  memoryBytes: number
  forwarded: TopEntry[]
  blocked: TopEntry[]
}

/** The two sketches the filter feeds: names of the lines it forwards and of those it blocks. */
export class Insights {
  readonly forwarded = new TopTalkers(TOP_TALKERS.capacity, TOP_TALKERS.maxNameBytes, TOP_TALKERS.sampleEvery)
  readonly blocked = new TopTalkers(TOP_TALKERS.capacity, TOP_TALKERS.maxNameBytes, TOP_TALKERS.sampleEvery)

  report(n: number): TopReport {
    const memoryBytes = this.forwarded.memoryBytes + this.blocked.memoryBytes
    return {
      sampleEvery: TOP_TALKERS.sampleEvery,
      memoryBytes,
      forwarded: this.forwarded.top(n),
      blocked: this.blocked.top(n),
    }
  }
}

/** Several workers' reports as one: see mergeTop. */
export function mergeReports(reports: readonly TopReport[], n: number): TopReport {
  return {
    sampleEvery: TOP_TALKERS.sampleEvery,
    memoryBytes: reports.reduce((bytes, report) => bytes + report.memoryBytes, 0),
    forwarded: mergeTop(
      reports.map((report) => report.forwarded),
      n,
    ),
    blocked: mergeTop(
      reports.map((report) => report.blocked),
      n,
    ),
  }
}

/**
 * Several sketches' lists as one, for workers that each sampled part of the traffic: a name's counts and error
 * bounds add up (Space-Saving summaries are mergeable by addition). A name one sketch dropped is undercounted
 * by at most that sketch's smallest count.
 */
function mergeTop(lists: readonly (readonly TopEntry[])[], n: number): TopEntry[] {
  const byName = new Map<string, TopEntry>()
  for (const list of lists) {
    for (const entry of list) {
      const seen = byName.get(entry.name)
      if (seen === undefined) byName.set(entry.name, { ...entry })
      else {
        seen.count += entry.count
        seen.error += entry.error
      }
    }
  }
  const merged = [...byName.values()]
  merged.sort(byCount)
  return merged.slice(0, Math.max(0, n))
}

/** Highest count first, equal counts by name. */
function byCount(a: TopEntry, b: TopEntry): number {
  return b.count - a.count || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
}
