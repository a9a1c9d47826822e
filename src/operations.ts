import { createMetricsRegistry, type WorkerStats } from './admin/metrics.ts'
import { startAdmin, type AdminServer } from './admin/server.ts'
import type { Settings } from './config/config.ts'
import type { SendQueue, TopReport } from './data-path.ts'
import type { RuleStats } from './match/rule-set.ts'
import type { Reloader } from './reload/reloader.ts'
import type { Counters } from './telemetry/counters.ts'
import { KernelDrops } from './telemetry/kernel-drops.ts'
import type { Logger } from './telemetry/logger.ts'
import { SelfMetrics } from './telemetry/self-metrics.ts'

const REPORT_INTERVAL_MS = 60_000
const KERNEL_DROPS_INTERVAL_MS = 10_000

/**
 * What the operator's side reads from the data path: one process's own, or in a cluster the primary's sum of
 * its workers' figures (which `refresh` brings up to date by asking them).
 */
export interface Observed {
  counters: Counters
  listen: { address: string; port: number; recvBufferGranted: number }
  rules(): RuleStats
  /** The rules with their hit counts up to date. */
  ruleHits(): Promise<RuleStats>
  top(n: number): Promise<TopReport | null>
  sendPool(): { size: number; inUse: number }
  sendQueue(): SendQueue
  workers(): WorkerStats
  refresh(): Promise<void>
}

export interface OperationsOptions {
  reportIntervalMs?: number
  kernelDropsIntervalMs?: number
  /** /readyz: false once shutdown starts. */
  ready: () => boolean
  /** What the start-up log line says beyond the settings and the listen socket. */
  started: Record<string, unknown>
}

export interface Operations {
  readonly admin: AdminServer | null
  readonly kernel: KernelDrops
  /** Stops the periodic work, sends the last self-metrics, closes the admin server. */
  close(): Promise<void>
}

/**
 * Everything beside the data path: the kernel's drop count for the listen socket, the admin server, the
 * self-metrics and the periodic counters line. Reads the data path only through `observed`, never on its
 * hot path.
 */
export async function startOperations(settings: Settings, observed: Observed, reloader: Reloader, log: Logger, options: OperationsOptions): Promise<Operations> {
  const kernel = new KernelDrops({
    port: observed.listen.port,
    intervalMs: options.kernelDropsIntervalMs ?? KERNEL_DROPS_INTERVAL_MS,
    onRise: (rise, stats) =>
      log.warn(
        { kernelDrops: stats.drops, rise, rxQueueBytes: stats.rxQueue, recvBufferGranted: observed.listen.recvBufferGranted },
        'the kernel dropped datagrams for the listen socket (receive buffer full): raise recvBufferSize and net.core.rmem_max',
      ),
  })
  await kernel.read()
  const stopped: (() => unknown)[] = [() => kernel.close()]
  const close = async (): Promise<void> => {
    for (const stop of stopped.splice(0).reverse()) await stop()
  }

  let admin: AdminServer | null = null
  if (settings.admin !== null) {
    const registry = createMetricsRegistry({
      counters: observed.counters,
      rules: () => observed.rules(),
      config: () => reloader.current,
      reload: reloader.status,
      recvBuffer: { requested: settings.recvBufferSize, granted: observed.listen.recvBufferGranted },
      kernel: () => kernel.latest,
      sendPool: () => observed.sendPool(),
      sendQueue: () => observed.sendQueue(),
      workers: () => observed.workers(),
    })
    try {
      admin = await startAdmin(
        settings.admin,
        {
          ready: options.ready,
          registry,
          refresh: () => observed.refresh(),
          rules: () => observed.ruleHits(),
          top: (n) => observed.top(n),
          reload: () => reloader.reload('http'),
        },
        log,
      )
    } catch (err) {
      await close()
      throw err
    }
    const server = admin
    stopped.push(() => server.close())
  }

  if (settings.selfMetrics !== null) {
    const self = new SelfMetrics(
      observed.counters,
      settings.forward,
      { ...settings.selfMetrics, gauges: () => ({ send_pool_in_use: observed.sendPool().inUse }) },
      log,
    )
    stopped.push(() => self.close())
  }

  log.info(
    {
      config: settings.file,
      format: settings.format,
      mode: settings.mode,
      listen: `${observed.listen.address}:${observed.listen.port}`,
      forward: `${settings.forward.host}:${settings.forward.port}`,
      admin: admin === null ? null : `${settings.admin?.host}:${admin.port}`,
      ...options.started,
      recvBufferRequested: settings.recvBufferSize,
      recvBufferGranted: observed.listen.recvBufferGranted,
    },
    'statsd-filter-proxy started',
  )
  if (observed.listen.recvBufferGranted < settings.recvBufferSize) {
    log.warn(
      { requested: settings.recvBufferSize, granted: observed.listen.recvBufferGranted },
      'the kernel granted a smaller receive buffer than recvBufferSize; raise net.core.rmem_max to absorb bursts',
    )
  }

  const report = setInterval(
    () =>
      void observed.refresh().then(() => log.info({ counters: observed.counters.snapshot(), kernelDrops: kernel.latest?.drops ?? null }, 'counters')),
    options.reportIntervalMs ?? REPORT_INTERVAL_MS,
  )
  report.unref()
  stopped.push(() => clearInterval(report))

  return { admin, kernel, close }
}
