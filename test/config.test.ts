// Config parsing and validation: every problem located by key path, line and column.
import { chmodSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { DEFAULTS, type Config } from '../src/config/config.ts'
import type { FilterRules, RuleSpec } from '../src/match/rules.ts'
import { ConfigError, formatProblem, type ConfigProblem } from '../src/config/errors.ts'
import { configPath, loadConfig, parseConfig } from '../src/config/load.ts'
import { startProxy, type Proxy } from '../src/proxy.ts'
import { silentLogger } from './fixtures/udp.ts'

const TOP =
  'unknown key (expected one of: listen, forward, mode, blocklist, allowlist, stripTags, limits, cardinality, maxPacketSize, recvBufferSize, sendBufferSize, log, admin, selfMetrics, insights, workers, receive)'
const RUST =
  'unknown key (expected one of: listen_host, listen_port, target_host, target_port, metric_blocklist, multi_thread)'
const LEVELS = 'must be one of fatal, error, warn, info, debug, trace, silent'
const EMPTY_RULE = 'must not be empty (an empty rule would match every metric)'
const HOST = 'must be a non-empty host name or IP address'

/** The problems parseConfig reports for `text`, ordered by position (the order of validation is not a contract). */
function problemsOf(text: string, file = 'filter.yaml'): ConfigProblem[] {
  try {
    parseConfig(file, text)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return [...err.problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0))
  }
  throw new Error(`expected a ConfigError for:\n${text}`)
}

/** Rule entries as the validator returns them for plain strings. */
function specs(...patterns: string[]): RuleSpec[] {
  return patterns.map((pattern) => ({ pattern, dryRun: false }))
}

/** A parsed blocklist: the lists not given are empty. */
function blocks(lists: Partial<Config['blocklist']>): Config['blocklist'] {
  return { prefixes: [], names: [], globs: [], tags: [], ...lists }
}

function defaults(file: string, overrides: Partial<Config> = {}): Config {
  return {
    file,
    format: 'yaml',
    listen: { host: '0.0.0.0', port: 8125 },
    forward: { host: '127.0.0.1', port: 8127 },
    mode: 'enforce',
    blocklist: { prefixes: [], names: [], globs: [], tags: [] },
    allowlist: null,
    stripTags: [],
    limits: { maxNameLength: null, maxTags: null, maxTagLength: null, dryRun: false },
    cardinality: { windowMs: 3_600_000, limits: [] },
    cardinalityView: { trackedNames: 64, windowMs: 600_000 },
    maxPacketSize: null,
    recvBufferSize: 8388608,
    sendBufferSize: null,
    log: { level: 'info' },
    admin: { host: '127.0.0.1', port: 8128 },
    selfMetrics: null,
    insights: true,
    workers: 1,
    receive: { mode: 'batch', maxDelayMs: 5 },
    warnings: [],
    ...overrides,
  }
}

t.test('defaults when keys are absent', async (t) => {
  t.same(parseConfig('empty.yaml', ''), defaults('empty.yaml'), 'empty file')
  t.same(parseConfig('null.yaml', '~\n'), defaults('null.yaml'), 'null document')
  t.same(parseConfig('comments.yaml', '# nothing set\n'), defaults('comments.yaml'), 'only comments')
  t.same(
    parseConfig(
      'partial.yaml',
      'listen: { port: 9125 }\nforward: { host: agent }\nblocklist: { names: [a] }\nlog: {}\n',
    ),
    {
      ...defaults('partial.yaml'),
      listen: { host: '0.0.0.0', port: 9125 },
      forward: { host: 'agent', port: 8127 },
      blocklist: blocks({ prefixes: [], names: specs('a') }),
    },
    'each missing key of a mapping takes its default',
  )
  t.same(
    parseConfig('nulls.yaml', 'listen:\nforward:\nblocklist:\n  prefixes:\nmaxPacketSize: ~\nlog:\n'),
    defaults('nulls.yaml'),
    'null values are absent values',
  )
  t.same(DEFAULTS.listen, { host: '0.0.0.0', port: 8125 })
  t.same(DEFAULTS.forward, { host: '127.0.0.1', port: 8127 })
  t.equal(DEFAULTS.recvBufferSize, 8388608)
})

t.test('every key set', async (t) => {
  const text = [
    'listen: { host: 127.0.0.1, port: 0 }',
    'forward: { host: "::1", port: 65535 }',
    'blocklist:',
    '  prefixes: [a., "b c", é.]',
    '  names:',
    '    - x.y',
    'maxPacketSize: 512',
    'recvBufferSize: 4096',
    'log: { level: silent }',
  ].join('\n')
  t.same(parseConfig('all.yaml', text), {
    ...defaults('all.yaml'),
    listen: { host: '127.0.0.1', port: 0 },
    forward: { host: '::1', port: 65535 },
    blocklist: blocks({ prefixes: specs('a.', 'b c', 'é.'), names: specs('x.y') }),
    maxPacketSize: 512,
    recvBufferSize: 4096,
    log: { level: 'silent' },
  })
  t.equal(
    parseConfig('max.yaml', 'maxPacketSize: 65507\nrecvBufferSize: 2147483647\n').maxPacketSize,
    65507,
    'upper bounds included',
  )
  for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
    t.equal(parseConfig('l.yaml', `log: { level: ${level} }`).log.level, level)
  }
  t.same(
    parseConfig('json.yaml', '{"listen":{"port":1},"blocklist":{"prefixes":["p."]}}'),
    {
      ...defaults('json.yaml'),
      listen: { host: '0.0.0.0', port: 1 },
      blocklist: blocks({ prefixes: specs('p.'), names: [] }),
    },
    'our format written as JSON',
  )
})

t.test('the bundled filter.yaml parses; the values it sets are the defaults', async (t) => {
  const file = fileURLToPath(new URL('../filter.yaml', import.meta.url))
  t.same(loadConfig(file), {
    ...defaults(file),
    blocklist: blocks({
      prefixes: [...specs('legacy.', 'debug.tmp'), { pattern: 'canary.tmp.', dryRun: true }],
      names: specs('app.requests.old'),
    }),
  })
})

t.test('unknown keys are errors, at the key', async (t) => {
  t.same(problemsOf('listen: { host: 127.0.0.1, port: 1 }\nfoward: { port: 2 }\n'), [
    { path: 'foward', line: 2, column: 1, message: TOP },
  ])
  t.same(
    problemsOf('blocklist:\n  prefix:\n    - a.\n'),
    [
      {
        path: 'blocklist.prefix',
        line: 2,
        column: 3,
        message: 'unknown key (expected one of: prefixes, names, globs, tags)',
      },
    ],
    'a typo in a nested key does not silently disable the rules',
  )
  t.same(problemsOf('listen:\n  host: 127.0.0.1\n  prot: 1\nlog: { level: info, format: json }\n'), [
    { path: 'listen.prot', line: 3, column: 3, message: 'unknown key (expected one of: host, port)' },
    { path: 'log.format', line: 4, column: 21, message: 'unknown key (expected one of: level)' },
  ])
})

