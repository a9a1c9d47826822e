import fc from 'fast-check'
import t from 'tap'
import { compileGlobs, GlobMatcher, globProblem } from '../src/match/glob.ts'

function compile(globs: string[], ids: number[] = globs.map((_, i) => i)): GlobMatcher {
  return new GlobMatcher(compileGlobs(globs, ids))
}

/** The ids the matcher reports for a name, sorted (a duplicate shows as a repeated id). */
function matchIds(matcher: GlobMatcher, name: string, out = new Int32Array(matcher.idCount)): number[] {
  const buf = Buffer.from(name, 'utf8')
  const n = matcher.match(buf, 0, buf.length, out)
  return Array.from(out.subarray(0, n)).sort((a, b) => a - b)
}

function matches(glob: string, name: string): boolean {
  return matchIds(compile([glob]), name).length === 1
}

/**
 * The reference: a regex over the latin1 string of the UTF-8 bytes (one character per byte), so that `*` and `**`
 * count bytes as the matcher does.
 */
function referenceRegex(glob: string): RegExp {
  const bytes = Buffer.from(glob, 'utf8').toString('latin1')
  let source = ''
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== '*') source += bytes[i].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
    else if (bytes[i + 1] === '*') {
      source += '[\\s\\S]+'
      i++
    } else source += '[^.]+'
  }
  return new RegExp(`^${source}$`)
}

t.test('* is one or more bytes of one segment, ** one or more bytes of anything', async (t) => {
  t.ok(matches('*.debug.**', 'a.debug.x.y'))
  t.ok(matches('*.debug.**', 'a.debug.x'))
  t.ok(matches('*.debug.**', 'svc.debug..'), '** takes dots too')
  t.notOk(matches('*.debug.**', 'a.b.debug.x'), '* does not span a dot')
  t.notOk(matches('*.debug.**', 'a.debug.'), '** needs at least one byte')
  t.notOk(matches('*.debug.**', 'a.debug'))
  t.notOk(matches('*.debug.**', '.debug.x'), '* needs at least one byte')

  t.ok(matches('tmp.*.count', 'tmp.x.count'))
  t.ok(matches('tmp.*.count', 'tmp.requests_total.count'))
  t.notOk(matches('tmp.*.count', 'tmp..count'))
  t.notOk(matches('tmp.*.count', 'tmp.a.b.count'))
  t.notOk(matches('tmp.*.count', 'tmp.x.count.y'), 'anchored at the end')
  t.notOk(matches('tmp.*.count', 'xtmp.x.count'), 'anchored at the start')
  t.notOk(matches('tmp.*.count', 'tmp.x.coun'))

  t.ok(matches('**', 'a'))
  t.ok(matches('**', '.'))
  t.ok(matches('**', 'a.b.c'))
  t.notOk(matches('**', ''), '** needs at least one byte')
  t.ok(matches('a.**', 'a..'))
  t.notOk(matches('a.**', 'a.'))
  t.ok(matches('a**b', 'a.b'))
  t.notOk(matches('a**b', 'ab'))

  t.ok(matches('*', 'abc'))
  t.notOk(matches('*', 'a.b'), '* never crosses a dot')
  t.notOk(matches('*', '.'))
  t.notOk(matches('*', ''))
  t.ok(matches('a*b', 'axyb'))
  t.notOk(matches('a*b', 'ab'))
  t.notOk(matches('a*b', 'a.b'))
  t.ok(matches('*b', 'bbb'), 'the * node and its literal child both live')
  t.ok(matches('*.*', 'a.b'))
  t.notOk(matches('*.*', 'a.b.c'))
  t.ok(matches('**.*', 'a.b.c'))
  t.notOk(matches('**.*', 'a.b.'))
})

t.test('literal-only globs match exactly their name', async (t) => {
  const m = compile(['app.requests', 'app', 'app.requests.old'])
  t.same(matchIds(m, 'app.requests'), [0])
  t.same(matchIds(m, 'app'), [1])
  t.same(matchIds(m, 'app.requests.old'), [2])
  for (const name of ['app.request', 'app.requests.', 'App.requests', 'ap', '', 'app.requests.old.x']) {
    t.same(matchIds(m, name), [], name)
  }
})

