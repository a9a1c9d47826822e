import type { Assembler } from './batch/assembler.ts'
import type { RuleSet } from './match/rule-set.ts'
import type { LineSink } from './scan/line-sink.ts'
import { scanDatagram } from './scan/scanner.ts'
import type { Counters } from './telemetry/counters.ts'
import type { WarningGate } from './telemetry/rate-limit.ts'
import type { Insights } from './telemetry/top-talkers.ts'

/** Called (rate-limited by the gate) with a malformed line, for a log sample. Off the hot path. */
export type MalformedReporter = (buf: Buffer, start: number, end: number, suppressed: number) => void

export interface LineFilterOptions {
  rules: RuleSet
  assembler: Assembler
  counters: Counters
  /** Malformed lines reported at most once per interval of the gate. */
  malformed: { gate: WarningGate; report: MalformedReporter }
  /** Per-rule hit counts and the heavy-hitter sketches; null when the config turns insights off. */
  insights: Insights | null
}

/**
 * The per-datagram path: scan the lines in place, match each metric name against the rules in force, hand
 * survivors to the assembler. Every line ends up counted in exactly one of forwarded, blocked, malformed,
 * dropped (a dry-run match is forwarded, and also counted as would-block).
 */
export class LineFilter implements LineSink {
  private ruleSet: RuleSet
  private readonly assembler: Assembler
  private readonly counters: Counters
  private readonly malformedGate: WarningGate
  private readonly reportMalformed: MalformedReporter
  private readonly insights: Insights | null
  /** The time stamped on rule hits: read from the clock once a second by tick(), never per line. */
  private nowMs = Date.now()

  constructor(options: LineFilterOptions) {
    this.ruleSet = options.rules
    this.assembler = options.assembler
    this.counters = options.counters
    this.malformedGate = options.malformed.gate
    this.reportMalformed = options.malformed.report
    this.insights = options.insights
  }

  /** The datagram `buf[start, end)`: in place, so one receive area can hold many (no subarray per datagram). */
  handleDatagram(buf: Buffer, start: number, end: number): void {
    const counters = this.counters
    counters.datagramsIn++
    counters.bytesIn += end - start
    counters.linesIn += scanDatagram(buf, start, end, this)
  }

  get rules(): RuleSet {
    return this.ruleSet
  }

  /** Takes effect from the next datagram on: a datagram is always filtered by one rule set. */
  setRules(ruleSet: RuleSet): void {
    this.ruleSet = ruleSet
  }

  tick(nowMs: number): void {
    this.nowMs = nowMs
  }

  metric(buf: Buffer, start: number, nameEnd: number, end: number): void {
    const rs = this.ruleSet
    const rule = rs.trie.match(buf, start, nameEnd)
    const insights = this.insights
    if (rule === -1) {
      if (insights !== null) insights.forwarded.observe(buf, start, nameEnd)
      this.assembler.append(buf, start, end)
      return
    }
    if (insights !== null) {
      rs.hits[rule]++
      rs.lastHitMs[rule] = this.nowMs
    }
    if (rs.dryRun[rule] === 1) {
      this.counters.linesWouldBlock++
      if (insights !== null) insights.forwarded.observe(buf, start, nameEnd)
      this.assembler.append(buf, start, end)
    } else {
      this.counters.linesBlocked++
      if (insights !== null) insights.blocked.observe(buf, start, nameEnd)
    }
  }

  event(buf: Buffer, start: number, end: number): void {
    this.assembler.append(buf, start, end)
  }

  serviceCheck(buf: Buffer, start: number, end: number): void {
    this.assembler.append(buf, start, end)
  }

  malformed(buf: Buffer, start: number, end: number): void {
    this.counters.linesMalformed++
    if (this.malformedGate.pass()) this.reportMalformed(buf, start, end, this.malformedGate.takeSuppressed())
  }
}
