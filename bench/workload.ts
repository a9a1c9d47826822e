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
  return lines.join('\n') + '\n'
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