t.test('UTF-8: literals are bytes, a wildcard takes every byte of a character', async (t) => {
  t.ok(matches('métrique.*', 'métrique.x'))
  t.notOk(matches('métrique.*', 'metrique.x'))
  t.ok(matches('m*trique', 'métrique'), '* takes both bytes of é')
  t.ok(matches('*', 'é'))
  t.ok(matches('é.*.é', 'é.指标.é'))
  t.notOk(matches('é.*.é', 'é.a.e'))
  // A name that is not UTF-8 is just bytes.
  const m = compile(['*.x'])
  const raw = Buffer.from([0xff, 0xc3, 0x2e, 0x78])
  const out = new Int32Array(m.idCount)
  t.equal(m.match(raw, 0, raw.length, out), 1)
  t.equal(m.match(raw, 1, raw.length, out), 1)
  t.equal(m.match(raw, 2, raw.length, out), 0)
})

t.test('ids: shared patterns report each id, several matching globs are all reported, each once', async (t) => {
  const shared = compile(['a.*', 'b', 'a.*'], [5, 6, 9])
  t.equal(shared.idCount, 3)
  t.same(matchIds(shared, 'a.x'), [5, 9])
  t.same(matchIds(shared, 'b'), [6])

  const several = compile(['a.b', 'a.*', '**', '*.b', 'a.**', '*.c', 'a.b.**'], [10, 11, 12, 13, 14, 15, 16])
  t.same(matchIds(several, 'a.b'), [10, 11, 12, 13, 14])
  t.same(matchIds(several, 'a.b.c'), [12, 14, 16])

  // `**` reached from its parent and from itself at once: reported once, not once per path.
  const twice = compile(['**b**', 'b**', '**'])
  t.same(matchIds(twice, 'bbbbbb'), [0, 1, 2])
  t.same(matchIds(twice, 'b'), [2])

  t.same(matchIds(compile([]), 'a'), [], 'no globs')
  t.equal(compile([]).idCount, 0)
})

t.test('a node with a child on every byte value, and wildcards beside the literals', async (t) => {
  // k<c>z for every code point up to 255 but `*` (id c), then k*z (256) and k**z (257): node `k` has 255 literal
  // children (ASCII bytes and the lead bytes 0xc2, 0xc3 of the others) besides a `*` and a `**` child.
  const globs: string[] = []
  const ids: number[] = []
  for (let c = 0; c < 256; c++) {
    if (c === 0x2a) continue
    globs.push(`k${String.fromCharCode(c)}z`)
    ids.push(c)
  }
  globs.push('k*z', 'k**z')
  ids.push(256, 257)
  const m = compile(globs, ids)
  for (let c = 0; c < 256; c++) {
    const expected = c === 0x2a ? [] : [c]
    if (c !== 0x2e) expected.push(256)
    expected.push(257)
    t.same(matchIds(m, `k${String.fromCharCode(c)}z`), expected, `code point ${c}`)
  }
  t.same(matchIds(m, 'kz'), [])
  t.same(matchIds(m, 'k.a.z'), [257])
  t.same(matchIds(m, 'kabcz'), [256, 257])
})

t.test(
  'siblings on bytes 0 and 1 beside * and ** stay apart: the globs are sorted by token, not by byte',
  async (t) => {
    const m = compile(['k\u0000a', 'k*a', 'k\u0000b', 'k\u0001a', 'k**a', 'k\u0001b'])
    t.same(matchIds(m, 'k\u0000a'), [0, 1, 4], '* and ** take a NUL byte')
    t.same(matchIds(m, 'k\u0000b'), [2])
    t.same(matchIds(m, 'k\u0001a'), [1, 3, 4])
    t.same(matchIds(m, 'k\u0001b'), [5])
    t.same(matchIds(m, 'kxa'), [1, 4])
    t.same(matchIds(m, 'k.a'), [4])
  },
)