t.test('wrong types', async (t) => {
  t.same(
    problemsOf('listen:\n  port: "8125"\n'),
    [{ path: 'listen.port', line: 2, column: 9, message: 'must be an integer from 0 to 65535 (got "8125")' }],
    'a port as a string',
  )
  t.same(
    problemsOf('blocklist:\n  prefixes: legacy.\n'),
    [
      {
        path: 'blocklist.prefixes',
        line: 2,
        column: 13,
        message: 'must be a list of strings or { prefix: ..., dryRun: true|false, tag: k:v | k }',
      },
    ],
    'prefixes not a list',
  )
  t.same(
    problemsOf('blocklist:\n  prefixes:\n    - a.\n    - 42\n  names: [x, true]\n'),
    [
      {
        path: 'blocklist.prefixes[1]',
        line: 4,
        column: 7,
        message: 'must be a string or { prefix: ..., dryRun: true|false, tag: k:v | k } (got 42)',
      },
      {
        path: 'blocklist.names[1]',
        line: 5,
        column: 14,
        message: 'must be a string or { name: ..., dryRun: true|false, tag: k:v | k } (got true)',
      },
    ],
    'non-strings inside the lists',
  )
  t.same(problemsOf('listen: 8125\n'), [
    { path: 'listen', line: 1, column: 9, message: 'must be a mapping with the keys host, port' },
  ])
  t.same(problemsOf('blocklist: [a.]\n'), [
    { path: 'blocklist', line: 1, column: 12, message: 'must be a mapping with the keys prefixes, names, globs, tags' },
  ])
  t.same(problemsOf('forward: { host: 12 }\n'), [{ path: 'forward.host', line: 1, column: 18, message: HOST }])
  t.same(problemsOf('maxPacketSize: 1000.5\n'), [
    { path: 'maxPacketSize', line: 1, column: 16, message: 'must be an integer from 512 to 65507 (got 1000.5)' },
  ])
  t.same(
    problemsOf('- a\n- b\n'),
    [
      {
        path: '',
        line: 1,
        column: 1,
        message:
          'must be a mapping with the keys listen, forward, mode, blocklist, allowlist, stripTags, limits, cardinality, maxPacketSize, recvBufferSize, sendBufferSize, log, admin, selfMetrics, insights, workers, receive',
      },
    ],
    'a document that is not a mapping',
  )
})

t.test('ports out of range', async (t) => {
  t.same(problemsOf('listen: { port: -1 }\nforward: { port: 0 }\n'), [
    { path: 'listen.port', line: 1, column: 17, message: 'must be an integer from 0 to 65535 (got -1)' },
    { path: 'forward.port', line: 2, column: 18, message: 'must be an integer from 1 to 65535 (got 0)' },
  ])
  t.same(problemsOf('listen:\n  port: 70000\nforward:\n  port: 65536\n'), [
    { path: 'listen.port', line: 2, column: 9, message: 'must be an integer from 0 to 65535 (got 70000)' },
    { path: 'forward.port', line: 4, column: 9, message: 'must be an integer from 1 to 65535 (got 65536)' },
  ])
  t.equal(parseConfig('p.yaml', 'listen: { port: 0 }').listen.port, 0, 'listen port 0: an ephemeral port')
})

t.test('empty strings', async (t) => {
  t.same(problemsOf('blocklist:\n  prefixes: ["", a.]\n  names:\n    - ""\n'), [
    { path: 'blocklist.prefixes[0]', line: 2, column: 14, message: EMPTY_RULE },
    { path: 'blocklist.names[0]', line: 4, column: 7, message: EMPTY_RULE },
  ])
  t.same(problemsOf('listen: { host: "" }\nforward: { host: "  " }\n'), [
    { path: 'listen.host', line: 1, column: 17, message: HOST },
    { path: 'forward.host', line: 2, column: 18, message: HOST },
  ])
})

t.test('maxPacketSize, recvBufferSize and log level out of range', async (t) => {
  t.same(problemsOf('maxPacketSize: 511\nrecvBufferSize: 4095\n'), [
    { path: 'maxPacketSize', line: 1, column: 16, message: 'must be an integer from 512 to 65507 (got 511)' },
    { path: 'recvBufferSize', line: 2, column: 17, message: 'must be an integer from 4096 to 2147483647 (got 4095)' },
  ])
  t.same(problemsOf('maxPacketSize: 65508\nrecvBufferSize: 2147483648\n'), [
    { path: 'maxPacketSize', line: 1, column: 16, message: 'must be an integer from 512 to 65507 (got 65508)' },
    {
      path: 'recvBufferSize',
      line: 2,
      column: 17,
      message: 'must be an integer from 4096 to 2147483647 (got 2147483648)',
    },
  ])
  t.same(problemsOf('log:\n  level: verbose\n'), [{ path: 'log.level', line: 2, column: 10, message: LEVELS }])
  t.same(
    problemsOf('log: { level: INFO }\n'),
    [{ path: 'log.level', line: 1, column: 15, message: LEVELS }],
    'levels are lower case',
  )
})

t.test('workers: an integer from 1 to 64, or auto', async (t) => {
  t.equal(parseConfig('w.yaml', 'workers: 1\n').workers, 1)
  t.equal(parseConfig('w.yaml', 'workers: 64\n').workers, 64)
  t.equal(parseConfig('w.yaml', 'workers: auto\n').workers, 'auto')
  for (const [bad, got] of [
    ['0', '0'],
    ['65', '65'],
    ['1.5', '1.5'],
    ['"2"', '"2"'],
    ['Auto', '"Auto"'],
    ['true', 'true'],
    ['[2]', '[2]'],
  ]) {
    t.same(
      problemsOf(`workers: ${bad}\n`),
      [{ path: 'workers', line: 1, column: 10, message: `must be auto or an integer from 1 to 64 (got ${got})` }],
      `workers: ${bad}`,
    )
  }
})

t.test('receive: mode batch or dgram, maxDelay a duration from 1ms to 100ms', async (t) => {
  t.same(parseConfig('r.yaml', 'receive: { mode: dgram }\n').receive, { mode: 'dgram', maxDelayMs: 5 })
  t.same(parseConfig('r.yaml', 'receive: { maxDelay: 2.5ms }\n').receive, { mode: 'batch', maxDelayMs: 2.5 })
  t.same(parseConfig('r.yaml', 'receive: { maxDelay: 0.1 }\n').receive, { mode: 'batch', maxDelayMs: 100 })
  t.same(problemsOf('receive: { mode: recvmmsg }\n'), [
    { path: 'receive.mode', line: 1, column: 18, message: 'must be one of batch, dgram' },
  ])
  t.same(problemsOf('receive:\n  maxDelay: 500us\n'), [
    {
      path: 'receive.maxDelay',
      line: 2,
      column: 13,
      message: 'must be a duration from 1ms to 100ms, e.g. 5ms or 2.5ms (got "500us")',
    },
  ])
  t.same(problemsOf('receive: { maxDelay: 101ms }\n')[0].message.slice(0, 36), 'must be a duration from 1ms to 100ms')
  t.same(problemsOf('workers: 2\nreceive: { mode: dgram }\n'), [
    {
      path: 'workers',
      line: 1,
      column: 10,
      message: "must be 1 with receive.mode dgram (Node's dgram socket is read by one thread only)",
    },
  ])
  t.equal(parseConfig('r.yaml', 'workers: auto\nreceive: { mode: dgram }\n').workers, 'auto', 'auto is one reader')
  t.same(problemsOf('receive: { tick: 1ms }\n'), [
    { path: 'receive.tick', line: 1, column: 12, message: 'unknown key (expected one of: mode, maxDelay)' },
  ])
})

