import type { BufferPool } from './pool.ts'
import { chains, lineDone, lineHash, lineStep, lineStep2, nameDone, startLine } from '../scan/series-hash.ts'
import type { SendDone, Target } from '../send/target.ts'
import type { Counters } from '../telemetry/counters.ts'

const LF = 0x0a
const EMPTY = Buffer.alloc(0)
const EMPTY_VIEW = new DataView(EMPTY.buffer, EMPTY.byteOffset, 0)

/** A DataView over exactly the bytes of `buf`. */
export function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
}

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
  /** A view of `buf` (pool.view of its slot). */
  private view: DataView = EMPTY_VIEW
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
  private partView: DataView = EMPTY_VIEW
  private partStart = 0
  /**
   * The last buffer lines were copied from, and a view of it: batch receive hands every datagram over in one
   * receive area, so the view is made once; a datagram in a Buffer of its own (dgram receive) costs one view.
   */
  private source: Buffer = EMPTY
  private sourceData: DataView = EMPTY_VIEW

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
    this.lineDone(copyBytes(this.sourceView(src), start, end, this.view, at))
    return true
  }

  /** A view of `src`, the buffer lines are being copied from. */
  sourceView(src: Buffer): DataView {
    if (src !== this.source) {
      this.source = src
      this.sourceData = viewOf(src)
    }
    return this.sourceData
  }

  /**
   * append(), and the line's identity and name hashes (lineHash of series-hash.ts: its name `[start, nameEnd)`
   * and its fields `[fields, end)`) into lineHashes, computed in the copy loop, 4 bytes a step: a separate pass
   * over the bytes cost as much as the copy. Returns false if it was dropped (lineHashes then unset).
   */
  appendHashing(src: Buffer, start: number, nameEnd: number, fields: number, end: number): boolean {
    const length = end - start
    if (length > this.maxPacketSize) {
      lineHash(src, start, nameEnd, fields, end)
      return this.sendOversize(src, start, length)
    }
    let at = this.room(length)
    if (at === -1) return false
    const from = this.sourceView(src)
    const to = this.view
    startLine()
    at = copyStepping(from, start, nameEnd, to, at)
    nameDone(nameEnd - start)
    at = copyFields(from, fields, end, to, copyBytes(from, nameEnd, fields, to, at))
    lineDone(nameEnd - start, end - fields)
    this.lineDone(at)
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
      this.partView = viewOf(this.partBuf)
      this.partStart = 0
      return 0
    }
    const at = this.room(maxLength)
    if (at !== -1) {
      this.partBuf = this.buf as Buffer
      this.partView = this.view
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
      this.view = this.pool.view(slot)
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

  /** Where the line begun by beginLine is written, and a view of it. */
  get lineBuffer(): Buffer {
    return this.partBuf
  }

  get lineView(): DataView {
    return this.partView
  }

  /**
   * Ends the line begun by beginLine, written up to `end` in lineBuffer. Returns false if it was dropped (an
   * oversize line with no send free).
   */
  endLine(end: number): boolean {
    const part = this.partBuf
    this.partBuf = EMPTY
    this.partView = EMPTY_VIEW
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
 * Copies `src[from, to)` into `dst` from `at`, 4 bytes a step through DataViews; returns where the copy ends. Not
 * Buffer#copy: on Node 20 copy() allocates a Uint8Array view of the source per call. A 77-byte line took 25 ns,
 * against 51-63 for a byte loop 4 bytes a turn; copied and hashed (identity and name hashes), 69-72 ns against
 * 124-126 for the byte loop with one chain (Node 20, in isolation).
 */
export function copyBytes(src: DataView, from: number, to: number, dst: DataView, at: number): number {
  let i = from
  for (; i + 3 < to; i += 4, at += 4) dst.setInt32(at, src.getInt32(i, true), true)
  for (; i < to; i++) dst.setUint8(at++, src.getUint8(i))
  return at
}

/** copyBytes, stepping the line chains over the bytes as stepRange of series-hash.ts does (in the same loop). */
export function copyStepping(src: DataView, from: number, to: number, dst: DataView, at: number): number {
  let h = chains[0]
  let h2 = chains[1]
  let i = from
  for (; i + 3 < to; i += 4, at += 4) {
    const w = src.getInt32(i, true)
    dst.setInt32(at, w, true)
    h = lineStep(h, w)
    h2 = lineStep2(h2, w)
  }
  for (; i < to; i++) {
    const b = src.getUint8(i)
    dst.setUint8(at++, b)
    h = lineStep(h, b)
    h2 = lineStep2(h2, b)
  }
  chains[0] = h
  chains[1] = h2
  return at
}

/** copyBytes, stepping the line chains over the bytes as stepFields of series-hash.ts does (in the same loop). */
export function copyFields(src: DataView, from: number, to: number, dst: DataView, at: number): number {
  let h = chains[0]
  let h2 = chains[1]
  let i = from
  for (; i + 7 < to; i += 8, at += 8) {
    const w = src.getInt32(i, true)
    const w2 = src.getInt32(i + 4, true)
    dst.setInt32(at, w, true)
    dst.setInt32(at + 4, w2, true)
    h = lineStep(h, w)
    h2 = lineStep2(h2, w2)
  }
  if (i + 3 < to) {
    const w = src.getInt32(i, true)
    dst.setInt32(at, w, true)
    h = lineStep(h, w)
    i += 4
    at += 4
  }
  for (; i < to; i++) {
    const b = src.getUint8(i)
    dst.setUint8(at++, b)
    h = lineStep(h, b)
  }
  chains[0] = h
  chains[1] = h2
  return at
}
