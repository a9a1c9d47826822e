// Reloading the config of a running proxy: the file watch (including the Kubernetes ConfigMap symlink swap),
// POST /-/reload, proxy.reload(), SIGHUP through the real CLI; invalid files; restart-only settings; a mode
// change. (Reloads under traffic and overlapping reloads: test/reload-races.test.ts.)
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { startProxy } from '../src/proxy.ts'
import { cliFor, ensureBuilt, logLines } from './fixtures/faults.ts'
import {
  configFile,
  counts,
  FAILED,
  fileRig,
  OK,
  P,
  postReload,
  probe,
  RELOAD_MS,
  RELOADED,
  reloads,
  RESTART_WARNING,
  rig,
  sha16,
  withMsg,
  yamlConfig,
} from './fixtures/reload.ts'
import { eachTopology } from './fixtures/topology.ts'
import {
  assertInvariant,
  createClient,
  freePort,
  http,
  memoryLogger,
  ownTestdir,
  promSeries,
  scrape,
  sinkFor,
  startSink,
  testConfig,
  waitFor,
  ruleSeries,
} from './fixtures/udp.ts'

// Each reload (and each start: the file is compiled the way the CLI does) runs a worker thread, which under tap
// takes up to a few seconds on Node 20 (see RELOAD_MS), and every test runs for both topologies: this file asks the
// runner for more time than the default.
t.setTimeout(600_000)

t.test('a Kubernetes ConfigMap update (the ..data symlink swapped by a rename) is picked up by the watch', async (t) =>
  eachTopology(t, async (t, { workers }) => {
    const sink = await sinkFor(t)
    const dir = ownTestdir(t)
    const oldText = yamlConfig({ workers, sinkPort: sink.port, prefixes: ['old.'] })
    // The layout the kubelet makes: filter.yaml -> ..data/filter.yaml, ..data -> ..2026_a (a timestamped directory).
    mkdirSync(join(dir, '..2026_a'))
    writeFileSync(join(dir, '..2026_a', 'filter.yaml'), oldText)
    symlinkSync('..2026_a', join(dir, '..data'))
    symlinkSync('..data/filter.yaml', join(dir, 'filter.yaml'))
    const file = join(dir, 'filter.yaml')
    const r = await rig(t, file, sink)
    t.same(
      await probe(r, ['old.x:1|c', 'new.x:1|c', 'keep.x:1|c']),
      ['new.x:1|c', 'keep.x:1|c'],
      'before: the old rules',
    )

    // The kubelet's update: a new directory, a new link to it, renamed over ..data (atomic), the old directory gone.
    const newText = yamlConfig({ workers, sinkPort: sink.port, prefixes: ['new.'] })
    mkdirSync(join(dir, '..2026_b'))
    writeFileSync(join(dir, '..2026_b', 'filter.yaml'), newText)
    symlinkSync('..2026_b', join(dir, '..data_tmp'))
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
    rmSync(join(dir, '..2026_a'), { recursive: true })
    t.equal(readFileSync(file, 'utf8'), newText, 'the path now reads the new file')
    t.same(readdirSync(dir).sort(), ['..2026_b', '..data', 'filter.yaml'])

    await waitFor(
      () => withMsg(r, RELOADED).length > 0,
      () => `a '${RELOADED}' record: ${JSON.stringify(r.records)}`,
      RELOAD_MS,
    )
    t.same(
      await probe(r, ['old.y:1|c', 'new.y:1|c', 'keep.y:1|c']),
      ['old.y:1|c', 'keep.y:1|c'],
      'after: the new rules, and only them',
    )
    t.same(
      (await r.proxy.rules()).rules.map((rule) => rule.pattern),
      ['new.'],
    )
    t.equal(withMsg(r, RELOADED).length, 1, 'one reload record')
    const [record] = withMsg(r, RELOADED)
    t.match(record, {
      level: 30,
      trigger: 'watch',
      file,
      hash: sha16(newText),
      mode: 'enforce',
      rules: { prefixes: 1, names: 0 },
    })
    t.same(withMsg(r, FAILED), [], 'no failed attempt')
    const m = await scrape(r.port)
    // Later watch events (the rm, the stat poll) find the content in force: they change and count nothing.
    t.same(promSeries(m, `${P}config_reloads_total`), counts(1, 0))
    t.same(promSeries(m, `${P}config_info`), { [`{format="yaml",hash="${sha16(newText)}",mode="enforce"}`]: 1 })
    t.same(promSeries(m, `${P}config_last_reload_success`), { '{}': 1 })
    const at = promSeries(m, `${P}config_last_reload_timestamp_seconds`)['{}']
    t.ok(at > Date.now() / 1000 - 60 && at <= Date.now() / 1000, `config_last_reload_timestamp_seconds ${at} is recent`)
    assertInvariant(t, await r.proxy.counters())
  }),
)