t.test('several problems are reported together, each located', async (t) => {
  const text = [
    'listen:', //                 1
    '  port: "x"', //             2
    'forward:', //                3
    '  host: ""', //              4
    '  port: 99999', //           5
    'blocklist:', //              6
    '  prefixes: [""]', //        7
    'log: { level: LOUD }', //    8
    'extra: 1', //                9
  ].join('\n')
  let error: unknown
  try {
    parseConfig('conf/filter.yaml', text)
  } catch (err) {
    error = err
  }
  t.ok(error instanceof ConfigError)
  const e = error as ConfigError
  t.equal(e.name, 'ConfigError')
  t.equal(e.file, 'conf/filter.yaml')
  t.same(problemsOf(text), [
    { path: 'listen.port', line: 2, column: 9, message: 'must be an integer from 0 to 65535 (got "x")' },
    { path: 'forward.host', line: 4, column: 9, message: HOST },
    { path: 'forward.port', line: 5, column: 9, message: 'must be an integer from 1 to 65535 (got 99999)' },
    { path: 'blocklist.prefixes[0]', line: 7, column: 14, message: EMPTY_RULE },
    { path: 'log.level', line: 8, column: 15, message: LEVELS },
    { path: 'extra', line: 9, column: 1, message: TOP },
  ])
  // The message is one `file:line:column: path: message` per problem.
  t.same(
    e.message.split('\n').sort(),
    [
      'conf/filter.yaml:2:9: listen.port: must be an integer from 0 to 65535 (got "x")',
      `conf/filter.yaml:4:9: forward.host: ${HOST}`,
      'conf/filter.yaml:5:9: forward.port: must be an integer from 1 to 65535 (got 99999)',
      `conf/filter.yaml:7:14: blocklist.prefixes[0]: ${EMPTY_RULE}`,
      `conf/filter.yaml:8:15: log.level: ${LEVELS}`,
      `conf/filter.yaml:9:1: extra: ${TOP}`,
    ].sort(),
  )
})

t.test('formatProblem', async (t) => {
  t.equal(formatProblem('f.yaml', { path: 'a.b', line: 3, column: 7, message: 'm' }), 'f.yaml:3:7: a.b: m')
  t.equal(formatProblem('f.yaml', { path: '', line: 3, column: 7, message: 'm' }), 'f.yaml:3:7: m')
  t.equal(formatProblem('f.yaml', { path: '', message: 'm' }), 'f.yaml: m')
  t.equal(formatProblem('f.yaml', { path: 'x', line: 2, message: 'm' }), 'f.yaml:2:1: x: m')
})

t.test('YAML syntax errors', async (t) => {
  t.match(problemsOf('listen:\n  host: [127.0.0.1\n  port: 1\n'), [
    {
      path: '',
      message: 'YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
    },
  ])
  t.match(
    problemsOf('listen: {}\nlisten: {}\n'),
    [{ path: '', message: 'YAML syntax error: Map keys must be unique' }],
    'a duplicate key',
  )
  t.match(problemsOf('{"listen_port": 8125,'), [{ path: '', message: /^YAML syntax error: / }], 'truncated JSON')
})

t.test('YAML syntax errors carry their line and column', async (t) => {
  t.same(
    problemsOf('listen:\n  host: [127.0.0.1\n  port: 1\n'),
    [
      {
        path: '',
        line: 3,
        column: 3,
        message: 'YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]',
      },
    ],
    'an unclosed flow sequence',
  )
  t.same(
    problemsOf('listen: {}\nlisten: {}\n'),
    [{ path: '', line: 2, column: 1, message: 'YAML syntax error: Map keys must be unique' }],
    'a duplicate key, at the second occurrence',
  )
  let message = ''
  try {
    parseConfig('f.yaml', 'listen: {}\nlisten: {}\n')
  } catch (err) {
    message = (err as Error).message
  }
  t.equal(message, 'f.yaml:2:1: YAML syntax error: Map keys must be unique', 'formatted as file:line:column')
})

t.test('loadConfig reads files and names them in errors', async (t) => {
  const dir = t.testdir({
    'good.yaml': 'forward: { port: 9000 }\n',
    'bad.yaml': 'forward: { port: 0 }\n',
    sub: {},
  })
  t.same(loadConfig(join(dir, 'good.yaml')), {
    ...defaults(join(dir, 'good.yaml')),
    forward: { host: '127.0.0.1', port: 9000 },
  })
  t.throws(() => loadConfig(join(dir, 'bad.yaml')), {
    name: 'ConfigError',
    message: `${join(dir, 'bad.yaml')}:1:18: forward.port: must be an integer from 1 to 65535 (got 0)`,
  })
  const missing = join(dir, 'missing.yaml')
  t.throws(() => loadConfig(missing), {
    name: 'ConfigError',
    file: missing,
    message: `${missing}: cannot read the file (ENOENT)`,
    problems: [{ path: '', message: 'cannot read the file (ENOENT)' }],
  })
  t.throws(() => loadConfig(join(dir, 'sub')), { message: `${join(dir, 'sub')}: cannot read the file (EISDIR)` })
})

t.test('an unreadable file', { skip: process.getuid?.() === 0 ? 'root reads any file' : false }, async (t) => {
  const dir = t.testdir({ 'secret.yaml': 'listen: {}\n' })
  const file = join(dir, 'secret.yaml')
  chmodSync(file, 0o000)
  t.teardown(() => chmodSync(file, 0o644))
  t.throws(() => loadConfig(file), { message: `${file}: cannot read the file (EACCES)` })
})

t.test('a rule with a line break is an error: no metric name contains one', async (t) => {
  t.same(problemsOf('blocklist:\n  prefixes: ["a\\nb"]\n  names:\n    - "x\\r"\n'), [
    {
      path: 'blocklist.prefixes[0]',
      line: 2,
      column: 14,
      message: 'must not contain a line break (no metric name does)',
    },
    { path: 'blocklist.names[0]', line: 4, column: 7, message: 'must not contain a line break (no metric name does)' },
  ])
})

