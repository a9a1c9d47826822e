import { Assembler } from './batch/assembler.ts'
import { BufferPool } from './batch/pool.ts'
import { LineFilter } from './filter.ts'
import type { RuleSet } from './match/rule-set.ts'
import type { Target } from './send/target.ts'
import { CARDINALITY_DEFAULTS, CardinalityTracker } from './telemetry/cardinality.ts'
import { Counters } from './telemetry/counters.ts'
import { escapeSample } from './telemetry/escape.ts'
import type { Logger } from './telemetry/logger.ts'
import { WarningGate } from './telemetry/rate-limit.ts'
import { Insights } from './telemetry/top-talkers.ts'

/** Output buffers; with 8 KiB datagrams this bounds memory held by sends in flight to 1 MiB. */
export const SEND_POOL_SIZE = 128
const WARN_INTERVAL_MS = 10_000

export interface PipelineOptions {
  rules: RuleSet
  target: Target
  /** The largest datagram assembled. */
  maxPacketSize: number
  /** Output buffers: the bound on memory held by sends in flight. */
  poolSize?: number
  /** Per-rule hits and the top-talkers sketches. */
  insights: boolean
  /** The cardinality view (GET /cardinality): names tracked and its window; null (the default) for none. */
  cardinality?: { trackedNames: number; windowMs: number } | null
  /** Failed sends and malformed lines are logged here at warn, at most one of each per 10 s. */
  log: Logger
  /** Where the counts go (shared memory, for a reader thread); counters of its own unless given. */
  counters?: Counters
}

/** scan -> match -> batch, without sockets: datagrams go in through `filter`, datagrams leave through the target. */
export interface Pipeline {
  readonly counters: Counters
  readonly filter: LineFilter
  readonly assembler: Assembler
  readonly pool: BufferPool
  readonly insights: Insights | null
  readonly cardinality: CardinalityTracker | null
  /** An asynchronous error of the target that no single send owns (ECONNREFUSED): counted and logged as one. */
  targetError(err: Error): void
  /** Stops its timers (the clock of rule hits, the warning gates); the target is the caller's. */
  close(): void
}

/** The one place the data path's stages are put together (the data plane, the tests, the benches). */
export function createPipeline(options: PipelineOptions): Pipeline {
  const { log } = options
  const counters = options.counters ?? new Counters()
  const sendErrorGate = new WarningGate(WARN_INTERVAL_MS)
  const pool = new BufferPool(options.poolSize ?? SEND_POOL_SIZE, options.maxPacketSize)
  const onSendError = (err: Error): void => {
    if (!sendErrorGate.pass()) return
    const code = (err as NodeJS.ErrnoException).code
    const suppressed = sendErrorGate.takeSuppressed()
    log.warn(
      { err: { code, message: err.message }, suppressed, sendErrors: counters.sendErrors },
      'send to forward target failed',
    )
  }
  const assembler = new Assembler({ pool, target: options.target, counters, onSendError })
  const insights = options.insights ? new Insights() : null
  const view = options.cardinality ?? null
  const cardinality = view === null ? null : new CardinalityTracker({ ...CARDINALITY_DEFAULTS, ...view })
  const malformedGate = new WarningGate(WARN_INTERVAL_MS)
  const filter = new LineFilter({
    rules: options.rules,
    assembler,
    counters,
    malformed: {
      gate: malformedGate,
      report: (buf, start, end, suppressed) =>
        log.warn(
          { sample: escapeSample(buf, start, end), suppressed, linesMalformed: counters.linesMalformed },
          'malformed line dropped',
        ),
    },
    insights,
    cardinality,
  })
  const clock = setInterval(() => filter.tick(Date.now()), 1000)
  clock.unref()
  return {
    counters,
    filter,
    assembler,
    pool,
    insights,
    cardinality,
    targetError(err) {
      counters.sendErrors++
      onSendError(err)
    },
    close() {
      clearInterval(clock)
      sendErrorGate.close()
      malformedGate.close()
    },
  }
}
