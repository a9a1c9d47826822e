import { AdmissionTable, type AdmissionData } from './admission.ts'
import { kindOf, packRules, ruleCount, ruleKinds as tableKinds, unpackRules, type PackedRules } from './packed-rules.ts'
import {
  DEFAULT_CARDINALITY_WINDOW_MS,
  rulesFromBlocklist,
  type Blocklist,
  type FilterRules,
  type Rule,
  type RuleKind,
} from './rules.ts'
import { compileTagRules, hasTagRules, TagRules, type TagRuleInfo, type TagRulesData } from './tag-rules.ts'
import { hllEstimate, hllMerge } from '../telemetry/hyperloglog.ts'
import { compileTrie, Trie, type TrieData } from './trie.ts'

/** `enforce` drops what the rules match; `dry-run` treats every rule as `dryRun: true`. */
export type Mode = 'enforce' | 'dry-run'

/** Per-rule hit history: what a reload carries over and what workers' reports add up. */
export interface RuleHits {
  readonly hits: Float64Array
  readonly lastHitMs: Float64Array
  /** Per tag rule (index - firstIndex): lines from which a strip rule removed (or would remove) tags, and the tags. */
  readonly linesStripped: Float64Array
  readonly tagsStripped: Float64Array
  /**
   * Per strip and limit rule (RuleStats.forecastSlot), two HyperLogLogs of FORECAST_PRECISION: the series of the
   * lines it matched as they came, then as the rule alone leaves them (what it saves, or would save enforced).
   */
  readonly forecast: Uint8Array
  /** Per tag rule: its slot in `forecast`, or -1. */
  readonly forecastSlot: Int32Array
}

/** A forecast sketch's precision: 1,024 bytes, 3.25% standard error. */
export const FORECAST_PRECISION = 10
/** Bytes of one rule's two forecast sketches (before, after). */
export const FORECAST_BYTES = 2 << FORECAST_PRECISION

/** A rule's forecast: estimated distinct series of the lines it matched, before and after it. */
export interface Forecast {
  before: number
  after: number
  saved: number
}

/**
 * A config's rules compiled, as typed arrays (and the tag rules' descriptions): what the loader thread builds and
 * posts. `rules` and `trie` hold the unconditional prefixes and names (up to millions); `tags` everything else,
 * null when there is nothing else (the filter then keeps its fastest path).
 */
export interface CompiledRules {
  rules: PackedRules
  trie: TrieData
  tags: TagRulesData | null
}

/** The same, ready to match: the trie made a Trie. What a data plane puts in force. */
export interface RunnableRules {
  rules: PackedRules
  trie: Trie
  tags: TagRulesData | null
}

/**
 * The admitted values of the cardinality limits of `tags`, one table per limit in its order (in shared memory,
 * so every reader thread updates the same ones). A limit that was in `previous` unchanged (its description, window
 * included, equal: `inherit` maps the previous rule indexes to these, as the loader worked them out) keeps its
 * table, admitted values and all; the others start empty.
 */
export function admissionFor(
  tags: TagRulesData | null,
  previous: { tags: TagRulesData | null; admission: readonly AdmissionData[] } | null,
  inherit: Int32Array | null,
): AdmissionData[] {
  if (tags === null || tags.limitRules === 0) return []
  const kept: (AdmissionData | undefined)[] = []
  if (previous?.tags != null && inherit !== null) {
    const from = previous.tags
    for (let r = 0; r < from.info.length; r++) {
      const slot = from.limitSlot[r]
      const to = inherit[from.firstIndex + r]
      if (slot === -1 || to === -1 || to < tags.firstIndex) continue
      const toSlot = tags.limitSlot[to - tags.firstIndex]
      if (toSlot !== -1) kept[toSlot] ??= previous.admission[slot]
    }
  }
  const out: AdmissionData[] = []
  tags.info.forEach((info, r) => {
    const slot = tags.limitSlot[r]
    if (slot === -1 || info.limit === null) return
    const { maxValuesPerTag, maxKeys, windowMs } = info.limit
    out[slot] = kept[slot] ?? AdmissionTable.create({ maxValuesPerTag, maxKeys, windowMs }).data()
  })
  return out
}

/** No tag rules, no allowlist, no limits: what a blocklist alone (and the Rust-JSON config) means. */
export const NO_TAG_RULES = {
  allowlist: null,
  stripTags: [],
  limits: { maxNameLength: null, maxTags: null, maxTagLength: null, dryRun: false },
  cardinality: { windowMs: DEFAULT_CARDINALITY_WINDOW_MS, limits: [] },
} as const satisfies Omit<FilterRules, 'blocklist'>

/** The one place rules are compiled. */
export function compileRules(filterRules: FilterRules): CompiledRules {
  const rules = packRules(filterRules.blocklist)
  return {
    rules,
    trie: compileTrie(rulesFromBlocklist(filterRules.blocklist)),
    tags: hasTagRules(filterRules) ? compileTagRules(filterRules, ruleCount(rules)) : null,
  }
}

