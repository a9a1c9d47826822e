import type { Assembler } from './batch/assembler.ts'
import type { Trie } from './match/trie.ts'
import type { LineSink } from './scan/line-sink.ts'
import { scanDatagram } from './scan/scanner.ts'
import type { Counters } from './telemetry/counters.ts'
import type { WarningGate } from './telemetry/rate-limit.ts'

/** Called (rate-limited by the gate) with a malformed line, for a log sample. Off the hot path. */
export type MalformedReporter = (buf: Buffer, start: number, end: number, suppressed: number) => void

/**
 * The per-datagram path: scan the lines in place, match each metric name against the trie, hand survivors
 * to the assembler. Every line ends up counted in exactly one of forwarded, blocked, malformed, dropped.
 */
export class LineFilter implements LineSink {
  private readonly trie: Trie
  private readonly assembler: Assembler
  private readonly counters: Counters
  private readonly malformedGate: WarningGate
  private readonly reportMalformed: MalformedReporter

  constructor(trie: Trie, assembler: Assembler, counters: Counters, malformedGate: WarningGate, reportMalformed: MalformedReporter) {
    this.trie = trie
    this.assembler = assembler
    this.counters = counters
    this.malformedGate = malformedGate
    this.reportMalformed = reportMalformed
  }

  handleDatagram(buf: Buffer): void {
    const counters = this.counters
    counters.datagramsIn++
    counters.bytesIn += buf.length
    counters.linesIn += scanDatagram(buf, 0, buf.length, this)
  }

  metric(buf: Buffer, start: number, nameEnd: number, end: number): void {
    if (this.trie.match(buf, start, nameEnd) !== -1) this.counters.linesBlocked++
    else this.assembler.append(buf, start, end)
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
