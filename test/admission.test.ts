// AdmissionTable: the first maxValuesPerTag values of a (name, key) pair admitted, exactly, across threads sharing
// the table, in tumbling windows moved by tick() on a fake clock.
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { ADMITTED, AdmissionTable, FULL, OVER, type AdmissionData } from '../src/match/admission.ts'

const HOUR = 3_600_000
/** Window 10 of one hour: a fake clock, never Date.now(). */
const START = 10 * HOUR

/** The distinct values of `count` 32-bit hashes of 1..count (the caller's hashes are any 32-bit ints). */
const valueHash = (n: number): number => Math.imul(n, 0x85ebca6b) ^ (n >>> 3)

function table(maxValuesPerTag: number, maxKeys: number, nowMs = START): AdmissionTable {
  return AdmissionTable.create({ maxValuesPerTag, maxKeys, windowMs: HOUR, nowMs })
}

t.test(
  'exactly maxValuesPerTag of 10,000 distinct values are admitted, the first ones, and stay admitted',
  async (t) => {
    const a = table(100, 1_000)
    const results = Array.from({ length: 10_000 }, (_, n) => a.admit(7, 8, valueHash(n + 1)))
    t.equal(results.filter((r) => r === ADMITTED).length, 100)
    t.same(results.slice(0, 100), Array(100).fill(ADMITTED), 'the first 100 values seen')
    t.ok(
      results.slice(100).every((r) => r === OVER),
      'the rest over',
    )
    for (let n = 0; n < 100; n++) t.equal(a.admit(7, 8, valueHash(n + 1)), ADMITTED)
    t.equal(a.admit(7, 8, valueHash(5_000)), OVER, 'an over value stays over')
    t.equal(a.keys(), 1)
  },
)

t.test('a value hash of 0 is a value (taken as 1), and pairs hashing to 0 work', async (t) => {
  const a = table(1, 10)
  t.equal(a.admit(0, 0, 0), ADMITTED)
  t.equal(a.admit(0, 0, 1), ADMITTED, '0 and 1 are the same value')
  t.equal(a.admit(0, 0, 2), OVER)
})

t.test('pairs are independent: one over its limit does not limit another', async (t) => {
  const a = table(2, 10)
  t.equal(a.admit(1, 1, 10), ADMITTED)
  t.equal(a.admit(1, 1, 11), ADMITTED)
  t.equal(a.admit(1, 1, 12), OVER)
  t.equal(a.admit(1, 2, 12), ADMITTED, 'same hash1, other hash2: another pair')
  t.equal(a.admit(2, 1, 12), ADMITTED, 'other hash1, same hash2: another pair')
  t.equal(a.admit(1, 2, 13), ADMITTED)
  t.equal(a.admit(1, 2, 14), OVER)
  t.equal(a.admit(1, 1, 11), ADMITTED)
  t.equal(a.keys(), 3)
})

t.test('FULL once maxKeys pairs are tracked; tracked pairs go on admitting', async (t) => {
  const a = table(3, 50)
  for (let k = 1; k <= 50; k++) t.equal(a.admit(k, -k, 1), ADMITTED, `pair ${k}`)
  t.equal(a.keys(), 50)
  t.equal(a.admit(51, -51, 1), FULL)
  t.equal(a.admit(1_000, 3, 1), FULL)
  t.equal(a.keys(), 50)
  for (let k = 1; k <= 50; k++) t.equal(a.admit(k, -k, 2), ADMITTED, `pair ${k}, a second value`)
  t.equal(a.admit(50, -50, 3), ADMITTED)
  t.equal(a.admit(50, -50, 4), OVER, 'a tracked pair over its values is OVER, not FULL')
})

t.test('memoryBytes: the formula, 1,081,344 bytes for 100 values and 1,000 pairs', async (t) => {
  const a = table(100, 1_000)
  t.equal(a.memoryBytes, 1_081_344)
  t.equal(a.data().buffer.byteLength, a.memoryBytes)
  t.equal(table(1, 1).memoryBytes, 4 * (16 + 2 * (16 + 3 * 2 + 1 * (1 + 2))))
  t.throws(() => AdmissionTable.create({ maxValuesPerTag: 0, maxKeys: 1, windowMs: 1 }), RangeError)
  t.throws(() => AdmissionTable.create({ maxValuesPerTag: 1, maxKeys: 1.5, windowMs: 1 }), RangeError)
  t.throws(() => AdmissionTable.create({ maxValuesPerTag: 1, maxKeys: 1, windowMs: 0 }), RangeError)
  t.throws(() => new AdmissionTable({ ...a.data(), maxKeys: 999 }), RangeError, 'a buffer of another size')
})

