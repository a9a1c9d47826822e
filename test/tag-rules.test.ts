// The rules beyond the packed table (src/match/tag-rules.ts): how compileTagRules numbers them, and what TagRules
// answers the filter: the candidates of a name, tag conditions, blocklist.tags, strip keys, types, the per-line
// dedupe. Rule numbers here are extra-rule numbers (firstIndex not added) unless a test says otherwise.
import t from 'tap'
import { NO_TAG_RULES, RuleSet, type Mode } from '../src/match/rule-set.ts'
import type { FilterRules } from '../src/match/rules.ts'
import { compileTagRules, hasTagRules, PROTECTED_KEYS, TagRules, tablePriority } from '../src/match/tag-rules.ts'
import { METRIC_TYPE_SLOTS } from '../src/scan/tags.ts'
import { filterRules, stripRule } from './fixtures/rules.ts'

function tagRules(rules: FilterRules, mode: Mode = 'enforce', firstIndex = 0): TagRules {
  return new TagRules(compileTagRules(rules, firstIndex), mode)
}

/** candidates() of a name, read out of `found`. */
function candidates(tr: TagRules, name: string): number[] {
  const buf = Buffer.from(name, 'utf8')
  const n = tr.candidates(buf, 0, buf.length)
  return [...tr.found.subarray(0, n)]
}

/** A tag's range in a buffer of its own, and its key's end. */
function tagAt(tag: string): [Buffer, number, number, number] {
  const buf = Buffer.from(tag, 'utf8')
  const colon = buf.indexOf(0x3a)
  return [buf, 0, colon === -1 ? buf.length : colon, buf.length]
}

const satisfies = (tr: TagRules, r: number, tag: string): boolean => tr.satisfies(r, ...tagAt(tag))
const tagRule = (tr: TagRules, tag: string): number => {
  const buf = Buffer.from(tag, 'utf8')
  return tr.tagRule(buf, 0, buf.length)
}
const keyId = (tr: TagRules, key: string): number => {
  const buf = Buffer.from(key, 'utf8')
  return tr.keyId(buf, 0, buf.length)
}

t.test('compileTagRules numbers the rules in the documented order, from firstIndex', async (t) => {
  const rules = filterRules({
    blocklist: {
      prefixes: ['plain.', { pattern: 'p.', dryRun: false, tag: 'k' }],
      names: [{ pattern: 'n', dryRun: true, tag: 'k:v' }, 'plain'],
      globs: ['g.*', { pattern: 'h.*', dryRun: false, tag: 'k' }],
      tags: ['env', { pattern: 'team:a', dryRun: true }],
    },
    allowlist: { prefixes: ['ap.'], names: ['an'], globs: ['ag.*'], dryRun: false },
    stripTags: [
      stripRule({ prefixes: ['s.'] }, { keys: ['k'] }),
      stripRule({ names: ['t'] }, { keepOnly: ['k'], dryRun: true }),
    ],
  })
  const data = compileTagRules(rules, 7)
  t.equal(data.firstIndex, 7)
  t.same(
    data.info.map((i) => [i.action, i.kind, i.pattern, i.tag]),
    [
      ['block', 'prefix', 'p.', 'k'],
      ['block', 'name', 'n', 'k:v'],
      ['block', 'glob', 'g.*', null],
      ['block', 'glob', 'h.*', 'k'],
      ['block', 'tag', 'env', null],
      ['block', 'tag', 'team:a', null],
      ['allow', 'prefix', 'ap.', null],
      ['allow', 'name', 'an', null],
      ['allow', 'glob', 'ag.*', null],
      ['strip', 'metrics', null, null],
      ['strip', 'metrics', null, null],
    ],
    'unconditional prefixes and names stay in the packed table',
  )
  t.same([...data.dryRun], [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1])
  t.same(data.info[10].keepOnly, ['k'])
  t.same(data.info[9].keys, ['k'])
  const tr = new TagRules(data, 'enforce')
  t.equal(tr.firstIndex, 7)
  t.same(
    [0, 1, 2, 3, 4, 9].map((r) => tr.conditional(r)),
    [true, true, false, true, false, false],
  )
  // Through RuleSet: the extra rules come after the packed table's two.
  const set = RuleSet.fromRules(rules, 'enforce')
  t.equal(set.firstTagRule, 2)
  t.equal(set.tagMatcher?.firstIndex, 2)
  t.equal(set.size, 2 + 11)
  t.same([...set.dryRun], [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1])
})

