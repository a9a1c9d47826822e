// Fault injection over real UDP sockets on 127.0.0.1: a dead forward target, a tiny send buffer under a burst,
// floods of malformed input, and SIGTERM while a client sends. Each test accounts for every line sent:
//   lines lost unaccounted = lines sent − (lines the proxy counted as received + lines in datagrams the kernel
//   dropped for the listen socket, from /proc/net/udp)
// and asserts it is 0, with the proxy's own invariant linesIn = forwarded + blocked + malformed + dropped.
// The tests but the tiny send buffer one run for both topologies (one process, and workers: 2).
import t, { type Test } from 'tap'
import type { Config } from '../src/config/config.ts'
import { parseConfig } from '../src/config/load.ts'
import { SEND_POOL_SIZE } from '../src/pipeline.ts'
import { startProxy, type Proxy } from '../src/proxy.ts'
import type { CounterSnapshot } from '../src/telemetry/counters.ts'
import type { Logger } from '../src/telemetry/logger.ts'
import {
  cliUnderSteadyLoad,
  countLines,
  ensureBuilt,
  kernelDrops,
  logLines,
  prng,
  rssMiB,
  sleep,
  softnetDrops,
  startSizedSink,
  type SizedSink,
} from './fixtures/faults.ts'
import { eachTopology, type Topology } from './fixtures/topology.ts'
import {
  assertInvariant,
  createClient,
  freePort,
  LOCALHOST,
  memoryLogger,
  startSink,
  testConfigWith,
  waitFor,
  type Client,
} from './fixtures/udp.ts'

const linuxOnly = { skip: process.platform !== 'linux' && 'needs /proc/net/udp (Linux) for the kernel drop counts' }
const WARN_INTERVAL_MS = 10_000
/** The largest UDP payload over IPv4. */
const MAX_UDP_PAYLOAD = 65507
/** Generous: RSS is that of the whole test process (tap, the sinks, the client and the proxy together) and its workers. */
const RSS_BOUND_MIB = 20

t.comment(`node ${process.version} on ${process.platform}`)
// Worker processes start in a second or so under tap, but far slower on a busy shared machine: the file's bound is wide.
t.setTimeout(600_000)

// The SIGTERM test runs dist/src/cli.js: build it first if it is missing or older than src (as test/cli.test.ts does).
t.before(() => ensureBuilt(t))

/**
 * The proxy on `config`, a client sending to it, and what the kernel dropped from now on: for its listen socket, for
 * `sink`, and system-wide (softnet0: the baseline of softnetDrops(), a diagnostic).
 */
async function proxyWithDrops(
  t: Test,
  config: Config,
  log: Logger,
  sink: SizedSink,
): Promise<{
  proxy: Proxy
  client: Client
  listenDrops: () => Promise<number>
  sinkDrops: () => Promise<number>
  softnet0: number
}> {
  const proxy = await startProxy(config, log)
  t.teardown(() => proxy.close())
  const client = await createClient(proxy.listen.port)
  t.teardown(() => client.close())
  const listenPort = proxy.listen.port
  const listenDrops0 = await kernelDrops(listenPort)
  const sinkDrops0 = await sink.drops()
  return {
    proxy,
    client,
    listenDrops: async () => (await kernelDrops(listenPort)) - listenDrops0,
    sinkDrops: async () => (await sink.drops()) - sinkDrops0,
    softnet0: softnetDrops(),
  }
}

/** The proxy's log records (with workers, the reader threads' records come through the same logger). */
function proxyLogs(): { log: Logger; records: () => Record<string, unknown>[] } {
  const { log, records } = memoryLogger('warn')
  return { log, records: () => records }
}

/** Records grouped by the process that wrote them (`worker` slot; the one process as its own group). */
function byWorker(records: Record<string, unknown>[]): Map<string, Record<string, unknown>[]> {
  const groups = new Map<string, Record<string, unknown>[]>()
  for (const r of records) {
    const key = r.worker === undefined ? 'proxy' : `worker ${String(r.worker)}`
    groups.set(key, [...(groups.get(key) ?? []), r])
  }
  return groups
}

/** A config at log level warn (workers log at the config's level; the one process at the test logger's). */
function warnConfig(forwardPort: number, topology: Topology, keys: Record<string, unknown> = {}): Config {
  return testConfigWith(forwardPort, { ...topology.keys, log: { level: 'warn' }, ...keys })
}