t.test('windows: values are forgotten when the window ends, a new set admitted in the next', async (t) => {
  const a = table(2, 10)
  t.equal(a.admit(1, 1, 10), ADMITTED)
  t.equal(a.admit(1, 1, 11), ADMITTED)
  t.equal(a.admit(1, 1, 12), OVER)
  a.tick(START + HOUR / 2 - 1)
  t.equal(a.admit(1, 1, 12), OVER, 'before the midpoint: same window')
  a.tick(START + HOUR / 2)
  t.equal(a.admit(1, 1, 12), OVER, 'past the midpoint, the next window is prepared: still the same window')
  t.equal(a.admit(1, 1, 10), ADMITTED)
  a.tick(START + HOUR - 1)
  t.equal(a.admit(1, 1, 12), OVER)
  a.tick(START + HOUR)
  t.equal(a.keys(), 0, 'the next window starts with no pairs')
  t.equal(a.admit(1, 1, 12), ADMITTED, 'the next window: new values')
  t.equal(a.admit(1, 1, 13), ADMITTED)
  t.equal(a.admit(1, 1, 10), OVER, "the last window's values are forgotten, no preference")
  a.tick(START + HOUR - 1)
  t.equal(a.admit(1, 1, 10), OVER, 'a clock behind the window changes nothing')
  // Window 12 reuses the half of window 10, prepared (cleared) past the midpoint of 11.
  a.tick(START + HOUR + HOUR / 2)
  a.tick(START + 2 * HOUR)
  t.equal(a.admit(1, 1, 10), ADMITTED, "window 12 reuses window 10's memory, cleared")
  t.equal(a.admit(1, 1, 11), ADMITTED)
  t.equal(a.admit(1, 1, 12), OVER, "window 11's values are gone too")
})

t.test('windows: idle for one or several windows (no midpoint tick), the window entered is clean', async (t) => {
  for (const windows of [1, 2, 3, 4, 7]) {
    const a = table(1, 10)
    t.equal(a.admit(1, 1, 10), ADMITTED)
    a.tick(START + HOUR / 2) // the next window prepared
    t.equal(a.admit(1, 1, 11), OVER)
    // Idle: the next tick comes `windows` windows later, at their start.
    a.tick(START + windows * HOUR)
    t.equal(a.admit(1, 1, 11), ADMITTED, `${windows} windows later: a new window`)
    t.equal(a.admit(1, 1, 10), OVER, `${windows} windows later: the old value is forgotten`)
    t.equal(a.keys(), 1)
  }
  // Idle from creation, never a midpoint tick: the half of the current window is cleared for a later one.
  const a = table(1, 10)
  t.equal(a.admit(3, 3, 30), ADMITTED)
  a.tick(START + 2 * HOUR + 5)
  t.equal(a.admit(3, 3, 31), ADMITTED)
  a.tick(START + 4 * HOUR)
  t.equal(a.admit(3, 3, 32), ADMITTED)
  t.equal(a.admit(3, 3, 31), OVER)
})

t.test('threads: another wrapper of the data shares the table and follows the window at its next admit', async (t) => {
  const a = table(2, 10)
  const b = new AdmissionTable(a.data())
  t.equal(b.memoryBytes, a.memoryBytes)
  t.equal(a.admit(1, 1, 10), ADMITTED)
  t.equal(b.admit(1, 1, 11), ADMITTED)
  t.equal(b.admit(1, 1, 12), OVER, 'one limit for both')
  t.equal(a.admit(1, 1, 12), OVER)
  t.equal(b.admit(1, 1, 10), ADMITTED)
  t.equal(b.keys(), 1)
  a.tick(START + HOUR)
  t.equal(b.admit(1, 1, 12), ADMITTED, 'b never ticked: it follows the window a moved to')
  t.equal(a.admit(1, 1, 10), ADMITTED)
  t.equal(a.admit(1, 1, 11), OVER)
  b.tick(START + HOUR + 1)
  t.equal(b.admit(1, 1, 11), OVER, "b's own tick in the same window changes nothing")
})

t.test(
  'a tick that finds another thread changing the window waits for its next tick, admitting meanwhile',
  async (t) => {
    const a = table(1, 10)
    const b = new AdmissionTable(a.data())
    t.equal(a.admit(1, 1, 10), ADMITTED)
    // Word 1 of the buffer is the lock (the header in src/match/admission.ts): taken, as by a thread mid-clear.
    const words = new Int32Array(a.data().buffer)
    words[1] = 1
    b.tick(START + HOUR)
    t.equal(b.admit(1, 1, 11), OVER, 'the lock was taken: still the last window')
    t.equal(b.admit(1, 1, 10), ADMITTED)
    words[1] = 0
    b.tick(START + HOUR + 1_000)
    t.equal(a.admit(1, 1, 11), ADMITTED, 'the next tick moved the window, for every wrapper')
    t.equal(b.admit(1, 1, 10), OVER)
  },
)

