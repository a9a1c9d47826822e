// In-process micro-benchmark of tag rules against name-only filtering on the same lines, side by side in one
// process (rounds interleaved; ns per line the median of the rounds, a ratio the median of each round's own), so a
// noisy shared machine moves every configuration alike:
//   - names:        1,000 prefix rules (the baseline)
//   - strip:        the same + 100 stripTags rules (50 prefix selectors with keys, 50 glob selectors with keepOnly);
//                   65% of lines carry tags, half of those (a third of all lines) lose one
//   - globs10:      1,000 prefixes + 10 block globs
//   - globs10k:     1,000 prefixes + 10,000 block globs
//   - namesNoInsights, stripNoInsights: names and strip with `insights: false` (no hit counts, top talkers or
//                   strip rule forecasts): what the insights cost each
// and counts garbage collections that start during each timed loop: the per-line path must allocate nothing.
//
//   npm run build && node --expose-gc dist/bench/tag-rules.js [linesPerRound=2000000] [rounds=5]
import type { LineFilter } from '../src/filter.ts'
import { NO_TAG_RULES, RuleSet } from '../src/match/rule-set.ts'
import type { FilterRules, StripRule } from '../src/match/rules.ts'
import { createPipeline, type Pipeline } from '../src/pipeline.ts'
import { createLogger } from '../src/telemetry/logger.ts'
import { NullTarget } from './lib/null-target.ts'
import { countGcs } from './lib/gc.ts'
import { receiveArea, type ReceiveArea } from './lib/receive-area.ts'
import { median } from './lib/stats.ts'
import { blockedPrefixes } from './workload.ts'

const linesPerRound = Number(process.argv[2] ?? 2_000_000)
const rounds = Number(process.argv[3] ?? 5)
const LINES_PER_DATAGRAM = 10
const NAME_RULES = 1_000
const STRIP_PREFIX_RULES = 50
const STRIP_GLOB_RULES = 50

/**
 * Line n of the workload: 30% blocked by a prefix; of the rest, tags on 65% of all lines, and half of the tagged
 * lines (a third of all) match a strip rule and carry a tag it removes.
 */
function line(n: number): string {
  const k = n % 100
  const svc = n % STRIP_PREFIX_RULES
  if (k < 30) return `legacy.team${(n * 7919) % NAME_RULES}.requests:${n % 1000}|c|#env:prod,service:s${svc}`
  if (k < 46) return `api.svc${svc}.request:${n % 1000}|c|#env:prod,user_id:u${n % 9973},service:api`
  if (k < 63) return `web.eu.svc${svc}.latency:${n % 1000}|ms|#env:prod,pod_name:web-${n % 997},service:web,host:h1`
  if (k < 65) return `app.svc${svc}.requests.latency:${n % 1000}|ms|#env:prod,service:svc${svc},region:us-east-1`
  return `app.svc${svc}.requests.count:${n % 1000}|c`
}

function buildDatagrams(): Buffer[] {
  const datagrams: Buffer[] = []
  for (let d = 0; d < 1024; d++) {
    const lines: string[] = []
    for (let l = 0; l < LINES_PER_DATAGRAM; l++) lines.push(line(d * LINES_PER_DATAGRAM + l))
    datagrams.push(Buffer.from(lines.join('\n')))
  }
  return datagrams
}

function stripRules(): StripRule[] {
  const rules: StripRule[] = []
  for (let i = 0; i < STRIP_PREFIX_RULES; i++)
    rules.push({
      metrics: { prefixes: [`api.svc${i}.`], names: [], globs: [] },
      keys: ['user_id', 'request_id'],
      keepOnly: null,
      dryRun: false,
      types: null,
    })
  for (let i = 0; i < STRIP_GLOB_RULES; i++)
    rules.push({
      metrics: { prefixes: [], names: [], globs: [`web.*.svc${i}.**`] },
      keys: null,
      keepOnly: ['env', 'service', 'status'],
      dryRun: false,
      types: null,
    })
  return rules
}

/** Block globs of several shapes; none matches a workload line, so every line pays the full automaton walk. */
function globs(count: number): string[] {
  const shapes = [
    (i: number) => `legacy.*.glob${i}.**`,
    (i: number) => `*.tmp${i}.count`,
    (i: number) => `team${i}.**`,
    (i: number) => `app.*.req${i}`,
  ]
  return Array.from({ length: count }, (_, i) => shapes[i % shapes.length](i))
}

interface Kind {
  name: string
  rules: FilterRules
  compileMs: number
  path: Pipeline
}

