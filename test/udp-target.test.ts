import dgram from 'node:dgram'
import t from 'tap'
import type { ResolvedAddress } from '../src/net/address.ts'
import { createTarget } from '../src/send/target.ts'
import { waitFor } from './fixtures/udp.ts'

/** A socket on `address` (any of 127.0.0.0/8 is loopback on Linux) recording what arrives. */
async function sinkOn(address: string, port = 0): Promise<{ port: number; received: string[]; close(): void }> {
  const socket = dgram.createSocket('udp4')
  const received: string[] = []
  socket.on('message', (msg) => received.push(msg.toString()))
  await new Promise<void>((resolve) => socket.bind(port, address, () => resolve()))
  return { port: socket.address().port, received, close: () => socket.close() }
}

function send(
  target: { send(b: Buffer, o: number, l: number, done: (err: Error | null) => void): void },
  text: string,
): Promise<Error | null> {
  const buf = Buffer.from(text)
  return new Promise((resolve) => target.send(buf, 0, buf.length, resolve))
}

t.test('a DNS name that moves to another address is followed without a restart', async (t) => {
  const first = await sinkOn('127.0.0.1')
  const second = await sinkOn('127.0.0.2', first.port).catch(() => null)
  if (second === null) {
    first.close()
    t.pass('skipped: 127.0.0.2 is not usable here', { skip: true })
    return
  }
  t.teardown(() => {
    first.close()
    second.close()
  })
  let answer: ResolvedAddress = { address: '127.0.0.1', family: 4 }
  const asked: string[] = []
  const changes: string[] = []
  const errors: Error[] = []
  const target = await createTarget({
    host: 'statsd.example.test',
    port: first.port,
    resolveIntervalMs: 20,
    resolve: async (host) => {
      asked.push(host)
      return answer
    },
    onError: (err) => errors.push(err),
    onAddressChange: (from, to) => changes.push(`${from.address} -> ${to.address}`),
  })
  t.teardown(() => target.close())
  t.equal(target.address, '127.0.0.1')
  t.equal(await send(target, 'a:1|c'), null)
  await waitFor(
    () => first.received.length === 1,
    () => 'the first datagram at 127.0.0.1',
  )

  answer = { address: '127.0.0.2', family: 4 }
  await waitFor(
    () => changes.length === 1,
    () => 'the address change',
  )
  t.same(changes, ['127.0.0.1 -> 127.0.0.2'])
  t.equal(target.address, '127.0.0.2')
  t.equal(await send(target, 'b:1|c'), null)
  await waitFor(
    () => second.received.length === 1,
    () => 'the second datagram at 127.0.0.2',
  )
  t.same(first.received, ['a:1|c'])
  t.same(second.received, ['b:1|c'])
  t.ok(asked.length >= 2 && asked.every((h) => h === 'statsd.example.test'))
  t.same(errors, [])
})

t.test('a failed re-resolution keeps the last good address and reports the error', async (t) => {
  const sink = await sinkOn('127.0.0.1')
  t.teardown(() => sink.close())
  let fail = false
  const errors: string[] = []
  const target = await createTarget({
    host: 'statsd.example.test',
    port: sink.port,
    resolveIntervalMs: 10,
    resolve: async () => {
      if (fail) throw Object.assign(new Error('getaddrinfo ENOTFOUND statsd.example.test'), { code: 'ENOTFOUND' })
      return { address: '127.0.0.1', family: 4 }
    },
    onError: (err) => errors.push(err.message),
    onAddressChange: () => t.fail('the address must not change'),
  })
  t.teardown(() => target.close())
  fail = true
  await waitFor(
    () => errors.length >= 2,
    () => 'two failed re-resolutions',
  )
  t.equal(errors[0], 'getaddrinfo ENOTFOUND statsd.example.test')
  t.equal(await send(target, 'still:1|c'), null)
  await waitFor(
    () => sink.received.length === 1,
    () => 'the datagram at the old address',
  )
  t.same(sink.received, ['still:1|c'])
})

t.test('an IP literal is never re-resolved', async (t) => {
  const sink = await sinkOn('127.0.0.1')
  t.teardown(() => sink.close())
  let asked = 0
  const target = await createTarget({
    host: '127.0.0.1',
    port: sink.port,
    resolveIntervalMs: 5,
    resolve: async (host) => {
      asked++
      return { address: host, family: 4 }
    },
    onError: () => {},
    onAddressChange: () => {},
  })
  t.teardown(() => target.close())
  // A DNS name on the same interval, started after it: once the name has been resolved again 5 times, the
  // literal's timer (if it had one) would have fired as often.
  let namedAsked = 0
  const named = await createTarget({
    host: 'statsd.example.test',
    port: sink.port,
    resolveIntervalMs: 5,
    resolve: async () => {
      namedAsked++
      return { address: '127.0.0.1', family: 4 }
    },
    onError: () => {},
    onAddressChange: () => {},
  })
  t.teardown(() => named.close())
  await waitFor(
    () => namedAsked >= 6,
    () => `the name re-resolved 5 times (asked ${namedAsked})`,
  )
  t.equal(asked, 1, 'resolved once, at start')
})

t.test('a send after close reports an error instead of throwing', async (t) => {
  const sink = await sinkOn('127.0.0.1')
  t.teardown(() => sink.close())
  const target = await createTarget({
    host: '127.0.0.1',
    port: sink.port,
    resolveIntervalMs: 1000,
    onError: () => {},
    onAddressChange: () => {},
  })
  await target.close()
  const err = await send(target, 'late:1|c')
  t.match(err, { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' })
})
