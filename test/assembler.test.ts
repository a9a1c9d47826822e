// Unit tests of the batching stage: the Assembler over a real BufferPool and Counters, feeding a fake Target
// that records a copy of every datagram and completes each send only when the test says so.
import t from 'tap'
import { Assembler } from '../src/batch/assembler.ts'
import { BufferPool } from '../src/batch/pool.ts'
import { lineHash, lineHashes, NAME_HASH1, NAME_HASH2, SeriesHasher } from '../src/scan/series-hash.ts'
import type { SendDone, SendQueue, Target } from '../src/send/target.ts'
import { Counters } from '../src/telemetry/counters.ts'

/** One send the assembler made: a copy of its bytes (taken at send time) and what it was handed. */
interface Sent {
  bytes: Buffer
  buf: Buffer
  offset: number
  length: number
  done: SendDone
}

class FakeTarget implements Target {
  readonly address = 'fake'
  readonly sent: Sent[] = []
  send(buf: Buffer, offset: number, length: number, done: SendDone): void {
    this.sent.push({ bytes: Buffer.from(buf.subarray(offset, offset + length)), buf, offset, length, done })
  }
  /** The datagrams sent so far, as text. */
  texts(): string[] {
    return this.sent.map((s) => s.bytes.toString('latin1'))
  }
  /** Completes send number `i` (in send order), successfully or with `err`. */
  complete(i: number, err: Error | null = null): void {
    if (i >= this.sent.length) throw new Error(`no send number ${i}: ${this.sent.length} sent`)
    this.sent[i].done(err)
  }
  queue(): SendQueue {
    return { count: 0, bytes: 0 }
  }
  close(): Promise<void> {
    return Promise.resolve()
  }
}

interface Rig {
  assembler: Assembler
  pool: BufferPool
  target: FakeTarget
  counters: Counters
  sendErrors: Error[]
  /** Appends a whole string as one line (from a buffer of its own). */
  line(text: string): boolean
}

function rig(poolSize: number, maxPacketSize: number): Rig {
  const pool = new BufferPool(poolSize, maxPacketSize)
  const target = new FakeTarget()
  const counters = new Counters()
  const sendErrors: Error[] = []
  const assembler = new Assembler({ pool, target, counters, onSendError: (err) => sendErrors.push(err) })
  const line = (text: string): boolean => {
    const src = Buffer.from(text, 'latin1')
    return assembler.append(src, 0, src.length)
  }
  return { assembler, pool, target, counters, sendErrors, line }
}

/** The end of the current event-loop turn: the assembler's own setImmediate (queued earlier) has run. */
const turnEnd = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** A line of exactly `length` bytes that starts with `name`. */
function lineOf(name: string, length: number): string {
  const head = `${name}:1|c|#`
  if (length < head.length) throw new Error(`a line of ${length} bytes cannot start with ${head}`)
  return head + 'x'.repeat(length - head.length)
}

t.test(
  'lines are copied unchanged and joined by exactly one \\n, with none before the first or after the last',
  async (t) => {
    const { assembler, target, counters } = rig(4, 512)
    const src = Buffer.from('junk a:1|c\nb.b:2|g|#t:v\n_e{1,1}:x|y!', 'latin1')
    // Three lines taken out of the middle of one received buffer, at the offsets the scanner would give.
    t.equal(assembler.append(src, 5, 10), true)
    t.equal(assembler.append(src, 11, 23), true)
    t.equal(assembler.append(src, 24, 35), true)
    src.fill(0x3f) // the received buffer may be reused: the datagram holds copies
    assembler.flush()
    t.same(target.texts(), ['a:1|c\nb.b:2|g|#t:v\n_e{1,1}:x|y'])
    t.equal(target.sent[0].offset, 0)
    t.equal(counters.linesForwarded, 3)
    t.equal(counters.datagramsOut, 1)
    t.equal(counters.bytesOut, 'a:1|c\nb.b:2|g|#t:v\n_e{1,1}:x|y'.length)
    t.equal(counters.linesOversize, 0)
    assembler.flush()
    t.equal(target.sent.length, 1, 'a flush with nothing pending sends nothing')
  },
)

