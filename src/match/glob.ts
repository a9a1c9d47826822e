/**
 * Name globs: `*` matches one or more bytes other than `.`, `**` one or more bytes of any kind, every other byte
 * of the pattern's UTF-8 is literal, and the whole name must match.
 *
 * The globs are compiled into one trie over tokens (a literal byte, `*`, `**`), run as an NFA whose states are the
 * trie's nodes: from an active node, its literal child on the name's byte, its `*` child on a byte other than `.`
 * and its `**` child on any byte become active; a `*` node stays active on a byte other than `.`, a `**` node on
 * any byte. The globs that match are those of the nodes active after the last byte. GlobMatcher runs that NFA as
 * a DFA built lazily (each set of active nodes a state, each transition stepped once): a name costs one table read
 * per byte, never more with the number of globs, and no glob is ever looked at by itself.
 */

import { commonPrefix, placeDoubleArray } from './double-array.ts'

const NONE = -1
const DOT = 0x2e
const ASTERISK = 0x2a
/** Tokens: the literal bytes, then `*`, then `**`; the child of slot s on token t lives at slot base(s) + t. */
const STAR = 256
const DOUBLE_STAR = 257
const TOKENS = 258

/** `flags` bits. The slot is a `*` node: it stays active on a byte other than `.`. */
const LOOPS_ON_NON_DOT = 1
/** The slot is a `**` node: it stays active on any byte. */
const LOOPS_ON_ANY = 2
/** The slot has a `*` child (at base + STAR): known without reading that child's check. */
const HAS_STAR = 4
/** The slot has a `**` child (at base + DOUBLE_STAR). */
const HAS_DOUBLE_STAR = 8
const FLAG_BITS = 4
const FLAG_MASK = (1 << FLAG_BITS) - 1
/** A base shares an int32 with the flags: 2^27 slots, some 6 million globs of 20 bytes each. */
const MAX_SLOTS = 1 << (31 - FLAG_BITS)

/** Stamps go up by one per name byte; at this value they are cleared and start over at 1 (after 2^31 bytes). */
const LAST_GENERATION = 0x7fffffff

/** Why a glob is invalid (a sentence for a config error, after the entry's path), or null. */
export function globProblem(pattern: string): string | null {
  // `.` and `*` are ASCII and never a byte of a longer UTF-8 sequence, so the string's code units tell the bytes.
  if (pattern === '') return 'must not be empty (a glob needs at least one byte to match)'
  if (pattern.startsWith('.')) return 'must not start with "." (every segment between dots needs at least one byte)'
  if (pattern.endsWith('.')) return 'must not end with "." (every segment between dots needs at least one byte)'
  if (pattern.includes('..')) return 'must not contain ".." (every segment between dots needs at least one byte)'
  if (pattern.includes('***')) return 'must not have three or more * in a row (* is one segment, ** any bytes)'
  return null
}

/**
 * A compiled set of globs as plain typed arrays, to be placed in SharedArrayBuffers and posted to threads: the
 * token trie as a double array (as in trie.ts, over 258 tokens), two int32s per slot side by side, so that the
 * check a transition reads and the base the next byte reads share a cache line. About 13 bytes a node: 10,000
 * globs of bench/globs.ts's shapes are 54,025 nodes in 695 KB; each matcher adds its NFA scratch and its DFA (929 KB
 * after bench/globs.ts's names; the DFA holds at most 2.3 MB). bench/globs.ts's names, CPU time on a loaded 2-vCPU
 * machine: 311 ns a name with 10 globs and 345 with 10,000 on the NFA, against 450 and 565 with sorted child ranges
 * and a binary search; with the DFA (Node 20, a quieter machine), 58 and 63 against the NFA's 140 and 150.
 */
