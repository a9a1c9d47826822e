// End to end with the real hot-shots client: what an application sends, through the proxy, to a UDP sink.
// Every test runs for each topology (fixtures/topology.ts): one process, and worker processes sharing the socket.
import t, { type Test } from 'tap'
import { StatsD } from 'hot-shots'
import { startProxy, type Proxy } from '../src/proxy.ts'
import type { CounterSnapshot } from '../src/telemetry/counters.ts'
import { assertLines, eachTopology, fresh, settled, type Topology } from './fixtures/topology.ts'
import {
  assertInvariant,
  byteLength,
  NO_COUNTS,
  silentLogger,
  sinkFor,
  testConfig,
  waitFor,
  type Sink,
} from './fixtures/udp.ts'

// hot-shots reads DD_* variables (global tags, cardinality, container id, agent address): keep them out.
for (const key of Object.keys(process.env))
  if (key.startsWith('DD_') || key.startsWith('DATADOG_')) Reflect.deleteProperty(process.env, key)

const BLOCKLIST = { prefixes: ['legacy.', 'debug.tmp', 'débug.'], names: ['app.requests.old'] }

interface SharedRig {
  proxy: Proxy
  sink: Sink
}

/** One proxy per topology for both tests (starting worker processes takes about a second). */
async function proxyRig(tt: Test, topology: Topology): Promise<SharedRig> {
  const sink = await sinkFor(tt)
  const proxy = await startProxy(testConfig({ forwardPort: sink.port, ...BLOCKLIST, ...topology.keys }), silentLogger())
  tt.teardown(() => proxy.close())
  return { proxy, sink }
}

function client(tt: Test, port: number, buffered: boolean, errors: Error[]): StatsD {
  const c = new StatsD({
    host: '127.0.0.1',
    port,
    mock: false,
    datadog: true,
    includeDataDogTags: false,
    includeDatadogTelemetry: false,
    originDetection: false,
    errorHandler: (err) => errors.push(err),
    ...(buffered ? { maxBufferSize: 1000, bufferFlushInterval: 50 } : {}),
  })
  tt.teardown(() => new Promise<void>((resolve) => c.close(() => resolve())))
  return c
}

/**
 * A test's start on the shared proxy (see fresh) and two hot-shots clients sharing one error list: `viaProxy` sends
 * to the proxy, `straight` to a sink of the test's own (`direct`), which shows what hot-shots writes.
 */
async function clients(
  tt: Test,
  r: SharedRig,
  buffered: boolean,
): Promise<{ before: CounterSnapshot; direct: Sink; errors: Error[]; viaProxy: StatsD; straight: StatsD }> {
  const before = await fresh(r.proxy, r.sink)
  const direct = await sinkFor(tt)
  const errors: Error[] = []
  const viaProxy = client(tt, r.proxy.listen.port, buffered, errors)
  const straight = client(tt, direct.port, buffered, errors)
  return { before, direct, errors, viaProxy, straight }
}

/** [what the application calls, the line hot-shots writes, whether the proxy blocks it] */
const CALLS: [(c: StatsD) => void, string, boolean][] = [
  [(c) => c.increment('app.requests'), 'app.requests:1|c', false],
  [(c) => c.increment('app.requests.old'), 'app.requests.old:1|c', true],
  [(c) => c.increment('app.requests.older', 2), 'app.requests.older:2|c', false],
  [(c) => c.increment('legacy.hits', 3, ['env:prod', 'k:v:w']), 'legacy.hits:3|c|#env:prod,k:v:w', true],
  [(c) => c.decrement('app.inflight', 1, ['env:prod']), 'app.inflight:-1|c|#env:prod', false],
  [(c) => c.gauge('app.queue.depth', 42, { tags: { region: 'eu' } }), 'app.queue.depth:42|g|#region:eu', false],
  [(c) => c.gaugeDelta('app.pool', 5), 'app.pool:+5|g', false],
  [(c) => c.gauge('debug.tmp.queue', 1), 'debug.tmp.queue:1|g', true],
  [(c) => c.timing('app.latency', 12, ['route:/x']), 'app.latency:12|ms|#route:/x', false],
  [(c) => c.timing('debug.tmp.latency', 5), 'debug.tmp.latency:5|ms', true],
  [(c) => c.histogram('app.size', 512, 1, ['a:b']), 'app.size:512|h|#a:b', false],
  [(c) => c.histogram('legacy.size', 1), 'legacy.size:1|h', true],
  [(c) => c.distribution('app.dist', 7.5, 0.5, ['x']), 'app.dist:7.5|d|@0.5|#x', false],
  [(c) => c.distribution('legacy', 1), 'legacy:1|d', false], // the prefix is `legacy.`
  [(c) => c.set('app.users', 'user-1'), 'app.users:user-1|s', false],
  [(c) => c.set('debug.tmpfile', 'x'), 'debug.tmpfile:x|s', true],
  [
    (c) => c.increment('app.ts', 1, { timestamp: 1656581400, cardinality: 'low' }),
    'app.ts:1|c|T1656581400|card:low',
    false,
  ],
  [(c) => c.increment('café.métrique'), 'café.métrique:1|c', false],
  [(c) => c.increment('débug.x'), 'débug.x:1|c', true],
  [
    (c) => c.event('Deploy', 'text\nline2', { aggregation_key: 'k1', alert_type: 'info' }, ['env:prod']),
    '_e{6,11}:Deploy|text\\nline2|k:k1|t:info|#env:prod',
    false,
  ],
  // Name rules apply to metric names only: an event or a service check named like a blocked metric goes through.
  [(c) => c.event('legacy.boom'), '_e{11,11}:legacy.boom|legacy.boom', false],
  [
    (c) => c.check('legacy.service', c.CHECKS.CRITICAL, { hostname: 'h1', message: 'down' }, ['t']),
    '_sc|legacy.service|2|h:h1|#t|m:down',
    false,
  ],
  [(c) => c.check('app.ok', c.CHECKS.OK), '_sc|app.ok|0', false],
]

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

