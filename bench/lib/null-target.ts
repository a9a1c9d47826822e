import type { SendDone, SendQueue, Target } from '../../src/send/target.ts'

/** Completes every send at once, like a kernel that always has room: the pool never runs dry. */
export class NullTarget implements Target {
  readonly address = 'null'
  datagrams = 0
  bytes = 0
  send(_buf: Buffer, _offset: number, length: number, done: SendDone): void {
    this.datagrams++
    this.bytes += length
    done(null)
  }
  queue(): SendQueue {
    return { count: 0, bytes: 0 }
  }
  close(): Promise<void> {
    return Promise.resolve()
  }
}
