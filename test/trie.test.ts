import t from 'tap'
import { rulesFromBlocklist } from '../src/match/rules.ts'
import { compileTrie, Trie } from '../src/match/trie.ts'

function compile(prefixes: string[], names: string[] = []): Trie {
  return new Trie(compileTrie(rulesFromBlocklist({ prefixes, names })))
}

function match(trie: Trie, name: string): number {
  const buf = Buffer.from(name, 'utf8')
  return trie.match(buf, 0, buf.length)
}

t.test('rule table: prefixes first, then names, each indexed, with its options', async (t) => {
  t.same(rulesFromBlocklist({ prefixes: ['a.', { pattern: 'b.', dryRun: true }], names: ['c'] }), [
    { index: 0, kind: 'prefix', pattern: 'a.', dryRun: false },
    { index: 1, kind: 'prefix', pattern: 'b.', dryRun: true },
    { index: 2, kind: 'name', pattern: 'c', dryRun: false },
  ])
})

t.test('an empty blocklist matches nothing', async (t) => {
  const trie = compile([])
  t.equal(trie.nodeCount, 1)
  for (const name of ['', 'a', 'legacy.x', '\u00ff\u0000']) t.equal(match(trie, name), -1)
})

t.test('prefixes match the name itself and every extension, nothing shorter or different', async (t) => {
  const trie = compile(['legacy.', 'debug.tmp'])
  t.equal(match(trie, 'legacy.'), 0)
  t.equal(match(trie, 'legacy.requests'), 0)
  t.equal(match(trie, 'debug.tmp'), 1)
  t.equal(match(trie, 'debug.tmpfile.size'), 1)
  t.equal(match(trie, 'legacy'), -1)
  t.equal(match(trie, 'Legacy.requests'), -1, 'byte-wise: case matters')
  t.equal(match(trie, 'app.legacy.x'), -1, 'a prefix anchors at the start')
  t.equal(match(trie, 'debug.tm'), -1)
  t.equal(match(trie, ''), -1)
})

t.test('exact names match only the whole name', async (t) => {
  const trie = compile([], ['app.requests.old', 'app'])
  t.equal(match(trie, 'app.requests.old'), 0)
  t.equal(match(trie, 'app'), 1)
  t.equal(match(trie, 'app.requests.old.v2'), -1)
  t.equal(match(trie, 'app.requests.ol'), -1)
  t.equal(match(trie, 'ap'), -1)
})

t.test('overlapping prefixes: the longest wins; an exact name beats any prefix', async (t) => {
  const trie = compile(['a', 'a.b.', 'a.b.c'], ['a.b.c.d', 'a.b.'])
  t.equal(match(trie, 'a.x'), 0)
  t.equal(match(trie, 'a.b.x'), 1)
  t.equal(match(trie, 'a.b.cx'), 2)
  t.equal(match(trie, 'a.b.c.d'), 3, 'exact name over prefix a.b.c')
  t.equal(match(trie, 'a.b.c.d.e'), 2, 'the name rule is exact: longer names fall back to the prefix')
  t.equal(match(trie, 'a.b.'), 4, 'a prefix equal to a name: the name rule is reported')
  t.equal(match(trie, 'a'), 0)
})

t.test('of duplicate rules the first one wins', async (t) => {
  const trie = compile(['x.', 'y.', 'x.'], ['n', 'n'])
  t.equal(match(trie, 'x.1'), 0)
  t.equal(match(trie, 'n'), 3)
  t.equal(trie.ruleCount, 5)
})

t.test('UTF-8 names and every byte value', async (t) => {
  const trie = compile(['métrique.', '指标', '\u0000nul'], ['ünï'])
  t.equal(match(trie, 'métrique.x'), 0)
  t.equal(match(trie, 'metrique.x'), -1)
  t.equal(match(trie, '指标.requests'), 1)
  t.equal(match(trie, '指'), -1, 'half of a multi-byte prefix does not match')
  t.equal(match(trie, '\u0000nul.x'), 2)
  t.equal(match(trie, 'ünï'), 3)
  // Invalid UTF-8 in a name is just bytes: no match, no throw.
  const raw = Buffer.from([0xff, 0xfe, 0x00, 0x80])
  t.equal(trie.match(raw, 0, raw.length), -1)
  // A node with 128 ASCII children and the lead bytes of the Latin-1 range: a dense node in the double array.
  const patterns = Array.from({ length: 256 }, (_, c) => `k${String.fromCharCode(c)}`)
  const dense = compile(patterns)
  for (let c = 0; c < 256; c++) {
    t.equal(match(dense, `${patterns[c]}.x`), c, `code point ${c}`)
  }
  t.equal(match(dense, 'k'), -1)
})

