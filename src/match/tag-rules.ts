import { compileGlobs, GlobMatcher, type GlobData } from './glob.ts'
import type { FilterRules, MetricType, OverAction, RuleSpec, Selector, TagRuleSpec } from './rules.ts'
import { compileTrie, Trie, type TrieData } from './trie.ts'
import type { PackedRules } from './packed-rules.ts'
import type { Rule } from './rules.ts'
import type { Mode } from './rule-set.ts'

/**
 * Every rule beyond the unconditional name and prefix blocklist (which the packed table and its trie hold, up to
 * millions): block rules with a tag condition, block globs, blocklist.tags, the allowlist, stripTags and the
 * limits. They number in the hundreds or thousands, so they are described by plain objects for /rules, and
 * matched through typed arrays only (shareable between threads like the trie).
 */

const COLON = 0x3a
const COMMA = 0x2c
const PIPE = 0x7c
/** Where a tag's key ends: its `:`, the `,` before the next tag, or the `|` of the next field. */
const KEY_ENDS = new Uint8Array(256)
KEY_ENDS[COLON] = 1
KEY_ENDS[COMMA] = 1
KEY_ENDS[PIPE] = 1

/**
 * The most bytes the strip rules' removal table may take (a byte per strip rule and key id): past it, as with
 * thousands of strip rules naming thousands of keys, removes() searches each rule's keys instead.
 */
const REMOVAL_TABLE_BYTES = 1 << 20

/** What an extra rule does when it matches. */
export const BLOCK = 0
/** A blocklist.tags entry: blocks on a tag, whatever the name. */
const BLOCK_TAG = 1
export const ALLOW = 2
export const STRIP = 3
/** A block glob: below every literal rule; the first candidate in file order picks the pattern (see filter.ts). */
export const BLOCK_GLOB = 4
/** A cardinality limit (cardinality.limits). */
export const LIMIT = 5

/** What a limit does to a new value over it, by severity (a line two limits hit gets the most severe). */
export const OVERFLOW = 1
export const DROP_TAG = 2
export const DROP_LINE = 3
const OVER_CODES: Record<OverAction, number> = { overflow: OVERFLOW, dropTag: DROP_TAG, dropLine: DROP_LINE }

/** A cardinality limit as /rules shows it and a reload recognises it (its state carries over when all equal). */
export interface LimitInfo {
  maxValuesPerTag: number
  exempt: readonly string[]
  over: OverAction
  maxKeys: number
  windowMs: number
}

/** What /rules says about a rule beyond the packed table. */
export interface TagRuleInfo {
  action: 'block' | 'allow' | 'strip' | 'limit'
  kind: 'prefix' | 'name' | 'glob' | 'tag' | 'metrics'
  /** The pattern (a tag for kind tag); a strip rule's selector is in `metrics`. */
  pattern: string | null
  tag: string | null
  metrics: Selector | null
  keys: readonly string[] | null
  keepOnly: readonly string[] | null
  types: readonly MetricType[] | null
  limit: LimitInfo | null
}

/** Tag keys the agent reads as instructions; keepOnly never removes them (a `keys` rule that names one does). */
export const PROTECTED_KEYS = ['host', 'dd.internal.entity_id', 'dd.internal.card', 'dd.internal.jmx_check_name']

const TYPE_BITS: Record<MetricType, number> = { c: 1, g: 2, ms: 4, h: 8, s: 16, d: 32 }
/** The bit of a type slot (METRIC_TYPE_SLOTS order: c, g, ms, h, s, d, other). */
const SLOT_BITS = [1, 2, 4, 8, 16, 32, 64]

/** Precedence of a block or allow match: an exact name beats every prefix, a longer prefix a shorter one. */
const EXACT_PRIORITY = 1 << 30
/** Any glob ranks below every literal pattern; among globs the first pattern in the file wins. */
const GLOB_PRIORITY = -(1 << 29)

function prefixPriority(length: number): number {
  return 2 * length
}

