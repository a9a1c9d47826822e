// End to end over real UDP sockets on 127.0.0.1: a raw dgram client sends exact bytes through the proxy to a sink.
// Every test runs for each topology (fixtures/topology.ts): one process, and worker processes sharing the socket.
import t, { type Test } from 'tap'
import { parseConfig } from '../src/config/load.ts'
import { startProxy, type Proxy } from '../src/proxy.ts'
import type { CounterSnapshot } from '../src/telemetry/counters.ts'
import {
  assertLines,
  configKeys,
  eachTopology,
  fresh,
  settled,
  waitForCounters,
  type Topology,
} from './fixtures/topology.ts'
import {
  assertInvariant,
  byteLength,
  createClient,
  linesOf,
  memoryLogger,
  NO_COUNTS,
  present,
  since,
  sinkFor,
  startSink,
  testConfig,
  waitFor,
  type Client,
  type Sink,
} from './fixtures/udp.ts'

interface SharedRig {
  /** The test that owns the rig (its teardown closes it). */
  owner: Test
  proxy: Proxy
  /** Replaced when the target-down subtest brings the target back. */
  sink: Sink
  client: Client
  records: Record<string, unknown>[]
}

const SHARED_BLOCKLIST = { prefixes: ['blocked.', 'débug.'], names: ['exact.name'] }
const REPORT_INTERVAL_MS = 50

/**
 * One proxy (per topology) for the subtests that only send, wait and look: starting worker processes takes
 * about a second, so they share it. Each subtest empties the sink and measures the counters from its start.
 */
async function sharedRig(tt: Test, topology: Topology): Promise<SharedRig> {
  const { log, records } = memoryLogger('info')
  const sink = await sinkFor(tt)
  const config = testConfig({
    forwardPort: sink.port,
    ...SHARED_BLOCKLIST,
    maxPacketSize: 512,
    ...topology.keys,
  })
  const proxy = await startProxy(config, log, { reportIntervalMs: REPORT_INTERVAL_MS })
  tt.teardown(() => proxy.close())
  const client = await createClient(proxy.listen.port)
  tt.teardown(() => client.close())
  return { owner: tt, proxy, sink, client, records }
}

/** A subtest's start on the shared rig: an empty sink, the counters so far, the log so far. */
async function freshRig(r: SharedRig): Promise<{ before: CounterSnapshot; mark: number }> {
  const before = await fresh(r.proxy, r.sink)
  return { before, mark: r.records.length }
}

const b = (s: string): Buffer => Buffer.from(s, 'utf8')

