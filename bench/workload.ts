// The deterministic rule list and datagrams every bench process derives from the same parameters, so the load
// generator knows exactly which lines the proxies must block without asking them.

/** Distinct datagrams the generator rotates through: enough variety that branch predictors and caches see real data. */
export const DATAGRAM_SET = 4096
/** Share of lines whose name starts with a listed prefix. */
export const BLOCKED_SHARE = 0.3
/** Share of lines that start like a rule (`legacy.team…`) but with a team id past the list: forwarded, after real matching work. */
export const NEAR_MISS_SHARE = 0.1

export function blockedPrefixes(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `legacy.team${i}.`)
}

/** How our proxy reads its socket (config key `receive.mode`): recvmmsg batches (the default) or Node's dgram. */
export type ReceiveMode = 'batch' | 'dgram'

export interface ProxyConfigOptions {
  /** `false` turns off per-rule hit counts and the top-talker sketches: only to measure what they cost. */
  insights: boolean
  /** Other than 1 adds the `workers` key (absent, as for most operators, when it is 1). */
  workers: number
  receive: ReceiveMode
  /** Adds the bench's 100 stripTags rules (stripTagRules): the ours-tags kind. */
  stripTags: boolean
}

/**
 * filter.yaml text for the proxies: what an operator would write, parsed by the proxy's own config loader. The
 * admin endpoint is on, as in production, on a port of its own per proxy process (several run at once). The
 * receive mode is written out even when it is the default, so the config says what the bench measured.
 */
export function configYaml(rules: number, forwardPort: number, options: ProxyConfigOptions): string {
  const lines = [
    'listen: { host: 127.0.0.1, port: 0 }',
    `forward: { host: 127.0.0.1, port: ${forwardPort} }`,
    'admin: { host: 127.0.0.1, port: 0 }',
    `receive: { mode: ${options.receive} }`,
    `insights: ${options.insights}`,
    ...(options.workers === 1 ? [] : [`workers: ${options.workers}`]),
    'log: { level: warn }',
    'blocklist:',
    '  prefixes:',
  ]
  for (const prefix of blockedPrefixes(rules)) lines.push(`    - ${prefix}`)
  if (options.stripTags) {
    lines.push('stripTags:')
    for (const rule of stripTagRules()) {
      const selector = rule.prefix !== null ? `prefixes: ['${rule.prefix}']` : `globs: ['${rule.glob}']`
      lines.push(`  - metrics: { ${selector} }`)
      lines.push(
        rule.keys !== null ? `    keys: [${rule.keys.join(', ')}]` : `    keepOnly: [${rule.keepOnly.join(', ')}]`,
      )
    }
  }
  return lines.join('\n') + '\n'
}

/**
 * One of the bench's stripTags rules: a prefix selector with `keys`, or a glob selector with `keepOnly` (exactly
 * one of each pair is set).
 */
export type BenchStripRule =
  | { prefix: string; glob: null; keys: readonly string[]; keepOnly: null }
  | { prefix: null; glob: string; keys: null; keepOnly: readonly string[] }

export const STRIP_KEYS = ['pod', 'request_id'] as const
export const STRIP_KEEP_ONLY = ['env', 'service', 'region'] as const

/**
 * The ours-tags kind's 100 stripTags rules, on top of the blocklist (issue 10's end-to-end figure), chosen for
 * this workload, whose every line carries one of the four TAGS sets (picked independently of the name):
 *   - 50 prefix selectors `app.svc<i>.` (i < 50: every `app.` line) with `keys: [pod, request_id]`;
 *   - 36 glob selectors `*.*.<component>.<measure>` (every forwarded line: app and near-miss legacy names) and 14
 *     `**.svc<i>.**` (i < 14: the app lines of those services, a second glob on the same line), with
 *     `keepOnly: [env, service, region]`.
 * Every forwarded line is selected; it loses a tag when its set has `pod:` (removed by both kinds of rule on app
 * lines) or `version:` (by keepOnly): 2 of the 4 sets, so half of the forwarded (all tagged) lines, one tag each.
 * The latency probe (`bench.probe`) matches none of them.
 */
export function stripTagRules(): BenchStripRule[] {
  const rules: BenchStripRule[] = []
  for (let i = 0; i < 50; i++) rules.push({ prefix: `app.svc${i}.`, glob: null, keys: STRIP_KEYS, keepOnly: null })
  for (const component of COMPONENTS) {
    for (const measure of MEASURES)
      rules.push({ prefix: null, glob: `*.*.${component}.${measure}`, keys: null, keepOnly: STRIP_KEEP_ONLY })
  }
  for (let i = 0; rules.length < 100; i++)
    rules.push({ prefix: null, glob: `**.svc${i}.**`, keys: null, keepOnly: STRIP_KEEP_ONLY })
  return rules
}

/** The agent's instruction tags, which keepOnly never removes (the spec's protected keys). */
const PROTECTED_KEYS = ['host', 'dd.internal.entity_id', 'dd.internal.card', 'dd.internal.jmx_check_name']

/**
 * A string-based account of what the bench's strip rules do to one forwarded metric line (not the proxy's code: a
 * check of it): the line as it must leave the proxy, and how many tags it loses. Enough of the spec for these
 * rules and this workload's lines (one `|#` field, no protected keys needed but honoured).
 */