t.test('duplicate rules are warnings, located at the repeat', async (t) => {
  const config = parseConfig('d.yaml', 'blocklist:\n  prefixes: [a., b., a.]\n  names:\n    - x\n    - a.\n    - x\n')
  t.same(
    config.blocklist,
    blocks({ prefixes: specs('a.', 'b.', 'a.'), names: specs('x', 'a.', 'x') }),
    'a prefix and a name may share a pattern',
  )
  t.same(config.warnings, [
    { path: 'blocklist.prefixes[2]', line: 2, column: 22, message: 'duplicate of prefixes[0]; ignored' },
    { path: 'blocklist.names[2]', line: 6, column: 7, message: 'duplicate of names[0]; ignored' },
  ])
})

t.test('statsd-filter-proxy-rs JSON config', async (t) => {
  const text =
    '{"listen_host":"0.0.0.0","listen_port":8125,"target_host":"127.0.0.1","target_port":8127,"metric_blocklist":["a.","b."],"multi_thread":true}'
  t.same(
    parseConfig('config.json', text),
    {
      ...defaults('config.json'),
      format: 'rust-json',
      blocklist: blocks({ prefixes: specs('a.', 'b.'), names: [] }),
      workers: 'auto',
    },
    'multi_thread: true (its runtime on every core) is workers: auto',
  )
  t.same(
    parseConfig('c.json', '{"target_port":9999}'),
    {
      ...defaults('c.json'),
      format: 'rust-json',
      forward: { host: '127.0.0.1', port: 9999 },
    },
    'missing keys take the defaults: one worker',
  )
  t.same(parseConfig('c.json', '{"multi_thread":false}').workers, 1, 'multi_thread: false is one worker')

  const unknown = '{"listen_host":"0.0.0.0","listen_port":8125,"metric_blocklist":["a."],"bogus":1}'
  t.same(
    problemsOf(unknown, 'c.json'),
    [{ path: 'bogus', line: 1, column: 71, message: RUST }],
    'unknown keys are errors',
  )
  t.same(
    problemsOf('{"listen_port":8125,"listen":{"port":1}}', 'c.json'),
    [{ path: 'listen', line: 1, column: 21, message: RUST }],
    'mixing both formats is an error',
  )
  t.same(
    problemsOf('listen: { port: 1 }\nmulti_thread: true\n', 'c.yaml'),
    [{ path: 'listen', line: 1, column: 1, message: RUST }],
    'also when written as YAML',
  )
  t.same(
    problemsOf(
      '{\n  "target_port": 70000,\n  "listen_port": "8125",\n  "metric_blocklist": [\n    "a.",\n    1,\n    ""\n  ],\n  "multi_thread": "yes",\n  "target_host": ""\n}\n',
      'c.json',
    ),
    [
      { path: 'target_port', line: 2, column: 18, message: 'must be an integer from 1 to 65535 (got 70000)' },
      { path: 'listen_port', line: 3, column: 18, message: 'must be an integer from 0 to 65535 (got "8125")' },
      { path: 'metric_blocklist[1]', line: 6, column: 5, message: 'must be a string (got 1)' },
      { path: 'metric_blocklist[2]', line: 7, column: 5, message: EMPTY_RULE },
      { path: 'multi_thread', line: 9, column: 19, message: 'must be true or false' },
      { path: 'target_host', line: 10, column: 18, message: HOST },
    ],
    'every problem of the Rust format, located',
  )
  t.same(problemsOf('{"metric_blocklist":"a."}', 'c.json'), [
    { path: 'metric_blocklist', line: 1, column: 21, message: 'must be a list of strings' },
  ])
})

/** The problem of a glob, after `is not a valid glob: `. */
const SEGMENT = 'every segment between dots needs at least one byte'
const NO_KEYS = 'must be a non-empty list of tag keys'
const NOTHING_SELECTED = 'must list at least one prefix, name or glob'
const LIMIT = (got: string): string => `must be an integer from 1 to 65507 (got ${got})`
const AGGREGATE = (suffix: string): string =>
  `ends in ${suffix}, an aggregate the agent computes from a histogram or timer: no line the proxy sees has this name, so the rule never matches (name the metric itself)`
const INTERNAL = (key: string): string =>
  `names ${key}, an instruction to the agent (origin detection, cardinality), not a tag of the series: the agent consumes it before series are counted, so a rule on it saves nothing; keepOnly never removes dd.internal.entity_id, dd.internal.card or dd.internal.jmx_check_name`
const SEPARATORS = 'must not contain "," or "|" (they separate tags and fields) or a line break'
const KEY_ALONE =
  'must be a tag key alone, without ":" (a key ends at the first one), "," or "|" (they separate tags and fields) or a line break'

t.test('tag rules: the example of issue 10 parses to its rules', async (t) => {
  const text = [
    'blocklist:',
    "  prefixes: [legacy., { prefix: http., tag: 'env:staging' }]",
    '  names: [app.requests.old]',
    "  globs: ['*.debug.**', 'tmp.*.count']",
    "  tags: ['env:dev', synthetic]",
    'allowlist:',
    '  prefixes: [app., payments.]',
    '  names: [up]',
    '  globs: []',
    'stripTags:',
    '  - metrics: { prefixes: [api.request.], names: [], globs: [] }',
    '    keys: [user_id, request_id]',
    "  - metrics: { globs: ['payments.**'] }",
    '    keepOnly: [env, service, status]',
    '    dryRun: true',
    'limits:',
    '  maxNameLength: 200',
    '  maxTags: 100',
    '  maxTagLength: 200',
  ].join('\n')
  const rules: FilterRules = {
    blocklist: {
      prefixes: [
        { pattern: 'legacy.', dryRun: false },
        { pattern: 'http.', dryRun: false, tag: 'env:staging' },
      ],
      names: specs('app.requests.old'),
      globs: specs('*.debug.**', 'tmp.*.count'),
      tags: specs('env:dev', 'synthetic'),
    },
    allowlist: { prefixes: ['app.', 'payments.'], names: ['up'], globs: [], dryRun: false },
    stripTags: [
      {
        metrics: { prefixes: ['api.request.'], names: [], globs: [] },
        keys: ['user_id', 'request_id'],
        keepOnly: null,
        dryRun: false,
        types: null,
      },
      {
        metrics: { prefixes: [], names: [], globs: ['payments.**'] },
        keys: null,
        keepOnly: ['env', 'service', 'status'],
        dryRun: true,
        types: null,
      },
    ],
    limits: { maxNameLength: 200, maxTags: 100, maxTagLength: 200, dryRun: false },
    cardinality: { windowMs: 3_600_000, limits: [] },
  }
  t.same(parseConfig('issue.yaml', text), { ...defaults('issue.yaml'), ...rules }, 'no warning: tmp.*.count is not one')

  const options = [
    'blocklist:',
    '  names: [{ name: a.b, tag: k, dryRun: true }]',
    "  globs: [{ glob: 'c.*', tag: 'k:v' }]",
    '  tags: [{ tag: synthetic, dryRun: true }]',
    'allowlist: { globs: [a.**], dryRun: true }',
    'stripTags:',
    '  - metrics: { names: [a.b] }',
    '    keys: [user_id]',
    '    types: [c, d, h, ms, c]',
    'limits: { maxTags: 1, maxTagLength: 65507, dryRun: true }',
  ].join('\n')
  t.same(
    parseConfig('o.yaml', options),
    {
      ...defaults('o.yaml'),
      blocklist: blocks({
        names: [{ pattern: 'a.b', dryRun: true, tag: 'k' }],
        globs: [{ pattern: 'c.*', dryRun: false, tag: 'k:v' }],
        tags: [{ pattern: 'synthetic', dryRun: true }],
      }),
      allowlist: { prefixes: [], names: [], globs: ['a.**'], dryRun: true },
      stripTags: [
        {
          metrics: { prefixes: [], names: ['a.b'], globs: [] },
          keys: ['user_id'],
          keepOnly: null,
          dryRun: false,
          types: ['c', 'd', 'h', 'ms'],
        },
      ],
      limits: { maxNameLength: null, maxTags: 1, maxTagLength: 65507, dryRun: true },
    },
    'rule objects with dryRun and tag conditions, types (each once), limit bounds included, dry-run allowlist and limits',
  )
  t.equal(parseConfig('n.yaml', 'allowlist:\nstripTags:\nlimits:\n').allowlist, null, 'a null allowlist is none')
})

