// Worker thread entry: load and compile one config file, reply once, exit. See loadAndCompile.
import { createHash } from 'node:crypto'
import { parentPort, workerData } from 'node:worker_threads'
import type { WorkerReply, WorkerRequest } from './compile.ts'
import { ConfigError } from './errors.ts'
import { parseConfig, readConfigFile } from './load.ts'
import { kindOf, patternBytes, ruleCount, type PackedRules } from '../match/packed-rules.ts'
import { compileBlocklist } from '../match/rule-set.ts'
import { Trie } from '../match/trie.ts'

const { file, previous } = workerData as WorkerRequest
let reply: WorkerReply
try {
  const bytes = readConfigFile(file)
  const { blocklist, ...settings } = parseConfig(file, bytes.toString('utf8'))
  const { rules, trie } = compileBlocklist(blocklist)
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16)
  const inherit = previous === null ? null : mapRules(previous, new Trie(trie))
  reply = { ok: true, config: settings, rules, trie, hash, inherit }
} catch (err) {
  reply =
    err instanceof ConfigError
      ? { ok: false, problems: [...err.problems] }
      : { ok: false, error: (err as Error).stack ?? String(err) }
}
// Copied, not transferred: a transferred array would stay in this thread's malloc arena and pin the memory
// the YAML parser freed there (measured: 130 MB RSS kept for 100,000 rules, against 58 MB when copied).
parentPort?.postMessage(reply)

/** Where each previous rule (same kind, same pattern) is in the new trie, or -1. */
function mapRules(from: PackedRules, to: Trie): Int32Array {
  const map = new Int32Array(ruleCount(from))
  for (let i = 0; i < map.length; i++) map[i] = to.find(kindOf(from, i), patternBytes(from, i))
  return map
}
