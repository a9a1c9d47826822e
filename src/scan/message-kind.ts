// DogStatsD tells its three message kinds apart by how the line starts; see shared dogstatsd-protocol.md.

const UNDERSCORE = 0x5f

/** `_e{`: an event. Its title may hold `|` and `:`, so it is never parsed as a metric. */
export function isEvent(buf: Buffer, start: number, end: number): boolean {
  return end - start >= 3 && buf[start] === UNDERSCORE && buf[start + 1] === 0x65 && buf[start + 2] === 0x7b
}

/** `_sc|`: a service check. */
export function isServiceCheck(buf: Buffer, start: number, end: number): boolean {
  return (
    end - start >= 4 &&
    buf[start] === UNDERSCORE &&
    buf[start + 1] === 0x73 &&
    buf[start + 2] === 0x63 &&
    buf[start + 3] === 0x7c
  )
}
