import type { Settings } from '../config/config.ts'
import type { WorkerStats } from '../data-plane.ts'
import type { PackedRules } from '../match/packed-rules.ts'
import { countRules } from '../match/rule-set.ts'
import type { TagRulesData } from '../match/tag-rules.ts'
import type { ReloadStatus } from '../reload/reloader.ts'
import { METRIC_TYPE_SLOTS } from '../scan/tags.ts'
import type { CardinalityView } from '../telemetry/cardinality.ts'
import { Counters } from '../telemetry/counters.ts'
import type { UdpSocketStats } from '../telemetry/kernel-drops.ts'
import { Exposition } from './exposition.ts'
import { addProcessMetrics } from './process-metrics.ts'

const METRIC_PREFIX = 'statsd_filter_proxy_'

/** What /metrics reads at scrape time; the hot path never calls into the exposition. */
export interface MetricsSource {
  counters: Counters
  /** The rule table in force (its mode is config().mode). */
  rules: () => { rules: PackedRules; tags: TagRulesData | null }
  config: () => Settings
  reload: ReloadStatus
  recvBuffer: { requested: number; granted: number }
  /** The listen socket as the kernel sees it (last periodic reading); null off Linux. */
  kernel: () => UdpSocketStats | null
  sendPool: () => { size: number; inUse: number }
  /** What libuv queues in user space when the forward socket's kernel buffer is full. */
  sendQueue: () => { count: number; bytes: number }
  workers: () => WorkerStats
  /** The cardinality view as of the last refresh before a scrape; null when it is off. */
  cardinality: () => CardinalityView | null
}

