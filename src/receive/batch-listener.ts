import { resolveHost } from '../net/address.ts'
import {
  AF_INET,
  AF_INET6,
  EAGAIN,
  EINTR,
  EVENTFD_FLAGS,
  POLLFD_SIZE,
  POLLIN,
  SO_RCVBUF,
  SOCKADDR_SIZE,
  SOCKET_TYPE,
  SOL_SOCKET,
  type Libc,
  type Pointer,
} from './libc.ts'
import type { ListenOptions, Listener, ReceiveOptions, SharedSocket } from './listener.ts'

const LF = 0x0a
/** Datagrams one recvmmsg call can return. */
const VLEN = 64
/**
 * Bytes per datagram slot: the largest UDP payload (65,507) fits, so no datagram is ever truncated. The 4 MiB
 * area is virtual until written: the kernel touches one page per small datagram, so its RSS is ~256 KiB while
 * datagrams stay under 4 KiB.
 */
const SLOT = 65536
/** Reads of one tick while they come back full (up to 1,024 datagrams), before the event loop gets a turn. */
const MAX_READS_PER_TICK = 16
/**
 * The tick aims for this many datagrams per read: below it, the wake-up and the syscall dominate the cost of a
 * line (at 5k dgram/s a 1 ms tick returned 5 per read and cost 12.8 µs per line).
 */
const TARGET_BATCH = 32
/** Empty reads in a row (at maxDelay apart) before the tick stops and a poll(2) waits for the next datagram. */
const IDLE_AFTER_EMPTY = 2
/**
 * How long one idle poll(2) waits before it is made again: the process cannot exit while a pool thread is inside
 * one, so an exit that does not go through close() (an uncaught exception) waits at most this long. The idle cost
 * is one wake-up a second.
 */
const IDLE_POLL_MS = 1000

/**
 * The listen socket read with recvmmsg(2) into one preallocated area that JavaScript sees as one Buffer, on a
 * self-pacing tick instead of a callback per datagram. The tick follows the arrival rate (TARGET_BATCH per read),
 * is never longer than `maxDelayMs`, reads again at once while reads come back full, and stops when the socket is
 * idle: a poll(2) on a libuv pool thread waits for the next datagram, so an idle proxy has no timer at all.
 * Received bytes are valid until the next read: whatever outlives a tick is copied by its owner.
 *
 * With `shared`, the socket is one another listener opened (in another thread of this process): each reader
 * has its own area and tick on the same descriptor, so the kernel hands each datagram to whichever reads first,
 * and only the owner closes it.
 */
export async function listenBatch(
  libc: Libc,
  options: ListenOptions & ReceiveOptions,
  shared: SharedSocket | null,
): Promise<Listener> {
  const socket = shared ?? (await openSocket(libc, options))
  let receiver: BatchReceiver
  try {
    receiver = new BatchReceiver(libc, socket.fd, options)
  } catch (err) {
    if (shared === null) libc.close(socket.fd)
    throw err
  }
  receiver.start()
  return {
    ...socket,
    mode: 'batch',
    fallback: null,
    shared: () => socket,
    close: async () => {
      await receiver.close()
      if (shared === null) libc.close(socket.fd)
    },
  }
}

async function openSocket(libc: Libc, options: ListenOptions): Promise<SharedSocket> {
  const { address, family } = await resolveHost(options.host)
  const fd = libc.socket(family === 6 ? AF_INET6 : AF_INET, SOCKET_TYPE, 0)
  if (fd < 0) throw errnoError(libc, 'socket', `${address}:${options.port}`)
  try {
    const size = Int32Array.of(Math.min(options.recvBufferSize, 2 ** 31 - 1))
    // As Node does: a refused size is not fatal; what was granted is reported.
    libc.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, size, 4)
    const addr = sockaddr(libc, family, address, options.port)
    if (libc.bind(fd, addr, addr.length) !== 0) throw errnoError(libc, 'bind', `${address}:${options.port}`)
    const bound = Buffer.alloc(SOCKADDR_SIZE)
    libc.getsockname(fd, bound, [SOCKADDR_SIZE])
    const granted = new Int32Array(1)
    libc.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, granted, [4])
    // Linux reports twice the usable size; halved as for the dgram listener.
    return { fd, address, port: bound.readUInt16BE(2), recvBufferGranted: Math.floor(granted[0] / 2) }
  } catch (err) {
    libc.close(fd)
    throw err
  }
}

