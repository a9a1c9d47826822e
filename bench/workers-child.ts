// One cell of bench/workers: a cluster primary that forks N workers, each running the proxy's filtering pipeline
// (scan → match → batch → send, built from the same modules as src/proxy.ts) on its own receive socket:
//   node dist/bench/workers-child.js <shared|reuseport> <workers> <sink port> <rules>
// `shared`: the cluster module's shared handle (bind with exclusive: false in a worker: the primary owns the one
// socket and every worker reads from it). `reuseport`: `reusePort: true` (Node >= 22.12 / 23.1): each worker binds a
// socket of its own to the same port and the kernel picks one per datagram by hashing the sender's address and
// port. Both bind the port the primary chose, so the pipeline code is identical and only the socket differs.
// The primary answers the orchestrator (bench/ipc serve) and asks its workers for their counters.
import cluster, { type Worker } from 'node:cluster'
import dgram from 'node:dgram'
import { readdir, readFile, readlink } from 'node:fs/promises'
import { Assembler } from '../src/batch/assembler.ts'
import { BufferPool } from '../src/batch/pool.ts'
import { DEFAULTS } from '../src/config/config.ts'
import { LineFilter } from '../src/filter.ts'
import { RuleSet } from '../src/match/rule-set.ts'
import { SEND_POOL_SIZE, TOP_TALKERS } from '../src/data-path.ts'
import { lineCounters, type ProxyLineCounters } from './proxy-kinds.ts'
import { createUdpTarget } from '../src/send/udp-target.ts'
import { Counters } from '../src/telemetry/counters.ts'
import { readUdpSocketStats, type UdpSocketStats } from '../src/telemetry/kernel-drops.ts'
import { WarningGate } from '../src/telemetry/rate-limit.ts'
import { TopTalkers } from '../src/telemetry/top-talkers.ts'
import { serve } from './ipc.ts'
import { ProcessStats, type ProcessSnapshot } from './process-stats.ts'
import { blockedPrefixes } from './workload.ts'

export type Strategy = 'shared' | 'reuseport'
export const STRATEGIES: readonly Strategy[] = ['shared', 'reuseport']

export interface WorkerReady {
  index: number
  pid: number
  /** What the kernel granted for SO_RCVBUF (Linux reports twice the usable size; halved as the proxy does). */
  recvBufferGranted: number
}

export type WorkerCounters = ProxyLineCounters & { sendErrors: number }

export interface WorkerSnapshot extends ProcessSnapshot {
  index: number
  counters: WorkerCounters
}

export interface UdpSocketRow {
  inode: string
  drops: number
  rxQueue: number
}

export interface PrimaryReady {
  port: number
  workers: (WorkerReady & { inodes: string[] })[]
  /** The sockets bound to the port: one for `shared`, one per worker for `reuseport`. */
  sockets: UdpSocketRow[]
}

export interface PrimarySnapshot {
  /** process.hrtime in the primary, in ns, taken before it asked the workers. */
  timeNs: number
  workers: WorkerSnapshot[]
  /** readUdpSocketStats: the kernel's counters summed over every socket bound to the port. */
  kernel: UdpSocketStats | null
  /** The same, socket by socket (inode from /proc/net/udp), so drops can be put down to a worker's socket. */
  sockets: UdpSocketRow[]
}

type ToWorker = { id: number; op: 'snapshot' }
type FromWorker = { ready: WorkerReady } | { id: number; result: WorkerSnapshot }

const HOST = '127.0.0.1'
const WORKER_START_TIMEOUT_MS = 30_000
const WORKER_CALL_TIMEOUT_MS = 10_000

const [strategyArg, workersArg, sinkPortArg, rulesArg] = process.argv.slice(2)
if (!(STRATEGIES as readonly string[]).includes(strategyArg) || !(Number(workersArg) >= 1) || !(Number(sinkPortArg) > 0) || !(Number(rulesArg) >= 1)) {
  throw new Error(`usage: workers-child <${STRATEGIES.join('|')}> <workers> <sink port> <rules>`)
}
const strategy = strategyArg as Strategy

if (cluster.isPrimary) await runPrimary()
else await runWorker()

async function runPrimary(): Promise<void> {
  const count = Number(workersArg)
  const port = await freePort()
  const workers: Worker[] = []
  process.on('exit', () => {
    for (const w of workers) w.process.kill('SIGKILL')
  })
  let shuttingDown = false
  cluster.on('exit', (w, code, signal) => {
    if (shuttingDown) return
    console.error(`workers-child: worker ${w.process.pid} exited (code ${code}, signal ${signal})`)
    process.exit(1)
  })

  let nextId = 1
  const pending = new Map<number, (s: WorkerSnapshot) => void>()
  const readies: Promise<WorkerReady>[] = []
  for (let index = 0; index < count; index++) {
    // Same script, same arguments and Node flags as the primary; the port and the index come in the environment.
    const w = cluster.fork({ BENCH_PORT: String(port), BENCH_WORKER: String(index) })
    workers.push(w)
    readies.push(
      withTimeout(
        new Promise<WorkerReady>((resolve) => {
          w.on('message', (msg: FromWorker) => {
            if ('ready' in msg) resolve(msg.ready)
            else pending.get(msg.id)?.(msg.result)
          })
        }),
        WORKER_START_TIMEOUT_MS,
        `worker ${index} did not start`,
      ),
    )
  }
  const ready = await Promise.all(readies)

  const ask = (w: Worker): Promise<WorkerSnapshot> => {
    const id = nextId++
    const reply = new Promise<WorkerSnapshot>((resolve) => pending.set(id, resolve))
    w.send({ id, op: 'snapshot' } satisfies ToWorker)
    return withTimeout(reply, WORKER_CALL_TIMEOUT_MS, `worker ${w.process.pid}: no snapshot`).finally(() => pending.delete(id))
  }

  const workerInfo = await Promise.all(ready.map(async (r) => ({ ...r, inodes: await socketInodes(r.pid) })))
  serve({ port, workers: workerInfo, sockets: await udpSockets(port) } satisfies PrimaryReady, {
    snapshot: async (): Promise<PrimarySnapshot> => {
      const timeNs = Number(process.hrtime.bigint())
      const snapshots = await Promise.all(workers.map(ask))
      const [kernel, sockets] = await Promise.all([readUdpSocketStats(port), udpSockets(port)])
      return { timeNs, workers: snapshots, kernel, sockets }
    },
    shutdown: async () => {
      shuttingDown = true
      await Promise.all(
        workers.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.process.exitCode !== null || w.process.signalCode !== null) return resolve()
              w.process.once('exit', () => resolve())
              w.process.kill('SIGKILL')
            }),
        ),
      )
      return null
    },
  })
}

