import { Assembler } from './batch/assembler.ts'
import { BufferPool } from './batch/pool.ts'
import { DEFAULTS, type Settings } from './config/config.ts'
import { LineFilter, type Insights } from './filter.ts'
import type { RuleSet } from './match/rule-set.ts'
import { listenUdp, type UdpListener } from './receive/udp-listener.ts'
import { isLoopback, type ResolvedAddress } from './send/address.ts'
import { createUdpTarget, type UdpTarget } from './send/udp-target.ts'
import { Counters } from './telemetry/counters.ts'
import { escapeSample } from './telemetry/escape.ts'
import type { Logger } from './telemetry/logger.ts'
import { WarningGate } from './telemetry/rate-limit.ts'
import { TopTalkers, type TopEntry } from './telemetry/top-talkers.ts'

/** Output buffers; with 8 KiB datagrams this bounds memory held by sends in flight to 1 MiB. */
export const SEND_POOL_SIZE = 128
/** Top talkers: names tracked per sketch, bytes kept per name, and one line in this many sampled. */
export const TOP_TALKERS = { capacity: 1000, maxNameBytes: 128, sampleEvery: 16 } as const
const WARN_INTERVAL_MS = 10_000
const DNS_INTERVAL_MS = 30_000
/** How long shutdown waits for sends in flight before giving up on them. */
export const DRAIN_TIMEOUT_MS = 2_000

export interface DataPathOptions {
  dnsIntervalMs?: number
  resolve?: (host: string) => Promise<ResolvedAddress>
}

/** The heaviest metric names, as /top reports them. */
export interface TopReport {
  sampleEvery: number
  memoryBytes: number
  forwarded: TopEntry[]
  blocked: TopEntry[]
}

/** Sends queued in user space by libuv when the forward socket's kernel buffer was full. */
export interface SendQueue {
  count: number
  bytes: number
}

/**
 * receive -> scan -> match -> batch -> send, in one process: the listen socket, the filter with the rules in
 * force, the output pool and the forward socket, and the counters they keep. What a worker process runs; the
 * single-process proxy adds the operator's side (admin, reload, kernel drops, reports) around it.
 */
export interface DataPath {
  readonly counters: Counters
  readonly listener: UdpListener
  readonly target: UdpTarget
  readonly maxPacketSize: number
  readonly insights: Insights | null
  rules(): RuleSet
  /** Takes effect from the next datagram on. */
  setRules(rules: RuleSet): void
  top(n: number): TopReport | null
  sendPool(): { size: number; inUse: number }
  /** Stops receiving, sends what is buffered, waits (bounded) for sends in flight, closes the sockets. */
  close(): Promise<void>
}

export async function startDataPath(settings: Settings, rules: RuleSet, log: Logger, options: DataPathOptions = {}): Promise<DataPath> {
  const counters = new Counters()
  const sendErrorGate = new WarningGate(WARN_INTERVAL_MS)
  const onSendError = (err: Error): void => {
    if (sendErrorGate.pass()) {
      const code = (err as NodeJS.ErrnoException).code
      log.warn({ err: { code, message: err.message }, suppressed: sendErrorGate.takeSuppressed(), sendErrors: counters.sendErrors }, 'send to forward target failed')
    }
  }
  const target = await createUdpTarget({
    host: settings.forward.host,
    port: settings.forward.port,
    resolveIntervalMs: options.dnsIntervalMs ?? DNS_INTERVAL_MS,
    resolve: options.resolve,
    sendBufferSize: settings.sendBufferSize ?? undefined,
    onError: (err) => {
      counters.sendErrors++
      onSendError(err)
    },
    onAddressChange: (from, to) => log.info({ host: settings.forward.host, from: from.address, to: to.address }, 'forward address changed'),
  })
  const maxPacketSize =
    settings.maxPacketSize ?? (isLoopback(target.address.address) ? DEFAULTS.loopbackPacketSize : DEFAULTS.networkPacketSize)
  const pool = new BufferPool(SEND_POOL_SIZE, maxPacketSize)
  const assembler = new Assembler(pool, target, counters, onSendError)

  const insights: Insights | null = settings.insights
    ? {
        forwarded: new TopTalkers(TOP_TALKERS.capacity, TOP_TALKERS.maxNameBytes, TOP_TALKERS.sampleEvery),
        blocked: new TopTalkers(TOP_TALKERS.capacity, TOP_TALKERS.maxNameBytes, TOP_TALKERS.sampleEvery),
      }
    : null
  const malformedGate = new WarningGate(WARN_INTERVAL_MS)
  const filter = new LineFilter(
    rules,
    assembler,
    counters,
    malformedGate,
    (buf, start, end, suppressed) =>
      log.warn({ sample: escapeSample(buf, start, end), suppressed, linesMalformed: counters.linesMalformed }, 'malformed line dropped'),
    insights,
  )
  const clock = setInterval(() => filter.tick(Date.now()), 1000)
  clock.unref()
  const release = (): void => {
    clearInterval(clock)
    target.close()
    sendErrorGate.close()
    malformedGate.close()
  }

  let listener: UdpListener
  try {
    listener = await listenUdp({
      host: settings.listen.host,
      port: settings.listen.port,
      recvBufferSize: settings.recvBufferSize,
      onDatagram: (msg) => filter.handleDatagram(msg),
      onError: (err) => log.warn({ err: { code: (err as NodeJS.ErrnoException).code, message: err.message } }, 'receive socket error'),
    })
  } catch (err) {
    release()
    throw err
  }

  const close = async (): Promise<void> => {
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
    release()
  }
  let closing: Promise<void> | null = null
  return {
    counters,
    listener,
    target,
    maxPacketSize,
    insights,
    rules: () => filter.rules,
    setRules: (next) => filter.setRules(next),
    top: (n) =>
      insights === null
        ? null
        : { sampleEvery: TOP_TALKERS.sampleEvery, memoryBytes: insights.forwarded.memoryBytes * 2, forwarded: insights.forwarded.top(n), blocked: insights.blocked.top(n) },
    sendPool: () => ({ size: pool.size, inUse: pool.inUse }),
    close: () => (closing ??= close()),
  }
}
