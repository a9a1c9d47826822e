import type { BufferPool } from './pool.ts'
import { keepLineHash, LINE_SEED, lineHash, lineStep } from '../scan/series-hash.ts'
import type { SendDone, Target } from '../send/target.ts'
import type { Counters } from '../telemetry/counters.ts'

const LF = 0x0a
const EMPTY = Buffer.alloc(0)

export interface AssemblerOptions {
  /** Its buffer size is the largest datagram sent. */
  pool: BufferPool
  target: Target
  counters: Counters
  /** A failed send (already counted). */
  onSendError: (err: Error) => void
}

/**
 * Coalesces surviving lines into full datagrams. Lines are copied unchanged into a pooled buffer, joined by
 * `\n`; the buffer is sent when the next line does not fit, and at the end of the current event-loop turn
 * (setImmediate runs after libuv has drained every datagram ready on the socket), so a burst of small
 * datagrams leaves as a few full ones and nothing waits on a timer.
 */
export class Assembler {
  private readonly pool: BufferPool
  private readonly target: Target
  private readonly counters: Counters
  private readonly maxPacketSize: number
  private readonly onSendError: (err: Error) => void
  private slot = -1
  private buf: Buffer | null = null
  private len = 0
  private lines = 0
  /** Lines in each slot's datagram in flight, to count them if its send fails. */
  private readonly slotLines: Int32Array
  private flushScheduled = false
  private oversizeInFlight = 0
  /** What idle() returns while sends are pending: every caller waits on the same one. */
  private idling: Promise<void> | null = null
  private resolveIdle: () => void = () => {}
  /** One send callback per pool slot, made once: a send never allocates a closure. */
  private readonly slotDone: SendDone[] = []
  private readonly oversizeDone: SendDone
  private readonly flushAtTurnEnd: () => void
  /** Where beginLine's line is written (the datagram being assembled, or an oversize line's own buffer). */
  private partBuf: Buffer = EMPTY
  private partStart = 0

  constructor({ pool, target, counters, onSendError }: AssemblerOptions) {
    this.pool = pool
    this.target = target
    this.counters = counters
    this.maxPacketSize = pool.bufferSize
    this.onSendError = onSendError
    this.slotLines = new Int32Array(pool.size)
    for (let slot = 0; slot < pool.size; slot++) this.slotDone.push((err) => this.sent(slot, err))
    this.oversizeDone = (err) => this.sent(-1, err)
    this.flushAtTurnEnd = () => {
      this.flushScheduled = false
      this.flush()
    }
  }

  /** Queues `src[start, end)` as one line; returns false if it was dropped because no buffer is free. */
  append(src: Buffer, start: number, end: number): boolean {
    const length = end - start
    if (length > this.maxPacketSize) return this.sendOversize(src, start, length)
    const at = this.room(length)
    if (at === -1) return false
    this.lineDone(copyBytes(src, start, end, this.buf as Buffer, at))
    return true
  }

  /**
   * append(), and the line's identity (lineHash of series-hash.ts: its name `[start, nameEnd)` and its fields
   * `[fields, end)`) into lineHashes, computed in the copy loop, 4 bytes a step: a separate pass over the bytes
   * cost as much as the copy (~1 ns a byte). Returns false if it was dropped (lineHashes then unset).
   */
  appendHashing(src: Buffer, start: number, nameEnd: number, fields: number, end: number): boolean {
    const length = end - start
    if (length > this.maxPacketSize) {
      lineHash(src, start, nameEnd, fields, end)
      return this.sendOversize(src, start, length)
    }
    let at = this.room(length)
    if (at === -1) return false
    const buf = this.buf as Buffer
    const h = copyHashing(src, start, nameEnd, buf, at, LINE_SEED)
    at = copyBytes(src, nameEnd, fields, buf, at + nameEnd - start)
    keepLineHash(copyHashing(src, fields, end, buf, at, h), nameEnd - start, end - fields)
    this.lineDone(at + end - fields)
    return true
  }

  /**
   * Starts a line of at most `maxLength` bytes that the caller writes itself into `lineBuffer`, from the offset
   * returned on (the bytes it keeps of a received line, straight from the receive buffer: no intermediate copy),
   * then ends with endLine(). Returns -1 if it was dropped because no buffer is free. Room is made for
   * `maxLength`, so a line that shrinks may start a datagram earlier than append() would. A line over
   * maxPacketSize is written to a buffer of its own first (rare by definition), then appended whole.
   */
  beginLine(maxLength: number): number {
    if (maxLength > this.maxPacketSize) {
      this.partBuf = Buffer.allocUnsafe(maxLength)
      this.partStart = 0
      return 0
    }
    const at = this.room(maxLength)
    if (at !== -1) {
      this.partBuf = this.buf as Buffer
      this.partStart = at
    }
    return at
  }