/** What the start, reload and --check lines report: rules by kind (tag-conditioned ones with their kind). */
export function ruleKinds(compiled: { rules: PackedRules; tags: TagRulesData | null }): Record<string, number> {
  const counts: Record<string, number> = {
    ...tableKinds(compiled.rules),
    globs: 0,
    tags: 0,
    allow: 0,
    stripTags: 0,
    cardinalityLimits: 0,
  }
  for (const info of compiled.tags?.info ?? []) counts[KIND_KEYS[ruleLabel(info)]]++
  return counts
}

type Shareable = Uint8Array | Int32Array

/** `value` with every typed array replaced by f(array), depth first in key order (the same order every time). */
function mapArrays<T>(value: T, f: (array: Shareable) => Shareable): T {
  if (value instanceof Uint8Array || value instanceof Int32Array) return f(value) as T
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) out[key] = mapArrays(v, f)
  return out as T
}

/** The byte sizes of the shared buffers shareRules needs for these rules, in its order. */
export function sharedSizes(compiled: CompiledRules): number[] {
  const sizes: number[] = []
  mapArrays(compiled, (array) => {
    sizes.push(array.byteLength)
    return array
  })
  return sizes
}

/**
 * The compiled rules with every typed array in shared memory: reader threads (`workers: N`) then use one copy,
 * and a rule set crosses from the loader thread and to the readers as a reference, never copied or deserialized
 * on the event loop (1,000,000 prefixes with two readers: the reload paused the loop 30-64 ms; copying them into
 * shared memory there, 234 ms). An array already in shared memory stays; the others are copied into `buffers`
 * (sized by sharedSizes) or into new ones.
 */
export function shareRules(compiled: CompiledRules, buffers: readonly SharedArrayBuffer[] = []): CompiledRules {
  let i = 0
  return mapArrays(compiled, (array) => {
    const buffer = buffers.at(i++)
    if (array.buffer instanceof SharedArrayBuffer) return array
    const shared = buffer ?? new SharedArrayBuffer(array.byteLength)
    const copy = array instanceof Int32Array ? new Int32Array(shared) : new Uint8Array(shared)
    copy.set(array)
    return copy
  })
}

/**
 * A rule table with per-rule state indexed by the rule's index, so the hot path updates a typed array slot and
 * never looks anything up. What /rules and /metrics read: a reader's RuleSet, or the control plane's sum of
 * its readers' hits.
 */
export class RuleStats implements RuleHits {
  readonly table: PackedRules
  /** The rules beyond the table's (numbered from the table's size on); null when there are none. */
  readonly tags: TagRulesData | null
  /** Which rules in force these are: 0 at start, one more per reload. */
  readonly generation: number
  /** 1 where a match is forwarded and counted as would-block (the rule's dryRun, or mode dry-run). */
  readonly dryRun: Uint8Array
  /** Lines each rule matched since the proxy started (carried over reloads for unchanged rules). */
  readonly hits: Float64Array
  /** When each rule last matched, in ms since the epoch (to the second); 0 = never. */
  readonly lastHitMs: Float64Array
  readonly linesStripped: Float64Array
  readonly tagsStripped: Float64Array
  readonly forecast: Uint8Array
  /** Per tag rule (index - firstIndex): its forecast's slot (FORECAST_BYTES each), or -1 (no strip or limit rule). */
  readonly forecastSlot: Int32Array
  private unpacked: Rule[] | null = null

  constructor(table: PackedRules, tags: TagRulesData | null, mode: Mode, generation = 0) {
    this.table = table
    this.tags = tags
    this.generation = generation
    const own = ruleCount(table)
    const extra = tags === null ? 0 : tags.info.length
    const n = own + extra
    if (mode === 'dry-run') this.dryRun = new Uint8Array(n).fill(1)
    else if (tags === null) this.dryRun = table.dryRun
    else {
      this.dryRun = new Uint8Array(n)
      this.dryRun.set(table.dryRun)
      this.dryRun.set(tags.dryRun, own)
    }
    this.hits = new Float64Array(n)
    this.lastHitMs = new Float64Array(n)
    this.linesStripped = new Float64Array(extra)
    this.tagsStripped = new Float64Array(extra)
    this.forecastSlot = new Int32Array(extra).fill(-1)
    let slots = 0
    tags?.info.forEach((info, r) => {
      if (info.action === 'strip' || info.action === 'limit') this.forecastSlot[r] = slots++
    })
    this.forecast = new Uint8Array(slots * FORECAST_BYTES)
  }

  /** Tag rule i's forecast (a strip or limit rule), or null. */
  forecastOf(i: number): Forecast | null {
    const slot = this.forecastSlot[i]
    if (slot === -1) return null
    const at = slot * FORECAST_BYTES
    const before = Math.round(hllEstimate(this.forecast, at, FORECAST_PRECISION))
    const after = Math.round(hllEstimate(this.forecast, at + (FORECAST_BYTES >> 1), FORECAST_PRECISION))
    return { before, after, saved: Math.max(0, before - after) }
  }

  get size(): number {
    return this.hits.length
  }

  /** The rule table as objects, made on first use (by /rules), never on the hot path. */
  get rules(): readonly Rule[] {
    this.unpacked ??= unpackRules(this.table)
    return this.unpacked
  }