t.test('a name in a range of a larger buffer: the bytes around it do not matter', async (t) => {
  const m = compile(['abc', 'a*', '*.x', 'ab**'])
  const buf = Buffer.from('zzabc.x:1|c')
  const out = new Int32Array(m.idCount)
  const ids = (start: number, end: number): number[] =>
    Array.from(out.subarray(0, m.match(buf, start, end, out))).sort((a, b) => a - b)
  t.same(ids(2, 5), [0, 1, 3], 'abc')
  t.same(ids(2, 7), [2, 3], 'abc.x')
  t.same(ids(2, 4), [1], 'ab')
  t.same(ids(0, 5), [], 'zzabc')
  t.same(ids(2, 2), [], 'the empty name')
  t.same(ids(4, 4), [])
})

t.test('20,000 globs: every glob matches its own names and only those, near misses match nothing', async (t) => {
  const shapes: [(i: number) => string, (i: number) => string, (i: number) => string][] = [
    [(i) => `svc${i}.*.debug.**`, (i) => `svc${i}.h.debug.x.y`, (i) => `svc${i}.h.debug`],
    [(i) => `*.tmp${i}.count`, (i) => `web.tmp${i}.count`, (i) => `web.tmp${i}.count.x`],
    [(i) => `team${i}.**`, (i) => `team${i}.a.b`, (i) => `team${i}`],
    [(i) => `app.*.req${i}`, (i) => `app.api.req${i}`, (i) => `app.api.req${i}x`],
    [(i) => `*.*.cache${i}.*`, (i) => `db.p.cache${i}.hits`, (i) => `db.p.cache${i}.hits.total`],
  ]
  const globs = Array.from({ length: 20_000 }, (_, i) => shapes[i % 5][0](i))
  const m = compile(globs)
  const out = new Int32Array(m.idCount)
  let wrong = 0
  for (let i = 0; i < globs.length; i++) {
    if (matchIds(m, shapes[i % 5][1](i), out).join() !== String(i)) wrong++
    if (matchIds(m, shapes[i % 5][2](i), out).length !== 0) wrong++
  }
  t.equal(wrong, 0)
})

t.test('the generation stamps wrap around without losing or repeating a match', async (t) => {
  const m = compile(['**b**', 'a*', '*.x'])
  // Two bytes short of the wrap: the next names cross it.
  ;(m as unknown as { generation: number }).generation = 0x7fffffff - 2
  for (let round = 0; round < 4; round++) {
    t.same(matchIds(m, 'bbbb'), [0], `bbbb, round ${round}`)
    t.same(matchIds(m, 'ab'), [1], `ab, round ${round}`)
    t.same(matchIds(m, 'a.x'), [2], `a.x, round ${round}`)
  }
  t.ok((m as unknown as { generation: number }).generation < 100, 'the stamps started over')
})

t.test('the DFA starts over when full, and a name that filled it finishes on the NFA', async (t) => {
  // Each `teamN.` name walks ~5 states no other name reaches: 20,000 of them are more than the DFA holds.
  const globs = Array.from({ length: 20_000 }, (_, i) => `team${i}.**`)
  const m = compile([...globs, '**.x'])
  const dfa = m as unknown as { states: number; maxStates: number }
  let wrong = 0
  let startedOver = 0
  let last = 0
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < globs.length; i++) {
      if (matchIds(m, `team${i}.a.x`).join() !== `${i},${globs.length}`) wrong++
      if (matchIds(m, `team${i}`).length !== 0) wrong++
      if (dfa.states < last) startedOver++
      last = dfa.states
    }
  }
  t.equal(wrong, 0, 'every name matched its globs, before and after each start-over')
  t.ok(startedOver >= 2, `the DFA started over ${startedOver} times (it holds ${dfa.maxStates} states)`)
  t.ok(dfa.states <= dfa.maxStates)
})

t.test('globProblem: every invalid shape, and valid ones', async (t) => {
  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ['.', /start with "."/],
    ['.a', /start with "."/],
    ['.*', /start with "."/],
    ['a.', /end with "."/],
    ['a.b.', /end with "."/],
    ['a.**.', /end with "."/],
    ['a..b', /contain "\.\."/],
    ['*..*', /contain "\.\."/],
    ['***', /three or more \*/],
    ['a.***', /three or more \*/],
    ['a****b', /three or more \*/],
  ]
  for (const [glob, why] of invalid) {
    const problem = globProblem(glob)
    t.type(problem, 'string', JSON.stringify(glob))
    t.match(problem, why, JSON.stringify(glob))
    t.throws(() => compileGlobs([glob], [0]), { message: why }, `compileGlobs rejects ${JSON.stringify(glob)}`)
  }
  for (const glob of ['a', '*', '**', 'a.*.b', '**.x', 'x.**', '*.*', 'a*b**c', 'é.*', 'tmp.*.count', '*-*']) {
    t.equal(globProblem(glob), null, JSON.stringify(glob))
  }
  t.throws(() => compileGlobs(['a', 'b'], [0]), /2 globs but 1 ids/)
})