/** sockaddr_in (family, port, address at 4) or sockaddr_in6 (family, port, flowinfo, address at 8, scope id). */
function sockaddr(libc: Libc, family: 4 | 6, address: string, port: number): Buffer {
  const addr = Buffer.alloc(family === 6 ? SOCKADDR_SIZE : 16)
  const af = family === 6 ? AF_INET6 : AF_INET
  addr.writeUInt16LE(af, 0)
  addr.writeUInt16BE(port, 2)
  if (libc.inet_pton(af, address, family === 6 ? addr.subarray(8, 24) : addr.subarray(4, 8)) !== 1) {
    throw Object.assign(new Error(`bind EINVAL ${address}:${port} (not an address this listener can bind)`), {
      code: 'EINVAL',
      syscall: 'bind',
    })
  }
  return addr
}

/** The last call's errno as Node shapes socket errors (`bind EADDRINUSE 0.0.0.0:8125`, with code and syscall). */
function errnoError(libc: Libc, syscall: string, where?: string): Error & { code: string } {
  const errno = libc.errno()
  const code = libc.errnoName(errno)
  const message = where === undefined ? `${syscall} ${code}` : `${syscall} ${code} ${where}`
  return Object.assign(new Error(message), { code, errno: -errno, syscall })
}

class BatchReceiver {
  private readonly libc: Libc
  private readonly fd: number
  private readonly onDatagram: ListenOptions['onDatagram']
  private readonly onError: ListenOptions['onError']
  /** Wakes the poll at close. */
  private readonly wakeFd: number
  /** One native area: two pollfds (at its start), VLEN mmsghdrs, VLEN iovecs, then VLEN slots of datagram bytes. */
  private readonly memory: Pointer
  private readonly headers: Pointer
  /** msg_len of header i at lengths[i * stride]. */
  private readonly lengths: Uint32Array
  private readonly lengthStride: number
  private readonly data: Buffer
  /**
   * One timer per whole millisecond of delay, made on first use and re-armed with refresh(): a tick allocates
   * nothing. At most one is armed (a tick arms the next); close clears them all.
   */
  private readonly timers: (NodeJS.Timeout | null)[]
  private readonly maxDelay: number
  private polling = false
  private emptyTicks = 0
  /** Datagrams per millisecond, smoothed over ticks. */
  private rate = 0
  private lastTickMs = performance.now()
  private closed: Promise<void> | null = null
  private finishClose: () => void = () => {}
  private readonly tick: () => void
  private readonly ready: (err: unknown, ready: number) => void

  constructor(libc: Libc, fd: number, options: ListenOptions & ReceiveOptions) {
    const wakeFd = libc.eventfd(0, EVENTFD_FLAGS)
    if (wakeFd < 0) throw errnoError(libc, 'eventfd')
    this.libc = libc
    this.fd = fd
    this.wakeFd = wakeFd
    this.onDatagram = options.onDatagram
    this.onError = options.onError
    this.maxDelay = Math.max(1, Math.floor(options.maxDelayMs))
    this.timers = new Array<NodeJS.Timeout | null>(this.maxDelay + 1).fill(null)
    const { mmsghdr, msgIov, msgIovlen, msgLen, iovec } = libc.layout
    const headersAt = 2 * POLLFD_SIZE
    const iovecsAt = headersAt + VLEN * mmsghdr
    const dataAt = Math.ceil((iovecsAt + VLEN * iovec) / 64) * 64
    const total = dataAt + VLEN * SLOT
    this.memory = libc.malloc(total)
    if (this.memory === 0n) {
      libc.close(wakeFd)
      throw new Error(`malloc(${total}) failed for the receive area`)
    }
    const base = libc.address(this.memory)
    const area = libc.view(this.memory, total)
    const bytes = new DataView(area, 0, dataAt)
    for (let i = 0; i < dataAt; i++) bytes.setUint8(i, 0)
    bytes.setInt32(0, fd, true)
    bytes.setInt16(4, POLLIN, true)
    bytes.setInt32(POLLFD_SIZE, wakeFd, true)
    bytes.setInt16(POLLFD_SIZE + 4, POLLIN, true)
    for (let i = 0; i < VLEN; i++) {
      const header = headersAt + i * mmsghdr
      const vector = iovecsAt + i * iovec
      bytes.setBigUint64(header + msgIov, base + BigInt(vector), true)
      bytes.setBigUint64(header + msgIovlen, 1n, true)
      bytes.setBigUint64(vector, base + BigInt(dataAt + i * SLOT), true)
      bytes.setBigUint64(vector + 8, BigInt(SLOT), true)
    }
    this.headers = base + BigInt(headersAt)
    this.lengths = new Uint32Array(area, headersAt + msgLen, ((VLEN - 1) * mmsghdr) / 4 + 1)
    this.lengthStride = mmsghdr / 4
    this.data = Buffer.from(area, dataAt, VLEN * SLOT)
    this.tick = () => this.read()
    this.ready = (err, ready) => this.wake(err, ready)
  }

