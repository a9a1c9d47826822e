// The machine a bench runs on: its CPUs, the Node binary under test, and pinning processes to a core.
import { execFileSync } from 'node:child_process'
import { cpus } from 'node:os'

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
