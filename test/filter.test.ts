// The filter stage on its own (src/filter.ts, assembled by src/pipeline.ts): every line lands in exactly one
// counter bucket, rule hits are stamped with the ticked clock, a dry-run match is forwarded and counted, a rule
// swap applies from the next datagram, malformed lines are reported at most once per gate interval.
import t, { type Test } from 'tap'
import { RuleSet } from '../src/match/rule-set.ts'
import type { FilterRules, TagRuleSpec } from '../src/match/rules.ts'
import { createPipeline, type Pipeline } from '../src/pipeline.ts'
import type { Counters, CounterSnapshot } from '../src/telemetry/counters.ts'
import { CaptureTarget } from './fixtures/reference.ts'
import { filterRules, stripRule } from './fixtures/rules.ts'
import { memoryLogger, present } from './fixtures/udp.ts'

function pipeline(
  t: Test,
  rules: RuleSet,
  insights = true,
): { path: Pipeline; target: CaptureTarget; records: Record<string, unknown>[] } {
  const target = new CaptureTarget()
  const { log, records } = memoryLogger('warn')
  const path = createPipeline({ rules, target, maxPacketSize: 1432, insights, log })
  t.teardown(() => path.close())
  return { path, target, records }
}

/** Forwarded lines, as the target received them. */
function forwarded(path: Pipeline, target: CaptureTarget): string[] {
  path.assembler.flush()
  return target.datagrams.flatMap((d) => d.toString('latin1').split('\n'))
}

/** One datagram, as the dgram listener hands it over: a buffer of its own. */
function receive(path: Pipeline, datagram: Buffer): void {
  path.filter.handleDatagram(datagram, 0, datagram.length)
}

const rules = (): RuleSet =>
  RuleSet.fromBlocklist({ prefixes: ['legacy.', { pattern: 'trial.', dryRun: true }], names: ['app.old'] }, 'enforce')

t.test('each line in one bucket: forwarded, blocked, would-block (forwarded), malformed', async (t) => {
  const { path, target } = pipeline(t, rules())
  const lines = [
    'app.ok:1|c|#env:prod',
    'legacy.x:2|g',
    'app.old:3|ms',
    'trial.y:4|c',
    'no-colon-or-pipe',
    '_e{1,1}:a|b',
    '_sc|check|0',
    'app.old.not-exact:5|c',
  ]
  receive(path, Buffer.from(lines.join('\n')))
  t.same(forwarded(path, target), [
    'app.ok:1|c|#env:prod',
    'trial.y:4|c',
    '_e{1,1}:a|b',
    '_sc|check|0',
    'app.old.not-exact:5|c',
  ])
  const c = path.counters
  t.same(
    [c.datagramsIn, c.linesIn, c.linesForwarded, c.linesBlocked, c.linesMalformed, c.linesWouldBlock],
    [1, 8, 5, 2, 1, 1],
  )
})

t.test('rule hits are stamped with the time of the last tick, not read per line', async (t) => {
  const set = rules()
  const { path } = pipeline(t, set)
  path.filter.tick(1_000_000)
  receive(path, Buffer.from('legacy.a:1|c\nlegacy.b:1|c\ntrial.c:1|c'))
  path.filter.tick(2_000_000)
  receive(path, Buffer.from('app.old:1|c'))
  const at = (pattern: string): number => set.rules.findIndex((r) => r.pattern === pattern)
  t.same([set.hits[at('legacy.')], set.lastHitMs[at('legacy.')]], [2, 1_000_000])
  t.same([set.hits[at('trial.')], set.lastHitMs[at('trial.')]], [1, 1_000_000])
  t.same([set.hits[at('app.old')], set.lastHitMs[at('app.old')]], [1, 2_000_000])
})

t.test('insights: false keeps no hits and no sketches', async (t) => {
  const set = rules()
  const { path } = pipeline(t, set, false)
  receive(path, Buffer.from('legacy.a:1|c'))
  t.equal(path.insights, null)
  t.same([...set.hits], [0, 0, 0])
  t.equal(path.counters.linesBlocked, 1)
})

t.test('a datagram inside a receive area: only its bytes are read, and the area may be reused at once', async (t) => {
  const { path, target } = pipeline(t, rules())
  const area = Buffer.from('junk:1|c\nlegacy.x:1|c\napp.a:1|c|#k:v\nlegacy.y:1|g\ntail:1|c')
  const start = area.indexOf('legacy.x')
  const end = area.indexOf('\ntail')
  path.filter.handleDatagram(area, start, end)
  area.fill(0x78)
  t.same(forwarded(path, target), ['app.a:1|c|#k:v'])
  t.equal(path.counters.datagramsIn, 1)
  t.equal(path.counters.bytesIn, end - start)
  t.equal(path.counters.linesIn, 3)
  t.equal(path.counters.linesBlocked, 2)
})

