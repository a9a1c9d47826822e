// SeriesHasher: the tags collect records from real DogStatsD bytes, and series hashes that depend on the name and
// the set of tags only (order, duplicates and empty tags aside).
import fc from 'fast-check'
import t from 'tap'
import { IDENTITY1, lineHash, lineHashes, SeriesHasher } from '../src/scan/series-hash.ts'

/** The line placed behind a few bytes of another line, as it sits in a datagram; collect run on it. */
function collect(hasher: SeriesHasher, line: string): { buf: Buffer; start: number } {
  const buf = Buffer.from(`x:1|c\n${line}\nlast:1|c`)
  const start = 6
  const end = start + Buffer.byteLength(line)
  hasher.collect(buf, start, buf.indexOf(0x3a, start), end)
  return { buf, start }
}

/** The tags and keys collect recorded, as text. */
function tags(hasher: SeriesHasher, line: string): { tags: string[]; keys: string[] } {
  const { buf } = collect(hasher, line)
  const out = { tags: [] as string[], keys: [] as string[] }
  for (let i = 0; i < hasher.count; i++) {
    out.tags.push(buf.toString('utf8', hasher.tagStart[i], hasher.tagEnd[i]))
    out.keys.push(buf.toString('utf8', hasher.tagStart[i], hasher.keyEnd[i]))
  }
  return out
}

function seriesOf(line: string, keep: Uint8Array | null = null, hasher = new SeriesHasher(16)): number {
  collect(hasher, line)
  hasher.series(keep)
  return hasher.seriesHash
}

t.test('collect records the tags of every tag field, skipping empty ones', async (t) => {
  const hasher = new SeriesHasher(16)
  t.same(tags(hasher, 'a.b:1|c|#env:prod,region:eu|@0.5|#team:x,,y:|c:abc|T1'), {
    tags: ['env:prod', 'region:eu', 'team:x', 'y:'],
    keys: ['env', 'region', 'team', 'y'],
  })
  t.same(tags(hasher, 'a:1:2:3|d|#url:http://h:80/p,k'), { tags: ['url:http://h:80/p', 'k'], keys: ['url', 'k'] })
  t.same(tags(hasher, 'a:1|c'), { tags: [], keys: [] })
  t.same(tags(hasher, 'a:1|c|@0.1'), { tags: [], keys: [] })
  t.same(tags(hasher, 'a:1|c|#'), { tags: [], keys: [] })
  t.same(tags(hasher, 'a:1|c|#,,|#'), { tags: [], keys: [] })
  t.same(tags(hasher, 'a:1|c|#a,'), { tags: ['a'], keys: ['a'] })
  t.same(tags(hasher, 'a:1|#notatag|#t'), { tags: ['t'], keys: ['t'] }, 'the type field is not a tag field')
  t.same(tags(hasher, 'ü.ñ:1|c|#ключ:значение,🙂:x'), { tags: ['ключ:значение', '🙂:x'], keys: ['ключ', '🙂'] })
  const small = new SeriesHasher(2)
  t.same(tags(small, 'a:1|c|#x,y,z'), { tags: ['x', 'y'], keys: ['x', 'y'] }, 'tags past maxTags are ignored')
  t.equal(small.count, 2)
})

t.test('hashes: keys by their bytes, tags never 0, names twice', async (t) => {
  const hasher = new SeriesHasher(16)
  collect(hasher, 'n:1|c|#env:a,env:b,env,x:a')
  const h = hasher.keyHash
  t.equal(h[0], h[1], 'same key, other value')
  t.equal(h[0], h[2], 'a tag without a value is its own key')
  t.not(h[0], h[3])
  t.not(hasher.tagHash[0], hasher.tagHash[1])
  for (let i = 0; i < hasher.count; i++) t.not(hasher.tagHash[i], 0)
  const first = [hasher.nameHash, hasher.nameHash2]
  collect(hasher, 'm:1|c')
  t.not(hasher.nameHash, first[0])
  t.not(hasher.nameHash2, first[1])
  t.not(hasher.nameHash, hasher.nameHash2)
})

