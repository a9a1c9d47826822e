// How long a reload of a large rule list pauses the event loop.
//   npm run build && node dist/bench/reload-pause.js [rules=1000000] [workers=1]
// Starts the proxy on a file of N prefixes, rewrites the file with N different prefixes (from a separate
// process, so writing it does not count against the proxy's loop) and reloads, sampling the event loop every
// 2 ms: the longest gap beyond that is the pause the reload caused. With workers > 1 this process is the
// primary, and each worker reports the longest pause of its own loop (its data path) while the rules arrived.
import { execFileSync } from 'node:child_process'
import cluster from 'node:cluster'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadAndCompile } from '../src/config/compile.ts'
import { startProxy } from '../src/proxy.ts'
import { createLogger } from '../src/telemetry/logger.ts'
import { readProcRss } from './lib/proc.ts'
import { MIB } from './lib/table.ts'

const rules = Number(process.argv[2] ?? 1_000_000)
const workers = Number(process.argv[3] ?? 1)
const dir = mkdtempSync(join(tmpdir(), 'statsd-reload-'))
const file = join(dir, 'filter.yaml')

function writeRules(version: number): void {
  const script = `require('fs').writeFileSync(${JSON.stringify(file)}, 'listen: { host: 127.0.0.1, port: 0 }\\nworkers: ${workers}\\nadmin: { enabled: false }\\nlog: { level: info }\\nblocklist:\\n  prefixes:\\n' + Array.from({ length: ${rules} }, (_, i) => '    - legacy.team' + i + '.v${version}.\\n').join(''))`
  execFileSync(process.execPath, ['-e', script])
}

/** The proxy's log, watched for the primary's report of how long the workers paused. */
function watchWorkerPauses(): { log: ReturnType<typeof createLogger>; workerPauseMs: () => unknown } {
  let workerPauseMs: unknown = null
  const log = createLogger('info', {
    write: (line: string) => {
      const record = JSON.parse(line) as { msg: string; workerPauseMs?: unknown }
      if (record.msg === 'workers run the new rules') workerPauseMs = record.workerPauseMs
    },
  })
  return { log, workerPauseMs: () => workerPauseMs }
}

/** The longest the event loop went past its 2 ms sampling interval while `during` ran, and how long it took. */
async function longestPause<T extends { ok: boolean }>(
  during: () => Promise<T>,
): Promise<{ result: T; tookMs: number; maxGapMs: number }> {
  let maxGap = 0
  let last = performance.now()
  const sampler = setInterval(() => {
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last - 2)
    last = now
  }, 2)
  const started = performance.now()
  try {
    const result = await during()
    return { result, tookMs: performance.now() - started, maxGapMs: maxGap }
  } finally {
    clearInterval(sampler)
  }
}

async function main(): Promise<void> {
  writeRules(1)
  const compiled = await loadAndCompile(file)
  const { log, workerPauseMs } = watchWorkerPauses()
  const proxy = await startProxy(compiled, log)
  writeRules(2)
  const { result, tookMs, maxGapMs } = await longestPause(() => proxy.reload('http'))
  const rssMB = [
    process.pid,
    ...Object.values(cluster.workers ?? {}).flatMap((w) => (w?.process.pid === undefined ? [] : [w.process.pid])),
  ].map((pid) => Math.round(readProcRss(pid) / MIB))
  await proxy.close()
  console.log(
    JSON.stringify({
      rules,
      workers,
      reloaded: result.ok,
      reloadMs: Math.round(tookMs),
      maxEventLoopPauseMs: Math.round(maxGapMs * 10) / 10,
      workerPauseMs: workerPauseMs(),
      rssMB,
    }),
  )
  if (!result.ok) process.exitCode = 1
}

try {
  await main()
} finally {
  rmSync(dir, { recursive: true, force: true })
}