/**
 * A thread's work, as an ES module in a data: URL: wraps the table, says it is ready and waits for the shared start
 * word (so that the threads start together), admits 10,000 values twice, in an order of its own, then tries 400
 * pairs, and reports which values and pairs were admitted and how often a value it had admitted came back over.
 * Then, told the union of every thread's admissions, it checks each value and pair against it.
 * The table's module is imported by URL: the worker inherits tap's loader, which serves the .ts source to a module's
 * import on Node 20 (not to the import() of code run with eval: true).
 */
const WORKER = `
import { parentPort, workerData } from 'node:worker_threads'
const { url, data, start, index, values, pairs } = workerData
const { AdmissionTable, ADMITTED, FULL } = await import(url)
const table = new AdmissionTable(data)
const hash = (n) => Math.imul(n, 0x85ebca6b) ^ (n >>> 3)
parentPort.postMessage('ready')
Atomics.wait(start, 0, 0)
// Strides prime to 10,000: every thread sees every value.
const stride = [1, 3, 7, 9][index]
const admitted = new Uint8Array(values)
let relapses = 0
let full = 0
for (let round = 0; round < 2; round++) {
  for (let i = 0; i < values; i++) {
    const n = (i * stride + index * 977) % values
    const result = table.admit(1, 2, hash(n + 1))
    if (result === ADMITTED) admitted[n] = 1
    else if (admitted[n] === 1) relapses++
  }
}
const tracked = new Uint8Array(pairs)
for (let i = 0; i < pairs; i++) {
  const k = (i + index * 131) % pairs
  const result = table.admit(1000 + k, -k, 5)
  if (result === ADMITTED) tracked[k] = 1
  else if (result === FULL) full++
}
parentPort.postMessage({ admitted, tracked, relapses, full })
parentPort.once('message', ({ union, unionPairs }) => {
  let disagreements = 0
  for (let n = 0; n < values; n++) {
    const result = table.admit(1, 2, hash(n + 1))
    if ((result === ADMITTED) !== (union[n] === 1)) disagreements++
  }
  for (let k = 0; k < pairs; k++) {
    const result = table.admit(1000 + k, -k, 5)
    if ((result === ADMITTED) !== (unionPairs[k] === 1)) disagreements++
  }
  parentPort.postMessage({ disagreements })
})
`

interface Report {
  admitted: Uint8Array
  tracked: Uint8Array
  relapses: number
  full: number
}

const message = <T>(worker: Worker): Promise<T> =>
  new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })

t.test('worker threads hammering one table: exactly the limit admitted in all, and every thread agrees', async (t) => {
  const values = 10_000
  const pairs = 400
  // Three threads: under tap on Node 20 each worker spends seconds starting ts-node (to load .ts) on two CPUs.
  const threads = 3
  const a = table(100, 50)
  const start = new Int32Array(new SharedArrayBuffer(4))
  const data: AdmissionData = a.data()
  const url = new URL('../src/match/admission.ts', import.meta.url).href
  const workers = Array.from(
    { length: threads },
    (_, index) =>
      new Worker(new URL(`data:text/javascript,${encodeURIComponent(WORKER)}`), {
        workerData: { url, data, start, index, values, pairs },
      }),
  )
  try {
    await Promise.all(workers.map((w) => message<'ready'>(w)))
    const reported = workers.map((w) => message<Report>(w))
    Atomics.store(start, 0, 1)
    Atomics.notify(start, 0)
    const reports = await Promise.all(reported)
    const union = new Uint8Array(values)
    const unionPairs = new Uint8Array(pairs)
    for (const r of reports) {
      for (let n = 0; n < values; n++) union[n] |= r.admitted[n]
      for (let k = 0; k < pairs; k++) unionPairs[k] |= r.tracked[k]
    }
    const count = (array: Uint8Array): number => array.reduce((sum, x) => sum + x, 0)
    t.equal(count(union), 100, `${threads} threads: 100 distinct values admitted in all`)
    t.equal(
      reports.reduce((sum, r) => sum + r.relapses, 0),
      0,
      'no thread saw a value over after it was admitted',
    )
    // 49 pairs besides (1, 2): the pair table's cap holds across the threads too.
    t.equal(count(unionPairs), 49, `${threads} threads: maxKeys pairs tracked in all`)
    t.equal(a.keys(), 50)
    t.ok(
      reports.every((r) => r.full > 0),
      'every thread was told FULL',
    )
    const checks = workers.map((w) => message<{ disagreements: number }>(w))
    for (const w of workers) w.postMessage({ union, unionPairs })
    t.same(
      (await Promise.all(checks)).map((c) => c.disagreements),
      Array(threads).fill(0),
      'each thread: admitted exactly the union, the rest over or full',
    )
    for (let n = 0; n < values; n++) {
      if ((a.admit(1, 2, valueHash(n + 1)) === ADMITTED) !== (union[n] === 1)) t.fail(`value ${n}`)
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
})