t.test('the sketches see forwarded and blocked names apart', async (t) => {
  const { path } = pipeline(t, rules())
  // Sampling is 1 in 16 per line: enough lines that both names are seen.
  const datagram = Buffer.from(
    Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? 'keep.me:1|c' : 'legacy.z:1|c')).join('\n'),
  )
  for (let i = 0; i < 10; i++) receive(path, datagram)
  const top = present(path.insights, 'the insights').report(5)
  t.same(
    top.forwarded.map((e) => e.name),
    ['keep.me'],
  )
  t.same(
    top.blocked.map((e) => e.name),
    ['legacy.z'],
  )
})

t.test('setRules applies from the next datagram on', async (t) => {
  const { path, target } = pipeline(t, rules())
  receive(path, Buffer.from('new.rule:1|c'))
  path.filter.setRules(RuleSet.fromBlocklist({ prefixes: ['new.'], names: [] }, 'enforce'))
  receive(path, Buffer.from('new.rule:2|c\nlegacy.now-kept:1|c'))
  t.same(forwarded(path, target), ['new.rule:1|c', 'legacy.now-kept:1|c'])
  t.equal(path.counters.linesBlocked, 1)
})

t.test('mode dry-run: every match forwarded and counted as would-block', async (t) => {
  const { path, target } = pipeline(t, RuleSet.fromBlocklist({ prefixes: ['legacy.'], names: ['app.old'] }, 'dry-run'))
  receive(path, Buffer.from('legacy.a:1|c\napp.old:1|c\nother:1|c'))
  t.same(forwarded(path, target), ['legacy.a:1|c', 'app.old:1|c', 'other:1|c'])
  t.same([path.counters.linesBlocked, path.counters.linesWouldBlock, path.counters.linesForwarded], [0, 2, 3])
})

t.test('malformed lines: the first is logged with a sample, later ones counted as suppressed', async (t) => {
  const { path, records } = pipeline(t, rules())
  receive(path, Buffer.from('bad one\nbad two\nbad three'))
  const warnings = records.filter((r) => r.msg === 'malformed line dropped')
  t.equal(warnings.length, 1, 'one warning per gate interval')
  t.match(warnings[0], { sample: 'bad one', suppressed: 0, linesMalformed: 1 })
  t.equal(path.counters.linesMalformed, 3)
})

// ---- Tag rules (issue 10): RuleSet.fromRules, every rule kind, exact bytes out and every counter ----

/** A tag-conditioned or dry-run block entry. */
const entry = (pattern: string, o: { tag?: string; dryRun?: boolean } = {}): TagRuleSpec => ({
  pattern,
  dryRun: o.dryRun ?? false,
  ...(o.tag === undefined ? {} : { tag: o.tag }),
})

/** The line counters that are not zero (the datagram and byte counts left out). */
function lineCounts(c: Counters): Partial<CounterSnapshot> {
  const out: Partial<CounterSnapshot> = {}
  for (const [key, value] of Object.entries(c.snapshot()) as [keyof CounterSnapshot, number][])
    if (value !== 0 && !['datagramsIn', 'bytesIn', 'datagramsOut', 'bytesOut'].includes(key)) out[key] = value
  return out
}

interface Run {
  /** The forwarded lines (UTF-8: equal strings are equal bytes). */
  out: string[]
  /** The datagrams sent, as text. */
  datagrams: string[]
  counts: Partial<CounterSnapshot>
  set: RuleSet
  /** Hits of extra rule r (numbered in the order compileTagRules gives them). */
  extraHits: (r: number) => number
}

/**
 * The lines as one datagram, handed over inside a receive area between bytes the filter must not read (tags and
 * tag fields that would change the outcome if they were), the area overwritten right after.
 */
function run(
  t: Test,
  rules: FilterRules,
  lines: string[],
  o: { mode?: 'enforce' | 'dry-run'; insights?: boolean } = {},
): Run {
  const set = RuleSet.fromRules(rules, o.mode ?? 'enforce')
  const { path, target } = pipeline(t, set, o.insights ?? true)
  const datagram = Buffer.from(lines.join('\n'), 'utf8')
  const before = Buffer.from('env:1,host:h|#env:2\n', 'utf8')
  const after = Buffer.from(',env:3,k:v,synthetic|#env:4,a,b,c\n', 'utf8')
  const area = Buffer.concat([before, datagram, after])
  path.filter.handleDatagram(area, before.length, before.length + datagram.length)
  area.fill(0x78)
  path.assembler.flush()
  const datagrams = target.datagrams.map((d) => d.toString('utf8'))
  const out = datagrams.flatMap((d) => d.split('\n'))
  return { out, datagrams, counts: lineCounts(path.counters), set, extraHits: (r) => set.hits[set.firstTagRule + r] }
}

t.test('strip keys: the tags with a listed key go, the others keep their bytes and order', async (t) => {
  const r = run(t, filterRules({ stripTags: [stripRule({ prefixes: ['app.'] }, { keys: ['env', 'host'] })] }), [
    'app.a:1|c|#env:prod,team:x,host:h1',
    'app.b:2|g|#team:x,env:prod',
    'app.c:3|c|#team:x,environment:x,hostname:y,Env:1',
    'other:1|c|#env:prod',
    'app.d:4|ms|#env:prod',
  ])
  t.same(r.out, [
    'app.a:1|c|#team:x',
    'app.b:2|g|#team:x',
    'app.c:3|c|#team:x,environment:x,hostname:y,Env:1',
    'other:1|c|#env:prod',
    'app.d:4|ms',
  ])
  t.same(r.counts, {
    linesIn: 5,
    linesForwarded: 5,
    linesTagsStripped: 3,
    tagsStripped: 4,
    linesStrippedC: 1,
    linesStrippedG: 1,
    linesStrippedMs: 1,
  })
  t.same([r.extraHits(0), r.set.linesStripped[0], r.set.tagsStripped[0]], [4, 3, 4], 'hits: the lines it applied to')
})