t.test('matches within a range of a larger buffer', async (t) => {
  const trie = compile(['abc'])
  const buf = Buffer.from('xxabcdef:1|c')
  t.equal(trie.match(buf, 2, 8), 0)
  t.equal(trie.match(buf, 2, 4), -1, 'the range ends before the prefix does')
  t.equal(trie.match(buf, 0, 8), -1)
})

t.test('100,000 rules: every rule matches its own names, near misses do not', async (t) => {
  const prefixes: string[] = []
  const names: string[] = []
  for (let i = 0; i < 50_000; i++) prefixes.push(`legacy.team${i}.svc${i % 97}.`)
  for (let i = 0; i < 50_000; i++) names.push(`app.metric.${(i * 2654435761) % 1_000_003}.count`)
  const trie = compile(prefixes, names)
  t.equal(trie.ruleCount, 100_000)
  let wrong = 0
  for (let i = 0; i < 50_000; i++) {
    if (match(trie, `legacy.team${i}.svc${i % 97}.requests`) !== i) wrong++
    if (match(trie, `legacy.team${i}.svc${(i % 97) + 1}.requests`) !== -1) wrong++
  }
  const seen = new Map<string, number>()
  names.forEach((n, i) => seen.has(n) || seen.set(n, 50_000 + i))
  for (const [n, index] of seen) {
    if (match(trie, n) !== index) wrong++
    if (match(trie, `${n}.x`) !== -1) wrong++
  }
  t.equal(wrong, 0)
})

t.test('agrees with a naive reference on random rule sets', async (t) => {
  // Small alphabet so that prefixes overlap a lot.
  let seed = 12345
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  const word = (): string => Array.from({ length: 1 + rand(6) }, () => 'ab.é'[rand(4)]).join('')
  for (let round = 0; round < 200; round++) {
    const prefixes = Array.from({ length: rand(20) }, word)
    const names = Array.from({ length: rand(20) }, word)
    const trie = compile(prefixes, names)
    for (let k = 0; k < 50; k++) {
      const name = word() + (rand(2) ? word() : '')
      const exact = names.indexOf(name)
      let expected = exact === -1 ? -1 : prefixes.length + exact
      if (expected === -1) {
        let bestLen = -1
        prefixes.forEach((p, i) => {
          if (name.startsWith(p) && p.length > bestLen) {
            bestLen = p.length
            expected = prefixes.indexOf(p) === i ? i : expected
          }
        })
      }
      if (match(trie, name) !== expected) {
        t.fail(`round ${round}: ${JSON.stringify({ prefixes, names, name, got: match(trie, name), expected })}`)
        return
      }
    }
  }
  t.pass('200 random rule sets x 50 names agree')
})

t.test('find: the rule with exactly a kind and pattern, not the best match', async (t) => {
  const trie = compile(['a', 'a.b.', 'x'], ['a.b.', 'a.b.c'])
  const find = (kind: 'prefix' | 'name', pattern: string): number => trie.find(kind, Buffer.from(pattern))
  t.equal(find('prefix', 'a'), 0)
  t.equal(find('prefix', 'a.b.'), 1)
  t.equal(find('name', 'a.b.'), 3)
  t.equal(find('name', 'a.b.c'), 4)
  t.equal(find('prefix', 'a.b.c'), -1, 'a.b.c is a name rule, not a prefix')
  t.equal(find('prefix', 'a.'), -1, 'an inner node is no rule')
  t.equal(find('name', 'a'), -1)
  t.equal(find('prefix', 'zzz'), -1)
})

