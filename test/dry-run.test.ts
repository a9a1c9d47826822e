// Dry-run: a rule with `dryRun: true`, or every rule under `mode: dry-run`, forwards the lines it matches byte for
// byte and counts them as would-block. End to end over UDP on 127.0.0.1, then the rule syntax's validation.
import t, { type Test } from 'tap'
import { ConfigError, type ConfigProblem } from '../src/config/errors.ts'
import { parseConfig } from '../src/config/load.ts'
import { startProxy, type Proxy } from '../src/proxy.ts'
import type { CounterSnapshot } from '../src/telemetry/counters.ts'
import { configKeys, eachTopology, waitForCounters, type Topology } from './fixtures/topology.ts'
import {
  assertInvariant,
  createClient,
  http,
  promSeries,
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

interface Rig {
  proxy: Proxy
  sink: Sink
  client: Client
  port: number
}

async function rig(tt: Test, topology: Topology, keys: Record<string, unknown>): Promise<Rig> {
  const sink = await startSink()
  tt.teardown(() => sink.close())
  const proxy = await startProxy(
    testConfigWith(sink.port, { admin: TEST_ADMIN, ...topology.keys, ...keys }),
    silentLogger(),
  )
  tt.teardown(() => proxy.close())
  const client = await createClient(proxy.listen.port)
  tt.teardown(() => client.close())
  return { proxy, sink, client, port: proxy.admin?.port ?? 0 }
}

/**
 * Waits until the proxy has counted `linesIn` lines, the sink has `forwarded` lines and every byte the proxy
 * counted as sent (with workers a report can count lines in before their batch goes out: the line count at the
 * sink closes that gap). Returns the counters then.
 */
function settled(r: Rig, linesIn: number, forwarded: number): Promise<CounterSnapshot> {
  return waitForCounters(
    r.proxy,
    (c) => c.linesIn >= linesIn && r.sink.lines().length >= forwarded && c.bytesOut === r.sink.bytes(),
    `linesIn ${linesIn} and ${forwarded} lines at the sink`,
  )
}

// Rule indices: prefixes first, then names. A name rule beats any prefix.
const BLOCKLIST = {
  prefixes: ['blocked.', { prefix: 'dry.', dryRun: true }, { prefix: 'enforced.', dryRun: false }],
  names: [{ name: 'exact.dry', dryRun: true }, 'exact.block', { name: 'dry.but.enforced' }],
}

/** [line as sent, whether the rules above block it (enforce), whether a dry-run rule matches it] */
const LINES: [string, boolean, boolean][] = [
  ['dry.a:1|c|#tag:v,k:v:w', false, true],
  ['blocked.b:1|c', true, false],
  ['dry.c:2.5|g|@0.5|#x', false, true],
  ['exact.dry:1|ms|T1656581400', false, true],
  ['exact.block:1|c', true, false],
  ['enforced.z:1|h', true, false],
  ['dry.but.enforced:1|c', true, false], // the name rule (enforce) beats the dry. prefix
  ['dréssé.kept:1|d', false, false],
  ['exact.dry.longer:1|c', false, false],
  ['_e{9,3}:dry.event|txt', false, false], // events and service checks are never matched
  ['_sc|dry.check|0', false, false],
]

// One proxy per topology serves both tests: the rules of BLOCKLIST, maxPacketSize 512 (the datagrams of the first
// test are well under it).
t.test('dryRun on some rules', async (t) =>
  eachTopology(t, async (t, topology) => {
    const r = await rig(t, topology, { blocklist: BLOCKLIST, maxPacketSize: 512 })

    t.test('dryRun: true on a rule: its matches are forwarded byte for byte and counted as would-block', async (t) => {
      const datagram = Buffer.from(LINES.map(([line]) => line).join('\n'), 'utf8')
      await r.client.send(datagram)
      const forwarded = LINES.filter(([, blocked]) => !blocked).map(([line]) => line)
      const c = await settled(r, LINES.length, forwarded.length)

      // One datagram in: one reader takes it whole, whatever the topology.
      t.same(r.sink.datagrams.length, 1)
      t.ok(
        r.sink.datagrams[0].equals(Buffer.from(forwarded.join('\n'), 'utf8')),
        'the survivors, exact bytes, in order',
      )
      const wouldBlock = LINES.filter(([, , dry]) => dry).length
      const blocked = LINES.filter(([, b]) => b).length
      t.same(
        [c.linesIn, c.linesForwarded, c.linesBlocked, c.linesWouldBlock, c.linesMalformed],
        [LINES.length, forwarded.length, blocked, wouldBlock, 0],
        'would-block lines are forwarded lines',
      )
      t.same([wouldBlock, blocked], [3, 4])
      assertInvariant(t, c)

      const rules = JSON.parse((await http(r.port, '/rules')).body) as {
        mode: string
        count: number
        rules: { index: number; action: string; kind: string; pattern: string; dryRun: boolean; hits: number }[]
      }
      t.same(
        {
          mode: rules.mode,
          count: rules.count,
          rules: rules.rules.map(({ index, action, kind, pattern, dryRun, hits }) => ({
            index,
            action,
            kind,
            pattern,
            dryRun,
            hits,
          })),
        },
        {
          mode: 'enforce',
          count: 6,
          rules: [
            { index: 0, action: 'block', kind: 'prefix', pattern: 'blocked.', dryRun: false, hits: 1 },
            { index: 1, action: 'block', kind: 'prefix', pattern: 'dry.', dryRun: true, hits: 2 },
            { index: 2, action: 'block', kind: 'prefix', pattern: 'enforced.', dryRun: false, hits: 1 },
            { index: 3, action: 'block', kind: 'name', pattern: 'exact.dry', dryRun: true, hits: 1 },
            { index: 4, action: 'block', kind: 'name', pattern: 'exact.block', dryRun: false, hits: 1 },
            { index: 5, action: 'block', kind: 'name', pattern: 'dry.but.enforced', dryRun: false, hits: 1 },
          ],
        },
        '/rules: dryRun per rule, hits of dry-run rules counted too',
      )
      const m = await scrape(r.port)
      t.same(promSeries(m, `${P}rules`), ruleSeries({ prefix: [2, 1], name: [2, 1] }), 'rules{kind,action}')
      t.same(promSeries(m, `${P}lines_would_block_total`), { '{}': 3 })
      t.same(promSeries(m, `${P}lines_forwarded_total`), { '{}': forwarded.length })
      t.same(promSeries(m, `${P}lines_dropped_total`)['{reason="blocked"}'], 4)
    })

    t.test(
      'a dry-run line is treated like any forwarded line: CRLF and empty lines removed, batches kept whole',
      async (t) => {
        const long = `dry.long:1|d|#${'t'.repeat(600)}` // over maxPacketSize: alone, whole
        // The proxy is the one above: what it counted and sent before this test is left out.
        const before = await r.proxy.counters()
        const skip = r.sink.datagrams.length
        await r.client.burst(['dry.a:1|c\r\n\r\ndry.b:2|c\n', long, 'dry.c:3|c'])
        const after = await waitForCounters(
          r.proxy,
          (c) =>
            c.linesIn >= before.linesIn + 4 &&
            r.sink.datagrams.slice(skip).flatMap((d) => d.toString().split('\n')).length >= 4 &&
            c.bytesOut === r.sink.bytes(),
          'linesIn +4 and 4 more lines at the sink',
        )
        const c = {
          linesWouldBlock: after.linesWouldBlock - before.linesWouldBlock,
          linesOversize: after.linesOversize - before.linesOversize,
        }
        const out = r.sink.datagrams.slice(skip).map((d) => d.toString())
        // One reader batches the three datagrams in the order sent; with workers, two of them may be read by the same
        // worker and batched together, in either order, so the exact datagrams out are those of one process only.
        if (topology.workers === 1) t.same(out, ['dry.a:1|c\ndry.b:2|c', long, 'dry.c:3|c'])
        t.same(
          out.filter((d) => d.includes('dry.long')),
          [long],
          'the oversize line alone in a datagram, whole',
        )
        const batched = out.filter((d) => !d.includes('dry.long'))
        t.ok(
          batched.every((d) => Buffer.byteLength(d) <= 512),
          'the other datagrams within maxPacketSize',
        )
        const lines = batched.flatMap((d) => d.split('\n'))
        t.same(
          [...lines].sort(),
          ['dry.a:1|c', 'dry.b:2|c', 'dry.c:3|c'],
          'CR and the empty line removed, each line once',
        )
        t.equal(
          lines.indexOf('dry.b:2|c'),
          lines.indexOf('dry.a:1|c') + 1,
          "one datagram's lines together and in order",
        )
        t.same([c.linesWouldBlock, c.linesOversize], [4, 1])
      },
    )
  }),
)

t.test('mode: dry-run: every rule is dry-run, every line forwarded unchanged', async (t) =>
  eachTopology(t, async (t, topology) => {
    const r = await rig(t, topology, { mode: 'dry-run', blocklist: BLOCKLIST })
    t.equal(r.proxy.config().mode, 'dry-run')
    // No CR and no trailing newline: the datagram out is the datagram in.
    const datagram = Buffer.from(LINES.map(([line]) => line).join('\n'), 'utf8')
    await r.client.send(datagram)
    const c = await settled(r, LINES.length, LINES.length)
    t.same(r.sink.datagrams.length, 1)
    t.ok(r.sink.datagrams[0].equals(datagram), 'the same bytes out as in')
    const matched = LINES.filter(([, blocked, dry]) => blocked || dry).length
    t.same(
      [c.linesIn, c.linesForwarded, c.linesBlocked, c.linesWouldBlock],
      [LINES.length, LINES.length, 0, matched],
      'nothing blocked; every match would-block',
    )
    t.equal(matched, 7)
    assertInvariant(t, c)

    const rules = JSON.parse((await http(r.port, '/rules')).body) as {
      mode: string
      rules: { pattern: string; dryRun: boolean; hits: number }[]
    }
    t.equal(rules.mode, 'dry-run')
    t.same(
      rules.rules.map(({ pattern, dryRun, hits }) => [pattern, dryRun, hits]),
      [
        ['blocked.', true, 1],
        ['dry.', true, 2],
        ['enforced.', true, 1],
        ['exact.dry', true, 1],
        ['exact.block', true, 1],
        ['dry.but.enforced', true, 1],
      ],
    )
    const m = await scrape(r.port)
    t.same(promSeries(m, `${P}rules`), ruleSeries({ prefix: [0, 3], name: [0, 3] }))
    t.same(promSeries(m, `${P}config_info`), { '{format="yaml",hash="none",mode="dry-run"}': 1 })
    t.same(promSeries(m, `${P}lines_would_block_total`), { '{}': 7 })
    t.same(promSeries(m, `${P}lines_dropped_total`)['{reason="blocked"}'], 0)
  }),
)

/** The problems parseConfig reports for `text`, in file order. */
function problemsOf(text: string): ConfigProblem[] {
  try {
    parseConfig('filter.yaml', text)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return [...err.problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0))
  }
  throw new Error(`expected a ConfigError for:\n${text}`)
}

