// End to end over real UDP sockets on 127.0.0.1: a raw dgram client sends exact bytes through the proxy to a sink.
import t, { type Test } from 'tap'
import { parseConfig } from '../src/config/load.ts'
import { startProxy, type Proxy } from '../src/proxy.ts'
import type { Counters } from '../src/telemetry/counters.ts'
import type { Logger } from '../src/telemetry/logger.ts'
import {
  assertInvariant,
  createClient,
  freePort,
  memoryLogger,
  silentLogger,
  startSink,
  testConfig,
  waitFor,
  type Client,
  type Sink,
  type TestConfigOptions,
} from './fixtures/udp.ts'

interface Rig {
  proxy: Proxy
  sink: Sink
  client: Client
  counters: Counters
}

/** Sink, proxy forwarding to it, client sending to the proxy; all closed at teardown. */
async function rig(tt: Test, options: Omit<TestConfigOptions, 'forwardPort'>, log: Logger = silentLogger()): Promise<Rig> {
  const sink = await startSink()
  tt.teardown(() => sink.close())
  const proxy = await startProxy(testConfig({ ...options, forwardPort: sink.port }), log)
  tt.teardown(() => proxy.close())
  const client = await createClient(proxy.listener.port)
  tt.teardown(() => client.close())
  return { proxy, sink, client, counters: proxy.counters }
}

/** Waits until the proxy has counted `linesIn` lines and the sink has every byte the proxy sent. */
function settled(r: Rig, linesIn: number): Promise<void> {
  return waitFor(
    () => r.counters.linesIn >= linesIn && r.counters.bytesOut === r.sink.bytes(),
    () => `linesIn ${r.counters.linesIn}/${linesIn}, sink bytes ${r.sink.bytes()}/${r.counters.bytesOut}`,
  )
}

const b = (s: string): Buffer => Buffer.from(s, 'utf8')

t.test('forwards every DogStatsD shape byte for byte and removes only whole blocked lines', async (t) => {
  const r = await rig(t, { prefixes: ['blocked.', 'débug.'], names: ['exact.name'] })
  // [bytes as sent, line forwarded (or null: blocked or empty)]
  const parts: [Buffer, Buffer | null][] = [
    [b('a:1:2|d\n'), b('a:1:2|d')],
    [b('s:x:y|s\n'), b('s:x:y|s')],
    [b('blocked.x:1|c\n'), null],
    [b('m.tags:1|c|#k:v:w,env:prod\n'), b('m.tags:1|c|#k:v:w,env:prod')],
    [b('m.rate:1|c|@0.5\n'), b('m.rate:1|c|@0.5')],
    [b('m.container:1|c|c:abc\n'), b('m.container:1|c|c:abc')],
    [b('m.ts:1|g|T1656581400\n'), b('m.ts:1|g|T1656581400')],
    [b('m.card:1|c|card:low\n'), b('m.card:1|c|card:low')],
    [b('m.unknown:1|c|x:zzz|@0.1|#a\n'), b('m.unknown:1|c|x:zzz|@0.1|#a')],
    [b('g.delta:-5|g\n'), b('g.delta:-5|g')],
    [b('café.métrique:1|c\r\n'), b('café.métrique:1|c')],
    [b('\n'), null],
    [b('\r\n'), null],
    [b('débug.x:1|c\r\n'), null],
    [Buffer.from([0xff, 0xfe, 0x3a, 0x31, 0x7c, 0x63, 0x0a]), Buffer.from([0xff, 0xfe, 0x3a, 0x31, 0x7c, 0x63])],
    [b('m.inner.cr:1|c|#a\rb\n'), b('m.inner.cr:1|c|#a\rb')],
    [b('_e{5,4}:ti|le|text\n'), b('_e{5,4}:ti|le|text')],
    [b('_sc|name|0|#t\n'), b('_sc|name|0|#t')],
    // Events and service checks are not metric lines: name rules never remove them.
    [b('_e{9,4}:blocked.x|text\n'), b('_e{9,4}:blocked.x|text')],
    [b('_sc|blocked.check|2|m:down\n'), b('_sc|blocked.check|2|m:down')],
    [b('blocked.y:2|g\n'), null],
    [b('exact.name:3|ms\n'), null],
    [b('exact.name.longer:3|ms\n'), b('exact.name.longer:3|ms')],
    [b('exact.nam:3|ms\n'), b('exact.nam:3|ms')],
    [b('blocked:1|c\n'), b('blocked:1|c')],
    [b('Blocked.x:1|c\n'), b('Blocked.x:1|c')],
    [b('trailing:1|h\n'), b('trailing:1|h')],
  ]
  const datagram = Buffer.concat(parts.map(([raw]) => raw))
  const survivors = parts.flatMap(([, out]) => (out === null ? [] : [out]))
  const expected = Buffer.concat(survivors.flatMap((line, i) => (i === 0 ? [line] : [b('\n'), line])))
  const blocked = 4 // blocked.x, débug.x, blocked.y, exact.name
  const nonEmpty = parts.length - 2

  await r.client.send(datagram)
  await settled(r, nonEmpty)

  t.same(r.sink.datagrams, [expected], 'one datagram: the survivors joined by \\n, CR and empty lines gone, no trailing \\n')
  t.ok(r.sink.datagrams[0].equals(expected), 'exact bytes')
  t.same(r.counters.snapshot(), {
    datagramsIn: 1,
    bytesIn: datagram.length,
    linesIn: nonEmpty,
    linesForwarded: survivors.length,
    linesBlocked: blocked,
    linesMalformed: 0,
    linesDroppedBackpressure: 0,
    linesWouldBlock: 0,
    linesOversize: 0,
    linesSendFailed: 0,
    datagramsOut: 1,
    bytesOut: expected.length,
    sendErrors: 0,
  })
  assertInvariant(t, r.counters)
})

