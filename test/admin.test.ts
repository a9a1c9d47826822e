// The admin HTTP server of a running proxy: probes, Prometheus metrics, rule hits and top talkers, after known
// traffic over real UDP sockets. Everything on 127.0.0.1, every port ephemeral (admin port 0, never 8128).
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startAdmin } from '../src/admin/server.ts'
import { loadAndCompile } from '../src/config/compile.ts'
import { RuleSet } from '../src/match/rule-set.ts'
import { SEND_POOL_SIZE } from '../src/pipeline.ts'
import { startProxy, type Proxy } from '../src/proxy.ts'
import type { CounterSnapshot } from '../src/telemetry/counters.ts'
import type { Logger } from '../src/telemetry/logger.ts'
import { TOP_TALKERS } from '../src/telemetry/top-talkers.ts'
import { configKeys, eachTopology, waitForCounters, type Topology } from './fixtures/topology.ts'
import {
  assertInvariant,
  createClient,
  http,
  memoryLogger,
  ownTestdir,
  promSeries,
  rawHttpConnection,
  scrape,
  silentLogger,
  startSink,
  TEST_ADMIN,
  testConfigWith,
  type Client,
  type Sink,
  ruleSeries,
} from './fixtures/udp.ts'

const P = 'statsd_filter_proxy_'
const JSON_TYPE = 'application/json'
const TEXT_TYPE = 'text/plain'
const PROMETHEUS_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
const NOT_FOUND = {
  error: 'not found',
  endpoints: ['/healthz', '/readyz', '/metrics', '/rules', '/top', '/cardinality', 'POST /-/reload'],
}
const BAD_N = { error: 'n must be an integer from 1 to 1000' }

interface Rig {
  proxy: Proxy
  sink: Sink
  client: Client
  /** The admin server's port. */
  port: number
}

/**
 * Sink, proxy (admin on 127.0.0.1:0, `workers` of the topology) forwarding to it, client sending to the proxy;
 * all closed at teardown.
 */
async function rig(
  tt: Test,
  topology: Topology,
  keys: Record<string, unknown>,
  log: Logger = silentLogger(),
): Promise<Rig> {
  const sink = await startSink()
  tt.teardown(() => sink.close())
  const proxy = await startProxy(testConfigWith(sink.port, { admin: TEST_ADMIN, ...topology.keys, ...keys }), log)
  tt.teardown(() => proxy.close())
  const client = await createClient(proxy.listen.port)
  tt.teardown(() => client.close())
  if (proxy.admin === null) throw new Error('the admin server did not start')
  return { proxy, sink, client, port: proxy.admin.port }
}

/**
 * Waits until the proxy has counted `linesIn` lines, the sink has `forwarded` lines and every byte the proxy
 * counted as sent (with workers, a report can count a worker's lines in before their batch is sent: the sink's
 * line count closes that gap). Returns the counters then.
 */
async function settled(r: Rig, linesIn: number, forwarded: number): Promise<CounterSnapshot> {
  const sinkLines = (): number => r.sink.datagrams.reduce((n, d) => n + 1 + countNewlines(d), 0)
  return waitForCounters(
    r.proxy,
    (c) => c.linesIn >= linesIn && sinkLines() >= forwarded && c.bytesOut === r.sink.bytes(),
    `linesIn ${linesIn}, ${forwarded} lines at the sink (has ${sinkLines()} lines, ${r.sink.bytes()} bytes)`,
  )
}

function countNewlines(d: Buffer): number {
  let n = 0
  for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) n++
  return n
}

/**
 * `lines` is the lines of `groups` (each the forwarded lines of one datagram sent), every group whole and in its
 * order, the groups in any order: with workers, datagrams are read by different processes and their batches
 * reach the sink in either order, but the lines of one datagram stay in order and together.
 */