t.test(
  'target down, then back: keeps receiving, counts and rate-limits send errors, resumes by itself',
  linuxOnly,
  async (t) =>
    eachTopology(t, async (t, topology) => {
      const port = await freePort() // nothing listening: every send draws an ICMP port unreachable
      const { log, records } = proxyLogs()
      // Each process's warning gate re-arms every 10 s from its start, which is after this.
      const startedAt = Date.now()
      const proxy = await startProxy(warnConfig(port, topology), log)
      t.teardown(() => proxy.close())
      const client = await createClient(proxy.listen.port)
      t.teardown(() => client.close())
      const listenPort = proxy.listen.port
      const drops0 = await kernelDrops(listenPort)
      let sent = 0
      /** Every line the client sent is counted by the proxy or dropped (and counted) by the kernel. */
      const accounted = async (): Promise<number> =>
        (await proxy.counters()).linesIn + ((await kernelDrops(listenPort)) - drops0)
      const allAccounted = (): Promise<void> =>
        waitFor(
          async () => (await accounted()) >= sent,
          async () => `accounted ${await accounted()}/${sent}`,
        )

      // Down: 20 one-line datagrams every 10 ms, 0.5 s to warm up (code paths compiled, heaps grown), then 2 s measured.
      let tick = 0
      let datagramsInMid = -1
      const steady = async (ms: number, onTick: () => Promise<void> = async () => {}): Promise<void> => {
        const until = Date.now() + ms
        while (Date.now() < until) {
          await client.burst(Array.from({ length: 20 }, (_, i) => `down.${tick}.${i}:1|c`))
          sent += 20
          tick++
          await onTick()
          await sleep(10)
        }
      }
      await steady(500)
      const rssBefore = rssMiB()
      const measuredFrom = Date.now()
      await steady(2000, async () => {
        if (datagramsInMid === -1 && Date.now() > measuredFrom + 1000)
          datagramsInMid = (await proxy.counters()).datagramsIn
      })
      await allAccounted()
      const rssAfter = rssMiB()
      const down = await proxy.counters()
      const downDrops = (await kernelDrops(listenPort)) - drops0

      t.comment(
        `down phase: ${sent} lines sent, datagramsIn ${down.datagramsIn} (${datagramsInMid} half way), kernel drops ${downDrops}`,
      )
      t.comment(
        `down phase: sendErrors ${down.sendErrors}, linesSendFailed ${down.linesSendFailed}, datagramsOut ${down.datagramsOut}, linesForwarded ${down.linesForwarded}`,
      )
      t.comment(
        `RSS over the 2 s measured down phase (after 0.5 s warm-up): ${rssBefore.toFixed(1)} MiB -> ${rssAfter.toFixed(1)} MiB (delta ${(rssAfter - rssBefore).toFixed(1)} MiB, bound +${RSS_BOUND_MIB} MiB for the test process and its workers)`,
      )
      t.ok(
        datagramsInMid > 0 && down.datagramsIn > datagramsInMid,
        'the proxy kept receiving while the target was down (datagramsIn grew)',
      )
      t.ok(down.sendErrors > 0, 'send errors counted')
      t.equal(down.linesForwarded, down.linesIn, 'lines sent to a dead target count as forwarded (no rules)')
      t.ok(down.linesSendFailed <= down.linesForwarded, 'linesSendFailed is a subset of forwarded')
      if (down.linesSendFailed === 0) {
        t.comment(
          'every datagram sent while down was lost, yet linesSendFailed is 0: each send was accepted, and the ICMP port ' +
            'unreachable came back as a socket error event (counted in sendErrors only), read before the next send',
        )
      }
      t.ok(rssAfter - rssBefore < RSS_BOUND_MIB, `RSS stays flat (+${(rssAfter - rssBefore).toFixed(1)} MiB)`)
      // Each process that sends rate-limits its own warning.
      const warnings = byWorker(records().filter((r) => r.msg === 'send to forward target failed'))
      t.ok(warnings.size >= 1 && warnings.size <= topology.workers, `warned by ${[...warnings.keys()].join(', ')}`)
      for (const [who, ws] of warnings) {
        const allowed = 1 + Math.floor((Date.now() - startedAt) / WARN_INTERVAL_MS)
        t.comment(
          `'send to forward target failed' logged ${ws.length} time(s) by ${who} (at most ${allowed} allowed); ${down.sendErrors} errors in all`,
        )
        t.ok(
          ws.length >= 1 && ws.length <= allowed,
          `${who}: rate-limited: ${ws.length} record(s), at most one per 10 s`,
        )
        t.match(ws[0], { level: 40, err: { code: 'ECONNREFUSED' }, suppressed: 0 }, `${who}: the first record`)
      }

      // Back: a sink appears on that port; forwarding resumes without any action.
      const sink = await startSink(port)
      t.teardown(() => sink.close())
      let back = 0
      const resumeBy = Date.now() + 5000
      while (!sink.lines().some((l) => l.startsWith('back.'))) {
        if (Date.now() > resumeBy)
          throw new Error(`forwarding did not resume within 5 s; sink: ${JSON.stringify(sink.lines().slice(0, 5))}`)
        await client.send(`back.${back++}:1|c`)
        sent++
        await sleep(10)
      }
      // Every line sent so far read (with workers, one may have read a back.* line before the sink was bound).
      await allAccounted()
      const errorsAtResume = (await proxy.counters()).sendErrors
      const after = Array.from({ length: 100 }, (_, i) => `after.${i}:1|c`)
      for (let i = 0; i < after.length; i += 20) await client.burst(after.slice(i, i + 20))
      sent += after.length
      await waitFor(
        () => after.every((l) => sink.lines().includes(l)),
        () => `every after.* line at the sink: ${sink.lines().filter((l) => l.startsWith('after.')).length}/100`,
      )
      t.comment(`forwarding resumed after ${back} back.* line(s); then all 100 after.* lines arrived`)
      await allAccounted()
      const c = await proxy.counters()
      t.equal(c.sendErrors, errorsAtResume, 'no send error once the target is back')
      const lost = sent - (await accounted())
      t.comment(
        `lines lost unaccounted: ${lost} (sent ${sent}, linesIn ${c.linesIn}, kernel drops ${(await kernelDrops(listenPort)) - drops0})`,
      )
      t.equal(lost, 0, 'lines lost unaccounted = 0')
      assertInvariant(t, c)
    }),
)

