import { startAdmin, type AdminServer } from './admin/server.ts'
import { createMetricsRegistry } from './admin/metrics.ts'
import { Assembler } from './batch/assembler.ts'
import { BufferPool } from './batch/pool.ts'
import { compileConfig, type Compiled } from './config/compile.ts'
import { DEFAULTS, type Config, type Settings } from './config/config.ts'
import { formatProblem } from './config/errors.ts'
import { LineFilter, type Insights } from './filter.ts'
import { RuleSet } from './match/rule-set.ts'
import { ruleCount } from './match/packed-rules.ts'
import { listenUdp, type UdpListener } from './receive/udp-listener.ts'
import { Reloader, type ReloadResult, type ReloadTrigger } from './reload/reloader.ts'
import { isLoopback, type ResolvedAddress } from './send/address.ts'
import { createUdpTarget, type UdpTarget } from './send/udp-target.ts'
import { Counters } from './telemetry/counters.ts'
import { escapeSample } from './telemetry/escape.ts'
import { KernelDrops } from './telemetry/kernel-drops.ts'
import type { Logger } from './telemetry/logger.ts'
import { WarningGate } from './telemetry/rate-limit.ts'
import { SelfMetrics } from './telemetry/self-metrics.ts'
import { TopTalkers } from './telemetry/top-talkers.ts'

/** Output buffers; with 8 KiB datagrams this bounds memory held by sends in flight to 1 MiB. */
export const SEND_POOL_SIZE = 128
/** Top talkers: names tracked per sketch, bytes kept per name, and one line in this many sampled. */
export const TOP_TALKERS = { capacity: 1000, maxNameBytes: 128, sampleEvery: 16 } as const
const WARN_INTERVAL_MS = 10_000
const DNS_INTERVAL_MS = 30_000
const REPORT_INTERVAL_MS = 60_000
const KERNEL_DROPS_INTERVAL_MS = 10_000
/** How long shutdown waits for sends in flight before giving up on them. */
const DRAIN_TIMEOUT_MS = 2_000
export const WATCH = { debounceMs: 200, pollMs: 5_000 } as const

export interface ProxyOptions {
  /** The config compiled off the event loop (loadAndCompile); the config is compiled here when absent. */
  compiled?: Compiled
  /** Watch config.file and reload on change (and on reload()); off for configs built in memory. */
  watch?: { debounceMs: number; pollMs: number } | null
  /** Counters are logged this often at info; tests shorten it. */
  reportIntervalMs?: number
  dnsIntervalMs?: number
  kernelDropsIntervalMs?: number
  resolve?: (host: string) => Promise<ResolvedAddress>
}

export interface Proxy {
  readonly counters: Counters
  readonly listener: UdpListener
  readonly target: UdpTarget
  readonly maxPacketSize: number
  readonly admin: AdminServer | null
  readonly insights: Insights | null
  /** The rules in force. */
  rules(): RuleSet
  /** The settings in force (mode and log level follow reloads; the rest is what the proxy started with). */
  config(): Settings
  /** Re-reads config.file; rejects for a config that did not come from a file. */
  reload(trigger: ReloadTrigger): Promise<ReloadResult>
  /** Stops receiving, sends what is buffered, waits (bounded) for sends in flight, closes the sockets. */
  close(): Promise<void>
}

