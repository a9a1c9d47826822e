// Unit tests of the output buffer pool.
import t from 'tap'
import { BufferPool } from '../src/batch/pool.ts'

function acquireAll(pool: BufferPool): number[] {
  const slots: number[] = []
  for (let slot = pool.acquire(); slot !== -1; slot = pool.acquire()) {
    slots.push(slot)
    if (slots.length > pool.size) throw new Error('acquire handed out more slots than the pool has')
  }
  return slots
}

t.test('acquire hands out every slot once, then -1', async (t) => {
  const pool = new BufferPool(5, 64)
  t.equal(pool.size, 5)
  t.equal(pool.bufferSize, 64)
  t.equal(pool.inUse, 0)
  const slots = acquireAll(pool)
  t.same(
    [...slots].sort((a, b) => a - b),
    [0, 1, 2, 3, 4],
    'each slot once',
  )
  t.equal(pool.inUse, 5)
  t.equal(pool.acquire(), -1, 'still exhausted')
  t.equal(pool.inUse, 5, 'a refused acquire takes nothing')
})

t.test('buffers are distinct, bufferSize long and do not overlap', async (t) => {
  const pool = new BufferPool(4, 100)
  const slots = acquireAll(pool)
  const buffers = slots.map((slot) => pool.buffer(slot))
  for (const b of buffers) t.equal(b.length, 100)
  t.equal(new Set(buffers).size, 4, 'four different Buffer objects')
  t.equal(pool.buffer(slots[0]), buffers[0], 'a slot names the same buffer every time')
  // Fill each with its own byte, edge to edge: a buffer overlapping a neighbour would see the neighbour's byte.
  slots.forEach((slot, i) => pool.buffer(slot).fill(0x41 + i))
  slots.forEach((slot, i) => {
    const b = pool.buffer(slot)
    t.ok(
      b.every((byte) => byte === 0x41 + i),
      `slot ${slot} holds only its own bytes`,
    )
  })
  pool.buffer(slots[1])[0] = 0x7a
  pool.buffer(slots[1])[99] = 0x7a
  t.ok(
    pool.buffer(slots[0]).every((byte) => byte === 0x41),
    'writing the first and last byte of one changes no other',
  )
  t.ok(pool.buffer(slots[2]).every((byte) => byte === 0x43))
})

t.test('a released slot is handed out again; inUse follows', async (t) => {
  const pool = new BufferPool(3, 8)
  const [a, b, c] = acquireAll(pool)
  t.equal(pool.inUse, 3)
  pool.release(b)
  t.equal(pool.inUse, 2)
  t.equal(pool.acquire(), b, 'the only free slot')
  t.equal(pool.acquire(), -1)
  pool.release(a)
  pool.release(c)
  t.equal(pool.inUse, 1)
  const again = [pool.acquire(), pool.acquire()].sort((x, y) => x - y)
  t.same(
    again,
    [a, c].sort((x, y) => x - y),
    'both released slots, none twice',
  )
  t.equal(pool.acquire(), -1)
  for (const slot of [a, b, c]) pool.release(slot)
  t.equal(pool.inUse, 0)
  t.equal(acquireAll(pool).length, 3, 'the whole pool again after every release')
})

t.test('a pool of one', async (t) => {
  const pool = new BufferPool(1, 16)
  const slot = pool.acquire()
  t.equal(slot, 0)
  t.equal(pool.buffer(slot).length, 16)
  t.equal(pool.acquire(), -1)
  pool.release(slot)
  t.equal(pool.acquire(), slot)
})
