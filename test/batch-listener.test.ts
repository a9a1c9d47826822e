// The batch listener (recvmmsg on a self-pacing tick), through listen(): datagrams whole and in order, many per
// read, the largest UDP payload untruncated, an idle socket without a timer, close from either state, a socket
// shared by two readers, errors shaped as Node's.
import dgram from 'node:dgram'
import t, { type Test } from 'tap'
import { listen, type Listener, type ListenOptions } from '../src/receive/listener.ts'
import { sleep } from './fixtures/faults.ts'
import { waitFor } from './fixtures/udp.ts'

const linuxOnly = { skip: process.platform === 'linux' ? false : 'recvmmsg is Linux only' }

interface Received {
  datagrams: string[]
  /** Calls per event-loop turn in which the listener delivered. */
  turns: number
}

async function batchListener(
  t: Test,
  o: { host?: string; shared?: Listener } = {},
): Promise<{ listener: Listener; received: Received }> {
  const received: Received = { datagrams: [], turns: 0 }
  let inTurn = false
  const options: ListenOptions = {
    host: o.host ?? '127.0.0.1',
    port: o.shared?.port ?? 0,
    recvBufferSize: 1 << 20,
    onDatagram: (buf, start, end) => {
      received.datagrams.push(buf.toString('latin1', start, end))
      if (!inTurn) {
        inTurn = true
        received.turns++
        setImmediate(() => (inTurn = false))
      }
    },
    onError: (err) => t.fail(`onError: ${err.message}`),
  }
  const shared = o.shared?.shared() ?? undefined
  const listener = await listen({ ...options, mode: 'batch', maxDelayMs: 5, shared })
  t.teardown(() => listener.close())
  return { listener, received }
}

async function sender(t: Test, family: 'udp4' | 'udp6' = 'udp4'): Promise<dgram.Socket> {
  const socket = dgram.createSocket(family)
  t.teardown(() => socket.close())
  return socket
}

function send(socket: dgram.Socket, port: number, host: string, payload: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.send(payload, port, host, (err) => (err ? reject(err) : resolve())))
}

t.test(
  'datagrams arrive whole, in order, many per read; the largest UDP payload is not truncated',
  linuxOnly,
  async (t) => {
    const { listener, received } = await batchListener(t)
    t.equal(listener.mode, 'batch')
    t.equal(listener.fallback, null)
    t.ok(listener.recvBufferGranted > 0, `granted ${listener.recvBufferGranted}`)
    const client = await sender(t)
    const sent = Array.from({ length: 300 }, (_, i) => `m.${i}:${i}|c|#k:${'v'.repeat(i % 50)}`)
    await Promise.all(sent.map((d) => send(client, listener.port, '127.0.0.1', d)))
    await waitFor(
      () => received.datagrams.length === sent.length,
      () => `${received.datagrams.length} of ${sent.length}`,
    )
    t.same(received.datagrams, sent, 'every byte of every datagram, in the order sent')
    t.ok(received.turns < sent.length / 4, `300 datagrams in ${received.turns} turns`)

    const largest = Buffer.alloc(65507, 'x')
    largest.write('big:1|c\n', 0, 'latin1')
    await send(client, listener.port, '127.0.0.1', largest)
    await waitFor(
      () => received.datagrams.length === sent.length + 1,
      () => 'the 65,507-byte datagram',
    )
    t.equal(received.datagrams.at(-1), largest.toString('latin1'))
  },
)

t.test(
  'an idle socket leaves no timer armed; a datagram wakes it, also after a poll timed out; close works idle and busy',
  linuxOnly,
  async (t) => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const before = timers()
    const { listener, received } = await batchListener(t)
    t.equal(timers(), before + 1, 'a tick is armed after start')
    const client = await sender(t)
    await send(client, listener.port, '127.0.0.1', 'a:1|c')
    await waitFor(
      () => received.datagrams.length === 1,
      () => 'the first datagram',
    )
    // Two empty reads at maxDelay (5 ms) apart, then the tick waits in poll(2) instead.
    await waitFor(
      () => timers() === before,
      () => `timers ${timers()}, ${before} before the listener`,
    )
    await send(client, listener.port, '127.0.0.1', 'b:1|c')
    await waitFor(
      () => received.datagrams.length === 2,
      () => 'the datagram after idle',
    )
    t.same(received.datagrams, ['a:1|c', 'b:1|c'])
    // Idle longer than one poll(2) waits (1 s): it timed out and waits again, without a tick in between.
    await waitFor(
      () => timers() === before,
      () => `timers ${timers()}, ${before} before the listener`,
    )
    await sleep(1500)
    t.equal(timers(), before, 'still no timer after a poll timed out')
    await send(client, listener.port, '127.0.0.1', 'c:1|c')
    await waitFor(
      () => received.datagrams.length === 3,
      () => 'the datagram after a poll timed out',
    )
    await listener.close()
    t.equal(timers(), before, 'closed: no timer left')

    const busy = await batchListener(t)
    await send(client, busy.listener.port, '127.0.0.1', 'c:1|c')
    await busy.listener.close()
    t.pass('closed while its tick was armed')
  },
)

t.test('a shared socket: two readers on one descriptor; only the owner closes it', linuxOnly, async (t) => {
  const owner = await batchListener(t)
  const second = await batchListener(t, { shared: owner.listener })
  t.equal(second.listener.port, owner.listener.port)
  const client = await sender(t)
  await second.listener.close()
  await send(client, owner.listener.port, '127.0.0.1', 'after:1|c')
  await waitFor(
    () => owner.received.datagrams.length === 1,
    () => 'the owner still reads after the other reader closed',
  )
  t.same(second.received.datagrams, [])
})

t.test('udp6 on ::1', linuxOnly, async (t) => {
  const { listener, received } = await batchListener(t, { host: '::1' })
  t.equal(listener.address, '::1')
  const client = await sender(t, 'udp6')
  await send(client, listener.port, '::1', 'six:1|c')
  await waitFor(
    () => received.datagrams.length === 1,
    () => 'the datagram over udp6',
  )
  t.same(received.datagrams, ['six:1|c'])
})

t.test('a taken port is an error shaped as Node reports it', linuxOnly, async (t) => {
  const taken = dgram.createSocket('udp4')
  await new Promise<void>((resolve) => taken.bind(0, '127.0.0.1', resolve))
  t.teardown(() => taken.close())
  const port = taken.address().port
  await t.rejects(
    listen({
      host: '127.0.0.1',
      port,
      recvBufferSize: 4096,
      onDatagram: () => {},
      onError: () => {},
      mode: 'batch',
      maxDelayMs: 5,
    }),
    { message: `bind EADDRINUSE 127.0.0.1:${port}`, code: 'EADDRINUSE', syscall: 'bind' },
  )
})

t.test('dgram mode: one callback per datagram, nothing to share', async (t) => {
  const datagrams: string[] = []
  const listener = await listen({
    host: '127.0.0.1',
    port: 0,
    recvBufferSize: 4096,
    onDatagram: (buf, start, end) => datagrams.push(buf.toString('latin1', start, end)),
    onError: () => {},
    mode: 'dgram',
    maxDelayMs: 5,
  })
  t.teardown(() => listener.close())
  t.equal(listener.mode, 'dgram')
  t.equal(listener.shared(), null)
  const client = await sender(t)
  await send(client, listener.port, '127.0.0.1', 'd:1|c')
  await waitFor(
    () => datagrams.length === 1,
    () => 'the datagram',
  )
  t.same(datagrams, ['d:1|c'])
})