t.test('the fit boundary: a datagram is filled to exactly maxPacketSize and never one byte past it', async (t) => {
  t.test('A + \\n + B of exactly maxPacketSize bytes leave as one datagram', async (t) => {
    const { assembler, target, counters } = rig(4, 512)
    const a = lineOf('a', 255)
    const b = lineOf('b', 256)
    t.equal(a.length + 1 + b.length, 512)
    assembler.append(Buffer.from(a), 0, a.length)
    assembler.append(Buffer.from(b), 0, b.length)
    assembler.flush()
    t.same(target.texts(), [`${a}\n${b}`])
    t.equal(target.sent[0].length, 512)
    t.equal(counters.datagramsOut, 1)
  })

  t.test('A + \\n + B of maxPacketSize + 1 bytes leave as two datagrams, A then B', async (t) => {
    const { line, assembler, target, counters } = rig(4, 512)
    const a = lineOf('a', 255)
    const b = lineOf('b', 257)
    t.equal(a.length + 1 + b.length, 513)
    t.equal(a.length + b.length, 512, 'without the separator it would fit: the separator must be counted')
    line(a)
    line(b)
    assembler.flush()
    t.same(target.texts(), [a, b])
    for (const s of target.sent) t.ok(s.length <= 512, `a datagram of ${s.length} bytes`)
    t.equal(counters.datagramsOut, 2)
    t.equal(counters.bytesOut, 512)
    t.equal(counters.linesForwarded, 2)
  })

  t.test('a single line of exactly maxPacketSize bytes fills one pooled datagram (it is not oversize)', async (t) => {
    const { line, assembler, pool, target, counters } = rig(4, 512)
    const a = Buffer.from(lineOf('a', 512))
    const b = lineOf('b', 10)
    assembler.append(a, 0, a.length)
    line(b) // one more byte would not fit: b starts the next datagram
    assembler.flush()
    t.same(target.texts(), [a.toString(), b])
    t.equal(counters.linesOversize, 0)
    t.not(target.sent[0].buf, a, 'copied into a pool buffer, not sent from the source')
    t.ok(Array.from({ length: pool.size }, (_, slot) => pool.buffer(slot)).includes(target.sent[0].buf))
  })

  t.test('many small lines: every datagram is as full as the next line allows', async (t) => {
    const { line, assembler, target } = rig(8, 64)
    const lines = Array.from({ length: 40 }, (_, i) => `m${i}:${i}|c`)
    for (const l of lines) line(l)
    assembler.flush()
    t.same(
      target.texts().flatMap((d) => d.split('\n')),
      lines,
      'every line once, in order',
    )
    for (let i = 0; i < target.sent.length; i++) {
      t.ok(target.sent[i].length <= 64, `datagram ${i}: ${target.sent[i].length} bytes`)
      if (i + 1 < target.sent.length) {
        const nextFirst = target.texts()[i + 1].split('\n')[0]
        t.ok(target.sent[i].length + 1 + nextFirst.length > 64, `datagram ${i} could not take the next line`)
      }
    }
  })
})

t.test('a line longer than maxPacketSize leaves alone and whole, in a copy of its own', async (t) => {
  const { line, assembler, target, counters } = rig(2, 64)
  const big = Buffer.from(`xx${lineOf('big', 65)}yy`, 'latin1')
  line('a:1|c') // pending: must leave first, to keep the order of lines
  t.equal(assembler.append(big, 2, 67), true)
  // A receive area is overwritten by the next read while the send is still in flight.
  big.fill(0x78)
  line('b:2|c')
  assembler.flush()
  t.same(target.texts(), ['a:1|c', lineOf('big', 65), 'b:2|c'])
  const held = target.sent[1]
  t.equal(
    held.buf.toString('latin1', held.offset, held.offset + held.length),
    lineOf('big', 65),
    'the send holds a copy',
  )
  t.equal(held.length, 65)
  t.equal(counters.linesOversize, 1)
  t.equal(counters.linesForwarded, 3)
  t.equal(counters.datagramsOut, 3)
  t.equal(counters.bytesOut, 5 + 65 + 5)
  t.equal(assembler.inFlight(), 3, 'the two pooled sends and the oversize one')
  for (let i = 0; i < 3; i++) target.complete(i)
  t.equal(assembler.inFlight(), 0)
})

