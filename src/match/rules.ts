import { unconditional } from './packed-rules.ts'
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
  readonly prefixes: readonly (string | TagRuleSpec)[]
  readonly names: readonly (string | TagRuleSpec)[]
  /** Name patterns: `*` one or more bytes other than `.`, `**` one or more bytes. */
  readonly globs?: readonly (string | TagRuleSpec)[]
  /** Drop any metric line carrying one of these tags (`k:v`) or keys (`k`). */
  readonly tags?: readonly (string | RuleSpec)[]
}

/** The rule table of a blocklist's unconditional rules (as packRules numbers them): prefixes first, then names, each in the order the config gives them. */
export function rulesFromBlocklist(blocklist: Blocklist): Rule[] {
  const rules: Rule[] = []
  const add = (kind: RuleKind, entry: string | RuleSpec): void => {
    const { pattern, dryRun } = typeof entry === 'string' ? { pattern: entry, dryRun: false } : entry
    rules.push({ index: rules.length, kind, pattern, dryRun })
  }
  for (const entry of blocklist.prefixes) if (unconditional(entry)) add('prefix', entry)
  for (const entry of blocklist.names) if (unconditional(entry)) add('name', entry)
  return rules
}

/** A tag condition, a blocklist.tags entry, a strip key: compared byte for byte with a line's tags. */
export interface TagRuleSpec extends RuleSpec {
  /** A block rule's tag condition: the rule applies only to lines carrying this tag (`k:v`) or key (`k`). */
  readonly tag?: string
}

/** The metric types a strip rule may limit itself to (the first field after the value). */
export const METRIC_TYPES = ['c', 'g', 'ms', 'h', 's', 'd'] as const
export type MetricType = (typeof METRIC_TYPES)[number]

/** Which metric names a strip rule (or an allowlist) selects: a name matching any entry. */
export interface Selector {
  readonly prefixes: readonly string[]
  readonly names: readonly string[]
  readonly globs: readonly string[]
}

/** When present, a metric line whose name matches no entry is dropped (reason not_allowed). */
export interface Allowlist extends Selector {
  /** Count what would be dropped, forward it. */
  readonly dryRun: boolean
}

/** Per-metric tag stripping; exactly one of `keys` and `keepOnly` is set. */
export interface StripRule {
  readonly metrics: Selector
  /** Remove every tag with one of these keys. */
  readonly keys: readonly string[] | null
  /** Remove every tag whose key is not listed (the agent's instruction keys excepted). */
  readonly keepOnly: readonly string[] | null
  readonly dryRun: boolean
  /** Only lines of these types; null = every type, unknown ones included. */
  readonly types: readonly MetricType[] | null
}

/** Hygiene guards; a metric line over one is dropped (reason over_limit). null = no limit. */
export interface Limits {
  readonly maxNameLength: number | null
  readonly maxTags: number | null
  readonly maxTagLength: number | null
  readonly dryRun: boolean
}

/** What happens to a tag value over a cardinality limit. */
export const OVER_ACTIONS = ['overflow', 'dropTag', 'dropLine'] as const
export type OverAction = (typeof OVER_ACTIONS)[number]

/** A cardinality limit: at most maxValuesPerTag distinct values per tag key per metric name within the window. */
export interface CardinalityLimit {
  readonly metrics: Selector
  readonly maxValuesPerTag: number
  /** Keys never limited. */
  readonly exempt: readonly string[]
  readonly over: OverAction
  readonly dryRun: boolean
  /** (metric name, tag key) pairs tracked per window; past it, values of a new pair are over the limit. */
  readonly maxKeys: number
}

/** Cardinality limits' window unless the config gives one. */
export const DEFAULT_CARDINALITY_WINDOW_MS = 3_600_000

export interface CardinalityRules {
  /** Admitted values are forgotten when a window ends (tumbling windows, aligned to the clock). */
  readonly windowMs: number
  readonly limits: readonly CardinalityLimit[]
}

/** Every rule of a config: what the loader thread compiles and a reload swaps whole. */
export interface FilterRules {
  readonly blocklist: Blocklist
  readonly allowlist: Allowlist | null
  readonly stripTags: readonly StripRule[]
  readonly limits: Limits
  readonly cardinality: CardinalityRules
}