/** The precedence of a rule of the packed table (an unconditional prefix or name). */
export function tablePriority(table: PackedRules, rule: number): number {
  return rule < table.prefixCount ? prefixPriority(table.starts[rule + 1] - table.starts[rule] - 1) : EXACT_PRIORITY
}

export interface TagRulesData {
  /** The rule index of extra rule 0: the packed table's rules come first. */
  firstIndex: number
  info: TagRuleInfo[]
  action: Uint8Array
  /** Per rule: its own dryRun flag. */
  dryRun: Uint8Array
  /** Per block/allow rule: its precedence (higher wins; ties go to the lower index). */
  priority: Int32Array
  /** Per block glob: which pattern it has (rules with the same glob have the same id); -1 for other rules. */
  globPattern: Int32Array
  /** A block rule's tag condition is condBytes[condStart[r], condStart[r + 1]); empty = none. */
  condStart: Int32Array
  condBytes: Uint8Array
  /** 1 where the condition is a key (no `:`): any tag with that key. */
  condKey: Uint8Array
  /** Literal name patterns (prefixes and names of every section) -> a group of rules (groupRules[groupStart[g]..]). */
  literal: TrieData
  groupStart: Int32Array
  groupRules: Int32Array
  /** Bytes of the longest literal pattern: bounds the matches one name can have. */
  longestLiteral: number
  /** Glob patterns of every section; a match reports the rule. */
  globs: GlobData
  /** blocklist.tags: a tag -> its rule (`k:v` exact, a key `k` as `k` exact and `k:` prefix). */
  tags: TrieData
  /** Every key a strip rule names, and the protected ones -> a key id. */
  keys: TrieData
  keyProtected: Uint8Array
  /** A strip rule's key ids, sorted: stripKeys[stripKeysStart[r], stripKeysStart[r + 1]). */
  stripKeysStart: Int32Array
  stripKeys: Int32Array
  /** 1 for a keepOnly rule, 0 for a keys rule. */
  keepOnly: Uint8Array
  /** A strip rule's types as bits (TYPE_BITS); 0 = every type. */
  typeMask: Uint8Array
  /** Per limit rule: its OVERFLOW, DROP_TAG or DROP_LINE; 0 for other rules. */
  overAction: Uint8Array
  /** Per limit rule: its position among the limit rules (its admission table); -1 for other rules. */
  limitSlot: Int32Array
  limitRules: number
  /** maxNameLength, maxTags, maxTagLength; 0 = no limit. */
  limits: Int32Array
  limitsDryRun: boolean
  allowlist: boolean
  allowlistDryRun: boolean
  stripRules: number
}

/** Whether a config has anything beyond plain prefixes and names: if not, the filter keeps its fastest path. */
export function hasTagRules(rules: FilterRules): boolean {
  const { blocklist, limits } = rules
  const tagged = (entries: readonly (string | TagRuleSpec)[]): boolean =>
    entries.some((e) => typeof e !== 'string' && e.tag !== undefined)
  return (
    tagged(blocklist.prefixes) ||
    tagged(blocklist.names) ||
    (blocklist.globs ?? []).length > 0 ||
    (blocklist.tags ?? []).length > 0 ||
    rules.allowlist !== null ||
    rules.stripTags.length > 0 ||
    limits.maxNameLength !== null ||
    limits.maxTags !== null ||
    limits.maxTagLength !== null ||
    rules.cardinality.limits.length > 0
  )
}

const spec = (e: string | TagRuleSpec): TagRuleSpec => (typeof e === 'string' ? { pattern: e, dryRun: false } : e)

/**
 * The extra rules of `rules`, numbered from `firstIndex` in this order: tag-conditioned prefixes, then names,
 * block globs, blocklist.tags, the allowlist's prefixes, names and globs, the strip rules, then the limits.
 */
