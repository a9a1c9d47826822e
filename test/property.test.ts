import fc from 'fast-check'
import t from 'tap'
import { referenceProperty, runProxyPath } from './fixtures/reference.ts'

// The datagram path against the simplest filter anyone would write with strings: for random rule sets and random
// datagrams, the proxy must forward exactly the lines the reference keeps, byte for byte and in order. The
// reference, the arbitraries and the runner live in test/fixtures/reference.ts, shared with bench/fuzz.ts (which
// runs the same property over a million datagrams).

t.test('forwards exactly the lines a string-based reference filter keeps', async (t) => {
  fc.assert(referenceProperty(), { numRuns: Number(process.env.PROPERTY_RUNS ?? 2000) })
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
