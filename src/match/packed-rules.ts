import type { Blocklist, Rule, RuleKind, RuleSpec } from './rules.ts'

/**
 * A rule table as one string and a few typed arrays: patterns joined by `\n` (a metric name never contains one,
 * and validation rejects it in a pattern), prefixes first. Crossing from the loader thread as one string costs
 * a copy, where a million rule objects would cost seconds of deserialization on the event loop.
 */
export interface PackedRules {
  text: string
  /** Pattern i is text[starts[i], starts[i + 1] - 1). */
  starts: Int32Array
  prefixCount: number
  dryRun: Uint8Array
}

export function packRules(blocklist: Blocklist): PackedRules {
  const all = [...blocklist.prefixes, ...blocklist.names].map((e) =>
    typeof e === 'string' ? { pattern: e, dryRun: false } : e,
  )
  const starts = new Int32Array(all.length + 1)
  const dryRun = new Uint8Array(all.length)
  let at = 0
  all.forEach((rule: RuleSpec, i) => {
    starts[i] = at
    at += rule.pattern.length + 1
    dryRun[i] = rule.dryRun ? 1 : 0
  })
  starts[all.length] = at
  return {
    text: all.map((r) => r.pattern).join('\n') + (all.length > 0 ? '\n' : ''),
    starts,
    prefixCount: blocklist.prefixes.length,
    dryRun,
  }
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

export function patternOf(rules: PackedRules, index: number): string {
  return rules.text.slice(rules.starts[index], rules.starts[index + 1] - 1)
}

export function unpackRules(rules: PackedRules): Rule[] {
  const out: Rule[] = []
  for (let i = 0; i < ruleCount(rules); i++)
    out.push({ index: i, kind: kindOf(rules, i), pattern: patternOf(rules, i), dryRun: rules.dryRun[i] === 1 })
  return out
}
