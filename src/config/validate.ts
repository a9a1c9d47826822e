import { DEFAULTS, PACKET_SIZE_RANGE, RECV_BUFFER_RANGE, type Config, type Endpoint } from './config.ts'
import { LOG_LEVELS, type LogLevel } from '../telemetry/logger.ts'

export type Path = readonly (string | number)[]

/** Where validation reports; the loader knows how to turn a key path into a line and column. */
export interface Checker {
  /** Something that stops the config from loading. */
  problem(path: Path, message: string, atKey?: boolean): void
  /** Something worth saying that does not (an ignored key, a duplicate rule). */
  warning(path: Path, message: string): void
}

const TOP_KEYS = ['listen', 'forward', 'blocklist', 'maxPacketSize', 'recvBufferSize', 'log']

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
    blocklist: {
      prefixes: stringList(c, ['blocklist', 'prefixes'], blocklist.prefixes),
      names: stringList(c, ['blocklist', 'names'], blocklist.names),
    },
    maxPacketSize: top.maxPacketSize == null ? null : integer(c, ['maxPacketSize'], top.maxPacketSize, PACKET_SIZE_RANGE.min, PACKET_SIZE_RANGE.max, 0),
    recvBufferSize: integer(c, ['recvBufferSize'], top.recvBufferSize ?? DEFAULTS.recvBufferSize, RECV_BUFFER_RANGE.min, RECV_BUFFER_RANGE.max, 0),
    log: { level: logLevel(c, ['log', 'level'], log.level ?? DEFAULTS.logLevel) },
    warnings: [],
  }
  return config
}

export const RUST_KEYS = ['listen_host', 'listen_port', 'target_host', 'target_port', 'metric_blocklist', 'multi_thread']

/** statsd-filter-proxy-rs' JSON config, so its users can swap the image without touching their ConfigMap. */
export function validateRustJson(root: unknown, c: Checker, file: string): Config {
  const top = object(c, [], root, RUST_KEYS) ?? {}
  if (top.multi_thread !== undefined && typeof top.multi_thread !== 'boolean') c.problem(['multi_thread'], 'must be true or false')
  else if (top.multi_thread === true) c.warning(['multi_thread'], 'ignored: this proxy filters on one event loop per process')
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
    blocklist: { prefixes: stringList(c, ['metric_blocklist'], top.metric_blocklist), names: [] },
    maxPacketSize: null,
    recvBufferSize: DEFAULTS.recvBufferSize,
    log: { level: DEFAULTS.logLevel },
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

function stringList(c: Checker, path: Path, v: unknown): string[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v)) {
    c.problem(path, 'must be a list of strings')
    return []
  }
  const out: string[] = []
  const first = new Map<string, number>()
  v.forEach((item, i) => {
    if (typeof item !== 'string') c.problem([...path, i], `must be a string (got ${JSON.stringify(item)})`)
    else if (item === '') c.problem([...path, i], 'must not be empty (an empty rule would match every metric)')
    else {
      const seen = first.get(item)
      if (seen === undefined) first.set(item, i)
      else c.warning([...path, i], `duplicate of ${formatIndex(path, seen)}; ignored`)
      out.push(item)
    }
  })
  return out
}

function formatIndex(path: Path, i: number): string {
  return `${String(path[path.length - 1])}[${i}]`
}

function logLevel(c: Checker, path: Path, v: unknown): LogLevel {
  if (typeof v !== 'string' || !(LOG_LEVELS as readonly string[]).includes(v)) {
    c.problem(path, `must be one of ${LOG_LEVELS.join(', ')}`)
    return DEFAULTS.logLevel
  }
  return v as LogLevel
}