export interface GlobData {
  /** Nodes of the trie (the root and one per distinct token prefix of the globs): the most that can be active. */
  nodeCount: number
  /** `slots[2s]` = base << 4 | flags, `slots[2s + 1]` = check: the parent's slot, or FREE / ROOT_CHECK (double-array.ts). Slot 0 is the root. */
  slots: Int32Array
  /** One entry per slot and one more: the globs ending at slot s report `ids[idStart[s], idStart[s + 1])`. */
  idStart: Int32Array
  ids: Int32Array
  /**
   * The DFA's alphabet: byteClass[b] is b's class. Every byte some glob names as a literal has a class of its own,
   * so does `.`, and all other bytes share class 0 (a wildcard takes them alike, no literal takes them).
   */
  byteClass: Uint8Array
  classCount: number
}

/** Compiles globs (each already valid); `ids[i]` is what a match of globs[i] reports. Several globs may share a pattern (each id reported). */
export function compileGlobs(globs: readonly string[], ids: readonly number[]): GlobData {
  if (ids.length !== globs.length) throw new Error(`compileGlobs: ${globs.length} globs but ${ids.length} ids`)
  for (const glob of globs) {
    const problem = globProblem(glob)
    if (problem !== null) throw new Error(`compileGlobs: glob ${JSON.stringify(glob)} ${problem}`)
  }
  const { tokens, starts } = tokenize(globs)
  const tree = buildTree(tokens, starts)
  return { ...layOut(tree, ids), ...byteClasses(tokens, starts[globs.length]) }
}

/** The DFA's byte classes (GlobData.byteClass) of the literal tokens in `tokens[0, count)`. */
function byteClasses(tokens: Int32Array, count: number): { byteClass: Uint8Array; classCount: number } {
  const byteClass = new Uint8Array(256)
  let classCount = 1
  byteClass[DOT] = classCount++
  for (let i = 0; i < count; i++) {
    const token = tokens[i]
    if (token < 256 && byteClass[token] === 0) byteClass[token] = classCount++
  }
  return { byteClass, classCount }
}

/** Every glob's tokens in one array: glob k is tokens[starts[k], starts[k + 1]). */
function tokenize(globs: readonly string[]): { tokens: Int32Array; starts: Int32Array } {
  // One buffer for all the UTF-8, as in trie.ts: no Buffer per pattern.
  const byteStarts = new Int32Array(globs.length + 1)
  for (let k = 0; k < globs.length; k++) byteStarts[k + 1] = byteStarts[k] + Buffer.byteLength(globs[k], 'utf8')
  const text = Buffer.allocUnsafe(byteStarts[globs.length])
  for (let k = 0; k < globs.length; k++) text.write(globs[k], byteStarts[k], 'utf8')
  // A glob has at most as many tokens as bytes.
  const tokens = new Int32Array(text.length)
  const starts = new Int32Array(globs.length + 1)
  let n = 0
  for (let k = 0; k < globs.length; k++) {
    const end = byteStarts[k + 1]
    for (let i = byteStarts[k]; i < end; i++) {
      if (text[i] !== ASTERISK) tokens[n++] = text[i]
      else if (i + 1 < end && text[i + 1] === ASTERISK) {
        tokens[n++] = DOUBLE_STAR
        i++ // validity: never a third
      } else tokens[n++] = STAR
    }
    starts[k + 1] = n
  }
  return { tokens, starts }
}

/** The globs as a plain tree of tokens, children as sibling lists in token order; `terminal[k]` is glob k's node. */
interface Tree {
  nodeCount: number
  token: Int32Array
  firstChild: Int32Array
  nextSibling: Int32Array
  terminal: Int32Array
}

/**
 * As in trie.ts: inserted in token order, a new child always sorts after its existing siblings, so the builder
 * only ever compares with a node's last child. Sorted by tokens, not bytes: in byte order `**` falls between
 * `*!` and `*a`, which would split the globs under one `*` child in two.
 */
