// Reloads racing with traffic and with each other: while a client sends steadily, every datagram is filtered by
// exactly one rule set and no line is lost; triggers that overlap are served and later reloads still apply.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import type { ReloadResult } from '../src/reload/reloader.ts'
import { counts, OK, postReload, probe, RELOADED, reloads, rig, sinkFor, withMsg, yamlConfig } from './fixtures/reload.ts'
import { assertInvariant, ownTestdir, waitFor } from './fixtures/udp.ts'

// Ten reloads, each a worker thread that takes up to a few seconds on Node 20 under tap (see RELOAD_MS).
t.setTimeout(240_000)

t.test('no line lost or filtered by a mix of rule sets while reloads alternate under steady traffic', async (t) => {
  const sink = await sinkFor(t)
  const dir = ownTestdir(t)
  const file = join(dir, 'filter.yaml')
  const A = yamlConfig({ sinkPort: sink.port, prefixes: ['a.'] })
  const B = yamlConfig({ sinkPort: sink.port, prefixes: ['b.'] })
  writeFileSync(file, A)
  // Reloads are triggered one at a time (watch off): each is one reload, and the test counts them.
  const r = await rig(t, file, sink, null)
  const c = r.proxy.counters

  // Datagram d has 10 lines `<kind>.<d>.<i>:1|c`: kind a (i = 0, 3, 6, 9), b (1, 4, 7), k (2, 5, 8). A blocks the
  // a lines, B the b lines, neither the k lines.
  const datagram = (d: number): string => Array.from({ length: 10 }, (_, i) => `${'abk'[i % 3]}.${d}.${i}:1|c`).join('\n')
  const KEPT = { A: [1, 2, 4, 5, 7, 8], B: [0, 2, 3, 5, 6, 8, 9] }
  const RELOADS = 10
  const MAX_DATAGRAMS = 20_000 // a bound; at ~200 a second the test sends far fewer

  let sent = 0
  let sending = true
  const sender = (async () => {
    while (sending) {
      if (sent >= MAX_DATAGRAMS) throw new Error(`sent ${MAX_DATAGRAMS} datagrams without the reloads finishing`)
      await r.client.burst([datagram(sent), datagram(sent + 1)])
      sent += 2
      await new Promise((resolve) => setTimeout(resolve, 10)) // the pace of the sender, not a wait for an outcome
    }
  })()
  const results: ReloadResult[] = []
  try {
    for (let i = 0; i < RELOADS; i++) {
      const at = c.datagramsIn
      await waitFor(() => c.datagramsIn >= at + 20, () => `traffic before reload ${i + 1}: datagramsIn ${c.datagramsIn}`)
      writeFileSync(file, i % 2 === 0 ? B : A)
      if (i % 2 === 0) {
        const reply = await postReload(r)
        t.equal(reply.status, 200, `reload ${i + 1} by POST: 200`)
        results.push(reply.result)
      } else {
        results.push(await r.proxy.reload('signal'))
      }
    }
    const at = c.datagramsIn
    await waitFor(() => c.datagramsIn >= at + 20, () => `traffic after the last reload: datagramsIn ${c.datagramsIn}`)
  } finally {
    sending = false
    await sender
  }
  await waitFor(
    () => c.linesIn === sent * 10 && c.bytesOut === sink.bytes(),
    () => `linesIn ${c.linesIn}/${sent * 10}, sink bytes ${sink.bytes()}/${c.bytesOut}`,
  )
  t.same(results, Array.from({ length: RELOADS }, () => OK), 'every reload ok')
  t.same(await reloads(r), counts(RELOADS, 0))
  t.comment(`${sent} datagrams, ${sent * 10} lines, ${RELOADS} reloads`)

  // Every line at the sink, by datagram.
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
  for (let d = 0; d < sent; d++) {
    const kept = (survivors.get(d) ?? []).sort((x, y) => x - y)
    if (same(kept, KEPT.A)) applied.push('A')
    else if (same(kept, KEPT.B)) applied.push('B')
    else mixed.push({ datagram: d, kept })
  }
  t.same(mixed.slice(0, 10), [], 'each datagram: its surviving lines are exactly what A keeps or exactly what B keeps')
  t.equal(mixed.length, 0, 'datagrams lost, partly lost, duplicated or filtered by a mix')
  // Datagrams are handled in the order sent, so the rule set in force changes exactly once per reload.
  let switches = 0
  for (let d = 1; d < applied.length; d++) if (applied[d] !== applied[d - 1]) switches++
  t.equal(applied[0], 'A', 'the first datagrams saw the rules the proxy started with')
  t.equal(switches, RELOADS, 'the rule set changed once per reload, between two datagrams')
  const expected = applied.reduce((n, set) => n + KEPT[set].length, 0)
  t.equal(sink.lines().length, expected, 'the sink has every line the rule sets keep')
  t.equal(c.linesForwarded, expected)
  t.equal(c.linesBlocked, sent * 10 - expected)
  t.same([c.linesMalformed, c.linesDroppedBackpressure, c.sendErrors], [0, 0, 0])
  assertInvariant(t, c)
})

t.test('reload triggers that overlap: the queued one runs, and later reloads still apply', async (t) => {
  const sink = await sinkFor(t)
  const dir = ownTestdir(t)
  const file = join(dir, 'filter.yaml')
  writeFileSync(file, yamlConfig({ sinkPort: sink.port, prefixes: ['a.'] }))
  const r = await rig(t, file, sink, null)
  // A second trigger arrives while the first reload runs (as when SIGHUP follows a file-change event): it is
  // served by one more reload after it. (The first is running once this turn of the event loop is over: its
  // worker thread takes far longer than that to answer.)
  const first = r.proxy.reload('signal')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(withMsg(r, RELOADED).length, 0, 'the first reload is still running')
  const second = r.proxy.reload('http')
  t.same(await Promise.all([first, second]), [OK, OK], 'two overlapping reloads')
  t.equal(withMsg(r, RELOADED).length, 2, 'both ran')
  writeFileSync(file, yamlConfig({ sinkPort: sink.port, prefixes: ['b.'] }))
  t.same(await r.proxy.reload('signal'), OK)
  t.same(r.proxy.rules().rules.map((rule) => rule.pattern), ['b.'], 'the next reload applies: b. in force')
  writeFileSync(file, yamlConfig({ sinkPort: sink.port, prefixes: ['c.'] }))
  t.same(await r.proxy.reload('signal'), OK, 'the one after says ok')
  t.same(r.proxy.rules().rules.map((rule) => rule.pattern), ['c.'], 'and applies: c. in force')
  t.same(await probe(r, ['b.x:1|c', 'c.x:1|c']), ['b.x:1|c'], 'traffic: c. blocked, b. passes')
  t.equal(withMsg(r, RELOADED).length, 4, 'one record per reload')
})
