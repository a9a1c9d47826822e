import t from 'tap'
import { scanDatagram } from '../src/scan/scanner.ts'
import type { LineSink } from '../src/scan/line-sink.ts'

type Seen = [kind: 'metric' | 'event' | 'serviceCheck' | 'malformed', line: string, name?: string]

/** Records what the scanner reports, decoding offsets so the test reads like the protocol. */
class RecordingSink implements LineSink {
  seen: Seen[] = []
  metric(buf: Buffer, start: number, nameEnd: number, end: number): void {
    this.seen.push(['metric', buf.toString('utf8', start, end), buf.toString('utf8', start, nameEnd)])
  }
  event(buf: Buffer, start: number, end: number): void {
    this.seen.push(['event', buf.toString('utf8', start, end)])
  }
  serviceCheck(buf: Buffer, start: number, end: number): void {
    this.seen.push(['serviceCheck', buf.toString('utf8', start, end)])
  }
  malformed(buf: Buffer, start: number, end: number): void {
    this.seen.push(['malformed', buf.toString('utf8', start, end)])
  }
}

function scan(datagram: string | Buffer): { lines: number; seen: Seen[] } {
  const buf = typeof datagram === 'string' ? Buffer.from(datagram, 'utf8') : datagram
  const sink = new RecordingSink()
  const lines = scanDatagram(buf, 0, buf.length, sink)
  return { lines, seen: sink.seen }
}

t.test('metric names are the bytes before the first colon, whatever follows', async (t) => {
  const cases: [string, string][] = [
    ['page.views:1|c', 'page.views'],
    ['multi.value:1:2:3|d', 'multi.value'], // several values packed in one line
    ['users.uniq:a:b:c|s', 'users.uniq'], // a set member containing ':'
    ['gauge.delta:-5|g', 'gauge.delta'],
    ['gauge.up:+5|g', 'gauge.up'],
    ['lat:12.5|ms|@0.25', 'lat'],
    ['req:1|c|#env:prod,url:http://x:8080/a', 'req'], // tags with ':' (and several)
    ['req:1|c|c:ci-abc123', 'req'],
    ['req:1|c|T1656581400', 'req'],
    ['req:1|c|card:high', 'req'],
    ['req:1|c|e:it-false,cn-abc', 'req'],
    ['req:1|c|zz:future-field|@1|#t', 'req'], // unknown fields pass untouched
    ['café.métrique:1|c', 'café.métrique'], // unicode names are raw UTF-8 bytes
    ['h:1|h|#a,b', 'h'],
    ['weird name with spaces:1|c', 'weird name with spaces'],
  ]
  for (const [line, name] of cases) {
    t.same(scan(line), { lines: 1, seen: [['metric', line, name]] }, line)
  }
})

t.test('events and service checks pass as whole lines, never parsed as metrics', async (t) => {
  const event = '_e{21,9}:title|with:pipes|and|text body|d:1|h:host|p:low|t:info|#env:prod'
  const sc = '_sc|my.check|0|d:1|h:host|#env:prod|m:all good: really'
  t.same(scan(`${event}\n${sc}`).seen, [
    ['event', event],
    ['serviceCheck', sc],
  ])
  // Only the exact openers count: `_e` alone or `_scx` are metric names like any other.
  t.same(scan('_e:1|c\n_sc:1|c\n_scx|a').seen, [
    ['metric', '_e:1|c', '_e'],
    ['metric', '_sc:1|c', '_sc'],
    ['malformed', '_scx|a'],
  ])
})

t.test('line splitting: LF, CRLF, empty lines, trailing newline', async (t) => {
  t.same(scan('a:1|c\nb:2|c'), {
    lines: 2,
    seen: [
      ['metric', 'a:1|c', 'a'],
      ['metric', 'b:2|c', 'b'],
    ],
  })
  t.same(scan('a:1|c\r\nb:2|c\r\n'), {
    lines: 2,
    seen: [
      ['metric', 'a:1|c', 'a'],
      ['metric', 'b:2|c', 'b'],
    ],
  })
  t.same(scan('a:1|c\r'), { lines: 1, seen: [['metric', 'a:1|c', 'a']] }, 'a CR ending the datagram')
  t.same(scan('\n\n\na:1|c\n\n\r\n\nb:2|c\n\n'), {
    lines: 2,
    seen: [
      ['metric', 'a:1|c', 'a'],
      ['metric', 'b:2|c', 'b'],
    ],
  })
  t.same(scan(''), { lines: 0, seen: [] })
  t.same(scan('\n'), { lines: 0, seen: [] })
  t.same(scan('\r\n\r\n'), { lines: 0, seen: [] })
  // Only one CR before the LF is a line ending; an earlier one is part of the line.
  t.same(scan('a:1|c\r\r\n').seen, [['metric', 'a:1|c\r', 'a']])
})

t.test('malformed metric lines', async (t) => {
  const bad = [
    ':1|c', // empty name
    'no.colon|c', // '|' before any ':'
    'pipe|first:1', // '|' before the first ':'
    'no.pipe:1', // no '|' at all
    'no.separators.at.all',
    ':', // empty name, no pipe
    '|', // nothing
    'name:', // colon, no pipe
    '_e', // too short to be an event, and no ':'
  ]
  for (const line of bad) t.same(scan(line), { lines: 1, seen: [['malformed', line]] }, JSON.stringify(line))
  // A bad line does not affect its neighbours.
  t.same(scan('ok:1|c\nbad\nok2:2|g').seen, [
    ['metric', 'ok:1|c', 'ok'],
    ['malformed', 'bad'],
    ['metric', 'ok2:2|g', 'ok2'],
  ])
})

t.test('scans only the given range of a larger buffer', async (t) => {
  const buf = Buffer.from('xx:1|c\nin.range:1|c\nalso:2|c\nyy:1|c')
  const start = buf.indexOf('in.range')
  const end = buf.indexOf('\nyy')
  const sink = new RecordingSink()
  t.equal(scanDatagram(buf, start, end, sink), 2)
  t.same(sink.seen, [
    ['metric', 'in.range:1|c', 'in.range'],
    ['metric', 'also:2|c', 'also'],
  ])
})

t.test('arbitrary bytes: NUL, invalid UTF-8, a 10,000-byte line', async (t) => {
  const nul = Buffer.from([0x61, 0x00, 0x62, 0x3a, 0x31, 0x7c, 0x63]) // "a\0b:1|c"
  const sink = new RecordingSink()
  t.equal(scanDatagram(nul, 0, nul.length, sink), 1)
  t.equal(sink.seen[0][0], 'metric')
  const invalid = Buffer.from([0xff, 0xfe, 0x3a, 0x31, 0x7c, 0x63, 0x0a, 0xc3])
  const sink2 = new RecordingSink()
  t.equal(scanDatagram(invalid, 0, invalid.length, sink2), 2)
  t.same(
    sink2.seen.map((s) => s[0]),
    ['metric', 'malformed'],
  )
  const long = `${'n'.repeat(10_000)}:1|c`
  t.same(scan(long).seen, [['metric', long, 'n'.repeat(10_000)]])
})
