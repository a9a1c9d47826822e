import { kindOf, packRules, ruleCount, unpackRules, type PackedRules } from './packed-rules.ts'
import { rulesFromBlocklist, type Blocklist, type Rule, type RuleKind } from './rules.ts'
import { compileTrie, Trie, type TrieData } from './trie.ts'

/** `enforce` drops what the rules match; `dry-run` treats every rule as `dryRun: true`. */
export type Mode = 'enforce' | 'dry-run'

/** Per-rule hit history: what a reload carries over and what workers' reports add up. */
export interface RuleHits {
  readonly hits: Float64Array
  readonly lastHitMs: Float64Array
}

/** A blocklist as the proxy runs it: the packed table and its compiled trie. The one place both are built. */
export function compileBlocklist(blocklist: Blocklist): { rules: PackedRules; trie: TrieData } {
  return { rules: packRules(blocklist), trie: compileTrie(rulesFromBlocklist(blocklist)) }
}

/** The arrays of a compiled rule set, in the order shareRules places them. */
function arraysOf(rules: PackedRules, trie: TrieData): (Uint8Array | Int32Array)[] {
  return [rules.patterns, rules.starts, rules.dryRun, trie.base, trie.check, trie.prefixRule, trie.exactRule]
}

/** The byte sizes of the shared buffers shareRules needs for these arrays, in its order. */
export function sharedSizes(rules: PackedRules, trie: TrieData): number[] {
  return arraysOf(rules, trie).map((array) => array.byteLength)
}

/**
 * The rule table and compiled trie with every array in shared memory: reader threads (`workers: N`) then use
 * one copy, and a rule set crosses from the loader thread and to the readers as a reference, never copied or
 * deserialized on the event loop (1,000,000 prefixes with two readers: the reload paused the loop 30-64 ms;
 * copying them into shared memory there, 234 ms). An array already in shared memory stays; the others are copied into
 * `buffers` (sized by sharedSizes) or into new ones.
 */
export function shareRules(
  rules: PackedRules,
  trie: TrieData,
  buffers: readonly SharedArrayBuffer[] = [],
): { rules: PackedRules; trie: TrieData } {
  const placed = arraysOf(rules, trie).map((array, i) => {
    if (array.buffer instanceof SharedArrayBuffer) return array
    const buffer = buffers.at(i) ?? new SharedArrayBuffer(array.byteLength)
    const copy = array instanceof Int32Array ? new Int32Array(buffer) : new Uint8Array(buffer)
    copy.set(array)
    return copy
  })
  const bytes = (i: number): Uint8Array => placed[i] as Uint8Array
  const ints = (i: number): Int32Array => placed[i] as Int32Array
  return {
    rules: { ...rules, patterns: bytes(0), starts: ints(1), dryRun: bytes(2) },
    trie: { ...trie, base: ints(3), check: ints(4), prefixRule: ints(5), exactRule: ints(6) },
  }
}

/**
 * A rule table with per-rule state indexed by the rule's index, so the hot path updates a typed array slot and
 * never looks anything up. What /rules and /metrics read: a reader's RuleSet, or the control plane's sum of
 * its readers' hits.
 */
export class RuleStats implements RuleHits {
  readonly table: PackedRules
  /** Which rules in force these are: 0 at start, one more per reload. */
  readonly generation: number
  /** 1 where a match is forwarded and counted as would-block (the rule's dryRun, or mode dry-run). */
  readonly dryRun: Uint8Array
  /** Lines each rule matched since the proxy started (carried over reloads for unchanged rules). */
  readonly hits: Float64Array
  /** When each rule last matched, in ms since the epoch (to the second); 0 = never. */
  readonly lastHitMs: Float64Array
  private unpacked: Rule[] | null = null

  constructor(table: PackedRules, mode: Mode, generation = 0) {
    this.table = table
    this.generation = generation
    const n = ruleCount(table)
    this.dryRun = mode === 'dry-run' ? new Uint8Array(n).fill(1) : table.dryRun
    this.hits = new Float64Array(n)
    this.lastHitMs = new Float64Array(n)
  }

  get size(): number {
    return this.hits.length
  }

  /** The rule table as objects, made on first use (by /rules), never on the hot path. */
  get rules(): readonly Rule[] {
    this.unpacked ??= unpackRules(this.table)
    return this.unpacked
  }

  /**
   * Adds another set's history: `map[i]` is the index here of the other set's rule i, or -1 (after a reload,
   * as the loader thread worked it out: rules that survive keep their hits); null for the same table (a
   * worker's report). Typed-array work only.
   */
  inherit(previous: RuleHits, map: Int32Array | null): void {
    for (let i = 0; i < previous.hits.length; i++) {
      const j = map === null ? i : map[i]
      if (j === -1) continue
      this.hits[j] += previous.hits[i]
      if (previous.lastHitMs[i] > this.lastHitMs[j]) this.lastHitMs[j] = previous.lastHitMs[i]
    }
  }
}

/** Rules of a kind that only count a match (dryRun, or every rule in mode dry-run) or that drop it. */
export function countRules(table: PackedRules, mode: Mode, kind: RuleKind, dryRun: boolean): number {
  let n = 0
  const want = dryRun ? 1 : 0
  for (let i = 0; i < ruleCount(table); i++) {
    if (kindOf(table, i) === kind && (mode === 'dry-run' ? 1 : table.dryRun[i]) === want) n++
  }
  return n
}

/**
 * The rules in force: their stats and the compiled trie. A reload builds a new RuleSet and swaps it in whole,
 * between two datagrams.
 */
export class RuleSet extends RuleStats {
  readonly trie: Trie

  constructor(table: PackedRules, trie: Trie, mode: Mode, generation = 0) {
    super(table, mode, generation)
    this.trie = trie
  }

  /** Packs and compiles on the calling thread; for rule lists already in memory. */
  static fromBlocklist(blocklist: Blocklist, mode: Mode): RuleSet {
    const { rules, trie } = compileBlocklist(blocklist)
    return new RuleSet(rules, new Trie(trie), mode)
  }
}
