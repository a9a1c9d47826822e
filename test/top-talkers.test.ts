import { constants, performance, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { TopTalkers, type TopEntry } from '../src/telemetry/top-talkers.ts'

/** A seeded PRNG for the test data (mulberry32), independent of the sketch's own sampler. */
function prng(seed: number): () => number {
  let a = seed | 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32
  }
}

function shuffle(values: Int32Array, random: () => number): void {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const v = values[i]
    values[i] = values[j]
    values[j] = v
  }
}

/** Names packed into one buffer behind a few bytes of other data, as they sit inside a received datagram. */
interface Slab {
  buf: Buffer
  starts: Int32Array
  ends: Int32Array
}

function slab(names: string[]): Slab {
  const parts: Buffer[] = []
  const starts = new Int32Array(names.length)
  const ends = new Int32Array(names.length)
  let offset = 0
  names.forEach((name, i) => {
    const bytes = Buffer.from(name)
    parts.push(Buffer.from('x:'), bytes, Buffer.from('|c\n'))
    starts[i] = offset + 2
    ends[i] = starts[i] + bytes.length
    offset = ends[i] + 3
  })
  return { buf: Buffer.concat(parts), starts, ends }
}

/** Observes the names at the given indexes of the slab, in order. */
function feed(sketch: TopTalkers, names: Slab, stream: ArrayLike<number>): void {
  for (let i = 0; i < stream.length; i++) sketch.observe(names.buf, names.starts[stream[i]], names.ends[stream[i]])
}

function byCountThenName(a: TopEntry, b: TopEntry): number {
  return b.count - a.count || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
}

t.test('counts exactly while the distinct names fit and every line is sampled', async (t) => {
  const names = Array.from({ length: 50 }, (_, i) => `svc${i}.requests.count`)
  // Many equal counts, so the order among them (by name) is checked too.
  const truth = names.map((_, i) => 1 + (i % 10) * 3)
  const stream = new Int32Array(truth.reduce((a, b) => a + b))
  let n = 0
  truth.forEach((count, i) => stream.fill(i, n, (n += count)))
  shuffle(stream, prng(1))

  const sketch = new TopTalkers(64, 64, 1)
  feed(sketch, slab(names), stream)

  const expected = names.map((name, i) => ({ name, count: truth[i], error: 0 })).sort(byCountThenName)
  t.same(sketch.top(100), expected)
  t.same(sketch.top(3), expected.slice(0, 3))
  t.same(sketch.top(0), [])
  t.equal(sketch.observed, stream.length)
})

t.test('a sampled Zipf stream yields the true top 10 in order', async (t) => {
  const distinct = 10_000
  const names = Array.from({ length: distinct }, (_, r) => `app.service${r % 97}.endpoint${r}.latency`)
  const weights = names.map((_, r) => 1 / (r + 1) ** 1.1)
  const total = weights.reduce((a, b) => a + b)
  const truth = weights.map((w) => Math.round((1_000_000 * w) / total))
  const stream = new Int32Array(truth.reduce((a, b) => a + b))
  let n = 0
  truth.forEach((count, r) => stream.fill(r, n, (n += count)))
  shuffle(stream, prng(2))

  const sketch = new TopTalkers(1000, 128, 16)
  feed(sketch, slab(names), stream)
  t.equal(sketch.observed, stream.length)

  // Sampling one line in 16 gives a scaled count a standard deviation of sqrt(true × 15): 1.0% of the truth
  // for rank 1 (~151,000 lines), 3.5% for rank 10 (~12,000); 10% is at least 2.8 standard deviations.
  // Space-Saving adds at most the reported error, which stays small for names this heavy because they take a
  // counter early and keep it.
  const top = sketch.top(10)
  t.same(
    top.map((e) => e.name),
    names.slice(0, 10),
  )
  top.forEach((entry, r) => {
    t.ok(Math.abs(entry.count - truth[r]) <= 0.1 * truth[r], `rank ${r + 1}: ${entry.count} ≈ ${truth[r]}`)
    t.ok(entry.error <= 0.01 * truth[r], `rank ${r + 1}: error ${entry.error} is small`)
  })
})

