import {
  CARDINALITY_WINDOW_RANGE_MS,
  DEFAULTS,
  LIMIT_RANGE,
  MAX_KEYS_RANGE,
  TRACKED_NAMES_RANGE,
  VALUES_PER_TAG_RANGE,
  VIEW_WINDOW_RANGE_MS,
  MAX_DELAY_RANGE_MS,
  PACKET_SIZE_RANGE,
  RECEIVE_MODES,
  RECV_BUFFER_RANGE,
  WORKERS_RANGE,
  type Config,
  type Endpoint,
} from './config.ts'
import { globProblem } from '../match/glob.ts'
import type { Mode } from '../match/rule-set.ts'
import { NO_TAG_RULES } from '../match/rule-set.ts'
import { PROTECTED_KEYS } from '../match/tag-rules.ts'
import {
  METRIC_TYPES,
  OVER_ACTIONS,
  type Allowlist,
  type CardinalityLimit,
  type CardinalityRules,
  type Limits,
  type MetricType,
  type Selector,
  type StripRule,
  type TagRuleSpec,
} from '../match/rules.ts'
import type { LogLevel } from '../telemetry/logger.ts'

/** A list of strings, not the logger: the compile worker thread validates without loading pino. */
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export type Path = readonly (string | number)[]

/** Where validation reports; the loader knows how to turn a key path into a line and column. */
export interface Checker {
  /** Something that stops the config from loading. */
  problem(path: Path, message: string, atKey?: boolean): void
  /** Something worth saying that does not (an ignored key, a duplicate rule). */
  warning(path: Path, message: string): void
}

const TOP_KEYS = [
  'listen',
  'forward',
  'mode',
  'blocklist',
  'allowlist',
  'stripTags',
  'limits',
  'cardinality',
  'maxPacketSize',
  'recvBufferSize',
  'sendBufferSize',
  'log',
  'admin',
  'selfMetrics',
  'insights',
  'workers',
  'receive',
]
const MODES: readonly Mode[] = ['enforce', 'dry-run']

/** filter.yaml: every key optional, unknown keys are errors (a typo must not silently disable a rule). */
export function validateYaml(root: unknown, c: Checker, file: string): Config {
  const top = object(c, [], root, TOP_KEYS) ?? {}
  const blocklist = object(c, ['blocklist'], top.blocklist, ['prefixes', 'names', 'globs', 'tags']) ?? {}
  const log = object(c, ['log'], top.log, ['level']) ?? {}
  const card = object(c, ['cardinality'], top.cardinality, ['view', 'window', 'limits']) ?? {}
  const config: Config = {
    file,
    format: 'yaml',
    listen: endpoint(c, 'listen', top.listen, DEFAULTS.listen, 0),
    forward: endpoint(c, 'forward', top.forward, DEFAULTS.forward, 1),
    mode: oneOf(c, ['mode'], top.mode ?? 'enforce', MODES),
    blocklist: {
      prefixes: ruleList(c, ['blocklist', 'prefixes'], blocklist.prefixes, 'prefix'),
      names: ruleList(c, ['blocklist', 'names'], blocklist.names, 'name'),
      globs: ruleList(c, ['blocklist', 'globs'], blocklist.globs, 'glob'),
      tags: ruleList(c, ['blocklist', 'tags'], blocklist.tags, 'tag'),
    },
    allowlist: allowlist(c, top.allowlist),
    stripTags: stripTags(c, top.stripTags),
    limits: limits(c, top.limits),
    cardinality: cardinality(c, card),
    cardinalityView: cardinalityView(c, card.view),
    maxPacketSize:
      top.maxPacketSize == null
        ? null
        : integer(c, ['maxPacketSize'], top.maxPacketSize, PACKET_SIZE_RANGE.min, PACKET_SIZE_RANGE.max, 0),
    recvBufferSize: integer(
      c,
      ['recvBufferSize'],
      top.recvBufferSize ?? DEFAULTS.recvBufferSize,
      RECV_BUFFER_RANGE.min,
      RECV_BUFFER_RANGE.max,
      0,
    ),
    sendBufferSize:
      top.sendBufferSize == null
        ? null
        : integer(c, ['sendBufferSize'], top.sendBufferSize, RECV_BUFFER_RANGE.min, RECV_BUFFER_RANGE.max, 0),
    log: { level: oneOf(c, ['log', 'level'], log.level ?? DEFAULTS.logLevel, LOG_LEVELS) },
    admin: admin(c, top.admin),
    selfMetrics: selfMetrics(c, top.selfMetrics),
    insights: boolean(c, ['insights'], top.insights ?? true),
    workers: workers(c, top.workers ?? 1),
    receive: receive(c, top.receive),
    warnings: [],
  }
  if (config.receive.mode === 'dgram' && typeof config.workers === 'number' && config.workers > 1) {
    c.problem(['workers'], "must be 1 with receive.mode dgram (Node's dgram socket is read by one thread only)")
  }
  return config
}

