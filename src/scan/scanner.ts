import type { LineSink } from './line-sink.ts'
import { isEvent, isServiceCheck } from './message-kind.ts'

const LF = 0x0a
const CR = 0x0d
const COLON = 0x3a
const PIPE = 0x7c

/**
 * Splits `buf[start, end)` into lines in place and reports each non-empty one to `sink`, in order, without
 * allocating. The line end is found by Buffer#indexOf (memchr, far faster than a JS byte loop over tags);
 * only the name and value are walked in JS, for the first `:` and the first `|`, which is all the metric
 * grammar needs: the name is every byte before the first `:`, and that `:` must come before the first `|`.
 * Returns the number of non-empty lines.
 */
export function scanDatagram(buf: Buffer, start: number, end: number, sink: LineSink): number {
  let lines = 0
  let i = start
  while (i < end) {
    const lineStart = i
    let eol = buf.indexOf(LF, i)
    if (eol === -1 || eol > end) eol = end
    i = eol + 1
    let lineEnd = eol
    if (lineEnd > lineStart && buf[lineEnd - 1] === CR) lineEnd--
    if (lineEnd === lineStart) continue
    lines++

    if (isEvent(buf, lineStart, lineEnd)) {
      sink.event(buf, lineStart, lineEnd)
      continue
    }
    if (isServiceCheck(buf, lineStart, lineEnd)) {
      sink.serviceCheck(buf, lineStart, lineEnd)
      continue
    }
    let j = lineStart
    let b = 0
    while (j < lineEnd) {
      b = buf[j]
      if (b === COLON || b === PIPE) break
      j++
    }
    // A metric needs a non-empty name, then ':', then (after the value) a '|'.
    if (j > lineStart && j < lineEnd && b === COLON) {
      const colon = j
      while (++j < lineEnd && buf[j] !== PIPE);
      if (j < lineEnd) {
        sink.metric(buf, lineStart, colon, lineEnd)
        continue
      }
    }
    sink.malformed(buf, lineStart, lineEnd)
  }
  return lines
}