export function compileTagRules(rules: FilterRules, firstIndex: number): TagRulesData {
  const info: TagRuleInfo[] = []
  const dryRun: number[] = []
  const action: number[] = []
  const priority: number[] = []
  const conditions: string[] = []
  const literal: { kind: 'prefix' | 'name'; pattern: string; rule: number }[] = []
  const globs: { pattern: string; rule: number }[] = []
  const add = (entry: TagRuleInfo, act: number, prio: number, dry: boolean, condition: string): number => {
    info.push(entry)
    action.push(act)
    priority.push(prio)
    dryRun.push(dry ? 1 : 0)
    conditions.push(condition)
    return info.length - 1
  }
  const tagged = (kind: 'prefix' | 'name', entries: readonly (string | TagRuleSpec)[]): void => {
    for (const e of entries.map(spec)) {
      if (e.tag === undefined) continue
      const prio = (kind === 'name' ? EXACT_PRIORITY : prefixPriority(byteLength(e.pattern))) + 1
      const rule = add(ruleInfo('block', kind, e.pattern, { tag: e.tag }), BLOCK, prio, e.dryRun, e.tag)
      literal.push({ kind, pattern: e.pattern, rule })
    }
  }
  tagged('prefix', rules.blocklist.prefixes)
  tagged('name', rules.blocklist.names)
  // Allowlist globs rank in file order, duplicates of a pattern with its first.
  const allowGlobs = new Map<string, number>()
  const globPriority = (pattern: string): number => {
    if (!allowGlobs.has(pattern)) allowGlobs.set(pattern, allowGlobs.size)
    return GLOB_PRIORITY - (allowGlobs.get(pattern) ?? 0)
  }
  const blockGlobs = new Map<string, number>()
  const globPattern: number[] = []
  for (const e of (rules.blocklist.globs ?? []).map(spec)) {
    const tag = e.tag ?? null
    const rule = add(ruleInfo('block', 'glob', e.pattern, { tag }), BLOCK_GLOB, GLOB_PRIORITY, e.dryRun, tag ?? '')
    if (!blockGlobs.has(e.pattern)) blockGlobs.set(e.pattern, blockGlobs.size)
    globPattern[rule] = blockGlobs.get(e.pattern) ?? -1
    globs.push({ pattern: e.pattern, rule })
  }
  const tagEntries: Rule[] = []
  for (const e of (rules.blocklist.tags ?? []).map((t: string | RuleSpec) => spec(t))) {
    const rule = add(ruleInfo('block', 'tag', e.pattern), BLOCK_TAG, 0, e.dryRun, '')
    const index = rule
    if (e.pattern.includes(':')) tagEntries.push({ index, kind: 'name', pattern: e.pattern, dryRun: false })
    else {
      tagEntries.push({ index, kind: 'name', pattern: e.pattern, dryRun: false })
      tagEntries.push({ index, kind: 'prefix', pattern: `${e.pattern}:`, dryRun: false })
    }
  }
  const allowlist = rules.allowlist
  if (allowlist !== null) {
    const allow = (kind: 'prefix' | 'name' | 'glob', pattern: string, prio: number): number =>
      add(ruleInfo('allow', kind, pattern), ALLOW, prio, allowlist.dryRun, '')
    for (const p of allowlist.prefixes)
      literal.push({ kind: 'prefix', pattern: p, rule: allow('prefix', p, prefixPriority(byteLength(p))) })
    for (const p of allowlist.names) literal.push({ kind: 'name', pattern: p, rule: allow('name', p, EXACT_PRIORITY) })
    for (const p of allowlist.globs) globs.push({ pattern: p, rule: allow('glob', p, globPriority(p)) })
  }
  const keyIds = new Map<string, number>()
  const keyId = (key: string): number => {
    let id = keyIds.get(key)
    if (id === undefined) keyIds.set(key, (id = keyIds.size))
    return id
  }
  for (const key of PROTECTED_KEYS) keyId(key)
  const stripKeys: number[][] = []
  const keepOnly: number[] = []
  const typeMask: number[] = []
  for (const r of rules.stripTags) {
    const rule = add(ruleInfo('strip', 'metrics', null, r), STRIP, 0, r.dryRun, '')
    for (const p of r.metrics.prefixes) literal.push({ kind: 'prefix', pattern: p, rule })
    for (const p of r.metrics.names) literal.push({ kind: 'name', pattern: p, rule })
    for (const p of r.metrics.globs) globs.push({ pattern: p, rule })
    stripKeys[rule] = [...new Set((r.keys ?? r.keepOnly ?? []).map(keyId))].sort((a, b) => a - b)
    keepOnly[rule] = r.keepOnly !== null ? 1 : 0
    typeMask[rule] = (r.types ?? []).reduce((bits, type) => bits | TYPE_BITS[type], 0)
  }
  const overAction: number[] = []
  const limitSlot: number[] = []
  const { windowMs, limits: cardinalityLimits } = rules.cardinality
  cardinalityLimits.forEach((l, slot) => {
    const { metrics, maxValuesPerTag, exempt, over, maxKeys } = l
    const limit = { maxValuesPerTag, exempt, over, maxKeys, windowMs }
    const rule = add(ruleInfo('limit', 'metrics', null, { metrics, limit }), LIMIT, 0, l.dryRun, '')
    for (const p of metrics.prefixes) literal.push({ kind: 'prefix', pattern: p, rule })
    for (const p of metrics.names) literal.push({ kind: 'name', pattern: p, rule })
    for (const p of metrics.globs) globs.push({ pattern: p, rule })
    // The agent's instruction keys are never limited: overflowing one would break origin detection.
    const never = PROTECTED_KEYS.filter((k) => k.startsWith('dd.internal.'))
    stripKeys[rule] = [...new Set([...exempt, ...never].map(keyId))].sort((a, b) => a - b)
    overAction[rule] = OVER_CODES[over]
    limitSlot[rule] = slot
  })

  const n = info.length
  const condStart = new Int32Array(n + 1)
  const condParts = conditions.map((c) => Buffer.from(c, 'utf8'))
  for (let r = 0; r < n; r++) condStart[r + 1] = condStart[r] + condParts[r].length
  const stripKeysStart = new Int32Array(n + 1)
  for (let r = 0; r < n; r++) stripKeysStart[r + 1] = stripKeysStart[r] + (stripKeys[r]?.length ?? 0)

  // Literal patterns by (kind, pattern): one trie entry per group, a group listing its rules in index order.
  const groups = new Map<string, { kind: 'prefix' | 'name'; pattern: string; rules: number[] }>()
  for (const { kind, pattern, rule } of literal) {
    const key = `${kind}\n${pattern}`
    const group = groups.get(key)
    if (group === undefined) groups.set(key, { kind, pattern, rules: [rule] })
    else group.rules.push(rule)
  }
  const groupList = [...groups.values()]
  const groupStart = new Int32Array(groupList.length + 1)
  groupList.forEach((g, i) => (groupStart[i + 1] = groupStart[i] + g.rules.length))

  return {
    firstIndex,
    info,
    action: Uint8Array.from(action),
    dryRun: Uint8Array.from(dryRun),
    priority: Int32Array.from(priority),
    globPattern: Int32Array.from({ length: n }, (_, r) => globPattern[r] ?? -1),
    condStart,
    condBytes: new Uint8Array(Buffer.concat(condParts)),
    condKey: Uint8Array.from(conditions, (c) => (c !== '' && !c.includes(':') ? 1 : 0)),
    literal: compileTrie(groupList.map((g, index) => ({ index, kind: g.kind, pattern: g.pattern, dryRun: false }))),
    groupStart,
    groupRules: Int32Array.from(groupList.flatMap((g) => g.rules)),
    longestLiteral: Math.max(0, ...groupList.map((g) => byteLength(g.pattern))),
    globs: compileGlobs(
      globs.map((g) => g.pattern),
      globs.map((g) => g.rule),
    ),
    tags: compileTrie(tagEntries),
    keys: compileTrie([...keyIds].map(([pattern, index]) => ({ index, kind: 'name', pattern, dryRun: false }))),
    keyProtected: Uint8Array.from([...keyIds.keys()], (k) => (PROTECTED_KEYS.includes(k) ? 1 : 0)),
    stripKeysStart,
    stripKeys: Int32Array.from(stripKeys.flatMap((k) => k ?? [])),
    keepOnly: Uint8Array.from({ length: n }, (_, r) => keepOnly[r] ?? 0),
    typeMask: Uint8Array.from({ length: n }, (_, r) => typeMask[r] ?? 0),
    overAction: Uint8Array.from({ length: n }, (_, r) => overAction[r] ?? 0),
    limitSlot: Int32Array.from({ length: n }, (_, r) => limitSlot[r] ?? -1),
    limitRules: cardinalityLimits.length,
    limits: Int32Array.from([
      rules.limits.maxNameLength ?? 0,
      rules.limits.maxTags ?? 0,
      rules.limits.maxTagLength ?? 0,
    ]),
    limitsDryRun: rules.limits.dryRun,
    allowlist: allowlist !== null,
    allowlistDryRun: allowlist?.dryRun ?? false,
    stripRules: rules.stripTags.length,
  }
}

