// What a measured process reports about itself: CPU time, memory and garbage collections.
import { execFileSync } from 'node:child_process'
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

/** Another process's figures, from /proc/<pid> (Linux only). */
export interface ProcReading {
  /** utime and stime of all its threads, in µs (the kernel counts in clock ticks, usually 10 ms). */
  cpuUserUs: number
  cpuSystemUs: number
  /** VmRSS and VmHWM (its highest RSS so far), in bytes. */
  rss: number
  rssPeak: number
  /** Its main thread's run-queue wait, as runQueueWaitNs reads it for this process. */
  runQueueWaitNs: number
}

let clockTicksPerSecond: number | null = null

function clockTicks(): number {
  if (clockTicksPerSecond === null) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicksPerSecond = 100 // the value on every Linux architecture Node runs on
    }
  }
  return clockTicksPerSecond
}

/** /proc/<pid>/status's VmRSS (the resident set now), in bytes; 0 once the process is gone. */
export function readProcRss(pid: number): number {
  try {
    return statusKb(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS') * 1024
  } catch {
    return 0
  }
}

/** Throws if the process does not exist (or this is not Linux): a figure silently missing would look like 0 CPU. */
export function readProc(pid: number): ProcReading {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // "pid (comm) state ppid …": comm may hold spaces and parentheses, so count fields after the last ')'.
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after "state".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const usPerTick = 1e6 / clockTicks()
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  let wait = 0
  try {
    wait = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1])
  } catch {
    // no schedstat in this kernel: 0, as for this process
  }
  return {
    cpuUserUs: Number(fields[11]) * usPerTick,
    cpuSystemUs: Number(fields[12]) * usPerTick,
    rss: statusKb(status, 'VmRSS') * 1024,
    rssPeak: statusKb(status, 'VmHWM') * 1024,
    runQueueWaitNs: wait,
  }
}

/** /proc/<pid>/status's Cpus_allowed_list ("0-1", "1"): the CPUs the process may run on; null if unreadable. */
export function readCpusAllowed(pid: number): string | null {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? null
  } catch {
    return null
  }
}

function statusKb(status: string, key: string): number {
  const m = new RegExp(`^${key}:\\s*(\\d+) kB`, 'm').exec(status)
  return m === null ? 0 : Number(m[1])
}

/**
 * This process and others it started (cluster workers), as one: CPU time, run-queue wait and RSS peaks summed
 * over the processes; RSS sampled every RSS_SAMPLE_MS as the sum of their RSS at that moment. Garbage collections
 * are this process's only (another process's cannot be observed from here).
 */
export class ProcessGroupStats {
  private readonly own = new ProcessStats()
  private readonly others: () => number[]
  private rssMax = 0

  constructor(others: () => number[]) {
    this.others = others
    this.sampleRss()
    setInterval(() => this.sampleRss(), RSS_SAMPLE_MS).unref()
  }

  snapshot(): ProcessSnapshot {
    const own = this.own.snapshot()
    const rss = this.sampleRss()
    const snapshot = { ...own, rssMax: this.rssMax }
    for (const pid of this.others()) {
      const p = readProc(pid)
      snapshot.cpuUserUs += p.cpuUserUs
      snapshot.cpuSystemUs += p.cpuSystemUs
      snapshot.rssPeak += p.rssPeak
      snapshot.runQueueWaitNs += p.runQueueWaitNs
    }
    this.rssMax = rss
    return snapshot
  }

  private sampleRss(): number {
    let rss = process.memoryUsage.rss()
    for (const pid of this.others()) rss += readProcRss(pid)
    if (rss > this.rssMax) this.rssMax = rss
    return rss
  }
}