export const RUST_KEYS = [
  'listen_host',
  'listen_port',
  'target_host',
  'target_port',
  'metric_blocklist',
  'multi_thread',
]

/** statsd-filter-proxy-rs' JSON config, so its users can swap the image without touching their ConfigMap. */
export function validateRustJson(root: unknown, c: Checker, file: string): Config {
  const top = object(c, [], root, RUST_KEYS) ?? {}
  // Its multi-threaded runtime uses every core: here that is one reader thread per core.
  const multiThread = top.multi_thread === undefined ? false : boolean(c, ['multi_thread'], top.multi_thread)
  return {
    file,
    format: 'rust-json',
    listen: {
      host: host(c, ['listen_host'], top.listen_host ?? DEFAULTS.listen.host),
      port: integer(c, ['listen_port'], top.listen_port ?? DEFAULTS.listen.port, 0, 65535, DEFAULTS.listen.port),
    },
    forward: {
      host: host(c, ['target_host'], top.target_host ?? DEFAULTS.forward.host),
      port: integer(c, ['target_port'], top.target_port ?? DEFAULTS.forward.port, 1, 65535, DEFAULTS.forward.port),
    },
    mode: 'enforce',
    blocklist: {
      prefixes: ruleList(c, ['metric_blocklist'], top.metric_blocklist, null),
      names: [],
      globs: [],
      tags: [],
    },
    ...NO_TAG_RULES,
    stripTags: [],
    cardinalityView: { ...DEFAULTS.cardinalityView },
    maxPacketSize: null,
    recvBufferSize: DEFAULTS.recvBufferSize,
    sendBufferSize: null,
    log: { level: DEFAULTS.logLevel },
    admin: { ...DEFAULTS.admin },
    selfMetrics: null,
    insights: true,
    workers: multiThread ? 'auto' : 1,
    receive: { mode: DEFAULTS.receive.mode, maxDelayMs: DEFAULTS.receive.maxDelayMs },
    warnings: [],
  }
}

function object(c: Checker, path: Path, v: unknown, keys: readonly string[]): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'object' || Array.isArray(v)) {
    c.problem(path, `must be a mapping with the keys ${keys.join(', ')}`)
    return undefined
  }
  const obj = v as Record<string, unknown>
  for (const key of Object.keys(obj)) {
    if (!keys.includes(key)) c.problem([...path, key], `unknown key (expected one of: ${keys.join(', ')})`, true)
  }
  return obj
}

function endpoint(c: Checker, key: string, v: unknown, fallback: Endpoint, minPort: number): Endpoint {
  const obj = object(c, [key], v, ['host', 'port']) ?? {}
  return {
    host: host(c, [key, 'host'], obj.host ?? fallback.host),
    port: integer(c, [key, 'port'], obj.port ?? fallback.port, minPort, 65535, fallback.port),
  }
}

function host(c: Checker, path: Path, v: unknown): string {
  if (typeof v !== 'string' || v.trim() === '') {
    c.problem(path, 'must be a non-empty host name or IP address')
    return ''
  }
  return v
}

/** An optional integer in `range`, `fallback` when absent (and when invalid, besides the problem). */
function inRange(c: Checker, path: Path, v: unknown, range: { min: number; max: number }, fallback: number): number {
  return integer(c, path, v ?? fallback, range.min, range.max, fallback)
}

function integer(c: Checker, path: Path, v: unknown, min: number, max: number, fallback: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    c.problem(path, `must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`)
    return fallback
  }
  return v
}

type RuleKey = 'prefix' | 'name' | 'glob' | 'tag'

/**
 * A rule list: plain strings, or (where `key` is given) mappings `{ <key>: pattern, dryRun: bool }`, which for
 * prefixes, names and globs may add a tag condition `tag: k:v | k`. statsd-filter-proxy-rs' list (`key` null)
 * takes strings only.
 */