t.test('oversize sends in flight are bounded by the pool size too', async (t) => {
  const { assembler, target, counters } = rig(2, 16)
  const big = Buffer.from(lineOf('big', 40))
  t.equal(assembler.append(big, 0, big.length), true)
  t.equal(assembler.append(big, 0, big.length), true)
  t.equal(assembler.append(big, 0, big.length), false, 'a third oversize send in flight is refused')
  t.equal(counters.linesDroppedBackpressure, 1)
  t.equal(counters.linesOversize, 2)
  t.equal(counters.linesForwarded, 2)
  t.equal(target.sent.length, 2)
  target.complete(0)
  t.equal(assembler.append(big, 0, big.length), true, 'room again once one completes')
  t.equal(target.sent.length, 3)
})

t.test('what is pending is sent at the end of the event-loop turn, with no explicit flush', async (t) => {
  const { line, target, counters } = rig(4, 512)
  line('a:1|c')
  line('b:1|c')
  t.equal(target.sent.length, 0, 'nothing leaves while the turn goes on')
  await turnEnd()
  t.same(target.texts(), ['a:1|c\nb:1|c'])
  target.complete(0)
  line('c:1|c')
  t.equal(target.sent.length, 1)
  await turnEnd()
  t.same(target.texts(), ['a:1|c\nb:1|c', 'c:1|c'], 'a line of a later turn goes in a datagram of its own')
  target.complete(1)
  await turnEnd()
  t.equal(target.sent.length, 2, 'an empty turn sends nothing')
  t.equal(counters.datagramsOut, 2)
})

t.test('when every pool buffer is in flight, append drops the line and counts it as backpressure', async (t) => {
  const { line, assembler, pool, target, counters } = rig(2, 512)
  t.equal(line('a:1|c'), true)
  assembler.flush()
  t.equal(line('b:1|c'), true)
  assembler.flush()
  t.equal(pool.inUse, 2)
  t.equal(assembler.inFlight(), 2)
  t.equal(line('c:1|c'), false, 'no free buffer')
  t.equal(line('d:1|c'), false)
  t.equal(counters.linesDroppedBackpressure, 2)
  t.equal(counters.linesForwarded, 2)
  assembler.flush()
  t.equal(target.sent.length, 2, 'nothing was pending')
  target.complete(1)
  t.equal(pool.inUse, 1)
  t.equal(line('e:1|c'), true, 'a completed send frees its buffer')
  assembler.flush()
  t.same(target.texts(), ['a:1|c', 'b:1|c', 'e:1|c'])
  t.equal(counters.linesDroppedBackpressure, 2)
  t.equal(counters.linesForwarded, 3)
  t.equal(counters.linesIn, 0, 'linesIn is the filter’s to count')
})

