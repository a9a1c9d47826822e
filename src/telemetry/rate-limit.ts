/**
 * Lets one warning through per interval and counts the ones held back. The hot path only reads a boolean;
 * the clock is read by a timer, not per event.
 */
export class WarningGate {
  armed = true
  suppressed = 0
  private readonly timer: NodeJS.Timeout

  constructor(intervalMs: number) {
    this.timer = setInterval(() => {
      this.armed = true
    }, intervalMs)
    this.timer.unref()
  }

  /** True if the caller may log now; otherwise the event is counted as suppressed. */
  pass(): boolean {
    if (!this.armed) {
      this.suppressed++
      return false
    }
    this.armed = false
    return true
  }

  /** The number of warnings held back since the last one let through, reset to 0. */
  takeSuppressed(): number {
    const n = this.suppressed
    this.suppressed = 0
    return n
  }

  close(): void {
    clearInterval(this.timer)
  }
}
