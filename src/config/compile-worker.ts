// Worker thread entry: load and compile one config file, reply once, exit. See loadAndCompile.
import { createHash } from 'node:crypto'
import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import type { PreviousRules, WorkerReply, WorkerRequest } from './compile.ts'
import { ConfigError } from './errors.ts'
import { parseConfig, readConfigFile } from './load.ts'
import { kindOf, patternBytes, ruleCount } from '../match/packed-rules.ts'
import { compileRules, sharedSizes, shareRules, type CompiledRules } from '../match/rule-set.ts'
import { Trie } from '../match/trie.ts'
import { workerCount } from '../cluster/worker-count.ts'

if (parentPort === null) throw new Error('compile-worker.ts runs as a worker thread')
const port: MessagePort = parentPort
const { file, previous } = workerData as WorkerRequest
let reply: WorkerReply
try {
  const bytes = readConfigFile(file)
  const { blocklist, allowlist, stripTags, limits, cardinality, ...settings } = parseConfig(
    file,
    bytes.toString('utf8'),
  )
  const compiled = compileRules({ blocklist, allowlist, stripTags, limits, cardinality })
  // With reader threads, into shared memory the event loop's thread allocates: it receives a reference, not a
  // copy to deserialize (1,000,000 prefixes: the reload paused it 30-64 ms, against 234 ms when it copied them
  // into shared memory itself). Allocated here, that memory would pin this thread's malloc arena after the
  // thread exits (100,000 prefixes idled at 80 MB RSS, against 70 MB). With one reader the copy is kept:
  // garbage old rules in shared memory were released later (RSS after a reload of 1,000,000 prefixes
  // 615-684 MB, against 344 MB), for a pause of 30 ms instead of 57-63 ms.
  const placed =
    workerCount(settings.workers) > 1
      ? shareRules(
          compiled,
          await new Promise<SharedArrayBuffer[]>((resolve) => {
            port.once('message', resolve)
            port.postMessage({ ok: 'sizes', sizes: sharedSizes(compiled) } satisfies WorkerReply)
          }),
        )
      : compiled
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16)
  const inherit = previous === null ? null : mapRules(previous, placed)
  reply = { ok: true, config: settings, ...placed, hash, inherit }
} catch (err) {
  reply =
    err instanceof ConfigError
      ? { ok: false, problems: [...err.problems] }
      : { ok: false, error: (err as Error).stack ?? String(err) }
}
port.postMessage(reply)

/**
 * Where each previous rule is in the new rules, or -1: a table rule by kind and pattern (looked up in the new
 * trie), a tag rule by its whole description (a strip rule with another selector or other keys is another rule).
 */
function mapRules(from: PreviousRules, to: CompiledRules): Int32Array {
  const own = ruleCount(from.rules)
  const map = new Int32Array(own + from.tagRules.length)
  const trie = new Trie(to.trie)
  for (let i = 0; i < own; i++) map[i] = trie.find(kindOf(from.rules, i), patternBytes(from.rules, i))
  const tagRules = new Map<string, number>()
  to.tags?.info.forEach((info, i) => {
    const key = JSON.stringify(info)
    if (!tagRules.has(key)) tagRules.set(key, ruleCount(to.rules) + i)
  })
  from.tagRules.forEach((info, i) => (map[own + i] = tagRules.get(JSON.stringify(info)) ?? -1))
  return map
}
