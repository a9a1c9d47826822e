import { readdirSync } from 'node:fs'
import type { Exposition } from './exposition.ts'

/**
 * The process and Node.js metrics worth a dashboard, with prom-client's names and help texts, each computed at
 * scrape time: nothing here runs between scrapes. prom-client's event loop histogram (monitorEventLoopDelay at
 * 10 ms resolution) woke the idle proxy 100 times a second forever: 996 voluntary context switches in 10 s, 41
 * without it (all threads, 30 s after start).
 */
export function addProcessMetrics(exposition: Exposition): void {
  // Since the process started, as the Prometheus clients of other languages count it (prom-client counted from
  // its registry's creation, leaving out the start-up). Summed in microseconds: in seconds, 0.575307 + 0.133137
  // is 0.7084440000000001.
  const cpu = (part: (usage: NodeJS.CpuUsage) => number) => () => part(process.cpuUsage()) / 1e6
  exposition.counter(
    'process_cpu_user_seconds_total',
    'Total user CPU time spent in seconds.',
    cpu((u) => u.user),
  )
  exposition.counter(
    'process_cpu_system_seconds_total',
    'Total system CPU time spent in seconds.',
    cpu((u) => u.system),
  )
  exposition.counter(
    'process_cpu_seconds_total',
    'Total user and system CPU time spent in seconds.',
    cpu((u) => u.user + u.system),
  )
  const start = Math.round(Date.now() / 1000 - process.uptime())
  exposition.gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', () => start)
  exposition.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss())
  exposition.gauge('process_open_fds', 'Number of open file descriptors.', openFds)
  exposition.gauge('nodejs_eventloop_lag_seconds', 'Lag of event loop in seconds.', eventLoopLag)
  exposition.gauge(
    'nodejs_heap_size_total_bytes',
    'Process heap size from Node.js in bytes.',
    () => process.memoryUsage().heapTotal,
  )
  exposition.gauge(
    'nodejs_heap_size_used_bytes',
    'Process heap size used from Node.js in bytes.',
    () => process.memoryUsage().heapUsed,
  )
  exposition.gauge(
    'nodejs_external_memory_bytes',
    'Node.js external memory size in bytes.',
    () => process.memoryUsage().external,
  )
  const [major, minor, patch] = process.versions.node.split('.')
  exposition.gauge('nodejs_version_info', 'Node.js version info.', () => [
    [{ version: process.version, major, minor, patch }, 1],
  ])
}

/** The entries of /proc/self/fd, less the one readdir itself opened; none off Linux. */
function openFds(): number | undefined {
  if (process.platform !== 'linux') return undefined
  try {
    return readdirSync('/proc/self/fd').length - 1
  } catch {
    return undefined // no /proc: leave the metric out rather than fail the scrape
  }
}

/**
 * How long a setImmediate scheduled now takes to run: the I/O callbacks still due in this turn of the event loop.
 * prom-client's gauge has the same meaning but sets it after the scrape was answered, so each scrape reported
 * the previous one's measurement (0 on the first); this one waits for it and reports it in the same scrape.
 */
function eventLoopLag(): Promise<number> {
  const start = process.hrtime.bigint()
  return new Promise((resolve) => setImmediate(() => resolve(Number(process.hrtime.bigint() - start) / 1e9)))
}
