import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { KernelDrops, readUdpSocketStats, type UdpSocketStats } from '../src/telemetry/kernel-drops.ts'

/**
 * UDP sockets that are bound and never read: a child Node process binds 127.0.0.1:port (and ::1 on the same
 * port where it can), prints what it bound, then blocks its only thread forever (Atomics.wait) without
 * returning to its event loop, so whatever arrives stays in the kernel's receive queue until it is killed.
 */
const UNREAD_RECEIVER = `
const dgram = require('node:dgram')
const block = () => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)
const v4 = dgram.createSocket({ type: 'udp4', recvBufferSize: Number(process.argv[1]) })
v4.bind(0, '127.0.0.1', () => {
  const port = v4.address().port
  const v6 = dgram.createSocket({ type: 'udp6', ipv6Only: true, recvBufferSize: Number(process.argv[1]) })
  v6.once('error', () => {
    process.stdout.write(JSON.stringify({ port, v6: false }) + '\\n') // a pipe: written before this returns
    block()
  })
  v6.bind(port, '::1', () => {
    process.stdout.write(JSON.stringify({ port, v6: true }) + '\\n')
    block()
  })
})
`

interface UnreadReceiver {
  port: number
  /** Whether ::1 on the same port is bound too. */
  v6: boolean
}

async function unreadReceiver(t: Test, recvBufferSize: number): Promise<UnreadReceiver> {
  // Without tap's loaders and coverage: a plain script, started fast.
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  delete env.NODE_V8_COVERAGE
  const child = spawn(process.execPath, ['-e', UNREAD_RECEIVER, String(recvBufferSize)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
  })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  const lines = createInterface({ input: child.stdout })
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve)
    child.once('exit', (code, signal) => reject(new Error(`the receiver exited (${code ?? signal}) before binding`)))
  })
  lines.close()
  return JSON.parse(first) as UnreadReceiver
}

/** Sends `count` datagrams of `payload` to host:port, resolving once the kernel has taken each. */
async function sendMany(
  t: Test,
  type: 'udp4' | 'udp6',
  host: string,
  port: number,
  payload: Buffer,
  count: number,
): Promise<void> {
  const sender = dgram.createSocket(type)
  t.teardown(() => sender.close())
  await new Promise<void>((resolve) => sender.connect(port, host, () => resolve()))
  await Promise.all(
    Array.from(
      { length: count },
      () => new Promise<void>((resolve, reject) => sender.send(payload, (err) => (err ? reject(err) : resolve()))),
    ),
  )
}