t.test('reload by POST /-/reload (200 with the result) and by proxy.reload()', async (t) =>
  eachTopology(t, async (t, { workers }) => {
    const r = await fileRig(t, workers, { prefixes: ['a.'] }, null)
    const { file, initial: A } = r
    const B = r.yaml({ prefixes: ['b.'], names: ['k.exact'] })
    const traffic = ['a.x:1|c', 'b.x:1|c', 'k.exact:1|c', 'k.other:1|c']
    /** `n` reload records (`what`), the last by `trigger`, of the file holding `text` with `rules`. */
    const reloaded = (n: number, what: string, trigger: string, text: string, rules: object): void => {
      t.equal(withMsg(r, RELOADED).length, n, what)
      t.match(withMsg(r, RELOADED)[n - 1], { level: 30, trigger, file, hash: sha16(text), mode: 'enforce', rules })
    }
    t.same(await probe(r, traffic), ['b.x:1|c', 'k.exact:1|c', 'k.other:1|c'], 'A in force')

    writeFileSync(file, B)
    t.same(
      await postReload(r),
      { status: 200, type: 'application/json', result: OK },
      'POST /-/reload: 200 with the result',
    )
    t.same(await probe(r, traffic), ['a.x:1|c', 'k.other:1|c'], 'B in force')
    reloaded(1, 'one reload record', 'http', B, { prefixes: 1, names: 1 })
    t.same(await reloads(r), counts(1, 0))

    writeFileSync(file, A)
    t.same(await r.proxy.reload('signal'), OK, 'proxy.reload()')
    t.same(await probe(r, traffic), ['b.x:1|c', 'k.exact:1|c', 'k.other:1|c'], 'A in force again')
    reloaded(2, 'one more reload record', 'signal', A, { prefixes: 1, names: 0 })
    const m = await scrape(r.port)
    t.same(promSeries(m, `${P}config_reloads_total`), counts(2, 0))
    t.same(promSeries(m, `${P}config_info`), { [`{format="yaml",hash="${sha16(A)}",mode="enforce"}`]: 1 })
    t.same(withMsg(r, FAILED), [])
    assertInvariant(t, await r.proxy.counters())
  }),
)