  /** The rules beyond the table: rule `firstTagRule + i` is tagRules[i]. */
  get tagRules(): readonly TagRuleInfo[] {
    return this.tags?.info ?? []
  }

  get firstTagRule(): number {
    return this.hits.length - this.linesStripped.length
  }

  /**
   * Adds another set's history: `map[i]` is the index here of the other set's rule i, or -1 (after a reload,
   * as the loader thread worked it out: rules that survive keep their hits); null for the same table (a
   * worker's report). Typed-array work only.
   */
  inherit(previous: RuleHits, map: Int32Array | null): void {
    const from = previous.hits.length - previous.linesStripped.length
    const to = this.firstTagRule
    for (let i = 0; i < previous.hits.length; i++) {
      const j = map === null ? i : map[i]
      if (j === -1) continue
      this.hits[j] += previous.hits[i]
      if (previous.lastHitMs[i] > this.lastHitMs[j]) this.lastHitMs[j] = previous.lastHitMs[i]
      if (i >= from && j >= to) {
        this.linesStripped[j - to] += previous.linesStripped[i - from]
        this.tagsStripped[j - to] += previous.tagsStripped[i - from]
        const slot = this.forecastSlot[j - to]
        const previousSlot = previous.forecastSlot[i - from]
        if (slot !== -1 && previousSlot !== -1)
          for (let half = 0; half < FORECAST_BYTES; half += FORECAST_BYTES >> 1)
            hllMerge(
              this.forecast,
              slot * FORECAST_BYTES + half,
              previous.forecast,
              previousSlot * FORECAST_BYTES + half,
              FORECAST_PRECISION,
            )
      }
    }
  }
}

/** A /metrics kind label: what a rule matches, or (allow, strip_tags) what it is. */
export type RuleLabel = RuleKind | 'glob' | 'tag' | 'allow' | 'strip_tags' | 'cardinality_limit'
const RULE_LABELS: readonly RuleLabel[] = ['prefix', 'name', 'glob', 'tag', 'allow', 'strip_tags', 'cardinality_limit']

/** A tag rule's label: what it is (allow, strip_tags, cardinality_limit), or for a block rule what it matches. */
function ruleLabel(info: TagRuleInfo): RuleLabel {
  if (info.action === 'allow') return 'allow'
  if (info.action === 'strip') return 'strip_tags'
  if (info.action === 'limit') return 'cardinality_limit'
  return info.kind as RuleLabel
}

/** The key of ruleKinds' counts for each label. */
const KIND_KEYS: Record<RuleLabel, string> = {
  prefix: 'prefixes',
  name: 'names',
  glob: 'globs',
  tag: 'tags',
  allow: 'allow',
  strip_tags: 'stripTags',
  cardinality_limit: 'cardinalityLimits',
}

/** Rules by label and by whether a match only counts (dryRun, or every rule in mode dry-run) or acts. */
export function countRules(
  compiled: { rules: PackedRules; tags: TagRulesData | null },
  mode: Mode,
): Map<RuleLabel, { enforce: number; dryRun: number }> {
  const counts = new Map(RULE_LABELS.map((label) => [label, { enforce: 0, dryRun: 0 }]))
  const count = (label: RuleLabel, dryRun: boolean): void => {
    const c = counts.get(label) as { enforce: number; dryRun: number }
    if (dryRun || mode === 'dry-run') c.dryRun++
    else c.enforce++
  }
  const { rules, tags } = compiled
  for (let i = 0; i < ruleCount(rules); i++) count(kindOf(rules, i), rules.dryRun[i] === 1)
  tags?.info.forEach((info, i) => count(ruleLabel(info), tags.dryRun[i] === 1))
  return counts
}

/**
 * The rules in force: their stats and the compiled trie. A reload builds a new RuleSet and swaps it in whole,
 * between two datagrams.
 */
export class RuleSet extends RuleStats {
  readonly trie: Trie
  /** The matchers of the tag rules; null when there are none. */
  readonly tagMatcher: TagRules | null
  /** The cardinality limits' admitted values, by limit (TagRules.limitSlot). */
  readonly admission: readonly AdmissionTable[]

  /** Without `admission` (rules made in place, not put in force by a control plane), every limit starts empty. */
  constructor(compiled: RunnableRules & { admission?: readonly AdmissionData[] }, mode: Mode, generation = 0) {
    super(compiled.rules, compiled.tags, mode, generation)
    this.trie = compiled.trie
    this.tagMatcher = compiled.tags === null ? null : new TagRules(compiled.tags, mode)
    const admission = compiled.admission ?? admissionFor(compiled.tags, null, null)
    this.admission = admission.map((data) => new AdmissionTable(data))
  }

  /** Compiles on the calling thread; for rules already in memory. */
  static fromRules(rules: FilterRules, mode: Mode): RuleSet {
    const compiled = compileRules(rules)
    return new RuleSet({ ...compiled, trie: new Trie(compiled.trie) }, mode)
  }

  static fromBlocklist(blocklist: Blocklist, mode: Mode): RuleSet {
    return RuleSet.fromRules({ blocklist, ...NO_TAG_RULES }, mode)
  }
}
