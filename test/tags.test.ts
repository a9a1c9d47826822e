// The in-place field walk of src/scan/tags.ts: TagCursor (the tags of a metric line by field, and their keys),
// typeSlot and nextPipe, checked on hand-written lines and against a split-based model of the spec's "Lines" section.
import fc from 'fast-check'
import t from 'tap'
import { METRIC_TYPE_SLOTS, nextPipe, TagCursor, typeSlot } from '../src/scan/tags.ts'

const OTHER_TYPE = METRIC_TYPE_SLOTS.indexOf('other')

/** One tag as the cursor reports it, offsets made relative to the line's start. */
interface Seen {
  tag: string
  first: boolean
  start: number
  /** Where its key ends: its first `:`, or its end. */
  keyEnd: number
  end: number
  fieldStart: number
  fieldEnd: number
}

/** Where the type field ends, as the filter works it out: the `|` after the type, or the line's end. */
function typeEndOf(buf: Buffer, start: number, end: number): number {
  const nameEnd = buf.indexOf(0x3a, start)
  const typeStart = nextPipe(buf, nameEnd + 1, end) + 1
  return nextPipe(buf, typeStart, end)
}

/** Every tag of the metric line `buf[start, end)`, in the order the cursor gives them (latin1, offsets from start). */
function walk(buf: Buffer, start: number, end: number, cursor = new TagCursor()): Seen[] {
  const seen: Seen[] = []
  cursor.reset(buf, typeEndOf(buf, start, end), end)
  for (let guard = 0; cursor.next(); guard++) {
    if (guard > end - start + 1) throw new Error('the cursor does not stop')
    seen.push({
      tag: buf.toString('latin1', cursor.start, cursor.end),
      first: cursor.first,
      start: cursor.start - start,
      keyEnd: cursor.keyEnd - start,
      end: cursor.end - start,
      fieldStart: cursor.fieldStart - start,
      fieldEnd: cursor.fieldEnd - start,
    })
  }
  if (cursor.next()) throw new Error('next() is true again after the last tag')
  return seen
}

/** The tags of a line alone in its buffer, as UTF-8 strings. */
function tagsOf(line: string): string[] {
  const buf = Buffer.from(line, 'utf8')
  return walk(buf, 0, buf.length).map((s) => Buffer.from(s.tag, 'latin1').toString('utf8'))
}

/** The tags by field, as the spec defines them with string splits (over latin1: one character per byte). */
function model(line: string): Seen[] {
  const pipe = line.indexOf('|')
  const fields = line.slice(pipe + 1).split('|')
  const seen: Seen[] = []
  let at = pipe + 1 + fields[0].length // the `|` before fields[1], or the line's end
  for (let i = 1; i < fields.length; i++) {
    const field = fields[i]
    const fieldStart = at
    const fieldEnd = at + 1 + field.length
    if (field.startsWith('#') && field.length > 1) {
      let tagStart = fieldStart + 2
      field
        .slice(1)
        .split(',')
        .forEach((tag, k) => {
          const keyEnd = tagStart + (tag.includes(':') ? tag.indexOf(':') : tag.length)
          seen.push({ tag, first: k === 0, start: tagStart, keyEnd, end: tagStart + tag.length, fieldStart, fieldEnd })
          tagStart += tag.length + 1
        })
    }
    at = fieldEnd
  }
  return seen
}

t.test('tags by field: none, one, several fields, in any position after the type', async (t) => {
  const cases: [string, string[]][] = [
    ['a:1|c', []],
    ['a:1|c|@0.5', []],
    ['a:1|c|#x', ['x']],
    ['a:1|c|#x,y:1,z', ['x', 'y:1', 'z']],
    ['a:1|c|@0.5|#x', ['x']],
    ['a:1|c|#x|@0.5', ['x']],
    ['a:1|c|#x|#y,z', ['x', 'y', 'z']],
    ['a:1|c|#x|@0.5|#y|c:abc|#z,w|T1700000000', ['x', 'y', 'z', 'w']],
    ['a:1|ms|c:container|e:it-false|card:high|#env:prod', ['env:prod']],
    ['a:1|d|zz:unknown|x|#k', ['k']],
    [
      'a:1|c|x#y|#k',
      ['k'], // a field with a `#` inside is not a tag field
    ],
  ]
  for (const [line, tags] of cases) t.same(tagsOf(line), tags, line)
})

