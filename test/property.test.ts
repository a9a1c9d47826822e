import fc from 'fast-check'
import t from 'tap'
import { filterRules, stripRule } from './fixtures/rules.ts'
import type { FilterRules, TagRuleSpec } from '../src/match/rules.ts'
import {
  checkAgainstReference,
  datagramsArb,
  lineArb,
  modeArb,
  referenceFilter,
  referenceProperty,
  referenceTraces,
  rulesArb,
  type LineTrace,
  type Mode,
  type ReferenceResult,
} from './fixtures/reference.ts'

// The datagram path against the simplest filter anyone would write with strings: for random rule sets and random
// datagrams, the proxy must forward exactly the lines the reference keeps, byte for byte and in order, and count
// each line in the same outcome. The reference, the arbitraries and the runner live in test/fixtures/reference.ts,
// shared with bench/fuzz.ts (which runs the same property over a million datagrams).

t.test(
  'forwards exactly the lines a string-based reference filter keeps, and counts each in the same bucket',
  async (t) => {
    fc.assert(referenceProperty(), { numRuns: Number(process.env.PROPERTY_RUNS ?? 2000) })
    t.pass('property holds')
  },
)

t.test('random bytes never throw, and every line lands in the bucket the reference puts it in', async (t) => {
  const fixed = filterRules({
    blocklist: {
      prefixes: ['a', { pattern: 'c', dryRun: true }, { pattern: 'b', dryRun: false, tag: 'k' }],
      names: ['b'],
      globs: ['*.x', { pattern: 'y.**', dryRun: true }],
      tags: ['env:a', { pattern: 'z', dryRun: true }],
    },
    allowlist: { prefixes: ['a', 'b', 'c', 'd', 'y'], names: [], globs: ['**.ok'], dryRun: false },
    stripTags: [
      stripRule({ prefixes: ['d'] }, { keys: ['k'] }),
      stripRule({ globs: ['**'] }, { keepOnly: ['env'], dryRun: true }),
    ],
    limits: { maxNameLength: 40, maxTagLength: 20 },
  })
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 2000 }), { maxLength: 10 }), modeArb, (chunks, mode) => {
      const check = checkAgainstReference(
        fixed,
        chunks.map((c) => Buffer.from(c)),
        512,
        mode,
      )
      if (!check.ok) throw new Error(check.mismatches.join('; '))
    }),
    { numRuns: 1000 },
  )
  t.pass('no throw, every line counted where the reference counts it')
})

