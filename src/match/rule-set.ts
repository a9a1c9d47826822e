import type { Mode } from '../config/config.ts'
import type { Rule, RuleKind } from './rules.ts'
import type { Trie } from './trie.ts'

/**
 * The rules in force: the table, its compiled trie, and per-rule state indexed by the rule's index, so the
 * hot path updates a typed array slot and never looks anything up. A reload builds a new RuleSet and swaps
 * it in whole, between two datagrams.
 */
export class RuleSet {
  readonly rules: readonly Rule[]
  readonly trie: Trie
  readonly mode: Mode
  /** 1 where a match is forwarded and counted as would-block (the rule's dryRun, or mode dry-run). */
  readonly dryRun: Uint8Array
  /** Lines each rule matched since the proxy started (carried over reloads for unchanged rules). */
  readonly hits: Float64Array
  /** When each rule last matched, in ms since the epoch (to the second); 0 = never. */
  readonly lastHitMs: Float64Array

  constructor(rules: readonly Rule[], trie: Trie, mode: Mode) {
    this.rules = rules
    this.trie = trie
    this.mode = mode
    this.dryRun = new Uint8Array(rules.length)
    for (const rule of rules) this.dryRun[rule.index] = mode === 'dry-run' || rule.dryRun ? 1 : 0
    this.hits = new Float64Array(rules.length)
    this.lastHitMs = new Float64Array(rules.length)
  }

  /** Keeps the history of rules that survive a reload (same kind and pattern), so dead-rule reports stay true. */
  inherit(previous: RuleSet): void {
    const byKey = new Map<string, number>()
    for (const rule of previous.rules) byKey.set(key(rule.kind, rule.pattern), rule.index)
    for (const rule of this.rules) {
      const old = byKey.get(key(rule.kind, rule.pattern))
      if (old === undefined) continue
      this.hits[rule.index] = previous.hits[old]
      this.lastHitMs[rule.index] = previous.lastHitMs[old]
    }
  }

  count(kind: RuleKind, dryRun: boolean): number {
    let n = 0
    for (const rule of this.rules) if (rule.kind === kind && (this.dryRun[rule.index] === 1) === dryRun) n++
    return n
  }
}

function key(kind: RuleKind, pattern: string): string {
  return `${kind}\u0000${pattern}`
}