t.test('a series is the name and the set of tags', async (t) => {
  const base = seriesOf('req:1|c|#env:prod,region:eu,host:a')
  t.same(seriesOf('req:7|c|#host:a,env:prod,region:eu'), base, 'order and value do not matter')
  t.same(seriesOf('req:1|ms|@0.5|#region:eu,host:a|#env:prod,host:a'), base, 'fields split, duplicates')
  t.same(seriesOf('req:1|c|#env:prod,,region:eu,host:a,'), base, 'empty tags')
  t.notSame(seriesOf('req:1|c|#env:prod,region:eu,host:b'), base)
  t.notSame(seriesOf('req:1|c|#env:prod,region:eu'), base)
  t.notSame(seriesOf('res:1|c|#env:prod,region:eu,host:a'), base)
  t.notSame(seriesOf('req:1|c|#env:prod:region:eu,host:a'), base, 'a colon is not a comma')
  t.same(seriesOf('req:1|c'), seriesOf('req:2|g|#'))
})

t.test('the keep mask selects the tags of the series', async (t) => {
  const keep = Uint8Array.of(1, 0, 1)
  t.same(seriesOf('req:1|c|#env:prod,host:a,region:eu', keep), seriesOf('req:1|c|#region:eu,env:prod'))
  t.same(seriesOf('req:1|c|#env:prod,host:a', Uint8Array.of(0, 0)), seriesOf('req:1|c'))
  const hasher = new SeriesHasher(16)
  collect(hasher, 'req:1|c|#a,b')
  hasher.series(Uint8Array.of(1, 0))
  const kept = hasher.seriesHash
  hasher.series(null)
  t.not(hasher.seriesHash, kept, 'series can run again on the same line')
  hasher.series(Uint8Array.of(1, 0))
  t.equal(hasher.seriesHash, kept)
})

t.test('property: a permutation with duplicates of the tags is the same series', async (t) => {
  const tag = fc.oneof(
    fc.stringMatching(/^[a-z_]{1,8}(:[a-z0-9:/.]{0,10})?$/),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }).filter((s) => !/[|,\n]/.test(s)),
  )
  const hasher = new SeriesHasher(64)
  fc.assert(
    fc.property(
      fc.uniqueArray(tag, { maxLength: 12 }),
      fc.array(fc.nat(), { maxLength: 24 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      (unique, picks, splits) => {
        const line = (list: string[]): string => 'metric.name:1|c|#' + list.join(',')
        const base = seriesOf(line(unique), null, hasher)
        // A shuffle by picks, then duplicates, then the tags spread over several fields.
        const shuffled = unique.slice()
        picks.forEach((pick, i) => {
          const a = i % Math.max(1, shuffled.length)
          const b = pick % Math.max(1, shuffled.length)
          ;[shuffled[a], shuffled[b]] = [shuffled[b], shuffled[a]]
        })
        const duplicated = shuffled.concat(
          picks.slice(0, 6).flatMap((pick) => (unique.length ? [unique[pick % unique.length]] : [])),
        )
        let fields = 'metric.name:2|ms'
        let from = 0
        for (const split of splits.concat(duplicated.length)) {
          const to = Math.min(duplicated.length, from + (split % 4))
          fields += '|#' + duplicated.slice(from, to).join(',')
          from = to
        }
        fields += '|#' + duplicated.slice(from).join(',')
        const other = seriesOf(fields, null, hasher)
        return other === base
      },
    ),
    { numRuns: 2000, seed: 42 },
  )
  t.pass('held for 2000 runs')
})

t.test('lineHash: every byte of name and fields counts, whichever chain steps it; the value does not', async (t) => {
  const base = 'svc.request.latency:12.5|ms|@0.5|#env:prod,service:api,region:us-east-1,pod:web-7f9c|T1700000000'
  const firstWords = new Set<number>()
  const identity = (line: string): string => {
    const buf = Buffer.from(line, 'latin1')
    const nameEnd = buf.indexOf(0x3a)
    lineHash(buf, 0, nameEnd, buf.indexOf(0x7c, nameEnd), buf.length)
    firstWords.add(lineHashes[IDENTITY1])
    return [...lineHashes].join(',')
  }
  const seen = new Set([identity(base)])
  const valueStart = base.indexOf(':') + 1
  const valueEnd = base.indexOf('|')
  for (let i = 0; i < base.length; i++) {
    if (i >= valueStart && i < valueEnd) continue
    // One byte changed: a block of the name (both chains), of the fields (one chain each, in turns) or a last byte.
    seen.add(identity(base.slice(0, i) + String.fromCharCode(base.charCodeAt(i) ^ 1) + base.slice(i + 1)))
  }
  t.equal(seen.size, base.length - (valueEnd - valueStart) + 1, 'each changed byte: an identity of its own')
  // The tables of recent lines are indexed by the first word: it depends on the blocks of both chains.
  t.equal(firstWords.size, seen.size, 'and a first word of its own')
  t.equal(identity(base.replace('12.5', '7')), identity(base), 'another value: the same identity')
})