t.test('a datagram of only empty lines forwards nothing', async (t) => {
  const r = await rig(t, { prefixes: ['blocked.'] })
  await r.client.send('\n\r\n\n')
  await r.client.send('blocked.only:1|c')
  await r.client.send('marker:1|c') // datagrams are handled in order: once it is out, the others were handled
  await settled(r, 2)
  t.same(r.sink.lines(), ['marker:1|c'])
  t.same(r.counters.snapshot(), {
    datagramsIn: 3,
    bytesIn: 4 + 16 + 10,
    linesIn: 2,
    linesForwarded: 1,
    linesBlocked: 1,
    linesMalformed: 0,
    linesDroppedBackpressure: 0,
    linesWouldBlock: 0,
    linesOversize: 0,
    linesSendFailed: 0,
    datagramsOut: 1,
    bytesOut: 10,
    sendErrors: 0,
  })
  assertInvariant(t, r.counters)
})

t.test('malformed lines are dropped and counted; the rest of the datagram is unaffected', async (t) => {
  const { log, records } = memoryLogger('warn')
  const r = await rig(t, { prefixes: ['blocked.'] }, log)
  const datagram = Buffer.concat([
    Buffer.from([0x62, 0x61, 0x64, 0x09, 0xff]), // "bad\t\xff": no ':' and no '|'
    b('|c\n'),
    b('good.one:1|c\n'),
    b('nocolon|c\n'),
    b(':1|c\n'), // empty name
    b('name:1\n'), // no '|'
    b('a|b:1\n'), // '|' before ':'
    b('blocked.x:1|c\n'),
    b('_sc\n'), // not a service check: no '|' after it
    b('good.two:2|g\r\n'),
    b('nothing'),
  ])
  await r.client.send(datagram)
  await settled(r, 10)

  t.same(r.sink.lines(), ['good.one:1|c', 'good.two:2|g'])
  t.same(r.counters.snapshot(), {
    datagramsIn: 1,
    bytesIn: datagram.length,
    linesIn: 10,
    linesForwarded: 2,
    linesBlocked: 1,
    linesMalformed: 7,
    linesDroppedBackpressure: 0,
    linesWouldBlock: 0,
    linesOversize: 0,
    linesSendFailed: 0,
    datagramsOut: 1,
    bytesOut: 'good.one:1|c\ngood.two:2|g'.length,
    sendErrors: 0,
  })
  assertInvariant(t, r.counters)
  // One warning per interval, with a log-safe sample of the first malformed line; the others are only counted.
  const warnings = records.filter((rec) => rec.msg === 'malformed line dropped')
  t.equal(warnings.length, 1, 'rate-limited to one warning')
  t.match(warnings[0], { level: 40, sample: 'bad\\x09\\xff|c', suppressed: 0, linesMalformed: 1 })
})