t.test('an invalid file changes nothing but the failure count: rules stay, error logged, POST answers 422', async (t) =>
  eachTopology(t, async (t, { workers }) => {
    const r = await fileRig(t, workers, { prefixes: ['a.'] }, null)
    const { file, initial: valid } = r
    const traffic = ['a.x:1|c', 'b.x:1|c']
    t.same(await probe(r, traffic), ['b.x:1|c'])

    // [what, how the file is spoiled, the errors (sorted: the YAML parser's order is not a contract)]
    const cases: [string, () => void, string[]][] = [
      [
        'a YAML syntax error',
        () => writeFileSync(file, valid.replace('  names: []\n', '  names: [b.\n')),
        [
          `${file}:8:1: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]`,
        ],
      ],
      [
        'an unknown key',
        () => writeFileSync(file, valid.replace('  prefixes: [a.]', '  prefix: [b.]')),
        [`${file}:6:3: blocklist.prefix: unknown key (expected one of: prefixes, names, globs, tags)`],
      ],
      ['the file deleted', () => rmSync(file), [`${file}: cannot read the file (ENOENT)`]],
      [
        'the file truncated to garbage',
        () =>
          writeFileSync(
            file,
            Buffer.concat([
              Buffer.from(valid).subarray(0, 20),
              Buffer.from([0x00, 0xff, 0xfe, 0x7b, 0x5b, 0x3a, 0x0a, 0x9f, 0x22]),
            ]),
          ),
        [
          `${file}:1:17: YAML syntax error: Block collections are not allowed within flow collections`,
          `${file}:1:24: YAML syntax error: Unexpected flow-map-start token`,
          `${file}:1:25: YAML syntax error: Unexpected flow-seq-start token`,
          `${file}:1:27: YAML syntax error: Flow map in block collection must be sufficiently indented and end with a }`,
          `${file}:2:1: YAML syntax error: Implicit map keys need to be followed by map values`,
        ],
      ],
    ]
    for (const [i, [what, spoil, errors]] of cases.entries()) {
      spoil()
      const reply = await postReload(r)
      t.same(
        { ...reply, result: { ...reply.result, errors: [...reply.result.errors].sort() } },
        { status: 422, type: 'application/json', result: { ok: false, changed: false, restartNeeded: [], errors } },
        `${what}: 422 with the errors`,
      )
      const failed = withMsg(r, FAILED)
      t.equal(failed.length, i + 1, `${what}: one error record`)
      t.match(failed[i], { level: 50, trigger: 'http', file })
      t.same([...(failed[i].errors as string[])].sort(), errors, `${what}: the record's errors`)
      const m = await scrape(r.port)
      t.same(promSeries(m, `${P}config_reloads_total`), counts(0, i + 1), `${what}: counted as a failure`)
      t.same(promSeries(m, `${P}config_last_reload_success`), { '{}': 0 }, `${what}: the last reload failed`)
      t.same(
        promSeries(m, `${P}config_info`),
        { [`{format="yaml",hash="${sha16(valid)}",mode="enforce"}`]: 1 },
        `${what}: the config in force is the old one`,
      )
      t.same(await probe(r, traffic), ['b.x:1|c'], `${what}: the old rules are still in force`)
    }
    t.same(withMsg(r, RELOADED), [], 'nothing was reloaded')

    // A valid file again: it applies, and the last reload is a success.
    writeFileSync(file, r.yaml({ prefixes: ['b.'] }))
    t.same(await postReload(r), { status: 200, type: 'application/json', result: OK })
    t.same(await probe(r, traffic), ['a.x:1|c'])
    const m = await scrape(r.port)
    t.same(promSeries(m, `${P}config_reloads_total`), counts(1, 4))
    t.same(promSeries(m, `${P}config_last_reload_success`), { '{}': 1 })
    assertInvariant(t, await r.proxy.counters())
  }),
)

