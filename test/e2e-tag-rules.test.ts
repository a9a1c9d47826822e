// End to end for the tag rules of issue 10: a real hot-shots client with global tags sends through a proxy started
// from a filter.yaml file (compiled on the loader thread, into shared memory with reader threads) with every rule
// kind: blocklist prefixes, names and globs (a dry-run one, and a dry-run one with a tag condition on the same
// pattern as an enforced one), a tag-conditioned prefix, blocklist.tags, an allowlist, three stripTags rules (keys;
// keepOnly dry-run; keepOnly limited by type) and limits. Checked: the exact bytes at the sink, every counter, /rules, /metrics, a reload that keeps the hits of
// unchanged rules and resets a changed one, and events and service checks passing unchanged through all of it.
// Every test runs for each topology (fixtures/topology.ts).
import { writeFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { StatsD } from 'hot-shots'
import type { CounterSnapshot } from '../src/telemetry/counters.ts'
import {
  configFile,
  FAILED,
  OK,
  P,
  postReload,
  RELOADED,
  rig,
  withMsg,
  yamlConfig,
  type Rig,
} from './fixtures/reload.ts'
import { assertLines, eachTopology, fresh, settled, type Topology } from './fixtures/topology.ts'
import {
  assertInvariant,
  byteLength,
  http,
  NO_COUNTS,
  present,
  promSeries,
  scrape,
  sinkFor,
  waitFor,
  type PromSample,
  type Sink,
} from './fixtures/udp.ts'

// Each topology compiles its file on a worker thread twice (start and reload): 2-3 s each on Node 20 under tap.
t.setTimeout(300_000)

// hot-shots reads DD_* variables (global tags, cardinality, container id, agent address): keep them out.
for (const key of Object.keys(process.env))
  if (key.startsWith('DD_') || key.startsWith('DATADOG_')) Reflect.deleteProperty(process.env, key)

/** What hot-shots puts first on every line (its globalTags), unless a call's tag has the same key. */
const G = 'env:prod,user_id:u1,pod_name:p'
const GLOBAL_TAGS = { env: 'prod', user_id: 'u1', pod_name: 'p' }

const LIMITS = { maxNameLength: 40, maxTags: 8, maxTagLength: 40 }
const NAME_41 = 'legacy.a.very.long.metric.name.over.limit'
const NAME_40 = `api.${'n'.repeat(36)}`
const TAG_40 = `note:${'n'.repeat(35)}`
const TAG_41 = `note:${'n'.repeat(36)}`
const SIX_TAGS = ['a:1', 'b:2', 'c:3', 'd:4', 'e:5', 'f:6']
for (const [s, n] of [
  [NAME_41, 41],
  [NAME_40, 40],
  [TAG_40, 40],
  [TAG_41, 41],
] as const)
  if (Buffer.byteLength(s) !== n) throw new Error(`${s} is not ${n} bytes`)

/**
 * Phase a: the file the proxy starts with. Phase b: the file a reload puts in force, which changes the keys of
 * strip rule s0 (a new rule: its hits start again) and makes the allowlist and the limits dry-run (their rules stay
 * the same rules).
 */
type Phase = 'a' | 'b'

/** The filter.yaml of a phase: the rig's yamlConfig, with the issue-10 sections added to it. */
function filterYaml(sinkPort: number, topology: Topology, phase: Phase): string {
  const base = yamlConfig({
    sinkPort,
    workers: topology.workers,
    receive: { mode: topology.receive },
    prefixes: ['legacy.', "{ prefix: http., tag: 'region:staging' }"],
    names: ['app.requests.old'],
  })
  const names = '  names: [app.requests.old]\n'
  if (!base.includes(names)) throw new Error(`yamlConfig changed its layout: ${base}`)
  const b = phase === 'b'
  return (
    base.replace(
      names,
      [
        names.trimEnd(),
        "  globs: ['*.debug.**', { glob: '*.debug.**', tag: keep, dryRun: true }, { glob: 'api.*.tmp', dryRun: true }]",
        "  tags: ['env:dev', synthetic]",
        '',
      ].join('\n'),
    ) +
    [
      'allowlist:',
      '  prefixes: [api., payments., http.]',
      '  names: [up]',
      "  globs: ['jobs.*.done']",
      `  dryRun: ${b}`,
      'stripTags:',
      '  - metrics: { prefixes: [api.request.], names: [payments.charge.amount] }',
      `    keys: [${b ? 'user_id' : 'user_id, request_id'}]`,
      "  - metrics: { globs: ['payments.**'] }",
      '    keepOnly: [env, service, status]',
      '    dryRun: true',
      "  - metrics: { names: [api.request.count], globs: ['jobs.*.done'] }",
      '    keepOnly: [route, status]',
      '    types: [c, h]',
      `limits: { maxNameLength: ${LIMITS.maxNameLength}, maxTags: ${LIMITS.maxTags}, maxTagLength: ${LIMITS.maxTagLength}, dryRun: ${b} }`,
      '',
    ].join('\n')
  )
}

/** The rules as /rules numbers them: the table (unconditional prefixes, names), then the tag rules in file order. */
const RULE_NAMES = [
  'legacy',
  'oldName',
  'httpStaging',
  'debugGlob',
  'debugKeep',
  'tmpGlob',
  'envDev',
  'synthetic',
  'allowApi',
  'allowPayments',
  'allowHttp',
  'allowUp',
  'allowJobs',
  's0',
  's1',
  's2',
] as const
type RuleName = (typeof RULE_NAMES)[number]
type StripName = 's0' | 's1' | 's2'
const STRIPS: readonly StripName[] = ['s0', 's1', 's2']

/** A /rules row of a phase without its counts (hits, lastHit, linesStripped, tagsStripped). */
function ruleRow(name: RuleName, phase: Phase): Record<string, unknown> {
  const index = RULE_NAMES.indexOf(name)
  const allowDry = phase === 'b'
  const block = (kind: string, pattern: string, dryRun = false): Record<string, unknown> => ({
    index,
    action: 'block',
    kind,
    pattern,
    dryRun,
  })
  const allow = (kind: string, pattern: string): Record<string, unknown> => ({
    index,
    action: 'allow',
    kind,
    pattern,
    dryRun: allowDry,
  })
  const strip = (metrics: object, rest: object): Record<string, unknown> => ({
    index,
    action: 'strip',
    kind: 'metrics',
    metrics: { prefixes: [], names: [], globs: [], ...metrics },
    ...rest,
  })
  switch (name) {
    case 'legacy':
      return block('prefix', 'legacy.')
    case 'oldName':
      return block('name', 'app.requests.old')
    case 'httpStaging':
      return { ...block('prefix', 'http.'), tag: 'region:staging' }
    case 'debugGlob':
      return block('glob', '*.debug.**')
    case 'debugKeep':
      return { ...block('glob', '*.debug.**', true), tag: 'keep' }
    case 'tmpGlob':
      return block('glob', 'api.*.tmp', true)
    case 'envDev':
      return block('tag', 'env:dev')
    case 'synthetic':
      return block('tag', 'synthetic')
    case 'allowApi':
      return allow('prefix', 'api.')
    case 'allowPayments':
      return allow('prefix', 'payments.')
    case 'allowHttp':
      return allow('prefix', 'http.')
    case 'allowUp':
      return allow('name', 'up')
    case 'allowJobs':
      return allow('glob', 'jobs.*.done')
    case 's0':
      return strip(
        { prefixes: ['api.request.'], names: ['payments.charge.amount'] },
        { keys: phase === 'a' ? ['user_id', 'request_id'] : ['user_id'], dryRun: false },
      )
    case 's1':
      return strip({ globs: ['payments.**'] }, { keepOnly: ['env', 'service', 'status'], dryRun: true })
    case 's2':
      return strip(
        { names: ['api.request.count'], globs: ['jobs.*.done'] },
        { keepOnly: ['route', 'status'], types: ['c', 'h'], dryRun: false },
      )
  }
}

/** What the proxy does with one line under a phase's rules. */
interface Effect {
  /** What reaches the sink: the line as sent, another line, or nothing (and why). */
  out: 'same' | ((v: number) => string) | 'blocked' | 'notAllowed' | 'overLimit'
  /** The rules credited with a hit. */
  hits: RuleName[]
  /** Tags each strip rule that removes (or, dry-run, would remove) any takes from the line. */
  strip?: Partial<Record<StripName, number>>
  /** Tags removed (by at least one enforced rule). */
  removed?: number
  /** Tags only dry-run rules remove. */
  would?: number
  /** Counted too: a dry-run rule or section let the line go on. */
  dry?: ('wouldBlock' | 'wouldNotAllow' | 'wouldOverLimit')[]
}

interface Call {
  what: string
  call: (c: StatsD, v: number) => void
  /** The line hot-shots writes for round `v`. */
  sent: (v: number) => string
  a: Effect
  /** After the reload, where it differs from `a`. */
  b?: Effect
}

const FORWARDED: Effect = { out: 'same', hits: [] }

/** The calls of one round (`v` makes every line of a round its own), as the application makes them. */
const CALLS: Call[] = [
  {
    what: 'keys and keepOnly rules on one line: every applying rule removes, host stays',
    call: (c, v) => c.increment('api.request.count', v, ['route:/a', 'request_id:r1', 'request_id:r2', 'host:h1']),
    sent: (v) => `api.request.count:${v}|c|#${G},route:/a,request_id:r1,request_id:r2,host:h1`,
    a: {
      out: (v) => `api.request.count:${v}|c|#route:/a,host:h1`,
      hits: ['allowApi', 's0', 's2'],
      strip: { s0: 3, s2: 5 },
      removed: 5,
    },
    b: {
      out: (v) => `api.request.count:${v}|c|#route:/a,host:h1`,
      hits: ['allowApi', 's0', 's2'],
      strip: { s0: 1, s2: 5 },
      removed: 5,
    },
  },
  {
    what: 'a keys rule on a timer',
    call: (c, v) => c.timing('api.request.latency', v, ['route:/a', 'request_id:r3']),
    sent: (v) => `api.request.latency:${v}|ms|#${G},route:/a,request_id:r3`,
    a: {
      out: (v) => `api.request.latency:${v}|ms|#env:prod,pod_name:p,route:/a`,
      hits: ['allowApi', 's0'],
      strip: { s0: 2 },
      removed: 2,
    },
    b: {
      out: (v) => `api.request.latency:${v}|ms|#env:prod,pod_name:p,route:/a,request_id:r3`,
      hits: ['allowApi', 's0'],
      strip: { s0: 1 },
      removed: 1,
    },
  },
  {
    what: 'a gauge: the keepOnly rule limited to c and h does not apply',
    call: (c, v) => c.gauge('api.request.count', v),
    sent: (v) => `api.request.count:${v}|g|#${G}`,
    a: {
      out: (v) => `api.request.count:${v}|g|#env:prod,pod_name:p`,
      hits: ['allowApi', 's0'],
      strip: { s0: 1 },
      removed: 1,
    },
  },
  {
    what: 'every tag removed: the |# field goes, the timestamp and cardinality fields stay where they were',
    call: (c, v) => c.increment('jobs.nightly.done', v, { timestamp: 1656581400, cardinality: 'low' }),
    sent: (v) => `jobs.nightly.done:${v}|c|T1656581400|#${G}|card:low`,
    a: {
      out: (v) => `jobs.nightly.done:${v}|c|T1656581400|card:low`,
      hits: ['allowJobs', 's2'],
      strip: { s2: 3 },
      removed: 3,
    },
  },
  {
    what: 'a histogram with a sample rate; a call tag overriding a global one',
    call: (c, v) => c.histogram('api.request.size', v, 0.5, ['user_id:u2']),
    sent: (v) => `api.request.size:${v}|h|@0.5|#env:prod,pod_name:p,user_id:u2`,
    a: {
      out: (v) => `api.request.size:${v}|h|@0.5|#env:prod,pod_name:p`,
      hits: ['allowApi', 's0'],
      strip: { s0: 1 },
      removed: 1,
    },
  },
  {
    what: 'a set',
    call: (c, v) => c.set('api.request.users', `u-${v}`, ['request_id:r4']),
    sent: (v) => `api.request.users:u-${v}|s|#${G},request_id:r4`,
    a: {
      out: (v) => `api.request.users:u-${v}|s|#env:prod,pod_name:p`,
      hits: ['allowApi', 's0'],
      strip: { s0: 2 },
      removed: 2,
    },
    b: {
      out: (v) => `api.request.users:u-${v}|s|#env:prod,pod_name:p,request_id:r4`,
      hits: ['allowApi', 's0'],
      strip: { s0: 1 },
      removed: 1,
    },
  },
  {
    what: 'an enforced and a dry-run rule: removed where one enforced rule removes, would-strip where only the dry one does',
    call: (c, v) =>
      c.distribution('payments.charge.amount', v, [
        'service:billing',
        'status:ok',
        'card_id:c1',
        'dd.internal.entity_id:e1',
      ]),
    sent: (v) => `payments.charge.amount:${v}|d|#${G},service:billing,status:ok,card_id:c1,dd.internal.entity_id:e1`,
    a: {
      out: (v) =>
        `payments.charge.amount:${v}|d|#env:prod,pod_name:p,service:billing,status:ok,card_id:c1,dd.internal.entity_id:e1`,
      hits: ['allowPayments', 's0', 's1'],
      strip: { s0: 1, s1: 3 },
      removed: 1,
      would: 2,
    },
  },
  {
    what: 'blocklist.tags k:v (a call tag overriding the global env)',
    call: (c, v) => c.increment('payments.refund', v, { env: 'dev' }),
    sent: (v) => `payments.refund:${v}|c|#user_id:u1,pod_name:p,env:dev`,
    a: { out: 'blocked', hits: ['envDev'] },
  },
  {
    what: 'blocklist.tags key, the tag without a value',
    call: (c, v) => c.increment('api.hits', v, ['synthetic']),
    sent: (v) => `api.hits:${v}|c|#${G},synthetic`,
    a: { out: 'blocked', hits: ['synthetic'] },
  },
  {
    what: 'blocklist.tags key, the tag with a value',
    call: (c, v) => c.increment('jobs.weekly.done', v, ['synthetic:yes']),
    sent: (v) => `jobs.weekly.done:${v}|c|#${G},synthetic:yes`,
    a: { out: 'blocked', hits: ['synthetic'] },
  },
  {
    what: "blocklist.tags: the line's first matching tag decides, not the first entry",
    call: (c, v) => c.increment('api.probe', v, ['synthetic:1', 'env:dev']),
    sent: (v) => `api.probe:${v}|c|#user_id:u1,pod_name:p,synthetic:1,env:dev`,
    a: { out: 'blocked', hits: ['synthetic'] },
  },
  {
    what: 'a tag-conditioned prefix, the tag present',
    call: (c, v) => c.increment('http.requests', v, ['region:staging']),
    sent: (v) => `http.requests:${v}|c|#${G},region:staging`,
    a: { out: 'blocked', hits: ['httpStaging'] },
  },
  {
    what: 'a name rule decides before blocklist.tags',
    call: (c, v) => c.increment('http.health', v, ['synthetic', 'region:staging']),
    sent: (v) => `http.health:${v}|c|#${G},region:staging,synthetic`,
    a: { out: 'blocked', hits: ['httpStaging'] },
  },
  {
    what: 'a tag-conditioned prefix, another value',
    call: (c, v) => c.increment('http.requests', v, ['region:eu']),
    sent: (v) => `http.requests:${v}|c|#${G},region:eu`,
    a: { out: 'same', hits: ['allowHttp'] },
  },
  {
    what: 'a prefix',
    call: (c, v) => c.increment('legacy.hits', v),
    sent: (v) => `legacy.hits:${v}|c|#${G}`,
    a: { out: 'blocked', hits: ['legacy'] },
  },
  {
    what: 'a name',
    call: (c, v) => c.increment('app.requests.old', v),
    sent: (v) => `app.requests.old:${v}|c|#${G}`,
    a: { out: 'blocked', hits: ['oldName'] },
  },
  {
    what: 'a glob',
    call: (c, v) => c.increment('api.debug.calls', v),
    sent: (v) => `api.debug.calls:${v}|c|#${G}`,
    a: { out: 'blocked', hits: ['debugGlob'] },
  },
  {
    what: 'the same glob with a tag condition (a key) beats the one without: dry-run, so forwarded unchanged',
    call: (c, v) => c.increment('api.debug.calls', v, ['keep:yes']),
    sent: (v) => `api.debug.calls:${v}|c|#${G},keep:yes`,
    a: { out: 'same', hits: ['debugKeep', 'allowApi'], dry: ['wouldBlock'] },
  },
  {
    what: 'a dry-run glob: would-block, then allowed and forwarded unchanged',
    call: (c, v) => c.increment('api.cache.tmp', v, ['user_id:u3']),
    sent: (v) => `api.cache.tmp:${v}|c|#env:prod,pod_name:p,user_id:u3`,
    a: { out: 'same', hits: ['tmpGlob', 'allowApi'], dry: ['wouldBlock'] },
  },
  {
    what: 'not in the allowlist',
    call: (c, v) => c.increment('other.metric', v),
    sent: (v) => `other.metric:${v}|c|#${G}`,
    a: { out: 'notAllowed', hits: [] },
    b: { out: 'same', hits: [], dry: ['wouldNotAllow'] },
  },
  {
    what: 'an allowlist name',
    call: (c, v) => c.gauge('up', v),
    sent: (v) => `up:${v}|g|#${G}`,
    a: { out: 'same', hits: ['allowUp'] },
  },
  {
    what: 'a name over maxNameLength: limits come before the blocklist',
    call: (c, v) => c.increment(NAME_41, v),
    sent: (v) => `${NAME_41}:${v}|c|#${G}`,
    a: { out: 'overLimit', hits: [] },
    b: { out: 'blocked', hits: ['legacy'], dry: ['wouldOverLimit'] },
  },
  {
    what: 'a name of maxNameLength',
    call: (c, v) => c.increment(NAME_40, v),
    sent: (v) => `${NAME_40}:${v}|c|#${G}`,
    a: { out: 'same', hits: ['allowApi'] },
  },
  {
    what: 'more than maxTags (global tags included)',
    call: (c, v) => c.increment('api.many.tags', v, SIX_TAGS),
    sent: (v) => `api.many.tags:${v}|c|#${G},${SIX_TAGS.join(',')}`,
    a: { out: 'overLimit', hits: [] },
    b: { out: 'same', hits: ['allowApi'], dry: ['wouldOverLimit'] },
  },
  {
    what: 'maxTags tags',
    call: (c, v) => c.increment('api.eight.tags', v, SIX_TAGS.slice(0, 5)),
    sent: (v) => `api.eight.tags:${v}|c|#${G},${SIX_TAGS.slice(0, 5).join(',')}`,
    a: { out: 'same', hits: ['allowApi'] },
  },
  {
    what: 'a tag over maxTagLength',
    call: (c, v) => c.increment('api.long.tag', v, [TAG_41]),
    sent: (v) => `api.long.tag:${v}|c|#${G},${TAG_41}`,
    a: { out: 'overLimit', hits: [] },
    b: { out: 'same', hits: ['allowApi'], dry: ['wouldOverLimit'] },
  },
  {
    what: 'a tag of maxTagLength',
    call: (c, v) => c.increment('api.edge.tag', v, [TAG_40]),
    sent: (v) => `api.edge.tag:${v}|c|#${G},${TAG_40}`,
    a: { out: 'same', hits: ['allowApi'] },
  },
  // Events and service checks: no rule of any kind applies, whatever their names, titles and tags.
  {
    what: 'an event with blocked tags and strip keys',
    call: (c, v) =>
      c.event('Deploy', `text ${v}`, { aggregation_key: 'k1', alert_type: 'info' }, [
        'env:dev',
        'request_id:r9',
        'host:h2',
        'synthetic',
      ]),
    sent: (v) =>
      `_e{6,${`text ${v}`.length}}:Deploy|text ${v}|k:k1|t:info|#user_id:u1,pod_name:p,env:dev,request_id:r9,host:h2,synthetic`,
    a: FORWARDED,
  },
  {
    what: 'an event over every limit, titled like a blocked glob',
    call: (c, v) => c.event(`api.debug.deploy.of.a.very.long.title.${v}`, 'legacy.hits', {}, [...SIX_TAGS, TAG_41]),
    sent: (v) => {
      const title = `api.debug.deploy.of.a.very.long.title.${v}`
      return `_e{${title.length},11}:${title}|legacy.hits|#${G},${SIX_TAGS.join(',')},${TAG_41}`
    },
    a: FORWARDED,
  },
  {
    what: 'a service check named like a blocked prefix, with a blocked tag',
    call: (c, v) =>
      c.check('legacy.service', c.CHECKS.CRITICAL, { hostname: 'h1', message: `down ${v}` }, ['synthetic']),
    sent: (v) => `_sc|legacy.service|2|h:h1|#${G},synthetic|m:down ${v}`,
    a: FORWARDED,
  },
  {
    what: 'a service check named like a stripped metric',
    call: (c, v) => c.check('api.request.count', c.CHECKS.OK, { message: `ok ${v}` }, ['request_id:r5']),
    sent: (v) => `_sc|api.request.count|0|#${G},request_id:r5|m:ok ${v}`,
    a: FORWARDED,
  },
  {
    what: 'a service check outside the allowlist, its name over maxNameLength, with a blocked tag',
    call: (c, v) =>
      c.check('other.service.with.a.name.over.forty.bytes', c.CHECKS.WARNING, { message: `w ${v}` }, { env: 'dev' }),
    sent: (v) => `_sc|other.service.with.a.name.over.forty.bytes|1|#user_id:u1,pod_name:p,env:dev|m:w ${v}`,
    a: FORWARDED,
  },
]
const EVENTS = CALLS.filter((c) => c.sent(1).startsWith('_'))

const effect = (call: Call, phase: Phase): Effect => (phase === 'b' ? (call.b ?? call.a) : call.a)

/** The line at the sink for `call` in round `v`, or null. */
function outLine(call: Call, phase: Phase, v: number): string | null {
  const { out } = effect(call, phase)
  if (out === 'same') return call.sent(v)
  return typeof out === 'function' ? out(v) : null
}

/** Every call of the rounds `from..to`, round by round, in call order. */
function each<T>(from: number, to: number, f: (call: Call, v: number) => T): T[] {
  const out: T[] = []
  for (let v = from; v <= to; v++) for (const call of CALLS) out.push(f(call, v))
  return out
}

const TYPE_COUNTERS = {
  c: 'linesStrippedC',
  g: 'linesStrippedG',
  ms: 'linesStrippedMs',
  h: 'linesStrippedH',
  s: 'linesStrippedS',
  d: 'linesStrippedD',
} as const

/** The counters of the rounds `from..to` under a phase's rules (the datagrams and bytes out are what the sink got). */
function expectedCounters(phase: Phase, from: number, to: number, sink: Sink): CounterSnapshot {
  const c: CounterSnapshot = { ...NO_COUNTS }
  each(from, to, (call, v) => {
    const e = effect(call, phase)
    const sent = call.sent(v)
    c.datagramsIn++
    c.bytesIn += Buffer.byteLength(sent)
    c.linesIn++
    if (e.out === 'blocked') c.linesBlocked++
    else if (e.out === 'notAllowed') c.linesNotAllowed++
    else if (e.out === 'overLimit') c.linesOverLimit++
    else c.linesForwarded++
    for (const d of e.dry ?? []) {
      if (d === 'wouldBlock') c.linesWouldBlock++
      else if (d === 'wouldNotAllow') c.linesWouldNotAllow++
      else c.linesWouldOverLimit++
    }
    if ((e.removed ?? 0) > 0) {
      c.linesTagsStripped++
      c.tagsStripped += e.removed ?? 0
      c[TYPE_COUNTERS[sent.split('|')[1] as keyof typeof TYPE_COUNTERS]]++
    }
    if ((e.would ?? 0) > 0) {
      c.linesTagsWouldStrip++
      c.tagsWouldStrip += e.would ?? 0
    }
  })
  return { ...c, datagramsOut: sink.datagrams.length, bytesOut: sink.bytes() }
}

interface RuleCounts {
  hits: number
  linesStripped: number
  tagsStripped: number
}

/** Per rule: the hits (and for strip rules the lines and tags) of the rounds `from..to` under a phase's rules. */
function expectedRuleCounts(phase: Phase, from: number, to: number): Map<RuleName, RuleCounts> {
  const counts = new Map(RULE_NAMES.map((name) => [name, { hits: 0, linesStripped: 0, tagsStripped: 0 }]))
  each(from, to, (call) => {
    const e = effect(call, phase)
    for (const name of e.hits) (counts.get(name) as RuleCounts).hits++
    for (const name of STRIPS) {
      const tags = e.strip?.[name] ?? 0
      if (tags === 0) continue
      if (!e.hits.includes(name)) throw new Error(`${call.what}: ${name} strips without a hit`)
      const c = counts.get(name) as RuleCounts
      c.linesStripped++
      c.tagsStripped += tags
    }
  })
  return counts
}

function addCounts(a: Map<RuleName, RuleCounts>, b: Map<RuleName, RuleCounts>): Map<RuleName, RuleCounts> {
  return new Map(
    RULE_NAMES.map((name) => {
      const x = a.get(name) as RuleCounts
      const y = b.get(name) as RuleCounts
      return [
        name,
        {
          hits: x.hits + y.hits,
          linesStripped: x.linesStripped + y.linesStripped,
          tagsStripped: x.tagsStripped + y.tagsStripped,
        },
      ]
    }),
  )
}

/** The /rules rows of a phase with these counts, every lastHit of a rule with hits as 'ISO' (see lastHitsChecked). */
function expectedRows(phase: Phase, counts: Map<RuleName, RuleCounts>): Record<string, unknown>[] {
  return RULE_NAMES.map((name) => {
    const c = counts.get(name) as RuleCounts
    const row = { ...ruleRow(name, phase), hits: c.hits, lastHit: c.hits === 0 ? null : 'ISO' }
    return (STRIPS as readonly string[]).includes(name)
      ? { ...row, linesStripped: c.linesStripped, tagsStripped: c.tagsStripped }
      : row
  })
}

interface RulesBody {
  mode: string
  count: number
  rules: Record<string, unknown>[]
}

async function getRules(port: number, query = ''): Promise<RulesBody> {
  const reply = await http(port, `/rules${query}`)
  if (reply.status !== 200) throw new Error(`GET /rules${query}: ${reply.status} ${reply.body}`)
  return JSON.parse(reply.body) as RulesBody
}

/** Checks every lastHit (an ISO time within [from, to], or null) and returns the rows with each time as 'ISO'. */
/**
 * The rows with lastHit checked (an ISO time within the test) and replaced by 'ISO', and a strip rule's forecast
 * checked for its shape and taken out (its figures are estimates: test/cardinality-limits.test.ts checks them).
 */
function lastHitsChecked(tt: Test, body: RulesBody, from: number, to: number): Record<string, unknown>[] {
  return body.rules.map((entry) => {
    const { series, ...row } = entry as Record<string, unknown> & { series?: Record<string, number> }
    if (row.action === 'strip')
      tt.ok(
        series !== undefined && series.saved === Math.max(0, series.before - series.after) && series.after >= 0,
        `rule ${String(row.index)}: series before/after/saved ${JSON.stringify(series)}`,
      )
    if (row.lastHit === null) return row
    const ms = Date.parse(String(row.lastHit))
    tt.ok(
      row.lastHit === new Date(ms).toISOString() && ms >= from && ms <= to,
      `rule ${String(row.index)}: lastHit ${String(row.lastHit)} is an ISO time within the test`,
    )
    return { ...row, lastHit: 'ISO' }
  })
}

/** The /metrics series of issue 10 (and the line counters they sit beside) expected for these counters. */
function expectedSeries(c: CounterSnapshot, phase: Phase): Record<string, Record<string, number>> {
  const one = (n: number): Record<string, number> => ({ '{}': n })
  const allowEnforce = phase === 'a' ? 5 : 0
  return {
    lines_received_total: one(c.linesIn),
    lines_forwarded_total: one(c.linesForwarded),
    lines_would_block_total: one(c.linesWouldBlock),
    lines_dropped_total: {
      '{reason="blocked"}': c.linesBlocked,
      '{reason="not_allowed"}': c.linesNotAllowed,
      '{reason="over_limit"}': c.linesOverLimit,
      '{reason="cardinality_limit"}': 0,
      '{reason="malformed"}': 0,
      '{reason="backpressure"}': 0,
      '{reason="send_error"}': 0,
    },
    lines_would_drop_total: {
      '{reason="not_allowed"}': c.linesWouldNotAllow,
      '{reason="over_limit"}': c.linesWouldOverLimit,
    },
    lines_tags_stripped_total: {
      '{type="c"}': c.linesStrippedC,
      '{type="g"}': c.linesStrippedG,
      '{type="ms"}': c.linesStrippedMs,
      '{type="h"}': c.linesStrippedH,
      '{type="s"}': c.linesStrippedS,
      '{type="d"}': c.linesStrippedD,
      '{type="other"}': 0,
    },
    tags_stripped_total: one(c.tagsStripped),
    lines_tags_would_strip_total: one(c.linesTagsWouldStrip),
    tags_would_strip_total: one(c.tagsWouldStrip),
    rules: {
      '{action="enforce",kind="prefix"}': 2,
      '{action="dry_run",kind="prefix"}': 0,
      '{action="enforce",kind="name"}': 1,
      '{action="dry_run",kind="name"}': 0,
      '{action="enforce",kind="glob"}': 1,
      '{action="dry_run",kind="glob"}': 2,
      '{action="enforce",kind="tag"}': 2,
      '{action="dry_run",kind="tag"}': 0,
      '{action="enforce",kind="allow"}': allowEnforce,
      '{action="dry_run",kind="allow"}': 5 - allowEnforce,
      '{action="enforce",kind="strip_tags"}': 2,
      '{action="dry_run",kind="strip_tags"}': 1,
      '{action="enforce",kind="cardinality_limit"}': 0,
      '{action="dry_run",kind="cardinality_limit"}': 0,
    },
  }
}

function series(samples: readonly PromSample[], names: readonly string[]): Record<string, Record<string, number>> {
  return Object.fromEntries(names.map((name) => [name, promSeries(samples, P + name)]))
}

/** What the start and reload log lines count. */
const RULE_KINDS = { prefixes: 2, names: 1, globs: 3, tags: 2, allow: 5, stripTags: 3 }

function hotShots(tt: Test, port: number, errors: Error[]): StatsD {
  const c = new StatsD({
    host: '127.0.0.1',
    port,
    mock: false,
    datadog: true,
    globalTags: GLOBAL_TAGS,
    includeDataDogTags: false,
    includeDatadogTelemetry: false,
    originDetection: false,
    errorHandler: (err) => errors.push(err),
  })
  tt.teardown(() => new Promise<void>((resolve) => c.close(() => resolve())))
  return c
}

/** Makes every sampling decision "keep" so `|@0.5` is written deterministically. */
function unsampled(fn: () => void): void {
  const random = Math.random
  Math.random = () => 0
  try {
    fn()
  } finally {
    Math.random = random
  }
}

/** With reader threads, sends rounds until each reader has read some (at most this many). */
const MAX_ROUNDS = 50

interface Sent {
  /** The rounds sent. */
  from: number
  to: number
  counters: CounterSnapshot
}

/**
 * Sends rounds `from`, `from + 1`, ... through a hot-shots client to the proxy, and through another to a sink of
 * the test's own (what hot-shots writes, to compare with CALLS), each round waited for: one round, or with reader
 * threads as many as it takes for each reader to have read lines since `before` (so /rules and the counters are
 * sums over readers that each saw traffic). Returns the counters since `before`.
 */
async function sendRounds(tt: Test, r: Rig, phase: Phase, from: number, before: CounterSnapshot): Promise<Sent> {
  const direct = await sinkFor(tt)
  const errors: Error[] = []
  const viaProxy = hotShots(tt, r.proxy.listen.port, errors)
  const straight = hotShots(tt, direct.port, errors)
  const readersBefore = [...r.proxy.workers().linesIn]
  let to = from - 1
  let counters: CounterSnapshot
  let spread: boolean
  do {
    const v = ++to
    unsampled(() => {
      for (const { call } of CALLS) call(straight, v)
      for (const { call } of CALLS) call(viaProxy, v)
    })
    const n = CALLS.length * (to - from + 1)
    await waitFor(
      () => direct.datagrams.length === n,
      () => `${direct.datagrams.length}/${n} datagrams at the direct sink`,
    )
    counters = await settled(r.proxy, r.sink, before, {
      datagramsIn: n,
      linesIn: n,
      linesOut: each(from, to, (call, w) => outLine(call, phase, w)).filter((l) => l !== null).length,
    })
    spread = r.proxy.workers().linesIn.every((lines, i) => lines > (readersBefore[i] ?? 0))
  } while (!spread && to - from + 1 < MAX_ROUNDS)
  tt.ok(spread, `every reader read lines: ${r.proxy.workers().linesIn.join(' / ')} after ${to - from + 1} round(s)`)
  tt.same(
    direct.datagrams.map((d) => d.toString()),
    each(from, to, (call, v) => call.sent(v)),
    'hot-shots writes the lines the test expects, one per datagram',
  )
  tt.same(errors, [], 'hot-shots reported no error')
  return { from, to, counters }
}

/** Exact bytes at the sink and every counter, for the rounds sent under a phase's rules. */
function assertTraffic(tt: Test, r: Rig, topology: Topology, phase: Phase, sent: Sent): void {
  const { from, to, counters: c } = sent
  const out = each(from, to, (call, v) => outLine(call, phase, v)).filter((l) => l !== null)
  assertLines(tt, r.sink, out, topology, 'the forwarded lines')
  const events = each(from, to, (call, v) => (EVENTS.includes(call) ? call.sent(v) : null)).filter((l) => l !== null)
  tt.same(
    [...r.sink.lines().filter((l) => l.startsWith('_'))].sort(),
    [...events].sort(),
    'every event and service check, unchanged',
  )
  tt.same(c, expectedCounters(phase, from, to, r.sink), 'every counter')
  tt.equal(c.bytesOut, byteLength(out) + out.length - r.sink.datagrams.length, 'the lines plus one \\n between two')
  assertInvariant(tt, c)
}

const SERIES = Object.keys(expectedSeries(NO_COUNTS, 'a'))

eachTopology(t, async (t, topology) => {
  const started = Date.now()
  const sink = await sinkFor(t)
  const file = configFile(t, filterYaml(sink.port, topology, 'a'))
  const r = await rig(t, file, sink, null)
  let phaseA: Sent | null = null

  await t.test('the file in force: every rule kind from filter.yaml', async (t) => {
    const start = withMsg(r, 'statsd-filter-proxy started')
    t.equal(start.length, 1)
    t.match(start[0], { rules: RULE_KINDS, workers: topology.workers })
    t.same(withMsg(r, FAILED), [])
  })

  await t.test('hot-shots with global tags through every rule kind: the exact bytes and every counter', async (t) => {
    const before = await fresh(r.proxy, r.sink)
    t.same(before, NO_COUNTS, 'a new proxy')
    phaseA = await sendRounds(t, r, 'a', 1, before)
    assertTraffic(t, r, topology, 'a', phaseA)
  })

  await t.test(
    '/rules: every rule with its hits, lastHit, lines and tags stripped (summed over readers)',
    async (t) => {
      const a = present(phaseA, 'the traffic of the first file')
      const body = await getRules(r.port)
      const rows = lastHitsChecked(t, body, started, Date.now())
      t.same(
        { mode: body.mode, count: body.count, rules: rows },
        { mode: 'enforce', count: RULE_NAMES.length, rules: expectedRows('a', expectedRuleCounts('a', a.from, a.to)) },
      )
      t.same(await getRules(r.port, '?unused=1'), { mode: 'enforce', count: 0, rules: [] }, 'every rule was hit')
      const stats = await r.proxy.rules()
      t.same(Array.from(stats.hits), rows.map((row) => row.hits) as number[], 'proxy.rules(): the same hits')
    },
  )

  await t.test('/metrics: the tag-rule series', async (t) => {
    const a = present(phaseA, 'the traffic of the first file')
    const c = await r.proxy.counters()
    t.same(c, expectedCounters('a', a.from, a.to, r.sink), 'the counters since the start: the traffic alone')
    t.same(series(await scrape(r.port), SERIES), expectedSeries(c, 'a'))
  })

  await t.test('a reload keeps the hits of unchanged rules and resets the changed strip rule', async (t) => {
    const a = present(phaseA, 'the traffic of the first file')
    const beforeReload = await getRules(r.port)
    writeFileSync(file, filterYaml(sink.port, topology, 'b'))
    t.same(await postReload(r), { status: 200, type: 'application/json', result: OK }, 'POST /-/reload: 200')
    t.equal(withMsg(r, RELOADED).length, 1, 'one reload')
    t.match(withMsg(r, RELOADED)[0], { trigger: 'http', mode: 'enforce', rules: RULE_KINDS })
    t.same(withMsg(r, FAILED), [])

    const afterReload = await getRules(r.port)
    const s0 = RULE_NAMES.indexOf('s0')
    const allow = new Set(RULE_NAMES.filter((n) => n.startsWith('allow')).map((n) => RULE_NAMES.indexOf(n)))
    t.same(
      afterReload,
      {
        mode: 'enforce',
        count: RULE_NAMES.length,
        rules: beforeReload.rules.map((row, i) => {
          if (i === s0)
            return {
              ...ruleRow('s0', 'b'),
              hits: 0,
              lastHit: null,
              linesStripped: 0,
              tagsStripped: 0,
              series: { before: 0, after: 0, saved: 0 },
            }
          return allow.has(i) ? { ...row, dryRun: true } : row
        }),
      },
      'every rule as it was (hits, lastHit, lines and tags stripped), but s0 (its keys changed: a new rule) and the allowlist dry-run',
    )
    t.same(
      await getRules(r.port, '?unused=1'),
      { mode: 'enforce', count: 1, rules: [afterReload.rules[s0]] },
      '?unused=1: the new rule',
    )

    const before = await fresh(r.proxy, r.sink)
    const b = await sendRounds(t, r, 'b', a.to + 1, before)
    assertTraffic(t, r, topology, 'b', b)

    const total = addCounts(expectedRuleCounts('a', a.from, a.to), expectedRuleCounts('b', b.from, b.to))
    total.set('s0', expectedRuleCounts('b', b.from, b.to).get('s0') as RuleCounts)
    const body = await getRules(r.port)
    t.same(
      { mode: body.mode, count: body.count, rules: lastHitsChecked(t, body, started, Date.now()) },
      { mode: 'enforce', count: RULE_NAMES.length, rules: expectedRows('b', total) },
      '/rules: the hits from before the reload and after it; s0 from the reload on',
    )
    const c = await r.proxy.counters()
    t.same(series(await scrape(r.port), SERIES), expectedSeries(c, 'b'), '/metrics: totals over both files')
    assertInvariant(t, c)
  })
})
