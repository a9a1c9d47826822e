// The command line, run as the built dist/src/cli.js in a child process.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import { CLI, cliFor, ensureBuilt, logLines, output, ROOT, sleep, type CliRun, type Exit } from './fixtures/faults.ts'
import { eachTopology } from './fixtures/topology.ts'
import { createClient, NO_COUNTS, sinkFor, startSink, waitFor } from './fixtures/udp.ts'

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

t.before(() => ensureBuilt(t))

/** The environment without the config variables of the parent. */
function env(vars: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e = { ...process.env, ...vars }
  if (!('FILTER_CONFIG' in vars)) delete e.FILTER_CONFIG
  if (!('PROXY_CONFIG_FILE' in vars)) delete e.PROXY_CONFIG_FILE
  return e
}

/**
 * Runs the CLI to completion (killed after 60 s: a command that should exit but does not fails the test; generous,
 * as several CLIs start at once on a machine that may be busy).
 */
function run(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}): Promise<Exit> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    env: env(options.env),
    timeout: 60_000,
  })
  return output(child).done
}

/** The lines of an output (each ending in \n), in sorted order: problems are not promised in file order. */
function sortedLines(out: string): string[] {
  if (out !== '' && !out.endsWith('\n')) return [`missing final newline: ${out}`]
  return out.split('\n').slice(0, -1).sort()
}

t.test('--help prints the usage and exits 0', async (t) => {
  const flags = ['--help', '-h']
  const results = await Promise.all(flags.map((flag) => run([flag])))
  for (const [i, flag] of flags.entries()) {
    const r = results[i]
    t.equal(r.code, 0, flag)
    t.match(r.stdout, /^Usage: statsd-filter-proxy \[--config PATH\] \[--check\]\n/)
    t.match(r.stdout, /-c, --config PATH/)
    t.match(r.stdout, /--check/)
    t.match(
      r.stdout,
      /The config file is the first of: --config, \$FILTER_CONFIG, \$PROXY_CONFIG_FILE, \.\/filter\.yaml\n$/,
    )
    t.equal(r.stderr, '')
  }
})

t.test('--version prints the package version', async (t) => {
  const [long, short] = await Promise.all([run(['--version']), run(['-v'])])
  t.same(long, { code: 0, signal: null, stdout: `${VERSION}\n`, stderr: '' }, '--version')
  t.same(short, { code: 0, signal: null, stdout: `${VERSION}\n`, stderr: '' }, '-v')
})

t.test('bad arguments exit 2 with the usage', async (t) => {
  const cases: [string[], string][] = [
    [['--bogus'], "Unknown option '--bogus'"],
    [['-x'], "Unknown option '-x'"],
    [['extra'], "Unexpected argument 'extra'. This command does not take positional arguments"],
    [['--config'], "Option '-c, --config <value>' argument missing"],
    [['--check=yes'], "Option '--check' does not take an argument"],
  ]
  const results = await Promise.all(cases.map(([args]) => run(args)))
  for (const [i, [args, message]] of cases.entries()) {
    const r = results[i]
    t.equal(r.code, 2, args.join(' '))
    t.equal(r.stdout, '')
    t.ok(
      r.stderr.startsWith(`statsd-filter-proxy: ${message}\n\nUsage: statsd-filter-proxy`),
      `${args.join(' ')}: ${r.stderr.split('\n')[0]}`,
    )
  }
})