function buildTree(tokens: Int32Array, starts: Int32Array): Tree {
  const globCount = starts.length - 1
  const order = new Int32Array(globCount)
  for (let k = 0; k < globCount; k++) order[k] = k
  order.sort((a, b) => compareTokens(tokens, starts[a], starts[a + 1], starts[b], starts[b + 1]))

  // The exact node count first, so every array is allocated once.
  let capacity = 1
  for (let k = 0; k < globCount; k++) {
    const a = order[k]
    const length = starts[a + 1] - starts[a]
    capacity +=
      k === 0
        ? length
        : length - commonPrefix(tokens, starts[order[k - 1]], starts[order[k - 1] + 1], starts[a], starts[a + 1])
  }
  const token = new Int32Array(capacity)
  const firstChild = new Int32Array(capacity).fill(NONE)
  const lastChild = new Int32Array(capacity).fill(NONE)
  const nextSibling = new Int32Array(capacity).fill(NONE)
  const terminal = new Int32Array(globCount)
  let nodeCount = 1 // the root

  for (let k = 0; k < globCount; k++) {
    const g = order[k]
    let node = 0
    for (let i = starts[g]; i < starts[g + 1]; i++) {
      const last = lastChild[node]
      if (last !== NONE && token[last] === tokens[i]) {
        node = last
        continue
      }
      const child = nodeCount++
      token[child] = tokens[i]
      if (last === NONE) firstChild[node] = child
      else nextSibling[last] = child
      lastChild[node] = child
      node = child
    }
    terminal[g] = node
  }
  return { nodeCount, token, firstChild, nextSibling, terminal }
}

function compareTokens(tokens: Int32Array, aStart: number, aEnd: number, bStart: number, bEnd: number): number {
  const n = Math.min(aEnd - aStart, bEnd - bStart)
  for (let i = 0; i < n; i++) {
    const d = tokens[aStart + i] - tokens[bStart + i]
    if (d !== 0) return d
  }
  return aEnd - aStart - (bEnd - bStart)
}

/**
 * The tree placed in a double array over the 258 tokens (double-array.ts); then each slot's flags, packed with its
 * base and check into `slots`, and the ids grouped by slot.
 */
function layOut(tree: Tree, ids: readonly number[]): Omit<GlobData, 'byteClass' | 'classCount'> {
  const { base, check, length, slotOf } = placeDoubleArray(
    { nodeCount: tree.nodeCount, label: tree.token, firstChild: tree.firstChild, nextSibling: tree.nextSibling },
    TOKENS,
  )
  if (length > MAX_SLOTS) throw new Error(`compileGlobs: ${length} slots, over the ${MAX_SLOTS} a base can address`)
  const flags = new Uint8Array(length)
  for (let node = 0; node < tree.nodeCount; node++) {
    const slot = slotOf[node]
    for (let c = tree.firstChild[node]; c !== NONE; c = tree.nextSibling[c]) {
      if (tree.token[c] === STAR) {
        flags[slot] |= HAS_STAR
        flags[slotOf[c]] |= LOOPS_ON_NON_DOT
      } else if (tree.token[c] === DOUBLE_STAR) {
        flags[slot] |= HAS_DOUBLE_STAR
        flags[slotOf[c]] |= LOOPS_ON_ANY
      }
    }
  }
  const slots = new Int32Array(2 * length)
  for (let s = 0; s < length; s++) {
    slots[2 * s] = (base[s] << FLAG_BITS) | flags[s]
    slots[2 * s + 1] = check[s]
  }

  const idStart = new Int32Array(length + 1)
  for (let g = 0; g < ids.length; g++) idStart[slotOf[tree.terminal[g]] + 1]++
  for (let s = 0; s < length; s++) idStart[s + 1] += idStart[s]
  const fill = idStart.slice(0, length)
  const grouped = new Int32Array(ids.length)
  for (let g = 0; g < ids.length; g++) grouped[fill[slotOf[tree.terminal[g]]]++] = ids[g]
  return { nodeCount: tree.nodeCount, slots, idStart, ids: grouped }
}