  start(): void {
    this.arm(this.maxDelay)
  }

  close(): Promise<void> {
    this.closed ??= new Promise<void>((resolve) => {
      this.finishClose = resolve
      if (this.polling) {
        // Wakes the poll on the pool thread; its callback releases everything.
        this.libc.write(this.wakeFd, WAKE, 8)
      } else this.release()
    })
    return this.closed
  }

  private read(): void {
    const libc = this.libc
    const lengths = this.lengths
    const stride = this.lengthStride
    const data = this.data
    let total = 0
    let n = 0
    for (let reads = 0; reads < MAX_READS_PER_TICK; reads++) {
      n = libc.recvmmsg(this.fd, this.headers, VLEN, 0, null)
      if (n <= 0) {
        if (n < 0) this.readError()
        break
      }
      for (let i = 0; i < n; i++) {
        const start = i * SLOT
        const end = start + lengths[i * stride]
        // A search for the line end (Buffer#indexOf, which cannot be bounded) stops here, not in a later slot's
        // stale bytes: measured, without it a 1-line datagram cost a scan of up to 4 MiB. The slot always has
        // room: its 65,536 bytes exceed the largest payload.
        data[end] = LF
        this.onDatagram(data, start, end)
      }
      total += n
      if (n < VLEN) break
    }
    const now = performance.now()
    const elapsed = Math.max(now - this.lastTickMs, 0.001)
    this.lastTickMs = now
    this.rate = (this.rate + total / elapsed) / 2
    if (n === VLEN) return this.arm(1)
    if (total === 0) {
      if (++this.emptyTicks >= IDLE_AFTER_EMPTY) return this.idle()
      return this.arm(this.maxDelay)
    }
    this.emptyTicks = 0
    // total > 0, so rate > 0.
    this.arm(Math.min(this.maxDelay, Math.max(1, Math.floor(TARGET_BATCH / this.rate))))
  }

  private readError(): void {
    const errno = this.libc.errno()
    if (errno !== EAGAIN && errno !== EINTR) this.onError(errnoError(this.libc, 'recvmmsg'))
  }

  private arm(delay: number): void {
    const timer = this.timers[delay]
    if (timer === null) this.timers[delay] = setTimeout(this.tick, delay)
    else timer.refresh()
  }

  private idle(): void {
    this.emptyTicks = 0
    this.polling = true
    this.libc.pollAsync(this.memory, 2, IDLE_POLL_MS, this.ready)
  }

  /** The idle poll returned: `ready` descriptors (0: it timed out, and waits again). */
  private wake(err: unknown, ready: number): void {
    this.polling = false
    if (this.closed !== null) return this.release()
    if (err !== null && err !== undefined) this.onError(err instanceof Error ? err : new Error(String(err)))
    else if (ready === 0) return this.idle()
    this.lastTickMs = performance.now()
    this.arm(this.maxDelay)
  }

  private release(): void {
    for (const timer of this.timers) if (timer !== null) clearTimeout(timer)
    this.libc.close(this.wakeFd)
    this.libc.free(this.memory)
    this.finishClose()
  }
}

/** The eventfd counter increment that wakes a poll at close. */
const WAKE = Buffer.from(new BigUint64Array([1n]).buffer)
