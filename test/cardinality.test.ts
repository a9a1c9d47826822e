// CardinalityTracker fed real DogStatsD bytes through SeriesHasher, as the filter feeds it: distinct series per
// name, the heavy-distinct-hitter choice of names, tag keys by distinct values, window halves, and the merge.
import t, { type Test } from 'tap'
import { lineHash, lineHashes, SeriesHasher } from '../src/scan/series-hash.ts'
import {
  CARDINALITY_DEFAULTS,
  CardinalityTracker,
  mergeCardinality,
  type CardinalityRow,
} from '../src/telemetry/cardinality.ts'
import { prng } from './fixtures/faults.ts'

/** Lines packed into one buffer, `\n`-separated, with where each name and line ends. */
interface Slab {
  buf: Buffer
  starts: Int32Array
  nameEnds: Int32Array
  ends: Int32Array
}

function slab(lines: readonly string[]): Slab {
  const buf = Buffer.from(lines.join('\n'))
  const starts = new Int32Array(lines.length)
  const nameEnds = new Int32Array(lines.length)
  const ends = new Int32Array(lines.length)
  let offset = 0
  lines.forEach((line, i) => {
    starts[i] = offset
    ends[i] = offset + Buffer.byteLength(line)
    nameEnds[i] = buf.indexOf(0x3a, offset)
    offset = ends[i] + 1
  })
  return { buf, starts, nameEnds, ends }
}

const hasher = new SeriesHasher(32)

/** Line i as the filter hands it over, with its identity (lineHash); true when it was skipped (tags not hashed). */
function see(tracker: CardinalityTracker, lines: Slab, i: number, by = hasher): boolean {
  const { buf, starts, nameEnds, ends } = lines
  lineHash(buf, starts[i], nameEnds[i], buf.indexOf(0x7c, nameEnds[i]), ends[i])
  return !tracker.observe(by, buf, starts[i], nameEnds[i], ends[i], lineHashes)
}

function feed(tracker: CardinalityTracker, lines: Slab): void {
  for (let i = 0; i < lines.starts.length; i++) see(tracker, lines, i)
}

function row(rows: CardinalityRow[], name: string): CardinalityRow {
  const found = rows.find((r) => r.name === name)
  if (found === undefined) throw new Error(`no row for ${name}`)
  return found
}

function within(tt: Test, estimate: number, truth: number, tolerance: number, what: string): void {
  const error = Math.abs(estimate - truth) / truth
  tt.ok(error <= tolerance, `${what}: ${estimate} for ${truth}, error ${(100 * error).toFixed(2)}%`)
}

t.test('memory at the defaults', async (t) => {
  const tracker = new CardinalityTracker()
  t.equal(tracker.memoryBytes, 3_169_600)
  t.ok(2 * tracker.memoryBytes <= 8 * 1024 * 1024, 'two readers fit in 8 MB')
  t.same(new CardinalityTracker(CARDINALITY_DEFAULTS).memoryBytes, tracker.memoryBytes, 'the defaults')
  t.throws(() => new CardinalityTracker({ precision: 17 }), RangeError)
  t.throws(() => new CardinalityTracker({ trackedNames: 0 }), RangeError)
})

t.test('a metric with 100,000 distinct series, its keys by distinct values', async (t) => {
  const tracker = new CardinalityTracker()
  tracker.tick(0)
  const random = prng(1)
  const lines: string[] = []
  // 100,000 series (user_id × env), each seen once or twice, tags in either order, duplicates and empty tags.
  for (let i = 0; i < 100_000; i++) {
    const user = `user_id:u${Math.floor(i / 3)}`
    const env = `env:${['prod', 'staging', 'dev'][i % 3]}`
    lines.push(`api.requests:1|c|#${user},${env}`)
    if (random() < 0.5) lines.push(`api.requests:3|c|@0.5|#${env},,${user}|#${env}`)
  }
  feed(tracker, slab(lines))
  const view = mergeCardinality([tracker.report(10)], 10)
  t.equal(view.trackedNames, 1)
  const since = row(view.sinceStart, 'api.requests')
  within(t, since.series, 100_000, 0.03, 'series since start')
  within(t, row(view.window, 'api.requests').series, 100_000, 0.03, 'series in the window')
  within(t, view.totalSeries.sinceStart, 100_000, 0.03, 'total series')
  t.same(
    since.keys.map((k) => k.key),
    ['user_id', 'env'],
  )
  within(t, since.keys[0].values, 33_334, 0.15, 'user_id values')
  t.equal(since.keys[1].values, 3, 'env values')
  t.equal(since.keysUntracked, 0)
})