t.test('a fixed cycle of names does not alias with the sampler', async (t) => {
  const names = Array.from({ length: 16 }, (_, i) => `cycle.metric${i}`)
  const rounds = 10_000
  const stream = new Int32Array(16 * rounds).map((_, i) => i % 16)
  const sketch = new TopTalkers(64, 64, 16)
  feed(sketch, slab(names), stream)

  const top = sketch.top(100)
  t.same(top.map((e) => e.name).sort(), [...names].sort(), 'every name of the cycle is seen')
  // Each name's scaled count has a standard deviation of sqrt(10,000 × 15) ≈ 3.9% of its 10,000 lines.
  for (const { name, count } of top) t.ok(Math.abs(count - rounds) <= 0.2 * rounds, `${name}: ${count} ≈ ${rounds}`)
})

t.test('long names are cut to maxNameBytes and shown with a marker', async (t) => {
  const sketch = new TopTalkers(8, 8, 1)
  const names = slab([
    'abcdefgh', // exactly 8 bytes: kept whole, no marker, and apart from the cut names below
    'abcdefghX',
    'abcdefghYZ', // the same first 8 bytes as the one above: one entry
    'abcdefg€', // the cut falls inside the 3-byte €, which is left out of the display
    'abcde😀', // ... inside a 4-byte sequence
    'abcdeéxyz', // a complete é before the cut is kept
  ])
  feed(sketch, names, [0, 1, 2, 3, 4, 5])
  t.same(sketch.top(10), [
    { name: 'abcdefgh…', count: 2, error: 0 },
    { name: 'abcdefgh', count: 1, error: 0 },
    { name: 'abcdefg…', count: 1, error: 0 },
    { name: 'abcdeéx…', count: 1, error: 0 },
    { name: 'abcde…', count: 1, error: 0 },
  ])
})

t.test('names with the same hash are told apart by their bytes', async (t) => {
  // These two collide in the sketch's 32-bit hash (found by search): equal hash and length, different bytes.
  const sketch = new TopTalkers(4, 32, 1)
  feed(sketch, slab(['metric.0149599', 'metric.0312382']), [0, 1, 1, 0, 1])
  t.same(sketch.top(10), [
    { name: 'metric.0312382', count: 3, error: 0 },
    { name: 'metric.0149599', count: 2, error: 0 },
  ])
})

t.test('replacing counters keeps the hash table and heap consistent with a reference Space-Saving', async (t) => {
  for (const capacity of [1, 2, 7, 64]) {
    const random = prng(capacity)
    // Small tables make long probe runs that wrap around; names of 3 to 21 bytes, the longer ones cut at 12.
    const pool = Array.from({ length: capacity * 4 + 3 }, (_, i) => `n${i}.${'x'.repeat(i % 17)}`)
    pool.push('')
    const names = slab(pool)
    const sketch = new TopTalkers(capacity, 12, 1)
    const model = new Map<string, { count: number; error: number }>()
    const truth = new Map<string, number>()
    let failure = ''

    for (let op = 0; op < 5_000 && !failure; op++) {
      // Skewed towards the first names so that some keep their counters while the rest churn.
      const i = Math.floor(pool.length * random() ** 2)
      const name = pool[i].length > 12 ? `${pool[i].slice(0, 12)}…` : pool[i] // as top() shows it
      sketch.observe(names.buf, names.starts[i], names.ends[i])
      truth.set(name, (truth.get(name) ?? 0) + 1)
      const actual = sketch.top(capacity)

      const known = model.get(name)
      if (known) known.count++
      else if (model.size < capacity) model.set(name, { count: 1, error: 0 })
      else {
        // Any counter with the minimum count may be replaced; the sketch must have replaced one of those.
        const min = Math.min(...[...model.values()].map((e) => e.count))
        const kept = new Set(actual.map((e) => e.name))
        const replaced = [...model.keys()].filter((k) => !kept.has(k))
        if (replaced.length !== 1 || model.get(replaced[0])?.count !== min) {
          failure = `op ${op}: replaced ${JSON.stringify(replaced)}, but the minimum count was ${min}`
          break
        }
        model.delete(replaced[0])
        model.set(name, { count: min + 1, error: min })
      }

      const expected = [...model].map(([name, e]) => ({ name, ...e })).sort(byCountThenName)
      if (JSON.stringify(actual) !== JSON.stringify(expected)) {
        failure = `op ${op}: ${JSON.stringify(actual)} !== ${JSON.stringify(expected)}`
      }
      for (const e of actual) {
        const lines = truth.get(e.name) ?? 0
        if (e.count - e.error > lines || lines > e.count) {
          failure = `op ${op}: ${e.name} has ${lines} lines, sketch ${JSON.stringify(e)}`
        }
      }
    }
    t.equal(failure, '', `capacity ${capacity}`)
  }
})

