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

/** A copy in shared memory: reader threads then use the one copy, and nothing is serialized to them. */
function shared<T extends Int32Array | Uint8Array>(array: T, make: (buffer: SharedArrayBuffer) => T): T {
  const copy = make(new SharedArrayBuffer(array.byteLength))
  copy.set(array)
  return copy
}

/** The rule table and trie with every array in shared memory (for `workers: N`, whose readers are threads). */
export function shareRules(rules: PackedRules, trie: Trie): { rules: PackedRules; trie: Trie } {
  const bytes = (a: Uint8Array): Uint8Array => shared(a, (b) => new Uint8Array(b))
  const ints = (a: Int32Array): Int32Array => shared(a, (b) => new Int32Array(b))
  const data = trie.data()
  return {
    rules: { ...rules, patterns: bytes(rules.patterns), starts: ints(rules.starts), dryRun: bytes(rules.dryRun) },
    trie: new Trie({
      ...data,
      base: ints(data.base),
      check: ints(data.check),
      prefixRule: ints(data.prefixRule),
      exactRule: ints(data.exactRule),
    }),
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
