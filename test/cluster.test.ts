// workers: N — reader threads on one listen socket, their counters summed from shared memory, reloads reaching
// every reader, shutdown draining every reader before the socket closes. What is the same for every topology
// (forwarding, faults, shutdown, ...) runs for each in the behaviour tests; this file holds what only workers have.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import t from 'tap'
import { workerCount } from '../src/cluster/worker-count.ts'
import { compileConfig, loadAndCompile } from '../src/config/compile.ts'
import { parseConfig } from '../src/config/load.ts'
import { shareRules } from '../src/match/rule-set.ts'
import { Trie } from '../src/match/trie.ts'
import { startProxy } from '../src/proxy.ts'
import type { CounterSnapshot } from '../src/telemetry/counters.ts'
import { mergeReports, TOP_TALKERS, type TopReport } from '../src/telemetry/top-talkers.ts'
import { kernelDrops, sleep } from './fixtures/faults.ts'
import {
  createClient,
  http,
  memoryLogger,
  parsePrometheus,
  present,
  startSink,
  waitFor,
  type Client,
} from './fixtures/udp.ts'

const P = 'statsd_filter_proxy_'
const linuxOnly = { skip: process.platform === 'linux' ? false : '/proc/net/udp is Linux only' }
// Several worker starts, each slow on a busy shared machine: the file's bound is wide.
t.setTimeout(600_000)

t.test('workerCount: a number as given; auto = the CPUs, capped by a cgroup CPU limit (rounded up)', async (t) => {
  t.equal(workerCount(3, 8, null), 3)
  t.equal(workerCount('auto', 8, null), 8, 'no cgroup file: every CPU')
  t.equal(workerCount('auto', 8, 'max 100000\n'), 8, 'no limit')
  t.equal(workerCount('auto', 8, '200000 100000\n'), 2, 'limits.cpu: 2')
  t.equal(workerCount('auto', 8, '150000 100000\n'), 2, 'limits.cpu: 1500m rounds up')
  t.equal(workerCount('auto', 8, '50000 100000\n'), 1, 'limits.cpu: 500m is one worker')
  t.equal(workerCount('auto', 2, '800000 100000\n'), 2, 'a limit above the CPUs does not add workers')
  t.equal(workerCount('auto', 8, 'garbage'), 8, 'an unreadable cpu.max is no limit')
  t.equal(workerCount('auto', 8, '0 100000'), 8, 'a zero quota is no limit')
})

t.test(
  "mergeReports: the workers' sketches as one; counts and error bounds of the same name add up, heaviest first",
  async (t) => {
    const a: TopReport = {
      sampleEvery: TOP_TALKERS.sampleEvery,
      memoryBytes: 100,
      forwarded: [
        { name: 'x', count: 10, error: 1 },
        { name: 'y', count: 5, error: 0 },
      ],
      blocked: [{ name: 'b', count: 3, error: 0 }],
    }
    const b: TopReport = {
      sampleEvery: TOP_TALKERS.sampleEvery,
      memoryBytes: 50,
      forwarded: [
        { name: 'y', count: 7, error: 2 },
        { name: 'z', count: 1, error: 0 },
      ],
      blocked: [
        { name: 'c', count: 4, error: 1 },
        { name: 'b', count: 2, error: 1 },
      ],
    }
    t.same(mergeReports([a, b], 10), {
      sampleEvery: TOP_TALKERS.sampleEvery,
      memoryBytes: 150,
      forwarded: [
        { name: 'y', count: 12, error: 2 },
        { name: 'x', count: 10, error: 1 },
        { name: 'z', count: 1, error: 0 },
      ],
      blocked: [
        { name: 'b', count: 5, error: 1 },
        { name: 'c', count: 4, error: 1 },
      ],
    })
    t.same(
      mergeReports([a, b], 1),
      {
        sampleEvery: TOP_TALKERS.sampleEvery,
        memoryBytes: 150,
        forwarded: [{ name: 'y', count: 12, error: 2 }],
        blocked: [{ name: 'b', count: 5, error: 1 }],
      },
      'the n heaviest of each list',
    )
    t.same(
      mergeReports([], 5),
      { sampleEvery: TOP_TALKERS.sampleEvery, memoryBytes: 0, forwarded: [], blocked: [] },
      'no worker answered: empty',
    )
    t.same(a.forwarded[1], { name: 'y', count: 5, error: 0 }, 'the inputs are not changed')
  },
)