/** Every metric /metrics exposes, each read from `source` (the data path's plain counters) at scrape time. */
export function createMetrics(source: MetricsSource): Exposition {
  const exposition = new Exposition()
  addProcessMetrics(exposition)
  const { counters: c } = source
  const counter = (name: string, help: string, read: () => number): void =>
    exposition.counter(METRIC_PREFIX + name, help, read)
  /** A gauge with one label, read from `read()`: label value -> value. */
  const labelled = (name: string, help: string, label: string, read: () => Record<string, number>): void =>
    exposition.gauge(METRIC_PREFIX + name, help, () =>
      Object.entries(read()).map(([value, n]) => [{ [label]: value }, n]),
    )
  counter('datagrams_received_total', 'Datagrams read from the listen socket.', () => c.datagramsIn)
  counter('bytes_received_total', 'Bytes read from the listen socket.', () => c.bytesIn)
  counter('lines_received_total', 'Non-empty lines received.', () => c.linesIn)
  counter(
    'lines_forwarded_total',
    'Lines handed to the forward socket (dry-run matches included).',
    () => c.linesForwarded,
  )
  counter(
    'lines_would_block_total',
    'Lines a dry-run block rule (or mode: dry-run) matched; they went on, and a later step may still drop them.',
    () => c.linesWouldBlock,
  )
  exposition.counter(
    METRIC_PREFIX + 'lines_would_drop_total',
    'Lines a dry-run allowlist (not_allowed) or dry-run limits (over_limit) let go on; a later step may still drop them.',
    () => [
      [{ reason: 'not_allowed' }, c.linesWouldNotAllow],
      [{ reason: 'over_limit' }, c.linesWouldOverLimit],
    ],
  )
  exposition.counter(
    METRIC_PREFIX + 'lines_tags_stripped_total',
    'Forwarded lines from which stripTags removed at least one tag, by metric type.',
    () => METRIC_TYPE_SLOTS.map((type, i) => [{ type }, c.values[Counters.strippedByTypeSlot + i]] as const),
  )
  counter('tags_stripped_total', 'Tags stripTags removed from forwarded lines.', () => c.tagsStripped)
  counter(
    'lines_tags_would_strip_total',
    'Forwarded lines with tags that only dry-run stripTags rules remove (those tags are kept).',
    () => c.linesTagsWouldStrip,
  )
  counter('tags_would_strip_total', 'Tags that only dry-run stripTags rules remove.', () => c.tagsWouldStrip)
  exposition.counter(
    METRIC_PREFIX + 'lines_cardinality_limited_total',
    'Lines a cardinality limit acted on, by action: overflow and drop_tag lines were forwarded, drop_line ones dropped.',
    () => [
      [{ action: 'overflow' }, c.linesCardinalityOverflow],
      [{ action: 'drop_tag' }, c.linesCardinalityDropTag],
      [{ action: 'drop_line' }, c.linesCardinalityDropped],
    ],
  )
  exposition.counter(
    METRIC_PREFIX + 'lines_cardinality_would_limit_total',
    'Lines a dry-run cardinality limit would have acted on, by action (forwarded unchanged).',
    () => [
      [{ action: 'overflow' }, c.linesCardinalityWouldOverflow],
      [{ action: 'drop_tag' }, c.linesCardinalityWouldDropTag],
      [{ action: 'drop_line' }, c.linesCardinalityWouldDropLine],
    ],
  )
  counter(
    'tags_cardinality_limited_total',
    'Tags over an enforced cardinality limit (overflowed, dropped, or on a dropped line).',
    () => c.tagsCardinalityLimited,
  )
  counter(
    'cardinality_keys_full_total',
    "Values of a new (metric name, tag key) pair that found a limit's maxKeys reached: treated as over the limit.",
    () => c.cardinalityKeysFull,
  )
  labelled(
    'cardinality_series',
    'Estimated distinct series of the names GET /cardinality tracks, together: since start and in its window.',
    'period',
    (): Record<string, number> => {
      const view = source.cardinality()
      return view === null ? {} : { since_start: view.totalSeries.sinceStart, window: view.totalSeries.window }
    },
  )
  exposition.gauge(
    METRIC_PREFIX + 'cardinality_tracked_names',
    'Metric names GET /cardinality tracks (each with its sketches, in fixed memory).',
    () => {
      const view = source.cardinality()
      return view === null ? [] : [[{}, view.trackedNames]]
    },
  )
  counter('lines_oversize_total', 'Forwarded lines longer than maxPacketSize, each sent alone.', () => c.linesOversize)
  counter('datagrams_sent_total', 'Datagrams sent to the forward target.', () => c.datagramsOut)
  counter('bytes_sent_total', 'Bytes sent to the forward target.', () => c.bytesOut)
  counter('send_errors_total', 'Failed sends and asynchronous socket errors (e.g. ECONNREFUSED).', () => c.sendErrors)
  exposition.counter(
    METRIC_PREFIX + 'lines_dropped_total',
    'Lines not delivered, by reason. send_error lines were also counted as forwarded.',
    () => [
      [{ reason: 'blocked' }, c.linesBlocked],
      [{ reason: 'not_allowed' }, c.linesNotAllowed],
      [{ reason: 'over_limit' }, c.linesOverLimit],
      [{ reason: 'cardinality_limit' }, c.linesCardinalityDropped],
      [{ reason: 'malformed' }, c.linesMalformed],
      [{ reason: 'backpressure' }, c.linesDroppedBackpressure],
      [{ reason: 'send_error' }, c.linesSendFailed],
    ],
  )
  exposition.gauge(
    METRIC_PREFIX + 'rules',
    'Rules loaded, by kind and by whether a match drops (enforce) or only counts (dry_run).',
    () =>
      [...countRules(source.rules(), source.config().mode)].flatMap(([kind, n]) => [
        [{ kind, action: 'enforce' }, n.enforce] as const,
        [{ kind, action: 'dry_run' }, n.dryRun] as const,
      ]),
  )
  exposition.gauge(METRIC_PREFIX + 'config_info', 'The config in force: file hash, mode and format (value 1).', () => {
    const config = source.config()
    return [[{ hash: source.reload.hash ?? 'none', mode: config.mode, format: config.format }, 1]]
  })
  exposition.counter(METRIC_PREFIX + 'config_reloads_total', 'Config reloads, by result.', () => [
    [{ result: 'success' }, source.reload.successes],
    [{ result: 'failure' }, source.reload.failures],
  ])
  exposition.gauge(
    METRIC_PREFIX + 'config_last_reload_timestamp_seconds',
    'When the last reload attempt ended (0: none yet).',
    () => (source.reload.lastAttemptMs ?? 0) / 1000,
  )
  exposition.gauge(
    METRIC_PREFIX + 'config_last_reload_success',
    '1 if the last reload attempt succeeded, 0 if it failed (1 before any).',
    () => (source.reload.lastOk === false ? 0 : 1),
  )
  labelled(
    'receive_buffer_bytes',
    'SO_RCVBUF of the listen socket: requested in the config and granted by the kernel.',
    'kind',
    () => ({
      requested: source.recvBuffer.requested,
      granted: source.recvBuffer.granted,
    }),
  )
  counter(
    'kernel_receive_drops_total',
    'Datagrams the kernel dropped for the listen socket before the proxy read them (receive buffer full).',
    () => source.kernel()?.drops ?? 0,
  )
  exposition.gauge(
    METRIC_PREFIX + 'receive_queue_bytes',
    "Bytes waiting in the listen socket's kernel receive queue.",
    () => source.kernel()?.rxQueue ?? 0,
  )
  labelled(
    'send_pool_buffers',
    'Output buffers: the pool size and how many hold datagrams being assembled or in flight.',
    'state',
    () => {
      const pool = source.sendPool()
      return { total: pool.size, in_use: pool.inUse }
    },
  )
  labelled(
    'send_queue',
    "Sends queued in user space because the forward socket's kernel buffer was full (bounded by the pool).",
    'unit',
    () => {
      const queue = source.sendQueue()
      return { datagrams: queue.count, bytes: queue.bytes }
    },
  )
  labelled('workers', 'Readers of the listen socket (threads): as configured, and running now.', 'state', () => {
    const workers = source.workers()
    return { configured: workers.configured, running: workers.running }
  })
  exposition.counter(
    METRIC_PREFIX + 'worker_lines_received_total',
    'Lines received per worker: how evenly the kernel spreads the traffic.',
    () => source.workers().linesIn.map((lines, worker) => [{ worker: String(worker) }, lines] as const),
  )
  return exposition
}