eachTopology(t, async (t, topology) => {
  const r = await proxyRig(t, topology)

  await t.test(
    'unbuffered hot-shots: one metric per datagram, blocked ones removed, the rest byte for byte',
    async (t) => {
      const { before, direct, errors, viaProxy, straight } = await clients(t, r, false)
      const { sink } = r
      const all = CALLS.map(([, line]) => line)
      const survivors = CALLS.filter(([, , blocked]) => !blocked).map(([, line]) => line)

      unsampled(() => {
        for (const [call] of CALLS) call(straight)
        for (const [call] of CALLS) call(viaProxy)
      })
      await waitFor(
        () => direct.datagrams.length === CALLS.length,
        () => `${direct.datagrams.length}/${CALLS.length} datagrams at the direct sink`,
      )
      const c = await settled(r.proxy, r.sink, before, { linesIn: CALLS.length, linesOut: survivors.length })

      t.same(
        direct.datagrams.map((d) => d.toString()),
        all,
        'hot-shots writes the lines the test expects, one per datagram',
      )
      assertLines(t, sink, survivors, topology, 'the unblocked lines')
      t.same(c, {
        ...NO_COUNTS,
        datagramsIn: CALLS.length,
        bytesIn: byteLength(all),
        linesIn: CALLS.length,
        linesForwarded: survivors.length,
        linesBlocked: CALLS.length - survivors.length,
        datagramsOut: sink.datagrams.length,
        bytesOut: sink.bytes(),
      })
      t.equal(
        c.bytesOut,
        byteLength(survivors) + survivors.length - sink.datagrams.length,
        'survivors plus one \\n between lines of a datagram',
      )
      t.ok(c.datagramsOut >= 1 && c.datagramsOut <= c.datagramsIn, `${c.datagramsOut} datagrams out`)
      assertInvariant(t, c)
      t.same(errors, [], 'hot-shots reported no error')
    },
  )

  await t.test(
    'buffered hot-shots: blocked lines are removed from inside its batches, survivors keep their order',
    async (t) => {
      const { before, direct, errors, viaProxy, straight } = await clients(t, r, true)
      const { proxy, sink } = r

      // 400 metrics of every kind, a third of them blocked, plus the table above.
      const calls: [(c: StatsD) => void, string, boolean][] = []
      for (let i = 0; i < 400; i++) {
        switch (i % 6) {
          case 0:
            calls.push([(c) => c.increment(`app.hits.${i}`, i, ['shard:a']), `app.hits.${i}:${i}|c|#shard:a`, false])
            break
          case 1:
            calls.push([(c) => c.increment(`legacy.hits.${i}`), `legacy.hits.${i}:1|c`, true])
            break
          case 2:
            calls.push([(c) => c.gauge(`app.gauge.${i}`, i / 4), `app.gauge.${i}:${i / 4}|g`, false])
            break
          case 3:
            calls.push([(c) => c.timing(`debug.tmp.t${i}`, i), `debug.tmp.t${i}:${i}|ms`, true])
            break
          case 4:
            calls.push([(c) => c.distribution(`app.dist.${i}`, i, ['k:v:w']), `app.dist.${i}:${i}|d|#k:v:w`, false])
            break
          default:
            calls.push([(c) => c.increment('app.requests.old'), 'app.requests.old:1|c', true])
        }
      }
      calls.push(...CALLS)
      const all = calls.map(([, line]) => line)
      const survivors = calls.filter(([, , blocked]) => !blocked).map(([, line]) => line)

      unsampled(() => {
        for (const [call] of calls) call(straight)
        for (const [call] of calls) call(viaProxy)
      })
      straight.flush()
      viaProxy.flush()
      await waitFor(
        () => direct.lines().length === calls.length,
        () => `${direct.lines().length}/${calls.length} lines at the direct sink`,
      )
      const c = await settled(r.proxy, r.sink, before, { linesIn: calls.length, linesOut: survivors.length })

      t.same(direct.lines(), all, 'hot-shots writes the expected lines')
      t.ok(direct.datagrams.length < calls.length / 10, `hot-shots batched them: ${direct.datagrams.length} datagrams`)
      t.same(
        direct.datagrams.filter((d) => d.length > 1000),
        [],
        'no hot-shots batch over maxBufferSize',
      )
      // Lines of one hot-shots batch are read by one reader: they stay in order (and together) per reader.
      assertLines(t, sink, survivors, topology, 'the unblocked lines')
      t.same(
        sink.datagrams.filter((d) => d.length > proxy.maxPacketSize),
        [],
        `no forwarded datagram over ${proxy.maxPacketSize} bytes`,
      )
      t.same(c, {
        ...NO_COUNTS,
        datagramsIn: direct.datagrams.length, // both clients batch the same calls the same way
        bytesIn: direct.bytes(),
        linesIn: calls.length,
        linesForwarded: survivors.length,
        linesBlocked: calls.length - survivors.length,
        datagramsOut: sink.datagrams.length,
        bytesOut: sink.bytes(),
      })
      t.equal(c.bytesOut, byteLength(survivors) + survivors.length - sink.datagrams.length)
      assertInvariant(t, c)
      t.same(errors, [], 'hot-shots reported no error')
    },
  )
})