t.test(
  'candidates: every rule whose name pattern matches, across sections, prefixes then exact then globs',
  async (t) => {
    const rules = filterRules({
      blocklist: {
        prefixes: [
          { pattern: 'a.', dryRun: false, tag: 'k' }, // 0
          { pattern: 'a.b.', dryRun: false, tag: 'k' }, // 1
          { pattern: 'x.', dryRun: false, tag: 'k' }, // 2
        ],
        names: [{ pattern: 'a.b.c', dryRun: false, tag: 'k:v' }], // 3
        globs: ['a.*.c', { pattern: '**', dryRun: false, tag: 'k' }, 'x.*'], // 4, 5, 6
        tags: ['k'], // 7: never a name candidate
      },
      allowlist: { prefixes: ['a'], names: ['a.b.c', 'a.b'], globs: ['*.b.*'], dryRun: false }, // 8; 9, 10; 11
      stripTags: [
        stripRule({ prefixes: ['a.b'], names: ['a.b.c'], globs: ['**.c'] }, { keys: ['k'] }), // 12
        stripRule({ prefixes: ['a.b.c'] }, { keepOnly: ['k'] }), // 13
        stripRule({ prefixes: ['b.'] }, { keys: ['k'] }), // 14
      ],
    })
    const tr = tagRules(rules)
    const found = candidates(tr, 'a.b.c')
    // Literal patterns by length (`a`, `a.`, `a.b`, `a.b.`, `a.b.c` as a prefix), then the exact name's rules in
    // index order, then the globs in any order.
    t.same(found.slice(0, 8), [8, 0, 12, 1, 13, 3, 9, 12])
    t.same(
      found.slice(8).sort((a, b) => a - b),
      [4, 5, 11, 12],
    )
    t.equal(found.length, 12)
    t.notOk(found.includes(7), 'blocklist.tags has no name pattern')
    t.notOk(found.includes(14) || found.includes(2) || found.includes(6) || found.includes(10))

    t.same(
      candidates(tr, 'a.b').sort((a, b) => a - b),
      [0, 5, 8, 10, 12],
      'a.b: prefixes a, a. and a.b, the name a.b, the glob **',
    )
    t.same(
      candidates(tr, 'x.y').sort((a, b) => a - b),
      [2, 5, 6],
    )
    t.same(candidates(tr, 'z'), [5], 'only ** matches z')
    t.same(candidates(tr, ''), [], 'the empty name')
    // Bounded by the range: the name `a.b` inside `a.b.c`.
    const buf = Buffer.from('zza.b.c')
    const n = tr.candidates(buf, 2, 5)
    t.same(
      [...tr.found.subarray(0, n)].sort((a, b) => a - b),
      [0, 5, 8, 10, 12],
    )
  },
)

t.test('candidates without globs, and with no rules matching at all', async (t) => {
  const tr = tagRules(filterRules({ stripTags: [stripRule({ prefixes: ['a', 'a.b'] }, { keys: ['k'] })] }))
  t.same(candidates(tr, 'a.b.c'), [0, 0], 'a rule reached through two entries is listed twice')
  t.same(candidates(tr, 'b'), [])
  t.same(candidates(tr, 'é'), [])
})

