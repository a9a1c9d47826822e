/**
 * Datagrams laid end to end in one buffer, as batch receive hands them over (one receive area, read many times):
 * datagram i is `area[starts[i], ends[i])`. The filter copies through a view of the buffer it is given, made when
 * the buffer changes, so a benchmark that handed over a Buffer per datagram would measure one view per datagram,
 * which batch receive never makes.
 */
export interface ReceiveArea {
  area: Buffer
  starts: Int32Array
  ends: Int32Array
}

export function receiveArea(datagrams: readonly Buffer[]): ReceiveArea {
  const area = Buffer.concat(datagrams)
  const starts = new Int32Array(datagrams.length)
  const ends = new Int32Array(datagrams.length)
  let at = 0
  datagrams.forEach((d, i) => {
    starts[i] = at
    at += d.length
    ends[i] = at
  })
  return { area, starts, ends }
}