t.test('the rule syntax: a string, or { prefix|name: ..., dryRun: ... }', async (t) => {
  const config = parseConfig(
    'filter.yaml',
    [
      'mode: enforce',
      'blocklist:',
      '  prefixes:',
      '    - plain.',
      '    - { prefix: dry., dryRun: true }',
      '    - { prefix: explicit., dryRun: false }',
      '    - prefix: block.style.',
      '      dryRun: true',
      '    - { prefix: no.option. }',
      '  names:',
      '    - exact',
      '    - { name: exact.dry, dryRun: true }',
      '',
    ].join('\n'),
  )
  t.same(config.blocklist, {
    prefixes: [
      { pattern: 'plain.', dryRun: false },
      { pattern: 'dry.', dryRun: true },
      { pattern: 'explicit.', dryRun: false },
      { pattern: 'block.style.', dryRun: true },
      { pattern: 'no.option.', dryRun: false },
    ],
    names: [
      { pattern: 'exact', dryRun: false },
      { pattern: 'exact.dry', dryRun: true },
    ],
    globs: [],
    tags: [],
  })
  t.equal(config.mode, 'enforce')
  t.equal(parseConfig('f.yaml', 'mode: dry-run\n').mode, 'dry-run')
  t.equal(parseConfig('f.yaml', '').mode, 'enforce', 'enforce by default')
})

