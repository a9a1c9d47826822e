// What a measured process reports about itself: CPU time, memory and garbage collections.
import { countGcs, type GcCounts } from './lib/gc.ts'
import { readProc, readProcRss, readRunQueueWaitNs } from './lib/proc.ts'

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

/** The highest of a sampled figure since the last `take`, sampled every RSS_SAMPLE_MS. */
class MaxSampler {
  private max = 0
  private readonly read: () => number

  constructor(read: () => number) {
    this.read = read
    this.sample()
    setInterval(() => this.sample(), RSS_SAMPLE_MS).unref()
  }

  /** Samples once more, returns the highest so far and starts the next interval from this sample. */
  take(): number {
    const now = this.sample()
    const max = this.max
    this.max = now
    return max
  }

  private sample(): number {
    const value = this.read()
    if (value > this.max) this.max = value
    return value
  }
}

export class ProcessStats {
  private readonly gcs: GcCounts = countGcs().counts
  private readonly rss = new MaxSampler(() => process.memoryUsage.rss())

  snapshot(): ProcessSnapshot {
    const cpu = process.cpuUsage()
    return {
      timeNs: Number(process.hrtime.bigint()),
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      rssMax: this.rss.take(),
      rssPeak: process.resourceUsage().maxRSS * 1024,
      gcMinor: this.gcs.minor,
      gcMajor: this.gcs.major,
      runQueueWaitNs: readRunQueueWaitNs('self'),
    }
  }
}

/**
 * This process and others it started (cluster workers), as one: CPU time, run-queue wait and RSS peaks summed
 * over the processes; RSS sampled every RSS_SAMPLE_MS as the sum of their RSS at that moment. Garbage collections
 * are this process's only (another process's cannot be observed from here).
 */
export class ProcessGroupStats {
  private readonly own = new ProcessStats()
  private readonly others: () => number[]
  private readonly rss: MaxSampler

  constructor(others: () => number[]) {
    this.others = others
    this.rss = new MaxSampler(() =>
      this.others().reduce((sum, pid) => sum + readProcRss(pid), process.memoryUsage.rss()),
    )
  }

  snapshot(): ProcessSnapshot {
    const snapshot = { ...this.own.snapshot(), rssMax: this.rss.take() }
    for (const pid of this.others()) {
      const p = readProc(pid)
      snapshot.cpuUserUs += p.cpuUserUs
      snapshot.cpuSystemUs += p.cpuSystemUs
      snapshot.rssPeak += p.rssPeak
      snapshot.runQueueWaitNs += p.runQueueWaitNs
    }
    return snapshot
  }
}