/** A transition the DFA has not taken yet. */
const UNKNOWN = -1
/** The state of no NFA slot: no glob can match any more. */
const DEAD = -2
/** What addTransition returns when the DFA is full: the next set is in `scratch`, for the NFA to go on from. */
const FULL = -3
/** The DFA holds at most this many transitions (4 bytes each) before it starts over: 1 MB per matcher. */
const MAX_TRANSITIONS = 1 << 18
/** And at most this many states, whose NFA slot sets share a pool of at most MAX_SET_WORDS. */
const MAX_STATES = 1 << 14
const MAX_SET_WORDS = 1 << 18
/** The start state's set: the root slot. */
const ROOT_SET = Int32Array.of(0)
/** States the DFA's arrays first have room for; they double up to the maxima. */
const FIRST_STATES = 16

/**
 * Runs names through a GlobData, as a DFA built lazily from the NFA: a state is a set of NFA slots, made the first
 * time a name reaches it, and each transition is stepped on the NFA once, then read from a table: a name costs one
 * table read per byte, like the trie, whatever the globs' shapes (the NFA alone stepped every active wildcard per
 * byte: ~100 ns a name under bench/tag-rules.ts's 50 `web.*.svcN.**` globs). When the table is full it starts
 * over, and the name that filled it finishes on the NFA. The arrays of the data may be shared between threads;
 * the DFA and the NFA's scratch are the matcher's own, so each thread makes its own matcher.
 */
export class GlobMatcher {
  /** Number of glob ids; the capacity `out` needs. */
  readonly idCount: number
  private readonly slots: Int32Array
  private readonly idStart: Int32Array
  private readonly ids: Int32Array
  private readonly byteClass: Uint8Array
  private readonly classCount: number
  /** A byte of each class: what the NFA steps on to make a transition on the class. */
  private readonly classByte: Uint8Array
  /** stamp[s] === generation: slot s is already in the set being built. */
  private readonly stamp: Int32Array
  private generation = 0
  /** The NFA's sets for a name the DFA could not hold: the set built last is in `scratch`. */
  private scratch: Int32Array
  private spare: Int32Array
  private scratchCount = 0
  /** The most states the table may hold (MAX_TRANSITIONS over the classes, at most MAX_STATES). */
  private readonly maxStates: number
  private states = 0
  /** transitions[state * classCount + class]: the next state, UNKNOWN or DEAD. */
  private transitions: Int32Array
  /** State d's NFA slots, sorted: sets[setStart[d], setStart[d + 1]). */
  private setStart: Int32Array
  private sets: Int32Array
  /** Open addressing over the states by their set's hash: state + 1, 0 = empty; at least twice the room for states. */
  private lookup: Int32Array
  private lookupMask: number
  private setHash: Int32Array

  constructor(data: GlobData) {
    this.idCount = data.ids.length
    this.slots = data.slots
    this.idStart = data.idStart
    this.ids = data.ids
    this.byteClass = data.byteClass
    this.classCount = data.classCount
    this.classByte = new Uint8Array(data.classCount)
    for (let b = 255; b >= 0; b--) this.classByte[data.byteClass[b]] = b
    this.stamp = new Int32Array(data.idStart.length - 1)
    this.scratch = new Int32Array(data.nodeCount)
    this.spare = new Int32Array(data.nodeCount)
    this.maxStates = Math.min(MAX_STATES, Math.floor(MAX_TRANSITIONS / data.classCount))
    const first = Math.min(FIRST_STATES, this.maxStates)
    this.transitions = new Int32Array(first * data.classCount)
    this.setStart = new Int32Array(first + 1)
    this.sets = new Int32Array(first * 4)
    this.setHash = new Int32Array(first)
    this.lookup = new Int32Array(lookupSize(first))
    this.lookupMask = this.lookup.length - 1
    this.startOver()
  }