t.test('a failed send counts sendErrors and exactly the lines of that datagram, and reports the error', async (t) => {
  const { line, assembler, target, counters, sendErrors } = rig(2, 512)
  line('a:1|c')
  line('b:1|c')
  line('c:1|c')
  assembler.flush() // send 0: 3 lines
  line('d:1|c')
  line('e:1|c')
  assembler.flush() // send 1: 2 lines
  const refused = new Error('ECONNREFUSED')
  target.complete(1, refused)
  t.equal(counters.sendErrors, 1)
  t.equal(counters.linesSendFailed, 2, 'the two lines of the failed datagram, not those of the other one')
  t.same(sendErrors, [refused])
  target.complete(0)
  t.equal(counters.sendErrors, 1, 'a successful send counts nothing')
  t.equal(counters.linesSendFailed, 2)

  // The freed buffers are reused with other line counts: each failure counts its own datagram's lines.
  line('f:1|c')
  assembler.flush() // send 2: 1 line
  for (const l of ['g', 'h', 'i', 'j']) line(`${l}:1|c`)
  assembler.flush() // send 3: 4 lines
  const second = new Error('EPERM')
  target.complete(2, second)
  t.equal(counters.linesSendFailed, 3)
  target.complete(3, second)
  t.equal(counters.linesSendFailed, 7)
  t.equal(counters.sendErrors, 3)
  t.same(sendErrors, [refused, second, second])
  t.equal(assembler.inFlight(), 0)

  const big = Buffer.from(lineOf('big', 600))
  assembler.append(big, 0, big.length) // send 4: oversize, 1 line
  target.complete(4, new Error('EMSGSIZE'))
  t.equal(counters.linesSendFailed, 8, 'a failed oversize send is one line')
  t.equal(counters.sendErrors, 4)
  t.equal(counters.linesForwarded, 11, 'failed lines stay counted as forwarded')
})

t.test('idle() resolves once the pending datagram has been sent and every send has completed', async (t) => {
  const { line, assembler, target } = rig(4, 512)
  await assembler.idle() // nothing pending, nothing in flight: resolves at once
  t.equal(assembler.inFlight(), 0)

  line('a:1|c')
  t.equal(assembler.inFlight(), 0, 'a datagram being assembled is not in flight')
  assembler.flush()
  t.equal(assembler.inFlight(), 1)
  line('b:1|c') // pending; leaves at the end of the turn
  let idle = false
  let alsoIdle = false
  void assembler.idle().then(() => {
    idle = true
  })
  void assembler.idle().then(() => {
    alsoIdle = true
  })
  target.complete(0)
  await Promise.resolve()
  t.equal(idle, false, 'a datagram is still pending')
  await turnEnd()
  t.equal(target.sent.length, 2)
  t.equal(assembler.inFlight(), 1)
  t.equal(idle, false, 'the second send is still in flight')
  target.complete(1, new Error('failed')) // a failed send completes too
  await Promise.resolve()
  t.equal(idle, true)
  t.equal(alsoIdle, true, 'a second caller of idle() is told too')
  t.equal(assembler.inFlight(), 0)
})

t.test('inFlight() counts pooled and oversize sends handed to the target and not yet completed', async (t) => {
  const { line, assembler, pool, target } = rig(3, 32)
  t.equal(assembler.inFlight(), 0)
  line('a:1|c')
  t.equal(pool.inUse, 1, 'the pending datagram holds a buffer')
  t.equal(assembler.inFlight(), 0, 'but is not in flight')
  assembler.flush()
  t.equal(assembler.inFlight(), 1)
  const big = Buffer.from(lineOf('big', 40))
  assembler.append(big, 0, big.length)
  t.equal(assembler.inFlight(), 2)
  line('b:1|c')
  t.equal(assembler.inFlight(), 2)
  assembler.flush()
  t.equal(assembler.inFlight(), 3)
  target.complete(1)
  t.equal(assembler.inFlight(), 2)
  target.complete(0)
  target.complete(2)
  t.equal(assembler.inFlight(), 0)
  t.equal(pool.inUse, 0)
})

/**
 * Writes `text` as one line in place, as the filter does: beginLine (room for `maxLength`), then the bytes straight
 * into lineBuffer from the offset it returned, with `junk` written and taken back (the write position moved back)
 * after each offset in `takeBack`, then endLine at the final position.
 */