t.test('satisfies: k:v is that exact tag, a key k is any tag with key k', async (t) => {
  const tr = tagRules(
    filterRules({
      blocklist: {
        names: [
          { pattern: 'a', dryRun: false, tag: 'env:prod' }, // 0
          { pattern: 'b', dryRun: false, tag: 'env' }, // 1
          { pattern: 'c', dryRun: false, tag: 'url:http://x:80' }, // 2
          { pattern: 'd', dryRun: false, tag: 'clé:été' }, // 3
          { pattern: 'e', dryRun: false, tag: 'k:' }, // 4
        ],
      },
    }),
  )
  const cases: [number, string, boolean][] = [
    [0, 'env:prod', true],
    [0, 'env:prod2', false],
    [0, 'env:pro', false],
    [0, 'env', false],
    [0, 'env:', false],
    [0, 'Env:prod', false],
    [0, 'xenv:prod', false],
    [1, 'env', true],
    [1, 'env:', true],
    [1, 'env:prod', true],
    [1, 'env:a:b', true],
    [1, 'envx', false],
    [1, 'envx:1', false],
    [1, 'en', false],
    [1, 'en:v', false],
    [1, 'ENV:prod', false],
    [1, '', false],
    [2, 'url:http://x:80', true],
    [2, 'url:http://x:8', false],
    [2, 'url:http://x:800', false],
    [3, 'clé:été', true],
    [3, 'clé:ete', false],
    [4, 'k:', true],
    [4, 'k', false],
    [4, 'k:v', false],
  ]
  for (const [r, tag, expected] of cases) t.equal(satisfies(tr, r, tag), expected, `rule ${r} on ${tag}`)
  // A tag inside a larger buffer: only its own range is compared.
  const buf = Buffer.from('#env:prodx,env:prod')
  t.equal(tr.satisfies(0, buf, 1, 4, 9), true, 'env:prod out of env:prodx')
  t.equal(tr.satisfies(0, buf, 1, 4, 10), false)
  t.equal(tr.satisfies(1, buf, 11, 14, 19), true)
})

t.test('tagRule: the blocklist.tags entry of a tag; an exact k:v entry beats a key entry', async (t) => {
  for (const order of [
    ['env', 'env:dev', 'synthetic', 'team:a:b'],
    ['env:dev', 'env', 'synthetic', 'team:a:b'],
  ]) {
    const tr = tagRules(filterRules({ blocklist: { tags: order } }))
    t.equal(tr.blockTags, true)
    const at = (entry: string): number => order.indexOf(entry)
    const cases: [string, number][] = [
      ['env:dev', at('env:dev')],
      ['env:prod', at('env')],
      ['env', at('env')],
      ['env:', at('env')],
      ['env:dev:x', at('env')],
      ['env:de', at('env')],
      ['envx:dev', -1],
      ['synthetic', at('synthetic')],
      ['synthetic:x', at('synthetic')],
      ['synthetics:x', -1],
      ['synthetics', -1],
      ['synthetic2', -1],
      ['synth', -1],
      ['team:a:b', at('team:a:b')],
      ['team:a', -1],
      ['team', -1],
      ['team:a:b:c', -1],
      ['', -1],
    ]
    for (const [tag, expected] of cases) t.equal(tagRule(tr, tag), expected, `${order[0]} first: ${tag}`)
  }
  const tr = tagRules(filterRules({ blocklist: { names: [{ pattern: 'n', dryRun: false, tag: 'x' }], tags: ['k'] } }))
  t.equal(tagRule(tr, 'k:1'), 1, 'numbered after the tag-conditioned name rule')
  t.equal(tagRules(filterRules({ limits: { maxTags: 3 } })).blockTags, false)
})

