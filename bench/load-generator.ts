// Offers load to a proxy from its own process (CPU 0, shared with the sink): pre-built datagrams, connected
// sockets (one unless configured with more: each a sender of its own, with its own source port), synchronous
// sends. It must never be what limits a measurement, so the hot loops do nothing but send and add.
//
// Pacing `even` (the default) sends each datagram on its own when its time comes, as independent application
// threads do; `bursty` sends what is due every 1 ms timer tick (the generator's old behaviour, kept as a
// comparison: a proxy that reads in batches sees full batches for free). Paced runs carry a latency probe every
// PROBE_EVERY datagrams (workload.ts): its send time, which the sink subtracts from its receive time.
import dgram from 'node:dgram'
import { performance } from 'node:perf_hooks'
import { serve } from './lib/ipc.ts'
import {
  buildWorkload,
  DATAGRAM_SET,
  probeDatagram,
  PROBE_EVERY,
  PROBE_TIME_DIGITS,
  PROBE_TIME_OFFSET,
  type Workload,
} from './workload.ts'

export interface GeneratorTarget {
  port: number
  rules: number
  linesPerDatagram: number
  /** Sending sockets, used in turn datagram by datagram; 1 when absent. */
  sockets?: number
}

export type Pacing = 'even' | 'bursty'

export interface GeneratorStart {
  /** Offered datagrams per second; null = as fast as this process can (saturation, never probed). */
  rate: number | null
  pacing: Pacing
}

export interface GeneratorSnapshot {
  timeNs: number
  datagrams: number
  lines: number
  /** Lines sent that no rule blocks (probes included): what the sink must receive if nothing is lost. */
  survivors: number
  /** Datagrams the schedule called for so far (equal to `datagrams` at saturation). */
  due: number
  /** Datagrams the schedule called for but never sent: more than MAX_CATCH_UP_S behind after a stall. */
  skipped: number
  sendErrors: number
  /** This process's CPU time since it started, µs (user + system). */
  cpuUs: number
  /**
   * Wall time spent sending (even pacing: the loop iterations that sent; otherwise every slice), ns since start:
   * busyNs / datagrams is what one send costs here, and its inverse the generator's ceiling.
   */
  busyNs: number
}

/** Bursty mode sends what is due every timer tick; Node's timers fire about every millisecond at best. */
const TICK_MS = 1
/**
 * Even mode holds the event loop for this long at a time (spinning until each datagram is due), then yields
 * with setImmediate so IPC requests are answered. Sleeping between datagrams is no option: Atomics.wait on this
 * machine (2 vCPUs, shared) overshoots by 115–130 µs at the median and 0.8–2 ms at p99, more than the 6.7–200 µs
 * between datagrams at 150k–5k/s.
 */
const SLICE_MS = 5
/**
 * After a stall (the generator descheduled: the sink shares its core), catch up at most this much of the schedule,
 * back to back; older datagrams are skipped and counted, so a long hiccup is neither one huge burst nor hidden.
 * It must exceed the scheduler's time slice (several ms when other processes share the CPU), or a generator
 * merely descheduled between two slices could never catch up.
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
let startMs = 0
let next = 0
let datagrams = 0
let lines = 0
let survivors = 0
let due = 0
let skipped = 0
let sendErrors = 0
let busyNs = 0
/** Datagrams until the next probe; probes only go out in paced runs. */
let untilProbe = PROBE_EVERY
let probing = false
const probe = probeDatagram()

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

/** Sends the next `n` datagrams back to back (a probe in place of every PROBE_EVERY-th when probing). */
function sendBurst(ss: dgram.Socket[], w: Workload, n: number): void {
  const { datagrams: set, survivors: kept, linesPerDatagram } = w
  const count = ss.length
  let i = next
  let j = nextSocket
  let surviving = 0
  let sentLines = 0
  for (let k = 0; k < n; k++) {
    if (probing && --untilProbe === 0) {
      untilProbe = PROBE_EVERY
      // The send time, in the clock the sink reads (CLOCK_MONOTONIC, one per host), written in place: the send
      // copies it at once (libuv's try-send; loopback never queues a send, see MAX_SEND_QUEUE).
      probe.write(String(process.hrtime.bigint()).padStart(PROBE_TIME_DIGITS, '0'), PROBE_TIME_OFFSET, 'latin1')
      ss[j].send(probe)
      surviving++
      sentLines++
    } else {
      ss[j].send(set[i])
      surviving += kept[i]
      sentLines += linesPerDatagram
      i = (i + 1) & MASK
    }
    if (++j === count) j = 0
  }
  next = i
  nextSocket = j
  datagrams += n
  lines += sentLines
  survivors += surviving
}