// One process only: the burst is sent in one synchronous block so that the proxy, on this event loop, reads none of it
// until the block ends, and its send queue is sampled live on this event loop (with workers it is only their last report).
t.test(
  'tiny send buffer and a burst: the send queue stays bounded, losses are counted, forwarding resumes',
  linuxOnly,
  async (t) => {
    // A sink that exists but holds one datagram at a time (SO_RCVBUF at its minimum) and shares this event loop.
    const sink = await startSizedSink(4096)
    t.teardown(() => sink.close())
    const config = parseConfig(
      'faults-burst.yaml',
      JSON.stringify({
        listen: { host: LOCALHOST, port: 0 },
        forward: { host: LOCALHOST, port: sink.port },
        sendBufferSize: 4096,
        maxPacketSize: 8192,
        log: { level: 'silent' },
        admin: { enabled: false },
      }),
    )
    const { log } = memoryLogger('warn')
    const { proxy, client, listenDrops, sinkDrops, softnet0 } = await proxyWithDrops(t, config, log, sink)

    // 80 lines of 100 bytes per datagram (8079 bytes): one datagram's worth of output per datagram in.
    const LINES_PER_DATAGRAM = 80
    const payload = Buffer.from(
      Array.from({ length: LINES_PER_DATAGRAM }, (_, i) => {
        const head = `burst.${String(i).padStart(2, '0')}:1|c|#`
        return head + 'x'.repeat(100 - head.length)
      }).join('\n'),
    )
    t.equal(countLines(payload), LINES_PER_DATAGRAM)
    const DATAGRAMS = 3000

    let maxQueue = 0
    let maxQueueBytes = 0
    let samples = 0
    let sampling = true
    let rssPeak = 0
    const sample = (): void => {
      const q = proxy.sendQueue()
      if (q.count > maxQueue) maxQueue = q.count
      if (q.bytes > maxQueueBytes) maxQueueBytes = q.bytes
      const rss = rssMiB()
      if (rss > rssPeak) rssPeak = rss
      samples++
      if (sampling) setImmediate(sample)
    }
    setImmediate(sample)
    t.teardown(() => {
      sampling = false
    })

    let sent = 0
    /** One synchronous block of sends (the proxy, on this event loop, reads nothing until it ends), then until it drained. */
    const burstAndDrain = async (): Promise<void> => {
      await client.burst(Array.from({ length: DATAGRAMS }, () => payload))
      sent += DATAGRAMS * LINES_PER_DATAGRAM
      let c = await proxy.counters()
      await waitFor(
        async () =>
          (c = await proxy.counters()).linesIn + (await listenDrops()) * LINES_PER_DATAGRAM >= sent &&
          sink.datagrams.length + (await sinkDrops()) >= c.datagramsOut,
        async () =>
          `linesIn ${c.linesIn} + dropped ${(await listenDrops()) * LINES_PER_DATAGRAM} of ${sent}; sink ${sink.datagrams.length} + drops ${await sinkDrops()} of ${c.datagramsOut}`,
      )
    }
    // Twice: the first burst warms up (and grows the heaps); memory is measured across the second.
    await burstAndDrain()
    const rssBefore = rssMiB()
    rssPeak = rssBefore
    await burstAndDrain()
    sampling = false
    const rssAfter = rssMiB()
    const burstListenDrops = await listenDrops()
    const burstSinkDrops = await sinkDrops()
    const burst = await proxy.counters()

    // Forwarding resumes by itself: a later line reaches the sink.
    await client.send('after.burst:1|c')
    sent++
    await waitFor(
      () => sink.lines().includes('after.burst:1|c'),
      () => 'after.burst at the sink',
    )
    t.equal(await listenDrops(), burstListenDrops, 'the later line was not dropped by the kernel')
    const c = await proxy.counters()

    const lost = sent - (c.linesIn + burstListenDrops * LINES_PER_DATAGRAM)
    const lostDownstream = c.datagramsOut - (sink.datagrams.length + (await sinkDrops()))
    t.comment(
      `2 bursts of ${DATAGRAMS} datagrams x ${LINES_PER_DATAGRAM} lines (${((DATAGRAMS * payload.length) / 1048576).toFixed(1)} MiB), each in one synchronous block`,
    )
    t.comment(
      `both bursts: listen socket: datagramsIn ${burst.datagramsIn}, kernel drops ${burstListenDrops} (${burstListenDrops * LINES_PER_DATAGRAM} lines)`,
    )
    t.comment(
      `proxy: linesIn ${burst.linesIn}, forwarded ${burst.linesForwarded}, droppedBackpressure ${burst.linesDroppedBackpressure}, datagramsOut ${burst.datagramsOut}, sendErrors ${burst.sendErrors}`,
    )
    t.comment(
      `send queue (libuv, ${samples} samples): max ${maxQueue} datagrams / ${maxQueueBytes} bytes; pool ${SEND_POOL_SIZE}`,
    )
    t.comment(
      `sink (SO_RCVBUF granted ${sink.recvBufferGranted}): received ${sink.datagrams.length - 1} + 1 later, kernel drops ${burstSinkDrops}`,
    )
    t.comment(
      `RSS across the second burst: ${rssBefore.toFixed(1)} MiB -> peak ${rssPeak.toFixed(1)} -> ${rssAfter.toFixed(1)} MiB after (delta ${(rssAfter - rssBefore).toFixed(1)} MiB, bound +${RSS_BOUND_MIB} MiB)`,
    )
    if (maxQueue === 0 && burst.linesDroppedBackpressure === 0) {
      t.comment(
        'on this kernel a loopback UDP send never waits for send-buffer space (the skb is released from the sender as it is ' +
          'delivered), so libuv never queues and the pool never runs dry: the loss happens at the receiver, counted as its kernel drops',
      )
    }
    t.ok(maxQueue <= SEND_POOL_SIZE + 2, `send queue bounded by the pool: max ${maxQueue} <= ${SEND_POOL_SIZE} + 2`)
    t.ok(
      burstSinkDrops > 0 || maxQueue > 0 || burst.linesDroppedBackpressure > 0,
      'the constraint was hit somewhere (queued sends, backpressure drops, or drops at the tiny receiver)',
    )
    t.equal(burst.sendErrors, 0, 'no send failed')
    t.equal(
      lostDownstream,
      0,
      `datagrams lost unaccounted downstream: ${lostDownstream} (datagramsOut = sink received + sink kernel drops)`,
    )
    t.ok(
      rssPeak - rssBefore < RSS_BOUND_MIB,
      `memory bounded: RSS peak +${(rssPeak - rssBefore).toFixed(1)} MiB during the burst`,
    )
    t.comment(
      `lines lost unaccounted: ${lost} (sent ${sent}, linesIn ${c.linesIn}, listen-socket kernel drops ${burstListenDrops} x ${LINES_PER_DATAGRAM}; system-wide backlog drops meanwhile: ${softnetDrops() - softnet0})`,
    )
    t.equal(lost, 0, 'lines lost unaccounted = 0')
    assertInvariant(t, c)
  },
)

