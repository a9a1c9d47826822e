import { commonPrefix, placeDoubleArray } from './double-array.ts'
import type { Rule } from './rules.ts'

const NONE = -1
/** A transition reads `base[s] + byte`. */
const ALPHABET = 256

/**
 * A byte trie of metric-name rules, compiled into a double array: the child of slot `s` on byte `b` is slot
 * `t = base[s] + b`, and it exists iff `check[t] === s`. A lookup costs two array reads per byte of the name,
 * whatever the number of rules.
 *
 * Match semantics, so that later rule kinds (allow, dry-run) compose: an exact `name` rule beats any prefix,
 * and among prefixes the longest wins. The result is the rule's index in the rule table.
 */
/** A compiled trie as plain typed arrays: what the loader thread builds and posts to the event loop. */
export interface TrieData {
  nodeCount: number
  ruleCount: number
  base: Int32Array
  check: Int32Array
  prefixRule: Int32Array
  exactRule: Int32Array
}

export class Trie {
  /** Nodes of the trie (the root and one per distinct non-empty pattern prefix). */
  readonly nodeCount: number
  readonly ruleCount: number
  private readonly base: Int32Array
  private readonly check: Int32Array
  private readonly prefixRule: Int32Array
  private readonly exactRule: Int32Array
  /** Where the last matchUntil stopped. */
  stoppedAt = 0

  constructor(data: TrieData) {
    this.nodeCount = data.nodeCount
    this.ruleCount = data.ruleCount
    this.base = data.base
    this.check = data.check
    this.prefixRule = data.prefixRule
    this.exactRule = data.exactRule
  }

  /** The arrays, to hand the compiled trie to another process. */
  data(): TrieData {
    return {
      nodeCount: this.nodeCount,
      ruleCount: this.ruleCount,
      base: this.base,
      check: this.check,
      prefixRule: this.prefixRule,
      exactRule: this.exactRule,
    }
  }

  /** The index of the rule with exactly this kind and pattern (not the best match for a name), or -1. */
  find(kind: 'prefix' | 'name', pattern: Uint8Array): number {
    let s = 0
    for (let i = 0; i < pattern.length; i++) {
      const t = this.base[s] + pattern[i]
      if (this.check[t] !== s) return NONE
      s = t
    }
    return kind === 'prefix' ? this.prefixRule[s] : this.exactRule[s]
  }

  /** The index of the rule that matches the name `buf[start, end)`, or -1. */
  match(buf: Uint8Array, start: number, end: number): number {
    const base = this.base
    const check = this.check
    const prefixRule = this.prefixRule
    let s = 0
    let best = NONE
    for (let i = start; i < end; i++) {
      const p = prefixRule[s]
      if (p !== NONE) best = p
      const t = base[s] + buf[i]
      if (check[t] !== s) return best
      s = t
    }
    const exact = this.exactRule[s]
    if (exact !== NONE) return exact
    const p = prefixRule[s]
    return p !== NONE ? p : best
  }

  /**
   * The exact-name rule of the bytes from `start` up to the first byte that `stops` marks 1 (or `end`), or -1,
   * walking the trie while that end is sought: one pass over the bytes, for a caller that does not know where they
   * end. Where the walk stopped is left in `stoppedAt`.
   */
  matchUntil(buf: Uint8Array, start: number, end: number, stops: Uint8Array): number {
    const base = this.base
    const check = this.check
    let s = 0
    let i = start
    for (; i < end; i++) {
      const b = buf[i]
      if (stops[b] === 1) break
      if (s === NONE) continue
      const t = base[s] + b
      s = check[t] === s ? t : NONE
    }
    this.stoppedAt = i
    return s === NONE ? NONE : this.exactRule[s]
  }

  /**
   * Every rule that matches the name `buf[start, end)`, into `out` from `at` on: each prefix on the name's path,
   * shortest first, then the exact name. Returns the new end of `out`, which needs room for one more entry than
   * the longest pattern has bytes.
   */
  matchAll(buf: Uint8Array, start: number, end: number, out: Int32Array, at: number): number {
    const base = this.base
    const check = this.check
    const prefixRule = this.prefixRule
    let s = 0
    for (let i = start; i < end; i++) {
      const p = prefixRule[s]
      if (p !== NONE) out[at++] = p
      const t = base[s] + buf[i]
      if (check[t] !== s) return at
      s = t
    }
    const p = prefixRule[s]
    if (p !== NONE) out[at++] = p
    const exact = this.exactRule[s]
    if (exact !== NONE) out[at++] = exact
    return at
  }
}

