// The double-array layout shared by the name trie (trie.ts, labels = bytes) and the glob automaton (glob.ts,
// labels = bytes, `*` and `**`): the child of slot `s` on label `l` is slot `base[s] + l`, and it is that child
// iff `check[base[s] + l] === s`.

const NONE = -1
/** `check` of a slot no node occupies. */
const FREE = -1
/** `check` of the root's slot (the root is nobody's child). */
const ROOT_CHECK = -2
/** After this many failed fits a free slot stops being tried as a first child's slot (it may still hold others). */
const MAX_FAILS = 16
const END = -1

/** A tree as sibling lists: node 0 is the root, each node's children in label order. */
export interface LabelledTree {
  nodeCount: number
  label: ArrayLike<number>
  firstChild: Int32Array
  nextSibling: Int32Array
}

export interface Placement {
  /** Both `length` long: `alphabet` slots of room past the last base keep every transition read in bounds. */
  base: Int32Array
  check: Int32Array
  length: number
  /** Node -> its slot. */
  slotOf: Int32Array
}

/**
 * Places the tree breadth first: each node gets the lowest base at which every one of its children's slots is
 * free. Candidates come from a linked list of free slots, so occupied runs are never rescanned; a slot that keeps
 * failing leaves the list, and a base below 1 counts as a failure (else the slots below the smallest first label
 * were walked past by every node: 2M fit steps for 10,000 globs, 6k with it). Most nodes have one child and fit at
 * the list's head. The layout comes out about 1% larger than the tree.
 */
export function placeDoubleArray(tree: LabelledTree, alphabet: number): Placement {
  let size = 0
  let base = new Int32Array(0)
  let check = new Int32Array(0)
  let nextFree = new Int32Array(0)
  let prevFree = new Int32Array(0)
  let inList = new Uint8Array(0)
  let fails = new Uint8Array(0)
  let head = END
  let tail = END
  const ensure = (needed: number): void => {
    if (needed <= size) return
    // A quarter at a time: the layout ends up about as dense as the tree, and 1M rules make millions of slots.
    let bigger = Math.max(size, 1024)
    while (bigger < needed) bigger = Math.ceil(bigger * 1.25)
    base = grow(base, bigger, 0)
    check = grow(check, bigger, FREE)
    nextFree = grow(nextFree, bigger, 0)
    prevFree = grow(prevFree, bigger, 0)
    inList = grow(inList, bigger, 0)
    fails = grow(fails, bigger, 0)
    for (let pos = Math.max(size, 1); pos < bigger; pos++) {
      prevFree[pos] = tail
      nextFree[pos] = END
      if (tail === END) head = pos
      else nextFree[tail] = pos
      tail = pos
      inList[pos] = 1
    }
    size = bigger
  }
  const unlink = (pos: number): void => {
    if (inList[pos] === 0) return
    inList[pos] = 0
    const prev = prevFree[pos]
    const next = nextFree[pos]
    if (prev === END) head = next
    else nextFree[prev] = next
    if (next === END) tail = prev
    else prevFree[next] = prev
  }

  // One allocation should hold the layout: large build-time churn fragments the malloc heap for good.
  ensure(Math.ceil(tree.nodeCount * 1.05) + 2 * alphabet + 1024)
  check[0] = ROOT_CHECK
  const slotOf = new Int32Array(tree.nodeCount)
  const queue = new Int32Array(tree.nodeCount)
  let qHead = 0
  let qTail = 0
  queue[qTail++] = 0
  let maxSlot = 0
  const labels = new Int32Array(alphabet) // a node's children's labels, at most one of each
  while (qHead < qTail) {
    const node = queue[qHead++]
    const slot = slotOf[node]
    let children = 0
    for (let c = tree.firstChild[node]; c !== NONE; c = tree.nextSibling[c]) labels[children++] = tree.label[c]
    if (children === 0) continue // a leaf: base 0 leads to slots whose check is never this slot
    let b: number
    let pos = head
    for (;;) {
      if (pos === END) {
        // Every listed slot failed: the fresh slots that growing appends are all free.
        pos = size
        ensure(size + 1)
      }
      b = pos - labels[0]
      let fits = b >= 1
      if (fits) {
        ensure(b + 2 * alphabet)
        for (let k = 1; k < children && fits; k++) fits = check[b + labels[k]] === FREE
      }
      if (fits) break
      if (++fails[pos] >= MAX_FAILS) {
        const next = nextFree[pos]
        unlink(pos)
        pos = next
        continue
      }
      pos = nextFree[pos]
    }
    base[slot] = b
    for (let c = tree.firstChild[node]; c !== NONE; c = tree.nextSibling[c]) {
      const t = b + tree.label[c]
      check[t] = slot
      unlink(t)
      slotOf[c] = t
      queue[qTail++] = c
      if (t > maxSlot) maxSlot = t
    }
  }
  const length = maxSlot + alphabet + 1
  return { base: base.slice(0, length), check: check.slice(0, length), length, slotOf }
}

/** The length of the common prefix of a[aStart, aEnd) and a[bStart, bEnd): how many nodes two sorted patterns share. */
export function commonPrefix(a: ArrayLike<number>, aStart: number, aEnd: number, bStart: number, bEnd: number): number {
  const n = Math.min(aEnd - aStart, bEnd - bStart)
  let i = 0
  while (i < n && a[aStart + i] === a[bStart + i]) i++
  return i
}

function grow<T extends Uint8Array | Int32Array>(a: T, capacity: number, fill: number): T {
  const bigger = new (a.constructor as new (n: number) => T)(capacity)
  bigger.set(a)
  if (fill !== 0) bigger.fill(fill, a.length)
  return bigger
}
