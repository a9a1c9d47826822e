import fc from 'fast-check'
import t from 'tap'
import {
  blocklistArb,
  checkAgainstReference,
  lineArb,
  referenceFilter,
  referenceProperty,
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
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 2000 }), { maxLength: 10 }), (chunks) => {
      const check = checkAgainstReference(
        { prefixes: ['a', { pattern: 'c', dryRun: true }], names: ['b'] },
        chunks.map((c) => Buffer.from(c)),
        512,
      )
      if (!check.ok) throw new Error(check.mismatches.join('; '))
    }),
    { numRuns: 1000 },
  )
  t.pass('no throw, every line counted where the reference counts it')
})

// The property is only as strong as what it generates: these check (on a fixed sample) that the arbitraries make
// every kind of line and rule the filter tells apart, often enough to matter in 2000 runs.
t.test('the arbitraries make events, service checks, look-alike metric names and dry-run rules', async (t) => {
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
  ]
  for (const [kind, s] of kinds) t.ok(s >= 0.01, `${kind}: ${(s * 100).toFixed(1)}% of lines`)

  const blocklists = fc.sample(blocklistArb, { numRuns: 2000, seed: 42 })
  const entries = blocklists.flatMap((b) => [...b.prefixes, ...b.names])
  const dryRun = entries.filter((e) => typeof e !== 'string' && e.dryRun).length / entries.length
  t.ok(dryRun >= 0.05, `dry-run rules: ${(dryRun * 100).toFixed(1)}% of rules`)
  const kindPatterns =
    entries.filter((e) => /^_(sc|e)/.test(typeof e === 'string' ? e : e.pattern)).length / entries.length
  t.ok(kindPatterns >= 0.05, `rules on \`_sc\`/\`_e\` names: ${(kindPatterns * 100).toFixed(1)}% of rules`)
})

// The reference itself, on hand-picked cases: what the property compares the proxy with.
t.test('the reference filter: kinds, rule precedence and buckets', async (t) => {
  const datagrams = [
    Buffer.from(
      [
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
      ].join('\n'),
      'utf8',
    ),
  ]
  const result = referenceFilter(datagrams, {
    prefixes: ['a', { pattern: 'a.dry', dryRun: true }, { pattern: 'b', dryRun: true }, '_s'],
    names: ['b'],
  })
  t.same(result, {
    kept: ['a.dry.x:1|c', 'b.y:1|g', '_sc|_s.check|0', '_e{1,1}:a|b', '_e:1|c', 'ok:1|c'],
    blocked: 3,
    malformed: 2,
    wouldBlock: 2,
  })
})
