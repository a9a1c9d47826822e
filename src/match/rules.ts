/** How a rule compares with a metric name, byte for byte (UTF-8). */
export type RuleKind = 'prefix' | 'name'

export interface Rule {
  /** Position in the rule table; what the trie returns on a match, so per-rule state can be an indexed array. */
  readonly index: number
  readonly kind: RuleKind
  readonly pattern: string
  readonly dryRun: boolean
}

/** One blocklist entry: a plain string in the file, or `{ prefix|name: pattern, dryRun: true }`. */
export interface RuleSpec {
  readonly pattern: string
  /** Matching lines are forwarded and counted as would-block instead of dropped. */
  readonly dryRun: boolean
}

/** A blocklist: each entry a pattern, or a pattern with options. */
export interface Blocklist {
  readonly prefixes: readonly (string | RuleSpec)[]
  readonly names: readonly (string | RuleSpec)[]
}

/** The rule table of a blocklist: prefixes first, then names, each in the order the config gives them. */
export function rulesFromBlocklist(blocklist: Blocklist): Rule[] {
  const rules: Rule[] = []
  const add = (kind: RuleKind, entry: string | RuleSpec): void => {
    const { pattern, dryRun } = typeof entry === 'string' ? { pattern: entry, dryRun: false } : entry
    rules.push({ index: rules.length, kind, pattern, dryRun })
  }
  for (const entry of blocklist.prefixes) add('prefix', entry)
  for (const entry of blocklist.names) add('name', entry)
  return rules
}
