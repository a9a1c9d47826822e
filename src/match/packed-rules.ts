import type { Blocklist, Rule, RuleKind, RuleSpec, TagRuleSpec } from './rules.ts'

/**
 * A rule table as typed arrays only: the patterns' UTF-8 bytes, each followed by `\n` (a metric name never
 * contains one, and validation rejects it in a pattern), prefixes first. Typed arrays cross threads as a copy of
 * their bytes, or not at all when they live in shared memory, where a million rule objects would cost seconds
 * of deserialization on the event loop.
 */
export interface PackedRules {
  /** Pattern i is patterns[starts[i], starts[i + 1] - 1). */
  patterns: Uint8Array
  starts: Int32Array
  prefixCount: number
  dryRun: Uint8Array
}

/** The unconditional prefixes and names of a blocklist (rules with a tag condition are tag rules). */
export function packRules(blocklist: Blocklist): PackedRules {
  const prefixes = blocklist.prefixes.filter(unconditional)
  const all = [...prefixes, ...blocklist.names.filter(unconditional)].map((e) =>
    typeof e === 'string' ? { pattern: e, dryRun: false } : e,
  )
  const patterns = Buffer.from(all.map((r) => `${r.pattern}\n`).join(''), 'utf8')
  const starts = new Int32Array(all.length + 1)
  const dryRun = new Uint8Array(all.length)
  let at = 0
  all.forEach((rule: RuleSpec, i) => {
    starts[i] = at
    at += Buffer.byteLength(rule.pattern, 'utf8') + 1
    dryRun[i] = rule.dryRun ? 1 : 0
  })
  starts[all.length] = at
  return { patterns: new Uint8Array(patterns), starts, prefixCount: prefixes.length, dryRun }
}

export function unconditional(entry: string | TagRuleSpec): boolean {
  return typeof entry === 'string' || entry.tag === undefined
}

export function ruleCount(rules: PackedRules): number {
  return rules.dryRun.length
}

/** What the start, reload and --check lines report. */
export function ruleKinds(rules: PackedRules): { prefixes: number; names: number } {
  return { prefixes: rules.prefixCount, names: ruleCount(rules) - rules.prefixCount }
}

export function kindOf(rules: PackedRules, index: number): RuleKind {
  return index < rules.prefixCount ? 'prefix' : 'name'
}

/** Pattern `index`'s bytes, without a copy. */
export function patternBytes(rules: PackedRules, index: number): Uint8Array {
  return rules.patterns.subarray(rules.starts[index], rules.starts[index + 1] - 1)
}

export function patternOf(rules: PackedRules, index: number): string {
  const { patterns } = rules
  return Buffer.from(patterns.buffer, patterns.byteOffset, patterns.length).toString(
    'utf8',
    rules.starts[index],
    rules.starts[index + 1] - 1,
  )
}

export function unpackRules(rules: PackedRules): Rule[] {
  const out: Rule[] = []
  for (let i = 0; i < ruleCount(rules); i++)
    out.push({ index: i, kind: kindOf(rules, i), pattern: patternOf(rules, i), dryRun: rules.dryRun[i] === 1 })
  return out
}
