// The rule lists read line by line (src/config/rule-lines.ts) against YAML reading the whole file: parseConfig
// must give the same config, or throw the same ConfigError, for every text.
import { deepStrictEqual } from 'node:assert'
import fc from 'fast-check'
import t from 'tap'
import type { Config } from '../src/config/config.ts'
import { ConfigError } from '../src/config/errors.ts'
import { parseConfig, parseConfigTraced, parseWithYaml, type ParsedBy } from '../src/config/load.ts'

/** What a parse gives: the config, or the error as a caller sees it. */
function outcome(parse: () => Config): unknown {
  try {
    return { config: parse() }
  } catch (err) {
    return err instanceof ConfigError ? { message: err.message, problems: err.problems } : { thrown: String(err) }
  }
}

/** The way parseConfig went for `text` (`failed` if it threw), after checking it gave what YAML alone gives. */
function parsedBy(text: string): ParsedBy | 'failed' {
  deepStrictEqual(
    outcome(() => parseConfig('f.yaml', text)),
    outcome(() => parseWithYaml('f.yaml', text)),
    JSON.stringify(text),
  )
  try {
    return parseConfigTraced('f.yaml', text).parsedBy
  } catch {
    return 'failed'
  }
}

const listFile = (items: string[], key = 'prefixes'): string =>
  `blocklist:\n  ${key}:\n${items.map((i) => `    - ${i}\n`).join('')}`

// Names the line reader takes as they are, ASCII and not.
const plainName = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[a-z][a-z0-9_.-]{0,10}$/) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('é.', 'métrique.débit', '日本.メトリクス', 'emoji😀.x', 'a b', 'a  b.c', 'x-y_z.'),
  },
)
const simpleItem = fc.oneof(
  { weight: 4, arbitrary: plainName },
  { weight: 1, arbitrary: plainName.map((n) => `"${n}"`) },
  { weight: 1, arbitrary: plainName.map((n) => `'${n}'`) },
  { weight: 1, arbitrary: fc.constantFrom('"123"', "'true'", '" padded "', '"a:b"', "'#x'", '"{ prefix: x }"') },
)
// Items the line reader must leave to YAML, valid and not.
const otherItem = fc.constantFrom(
  '{ prefix: foo., dryRun: true }',
  '{ name: x, dryRun: false }',
  '{ prefix: p }',
  '{ dryRun: true }',
  '123',
  '-1',
  '+1',
  '1e3',
  '0x1F',
  '0o17',
  '1.5',
  '.5',
  '.inf',
  '-.Inf',
  '.nan',
  'true',
  'False',
  'TRUE',
  'null',
  'Null',
  'NULL',
  '~',
  '',
  '""',
  "''",
  '"a\\tb"',
  '"a\\nb"',
  '"\\u00e9"',
  "'it''s'",
  '"say ""hi"""',
  'a # comment',
  'a#b',
  '#x',
  'a: b',
  'a:',
  'a:b',
  'http://x',
  '&x a',
  '*x',
  '&y b',
  '!!str a',
  '!!int 1',
  '!custom a',
  '|',
  '>',
  '|-',
  '- nested',
  '-',
  '-x',
  '? k',
  '[a, b]',
  '[]',
  '{}',
  '@x',
  '`x',
  '%x',
  'a,b',
  ',x',
  'x[1]',
  'x{y}',
  'a\tb',
  'tab\t',
  '\ttab',
  '"unterminated',
  "'unterminated",
  '"a" b',
  "'a' b",
  '"a" # c',
  'a\u00A0',
  '\u00A0a',
  'a\u2028b',
  'a\u0085b',
  'a\uFEFFb',
  'a\u0000b',
  'a\u007Fb',
  'a\uD800b',
  'a\rb',
  'ok\\x',
)

/** What a generated file is made of: only what the line reader takes, or also what it must leave to YAML. */
interface Palette {
  item: fc.Arbitrary<string>
  keySuffixes: string[]
  trailing: string[]
  /** Lines that may come between items indented by `indent`. */
  between: (indent: number) => string[]
  before: string[]
  after: string[]
}

const clean: Palette = {
  item: simpleItem,
  keySuffixes: ['', '  '],
  trailing: ['', '', ' ', '   '],
  between: () => ['', '   '],
  before: [
    '# filter',
    'listen: { host: 127.0.0.1, port: 8125 }',
    'forward:\n  host: agent\n  port: 8127',
    'mode: dry-run',
  ],
  after: ['log: { level: info }', 'insights: false', 'admin:\n  enabled: false'],
}