function inPlace(assembler: Assembler, text: string, takeBack: number[] = [], maxLength = text.length): boolean {
  // The bytes come out of a received buffer, between other bytes.
  const src = Buffer.from(`<<${text}>>`, 'latin1')
  let at = assembler.beginLine(maxLength)
  if (at === -1) return false
  const out = assembler.lineBuffer
  for (let i = 0; i < text.length; i++) {
    out[at++] = src[2 + i]
    if (takeBack.includes(i)) {
      const mark = at
      for (const b of Buffer.from(',gone')) if (at < out.length) out[at++] = b
      at = mark
    }
  }
  return assembler.endLine(at)
}

t.test('beginLine, lineBuffer, endLine: the same datagrams and counts as append for the same bytes', async (t) => {
  const lines = Array.from({ length: 60 }, (_, i) => lineOf(`m${i}`, 8 + ((i * 37) % 90)))
  const byAppend = rig(64, 256)
  for (const l of lines) byAppend.line(l)
  byAppend.assembler.flush()
  const inLine = rig(64, 256)
  lines.forEach((l, i) => t.equal(inPlace(inLine.assembler, l, i % 2 === 0 ? [] : [0, 3, l.length - 1]), true))
  inLine.assembler.flush()
  t.ok(byAppend.target.sent.length > 5, 'several datagrams')
  t.same(inLine.target.texts(), byAppend.target.texts())
  const counts = (c: Counters): number[] => [
    c.linesForwarded,
    c.datagramsOut,
    c.bytesOut,
    c.linesOversize,
    c.linesDroppedBackpressure,
  ]
  t.same(counts(inLine.counters), counts(byAppend.counters))
  t.equal(inLine.counters.linesForwarded, 60)
})

t.test(
  'beginLine returns where the line goes: 0 in a new datagram, after the \\n that follows the last line',
  async (t) => {
    const { line, assembler, pool, target, counters } = rig(4, 512)
    line('a:1|c')
    const at = assembler.beginLine(30)
    t.equal(at, 6, "a:1|c and the \\n before the line's first byte")
    const out = assembler.lineBuffer
    t.ok(Array.from({ length: pool.size }, (_, slot) => pool.buffer(slot)).includes(out), 'the pending datagram')
    t.equal(out[5], 0x0a)
    // A line kept in pieces, with bytes left out between them (as stripping tags does).
    const src = Buffer.from('b:1|c|#x,drop,y|@1', 'latin1')
    let w = at
    for (let i = 0; i < 8; i++) out[w++] = src[i] // b:1|c|#x
    for (let i = 8; i < 13; i++) out[w++] = src[i] // ,drop: written, then taken back
    w -= 5
    for (let i = 13; i < src.length; i++) out[w++] = src[i] // ,y|@1
    src.fill(0x3f)
    t.equal(assembler.endLine(w), true)
    line('c:1|c')
    t.equal(inPlace(assembler, 'd:1|c', [2]), true)
    assembler.flush()
    t.same(target.texts(), ['a:1|c\nb:1|c|#x,y|@1\nc:1|c\nd:1|c'])
    t.equal(counters.linesForwarded, 4)
    t.equal(counters.bytesOut, target.sent[0].length)
    t.equal(assembler.beginLine(10), 0, 'after a flush: a new datagram')
    t.equal(assembler.endLine(0), true, 'an empty line')
  },
)

t.test('a line written in place leaves at the end of the turn like any other', async (t) => {
  const { assembler, target } = rig(4, 512)
  inPlace(assembler, 'a:1|c', [1])
  t.equal(target.sent.length, 0)
  await turnEnd()
  t.same(target.texts(), ['a:1|c'])
})

