import { Worker } from 'node:worker_threads'
import type { Config, Settings } from './config.ts'
import { ConfigError, type ConfigProblem } from './errors.ts'
import type { PackedRules } from '../match/packed-rules.ts'
import { compileBlocklist } from '../match/rule-set.ts'
import { Trie, type TrieData } from '../match/trie.ts'
import { siblingModule } from '../sibling-module.ts'

/** A config with its rules compiled: what the proxy runs on. */
export interface Compiled {
  /** Everything but the rule lists, which live in `rules` (packed) and `trie` (compiled). */
  config: Settings
  rules: PackedRules
  trie: Trie
  /** Of the file's bytes (first 16 hex digits of SHA-256); null for a config built in memory. */
  hash: string | null
  /** For the rule set this load was asked to carry history from: its rule i is rule inherit[i] here, or -1. */
  inherit: { from: PackedRules; to: Int32Array } | null
}

/** Compiles on the calling thread; for configs already in memory. */
export function compileConfig(config: Config): Compiled {
  const { blocklist, ...settings } = config
  const { rules, trie } = compileBlocklist(blocklist)
  return { config: settings, rules, trie: new Trie(trie), hash: null, inherit: null }
}

export type WorkerRequest = { file: string; previous: PackedRules | null }

export type WorkerReply =
  /** Asks for the shared buffers the compiled arrays go into (this thread allocates them). */
  | { ok: 'sizes'; sizes: number[] }
  | { ok: true; config: Settings; rules: PackedRules; trie: TrieData; hash: string; inherit: Int32Array | null }
  | { ok: false; problems: ConfigProblem[] }
  | { ok: false; error: string }

/**
 * Reads, validates and compiles a config file on a worker thread. A list of 100,000 rules takes a YAML
 * document of some hundred MB and a second or more to build: off the event loop it stalls nothing, and the
 * worker's heap is returned to the system when it exits, so the proxy keeps only the compiled arrays. They
 * come back as copies of typed arrays (a million rule objects would take seconds to deserialize), or with
 * `workers` > 1 in SharedArrayBuffers this thread allocates at the worker's request (shareRules): a reference
 * each, nothing to deserialize.
 * With `previous`, the worker also maps the previous rule set's rules onto the new one, so hit counts of the
 * rules that stay survive a reload without work on the event loop.
 */
export function loadAndCompile(file: string, previous: PackedRules | null = null): Promise<Compiled> {
  const workerData: WorkerRequest = { file, previous }
  const worker = new Worker(siblingModule(import.meta.url, 'compile-worker'), { workerData })
  return new Promise((resolve, reject) => {
    worker.on('message', (reply: WorkerReply) => {
      if (reply.ok === 'sizes') worker.postMessage(reply.sizes.map((size) => new SharedArrayBuffer(size)))
      else if (reply.ok) {
        const inherit = previous !== null && reply.inherit !== null ? { from: previous, to: reply.inherit } : null
        resolve({ config: reply.config, rules: reply.rules, trie: new Trie(reply.trie), hash: reply.hash, inherit })
      } else if ('problems' in reply) reject(new ConfigError(file, reply.problems))
      else reject(new Error(reply.error))
    })
    worker.once('error', reject)
    worker.once('exit', (code) => reject(new Error(`config compiler exited with code ${code}`)))
  })
}
