import type { LineSink } from './line-sink.ts'
import { isEvent, isServiceCheck } from './message-kind.ts'

const LF = 0x0a
const CR = 0x0d
const COLON = 0x3a
const PIPE = 0x7c

/**
 * Splits `buf[start, end)` into lines in place and reports each non-empty one to `sink`, in order.
 * One pass over the bytes, no allocation: the first `:` and `|` of a line are noted on the way to its `\n`,
 * which is all the metric grammar needs (the name is every byte before the first `:`, and that `:` must come
 * before the first `|`). Returns the number of non-empty lines.
 */
export function scanDatagram(buf: Buffer, start: number, end: number, sink: LineSink): number {
  let lines = 0
  let i = start
  while (i < end) {
    const lineStart = i
    let colon = -1
    let pipe = -1
    let b = 0
    // Until the first ':' or '|' (or the end of the line).
    while (i < end) {
      b = buf[i]
      if (b === LF || b === COLON || b === PIPE) break
      i++
    }
    if (i < end && b === COLON) {
      colon = i++
      // A ':' came first: now only the first '|' matters.
      while (i < end) {
        b = buf[i]
        if (b === LF || b === PIPE) break
        i++
      }
    }
    if (i < end && b === PIPE) {
      pipe = i++
      // The rest of the line (tags, fields) is never looked at.
      while (i < end && buf[i] !== LF) i++
    }
    let lineEnd = i
    i++ // past the '\n' (or past `end`, which ends the loop)
    if (lineEnd > lineStart && buf[lineEnd - 1] === CR) lineEnd--
    if (lineEnd === lineStart) continue
    lines++

    if (isEvent(buf, lineStart, lineEnd)) {
      sink.event(buf, lineStart, lineEnd)
    } else if (isServiceCheck(buf, lineStart, lineEnd)) {
      sink.serviceCheck(buf, lineStart, lineEnd)
    } else if (colon > lineStart && pipe > colon) {
      sink.metric(buf, lineStart, colon, lineEnd)
    } else {
      sink.malformed(buf, lineStart, lineEnd)
    }
  }
  return lines
}