function kind(name: string, rules: FilterRules, insights = true): Kind {
  const t0 = performance.now()
  const ruleSet = RuleSet.fromRules(rules, 'enforce')
  const compileMs = performance.now() - t0
  const path = createPipeline({
    rules: ruleSet,
    target: new NullTarget(),
    maxPacketSize: 8192,
    insights,
    log: createLogger('silent'),
  })
  return { name, rules, compileMs, path }
}

function run(filter: LineFilter, { area, starts, ends }: ReceiveArea, count: number): void {
  for (let i = 0; i < count; i++) filter.handleDatagram(area, starts[i & 1023], ends[i & 1023])
}

async function main(): Promise<void> {
  const names = blockedPrefixes(NAME_RULES)
  const blocklist = { prefixes: names, names: [] }
  const kinds = [
    kind('names', { blocklist, ...NO_TAG_RULES }),
    kind('strip', { blocklist, ...NO_TAG_RULES, stripTags: stripRules() }),
    kind('globs10', { blocklist: { ...blocklist, globs: globs(10) }, ...NO_TAG_RULES }),
    kind('globs10k', { blocklist: { ...blocklist, globs: globs(10_000) }, ...NO_TAG_RULES }),
    kind('namesNoInsights', { blocklist, ...NO_TAG_RULES }, false),
    kind('stripNoInsights', { blocklist, ...NO_TAG_RULES, stripTags: stripRules() }, false),
  ]
  // Compiling 10,000 globs leaves garbage whose collection would land in a timed loop: collect it first (the
  // script runs with --expose-gc; without it a mark-sweep may show up, which is the compile's, not a line's).
  ;(globalThis as { gc?: () => void }).gc?.()
  const datagrams = receiveArea(buildDatagrams())
  const perRound = Math.ceil(linesPerRound / LINES_PER_DATAGRAM)
  for (const k of kinds) run(k.path.filter, datagrams, 200_000)
  const ns = new Map(kinds.map((k) => [k.name, [] as number[]]))
  let scavenges = 0
  let markSweeps = 0
  for (let round = 0; round < rounds; round++) {
    for (const k of kinds) {
      await new Promise((resolve) => setImmediate(resolve))
      const loop = { since: performance.now(), end: Infinity }
      const gc = countGcs({ since: loop.since, until: () => loop.end })
      const before = k.path.counters.linesIn
      const t0 = process.hrtime.bigint()
      run(k.path.filter, datagrams, perRound)
      const elapsed = Number(process.hrtime.bigint() - t0)
      loop.end = performance.now()
      await new Promise((resolve) => setTimeout(resolve, 50))
      gc.stop()
      scavenges += gc.counts.minor
      markSweeps += gc.counts.major
      ns.get(k.name)?.push(elapsed / (k.path.counters.linesIn - before))
    }
  }
  const nsPerLine = (name: string): number => median(ns.get(name) ?? [])
  // Each round's own ratio (its two kinds ran within a second of each other), then their median: the machine's
  // load moves both alike, where a ratio of two medians can pair a quiet round with a loaded one.
  const ratio = (name: string, base: string): number => {
    const a = ns.get(name) ?? []
    const b = ns.get(base) ?? []
    return +median(a.map((x, round) => x / b[round])).toFixed(3)
  }
  const result = {
    linesPerRound,
    rounds,
    nsPerLine: Object.fromEntries(kinds.map((k) => [k.name, +nsPerLine(k.name).toFixed(1)])),
    compileMs: Object.fromEntries(kinds.map((k) => [k.name, +k.compileMs.toFixed(1)])),
    ratios: {
      stripVsNames: ratio('strip', 'names'),
      globs10kVsGlobs10: ratio('globs10k', 'globs10'),
      stripVsNamesNoInsights: ratio('stripNoInsights', 'namesNoInsights'),
    },
    strip: (() => {
      const c = kinds[1].path.counters
      return {
        linesIn: c.linesIn,
        forwarded: c.linesForwarded,
        blocked: c.linesBlocked,
        linesTagsStripped: c.linesTagsStripped,
        tagsStripped: c.tagsStripped,
      }
    })(),
    scavenges,
    markSweeps,
  }
  for (const k of kinds) k.path.close()
  console.log(JSON.stringify(result, null, 2))
  if (scavenges + markSweeps > 0) {
    console.error(`FAIL: the per-line path allocated (${scavenges} scavenges, ${markSweeps} mark-sweeps)`)
    process.exitCode = 1
  }
}

await main()