t.test('--check', async (t) => {
  const dir = t.testdir({
    'good.yaml': 'blocklist:\n  prefixes: [a., b.]\n  names: [c]\n',
    'bad.yaml': 'listen:\n  port: 70000\nblocklist:\n  prefix: [a.]\n',
    'rust.json':
      '{"listen_host":"0.0.0.0","listen_port":8125,"target_host":"127.0.0.1","target_port":8127,"metric_blocklist":["a.","b."],"multi_thread":true}',
    'other.yaml': 'blocklist: { names: [x] }\n',
  })
  const good = join(dir, 'good.yaml')
  const bad = join(dir, 'bad.yaml')
  const rust = join(dir, 'rust.json')
  const other = join(dir, 'other.yaml')

  const badErrors = [
    `${bad}:2:9: listen.port: must be an integer from 0 to 65535 (got 70000)`,
    `${bad}:4:3: blocklist.prefix: unknown key (expected one of: prefixes, names, globs, tags)`,
  ]
  const ok = (file: string, summary: string): Exit => ({
    code: 0,
    signal: null,
    stdout: `${file}: OK (${summary})\n`,
    stderr: '',
  })
  const invalid: Exit = { code: 1, signal: null, stdout: '', stderr: '' }
  // [name, arguments, environment, expected result (stderr compared as sorted lines when `errors` is given)]
  const cases: [string, string[], Record<string, string>, Exit, string[]?][] = [
    ['valid', ['--check', '--config', good], {}, ok(good, 'yaml, 2 prefixes, 1 names')],
    ['-c', ['--check', '-c', good], {}, ok(good, 'yaml, 2 prefixes, 1 names')],
    [
      'invalid: file:line:column: path: message on stderr, exit 1',
      ['--check', '--config', bad],
      {},
      invalid,
      badErrors,
    ],
    ['from FILTER_CONFIG', ['--check'], { FILTER_CONFIG: good }, ok(good, 'yaml, 2 prefixes, 1 names')],
    [
      'the Rust JSON config from PROXY_CONFIG_FILE (multi_thread: true is workers: auto, not a warning)',
      ['--check'],
      { PROXY_CONFIG_FILE: rust },
      { code: 0, signal: null, stdout: `${rust}: OK (rust-json, 2 prefixes, 0 names)\n`, stderr: '' },
    ],
    [
      'FILTER_CONFIG before PROXY_CONFIG_FILE',
      ['--check'],
      { FILTER_CONFIG: other, PROXY_CONFIG_FILE: rust },
      ok(other, 'yaml, 0 prefixes, 1 names'),
    ],
    [
      '--config before both',
      ['--check', '--config', good],
      { FILTER_CONFIG: other, PROXY_CONFIG_FILE: rust },
      ok(good, 'yaml, 2 prefixes, 1 names'),
    ],
    ['an invalid file from the environment', ['--check'], { FILTER_CONFIG: bad }, invalid, badErrors],
  ]
  const results = await Promise.all(cases.map(([, args, vars]) => run(args, { env: vars })))
  for (const [i, [name, , , expected, errors]] of cases.entries()) {
    const r = results[i]
    if (errors === undefined) t.same(r, expected, name)
    else t.same({ ...r, stderr: sortedLines(r.stderr) }, { ...expected, stderr: errors }, name)
  }
})

t.test('--check with tag rules: the count of each kind, and the warnings with file:line:column', async (t) => {
  const dir = t.testdir({
    'tags.yaml': [
      'blocklist:', //                                                     1
      "  prefixes: [legacy., { prefix: http., tag: 'env:staging' }]", //   2
      '  names: [app.latency.avg]', //                                     3
      "  globs: ['*.debug.**', 'tmp.*.count']", //                         4
      "  tags: ['env:dev', synthetic]", //                                 5
      'allowlist:', //                                                     6
      '  prefixes: [app., payments.]', //                                  7
      '  names: [up]', //                                                  8
      'stripTags:', //                                                     9
      '  - metrics: { prefixes: [api.request.] }', //                     10
      '    keys: [user_id, dd.internal.entity_id]', //                    11
      "  - metrics: { globs: ['payments.**'] }", //                       12
      '    keepOnly: [env, service, status]', //                          13
      '    dryRun: true', //                                              14
      'limits: { maxTags: 100 }', //                                      15
      '',
    ].join('\n'),
    'strip-only.yaml': 'stripTags:\n  - metrics: { names: [a.b] }\n    keys: [user_id]\n',
  })
  const file = join(dir, 'tags.yaml')
  const stripOnly = join(dir, 'strip-only.yaml')
  const [tags, strip] = await Promise.all([run(['--check', '--config', file]), run(['--check', '-c', stripOnly])])
  t.same(tags, {
    code: 0,
    signal: null,
    stdout:
      `warning: ${file}:3:11: blocklist.names[0]: ends in .avg, an aggregate the agent computes from a histogram or timer: no line the proxy sees has this name, so the rule never matches (name the metric itself)\n` +
      `warning: ${file}:11:21: stripTags[0].keys[1]: names dd.internal.entity_id, an instruction to the agent (origin detection, cardinality), not a tag of the series: the agent consumes it before series are counted, so a rule on it saves nothing; keepOnly never removes dd.internal.entity_id, dd.internal.card or dd.internal.jmx_check_name\n` +
      `${file}: OK (yaml, 2 prefixes, 1 names, 2 globs, 2 tags, 3 allow, 2 stripTags)\n`,
    stderr: '',
  })
  t.same(
    strip,
    { code: 0, signal: null, stdout: `${stripOnly}: OK (yaml, 0 prefixes, 0 names, 1 stripTags)\n`, stderr: '' },
    'only the kinds present are counted',
  )
})