t.test('beginLine makes room for maxLength: a line that may not fit starts a new datagram', async (t) => {
  t.test('maxLength does not fit after what is pending: a new datagram, even if the line shrinks', async (t) => {
    const { line, assembler, target, counters } = rig(4, 512)
    const a = lineOf('a', 255)
    line(a)
    // 255 + 1 + 257 = 513 bytes: no room for maxLength, though the 20 bytes written would fit.
    t.equal(inPlace(assembler, lineOf('b', 20), [], 257), true)
    assembler.flush()
    t.same(target.texts(), [a, lineOf('b', 20)])
    t.equal(counters.datagramsOut, 2)
  })

  t.test('maxLength fits exactly: the same datagram', async (t) => {
    const { line, assembler, target } = rig(4, 512)
    const a = lineOf('a', 255)
    line(a)
    t.equal(inPlace(assembler, lineOf('b', 20), [], 256), true)
    assembler.flush()
    t.same(target.texts(), [`${a}\n${lineOf('b', 20)}`])
  })

  t.test('after a line that shrank, the next one goes right after its real end', async (t) => {
    const { assembler, target } = rig(4, 64)
    t.equal(inPlace(assembler, 'a:1|c', [], 60), true)
    t.equal(inPlace(assembler, lineOf('b', 58), [3]), true, '5 + 1 + 58 = 64 bytes: fits')
    assembler.flush()
    t.same(target.texts(), [`a:1|c\n${lineOf('b', 58)}`])
    t.equal(target.sent[0].length, 64)
  })

  t.test('a line of exactly maxPacketSize bytes: a pooled datagram of its own, not oversize', async (t) => {
    const { line, assembler, target, counters } = rig(4, 64)
    line('a:1|c')
    t.equal(inPlace(assembler, lineOf('b', 64), [10, 20]), true)
    assembler.flush()
    t.same(target.texts(), ['a:1|c', lineOf('b', 64)])
    t.equal(counters.linesOversize, 0)
  })
})

t.test('beginLine with no free buffer drops the line (-1) and counts it as backpressure', async (t) => {
  const { line, assembler, pool, target, counters } = rig(2, 512)
  line('a:1|c')
  assembler.flush()
  line('b:1|c')
  assembler.flush()
  t.equal(pool.inUse, 2)
  t.equal(assembler.beginLine(10), -1, 'no free buffer')
  t.equal(counters.linesDroppedBackpressure, 1)
  t.equal(counters.linesForwarded, 2)
  target.complete(0)
  t.equal(inPlace(assembler, 'c:1|c', [2]), true, 'a completed send frees its buffer')
  assembler.flush()
  t.same(target.texts(), ['a:1|c', 'b:1|c', 'c:1|c'])
  t.equal(counters.linesDroppedBackpressure, 1)
  t.equal(counters.linesForwarded, 3)
})

t.test('beginLine that has to send the pending datagram first, with no other buffer free', async (t) => {
  const { line, assembler, target, counters } = rig(2, 64)
  line('a:1|c')
  assembler.flush() // in flight
  line(lineOf('b', 40)) // pending, holds the other buffer
  t.equal(assembler.beginLine(40), -1, '40 + 1 + 40 > 64: b leaves, and no buffer is left for the line')
  t.same(target.texts(), ['a:1|c', lineOf('b', 40)], 'what was pending was sent, in order')
  t.equal(counters.linesDroppedBackpressure, 1)
  t.equal(counters.linesForwarded, 2)
})

t.test('a line begun over maxPacketSize that shrinks below it is coalesced normally', async (t) => {
  const { line, assembler, pool, target, counters } = rig(2, 64)
  line('a:1|c')
  const big = lineOf('big', 100)
  t.equal(assembler.beginLine(big.length), 0, 'a buffer of its own, from 0')
  const own = assembler.lineBuffer
  t.notOk(Array.from({ length: pool.size }, (_, slot) => pool.buffer(slot)).includes(own), 'not a pool buffer')
  t.ok(own.length >= big.length)
  // Only 30 of its bytes are kept: the line is not oversize any more.
  const kept = big.slice(0, 30)
  own.write(kept, 0, 'latin1')
  t.equal(assembler.endLine(kept.length), true)
  line('b:1|c')
  assembler.flush()
  t.same(target.texts(), [`a:1|c\n${kept}\nb:1|c`])
  t.equal(counters.linesOversize, 0)
  t.equal(counters.linesForwarded, 3)
  t.equal(counters.datagramsOut, 1)
})