  /** Bytes of the matcher's own arrays (the NFA's scratch and the DFA as built so far), beside the GlobData's. */
  get ownBytes(): number {
    const arrays = [this.classByte, this.stamp, this.scratch, this.spare, this.transitions, this.setStart]
    return [...arrays, this.sets, this.lookup, this.setHash].reduce((sum, a) => sum + a.byteLength, 0)
  }

  /**
   * Writes the id of every glob matching the name `buf[start, end)` into `out` (any order, each once); returns how
   * many. Allocates nothing once the DFA's arrays have grown to the room the names need (they double up to the
   * maxima, and keep their size when the DFA starts over).
   */
  match(buf: Uint8Array, start: number, end: number, out: Int32Array): number {
    const byteClass = this.byteClass
    const classCount = this.classCount
    let transitions = this.transitions
    let state = 0
    for (let i = start; i < end; i++) {
      const c = byteClass[buf[i]]
      let next = transitions[state * classCount + c]
      if (next < 0) {
        if (next === UNKNOWN) {
          next = this.addTransition(state, c)
          transitions = this.transitions
        }
        if (next === DEAD) return 0
        if (next === FULL) return this.finishOnNfa(buf, i + 1, end, out)
      }
      state = next
    }
    const sets = this.sets
    let written = 0
    for (let k = this.setStart[state]; k < this.setStart[state + 1]; k++) written = this.report(sets[k], out, written)
    return written
  }

  /** Writes the ids of the globs ending at slot s into out from `written` on; returns the new end. */
  private report(s: number, out: Int32Array, written: number): number {
    const ids = this.ids
    for (let j = this.idStart[s]; j < this.idStart[s + 1]; j++) out[written++] = ids[j]
    return written
  }

  /** The state after class c from `state`, made now: DEAD, an existing or a new state, or FULL. */
  private addTransition(state: number, c: number): number {
    const from = this.setStart[state]
    const count = this.step(this.sets, from, this.setStart[state + 1] - from, this.classByte[c], this.scratch)
    this.scratchCount = count
    const next = count === 0 ? DEAD : this.stateOf(this.scratch, count)
    if (next !== FULL) this.transitions[state * this.classCount + c] = next
    return next
  }

  /** The state whose set is `set[0, count)` (sorted), added if new; FULL if the DFA has no room for it. */
  private stateOf(set: Int32Array, count: number): number {
    let h = count
    for (let k = 0; k < count; k++) h = Math.imul(h ^ set[k], 0x9e3779b1) ^ (h >>> 15)
    const lookup = this.lookup
    let at = h & this.lookupMask
    for (let entry = lookup[at]; entry !== 0; entry = lookup[at]) {
      const d = entry - 1
      if (this.setHash[d] === h && this.holds(d, set, count)) return d
      at = (at + 1) & this.lookupMask
    }
    const d = this.states
    const used = this.setStart[d]
    if (d === this.maxStates || used + count > MAX_SET_WORDS) return FULL
    this.makeRoom(d + 1, used + count)
    for (let k = 0; k < count; k++) this.sets[used + k] = set[k]
    this.setStart[d + 1] = used + count
    this.transitions.fill(UNKNOWN, d * this.classCount, (d + 1) * this.classCount)
    this.setHash[d] = h
    this.states = d + 1
    this.enter(d)
    return d
  }

  /** Puts state d in the lookup. */
  private enter(d: number): void {
    let at = this.setHash[d] & this.lookupMask
    while (this.lookup[at] !== 0) at = (at + 1) & this.lookupMask
    this.lookup[at] = d + 1
  }

  private holds(d: number, set: Int32Array, count: number): boolean {
    const from = this.setStart[d]
    if (this.setStart[d + 1] - from !== count) return false
    for (let k = 0; k < count; k++) if (this.sets[from + k] !== set[k]) return false
    return true
  }

