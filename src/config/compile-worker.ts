// Worker thread entry: load and compile one config file, reply once, exit. See loadAndCompile.
import { createHash } from 'node:crypto'
import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import type { WorkerReply, WorkerRequest } from './compile.ts'
import { ConfigError } from './errors.ts'
import { parseConfig, readConfigFile } from './load.ts'
import { kindOf, patternBytes, ruleCount, type PackedRules } from '../match/packed-rules.ts'
import { compileBlocklist, sharedSizes, shareRules } from '../match/rule-set.ts'
import { Trie } from '../match/trie.ts'
import { workerCount } from '../cluster/worker-count.ts'

if (parentPort === null) throw new Error('compile-worker.ts runs as a worker thread')
const port: MessagePort = parentPort
const { file, previous } = workerData as WorkerRequest
let reply: WorkerReply
try {
  const bytes = readConfigFile(file)
  const { blocklist, ...settings } = parseConfig(file, bytes.toString('utf8'))
  const compiled = compileBlocklist(blocklist)
  // With reader threads, into shared memory the event loop's thread allocates: it receives a reference, not a
  // copy to deserialize (1,000,000 prefixes: the reload paused it 30-64 ms, against 234 ms when it copied them
  // into shared memory itself). Allocated here, that memory would pin this thread's malloc arena after the
  // thread exits (100,000 prefixes idled at 80 MB RSS, against 70 MB). With one reader the copy is kept:
  // garbage old rules in shared memory were released later (RSS after a reload of 1,000,000 prefixes
  // 615-684 MB, against 344 MB), for a pause of 30 ms instead of 57-63 ms.
  const { rules, trie } =
    workerCount(settings.workers) > 1
      ? shareRules(
          compiled.rules,
          compiled.trie,
          await new Promise<SharedArrayBuffer[]>((resolve) => {
            port.once('message', resolve)
            port.postMessage({ ok: 'sizes', sizes: sharedSizes(compiled.rules, compiled.trie) } satisfies WorkerReply)
          }),
        )
      : compiled
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16)
  const inherit = previous === null ? null : mapRules(previous, new Trie(trie))
  reply = { ok: true, config: settings, rules, trie, hash, inherit }
} catch (err) {
  reply =
    err instanceof ConfigError
      ? { ok: false, problems: [...err.problems] }
      : { ok: false, error: (err as Error).stack ?? String(err) }
}
port.postMessage(reply)

/** Where each previous rule (same kind, same pattern) is in the new trie, or -1. */
function mapRules(from: PackedRules, to: Trie): Int32Array {
  const map = new Int32Array(ruleCount(from))
  for (let i = 0; i < map.length; i++) map[i] = to.find(kindOf(from, i), patternBytes(from, i))
  return map
}