/** Reads until `cond` holds (the loopback delivers within the send, but the bound keeps a bad kernel from hanging). */
async function statsWhen(port: number, cond: (s: UdpSocketStats) => boolean): Promise<UdpSocketStats> {
  const deadline = Date.now() + 5_000
  for (;;) {
    const stats = await readUdpSocketStats(port)
    if (stats === null) throw new Error('no /proc/net/udp')
    if (cond(stats) || Date.now() > deadline) return stats
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

t.test(
  'reads the receive queue and the drops of the sockets bound to a port from /proc/net/udp',
  { skip: process.platform !== 'linux' && 'Linux only' },
  async (t) => {
    const gone = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => gone.bind(0, '127.0.0.1', () => resolve()))
    const freed = gone.address().port
    await new Promise<void>((resolve) => gone.close(() => resolve()))
    t.same(await readUdpSocketStats(freed), { drops: 0, rxQueue: 0, sockets: 0 }, 'no socket on a port just freed')

    t.test('rx_queue: the bytes waiting in a socket nobody reads (not tx_queue, which is 0 for it)', async (t) => {
      const receiver = await unreadReceiver(t, 1 << 20) // room for everything sent: no drops
      const sockets = receiver.v6 ? 2 : 1
      t.same(await readUdpSocketStats(receiver.port), { drops: 0, rxQueue: 0, sockets }, 'bound, nothing queued yet')
      const payload = Buffer.alloc(500, 0x61)
      await sendMany(t, 'udp4', '127.0.0.1', receiver.port, payload, 10)
      if (receiver.v6) await sendMany(t, 'udp6', '::1', receiver.port, payload, 10)
      const datagrams = 10 * sockets
      // The kernel counts each queued datagram's buffer (its truesize), which is at least its payload.
      const stats = await statsWhen(receiver.port, (s) => s.rxQueue >= datagrams * payload.length)
      t.equal(
        stats.sockets,
        sockets,
        receiver.v6 ? '127.0.0.1 in /proc/net/udp and ::1 in /proc/net/udp6' : '127.0.0.1',
      )
      t.equal(stats.drops, 0)
      t.ok(
        stats.rxQueue >= datagrams * payload.length,
        `rx_queue ${stats.rxQueue} >= the ${datagrams * payload.length} payload bytes queued`,
      )
      t.ok(
        stats.rxQueue < datagrams * (payload.length + 4096),
        `rx_queue ${stats.rxQueue}: the queued datagrams and their overhead, no more`,
      )
    })

    t.test('drops: datagrams the kernel refused because the receive queue was full', async (t) => {
      const receiver = await unreadReceiver(t, 4096) // the kernel doubles it: 8 KiB, a few datagrams
      const payload = Buffer.alloc(1000, 0x62)
      await sendMany(t, 'udp4', '127.0.0.1', receiver.port, payload, 200)
      const stats = await statsWhen(receiver.port, (s) => s.drops > 0)
      t.ok(stats.drops > 0 && stats.drops < 200, `the kernel counted ${stats.drops} drops of 200`)
      const queued = 200 - stats.drops
      t.ok(
        stats.rxQueue >= queued * payload.length,
        `rx_queue ${stats.rxQueue} holds the ${queued} datagrams not dropped`,
      )
    })
  },
)

t.test(
  'KernelDrops reports a rise after its baseline',
  { skip: process.platform !== 'linux' && 'Linux only' },
  async (t) => {
    const receiver = await unreadReceiver(t, 4096)
    const port = receiver.port
    const sockets = receiver.v6 ? 2 : 1
    const rises: { rise: number; stats: UdpSocketStats }[] = []
    const monitor = new KernelDrops({ port, intervalMs: 60_000, onRise: (rise, stats) => rises.push({ rise, stats }) })
    t.teardown(() => monitor.close())
    t.same(await monitor.read(), { drops: 0, rxQueue: 0, sockets }, 'the baseline')
    t.same(rises, [], 'the baseline is no rise')
    const payload = Buffer.alloc(1000, 0x62)
    await sendMany(t, 'udp4', '127.0.0.1', port, payload, 200)
    const first = await statsWhen(port, (s) => s.drops > 0)
    const after = await monitor.read()
    t.ok((after?.drops ?? 0) >= first.drops && first.drops > 0)
    t.same(rises, [{ rise: after?.drops, stats: after }], 'one rise, by the number dropped, with the reading')
    t.same(monitor.latest, after)
    t.same(await monitor.read(), after, 'nothing new arrived')
    t.equal(rises.length, 1, 'no rise without new drops')
    await sendMany(t, 'udp4', '127.0.0.1', port, payload, 50)
    await statsWhen(port, (s) => s.drops >= (after?.drops ?? 0) + 50)
    const again = await monitor.read()
    t.equal(again?.drops, (after?.drops ?? 0) + 50, 'the queue is still full: every one of the 50 dropped')
    t.same(
      rises.map((r) => r.rise),
      [after?.drops, 50],
      'a second rise, by the new drops only',
    )
  },
)

// One process only: the drops are forced by the proxy sharing this event loop (workers read the socket on their own).
t.test(
  'the proxy counts kernel drops of its listen socket, warns, and exposes them',
  { skip: process.platform !== 'linux' && 'Linux only' },
  async (t) => {
    const { parseConfig } = await import('../src/config/load.ts')
    const { startProxy } = await import('../src/proxy.ts')
    const { memoryLogger, startSink, waitFor } = await import('./fixtures/udp.ts')
    const sink = await startSink()
    t.teardown(() => sink.close())
    const { log, records } = memoryLogger('info')
    const config = parseConfig(
      'drops.yaml',
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 0 },
        forward: { host: '127.0.0.1', port: sink.port },
        recvBufferSize: 4096,
        admin: { host: '127.0.0.1', port: 0 },
      }),
    )
    const proxy = await startProxy(config, log, { kernelDropsIntervalMs: 20 })
    t.teardown(() => proxy.close())
    const sender = dgram.createSocket('udp4')
    t.teardown(() => sender.close())
    await new Promise<void>((resolve) => sender.connect(proxy.listen.port, '127.0.0.1', () => resolve()))
    const payload = Buffer.from(`m:1|c|#${'t'.repeat(900)}`)
    // The proxy shares this event loop: it reads nothing until the loop ends, so the kernel drops.
    for (let i = 0; i < 200; i++) sender.send(payload)
    await waitFor(
      () => records.some((r) => typeof r.msg === 'string' && r.msg.startsWith('the kernel dropped datagrams')),
      () => 'the kernel-drops warning',
    )
    const warning = records.find((r) => typeof r.msg === 'string' && r.msg.startsWith('the kernel dropped datagrams'))
    t.match(warning, { level: 40, kernelDrops: Number, rise: Number, recvBufferGranted: Number })
    const drops = warning?.kernelDrops as number
    t.ok(drops > 0)
    // Every datagram is accounted for: read by the proxy or dropped by the kernel.
    await waitFor(
      async () => (await proxy.counters()).datagramsIn + drops >= 200,
      async () => `read ${(await proxy.counters()).datagramsIn} + dropped ${drops}`,
    )
    t.equal((await proxy.counters()).datagramsIn + drops, 200)
    const body = await (await fetch(`http://127.0.0.1:${proxy.admin?.port}/metrics`)).text()
    const line = body.split('\n').find((l) => l.startsWith('statsd_filter_proxy_kernel_receive_drops_total '))
    t.equal(line, `statsd_filter_proxy_kernel_receive_drops_total ${drops}`)
  },
)