t.test('keyId and removes: keys rules and keepOnly rules, protected keys', async (t) => {
  const tr = tagRules(
    filterRules({
      stripTags: [
        stripRule({ prefixes: ['a'] }, { keys: ['env', 'host', 'env'] }), // 0
        stripRule({ prefixes: ['a'] }, { keepOnly: ['env', 'service'] }), // 1
        stripRule({ prefixes: ['a'] }, { keys: [...PROTECTED_KEYS] }), // 2
        stripRule({ prefixes: ['a'] }, { keepOnly: ['host'] }), // 3
        stripRule({ prefixes: ['a'] }, { keys: ['clé'] }), // 4
      ],
    }),
  )
  t.same(PROTECTED_KEYS, ['host', 'dd.internal.entity_id', 'dd.internal.card', 'dd.internal.jmx_check_name'])
  const removes = (r: number, key: string): boolean => tr.removes(r, keyId(tr, key))
  t.equal(keyId(tr, 'nope'), -1)
  t.equal(keyId(tr, ''), -1, 'the empty key is no strip key')
  t.equal(keyId(tr, 'envx'), -1)
  t.equal(keyId(tr, 'en'), -1)
  t.not(keyId(tr, 'env'), -1)
  t.not(keyId(tr, 'service'), -1)
  t.equal(new Set(['env', 'service', 'clé', ...PROTECTED_KEYS].map((k) => keyId(tr, k))).size, 7, 'one id per key')

  // keys: exactly the listed keys, protected ones included.
  t.same(
    ['env', 'host', 'service', 'nope', '', 'Env', 'dd.internal.card'].map((k) => removes(0, k)),
    [true, true, false, false, false, false, false],
  )
  for (const key of PROTECTED_KEYS) t.equal(removes(2, key), true, `keys removes protected ${key}`)
  t.equal(removes(2, 'env'), false)
  t.equal(removes(4, 'clé'), true)
  t.equal(removes(4, 'cle'), false)

  // keepOnly: everything not listed, except the protected keys.
  t.same(
    ['env', 'service', 'nope', '', 'Env', 'hosts', 'dd.internal', 'clé'].map((k) => removes(1, k)),
    [false, false, true, true, true, true, true, true],
  )
  for (const key of PROTECTED_KEYS) t.equal(removes(1, key), false, `keepOnly never removes ${key}`)
  for (const key of PROTECTED_KEYS) t.equal(removes(3, key), false, `keepOnly [host] keeps ${key} too`)
  t.equal(removes(3, 'env'), true, 'a key another rule lists is still removed by this keepOnly')
  t.equal(tr.removes(1, -1), true, 'a key no rule names: keepOnly removes it')
  t.equal(tr.removes(0, -1), false, 'a key no rule names: keys keeps it')

  // The removal table the filter reads for a line under one strip rule says what removes() says.
  const table = tr.removal
  t.ok(table !== null)
  let disagree = 0
  for (let r = 0; r < 5; r++)
    for (let k = -1; k < 7; k++) if ((table?.[tr.removalRow[r] + k + 1] === 1) !== tr.removes(r, k)) disagree++
  t.equal(disagree, 0, 'the removal table agrees with removes() for 5 rules x 8 key ids')

  // A key inside a tag in a larger buffer: keyId looks at the range only.
  const buf = Buffer.from('|#env:prod,service')
  t.equal(tr.keyId(buf, 2, 5), keyId(tr, 'env'))
  t.equal(tr.keyId(buf, 2, 4), -1, 'en')
  t.equal(tr.keyId(buf, 11, 18), keyId(tr, 'service'))
})

t.test('keyId without strip rules: the protected keys only', async (t) => {
  const tr = tagRules(filterRules({ blocklist: { tags: ['env'] } }))
  for (const key of PROTECTED_KEYS) t.not(keyId(tr, key), -1, key)
  t.equal(keyId(tr, 'env'), -1, 'a blocklist tag is no strip key')
})

t.test('appliesToType: null is every type, unknown ones included; a list is those types only', async (t) => {
  const all = ['c', 'g', 'ms', 'h', 's', 'd'] as const
  const tr = tagRules(
    filterRules({
      stripTags: [
        stripRule({ prefixes: ['a'] }, { keys: ['k'] }), // 0: null
        stripRule({ prefixes: ['a'] }, { keys: ['k'], types: ['c', 'ms'] }), // 1
        ...all.map((type) => stripRule({ prefixes: ['a'] }, { keys: ['k'], types: [type] })), // 2..7
        stripRule({ prefixes: ['a'] }, { keys: ['k'], types: [...all] }), // 8
      ],
    }),
  )
  for (let slot = 0; slot < METRIC_TYPE_SLOTS.length; slot++) {
    const type = METRIC_TYPE_SLOTS[slot]
    t.equal(tr.appliesToType(0, slot), true, `null applies to ${type}`)
    t.equal(tr.appliesToType(1, slot), type === 'c' || type === 'ms', `[c, ms] on ${type}`)
    all.forEach((only, k) => t.equal(tr.appliesToType(2 + k, slot), only === type, `[${only}] on ${type}`))
    t.equal(tr.appliesToType(8, slot), type !== 'other', `every known type on ${type}`)
  }
})