const noisy: Palette = {
  item: fc.oneof({ weight: 6, arbitrary: simpleItem }, { weight: 1, arbitrary: otherItem }),
  keySuffixes: [...clean.keySuffixes, ' # rules', ' &list', ' !!seq'],
  trailing: [...clean.trailing, '\t'],
  between: (indent) => {
    const pad = ' '.repeat(indent)
    return [
      ...clean.between(indent),
      '# comment',
      `${pad}# comment`,
      `${pad}  continued`,
      `${pad} - deeper`,
      `${pad.slice(1)}- shallower`,
      '\t',
      `${pad}-\tx`,
      `${pad}  - nested`,
      '---',
      '...',
      `${pad}key: value`,
    ]
  },
  before: [...clean.before, '---', '%YAML 1.2\n---'],
  after: [...clean.after, 'bogus: 1', 'blocklist: {}', '...', '# end'],
}

/** The lines of one rule list, under a key indented by `keyIndent`. */
const ruleList = (key: string, keyIndent: number, palette: Palette): fc.Arbitrary<string[]> =>
  fc
    .record({
      itemIndent: fc.constantFrom(0, 1, 2, 2, 2, 4),
      keySuffix: fc.constantFrom(...palette.keySuffixes),
      items: fc.array(
        fc.record({
          item: palette.item,
          gap: fc.constantFrom('', '', '', '  '),
          trailing: fc.constantFrom(...palette.trailing),
          lineBefore: fc.option(fc.nat(), { freq: 8 }),
        }),
        { maxLength: 12 },
      ),
    })
    .map(({ itemIndent, keySuffix, items }) => {
      const indent = keyIndent + itemIndent
      const between = palette.between(indent)
      const lines = [`${' '.repeat(keyIndent)}${key}:${keySuffix}`]
      for (const it of items) {
        if (it.lineBefore !== null) lines.push(between[it.lineBefore % between.length])
        lines.push(
          `${' '.repeat(indent)}-${it.item === '' && it.gap === '' ? '' : ` ${it.gap}`}${it.item}${it.trailing}`,
        )
      }
      return lines
    })

/** A whole file: settings around a blocklist with one or both lists, in either order, either line ending. */
const configText = fc
  .record({
    palette: fc.constantFrom(clean, noisy),
    keyIndent: fc.constantFrom(1, 2, 2, 2, 4),
    prefixes: fc.option(fc.constant('prefixes'), { freq: 8 }),
    names: fc.option(fc.constant('names'), { freq: 4 }),
    namesFirst: fc.boolean(),
    crlf: fc.boolean(),
    finalNewline: fc.boolean(),
  })
  .chain((shape) => {
    const keys = [shape.prefixes, shape.names].flatMap((k) => (k === null ? [] : [k]))
    if (shape.namesFirst) keys.reverse()
    return fc
      .tuple(
        fc.subarray(shape.palette.before),
        fc.tuple(...keys.map((k) => ruleList(k, shape.keyIndent, shape.palette))),
        fc.subarray(shape.palette.after),
      )
      .map(([before, lists, after]) => {
        const text = [...before, 'blocklist:', ...lists.flat(), ...after].join('\n') + (shape.finalNewline ? '\n' : '')
        return shape.crlf ? text.replace(/\n/g, '\r\n') : text
      })
  })

t.test(
  'parseConfig gives what YAML alone gives, for files mixing what the line reader takes and what it leaves',
  async (t) => {
    const ways: Record<ParsedBy | 'failed', number> = { 'rule-lines': 0, yaml: 0, failed: 0 }
    fc.assert(
      fc.property(configText, (text) => {
        ways[parsedBy(text)]++
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 3000) },
    )
    t.ok(ways['rule-lines'] > 0 && ways.yaml > 0 && ways.failed > 0, `every way taken: ${JSON.stringify(ways)}`)
  },
)