function sendQueueCount(ss: dgram.Socket[]): number {
  let n = 0
  for (const s of ss) n += s.getSendQueueCount()
  return n
}

function start({ rate, pacing }: GeneratorStart): void {
  const s = sockets
  const w = workload
  if (s.length === 0 || w === null) throw new Error('start before configure')
  if (running) throw new Error('already running')
  running = true
  const mine = ++generation
  next = nextSocket = datagrams = lines = survivors = due = skipped = sendErrors = busyNs = 0
  untilProbe = PROBE_EVERY
  probing = rate !== null
  startMs = performance.now()
  const live = (): boolean => running && generation === mine
  if (rate === null) blast(s, w, live)
  else if (pacing === 'even') paceEvenly(s, w, rate, live)
  else paceByTick(s, w, rate, live)
}

function blast(s: dgram.Socket[], w: Workload, live: () => boolean): void {
  const turn = (): void => {
    if (!live()) return
    const t0 = performance.now()
    if (sendQueueCount(s) < MAX_SEND_QUEUE) {
      sendBurst(s, w, SATURATION_BURST)
      due = datagrams
    }
    busyNs += (performance.now() - t0) * 1e6
    setImmediate(turn)
  }
  setImmediate(turn)
}

/** The schedule is a function of elapsed time, not of ticks or loop turns: late sends do not accumulate drift. */
function paceEvenly(s: dgram.Socket[], w: Workload, rate: number, live: () => boolean): void {
  const perMs = rate / 1000
  const maxLag = Math.max(1, Math.ceil(rate * MAX_CATCH_UP_S))
  const slice = (): void => {
    if (!live()) return
    // A full send queue (never seen on loopback) pauses sending for the slice; the schedule runs on.
    const canSend = sendQueueCount(s) < MAX_SEND_QUEUE
    const end = performance.now() + SLICE_MS
    let t = performance.now()
    for (;;) {
      due = Math.floor((t - startMs) * perMs)
      let behind = due - datagrams - skipped
      if (behind > maxLag) {
        skipped += behind - maxLag
        behind = maxLag
      }
      if (behind > 0 && canSend) {
        sendBurst(s, w, 1)
        const after = performance.now()
        busyNs += (after - t) * 1e6
        t = after
      } else {
        t = performance.now()
      }
      if (t >= end) break
    }
    setImmediate(slice)
  }
  slice()
}

function paceByTick(s: dgram.Socket[], w: Workload, rate: number, live: () => boolean): void {
  const maxBurst = Math.max(1, Math.ceil(rate * MAX_CATCH_UP_S))
  const tick = (): void => {
    if (!live()) return
    const t0 = performance.now()
    due = Math.floor((t0 - startMs) * (rate / 1000))
    const behind = due - datagrams - skipped
    if (behind > maxBurst) skipped += behind - maxBurst
    const n = Math.min(behind, maxBurst)
    if (n > 0 && sendQueueCount(s) < MAX_SEND_QUEUE) sendBurst(s, w, n)
    busyNs += (performance.now() - t0) * 1e6
    timer = setTimeout(tick, TICK_MS)
  }
  tick()
}

function snapshot(): GeneratorSnapshot {
  const cpu = process.cpuUsage()
  return {
    timeNs: Number(process.hrtime.bigint()),
    datagrams,
    lines,
    survivors,
    due,
    skipped,
    sendErrors,
    cpuUs: cpu.user + cpu.system,
    busyNs,
  }
}

function stop(): GeneratorSnapshot {
  running = false
  if (timer !== null) clearTimeout(timer)
  timer = null
  return snapshot()
}

serve(null, {
  configure: (args) => configure(args as GeneratorTarget),
  start: (args) => start(args as GeneratorStart),
  snapshot,
  stop,
})
