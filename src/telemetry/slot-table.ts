// The hash table of the sketches that give names counters (TopTalkers, CardinalityTracker): position -> counter
// slot, open addressing with linear probing over a power-of-two Int32Array, each slot's hash kept by its owner.
// Looking a name up compares what its owner keeps (name bytes, a second hash), so that stays with the owner.

/** A table position that holds no slot. */
export const EMPTY = -1

/** Links `slot`, whose hash is `hash`, into the table (which has a free position: its owner sizes it). */
export function linkSlot(table: Int32Array, hash: number, slot: number): void {
  const mask = table.length - 1
  let i = hash & mask
  while (table[i] !== EMPTY) i = (i + 1) & mask
  table[i] = slot
}

/**
 * Removes `slot` (its hash in hashes[slot]) by backward-shift deletion: later entries of the probe run move into
 * the hole when their home position allows, so no lookup ever stops early and no tombstones accumulate.
 */
export function unlinkSlot(table: Int32Array, hashes: Int32Array, slot: number): void {
  const mask = table.length - 1
  let hole = hashes[slot] & mask
  while (table[hole] !== slot) hole = (hole + 1) & mask
  for (let i = (hole + 1) & mask; table[i] !== EMPTY; i = (i + 1) & mask) {
    const other = table[i]
    // The entry at i may move back to the hole if the hole lies on its probe path, home..i.
    if (((i - (hashes[other] & mask)) & mask) >= ((i - hole) & mask)) {
      table[hole] = other
      hole = i
    }
  }
  table[hole] = EMPTY
}