export function compileTrie(rules: readonly Rule[]): TrieData {
  const tree = buildTree(rules)
  return { nodeCount: tree.nodeCount, ruleCount: rules.length, ...layOut(tree) }
}

/** The rules as a plain tree: children as sibling lists in byte order. */
interface Tree {
  nodeCount: number
  label: Uint8Array
  firstChild: Int32Array
  nextSibling: Int32Array
  prefixRule: Int32Array
  exactRule: Int32Array
}

/**
 * Inserting the patterns in byte order means a new child always sorts after its existing siblings, so the
 * builder only ever compares with a node's last child: O(total pattern bytes), no per-node maps.
 */
function buildTree(rules: readonly Rule[]): Tree {
  // Every pattern's UTF-8 in one buffer and the byte order as indices: a Buffer and an entry object per pattern
  // would be two million small objects for a million rules.
  const starts = new Int32Array(rules.length + 1)
  for (let k = 0; k < rules.length; k++) starts[k + 1] = starts[k] + Buffer.byteLength(rules[k].pattern, 'utf8')
  const text = Buffer.allocUnsafe(starts[rules.length])
  for (let k = 0; k < rules.length; k++) text.write(rules[k].pattern, starts[k], 'utf8')
  const order = new Int32Array(rules.length)
  for (let k = 0; k < order.length; k++) order[k] = k
  // buf.compare(target, ...) orders the source range (the last two offsets) against the target's: a before b.
  order.sort(
    (a, b) => text.compare(text, starts[b], starts[b + 1], starts[a], starts[a + 1]) || rules[a].index - rules[b].index,
  )

  // In byte order, each pattern adds one node per byte past what it shares with the previous one: the exact
  // node count, so every array is allocated once (large build-time churn fragments the malloc heap for good).
  let capacity = 1
  for (let k = 0; k < order.length; k++) {
    const at = starts[order[k]]
    const length = starts[order[k] + 1] - at
    capacity +=
      length - (k === 0 ? 0 : commonPrefix(text, starts[order[k - 1]], starts[order[k - 1] + 1], at, at + length))
  }
  const label = new Uint8Array(capacity)
  const firstChild = new Int32Array(capacity).fill(NONE)
  const lastChild = new Int32Array(capacity).fill(NONE)
  const nextSibling = new Int32Array(capacity).fill(NONE)
  const prefixRule = new Int32Array(capacity).fill(NONE)
  const exactRule = new Int32Array(capacity).fill(NONE)
  let nodeCount = 1 // the root
  const newNode = (byte: number): number => {
    label[nodeCount] = byte
    return nodeCount++
  }

  for (let k = 0; k < order.length; k++) {
    const rule = rules[order[k]]
    let node = 0
    for (let i = starts[order[k]]; i < starts[order[k] + 1]; i++) {
      const byte = text[i]
      const last = lastChild[node]
      if (last !== NONE && label[last] === byte) {
        node = last
        continue
      }
      const child = newNode(byte)
      if (last === NONE) firstChild[node] = child
      else nextSibling[last] = child
      lastChild[node] = child
      node = child
    }
    const terminal = rule.kind === 'prefix' ? prefixRule : exactRule
    // Of duplicate rules the first wins; validation warns about the others.
    if (terminal[node] === NONE) terminal[node] = rule.index
  }
  return { nodeCount, label, firstChild, nextSibling, prefixRule, exactRule }
}

interface DoubleArray {
  base: Int32Array
  check: Int32Array
  prefixRule: Int32Array
  exactRule: Int32Array
}

/** The tree placed in a double array (double-array.ts), with each slot's rules (NONE where no rule ends). */
function layOut(tree: Tree): DoubleArray {
  const { base, check, length, slotOf } = placeDoubleArray(tree, ALPHABET)
  const prefixRule = new Int32Array(length).fill(NONE)
  const exactRule = new Int32Array(length).fill(NONE)
  for (let node = 0; node < tree.nodeCount; node++) {
    prefixRule[slotOf[node]] = tree.prefixRule[node]
    exactRule[slotOf[node]] = tree.exactRule[node]
  }
  return { base, check, prefixRule, exactRule }
}