t.test('the rule syntax: problems are located and explained', async (t) => {
  t.same(
    problemsOf('blocklist:\n  prefixes:\n    - { prefix: a., dryrun: true }\n'),
    [
      {
        path: 'blocklist.prefixes[0].dryrun',
        line: 3,
        column: 21,
        message: 'unknown key (expected one of: prefix, dryRun, tag)',
      },
    ],
    'an unknown key in a rule object, at the key (a typo must not quietly enforce a rule meant to be dry-run)',
  )
  t.same(
    problemsOf(
      'blocklist:\n  prefixes:\n    - { prefix: a., dryRun: "yes" }\n  names:\n    - { name: b, dryRun: 1 }\n',
    ),
    [
      { path: 'blocklist.prefixes[0].dryRun', line: 3, column: 29, message: 'must be true or false' },
      { path: 'blocklist.names[0].dryRun', line: 5, column: 26, message: 'must be true or false' },
    ],
    'dryRun not a boolean, at the value',
  )
  t.same(
    problemsOf('blocklist:\n  prefixes:\n    - { dryRun: true }\n'),
    [{ path: 'blocklist.prefixes[0]', line: 3, column: 7, message: 'needs the key prefix' }],
    'the prefix key missing',
  )
  t.same(
    problemsOf('blocklist:\n  names:\n    - { prefix: a. }\n'),
    [
      { path: 'blocklist.names[0]', line: 3, column: 7, message: 'needs the key name' },
      {
        path: 'blocklist.names[0].prefix',
        line: 3,
        column: 9,
        message: 'unknown key (expected one of: name, dryRun, tag)',
      },
    ],
    'the key of the other list',
  )
  t.same(
    problemsOf(
      'blocklist:\n  prefixes:\n    - { prefix: 42 }\n    - { prefix: "" }\n    - [a]\n    - { prefix: null, dryRun: true }\n',
    ),
    [
      { path: 'blocklist.prefixes[0].prefix', line: 3, column: 17, message: 'must be a string (got 42)' },
      {
        path: 'blocklist.prefixes[1].prefix',
        line: 4,
        column: 17,
        message: 'must not be empty (an empty rule would match every metric)',
      },
      {
        path: 'blocklist.prefixes[2]',
        line: 5,
        column: 7,
        message: 'must be a string or { prefix: ..., dryRun: true|false, tag: k:v | k } (got ["a"])',
      },
      { path: 'blocklist.prefixes[3].prefix', line: 6, column: 17, message: 'must be a string (got null)' },
    ],
    'the pattern: not a string, empty; an entry that is neither a string nor a mapping',
  )
  t.same(
    problemsOf('mode: dryrun\n'),
    [{ path: 'mode', line: 1, column: 7, message: 'must be one of enforce, dry-run' }],
    'an unknown mode',
  )
  t.same(
    problemsOf('{"metric_blocklist": ["a.", {"prefix": "b.", "dryRun": true}]}'),
    [
      {
        path: 'metric_blocklist[1]',
        line: 1,
        column: 29,
        message: 'must be a string (got {"prefix":"b.","dryRun":true})',
      },
    ],
    "statsd-filter-proxy-rs' JSON takes strings only",
  )

  let message = ''
  try {
    parseConfig('conf/filter.yaml', 'blocklist:\n  prefixes:\n    - { prefix: a., dryRun: "yes", extra: 1 }\n')
  } catch (err) {
    message = (err as Error).message
  }
  t.same(
    message.split('\n'),
    [
      'conf/filter.yaml:3:29: blocklist.prefixes[0].dryRun: must be true or false',
      'conf/filter.yaml:3:36: blocklist.prefixes[0].extra: unknown key (expected one of: prefix, dryRun, tag)',
    ],
    'the message: file:line:column: path: message, one per problem',
  )
})

