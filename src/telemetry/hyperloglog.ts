// HyperLogLog (Flajolet, Fusy, Gandouet, Meunier 2007) over 32-bit hashes, its 2^precision one-byte registers held
// at an offset in a caller's Uint8Array, so that many sketches share one allocation and none is made per add.
// Standard error 1.04 / sqrt(2^precision): 1.6% at precision 12 (4,096 bytes), 4.6% at precision 9 (512 bytes).
// The hashes must be well mixed (their top `precision` bits pick the register, the rest give the rank).

const TWO_POW_32 = 2 ** 32

/** Adds the 32-bit `hash` to the sketch at `registers[offset, offset + 2^precision)`. */
export function hllAdd(registers: Uint8Array, offset: number, precision: number, hash: number): void {
  const index = offset + (hash >>> (32 - precision))
  // The marker bit caps the rank at 33 - precision, the rank of a zero remainder.
  const rank = Math.clz32((hash << precision) | (1 << (precision - 1))) + 1
  if (rank > registers[index]) registers[index] = rank
}

/**
 * The estimated distinct hashes added to the sketch: the harmonic-mean estimate with its bias constant, linear
 * counting while it is at most 2.5 × 2^precision and some register is still 0 (the small range, where it is the
 * better estimate), and the correction for 32-bit hash collisions above 2^32 / 30. Measured at precision 12
 * (test/hyperloglog.test.ts): within 3% at 1,000, 100,000 and 1,000,000 distinct.
 */
export function hllEstimate(registers: Uint8Array, offset: number, precision: number): number {
  const m = 1 << precision
  let sum = 0
  let zeros = 0
  for (let i = offset; i < offset + m; i++) {
    const r = registers[i]
    sum += 1 / (1 << r)
    if (r === 0) zeros++
  }
  const alpha = m === 16 ? 0.673 : m === 32 ? 0.697 : m === 64 ? 0.709 : 0.7213 / (1 + 1.079 / m)
  const raw = (alpha * m * m) / sum
  if (raw <= 2.5 * m) return zeros > 0 ? m * Math.log(m / zeros) : raw
  if (raw > TWO_POW_32 / 30) return -TWO_POW_32 * Math.log(1 - raw / TWO_POW_32)
  return raw
}

/** Makes the sketch at `into[intoOffset...]` the union of itself and the one at `from[fromOffset...]`. */
export function hllMerge(
  into: Uint8Array,
  intoOffset: number,
  from: Uint8Array,
  fromOffset: number,
  precision: number,
): void {
  const m = 1 << precision
  for (let i = 0; i < m; i++) {
    const r = from[fromOffset + i]
    if (r > into[intoOffset + i]) into[intoOffset + i] = r
  }
}
