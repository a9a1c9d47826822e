import type { AdminServer } from './admin/server.ts'
import type { Settings } from './config/config.ts'
import type { DataPlane, RulesInForce } from './data-plane.ts'
import { ruleKinds } from './match/rule-set.ts'
import type { Reloader } from './reload/reloader.ts'
import type { CardinalityView } from './telemetry/cardinality.ts'
import { KernelDrops } from './telemetry/kernel-drops.ts'
import type { Logger } from './telemetry/logger.ts'

/** The counters line, and the reading of the kernel's drop count (/proc/net/udp). */
const INTERVAL_MS = { report: 60_000, kernelDrops: 10_000 } as const

export interface OperationsOptions {
  /** The settings the proxy started with (listen, admin and self-metrics endpoints). */
  settings: Settings
  plane: DataPlane
  /** The rules in force and the settings they came with. */
  rules: () => RulesInForce
  reloader: Reloader
  log: Logger
  /** /readyz: false once shutdown starts, or while no reader is on the socket. */
  ready: () => boolean
  reportIntervalMs?: number
  kernelDropsIntervalMs?: number
}

export interface Operations {
  readonly admin: AdminServer | null
  /** Stops the periodic work, sends the last self-metrics, closes the admin server. */
  close(): Promise<void>
}

/**
 * Everything beside the data plane: the kernel's drop count for the listen socket, the admin server, the
 * self-metrics and the periodic counters line. Reads the data plane only through its interface, never on its
 * hot path.
 */
export async function startOperations(options: OperationsOptions): Promise<Operations> {
  const { settings, plane, reloader, log } = options
  const { listen } = plane
  const kernel = new KernelDrops({
    port: listen.port,
    intervalMs: options.kernelDropsIntervalMs ?? INTERVAL_MS.kernelDrops,
    onRise: (rise, stats) =>
      log.warn(
        { kernelDrops: stats.drops, rise, rxQueueBytes: stats.rxQueue, recvBufferGranted: listen.recvBufferGranted },
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
    // Loaded only when the admin server is on: node:http and these modules take 0.5 MB of the idle proxy's RSS
    // (1,000 prefixes, VmRSS 5 s after start, median of 5: 61.0 MB with admin, 60.4 MB without).
    const [{ createMetrics }, { startAdmin }] = await Promise.all([
      import('./admin/metrics.ts'),
      import('./admin/server.ts'),
    ])
    // Read before each scrape (refresh): the exposition reads synchronously, and with workers the sketches come
    // from every reader thread.
    let cardinality: CardinalityView | null = null
    const trackedNames = settings.cardinalityView?.trackedNames ?? 0
    const refresh = async (): Promise<void> => {
      await plane.refresh()
      if (trackedNames > 0) cardinality = await plane.cardinality(trackedNames)
    }
    const metrics = createMetrics({
      counters: plane.counters,
      rules: () => options.rules(),
      config: () => options.rules().settings,
      reload: reloader.status,
      recvBuffer: { requested: settings.recvBufferSize, granted: listen.recvBufferGranted },
      kernel: () => kernel.latest,
      sendPool: () => plane.sendPool(),
      sendQueue: () => plane.sendQueue(),
      workers: () => plane.workers(),
      cardinality: () => cardinality,
    })
    try {
      admin = await startAdmin(
        settings.admin,
        {
          ready: options.ready,
          metrics: () => metrics.render(),
          refresh,
          mode: () => options.rules().settings.mode,
          rules: () => plane.ruleHits(),
          top: (n) => plane.top(n),
          cardinality: (n) => plane.cardinality(n),
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
    // Imported here so that hot-shots is loaded only when self-metrics are configured (see SelfMetrics.start).
    const { SelfMetrics } = await import('./telemetry/self-metrics.ts')
    const self = await SelfMetrics.start(
      plane.counters,
      settings.forward,
      {
        ...settings.selfMetrics,
        refresh: () => plane.refresh(),
        gauges: () => ({ send_pool_in_use: plane.sendPool().inUse }),
      },
      log,
    )
    stopped.push(() => self.close())
  }

  const inForce = options.rules()
  log.info(
    {
      config: settings.file,
      format: settings.format,
      mode: settings.mode,
      listen: `${listen.address}:${listen.port}`,
      receive: { mode: listen.mode, maxDelayMs: listen.mode === 'batch' ? settings.receive.maxDelayMs : null },
      forward: `${settings.forward.host}:${settings.forward.port}`,
      admin: admin === null ? null : `${settings.admin?.host}:${admin.port}`,
      forwardAddress: plane.forwardAddress,
      rules: { ...ruleKinds(inForce), trieNodes: inForce.trie.nodeCount },
      maxPacketSize: plane.maxPacketSize,
      sendPool: plane.sendPoolSize,
      workers: plane.workers().configured,
      recvBufferRequested: settings.recvBufferSize,
      recvBufferGranted: listen.recvBufferGranted,
    },
    'statsd-filter-proxy started',
  )
  if (listen.fallback !== null) {
    log.warn({ reason: listen.fallback }, 'receive.mode batch is not available here: reading the socket in dgram mode')
  }
  if (listen.recvBufferGranted < settings.recvBufferSize) {
    log.warn(
      { requested: settings.recvBufferSize, granted: listen.recvBufferGranted },
      'the kernel granted a smaller receive buffer than recvBufferSize; raise net.core.rmem_max to absorb bursts',
    )
  }

  const report = setInterval(
    () =>
      void plane
        .refresh()
        .then(() =>
          log.info({ counters: plane.counters.snapshot(), kernelDrops: kernel.latest?.drops ?? null }, 'counters'),
        ),
    options.reportIntervalMs ?? INTERVAL_MS.report,
  )
  report.unref()
  stopped.push(() => clearInterval(report))

  return { admin, close }
}