function sameGroups(tt: Test, lines: readonly string[], groups: readonly (readonly string[])[], what: string): void {
  const left = [...groups]
  const order: number[] = []
  let i = 0
  while (i < lines.length) {
    const g = left.findIndex((group) => group.length > 0 && group.every((line, k) => lines[i + k] === line))
    if (g === -1) break
    order.push(groups.indexOf(left[g]))
    i += left[g].length
    left.splice(g, 1)
  }
  tt.same(
    { unmatched: lines.slice(i), missing: left },
    { unmatched: [], missing: [] },
    `${what}: every datagram's lines whole and in order (groups in the order ${order.join(',')})`,
  )
}

async function getJson(port: number, path: string): Promise<{ status: number; type: string | null; json: unknown }> {
  const reply = await http(port, path)
  if (!reply.body.endsWith('\n')) throw new Error(`${path}: the body does not end in a newline: ${reply.body}`)
  return { status: reply.status, type: reply.headers.get('content-type'), json: JSON.parse(reply.body) as unknown }
}

interface RuleRow {
  index: number
  action: string
  kind: string
  pattern: string
  dryRun: boolean
  hits: number
  lastHit: string | null
}
interface RulesBody {
  mode: string
  count: number
  rules: RuleRow[]
}

/**
 * Checks each lastHit (an ISO timestamp within [from, to] for a rule with hits, null for one without) and
 * returns the body with every timestamp replaced by 'ISO', for an exact comparison of the rest.
 */
function checkLastHits(tt: Test, body: RulesBody, from: number, to: number): RulesBody {
  for (const rule of body.rules) {
    if (rule.hits === 0) {
      tt.equal(rule.lastHit, null, `${rule.pattern}: never hit, lastHit null`)
      continue
    }
    const ms = Date.parse(rule.lastHit ?? '')
    tt.equal(rule.lastHit, new Date(ms).toISOString(), `${rule.pattern}: lastHit is an ISO string`)
    tt.ok(
      ms >= from && ms <= to,
      `${rule.pattern}: lastHit ${rule.lastHit} within the test (${new Date(from).toISOString()} .. ${new Date(to).toISOString()})`,
    )
  }
  return { ...body, rules: body.rules.map((rule) => ({ ...rule, lastHit: rule.lastHit === null ? null : 'ISO' })) }
}

// Rule indices: prefixes first, then names, in file order.
const RULES = {
  prefixes: ['blocked.', { prefix: 'dry.', dryRun: true }, 'unused.'],
  names: ['exact.block', 'never.seen'],
}

/** Known traffic against RULES: 4 datagrams, 9 lines: 5 forwarded (1 of them would-block), 3 blocked, 1 malformed. */
const TRAFFIC = [
  'ok.a:1|c\nblocked.x:1|c\nblocked.y:2|g',
  'exact.block:1|c\ndry.z:3|ms|#k:v\nok.b:1|c',
  'no-colon-or-pipe\nexact.block.not:1|c',
  '_sc|blocked.check|0', // a service check: never matched against the rules
]
/** What each datagram of TRAFFIC forwards. */
const FORWARDED_BY_DATAGRAM = [
  ['ok.a:1|c'],
  ['dry.z:3|ms|#k:v', 'ok.b:1|c'],
  ['exact.block.not:1|c'],
  ['_sc|blocked.check|0'],
]
const FORWARDED = FORWARDED_BY_DATAGRAM.flat()