/** The flood: every kind of garbage, with valid lines mixed in; `valid` lists lines that must reach the sink. */
function malformedFlood(seed: number): { datagrams: Buffer[]; valid: string[] } {
  const rand = prng(seed)
  const pick = (n: number): number => Math.floor(rand() * n)
  const datagrams: Buffer[] = []
  const valid: string[] = []
  // Random bytes: half uniform, half from an alphabet rich in the characters the scanner cares about.
  const alphabet = Buffer.from('abc.:|#,@ _e{}sc\n\r\0\xff\xc3', 'latin1')
  for (let i = 0; i < 300; i++) {
    const b = Buffer.alloc(1 + pick(3000))
    const biased = rand() < 0.5
    for (let j = 0; j < b.length; j++) b[j] = biased ? alphabet[pick(alphabet.length)] : pick(256)
    datagrams.push(b)
  }
  // 64 KiB datagrams: the largest UDP payload.
  datagrams.push(Buffer.alloc(MAX_UDP_PAYLOAD, 'x')) // one malformed line
  const big = Buffer.alloc(MAX_UDP_PAYLOAD, 't')
  big.write('big.valid:1|c|#')
  datagrams.push(big) // one valid line, longer than a datagram: forwarded alone
  valid.push(big.toString('latin1'))
  const noise = Buffer.alloc(MAX_UDP_PAYLOAD)
  for (let j = 0; j < noise.length; j++) noise[j] = pick(256)
  datagrams.push(noise)
  datagrams.push(Buffer.alloc(MAX_UDP_PAYLOAD, 'a\n')) // 32,754 one-byte malformed lines
  datagrams.push(Buffer.alloc(MAX_UDP_PAYLOAD, '\n')) // no line at all
  // Lines of 10,000 characters.
  const longBad = 'y'.repeat(10_000)
  const longGood = `long.valid:1|c|#${'k'.repeat(10_000 - 16)}`
  datagrams.push(
    Buffer.from(longBad),
    Buffer.from(longGood),
    Buffer.from([longBad, longGood, longBad, longGood, longBad, longGood].join('\n')),
  )
  valid.push(longGood, longGood, longGood, longGood)
  // NUL bytes.
  datagrams.push(
    Buffer.alloc(1000, 0),
    Buffer.from('\0\n\0\r\n\0'),
    Buffer.from('nul\0name:1|c\n:\0|c\n\0:1|c\n\0\0\0'),
  )
  // Invalid UTF-8: stray continuation, 0xff/0xfe, overlong, surrogate, above U+10FFFF; some as metric names.
  datagrams.push(
    Buffer.from([
      0xc3, 0x28, 0x0a, 0xff, 0xfe, 0xfd, 0x0a, 0xc0, 0xaf, 0x3a, 0x31, 0x7c, 0x63, 0x0a, 0xed, 0xa0, 0x80, 0x3a, 0x31,
      0x7c, 0x63, 0x0a, 0xf4, 0x90, 0x80, 0x80,
    ]),
    Buffer.from([0x80, 0x80, 0x80, 0x0d, 0x0a, 0xf8, 0x88, 0x80, 0x80, 0x80]),
  )
  // Thousands of empty lines.
  datagrams.push(
    Buffer.alloc(10_000, '\n'),
    Buffer.from('\r\n'.repeat(5000)),
    Buffer.concat([Buffer.alloc(10_000, '\n'), Buffer.from('after.empties:1|c')]),
    Buffer.from('\r'.repeat(100)), // one line of 99 CRs once the trailing one is stripped
    Buffer.from('\n\r\n\n\r\r\n'), // one line: a lone CR
  )
  valid.push('after.empties:1|c')
  // A mix of valid and malformed lines in each datagram.
  for (let i = 0; i < 200; i++) {
    const lines = [
      `mix.${i}.0:1|c`,
      'no colon here',
      `mix.${i}.1:2|g|#k:v`,
      ':1|c',
      '|mix:1',
      '',
      `mix.${i}.2:3|ms\r`,
      'name:1',
      '\0\0',
      '\xff\xfe',
    ]
    valid.push(`mix.${i}.0:1|c`, `mix.${i}.1:2|g|#k:v`, `mix.${i}.2:3|ms`)
    datagrams.push(Buffer.from(lines.join('\n'), 'latin1'))
  }
  // Shuffled, reproducibly.
  for (let i = datagrams.length - 1; i > 0; i--) {
    const j = pick(i + 1)
    ;[datagrams[i], datagrams[j]] = [datagrams[j], datagrams[i]]
  }
  return { datagrams, valid }
}

