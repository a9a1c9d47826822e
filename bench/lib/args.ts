// Checks for the numbers the bench entry points take on their command lines.

/** `arg` as a number from `min` to `max` (a whole number with `integer`); throws naming `name` otherwise. */
export function numberArg(arg: string | undefined, name: string, min: number, max: number, integer = false): number {
  const n = Number(arg)
  if (!(n >= min && n <= max) || (integer && !Number.isInteger(n))) {
    throw new Error(`${name}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${arg}`)
  }
  return n
}