t.test('names with the most series win, not the names with the most lines', async (t) => {
  const tracker = new CardinalityTracker({ trackedNames: 16 })
  const random = prng(2)
  const lines: string[] = []
  // 500 names with 1-3 series and 200 lines each, and 5 names with 2,000-6,000 series: interleaved at random.
  const heavy = [2000, 3000, 4000, 5000, 6000]
  const pending: string[][] = []
  for (let n = 0; n < 500; n++) {
    const name = `busy.metric.${n}`
    pending.push(Array.from({ length: 200 }, (_, i) => `${name}:1|c|#host:h${i % (1 + (n % 3))},env:prod`))
  }
  heavy.forEach((series, h) => {
    pending.push(Array.from({ length: series }, (_, i) => `wide.metric.${h}:1|g|#user_id:${i},env:prod`))
  })
  while (pending.length > 0) {
    const k = Math.floor(random() * pending.length)
    const line = pending[k].pop()
    if (line === undefined) pending.splice(k, 1)
    else lines.push(line)
  }
  feed(tracker, slab(lines))
  const top = mergeCardinality([tracker.report(5)], 5).sinceStart
  t.same(
    top.map((r) => r.name),
    ['wide.metric.4', 'wide.metric.3', 'wide.metric.2', 'wide.metric.1', 'wide.metric.0'],
  )
  // Each counted from when it got its counter: nearly from the start.
  top.forEach((r, i) => within(t, r.series, heavy[4 - i], 0.1, r.name))
})

t.test('keys past maxKeysPerName are counted, names and keys cut for display', async (t) => {
  const tracker = new CardinalityTracker({ maxKeysPerName: 2, maxNameBytes: 4, maxKeyBytes: 3 })
  const lines: string[] = []
  for (let i = 0; i < 100; i++) lines.push(`ab.ü.cd:1|c|#user_id:${i},env:prod,k${i % 10}:x`)
  feed(tracker, slab(lines))
  const view = mergeCardinality([tracker.report(1)], 1)
  const r = view.sinceStart[0]
  t.equal(r.name, 'ab.…', 'cut at a UTF-8 boundary, not inside ü')
  t.same(
    r.keys.map((k) => k.key),
    ['use…', 'env'],
  )
  t.ok(r.keysUntracked >= 8 && r.keysUntracked <= 12, `about 10 untracked keys: ${r.keysUntracked}`)
})

t.test('the window is the union of two halves that tick rotates', async (t) => {
  const tracker = new CardinalityTracker({ windowMs: 1000 })
  const batch = (from: number, to: number): Slab =>
    slab(Array.from({ length: to - from }, (_, i) => `w:1|c|#id:${from + i}`))
  tracker.tick(10_000)
  feed(tracker, batch(0, 1000))
  tracker.tick(10_499)
  feed(tracker, batch(1000, 1500))
  let view = mergeCardinality([tracker.report(1)], 1)
  within(t, view.window[0].series, 1500, 0.03, 'one half')
  tracker.tick(10_500)
  feed(tracker, batch(1500, 2000))
  view = mergeCardinality([tracker.report(1)], 1)
  within(t, view.window[0].series, 2000, 0.03, 'both halves')
  tracker.tick(11_000)
  view = mergeCardinality([tracker.report(1)], 1)
  within(t, view.window[0].series, 500, 0.03, 'the older half cleared')
  within(t, view.window[0].keys[0].values, 500, 0.1, 'key values in the window')
  tracker.tick(20_000)
  view = mergeCardinality([tracker.report(1)], 1)
  t.equal(view.window[0].series, 0, 'a jump clears both')
  t.equal(view.totalSeries.window, 0)
  within(t, view.sinceStart[0].series, 2000, 0.03, 'since start keeps all')
  within(t, view.sinceStart[0].keys[0].values, 2000, 0.1, 'key values since start')
})

