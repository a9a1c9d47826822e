// Worker thread entry: load and compile one config file, reply once, exit. See loadAndCompile.
import { parentPort, workerData } from 'node:worker_threads'
import type { WorkerReply } from './compile.ts'
import { ConfigError } from './errors.ts'
import { loadConfig } from './load.ts'
import { rulesFromBlocklist } from '../match/rules.ts'
import { compileTrie } from '../match/trie.ts'

const { file } = workerData as { file: string }
let reply: WorkerReply
try {
  const config = loadConfig(file)
  reply = { ok: true, config, trie: compileTrie(rulesFromBlocklist(config.blocklist)) }
} catch (err) {
  reply = err instanceof ConfigError ? { ok: false, problems: [...err.problems] } : { ok: false, error: (err as Error).stack ?? String(err) }
}
// Copied, not transferred: a transferred array would stay in this thread's malloc arena and pin the memory
// the YAML parser freed there (measured: 130 MB RSS kept for 100,000 rules, against 58 MB when copied).
parentPort!.postMessage(reply)
