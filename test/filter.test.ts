// The filter stage on its own (src/filter.ts, assembled by src/pipeline.ts): every line lands in exactly one
// counter bucket, rule hits are stamped with the ticked clock, a dry-run match is forwarded and counted, a rule
// swap applies from the next datagram, malformed lines are reported at most once per gate interval.
import t, { type Test } from 'tap'
import { RuleSet } from '../src/match/rule-set.ts'
import { createPipeline, type Pipeline } from '../src/pipeline.ts'
import { CaptureTarget } from './fixtures/reference.ts'
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