/**
 * A rule's description with every field, in one order (a reload matches rules by it). Built as one literal: a
 * spread of shared defaults made each a slow dictionary object (10,000 globs compiled in 200-550 ms, not ~50).
 */
function ruleInfo(
  action: TagRuleInfo['action'],
  kind: TagRuleInfo['kind'],
  pattern: string | null,
  more: {
    tag?: string | null
    metrics?: Selector
    keys?: readonly string[] | null
    keepOnly?: readonly string[] | null
    types?: readonly MetricType[] | null
    limit?: LimitInfo
  } = {},
): TagRuleInfo {
  return {
    action,
    kind,
    pattern,
    tag: more.tag ?? null,
    metrics: more.metrics ?? null,
    keys: more.keys ?? null,
    keepOnly: more.keepOnly ?? null,
    types: more.types ?? null,
    limit: more.limit ?? null,
  }
}

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8')
}

/**
 * The extra rules as the filter runs them: the matchers over the data, and scratch arrays made once, so a
 * lookup allocates nothing. Rule numbers here are extra-rule numbers (add firstIndex for the rule table's).
 */
export class TagRules {
  readonly data: TagRulesData
  readonly firstIndex: number
  readonly action: Uint8Array
  readonly priority: Int32Array
  readonly globPattern: Int32Array
  readonly typeMask: Uint8Array
  readonly maxNameLength: number
  readonly maxTags: number
  readonly maxTagLength: number
  readonly limitsDryRun: boolean
  readonly allowlist: boolean
  readonly allowlistDryRun: boolean
  /** Whether blocklist.tags has entries. */
  readonly blockTags: boolean
  /**
   * Whether a tag-conditioned name or prefix rule is here: only those can outrank a table rule (globs rank below
   * every literal rule, and blocklist.tags only decides when no name rule does), so without them an enforced
   * table match blocks at once.
   */
  readonly taggedLiterals: boolean
  /** Whether any limit on tags is set (the line's tags must be walked before anything else). */
  readonly tagLimits: boolean
  /** The rules that match the last name given to candidates(), in found[0, count). */
  readonly found: Int32Array
  /** Scratch for the filter: the strip rules that apply to the line, and the tags each removes. */
  readonly applying: Int32Array
  readonly ruleTags: Int32Array
  /** Scratch for the filter: the limit rules that apply to the line, and the tags each limits. */
  readonly limiting: Int32Array
  readonly limitTags: Int32Array
  /** Per limit rule: OVERFLOW, DROP_TAG or DROP_LINE. */
  readonly overAction: Uint8Array
  /** Limit rule r's admitted values are admission[limitSlot[r]]. */
  readonly limitSlot: Int32Array
  /** Where the key keyIdUntil looked up ends. */
  keyEnd = 0
  /**
   * Whether strip rule r removes tags with key id k: removal[removalRow[r] + k + 1] === 1 (k = -1: a key no rule
   * names); null when it would exceed REMOVAL_TABLE_BYTES. removes() reads it; the filter reads it itself for a
   * line under one strip rule, its row found once per line.
   */
  readonly removal: Uint8Array | null
  readonly removalRow: Int32Array
  /** seen[r] === line: strip rule r is in `applying` already (a name may match a rule through several entries). */
  private readonly seen: Int32Array
  private line = 0
  private readonly literal: Trie
  private readonly literalCount: number
  private readonly groupStart: Int32Array
  private readonly groupRules: Int32Array
  private readonly groups: Int32Array
  private readonly globs: GlobMatcher
  private readonly globCount: number
  private readonly globFound: Int32Array
  private readonly tags: Trie
  private readonly keys: Trie
  private readonly keyProtected: Uint8Array
  private readonly condStart: Int32Array
  private readonly condBytes: Uint8Array
  private readonly condKey: Uint8Array
  private readonly stripKeysStart: Int32Array
  private readonly stripKeys: Int32Array
  private readonly keepOnly: Uint8Array

