// What a measured process reports about itself: CPU time, memory and garbage collections.
import { readFileSync } from 'node:fs'
import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'

export interface ProcessSnapshot {
  /** process.hrtime in ns, taken in the measured process: rates use its clock, not the IPC round trip's. */
  timeNs: number
  cpuUserUs: number
  cpuSystemUs: number
  /** Highest RSS sampled since the previous snapshot. */
  rssMax: number
  /** Highest RSS since the process started, start-up included (the kernel's ru_maxrss: exact, not sampled). */
  rssPeak: number
  gcMinor: number
  gcMajor: number
  /**
   * Total time the main thread was ready to run but waited for a CPU (Linux schedstat; 0 where unavailable):
   * the CPU that other processes took from it.
   */
  runQueueWaitNs: number
}

/** RSS is sampled on a timer: a snapshot alone would miss peaks between two IPC requests. */
const RSS_SAMPLE_MS = 100

export class ProcessStats {
  private gcMinor = 0
  private gcMajor = 0
  private rssMax = 0

  constructor() {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        const kind = gcKind(entry)
        if (kind === constants.NODE_PERFORMANCE_GC_MINOR) this.gcMinor++
        else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) this.gcMajor++
      }
    }).observe({ entryTypes: ['gc'] })
    this.sampleRss()
    setInterval(() => this.sampleRss(), RSS_SAMPLE_MS).unref()
  }

  snapshot(): ProcessSnapshot {
    const cpu = process.cpuUsage()
    const rss = this.sampleRss()
    const snapshot = {
      timeNs: Number(process.hrtime.bigint()),
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      rssMax: this.rssMax,
      rssPeak: process.resourceUsage().maxRSS * 1024,
      gcMinor: this.gcMinor,
      gcMajor: this.gcMajor,
      runQueueWaitNs: runQueueWaitNs(),
    }
    this.rssMax = rss
    return snapshot
  }

  private sampleRss(): number {
    const rss = process.memoryUsage.rss()
    if (rss > this.rssMax) this.rssMax = rss
    return rss
  }
}

/** Node 16+ puts the kind in `detail`, which these typings do not declare. */
function gcKind(entry: PerformanceEntry): number | undefined {
  return (entry as unknown as { detail?: { kind?: number } }).detail?.kind
}

/** /proc/self/schedstat: "<ns on CPU> <ns waiting on a run queue> <timeslices>". */
function runQueueWaitNs(): number {
  try {
    return Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1])
  } catch {
    return 0
  }
}