function ruleList(c: Checker, path: Path, v: unknown, key: RuleKey | null): TagRuleSpec[] {
  if (v === undefined || v === null) return []
  const keys = key === null ? [] : key === 'tag' ? [key, 'dryRun'] : [key, 'dryRun', 'tag']
  const options = key === 'tag' ? '' : ', tag: k:v | k'
  const shape = key === null ? 'a string' : `a string or { ${key}: ..., dryRun: true|false${options} }`
  if (!Array.isArray(v)) {
    c.problem(
      path,
      `must be a list of strings${key === null ? '' : ` or { ${key}: ..., dryRun: true|false${options} }`}`,
    )
    return []
  }
  const out: TagRuleSpec[] = []
  const first = new Map<string, number>()
  v.forEach((item: unknown, i) => {
    const at = [...path, i]
    let pattern: unknown
    let dryRun = false
    let tag: string | undefined
    if (typeof item === 'string') {
      pattern = item
    } else if (key !== null && typeof item === 'object' && item !== null && !Array.isArray(item)) {
      const entry = object(c, at, item, keys) ?? {}
      dryRun = boolean(c, [...at, 'dryRun'], entry.dryRun ?? false)
      if (entry.tag !== undefined && key !== 'tag') tag = tagValue(c, [...at, 'tag'], entry.tag) ?? undefined
      if (entry[key] === undefined) {
        c.problem(at, `needs the key ${key}`)
        return
      }
      pattern = entry[key]
      at.push(key)
    } else {
      c.problem(at, `must be ${shape} (got ${JSON.stringify(item)})`)
      return
    }
    if (key === 'tag') {
      pattern = tagValue(c, at, pattern)
      if (pattern === null) return
    } else if (!validPattern(c, at, pattern, key === 'glob')) return
    const patternText = pattern as string
    if (key !== 'glob' && key !== 'tag') warnAggregate(c, at, patternText, key === 'name')
    const identity = tag === undefined ? patternText : `${patternText}\n${tag}`
    const seen = first.get(identity)
    if (seen === undefined) first.set(identity, i)
    else c.warning(at, `duplicate of ${formatIndex(path, seen)}; ignored`)
    out.push(tag === undefined ? { pattern: patternText, dryRun } : { pattern: patternText, dryRun, tag })
  })
  return out
}

/** A metric-name pattern (a prefix, a name, or with `glob` a glob). */
function validPattern(c: Checker, path: Path, v: unknown, glob: boolean): v is string {
  if (typeof v !== 'string') c.problem(path, `must be a string (got ${JSON.stringify(v)})`)
  else if (v === '') c.problem(path, 'must not be empty (an empty rule would match every metric)')
  else if (/[\n\r]/.test(v)) c.problem(path, 'must not contain a line break (no metric name does)')
  else if (glob && globProblem(v) !== null) c.problem(path, `is not a valid glob: ${globProblem(v)}`)
  else {
    if (glob) warnAggregate(c, path, v, true)
    return true
  }
  return false
}

/** The agent's histogram and timer aggregates: names the agent makes, which never reach it (or us) as lines. */
const AGGREGATE_SUFFIXES = ['.avg', '.max', '.median', '.95percentile']

function warnAggregate(c: Checker, path: Path, pattern: string, wholeName: boolean): void {
  const suffix = AGGREGATE_SUFFIXES.find((s) => pattern.endsWith(s))
  if (wholeName && suffix !== undefined)
    c.warning(
      path,
      `ends in ${suffix}, an aggregate the agent computes from a histogram or timer: no line the proxy sees has this name, so the rule never matches (name the metric itself)`,
    )
}

/** A tag (`k:v`) or a key (`k`): a non-empty key, no `,` or `|` (they separate tags and fields). */
function tagValue(c: Checker, path: Path, v: unknown): string | null {
  if (typeof v !== 'string' || v === '')
    c.problem(path, `must be a tag (key:value) or a key (got ${JSON.stringify(v)})`)
  else if (v.startsWith(':')) c.problem(path, 'must not have an empty key (nothing before the first :)')
  else if (/[,|\n\r]/.test(v))
    c.problem(path, 'must not contain "," or "|" (they separate tags and fields) or a line break')
  else {
    warnInternal(c, path, v.split(':')[0])
    return v
  }
  return null
}