t.test('empty fields, empty items, a trailing comma', async (t) => {
  const cases: [string, string[]][] = [
    ['a:1|c|#', []],
    ['a:1|c|#|#x', ['x']],
    ['a:1|c|#x|#', ['x']],
    ['a:1|c|#|@1|#|#', []],
    ['a:1|c|#a,,b', ['a', '', 'b']],
    ['a:1|c|#a,', ['a', '']],
    ['a:1|c|#,', ['', '']],
    ['a:1|c|#,a', ['', 'a']],
    ['a:1|c|#,,,', ['', '', '', '']],
    ['a:1|c|#a,|#,b', ['a', '', '', 'b']],
    ['a:1|c||#a', ['a']], // an empty field before a tag field
    ['a:1|c|#a||', ['a']],
  ]
  for (const [line, tags] of cases) t.same(tagsOf(line), tags, line)
})

t.test('the type field is never a tag field, even when it starts with #', async (t) => {
  t.same(tagsOf('a:1|#k:v'), [])
  t.same(tagsOf('a:1|#k:v|#x'), ['x'])
  t.same(tagsOf('a:1|#|#x,y'), ['x', 'y'])
  t.same(tagsOf('a:1|'), [], 'an empty type field at the line end')
  t.same(tagsOf('a:1||#x'), ['x'], 'an empty type field')
  t.same(tagsOf('a:1:2|c|#x'), ['x'], 'a value with a colon: the type is after the first pipe')
})

t.test('tags with : and # inside, and unicode, are bytes up to the next , or |', async (t) => {
  t.same(tagsOf('a:1|c|#url:http://x:8080/a,k:v:w'), ['url:http://x:8080/a', 'k:v:w'])
  t.same(tagsOf('a:1|c|##,#x,a#b'), ['#', '#x', 'a#b'])
  t.same(tagsOf('a:1|c|#:,:v,k:'), [':', ':v', 'k:'])
  t.same(tagsOf('métrique:1|c|#clé:été,指标,é'), ['clé:été', '指标', 'é'])
  t.same(tagsOf('a:1|g|#a\r,b'), ['a\r', 'b'], 'any byte but , and | belongs to the tag')
})

t.test(
  'offsets: start/end of each tag, fieldStart on its |, fieldEnd on the next | or the line end, first',
  async (t) => {
    const line = 'a:1|c|#x,k:v|@1|#|#,z:'
    const buf = Buffer.from(line)
    // a:1|c|#x,k:v|@1|#|#,z:
    // 0         1         2
    // 0123456789012345678901
    t.same(walk(buf, 0, buf.length), [
      { tag: 'x', first: true, start: 7, keyEnd: 8, end: 8, fieldStart: 5, fieldEnd: 12 },
      { tag: 'k:v', first: false, start: 9, keyEnd: 10, end: 12, fieldStart: 5, fieldEnd: 12 },
      { tag: '', first: true, start: 19, keyEnd: 19, end: 19, fieldStart: 17, fieldEnd: 22 },
      { tag: 'z:', first: false, start: 20, keyEnd: 21, end: 22, fieldStart: 17, fieldEnd: 22 },
    ])
    t.same(walk(buf, 0, buf.length), model(line))
  },
)

t.test('a line inside a larger buffer: nothing before start or after end is read', async (t) => {
  const line = 'a:1|c|#x,y|#z'
  // After the end: bytes that would extend the last tag, add a tag or a tag field if they were read.
  for (const after of [',w', 'w', '|#w', '\n|#w', ',', '|']) {
    const buf = Buffer.from(`q:1|c|#p|${line}${after}`)
    const start = buf.indexOf('a:1')
    const seen = walk(buf, start, start + line.length)
    t.same(
      seen.map((s) => s.tag),
      ['x', 'y', 'z'],
      JSON.stringify(after),
    )
    t.equal(seen[2].fieldEnd, line.length, 'the last field ends at the line end')
  }
  // A line that ends right after `|#`: the # is its last byte, whatever follows.
  const buf = Buffer.from('a:1|c|#x,y')
  t.same(
    walk(buf, 0, 'a:1|c|#'.length).map((s) => s.tag),
    [],
    'an empty tag field at end',
  )
  t.same(
    walk(buf, 0, 'a:1|c|#x,'.length).map((s) => s.tag),
    ['x', ''],
    'the line ends after a comma: an empty last tag',
  )
})

t.test('one cursor serves line after line: reset forgets the last line', async (t) => {
  const cursor = new TagCursor()
  const buf = Buffer.from('a:1|c|#x,y,z|#w\nb:1|c\nc:1|g|@1|#k:v')
  const lines = buf.toString('latin1').split('\n')
  let start = 0
  const got: string[][] = []
  for (const line of lines) {
    got.push(walk(buf, start, start + line.length, cursor).map((s) => s.tag))
    start += line.length + 1
  }
  t.same(got, [['x', 'y', 'z', 'w'], [], ['k:v']])
  // Reset halfway through a line's tags.
  const a = Buffer.from('a:1|c|#x,y')
  cursor.reset(a, 5, a.length)
  t.ok(cursor.next())
  const b = Buffer.from('b:1|c|#p')
  cursor.reset(b, 5, b.length)
  t.ok(cursor.next())
  t.equal(b.toString('latin1', cursor.start, cursor.end), 'p')
  t.notOk(cursor.next())
})