/** Starts on a config (compiled here), or on its settings with `options.compiled`. */
export async function startProxy(config: Config, log: Logger, options?: ProxyOptions): Promise<Proxy>
export async function startProxy(config: Settings, log: Logger, options: ProxyOptions & { compiled: Compiled }): Promise<Proxy>
export async function startProxy(config: Config | Settings, log: Logger, options: ProxyOptions = {}): Promise<Proxy> {
  for (const warning of config.warnings) log.warn(formatProblem(config.file, warning))
  const compiled = options.compiled ?? compileConfig(config as Config)
  const { trie, hash } = compiled

  const counters = new Counters()
  const sendErrorGate = new WarningGate(WARN_INTERVAL_MS)
  const onSendError = (err: Error): void => {
    if (sendErrorGate.pass()) {
      const code = (err as NodeJS.ErrnoException).code
      log.warn({ err: { code, message: err.message }, suppressed: sendErrorGate.takeSuppressed(), sendErrors: counters.sendErrors }, 'send to forward target failed')
    }
  }
  const target = await createUdpTarget({
    host: config.forward.host,
    port: config.forward.port,
    resolveIntervalMs: options.dnsIntervalMs ?? DNS_INTERVAL_MS,
    resolve: options.resolve,
    sendBufferSize: config.sendBufferSize ?? undefined,
    onError: (err) => {
      counters.sendErrors++
      onSendError(err)
    },
    onAddressChange: (from, to) => log.info({ host: config.forward.host, from: from.address, to: to.address }, 'forward address changed'),
  })
  const maxPacketSize =
    config.maxPacketSize ?? (isLoopback(target.address.address) ? DEFAULTS.loopbackPacketSize : DEFAULTS.networkPacketSize)
  const pool = new BufferPool(SEND_POOL_SIZE, maxPacketSize)
  const assembler = new Assembler(pool, target, counters, onSendError)

  const insights: Insights | null = config.insights
    ? {
        forwarded: new TopTalkers(TOP_TALKERS.capacity, TOP_TALKERS.maxNameBytes, TOP_TALKERS.sampleEvery),
        blocked: new TopTalkers(TOP_TALKERS.capacity, TOP_TALKERS.maxNameBytes, TOP_TALKERS.sampleEvery),
      }
    : null
  const malformedGate = new WarningGate(WARN_INTERVAL_MS)
  const filter = new LineFilter(
    new RuleSet(compiled.rules, trie, config.mode),
    assembler,
    counters,
    malformedGate,
    (buf, start, end, suppressed) =>
      log.warn({ sample: escapeSample(buf, start, end), suppressed, linesMalformed: counters.linesMalformed }, 'malformed line dropped'),
    insights,
  )
  const clock = setInterval(() => filter.tick(Date.now()), 1000)
  clock.unref()

  const stopped: (() => unknown)[] = [() => clearInterval(clock), () => target.close(), () => sendErrorGate.close(), () => malformedGate.close()]
  const cleanUp = async (): Promise<void> => {
    for (const stop of stopped.splice(0).reverse()) await stop()
  }

  let listener: UdpListener
  try {
    listener = await listenUdp({
      host: config.listen.host,
      port: config.listen.port,
      recvBufferSize: config.recvBufferSize,
      onDatagram: (msg) => filter.handleDatagram(msg),
      onError: (err) => log.warn({ err: { code: (err as NodeJS.ErrnoException).code, message: err.message } }, 'receive socket error'),
    })
  } catch (err) {
    await cleanUp()
    throw err
  }

  const kernel = new KernelDrops({
    port: listener.port,
    intervalMs: options.kernelDropsIntervalMs ?? KERNEL_DROPS_INTERVAL_MS,
    onRise: (rise, stats) =>
      log.warn(
        { kernelDrops: stats.drops, rise, rxQueueBytes: stats.rxQueue, recvBufferGranted: listener.recvBufferGranted },
        'the kernel dropped datagrams for the listen socket (receive buffer full): raise recvBufferSize and net.core.rmem_max',
      ),
  })
  await kernel.read()
  stopped.push(() => kernel.close())

  const reloader = new Reloader({
    file: config.file,
    config: compiled.config,
    rules: () => filter.rules.table,
    hash,
    log,
    watch: options.watch ?? null,
    apply: (next) => {
      const rules = new RuleSet(next.rules, next.trie, next.config.mode)
      const current = filter.rules
      if (next.inherit !== null && next.inherit.from === current.table) rules.inherit(current, next.inherit.to)
      filter.setRules(rules)
      log.level = next.config.log.level
    },
  })
  stopped.push(() => reloader.close())

  let ready = true
  let admin: AdminServer | null = null
  if (config.admin !== null) {
    const registry = createMetricsRegistry({
      counters,
      rules: () => filter.rules,
      config: () => reloader.current,
      reload: reloader.status,
      recvBuffer: { requested: config.recvBufferSize, granted: listener.recvBufferGranted },
      kernel: () => kernel.latest,
      sendPool: () => ({ size: pool.size, inUse: pool.inUse }),
      sendQueue: () => target.queue(),
    })
    try {
      admin = await startAdmin(
        config.admin,
        {
          ready: () => ready,
          registry,
          rules: () => filter.rules,
          top: (n) =>
            insights === null
              ? null
              : { sampleEvery: TOP_TALKERS.sampleEvery, memoryBytes: insights.forwarded.memoryBytes * 2, forwarded: insights.forwarded.top(n), blocked: insights.blocked.top(n) },
          reload: () => reloader.reload('http'),
        },
        log,
      )
    } catch (err) {
      await listener.close()
      await cleanUp()
      throw err
    }
    const server = admin
    stopped.push(() => server.close())
  }

  if (config.selfMetrics !== null) {
    const self = new SelfMetrics(
      counters,
      config.forward,
      { ...config.selfMetrics, gauges: () => ({ send_pool_in_use: pool.inUse }) },
      log,
    )
    stopped.push(() => self.close())
  }

  log.info(
    {
      config: config.file,
      format: config.format,
      mode: config.mode,
      listen: `${listener.address}:${listener.port}`,
      forward: `${config.forward.host}:${config.forward.port}`,
      forwardAddress: target.address.address,
      admin: admin === null ? null : `${config.admin?.host}:${admin.port}`,
      rules: { prefixes: compiled.rules.prefixCount, names: ruleCount(compiled.rules) - compiled.rules.prefixCount, trieNodes: trie.nodeCount },
      maxPacketSize,
      sendPool: SEND_POOL_SIZE,
      recvBufferRequested: config.recvBufferSize,
      recvBufferGranted: listener.recvBufferGranted,
    },
    'statsd-filter-proxy started',
  )
  if (listener.recvBufferGranted < config.recvBufferSize) {
    log.warn(
      { requested: config.recvBufferSize, granted: listener.recvBufferGranted },
      'the kernel granted a smaller receive buffer than recvBufferSize; raise net.core.rmem_max to absorb bursts',
    )
  }

  const report = setInterval(
    () => log.info({ counters: counters.snapshot(), kernelDrops: kernel.latest?.drops ?? null }, 'counters'),
    options.reportIntervalMs ?? REPORT_INTERVAL_MS,
  )
  report.unref()
  stopped.push(() => clearInterval(report))

  let closing: Promise<void> | null = null
  const close = async (): Promise<void> => {
    ready = false
    await listener.close()
    assembler.flush()
    let timer: NodeJS.Timeout | undefined
    const drained = await Promise.race([
      assembler.idle().then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), DRAIN_TIMEOUT_MS)
      }),
    ])
    clearTimeout(timer)
    if (!drained) log.warn({ inFlight: assembler.inFlight() }, 'sends still in flight at shutdown were abandoned')
    await cleanUp()
    log.info({ counters: counters.snapshot() }, 'statsd-filter-proxy stopped')
  }
  return {
    counters,
    listener,
    target,
    maxPacketSize,
    admin,
    insights,
    rules: () => filter.rules,
    config: () => reloader.current,
    reload: (trigger) => reloader.reload(trigger),
    close: () => (closing ??= close()),
  }
}