  constructor(data: TagRulesData, mode: Mode) {
    this.data = data
    this.firstIndex = data.firstIndex
    this.action = data.action
    this.priority = data.priority
    this.globPattern = data.globPattern
    this.typeMask = data.typeMask
    this.maxNameLength = data.limits[0]
    this.maxTags = data.limits[1]
    this.maxTagLength = data.limits[2]
    this.limitsDryRun = data.limitsDryRun || mode === 'dry-run'
    this.allowlist = data.allowlist
    this.allowlistDryRun = data.allowlistDryRun || mode === 'dry-run'
    this.tagLimits = this.maxTags > 0 || this.maxTagLength > 0
    this.literal = new Trie(data.literal)
    this.literalCount = data.literal.ruleCount
    this.groupStart = data.groupStart
    this.groupRules = data.groupRules
    this.groups = new Int32Array(data.longestLiteral + 2)
    this.globs = new GlobMatcher(data.globs)
    this.globCount = this.globs.idCount
    this.globFound = new Int32Array(this.globCount)
    this.found = new Int32Array(data.groupRules.length + this.globCount)
    this.applying = new Int32Array(data.stripRules)
    this.ruleTags = new Int32Array(data.stripRules)
    this.limiting = new Int32Array(data.limitRules)
    this.limitTags = new Int32Array(data.limitRules)
    this.overAction = data.overAction
    this.limitSlot = data.limitSlot
    this.seen = new Int32Array(data.info.length)
    this.tags = new Trie(data.tags)
    this.blockTags = data.tags.ruleCount > 0
    this.taggedLiterals = data.action.some((action) => action === BLOCK)
    this.keys = new Trie(data.keys)
    this.keyProtected = data.keyProtected
    this.condStart = data.condStart
    this.condBytes = data.condBytes
    this.condKey = data.condKey
    this.stripKeysStart = data.stripKeysStart
    this.stripKeys = data.stripKeys
    this.keepOnly = data.keepOnly
    const stride = data.keyProtected.length + 1
    this.removalRow = new Int32Array(data.info.length).fill(-1)
    if (data.stripRules * stride <= REMOVAL_TABLE_BYTES) {
      this.removal = new Uint8Array(data.stripRules * stride)
      let row = 0
      for (let r = 0; r < data.info.length; r++) {
        if (data.action[r] !== STRIP) continue
        this.removalRow[r] = row
        for (let key = -1; key < stride - 1; key++) this.removal[row + key + 1] = this.removesByKeys(r, key) ? 1 : 0
        row += stride
      }
    } else this.removal = null
  }