t.test(
  'floods of malformed input: no crash, no stall, every line accounted for, the warning rate-limited',
  linuxOnly,
  async (t) =>
    eachTopology(t, async (t, topology) => {
      const sink = await startSizedSink(4 * 1024 * 1024)
      t.teardown(() => sink.close())
      const { log, records } = proxyLogs()
      // Each process's warning gate re-arms every 10 s from its start, which is after this.
      const startedAt = Date.now()
      const { proxy, client, listenDrops, sinkDrops, softnet0 } = await proxyWithDrops(
        t,
        warnConfig(sink.port, topology),
        log,
        sink,
      )

      let sentDatagrams = 0
      let sentLines = 0
      const send = async (d: Buffer): Promise<void> => {
        await client.send(d)
        sentDatagrams++
        sentLines += countLines(d)
      }
      /** Until the proxy has read (or the kernel dropped) every datagram sent and the sink has every one sent on. */
      const caughtUp = async (): Promise<void> => {
        let c = await proxy.counters()
        await waitFor(
          async () =>
            (c = await proxy.counters()).datagramsIn + (await listenDrops()) >= sentDatagrams &&
            sink.datagrams.length + (await sinkDrops()) >= c.datagramsOut,
          async () =>
            `datagramsIn ${c.datagramsIn} + drops ${await listenDrops()} of ${sentDatagrams}; sink ${sink.datagrams.length} + drops ${await sinkDrops()} of ${c.datagramsOut}`,
        )
      }

      const { datagrams, valid } = malformedFlood(0x5eed)
      const floodBytes = datagrams.reduce((n, d) => n + d.length, 0)
      // Paced: at most 256 KiB in flight before waiting for the proxy, far below its receive buffer, so the kernel drops nothing.
      const floodStart = Date.now()
      let window = 0
      for (const d of datagrams) {
        if (window + d.length > 256 * 1024) {
          await caughtUp()
          window = 0
        }
        await send(d)
        window += d.length
      }
      await caughtUp()
      const floodMs = Date.now() - floodStart

      // Not stalled: a normal line goes through promptly.
      const probeAt = Date.now()
      await send(Buffer.from('after.flood:1|c'))
      await waitFor(
        () => sink.lines().includes('after.flood:1|c'),
        () => 'after.flood at the sink within 2 s',
        2000,
      )
      const probeMs = Date.now() - probeAt

      const flood = await proxy.counters()
      t.comment(
        `flood: ${datagrams.length} datagrams, ${(floodBytes / 1048576).toFixed(2)} MiB, ${sentLines - 1} non-empty lines by the test's own count, sent in ${floodMs} ms`,
      )
      t.comment(
        `proxy: linesIn ${flood.linesIn}, forwarded ${flood.linesForwarded} (oversize ${flood.linesOversize}), malformed ${flood.linesMalformed}, blocked ${flood.linesBlocked}, dropped ${flood.linesDroppedBackpressure}`,
      )
      t.comment(`a normal line after the flood reached the sink in ${probeMs} ms`)
      const sinkLines = sink.lines()
      const missing = valid.filter((l) => !sinkLines.includes(l))
      t.same(
        missing.map((l) => l.slice(0, 40)),
        [],
        `every valid line mixed into the flood reached the sink (${valid.length})`,
      )
      t.equal(sinkLines.filter((l) => l.startsWith('mix.')).length, 600, 'each mix.* line exactly once')
      t.ok(flood.linesMalformed > 32_754, 'the malformed lines were counted as malformed')

      // The malformed warning, rate-limited by each process that reads the socket: one record so far from each that
      // read a malformed line; after its 10 s window, its next one reports how many it held back.
      const warned = (): Map<string, Record<string, unknown>[]> =>
        byWorker(records().filter((r) => r.msg === 'malformed line dropped'))
      const floodWarnings = warned()
      t.ok(
        floodWarnings.size >= 1 && floodWarnings.size <= topology.workers,
        `warned by ${[...floodWarnings.keys()].join(', ')}`,
      )
      for (const [who, ws] of floodWarnings) {
        t.comment(
          `'malformed line dropped' records from ${who} after the flood: ${ws.length} (${flood.linesMalformed} malformed lines in all)`,
        )
        const since = Date.now() - startedAt
        t.ok(
          ws.length >= 1 && ws.length <= 1 + Math.floor(since / WARN_INTERVAL_MS),
          `${who}: at most one warning per 10 s for the whole flood (${since} ms since the start)`,
        )
      }
      let late = 0
      // A gate re-arms at most 10 s after any record (workers may take a while to start on a busy machine).
      const firstAt = Math.min(...[...floodWarnings.values()].map((ws) => Number(ws[0].time)))
      const lateBy = Math.max(firstAt + WARN_INTERVAL_MS, Date.now()) + 5000
      while (![...warned().values()].some((ws) => ws.length >= 2)) {
        if (Date.now() > lateBy)
          throw new Error(`no second malformed warning 5 s after the window closed: ${JSON.stringify([...warned()])}`)
        await send(Buffer.from(`late malformed ${late++}`))
        await sleep(50)
      }
      await caughtUp()
      for (const [who, ws] of warned()) {
        t.comment(
          `'malformed line dropped' records from ${who}: ${ws.map((w) => `{linesMalformed ${String(w.linesMalformed)}, suppressed ${String(w.suppressed)}}`).join(', ')}`,
        )
        const since = Date.now() - startedAt
        t.ok(
          ws.length <= 1 + Math.floor(since / WARN_INTERVAL_MS),
          `${who}: at most one record per 10 s window (${ws.length} in the ${since} ms since the start)`,
        )
        t.equal(ws[0].suppressed, 0, `${who}: the first record has nothing suppressed`)
        for (let i = 1; i < ws.length; i++) {
          t.equal(
            ws[i].suppressed,
            (ws[i].linesMalformed as number) - (ws[i - 1].linesMalformed as number) - 1,
            `${who}: record ${i + 1}: suppressed = every malformed line since the previous record but this one`,
          )
        }
        // At most 80 bytes of the line, each shown as at most 4 printable characters (\xNN), then the count of
        // the rest: a bound on the length whatever the random bytes were.
        const sample = ws[0].sample
        t.ok(
          typeof sample === 'string' &&
            sample.length <= 80 * 4 + '...(+65535 bytes)'.length &&
            /^[\x20-\x7e]*$/.test(sample),
          `${who}: the sample is short and escaped`,
        )
      }

      const drops = await listenDrops()
      t.equal(drops, 0, 'the paced flood made the kernel drop nothing on the listen socket')
      t.equal(await sinkDrops(), 0, 'nor on the sink')
      const c = await proxy.counters()
      const lost = sentLines - (c.linesIn + drops)
      t.comment(
        `lines lost unaccounted: ${lost} (sent ${sentLines} non-empty lines in ${sentDatagrams} datagrams, linesIn ${c.linesIn}, kernel drops ${drops}; system-wide backlog drops meanwhile: ${softnetDrops() - softnet0})`,
      )
      t.equal(c.linesIn, sentLines - drops, 'linesIn = non-empty lines sent (independent count) - kernel drops')
      t.equal(lost, 0, 'lines lost unaccounted = 0')
      t.equal(c.datagramsIn, sentDatagrams)
      t.equal(c.bytesOut, sink.bytes(), 'every byte sent on arrived')
      assertInvariant(t, c)
    }),
)