t.test('firstTime: once per rule per line, reset by beginLine', async (t) => {
  const tr = tagRules(
    filterRules({
      stripTags: [stripRule({ prefixes: ['a'] }, { keys: ['k'] }), stripRule({ names: ['a'] }, { keys: ['k'] })],
    }),
  )
  tr.beginLine()
  t.equal(tr.firstTime(0), true)
  t.equal(tr.firstTime(0), false)
  t.equal(tr.firstTime(1), true)
  t.equal(tr.firstTime(1), false)
  t.equal(tr.firstTime(0), false)
  tr.beginLine()
  t.equal(tr.firstTime(1), true, 'a new line')
  t.equal(tr.firstTime(0), true)
  t.equal(tr.firstTime(0), false)
  // The line number wraps before it overflows an Int32Array slot: nothing seen on an old line counts.
  const state = tr as unknown as { line: number }
  state.line = 2 ** 31 - 3
  tr.beginLine()
  t.equal(tr.firstTime(0), true)
  tr.beginLine() // wraps to 1
  t.equal(state.line, 1)
  t.equal(tr.firstTime(0), true, 'seen on the line before the wrap, not after it')
  t.equal(tr.firstTime(1), true, 'seen as line 1 long ago: forgotten by the wrap')
  t.equal(tr.firstTime(1), false)
})

t.test('limits and modes as TagRules reads them', async (t) => {
  const limited = tagRules(filterRules({ limits: { maxNameLength: 10, maxTags: 3, maxTagLength: 20 } }))
  t.same(
    [limited.maxNameLength, limited.maxTags, limited.maxTagLength, limited.tagLimits, limited.limitsDryRun],
    [10, 3, 20, true, false],
  )
  const nameOnly = tagRules(filterRules({ limits: { maxNameLength: 10 } }))
  t.same([nameOnly.maxTags, nameOnly.maxTagLength, nameOnly.tagLimits], [0, 0, false])
  t.equal(tagRules(filterRules({ limits: { maxTags: 1, dryRun: true } })).limitsDryRun, true)
  t.equal(tagRules(filterRules({ limits: { maxTags: 1 } }), 'dry-run').limitsDryRun, true, 'mode dry-run')
  const allowlist = { prefixes: ['a'], names: [], globs: [], dryRun: false }
  const allow = tagRules(filterRules({ allowlist }))
  t.same([allow.allowlist, allow.allowlistDryRun], [true, false])
  t.equal(tagRules(filterRules({ allowlist: { ...allowlist, dryRun: true } })).allowlistDryRun, true)
  t.equal(tagRules(filterRules({ allowlist }), 'dry-run').allowlistDryRun, true, 'mode dry-run')
  t.equal(tagRules(filterRules({ limits: { maxTags: 1 } })).allowlist, false)
})

t.test(
  'precedence values: tagged beats untagged at the same pattern, a longer prefix beats both, globs rank below',
  async (t) => {
    const set = RuleSet.fromRules(
      filterRules({
        blocklist: {
          prefixes: ['a.', 'a.b', { pattern: 'a.', dryRun: false, tag: 'k' }],
          names: ['a.b.c', { pattern: 'a.b.c', dryRun: false, tag: 'k' }],
          globs: ['a.*', { pattern: 'a.*', dryRun: false, tag: 'k' }, '**'],
        },
      }),
      'enforce',
    )
    const tr = set.tagMatcher
    if (tr === null) throw new Error('tag rules expected')
    const table = (r: number): number => tablePriority(set.table, r)
    const [taggedPrefix, taggedName, glob, taggedGlob] = [0, 1, 2, 3].map((r) => tr.priority[r])
    t.ok(taggedPrefix > table(0), 'a. tagged > a.')
    t.ok(table(1) > taggedPrefix, 'a.b > a. tagged')
    t.ok(taggedName > table(2), 'a.b.c tagged > a.b.c')
    t.ok(table(2) > table(1), 'a name > a prefix')
    t.ok(table(0) > Math.max(glob, taggedGlob), 'any literal > any glob')
    // Among globs the filter picks by file order and pattern (globBlock): the same pattern shares an id.
    t.same(
      [2, 3, 4].map((r) => tr.globPattern[r]),
      [0, 0, 1],
      'a.* twice is one pattern, ** another',
    )
    t.same(
      [0, 1].map((r) => tr.globPattern[r]),
      [-1, -1],
      'literal rules have no glob pattern',
    )
  },
)