t.test('a burst of small datagrams leaves as fewer, full datagrams, lines whole and in order', async (t) => {
  const r = await rig(t, { prefixes: ['blocked.'], maxPacketSize: 512 })
  t.equal(r.proxy.maxPacketSize, 512)
  const datagrams: string[] = []
  const expected: string[] = []
  let lines = 0
  for (let i = 0; i < 100; i++) {
    const n = String(i).padStart(3, '0')
    if (i % 10 === 3) {
      datagrams.push(`blocked.${n}:1|c`)
    } else if (i % 10 === 7) {
      // some datagrams already hold several lines
      datagrams.push(`multi.${n}.a:1|c|#k:v\nblocked.${n}:1|c\nmulti.${n}.b:2|g`)
      expected.push(`multi.${n}.a:1|c|#k:v`, `multi.${n}.b:2|g`)
      lines += 2
    } else {
      datagrams.push(`coalesce.${n}:${i}|c`)
      expected.push(`coalesce.${n}:${i}|c`)
    }
    lines++
  }
  await r.client.burst(datagrams)
  await settled(r, lines)

  t.same(r.sink.lines(), expected, 'every surviving line, in order')
  t.same(r.sink.datagrams.filter((d) => d.length > 512), [], 'no datagram over 512 bytes')
  t.same(
    r.sink.datagrams.flatMap((d) => d.toString().split('\n')).filter((line) => !expected.includes(line)),
    [],
    'every datagram holds whole lines only',
  )
  const c = r.counters
  t.equal(c.datagramsIn, 100)
  t.equal(c.linesIn, lines)
  t.equal(c.linesBlocked, 20)
  t.equal(c.linesForwarded, expected.length)
  t.equal(c.linesMalformed, 0)
  t.equal(c.linesDroppedBackpressure, 0)
  t.equal(c.datagramsOut, r.sink.datagrams.length)
  t.ok(c.datagramsOut < c.datagramsIn, `coalesced: ${c.datagramsOut} datagrams out for ${c.datagramsIn} in`)
  t.equal(c.bytesOut, r.sink.bytes())
  t.equal(c.sendErrors, 0)
  assertInvariant(t, c)
})

t.test('lines are packed greedily up to exactly maxPacketSize; a longer line leaves alone and whole', async (t) => {
  const r = await rig(t, { prefixes: ['blocked.'], maxPacketSize: 512 })
  /** A metric line of exactly `length` bytes. */
  const line = (tag: string, length: number): string => {
    const head = `p.${tag}.`
    return head + 'x'.repeat(length - head.length - 4) + ':1|c'
  }
  const A = line('a', 255)
  const B = line('b', 256) // A + \n + B = 512: fits exactly
  const C = line('c', 10)
  const D = line('d', 512) // exactly the limit: alone, through a pooled buffer
  const E = line('e', 513) // over the limit: alone, straight from the received datagram
  const F = line('f', 20)
  const G = line('g', 30)
  const blockedLong = `blocked.${'y'.repeat(1000)}:1|c`
  t.equal(A.length + 1 + B.length, 512)
  t.equal(D.length, 512)
  t.equal(E.length, 513)

  await r.client.send([A, B, C, D, blockedLong, E, F, G].join('\n'))
  await settled(r, 8)

  t.same(
    r.sink.datagrams.map((d) => d.toString()),
    [`${A}\n${B}`, C, D, E, `${F}\n${G}`],
  )
  t.same(r.counters.snapshot(), {
    datagramsIn: 1,
    bytesIn: [A, B, C, D, blockedLong, E, F, G].join('\n').length,
    linesIn: 8,
    linesForwarded: 7,
    linesBlocked: 1,
    linesMalformed: 0,
    linesDroppedBackpressure: 0,
    linesWouldBlock: 0,
    linesOversize: 1,
    linesSendFailed: 0,
    datagramsOut: 5,
    bytesOut: 512 + C.length + 512 + 513 + F.length + 1 + G.length,
    sendErrors: 0,
  })
  assertInvariant(t, r.counters)
})