t.test(
  'SIGTERM while a client sends: exit 0, every line received before the stop was forwarded',
  linuxOnly,
  async (t) =>
    eachTopology(t, async (t, topology) => {
      // One numbered line every 2 ms until the process has exited.
      const { run, sink, sentOk, refused, sender } = await cliUnderSteadyLoad(
        t,
        (sinkPort) =>
          `listen: { host: 127.0.0.1, port: 0 }\nadmin: { port: 0 }\nforward: { host: 127.0.0.1, port: ${sinkPort} }\nworkers: ${topology.workers}\nreceive: { mode: ${topology.receive} }\n`,
        60_000,
      )

      await waitFor(
        () => sink.datagrams.length >= 50 && sentOk.length >= 100,
        () => `sink ${sink.datagrams.length}, sent ${sentOk.length}`,
      )
      const dropsBeforeSignal = await kernelDrops(run.port)
      const sentAtSignal = sentOk.length
      t.ok(run.child.kill('SIGTERM'), 'SIGTERM sent')
      const r = await run.done
      await sender
      const sentAfterSignal = sentOk.length - sentAtSignal

      t.equal(r.code, 0, 'exit code 0')
      t.equal(r.signal, null)
      t.equal(r.stderr, '')
      const logs = logLines(r.stdout)
      t.ok(
        logs.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'),
        'logged the signal',
      )
      t.notOk(
        logs.some((l) => l.msg === 'sends still in flight at shutdown were abandoned'),
        'no send abandoned',
      )
      t.notOk(
        logs.some((l) => l.msg === 'workers did not drain in time: killing them'),
        'no worker killed',
      )
      const last = logs[logs.length - 1]
      t.equal(
        last.msg,
        'statsd-filter-proxy stopped',
        'the last line (with workers, from the primary once every worker exited)',
      )
      const counters = last.counters as CounterSnapshot
      const { linesIn, linesForwarded, linesBlocked, linesMalformed, linesDroppedBackpressure } = counters
      t.equal(
        linesIn,
        linesForwarded + linesBlocked + linesMalformed + linesDroppedBackpressure,
        'final counters: linesIn = forwarded + blocked + malformed + dropped',
      )
      t.equal(linesForwarded, linesIn, 'no rules, no malformed lines: every line received was forwarded')
      t.match(last.workers, { configured: topology.workers, running: 0 }, 'the stopped line reports the readers')
      t.equal(
        (last.workers as { linesIn: number[] }).linesIn.reduce((n, l) => n + l, 0),
        linesIn,
        "the readers' lines add up to linesIn",
      )

      await waitFor(
        () => sink.lines().length >= linesForwarded,
        () => `sink lines ${sink.lines().length}/${linesForwarded}`,
        5000,
      )
      const sinkSeqs = sink.lines().map((l) => Number(/^seq:(\d+)\|c$/.exec(l)?.[1] ?? NaN))
      const sinkDrops = await sink.drops()
      const stoppedAt = Number(last.time)
      const shutdownAt = Number(logs.find((l) => l.msg === 'shutting down')?.time)
      // Every line the proxy counted arrived: the first linesIn lines sent, none missing, none extra. One kernel
      // queue, however many read it: what was read is a prefix of what was sent (each datagram is one line).
      const expected = sentOk.slice(0, linesIn)
      const sorted = [...sinkSeqs].sort((a, b) => a - b)
      const unaccounted = linesIn - sorted.filter((n, i) => n === expected[i]).length
      t.comment(
        `sent ${sentOk.length} lines (${sentAtSignal} before SIGTERM, ${sentAfterSignal} after; ${refused()} refused once the listen socket closed)`,
      )
      t.comment(
        `final counters: linesIn ${linesIn}, forwarded ${linesForwarded}, datagramsOut ${counters.datagramsOut}; shutdown took ${stoppedAt - shutdownAt} ms`,
      )
      t.comment(
        `sink: ${sinkSeqs.length} lines in ${sink.datagrams.length} datagrams, kernel drops ${sinkDrops}; listen-socket kernel drops before the signal ${dropsBeforeSignal}`,
      )
      t.comment(
        `lines sent but never read by the proxy (queued at close or sent after it; by design): ${sentOk.length - linesIn}`,
      )
      t.comment(`lines lost unaccounted (of those the proxy received): ${unaccounted}`)
      t.equal(dropsBeforeSignal, 0, 'the kernel dropped nothing on the listen socket before the signal')
      t.equal(sinkDrops, 0, 'nor on the sink')
      t.ok(sentAfterSignal > 0, 'the client was still sending after the signal')
      t.equal(sinkSeqs.length, linesForwarded, 'the sink received exactly linesForwarded lines')
      t.same(sorted, expected, 'the sink holds exactly the first linesIn lines sent, contiguous from 0, once each')
      t.same(
        expected,
        Array.from({ length: linesIn }, (_, i) => i),
        'which are seq 0..linesIn-1',
      )
      // Order holds only with one reader: two workers forward the datagrams each read independently.
      if (topology.workers === 1) t.same(sinkSeqs, expected, 'in the order sent')
      t.equal(counters.datagramsOut, sink.datagrams.length)
      t.equal(counters.bytesOut, sink.bytes())
      t.equal(unaccounted, 0, 'lines lost unaccounted = 0')
    }),
)