  /**
   * Every extra rule whose name pattern matches `buf[start, end)`, into `found`; returns how many. The literal
   * patterns' rules come first, then the globs' (the filter decides literal block rules before any glob).
   */
  candidates(buf: Uint8Array, start: number, end: number): number {
    const groups = this.groups
    const found = this.found
    const n = this.literalCount === 0 ? 0 : this.literal.matchAll(buf, start, end, groups, 0)
    let count = 0
    for (let k = 0; k < n; k++) {
      const g = groups[k]
      for (let i = this.groupStart[g]; i < this.groupStart[g + 1]; i++) found[count++] = this.groupRules[i]
    }
    if (this.globCount === 0) return count
    const globFound = this.globFound
    const m = this.globs.match(buf, start, end, globFound)
    for (let k = 0; k < m; k++) found[count++] = globFound[k]
    return count
  }

  /** A new line for firstTime(). */
  beginLine(): void {
    if (++this.line === 2 ** 31 - 1) {
      this.line = 1
      this.seen.fill(0)
    }
  }

  /** True the first time it is asked about rule r since beginLine(). */
  firstTime(r: number): boolean {
    if (this.seen[r] === this.line) return false
    this.seen[r] = this.line
    return true
  }

  /** The blocklist.tags rule the tag `buf[start, end)` hits, or -1. */
  tagRule(buf: Uint8Array, start: number, end: number): number {
    return this.tags.match(buf, start, end)
  }

