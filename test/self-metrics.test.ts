// Self-metrics: the proxy's own counters sent with hot-shots to the forward target (here a UDP sink on 127.0.0.1),
// as counts of each interval's increase plus a gauge, tagged proxy:<hostname>, never through the filter.
import { hostname } from 'node:os'
import t from 'tap'
import { ConfigError, type ConfigProblem } from '../src/config/errors.ts'
import { parseConfig } from '../src/config/load.ts'
import { startProxy } from '../src/proxy.ts'
import { eachTopology, waitForCounters } from './fixtures/topology.ts'
import { createClient, silentLogger, startSink, testConfigWith, waitFor } from './fixtures/udp.ts'

const TAG = `|#proxy:${hostname()}`

/** `spx.<name>:<value>|c|#proxy:<host>` -> [name, value], for the counters of one batch. */
function parseBatch(datagram: string): {
  counts: Record<string, number>
  gauges: Record<string, number>
  lines: string[]
} {
  const counts: Record<string, number> = {}
  const gauges: Record<string, number> = {}
  const lines = datagram.split('\n')
  for (const line of lines) {
    const m = /^spx\.([a-z_]+):(\d+)\|([cg])(\|#.*)$/.exec(line)
    if (m === null || m[4] !== TAG) throw new Error(`not a self-metrics line: ${JSON.stringify(line)}`)
    ;(m[3] === 'c' ? counts : gauges)[m[1]] = Number(m[2])
  }
  return { counts, gauges, lines }
}

t.test(
  'counter deltas and a gauge, tagged proxy:<hostname>, straight to the target even when a rule blocks them',
  async (t) =>
    eachTopology(t, async (t, topology) => {
      const sink = await startSink()
      t.teardown(() => sink.close())
      // A rule blocks everything named spx.*: it applies to what goes through the proxy, not to its own metrics.
      // With workers the primary sends the batches, from the sum of the workers' reports.
      const config = testConfigWith(sink.port, {
        selfMetrics: { prefix: 'spx', interval: '1s' },
        blocklist: { prefixes: ['spx.'] },
        ...topology.keys,
      })
      t.same(config.selfMetrics, { prefix: 'spx', intervalMs: 1000 })
      const proxy = await startProxy(config, silentLogger())
      t.teardown(() => proxy.close())
      const client = await createClient(proxy.listen.port)
      t.teardown(() => client.close())
      // The sink gets both: the proxy's forwarded datagrams and hot-shots' batches (every line of those is spx.*).
      const batches = (): string[] => sink.datagrams.map(String).filter((d) => d.startsWith('spx.'))
      const forwarded = (): Buffer[] => sink.datagrams.filter((d) => !String(d).startsWith('spx.'))
      const forwardedBytes = (): number => forwarded().reduce((n, d) => n + d.length, 0)

      // Traffic well inside the first interval (the proxy started a moment ago).
      const first = ['app.a:1|c\nspx.fake:1|c\napp.b:2|g', 'not a metric line']
      await client.burst(first)
      await waitForCounters(
        proxy,
        (c) => c.linesIn === 4 && forwarded().length === 1 && c.bytesOut === forwardedBytes(),
        'linesIn 4 and the forwarded datagram at the sink',
      )
      t.same(forwarded().map(String), ['app.a:1|c\napp.b:2|g'], 'spx.fake was blocked')
      await waitFor(
        () => batches().length >= 1,
        () => 'the first self-metrics batch',
        5_000,
      )
      t.same(
        batches()[0].split('\n'),
        [
          `spx.datagrams_in:2|c${TAG}`,
          `spx.bytes_in:${Buffer.byteLength(first.join(''))}|c${TAG}`,
          `spx.lines_in:4|c${TAG}`,
          `spx.lines_forwarded:2|c${TAG}`,
          `spx.lines_blocked:1|c${TAG}`,
          `spx.lines_malformed:1|c${TAG}`,
          `spx.datagrams_out:1|c${TAG}`,
          `spx.bytes_out:${'app.a:1|c\napp.b:2|g'.length}|c${TAG}`,
          `spx.send_pool_in_use:0|g${TAG}`,
        ],
        'the first batch: one datagram, the counters that rose (in snake case) and the gauge',
      )
      const afterFirst = await proxy.counters()

      // More traffic: the next batch carries only the increase.
      await client.send('app.c:3|c')
      await waitForCounters(
        proxy,
        (c) => c.linesIn === 5 && forwarded().length === 2 && c.bytesOut === forwardedBytes(),
        'linesIn 5 and the second forwarded datagram',
      )
      await waitFor(
        () => batches().length >= 2,
        () => 'the second self-metrics batch',
        5_000,
      )
      t.same(
        batches()[1].split('\n'),
        [
          `spx.datagrams_in:1|c${TAG}`,
          `spx.bytes_in:9|c${TAG}`,
          `spx.lines_in:1|c${TAG}`,
          `spx.lines_forwarded:1|c${TAG}`,
          `spx.datagrams_out:1|c${TAG}`,
          `spx.bytes_out:9|c${TAG}`,
          `spx.send_pool_in_use:0|g${TAG}`,
        ],
        'the second batch: the deltas since the first',
      )
      t.same(
        Object.fromEntries(
          Object.entries(await proxy.counters())
            .map(([k, v]) => [k, v - afterFirst[k as keyof typeof afterFirst]])
            .filter(([, v]) => v !== 0),
        ),
        { datagramsIn: 1, bytesIn: 9, linesIn: 1, linesForwarded: 1, datagramsOut: 1, bytesOut: 9 },
        "which are the counters' deltas",
      )

      // close() sends a last batch: nothing rose since, so only the gauge. (The next tick is most of an interval
      // away: close() is called right after the second batch arrived, and even with workers draining and exiting it
      // takes a fraction of that.)
      await proxy.close()
      const final = await proxy.counters()
      await waitFor(
        () => batches().length >= 3,
        () => 'the batch sent at close',
        5_000,
      )
      t.same(batches()[2], `spx.send_pool_in_use:0|g${TAG}`)
      t.equal(batches().length, 3, 'three batches in all')

      // Over the proxy's life the counts add up to its counters; none of it went through the proxy's own sends.
      const sums: Record<string, number> = {}
      for (const batch of batches())
        for (const [name, v] of Object.entries(parseBatch(batch).counts)) sums[name] = (sums[name] ?? 0) + v
      const snake = (k: string): string => k.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`)
      t.same(
        sums,
        Object.fromEntries(
          Object.entries(final)
            .filter(([, v]) => v > 0)
            .map(([k, v]) => [snake(k), v]),
        ),
        'the batches sum to the final counters',
      )
      t.equal(final.datagramsIn, 3, "the proxy received only the client's datagrams")
      t.equal(final.bytesOut, forwardedBytes(), 'and sent only what it forwarded: the batches bypass it')
    }),
)

t.test('the selfMetrics settings', async (t) => {
  const problems = (text: string): ConfigProblem[] => {
    try {
      parseConfig('filter.yaml', text)
    } catch (err) {
      if (err instanceof ConfigError) return [...err.problems]
      throw err
    }
    throw new Error(`expected a ConfigError for ${text}`)
  }
  t.same(
    parseConfig('f.yaml', 'selfMetrics: { prefix: spx, interval: 1s }\n').selfMetrics,
    { prefix: 'spx', intervalMs: 1000 },
    'the minimum, 1s',
  )
  t.same(
    parseConfig('f.yaml', 'selfMetrics: { interval: 2 }\n').selfMetrics,
    { prefix: 'statsd_filter_proxy', intervalMs: 2000 },
    'a number is seconds',
  )
  t.same(
    parseConfig('f.yaml', 'selfMetrics: {}\n').selfMetrics,
    { prefix: 'statsd_filter_proxy', intervalMs: 10000 },
    'defaults',
  )
  t.equal(parseConfig('f.yaml', 'selfMetrics: { enabled: false, interval: 1s }\n').selfMetrics, null, 'enabled: false')
  t.equal(parseConfig('f.yaml', '').selfMetrics, null, 'off unless configured')
  const tooShort = problems('selfMetrics: { prefix: spx, interval: 500ms }\n')
  t.same(
    tooShort,
    [
      {
        path: 'selfMetrics.interval',
        line: 1,
        column: 39,
        message: 'must be a duration from 1s to 1h, e.g. 10s, 1m or 1500ms (got "500ms")',
      },
    ],
    'below 1s: rejected',
  )
  t.notMatch(tooShort[0].message, /e\.g\. .*\b500ms\b.*\(got/, 'the examples in the message are valid values')
  t.same(problems('selfMetrics: { interval: 61m }\n'), [
    {
      path: 'selfMetrics.interval',
      line: 1,
      column: 26,
      message: 'must be a duration from 1s to 1h, e.g. 10s, 1m or 1500ms (got "61m")',
    },
  ])
  t.same(problems('selfMetrics: { prefix: 1bad, interval: 1s, extra: 2 }\n'), [
    {
      path: 'selfMetrics.prefix',
      line: 1,
      column: 24,
      message: 'must be a metric name prefix (letters, digits, _ and .)',
    },
    {
      path: 'selfMetrics.extra',
      line: 1,
      column: 44,
      message: 'unknown key (expected one of: enabled, prefix, interval)',
    },
  ])
})