t.test('strip rules past the removal table (1,100 rules x 1,105 keys): each decides by its own keys', async (t) => {
  const rules = Array.from({ length: 1_100 }, (_, i) => stripRule({ prefixes: [`m${i}.`] }, { keys: [`k${i}`] }))
  const r = run(t, filterRules({ stripTags: [...rules, stripRule({ prefixes: ['m7.'] }, { keepOnly: ['k8'] })] }), [
    'm7.x:1|c|#k7:a,k8:b,k9:c,host:h',
    'm8.x:1|c|#k7:a,k8:b,k9:c',
    'm1099.x:1|c|#k1099,k0',
  ])
  t.equal(r.set.tagMatcher?.removal, null, 'the table would be 1.2 MB: not made')
  t.same(r.out, ['m7.x:1|c|#k8:b,host:h', 'm8.x:1|c|#k7:a,k9:c', 'm1099.x:1|c|#k0'])
  t.same([r.counts.linesTagsStripped, r.counts.tagsStripped], [3, 4])
})

t.test('strip keepOnly: every unlisted key goes, except the protected ones; a keys rule removes those', async (t) => {
  const internal = 'host:h,dd.internal.entity_id:e,dd.internal.card:low,dd.internal.jmx_check_name:j'
  const r = run(t, filterRules({ stripTags: [stripRule({ names: ['req'] }, { keepOnly: ['service'] })] }), [
    `req:1|h|#service:api:v2,env:prod,${internal},pod:p,hostname:x`,
    'req:2|h|#env:prod,pod:p',
    'req:3|h|#service,,servicex:1,:v',
    'req:4|h|#service:a,host',
    'req.x:1|h|#env:prod',
  ])
  t.same(r.out, [
    `req:1|h|#service:api:v2,${internal}`,
    'req:2|h',
    'req:3|h|#service',
    'req:4|h|#service:a,host',
    'req.x:1|h|#env:prod',
  ])
  t.same(r.counts, { linesIn: 5, linesForwarded: 5, linesTagsStripped: 3, tagsStripped: 8, linesStrippedH: 3 })

  const keys = run(
    t,
    filterRules({ stripTags: [stripRule({ names: ['m'] }, { keys: ['host', 'dd.internal.card'] })] }),
    ['m:1|c|#host:h,dd.internal.card:high,dd.internal.entity_id:e,hosts:x'],
  )
  t.same(keys.out, ['m:1|c|#dd.internal.entity_id:e,hosts:x'])
  t.same(keys.counts, { linesIn: 1, linesForwarded: 1, linesTagsStripped: 1, tagsStripped: 2, linesStrippedC: 1 })
})

t.test('two rules on one line: a tag survives only if no applying rule removes it', async (t) => {
  const r = run(
    t,
    filterRules({
      stripTags: [
        stripRule({ prefixes: ['m'] }, { keys: ['a', 'x'] }),
        stripRule({ names: ['m'] }, { keepOnly: ['a', 'b'] }),
      ],
    }),
    ['m:1|c|#a:1,b:2,c:3,host:h', 'm:1|c|#b:1', 'mm:1|c|#a:1,c:3', 'm:1|c|#x:1,a'],
  )
  t.same(r.out, ['m:1|c|#b:2,host:h', 'm:1|c|#b:1', 'mm:1|c|#c:3', 'm:1|c'])
  t.same(r.counts, { linesIn: 4, linesForwarded: 4, linesTagsStripped: 3, tagsStripped: 5, linesStrippedC: 3 })
  t.same([r.extraHits(0), r.extraHits(1)], [4, 3], 'mm is not a name the keepOnly rule selects')
  // Per rule: every tag it removes, also one the other rule removes too (x:1 on the last line, counted once above).
  t.same([...r.set.linesStripped], [3, 2])
  t.same([...r.set.tagsStripped], [4, 2])
})

t.test('a rule reached through several entries applies once per line', async (t) => {
  const r = run(
    t,
    filterRules({
      stripTags: [
        stripRule({ prefixes: ['a', 'a.b'], names: ['a.b.c'], globs: ['**'] }, { keys: ['k'] }),
        stripRule({ names: ['a.b.c'] }, { keys: ['j'] }),
      ],
    }),
    ['a.b.c:1|c|#k:1,j,i'],
  )
  t.same(r.out, ['a.b.c:1|c|#i'], 'the rule listed after one reached four times applies too')
  t.same([r.extraHits(0), r.set.linesStripped[0], r.set.tagsStripped[0]], [1, 1, 1])
  t.same([r.extraHits(1), r.set.linesStripped[1], r.set.tagsStripped[1]], [1, 1, 1])
  t.same(r.counts, { linesIn: 1, linesForwarded: 1, linesTagsStripped: 1, tagsStripped: 2, linesStrippedC: 1 })
})