t.test('tag rules: unknown keys inside the new sections, at the key', async (t) => {
  const text = [
    'blocklist:', //                                   1
    '  glob: [a.*]', //                                 2
    '  prefixes:', //                                   3
    '    - { prefix: a., tags: x }', //                 4
    '  tags:', //                                       5
    '    - { tag: x, dryRun: true, prefix: y }', //     6
    'allowlist:', //                                    7
    '  prefixes: [app.]', //                            8
    '  dryrun: true', //                                9
    'stripTags:', //                                   10
    '  - metrics:', //                                 11
    '      prefixes: [api.]', //                       12
    '      name: [x]', //                              13
    '    keys: [user_id]', //                          14
    '    type: [c]', //                                15
    'limits:', //                                      16
    '  maxTagsPerLine: 10', //                         17
  ].join('\n')
  t.same(problemsOf(text), [
    {
      path: 'blocklist.glob',
      line: 2,
      column: 3,
      message: 'unknown key (expected one of: prefixes, names, globs, tags)',
    },
    {
      path: 'blocklist.prefixes[0].tags',
      line: 4,
      column: 21,
      message: 'unknown key (expected one of: prefix, dryRun, tag)',
    },
    { path: 'blocklist.tags[0].prefix', line: 6, column: 31, message: 'unknown key (expected one of: tag, dryRun)' },
    {
      path: 'allowlist.dryrun',
      line: 9,
      column: 3,
      message: 'unknown key (expected one of: prefixes, names, globs, dryRun)',
    },
    {
      path: 'stripTags[0].metrics.name',
      line: 13,
      column: 7,
      message: 'unknown key (expected one of: prefixes, names, globs)',
    },
    {
      path: 'stripTags[0].type',
      line: 15,
      column: 5,
      message: 'unknown key (expected one of: metrics, keys, keepOnly, dryRun, types)',
    },
    {
      path: 'limits.maxTagsPerLine',
      line: 17,
      column: 3,
      message: 'unknown key (expected one of: maxNameLength, maxTags, maxTagLength, dryRun)',
    },
  ])
})

t.test('tag rules: keys or keepOnly, and selectors that select something', async (t) => {
  const text = [
    'stripTags:', //                                             1
    '  - metrics: { names: [a] }', //                            2
    '    keys: [x]', //                                          3
    '    keepOnly: [y]', //                                      4
    '  - metrics: { names: [a] }', //                            5
    '    dryRun: true', //                                       6
    '  - metrics: {}', //                                        7
    '    keys: [x]', //                                          8
    '  - metrics: { prefixes: [], names: [], globs: [] }', //    9
    '    keys: [x]', //                                         10
    '  - keys: [x]', //                                         11
    '  - metrics: api.', //                                     12
    '    keys: [x]', //                                         13
    '  - [metrics]', //                                         14
  ].join('\n')
  t.same(problemsOf(text), [
    {
      path: 'stripTags[0]',
      line: 2,
      column: 5,
      message: 'has both keys and keepOnly: give one (keys removes the listed keys, keepOnly every other key)',
    },
    {
      path: 'stripTags[1]',
      line: 5,
      column: 5,
      message: 'needs keys (keys to remove) or keepOnly (keys to keep)',
    },
    { path: 'stripTags[2].metrics', line: 7, column: 14, message: NOTHING_SELECTED },
    { path: 'stripTags[3].metrics', line: 9, column: 14, message: NOTHING_SELECTED },
    { path: 'stripTags[4]', line: 11, column: 5, message: 'needs the key metrics (which metric names)' },
    {
      path: 'stripTags[5].metrics',
      line: 12,
      column: 14,
      message: 'must be a mapping with the keys prefixes, names, globs',
    },
    {
      path: 'stripTags[6]',
      line: 14,
      column: 5,
      message: 'must be a mapping with the keys metrics, keys, keepOnly, dryRun, types',
    },
  ])
  t.same(problemsOf('stripTags: { metrics: { names: [a] }, keys: [x] }\n'), [
    {
      path: 'stripTags',
      line: 1,
      column: 12,
      message: 'must be a list of rules { metrics, keys | keepOnly, dryRun, types }',
    },
  ])
  t.throws(
    () => parseConfig('conf/f.yaml', 'stripTags:\n  - metrics: { globs: [a.*] }\n    keys: [x]\n    keepOnly: [y]\n'),
    {
      name: 'ConfigError',
      message:
        'conf/f.yaml:2:5: stripTags[0]: has both keys and keepOnly: give one (keys removes the listed keys, keepOnly every other key)',
    },
    'formatted file:line:column: path: message',
  )

  t.same(problemsOf('allowlist: {}\n'), [{ path: 'allowlist', line: 1, column: 12, message: NOTHING_SELECTED }])
  t.same(
    problemsOf('allowlist:\n  prefixes: []\n  names: []\n  dryRun: true\n'),
    [{ path: 'allowlist', line: 2, column: 3, message: NOTHING_SELECTED }],
    'an empty allowlist would drop every metric line',
  )
  t.same(
    problemsOf('allowlist: [app.]\n'),
    [
      {
        path: 'allowlist',
        line: 1,
        column: 12,
        message: 'must be a mapping with the keys prefixes, names, globs, dryRun',
      },
    ],
    'not a mapping: one problem',
  )
  t.same(
    problemsOf('allowlist: { prefixes: [""], names: x }\n'),
    [
      { path: 'allowlist.prefixes[0]', line: 1, column: 25, message: EMPTY_RULE },
      { path: 'allowlist.names', line: 1, column: 37, message: 'must be a list of strings' },
    ],
    'entries given, each invalid: their problems, not that the allowlist lists nothing',
  )
})

