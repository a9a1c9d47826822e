// The cardinality view through the filter (src/filter.ts forward/observe, the assembler's appendHashing, the
// tracker's recent lines): what GET /cardinality reports is the series of the lines as they leave, each series
// once however often and in whatever tag order it comes, counted again in a new window half.
import t, { type Test } from 'tap'
import { RuleSet } from '../src/match/rule-set.ts'
import type { FilterRules } from '../src/match/rules.ts'
import { createPipeline, type Pipeline } from '../src/pipeline.ts'
import { mergeCardinality, type CardinalityRow, type CardinalityView } from '../src/telemetry/cardinality.ts'
import { CaptureTarget } from './fixtures/reference.ts'
import { filterRules, stripRule } from './fixtures/rules.ts'
import { memoryLogger } from './fixtures/udp.ts'

function pipeline(t: Test, rules: FilterRules): Pipeline {
  const { log } = memoryLogger('warn')
  const path = createPipeline({
    rules: RuleSet.fromRules(rules, 'enforce'),
    target: new CaptureTarget(),
    maxPacketSize: 1432,
    insights: true,
    cardinality: { trackedNames: 16, windowMs: 600_000 },
    log,
  })
  t.teardown(() => path.close())
  path.filter.tick(0)
  return path
}

function send(path: Pipeline, lines: string[]): void {
  for (let i = 0; i < lines.length; i += 10) {
    const datagram = Buffer.from(lines.slice(i, i + 10).join('\n'))
    path.filter.handleDatagram(datagram, 0, datagram.length)
  }
  path.assembler.flush()
}

function view(path: Pipeline): CardinalityView {
  if (path.cardinality === null) throw new Error('the view is off')
  return mergeCardinality([path.cardinality.report(5)], 5)
}

function row(rows: CardinalityRow[], name: string): CardinalityRow {
  const found = rows.find((r) => r.name === name)
  if (found === undefined) throw new Error(`no row for ${name} in ${JSON.stringify(rows)}`)
  return found
}

const within = (actual: number, expected: number, relative: number): boolean =>
  Math.abs(actual - expected) <= relative * expected

t.test('20,000 series, each sent three times in other tag orders and values: estimated within 3%', async (t) => {
  const path = pipeline(t, filterRules({ blocklist: { prefixes: ['blocked.'] } }))
  const lines: string[] = []
  for (let i = 0; i < 20_000; i++) {
    lines.push(`api.req:${i}|c|#env:prod,user_id:u${i}`)
    lines.push(`api.req:1|c|#env:prod,user_id:u${i}`) // the same line again: recent
    lines.push(`api.req:2|c|#user_id:u${i},env:prod,env:prod`) // the same series, another order
    lines.push(`blocked.x:1|c|#user_id:u${i}`) // dropped: not a series the agent sees
  }
  send(path, lines)
  const api = row(view(path).sinceStart, 'api.req')
  t.ok(within(api.series, 20_000, 0.03), `series ${api.series}`)
  t.equal(
    view(path).sinceStart.some((r) => r.name === 'blocked.x'),
    false,
    'blocked lines are not counted',
  )
  t.equal(api.keys[0].key, 'user_id')
  t.ok(within(api.keys[0].values, 20_000, 0.1), `user_id values ${api.keys[0].values}`)
})

t.test('a new window half counts the lines it sees again, recent or not', async (t) => {
  const path = pipeline(t, filterRules({}))
  const lines = Array.from({ length: 500 }, (_, i) => `m:1|g|#k:${i}`)
  send(path, lines)
  send(path, lines)
  path.filter.tick(300_000) // the next half: the older one still in the window
  send(path, lines.slice(0, 100))
  path.filter.tick(600_000) // the half with all 500 is cleared
  send(path, lines.slice(0, 100))
  const v = view(path)
  t.ok(within(row(v.sinceStart, 'm').series, 500, 0.03), `since start ${row(v.sinceStart, 'm').series}`)
  t.ok(within(row(v.window, 'm').series, 100, 0.05), `window ${row(v.window, 'm').series}`)
})

t.test('the series of a stripped line is the one it leaves with', async (t) => {
  const path = pipeline(t, filterRules({ stripTags: [stripRule({ prefixes: ['api.'] }, { keys: ['request_id'] })] }))
  send(
    path,
    Array.from({ length: 3_000 }, (_, i) => `api.req:1|c|#env:prod,request_id:r${i},status:${i % 4}`),
  )
  const api = row(view(path).sinceStart, 'api.req')
  t.equal(api.series, 4, 'env and 4 statuses: 4 series after request_id goes')
  t.same(
    api.keys.map((k) => k.key),
    ['status', 'env'],
    'the stripped key is not among them',
  )
})

t.test('new rules: a line counted as it left under the old ones is counted again as it leaves now', async (t) => {
  const strip = filterRules({ stripTags: [stripRule({ prefixes: ['api.'] }, { keys: ['request_id'] })] })
  const path = pipeline(t, strip)
  const lines = Array.from({ length: 2_000 }, (_, i) => `api.req:1|c|#request_id:r${i},status:${i % 4}`)
  send(path, lines)
  t.equal(row(view(path).sinceStart, 'api.req').series, 4, 'stripped: 4 series')
  path.filter.setRules(RuleSet.fromRules(filterRules({}), 'enforce'))
  send(path, lines)
  const series = row(view(path).sinceStart, 'api.req').series
  t.ok(within(series, 2_004, 0.03), `unstripped now: every request_id is a series (${series})`)
})