t.test('files of simple items without duplicates are read line by line', async (t) => {
  fc.assert(
    fc.property(
      fc.uniqueArray(simpleItem, { selector: (i) => i.replace(/^["']|["']$/g, ''), minLength: 1, maxLength: 30 }),
      fc.constantFrom(1, 2, 4),
      fc.constantFrom(0, 2),
      fc.constantFrom('\n', '\r\n'),
      (items, keyIndent, itemIndent, eol) => {
        const pad = (n: number): string => ' '.repeat(n)
        const lines = [
          'listen: { host: 0.0.0.0, port: 8125 }',
          'blocklist:',
          `${pad(keyIndent)}names:`,
          ...items.map((i) => `${pad(keyIndent + itemIndent)}- ${i}  `),
          '',
          `${pad(keyIndent)}prefixes:`,
          `${pad(keyIndent + itemIndent)}- p.`,
        ]
        return parsedBy(lines.join(eol)) === 'rule-lines'
      },
    ),
    { numRuns: 500 },
  )
  t.pass('property holds')
})

t.test('the common shape is read line by line', async (t) => {
  const text = [
    'listen: { host: 0.0.0.0, port: 8125 }',
    'forward: { host: 127.0.0.1, port: 8127 }',
    'blocklist:',
    '  prefixes:',
    '    - legacy.team1.',
    '    - "quoted.name"',
    "    - 'single.quoted'",
    '',
    '    - after.a.blank.line   ',
    '  names:',
    '    - exact.metric.name',
    'log: { level: warn }',
  ].join('\n')
  t.equal(parsedBy(text), 'rule-lines')
  t.same(parseConfig('f.yaml', text).blocklist, {
    prefixes: ['legacy.team1.', 'quoted.name', 'single.quoted', 'after.a.blank.line'].map((pattern) => ({
      pattern,
      dryRun: false,
    })),
    names: [{ pattern: 'exact.metric.name', dryRun: false }],
    globs: [],
    tags: [],
  })
  t.equal(parsedBy(text.replace(/\n/g, '\r\n')), 'rule-lines', 'CRLF line endings')
  t.equal(
    parsedBy('blocklist:\n  prefixes:\n  - a.\n  - b.\n  names:\n  - c\n'),
    'rule-lines',
    'items as indented as their key',
  )
  t.equal(parsedBy('blocklist:\n prefixes:\n      - a.\n'), 'rule-lines', 'odd but consistent indentation')
  t.equal(parsedBy('blocklist:\n  prefixes:\n    - a.\n  names:\n'), 'rule-lines', 'an empty list next to one read')
  t.equal(parsedBy('blocklist:\n  prefixes:\n    - a.'), 'rule-lines', 'no final line break')
  t.equal(parsedBy('blocklist:\n  prefixes:\n    - 日本.\n    - "é x"\n'), 'rule-lines', 'unicode')
})

t.test('anything the line reader is not sure of sends the whole file to YAML', async (t) => {
  const items: [string, string][] = [
    ['a dryRun mapping', '{ prefix: foo., dryRun: true }'],
    ['a block mapping', 'prefix: foo.'],
    ['an integer', '123'],
    ['a negative integer', '-1'],
    ['a float with exponent', '1e3'],
    ['a hex integer', '0x1F'],
    ['an octal integer', '0o17'],
    ['infinity', '.inf'],
    ['a boolean', 'true'],
    ['a capitalised boolean', 'False'],
    ['null', 'null'],
    ['~', '~'],
    ['an empty item', ''],
    ['an empty quoted string', '""'],
    ['a double-quoted escape', '"a\\tb"'],
    ['a single-quoted escape', "'it''s'"],
    ['a trailing comment', 'a. # old'],
    ['# inside a plain scalar', 'a#b'],
    ['a colon inside a plain scalar', 'a:b'],
    ['an anchor', '&x a.'],
    ['an alias', '*x'],
    ['a tag', '!!str a.'],
    ['a block scalar', '|'],
    ['a nested sequence', '- a.'],
    ['a flow sequence', '[a., b.]'],
    ['a reserved character', '@a'],
    ['a tab', 'a.\tb'],
    ['a trailing tab', 'a.\t'],
    ['text after a quoted scalar', '"a." b'],
    ['an unterminated quote', '"a.'],
    ['a no-break space', 'a.\u00A0'],
    ['a control character', 'a\u0001'],
  ]
  for (const [what, item] of items) t.not(parsedBy(listFile(['ok.', item, 'ok2.'])), 'rule-lines', what)

  const files: [string, string][] = [
    ['a comment line inside the list', 'blocklist:\n  prefixes:\n    - a.\n    # b.\n    - c.\n'],
    ['a comment line after the list', 'blocklist:\n  prefixes:\n    - a.\n# end\n'],
    ['a comment on the key line', 'blocklist:\n  prefixes: # old\n    - a.\n'],
    ['an anchor on the list', 'blocklist:\n  prefixes: &p\n    - a.\n  names: *p\n'],
    ['a multi-line plain scalar', 'blocklist:\n  prefixes:\n    - a.\n      b.\n'],
    ['a multi-line quoted scalar', 'blocklist:\n  prefixes:\n    - "a.\n      b."\n'],
    ['an item indented differently', 'blocklist:\n  prefixes:\n    - a.\n     - b.\n'],
    ['an item indented less than the key', 'blocklist:\n  prefixes:\n - a.\n'],
    ['a tab indenting an item', 'blocklist:\n  prefixes:\n\t- a.\n'],
    ['a tab-only line in the list', 'blocklist:\n  prefixes:\n    - a.\n\t\n    - b.\n'],
    ['a document start marker', '---\nblocklist:\n  prefixes:\n    - a.\n'],
    ['a document end marker', 'blocklist:\n  prefixes:\n    - a.\n...\n'],
    ['a YAML 1.1 directive', '%YAML 1.1\n---\nblocklist:\n  prefixes:\n    - yes\n'],
    ['a lone CR', 'blocklist:\n  prefixes:\n    - a.\r    - b.\n'],
    ['a JSON file', '{"blocklist":{"prefixes":["a.","b."]}}'],
    ['a flow sequence', 'blocklist:\n  prefixes: [a., b.]\n'],
    ['a flow sequence on the next line', 'blocklist:\n  prefixes:\n    [a., b.]\n'],
    ['a flow blocklist', 'blocklist: {\n  prefixes:\n    - a.\n}\n'],
    ['the list under another key', 'listen:\n  names:\n    - a.\n'],
    ['the list inside a block scalar', 'mode: |\n  prefixes:\n    - a.\nblocklist:\n  prefixes:\n    - b.\n'],
    ['a duplicate key', 'blocklist:\n  prefixes:\n    - a.\n  prefixes:\n    - b.\n'],
    ['no rule list at all', 'listen: { port: 8125 }\n'],
  ]
  for (const [what, text] of files) t.not(parsedBy(text), 'rule-lines', what)
})

t.test('problems and warnings are located as YAML locates them', async (t) => {
  const rules = Array.from({ length: 1000 }, (_, i) => `rule${i}.`)
  const duplicate = listFile([...rules, 'rule7.'])
  t.equal(parsedBy(duplicate), 'yaml', 'a duplicate rule is a warning, so YAML reads the file')
  t.same(parseConfig('f.yaml', duplicate).warnings, [
    { path: 'blocklist.prefixes[1000]', line: 1003, column: 7, message: 'duplicate of prefixes[7]; ignored' },
  ])
  const failing: [string, string][] = [
    [
      `listen: { port: 70000 }\n${listFile(rules)}`,
      'f.yaml:1:17: listen.port: must be an integer from 0 to 65535 (got 70000)',
    ],
    [
      `${listFile(rules)}log: { level: LOUD }\n`,
      'f.yaml:1003:15: log.level: must be one of fatal, error, warn, info, debug, trace, silent',
    ],
    [`${listFile(rules)}blocklist: {}\n`, 'f.yaml:1003:1: YAML syntax error: Map keys must be unique'],
  ]
  for (const [text, message] of failing) {
    t.equal(parsedBy(text), 'failed')
    t.throws(() => parseConfig('f.yaml', text), { name: 'ConfigError', message })
  }
})

t.test('aliases beyond the limit fail as they do with YAML alone', async (t) => {
  const text = `x: &a [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]\ny: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nz: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n${listFile(['a.'])}`
  t.equal(parsedBy(text), 'failed')
  t.throws(() => parseConfig('f.yaml', text), /alias/i)
})

t.test('a file of 200,000 rules is read line by line', async (t) => {
  const text = `listen: { host: 127.0.0.1, port: 0 }\nblocklist:\n  prefixes:\n${Array.from({ length: 200_000 }, (_, i) => `    - legacy.team${i}.v1.\n`).join('')}`
  const { config, parsedBy: way } = parseConfigTraced('big.yaml', text)
  t.equal(way, 'rule-lines')
  t.equal(config.blocklist.prefixes.length, 200_000)
  t.same(config.blocklist.prefixes[199_999], { pattern: 'legacy.team199999.v1.', dryRun: false })
  t.same(config.warnings, [])
})

t.test('parseConfig gives what YAML alone gives, for random edits of a file read line by line', async (t) => {
  const base =
    'listen: { host: 0.0.0.0, port: 8125 }\nblocklist:\n  prefixes:\n    - legacy.team1.\n    - "quoted.name"\n\n    - \'single.q\'\n  names:\n  - exact.metric.name\n  - other.name\nlog: { level: warn }\n'
  t.equal(parsedBy(base), 'rule-lines')
  // Some edits make a collection a mapping key, which YAML warns about on the process.
  t.capture(process, 'emitWarning')
  const edit = fc.record({
    at: fc.nat(base.length),
    remove: fc.nat(2),
    insert: fc.string({ unit: fc.constantFrom(...' \t\n\r#:-"\'&*!|>[]{},?%@`.~0a\\\u00A0\uFEFF'), maxLength: 3 }),
  })
  fc.assert(
    fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
      let text = base
      for (const { at, remove, insert } of edits) text = text.slice(0, at) + insert + text.slice(at + remove)
      parsedBy(text)
    }),
    { numRuns: Number(process.env.PROPERTY_RUNS ?? 3000) },
  )
  t.pass('property holds')
})