t.test(
  'listen, forward and the cardinality view changed in the file: the rules apply, the sockets stay, a warning lists the keys',
  async (t) =>
    eachTopology(t, async (t, { workers }) => {
      const other = await sinkFor(t)
      const otherListen = await freePort()
      const r = await fileRig(t, workers, { prefixes: ['a.'] }, null)
      const { file } = r
      const listenPort = r.proxy.listen.port
      const started = r.proxy.config()

      const changed = yamlConfig({
        workers,
        sinkPort: other.port,
        prefixes: ['b.'],
        listen: `{ host: 127.0.0.1, port: ${otherListen} }`,
      }).concat('cardinality: { view: { names: 3 } }\n')
      writeFileSync(file, changed)
      t.same(await postReload(r), {
        status: 200,
        type: 'application/json',
        result: { ...OK, restartNeeded: ['listen', 'forward', 'cardinalityView'] },
      })
      const warnings = withMsg(r, RESTART_WARNING)
      t.equal(warnings.length, 1, 'one warning')
      t.match(warnings[0], { level: 40 })
      t.same(warnings[0].keys, ['listen', 'forward', 'cardinalityView'], 'the warning lists the keys')
      t.same(r.proxy.config().cardinalityView, started.cardinalityView, 'the view keeps the size it started with')
      t.equal(withMsg(r, RELOADED).length, 1)
      t.match(withMsg(r, RELOADED)[0], {
        level: 30,
        trigger: 'http',
        hash: sha16(changed),
        rules: { prefixes: 1, names: 0 },
      })

      t.same(await probe(r, ['a.x:1|c', 'b.x:1|c']), ['a.x:1|c'], 'the new rules apply, through the same sockets')
      t.same(other.datagrams, [], 'nothing went to the forward address in the file')
      t.equal(r.proxy.listen.port, listenPort, 'still listening on the same port')
      t.same(r.proxy.config().listen, started.listen, 'config(): the listen address it started with')
      t.same(r.proxy.config().forward, started.forward, 'config(): the forward address it started with')
      t.same(
        (await r.proxy.rules()).rules.map((rule) => rule.pattern),
        ['b.'],
        'rules(): the rules of the file',
      )
      // The proxy did not bind the port the file names: it is free for us.
      const taken = await startSink(otherListen)
      await taken.close()
      assertInvariant(t, await r.proxy.counters())
    }),
)

t.test('mode: enforce -> dry-run by a watched reload: blocked lines pass and count as would-block', async (t) =>
  eachTopology(t, async (t, { workers }) => {
    const r = await fileRig(t, workers, { prefixes: ['blocked.'], names: ['exact'] })
    const { file } = r
    t.same(await probe(r, ['blocked.a:1|c', 'exact:1|c', 'kept:1|c']), ['kept:1|c'], 'enforce: dropped')
    const before = await r.proxy.counters()
    t.same([before.linesBlocked, before.linesWouldBlock], [2, 0])

    const dry = r.yaml({ prefixes: ['blocked.'], names: ['exact'], mode: 'dry-run' })
    writeFileSync(file, dry) // in place, as an editor or `kubectl cp` would
    await waitFor(
      () => withMsg(r, RELOADED).length > 0,
      () => `a '${RELOADED}' record: ${JSON.stringify(r.records)}`,
      RELOAD_MS,
    )
    t.equal(withMsg(r, RELOADED).length, 1, "one reload (the watch's later looks find the same content)")
    t.match(withMsg(r, RELOADED)[0], { level: 30, trigger: 'watch', mode: 'dry-run', hash: sha16(dry) })
    t.same(
      await probe(r, ['blocked.b:1|c|#t:1', 'exact:2|g', 'kept:2|c']),
      ['blocked.b:1|c|#t:1', 'exact:2|g', 'kept:2|c'],
      'dry-run: forwarded',
    )
    const c = await r.proxy.counters()
    t.same([c.linesBlocked, c.linesWouldBlock], [2, 2], 'counted as would-block, not blocked')
    assertInvariant(t, c)

    const rules = JSON.parse((await http(r.port, '/rules')).body) as {
      mode: string
      rules: { pattern: string; dryRun: boolean; hits: number }[]
    }
    t.same(
      { mode: rules.mode, rules: rules.rules.map(({ pattern, dryRun, hits }) => ({ pattern, dryRun, hits })) },
      {
        mode: 'dry-run',
        rules: [
          { pattern: 'blocked.', dryRun: true, hits: 2 },
          { pattern: 'exact', dryRun: true, hits: 2 },
        ],
      },
      '/rules: every rule dry-run; hits carried over the reload',
    )
    const m = await scrape(r.port)
    t.same(promSeries(m, `${P}config_info`), { [`{format="yaml",hash="${sha16(dry)}",mode="dry-run"}`]: 1 })
    t.same(promSeries(m, `${P}rules`), ruleSeries({ prefix: [0, 1], name: [0, 1] }))
    t.same(promSeries(m, `${P}lines_would_block_total`), { '{}': 2 })
    t.same(promSeries(m, `${P}config_reloads_total`), counts(1, 0))
  }),
)

