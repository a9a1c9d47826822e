// How long a reload of a large rule list pauses the event loop.
//   npm run build && node dist/bench/reload-pause.js [rules=1000000] [workers=1]
// Starts the proxy on a file of N prefixes, rewrites the file with N different prefixes (from a separate
// process, so writing it does not count against the proxy's loop) and reloads, sampling the event loop every
// 2 ms: the longest gap beyond that is the pause the reload caused. With workers > 1 this process is the
// primary, and each worker reports the longest pause of its own loop (its data path) while the rules arrived.
import { execFileSync } from 'node:child_process'
import cluster from 'node:cluster'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadAndCompile } from '../src/config/compile.ts'
import { startCluster } from '../src/cluster/primary.ts'
import { startProxy } from '../src/proxy.ts'
import { createLogger } from '../src/telemetry/logger.ts'

const rules = Number(process.argv[2] ?? 1_000_000)
const workers = Number(process.argv[3] ?? 1)
const dir = mkdtempSync(join(tmpdir(), 'statsd-reload-'))
const file = join(dir, 'filter.yaml')

function writeRules(version: number): void {
  const script = `require('fs').writeFileSync(${JSON.stringify(file)}, 'listen: { host: 127.0.0.1, port: 0 }\\nadmin: { enabled: false }\\nlog: { level: info }\\nblocklist:\\n  prefixes:\\n' + Array.from({ length: ${rules} }, (_, i) => '    - legacy.team' + i + '.v${version}.\\n').join(''))`
  execFileSync(process.execPath, ['-e', script])
}

try {
  writeRules(1)
  const compiled = await loadAndCompile(file)
  let workerPauseMs: unknown = null
  const log = createLogger('info', {
    write: (line: string) => {
      const record = JSON.parse(line) as { msg: string; workerPauseMs?: unknown }
      if (record.msg === 'workers run the new rules') workerPauseMs = record.workerPauseMs
    },
  })
  const proxy = workers > 1 ? await startCluster(compiled, workers, log) : await startProxy(compiled.config, log, { compiled })
  writeRules(2)
  let maxGap = 0
  let last = performance.now()
  const sampler = setInterval(() => {
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last - 2)
    last = now
  }, 2)
  const started = performance.now()
  const result = await proxy.reload('http')
  const took = performance.now() - started
  clearInterval(sampler)
  const rssMB = [process.pid, ...Object.values(cluster.workers ?? {}).map((w) => w!.process.pid!)].map(rssOf)
  await proxy.close()
  console.log(
    JSON.stringify({ rules, workers, reloaded: result.ok, reloadMs: Math.round(took), maxEventLoopPauseMs: Math.round(maxGap * 10) / 10, workerPauseMs, rssMB }),
  )
  if (!result.ok) process.exitCode = 1
} finally {
  rmSync(dir, { recursive: true, force: true })
}

/** VmRSS of a process, in MB (this one first, then the workers). */
function rssOf(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
  return Math.round(kb / 1024)
}
