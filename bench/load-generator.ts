// Offers load to a proxy from its own process (the other core): pre-built datagrams, connected sockets (one unless
// configured with more: each a sender of its own, with its own source port), synchronous sends. It must never be
// what limits a measurement, so the hot loop does nothing but send and add.
import dgram from 'node:dgram'
import { serve } from './lib/ipc.ts'
import { buildWorkload, DATAGRAM_SET, type Workload } from './workload.ts'

export interface GeneratorTarget {
  port: number
  rules: number
  linesPerDatagram: number
  /** Sending sockets, used in turn datagram by datagram; 1 when absent. */
  sockets?: number
}

export interface GeneratorSnapshot {
  timeNs: number
  datagrams: number
  lines: number
  /** Lines sent that no rule blocks: what the sink must receive if nothing is lost. */
  survivors: number
  /** Datagrams the schedule called for so far (equal to `datagrams` at saturation). */
  due: number
  sendErrors: number
}

/** Paced mode sends what is due every timer tick; Node's timers fire about every millisecond at best. */
const TICK_MS = 1
/**
 * After a stall, catch up by at most this much of the schedule per tick, so a long hiccup is not one huge burst.
 * It must exceed the scheduler's time slice (several ms when other processes share the CPU), or a generator that
 * is merely descheduled between ticks could never catch up.
 */
const MAX_CATCH_UP_S = 0.05
/** Saturation mode sends this many per event-loop turn, then yields so IPC requests get answered. */
const SATURATION_BURST = 64
/**
 * libuv queues a send the kernel refuses without limit; loopback UDP never refuses (the receiver drops
 * instead), but if it ever did, pause rather than let the queue and its memory grow.
 */
const MAX_SEND_QUEUE = 1000
const MASK = DATAGRAM_SET - 1

const workloads = new Map<string, Workload>()
let workload: Workload | null = null
let sockets: dgram.Socket[] = []
/** `port/count` the sockets are connected for. */
let socketKey = ''
/** The socket the next datagram goes out on. */
let nextSocket = 0
let running = false
/** Bumped by every start, so a send loop left over from the previous run can tell it is stale. */
let generation = 0
let timer: NodeJS.Timeout | null = null
let startNs = 0
let next = 0
let datagrams = 0
let survivors = 0
let due = 0
let sendErrors = 0

async function configure(target: GeneratorTarget): Promise<void> {
  if (running) throw new Error('configure while running')
  const key = `${target.rules}/${target.linesPerDatagram}`
  let w = workloads.get(key)
  if (w === undefined) {
    w = buildWorkload(target.rules, target.linesPerDatagram)
    workloads.set(key, w)
  }
  workload = w
  const count = target.sockets ?? 1
  if (!(Number.isInteger(count) && count >= 1 && count <= 64))
    throw new Error(`sockets: expected 1 to 64, got ${count}`)
  const wanted = `${target.port}/${count}`
  if (socketKey !== wanted) {
    for (const s of sockets) s.close()
    sockets = []
    socketKey = ''
    for (let k = 0; k < count; k++) sockets.push(await connect(target.port))
    socketKey = wanted
  }
}

function connect(port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4')
    s.once('error', reject)
    s.connect(port, '127.0.0.1', () => {
      s.off('error', reject)
      // ECONNREFUSED arrives here if the proxy is gone; count it rather than crash.
      s.on('error', () => sendErrors++)
      resolve(s)
    })
  })
}

function sendBurst(ss: dgram.Socket[], w: Workload, n: number): void {
  const { datagrams: set, survivors: kept } = w
  const count = ss.length
  let i = next
  let j = nextSocket
  let surviving = 0
  for (let k = 0; k < n; k++) {
    ss[j].send(set[i])
    surviving += kept[i]
    i = (i + 1) & MASK
    if (++j === count) j = 0
  }
  next = i
  nextSocket = j
  datagrams += n
  survivors += surviving
}

function sendQueueCount(ss: dgram.Socket[]): number {
  let n = 0
  for (const s of ss) n += s.getSendQueueCount()
  return n
}

/** `datagramsPerSecond` null: as fast as this process can. */
function start(datagramsPerSecond: number | null): void {
  const s = sockets
  const w = workload
  if (s.length === 0 || w === null) throw new Error('start before configure')
  if (running) throw new Error('already running')
  running = true
  const mine = ++generation
  next = nextSocket = datagrams = survivors = due = sendErrors = 0
  startNs = Number(process.hrtime.bigint())
  if (datagramsPerSecond === null) {
    const blast = (): void => {
      if (!running || generation !== mine) return
      if (sendQueueCount(s) < MAX_SEND_QUEUE) {
        sendBurst(s, w, SATURATION_BURST)
        due = datagrams
      }
      setImmediate(blast)
    }
    setImmediate(blast)
    return
  }
  const rate = datagramsPerSecond
  const maxBurst = Math.max(1, Math.ceil(rate * MAX_CATCH_UP_S))
  const tick = (): void => {
    // The schedule is a function of elapsed time, not of ticks: late ticks send more, so no drift accumulates.
    due = Math.floor(((Number(process.hrtime.bigint()) - startNs) * rate) / 1e9)
    const n = Math.min(due - datagrams, maxBurst)
    if (n > 0 && sendQueueCount(s) < MAX_SEND_QUEUE) sendBurst(s, w, n)
    timer = setTimeout(tick, TICK_MS)
  }
  tick()
}

function snapshot(): GeneratorSnapshot {
  const lpd = workload?.linesPerDatagram ?? 0
  return { timeNs: Number(process.hrtime.bigint()), datagrams, lines: datagrams * lpd, survivors, due, sendErrors }
}

function stop(): GeneratorSnapshot {
  running = false
  if (timer !== null) clearTimeout(timer)
  timer = null
  return snapshot()
}

serve(null, {
  configure: (args) => configure(args as GeneratorTarget),
  start: (args) => start(args as number | null),
  snapshot,
  stop,
})
