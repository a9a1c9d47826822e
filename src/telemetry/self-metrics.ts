import { hostname } from 'node:os'
import type { StatsD } from 'hot-shots'
import type { Counters, CounterSnapshot } from './counters.ts'
import type { Logger } from './logger.ts'

export interface SelfMetricsOptions {
  prefix: string
  intervalMs: number
  /** Brings the counters up to date before each batch (with workers: asks each for its figures). */
  refresh: () => Promise<void>
  /** Point-in-time values sent as gauges with each batch. */
  gauges: () => Record<string, number>
}

/**
 * The proxy's counters as DogStatsD metrics, sent with hot-shots straight to the forward target (never through
 * the filter, so no rule can hide them), tagged `proxy:<hostname>`. Counters go as counts of the interval's
 * increase, so the agent's rate math works as for any application.
 */
export class SelfMetrics {
  /**
   * Loads hot-shots here, not at the top of the module: self-metrics are off unless configured, and hot-shots
   * costs 5–8 MB of RSS with the other dependencies loaded (10 MB over bare node; bench/rss-imports.ts), in
   * every pod.
   */
  static async start(
    counters: Counters,
    target: { host: string; port: number },
    options: SelfMetricsOptions,
    log: Logger,
  ): Promise<SelfMetrics> {
    const { StatsD } = await import('hot-shots')
    const client = new StatsD({
      host: target.host,
      port: target.port,
      prefix: `${options.prefix}.`,
      globalTags: { proxy: hostname() },
      // hot-shots otherwise adds tags from DD_* variables meant for the application it runs in.
      includeDataDogTags: false,
      maxBufferSize: 1432,
      bufferFlushInterval: 100,
      errorHandler: (err) => log.debug({ err: { message: err.message } }, 'self-metrics send failed'),
    })
    return new SelfMetrics(counters, client, options)
  }

  private readonly client: StatsD
  private readonly counters: Counters
  private readonly options: SelfMetricsOptions
  private last: CounterSnapshot
  private readonly timer: NodeJS.Timeout

  private constructor(counters: Counters, client: StatsD, options: SelfMetricsOptions) {
    this.counters = counters
    this.options = options
    this.last = counters.snapshot()
    this.client = client
    this.timer = setInterval(() => void options.refresh().then(() => this.send()), options.intervalMs)
    this.timer.unref()
  }

  send(): void {
    const now = this.counters.snapshot()
    for (const key of Object.keys(now) as (keyof CounterSnapshot)[]) {
      const delta = now[key] - this.last[key]
      if (delta > 0) this.client.increment(snakeCase(key), delta)
    }
    this.last = now
    for (const [name, value] of Object.entries(this.options.gauges())) this.client.gauge(name, value)
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    await this.options.refresh()
    this.send()
    return new Promise((resolve) => this.client.close(() => resolve()))
  }
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}