t.test('an invalid file seen by the watch is rejected: the rules in force stay', async (t) =>
  eachTopology(t, async (t, { workers }) => {
    const r = await fileRig(t, workers, { prefixes: ['a.'] })
    const { file, initial: valid } = r
    // Written to a temporary file and renamed over the config, as most editors save: no half-written state to see.
    const replace = (content: string): void => {
      writeFileSync(`${file}.tmp`, content)
      renameSync(`${file}.tmp`, file)
    }
    replace(valid.replace('  prefixes: [a.]', '  prefix: [b.]'))
    await waitFor(
      () => withMsg(r, FAILED).length > 0,
      () => `a '${FAILED}' record: ${JSON.stringify(r.records)}`,
      RELOAD_MS,
    )
    const [first] = withMsg(r, FAILED)
    t.match(first, { level: 50, trigger: 'watch', file })
    t.same(
      first.errors,
      [`${file}:6:3: blocklist.prefix: unknown key (expected one of: prefixes, names, globs, tags)`],
      "the record's errors",
    )
    t.same(await probe(r, ['a.x:1|c', 'b.x:1|c']), ['b.x:1|c'], 'the old rules are in force')
    // The directory events and the stat poll may each have tried the file (a failure is counted and logged in the
    // same step, so the count is within the records seen before and after the scrape).
    const before = withMsg(r, FAILED).length
    const m = await scrape(r.port)
    const after = withMsg(r, FAILED).length
    const { '{result="success"}': successes, '{result="failure"}': failures } = promSeries(
      m,
      `${P}config_reloads_total`,
    )
    t.equal(successes, 0, 'no success')
    t.ok(
      failures >= before && failures <= after && after <= 2,
      `${failures} failure(s) counted, ${after} record(s): one or two attempts`,
    )
    t.same(promSeries(m, `${P}config_last_reload_success`), { '{}': 0 })

    // The operator puts the previous, valid file back: the content in force, but it ends the failure.
    replace(valid)
    await waitFor(
      () => withMsg(r, RELOADED).length > 0,
      () => `a '${RELOADED}' record: ${JSON.stringify(r.records)}`,
      RELOAD_MS,
    )
    t.equal(withMsg(r, RELOADED).length, 1, 'one reload record')
    t.match(withMsg(r, RELOADED)[0], { level: 30, trigger: 'watch', file, hash: sha16(valid) })
    const m2 = await scrape(r.port)
    t.same(
      promSeries(m2, `${P}config_reloads_total`),
      counts(1, withMsg(r, FAILED).length),
      'a success, and the failures as before',
    )
    t.same(
      promSeries(m2, `${P}config_last_reload_success`),
      { '{}': 1 },
      'putting the file in force back clears the failure',
    )
    t.same(await probe(r, ['a.x:1|c', 'b.x:1|c']), ['b.x:1|c'], 'the rules in force did not change')
  }),
)

t.test('reload() of a proxy whose config was built in memory rejects, as documented', async (t) =>
  eachTopology(t, async (t, { workers }) => {
    const sink = await sinkFor(t)
    const { log } = memoryLogger('info')
    const proxy = await startProxy(testConfig({ forwardPort: sink.port, prefixes: ['a.'], workers }), log)
    t.teardown(() => proxy.close())
    await t.rejects(
      proxy.reload('signal'),
      new Error('this config was not loaded from a file: there is nothing to reload'),
    )
  }),
)

// ---- SIGHUP through the real CLI (the built dist/src/cli.js in a child process) ----