t.test('binary names and empty names are counted without throwing', async (t) => {
  const sketch = new TopTalkers(8, 4, 1)
  const binary = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80, 0xf8, 0x41])
  sketch.observe(binary, 0, 3)
  sketch.observe(binary, 0, 3)
  sketch.observe(binary, 0, 5) // cut after c3, the lead byte of a 2-byte sequence: left out of the display
  sketch.observe(binary, 3, 8) // cut after f8, which starts no sequence: shown as U+FFFD like the other bad bytes
  sketch.observe(binary, 2, 2)
  sketch.observe(new Uint8Array(0), 0, 0)
  t.same(sketch.top(10), [
    { name: '', count: 2, error: 0 },
    { name: '\ufffd\ufffd\0', count: 2, error: 0 },
    { name: '\ufffd(\ufffd\ufffd…', count: 1, error: 0 },
    { name: '\ufffd\ufffd\0…', count: 1, error: 0 },
  ])
})

t.test('reset forgets every name, count and line', async (t) => {
  const names = slab(['a', 'b', 'c'])
  const sketch = new TopTalkers(2, 8, 1)
  feed(sketch, names, [0, 0, 1, 2, 2, 2])
  sketch.reset()
  t.equal(sketch.observed, 0)
  t.same(sketch.top(10), [])
  feed(sketch, names, [1, 0, 1])
  t.same(sketch.top(10), [
    { name: 'b', count: 2, error: 0 },
    { name: 'a', count: 1, error: 0 },
  ])
  t.equal(sketch.observed, 3)
})

t.test('memory is fixed at construction and sizes are validated', async (t) => {
  t.equal(new TopTalkers(1000, 128, 16).memoryBytes, 1000 * (128 + 33) + 4 * 2048)
  t.equal(new TopTalkers(1024, 64, 1).memoryBytes, 1024 * (64 + 33) + 4 * 2048)
  t.equal(new TopTalkers(1, 1, 1).memoryBytes, 1 + 33 + 4 * 2)
  t.throws(() => new TopTalkers(0, 128, 1), RangeError)
  t.throws(() => new TopTalkers(10, 0, 1), RangeError)
  t.throws(() => new TopTalkers(10, 128, 0.5), RangeError)
})

/** Scavenges (young-generation collections) that started while `run` ran. */
async function scavengesDuring(run: () => void): Promise<number> {
  const starts: number[] = []
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const { detail } = entry as PerformanceEntry & { detail?: { kind?: number } }
      if (detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) starts.push(entry.startTime)
    }
  })
  observer.observe({ entryTypes: ['gc'] })
  const begin = performance.now()
  run()
  const end = performance.now()
  await sleep(50) // gc entries are delivered asynchronously
  observer.disconnect()
  // Collections after the loop, caused by this function's own promise and timer, are not the loop's.
  return starts.filter((s) => s >= begin && s <= end).length
}

function drive(sketch: TopTalkers, names: Slab, lines: number): void {
  const mask = names.starts.length - 1
  for (let i = 0; i < lines; i++) sketch.observe(names.buf, names.starts[i & mask], names.ends[i & mask])
}

t.test('observe allocates nothing', async (t) => {
  // 4096 distinct names for 1000 counters; after the reset, the measured loop takes every path: new counters,
  // then hits and replacements.
  const names = slab(Array.from({ length: 4096 }, (_, i) => `app.svc${i % 97}.endpoint${(i * 7919) % 4096}.latency`))
  const lines = 5_000_000

  // A loop that allocates one short string per line must show up, or the measurement proves nothing.
  const ring: string[] = new Array(1024).fill('')
  const control = await scavengesDuring(() => {
    for (let i = 0; i < lines; i++) {
      ring[i & 1023] = names.buf.toString('latin1', names.starts[i & 4095], names.ends[i & 4095])
    }
  })
  t.ok(control > 0, `an allocating loop is seen to scavenge (${control} times)`)

  for (const sampleEvery of [1, 16]) {
    const sketch = new TopTalkers(1000, 128, sampleEvery)
    for (let round = 0; round < 5; round++) drive(sketch, names, 200_000) // optimize observe and the loop first
    sketch.reset()
    const scavenges = await scavengesDuring(() => drive(sketch, names, lines))
    t.equal(scavenges, 0, `sampleEvery ${sampleEvery}: no scavenge in ${lines} calls`)
    t.equal(sketch.observed, lines)
  }
})