async function runWorker(): Promise<void> {
  const index = Number(process.env.BENCH_WORKER)
  const port = Number(process.env.BENCH_PORT)
  const sinkPort = Number(sinkPortArg)
  const rules = Number(rulesArg)

  // The pipeline as startProxy builds it (insights on, as the bench's proxy config and production have it).
  const counters = new Counters()
  const target = await createUdpTarget({
    host: HOST,
    port: sinkPort,
    resolveIntervalMs: 30_000,
    onError: () => counters.sendErrors++,
    onAddressChange: () => {},
  })
  const pool = new BufferPool(SEND_POOL_SIZE, DEFAULTS.loopbackPacketSize)
  const assembler = new Assembler(pool, target, counters, () => {})
  const insights = {
    forwarded: new TopTalkers(TOP_TALKERS.capacity, TOP_TALKERS.maxNameBytes, TOP_TALKERS.sampleEvery),
    blocked: new TopTalkers(TOP_TALKERS.capacity, TOP_TALKERS.maxNameBytes, TOP_TALKERS.sampleEvery),
  }
  const filter = new LineFilter(
    RuleSet.fromBlocklist({ prefixes: blockedPrefixes(rules), names: [] }, 'enforce'),
    assembler,
    counters,
    new WarningGate(10_000),
    () => {},
    insights,
  )
  setInterval(() => filter.tick(Date.now()), 1000).unref()

  // The only difference between the strategies. (@types/node 20 does not know reusePort yet.)
  const options: dgram.SocketOptions & { reusePort?: boolean } = { type: 'udp4', recvBufferSize: DEFAULTS.recvBufferSize }
  if (strategy === 'reuseport') options.reusePort = true
  const socket = dgram.createSocket(options)
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    // exclusive: false is the default; said here because it is what makes a cluster worker share the primary's
    // socket. With reusePort, Node binds exclusively (a socket per worker) whatever this says.
    socket.bind({ port, address: HOST, exclusive: false }, () => {
      socket.off('error', reject)
      resolve()
    })
  })
  socket.on('error', () => {})
  socket.on('message', (msg) => filter.handleDatagram(msg))

  const stats = new ProcessStats()
  const send = (msg: FromWorker): void => {
    process.send?.(msg)
  }
  process.on('message', (msg: ToWorker) => {
    if (msg.op !== 'snapshot') return
    const own = stats.snapshot()
    const c = counters
    send({
      id: msg.id,
      result: {
        ...own,
        index,
        counters: { ...lineCounters(c), sendErrors: c.sendErrors },
      },
    })
  })
  const kernel = socket.getRecvBufferSize()
  send({ ready: { index, pid: process.pid, recvBufferGranted: process.platform === 'linux' ? Math.floor(kernel / 2) : kernel } })
  // A cluster worker exits by itself when its primary goes away (the IPC channel closes).
}

/** A port nothing is bound to right now, for every worker to bind (the window in between is tiny, on loopback). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4')
    s.once('error', reject)
    s.bind(0, HOST, () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** The sockets bound to `port`, from /proc/net/udp ([] where it does not exist). */
async function udpSockets(port: number): Promise<UdpSocketRow[]> {
  let text: string
  try {
    text = await readFile('/proc/net/udp', 'utf8')
  } catch {
    return []
  }
  const portHex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const rows: UdpSocketRow[] = []
  for (const line of text.split('\n').slice(1)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
    const f = line.trim().split(/\s+/)
    if (f.length < 13 || !f[1].endsWith(portHex)) continue
    rows.push({ inode: f[9], drops: Number(f[12]), rxQueue: parseInt(f[4].split(':')[1], 16) })
  }
  return rows
}

/** The inodes of the sockets a process holds open (/proc/<pid>/fd), to tell which listen socket is whose. */
async function socketInodes(pid: number): Promise<string[]> {
  const dir = `/proc/${pid}/fd`
  let fds: string[]
  try {
    fds = await readdir(dir)
  } catch {
    return []
  }
  const inodes: string[] = []
  for (const fd of fds) {
    const link = await readlink(`${dir}/${fd}`).catch(() => '')
    const m = /^socket:\[(\d+)\]$/.exec(link)
    if (m !== null) inodes.push(m[1])
  }
  return inodes
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
