import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { Settings } from '../config/config.ts'
import type { WorkerStats } from '../data-plane.ts'
import type { PackedRules } from '../match/packed-rules.ts'
import { countRules } from '../match/rule-set.ts'
import type { ReloadStatus } from '../reload/reloader.ts'
import type { Counters } from '../telemetry/counters.ts'
import type { UdpSocketStats } from '../telemetry/kernel-drops.ts'

const METRIC_PREFIX = 'statsd_filter_proxy_'

/** What /metrics reads at scrape time; the hot path never calls into prom-client. */
export interface MetricsSource {
  counters: Counters
  /** The rule table in force (its mode is config().mode). */
  rules: () => PackedRules
  config: () => Settings
  reload: ReloadStatus
  recvBuffer: { requested: number; granted: number }
  /** The listen socket as the kernel sees it (last periodic reading); null off Linux. */
  kernel: () => UdpSocketStats | null
  sendPool: () => { size: number; inUse: number }
  /** What libuv queues in user space when the forward socket's kernel buffer is full. */
  sendQueue: () => { count: number; bytes: number }
  workers: () => WorkerStats
}

/** A registry whose every data-path metric is filled in by a collect callback from the plain counters. */
export function createMetricsRegistry(source: MetricsSource): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const { counters: c } = source
  const counter = (name: string, help: string, read: () => number): void => {
    new Counter({
      name: METRIC_PREFIX + name,
      help,
      registers: [registry],
      collect() {
        this.reset()
        this.inc(read())
      },
    })
  }
  /** A gauge with one label, set from `read()`: label value -> value. */
  const labelled = (name: string, help: string, label: string, read: () => Record<string, number>): void => {
    new Gauge({
      name: METRIC_PREFIX + name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        for (const [value, n] of Object.entries(read())) this.set({ [label]: value }, n)
      },
    })
  }
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
    'Forwarded lines a dry-run rule (or mode: dry-run) matched.',
    () => c.linesWouldBlock,
  )
  counter('lines_oversize_total', 'Forwarded lines longer than maxPacketSize, each sent alone.', () => c.linesOversize)
  counter('datagrams_sent_total', 'Datagrams sent to the forward target.', () => c.datagramsOut)
  counter('bytes_sent_total', 'Bytes sent to the forward target.', () => c.bytesOut)
  counter('send_errors_total', 'Failed sends and asynchronous socket errors (e.g. ECONNREFUSED).', () => c.sendErrors)
  new Counter({
    name: METRIC_PREFIX + 'lines_dropped_total',
    help: 'Lines not delivered, by reason. send_error lines were also counted as forwarded.',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset()
      this.inc({ reason: 'blocked' }, c.linesBlocked)
      this.inc({ reason: 'malformed' }, c.linesMalformed)
      this.inc({ reason: 'backpressure' }, c.linesDroppedBackpressure)
      this.inc({ reason: 'send_error' }, c.linesSendFailed)
    },
  })
  new Gauge({
    name: METRIC_PREFIX + 'rules',
    help: 'Rules loaded, by kind and by whether a match drops (enforce) or only counts (dry_run).',
    labelNames: ['kind', 'action'],
    registers: [registry],
    collect() {
      const rules = source.rules()
      const { mode } = source.config()
      this.reset()
      for (const kind of ['prefix', 'name'] as const) {
        this.set({ kind, action: 'enforce' }, countRules(rules, mode, kind, false))
        this.set({ kind, action: 'dry_run' }, countRules(rules, mode, kind, true))
      }
    },
  })
  new Gauge({
    name: METRIC_PREFIX + 'config_info',
    help: 'The config in force: file hash, mode and format (value 1).',
    labelNames: ['hash', 'mode', 'format'],
    registers: [registry],
    collect() {
      const config = source.config()
      this.reset()
      this.set({ hash: source.reload.hash ?? 'none', mode: config.mode, format: config.format }, 1)
    },
  })
  new Counter({
    name: METRIC_PREFIX + 'config_reloads_total',
    help: 'Config reloads, by result.',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      this.reset()
      this.inc({ result: 'success' }, source.reload.successes)
      this.inc({ result: 'failure' }, source.reload.failures)
    },
  })
  new Gauge({
    name: METRIC_PREFIX + 'config_last_reload_timestamp_seconds',
    help: 'When the last reload attempt ended (0: none yet).',
    registers: [registry],
    collect() {
      this.set((source.reload.lastAttemptMs ?? 0) / 1000)
    },
  })
  new Gauge({
    name: METRIC_PREFIX + 'config_last_reload_success',
    help: '1 if the last reload attempt succeeded, 0 if it failed (1 before any).',
    registers: [registry],
    collect() {
      this.set(source.reload.lastOk === false ? 0 : 1)
    },
  })
  labelled(
    'receive_buffer_bytes',
    'SO_RCVBUF of the listen socket: requested in the config and granted by the kernel.',
    'kind',
    () => ({
      requested: source.recvBuffer.requested,
      granted: source.recvBuffer.granted,
    }),
  )
  new Counter({
    name: METRIC_PREFIX + 'kernel_receive_drops_total',
    help: 'Datagrams the kernel dropped for the listen socket before the proxy read them (receive buffer full).',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(source.kernel()?.drops ?? 0)
    },
  })
  new Gauge({
    name: METRIC_PREFIX + 'receive_queue_bytes',
    help: "Bytes waiting in the listen socket's kernel receive queue.",
    registers: [registry],
    collect() {
      this.set(source.kernel()?.rxQueue ?? 0)
    },
  })
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
  new Counter({
    name: METRIC_PREFIX + 'worker_lines_received_total',
    help: 'Lines received per worker: how evenly the kernel spreads the traffic.',
    labelNames: ['worker'],
    registers: [registry],
    collect() {
      this.reset()
      source.workers().linesIn.forEach((lines, worker) => this.inc({ worker: String(worker) }, lines))
    },
  })
  return registry
}