t.test('a 2000-byte line is forwarded alone and whole, in order with its neighbours', async (t) => {
  const r = await rig(t, { prefixes: ['blocked.'], maxPacketSize: 512 })
  const long = `long.metric:1|d|#${'t'.repeat(2000 - 'long.metric:1|d|#'.length)}`
  t.equal(long.length, 2000)
  const blockedLong = `blocked.${'z'.repeat(1990)}:1|c`
  await r.client.burst(['before.1:1|c\nbefore.2:1|c', long, `${blockedLong}\nafter.1:1|c`])
  await settled(r, 5)

  t.same(r.sink.lines(), ['before.1:1|c', 'before.2:1|c', long, 'after.1:1|c'])
  t.same(
    r.sink.datagrams.map((d) => d.toString()),
    ['before.1:1|c\nbefore.2:1|c', long, 'after.1:1|c'],
    'the long line is a datagram of its own; what was pending went first',
  )
  t.equal(r.sink.datagrams[1].length, 2000)
  t.same(r.counters.snapshot(), {
    datagramsIn: 3,
    bytesIn: 25 + 2000 + blockedLong.length + 1 + 11,
    linesIn: 5,
    linesForwarded: 4,
    linesBlocked: 1,
    linesMalformed: 0,
    linesDroppedBackpressure: 0,
    linesWouldBlock: 0,
    linesOversize: 1,
    linesSendFailed: 0,
    datagramsOut: 3,
    bytesOut: 25 + 2000 + 11,
    sendErrors: 0,
  })
  assertInvariant(t, r.counters)
})

