// HyperLogLog over registers at an offset in a shared array: estimates within 3% at precision 12 across the small
// range, near where the textbook estimator switches from linear counting (10,000), and large; merge as the union.
import t from 'tap'
import { hllAdd, hllEstimate, hllMerge } from '../src/telemetry/hyperloglog.ts'

/** murmur3's finalizer over a counter: distinct well-mixed 32-bit hashes, the same every run. */
function hashOf(i: number, seed: number): number {
  let h = Math.imul(i ^ seed, 0x9e3779b1)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}

const P = 12
const M = 1 << P

t.test('within 3% at 1,000 / 10,000 / 100,000 / 1,000,000 distinct, precision 12', async (t) => {
  for (const n of [1_000, 10_000, 100_000, 1_000_000]) {
    // The sketch sits between two others, which must stay untouched.
    const registers = new Uint8Array(3 * M)
    for (let i = 0; i < n; i++) {
      const h = hashOf(i, n)
      hllAdd(registers, M, P, h)
      hllAdd(registers, M, P, h)
    }
    const estimate = hllEstimate(registers, M, P)
    const error = Math.abs(estimate - n) / n
    t.ok(error <= 0.03, `${n}: estimate ${Math.round(estimate)}, error ${(100 * error).toFixed(2)}%`)
    t.equal(hllEstimate(registers, 0, P), 0, 'the sketch before is empty')
    t.equal(hllEstimate(registers, 2 * M, P), 0, 'the sketch after is empty')
  }
})

t.test('registers cap at 33 - precision', async (t) => {
  const registers = new Uint8Array(M)
  hllAdd(registers, 0, P, 0)
  t.equal(registers[0], 33 - P)
  hllAdd(registers, 0, P, -1)
  t.equal(registers[M - 1], 1)
})

t.test('merge is the union', async (t) => {
  const a = new Uint8Array(2 * M)
  const b = new Uint8Array(M)
  const union = new Uint8Array(M)
  // 60,000 hashes in a, 60,000 in b, 20,000 of them in both: 100,000 distinct.
  for (let i = 0; i < 100_000; i++) {
    const h = hashOf(i, 7)
    if (i < 60_000) hllAdd(a, M, P, h)
    if (i >= 40_000) hllAdd(b, 0, P, h)
    hllAdd(union, 0, P, h)
  }
  hllMerge(a, M, b, 0, P)
  t.same(a.subarray(M), union, 'the registers of the sketch of the union')
  t.equal(hllEstimate(a, M, P), hllEstimate(union, 0, P))
  t.ok(hllEstimate(a, M, P) > hllEstimate(b, 0, P) * 1.5, 'more than either part')
})