t.test('merging two trackers is the union', async (t) => {
  const a = new CardinalityTracker()
  const b = new CardinalityTracker()
  const all = new CardinalityTracker()
  const lines = (from: number, to: number): Slab =>
    slab(Array.from({ length: to - from }, (_, i) => `m:1|c|#pod:p${from + i},env:prod`))
  // 30,000 series in a, 30,000 in b, 10,000 in both; and a name only b sees.
  feed(a, lines(0, 30_000))
  feed(b, lines(20_000, 50_000))
  feed(b, slab(['only.b:1|c|#k:v']))
  feed(all, lines(0, 50_000))
  const merged = mergeCardinality([a.report(10), b.report(10)], 10)
  const one = mergeCardinality([all.report(10)], 10)
  t.same(row(merged.sinceStart, 'm'), row(one.sinceStart, 'm'), 'the same registers, the same estimates')
  within(t, row(merged.sinceStart, 'm').series, 50_000, 0.03, 'merged series')
  t.equal(row(merged.sinceStart, 'only.b').series, 1)
  t.equal(merged.trackedNames, 2)
  t.equal(merged.memoryBytes, a.memoryBytes + b.memoryBytes)
  t.same(JSON.parse(JSON.stringify(merged)), merged, 'plain JSON')
  t.same(structuredClone(a.report(10)), a.report(10), 'reports are structured-cloneable')
})

t.test('a line of an untracked name whose identity adds nothing is skipped before its tags are hashed', async (t) => {
  class CountingHasher extends SeriesHasher {
    tagWalks = 0
    override collectTags(buf: Uint8Array, nameEnd: number, end: number): number {
      this.tagWalks++
      return super.collectTags(buf, nameEnd, end)
    }
  }
  const counting = new CountingHasher(32)
  const tracker = new CardinalityTracker({ trackedNames: 1 })
  tracker.tick(0)
  const lines = slab(['a.x:1|c|#k:1,user:u1', 'b.y:1|c|#k:1', 'a.x:2|c|#k:1,user:u1'])
  const walks = (i: number): number => {
    const before = counting.tagWalks
    t.equal(see(tracker, lines, i, counting), counting.tagWalks === before, 'observe() says whether it hashed tags')
    return counting.tagWalks - before
  }
  t.equal(walks(0), 1, 'a.x gets the one counter: its tags go into its sketches')
  t.equal(walks(1), 1, 'b.y, a new sampled identity, takes the counter over')
  t.equal(walks(2), 0, 'a.x is untracked now and its identity was counted already: nothing to hash')
  const view = mergeCardinality([tracker.report(5)], 5)
  t.same(
    view.sinceStart.map((r) => [r.name, r.series]),
    [['b.y', 1]],
  )
})

t.test('a recent line of a tracked name in this window half adds nothing and is skipped', async (t) => {
  const tracker = new CardinalityTracker({ trackedNames: 2, windowMs: 1_000 })
  tracker.tick(0)
  const lines = slab(['a.x:1|c|#k:1', 'a.x:2|c|#k:1', 'a.x:1|c|#k:2', 'b.y:1|c|#k:1', 'c.z:1|c|#k:1', 'b.y:1|c|#k:3'])
  t.equal(see(tracker, lines, 0), false, 'first sight')
  t.equal(see(tracker, lines, 0), true, 'the same line again')
  t.equal(see(tracker, lines, 1), true, 'another value, the same series: recent')
  t.equal(see(tracker, lines, 2), false, 'another tag value: a new series')
  t.equal(see(tracker, lines, 3), false)
  t.equal(see(tracker, lines, 3), true)
  tracker.tick(500)
  t.equal(see(tracker, lines, 0), false, 'a new window half: counted again')
  t.equal(see(tracker, lines, 0), true)
  t.equal(see(tracker, lines, 3), false)
  const view = mergeCardinality([tracker.report(5)], 5)
  t.same(
    view.window.map((r) => [r.name, r.series]),
    [
      ['a.x', 2],
      ['b.y', 1],
    ],
    'the window holds what the current half saw again, and the older half',
  )
  // c.z takes over the smallest counter (b.y, one series).
  t.equal(see(tracker, lines, 4), false)
  t.equal(see(tracker, lines, 3), true, "a displaced name's line already counted adds nothing")
  // b.y comes back with a new series (a counter of its own again): its lines from before are not recent there.
  t.equal(see(tracker, lines, 5), false)
  t.equal(see(tracker, lines, 3), false, "a name's recent lines from before it was displaced do not count")
  t.equal(see(tracker, lines, 3), true)
})
