// Worker thread entry: load and compile one config file, reply once, exit. See loadAndCompile.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import type { WorkerReply, WorkerRequest } from './compile.ts'
import { compileFile } from './compile-file.ts'
import { ConfigError } from './errors.ts'
import { sharedSizes, shareRules } from '../match/rule-set.ts'

if (parentPort === null) throw new Error('compile-worker.ts runs as a worker thread')
const port: MessagePort = parentPort
const { file, previous } = workerData as WorkerRequest
let reply: WorkerReply
try {
  // With reader threads, into shared memory the event loop's thread allocates: it receives a reference, not a
  // copy to deserialize (1,000,000 prefixes: the reload paused it 30-64 ms, against 234 ms when it copied them
  // into shared memory itself). Allocated here, that memory would pin this thread's malloc arena after the
  // thread exits (100,000 prefixes idled at 80 MB RSS, against 70 MB). With one reader the copy is kept:
  // garbage old rules in shared memory were released later (RSS after a reload of 1,000,000 prefixes
  // 615-684 MB, against 344 MB), for a pause of 30 ms instead of 57-63 ms.
  const compiled = await compileFile(file, previous, (rules) =>
    new Promise<SharedArrayBuffer[]>((resolve) => {
      port.once('message', resolve)
      port.postMessage({ ok: 'sizes', sizes: sharedSizes(rules) } satisfies WorkerReply)
    }).then((buffers) => shareRules(rules, buffers)),
  )
  reply = { ok: true, ...compiled }
} catch (err) {
  reply =
    err instanceof ConfigError
      ? { ok: false, problems: [...err.problems] }
      : { ok: false, error: (err as Error).stack ?? String(err) }
}
port.postMessage(reply)
