/** How a rule compares with a metric name, byte for byte (UTF-8). */
export type RuleKind = 'prefix' | 'name'

export interface Rule {
  /** Position in the rule table; what the trie returns on a match, so per-rule state can be an indexed array. */
  readonly index: number
  readonly kind: RuleKind
  readonly pattern: string
}

export interface Blocklist {
  readonly prefixes: readonly string[]
  readonly names: readonly string[]
}

/** The rule table of a blocklist: prefixes first, then names, each in the order the config gives them. */
export function rulesFromBlocklist(blocklist: Blocklist): Rule[] {
  const rules: Rule[] = []
  for (const pattern of blocklist.prefixes) rules.push({ index: rules.length, kind: 'prefix', pattern })
  for (const pattern of blocklist.names) rules.push({ index: rules.length, kind: 'name', pattern })
  return rules
}