t.test(
  'a line begun over maxPacketSize that stays over it leaves alone (oversize), after what is pending',
  async (t) => {
    const { line, assembler, target, counters } = rig(2, 64)
    line('a:1|c')
    const big = lineOf('big', 100)
    const kept = big.slice(0, 80)
    t.equal(inPlace(assembler, kept, [5, 50], big.length), true)
    line('b:1|c')
    assembler.flush()
    t.same(target.texts(), ['a:1|c', kept, 'b:1|c'])
    t.equal(target.sent[1].length, 80)
    t.equal(counters.linesOversize, 1)
    t.equal(counters.linesForwarded, 3)
    t.equal(counters.datagramsOut, 3)
    t.equal(counters.bytesOut, 5 + 80 + 5)
  },
)

t.test('an oversize line written in place with every oversize send in flight: endLine drops it', async (t) => {
  const { assembler, target, counters } = rig(2, 16)
  const big = lineOf('big', 40)
  t.equal(inPlace(assembler, big, [7], 40), true)
  t.equal(inPlace(assembler, big, [], 40), true)
  t.equal(assembler.beginLine(40), 0, 'an oversize line is begun in a buffer of its own')
  assembler.lineBuffer.write(big, 0, 'latin1')
  t.equal(assembler.endLine(40), false)
  t.equal(counters.linesDroppedBackpressure, 1)
  t.equal(counters.linesOversize, 2)
  t.equal(counters.linesForwarded, 2)
  t.equal(target.sent.length, 2)
  target.complete(0)
  t.equal(inPlace(assembler, big, [1, 2, 3], 41), true, 'room again once one completes')
  t.same(target.texts(), [big, big, big])
})

t.test('appendHashing: the datagrams of append, the identity of lineHash, the name hashes of hashName', async (t) => {
  const lines = Array.from({ length: 80 }, (_, i) => lineOf(`metric.n${i}`, 20 + ((i * 53) % 200)))
  lines.push('a:1|c', 'ab:12345|c', 'abcdefg:1|ms|@0.5|#k:v,x|T12', 'x'.repeat(300) + ':1|c')
  const byAppend = rig(64, 256)
  for (const l of lines) byAppend.line(l)
  byAppend.assembler.flush()
  const hashing = rig(64, 256)
  const hasher = new SeriesHasher(16)
  const seen = new Map<string, string>()
  for (const l of lines) {
    const src = Buffer.from(l, 'latin1')
    const nameEnd = src.indexOf(0x3a)
    const fields = src.indexOf(0x7c, nameEnd)
    t.equal(hashing.assembler.appendHashing(src, 0, nameEnd, fields, src.length), true)
    const fused = [...lineHashes]
    lineHash(src, 0, nameEnd, fields, src.length)
    t.same(fused, [...lineHashes], `identity of ${l.slice(0, 30)}: fused = standalone`)
    hasher.hashName(src, 0, nameEnd)
    t.same([fused[NAME_HASH1], fused[NAME_HASH2]], [hasher.nameHash, hasher.nameHash2], 'the name hashes of hashName')
    // The value is not part of it; anything else is.
    const other = Buffer.from(l.replace(/:[^|]*\|/, ':99999|'), 'latin1')
    lineHash(other, 0, nameEnd, other.indexOf(0x7c, nameEnd), other.length)
    t.same([...lineHashes], fused, 'another value: the same line identity')
    seen.set(fused.join(','), l)
  }
  t.equal(seen.size, lines.length, 'distinct lines, distinct identities')
  hashing.assembler.flush()
  t.same(hashing.target.texts(), byAppend.target.texts())
  t.same(
    [hashing.counters.linesForwarded, hashing.counters.linesOversize, hashing.counters.bytesOut],
    [byAppend.counters.linesForwarded, byAppend.counters.linesOversize, byAppend.counters.bytesOut],
  )
})