t.test('dry-run strip: forwarded unchanged, counted as would-strip', async (t) => {
  const dry = run(t, filterRules({ stripTags: [stripRule({ prefixes: ['m'] }, { keys: ['env'], dryRun: true })] }), [
    'm:1|c|#env:1,x:2,env:3',
    'm:1|c|#x:2',
  ])
  t.same(dry.out, ['m:1|c|#env:1,x:2,env:3', 'm:1|c|#x:2'])
  t.same(dry.counts, { linesIn: 2, linesForwarded: 2, linesTagsWouldStrip: 1, tagsWouldStrip: 2 })
  t.same([dry.set.linesStripped[0], dry.set.tagsStripped[0]], [1, 2], 'per rule: what it would remove')

  // With an enforced rule too: a tag the enforced rule removes is stripped, not would-strip.
  const mixed = run(
    t,
    filterRules({
      stripTags: [
        stripRule({ prefixes: ['m'] }, { keys: ['x'] }),
        stripRule({ prefixes: ['m'] }, { keys: ['env', 'x'], dryRun: true }),
      ],
    }),
    ['m:1|c|#env:1,x:2,y'],
  )
  t.same(mixed.out, ['m:1|c|#env:1,y'])
  t.same(mixed.counts, {
    linesIn: 1,
    linesForwarded: 1,
    linesTagsStripped: 1,
    tagsStripped: 1,
    linesTagsWouldStrip: 1,
    tagsWouldStrip: 1,
    linesStrippedC: 1,
  })
  t.same([...mixed.set.tagsStripped], [1, 2])

  // Mode dry-run makes every strip rule dry-run.
  const mode = run(
    t,
    filterRules({ stripTags: [stripRule({ prefixes: ['m'] }, { keys: ['env'] })] }),
    ['m:1|c|#env:1'],
    {
      mode: 'dry-run',
    },
  )
  t.same(mode.out, ['m:1|c|#env:1'])
  t.same(mode.counts, { linesIn: 1, linesForwarded: 1, linesTagsWouldStrip: 1, tagsWouldStrip: 1 })
})

t.test('strip types: only lines of those types; null is every type, unknown ones included', async (t) => {
  const r = run(
    t,
    filterRules({
      stripTags: [
        stripRule({ prefixes: ['m'] }, { keys: ['env'], types: ['c', 'g'] }),
        stripRule({ prefixes: ['n'] }, { keys: ['env'] }),
      ],
    }),
    [
      'm:1|c|#env:1',
      'm:1|g|#env:1',
      'm:1|ms|#env:1',
      'm:1|x|#env:1',
      'm:1|#env:1|#env:2',
      'n:1|x|#env:1',
      'n:1|#env:1|#env:2,k',
      'n:1|d|#env:1',
      'n:1|s|#env:1',
      'n:1||#env:1',
    ],
  )
  t.same(r.out, [
    'm:1|c',
    'm:1|g',
    'm:1|ms|#env:1',
    'm:1|x|#env:1',
    'm:1|#env:1|#env:2',
    'n:1|x',
    'n:1|#env:1|#k',
    'n:1|d',
    'n:1|s',
    'n:1|',
  ])
  t.same(r.counts, {
    linesIn: 10,
    linesForwarded: 10,
    linesTagsStripped: 7,
    tagsStripped: 7,
    linesStrippedC: 1,
    linesStrippedG: 1,
    linesStrippedS: 1,
    linesStrippedD: 1,
    linesStrippedOther: 3,
  })
  t.same([r.extraHits(0), r.extraHits(1)], [2, 5], 'a rule whose types exclude the line does not apply to it')
})

t.test('several tag fields, fields emptied whole, empty items, other fields kept in place byte for byte', async (t) => {
  const cases: [string, string][] = [
    [
      'm:1|c|#env:1|@0.5|#a,env:2,b|c:ctr|#env:3|T123|card:high|e:it-false|x:unknown',
      'm:1|c|@0.5|#a,b|c:ctr|T123|card:high|e:it-false|x:unknown',
    ],
    ['m:1|c|#a|#env:1', 'm:1|c|#a'],
    ['m:1|c|#env:1|#a', 'm:1|c|#a'],
    ['m:1|c|#env:1,env:2', 'm:1|c'],
    ['m:1|c|@1|#env:1,env:2|@2', 'm:1|c|@1|@2'],
    ['m:1|c|#|#env:1|@1', 'm:1|c|#|@1'],
    ['m:1|c|#a,,env:1,', 'm:1|c|#a,,'],
    ['m:1|c|#env:1,', 'm:1|c|#'],
    ['m:1|c|#,env:1', 'm:1|c|#'],
    ['m:1|c|#env:1,b,env:2,c,env:3', 'm:1|c|#b,c'],
    ['m:1|c|#a:env:1,env', 'm:1|c|#a:env:1'],
    ['m:1|c|#env:a:b,k:env:x', 'm:1|c|#k:env:x'],
    ['m:1:2:3|d|#env:1,b|@0.1', 'm:1:2:3|d|#b|@0.1'],
    ['m:é|c|#clé:été,env:été,指标', 'm:é|c|#clé:été,指标'],
  ]
  const r = run(
    t,
    filterRules({ stripTags: [stripRule({ prefixes: ['m'] }, { keys: ['env'] })] }),
    cases.map(([line]) => line),
  )
  t.same(
    r.out,
    cases.map(([, out]) => out),
  )
  t.same(r.counts, {
    linesIn: 14,
    linesForwarded: 14,
    linesTagsStripped: 14,
    tagsStripped: 20,
    linesStrippedC: 13,
    linesStrippedD: 1,
  })
})