t.test('after known traffic: probes, exact Prometheus metrics and rule hits', async (t) =>
  eachTopology(t, async (t, topology) => {
    const before = Date.now()
    const r = await rig(t, topology, { blocklist: RULES })
    await r.client.burst(TRAFFIC)
    const c = await settled(r, 9, FORWARDED.length)
    sameGroups(t, r.sink.lines(), FORWARDED_BY_DATAGRAM, 'what reached the sink')
    // One reader reads the datagrams in the order sent.
    if (topology.workers === 1) t.same(r.sink.lines(), FORWARDED, 'one process: in the order sent')
    t.same(
      {
        linesIn: c.linesIn,
        linesForwarded: c.linesForwarded,
        linesBlocked: c.linesBlocked,
        linesMalformed: c.linesMalformed,
        linesWouldBlock: c.linesWouldBlock,
      },
      { linesIn: 9, linesForwarded: 5, linesBlocked: 3, linesMalformed: 1, linesWouldBlock: 1 },
    )
    assertInvariant(t, c)

    t.test('probes', async (t) => {
      const healthz = await http(r.port, '/healthz')
      t.same(
        [healthz.status, healthz.headers.get('content-type'), healthz.body],
        [200, TEXT_TYPE, 'ok\n'],
        'GET /healthz',
      )
      const head = await http(r.port, '/healthz', { method: 'HEAD' })
      t.same([head.status, head.body], [200, ''], 'HEAD /healthz: no body')
      const query = await http(r.port, '/healthz?verbose=1')
      t.same([query.status, query.body], [200, 'ok\n'], 'a query string does not change the route')
      const readyz = await http(r.port, '/readyz')
      t.same(
        [readyz.status, readyz.headers.get('content-type'), readyz.body],
        [200, TEXT_TYPE, 'ready\n'],
        'GET /readyz',
      )
    })

    t.test('a wrong method: 405 with Allow', async (t) => {
      const cases: [string, string, string][] = [
        ['POST', '/healthz', 'GET'],
        ['PUT', '/readyz', 'GET'],
        ['DELETE', '/metrics', 'GET'],
        ['POST', '/rules', 'GET'],
        ['POST', '/top', 'GET'],
        ['GET', '/-/reload', 'POST'],
        ['PUT', '/-/reload', 'POST'],
      ]
      for (const [method, path, allow] of cases) {
        const reply = await http(r.port, path, { method })
        t.same(
          {
            status: reply.status,
            allow: reply.headers.get('allow'),
            type: reply.headers.get('content-type'),
            body: reply.body,
          },
          { status: 405, allow, type: JSON_TYPE, body: `${JSON.stringify({ error: `use ${allow}` })}\n` },
          `${method} ${path}`,
        )
      }
    })

    t.test('an unknown path: 404 listing the endpoints', async (t) => {
      for (const path of ['/nope', '/', '/metrics/', '/healthz/x', '/-/reload/']) {
        const reply = await getJson(r.port, path)
        t.same(reply, { status: 404, type: JSON_TYPE, json: NOT_FOUND }, path)
      }
      const post = await http(r.port, '/nope', { method: 'POST' })
      t.equal(post.status, 404, 'POST to an unknown path')
    })

    t.test('/metrics', async (t) => {
      const reply = await http(r.port, '/metrics')
      t.equal(reply.status, 200)
      t.equal(reply.headers.get('content-type'), PROMETHEUS_TYPE)
      t.match(reply.body, /^# TYPE statsd_filter_proxy_lines_dropped_total counter$/m)
      t.match(reply.body, /^# TYPE statsd_filter_proxy_rules gauge$/m)
      const m = await scrape(r.port)
      const bytesIn = TRAFFIC.reduce((n, d) => n + Buffer.byteLength(d), 0)
      const one = (v: number): Record<string, number> => ({ '{}': v })
      t.same(promSeries(m, `${P}datagrams_received_total`), one(4), 'datagrams_received_total')
      t.same(promSeries(m, `${P}bytes_received_total`), one(bytesIn), 'bytes_received_total')
      t.same(promSeries(m, `${P}lines_received_total`), one(9), 'lines_received_total')
      t.same(promSeries(m, `${P}lines_forwarded_total`), one(5), 'lines_forwarded_total')
      t.same(
        promSeries(m, `${P}lines_dropped_total`),
        {
          '{reason="blocked"}': 3,
          '{reason="not_allowed"}': 0,
          '{reason="over_limit"}': 0,
          '{reason="cardinality_limit"}': 0,
          '{reason="malformed"}': 1,
          '{reason="backpressure"}': 0,
          '{reason="send_error"}': 0,
        },
        'lines_dropped_total by reason',
      )
      t.same(promSeries(m, `${P}lines_would_block_total`), one(1), 'lines_would_block_total')
      t.same(promSeries(m, `${P}lines_oversize_total`), one(0), 'lines_oversize_total')
      t.same(
        promSeries(m, `${P}datagrams_sent_total`),
        one(r.sink.datagrams.length),
        'datagrams_sent_total: what the sink received',
      )
      t.same(promSeries(m, `${P}bytes_sent_total`), one(r.sink.bytes()), 'bytes_sent_total: what the sink received')
      t.same(promSeries(m, `${P}send_errors_total`), one(0), 'send_errors_total')
      t.same(promSeries(m, `${P}rules`), ruleSeries({ prefix: [2, 1], name: [2, 0] }), 'rules by kind and action')
      t.same(
        promSeries(m, `${P}config_info`),
        { '{format="yaml",hash="none",mode="enforce"}': 1 },
        'config_info: a config built in memory has no hash',
      )
      t.same(
        promSeries(m, `${P}config_reloads_total`),
        { '{result="success"}': 0, '{result="failure"}': 0 },
        'config_reloads_total',
      )
      t.same(promSeries(m, `${P}config_last_reload_timestamp_seconds`), one(0), 'no reload yet')
      t.same(promSeries(m, `${P}config_last_reload_success`), one(1), '1 before any reload')
      t.same(
        promSeries(m, `${P}receive_buffer_bytes`),
        { '{kind="requested"}': 8388608, '{kind="granted"}': r.proxy.listen.recvBufferGranted },
        'receive_buffer_bytes',
      )
      t.same(
        promSeries(m, `${P}send_pool_buffers`),
        { '{state="total"}': SEND_POOL_SIZE * topology.workers, '{state="in_use"}': 0 },
        'send_pool_buffers: each reader has its own pool',
      )
      t.same(
        promSeries(m, `${P}workers`),
        { '{state="configured"}': topology.workers, '{state="running"}': topology.workers },
        'workers',
      )
      const perWorker = promSeries(m, `${P}worker_lines_received_total`)
      t.same(
        Object.keys(perWorker),
        Array.from({ length: topology.workers }, (_, i) => `{worker="${i}"}`),
        'a line count per reader',
      )
      t.equal(
        Object.values(perWorker).reduce((n, v) => n + v, 0),
        9,
        'which add up to the lines received',
      )
      // Process and Node.js metrics too (test/exposition.test.ts checks each).
      for (const name of ['process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds']) {
        const series = promSeries(m, name)
        t.same(Object.keys(series), ['{}'], `${name} is exported`)
        t.ok(Number.isFinite(series['{}']) && series['{}'] >= 0, `${name} = ${series['{}']}`)
      }
    })

    t.test('/rules: every rule with its exact hits; ?unused=1 lists the rules that never matched', async (t) => {
      const reply = await getJson(r.port, '/rules')
      const after = Date.now()
      t.equal(reply.status, 200)
      t.equal(reply.type, JSON_TYPE)
      const body = checkLastHits(t, reply.json as RulesBody, before, after)
      const rule = (index: number, kind: string, pattern: string, dryRun: boolean, hits: number): RuleRow => ({
        index,
        action: 'block',
        kind,
        pattern,
        dryRun,
        hits,
        lastHit: hits === 0 ? null : 'ISO',
      })
      const all = [
        rule(0, 'prefix', 'blocked.', false, 2),
        rule(1, 'prefix', 'dry.', true, 1),
        rule(2, 'prefix', 'unused.', false, 0),
        rule(3, 'name', 'exact.block', false, 1),
        rule(4, 'name', 'never.seen', false, 0),
      ]
      t.same(body, { mode: 'enforce', count: 5, rules: all })

      const unused = await getJson(r.port, '/rules?unused=1')
      t.same(
        unused,
        { status: 200, type: JSON_TYPE, json: { mode: 'enforce', count: 2, rules: [all[2], all[4]] } },
        '?unused=1',
      )
      const notOne = await getJson(r.port, '/rules?unused=0')
      t.same(checkLastHits(t, notOne.json as RulesBody, before, Date.now()), body, '?unused=0 lists every rule')
      const stats = await r.proxy.rules()
      t.same(
        Array.from(stats.hits),
        all.map((row) => row.hits),
        'proxy.rules(): the same hits',
      )
    })

    // Last: nothing above may count a reload attempt.
    t.test('POST /-/reload on a proxy whose config was built in memory: 409, nothing to reload', async (t) => {
      const reply = await http(r.port, '/-/reload', { method: 'POST' })
      t.equal(reply.status, 409)
      t.same(JSON.parse(reply.body), { error: 'this config was not loaded from a file: there is nothing to reload' })
    })
  }),
)

t.test('/readyz: 200 while running, 503 once close() has begun, and the port closed once it resolves', async (t) =>
  eachTopology(t, async (t, topology) => {
    // close() clears readiness first and closes the admin server last. In between it stops self-metrics, and
    // hot-shots' close waits at least 50 ms (its closingFlushInterval) before closing its socket: the admin server
    // is up for at least that long. A request whose bytes are on a connection the server already serves before
    // that wait ends is answered 503. (Without self-metrics close() reaches the admin server in the same turn of
    // the event loop and no request can get in between: what is observable then is only the closed port.)
    // With workers close() first waits for them to drain and exit, so the window is only longer.
    const r = await rig(t, topology, { selfMetrics: { prefix: 'spx', interval: '1s' } })
    const conn = await rawHttpConnection(r.port)
    t.teardown(() => conn.close())
    const first = await conn.send('GET', '/readyz')
    t.same(
      [first.status, first.headers['content-type'], first.body],
      [200, TEXT_TYPE, 'ready\n'],
      'ready while running',
    )

    const order: string[] = []
    const closing = r.proxy.close().then(() => void order.push('close() resolved'))
    // Written to the socket before this function yields: the server reads it on its next pass over the sockets.
    const during = conn.send('GET', '/readyz').then((reply) => {
      order.push('readyz answered')
      return reply
    })
    const reply = await during
    t.same(
      [reply.status, reply.headers['content-type'], reply.body],
      [503, TEXT_TYPE, 'not ready\n'],
      '503 during close()',
    )
    await closing
    t.same(order, ['readyz answered', 'close() resolved'], 'answered while close() was still running')

    const refused = await fetch(`http://127.0.0.1:${r.port}/readyz`).then(
      () => null,
      (err: unknown) => err as Error & { cause?: { code?: string } },
    )
    t.equal(refused?.cause?.code, 'ECONNREFUSED', 'the admin port is closed once close() resolves')
  }),
)

t.test(
  'the routes with handlers of our own: readiness follows ready(), top() null is 404, a failing handler is 500',
  async (t) => {
    let ready = true
    const { log, records } = memoryLogger('info')
    const rules = RuleSet.fromBlocklist({ prefixes: ['a.'], names: [] }, 'enforce')
    const server = await startAdmin(
      TEST_ADMIN,
      {
        ready: () => ready,
        metrics: async () => '',
        mode: () => 'enforce',
        rules: () => rules,
        top: (n) => {
          if (n === 13) throw new Error('boom')
          return null
        },
        cardinality: async () => null,
        reload: () => Promise.reject(new Error('nothing to reload')),
      },
      log,
    )
    t.teardown(() => server.close())
    t.not(server.port, 0, 'port 0 resolves to the bound port')
    const readyz = async (): Promise<[number, string]> => {
      const reply = await http(server.port, '/readyz')
      return [reply.status, reply.body]
    }
    t.same(await readyz(), [200, 'ready\n'])
    ready = false
    t.same(await readyz(), [503, 'not ready\n'], 'not ready: 503')
    ready = true
    t.same(await readyz(), [200, 'ready\n'], 'ready again: 200')
    t.same(await getJson(server.port, '/top'), {
      status: 404,
      type: JSON_TYPE,
      json: { error: 'top talkers are off (insights: false)' },
    })
    t.same(await getJson(server.port, '/cardinality?n=3'), {
      status: 404,
      type: JSON_TYPE,
      json: { error: 'the cardinality view is off (cardinality.view.enabled: false)' },
    })
    t.same((await getJson(server.port, '/cardinality?n=1001')).status, 400, '/cardinality: n out of range')
    t.same(await getJson(server.port, '/-/reload'), { status: 405, type: JSON_TYPE, json: { error: 'use POST' } })
    const refused = await http(server.port, '/-/reload', { method: 'POST' })
    t.same(
      [refused.status, JSON.parse(refused.body)],
      [409, { error: 'nothing to reload' }],
      'a refused reload: 409 with the reason',
    )
    const failed = await http(server.port, '/top?n=13')
    t.same([failed.status, JSON.parse(failed.body)], [500, { error: 'internal error' }], 'a handler that throws: 500')
    t.match(
      records.find((rec) => rec.msg === 'admin request failed'),
      { level: 50, url: '/top?n=13', err: { message: 'boom' } },
    )
  },
)

/** Lines of each name: forwarded and blocked, each with three names whose counts are far apart. */
const SKEW: [string, number][] = [
  ['top.heavy', 10_000],
  ['top.second', 4_000],
  ['top.third', 2_000],
  ['blk.heavy', 4_000], // blocked
  ['blk.middle', 2_000], // blocked
  ['blk.light', 1_000], // blocked
]
/** Sent first, in this order, 400 lines each (alternating): the names every sketch meets first. */
const LEAD: [string, number][] = [
  ['top.second', 400],
  ['blk.middle', 400],
  ['top.heavy', 400],
  ['blk.heavy', 400],
]

/**
 * Every line of SKEW. The LEAD comes first: a sketch (one line in 16 sampled; 400 lines leave a name unsampled
 * with probability (15/16)^400 < 1e-11) takes the middle names first, then the heaviest, then the lightest, so
 * neither the order names arrived in nor its reverse is count order, and only sorting gives the expected
 * order. The rest follow in a deterministic shuffle.
 */
function skewedLines(): string[] {
  const lead: string[] = []
  for (let p = 0; p < LEAD.length; p += 2) {
    for (let i = 0; i < LEAD[p][1]; i++) lead.push(`${LEAD[p][0]}:1|c`, `${LEAD[p + 1][0]}:1|c`)
  }
  const leadCount = new Map(LEAD)
  const rest: string[] = []
  for (const [name, count] of SKEW) for (let i = leadCount.get(name) ?? 0; i < count; i++) rest.push(`${name}:1|c`)
  // Fisher-Yates with a fixed LCG: the same interleaving on every run.
  let seed = 12345
  for (let i = rest.length - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    const j = seed % (i + 1)
    ;[rest[i], rest[j]] = [rest[j], rest[i]]
  }
  return [...lead, ...rest]
}

t.test('/top: the heaviest names first, forwarded and blocked apart; n validated', async (t) =>
  eachTopology(t, async (t, topology) => {
    const r = await rig(t, topology, { blocklist: { prefixes: ['blk.'] } })
    const lines = skewedLines()
    t.equal(lines.length, 23_000)
    // The order names first arrive in is not count order, either way round (what an unsorted list would show).
    const firstSeen = (prefix: string): string[] => [
      ...new Set(lines.map((l) => l.slice(0, l.indexOf(':'))).filter((n) => n.startsWith(prefix))),
    ]
    t.same(firstSeen('top.'), ['top.second', 'top.heavy', 'top.third'])
    t.same(firstSeen('blk.'), ['blk.middle', 'blk.heavy', 'blk.light'])
    // 50 lines a datagram, 20 datagrams at a time: never more in the proxy's receive queue than it holds.
    const datagrams: string[] = []
    for (let i = 0; i < lines.length; i += 50) datagrams.push(lines.slice(i, i + 50).join('\n'))
    for (let i = 0; i < datagrams.length; i += 20) {
      await r.client.burst(datagrams.slice(i, i + 20))
      const expected = Math.min(i + 20, datagrams.length)
      await waitForCounters(r.proxy, (c) => c.datagramsIn >= expected, `datagramsIn ${expected}`)
    }
    const c = await settled(r, lines.length, 16_000)
    t.same([c.linesIn, c.linesForwarded, c.linesBlocked, c.linesDroppedBackpressure], [23_000, 16_000, 7_000, 0])

    const reply = await getJson(r.port, '/top?n=5')
    t.equal(reply.status, 200)
    t.equal(reply.type, JSON_TYPE)
    const top = reply.json as {
      sampleEvery: number
      memoryBytes: number
      forwarded: { name: string; count: number; error: number }[]
      blocked: { name: string; count: number; error: number }[]
    }
    t.equal(top.sampleEvery, TOP_TALKERS.sampleEvery)
    t.equal(
      top.memoryBytes,
      topology.workers * 2 * 169_192,
      'two sketches of 1000 counters × 128-byte names per reader',
    )
    t.same(
      top.forwarded.map((e) => e.name),
      ['top.heavy', 'top.second', 'top.third'],
      'forwarded, heaviest first',
    )
    t.same(
      top.blocked.map((e) => e.name),
      ['blk.heavy', 'blk.middle', 'blk.light'],
      'blocked, heaviest first',
    )
    const truth = new Map(SKEW)
    for (const e of [...top.forwarded, ...top.blocked]) {
      const n = truth.get(e.name) ?? 0
      // Each line is sampled with p = 1/16 and weighs 16: the estimate's standard deviation is 16·√(n·p·(1-p)).
      const sd = 16 * Math.sqrt((n * (1 / 16) * 15) / 16)
      t.ok(Math.abs(e.count - n) <= 5 * sd, `${e.name}: estimate ${e.count} within 5 sd (${Math.round(sd)}) of ${n}`)
      t.equal(e.count % 16, 0, `${e.name}: a count of sampled lines × 16`)
      t.equal(e.error, 0, `${e.name}: no overcount (fewer names than counters)`)
    }
    const one = (await getJson(r.port, '/top?n=1')).json as typeof top
    t.same([one.forwarded.map((e) => e.name), one.blocked.map((e) => e.name)], [['top.heavy'], ['blk.heavy']], 'n=1')
    const two = (await getJson(r.port, '/top?n=2')).json as typeof top
    t.same([two.forwarded, two.blocked], [top.forwarded.slice(0, 2), top.blocked.slice(0, 2)], 'n=2: the first two')
    t.same((await getJson(r.port, '/top')).json, top, 'n defaults to 50: here every name')
    t.same((await getJson(r.port, '/top?n=1000')).json, top, 'n=1000 is allowed')
    t.same(await r.proxy.top(5), top, 'proxy.top(5): the same report')

    // Hit counts are exact (only the sketches sample).
    const rules = (await getJson(r.port, '/rules')).json as RulesBody
    t.same(
      rules.rules.map((rule) => [rule.pattern, rule.hits]),
      [['blk.', 7_000]],
    )

    for (const n of ['0', 'abc', '1001', '-1', '1.5', '', '5x']) {
      t.same(
        await getJson(r.port, `/top?n=${n}`),
        { status: 400, type: JSON_TYPE, json: BAD_N },
        `n=${JSON.stringify(n)}: 400`,
      )
    }
  }),
)

t.test('insights: false: /top is 404, rule hits stay 0', async (t) =>
  eachTopology(t, async (t, topology) => {
    const r = await rig(t, topology, { insights: false, blocklist: { prefixes: ['blocked.'], names: ['exact'] } })
    t.equal(await r.proxy.top(10), null, 'proxy.top(): null')
    await r.client.send('blocked.a:1|c\nexact:1|c\nblocked.b:1|g\nkept:1|c')
    const c = await settled(r, 4, 1)
    t.same(r.sink.lines(), ['kept:1|c'], 'the rules still apply')
    t.same([c.linesIn, c.linesBlocked, c.linesForwarded], [4, 3, 1])
    t.same(await getJson(r.port, '/top?n=5'), {
      status: 404,
      type: JSON_TYPE,
      json: { error: 'top talkers are off (insights: false)' },
    })
    t.same(await getJson(r.port, '/top?n=0'), { status: 400, type: JSON_TYPE, json: BAD_N }, 'n is validated first')
    const rows = [
      { index: 0, action: 'block', kind: 'prefix', pattern: 'blocked.', dryRun: false, hits: 0, lastHit: null },
      { index: 1, action: 'block', kind: 'name', pattern: 'exact', dryRun: false, hits: 0, lastHit: null },
    ]
    t.same(await getJson(r.port, '/rules'), {
      status: 200,
      type: JSON_TYPE,
      json: { mode: 'enforce', count: 2, rules: rows },
    })
    t.same(await getJson(r.port, '/rules?unused=1'), {
      status: 200,
      type: JSON_TYPE,
      json: { mode: 'enforce', count: 2, rules: rows },
    })
    t.same(Array.from((await r.proxy.rules()).hits), [0, 0], 'proxy.rules(): no hits')
  }),
)

t.test('config_info carries the hash of the file the config came from', async (t) =>
  eachTopology(t, async (t, topology) => {
    const sink = await startSink()
    t.teardown(() => sink.close())
    const dir = ownTestdir(t, {
      'filter.yaml': `listen: { host: 127.0.0.1, port: 0 }\nforward: { host: 127.0.0.1, port: ${sink.port} }\nworkers: ${topology.workers}\nreceive: { mode: ${topology.receive} }\nmode: dry-run\nadmin: { host: 127.0.0.1, port: 0 }\nlog: { level: silent }\nblocklist:\n  prefixes: [a., b.]\n  names: [{ name: c, dryRun: false }]\n`,
      'rust.json': JSON.stringify({
        listen_host: '127.0.0.1',
        listen_port: 0,
        target_host: '127.0.0.1',
        target_port: sink.port,
        metric_blocklist: ['x.'],
      }),
    })
    const sha16 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16)

    const yamlFile = join(dir, 'filter.yaml')
    const yaml = await loadAndCompile(yamlFile)
    t.equal(yaml.hash, sha16(yamlFile), 'the first 16 hex digits of the SHA-256 of the file bytes')
    t.match(yaml.hash, /^[0-9a-f]{16}$/)
    const proxy = await startProxy(yaml, silentLogger())
    t.teardown(() => proxy.close())
    t.equal(proxy.workers().configured, topology.workers)
    const m = await scrape(proxy.admin?.port ?? 0)
    t.same(promSeries(m, `${P}config_info`), { [`{format="yaml",hash="${sha16(yamlFile)}",mode="dry-run"}`]: 1 })
    t.same(
      promSeries(m, `${P}rules`),
      ruleSeries({ prefix: [0, 2], name: [0, 1] }),
      'mode: dry-run makes every rule dry-run',
    )

    // statsd-filter-proxy-rs' JSON has no admin or workers key: the test moves its admin server off the default
    // port and sets the topology's workers.
    const rustFile = join(dir, 'rust.json')
    const rust = await loadAndCompile(rustFile)
    const rustProxy = await startProxy(
      { ...rust, config: { ...rust.config, admin: TEST_ADMIN, ...configKeys(topology) } },
      silentLogger(),
    )
    t.teardown(() => rustProxy.close())
    t.equal(rustProxy.workers().configured, topology.workers)
    const rm = await scrape(rustProxy.admin?.port ?? 0)
    t.same(promSeries(rm, `${P}config_info`), { [`{format="rust-json",hash="${sha16(rustFile)}",mode="enforce"}`]: 1 })
  }),
)

t.test('admin: { enabled: false }: no admin server', async (t) =>
  eachTopology(t, async (t, topology) => {
    const { log, records } = memoryLogger('info')
    const sink = await startSink()
    t.teardown(() => sink.close())
    const proxy = await startProxy(testConfigWith(sink.port, { admin: { enabled: false }, ...topology.keys }), log)
    t.teardown(() => proxy.close())
    t.equal(proxy.admin, null)
    t.match(
      records.find((rec) => rec.msg === 'statsd-filter-proxy started'),
      { admin: null, ...topology.keys },
    )
  }),
)