  /**
   * Room for a line of `length` bytes (at most maxPacketSize) in the datagram being assembled, sending it first if
   * the line does not fit and taking a pooled buffer if there is none: where the line's first byte goes (after the
   * `\n` that joins it to the previous line), or -1 if no buffer is free (counted as backpressure).
   */
  private room(length: number): number {
    if (this.buf !== null && this.len + 1 + length > this.maxPacketSize) this.flush()
    let buf = this.buf
    if (buf === null) {
      const slot = this.pool.acquire()
      if (slot === -1) {
        this.counters.linesDroppedBackpressure++
        return -1
      }
      this.slot = slot
      buf = this.buf = this.pool.buffer(slot)
      this.len = 0
      this.lines = 0
    }
    if (this.len === 0) return 0
    buf[this.len] = LF
    return this.len + 1
  }

  /** The line written into the datagram being assembled ends at `end`: counted, and a flush at turn end is due. */
  private lineDone(end: number): void {
    this.len = end
    this.lines++
    this.counters.linesForwarded++
    if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(this.flushAtTurnEnd)
    }
  }

  /** Where the line begun by beginLine is written. */
  get lineBuffer(): Buffer {
    return this.partBuf
  }

  /**
   * Ends the line begun by beginLine, written up to `end` in lineBuffer. Returns false if it was dropped (an
   * oversize line with no send free).
   */
  endLine(end: number): boolean {
    const part = this.partBuf
    this.partBuf = EMPTY
    if (part !== this.buf) return this.append(part, this.partStart, end)
    this.lineDone(end)
    return true
  }

  /** Sends the datagram being assembled, if any. */
  flush(): void {
    const buf = this.buf
    if (buf === null) return
    const slot = this.slot
    const len = this.len
    this.slotLines[slot] = this.lines
    this.buf = null
    this.slot = -1
    this.len = 0
    this.counters.datagramsOut++
    this.counters.bytesOut += len
    this.target.send(buf, 0, len, this.slotDone[slot])
  }

  /** Resolves once every datagram handed to the target has completed (the pool is whole again). */
  idle(): Promise<void> {
    if (this.buf === null && this.inFlight() === 0) return Promise.resolve()
    this.idling ??= new Promise((resolve) => (this.resolveIdle = resolve))
    return this.idling
  }

  inFlight(): number {
    return this.pool.inUse - (this.buf === null ? 0 : 1) + this.oversizeInFlight
  }

  /**
   * A line longer than a datagram leaves alone and whole, in a copy of its own: the received bytes may be a
   * receive area that the next read overwrites while the send is in flight. Rare by definition, so the copy is
   * allocated here. Whatever is pending goes first to keep the order of lines. In-flight oversize sends are
   * bounded like pooled ones.
   */
  private sendOversize(src: Buffer, start: number, length: number): boolean {
    if (this.oversizeInFlight >= this.pool.size) {
      this.counters.linesDroppedBackpressure++
      return false
    }
    this.flush()
    this.oversizeInFlight++
    this.counters.linesForwarded++
    this.counters.linesOversize++
    this.counters.datagramsOut++
    this.counters.bytesOut += length
    const line = Buffer.allocUnsafe(length)
    src.copy(line, 0, start, start + length)
    this.target.send(line, 0, length, this.oversizeDone)
    return true
  }

  private sent(slot: number, err: Error | null): void {
    if (slot === -1) this.oversizeInFlight--
    else this.pool.release(slot)
    if (err !== null) {
      this.counters.sendErrors++
      this.counters.linesSendFailed += slot === -1 ? 1 : this.slotLines[slot]
      this.onSendError(err)
    }
    if (this.idling !== null && this.buf === null && this.inFlight() === 0) {
      this.idling = null
      this.resolveIdle()
    }
  }
}

/**
 * Copies `src[from, to)` into `dst` from `at`, 4 bytes a turn; returns where the copy ends. A byte loop, not
 * Buffer#copy: on Node 20 copy() allocates a Uint8Array view of the source per call. Four bytes a turn: a 70-byte
 * line took 60 ns instead of 88.
 */
export function copyBytes(src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number): number {
  let i = from
  for (; i + 3 < to; i += 4, at += 4) {
    dst[at] = src[i]
    dst[at + 1] = src[i + 1]
    dst[at + 2] = src[i + 2]
    dst[at + 3] = src[i + 3]
  }
  for (; i < to; i++) dst[at++] = src[i]
  return at
}

/** copyBytes, returning `h` stepped over the bytes as lineHash steps a range (the same blocks, in the same loop). */
export function copyHashing(src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number, h: number): number {
  let i = from
  for (; i + 3 < to; i += 4, at += 4) {
    const b0 = (dst[at] = src[i])
    const b1 = (dst[at + 1] = src[i + 1])
    const b2 = (dst[at + 2] = src[i + 2])
    const b3 = (dst[at + 3] = src[i + 3])
    h = lineStep(h, b0 | (b1 << 8) | (b2 << 16) | (b3 << 24))
  }
  for (; i < to; i++) h = lineStep(h, (dst[at++] = src[i]))
  return h
}