t.test('the same pattern twice, once dry-run: a warning, and the first entry decides', async (t) =>
  eachTopology(t, async (t, topology) => {
    const config = parseConfig('filter.yaml', 'blocklist:\n  prefixes:\n    - a.\n    - { prefix: a., dryRun: true }\n')
    t.same(config.warnings, [
      { path: 'blocklist.prefixes[1].prefix', line: 4, column: 17, message: 'duplicate of prefixes[0]; ignored' },
    ])
    const sink = await startSink()
    t.teardown(() => sink.close())
    const proxy = await startProxy(
      {
        ...config,
        listen: { host: '127.0.0.1', port: 0 },
        forward: { host: '127.0.0.1', port: sink.port },
        admin: null,
        ...configKeys(topology),
      },
      silentLogger(),
    )
    t.teardown(() => proxy.close())
    const client = await createClient(proxy.listen.port)
    t.teardown(() => client.close())
    await client.send('a.x:1|c\nkept:1|c')
    const c = await waitForCounters(
      proxy,
      (c) => c.linesIn === 2 && sink.lines().length >= 1 && sink.bytes() === c.bytesOut,
      'the kept line',
    )
    t.same(sink.lines(), ['kept:1|c'], 'blocked: the first entry (enforce) wins')
    t.same([c.linesBlocked, c.linesWouldBlock], [1, 0])
  }),
)