/** A tag key a strip rule names: non-empty, no `:` (a key ends at the first one), `,` or `|`. */
function keyList(c: Checker, path: Path, v: unknown): string[] {
  if (!Array.isArray(v) || v.length === 0) {
    c.problem(path, 'must be a non-empty list of tag keys')
    return []
  }
  const out: string[] = []
  v.forEach((key: unknown, i) => {
    const at = [...path, i]
    if (typeof key !== 'string' || key === '') c.problem(at, `must be a non-empty tag key (got ${JSON.stringify(key)})`)
    else if (/[:,|\n\r]/.test(key))
      c.problem(
        at,
        'must be a tag key alone, without ":" (a key ends at the first one), "," or "|" (they separate tags and fields) or a line break',
      )
    else {
      if (out.includes(key)) c.warning(at, 'duplicate key; ignored')
      warnInternal(c, at, key)
      out.push(key)
    }
  })
  return out
}

function warnInternal(c: Checker, path: Path, key: string): void {
  if (key.startsWith('dd.internal.'))
    c.warning(
      path,
      `names ${key}, an instruction to the agent (origin detection, cardinality), not a tag of the series: the agent consumes it before series are counted, so a rule on it saves nothing; keepOnly never removes ${AGENT_INSTRUCTION_KEYS}`,
    )
}

/** The dd.internal. keys keepOnly keeps unlisted (not every dd.internal. key: a warning must not say it of others). */
const AGENT_INSTRUCTION_KEYS = PROTECTED_KEYS.filter((k) => k.startsWith('dd.internal.'))
  .join(', ')
  .replace(/, ([^,]*)$/, ' or $1')

function strings(c: Checker, path: Path, v: unknown, glob: boolean, wholeName: boolean): string[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) {
    c.problem(path, 'must be a list of strings')
    return []
  }
  const out: string[] = []
  v.forEach((item: unknown, i) => {
    const at = [...path, i]
    if (!validPattern(c, at, item, glob)) return
    if (!glob) warnAggregate(c, at, item, wholeName)
    out.push(item)
  })
  return out
}

const SELECTOR_KEYS = ['prefixes', 'names', 'globs']

/** Which metric names a rule applies to: at least one prefix, name or glob. */
function selector(c: Checker, path: Path, obj: Record<string, unknown>): Selector {
  const result = {
    prefixes: strings(c, [...path, 'prefixes'], obj.prefixes, false, false),
    names: strings(c, [...path, 'names'], obj.names, false, true),
    globs: strings(c, [...path, 'globs'], obj.globs, true, true),
  }
  // Entries given but each invalid have their own problems: this one is for a selector that lists nothing.
  const listed = SELECTOR_KEYS.some((key) => obj[key] != null && !(Array.isArray(obj[key]) && obj[key].length === 0))
  if (!listed) c.problem(path, 'must list at least one prefix, name or glob')
  return result
}

/** A rule's `metrics` selector (stripTags, cardinality limits): required, a mapping, at least one entry. */
function metricsOf(c: Checker, rulePath: Path, v: unknown): Selector {
  if (v == null) c.problem(rulePath, 'needs the key metrics (which metric names)')
  const obj = object(c, [...rulePath, 'metrics'], v, SELECTOR_KEYS)
  return obj === undefined ? { prefixes: [], names: [], globs: [] } : selector(c, [...rulePath, 'metrics'], obj)
}

function allowlist(c: Checker, v: unknown): Allowlist | null {
  if (v === undefined || v === null) return null
  const obj = object(c, ['allowlist'], v, [...SELECTOR_KEYS, 'dryRun'])
  // Not a mapping: that one problem says it all (the selector would add that it lists nothing).
  if (obj === undefined) return null
  return { ...selector(c, ['allowlist'], obj), dryRun: boolean(c, ['allowlist', 'dryRun'], obj.dryRun ?? false) }
}

const STRIP_KEYS = ['metrics', 'keys', 'keepOnly', 'dryRun', 'types']

function stripTags(c: Checker, v: unknown): StripRule[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) {
    c.problem(['stripTags'], 'must be a list of rules { metrics, keys | keepOnly, dryRun, types }')
    return []
  }
  return v.flatMap((item: unknown, i): StripRule[] => {
    const at = ['stripTags', i]
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      c.problem(at, `must be a mapping with the keys ${STRIP_KEYS.join(', ')}`)
      return []
    }
    const obj = object(c, at, item, STRIP_KEYS) ?? {}
    const metrics = metricsOf(c, at, obj.metrics)
    const hasKeys = obj.keys !== undefined
    const hasKeepOnly = obj.keepOnly !== undefined
    if (hasKeys && hasKeepOnly)
      c.problem(at, 'has both keys and keepOnly: give one (keys removes the listed keys, keepOnly every other key)')
    else if (!hasKeys && !hasKeepOnly) c.problem(at, 'needs keys (keys to remove) or keepOnly (keys to keep)')
    return [
      {
        metrics,
        keys: hasKeys ? keyList(c, [...at, 'keys'], obj.keys) : null,
        keepOnly: hasKeepOnly && !hasKeys ? keyList(c, [...at, 'keepOnly'], obj.keepOnly) : null,
        dryRun: boolean(c, [...at, 'dryRun'], obj.dryRun ?? false),
        types: obj.types === undefined ? null : types(c, [...at, 'types'], obj.types),
      },
    ]
  })
}

