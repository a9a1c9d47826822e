import type { Rule } from './rules.ts'

const NONE = -1

/**
 * A byte trie of metric-name rules, compiled into flat typed arrays (CSR layout: the edges of node n are
 * `edgeStart[n] .. edgeStart[n + 1]`, sorted by label). A lookup walks the name's bytes once, so its cost
 * depends on the name's length and never on the number of rules.
 *
 * Match semantics, so that later rule kinds (allow, dry-run) compose: an exact `name` rule beats any prefix,
 * and among prefixes the longest wins.
 */
export class Trie {
  readonly nodeCount: number
  readonly ruleCount: number
  /** Rules whose pattern another rule of the same kind already had; the first one is kept. */
  readonly duplicates: readonly Rule[]
  private readonly edgeStart: Int32Array
  private readonly edgeLabel: Uint8Array
  private readonly edgeTarget: Int32Array
  private readonly prefixRule: Int32Array
  private readonly exactRule: Int32Array

  constructor(rules: readonly Rule[]) {
    const built = build(rules)
    this.nodeCount = built.nodeCount
    this.ruleCount = rules.length
    this.duplicates = built.duplicates
    this.edgeStart = built.edgeStart
    this.edgeLabel = built.edgeLabel
    this.edgeTarget = built.edgeTarget
    this.prefixRule = built.prefixRule
    this.exactRule = built.exactRule
  }

  /** The index of the rule that matches the name `buf[start, end)`, or -1. */
  match(buf: Uint8Array, start: number, end: number): number {
    const edgeStart = this.edgeStart
    const edgeLabel = this.edgeLabel
    const prefixRule = this.prefixRule
    let node = 0
    let best = NONE
    for (let i = start; i < end; i++) {
      const p = prefixRule[node]
      if (p !== NONE) best = p
      let lo = edgeStart[node]
      const last = edgeStart[node + 1]
      let hi = last
      const b = buf[i]
      while (lo < hi) {
        const mid = (lo + hi) >>> 1
        if (edgeLabel[mid] < b) lo = mid + 1
        else hi = mid
      }
      if (lo === last || edgeLabel[lo] !== b) return best
      node = this.edgeTarget[lo]
    }
    const exact = this.exactRule[node]
    if (exact !== NONE) return exact
    const p = prefixRule[node]
    return p !== NONE ? p : best
  }
}

interface Built {
  nodeCount: number
  duplicates: Rule[]
  edgeStart: Int32Array
  edgeLabel: Uint8Array
  edgeTarget: Int32Array
  prefixRule: Int32Array
  exactRule: Int32Array
}

/**
 * Inserting the patterns in byte order means a new child always sorts after its existing siblings, so the
 * builder only ever compares with a node's last child: O(total pattern bytes), no per-node maps.
 */
function build(rules: readonly Rule[]): Built {
  const entries = rules.map((rule) => ({ rule, bytes: Buffer.from(rule.pattern, 'utf8') }))
  entries.sort((a, b) => Buffer.compare(a.bytes, b.bytes) || a.rule.index - b.rule.index)

  let capacity = 1024
  let label = new Uint8Array(capacity)
  let lastChild = new Int32Array(capacity)
  let nextSibling = new Int32Array(capacity)
  let firstChild = new Int32Array(capacity)
  let prefixRule = new Int32Array(capacity)
  let exactRule = new Int32Array(capacity)
  let nodeCount = 0
  const newNode = (byte: number): number => {
    if (nodeCount === capacity) {
      capacity *= 2
      label = grow(label, capacity)
      lastChild = grow(lastChild, capacity)
      nextSibling = grow(nextSibling, capacity)
      firstChild = grow(firstChild, capacity)
      prefixRule = grow(prefixRule, capacity)
      exactRule = grow(exactRule, capacity)
    }
    const n = nodeCount++
    label[n] = byte
    firstChild[n] = lastChild[n] = nextSibling[n] = prefixRule[n] = exactRule[n] = NONE
    return n
  }
  newNode(0)

  const duplicates: Rule[] = []
  for (const { rule, bytes } of entries) {
    let node = 0
    for (const byte of bytes) {
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
    const slot = rule.kind === 'prefix' ? prefixRule : exactRule
    if (slot[node] === NONE) slot[node] = rule.index
    else duplicates.push(rule)
  }

  // Lay each node's children out contiguously, in label order (already the sibling order).
  const edgeStart = new Int32Array(nodeCount + 1)
  const edgeLabel = new Uint8Array(Math.max(nodeCount - 1, 0))
  const edgeTarget = new Int32Array(Math.max(nodeCount - 1, 0))
  let e = 0
  for (let n = 0; n < nodeCount; n++) {
    edgeStart[n] = e
    for (let c = firstChild[n]; c !== NONE; c = nextSibling[c]) {
      edgeLabel[e] = label[c]
      edgeTarget[e] = c
      e++
    }
  }
  edgeStart[nodeCount] = e
  duplicates.sort((a, b) => a.index - b.index)
  return {
    nodeCount,
    duplicates,
    edgeStart,
    edgeLabel,
    edgeTarget,
    prefixRule: prefixRule.slice(0, nodeCount),
    exactRule: exactRule.slice(0, nodeCount),
  }
}

function grow<T extends Uint8Array | Int32Array>(a: T, capacity: number): T {
  const bigger = new (a.constructor as new (n: number) => T)(capacity)
  bigger.set(a)
  return bigger
}