t.test('without flag or variable: ./filter.yaml', async (t) => {
  const dir = t.testdir({ here: { 'filter.yaml': 'blocklist: { prefixes: [x.] }\n' }, empty: {} })
  t.same(await run(['--check'], { cwd: join(dir, 'here') }), {
    code: 0,
    signal: null,
    stdout: 'filter.yaml: OK (yaml, 1 prefixes, 0 names)\n',
    stderr: '',
  })
  t.same(await run(['--check'], { cwd: join(dir, 'empty') }), {
    code: 1,
    signal: null,
    stdout: '',
    stderr: 'filter.yaml: cannot read the file (ENOENT)\n',
  })
  t.same(
    await run([], { cwd: join(dir, 'empty') }),
    {
      code: 1,
      signal: null,
      stdout: '',
      stderr: 'filter.yaml: cannot read the file (ENOENT)\nstatsd-filter-proxy: not started: the config is invalid\n',
    },
    'without --check it says it did not start',
  )
})

t.test('an invalid config: exit 1 without starting', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'forward: { port: 0 }\nlog: { level: loud }\n' })
  const bad = join(dir, 'bad.yaml')
  const r = await run(['--config', bad])
  t.same(r, {
    code: 1,
    signal: null,
    stdout: '', // no start log line
    stderr:
      `${bad}:1:18: forward.port: must be an integer from 1 to 65535 (got 0)\n` +
      `${bad}:2:15: log.level: must be one of fatal, error, warn, info, debug, trace, silent\n` +
      'statsd-filter-proxy: not started: the config is invalid\n',
  })
})

/** The CLI started on `config` (worker processes start slowly on a busy machine: the bound only bounds a failure). */
async function startCli(t: Test, config: string, nodeArgs: readonly string[] = []): Promise<CliRun> {
  const run = await cliFor(t, config, 60_000, nodeArgs)
  t.match(run.listen, /^127\.0\.0\.1:\d+$/)
  return run
}

t.test('running: forwards, then stops on SIGTERM with the final counters', async (t) =>
  eachTopology(t, async (t, topology) => {
    const sink = await sinkFor(t)
    const dir = t.testdir({
      'run.yaml': `listen: { host: 127.0.0.1, port: 0 }\nadmin: { port: 0 }\nforward: { host: 127.0.0.1, port: ${sink.port} }\nworkers: ${topology.workers}\nreceive: { mode: ${topology.receive} }\nblocklist: { prefixes: [legacy.], names: [app.old] }\n`,
    })
    const config = join(dir, 'run.yaml')
    const { child, port, done } = await startCli(t, config)
    const client = await createClient(port)
    t.teardown(() => client.close())

    const datagrams = ['app.a:1|c\nlegacy.x:1|c', 'app.old:2|g', 'app.b:3|ms|#k:v', '_sc|legacy.check|0', 'bad line']
    await client.burst(datagrams)
    const expected = ['app.a:1|c', 'app.b:3|ms|#k:v', '_sc|legacy.check|0']
    await waitFor(
      () => sink.lines().length >= expected.length,
      () => `sink lines ${JSON.stringify(sink.lines())}`,
    )
    // With workers the datagrams are read by whichever worker is free, so their order at the sink is not kept.
    t.same([...sink.lines()].sort(), [...expected].sort())

    t.ok(child.kill('SIGTERM'))
    const r = await done
    t.equal(r.code, 0, 'exit code 0')
    t.equal(r.signal, null)
    t.equal(r.stderr, '')
    const logs = logLines(r.stdout)
    t.match(logs[0], {
      level: 30,
      name: 'statsd-filter-proxy',
      pid: child.pid,
      msg: 'statsd-filter-proxy started',
      config,
      format: 'yaml',
      listen: `127.0.0.1:${port}`,
      forward: `127.0.0.1:${sink.port}`,
      rules: { prefixes: 1, names: 1 },
      maxPacketSize: 8192,
      ...topology.keys,
    })
    t.match(
      logs.find((l) => l.msg === 'shutting down'),
      { level: 30, signal: 'SIGTERM' },
    )
    const last = logs[logs.length - 1]
    t.equal(last.msg, 'statsd-filter-proxy stopped', 'the last line')
    t.same(last.counters, {
      ...NO_COUNTS,
      datagramsIn: datagrams.length,
      bytesIn: datagrams.reduce((n, d) => n + Buffer.byteLength(d), 0),
      linesIn: 6,
      linesForwarded: 3,
      linesBlocked: 2,
      linesMalformed: 1,
      datagramsOut: sink.datagrams.length,
      bytesOut: sink.bytes(),
    })
    const workers = last.workers as { configured: number; running: number; linesIn: number[] }
    t.match(workers, { configured: topology.workers, running: 0 }, 'the stopped line reports the readers of the socket')
    t.equal(workers.linesIn.length, topology.workers, 'one count per reader')
    t.equal(
      workers.linesIn.reduce((n, l) => n + l, 0),
      6,
      "the readers' lines add up to linesIn",
    )
    t.ok(
      logs.some((l) => l.msg === 'malformed line dropped' && l.sample === 'bad line'),
      'the malformed line is logged',
    )
  }),
)