function types(c: Checker, path: Path, v: unknown): MetricType[] {
  const expected = `a non-empty list of metric types (${METRIC_TYPES.join(', ')})`
  if (!Array.isArray(v) || v.length === 0) {
    c.problem(path, `must be ${expected}`)
    return []
  }
  const out: MetricType[] = []
  v.forEach((type: unknown, i) => {
    if (!(METRIC_TYPES as readonly unknown[]).includes(type))
      c.problem([...path, i], `must be one of ${METRIC_TYPES.join(', ')} (got ${JSON.stringify(type)})`)
    else if (!out.includes(type as MetricType)) out.push(type as MetricType)
  })
  return out
}

function limits(c: Checker, v: unknown): Limits {
  const obj = object(c, ['limits'], v, ['maxNameLength', 'maxTags', 'maxTagLength', 'dryRun']) ?? {}
  const limit = (key: string): number | null =>
    obj[key] == null ? null : integer(c, ['limits', key], obj[key], LIMIT_RANGE.min, LIMIT_RANGE.max, LIMIT_RANGE.max)
  return {
    maxNameLength: limit('maxNameLength'),
    maxTags: limit('maxTags'),
    maxTagLength: limit('maxTagLength'),
    dryRun: boolean(c, ['limits', 'dryRun'], obj.dryRun ?? false),
  }
}

const LIMIT_KEYS = ['metrics', 'maxValuesPerTag', 'exempt', 'over', 'dryRun', 'maxKeys']

function cardinality(c: Checker, obj: Record<string, unknown>): CardinalityRules {
  const windowMs =
    obj.window == null
      ? DEFAULTS.cardinality.windowMs
      : duration(
          c,
          ['cardinality', 'window'],
          obj.window,
          CARDINALITY_WINDOW_RANGE_MS.min,
          CARDINALITY_WINDOW_RANGE_MS.max,
        )
  if (obj.limits == null) return { windowMs, limits: [] }
  if (!Array.isArray(obj.limits)) {
    c.problem(['cardinality', 'limits'], `must be a list of limits { ${LIMIT_KEYS.join(', ')} }`)
    return { windowMs, limits: [] }
  }
  const limits = obj.limits.flatMap((item: unknown, i): CardinalityLimit[] => {
    const at = ['cardinality', 'limits', i]
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      c.problem(at, `must be a mapping with the keys ${LIMIT_KEYS.join(', ')}`)
      return []
    }
    const rule = object(c, at, item, LIMIT_KEYS) ?? {}
    const metrics = metricsOf(c, at, rule.metrics)
    if (rule.maxValuesPerTag == null) c.problem(at, 'needs the key maxValuesPerTag (distinct values per tag key)')
    return [
      {
        metrics,
        maxValuesPerTag: inRange(
          c,
          [...at, 'maxValuesPerTag'],
          rule.maxValuesPerTag,
          VALUES_PER_TAG_RANGE,
          VALUES_PER_TAG_RANGE.min,
        ),
        exempt:
          rule.exempt == null || (Array.isArray(rule.exempt) && rule.exempt.length === 0)
            ? []
            : keyList(c, [...at, 'exempt'], rule.exempt),
        over: oneOf(c, [...at, 'over'], rule.over ?? DEFAULTS.cardinality.over, OVER_ACTIONS),
        dryRun: boolean(c, [...at, 'dryRun'], rule.dryRun ?? false),
        maxKeys: inRange(c, [...at, 'maxKeys'], rule.maxKeys, MAX_KEYS_RANGE, DEFAULTS.cardinality.maxKeys),
      },
    ]
  })
  return { windowMs, limits }
}

