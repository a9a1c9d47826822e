/**
 * Name globs: `*` matches one or more bytes other than `.`, `**` one or more bytes of any kind, every other byte
 * of the pattern's UTF-8 is literal, and the whole name must match.
 *
 * The globs are compiled into one trie over tokens (a literal byte, `*`, `**`), run as an NFA whose states are the
 * trie's nodes: from an active node, its literal child on the name's byte, its `*` child on a byte other than `.`
 * and its `**` child on any byte become active; a `*` node stays active on a byte other than `.`, a `**` node on
 * any byte. The globs that match are those of the nodes active after the last byte. A name costs, per byte, the
 * active nodes' transitions: that depends on the shapes of the globs (how many wildcards can be live at once),
 * never on their number, and no glob is ever looked at by itself.
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
 * globs of bench/globs.ts's shapes are 54,025 nodes in 695 KB (and 650 KB of matcher scratch).
 *
 * Measured against sorted child ranges with a binary search (bench/globs.ts's names, CPU time on a loaded
 * 2-vCPU machine): 311 ns a name with 10 globs and 345 with 10,000, against 450 and 565.
 */
export interface GlobData {
  /** Nodes of the trie (the root and one per distinct token prefix of the globs): the most that can be active. */
  nodeCount: number
  /** `slots[2s]` = base << 4 | flags, `slots[2s + 1]` = check: the parent's slot, or FREE / ROOT_CHECK (double-array.ts). Slot 0 is the root. */
  slots: Int32Array
  /** One entry per slot and one more: the globs ending at slot s report `ids[idStart[s], idStart[s + 1])`. */
  idStart: Int32Array
  ids: Int32Array
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
  return layOut(tree, ids)
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
function layOut(tree: Tree, ids: readonly number[]): GlobData {
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

/**
 * Runs names through a GlobData. The arrays of the data may be shared between threads; the active sets and stamps
 * are the matcher's own, allocated here once, so each thread makes its own matcher.
 */
export class GlobMatcher {
  /** Number of glob ids; the capacity `out` needs. */
  readonly idCount: number
  private readonly slots: Int32Array
  private readonly idStart: Int32Array
  private readonly ids: Int32Array
  /** The active slots before and after a byte, swapped per byte: a node is in a set at most once. */
  private readonly current: Int32Array
  private readonly next: Int32Array
  /** stamp[s] === generation: the `*` or `**` slot s is already in the set being built (its parent put it there). */
  private readonly stamp: Int32Array
  private generation = 0

  constructor(data: GlobData) {
    this.idCount = data.ids.length
    this.slots = data.slots
    this.idStart = data.idStart
    this.ids = data.ids
    this.current = new Int32Array(data.nodeCount)
    this.next = new Int32Array(data.nodeCount)
    this.stamp = new Int32Array(data.idStart.length - 1)
  }

  /** Writes the id of every glob matching the name `buf[start, end)` into `out` (any order, each once); returns how many. Allocates nothing. */
  match(buf: Uint8Array, start: number, end: number, out: Int32Array): number {
    const slots = this.slots
    const stamp = this.stamp
    let current = this.current
    let next = this.next
    let generation = this.generation
    current[0] = 0
    let count = 1
    for (let i = start; i < end; i++) {
      const byte = buf[i]
      const dot = byte === DOT
      if (++generation === LAST_GENERATION) {
        stamp.fill(0)
        generation = 1
      }
      let added = 0
      for (let k = 0; k < count; k++) {
        const s = current[k]
        const word = slots[2 * s]
        const b = word >> FLAG_BITS
        const f = word & FLAG_MASK
        // A literal slot is pushed by its parent only, which is in `current` once. A `*` or `**` slot is pushed by
        // its parent and by itself, and ancestors come before descendants in `current` (each slot pushes itself
        // before its children), so the parent always pushes first: it stamps, the slot itself checks the stamp.
        if (f !== 0) {
          if (((f & LOOPS_ON_ANY) !== 0 || ((f & LOOPS_ON_NON_DOT) !== 0 && !dot)) && stamp[s] !== generation) {
            next[added++] = s
          }
          if ((f & HAS_STAR) !== 0 && !dot) {
            stamp[b + STAR] = generation
            next[added++] = b + STAR
          }
          if ((f & HAS_DOUBLE_STAR) !== 0) {
            stamp[b + DOUBLE_STAR] = generation
            next[added++] = b + DOUBLE_STAR
          }
        }
        const t = b + byte
        if (slots[2 * t + 1] === s) next[added++] = t
      }
      if (added === 0) {
        this.generation = generation
        return 0
      }
      const swap = current
      current = next
      next = swap
      count = added
    }
    this.generation = generation
    const idStart = this.idStart
    const ids = this.ids
    let written = 0
    for (let k = 0; k < count; k++) {
      const s = current[k]
      for (let j = idStart[s]; j < idStart[s + 1]; j++) out[written++] = ids[j]
    }
    return written
  }
}