  /** Whether rule `r` has a tag condition. */
  conditional(r: number): boolean {
    return this.condStart[r + 1] > this.condStart[r]
  }

  /** Whether the tag `buf[start, end)` (its key ending at `keyEnd`) satisfies rule r's condition. */
  satisfies(r: number, buf: Uint8Array, start: number, keyEnd: number, end: number): boolean {
    const from = this.condStart[r]
    const length = this.condStart[r + 1] - from
    const last = this.condKey[r] === 1 ? keyEnd : end
    if (last - start !== length) return false
    const cond = this.condBytes
    for (let i = 0; i < length; i++) if (buf[start + i] !== cond[from + i]) return false
    return true
  }

  /** The key id of `buf[start, end)`, or -1 for a key no strip rule names. */
  keyId(buf: Uint8Array, start: number, end: number): number {
    return this.keys.match(buf, start, end)
  }

  /**
   * The key id of the tag starting at `start` in a line ending at `end` (its key: up to its first `:`, `,` or
   * `|`), or -1 for a key no strip rule names; where the key ends is left in `keyEnd`.
   */
  keyIdUntil(buf: Uint8Array, start: number, end: number): number {
    const id = this.keys.matchUntil(buf, start, end, KEY_ENDS)
    this.keyEnd = this.keys.stoppedAt
    return id
  }

  /** Whether strip rule r removes tags with this key id: one read of the removal table when there is one. */
  removes(r: number, key: number): boolean {
    return this.removal !== null ? this.removal[this.removalRow[r] + key + 1] === 1 : this.removesByKeys(r, key)
  }

  /** removes() from the rule's keys: a search of its sorted key ids. */
  private removesByKeys(r: number, key: number): boolean {
    if (this.keepOnly[r] === 1) return key === -1 || (this.keyProtected[key] === 0 && !this.lists(r, key))
    return key !== -1 && this.lists(r, key)
  }

  /** Whether limit rule r leaves tags with this key id alone (listed in exempt, or an instruction to the agent). */
  exempts(r: number, key: number): boolean {
    return key !== -1 && this.lists(r, key)
  }

  /** Whether strip rule r applies to a line whose type is in slot `typeSlot` (METRIC_TYPE_SLOTS). */
  appliesToType(r: number, typeSlot: number): boolean {
    const mask = this.typeMask[r]
    return mask === 0 || (mask & SLOT_BITS[typeSlot]) !== 0
  }

  private lists(r: number, key: number): boolean {
    const keys = this.stripKeys
    let lo = this.stripKeysStart[r]
    let hi = this.stripKeysStart[r + 1] - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const k = keys[mid]
      if (k === key) return true
      if (k < key) lo = mid + 1
      else hi = mid - 1
    }
    return false
  }
}