t.test('tag rules: invalid globs, wherever a glob goes', async (t) => {
  const text = [
    'blocklist:', //                                 1
    '  globs:', //                                   2
    '    - a..b', //                                 3
    '    - .a', //                                   4
    '    - a.', //                                   5
    "    - '***'", //                                6
    "    - ''", //                                   7
    '    - { glob: "*.x..y", tag: k }', //           8
    "    - 'a.****.b'", //                           9
    'allowlist:', //                                10
    "  globs: ['**.', a.b]", //                     11
    'stripTags:', //                                12
    "  - metrics: { globs: ['', '.**'] }", //       13
    '    keys: [x]', //                             14
  ].join('\n')
  t.same(problemsOf(text), [
    {
      path: 'blocklist.globs[0]',
      line: 3,
      column: 7,
      message: `is not a valid glob: must not contain ".." (${SEGMENT})`,
    },
    {
      path: 'blocklist.globs[1]',
      line: 4,
      column: 7,
      message: `is not a valid glob: must not start with "." (${SEGMENT})`,
    },
    {
      path: 'blocklist.globs[2]',
      line: 5,
      column: 7,
      message: `is not a valid glob: must not end with "." (${SEGMENT})`,
    },
    {
      path: 'blocklist.globs[3]',
      line: 6,
      column: 7,
      message: 'is not a valid glob: must not have three or more * in a row (* is one segment, ** any bytes)',
    },
    { path: 'blocklist.globs[4]', line: 7, column: 7, message: EMPTY_RULE },
    {
      path: 'blocklist.globs[5].glob',
      line: 8,
      column: 15,
      message: `is not a valid glob: must not contain ".." (${SEGMENT})`,
    },
    {
      path: 'blocklist.globs[6]',
      line: 9,
      column: 7,
      message: 'is not a valid glob: must not have three or more * in a row (* is one segment, ** any bytes)',
    },
    {
      path: 'allowlist.globs[0]',
      line: 11,
      column: 11,
      message: `is not a valid glob: must not end with "." (${SEGMENT})`,
    },
    { path: 'stripTags[0].metrics.globs[0]', line: 13, column: 24, message: EMPTY_RULE },
    {
      path: 'stripTags[0].metrics.globs[1]',
      line: 13,
      column: 28,
      message: `is not a valid glob: must not start with "." (${SEGMENT})`,
    },
  ])
})

t.test('tag rules: tags, tag conditions, strip keys, types and limits', async (t) => {
  const text = [
    'blocklist:', //                                         1
    '  prefixes:', //                                        2
    "    - { prefix: http., tag: ':x' }", //                 3
    "    - { prefix: http., tag: '' }", //                   4
    '  names:', //                                           5
    "    - { name: a.b, tag: 'env:dev,env:prod' }", //       6
    '  globs:', //                                           7
    "    - { glob: a.*, tag: 'env|dev' }", //                8
    "  tags: [':dev', '', 'a,b', 'k|v']", //                 9
    'stripTags:', //                                        10
    '  - metrics: { names: [a] }', //                       11
    "    keys: ['user:id', 'a,b', '']", //                  12
    '  - metrics: { names: [a] }', //                       13
    '    keepOnly: []', //                                  14
    '  - metrics: { names: [a] }', //                       15
    '    keys: [a]', //                                     16
    '    types: [x, c, C]', //                              17
    '  - metrics: { names: [a] }', //                       18
    '    keys: [a]', //                                     19
    '    types: []', //                                     20
  ].join('\n')
  const emptyKey = 'must not have an empty key (nothing before the first :)'
  t.same(problemsOf(text), [
    { path: 'blocklist.prefixes[0].tag', line: 3, column: 29, message: emptyKey },
    {
      path: 'blocklist.prefixes[1].tag',
      line: 4,
      column: 29,
      message: 'must be a tag (key:value) or a key (got "")',
    },
    { path: 'blocklist.names[0].tag', line: 6, column: 25, message: SEPARATORS },
    { path: 'blocklist.globs[0].tag', line: 8, column: 25, message: SEPARATORS },
    { path: 'blocklist.tags[0]', line: 9, column: 10, message: emptyKey },
    { path: 'blocklist.tags[1]', line: 9, column: 18, message: 'must be a tag (key:value) or a key (got "")' },
    { path: 'blocklist.tags[2]', line: 9, column: 22, message: SEPARATORS },
    { path: 'blocklist.tags[3]', line: 9, column: 29, message: SEPARATORS },
    { path: 'stripTags[0].keys[0]', line: 12, column: 12, message: KEY_ALONE },
    { path: 'stripTags[0].keys[1]', line: 12, column: 23, message: KEY_ALONE },
    { path: 'stripTags[0].keys[2]', line: 12, column: 30, message: 'must be a non-empty tag key (got "")' },
    { path: 'stripTags[1].keepOnly', line: 14, column: 15, message: NO_KEYS },
    { path: 'stripTags[2].types[0]', line: 17, column: 13, message: 'must be one of c, g, ms, h, s, d (got "x")' },
    { path: 'stripTags[2].types[2]', line: 17, column: 19, message: 'must be one of c, g, ms, h, s, d (got "C")' },
    {
      path: 'stripTags[3].types',
      line: 20,
      column: 12,
      message: 'must be a non-empty list of metric types (c, g, ms, h, s, d)',
    },
  ])
  t.same(problemsOf('stripTags:\n  - metrics: { names: [a] }\n    keys: []\n'), [
    { path: 'stripTags[0].keys', line: 3, column: 11, message: NO_KEYS },
  ])
  t.same(problemsOf('blocklist:\n  tags: [{ tag: 42 }]\n'), [
    { path: 'blocklist.tags[0].tag', line: 2, column: 17, message: 'must be a tag (key:value) or a key (got 42)' },
  ])

  const limits = [
    'limits:', //                  1
    '  maxNameLength: 0', //       2
    '  maxTags: 2.5', //           3
    '  maxTagLength: "200"', //    4
    '  dryRun: 1', //              5
  ].join('\n')
  t.same(problemsOf(limits), [
    { path: 'limits.maxNameLength', line: 2, column: 18, message: LIMIT('0') },
    { path: 'limits.maxTags', line: 3, column: 12, message: LIMIT('2.5') },
    { path: 'limits.maxTagLength', line: 4, column: 17, message: LIMIT('"200"') },
    { path: 'limits.dryRun', line: 5, column: 11, message: 'must be true or false' },
  ])
  t.same(problemsOf('limits: { maxTags: 65508, maxTagLength: -1 }\n'), [
    { path: 'limits.maxTags', line: 1, column: 20, message: LIMIT('65508') },
    { path: 'limits.maxTagLength', line: 1, column: 41, message: LIMIT('-1') },
  ])
  t.same(problemsOf('limits: 200\n'), [
    {
      path: 'limits',
      line: 1,
      column: 9,
      message: 'must be a mapping with the keys maxNameLength, maxTags, maxTagLength, dryRun',
    },
  ])
})