// Lines of bytes the fields are made of: separators, `#` and `:` inside tags, multi-byte UTF-8.
const partArb = fc.string({ unit: fc.constantFrom('a', 'k', ':', '|', '#', ',', 'é', '@', '1', '\r'), maxLength: 24 })
const lineArb = fc
  .tuple(fc.constantFrom('a', 'm.n', 'é'), fc.constantFrom('1', '1:2', ''), partArb)
  .map(([name, value, rest]) => `${name}:${value}|${rest}`)

t.test('agrees with a split-based model on random lines, inside a larger buffer', async (t) => {
  const cursor = new TagCursor()
  fc.assert(
    fc.property(lineArb, partArb, partArb, (line, before, after) => {
      const bytes = Buffer.from(line, 'utf8')
      const buf = Buffer.concat([Buffer.from(`${before}\n`), bytes, Buffer.from(after)])
      const start = Buffer.byteLength(`${before}\n`)
      const seen = walk(buf, start, start + bytes.length, cursor)
      const expected = model(bytes.toString('latin1'))
      if (JSON.stringify(seen) !== JSON.stringify(expected))
        throw new Error(`${JSON.stringify(line)}: ${JSON.stringify(seen)} != ${JSON.stringify(expected)}`)
    }),
    { numRuns: Number(process.env.PROPERTY_RUNS ?? 3000) },
  )
  t.pass('the cursor agrees with the model')
})

t.test('typeSlot: c, g, ms, h, s, d and everything else as other', async (t) => {
  t.same(METRIC_TYPE_SLOTS, ['c', 'g', 'ms', 'h', 's', 'd', 'other'])
  t.equal(OTHER_TYPE, 6)
  const slot = (type: string): number => {
    const buf = Buffer.from(`xx${type}yy`, 'latin1')
    return typeSlot(buf, 2, 2 + type.length)
  }
  for (const [i, type] of ['c', 'g', 'ms', 'h', 's', 'd'].entries()) t.equal(slot(type), i, type)
  for (const type of [
    '',
    'x',
    'C',
    'G',
    'MS',
    'Ms',
    'mS',
    'mx',
    'xs',
    'm',
    'sm',
    'mss',
    'cc',
    'dd',
    'ms ',
    ' c',
    'é',
    '#k:v',
    'hh',
  ])
    t.equal(slot(type), OTHER_TYPE, JSON.stringify(type))
  // Bounded by its range: the bytes around `ms` make neither `m` nor `s` match a one-byte type.
  const buf = Buffer.from('|ms|')
  t.equal(typeSlot(buf, 1, 2), OTHER_TYPE, '`m`')
  t.equal(typeSlot(buf, 2, 3), 4, '`s`')
  t.equal(typeSlot(buf, 1, 3), 2, '`ms`')
  t.equal(typeSlot(buf, 0, 3), OTHER_TYPE, '`|ms`')
})

t.test('the key of a tag ends at its first :, or with the tag', async (t) => {
  const keys = (line: string): string[] => {
    const buf = Buffer.from(line, 'utf8')
    return walk(buf, 0, buf.length).map((s) => s.tag.slice(0, s.keyEnd - s.start))
  }
  t.same(keys('a:1|c|#env:prod:x,host,:v,k:,,url:http://x:80'), ['env', 'host', '', 'k', '', 'url'])
  t.same(keys('a:1|c|#k:v|#k|#k:'), ['k', 'k', 'k'])
  // Bounded by the tag: a colon after the tag's comma, its field's | or the line's end is not its own.
  t.same(keys('a:1|c|#ab,c:d|#e|x:y'), ['ab', 'c', 'e'])
  const buf = Buffer.from('a:1|c|#ab:c')
  t.same(
    walk(buf, 0, 'a:1|c|#ab'.length).map((s) => s.keyEnd),
    [9],
    'the line ends before the colon',
  )
})

t.test('nextPipe: the first | in [from, end), or end', async (t) => {
  const buf = Buffer.from('a:1|c|#x')
  t.equal(nextPipe(buf, 0, buf.length), 3)
  t.equal(nextPipe(buf, 3, buf.length), 3, 'from itself')
  t.equal(nextPipe(buf, 4, buf.length), 5)
  t.equal(nextPipe(buf, 6, buf.length), buf.length, 'none: end')
  t.equal(nextPipe(buf, 0, 3), 3, 'a pipe at end is not in range')
  t.equal(nextPipe(buf, 4, 5), 5)
  t.equal(nextPipe(buf, 2, 2), 2, 'an empty range')
})