/** Pieces of a glob segment and of a name, from small alphabets so that globs overlap and names match often. */
const LITERALS = ['a', 'b', 'é', '-']
const segmentArb = fc
  .array(fc.constantFrom(...LITERALS, '*', '**'), { minLength: 1, maxLength: 4 })
  .map((pieces) => pieces.join('').replace(/\*{3,}/g, '**'))
const globArb = fc.array(segmentArb, { minLength: 1, maxLength: 4 }).map((segments) => segments.join('.'))
const nameChars = fc.constantFrom('a', 'b', '.', 'é', '-')
const nonDotChars = fc.constantFrom('a', 'b', 'é', '-')

/** A name that matches `glob` (wildcards filled with random bytes) or, half of the time, a near miss of it. */
function instanceArb(glob: string): fc.Arbitrary<string> {
  const parts = glob.split(/(\*\*|\*)/)
  const fills = parts.map((p) =>
    p === '**'
      ? fc.array(nameChars, { minLength: 1, maxLength: 3 }).map((c) => c.join(''))
      : p === '*'
        ? fc.array(nonDotChars, { minLength: 1, maxLength: 3 }).map((c) => c.join(''))
        : fc.constant(p),
  )
  return fc
    .tuple(fc.tuple(...fills), fc.nat(), fc.constantFrom('', 'a', '.', 'é'), fc.boolean())
    .map(([filled, at, extra, miss]) => {
      const name = filled.join('')
      if (!miss) return name
      const cut = at % (name.length + 1)
      return name.slice(0, cut) + extra + name.slice(cut + 1)
    })
}

const caseArb = fc.array(globArb, { minLength: 1, maxLength: 20 }).chain((globs) =>
  fc.record({
    globs: fc.constant(globs),
    ids: fc.uniqueArray(fc.integer({ min: 0, max: 1_000_000 }), { minLength: globs.length, maxLength: globs.length }),
    names: fc.array(
      fc.oneof(
        fc.array(nameChars, { maxLength: 10 }).map((c) => c.join('')),
        fc.nat(globs.length - 1).chain((k) => instanceArb(globs[k])),
      ),
      { minLength: 1, maxLength: 20 },
    ),
    before: fc.uint8Array({ maxLength: 4 }),
    after: fc.uint8Array({ maxLength: 4 }),
  }),
)

t.test('agrees with a regex reference on random glob sets and names', async (t) => {
  let matched = 0
  let total = 0
  fc.assert(
    fc.property(caseArb, ({ globs, ids, names, before, after }) => {
      const matcher = compile(globs, ids)
      const regexes = globs.map(referenceRegex)
      const out = new Int32Array(matcher.idCount)
      for (const name of names) {
        const bytes = Buffer.from(name, 'utf8')
        const latin1 = bytes.toString('latin1')
        const expected = ids.filter((_, k) => regexes[k].test(latin1)).sort((a, b) => a - b)
        // The name inside random bytes: only buf[start, end) may count.
        const buf = Buffer.concat([before, bytes, after])
        const n = matcher.match(buf, before.length, before.length + bytes.length, out)
        const got = Array.from(out.subarray(0, n)).sort((a, b) => a - b)
        total++
        if (expected.length > 0) matched++
        if (JSON.stringify(got) !== JSON.stringify(expected)) {
          throw new Error(`${JSON.stringify({ globs, ids, name })}: got ${got}, expected ${expected}`)
        }
      }
    }),
    { numRuns: Number(process.env.PROPERTY_RUNS ?? 1000) },
  )
  // The property means little if almost no name matches: check the generator makes both kinds.
  t.ok(matched > total / 5 && matched < total - total / 5, `${matched} of ${total} names matched some glob`)
})
