/**
 * The data path's counters: plain number fields, incremented in place by the stage that observes the event
 * (no calls, no maps on the hot path). Every line received ends in exactly one of forwarded, blocked, malformed
 * or droppedBackpressure, so `linesIn` always equals their sum; the other line counters say more about some
 * of those lines.
 */
export class Counters {
  datagramsIn = 0
  bytesIn = 0
  linesIn = 0
  linesForwarded = 0
  linesBlocked = 0
  linesMalformed = 0
  linesDroppedBackpressure = 0
  /** Forwarded lines a dry-run rule matched: what enforcing would drop. */
  linesWouldBlock = 0
  /** Forwarded lines longer than maxPacketSize, each sent in a datagram of its own. */
  linesOversize = 0
  /** Forwarded lines in datagrams whose send failed (as far as the socket reported it; see sendErrors). */
  linesSendFailed = 0
  datagramsOut = 0
  bytesOut = 0
  /** Failed sends plus asynchronous socket errors such as ECONNREFUSED (which no single send owns). */
  sendErrors = 0

  snapshot(): CounterSnapshot {
    return {
      datagramsIn: this.datagramsIn,
      bytesIn: this.bytesIn,
      linesIn: this.linesIn,
      linesForwarded: this.linesForwarded,
      linesBlocked: this.linesBlocked,
      linesMalformed: this.linesMalformed,
      linesDroppedBackpressure: this.linesDroppedBackpressure,
      linesWouldBlock: this.linesWouldBlock,
      linesOversize: this.linesOversize,
      linesSendFailed: this.linesSendFailed,
      datagramsOut: this.datagramsOut,
      bytesOut: this.bytesOut,
      sendErrors: this.sendErrors,
    }
  }
}

export type CounterSnapshot = { [K in keyof Counters as Counters[K] extends number ? K : never]: number }
