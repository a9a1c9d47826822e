// The fields of a metric line after its value: `name:value|type|@rate|#tag,tag|c:container|T123...`, in any order
// after the type. Walked in place, never split: a cursor made once per filter is reused for every line.

const PIPE = 0x7c
const HASH = 0x23
const COMMA = 0x2c
const COLON = 0x3a
const C = 0x63
const D = 0x64
const G = 0x67
const H = 0x68
const M = 0x6d
const S = 0x73

/** A metric type's index in the per-type counters: c, g, ms, h, s, d, then any other type. */
export const METRIC_TYPE_SLOTS = ['c', 'g', 'ms', 'h', 's', 'd', 'other'] as const
const OTHER_TYPE = METRIC_TYPE_SLOTS.length - 1

/** The first `|` in `buf[from, end)`, or `end`. A JS loop: fields are short, and indexOf costs a native call. */
export function nextPipe(buf: Uint8Array, from: number, end: number): number {
  let i = from
  while (i < end && buf[i] !== PIPE) i++
  return i
}

/** The slot in METRIC_TYPE_SLOTS of the type `buf[start, end)`. */
export function typeSlot(buf: Uint8Array, start: number, end: number): number {
  const n = end - start
  if (n === 1) {
    const b = buf[start]
    if (b === C) return 0
    if (b === G) return 1
    if (b === H) return 3
    if (b === S) return 4
    if (b === D) return 5
  } else if (n === 2 && buf[start] === M && buf[start + 1] === S) return 2
  return OTHER_TYPE
}

/**
 * Steps through the tags of a metric line: every `,`-separated item of every field that starts with `#` (the
 * type field excepted). An empty field (`|#` alone) has no tags; otherwise each item is a tag, empty ones too
 * (`a,,b` is three). After next() returns true, `start`/`end` bound the tag, `keyEnd` is where its key ends (its
 * first `:`, or `end`: found in the same pass as the tag's end), `fieldStart` is its field's `|`,
 * `fieldEnd` is where that field ends (a `|` or the line's end) and `first` says it is the field's first tag.
 */
export class TagCursor {
  start = 0
  end = 0
  keyEnd = 0
  fieldStart = 0
  fieldEnd = 0
  first = false
  private buf: Uint8Array = new Uint8Array(0)
  private lineEnd = 0
  /** Where the next field's `|` is (or lineEnd). */
  private nextField = 0

  /** Starts on the line whose type field ends at `typeEnd` (its `|`, or the line's end) and which ends at `end`. */
  reset(buf: Uint8Array, typeEnd: number, end: number): void {
    this.buf = buf
    this.lineEnd = end
    this.nextField = typeEnd
    this.fieldEnd = typeEnd
    this.end = typeEnd
  }

  next(): boolean {
    const buf = this.buf
    if (this.end < this.fieldEnd) {
      // Another tag in this field: after the comma that ended the last one.
      this.first = false
      this.tag(buf, this.end + 1, this.fieldEnd)
      return true
    }
    const lineEnd = this.lineEnd
    let at = this.nextField
    while (at < lineEnd) {
      // buf[at] is a field's `|`.
      const fieldEnd = nextPipe(buf, at + 1, lineEnd)
      if (buf[at + 1] === HASH && fieldEnd > at + 2) {
        this.fieldStart = at
        this.fieldEnd = fieldEnd
        this.nextField = fieldEnd
        this.first = true
        this.tag(buf, at + 2, fieldEnd)
        return true
      }
      at = fieldEnd
    }
    this.nextField = lineEnd
    this.fieldEnd = lineEnd
    this.end = lineEnd
    return false
  }

  /** The tag starting at `start` in a field that ends at `fieldEnd`: up to the next `,`, its key up to a `:`. */
  private tag(buf: Uint8Array, start: number, fieldEnd: number): void {
    let i = start
    let b = 0
    while (i < fieldEnd && (b = buf[i]) !== COMMA && b !== COLON) i++
    this.keyEnd = i
    if (b === COLON && i < fieldEnd) while (i < fieldEnd && buf[i] !== COMMA) i++
    this.start = start
    this.end = i
  }
}
