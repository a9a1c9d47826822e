// Counts this process's garbage collections as Node reports them (perf_hooks 'gc' entries).
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'

export interface GcCounts {
  /** Young-generation collections: scavenges (and minor mark-sweeps, under --minor-ms). */
  minor: number
  /** Mark-sweep-compacts (the whole heap). */
  major: number
  /** Incremental marking and weak-callback processing steps. */
  other: number
}

/** V8's kGCTypeMinorMarkSweep, which perf_hooks has no constant for. */
const MINOR_MARK_SWEEP = 2

/**
 * Counts into the returned object from now until `stop()`. Entries arrive asynchronously, after the collection.
 * With `since`, only collections that started at or after that performance.now() time count (so one that the
 * memory reducer starts while the caller waits for the entries is not blamed on the code measured before it).
 */
export function countGcs(window?: { since: number; until: () => number }): { counts: GcCounts; stop: () => void } {
  const counts: GcCounts = { minor: 0, major: 0, other: 0 }
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (window !== undefined && (entry.startTime < window.since || entry.startTime > window.until())) continue
      const kind = gcKind(entry)
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR || kind === MINOR_MARK_SWEEP) counts.minor++
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) counts.major++
      else counts.other++
    }
  })
  observer.observe({ entryTypes: ['gc'] })
  return { counts, stop: () => observer.disconnect() }
}

/** Node 16+ puts the kind in `detail`, which these typings do not declare. */
function gcKind(entry: PerformanceEntry): number | undefined {
  return (entry as unknown as { detail?: { kind?: number } }).detail?.kind
}