t.test('SIGINT stops it the same way', async (t) => {
  const dir = t.testdir({
    'run.yaml': 'listen: { host: 127.0.0.1, port: 0 }\nadmin: { port: 0 }\nforward: { host: 127.0.0.1, port: 9 }\n',
  })
  const { child, done } = await startCli(t, join(dir, 'run.yaml'))
  child.kill('SIGINT')
  const r = await done
  t.equal(r.code, 0)
  const logs = logLines(r.stdout)
  t.match(
    logs.find((l) => l.msg === 'shutting down'),
    { signal: 'SIGINT' },
  )
  t.match(logs[logs.length - 1], {
    msg: 'statsd-filter-proxy stopped',
    counters: { datagramsIn: 0, linesIn: 0, datagramsOut: 0 },
  })
})

t.test('an uncaught exception exits 1 with its stack, also while the socket is idle', async (t) =>
  eachTopology(t, async (t, topology) => {
    // The exception comes from a preload, on the main thread, on a signal sent once the socket has been idle for
    // a while (it goes idle 10 ms after the start without datagrams): an idle poll(2) on a pool thread once held
    // the exit, and the process hung with its port bound after printing the stack.
    const dir = t.testdir({
      'run.yaml': `listen: { host: 127.0.0.1, port: 0 }\nadmin: { port: 0 }\nforward: { host: 127.0.0.1, port: 9 }\nworkers: ${topology.workers}\nreceive: { mode: ${topology.receive} }\n`,
      'throw.mjs':
        "import { isMainThread } from 'node:worker_threads'\n" +
        "if (isMainThread) process.on('SIGUSR2', () => { throw new Error('planted failure') })\n",
    })
    const { child, done } = await startCli(t, join(dir, 'run.yaml'), [
      '--import',
      pathToFileURL(join(dir, 'throw.mjs')).href,
    ])
    await sleep(500)
    child.kill('SIGUSR2')
    await waitFor(
      () => child.exitCode !== null || child.signalCode !== null,
      () => 'the exit after the exception (the process is still running)',
      30_000,
    )
    const r = await done
    t.equal(r.code, 1)
    t.match(r.stderr, /Error: planted failure/)
  }),
)

t.test('a listen port in use: exit 1 with a fatal log line', async (t) => {
  const taken = await startSink()
  t.teardown(() => taken.close())
  const dir = t.testdir({
    'run.yaml': `listen: { host: 127.0.0.1, port: ${taken.port} }\nadmin: { port: 0 }\nforward: { host: 127.0.0.1, port: 9 }\n`,
  })
  const r = await run(['--config', join(dir, 'run.yaml')])
  t.equal(r.code, 1)
  t.equal(r.stderr, '')
  const logs = logLines(r.stdout)
  t.equal(logs.length, 1)
  t.match(logs[0], { level: 60, msg: 'statsd-filter-proxy could not start', err: { code: 'EADDRINUSE' } })
})
