/**
 * What the scanner reports for each non-empty line of a datagram. Offsets index the datagram Buffer itself:
 * nothing is copied or decoded, so an implementation decides what (if anything) to copy.
 * `end` excludes the line's `\n` and a stripped trailing `\r`.
 */
export interface LineSink {
  /** A metric line; its name is `buf[start, nameEnd)`, non-empty, followed by `:`. */
  metric(buf: Buffer, start: number, nameEnd: number, end: number): void
  /** An event (`_e{...`): metric-name rules do not apply to it. */
  event(buf: Buffer, start: number, end: number): void
  /** A service check (`_sc|...`): metric-name rules do not apply to it. */
  serviceCheck(buf: Buffer, start: number, end: number): void
  /** A line that is none of the above: empty name, no `:` before the first `|`, or no `|` at all. */
  malformed(buf: Buffer, start: number, end: number): void
}
