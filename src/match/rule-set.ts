import type { Mode } from '../config/config.ts'
import { kindOf, packRules, ruleCount, unpackRules, type PackedRules } from './packed-rules.ts'
import { rulesFromBlocklist, type Blocklist, type Rule, type RuleKind } from './rules.ts'
import { compileTrie, Trie, type TrieData } from './trie.ts'

/** A blocklist as the proxy runs it: the packed table and its compiled trie. The one place both are built. */
export function compileBlocklist(blocklist: Blocklist): { rules: PackedRules; trie: TrieData } {
  return { rules: packRules(blocklist), trie: compileTrie(rulesFromBlocklist(blocklist)) }
}

/**
 * A rule table with per-rule state indexed by the rule's index, so the hot path updates a typed array slot and
 * never looks anything up. What /rules and /metrics read: a worker process's RuleSet, or the primary's sum of
 * its workers' hits.
 */
export class RuleStats {
  readonly table: PackedRules
  readonly mode: Mode
  /** 1 where a match is forwarded and counted as would-block (the rule's dryRun, or mode dry-run). */
  readonly dryRun: Uint8Array
  /** Lines each rule matched since the proxy started (carried over reloads for unchanged rules). */
  readonly hits: Float64Array
  /** When each rule last matched, in ms since the epoch (to the second); 0 = never. */
  readonly lastHitMs: Float64Array
  private unpacked: Rule[] | null = null

  constructor(table: PackedRules, mode: Mode) {
    this.table = table
    this.mode = mode
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
   * as the loader thread worked it out: rules that survive keep their hits). Typed-array work only.
   */
  inherit(previous: RuleStats, map: Int32Array | null): void {
    for (let i = 0; i < previous.size; i++) {
      const j = map === null ? i : map[i]
      if (j === -1) continue
      this.hits[j] += previous.hits[i]
      if (previous.lastHitMs[i] > this.lastHitMs[j]) this.lastHitMs[j] = previous.lastHitMs[i]
    }
  }

  count(kind: RuleKind, dryRun: boolean): number {
    let n = 0
    const want = dryRun ? 1 : 0
    for (let i = 0; i < this.size; i++) if (kindOf(this.table, i) === kind && this.dryRun[i] === want) n++
    return n
  }
}

/**
 * The rules in force: their stats and the compiled trie. A reload builds a new RuleSet and swaps it in whole,
 * between two datagrams.
 */
export class RuleSet extends RuleStats {
  readonly trie: Trie

  constructor(table: PackedRules, trie: Trie, mode: Mode) {
    super(table, mode)
    this.trie = trie
  }

  /** Packs and compiles on the calling thread; for rule lists already in memory. */
  static fromBlocklist(blocklist: Blocklist, mode: Mode): RuleSet {
    const { rules, trie } = compileBlocklist(blocklist)
    return new RuleSet(rules, new Trie(trie), mode)
  }
}
