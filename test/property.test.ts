import fc from 'fast-check'
import t from 'tap'
import { Assembler } from '../src/batch/assembler.ts'
import { BufferPool } from '../src/batch/pool.ts'
import { LineFilter } from '../src/filter.ts'
import { RuleSet } from '../src/match/rule-set.ts'
import type { SendDone, Target } from '../src/send/target.ts'
import { Counters } from '../src/telemetry/counters.ts'
import { WarningGate } from '../src/telemetry/rate-limit.ts'

// The datagram path against the simplest filter anyone would write with strings: for random rule sets and random
// datagrams, the proxy must forward exactly the lines the reference keeps, byte for byte and in order.

/** Keeps a copy of every datagram; completes sends at once. */
class CaptureTarget implements Target {
  datagrams: Buffer[] = []
  send(buf: Buffer, offset: number, length: number, done: SendDone): void {
    this.datagrams.push(Buffer.from(buf.subarray(offset, offset + length)))
    done(null)
  }
  close(): Promise<void> {
    return Promise.resolve()
  }
}

interface Blocklist {
  prefixes: string[]
  names: string[]
}

/** The reference: latin1 strings map bytes 1:1, so byte-level comparison survives any input. */
function referenceFilter(datagrams: Buffer[], blocklist: Blocklist) {
  const prefixes = blocklist.prefixes.map((p) => Buffer.from(p, 'utf8').toString('latin1'))
  const names = blocklist.names.map((n) => Buffer.from(n, 'utf8').toString('latin1'))
  const kept: string[] = []
  let blocked = 0
  let malformed = 0
  for (const d of datagrams) {
    for (let line of d.toString('latin1').split('\n')) {
      if (line.endsWith('\r')) line = line.slice(0, -1)
      if (line === '') continue
      if (line.startsWith('_e{') || line.startsWith('_sc|')) {
        kept.push(line)
        continue
      }
      const colon = line.indexOf(':')
      const pipe = line.indexOf('|')
      if (colon <= 0 || pipe === -1 || pipe < colon) {
        malformed++
        continue
      }
      const name = line.slice(0, colon)
      if (names.includes(name) || prefixes.some((p) => name.startsWith(p))) blocked++
      else kept.push(line)
    }
  }
  return { kept, blocked, malformed }
}

function runProxyPath(datagrams: Buffer[], blocklist: Blocklist, maxPacketSize: number) {
  const counters = new Counters()
  const target = new CaptureTarget()
  const assembler = new Assembler(new BufferPool(4, maxPacketSize), target, counters, () => {})
  const gate = new WarningGate(60_000)
  const filter = new LineFilter(RuleSet.fromBlocklist(blocklist, 'enforce'), assembler, counters, gate, () => {}, null)
  try {
    for (const d of datagrams) filter.handleDatagram(d)
    assembler.flush()
  } finally {
    gate.close()
  }
  const lines: string[] = []
  for (const d of target.datagrams) {
    if (d.length > maxPacketSize && d.includes(0x0a)) throw new Error('a coalesced datagram exceeds maxPacketSize')
    lines.push(...d.toString('latin1').split('\n'))
  }
  return { lines, counters }
}

// Names from a tiny alphabet collide with the rules often; the rest of a line is anything, '|' and ':' included.
const nameArb = fc.string({ unit: fc.constantFrom('a', 'b', '.', 'é', '_', 'e', '{'), minLength: 0, maxLength: 6 })
const restArb = fc.string({ unit: fc.constantFrom('1', ':', '|', 'c', '#', 'x', ',', '@', '\r', ' ', 'é'), maxLength: 12 })
const lineArb = fc.oneof(
  fc.tuple(nameArb, restArb).map(([n, r]) => `${n}:${r}|c${r}`), // a metric (or malformed, when the name is empty)
  fc.tuple(nameArb, restArb).map(([n, r]) => `${n}${r}`), // anything
  restArb.map((r) => `_e{1,1}:${r}|t`),
  restArb.map((r) => `_sc|${r}`),
  fc.constant(''),
  fc.constant('\r'),
)
const datagramArb = fc.oneof(
  { weight: 4, arbitrary: fc.array(lineArb, { maxLength: 12 }).map((lines) => Buffer.from(lines.join('\n'), 'utf8')) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)) },
)
const blocklistArb = fc.record({
  prefixes: fc.array(nameArb.filter((s) => s !== ''), { maxLength: 6 }),
  names: fc.array(nameArb.filter((s) => s !== ''), { maxLength: 6 }),
})

t.test('forwards exactly the lines a string-based reference filter keeps', async (t) => {
  fc.assert(
    fc.property(blocklistArb, fc.array(datagramArb, { maxLength: 20 }), fc.constantFrom(512, 8192), (blocklist, datagrams, size) => {
      const expected = referenceFilter(datagrams, blocklist)
      const { lines, counters } = runProxyPath(datagrams, blocklist, size)
      if (lines.join('\n') !== expected.kept.join('\n')) return false
      return (
        counters.linesForwarded === expected.kept.length &&
        counters.linesBlocked === expected.blocked &&
        counters.linesMalformed === expected.malformed &&
        counters.linesIn === expected.kept.length + expected.blocked + expected.malformed
      )
    }),
    { numRuns: Number(process.env.PROPERTY_RUNS ?? 2000) },
  )
  t.pass('property holds')
})

t.test('random bytes never throw and every line is accounted for', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 2000 }), { maxLength: 10 }), (chunks) => {
      const { counters } = runProxyPath(chunks.map((c) => Buffer.from(c)), { prefixes: ['a'], names: ['b'] }, 512)
      return counters.linesIn === counters.linesForwarded + counters.linesBlocked + counters.linesMalformed + counters.linesDroppedBackpressure
    }),
    { numRuns: 1000 },
  )
  t.pass('no throw, all lines accounted for')
})
