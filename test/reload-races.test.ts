// Reloads racing with traffic and with each other: while a client sends steadily, every datagram is filtered by
// exactly one rule set and no line is lost; triggers that overlap are served and later reloads still apply.
import { writeFileSync } from 'node:fs'
import t from 'tap'
import type { ReloadResult } from '../src/reload/reloader.ts'
import {
  counts,
  fileRig,
  LOADER_THREAD_PADDING,
  OK,
  postReload,
  probe,
  RELOADED,
  reloads,
  withMsg,
} from './fixtures/reload.ts'
import { eachTopology, waitForCounters } from './fixtures/topology.ts'
import { assertInvariant } from './fixtures/udp.ts'

// Ten reloads, each a worker thread that takes up to a few seconds on Node 20 under tap (see RELOAD_MS), for each
// of the two topologies.
t.setTimeout(600_000)

t.test('no line lost or filtered by a mix of rule sets while reloads alternate under steady traffic', async (t) =>
  eachTopology(t, async (t, { workers }) => {
    // Reloads are triggered one at a time (watch off): each is one reload, and the test counts them.
    const r = await fileRig(t, workers, { prefixes: ['a.'] }, null)
    const { sink, file, initial: A } = r
    const B = r.yaml({ prefixes: ['b.'] })

    // Datagram d has 10 lines `<kind>.<d>.<i>:1|c`: kind a (i = 0, 3, 6, 9), b (1, 4, 7), k (2, 5, 8). A blocks the
    // a lines, B the b lines, neither the k lines.
    const datagram = (d: number): string =>
      Array.from({ length: 10 }, (_, i) => `${'abk'[i % 3]}.${d}.${i}:1|c`).join('\n')
    const KEPT = { A: [1, 2, 4, 5, 7, 8], B: [0, 2, 3, 5, 6, 8, 9] }
    const RELOADS = 10
    const MAX_DATAGRAMS = 20_000 // a bound; at ~200 a second the test sends far fewer
    /** Generation g (reloads done) is file A for even g, B for odd. */
    const setOf = (generation: number): 'A' | 'B' => (generation % 2 === 0 ? 'A' : 'B')

    // What bounds the generation each datagram was filtered by, topology aside:
    // - from below: a reload done (every reader runs its rules) before a datagram's send began applies to it;
    // - from above: a datagram among the first `datagramsIn` counted before reload k + 1 began was read (the
    //   readers take datagrams off the one socket in the order sent) under generation k or an earlier one.
    let done = 0
    const doneAtSend: number[] = []
    const countedBefore: number[] = []
    let sent = 0
    let sending = true
    const sender = (async () => {
      while (sending) {
        if (sent >= MAX_DATAGRAMS) throw new Error(`sent ${MAX_DATAGRAMS} datagrams without the reloads finishing`)
        doneAtSend.push(done, done)
        await r.client.burst([datagram(sent), datagram(sent + 1)])
        sent += 2
        await new Promise((resolve) => setTimeout(resolve, 10)) // the pace of the sender, not a wait for an outcome
      }
    })()
    /** Waits until the 20 datagrams after the next burst have been read: generation `done` filtered them alone. */
    const traffic = async (what: string): Promise<number> => {
      const first = sent + 2
      return (await waitForCounters(r.proxy, (c) => c.datagramsIn >= first + 20, what)).datagramsIn
    }
    const results: ReloadResult[] = []
    try {
      for (let i = 0; i < RELOADS; i++) {
        countedBefore.push(await traffic(`traffic before reload ${i + 1}`))
        writeFileSync(file, setOf(i + 1) === 'B' ? B : A)
        if (i % 2 === 0) {
          const reply = await postReload(r)
          t.equal(reply.status, 200, `reload ${i + 1} by POST: 200`)
          results.push(reply.result)
        } else {
          results.push(await r.proxy.reload('signal'))
        }
        done++
      }
      await traffic('traffic after the last reload')
    } finally {
      sending = false
      await sender
    }
    const c = await waitForCounters(
      r.proxy,
      (c) => c.linesIn === sent * 10 && c.bytesOut === sink.bytes(),
      `linesIn ${sent * 10}, sink bytes = bytesOut ${sink.bytes()}`,
    )
    t.same(
      results,
      Array.from({ length: RELOADS }, () => OK),
      'every reload ok',
    )
    t.same(await reloads(r), counts(RELOADS, 0))
    t.comment(`${sent} datagrams, ${sent * 10} lines, ${RELOADS} reloads`)

    // Every line at the sink, by datagram (with workers, the lines of different datagrams interleave at the sink).
    const survivors = new Map<number, number[]>()
    const strays: string[] = []
    for (const line of sink.lines()) {
      const m = /^([abk])\.(\d+)\.(\d+):1\|c$/.exec(line)
      if (m === null || 'abk'[Number(m[3]) % 3] !== m[1] || Number(m[2]) >= sent) {
        strays.push(line)
        continue
      }
      const list = survivors.get(Number(m[2])) ?? []
      list.push(Number(m[3]))
      survivors.set(Number(m[2]), list)
    }
    t.same(strays, [], 'no line that was not sent')
    const same = (x: number[], y: number[]): boolean => x.length === y.length && x.every((v, i) => v === y[i])
    const applied: ('A' | 'B')[] = []
    const mixed: { datagram: number; kept: number[] }[] = []
    const wrong: { datagram: number; generation: number; applied: 'A' | 'B' }[] = []
    const determined = Array.from({ length: RELOADS + 1 }, () => 0)
    for (let d = 0; d < sent; d++) {
      const kept = (survivors.get(d) ?? []).sort((x, y) => x - y)
      if (same(kept, KEPT.A)) applied.push('A')
      else if (same(kept, KEPT.B)) applied.push('B')
      else {
        mixed.push({ datagram: d, kept })
        continue
      }
      const lowest = doneAtSend[d]
      const k = countedBefore.findIndex((counted) => d < counted)
      const highest = k === -1 ? RELOADS : k
      if (lowest > highest)
        throw new Error(`datagram ${d}: sent after reload ${lowest} was done, read before reload ${highest + 1} began`)
      if (lowest !== highest) continue // sent while a reload ran: either set, as long as it is one of them
      determined[lowest]++
      if (applied[d] !== setOf(lowest)) wrong.push({ datagram: d, generation: lowest, applied: applied[d] })
    }
    t.same(
      mixed.slice(0, 10),
      [],
      'each datagram: its surviving lines are exactly what A keeps or exactly what B keeps',
    )
    t.equal(mixed.length, 0, 'datagrams lost, partly lost, duplicated or filtered by a mix')
    t.same(
      wrong.slice(0, 10),
      [],
      "a datagram sent after a reload was done and read before the next began: that reload's rules",
    )
    t.ok(
      determined.every((n) => n >= 20),
      `at least 20 such datagrams for every generation: ${JSON.stringify(determined)}`,
    )
    t.equal(applied[0], 'A', 'the first datagrams saw the rules the proxy started with')
    if (workers === 1) {
      // One reader takes datagrams in the order sent, so the rule set changes exactly once per reload. (Workers
      // take the new rules one after the other: one may read a later datagram on the old rules than another's.)
      let switches = 0
      for (let d = 1; d < applied.length; d++) if (applied[d] !== applied[d - 1]) switches++
      t.equal(switches, RELOADS, 'the rule set changed once per reload, between two datagrams')
    }
    const expected = applied.reduce((n, set) => n + KEPT[set].length, 0)
    t.equal(sink.lines().length, expected, 'the sink has every line the rule sets keep')
    t.equal(c.linesForwarded, expected)
    t.equal(c.linesBlocked, sent * 10 - expected)
    t.same([c.linesMalformed, c.linesDroppedBackpressure, c.sendErrors], [0, 0, 0])
    assertInvariant(t, c)
  }),
)