t.test('shareRules: the same table and trie in shared memory, crossing to a thread as a reference', async (t) => {
  const compiled = compileConfig(
    parseConfig(
      's.yaml',
      'blocklist:\n  prefixes: [legacy., { prefix: canary.é., dryRun: true }]\n  names: [app.old]\n',
    ),
  )
  const placed = shareRules({ rules: compiled.rules, trie: compiled.trie.data(), tags: compiled.tags })
  const { rules } = placed
  const trie = new Trie(placed.trie)
  const { base, check, prefixRule, exactRule } = placed.trie
  for (const array of [rules.patterns, rules.starts, rules.dryRun, base, check, prefixRule, exactRule]) {
    t.ok(array.buffer instanceof SharedArrayBuffer, `${array.constructor.name} of ${array.length} is shared`)
  }
  t.equal(shareRules(placed).rules.patterns, rules.patterns, 'an array already shared stays')
  t.same([...rules.patterns], [...compiled.rules.patterns])
  t.same([...rules.dryRun], [...compiled.rules.dryRun])
  for (const name of ['legacy.x', 'canary.é.y', 'app.old', 'app.old.x', 'other']) {
    const bytes = Buffer.from(name)
    t.equal(trie.match(bytes, 0, bytes.length), compiled.trie.match(bytes, 0, bytes.length), name)
  }
  // A thread writes into the array it was posted: no copy crossed, so this thread sees the write.
  const worker = new Worker(
    "require('node:worker_threads').parentPort.once('message', (a) => { a[0] = 42; process.exit(0) })",
    { eval: true },
  )
  const exited = new Promise((resolve) => worker.once('exit', resolve))
  worker.postMessage(rules.patterns)
  await exited
  t.equal(rules.patterns[0], 42)
})

function yamlFile(file: string, sinkPort: number, prefixes: string[]): void {
  writeFileSync(
    file,
    [
      'listen: { host: 127.0.0.1, port: 0 }',
      `forward: { host: 127.0.0.1, port: ${sinkPort} }`,
      'admin: { host: 127.0.0.1, port: 0 }',
      // The primary's records are the test's; a reload sets the level from the file.
      'log: { level: info }',
      'workers: 2',
      'blocklist:',
      `  prefixes: [${prefixes.join(', ')}]`,
      '',
    ].join('\n'),
  )
}

async function metrics(port: number): Promise<Map<string, number>> {
  const reply = await http(port, '/metrics')
  const key = (labels: Record<string, string>): string => {
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
    return pairs.length === 0 ? '' : `{${pairs.join(',')}}`
  }
  return new Map(parsePrometheus(reply.body).map((s) => [`${s.name}${key(s.labels)}`, s.value]))
}

/**
 * Sends `datagram(i)` from one client socket, 20 at a time with a pause between, until `done()` holds (checked
 * every 100 datagrams); returns how many it sent. Bounded: fails after `max`.
 */
async function sendUntil(
  client: Client,
  datagram: (i: number) => string,
  done: () => Promise<boolean>,
  max = 40_000,
): Promise<number> {
  let i = 0
  while (i < max) {
    const batch: string[] = []
    for (let k = 0; k < 20; k++) batch.push(datagram(i++))
    await client.burst(batch)
    await sleep(1)
    if (i % 100 === 0 && (await done())) return i
  }
  throw new Error(`sent ${max} datagrams and the condition never held`)
}