t.test('hasTagRules: only what the packed table cannot do', async (t) => {
  const base = { prefixes: ['a.'], names: ['b'] }
  const has = (o: Parameters<typeof filterRules>[0]): boolean => hasTagRules(filterRules(o))
  t.equal(hasTagRules({ blocklist: base, ...NO_TAG_RULES }), false, 'a plain blocklist')
  t.equal(hasTagRules({ blocklist: { prefixes: [], names: [] }, ...NO_TAG_RULES }), false, 'no globs or tags keys')
  t.equal(has({ blocklist: { ...base, globs: [], tags: [] } }), false, 'empty globs and tags')
  t.equal(
    has({ blocklist: { prefixes: [{ pattern: 'a', dryRun: true }], names: [{ pattern: 'b', dryRun: false }] } }),
    false,
    'options without a tag',
  )
  t.equal(has({ limits: { dryRun: true } }), false, 'limits.dryRun alone sets no limit')
  t.equal(has({ blocklist: { prefixes: [{ pattern: 'a', dryRun: false, tag: 'k' }] } }), true, 'a tagged prefix')
  t.equal(has({ blocklist: { names: [{ pattern: 'a', dryRun: false, tag: 'k:v' }] } }), true, 'a tagged name')
  t.equal(has({ blocklist: { globs: ['a.*'] } }), true, 'a glob')
  t.equal(has({ blocklist: { tags: ['env'] } }), true, 'blocklist.tags')
  t.equal(has({ allowlist: { prefixes: [], names: ['a'], globs: [], dryRun: false } }), true, 'an allowlist')
  t.equal(has({ stripTags: [stripRule({ names: ['a'] }, { keys: ['k'] })] }), true, 'a strip rule')
  t.equal(has({ limits: { maxNameLength: 100 } }), true, 'maxNameLength')
  t.equal(has({ limits: { maxTags: 100 } }), true, 'maxTags')
  t.equal(has({ limits: { maxTagLength: 100 } }), true, 'maxTagLength')
  t.equal(RuleSet.fromRules({ blocklist: base, ...NO_TAG_RULES }, 'enforce').tagMatcher, null)
  t.not(RuleSet.fromRules(filterRules({ limits: { maxTags: 1 } }), 'enforce').tagMatcher, null)
})

t.test(
  'taggedLiterals: whether a rule that can outrank a table rule is among the extra rules (else a table match decides alone)',
  async (t) => {
    const allowlist = { prefixes: ['a'], names: [], globs: [], dryRun: false }
    const cases: [string, FilterRules, boolean][] = [
      ['a tagged prefix', filterRules({ blocklist: { prefixes: [{ pattern: 'a', dryRun: false, tag: 'k' }] } }), true],
      ['a tagged name', filterRules({ blocklist: { names: [{ pattern: 'a', dryRun: true, tag: 'k' }] } }), true],
      ['a glob (below every literal rule)', filterRules({ blocklist: { globs: ['a.*'] } }), false],
      ['blocklist.tags (only when no name rule decides)', filterRules({ blocklist: { tags: ['env'] } }), false],
      ['an allowlist', filterRules({ blocklist: { prefixes: ['x'] }, allowlist }), false],
      ['a strip rule', filterRules({ stripTags: [stripRule({ names: ['a'] }, { keys: ['k'] })] }), false],
      ['limits', filterRules({ limits: { maxTags: 3 } }), false],
    ]
    for (const [what, rules, expected] of cases) t.equal(tagRules(rules).taggedLiterals, expected, what)
  },
)
