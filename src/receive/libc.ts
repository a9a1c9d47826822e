// The few libc calls batch receive needs, through the FFI package koffi (prebuilt binaries in its npm package: no
// compiler at install, ~1.2 µs per recvmmsg call measured here, most of it the syscall). Linux only: the constants
// and struct layouts below are Linux's.

export const AF_INET = 2
export const AF_INET6 = 10
const SOCK_DGRAM = 2
const SOCK_NONBLOCK = 0o4000
const SOCK_CLOEXEC = 0o2000000
export const SOCKET_TYPE = SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC
export const SOL_SOCKET = 1
export const SO_RCVBUF = 8
const EFD_NONBLOCK = 0o4000
const EFD_CLOEXEC = 0o2000000
export const EVENTFD_FLAGS = EFD_NONBLOCK | EFD_CLOEXEC
export const POLLIN = 1
export const EAGAIN = 11
export const EINTR = 4
/** sizeof(struct sockaddr_in6), the larger of the two families. */
export const SOCKADDR_SIZE = 28
/** sizeof(struct pollfd): int fd; short events; short revents. */
export const POLLFD_SIZE = 8

/** Pointers are BigInts in koffi. */
export type Pointer = bigint

export interface Libc {
  socket(domain: number, type: number, protocol: number): number
  bind(fd: number, addr: Buffer, len: number): number
  getsockname(fd: number, addr: Buffer, len: number[]): number
  setsockopt(fd: number, level: number, name: number, value: Int32Array, len: number): number
  getsockopt(fd: number, level: number, name: number, value: Int32Array, len: number[]): number
  recvmmsg(fd: number, msgvec: Pointer, vlen: number, flags: number, timeout: null): number
  close(fd: number): number
  eventfd(initval: number, flags: number): number
  write(fd: number, buf: Buffer, count: number): number
  inet_pton(af: number, src: string, dst: Buffer): number
  /** Blocks on a libuv pool thread until a descriptor is ready; `done` runs on the event loop. */
  pollAsync(fds: Pointer, nfds: number, timeoutMs: number, done: (err: unknown, ready: number) => void): void
  errno(): number
  /** The name of an errno value (EADDRINUSE), or `errno <n>`. */
  errnoName(errno: number): string
  malloc(size: number): Pointer
  free(ptr: Pointer): void
  /**
   * glibc's malloc_trim(0) on a libuv pool thread: gives the kernel back the free memory of every malloc arena;
   * `done` gets whether any was. null where libc has none (musl returns free memory by itself).
   */
  mallocTrimAsync: ((done: (err: unknown, released: number) => void) => void) | null
  /** The address of `ptr`'s memory as a BigInt (for pointers stored inside structs). */
  address(ptr: Pointer): bigint
  /** An ArrayBuffer over native memory, without a copy. */
  view(ptr: Pointer, length: number): ArrayBuffer
  /** Struct layout: sizeof(struct mmsghdr), offsets of msg_iov, msg_iovlen and msg_len, sizeof(struct iovec). */
  layout: { mmsghdr: number; msgIov: number; msgIovlen: number; msgLen: number; iovec: number }
}

let loaded: Promise<Libc | string> | null = null

/**
 * Gives the kernel back what malloc holds free, when the batch listener has loaded libc (in dgram mode nothing
 * is loaded for it: koffi alone costs 2.9 MB). A loader thread's arena and a compile's scratch stay resident
 * after they are freed: the trim after start-up takes an idle proxy from 60.0-60.7 to 58.8-59.6 MiB (1,000
 * prefixes, Node 20; RssAnon 16.3-17.0 to 15.0-15.8). Resolves to whether memory was released.
 */
export async function releaseFreeMemory(): Promise<boolean> {
  const libc = loaded === null ? null : await loaded
  const trim = typeof libc === 'object' ? libc?.mallocTrimAsync : null
  if (!trim) return false
  return new Promise((resolve) =>
    trim((err, released) => resolve((err === null || err === undefined) && released === 1)),
  )
}

/** libc through koffi, loaded once; a string says why it cannot be (another platform, koffi missing). */
export function loadLibc(): Promise<Libc | string> {
  loaded ??= load()
  return loaded
}

async function load(): Promise<Libc | string> {
  if (process.platform !== 'linux') return `recvmmsg is Linux only (this is ${process.platform})`
  let koffi: (typeof import('koffi'))['default']
  try {
    koffi = (await import('koffi')).default
  } catch (err) {
    return `the FFI package koffi did not load: ${(err as Error).message}`
  }
  try {
    // The process's own symbols: node links libc, whichever libc that is (glibc or musl).
    const lib = koffi.load(null)
    const iovec = koffi.struct({ iov_base: 'void *', iov_len: 'size_t' })
    const msghdr = koffi.struct({
      msg_name: 'void *',
      msg_namelen: 'uint32_t',
      msg_iov: 'void *',
      msg_iovlen: 'size_t',
      msg_control: 'void *',
      msg_controllen: 'size_t',
      msg_flags: 'int',
    })
    const mmsghdr = koffi.struct({ msg_hdr: msghdr, msg_len: 'unsigned int' })
    const poll = lib.func('int poll(void *fds, unsigned long nfds, int timeout)')
    const mallocTrim = bindOptional(() => lib.func('int malloc_trim(size_t pad)'))
    const names = new Map<number, string>()
    for (const [name, value] of Object.entries(koffi.os.errno)) if (!names.has(value)) names.set(value, name)
    return {
      socket: lib.func('int socket(int domain, int type, int protocol)'),
      bind: lib.func('int bind(int fd, const void *addr, uint32_t len)'),
      getsockname: lib.func('int getsockname(int fd, void *addr, _Inout_ uint32_t *len)'),
      setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
      getsockopt: lib.func('int getsockopt(int fd, int level, int name, void *value, _Inout_ uint32_t *len)'),
      recvmmsg: lib.func('int recvmmsg(int fd, void *msgvec, unsigned int vlen, int flags, void *timeout)'),
      close: lib.func('int close(int fd)'),
      eventfd: lib.func('int eventfd(unsigned int initval, int flags)'),
      write: lib.func('long write(int fd, const void *buf, size_t count)'),
      inet_pton: lib.func('int inet_pton(int af, const char *src, void *dst)'),
      pollAsync: (fds, nfds, timeoutMs, done) => poll.async(fds, nfds, timeoutMs, done),
      errno: () => koffi.errno(),
      errnoName: (errno) => names.get(errno) ?? `errno ${errno}`,
      malloc: lib.func('void *malloc(size_t size)'),
      free: lib.func('void free(void *ptr)'),
      mallocTrimAsync: mallocTrim && ((done) => mallocTrim.async(0, done)),
      address: (ptr) => koffi.address(ptr),
      view: (ptr, length) => koffi.view(ptr, length),
      layout: {
        mmsghdr: koffi.sizeof(mmsghdr),
        msgIov: koffi.offsetof(msghdr, 'msg_iov'),
        msgIovlen: koffi.offsetof(msghdr, 'msg_iovlen'),
        msgLen: koffi.offsetof(mmsghdr, 'msg_len'),
        iovec: koffi.sizeof(iovec),
      },
    }
  } catch (err) {
    return `libc calls could not be bound through koffi: ${(err as Error).message}`
  }
}

/** A binding of a symbol this libc may not have (glibc's own functions), or null. */
function bindOptional<T>(bind: () => T): T | null {
  try {
    return bind()
  } catch {
    return null
  }
}