t.test('forward target down: the proxy keeps running, counts send errors, and resumes by itself', async (t) => {
  const port = await freePort()
  const { log, records } = memoryLogger('warn')
  const proxy = await startProxy(testConfig({ forwardPort: port, prefixes: ['blocked.'] }), log)
  t.teardown(() => proxy.close())
  const client = await createClient(proxy.listener.port)
  t.teardown(() => client.close())
  const c = proxy.counters

  // Nothing listens: the kernel answers with ICMP port unreachable, reported to the connected socket.
  let sent = 0
  const deadline = Date.now() + 10_000
  while (c.sendErrors === 0) {
    if (Date.now() > deadline) throw new Error(`no send error after ${sent} datagrams`)
    await client.send(`down.${sent}:1|c\nblocked.${sent}:1|c`)
    sent++
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  await waitFor(() => c.linesIn === sent * 2, () => `linesIn ${c.linesIn}/${sent * 2}`)
  t.ok(c.sendErrors > 0, `sendErrors ${c.sendErrors}`)
  t.equal(c.datagramsIn, sent)
  t.equal(c.linesForwarded, sent, 'lines are handed on even while the target is down')
  t.equal(c.linesBlocked, sent)
  t.equal(c.linesMalformed, 0)
  t.equal(c.linesDroppedBackpressure, 0)
  assertInvariant(t, c)
  const failures = records.filter((rec) => rec.msg === 'send to forward target failed')
  t.ok(failures.length >= 1, 'the send failure is logged')
  t.match(failures[0], { level: 40, err: { code: 'ECONNREFUSED' } })

  // The target comes up on the same port: forwarding resumes without any action.
  const sink = await startSink(port)
  t.teardown(() => sink.close())
  let up = 0
  while (sink.datagrams.length === 0) {
    if (Date.now() > deadline + 10_000) throw new Error(`forwarding did not resume after ${up} datagrams`)
    await client.send(`up.${up}:1|c`)
    up++
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  await client.send('final:1|c')
  await waitFor(() => sink.lines().includes('final:1|c'), () => `final line at the sink: ${JSON.stringify(sink.lines())}`)
  const received = sink.lines()
  t.equal(received[received.length - 1], 'final:1|c')
  const first = Number(received[0].slice('up.'.length, received[0].indexOf(':')))
  t.same(
    received,
    [...Array.from({ length: up - first }, (_, i) => `up.${first + i}:1|c`), 'final:1|c'],
    'from the first line that got through, every line arrives, in order',
  )
  await waitFor(() => c.linesIn === sent * 2 + up + 1, () => `linesIn ${c.linesIn}`)
  t.equal(c.linesForwarded, sent + up + 1)
  assertInvariant(t, c)
})

t.test('close() sends what is buffered and waits for it to leave', async (t) => {
  const { log, records } = memoryLogger('info')
  const sink = await startSink()
  t.teardown(() => sink.close())
  const proxy = await startProxy(testConfig({ forwardPort: sink.port, prefixes: ['blocked.'] }), log)
  t.teardown(() => proxy.close())
  const client = await createClient(proxy.listener.port)
  t.teardown(() => client.close())
  const listenPort = proxy.listener.port
  const lines = ['last.1:1|c', 'blocked.x:1|c', 'last.2:2|g', 'last.3:3|ms']

  await client.burst(['last.1:1|c\nblocked.x:1|c', 'last.2:2|g', 'last.3:3|ms'])
  // Check on every loop turn, ahead of the assembler's end-of-turn flush (immediates run in order): close() is
  // called in the very turn the lines were received, while they are still in the assembler's buffer.
  const deadline = Date.now() + 10_000
  while (proxy.counters.linesIn < lines.length) {
    if (Date.now() > deadline) throw new Error(`linesIn ${proxy.counters.linesIn}/${lines.length}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.equal(proxy.counters.linesForwarded, 3)
  t.equal(proxy.counters.datagramsOut, 0, 'nothing has left yet when close() is called')
  const closing = proxy.close()
  t.equal(proxy.close(), closing, 'close() is idempotent')
  await closing

  await waitFor(() => sink.bytes() === proxy.counters.bytesOut, () => `sink bytes ${sink.bytes()}/${proxy.counters.bytesOut}`)
  t.same(sink.lines(), ['last.1:1|c', 'last.2:2|g', 'last.3:3|ms'])
  const final = proxy.counters.snapshot()
  t.same(final, {
    datagramsIn: 3,
    bytesIn: 24 + 10 + 11,
    linesIn: 4,
    linesForwarded: 3,
    linesBlocked: 1,
    linesMalformed: 0,
    linesDroppedBackpressure: 0,
    linesWouldBlock: 0,
    linesOversize: 0,
    linesSendFailed: 0,
    datagramsOut: 1,
    bytesOut: 'last.1:1|c\nlast.2:2|g\nlast.3:3|ms'.length,
    sendErrors: 0,
  })
  assertInvariant(t, proxy.counters)
  const stopped = records.filter((rec) => rec.msg === 'statsd-filter-proxy stopped')
  t.equal(stopped.length, 1)
  t.same(stopped[0].counters, final, 'the final log line carries the final counters')
  t.notOk(records.some((rec) => rec.msg === 'sends still in flight at shutdown were abandoned'))
  // The listen port is released.
  const again = await startSink(listenPort)
  await again.close()
})

t.test('the start log line describes the running proxy', async (t) => {
  const { log, records } = memoryLogger('info')
  const r = await rig(t, { prefixes: ['a.', 'b.'], names: ['c'], maxPacketSize: 1000 }, log)
  const started = records.filter((rec) => rec.msg === 'statsd-filter-proxy started')
  t.equal(started.length, 1)
  t.match(started[0], {
    level: 30,
    name: 'statsd-filter-proxy',
    pid: process.pid,
    config: 'test-config.yaml',
    format: 'yaml',
    listen: `127.0.0.1:${r.proxy.listener.port}`,
    forward: `127.0.0.1:${r.sink.port}`,
    forwardAddress: '127.0.0.1',
    rules: { prefixes: 2, names: 1 },
    maxPacketSize: 1000,
    sendPool: 128,
    recvBufferRequested: 8388608,
    recvBufferGranted: Number,
  })
})

t.test('start-up warnings: config warnings, duplicate rules, a smaller receive buffer than asked', async (t) => {
  const { log, records } = memoryLogger('info')
  const sink = await startSink()
  t.teardown(() => sink.close())
  const config = parseConfig(
    'rust.json',
    JSON.stringify({
      listen_host: '127.0.0.1',
      listen_port: 0,
      target_host: '127.0.0.1',
      target_port: sink.port,
      metric_blocklist: ['a.', 'b.', 'a.'],
    }),
  )
  const proxy = await startProxy({ ...config, blocklist: { prefixes: config.blocklist.prefixes, names: [{ pattern: 'x', dryRun: false }, { pattern: 'x', dryRun: false }] } }, log)
  t.teardown(() => proxy.close())
  const warnings = records.filter((rec) => rec.level === 40)
  const granted = proxy.listener.recvBufferGranted
  t.ok(granted > 0, `granted ${granted}`)
  // The column depends on the sink's port number, written into the JSON before them.
  t.match(
    warnings.map(({ msg, requested, granted }) => ({ msg, requested, granted })),
    [
      { msg: /^rust\.json:1:\d+: metric_blocklist\[2\]: duplicate of metric_blocklist\[0\]; ignored$/ },
      ...(granted < 8388608
        ? [{ msg: 'the kernel granted a smaller receive buffer than recvBufferSize; raise net.core.rmem_max to absorb bursts', requested: 8388608, granted }]
        : []),
    ].map((w) => ({ requested: undefined, granted: undefined, ...w })),
  )
  t.equal(warnings.length, granted < 8388608 ? 2 : 1)
  t.match(records.find((rec) => rec.msg === 'statsd-filter-proxy started'), { format: 'rust-json', rules: { prefixes: 3, names: 2 } })

  // The duplicates changed nothing: both rules still apply.
  const client = await createClient(proxy.listener.port)
  t.teardown(() => client.close())
  await client.send('a.1:1|c\nx:1|c\nb.2:1|c\nkept:1|c')
  await waitFor(() => sink.bytes() > 0, () => 'the kept line at the sink')
  t.same(sink.lines(), ['kept:1|c'])
  t.equal(proxy.counters.linesBlocked, 3)
})

t.test('counters are logged on an interval', async (t) => {
  const { log, records } = memoryLogger('info')
  const sink = await startSink()
  t.teardown(() => sink.close())
  const proxy = await startProxy(testConfig({ forwardPort: sink.port, prefixes: ['blocked.'] }), log, { reportIntervalMs: 20 })
  t.teardown(() => proxy.close())
  const client = await createClient(proxy.listener.port)
  t.teardown(() => client.close())
  await client.send('a:1|c\nblocked.b:1|c')
  const reported = (): Record<string, unknown> | undefined =>
    records.find((rec) => rec.msg === 'counters' && (rec.counters as { linesIn: number }).linesIn === 2)
  await waitFor(() => reported() !== undefined, () => `a counters line with linesIn 2: ${JSON.stringify(records.filter((r) => r.msg === 'counters'))}`)
  t.match(reported(), {
    level: 30,
    counters: { datagramsIn: 1, bytesIn: 19, linesIn: 2, linesForwarded: 1, linesBlocked: 1, linesMalformed: 0, linesDroppedBackpressure: 0, linesWouldBlock: 0, linesOversize: 0, linesSendFailed: 0, datagramsOut: 1, bytesOut: 5, sendErrors: 0 },
  })
})