t.test('matchAll: every prefix on the path, shortest first, then the exact name, written from `at` on', async (t) => {
  const trie = compile(['a', 'a.b.', 'a.b.c', 'x'], ['a.b.c', 'a.b', 'a'])
  const all = (name: string, at = 0): number[] => {
    const buf = Buffer.from(name, 'utf8')
    const out = new Int32Array(at + 8).fill(-9)
    const end = trie.matchAll(buf, 0, buf.length, out, at)
    t.same([...out.subarray(0, at)], new Array(at).fill(-9), 'nothing before at is written')
    t.same([...out.subarray(end)], new Array(out.length - end).fill(-9), 'nothing past the returned end')
    return [...out.subarray(at, end)]
  }
  t.same(all('a.b.c'), [0, 1, 2, 4], 'a, a.b., the prefix a.b.c, then the name a.b.c')
  t.same(all('a.b.c.d'), [0, 1, 2], 'a longer name: the prefixes only')
  t.same(all('a.b.'), [0, 1], 'a prefix equal to the name comes last, and a.b is a name, not a prefix')
  t.same(all('a.b'), [0, 5])
  t.same(all('a'), [0, 6], 'a prefix and a name of the same pattern: the prefix first')
  t.same(all('a.x'), [0])
  t.same(all('b'), [])
  t.same(all(''), [])
  t.same(all('xa.b.c'), [3], 'prefixes anchor at the start')
  t.same(all('a.b.c', 3), [0, 1, 2, 4], 'from at = 3')
  // Within a range of a larger buffer.
  const buf = Buffer.from('--a.b.c--')
  const out = new Int32Array(8)
  t.equal(trie.matchAll(buf, 2, 5, out, 1), 3, 'a.b')
  t.same([...out.subarray(1, 3)], [0, 5])
  t.equal(trie.matchAll(buf, 2, 7, out, 0), 4)
  t.same([...out.subarray(0, 4)], [0, 1, 2, 4])
  t.equal(compile([]).matchAll(buf, 0, buf.length, out, 2), 2, 'an empty trie: at unchanged')
})

t.test('matchAll agrees with a naive reference, and match() is its last result', async (t) => {
  let seed = 777
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed % n
  }
  const word = (): string => Array.from({ length: 1 + rand(5) }, () => 'ab.é'[rand(4)]).join('')
  for (let round = 0; round < 100; round++) {
    const prefixes = [...new Set(Array.from({ length: rand(12) }, word))]
    const names = [...new Set(Array.from({ length: rand(12) }, word))]
    const trie = compile(prefixes, names)
    const out = new Int32Array(64)
    for (let k = 0; k < 30; k++) {
      const name = word() + (rand(2) ? word() : '')
      const buf = Buffer.from(name, 'utf8')
      const got = [...out.subarray(0, trie.matchAll(buf, 0, buf.length, out, 0))]
      const expected = prefixes
        .map((p, i) => ({ p, i }))
        .filter(({ p }) => name.startsWith(p))
        .sort((x, y) => Buffer.byteLength(x.p) - Buffer.byteLength(y.p))
        .map(({ i }) => i)
      if (names.includes(name)) expected.push(prefixes.length + names.indexOf(name))
      // match() is the last of them: the exact name if there is one, else the longest prefix.
      const best = got.length === 0 ? -1 : got[got.length - 1]
      if (JSON.stringify(got) !== JSON.stringify(expected) || best !== match(trie, name)) {
        t.fail(`round ${round}: ${JSON.stringify({ prefixes, names, name, got, expected })}`)
        return
      }
    }
  }
  t.pass('100 random rule sets x 30 names agree')
})

t.test('matchUntil: the exact name up to the first stop byte, and where it stopped', async (t) => {
  const trie = compile(['env'], ['env', 'user_id', 'host'])
  const stops = new Uint8Array(256)
  for (const c of ':,|') stops[c.charCodeAt(0)] = 1
  const buf = Buffer.from('#env:prod,user_id:u1,host,user_idx:1,en|x,,us', 'utf8')
  const at = (s: string, from = 0): number => buf.indexOf(s, from)
  const walk = (from: number): [number, number] => [trie.matchUntil(buf, from, buf.length, stops), trie.stoppedAt]
  t.same(walk(1), [1, at(':prod')], 'a name rule, not the prefix of the same pattern')
  t.same(walk(at('user_id')), [2, at(':u1')])
  t.same(walk(at('host')), [3, at(',user_idx')], 'stops at a comma')
  t.same(walk(at('user_idx')), [-1, at(':1')], 'a longer key is another key')
  t.same(walk(at('en|')), [-1, at('|x')], 'a shorter key is another key; stops at a pipe')
  t.same(walk(at(',,') + 1), [-1, at(',,') + 1], 'an empty key')
  t.same(walk(buf.lastIndexOf(',us') + 1), [-1, buf.length], 'a walk that leaves the trie still finds the end')
  t.same([trie.matchUntil(buf, at('host'), at('host') + 2, stops), trie.stoppedAt], [-1, at('host') + 2], 'or the end')
})