  /** Grows the DFA's arrays (doubling, up to the maxima) to hold `states` states and `words` set words. */
  private makeRoom(states: number, words: number): void {
    if (states > this.setHash.length) {
      const capacity = Math.min(this.maxStates, 2 * this.setHash.length)
      this.transitions = grown(this.transitions, capacity * this.classCount)
      this.setStart = grown(this.setStart, capacity + 1)
      this.setHash = grown(this.setHash, capacity)
      this.lookup = new Int32Array(lookupSize(capacity))
      this.lookupMask = this.lookup.length - 1
      for (let d = 0; d < this.states; d++) this.enter(d)
    }
    if (words > this.sets.length)
      this.sets = grown(this.sets, Math.min(MAX_SET_WORDS, Math.max(words, 2 * this.sets.length)))
  }

  /** Empties the DFA but for its start state (the root slot alone). */
  private startOver(): void {
    // A new matcher's lookup is zeros already, and untouched pages cost no RSS.
    if (this.states > 0) this.lookup.fill(0)
    this.states = 0
    this.setStart[0] = 0
    this.stateOf(ROOT_SET, 1)
  }

  /**
   * The rest of a match the DFA could not hold, on the NFA: from the set in `scratch`, over `buf[from, end)`. The
   * DFA starts over for the next name.
   */
  private finishOnNfa(buf: Uint8Array, from: number, end: number, out: Int32Array): number {
    let count = this.scratchCount
    for (let i = from; i < end && count > 0; i++) {
      count = this.step(this.scratch, 0, count, buf[i], this.spare)
      const swap = this.scratch
      this.scratch = this.spare
      this.spare = swap
    }
    let written = 0
    for (let k = 0; k < count; k++) written = this.report(this.scratch[k], out, written)
    this.startOver()
    return written
  }

  /**
   * One NFA step: the slots active after `byte` from the set `src[from, from + count)`, into `dst`, each once and
   * sorted (a set's canonical form); returns how many. From an active slot: its literal child on the byte, its `*`
   * child on a byte other than `.`, its `**` child on any byte; a `*` slot stays on a byte other than `.`, a `**`
   * slot on any byte.
   */
  private step(src: Int32Array, from: number, count: number, byte: number, dst: Int32Array): number {
    const slots = this.slots
    const stamp = this.stamp
    if (++this.generation === LAST_GENERATION) {
      stamp.fill(0)
      this.generation = 1
    }
    const generation = this.generation
    const dot = byte === DOT
    let added = 0
    for (let k = from; k < from + count; k++) {
      const s = src[k]
      const word = slots[2 * s]
      const b = word >> FLAG_BITS
      const f = word & FLAG_MASK
      if (((f & LOOPS_ON_ANY) !== 0 || ((f & LOOPS_ON_NON_DOT) !== 0 && !dot)) && stamp[s] !== generation) {
        stamp[s] = generation
        dst[added++] = s
      }
      if ((f & HAS_STAR) !== 0 && !dot && stamp[b + STAR] !== generation) {
        stamp[b + STAR] = generation
        dst[added++] = b + STAR
      }
      if ((f & HAS_DOUBLE_STAR) !== 0 && stamp[b + DOUBLE_STAR] !== generation) {
        stamp[b + DOUBLE_STAR] = generation
        dst[added++] = b + DOUBLE_STAR
      }
      const t = b + byte
      if (slots[2 * t + 1] === s && stamp[t] !== generation) {
        stamp[t] = generation
        dst[added++] = t
      }
    }
    // Insertion sort: a handful of slots are active at once.
    for (let k = 1; k < added; k++) {
      const v = dst[k]
      let j = k
      while (j > 0 && dst[j - 1] > v) {
        dst[j] = dst[j - 1]
        j--
      }
      dst[j] = v
    }
    return added
  }
}

/** The lookup's size for room for `states`: a power of 2, at least twice as many. */
function lookupSize(states: number): number {
  let size = 2
  while (size < 2 * states) size *= 2
  return size
}

/** A copy of `array` with room for `length` elements. */
function grown(array: Int32Array, length: number): Int32Array {
  const copy = new Int32Array(length)
  copy.set(array)
  return copy
}