t.test('reload triggers that overlap: the queued one runs, and later reloads still apply', async (t) =>
  eachTopology(t, async (t, { workers }) => {
    const r = await fileRig(t, workers, { prefixes: ['a.'] }, null)
    const { file } = r
    // A second trigger arrives while the first reload runs (as when SIGHUP follows a file-change event): it is
    // served by one more reload after it. (The first is running once this turn of the event loop is over: the
    // file is past 64 KiB, and the loader thread it then runs on takes far longer than that to answer.)
    writeFileSync(file, r.yaml({ prefixes: ['a.'] }) + LOADER_THREAD_PADDING)
    const first = r.proxy.reload('signal')
    await new Promise((resolve) => setImmediate(resolve))
    t.equal(withMsg(r, RELOADED).length, 0, 'the first reload is still running')
    const second = r.proxy.reload('http')
    t.same(await Promise.all([first, second]), [OK, OK], 'two overlapping reloads')
    t.equal(withMsg(r, RELOADED).length, 2, 'both ran')
    writeFileSync(file, r.yaml({ prefixes: ['b.'] }))
    t.same(await r.proxy.reload('signal'), OK)
    t.same(
      (await r.proxy.rules()).rules.map((rule) => rule.pattern),
      ['b.'],
      'the next reload applies: b. in force',
    )
    writeFileSync(file, r.yaml({ prefixes: ['c.'] }))
    t.same(await r.proxy.reload('signal'), OK, 'the one after says ok')
    t.same(
      (await r.proxy.rules()).rules.map((rule) => rule.pattern),
      ['c.'],
      'and applies: c. in force',
    )
    t.same(await probe(r, ['b.x:1|c', 'c.x:1|c']), ['b.x:1|c'], 'traffic: c. blocked, b. passes')
    t.equal(withMsg(r, RELOADED).length, 4, 'one record per reload')
  }),
)
