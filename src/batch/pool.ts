/**
 * A fixed set of output buffers, carved from one allocation at start-up. A buffer is named by its slot number so
 * that a send callback can be made once per slot and never per send. The pool's size is the bound on memory held
 * by sends in flight: when it is empty, the caller drops instead of allocating.
 */
export class BufferPool {
  readonly size: number
  readonly bufferSize: number
  private readonly buffers: Buffer[]
  /** A DataView over each buffer, for the assembler's 4-byte copies. */
  private readonly views: DataView[]
  private readonly free: Int32Array
  private freeCount: number

  constructor(size: number, bufferSize: number) {
    this.size = size
    this.bufferSize = bufferSize
    const slab = Buffer.alloc(size * bufferSize)
    this.buffers = []
    this.views = []
    this.free = new Int32Array(size)
    for (let slot = 0; slot < size; slot++) {
      this.buffers.push(slab.subarray(slot * bufferSize, (slot + 1) * bufferSize))
      this.views.push(new DataView(slab.buffer, slab.byteOffset + slot * bufferSize, bufferSize))
      this.free[slot] = size - 1 - slot
    }
    this.freeCount = size
  }

  /** A free slot, or -1 when every buffer is in flight. */
  acquire(): number {
    return this.freeCount === 0 ? -1 : this.free[--this.freeCount]
  }

  release(slot: number): void {
    this.free[this.freeCount++] = slot
  }

  buffer(slot: number): Buffer {
    return this.buffers[slot]
  }

  view(slot: number): DataView {
    return this.views[slot]
  }

  get inUse(): number {
    return this.size - this.freeCount
  }
}
