import { Worker } from 'node:worker_threads'
import type { Config, Settings } from './config.ts'
import { ConfigError, type ConfigProblem } from './errors.ts'
import type { PackedRules } from '../match/packed-rules.ts'
import { compileRules, type CompiledRules, type RunnableRules } from '../match/rule-set.ts'
import type { TagRuleInfo } from '../match/tag-rules.ts'
import { Trie } from '../match/trie.ts'
import { siblingModule } from '../sibling-module.ts'

/** A config with its rules compiled: what the proxy runs on. */
export interface Compiled extends RunnableRules {
  /** Everything but the rules, which live in `rules` (packed), `trie` (compiled) and `tags`. */
  config: Settings
  /** Of the file's bytes (first 16 hex digits of SHA-256); null for a config built in memory. */
  hash: string | null
  /** For the rule set this load was asked to carry history from: its rule i is rule inherit[i] here, or -1. */
  inherit: { from: PackedRules; to: Int32Array } | null
}

/** Compiles on the calling thread; for configs already in memory. */
export function compileConfig(config: Config): Compiled {
  const { blocklist, allowlist, stripTags, limits, cardinality, ...settings } = config
  const { rules, trie, tags } = compileRules({ blocklist, allowlist, stripTags, limits, cardinality })
  return { config: settings, rules, trie: new Trie(trie), tags, hash: null, inherit: null }
}

/** The rules a reload maps hits from: the table, and the tag rules' descriptions (numbered after the table). */
export type PreviousRules = { rules: PackedRules; tagRules: readonly TagRuleInfo[] }

export type WorkerRequest = { file: string; previous: PreviousRules | null }

export type WorkerReply =
  /** Asks for the shared buffers the compiled arrays go into (this thread allocates them). */
  | { ok: 'sizes'; sizes: number[] }
  | ({ ok: true; config: Settings; hash: string; inherit: Int32Array | null } & CompiledRules)
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
 * rules that stay survive a reload without work on the event loop. It settles once the worker has exited.
 */
export function loadAndCompile(file: string, previous: PreviousRules | null = null): Promise<Compiled> {
  const workerData: WorkerRequest = { file, previous }
  const worker = new Worker(siblingModule(import.meta.url, 'compile-worker'), { workerData })
  return new Promise((resolve, reject) => {
    let compiled: Compiled | null = null
    let failure: Error | null = null
    worker.on('message', (reply: WorkerReply) => {
      if (reply.ok === 'sizes') worker.postMessage(reply.sizes.map((size) => new SharedArrayBuffer(size)))
      else if (reply.ok) {
        const inherit = previous !== null && reply.inherit !== null ? { from: previous.rules, to: reply.inherit } : null
        const { config, rules, trie, tags, hash } = reply
        compiled = { config, rules, trie: new Trie(trie), tags, hash, inherit }
      } else if ('problems' in reply) failure = new ConfigError(file, reply.problems)
      else failure = new Error(reply.error)
    })
    worker.once('error', (err) => (failure = err))
    // Settled once the worker is gone, its memory freed, so that what the caller releases includes it.
    worker.once('exit', (code) => {
      if (compiled !== null) resolve(compiled)
      else reject(failure ?? new Error(`config compiler exited with code ${code}`))
    })
  })
}
