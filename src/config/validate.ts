import {
  DEFAULTS,
  MAX_DELAY_RANGE_MS,
  PACKET_SIZE_RANGE,
  RECEIVE_MODES,
  RECV_BUFFER_RANGE,
  WORKERS_RANGE,
  type Config,
  type Endpoint,
} from './config.ts'
import type { Mode } from '../match/rule-set.ts'
import type { RuleSpec } from '../match/rules.ts'
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
  const blocklist = object(c, ['blocklist'], top.blocklist, ['prefixes', 'names']) ?? {}
  const log = object(c, ['log'], top.log, ['level']) ?? {}
  const config: Config = {
    file,
    format: 'yaml',
    listen: endpoint(c, 'listen', top.listen, DEFAULTS.listen, 0),
    forward: endpoint(c, 'forward', top.forward, DEFAULTS.forward, 1),
    mode: oneOf(c, ['mode'], top.mode ?? 'enforce', MODES),
    blocklist: {
      prefixes: ruleList(c, ['blocklist', 'prefixes'], blocklist.prefixes, 'prefix'),
      names: ruleList(c, ['blocklist', 'names'], blocklist.names, 'name'),
    },
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
    blocklist: { prefixes: ruleList(c, ['metric_blocklist'], top.metric_blocklist, null), names: [] },
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

function integer(c: Checker, path: Path, v: unknown, min: number, max: number, fallback: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    c.problem(path, `must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`)
    return fallback
  }
  return v
}

/**
 * A rule list: plain strings, or (where `key` is given) mappings `{ <key>: pattern, dryRun: bool }`.
 * statsd-filter-proxy-rs' list (`key` null) takes strings only.
 */
function ruleList(c: Checker, path: Path, v: unknown, key: 'prefix' | 'name' | null): RuleSpec[] {
  if (v === undefined || v === null) return []
  const expected = key === null ? 'a list of strings' : `a list of strings or { ${key}: ..., dryRun: true|false }`
  if (!Array.isArray(v)) {
    c.problem(path, `must be ${expected}`)
    return []
  }
  const out: RuleSpec[] = []
  const first = new Map<string, number>()
  v.forEach((item: unknown, i) => {
    const at = [...path, i]
    let pattern: unknown
    let dryRun = false
    if (typeof item === 'string') {
      pattern = item
    } else if (key !== null && typeof item === 'object' && item !== null && !Array.isArray(item)) {
      const entry = object(c, at, item, [key, 'dryRun']) ?? {}
      dryRun = boolean(c, [...at, 'dryRun'], entry.dryRun ?? false)
      if (entry[key] === undefined) {
        c.problem(at, `needs the key ${key}`)
        return
      }
      pattern = entry[key]
      at.push(key)
    } else {
      c.problem(
        at,
        `must be ${key === null ? 'a string' : `a string or { ${key}: ..., dryRun: true|false }`} (got ${JSON.stringify(item)})`,
      )
      return
    }
    if (typeof pattern !== 'string') c.problem(at, `must be a string (got ${JSON.stringify(pattern)})`)
    else if (pattern === '') c.problem(at, 'must not be empty (an empty rule would match every metric)')
    else if (/[\n\r]/.test(pattern)) c.problem(at, 'must not contain a line break (no metric name does)')
    else {
      const seen = first.get(pattern)
      if (seen === undefined) first.set(pattern, i)
      else c.warning(at, `duplicate of ${formatIndex(path, seen)}; ignored`)
      out.push({ pattern, dryRun })
    }
  })
  return out
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

/** `1500ms`, `10s`, `1m`, or a number of seconds. */
function duration(c: Checker, path: Path, v: unknown, minMs: number, maxMs: number): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000 }
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(v.trim()) : null
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

/** The largest of ms, s and m that states `ms` as a whole number. */
function formatMs(ms: number): string {
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