export function expectedStrip(line: string, rules: readonly BenchStripRule[]): { line: string; removed: number } {
  const name = line.slice(0, line.indexOf(':'))
  const applying = rules.filter((r) => (r.prefix !== null ? name.startsWith(r.prefix) : globRegExp(r.glob).test(name)))
  const fields = line.split('|')
  let removed = 0
  const out = fields.flatMap((field, i) => {
    if (i < 2 || !field.startsWith('#')) return [field]
    const tags = field.slice(1).split(',')
    const kept = tags.filter((tag) => {
      const colon = tag.indexOf(':')
      const key = colon === -1 ? tag : tag.slice(0, colon)
      const drop = applying.some((r) =>
        r.keys !== null ? r.keys.includes(key) : !r.keepOnly.includes(key) && !PROTECTED_KEYS.includes(key),
      )
      if (drop) removed++
      return !drop
    })
    return kept.length === 0 ? [] : ['#' + kept.join(',')]
  })
  return { line: out.join('|'), removed }
}

const globCache = new Map<string, RegExp>()

/** `*` = one or more bytes other than `.`, `**` = one or more bytes; the rest literal (these globs are ASCII). */
function globRegExp(glob: string): RegExp {
  let re = globCache.get(glob)
  if (re === undefined) {
    const source = glob
      .split(/(\*\*|\*)/)
      .map((part) => (part === '**' ? '.+' : part === '*' ? '[^.]+' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')))
      .join('')
    re = new RegExp(`^${source}$`, 's')
    globCache.set(glob, re)
  }
  return re
}

/**
 * The latency probe: a gauge no rule blocks, whose `#t:` tag is the generator's send time (CLOCK_MONOTONIC ns,
 * 19 digits, shared by every process on the host), rewritten in place before each send. Its first byte, `b`,
 * starts no workload line (`legacy.…`, `app.…`), so the sink tells a probe from the first byte of a line.
 */
export const PROBE_PREFIX = 'bench.probe:1|g|#t:'
export const PROBE_TIME_OFFSET = PROBE_PREFIX.length
export const PROBE_TIME_DIGITS = 19
/** One datagram in this many is a probe (in paced runs): 1%, a sample every 0.2 ms at 50,000 datagrams/s. */
export const PROBE_EVERY = 100

export function probeDatagram(): Buffer {
  return Buffer.from(PROBE_PREFIX + '0'.repeat(PROBE_TIME_DIGITS), 'latin1')
}

/** The send time a probe line carries, in ns; `start` is the offset of the line's first byte. */
export function probeTimeNs(buf: Buffer, start: number): number {
  let ns = 0
  const end = start + PROBE_TIME_OFFSET + PROBE_TIME_DIGITS
  for (let i = start + PROBE_TIME_OFFSET; i < end; i++) ns = ns * 10 + buf[i] - 0x30
  return ns
}

export interface Workload {
  datagrams: Buffer[]
  /** Lines per datagram that no rule blocks, index for index with `datagrams`. */
  survivors: Uint16Array
  linesPerDatagram: number
}

export function buildWorkload(rules: number, linesPerDatagram: number): Workload {
  const random = mulberry32(rules * 31 + linesPerDatagram)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]
  const datagrams: Buffer[] = []
  const survivors = new Uint16Array(DATAGRAM_SET)
  for (let d = 0; d < DATAGRAM_SET; d++) {
    const lines: string[] = []
    for (let l = 0; l < linesPerDatagram; l++) {
      const r = random()
      const service = Math.floor(random() * 50)
      const metric = `${pick(COMPONENTS)}.${pick(MEASURES)}`
      let name: string
      if (r < BLOCKED_SHARE) {
        // Uniform over the whole list: the naive loop scans half of it on average before it hits.
        name = `legacy.team${Math.floor(random() * rules)}.${metric}`
      } else {
        if (r < BLOCKED_SHARE + NEAR_MISS_SHARE) name = `legacy.team${rules + Math.floor(random() * 1000)}.${metric}`
        else name = `app.svc${service}.${metric}`
        survivors[d]++
      }
      lines.push(
        `${name}:${pick(VALUES)}|${pick(TYPES)}${random() < 0.1 ? '|@0.5' : ''}|${pick(TAGS).replaceAll('$', String(service))}`,
      )
    }
    datagrams.push(Buffer.from(lines.join('\n')))
  }
  return { datagrams, survivors, linesPerDatagram }
}

const COMPONENTS = ['requests', 'db.query', 'cache', 'queue.consumer', 'http.client', 'jobs']
const MEASURES = ['latency', 'count', 'errors', 'bytes', 'inflight', 'hit_ratio']
const VALUES = ['1', '12.5', '0.93', '250', '3', '1024', '42.125']
const TYPES = ['c', 'g', 'ms', 'h', 'd']
const TAGS = [
  '#env:prod,service:svc$,region:us-east-1',
  '#env:prod,pod:web-$',
  '#env:staging,service:svc$',
  '#env:prod,service:svc$,version:1.$.0',
]

/** A small seeded PRNG: the same parameters give the same bytes in every process. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
