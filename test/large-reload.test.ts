// The config replaced by a 1,000,000-rule list while a client sends: the list loads off the event loop, every
// line sent meanwhile is forwarded, and the new rules apply from the swap on. The pause bound is ten times
// what `npm run bench:reload` measures (30–110 ms): it fails for a parse or compile on the event loop (seconds),
// not for a slow machine.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { kernelDrops, sleep } from './fixtures/faults.ts'
import { OK, probe, rig, yamlConfig } from './fixtures/reload.ts'
import { eachTopology } from './fixtures/topology.ts'
import { sinkFor, waitFor } from './fixtures/udp.ts'

const RULES = 1_000_000
const PAUSE_BOUND_MS = 1_000
// A 1,000,000-rule reload per topology: each subtest took up to 60 s on a busy 2-core machine (load average 20).
t.setTimeout(600_000)

t.test(`a ${RULES.toLocaleString('en')}-rule list replaces the config under steady traffic`, async (t) =>
  eachTopology(t, async (t, { workers }) => {
    t.setTimeout(300_000)
    const dir = mkdtempSync(join(tmpdir(), 'large-reload-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'filter.yaml')
    const sink = await sinkFor(t)
    writeFileSync(file, yamlConfig({ workers, sinkPort: sink.port, prefixes: ['old.'] }))
    const r = await rig(t, file, sink, null)
    const prefixes = Array.from({ length: RULES }, (_, i) => `    - legacy.team${i}.`)
    writeFileSync(
      file,
      `${yamlConfig({ workers, sinkPort: sink.port }).replace('  prefixes: []\n', `  prefixes:\n${prefixes.join('\n')}\n`)}`,
    )
    const drops0 = await kernelDrops(r.proxy.listen.port)

    // One numbered line every millisecond or so, and the event loop's longest gap, for as long as the reload runs.
    let reloading = true
    let sent = 0
    const sender = (async () => {
      while (reloading) {
        await r.client.send(`during.reload:${sent++}|c`)
        await sleep(1)
      }
    })()
    let longest = 0
    let last = performance.now()
    const sampler = setInterval(() => {
      const now = performance.now()
      longest = Math.max(longest, now - last - 2)
      last = now
    }, 2)
    const started = performance.now()
    const result = await r.proxy.reload('http')
    const took = performance.now() - started
    clearInterval(sampler)
    reloading = false
    await sender

    t.same(result, OK, 'the reload succeeded')
    t.equal((await r.proxy.rules()).size, RULES, 'every rule is in force')
    t.comment(
      `reload of ${RULES} rules: ${Math.round(took)} ms; longest event-loop pause ${longest.toFixed(1)} ms; ${sent} lines sent meanwhile`,
    )
    t.ok(
      longest < PAUSE_BOUND_MS,
      `the event loop never stood still for ${PAUSE_BOUND_MS} ms (longest ${longest.toFixed(1)} ms)`,
    )
    t.ok(sent > 100, 'the client sent throughout')
    await waitFor(
      () => sink.lines().filter((l) => l.startsWith('during.reload:')).length === sent,
      () => `lines sent during the reload at the sink`,
    )
    t.equal((await kernelDrops(r.proxy.listen.port)) - drops0, 0, 'the kernel dropped nothing meanwhile')
    t.same(
      await probe(r, [`legacy.team${RULES - 1}.x:1|c`, 'legacy.team.x:1|c', 'old.x:1|c']),
      ['legacy.team.x:1|c', 'old.x:1|c'],
      'the last of the new rules blocks; the old rule is gone',
    )
  }),
)