// The property is only as strong as what it generates: these check (on a fixed sample) that the arbitraries make
// every kind of line and rule the filter tells apart, often enough to matter in 2000 runs.
t.test('the arbitraries make events, service checks, look-alike metric names and tag fields', async (t) => {
  const lines = fc.sample(lineArb, { numRuns: 5000, seed: 42 })
  const share = (pred: (l: string) => boolean): number => lines.filter(pred).length / lines.length
  const validEvent = /^_e\{(\d+),(\d+)\}:/
  const kinds: [string, number][] = [
    ['events (`_e{`)', share((l) => l.startsWith('_e{'))],
    [
      'events whose lengths match their title and text',
      share((l) => {
        const m = validEvent.exec(l)
        if (m === null) return false
        const body = Buffer.from(l.slice(m[0].length), 'utf8')
        return body.length >= Number(m[1]) + 1 + Number(m[2]) && body[Number(m[1])] === 0x7c
      }),
    ],
    ['service checks (`_sc|`)', share((l) => l.startsWith('_sc|'))],
    ['service checks `_sc|name|0-3`', share((l) => /^_sc\|[^|]*\|[0-3](\||$)/.test(l))],
    ['metrics named `_sc...` (not a service check)', share((l) => /^_sc[^|][^:|]*:/.test(l))],
    ['metrics named `_e...` (not an event)', share((l) => /^_e[^{][^:|]*:/.test(l) || l.startsWith('_e:'))],
    ['two or more tag fields', share((l) => (l.match(/\|#/g) ?? []).length >= 2)],
    ['an empty tag field (`|#` then `|` or the end)', share((l) => /\|#(\||$)/.test(l))],
    ['an empty tag (`,,`, `#,`, a trailing `,`)', share((l) => /\|#[^|]*(,,|#,|,(\||$))/.test(l))],
    ['a `:` inside a tag value (`k:v:w`)', share((l) => /[#,][^,|:]*:[^,|:]*:/.test(l))],
    ['a key without a value', share((l) => /[#,](k|env)(,|\||$)/.test(l))],
    ['a protected key', share((l) => /[#,](host|dd\.internal\.[a-z_]+):/.test(l))],
    ['unicode in a tag', share((l) => /\|#[^|]*é/.test(l))],
    ['a sample rate field', share((l) => l.includes('|@0.5'))],
    ['a container field', share((l) => l.includes('|c:container'))],
    ['a timestamp field', share((l) => l.includes('|T1700000000'))],
    ['a cardinality field', share((l) => l.includes('|card:high'))],
    ['a type field starting with `#`', share((l) => /^[^|:]+:[^|]*\|#k:v/.test(l))],
    ['a tag field before another field', share((l) => /\|#[^|]*\|(@|c:|e:|T|card:|x)/.test(l))],
  ]
  for (const [kind, s] of kinds) t.ok(s >= 0.01, `${kind}: ${(s * 100).toFixed(1)}% of lines`)
})

/** Whether the blocklist has an unconditioned rule of the same kind and pattern as rule `index`, with the other dryRun. */
const twinOf = (r: FilterRules, kind: 'name' | 'prefix' | 'glob', index: number): boolean => {
  const list = { name: r.blocklist.names, prefix: r.blocklist.prefixes, glob: r.blocklist.globs ?? [] }[kind]
  const spec = (e: string | TagRuleSpec): TagRuleSpec => (typeof e === 'string' ? { pattern: e, dryRun: false } : e)
  const rule = spec(list[index])
  return list.some((e) => {
    const other = spec(e)
    return other.tag === undefined && other.pattern === rule.pattern && other.dryRun !== rule.dryRun
  })
}

t.test('the arbitraries make every outcome and every rule kind the filter tells apart', async (t) => {
  const runs = fc.sample(fc.tuple(rulesArb, modeArb, datagramsArb), { numRuns: 2000, seed: 42 })
  const traced = runs.map(([r, mode, datagrams]) => ({ rules: r, mode, traces: referenceTraces(datagrams, r, mode) }))
  const share = (pred: (t: LineTrace, mode: Mode, r: FilterRules) => boolean): number =>
    traced.filter(({ rules: r, mode, traces }) => traces.some((l) => pred(l, mode, r))).length / traced.length
  const cases: [string, number][] = [
    ['blocked by a name rule', share((l) => l.outcome === 'blocked' && l.blockedBy?.kind === 'name')],
    ['blocked by a prefix rule', share((l) => l.outcome === 'blocked' && l.blockedBy?.kind === 'prefix')],
    ['blocked by a glob rule', share((l) => l.outcome === 'blocked' && l.blockedBy?.kind === 'glob')],
    ['blocked by a blocklist.tags entry', share((l) => l.outcome === 'blocked' && l.blockedBy?.kind === 'tag')],
    ['blocked by a tag-conditioned rule', share((l) => l.outcome === 'blocked' && l.blockedBy?.conditioned === true)],
    ['would-block by a tag-conditioned rule', share((l) => l.wouldBlock && l.blockedBy?.conditioned === true)],
    [
      'a tag-conditioned rule deciding over an unconditioned one of its pattern, kind and other dryRun',
      share(
        (l, mode, r) =>
          mode === 'enforce' &&
          l.blockedBy !== null &&
          l.blockedBy.conditioned &&
          l.blockedBy.kind !== 'tag' &&
          twinOf(r, l.blockedBy.kind, l.blockedBy.index),
      ),
    ],
    ['would-block by a blocklist.tags entry', share((l) => l.wouldBlock && l.blockedBy?.kind === 'tag')],
    ['would-block by a glob rule', share((l) => l.wouldBlock && l.blockedBy?.kind === 'glob')],
    ['not_allowed', share((l) => l.outcome === 'not_allowed')],
    ['would-not-allow', share((l) => l.wouldNotAllow)],
    ['over_limit', share((l) => l.outcome === 'over_limit')],
    ['would-over-limit', share((l) => l.wouldOverLimit)],
    ['would-block, then not_allowed', share((l) => l.wouldBlock && l.outcome === 'not_allowed')],
    ['would-over-limit, then blocked', share((l) => l.wouldOverLimit && l.outcome === 'blocked')],
    ['a line with tags stripped', share((l) => l.tagsStripped > 0)],
    ['a tag field removed whole', share((l) => l.fieldsRemoved > 0)],
    ['a tag field trimmed but kept', share((l) => l.tagsStripped > 0 && l.fieldsRemoved === 0)],
    ['an empty tag field on a stripped line', share((l) => l.emptyFieldsKeptOnStrippedLine > 0)],
    ['tags only dry-run rules strip', share((l) => l.tagsWouldStrip > 0)],
    ['tags stripped and tags would-strip on one line', share((l) => l.tagsStripped > 0 && l.tagsWouldStrip > 0)],
    ['two or more strip rules removing tags of one line', share((l) => l.stripRulesRemoving >= 2)],
    ['a stripped line of an unknown type', share((l) => l.tagsStripped > 0 && !/^(c|g|ms|h|s|d)$/.test(l.type ?? ''))],
    ['a stripped would-block line', share((l) => l.tagsStripped > 0 && l.wouldBlock)],
    ['a line over 512 bytes stripped', share((l) => l.tagsStripped > 0 && (l.out?.length ?? 0) > 512)],
    [
      'a line stripped from over 512 bytes to 512 or less',
      share((l) => l.line.length > 512 && (l.out?.length ?? 513) <= 512),
    ],
    ['would-strip in mode dry-run', share((l, mode) => mode === 'dry-run' && l.tagsWouldStrip > 0)],
    ['a strip rule that applies and removes nothing', share((l) => l.stripRulesApplying > l.stripRulesRemoving)],
    ['forwarded unchanged', share((l) => l.outcome === 'forwarded' && l.kind === 'metric' && l.tagsStripped === 0)],
    ['malformed', share((l) => l.outcome === 'malformed')],
    ['events', share((l) => l.kind === 'event')],
    ['service checks', share((l) => l.kind === 'service-check')],
    [
      'a stripped line whose rules include keepOnly',
      share((l, _m, r) => l.tagsStripped > 0 && r.stripTags.some((s) => s.keepOnly !== null)),
    ],
  ]
  for (const [what, s] of cases) t.ok(s >= 0.01, `${what}: in ${(s * 100).toFixed(1)}% of runs`)
})

// ---- The reference itself, on hand-picked cases: what the property compares the proxy with. Every expected value
// is worked out by hand from the spec (notes/tag-rules-spec.md). ----

/** Datagram bytes (UTF-8) of these lines. */
const datagram = (lines: string[]): Buffer[] => [Buffer.from(lines.join('\n'), 'utf8')]
/** A line as the reference reports it: latin1 (one char per byte). */
const latin1 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1')
const ZERO: Omit<ReferenceResult, 'kept'> = {
  blocked: 0,
  malformed: 0,
  notAllowed: 0,
  overLimit: 0,
  wouldBlock: 0,
  wouldNotAllow: 0,
  wouldOverLimit: 0,
  linesTagsStripped: 0,
  tagsStripped: 0,
  linesTagsWouldStrip: 0,
  tagsWouldStrip: 0,
}
const expected = (kept: string[], counts: Partial<Omit<ReferenceResult, 'kept'>> = {}): ReferenceResult => ({
  ...ZERO,
  ...counts,
  kept: kept.map(latin1),
})

t.test('the reference filter: kinds, rule precedence and buckets', async (t) => {
  const lines = [
    'a.x:1|c', // blocked by prefix a
    'a.dry.x:1|c', // the longer prefix a.dry (dry-run) wins: forwarded, would-block
    'b:1|g', // exact name b (enforced) beats the dry-run prefix b
    'b.y:1|g', // prefix b, dry-run
    '_sc:1|c', // a metric named _sc: the prefix _s blocks it
    '_sc|_s.check|0', // a service check: rules do not apply
    '_e{1,1}:a|b', // an event
    '_e:1|c', // a metric named _e: no rule matches it; kept
    'no-pipe:1', // malformed
    '|c:1', // malformed
    '',
    'ok:1|c\r',
  ]
  const r = filterRules({
    blocklist: {
      prefixes: ['a', { pattern: 'a.dry', dryRun: true }, { pattern: 'b', dryRun: true }, '_s'],
      names: ['b'],
    },
  })
  const kept = ['a.dry.x:1|c', 'b.y:1|g', '_sc|_s.check|0', '_e{1,1}:a|b', '_e:1|c', 'ok:1|c']
  t.same(referenceFilter(datagram(lines), r), expected(kept, { blocked: 3, malformed: 2, wouldBlock: 2 }))
  // Mode dry-run: every rule dry-run; malformed lines stay malformed.
  t.same(
    referenceFilter(datagram(lines), r, 'dry-run'),
    expected(['a.x:1|c', 'a.dry.x:1|c', 'b:1|g', 'b.y:1|g', '_sc:1|c', ...kept.slice(2)], {
      malformed: 2,
      wouldBlock: 5,
    }),
  )
})

t.test('the reference filter: globs, and their place after names and prefixes', async (t) => {
  const r = filterRules({
    blocklist: {
      prefixes: [{ pattern: 'a.bb', dryRun: true }],
      names: [{ pattern: 'b.c', dryRun: true }],
      globs: ['a.*', { pattern: '**.x', dryRun: true }, 'b*.c', 'é.**'],
    },
  })
  const lines = [
    'a.b:1|c', // a.*: blocked
    'a.b.c:1|c', // `*` does not match `b.c` (a dot); nothing else matches: kept
    'a.x:1|c', // a.* and **.x both match: the first glob in file order (a.*) decides: blocked
    'b.a.x:1|c', // **.x (`**` = `b.a`): dry-run, would-block
    'bb.c:1|c', // b*.c (`*` = `b`): blocked
    'b.c:1|c', // b*.c needs one byte or more for `*`: no; the dry-run name b.c: would-block
    'é.a.b:1|c', // é.** (`**` = `a.b`): blocked
    'é.:1|c', // é.** needs one byte or more after the dot: kept
    'a.bb:1|c', // a.* matches, but the prefix a.bb (dry-run) beats any glob: would-block
    'x.y.x:1|c', // **.x: would-block
    '.x:1|c', // **.x needs a byte before `.x`: kept
  ]
  t.same(
    referenceFilter(datagram(lines), r),
    expected(['a.b.c:1|c', 'b.a.x:1|c', 'b.c:1|c', 'é.:1|c', 'a.bb:1|c', 'x.y.x:1|c', '.x:1|c'], {
      blocked: 4,
      wouldBlock: 4,
    }),
  )
})

t.test('the reference filter: tag conditions', async (t) => {
  const r = filterRules({
    blocklist: {
      prefixes: [
        { pattern: 'a', dryRun: true },
        { pattern: 'a', dryRun: false, tag: 'env:prod' },
        { pattern: 'a.', dryRun: true, tag: 'k' },
      ],
      names: [
        { pattern: 'n', dryRun: true },
        { pattern: 'n', dryRun: false, tag: 'k' },
      ],
      globs: [
        { pattern: 'g.*', dryRun: true },
        { pattern: '*.*', dryRun: true },
        { pattern: 'g.*', dryRun: false, tag: 'env' },
      ],
    },
  })
  const lines = [
    'a.x:1|c', // only the unconditioned prefix a (dry-run): would-block
    'a.x:1|c|#env:prod', // prefix a twice: the conditioned one (enforced) beats the unconditioned: blocked
    'a.x:1|c|#env:prod,k:1', // the longer prefix a. (its condition k met by k:1, dry-run) decides: would-block
    'a.x:1|c|#env:prod:x', // env:prod:x is not the tag env:prod: prefix a, would-block
    'a.x:1|c|#env', // a key alone is not env:prod: would-block
    'n:1|c|#k', // name n twice: the one conditioned on key k (the tag `k`) decides: blocked
    'n:1|c|#kk:1', // key kk is not k: the dry-run name: would-block
    'n:1|c|@0.5|#x,k:', // `k:` has key k: blocked
    'g.x:1|c', // globs g.* (0) and *.* (1): the first, g.* (dry-run): would-block
    'g.x:1|c|#env:a', // the first glob's pattern is g.*; of the two g.* the conditioned (enforced) wins: blocked
    'h.x:1|c|#env:a', // only *.*: would-block
    'a.x:1|c|#k:1', // prefixes a and a. (condition k): the longer, dry-run: would-block
    'n:1|#k', // the type field is never a tag field: no tag k; the dry-run name n: would-block
  ]
  const kept = [0, 2, 3, 4, 6, 8, 10, 11, 12].map((i) => lines[i])
  t.same(referenceFilter(datagram(lines), r), expected(kept, { blocked: 4, wouldBlock: 9 }))
  t.same(referenceFilter(datagram(lines), r, 'dry-run'), expected(lines, { wouldBlock: 13 }))
})

t.test('the reference filter: only candidates compete (a rule whose condition fails takes no part)', async (t) => {
  const r = filterRules({
    blocklist: {
      prefixes: [{ pattern: 'p', dryRun: true, tag: 'k' }, { pattern: 'p', dryRun: false, tag: 'env' }, 'p'],
      globs: [{ pattern: 'a', dryRun: true, tag: 'k:v' }, '*', { pattern: 'a', dryRun: true }],
    },
  })
  const lines = [
    'a:1|c', // candidates: * (1) and a (2); the first glob in file order among them is *: blocked
    'a:1|c|#k:w', // the same (k:w is not k:v): blocked
    'a:1|c|#k:v', // a (0) is a candidate now and the first glob: would-block
    'b:1|c', // *: blocked
    'p.x:1|c|#env:1,k:1', // both conditioned p rules are candidates: the first in file order (dry-run): would-block
    'p.x:1|c|#env:1', // the conditioned p (env) beats the unconditioned p: blocked
    'p.x:1|c', // only the unconditioned p: blocked
  ]
  t.same(referenceFilter(datagram(lines), r), expected([lines[2], lines[4]], { blocked: 5, wouldBlock: 2 }))
})

t.test('the reference filter: blocklist.tags', async (t) => {
  const r = filterRules({
    blocklist: {
      prefixes: [{ pattern: 'x', dryRun: true }],
      tags: ['env', { pattern: 'env:prod', dryRun: true }, { pattern: 'k', dryRun: true }, 'k:v'],
    },
  })
  const lines = [
    'm:1|c|#env:dev', // key entry env: blocked
    'm:1|c|#env:prod', // the exact entry env:prod (dry-run) beats the key entry env: would-block
    'm:1|c|#k:v', // the exact entry k:v (enforced) beats the key entry k (dry-run): blocked
    'm:1|c|#k:w,env:dev', // the first matching tag decides: k:w, key entry k (dry-run): would-block
    'm:1|c|#a,b|#env', // the third tag, in the second field: blocked
    'x:1|c|#env', // a name rule decides (prefix x, dry-run); blocklist.tags is not consulted: would-block
    'm:1|c|#envx:1,kk', // no entry matches: kept
    'm:1|#env|#kk', // the type field is no tag field: kept
    '_sc|m|0|#env', // a service check: kept
    '_e{1,1}:a|b|#env', // an event: kept
    'm:1|c|#:v,k:v', // `:v` has the empty key; k:v: blocked
  ]
  const kept = [1, 3, 5, 6, 7, 8, 9].map((i) => lines[i])
  t.same(referenceFilter(datagram(lines), r), expected(kept, { blocked: 4, wouldBlock: 3 }))
})

t.test('the reference filter: the allowlist', async (t) => {
  const lines = [
    'ok.a:1|c', // prefix ok.: allowed
    'exact:1|c', // name exact: allowed
    'exact.x:1|c', // no entry: not_allowed
    'a.good:1|c', // glob *.good: allowed
    'a.b.good:1|c', // `*` does not cross a dot: not_allowed
    'ok.dry.x:1|c', // would-block (prefix ok.dry), then allowed: forwarded
    'other:1|c', // not_allowed
    '_sc|other|0', // a service check: the allowlist does not apply
    'bad', // malformed
    'zz:1|c', // would-block (prefix zz), then not_allowed
  ]
  const allow = { prefixes: ['ok.'], names: ['exact'], globs: ['*.good'] }
  const blocklist = {
    prefixes: [
      { pattern: 'ok.dry', dryRun: true },
      { pattern: 'zz', dryRun: true },
    ],
  }
  const enforced = filterRules({ blocklist, allowlist: { ...allow, dryRun: false } })
  const kept = [0, 1, 3, 5, 7].map((i) => lines[i])
  t.same(referenceFilter(datagram(lines), enforced), expected(kept, { notAllowed: 4, malformed: 1, wouldBlock: 2 }))
  const forwarded = lines.filter((l) => l !== 'bad')
  const dry = { malformed: 1, wouldBlock: 2, wouldNotAllow: 4 }
  t.same(
    referenceFilter(datagram(lines), filterRules({ blocklist, allowlist: { ...allow, dryRun: true } })),
    expected(forwarded, dry),
  )
  t.same(referenceFilter(datagram(lines), enforced, 'dry-run'), expected(forwarded, dry))
})

t.test('the reference filter: limits, before any block rule', async (t) => {
  const lines = [
    'abc:1|c', // name of 3 bytes: kept
    'abcd:1|c', // 4 bytes > 3: over_limit (before the name rule abcd)
    'é:1|c', // 2 bytes: kept
    'éé:1|c', // 4 bytes: over_limit
    'a:1|c|#x,y', // 2 tags: kept
    'a:1|c|#x|#y,z', // 3 tags over two fields: over_limit
    'a:1|c|#,,', // 3 empty tags: over_limit
    'a:1|c|#|#x', // an empty field has no tags: 1 tag, kept
    'a:1|c|#k:vv', // a tag of 4 bytes: over_limit
    'a:1|c|#é:', // 3 bytes: kept
    'a:1|#abcdefgh', // the type field holds no tags: kept
    '_e{1,1}:abcd|b', // an event: limits do not apply
  ]
  const limits = { maxNameLength: 3, maxTags: 2, maxTagLength: 3 }
  const blocklist = { names: ['abcd'] }
  const kept = [0, 2, 4, 7, 9, 10, 11].map((i) => lines[i])
  t.same(referenceFilter(datagram(lines), filterRules({ blocklist, limits })), expected(kept, { overLimit: 5 }))
  // Dry-run limits: counted, and the lines go on: abcd is then blocked by its name rule.
  const forwarded = lines.filter((l) => l !== 'abcd:1|c')
  t.same(
    referenceFilter(datagram(lines), filterRules({ blocklist, limits: { ...limits, dryRun: true } })),
    expected(forwarded, { wouldOverLimit: 5, blocked: 1 }),
  )
  // Mode dry-run: the name rule is dry-run too.
  t.same(
    referenceFilter(datagram(lines), filterRules({ blocklist, limits }), 'dry-run'),
    expected(lines, { wouldOverLimit: 5, wouldBlock: 1 }),
  )
  // One limit at a time.
  t.same(
    referenceFilter(datagram(['abcd:1|c|#x,y,z', 'a:1|c|#,,,']), filterRules({ limits: { maxTags: 3 } })),
    expected(['abcd:1|c|#x,y,z'], { overLimit: 1 }),
  )
})

t.test('the reference filter: stripping by keys', async (t) => {
  const r = filterRules({ stripTags: [stripRule({ prefixes: ['s.'] }, { keys: ['k', 'host'] })] })
  const cases: [string, string, number][] = [
    ['s.a:1|c|#k:v,env:x', 's.a:1|c|#env:x', 1],
    ['s.a:1|c|#k:v', 's.a:1|c', 1], // the field goes whole, with its `|#`
    ['s.a:1|c|@0.5|#k,k:1|T1700000000', 's.a:1|c|@0.5|T1700000000', 2], // the other fields stay where they were
    ['s.a:1|c|#env,k|#k:v:w,x', 's.a:1|c|#env|#x', 2],
    ['s.a:1|c|#env:x', 's.a:1|c|#env:x', 0],
    ['o.a:1|c|#k:v', 'o.a:1|c|#k:v', 0], // not selected
    ['s.a:1|c|#kk:v,k', 's.a:1|c|#kk:v', 1],
    ['s.a:1|c|#host:h,,k:', 's.a:1|c|#', 2], // host is listed (keys remove protected keys); the empty tag is kept
    ['s.a:1|#k:v|#k:v', 's.a:1|#k:v', 1], // the type field is never a tag field
    ['s.a:1|c|#|#k|@1', 's.a:1|c|#|@1', 1], // the empty field loses no tag: it stays
    ['s.a:1|c|#k:v,,env', 's.a:1|c|#,env', 1],
    ['s.a:1|c|#env,', 's.a:1|c|#env,', 0], // `env` and the empty tag: nothing removed
    ['s.a:1|c|#K:v', 's.a:1|c|#K:v', 0], // keys are case-sensitive
    ['_sc|s.a|0|#k:v', '_sc|s.a|0|#k:v', 0], // service checks are never stripped
  ]
  for (const [line, out, n] of cases)
    t.same(
      referenceFilter(datagram([line]), r),
      expected([out], { linesTagsStripped: n > 0 ? 1 : 0, tagsStripped: n }),
      line,
    )
  t.same(
    referenceFilter(datagram(cases.map(([line]) => line)), r),
    expected(
      cases.map(([, out]) => out),
      { linesTagsStripped: 9, tagsStripped: 12 },
    ),
  )
})

t.test('the reference filter: stripping by keepOnly, protected keys', async (t) => {
  const r = filterRules({ stripTags: [stripRule({ names: ['m'] }, { keepOnly: ['env'] })] })
  const lines = [
    'm:1|c|#env:a,k:v,host:h,dd.internal.entity_id:1,dd.internal.card:low,dd.internal.jmx_check_name:j,é:1',
    'm:1|c|#k,|#host', // k and the empty tag go (field gone whole); host is protected
    'm:1|c|#hostname:x,dd.internal:y', // keys that only look protected: both go
    'm:1|c|#env', // kept
    'mm:1|c|#k', // not selected
    'm:1|c|#Env:x', // case-sensitive: Env is not env
    '_e{1,1}:m|b|#k', // events are never stripped
  ]
  t.same(
    referenceFilter(datagram(lines), r),
    expected(
      [
        'm:1|c|#env:a,host:h,dd.internal.entity_id:1,dd.internal.card:low,dd.internal.jmx_check_name:j',
        'm:1|c|#host',
        'm:1|c',
        'm:1|c|#env',
        'mm:1|c|#k',
        'm:1|c',
        '_e{1,1}:m|b|#k',
      ],
      { linesTagsStripped: 4, tagsStripped: 7 },
    ),
  )
})

t.test('the reference filter: dry-run strip rules, types, several rules on one line', async (t) => {
  const r = filterRules({
    stripTags: [
      stripRule({ prefixes: ['a'] }, { keys: ['k'], types: ['c', 'ms'] }),
      stripRule({ globs: ['a.*'] }, { keys: ['env'], dryRun: true }),
      stripRule({ names: ['a.b'] }, { keepOnly: ['k'], types: ['g'] }),
    ],
  })
  const lines = [
    'a.b:1|c|#k:1,env:2,x', // rules 0 and 1: k:1 goes; env:2 would go (dry-run)
    'a.b:1|g|#k:1,env:2,x', // rules 1 and 2: env:2 and x go (keepOnly k); nothing kept that a dry-run rule removes
    'a.b:1|h|#k:1,env:2', // rule 1 only: env:2 would go
    'a.b:1|x|#k', // an unknown type: only rule 1 (no types) applies, and removes nothing
    'a.b.c:1|ms|#k,env', // rule 0 (a.* does not match a.b.c): k goes
    'b:1|c|#k', // no rule
    'a.b:1|c|#env', // rule 1: env would go
    'a.b:1|c|#k|#env', // k goes (its field whole), env would go
  ]
  t.same(
    referenceFilter(datagram(lines), r),
    expected(
      [
        'a.b:1|c|#env:2,x',
        'a.b:1|g|#k:1',
        'a.b:1|h|#k:1,env:2',
        'a.b:1|x|#k',
        'a.b.c:1|ms|#env',
        'b:1|c|#k',
        'a.b:1|c|#env',
        'a.b:1|c|#env',
      ],
      { linesTagsStripped: 4, tagsStripped: 5, linesTagsWouldStrip: 4, tagsWouldStrip: 4 },
    ),
  )
  // Mode dry-run: nothing removed; every tag some applying rule removes would go.
  t.same(referenceFilter(datagram(lines), r, 'dry-run'), expected(lines, { linesTagsWouldStrip: 6, tagsWouldStrip: 9 }))
})

t.test('the reference filter: stripping after the other steps', async (t) => {
  const r = filterRules({
    blocklist: { prefixes: [{ pattern: 'w', dryRun: true }] },
    allowlist: { prefixes: ['w'], names: [], globs: [], dryRun: true },
    stripTags: [stripRule({ globs: ['**'] }, { keys: ['k'] })],
  })
  const lines = [
    '_e{1,1}:a|b|#k:v', // an event: never stripped
    '_sc|c|0|#k:v', // a service check: never stripped
    'w:1|c|#k:v,j', // would-block, allowed, stripped
    'z:1|c|#k', // would-not-allow, stripped (its field whole)
    'z:1|c|#', // would-not-allow; zero tags, nothing stripped
  ]
  t.same(
    referenceFilter(datagram(lines), r),
    expected(['_e{1,1}:a|b|#k:v', '_sc|c|0|#k:v', 'w:1|c|#j', 'z:1|c', 'z:1|c|#'], {
      wouldBlock: 1,
      wouldNotAllow: 2,
      linesTagsStripped: 2,
      tagsStripped: 2,
    }),
  )
})