function cardinalityView(c: Checker, v: unknown): Config['cardinalityView'] {
  const path = ['cardinality', 'view']
  const obj = object(c, path, v, ['enabled', 'names', 'window']) ?? {}
  if (!boolean(c, [...path, 'enabled'], obj.enabled ?? true)) return null
  return {
    trackedNames: inRange(c, [...path, 'names'], obj.names, TRACKED_NAMES_RANGE, DEFAULTS.cardinalityView.trackedNames),
    windowMs:
      obj.window == null
        ? DEFAULTS.cardinalityView.windowMs
        : duration(c, [...path, 'window'], obj.window, VIEW_WINDOW_RANGE_MS.min, VIEW_WINDOW_RANGE_MS.max),
  }
}

function boolean(c: Checker, path: Path, v: unknown): boolean {
  if (typeof v !== 'boolean') {
    c.problem(path, 'must be true or false')
    return false
  }
  return v
}

function oneOf<T extends string>(c: Checker, path: Path, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    c.problem(path, `must be one of ${allowed.join(', ')}`)
    return allowed[0]
  }
  return v as T
}

function admin(c: Checker, v: unknown): Endpoint | null {
  const obj = object(c, ['admin'], v, ['enabled', 'host', 'port']) ?? {}
  if (!boolean(c, ['admin', 'enabled'], obj.enabled ?? true)) return null
  return {
    host: host(c, ['admin', 'host'], obj.host ?? DEFAULTS.admin.host),
    port: integer(c, ['admin', 'port'], obj.port ?? DEFAULTS.admin.port, 0, 65535, DEFAULTS.admin.port),
  }
}

function selfMetrics(c: Checker, v: unknown): Config['selfMetrics'] {
  if (v === undefined || v === null) return null
  const obj = object(c, ['selfMetrics'], v, ['enabled', 'prefix', 'interval']) ?? {}
  if (!boolean(c, ['selfMetrics', 'enabled'], obj.enabled ?? true)) return null
  const prefix = obj.prefix ?? DEFAULTS.selfMetrics.prefix
  if (typeof prefix !== 'string' || !/^[A-Za-z][A-Za-z0-9_.]*$/.test(prefix)) {
    c.problem(['selfMetrics', 'prefix'], 'must be a metric name prefix (letters, digits, _ and .)')
  }
  return {
    prefix: String(prefix),
    intervalMs: duration(c, ['selfMetrics', 'interval'], obj.interval ?? '10s', 1000, 3_600_000),
  }
}

function receive(c: Checker, v: unknown): Config['receive'] {
  const obj = object(c, ['receive'], v, ['mode', 'maxDelay']) ?? {}
  return {
    mode: oneOf(c, ['receive', 'mode'], obj.mode ?? DEFAULTS.receive.mode, RECEIVE_MODES),
    maxDelayMs: duration(
      c,
      ['receive', 'maxDelay'],
      obj.maxDelay ?? `${DEFAULTS.receive.maxDelayMs}ms`,
      MAX_DELAY_RANGE_MS.min,
      MAX_DELAY_RANGE_MS.max,
    ),
  }
}

/** `1500ms`, `10s`, `1m`, `1h`, or a number of seconds. */
function duration(c: Checker, path: Path, v: unknown, minMs: number, maxMs: number): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim()) : null
  const ms = typeof v === 'number' ? v * 1000 : m !== null ? Number(m[1]) * units[m[2]] : NaN
  if (!(ms >= minMs && ms <= maxMs)) {
    c.problem(
      path,
      `must be a duration from ${formatMs(minMs)} to ${formatMs(maxMs)}, e.g. ${minMs < 1000 ? '5ms or 2.5ms' : '10s, 1m or 1500ms'} (got ${JSON.stringify(v)})`,
    )
    return minMs
  }
  return ms
}

/** The largest of ms, s, m and h that states `ms` as a whole number. */
function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0) return `${ms / 60_000}m`
  if (ms % 1000 === 0) return `${ms / 1000}s`
  return `${ms}ms`
}

function workers(c: Checker, v: unknown): Config['workers'] {
  if (
    v === 'auto' ||
    (typeof v === 'number' && Number.isInteger(v) && v >= WORKERS_RANGE.min && v <= WORKERS_RANGE.max)
  )
    return v
  c.problem(
    ['workers'],
    `must be auto or an integer from ${WORKERS_RANGE.min} to ${WORKERS_RANGE.max} (got ${JSON.stringify(v)})`,
  )
  return 1
}

function formatIndex(path: Path, i: number): string {
  return `${String(path[path.length - 1])}[${i}]`
}
