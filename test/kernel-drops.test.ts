import dgram from 'node:dgram'
import t from 'tap'
import { KernelDrops, readUdpSocketStats } from '../src/telemetry/kernel-drops.ts'

/** A receiver with the smallest receive buffer, flooded while the event loop is busy, so the kernel drops. */
async function overflow(): Promise<{ port: number; close(): void }> {
  const receiver = dgram.createSocket({ type: 'udp4', recvBufferSize: 4096 })
  await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', () => resolve()))
  const port = receiver.address().port
  const sender = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => sender.connect(port, '127.0.0.1', () => resolve()))
  const payload = Buffer.alloc(1000, 0x61)
  // Synchronous sends: the receiver cannot read until this loop ends, so its 4 KiB queue overflows.
  for (let i = 0; i < 200; i++) sender.send(payload)
  return {
    port,
    close: () => {
      receiver.close()
      sender.close()
    },
  }
}

t.test('reads the drops of the sockets bound to a port from /proc/net/udp', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const gone = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => gone.bind(0, '127.0.0.1', () => resolve()))
  const freed = gone.address().port
  await new Promise<void>((resolve) => gone.close(() => resolve()))
  t.same(await readUdpSocketStats(freed), { drops: 0, rxQueue: 0, sockets: 0 }, 'no socket on a port just freed')
  const flood = await overflow()
  t.teardown(flood.close)
  const stats = await readUdpSocketStats(flood.port)
  t.ok(stats !== null)
  t.equal(stats?.sockets, 1)
  t.ok((stats?.drops ?? 0) > 0, `the kernel counted ${stats?.drops} drops`)
})

t.test('KernelDrops reports a rise after its baseline', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const receiver = dgram.createSocket({ type: 'udp4', recvBufferSize: 4096 })
  await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', () => resolve()))
  const port = receiver.address().port
  t.teardown(() => receiver.close())
  const rises: number[] = []
  const monitor = new KernelDrops({ port, intervalMs: 60_000, onRise: (rise) => rises.push(rise) })
  t.teardown(() => monitor.close())
  t.same(await monitor.read(), { drops: 0, rxQueue: 0, sockets: 1 }, 'the baseline')
  const sender = dgram.createSocket('udp4')
  t.teardown(() => sender.close())
  await new Promise<void>((resolve) => sender.connect(port, '127.0.0.1', () => resolve()))
  const payload = Buffer.alloc(1000, 0x62)
  for (let i = 0; i < 200; i++) sender.send(payload)
  const after = await monitor.read()
  t.ok((after?.drops ?? 0) > 0)
  t.same(rises, [after?.drops], 'one rise, by the number dropped')
})

t.test('the proxy counts kernel drops of its listen socket, warns, and exposes them', { skip: process.platform !== 'linux' && 'Linux only' }, async (t) => {
  const { parseConfig } = await import('../src/config/load.ts')
  const { startProxy } = await import('../src/proxy.ts')
  const { memoryLogger, startSink, waitFor } = await import('./fixtures/udp.ts')
  const sink = await startSink()
  t.teardown(() => sink.close())
  const { log, records } = memoryLogger('info')
  const config = parseConfig(
    'drops.yaml',
    JSON.stringify({ listen: { host: '127.0.0.1', port: 0 }, forward: { host: '127.0.0.1', port: sink.port }, recvBufferSize: 4096, admin: { host: '127.0.0.1', port: 0 } }),
  )
  const proxy = await startProxy(config, log, { kernelDropsIntervalMs: 20 })
  t.teardown(() => proxy.close())
  const sender = dgram.createSocket('udp4')
  t.teardown(() => sender.close())
  await new Promise<void>((resolve) => sender.connect(proxy.listener.port, '127.0.0.1', () => resolve()))
  const payload = Buffer.from(`m:1|c|#${'t'.repeat(900)}`)
  // The proxy shares this event loop: it reads nothing until the loop ends, so the kernel drops.
  for (let i = 0; i < 200; i++) sender.send(payload)
  await waitFor(() => records.some((r) => typeof r.msg === 'string' && r.msg.startsWith('the kernel dropped datagrams')), () => 'the kernel-drops warning')
  const warning = records.find((r) => typeof r.msg === 'string' && r.msg.startsWith('the kernel dropped datagrams'))
  t.match(warning, { level: 40, kernelDrops: Number, rise: Number, recvBufferGranted: Number })
  const drops = warning?.kernelDrops as number
  t.ok(drops > 0)
  // Every datagram is accounted for: read by the proxy or dropped by the kernel.
  await waitFor(() => proxy.counters.datagramsIn + drops >= 200, () => `read ${proxy.counters.datagramsIn} + dropped ${drops}`)
  t.equal(proxy.counters.datagramsIn + drops, 200)
  const body = await (await fetch(`http://127.0.0.1:${proxy.admin?.port}/metrics`)).text()
  const line = body.split('\n').find((l) => l.startsWith('statsd_filter_proxy_kernel_receive_drops_total '))
  t.equal(line, `statsd_filter_proxy_kernel_receive_drops_total ${drops}`)
})