eachTopology(t, async (t, topology) => {
  await t.test('on one proxy', async (t) => {
    const r = await sharedRig(t, topology)

    await t.test('the start log line describes the running proxy', async (t) => {
      const started = r.records.filter((rec) => rec.msg === 'statsd-filter-proxy started')
      t.equal(started.length, 1)
      t.match(started[0], {
        level: 30,
        name: 'statsd-filter-proxy',
        pid: process.pid,
        config: 'test-config.yaml',
        format: 'yaml',
        listen: `127.0.0.1:${r.proxy.listen.port}`,
        forward: `127.0.0.1:${r.sink.port}`,
        forwardAddress: '127.0.0.1',
        rules: { prefixes: 2, names: 1 },
        maxPacketSize: 512,
        sendPool: 128,
        ...topology.keys,
        recvBufferRequested: 8388608,
        recvBufferGranted: Number,
      })
      t.equal(r.proxy.maxPacketSize, 512)
    })

    await t.test('forwards every DogStatsD shape byte for byte and removes only whole blocked lines', async (t) => {
      const { before } = await freshRig(r)
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
      t.ok(expected.length <= 512, 'the survivors fit one datagram of the rig')
      const blocked = 4 // blocked.x, débug.x, blocked.y, exact.name
      const nonEmpty = parts.length - 2

      await r.client.send(datagram)
      const d = await settled(r.proxy, r.sink, before, {
        datagramsIn: 1,
        linesIn: nonEmpty,
        linesOut: survivors.length,
      })

      // One datagram in is read by one reader whatever the topology: the datagram out is exact.
      t.same(
        r.sink.datagrams,
        [expected],
        'one datagram: the survivors joined by \\n, CR and empty lines gone, no trailing \\n',
      )
      t.ok(r.sink.datagrams[0].equals(expected), 'exact bytes')
      t.same(d, {
        ...NO_COUNTS,
        datagramsIn: 1,
        bytesIn: datagram.length,
        linesIn: nonEmpty,
        linesForwarded: survivors.length,
        linesBlocked: blocked,
        datagramsOut: 1,
        bytesOut: expected.length,
      })
      assertInvariant(t, d)
    })

    await t.test('a datagram of only empty lines forwards nothing', async (t) => {
      const { before } = await freshRig(r)
      await r.client.send('\n\r\n\n')
      await r.client.send('blocked.only:1|c')
      await r.client.send('marker:1|c')
      // With workers the three may be read by different readers: wait for all three to be counted.
      const d = await settled(r.proxy, r.sink, before, { datagramsIn: 3, linesIn: 2, linesOut: 1 })
      t.same(r.sink.lines(), ['marker:1|c'])
      t.same(d, {
        ...NO_COUNTS,
        datagramsIn: 3,
        bytesIn: 4 + 16 + 10,
        linesIn: 2,
        linesForwarded: 1,
        linesBlocked: 1,
        datagramsOut: 1,
        bytesOut: 10,
      })
      assertInvariant(t, d)
    })

    await t.test('malformed lines are dropped and counted; the rest of the datagram is unaffected', async (t) => {
      const { before, mark } = await freshRig(r)
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
      const d = await settled(r.proxy, r.sink, before, { datagramsIn: 1, linesIn: 10, linesOut: 2 })

      t.same(
        r.sink.datagrams.map((dg) => dg.toString()),
        ['good.one:1|c\ngood.two:2|g'],
      )
      t.same(d, {
        ...NO_COUNTS,
        datagramsIn: 1,
        bytesIn: datagram.length,
        linesIn: 10,
        linesForwarded: 2,
        linesBlocked: 1,
        linesMalformed: 7,
        datagramsOut: 1,
        bytesOut: 'good.one:1|c\ngood.two:2|g'.length,
      })
      assertInvariant(t, d)
      // One process only: a worker logs its warnings in its own process (to its stdout), not to this logger.
      if (topology.workers === 1) {
        // One warning per interval, with a log-safe sample of the first malformed line; the others are only counted.
        const warnings = r.records.slice(mark).filter((rec) => rec.msg === 'malformed line dropped')
        t.equal(warnings.length, 1, 'rate-limited to one warning')
        t.match(warnings[0], { level: 40, sample: 'bad\\x09\\xff|c', suppressed: 0, linesMalformed: 1 })
      }
    })

    await t.test('a burst of small datagrams leaves as fewer, full datagrams, lines whole and in order', async (t) => {
      const { before } = await freshRig(r)
      const datagrams: string[] = []
      const expected: string[] = []
      const pairs: [string, string][] = []
      let lines = 0
      for (let i = 0; i < 100; i++) {
        const n = String(i).padStart(3, '0')
        if (i % 10 === 3) {
          datagrams.push(`blocked.${n}:1|c`)
        } else if (i % 10 === 7) {
          // some datagrams already hold several lines
          datagrams.push(`multi.${n}.a:1|c|#k:v\nblocked.${n}:1|c\nmulti.${n}.b:2|g`)
          expected.push(`multi.${n}.a:1|c|#k:v`, `multi.${n}.b:2|g`)
          pairs.push([`multi.${n}.a:1|c|#k:v`, `multi.${n}.b:2|g`])
          lines += 2
        } else {
          datagrams.push(`coalesce.${n}:${i}|c`)
          expected.push(`coalesce.${n}:${i}|c`)
        }
        lines++
      }
      await r.client.burst(datagrams)
      const c = await settled(r.proxy, r.sink, before, { datagramsIn: 100, linesIn: lines, linesOut: expected.length })

      assertLines(t, r.sink, expected, topology, 'every surviving line')
      // The survivors of one datagram in are read by one reader: they leave from one socket, next to each other.
      const streams = [...r.sink.bySender().values()].map(linesOf)
      t.same(
        pairs.filter(([a, z]) => !streams.some((s) => s.indexOf(z) === s.indexOf(a) + 1 && s.includes(a))),
        [],
        'the lines of one datagram stay together and in order',
      )
      t.same(
        r.sink.datagrams.filter((dg) => dg.length > 512),
        [],
        'no datagram over 512 bytes',
      )
      t.same(
        r.sink.datagrams.flatMap((dg) => dg.toString().split('\n')).filter((line) => !expected.includes(line)),
        [],
        'every datagram holds whole lines only',
      )
      t.equal(c.datagramsIn, 100)
      t.equal(c.linesIn, lines)
      t.equal(c.linesBlocked, 20)
      t.equal(c.linesForwarded, expected.length)
      t.equal(c.linesMalformed, 0)
      t.equal(c.linesDroppedBackpressure, 0)
      t.equal(c.datagramsOut, r.sink.datagrams.length)
      t.ok(c.datagramsOut < c.datagramsIn, `coalesced: ${c.datagramsOut} datagrams out for ${c.datagramsIn} in`)
      t.equal(c.bytesOut, r.sink.bytes())
      t.equal(
        c.bytesOut,
        byteLength(expected) + expected.length - c.datagramsOut,
        'the lines plus one \\n between lines of a datagram',
      )
      t.equal(c.sendErrors, 0)
      assertInvariant(t, c)
    })

    await t.test(
      'lines are packed greedily up to exactly maxPacketSize; a longer line leaves alone and whole',
      async (t) => {
        const { before } = await freshRig(r)
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
        const d = await settled(r.proxy, r.sink, before, { datagramsIn: 1, linesIn: 8, linesOut: 7 })

        // One datagram in, one reader, whatever the topology: the packing is exact.
        t.same(
          r.sink.datagrams.map((dg) => dg.toString()),
          [`${A}\n${B}`, C, D, E, `${F}\n${G}`],
        )
        t.same(d, {
          ...NO_COUNTS,
          datagramsIn: 1,
          bytesIn: [A, B, C, D, blockedLong, E, F, G].join('\n').length,
          linesIn: 8,
          linesForwarded: 7,
          linesBlocked: 1,
          linesOversize: 1,
          datagramsOut: 5,
          bytesOut: 512 + C.length + 512 + 513 + F.length + 1 + G.length,
        })
        assertInvariant(t, d)
      },
    )

    await t.test('a 2000-byte line is forwarded alone and whole, in order with its neighbours', async (t) => {
      const { before } = await freshRig(r)
      const long = `long.metric:1|d|#${'t'.repeat(2000 - 'long.metric:1|d|#'.length)}`
      t.equal(long.length, 2000)
      const blockedLong = `blocked.${'z'.repeat(1990)}:1|c`
      const survivors = ['before.1:1|c', 'before.2:1|c', long, 'after.1:1|c']
      await r.client.burst(['before.1:1|c\nbefore.2:1|c', long, `${blockedLong}\nafter.1:1|c`])
      const d = await settled(r.proxy, r.sink, before, { datagramsIn: 3, linesIn: 5, linesOut: 4 })

      // Per reader, in order: what was pending left before the long line, which leaves before what follows it.
      assertLines(t, r.sink, survivors, topology, 'the lines around the long one')
      t.same(
        r.sink.datagrams.filter((dg) => dg.includes(long)).map((dg) => dg.length),
        [2000],
        'the long line is a datagram of its own',
      )
      // The datagrams themselves are exact when one reader read all three (always so with one process; with
      // workers, one reading the first and the third but not the second may join their lines, or not).
      if (r.sink.bySender().size === 1) {
        t.same(
          r.sink.datagrams.map((dg) => dg.toString()),
          ['before.1:1|c\nbefore.2:1|c', long, 'after.1:1|c'],
          'one reader: the long line is a datagram of its own; what was pending went first',
        )
      }
      t.same(d, {
        ...NO_COUNTS,
        datagramsIn: 3,
        bytesIn: 25 + 2000 + blockedLong.length + 1 + 11,
        linesIn: 5,
        linesForwarded: 4,
        linesBlocked: 1,
        linesOversize: 1,
        datagramsOut: r.sink.datagrams.length,
        bytesOut: byteLength(survivors) + survivors.length - r.sink.datagrams.length,
      })
      t.equal(d.bytesOut, r.sink.bytes())
      assertInvariant(t, d)
    })

    await t.test('counters are logged on an interval', async (t) => {
      const { before, mark } = await freshRig(r)
      await r.client.send('a:1|c\nblocked.b:1|c')
      // A line whose counters show both lines in and the datagram out (with workers, a report can catch a worker
      // between reading a datagram and sending what it kept; the next one, REPORT_INTERVAL_MS later, cannot).
      const reported = (): Record<string, unknown> | undefined =>
        r.records.slice(mark).find((rec) => {
          if (rec.msg !== 'counters') return false
          const d = since(rec.counters as CounterSnapshot, before)
          return d.linesIn === 2 && d.datagramsOut === 1
        })
      await waitFor(
        () => reported() !== undefined,
        () =>
          `a counters line with 2 more lines in and 1 more datagram out than ${JSON.stringify(before)}: ${JSON.stringify(
            r.records
              .slice(mark)
              .filter((rec) => rec.msg === 'counters')
              .slice(-3),
          )}`,
      )
      const rec = present(reported(), 'the counters line')
      t.equal(rec.level, 30)
      t.same(since(rec.counters as CounterSnapshot, before), {
        ...NO_COUNTS,
        datagramsIn: 1,
        bytesIn: 19,
        linesIn: 2,
        linesForwarded: 1,
        linesBlocked: 1,
        datagramsOut: 1,
        bytesOut: 5,
      })
      await waitFor(
        () => r.sink.bytes() === 5,
        () => `the kept line at the sink: ${JSON.stringify(r.sink.lines())}`,
      )
      t.same(r.sink.lines(), ['a:1|c'])
    })

    // The last two subtests take the shared rig's sink away and then the proxy itself.
    await t.test(
      'forward target down: the proxy keeps running, counts send errors, and resumes by itself',
      async (t) => {
        const { before, mark } = await freshRig(r)
        const port = r.sink.port
        await r.sink.close()

        // Nothing listens: the kernel answers with ICMP port unreachable, reported to the connected socket.
        let sent = 0
        const deadline = Date.now() + 10_000
        while (since(await r.proxy.counters(), before).sendErrors === 0) {
          if (Date.now() > deadline) throw new Error(`no send error after ${sent} datagrams`)
          await r.client.send(`down.${sent}:1|c\nblocked.${sent}:1|c`)
          sent++
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
        let c = since(
          await waitForCounters(r.proxy, (s) => since(s, before).linesIn === sent * 2, `linesIn ${sent * 2} more`),
          before,
        )
        t.ok(c.sendErrors > 0, `sendErrors ${c.sendErrors}`)
        t.equal(c.datagramsIn, sent)
        t.equal(c.linesForwarded, sent, 'lines are handed on even while the target is down')
        t.equal(c.linesBlocked, sent)
        t.equal(c.linesMalformed, 0)
        t.equal(c.linesDroppedBackpressure, 0)
        assertInvariant(t, c)
        // One process only: a worker logs the failure in its own process (to its stdout), not to this logger.
        if (topology.workers === 1) {
          const failures = r.records.slice(mark).filter((rec) => rec.msg === 'send to forward target failed')
          t.ok(failures.length >= 1, 'the send failure is logged')
          t.match(failures[0], { level: 40, err: { code: 'ECONNREFUSED' } })
        }

        // The target comes up on the same port: forwarding resumes without any action, for every reader.
        const sink = (r.sink = await sinkFor(r.owner, port))
        let up = 0
        while (sink.bySender().size < topology.workers) {
          if (Date.now() > deadline + 10_000)
            throw new Error(`forwarding did not resume for every reader after ${up} datagrams: ${sink.bySender().size}`)
          await r.client.send(`up.${up}:1|c`)
          up++
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
        const finals = Array.from({ length: 5 }, (_, i) => `final.${i}:1|c`)
        for (const line of finals) await r.client.send(line)
        await waitFor(
          () => finals.every((line) => sink.lines().includes(line)),
          () => `the final lines at the sink: ${JSON.stringify(sink.lines())}`,
        )
        const order = [...Array.from({ length: up }, (_, i) => `up.${i}:1|c`), ...finals]
        const received = sink.lines()
        t.same([...received].sort(), [...new Set(received)].sort(), 'no line arrives twice')
        const senders = [...sink.bySender().values()].map(linesOf)
        t.ok(senders.length <= topology.workers, `${senders.length} sending socket(s)`)
        for (const lines of senders)
          t.same(
            lines,
            order.filter((l) => lines.includes(l)),
            "each reader's lines arrive in the order sent",
          )
        // Once a reader's send got through, every later line it reads gets through: from the line by which every
        // reader had got through (with one process: the first line that got through), every line arrives.
        const from = Math.max(...senders.map((lines) => order.indexOf(lines[0])))
        t.same(
          received.filter((l) => order.indexOf(l) >= from).sort(),
          order.slice(from).sort(),
          `from ${order[from]} on, every line arrives`,
        )
        const total = sent * 2 + up + finals.length
        c = since(
          await waitForCounters(r.proxy, (s) => since(s, before).linesIn === total, `linesIn ${total} more`),
          before,
        )
        t.equal(c.linesForwarded, sent + up + finals.length)
        assertInvariant(t, c)
        // Every forwarded line has left (the bytes out are the lines plus one \n between lines of a datagram), so
        // no late datagram of the slower reader reaches the next subtest.
        const forwarded = [...Array.from({ length: sent }, (_, i) => `down.${i}:1|c`), ...order]
        await waitForCounters(
          r.proxy,
          (s) => since(s, before).bytesOut + since(s, before).datagramsOut === byteLength(forwarded) + forwarded.length,
          'every forwarded line sent on',
        )
      },
    )

    await t.test('close() sends what is buffered and waits for it to leave', async (t) => {
      const { before, mark } = await freshRig(r)
      const { proxy, sink, client } = r
      const listenPort = proxy.listen.port
      const lines = ['last.1:1|c', 'blocked.x:1|c', 'last.2:2|g', 'last.3:3|ms']
      const kept = ['last.1:1|c', 'last.2:2|g', 'last.3:3|ms']

      await client.burst(['last.1:1|c\nblocked.x:1|c', 'last.2:2|g', 'last.3:3|ms'])
      if (topology.workers === 1) {
        // One process only: this process can check on every loop turn, ahead of the assembler's end-of-turn flush
        // (immediates run in order), so close() is called in the very turn the lines were received, while they
        // are still in the assembler's buffer. A worker's loop turns cannot be seen from here.
        const deadline = Date.now() + 10_000
        let c = since(await proxy.counters(), before)
        while (c.linesIn < lines.length) {
          if (Date.now() > deadline) throw new Error(`linesIn ${c.linesIn}/${lines.length}`)
          await new Promise((resolve) => setImmediate(resolve))
          c = since(await proxy.counters(), before)
        }
        t.equal(c.linesForwarded, 3)
        t.equal(c.datagramsOut, 0, 'nothing has left yet when close() is called')
      } else {
        await waitForCounters(proxy, (c) => since(c, before).linesIn === lines.length, `linesIn ${lines.length} more`)
      }
      const closing = proxy.close()
      t.equal(proxy.close(), closing, 'close() is idempotent')
      await closing

      let final = await proxy.counters()
      await waitFor(
        async () => sink.bytes() === since((final = await proxy.counters()), before).bytesOut,
        () => `sink bytes ${sink.bytes()}/${since(final, before).bytesOut}`,
      )
      assertLines(t, sink, kept, topology, 'the buffered lines')
      if (topology.workers === 1) t.equal(sink.datagrams.length, 1, 'all three were still buffered: they left together')
      const d = since(final, before)
      t.same(d, {
        ...NO_COUNTS,
        datagramsIn: 3,
        bytesIn: 24 + 10 + 11,
        linesIn: 4,
        linesForwarded: 3,
        linesBlocked: 1,
        datagramsOut: sink.datagrams.length,
        bytesOut: byteLength(kept) + kept.length - sink.datagrams.length,
      })
      t.equal(d.bytesOut, sink.bytes())
      assertInvariant(t, final)
      const stopped = r.records.filter((rec) => rec.msg === 'statsd-filter-proxy stopped')
      t.equal(stopped.length, 1)
      t.same(stopped[0].counters, final, 'the final log line carries the final counters')
      const workers = stopped[0].workers as { configured: number; running: number; linesIn: number[] }
      t.match(workers, { configured: topology.workers, running: 0 }, 'and the readers')
      t.equal(workers.linesIn.length, topology.workers)
      t.equal(
        workers.linesIn.reduce((n, l) => n + l, 0),
        final.linesIn,
        'their lines add up',
      )
      t.notOk(r.records.slice(mark).some((rec) => rec.msg === 'sends still in flight at shutdown were abandoned'))
      t.notOk(r.records.slice(mark).some((rec) => rec.msg === 'workers did not drain in time: killing them'))
      // The listen port is released.
      const again = await startSink(listenPort)
      await again.close()
    })
  })

  await t.test(
    'start-up warnings: config warnings, duplicate rules, a smaller receive buffer than asked',
    async (t) => {
      const { log, records } = memoryLogger('info')
      const sink = await sinkFor(t)
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
      const proxy = await startProxy(
        {
          ...config,
          ...configKeys(topology),
          blocklist: {
            ...config.blocklist,
            prefixes: config.blocklist.prefixes,
            names: [
              { pattern: 'x', dryRun: false },
              { pattern: 'x', dryRun: false },
            ],
          },
        },
        log,
      )
      t.teardown(() => proxy.close())
      const warnings = records.filter((rec) => rec.level === 40)
      const granted = proxy.listen.recvBufferGranted
      t.ok(granted > 0, `granted ${granted}`)
      // The column depends on the sink's port number, written into the JSON before them.
      t.match(
        warnings.map(({ msg, requested, granted }) => ({ msg, requested, granted })),
        [
          { msg: /^rust\.json:1:\d+: metric_blocklist\[2\]: duplicate of metric_blocklist\[0\]; ignored$/ },
          ...(granted < 8388608
            ? [
                {
                  msg: 'the kernel granted a smaller receive buffer than recvBufferSize; raise net.core.rmem_max to absorb bursts',
                  requested: 8388608,
                  granted,
                },
              ]
            : []),
          ...(proxy.listen.fallback === null
            ? []
            : [{ msg: 'receive.mode batch is not available here: reading the socket in dgram mode' }]),
        ].map((w) => ({ requested: undefined, granted: undefined, ...w })),
      )
      t.equal(warnings.length, (granted < 8388608 ? 2 : 1) + (proxy.listen.fallback === null ? 0 : 1))
      t.match(
        records.find((rec) => rec.msg === 'statsd-filter-proxy started'),
        {
          format: 'rust-json',
          rules: { prefixes: 3, names: 2 },
          workers: topology.workers,
          receive: { mode: proxy.listen.mode },
        },
      )

      // The duplicates changed nothing: both rules still apply.
      const client = await createClient(proxy.listen.port)
      t.teardown(() => client.close())
      await client.send('a.1:1|c\nx:1|c\nb.2:1|c\nkept:1|c')
      await waitFor(
        () => sink.bytes() > 0,
        () => 'the kept line at the sink',
      )
      t.same(sink.lines(), ['kept:1|c'])
      const c = await waitForCounters(proxy, (s) => s.linesIn === 4, 'linesIn 4')
      t.equal(c.linesBlocked, 3)
    },
  )
})
