/**
 * The data path's counters: plain number fields, incremented in place by the stage that observes the event
 * (no calls, no maps on the hot path). Every line received ends in exactly one of forwarded, blocked, malformed
 * or droppedBackpressure, so `linesIn` always equals their sum.
 */
export class Counters {
  datagramsIn = 0
  bytesIn = 0
  linesIn = 0
  linesForwarded = 0
  linesBlocked = 0
  linesMalformed = 0
  linesDroppedBackpressure = 0
  datagramsOut = 0
  bytesOut = 0
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
      datagramsOut: this.datagramsOut,
      bytesOut: this.bytesOut,
      sendErrors: this.sendErrors,
    }
  }
}

export interface CounterSnapshot {
  datagramsIn: number
  bytesIn: number
  linesIn: number
  linesForwarded: number
  linesBlocked: number
  linesMalformed: number
  linesDroppedBackpressure: number
  datagramsOut: number
  bytesOut: number
  sendErrors: number
}