t.test('tag rules: warnings for names the agent makes, located; the config still loads', async (t) => {
  const text = [
    'blocklist:', //                                                                          1
    '  names: [a.avg, a.max, a.median, a.95percentile, a.count, a.maximum]', //                2
    '  prefixes: [a.avg, { prefix: b.max, dryRun: true }]', //                                  3
    "  globs: ['*.avg', { glob: 'b.**.max', tag: k }, '*.count', 'x.*']", //                   4
    'allowlist:', //                                                                          5
    '  names: [up.median]', //                                                                6
    '  prefixes: [up.avg]', //                                                                7
    'stripTags:', //                                                                          8
    '  - metrics: { names: [c.95percentile], prefixes: [c.max], globs: ["**.avg"] }', //       9
    '    keys: [a]', //                                                                      10
  ].join('\n')
  const config = parseConfig('w.yaml', text)
  t.same(config.warnings, [
    { path: 'blocklist.names[0]', line: 2, column: 11, message: AGGREGATE('.avg') },
    { path: 'blocklist.names[1]', line: 2, column: 18, message: AGGREGATE('.max') },
    { path: 'blocklist.names[2]', line: 2, column: 25, message: AGGREGATE('.median') },
    { path: 'blocklist.names[3]', line: 2, column: 35, message: AGGREGATE('.95percentile') },
    { path: 'blocklist.globs[0]', line: 4, column: 11, message: AGGREGATE('.avg') },
    { path: 'blocklist.globs[1].glob', line: 4, column: 28, message: AGGREGATE('.max') },
    { path: 'allowlist.names[0]', line: 6, column: 11, message: AGGREGATE('.median') },
    { path: 'stripTags[0].metrics.names[0]', line: 9, column: 24, message: AGGREGATE('.95percentile') },
    { path: 'stripTags[0].metrics.globs[0]', line: 9, column: 68, message: AGGREGATE('.avg') },
  ])
  t.same(
    config.blocklist.names,
    specs('a.avg', 'a.max', 'a.median', 'a.95percentile', 'a.count', 'a.maximum'),
    'the rules stay',
  )
  t.same(
    parseConfig('c.yaml', "blocklist:\n  names: [a.count, a.p95]\n  globs: ['*.count']\n  prefixes: [a.avg]\n")
      .warnings,
    [],
    'no warning for .count, nor for a prefix (a.avg. is a real prefix)',
  )
})

t.test('tag rules: warnings for dd.internal. keys, located', async (t) => {
  const text = [
    'blocklist:', //                                                                1
    "  tags: [dd.internal.card, 'dd.internal.entity_id:abc', dd.internalx]", //      2
    "  prefixes: [{ prefix: app., tag: 'dd.internal.card:high' }]", //               3
    'stripTags:', //                                                                4
    '  - metrics: { prefixes: [app.] }', //                                         5
    '    keys: [dd.internal.entity_id, user_id]', //                                6
    '  - metrics: { prefixes: [app.] }', //                                         7
    '    keepOnly: [env, dd.internal.jmx_check_name]', //                           8
  ].join('\n')
  t.same(parseConfig('i.yaml', text).warnings, [
    { path: 'blocklist.tags[0]', line: 2, column: 10, message: INTERNAL('dd.internal.card') },
    { path: 'blocklist.tags[1]', line: 2, column: 28, message: INTERNAL('dd.internal.entity_id') },
    { path: 'blocklist.prefixes[0].tag', line: 3, column: 35, message: INTERNAL('dd.internal.card') },
    { path: 'stripTags[0].keys[0]', line: 6, column: 12, message: INTERNAL('dd.internal.entity_id') },
    { path: 'stripTags[1].keepOnly[1]', line: 8, column: 21, message: INTERNAL('dd.internal.jmx_check_name') },
  ])
  t.same(
    parseConfig(
      'v.yaml',
      "blocklist:\n  tags: ['env:dd.internal.card', host]\n  prefixes: [{ prefix: a., tag: 'x:dd.internal.card' }]\n",
    ).warnings,
    [],
    'dd.internal. in a value, and host, are no instruction keys',
  )
})

t.test('tag rules: a duplicate is the same pattern with the same tag condition', async (t) => {
  const text = [
    'blocklist:', //                                                1
    '  prefixes:', //                                               2
    "    - { prefix: http., tag: 'env:dev' }", //                   3
    "    - { prefix: http., tag: 'env:prod' }", //                  4
    '    - http.', //                                               5
    "    - { prefix: http., tag: 'env:dev', dryRun: true }", //     6
    '    - http.', //                                               7
    '  globs:', //                                                  8
    "    - { glob: 'a.*', tag: k }", //                             9
    "    - { glob: 'a.*', tag: 'k:v' }", //                        10
    "    - { glob: 'a.*', tag: k }", //                            11
    '  names: [a.*]', //                                           12
    '  tags: [k, "k:v", { tag: k, dryRun: true }]', //             13
  ].join('\n')
  const config = parseConfig('d.yaml', text)
  t.same(config.warnings, [
    { path: 'blocklist.prefixes[3].prefix', line: 6, column: 17, message: 'duplicate of prefixes[0]; ignored' },
    { path: 'blocklist.prefixes[4]', line: 7, column: 7, message: 'duplicate of prefixes[2]; ignored' },
    { path: 'blocklist.globs[2].glob', line: 11, column: 15, message: 'duplicate of globs[0]; ignored' },
    { path: 'blocklist.tags[2].tag', line: 13, column: 27, message: 'duplicate of tags[0]; ignored' },
  ])
  t.equal(config.blocklist.prefixes.length, 5, 'the config still loads')
})

t.test('tag rules: the Rust JSON config has none and takes none', async (t) => {
  const config = parseConfig('config.json', '{"listen_port":8125,"metric_blocklist":["a.avg","b."]}')
  t.same(
    {
      blocklist: config.blocklist,
      allowlist: config.allowlist,
      stripTags: config.stripTags,
      limits: config.limits,
      cardinality: config.cardinality,
    } satisfies FilterRules,
    {
      blocklist: blocks({ prefixes: specs('a.avg', 'b.') }),
      allowlist: null,
      stripTags: [],
      limits: { maxNameLength: null, maxTags: null, maxTagLength: null, dryRun: false },
      cardinality: { windowMs: 3_600_000, limits: [] },
    },
  )
  t.same(config.warnings, [], 'its entries are prefixes: no aggregate warning')
  t.same(problemsOf('{"listen_port":8125,"stripTags":[]}', 'c.json'), [
    { path: 'stripTags', line: 1, column: 21, message: RUST },
  ])
  t.same(problemsOf('{"metric_blocklist":[{"prefix":"a.","tag":"k"}]}', 'c.json'), [
    { path: 'metric_blocklist[0]', line: 1, column: 22, message: 'must be a string (got {"prefix":"a.","tag":"k"})' },
  ])
})

