import { statSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { compileFile, type CompiledFile, type PreviousRules } from './compile-file.ts'
import type { Config, Settings } from './config.ts'
import { ConfigError, type ConfigProblem } from './errors.ts'
import type { PackedRules } from '../match/packed-rules.ts'
import { compileRules, shareRules, type RunnableRules } from '../match/rule-set.ts'
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

export type WorkerRequest = { file: string; previous: PreviousRules | null }

export type WorkerReply =
  /** Asks for the shared buffers the compiled arrays go into (this thread allocates them). */
  | { ok: 'sizes'; sizes: number[] }
  | ({ ok: true } & CompiledFile)
  | { ok: false; problems: ConfigProblem[] }
  | { ok: false; error: string }

/**
 * A config file up to this size is compiled on the calling thread, a larger one on a loader thread. 64 KiB holds
 * about 2,000 prefixes; compiling 1,000-3,000 takes the event loop 12-26 ms (Node 20 and 24, warm; 10,000: 48-85
 * ms). A loader thread costs memory that stays after it exits: an idle worker thread that only starts and exits
 * leaves 13.2 MiB of RSS on Node 24 (2.4 on Node 20), one that imports yaml and parses 1,000 entries 35.4 (7.9).
 */
const INLINE_COMPILE_BYTES = 64 * 1024

/**
 * Reads, validates and compiles a config file: on the calling thread up to INLINE_COMPILE_BYTES, else on a worker
 * thread. A list of 100,000 rules takes a YAML document of some hundred MB and a second or more to build: off the
 * event loop it stalls nothing, and the worker's heap is returned to the system when it exits, so the proxy keeps
 * only the compiled arrays. They come back as copies of typed arrays (a million rule objects would take seconds to
 * deserialize), or with `workers` > 1 in SharedArrayBuffers this thread allocates at the worker's request
 * (shareRules): a reference each, nothing to deserialize. With `previous`, each of its rules is mapped onto the
 * new rule set, so hit counts of the rules that stay survive a reload. It settles once the worker has exited.
 */
export async function loadAndCompile(file: string, previous: PreviousRules | null = null): Promise<Compiled> {
  const { config, rules, trie, tags, hash, inherit } =
    fileBytes(file) > INLINE_COMPILE_BYTES
      ? await compileOnWorker(file, previous)
      : await compileFile(file, previous, shareRules)
  return {
    config,
    rules,
    trie: new Trie(trie),
    tags,
    hash,
    inherit: previous !== null && inherit !== null ? { from: previous.rules, to: inherit } : null,
  }
}

/** The file's size, or 0 when it cannot be read (compileFile then reports why, with the file's name). */
function fileBytes(file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

function compileOnWorker(file: string, previous: PreviousRules | null): Promise<CompiledFile> {
  const workerData: WorkerRequest = { file, previous }
  const worker = new Worker(siblingModule(import.meta.url, 'compile-worker'), { workerData })
  return new Promise((resolve, reject) => {
    let compiled: CompiledFile | null = null
    let failure: Error | null = null
    worker.on('message', (reply: WorkerReply) => {
      if (reply.ok === 'sizes') worker.postMessage(reply.sizes.map((size) => new SharedArrayBuffer(size)))
      else if (reply.ok) compiled = reply
      else if ('problems' in reply) failure = new ConfigError(file, reply.problems)
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
