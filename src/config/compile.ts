import { Worker } from 'node:worker_threads'
import type { Config } from './config.ts'
import { ConfigError, type ConfigProblem } from './errors.ts'
import { rulesFromBlocklist } from '../match/rules.ts'
import { Trie, type TrieData } from '../match/trie.ts'

/** A config with its rules compiled: what the proxy runs on. */
export interface Compiled {
  config: Config
  trie: Trie
  /** Of the file's bytes (first 16 hex digits of SHA-256); null for a config built in memory. */
  hash: string | null
}

/** Compiles on the calling thread; for configs already in memory. */
export function compileConfig(config: Config): Compiled {
  return { config, trie: Trie.compile(rulesFromBlocklist(config.blocklist)), hash: null }
}

export type WorkerReply =
  | { ok: true; config: Config; trie: TrieData; hash: string }
  | { ok: false; problems: ConfigProblem[] }
  | { ok: false; error: string }

/**
 * Reads, validates and compiles a config file on a worker thread. A list of 100,000 rules takes a YAML
 * document of some hundred MB and a second or more to build: off the event loop it stalls nothing, and the
 * worker's heap is returned to the system when it exits, so the proxy keeps only the compiled arrays.
 */
export function loadAndCompile(file: string): Promise<Compiled> {
  // Under a TypeScript test runner this module is .ts, compiled it is .js: the worker is its sibling either way.
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js'
  const worker = new Worker(new URL(`./compile-worker${ext}`, import.meta.url), { workerData: { file } })
  return new Promise((resolve, reject) => {
    worker.once('message', (reply: WorkerReply) => {
      if (reply.ok) resolve({ config: reply.config, trie: new Trie(reply.trie), hash: reply.hash })
      else if ('problems' in reply) reject(new ConfigError(file, reply.problems))
      else reject(new Error(reply.error))
    })
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new Error(`config compiler exited with code ${code}`)))
  })
}