t.test('a line over maxPacketSize: coalesced if stripping brings it under, else sent alone', async (t) => {
  const shrinks = `big:1|c|#${new Array(100).fill(`env:${'x'.repeat(20)}`).join(',')},k:v`
  const stays = `big:2|c|#${new Array(100).fill(`t:${'x'.repeat(20)}`).join(',')},env:1`
  t.ok(shrinks.length > 1432 && stays.length > 1432 + 6)
  const r = run(t, filterRules({ stripTags: [stripRule({ prefixes: ['big'] }, { keys: ['env'] })] }), [
    'a:1|c',
    shrinks,
    stays,
    'b:1|c',
  ])
  const stripped = stays.slice(0, -',env:1'.length)
  t.same(r.datagrams, ['a:1|c\nbig:1|c|#k:v', stripped, 'b:1|c'])
  t.same(r.counts, {
    linesIn: 4,
    linesForwarded: 4,
    linesTagsStripped: 2,
    tagsStripped: 101,
    linesStrippedC: 2,
    linesOversize: 1,
  })
})

t.test('nothing stripped: the line leaves byte-identical', async (t) => {
  const lines = [
    'm:1|c',
    'm:1|c|#',
    'm:1|c|#a,,b,|#|@1|#environment:x,en:v,ENV:1',
    'm:1|#env:1',
    'm:1|c|x#env:1| #env:2',
    'm:1|c|@0.5|c:abc|T1|card:low|#a:1',
    'm:1|c|#a:env,b:env:1',
  ]
  const r = run(t, filterRules({ stripTags: [stripRule({ prefixes: ['m'] }, { keys: ['env'] })] }), lines)
  t.same(r.out, lines)
  t.same(r.counts, { linesIn: lines.length, linesForwarded: lines.length })
  t.same([r.extraHits(0), r.set.linesStripped[0], r.set.tagsStripped[0]], [lines.length, 0, 0])
  // keepOnly with nothing but listed and protected keys (no empty items: keepOnly removes an empty key).
  const kept = ['m:1|c|#a,a:1,host:h,dd.internal.card:x|#a:2|@1', 'm:1|c|#|#']
  const k = run(t, filterRules({ stripTags: [stripRule({ prefixes: ['m'] }, { keepOnly: ['a'] })] }), kept)
  t.same(k.out, kept)
  t.same(k.counts, { linesIn: 2, linesForwarded: 2 })
})

t.test('events and service checks: no rule of any kind applies to them', async (t) => {
  const rules = filterRules({
    blocklist: {
      prefixes: ['_', entry('_e', { tag: 'env' })],
      names: ['_sc', entry('_e{1,1}', { tag: 'env' })],
      globs: ['**'],
      tags: ['env', 'host'],
    },
    allowlist: { names: ['nothing'] },
    stripTags: [
      stripRule({ globs: ['**'], prefixes: ['_'] }, { keepOnly: ['x'] }),
      stripRule({ prefixes: ['_'] }, { keys: ['env', 'host'] }),
    ],
    limits: { maxNameLength: 1, maxTags: 1, maxTagLength: 1 },
  })
  const kept = [
    '_e{5,4}:title|text|#env:prod,host:h,a:b',
    '_sc|check|0|#env:prod,host:h',
    '_e{1,1}:a|b',
    '_sc|x|1|d:1|h:host|#env:dev|m:msg',
  ]
  // With two metric lines, to show the rules are in force: one over a limit, one blocked by the glob.
  const r = run(t, rules, [...kept, '_e:1|c|#env', 'm:1|c'])
  t.same(r.out, kept)
  t.same(r.counts, { linesIn: 6, linesForwarded: 4, linesOverLimit: 1, linesBlocked: 1 })
  t.equal(
    r.set.hits.reduce((a, b) => a + b, 0),
    1,
    'no hit but the glob on m',
  )
  t.ok(
    [...r.set.linesStripped, ...r.set.tagsStripped].every((n) => n === 0),
    'no strip rule counted anything',
  )
  // In mode dry-run nothing would be done to them either.
  const dry = run(t, rules, kept, { mode: 'dry-run' })
  t.same(dry.out, kept)
  t.same(dry.counts, { linesIn: 4, linesForwarded: 4 })
  t.ok(
    [...dry.set.hits, ...dry.set.linesStripped, ...dry.set.tagsStripped].every((n) => n === 0),
    'dry-run: no hits, nothing would be stripped',
  )
})

