import { DEFAULTS, type Settings } from './config/config.ts'
import type { AdmissionData } from './match/admission.ts'
import type { PackedRules } from './match/packed-rules.ts'
import { RuleSet, type RuleStats } from './match/rule-set.ts'
import type { TagRulesData } from './match/tag-rules.ts'
import type { Trie } from './match/trie.ts'
import { isLoopback, type ResolvedAddress } from './net/address.ts'
import { createPipeline, type Pipeline } from './pipeline.ts'
import { listen, type ListenInfo, type Listener, type SharedSocket } from './receive/listener.ts'
import { createTarget, type SendQueue } from './send/target.ts'
import { mergeCardinality, type CardinalityReport, type CardinalityView } from './telemetry/cardinality.ts'
import type { Counters } from './telemetry/counters.ts'
import type { Logger } from './telemetry/logger.ts'
import type { TopReport } from './telemetry/top-talkers.ts'

const DNS_INTERVAL_MS = 30_000
/** How long shutdown waits for sends in flight before giving up on them. */
export const DRAIN_TIMEOUT_MS = 2_000

/** A rule set as the control plane puts it in force: what every reader of the socket runs. */
export interface RulesInForce {
  /** 0 at start, one more per reload. */
  generation: number
  /** The config these rules came with (its mode and log level apply with them). */
  settings: Settings
  rules: PackedRules
  trie: Trie
  tags: TagRulesData | null
  /** The cardinality limits' admitted values (admissionFor): shared by every reader, carried over reloads. */
  admission: readonly AdmissionData[]
  /** Maps generation - 1's rules onto these, so hits of the rules that stay carry over; null at start. */
  inherit: Int32Array | null
}

/** The readers of the listen socket: one unless `workers` is set. */
export interface WorkerStats {
  configured: number
  running: number
  /** Lines each reader received (a replaced worker's predecessors included). */
  linesIn: readonly number[]
}

/**
 * receive -> scan -> match -> batch -> send, behind one interface whatever its topology: this process
 * (startLocalPlane), or this process's thread plus reader threads on the same socket (cluster/primary.ts). The control plane
 * (proxy.ts) reads and drives it only through this.
 */
export interface DataPlane {
  readonly listen: ListenInfo
  /** Where forwarded datagrams went at start. */
  readonly forwardAddress: string
  readonly maxPacketSize: number
  /** Output buffers of one reader. */
  readonly sendPoolSize: number
  /** Live with one reader; with workers, the sum of the readers' shared counters as of the last refresh(). */
  readonly counters: Counters
  refresh(): Promise<void>
  /** Resolves once every reader runs these rules (each takes them between two datagrams). */
  apply(rules: RulesInForce): Promise<void>
  /** The rules in force with their hits up to date. */
  ruleHits(): Promise<RuleStats>
  /** The heaviest metric names; null when insights are off. */
  top(n: number): Promise<TopReport | null>
  /** The names with the most distinct series (GET /cardinality); null when the view is off. */
  cardinality(n: number): Promise<CardinalityView | null>
  sendPool(): { size: number; inUse: number }
  sendQueue(): SendQueue
  workers(): WorkerStats
  /** Stops receiving, sends what is buffered, waits (bounded) for sends in flight, closes the sockets. */
  close(): Promise<void>
}

export interface LocalPlaneOptions {
  settings: Settings
  rules: RulesInForce
  log: Logger
  dnsIntervalMs?: number
  /** The system resolver unless given (tests move the forward name between addresses with it). */
  resolve?: (host: string) => Promise<ResolvedAddress>
  /** A socket another reader of this process opened, to read too (a worker thread); a socket of its own unless given. */
  socket?: SharedSocket
  /** Where the counts go (a reader thread's slot of shared memory); counters of its own unless given. */
  counters?: Counters
}

/** The data plane in this process, and the socket it reads for other readers to share (null in dgram mode). */
export interface LocalPlane extends DataPlane {
  readonly socket: SharedSocket | null
  /** This reader's cardinality sketches of its top `n` names, to merge with other readers'; null when off. */
  cardinalityReport(n: number): CardinalityReport | null
}

const ruleSet = (next: RulesInForce): RuleSet => new RuleSet(next, next.settings.mode, next.generation)

/** The data plane in this process: the listen socket, the pipeline with the rules in force, the forward socket. */
export async function startLocalPlane(options: LocalPlaneOptions): Promise<LocalPlane> {
  const { settings, log } = options
  // The target reports asynchronous errors (ECONNREFUSED) to the pipeline, which is made once the target exists.
  let pipeline: Pipeline | null = null
  const target = await createTarget({
    host: settings.forward.host,
    port: settings.forward.port,
    resolveIntervalMs: options.dnsIntervalMs ?? DNS_INTERVAL_MS,
    resolve: options.resolve,
    sendBufferSize: settings.sendBufferSize ?? undefined,
    onError: (err) => pipeline?.targetError(err),
    onAddressChange: (from, to) =>
      log.info({ host: settings.forward.host, from: from.address, to: to.address }, 'forward address changed'),
  })
  const forwardAddress = target.address
  const maxPacketSize =
    settings.maxPacketSize ?? (isLoopback(forwardAddress) ? DEFAULTS.loopbackPacketSize : DEFAULTS.networkPacketSize)
  const path = createPipeline({
    rules: ruleSet(options.rules),
    target,
    maxPacketSize,
    insights: settings.insights,
    cardinality: settings.cardinalityView,
    log,
    counters: options.counters,
  })
  pipeline = path
  const { filter, assembler, counters } = path

  const release = async (): Promise<void> => {
    path.close()
    await target.close()
  }
  let listener: Listener
  try {
    listener = await listen({
      host: settings.listen.host,
      port: settings.listen.port,
      recvBufferSize: settings.recvBufferSize,
      mode: settings.receive.mode,
      maxDelayMs: settings.receive.maxDelayMs,
      shared: options.socket,
      onDatagram: (buf, start, end) => filter.handleDatagram(buf, start, end),
      onError: (err) =>
        log.warn({ err: { code: (err as NodeJS.ErrnoException).code, message: err.message } }, 'receive socket error'),
    })
  } catch (err) {
    await release()
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
    await release()
  }
  let closing: Promise<void> | null = null
  return {
    listen: {
      address: listener.address,
      port: listener.port,
      recvBufferGranted: listener.recvBufferGranted,
      mode: listener.mode,
      fallback: listener.fallback,
    },
    socket: listener.shared(),
    forwardAddress,
    maxPacketSize,
    sendPoolSize: path.pool.size,
    counters,
    refresh: async () => {},
    apply: async (next) => {
      const rules = ruleSet(next)
      const current = filter.rules
      if (next.inherit !== null && current.generation === next.generation - 1) rules.inherit(current, next.inherit)
      filter.setRules(rules)
    },
    ruleHits: async () => filter.rules,
    top: async (n) => path.insights?.report(n) ?? null,
    cardinality: async (n) => (path.cardinality === null ? null : mergeCardinality([path.cardinality.report(n)], n)),
    cardinalityReport: (n) => path.cardinality?.report(n) ?? null,
    sendPool: () => ({ size: path.pool.size, inUse: path.pool.inUse }),
    sendQueue: () => target.queue(),
    workers: () => ({ configured: 1, running: closing === null ? 1 : 0, linesIn: [counters.linesIn] }),
    close: () => (closing ??= close()),
  }
}
