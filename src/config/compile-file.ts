import { createHash } from 'node:crypto'
import type { Settings } from './config.ts'
import { parseConfig, readConfigFile } from './load.ts'
import { workerCount } from '../cluster/worker-count.ts'
import { kindOf, patternBytes, ruleCount, type PackedRules } from '../match/packed-rules.ts'
import { compileRules, type CompiledRules } from '../match/rule-set.ts'
import type { TagRuleInfo } from '../match/tag-rules.ts'
import { Trie } from '../match/trie.ts'

/** The rules a reload maps hits from: the table, and the tag rules' descriptions (numbered after the table). */
export type PreviousRules = { rules: PackedRules; tagRules: readonly TagRuleInfo[] }

/** A config file compiled, as plain arrays (what crosses from the loader thread). */
export type CompiledFile = { config: Settings; hash: string; inherit: Int32Array | null } & CompiledRules

/**
 * Reads, validates and compiles a config file, on whichever thread calls it (see loadAndCompile): the rules go
 * into shared memory through `share` when the config runs reader threads; with `previous`, each of its rules is
 * mapped onto the new ones, so hit counts of the rules that stay survive a reload. Throws ConfigError.
 */
export async function compileFile(
  file: string,
  previous: PreviousRules | null,
  share: (compiled: CompiledRules) => CompiledRules | Promise<CompiledRules>,
): Promise<CompiledFile> {
  const bytes = readConfigFile(file)
  const { blocklist, allowlist, stripTags, limits, cardinality, ...settings } = parseConfig(
    file,
    bytes.toString('utf8'),
  )
  const compiled = compileRules({ blocklist, allowlist, stripTags, limits, cardinality })
  const placed = workerCount(settings.workers) > 1 ? await share(compiled) : compiled
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16)
  const inherit = previous === null ? null : mapRules(previous, placed)
  return { config: settings, ...placed, hash, inherit }
}

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