t.test('block by a tag condition: k:v an exact tag, k any tag with key k, in any tag field', async (t) => {
  const r = run(
    t,
    filterRules({
      blocklist: {
        prefixes: [entry('p.', { tag: 'team' }), entry('q.', { tag: 'env', dryRun: true })],
        names: [entry('m', { tag: 'env:dev' })],
      },
    }),
    [
      'm:1|c|#env:dev',
      'm:1|c|#env:prod',
      'm:1|c|#a|@1|#b,env:dev',
      'm:1|c|#env:dev:x',
      'mm:1|c|#env:dev',
      'm:1|#env:dev',
      'm:1|#env:dev|#env:dev',
      'p.x:1|c|#team',
      'p.x:1|c|#team:a',
      'p.x:1|c|#teams:a,tea',
      'p.:1|c|#team:',
      'q.a:1|c|#env:1',
      'q.a:1|c',
    ],
  )
  t.same(r.out, [
    'm:1|c|#env:prod',
    'm:1|c|#env:dev:x',
    'mm:1|c|#env:dev',
    'm:1|#env:dev',
    'p.x:1|c|#teams:a,tea',
    'q.a:1|c|#env:1',
    'q.a:1|c',
  ])
  t.same(r.counts, { linesIn: 13, linesForwarded: 7, linesBlocked: 6, linesWouldBlock: 1 })
  // Extra rules: the tagged prefixes p. and q., then the tagged name m.
  t.same([0, 1, 2].map(r.extraHits), [3, 1, 3])
})

t.test('blocklist.tags: the first tag of the line that has an entry decides', async (t) => {
  const r = run(t, filterRules({ blocklist: { tags: ['env:dev', 'synthetic', entry('canary', { dryRun: true })] } }), [
    'a:1|c|#synthetic:1',
    'a:1|c|#synthetic',
    'a:1|c|#synthetics:1',
    'a:1|c|#env:dev',
    'a:1|c|#env:prod',
    'a:1|c|#canary:1',
    'a:1|c|#canary:1,synthetic',
    'a:1|c|#synthetic,canary:1',
    'a:1|c|#x|#canary',
    'a:1|#synthetic',
    '_e{1,1}:a|b|#synthetic',
  ])
  t.same(r.out, [
    'a:1|c|#synthetics:1',
    'a:1|c|#env:prod',
    'a:1|c|#canary:1',
    'a:1|c|#canary:1,synthetic',
    'a:1|c|#x|#canary',
    'a:1|#synthetic',
    '_e{1,1}:a|b|#synthetic',
  ])
  t.same(r.counts, { linesIn: 11, linesForwarded: 7, linesBlocked: 4, linesWouldBlock: 3 })
  t.same([0, 1, 2].map(r.extraHits), [1, 3, 3])

  // An exact k:v entry beats a key entry on the same tag, whatever their order.
  const exact = run(t, filterRules({ blocklist: { tags: [entry('env', { dryRun: true }), 'env:dev'] } }), [
    'a:1|c|#env:dev',
    'a:1|c|#env:prod',
  ])
  t.same(exact.out, ['a:1|c|#env:prod'])
  t.same(exact.counts, { linesIn: 2, linesForwarded: 1, linesBlocked: 1, linesWouldBlock: 1 })
  t.same([0, 1].map(exact.extraHits), [1, 1])
})

t.test('a name rule that decides (dry-run here) leaves blocklist.tags out', async (t) => {
  const r = run(t, filterRules({ blocklist: { names: [entry('n', { dryRun: true })], tags: ['env'] } }), [
    'n:1|c|#env:x',
    'o:1|c|#env:x',
  ])
  t.same(r.out, ['n:1|c|#env:x'])
  t.same(r.counts, { linesIn: 2, linesForwarded: 1, linesBlocked: 1, linesWouldBlock: 1 })
  t.same([r.set.hits[0], r.extraHits(0)], [1, 1], 'n hit by the name rule, o by the tag entry')
})

t.test('allowlist: a name no entry matches is dropped as not_allowed; the best entry gets the hit', async (t) => {
  const r = run(
    t,
    filterRules({
      blocklist: { names: ['app.bad'] },
      allowlist: { prefixes: ['app.'], names: ['sys.up'], globs: ['*.ok'] },
    }),
    [
      'app.x:1|c',
      'sys.up:1|g',
      'sys.upx:1|g',
      'x.ok:1|c',
      'x.y.ok:1|c',
      'other:1|c|#k:v',
      'app.bad:1|c',
      '_sc|x|0',
      'app.:1|c',
    ],
  )
  t.same(r.out, ['app.x:1|c', 'sys.up:1|g', 'x.ok:1|c', '_sc|x|0', 'app.:1|c'])
  t.same(r.counts, { linesIn: 9, linesForwarded: 5, linesNotAllowed: 3, linesBlocked: 1 })
  t.same([r.set.hits[0], ...[0, 1, 2].map(r.extraHits)], [1, 2, 1, 1])

  const best = run(t, filterRules({ allowlist: { prefixes: ['a', 'a.b'], names: ['a.b.c'], globs: ['**'] } }), [
    'a.b.c:1|c',
    'a.b.x:1|c',
    'a.x:1|c',
    'z:1|c',
  ])
  t.same(best.counts, { linesIn: 4, linesForwarded: 4 })
  t.same([0, 1, 2, 3].map(best.extraHits), [1, 1, 1, 1], 'a, a.b, a.b.c, ** once each')
})

