// The machine a bench runs on: its CPUs, the Node binary under test, and pinning processes to a core.
import { execFileSync, spawn } from 'node:child_process'
import { cpus, setPriority } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { readProcRss } from './proc.ts'

/** "2 × Intel(R) Xeon(R) …", for a report's first lines. */
export function cpuDescription(): string {
  return `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}`
}

/** `node --version` of the binary the children run on ("v20.20.2"). */
export function nodeVersion(nodeBinary: string): string {
  return execFileSync(nodeBinary, ['--version'], { encoding: 'utf8' }).trim()
}

/** Whether proxies can be pinned to a core (util-linux taskset is installed). */
export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** Pinning, unless `--no-pin` said not to: it needs two cores (the proxy's and the others') and taskset. */
export function canPin(noPin: boolean | undefined): boolean {
  return noPin !== true && cpus().length >= 2 && hasTaskset()
}

/** All of the process's threads (libuv pool, GC helpers) go to the CPU too. */
export function pinToCpu(pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' })
}

/**
 * Raises a process's scheduling priority to `nice`; false where that is not allowed (it needs CAP_SYS_NICE).
 */
export function setNice(pid: number, nice: number): boolean {
  try {
    setPriority(pid, nice)
    return true
  } catch {
    return false
  }
}

/** Long enough for Node to finish booting (its RSS is flat after about 100 ms here), short for the bench. */
const BARE_NODE_SETTLE_MS = 1000

/** The RSS of `node -e` doing nothing but wait: what any Node process costs before it loads a module. */
export async function bareNodeRss(nodeBinary: string): Promise<number> {
  const child = spawn(nodeBinary, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' })
  try {
    await sleep(BARE_NODE_SETTLE_MS)
    if (child.pid === undefined) throw new Error('node -e: spawn failed')
    return readProcRss(child.pid)
  } finally {
    child.kill('SIGKILL')
  }
}