t.test('SIGHUP to the CLI reloads the file', async (t) =>
  eachTopology(t, async (t, { workers }) => {
    ensureBuilt(t)
    const sink = await sinkFor(t)
    const file = configFile(t, yamlConfig({ workers, sinkPort: sink.port, prefixes: ['old.'] }))
    const { child, listen, port, stdout, done } = await cliFor(t, file)
    const records = (): Record<string, unknown>[] => logLines(stdout().slice(0, stdout().lastIndexOf('\n') + 1))
    let exited = false
    void done.then(() => (exited = true))
    t.match(listen, /^127\.0\.0\.1:\d+$/)
    const client = await createClient(port)
    t.teardown(() => client.close())

    // Once a line is through, main() has installed its signal handlers (they follow startProxy in the same turn).
    await client.send('old.a:1|c\nnew.a:1|c')
    await waitFor(
      () => sink.lines().includes('new.a:1|c'),
      () => `new.a at the sink: ${JSON.stringify(sink.lines())}`,
    )
    t.same(sink.lines(), ['new.a:1|c'], 'old. blocked')

    const next = yamlConfig({ workers, sinkPort: sink.port, prefixes: ['new.'] })
    writeFileSync(file, next)
    t.ok(child.kill('SIGHUP'))
    const bySignal = (): Record<string, unknown> | undefined =>
      records().find((l) => l.msg === RELOADED && l.trigger === 'signal')
    await waitFor(
      () => exited || bySignal() !== undefined,
      () => `a '${RELOADED}' line with trigger signal; stdout: ${stdout()}`,
      RELOAD_MS,
    )
    t.notOk(exited, 'SIGHUP does not stop the CLI')
    t.match(bySignal(), { level: 30, file, hash: sha16(next), mode: 'enforce', rules: { prefixes: 1, names: 0 } })

    await client.send('old.b:1|c\nnew.b:1|c')
    await waitFor(
      () => sink.lines().includes('old.b:1|c'),
      () => `old.b at the sink: ${JSON.stringify(sink.lines())}`,
    )
    t.same(sink.lines(), ['new.a:1|c', 'old.b:1|c'], 'new. blocked, old. passes')

    t.ok(child.kill('SIGTERM'))
    const r = await done
    t.same([r.code, r.signal, r.stderr], [0, null, ''], 'exit 0 on SIGTERM')
    const logs = logLines(r.stdout)
    t.same(
      logs.filter((l) => (l.level as number) >= 50 || l.msg === FAILED).map((l) => l.msg),
      [],
      'no error on the way',
    )
    t.match(logs[logs.length - 1], {
      msg: 'statsd-filter-proxy stopped',
      counters: { datagramsIn: 2, linesIn: 4, linesForwarded: 2, linesBlocked: 2, linesMalformed: 0 },
    })
  }),
)

t.test('the CLI returns free memory to the kernel after start-up and after each reload (batch receive)', async (t) =>
  eachTopology(t, async (t, { workers, receive }) => {
    ensureBuilt(t)
    const sink = await sinkFor(t)
    const yaml = (prefixes: string[]): string =>
      yamlConfig({ workers, receive: { mode: receive }, sinkPort: sink.port, prefixes }).replace(
        'log: { level: info }',
        'log: { level: debug }',
      )
    const file = configFile(t, yaml(['old.']))
    const { child, stdout, done } = await cliFor(t, file)
    const records = (): Record<string, unknown>[] => logLines(stdout().slice(0, stdout().lastIndexOf('\n') + 1))
    const released = (): Record<string, unknown>[] =>
      records().filter((l) => l.msg === 'free memory returned to the system')
    // dgram mode loads no native code for it: nothing is released, nothing logged.
    const expected = receive === 'batch' ? 1 : 0
    await waitFor(
      () => records().some((l) => l.msg === 'statsd-filter-proxy started') && released().length >= expected,
      () => `the start line and ${expected} release; stdout: ${stdout()}`,
    )
    writeFileSync(file, yaml(['new.']))
    t.ok(child.kill('SIGHUP'))
    await waitFor(
      () => records().some((l) => l.msg === RELOADED) && released().length >= 2 * expected,
      () => `a reload and ${2 * expected} releases; stdout: ${stdout()}`,
      RELOAD_MS,
    )
    t.ok(child.kill('SIGTERM'))
    await done
    t.equal(released().length, 2 * expected, 'once after start-up, once after the reload')
    for (const r of released()) t.match(r, { level: 20, rssAnonKb: { before: Number, after: Number } })
  }),
)