t.test('allowlist dry-run: counted as would-not-allow and forwarded; a dry-run block goes on to it', async (t) => {
  const dry = run(t, filterRules({ allowlist: { prefixes: ['app.'], dryRun: true } }), ['other:1|c', 'app.x:1|c'])
  t.same(dry.out, ['other:1|c', 'app.x:1|c'])
  t.same(dry.counts, { linesIn: 2, linesForwarded: 2, linesWouldNotAllow: 1 })

  const mode = run(t, filterRules({ allowlist: { prefixes: ['app.'] } }), ['other:1|c'], { mode: 'dry-run' })
  t.same(mode.out, ['other:1|c'])
  t.same(mode.counts, { linesIn: 1, linesForwarded: 1, linesWouldNotAllow: 1 })

  const both = run(
    t,
    filterRules({ blocklist: { prefixes: [entry('o', { dryRun: true })] }, allowlist: { prefixes: ['app.'] } }),
    ['other:1|c'],
  )
  t.same(both.out, [])
  t.same(both.counts, { linesIn: 1, linesWouldBlock: 1, linesNotAllowed: 1 })
})

t.test('limits: name bytes, tags per line over every field, bytes per tag; before any block rule', async (t) => {
  const limits = { maxNameLength: 5, maxTags: 2, maxTagLength: 4 }
  const lines: [string, boolean][] = [
    ['abcde:1|c', true],
    ['abcdef:1|c', false],
    ['éé:1|c', true],
    ['ééé:1|c', false],
    ['a:1|c|#ab,cd', true],
    ['a:1|c|#a,b,c', false],
    ['a:1|c|#a|#b,c', false],
    ['a:1|c|#a,,', false],
    ['a:1|c|#|#|#a|@12345678', true],
    ['a:1|c|#abcd', true],
    ['a:1|c|#abcde', false],
    ['a:1|c|#é:é', false],
    ['a:1|#abcdefgh,i,j', true],
    ['_e{5,4}:title|text|#aaaaaaa,b,c', true],
  ]
  const r = run(
    t,
    filterRules({ blocklist: { names: ['abcdef'] }, limits }),
    lines.map(([l]) => l),
  )
  t.same(
    r.out,
    lines.filter(([, ok]) => ok).map(([l]) => l),
  )
  t.same(r.counts, { linesIn: 14, linesForwarded: 7, linesOverLimit: 7 })
  t.equal(r.set.hits[0], 0, 'over a limit: no block rule is looked at')

  for (const [how, o] of [
    ['limits.dryRun', { limits: { ...limits, dryRun: true }, mode: 'enforce' }],
    ['mode dry-run', { limits, mode: 'dry-run' }],
  ] as const) {
    const dry = run(
      t,
      filterRules({ blocklist: { names: ['abcdef'] }, limits: o.limits }),
      ['abcdef:1|c', 'a:1|c|#a,b,c'],
      {
        mode: o.mode,
      },
    )
    if (o.mode === 'enforce') {
      t.same(dry.out, ['a:1|c|#a,b,c'], how)
      t.same(dry.counts, { linesIn: 2, linesForwarded: 1, linesWouldOverLimit: 2, linesBlocked: 1 }, how)
    } else {
      t.same(dry.out, ['abcdef:1|c', 'a:1|c|#a,b,c'], how)
      t.same(dry.counts, { linesIn: 2, linesForwarded: 2, linesWouldOverLimit: 2, linesWouldBlock: 1 }, how)
    }
  }
})

t.test('precedence: an exact name, else the longest prefix, else the first glob in the file', async (t) => {
  const r = run(
    t,
    filterRules({
      blocklist: {
        prefixes: ['a.', entry('a.b.', { dryRun: true }), entry('g.', { dryRun: true })],
        names: ['a.b.c'],
        globs: ['g.*', entry('**.z', { dryRun: true }), 'h.*'],
      },
    }),
    ['a.b.c:1|c', 'a.b.c.d:1|c', 'a.x:1|c', 'a.b.:1|c', 'g.x:1|c', 'h.z:1|c', 'h.y:1|c'],
  )
  t.same(r.out, ['a.b.c.d:1|c', 'a.b.:1|c', 'g.x:1|c', 'h.z:1|c'])
  t.same(r.counts, { linesIn: 7, linesForwarded: 4, linesBlocked: 3, linesWouldBlock: 4 })
  // Table: a. a.b. g. a.b.c; extra: the globs g.*, **.z, h.*.
  t.same([...r.set.hits], [1, 2, 1, 1, 0, 1, 1])
})

