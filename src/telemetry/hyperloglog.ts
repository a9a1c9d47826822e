// HyperLogLog (Flajolet, Fusy, Gandouet, Meunier 2007) over 32-bit hashes, its 2^precision one-byte registers held
// at an offset in a caller's Uint8Array, so that many sketches share one allocation and none is made per add.
// Standard error 1.04 / sqrt(2^precision): 1.6% at precision 12 (4,096 bytes), 4.6% at precision 9 (512 bytes).
// The hashes must be well mixed (their top `precision` bits pick the register, the rest give the rank).

/** Adds the 32-bit `hash` to the sketch at `registers[offset, offset + 2^precision)`. */
export function hllAdd(registers: Uint8Array, offset: number, precision: number, hash: number): void {
  const index = offset + (hash >>> (32 - precision))
  // The marker bit caps the rank at 33 - precision, the rank of a zero remainder.
  const rank = Math.clz32((hash << precision) | (1 << (precision - 1))) + 1
  if (rank > registers[index]) registers[index] = rank
}

/** Registers per rank (0 to 33 - precision), for hllEstimate. */
const histogram = new Float64Array(34)

/**
 * The estimated distinct hashes added to the sketch: Ertl's improved estimator ("New cardinality estimation
 * algorithms for HyperLogLog sketches", 2017, section 3), the harmonic mean with the registers still 0 (small range)
 * and those at the cap 33 - precision (32-bit saturation) accounted in closed form. The textbook estimator
 * (harmonic mean, linear counting up to 2.5 × 2^precision) is as good at 1,000 and above 20,000 but biased near the
 * switch: precision 12, 60 seeds, at 10,000 distinct its errors had standard deviation 2.5% (max 5.7%), these 1.2%
 * (max 3.2%); at 1,000 / 100,000 / 1,000,000 both 1.0% / 1.8% / 1.9%.
 */
export function hllEstimate(registers: Uint8Array, offset: number, precision: number): number {
  const m = 1 << precision
  const cap = 33 - precision
  histogram.fill(0)
  for (let i = offset; i < offset + m; i++) histogram[registers[i]]++
  let z = m * tau(1 - histogram[cap] / m)
  for (let k = cap - 1; k >= 1; k--) z = 0.5 * (z + histogram[k])
  z += m * sigma(histogram[0] / m)
  return (m * m) / (2 * Math.LN2) / z
}

/** Ertl's σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k-1), summed until it stops changing. */
function sigma(x: number): number {
  if (x === 1) return Infinity
  let y = 1
  let z = x
  for (;;) {
    x *= x
    const previous = z
    z += x * y
    y += y
    if (z === previous) return z
  }
}

/** Ertl's τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))^2 2^-k) / 3, summed until it stops changing. */
function tau(x: number): number {
  if (x === 0 || x === 1) return 0
  let y = 1
  let z = 1 - x
  for (;;) {
    x = Math.sqrt(x)
    const previous = z
    y *= 0.5
    z -= (1 - x) ** 2 * y
    if (z === previous) return z / 3
  }
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