t.test(
  'workers: 2 — one sender spread over both readers, counted once, reloaded everywhere, closed in order',
  linuxOnly,
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cluster-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'filter.yaml')
    const sink = await startSink()
    t.teardown(() => sink.close())
    yamlFile(file, sink.port, ['blocked.'])
    const { log, records } = memoryLogger('info')
    const proxy = await startProxy(await loadAndCompile(file), log)
    t.teardown(() => proxy.close())
    const client = await createClient(proxy.listen.port)
    t.teardown(() => client.close())
    const adminPort = present(proxy.admin, 'the admin server').port
    const drops0 = await kernelDrops(proxy.listen.port)
    const started = records.find((rec) => rec.msg === 'statsd-filter-proxy started')
    t.match(
      started,
      { workers: 2, listen: `127.0.0.1:${proxy.listen.port}`, rules: { prefixes: 1, names: 0 } },
      'one start line, from the primary',
    )

    await t.test(
      'a single client socket: both workers receive, every line is counted once, the sums match',
      async (t) => {
        const sent = await sendUntil(
          client,
          (i) => `kept.metric:${i}|c\nblocked.metric:${i}|c`,
          async () => (await proxy.counters(), proxy.workers().linesIn.every((n) => n > 0)),
        )
        const drops = (await kernelDrops(proxy.listen.port)) - drops0
        t.equal(drops, 0, 'the paced sender made the kernel drop nothing')
        await waitFor(
          async () => (await proxy.counters()).linesIn === 2 * sent,
          async () => `linesIn ${(await proxy.counters()).linesIn} of ${2 * sent}`,
        )
        const c = await proxy.counters()
        t.equal(c.datagramsIn, sent)
        t.equal(c.linesForwarded, sent, 'every kept line forwarded')
        t.equal(c.linesBlocked, sent, 'every blocked line blocked')
        const stats = proxy.workers()
        t.same({ configured: stats.configured, running: stats.running }, { configured: 2, running: 2 })
        t.equal(stats.linesIn[0] + stats.linesIn[1], c.linesIn, "the workers' lines add up to the total")
        t.ok(
          stats.linesIn.every((n) => n > 0),
          `both workers received lines from one socket: ${stats.linesIn.join(' / ')}`,
        )

        await waitFor(
          () => sink.lines().length === sent,
          () => `sink ${sink.lines().length} of ${sent}`,
        )
        const expected = Array.from({ length: sent }, (_, i) => `kept.metric:${i}|c`).sort()
        t.same(
          sink.lines().sort(),
          expected,
          'the sink holds every kept line exactly once (order across workers is not kept)',
        )

        const m = await metrics(adminPort)
        t.equal(m.get(`${P}lines_received_total`), c.linesIn, '/metrics: the sum over workers')
        t.equal(m.get(`${P}lines_dropped_total{reason="blocked"}`), sent)
        t.equal(m.get(`${P}workers{state="configured"}`), 2)
        t.equal(m.get(`${P}workers{state="running"}`), 2)
        t.equal(
          (m.get(`${P}worker_lines_received_total{worker="0"}`) ?? 0) +
            (m.get(`${P}worker_lines_received_total{worker="1"}`) ?? 0),
          c.linesIn,
          'per worker, adding up',
        )
        t.equal(m.get(`${P}send_pool_buffers{state="total"}`), 256, 'two pools of 128')

        const rules = JSON.parse((await http(adminPort, '/rules')).body) as {
          rules: { pattern: string; hits: number }[]
        }
        t.same(
          rules.rules.map((rule) => [rule.pattern, rule.hits]),
          [['blocked.', sent]],
          '/rules: hits summed over workers',
        )
        const top = JSON.parse((await http(adminPort, '/top?n=5')).body) as {
          forwarded: { name: string }[]
          blocked: { name: string }[]
          memoryBytes: number
        }
        t.equal(top.forwarded[0]?.name, 'kept.metric', "/top merges the workers' sketches")
        t.equal(top.blocked[0]?.name, 'blocked.metric')
        t.equal(top.memoryBytes, 4 * 169_192, 'two sketches per worker')
      },
    )

    await t.test('a reload reaches every worker before it resolves; hits of unchanged rules carry over', async (t) => {
      const before = await proxy.counters()
      yamlFile(file, sink.port, ['blocked.', 'kept.'])
      const result = await proxy.reload('http')
      t.same(result, { ok: true, changed: true, restartNeeded: [], errors: [] })
      const sinkBefore = sink.lines().length
      const linesBefore = [...proxy.workers().linesIn]
      const sent = await sendUntil(
        client,
        (i) => `kept.after:${i}|c`,
        async () => (await proxy.counters(), proxy.workers().linesIn.every((n, w) => n > linesBefore[w])),
      )
      await waitFor(
        async () => (await proxy.counters()).linesIn === before.linesIn + sent,
        () => 'the lines sent after the reload',
      )
      const c = await proxy.counters()
      t.equal(
        c.linesBlocked - before.linesBlocked,
        sent,
        'every line after the reload blocked, by whichever worker read it',
      )
      t.equal(c.linesForwarded, before.linesForwarded)
      t.equal(sink.lines().length, sinkBefore, 'nothing new at the sink')
      const rules = JSON.parse((await http(adminPort, '/rules')).body) as { rules: { pattern: string; hits: number }[] }
      t.same(
        rules.rules.map((rule) => [rule.pattern, rule.hits]),
        [
          ['blocked.', before.linesBlocked],
          ['kept.', sent],
        ],
        "the kept rule's hits survived",
      )
    })

    await t.test('close: every worker drains and exits; the final sums add up', async (t) => {
      await proxy.close()
      t.equal(proxy.workers().running, 0, 'no reader left')
      const stopped = records.find((rec) => rec.msg === 'statsd-filter-proxy stopped') as
        { counters: CounterSnapshot } | undefined
      const c = present(stopped, 'the stopped line').counters
      t.equal(
        c.linesIn,
        c.linesForwarded + c.linesBlocked + c.linesMalformed + c.linesDroppedBackpressure,
        'linesIn = forwarded + blocked + malformed + dropped',
      )
      t.equal(sink.lines().length, c.linesForwarded, 'every forwarded line is at the sink')
    })
  },
)

t.test('a taken listen port fails the start with the reason, before any reader thread starts', linuxOnly, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cluster-busy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const taken = await startSink()
  t.teardown(() => taken.close())
  const file = join(dir, 'filter.yaml')
  writeFileSync(
    file,
    `listen: { host: 127.0.0.1, port: ${taken.port} }\nforward: { host: 127.0.0.1, port: 9 }\nadmin: { enabled: false }\nlog: { level: silent }\nworkers: 2\n`,
  )
  await t.rejects(startProxy(await loadAndCompile(file), memoryLogger('info').log), {
    message: `bind EADDRINUSE 127.0.0.1:${taken.port}`,
    code: 'EADDRINUSE',
    syscall: 'bind',
  })
})
