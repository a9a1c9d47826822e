// Everything the bench reads from /proc (Linux only): another process's CPU time, memory, CPUs and run-queue
// wait, and the machine's socket limits and UDP drop counters.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

/** Another process's figures, from /proc/<pid>. */
export interface ProcReading {
  /** utime and stime of all its threads, in µs (the kernel counts in clock ticks, usually 10 ms). */
  cpuUserUs: number
  cpuSystemUs: number
  /** VmRSS and VmHWM (its highest RSS so far), in bytes. */
  rss: number
  rssPeak: number
  /** Its main thread's run-queue wait, as readRunQueueWaitNs reads it. */
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

/**
 * /proc/<pid>/schedstat: "<ns on CPU> <ns waiting on a run queue> <timeslices>". The total time the main thread
 * was ready to run but waited for a CPU (the CPU other processes took from it); 0 where unavailable.
 */
export function readRunQueueWaitNs(pid: number | 'self'): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1])
  } catch {
    return 0 // no schedstat in this kernel
  }
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
  return {
    cpuUserUs: Number(fields[11]) * usPerTick,
    cpuSystemUs: Number(fields[12]) * usPerTick,
    rss: statusKb(status, 'VmRSS') * 1024,
    rssPeak: statusKb(status, 'VmHWM') * 1024,
    runQueueWaitNs: readRunQueueWaitNs(pid),
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

/** net.core.rmem_max: caps every socket's receive buffer; null where it cannot be read (not Linux). */
export function readRmemMax(): number | null {
  try {
    return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'))
  } catch {
    return null
  }
}

/** Machine-wide counters a lost datagram could show up in if not in the proxy socket's own drop count. */
export interface MachineUdp {
  /** /proc/net/snmp Udp: InErrors, RcvbufErrors (every UDP socket on the machine). */
  inErrors: number
  rcvbufErrors: number
  /** /proc/net/softnet_stat, column 2 summed over CPUs: packets dropped because a CPU's input backlog was full. */
  backlogDrops: number
}

export function readMachineUdp(): MachineUdp | null {
  try {
    const snmp = readFileSync('/proc/net/snmp', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('Udp:'))
    const names = snmp[0].split(/\s+/)
    const values = snmp[1].split(/\s+/).map(Number)
    const field = (name: string): number => values[names.indexOf(name)] ?? 0
    let backlogDrops = 0
    for (const line of readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n'))
      backlogDrops += parseInt(line.trim().split(/\s+/)[1], 16)
    return { inErrors: field('InErrors'), rcvbufErrors: field('RcvbufErrors'), backlogDrops }
  } catch {
    return null // not Linux
  }
}