t.test('configPath precedence: flag, FILTER_CONFIG, PROXY_CONFIG_FILE, ./filter.yaml', async (t) => {
  const env = { FILTER_CONFIG: 'env-filter.yaml', PROXY_CONFIG_FILE: 'rust.json' }
  t.equal(configPath('flag.yaml', env), 'flag.yaml')
  t.equal(configPath(undefined, env), 'env-filter.yaml')
  t.equal(configPath(undefined, { PROXY_CONFIG_FILE: 'rust.json' }), 'rust.json')
  t.equal(configPath(undefined, {}), 'filter.yaml')
  t.equal(
    configPath('', { FILTER_CONFIG: '', PROXY_CONFIG_FILE: 'rust.json' }),
    'rust.json',
    'empty values count as unset',
  )
  t.equal(configPath(undefined, { FILTER_CONFIG: '', PROXY_CONFIG_FILE: '' }), 'filter.yaml')
})

t.test('maxPacketSize: 8192 by default for a loopback target, the configured value otherwise', async (t) => {
  const base = { listen: { host: '127.0.0.1', port: 0 }, log: { level: 'silent' }, admin: { enabled: false } }
  const loopback = await startProxy(
    parseConfig('t.yaml', JSON.stringify({ ...base, forward: { host: '127.0.0.1', port: 9 } })),
    silentLogger(),
  )
  t.teardown(() => loopback.close())
  t.equal(loopback.maxPacketSize, 8192)
  const other127 = await startProxy(
    parseConfig('t.yaml', JSON.stringify({ ...base, forward: { host: '127.0.0.2', port: 9 } })),
    silentLogger(),
  )
  t.teardown(() => other127.close())
  t.equal(other127.maxPacketSize, 8192, 'all of 127.0.0.0/8 is loopback')
  const set = await startProxy(
    parseConfig('t.yaml', JSON.stringify({ ...base, forward: { host: '127.0.0.1', port: 9 }, maxPacketSize: 1400 })),
    silentLogger(),
  )
  t.teardown(() => set.close())
  t.equal(set.maxPacketSize, 1400)
})

t.test('maxPacketSize: 1432 by default for a non-loopback target', async (t) => {
  // Connecting a UDP socket sends nothing; nothing is sent through this proxy. TEST-NET-1 is never routed.
  const config = parseConfig(
    't.yaml',
    JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      forward: { host: '192.0.2.1', port: 8127 },
      log: { level: 'silent' },
      admin: { enabled: false },
    }),
  )
  let proxy: Proxy
  try {
    proxy = await startProxy(config, silentLogger())
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENETUNREACH' || code === 'EHOSTUNREACH') return t.plan(0, `no route to 192.0.2.1 here (${code})`)
    throw err
  }
  t.teardown(() => proxy.close())
  t.equal(proxy.maxPacketSize, 1432)
  t.equal((await proxy.counters()).datagramsOut, 0)
})

t.test('cardinality: limits and the view, every default filled in', async (t) => {
  const text = [
    'cardinality:',
    '  window: 30m',
    '  view: { names: 10, window: 5m }',
    '  limits:',
    '    - metrics: { prefixes: [api.], globs: ["jobs.*"] }',
    '      maxValuesPerTag: 100',
    '      exempt: [env, service, host]',
    '      over: dropTag',
    '      dryRun: true',
    '      maxKeys: 500',
    '    - metrics: { names: [up] }',
    '      maxValuesPerTag: 5',
  ].join('\n')
  const config = parseConfig('c.yaml', text)
  t.same(config.cardinality, {
    windowMs: 1_800_000,
    limits: [
      {
        metrics: { prefixes: ['api.'], names: [], globs: ['jobs.*'] },
        maxValuesPerTag: 100,
        exempt: ['env', 'service', 'host'],
        over: 'dropTag',
        dryRun: true,
        maxKeys: 500,
      },
      {
        metrics: { prefixes: [], names: ['up'], globs: [] },
        maxValuesPerTag: 5,
        exempt: [],
        over: 'overflow',
        dryRun: false,
        maxKeys: 1000,
      },
    ],
  })
  t.same(config.cardinalityView, { trackedNames: 10, windowMs: 300_000 })
  t.equal(parseConfig('off.yaml', 'cardinality: { view: { enabled: false } }').cardinalityView, null, 'view off')
  t.same(parseConfig('h.yaml', 'cardinality: { window: 2h }').cardinality, { windowMs: 7_200_000, limits: [] })
})

t.test('cardinality: a bad section fails with the file, line, column and reason', async (t) => {
  const text = [
    'cardinality:', //                                   1
    '  window: 5s', //                                   2
    '  view: { names: 0, window: 10s, colour: red }', // 3
    '  limits:', //                                      4
    '    - metrics: { prefixes: [] }', //                5
    '      maxValuesPerTag: 0', //                       6
    '      exempt: [user:id]', //                        7
    '      over: drop', //                               8
    '      maxKey: 5', //                                9
    '    - maxValuesPerTag: 3', //                       10
    '    - metrics: { names: [a] }', //                  11
    '    - 7', //                                        12
  ].join('\n')
  t.same(problemsOf(text), [
    {
      path: 'cardinality.window',
      line: 2,
      column: 11,
      message: 'must be a duration from 10s to 24h, e.g. 10s, 1m or 1500ms (got "5s")',
    },
    {
      path: 'cardinality.view.names',
      line: 3,
      column: 18,
      message: 'must be an integer from 1 to 1000 (got 0)',
    },
    {
      path: 'cardinality.view.window',
      line: 3,
      column: 29,
      message: 'must be a duration from 1m to 24h, e.g. 10s, 1m or 1500ms (got "10s")',
    },
    {
      path: 'cardinality.view.colour',
      line: 3,
      column: 34,
      message: 'unknown key (expected one of: enabled, names, window)',
    },
    {
      path: 'cardinality.limits[0].metrics',
      line: 5,
      column: 16,
      message: 'must list at least one prefix, name or glob',
    },
    {
      path: 'cardinality.limits[0].maxValuesPerTag',
      line: 6,
      column: 24,
      message: 'must be an integer from 1 to 100000 (got 0)',
    },
    {
      path: 'cardinality.limits[0].exempt[0]',
      line: 7,
      column: 16,
      message:
        'must be a tag key alone, without ":" (a key ends at the first one), "," or "|" (they separate tags and fields) or a line break',
    },
    {
      path: 'cardinality.limits[0].over',
      line: 8,
      column: 13,
      message: 'must be one of overflow, dropTag, dropLine',
    },
    {
      path: 'cardinality.limits[0].maxKey',
      line: 9,
      column: 7,
      message: 'unknown key (expected one of: metrics, maxValuesPerTag, exempt, over, dryRun, maxKeys)',
    },
    { path: 'cardinality.limits[1]', line: 10, column: 7, message: 'needs the key metrics (which metric names)' },
    {
      path: 'cardinality.limits[2]',
      line: 11,
      column: 7,
      message: 'needs the key maxValuesPerTag (distinct values per tag key)',
    },
    {
      path: 'cardinality.limits[3]',
      line: 12,
      column: 7,
      message: 'must be a mapping with the keys metrics, maxValuesPerTag, exempt, over, dryRun, maxKeys',
    },
  ])
})
