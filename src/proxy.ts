import { Assembler } from './batch/assembler.ts'
import { BufferPool } from './batch/pool.ts'
import { DEFAULTS, type Config } from './config/config.ts'
import { formatProblem } from './config/errors.ts'
import { LineFilter } from './filter.ts'
import { compileConfig } from './config/compile.ts'
import type { Trie } from './match/trie.ts'
import { listenUdp, type UdpListener } from './receive/udp-listener.ts'
import { isLoopback } from './send/address.ts'
import { createUdpTarget, type UdpTarget } from './send/udp-target.ts'
import { Counters } from './telemetry/counters.ts'
import { escapeSample } from './telemetry/escape.ts'
import type { Logger } from './telemetry/logger.ts'
import { WarningGate } from './telemetry/rate-limit.ts'

/** Output buffers; with 8 KiB datagrams this bounds memory held by sends in flight to 1 MiB. */
export const SEND_POOL_SIZE = 128
const WARN_INTERVAL_MS = 10_000
const DNS_INTERVAL_MS = 30_000
const REPORT_INTERVAL_MS = 60_000
/** How long shutdown waits for sends in flight before giving up on them. */
const DRAIN_TIMEOUT_MS = 2_000

export interface ProxyOptions {
  /** The config's rules, compiled (by loadAndCompile, off the event loop); compiled here when absent. */
  trie?: Trie
  /** Counters are logged this often at info; tests shorten it. */
  reportIntervalMs?: number
  dnsIntervalMs?: number
}

export interface Proxy {
  readonly counters: Counters
  readonly listener: UdpListener
  readonly target: UdpTarget
  readonly maxPacketSize: number
  /** Stops receiving, sends what is buffered, waits (bounded) for sends in flight, closes the sockets. */
  close(): Promise<void>
}

export async function startProxy(config: Config, log: Logger, options: ProxyOptions = {}): Promise<Proxy> {
  for (const warning of config.warnings) log.warn(formatProblem(config.file, warning))
  const trie = options.trie ?? compileConfig(config).trie

  const counters = new Counters()
  const sendErrorGate = new WarningGate(WARN_INTERVAL_MS)
  const onSendError = (err: Error): void => {
    if (sendErrorGate.pass()) log.warn({ err: { code: (err as NodeJS.ErrnoException).code, message: err.message }, suppressed: sendErrorGate.takeSuppressed(), sendErrors: counters.sendErrors }, 'send to forward target failed')
  }
  const target = await createUdpTarget({
    host: config.forward.host,
    port: config.forward.port,
    resolveIntervalMs: options.dnsIntervalMs ?? DNS_INTERVAL_MS,
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

  const malformedGate = new WarningGate(WARN_INTERVAL_MS)
  const filter = new LineFilter(trie, assembler, counters, malformedGate, (buf, start, end, suppressed) =>
    log.warn({ sample: escapeSample(buf, start, end), suppressed, linesMalformed: counters.linesMalformed }, 'malformed line dropped'),
  )

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
    await target.close()
    sendErrorGate.close()
    malformedGate.close()
    throw err
  }

  log.info(
    {
      config: config.file,
      format: config.format,
      listen: `${listener.address}:${listener.port}`,
      forward: `${config.forward.host}:${config.forward.port}`,
      forwardAddress: target.address.address,
      rules: { prefixes: config.blocklist.prefixes.length, names: config.blocklist.names.length, trieNodes: trie.nodeCount },
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

  const report = setInterval(() => log.info({ counters: counters.snapshot() }, 'counters'), options.reportIntervalMs ?? REPORT_INTERVAL_MS)
  report.unref()

  let closing: Promise<void> | null = null
  const close = async (): Promise<void> => {
    clearInterval(report)
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
    await target.close()
    sendErrorGate.close()
    malformedGate.close()
    log.info({ counters: counters.snapshot() }, 'statsd-filter-proxy stopped')
  }
  return {
    counters,
    listener,
    target,
    maxPacketSize,
    close: () => (closing ??= close()),
  }
}
