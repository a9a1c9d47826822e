import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'

const CGROUP_CPU_MAX = '/sys/fs/cgroup/cpu.max'

/**
 * How many readers `workers` asks for. `auto` is one per CPU the container may actually use: Node's
 * CPU count is the node's, so a Kubernetes CPU limit (cgroup v2 `cpu.max`) caps it, rounded up.
 */
export function workerCount(setting: number | 'auto', cpus = availableParallelism(), cpuMax = readCpuMax()): number {
  if (setting !== 'auto') return setting
  const quota = cpuMax === null ? null : cpuQuota(cpuMax)
  return Math.max(1, quota === null ? cpus : Math.min(cpus, Math.ceil(quota)))
}

/** CPUs allowed by a cgroup v2 `cpu.max` ("<quota> <period>" or "max <period>"); null for no limit. */
function cpuQuota(cpuMax: string): number | null {
  const [quota, period] = cpuMax.trim().split(/\s+/)
  const q = Number(quota)
  const p = Number(period)
  return quota === 'max' || !(q > 0) || !(p > 0) ? null : q / p
}

function readCpuMax(): string | null {
  try {
    return readFileSync(CGROUP_CPU_MAX, 'utf8')
  } catch {
    return null
  }
}