t.test(
  'precedence: a tagged rule beats an untagged one at the same pattern and kind, not a better match',
  async (t) => {
    const same = run(
      t,
      filterRules({
        blocklist: {
          prefixes: [entry('t.', { dryRun: true }), entry('t.', { tag: 'k' })],
          names: [entry('n', { dryRun: true }), entry('n', { tag: 'k' })],
          globs: [entry('g.*', { dryRun: true }), entry('g.*', { tag: 'k' })],
        },
      }),
      ['t.x:1|c|#k', 't.x:1|c|#j', 'n:1|c|#k:1', 'n:1|c', 'g.x:1|c|#k', 'g.x:1|c'],
    )
    t.same(same.out, ['t.x:1|c|#j', 'n:1|c', 'g.x:1|c'])
    t.same(same.counts, { linesIn: 6, linesForwarded: 3, linesBlocked: 3, linesWouldBlock: 3 })

    const dryTagged = run(
      t,
      filterRules({ blocklist: { prefixes: [entry('u.', { tag: 'k', dryRun: true }), 'u.'] } }),
      ['u.x:1|c|#k', 'u.x:1|c'],
    )
    t.same(dryTagged.out, ['u.x:1|c|#k'], 'the tagged rule decides even though it is dry-run')
    t.same(dryTagged.counts, { linesIn: 2, linesForwarded: 1, linesBlocked: 1, linesWouldBlock: 1 })

    const longer = run(
      t,
      filterRules({
        blocklist: {
          prefixes: [entry('a.', { tag: 'k' }), entry('a.b', { dryRun: true }), entry('p', { dryRun: true })],
        },
      }),
      ['a.b.c:1|c|#k', 'a.c:1|c|#k'],
    )
    t.same(longer.out, ['a.b.c:1|c|#k'], 'the longer untagged prefix beats the shorter tagged one')
    t.same(longer.counts, { linesIn: 2, linesForwarded: 1, linesBlocked: 1, linesWouldBlock: 1 })

    const literal = run(
      t,
      filterRules({ blocklist: { prefixes: [entry('p', { dryRun: true })], globs: [entry('p.*', { tag: 'k' })] } }),
      ['p.x:1|c|#k'],
    )
    t.same(literal.out, ['p.x:1|c|#k'], 'a tagged glob does not beat a literal prefix')
    t.same(literal.counts, { linesIn: 1, linesForwarded: 1, linesWouldBlock: 1 })

    const order = run(
      t,
      filterRules({
        blocklist: {
          prefixes: [
            entry('w.', { tag: 'k', dryRun: true }),
            entry('w.', { tag: 'k' }),
            entry('v.', { tag: 'j', dryRun: true }),
            entry('v.', { tag: 'k' }),
          ],
        },
      }),
      ['w.x:1|c|#k', 'v.x:1|c|#k'],
    )
    t.same(order.out, ['w.x:1|c|#k'], 'two tagged rules: the first in the file whose condition holds')
    t.same(order.counts, { linesIn: 2, linesForwarded: 1, linesBlocked: 1, linesWouldBlock: 1 })
    t.same([0, 1, 2, 3].map(order.extraHits), [1, 0, 0, 1])
  },
)

t.test('insights off: no rule hits, the line counters as ever', async (t) => {
  const rules = filterRules({
    blocklist: { prefixes: ['x.', entry('b.', { tag: 'k' })], globs: ['g.*'], tags: ['bad'] },
    allowlist: { prefixes: ['a', 'b', 'g', 'x', 'z'] },
    stripTags: [stripRule({ prefixes: ['a'] }, { keys: ['env'] })],
  })
  const r = run(t, rules, ['a:1|c|#env:1,k', 'b.1:1|c|#k', 'g.1:1|c', 'x.1:1|c', 'z:1|c|#bad', 'q:1|c'], {
    insights: false,
  })
  t.same(r.out, ['a:1|c|#k'])
  t.same(r.counts, {
    linesIn: 6,
    linesForwarded: 1,
    linesBlocked: 4,
    linesNotAllowed: 1,
    linesTagsStripped: 1,
    tagsStripped: 1,
    linesStrippedC: 1,
  })
  t.same([...r.set.hits], new Array(r.set.size).fill(0))
  t.same([...r.set.lastHitMs], new Array(r.set.size).fill(0))
})

t.test('a table rule with no extra block rule to outrank it: blocks at once, after the limits', async (t) => {
  const r = run(
    t,
    filterRules({
      blocklist: { prefixes: ['x.', entry('d.', { dryRun: true })] },
      allowlist: { prefixes: ['a.'] },
      stripTags: [stripRule({ prefixes: ['x', 'd', 'a'] }, { keys: ['env'] })],
      limits: { maxTags: 2 },
    }),
    ['x.1:1|c|#env:1', 'x.1:1|c|#a,b,c', 'd.1:1|c|#env:1', 'a.1:1|c|#env:1,k'],
  )
  t.same(r.out, ['a.1:1|c|#k'])
  t.same(r.counts, {
    linesIn: 4,
    linesForwarded: 1,
    linesBlocked: 1,
    linesOverLimit: 1,
    linesWouldBlock: 1,
    linesNotAllowed: 1,
    linesTagsStripped: 1,
    tagsStripped: 1,
    linesStrippedC: 1,
  })
  // Table: x. and d.; extra: the allowlist's a., the strip rule (which applied to a.1 only).
  t.same([...r.set.hits], [1, 1, 1, 1])
})
