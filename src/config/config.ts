import type { LogLevel } from '../telemetry/logger.ts'
import type { ConfigProblem } from './errors.ts'
import {
  DEFAULT_CARDINALITY_WINDOW_MS,
  type Allowlist,
  type Blocklist,
  type CardinalityRules,
  type Limits,
  type StripRule,
} from '../match/rules.ts'
import type { Mode } from '../match/rule-set.ts'
import type { ReceiveMode } from '../receive/listener.ts'

export interface Endpoint {
  host: string
  port: number
}

/** A validated configuration, every default filled in. */
export interface Config {
  /** The file it came from, as given. */
  file: string
  /** `yaml` (our filter.yaml) or `rust-json` (statsd-filter-proxy-rs' config, accepted unchanged). */
  format: 'yaml' | 'rust-json'
  listen: Endpoint
  forward: Endpoint
  mode: Mode
  blocklist: Required<Blocklist>
  /** null = every metric name is allowed. */
  allowlist: Allowlist | null
  stripTags: StripRule[]
  limits: Limits
  cardinality: CardinalityRules
  /** GET /cardinality: the names with the most series, tracked in fixed memory; null when disabled. */
  cardinalityView: { trackedNames: number; windowMs: number } | null
  /** Largest datagram sent; null = chosen by the forward address (8192 on loopback, 1432 otherwise). */
  maxPacketSize: number | null
  recvBufferSize: number
  /** SO_SNDBUF of the forward socket; null = the kernel's default. */
  sendBufferSize: number | null
  log: { level: LogLevel }
  /** The HTTP endpoint for probes, Prometheus, /rules and /top; null when disabled. */
  admin: Endpoint | null
  /** The proxy's own counters sent to the forward target with hot-shots; null when disabled. */
  selfMetrics: { prefix: string; intervalMs: number } | null
  /** Per-rule hit counts and the top-talkers sketch; off only to measure what they cost. */
  insights: boolean
  /** Processes sharing the listen socket; `auto` = one per CPU the container may use. */
  workers: number | 'auto'
  /** How the listen socket is read: `batch` (recvmmsg on a self-pacing tick) or `dgram` (one callback per datagram). */
  receive: { mode: ReceiveMode; maxDelayMs: number }
  /** Things worth a warning at start that do not stop it (ignored keys, duplicate rules), in file order. */
  warnings: ConfigProblem[]
}

/** A config without its rules (those are compiled): what a running proxy holds. */
export type Settings = Omit<Config, 'blocklist' | 'allowlist' | 'stripTags' | 'limits' | 'cardinality'>

export const DEFAULTS = {
  listen: { host: '0.0.0.0', port: 8125 },
  // 8126 is the agent's trace port; DogStatsD is moved to 8127 so the proxy can own 8125.
  forward: { host: '127.0.0.1', port: 8127 },
  recvBufferSize: 8 * 1024 * 1024,
  logLevel: 'info' as LogLevel,
  /** The agent's dogstatsd_buffer_size: the largest datagram it reads whole. */
  loopbackPacketSize: 8192,
  admin: { host: '127.0.0.1', port: 8128 },
  selfMetrics: { prefix: 'statsd_filter_proxy', intervalMs: 10_000 },
  /** 1500-byte MTU minus IPv6 (40) and UDP (8) headers, and some room for tunnels: no IP fragmentation. */
  networkPacketSize: 1432,
  /** 5 ms holds ~25 datagrams per read at 5k dgram/s; the agent itself holds packets up to 100 ms. */
  receive: { mode: 'batch' as ReceiveMode, maxDelayMs: 5 },
  cardinality: { windowMs: DEFAULT_CARDINALITY_WINDOW_MS, maxKeys: 1_000, over: 'overflow' as const },
  cardinalityView: { trackedNames: 64, windowMs: 600_000 },
} as const

export const PACKET_SIZE_RANGE = { min: 512, max: 65507 } as const
/** For both socket buffer sizes. */
export const RECV_BUFFER_RANGE = { min: 4096, max: 2 ** 31 - 1 } as const
export const MAX_DELAY_RANGE_MS = { min: 1, max: 100 } as const
export const RECEIVE_MODES: readonly ReceiveMode[] = ['batch', 'dgram']
export const WORKERS_RANGE = { min: 1, max: 64 } as const
/** Every limit: from one byte (or tag) to the largest datagram. */
export const LIMIT_RANGE = { min: 1, max: 65507 } as const
export const CARDINALITY_WINDOW_RANGE_MS = { min: 10_000, max: 86_400_000 } as const
export const VIEW_WINDOW_RANGE_MS = { min: 60_000, max: 86_400_000 } as const
export const VALUES_PER_TAG_RANGE = { min: 1, max: 100_000 } as const
export const MAX_KEYS_RANGE = { min: 1, max: 1_000_000 } as const
export const TRACKED_NAMES_RANGE = { min: 1, max: 1_000 } as const
