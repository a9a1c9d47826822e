// How N worker processes share one UDP port's load, for `workers: N`: the cluster module's shared handle (the
// primary owns one socket, every worker reads from it) against `reusePort: true` (SO_REUSEPORT: a socket per
// worker, the kernel picks one per datagram by hashing the sender's address and port), each with ONE sending socket
// and with MANY (8). Every worker runs the proxy's real pipeline (1,000-rule blocklist, 10 lines per datagram) and
// forwards to a sink; a load-generator process sends as fast as it can. Per cell: lines/s the workers read (sum),
// each worker's share of them, lines/s the sink received, datagrams the kernel dropped at the listen socket(s).
//
//   npm run bench:workers                                   (build, then this on the PATH's Node)
//   /path/to/node24 dist/bench/workers.js                   reusePort needs Node >= 22.12 (or >= 23.1)
//   options: --seconds <s> (5) --warmup <s> (0.5) --reps <n> (3) --senders <n> (8)
//
// What the result means: a worker's share is what the race between the workers' reads of the one socket (shared
// handle) or the kernel's hash (reusePort) gave it. reusePort pins each sender to one socket, so a single sender's
// traffic all goes to one worker, and a few senders split by chance (k of 8 senders on a worker's socket is an
// arrived share near k/8); the shared handle spreads even a single sender over the workers (about half each, with
// run-to-run swings). On a 2-core machine the workers, the generator and the sink compete for CPU, so the absolute
// rates are bounded by the machine; the share per worker is the result.
import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Child, runEntryPoint, saveReport } from './ipc.ts'
import type { GeneratorSnapshot, GeneratorTarget } from './load-generator.ts'
import { PRODUCTION_NODE_FLAGS, sleep } from './measure.ts'
import { int, pct } from './report.ts'
import type { SinkReady, SinkSnapshot } from './sink.ts'
import type { PrimaryReady, PrimarySnapshot, Strategy } from './workers-child.ts'

const RULES = 1000
const LINES_PER_DATAGRAM = 10
const HARD_LIMIT_MS = 15 * 60_000
const CHILD_START_TIMEOUT_MS = 30_000
/** Drained: the workers and the sink counted nothing new for this long. */
const QUIET_MS = 150
const DRAIN_LIMIT_MS = 15_000

interface Cell {
  strategy: Strategy
  workers: number
  senders: number
}

interface WorkerResult {
  pid: number
  /** Lines this worker read in the window. */
  lines: number
  /** Of the lines all workers read in the window. */
  share: number
  /** CPU time over wall time in the window (1 = a whole core). */
  cpuShare: number
  /** Share of the window it was ready to run but waited for a CPU. */
  cpuWaitShare: number
  /** Datagrams dropped at this worker's own socket in the window (reusePort only; null for the shared socket). */
  socketDrops: number | null
  /**
   * reusePort only (null for the shared socket): of the datagrams that reached the port in the window, the part the
   * kernel put on this worker's socket (read by it + dropped at its full queue): the kernel's distribution itself.
   */
  arrivedShare: number | null
}

interface RunResult {
  cell: Cell
  rep: number
  port: number
  /** Sockets bound to the port: 1 with the shared handle, one per worker with reusePort. */
  sockets: number
  recvBufferGranted: number
  windowSeconds: number
  // The measurement window.
  generatorLinesPerSecond: number
  receivedLinesPerSecond: number
  deliveredLinesPerSecond: number
  workers: WorkerResult[]
  /** Datagrams the kernel dropped at the listen socket(s) in the window, and as a share of those sent. */
  kernelDrops: number
  kernelDropShare: number
  // The whole run, warm-up and drain included.
  sentDatagrams: number
  readDatagrams: number
  droppedDatagrams: number
  /** sent − read − dropped by the kernel: should be 0 (loopback loses nothing elsewhere). */
  unaccountedDatagrams: number
  forwardedLines: number
  /** Lines the sink counted of those the workers forwarded. */
  sinkLines: number
}

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '0.5' },
    reps: { type: 'string', default: '3' },
    senders: { type: 'string', default: '8' },
  },
})
const measureMs = bounded(flags.seconds, 'seconds', 0.1, 60) * 1000
const warmupMs = bounded(flags.warmup, 'warmup', 0, 60) * 1000
const reps = bounded(flags.reps, 'reps', 1, 20)
const manySenders = bounded(flags.senders, 'senders', 2, 64)

function bounded(arg: string | undefined, name: string, min: number, max: number): number {
  const n = Number(arg)
  if (!(n >= min && n <= max)) throw new Error(`--${name}: expected a number from ${min} to ${max}, got ${arg}`)
  return n
}

/** SO_REUSEPORT through dgram's reusePort option: Node 22.12+ on the 22 line, 23.1+. */
function hasReusePort(version: string): boolean {
  const [major, minor] = version.replace(/^v/, '').split('.').map(Number)
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
}

const moduleUrl = (name: string): string => fileURLToPath(new URL(`./${name}.js`, import.meta.url))
const label = (c: Cell): string => `${c.strategy} ${c.workers}w ${c.senders}s`
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}
const shares = (r: RunResult): string => r.workers.map((w) => (w.share * 100).toFixed(1)).join(' / ')
const arrivedShares = (r: RunResult): string =>
  r.workers.every((w) => w.arrivedShare !== null) ? r.workers.map((w) => ((w.arrivedShare ?? 0) * 100).toFixed(1)).join(' / ') : 'one queue'
const cpuShares = (r: RunResult): string => r.workers.map((w) => (w.cpuShare * 100).toFixed(0)).join(' / ')
const cpuWaits = (r: RunResult): string => r.workers.map((w) => (w.cpuWaitShare * 100).toFixed(0)).join(' / ')

async function runCell(cell: Cell, rep: number, sink: Child, sinkPort: number, generator: Child): Promise<RunResult> {
  const { child: primary, ready } = await Child.start<PrimaryReady>(
    `cluster ${label(cell)}`,
    moduleUrl('workers-child'),
    [cell.strategy, String(cell.workers), String(sinkPort), String(RULES)],
    process.execPath,
    CHILD_START_TIMEOUT_MS,
    PRODUCTION_NODE_FLAGS,
  )
  let started = false
  try {
    const expectedSockets = cell.strategy === 'shared' ? 1 : cell.workers
    if (ready.sockets.length !== expectedSockets && ready.sockets.length !== 0) {
      throw new Error(`${label(cell)}: ${ready.sockets.length} sockets bound to port ${ready.port}, expected ${expectedSockets}`)
    }
    const target: GeneratorTarget = { port: ready.port, rules: RULES, linesPerDatagram: LINES_PER_DATAGRAM, sockets: cell.senders }
    await generator.call('configure', target, 30_000)
    const [s0, p0] = await Promise.all([sink.call<SinkSnapshot>('snapshot'), primary.call<PrimarySnapshot>('snapshot')])

    await generator.call('start', null)
    started = true
    await sleep(warmupMs)
    const [g1, p1, s1] = await Promise.all([
      generator.call<GeneratorSnapshot>('snapshot'),
      primary.call<PrimarySnapshot>('snapshot'),
      sink.call<SinkSnapshot>('snapshot'),
    ])
    await sleep(measureMs)
    const [g2, p2, s2] = await Promise.all([
      generator.call<GeneratorSnapshot>('snapshot'),
      primary.call<PrimarySnapshot>('snapshot'),
      sink.call<SinkSnapshot>('snapshot'),
    ])
    const gEnd = await generator.call<GeneratorSnapshot>('stop')
    started = false
    if (gEnd.sendErrors > 0) throw new Error(`${label(cell)}: ${gEnd.sendErrors} sends failed; are the workers still running?`)
    const [pEnd, sEnd] = await drain(primary, sink)

    const seconds = (p2.timeNs - p1.timeNs) / 1e9
    const linesOf = (p: PrimarySnapshot, i: number): number => p.workers[i].counters.linesIn
    const windowLines = ready.workers.map((_, i) => linesOf(p2, i) - linesOf(p1, i))
    const received = windowLines.reduce((a, b) => a + b, 0)
    const dropsOf = (p: PrimarySnapshot, inodes: string[]): number =>
      p.sockets.filter((s) => inodes.includes(s.inode)).reduce((a, s) => a + s.drops, 0)
    const owned = ready.workers.map((w) =>
      cell.strategy === 'reuseport' ? ready.sockets.filter((s) => w.inodes.includes(s.inode)).map((s) => s.inode) : [],
    )
    // Per worker socket (reusePort, when each worker's socket was found): datagrams read + dropped in the window.
    const arrived = owned.every((own) => own.length === 1)
      ? owned.map((own, i) => p2.workers[i].counters.datagramsIn - p1.workers[i].counters.datagramsIn + dropsOf(p2, own) - dropsOf(p1, own))
      : null
    const arrivedTotal = arrived === null ? 0 : arrived.reduce((a, b) => a + b, 0)
    const workers: WorkerResult[] = ready.workers.map((w, i) => {
      const a = p1.workers[i]
      const b = p2.workers[i]
      const own = owned[i]
      return {
        pid: w.pid,
        lines: windowLines[i],
        share: received === 0 ? 0 : windowLines[i] / received,
        cpuShare: (b.cpuUserUs + b.cpuSystemUs - a.cpuUserUs - a.cpuSystemUs) / 1e6 / seconds,
        cpuWaitShare: (b.runQueueWaitNs - a.runQueueWaitNs) / 1e9 / seconds,
        socketDrops: own.length === 1 ? dropsOf(p2, own) - dropsOf(p1, own) : null,
        arrivedShare: arrived === null || arrivedTotal === 0 ? null : arrived[i] / arrivedTotal,
      }
    })
    const kernelDrops = (p2.kernel?.drops ?? 0) - (p1.kernel?.drops ?? 0)
    const sentInWindow = g2.datagrams - g1.datagrams
    const sum = (p: PrimarySnapshot, f: (c: PrimarySnapshot['workers'][number]['counters']) => number): number =>
      p.workers.reduce((a, w) => a + f(w.counters), 0)
    const readDatagrams = sum(pEnd, (c) => c.datagramsIn) - sum(p0, (c) => c.datagramsIn)
    const droppedDatagrams = (pEnd.kernel?.drops ?? 0) - (p0.kernel?.drops ?? 0)
    const result: RunResult = {
      cell,
      rep,
      port: ready.port,
      sockets: ready.sockets.length,
      recvBufferGranted: ready.workers[0].recvBufferGranted,
      windowSeconds: seconds,
      generatorLinesPerSecond: (g2.lines - g1.lines) / ((g2.timeNs - g1.timeNs) / 1e9),
      receivedLinesPerSecond: received / seconds,
      deliveredLinesPerSecond: (s2.lines - s1.lines) / seconds,
      workers,
      kernelDrops,
      kernelDropShare: sentInWindow === 0 ? 0 : kernelDrops / sentInWindow,
      sentDatagrams: gEnd.datagrams,
      readDatagrams,
      droppedDatagrams,
      unaccountedDatagrams: gEnd.datagrams - readDatagrams - droppedDatagrams,
      forwardedLines: sum(pEnd, (c) => c.linesForwarded) - sum(p0, (c) => c.linesForwarded),
      sinkLines: sEnd.lines - s0.lines,
    }
    await primary.call('shutdown')
    return result
  } finally {
    if (started) await generator.call('stop').catch(() => {})
    primary.kill()
  }
}

/** Until the workers have read what their sockets held and the sink counted what they sent; returns the last reads. */
async function drain(primary: Child, sink: Child): Promise<[PrimarySnapshot, SinkSnapshot]> {
  const deadline = Date.now() + DRAIN_LIMIT_MS
  let last = { read: -1, sink: -1 }
  for (;;) {
    const [p, s] = await Promise.all([primary.call<PrimarySnapshot>('snapshot'), sink.call<SinkSnapshot>('snapshot')])
    const now = { read: p.workers.reduce((a, w) => a + w.counters.datagramsIn, 0), sink: s.lines }
    if (now.read === last.read && now.sink === last.sink) return [p, s]
    if (Date.now() > deadline) throw new Error(`the workers were still draining after ${DRAIN_LIMIT_MS} ms`)
    last = now
    await sleep(QUIET_MS)
  }
}

function progress(r: RunResult): void {
  console.error(
    `rep ${r.rep + 1} ${label(r.cell).padEnd(18)} read ${int(r.receivedLinesPerSecond).padStart(10)} lines/s, shares ${shares(r).padEnd(12)} ` +
      `arrived ${arrivedShares(r)}, cpu ${cpuShares(r).padEnd(9)} (waited ${cpuWaits(r)}) sink ${int(r.deliveredLinesPerSecond).padStart(10)} lines/s, kernel drops ${int(r.kernelDrops)} ` +
      `(${pct(r.kernelDropShare, 1)}), gen ${int(r.generatorLinesPerSecond)} lines/s, unaccounted ${r.unaccountedDatagrams}`,
  )
}

function render(
  runs: RunResult[],
  cells: Cell[],
  meta: { node: string; cpu: string; startedAt: Date; elapsedMs: number; rmemMax: number | null; reusePortNote: string | null },
): string {
  const out: string[] = []
  out.push(`# Workers: cluster shared handle vs reusePort (${meta.startedAt.toISOString()})`, '')
  out.push(
    `Node ${meta.node}, ${meta.cpu}, net.core.rmem_max = ${meta.rmemMax === null ? 'n/a' : int(meta.rmemMax)}. ` +
      `Saturation: the load generator sends as fast as it can (${LINES_PER_DATAGRAM} lines per datagram, ${int(RULES)}-rule blocklist, ` +
      `30% of lines blocked) from 1 or ${manySenders} sockets, round robin; ${warmupMs / 1000} s warm-up, then a ${measureMs / 1000} s window; ` +
      `${reps} runs per cell, cells interleaved (reversed order every other repetition). Took ${(meta.elapsedMs / 1000).toFixed(0)} s.`,
    '',
  )
  if (meta.reusePortNote !== null) out.push(`**${meta.reusePortNote}**`, '')
  out.push(
    `Note: ${cpus().length} cores run the workers, the load generator (itself a full core at saturation) and the sink, so the absolute ` +
      'rates are bounded by the machine (and its noisy neighbours), not by the proxy: the share per worker is the key result.',
    '',
  )
  out.push('## Medians of the runs', '')
  out.push('| strategy | workers | senders | read by workers, lines/s | share per worker, % (each run) | busiest worker | arrived at each worker socket, % (each run) | delivered to sink, lines/s | kernel drops (of sent) |')
  out.push('| --- | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: |')
  for (const cell of cells) {
    const rs = runs.filter((r) => label(r.cell) === label(cell))
    if (rs.length === 0) continue
    const busiest = median(rs.map((r) => Math.max(...r.workers.map((w) => w.share))))
    out.push(
      `| ${cell.strategy} | ${cell.workers} | ${cell.senders} | ${int(median(rs.map((r) => r.receivedLinesPerSecond)))} | ` +
        `${rs.map(shares).join(' · ')} | ${pct(busiest, 1)} | ${cell.strategy === 'shared' ? 'one queue' : rs.map(arrivedShares).join(' · ')} | ${int(median(rs.map((r) => r.deliveredLinesPerSecond)))} | ` +
        `${int(median(rs.map((r) => r.kernelDrops)))} (${pct(median(rs.map((r) => r.kernelDropShare)), 1)}) |`,
    )
  }
  out.push('', '## Every run', '')
  out.push(
    '| rep | strategy | workers | senders | sockets | sent, lines/s | read, lines/s | share per worker, % | arrived per worker socket, % | worker CPU, % | worker waited for CPU, % | drops per worker socket | delivered, lines/s | kernel drops | unaccounted datagrams | sink / forwarded |',
  )
  out.push('| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |')
  for (const r of runs) {
    const perSocket = r.workers.every((w) => w.socketDrops !== null) ? r.workers.map((w) => int(w.socketDrops ?? 0)).join(' / ') : 'one socket'
    out.push(
      `| ${r.rep + 1} | ${r.cell.strategy} | ${r.cell.workers} | ${r.cell.senders} | ${r.sockets} | ${int(r.generatorLinesPerSecond)} | ` +
        `${int(r.receivedLinesPerSecond)} | ${shares(r)} | ${arrivedShares(r)} | ${cpuShares(r)} | ${cpuWaits(r)} | ${perSocket} | ${int(r.deliveredLinesPerSecond)} | ` +
        `${int(r.kernelDrops)} (${pct(r.kernelDropShare, 1)}) | ${r.unaccountedDatagrams} | ${pct(r.forwardedLines === 0 ? 1 : r.sinkLines / r.forwardedLines, 2)} |`,
    )
  }
  out.push(
    '',
    'Read = lines the workers took off the socket(s) in the window (sum); share = each worker\'s part of them (worker 1 / worker 2). ' +
      'Arrived (reusePort) = of the datagrams that reached the port, the part the kernel put on each worker\'s socket ' +
      '(read by it or dropped at its full queue): where a socket overflows, this is the kernel\'s split, and the read share understates it. ' +
      'Worker CPU = its CPU time over the window (100 = a whole core); waited = the part of the window it was ready to run but ' +
      'another process had the CPU (Linux schedstat). Kernel drops = datagrams discarded at the listen socket(s) because their queue was full (/proc/net/udp), in the window. ' +
      'Unaccounted = datagrams sent over the whole run minus those read minus those dropped by the kernel (0 = every datagram is accounted for). ' +
      `With reusePort and ${manySenders} equal senders, an arrived share near k/${manySenders} means k senders hashed to that worker's socket.`,
  )
  return out.join('\n')
}

async function main(): Promise<void> {
  const startedAt = new Date()
  const node = process.version
  const reusePort = hasReusePort(node)
  const reusePortNote = reusePort ? null : `reusePort: unavailable on Node ${node} (needs >= 22.12 or >= 23.1); only the shared handle is measured`
  if (reusePortNote !== null) console.error(reusePortNote)
  const cells: Cell[] = [
    { strategy: 'shared', workers: 1, senders: 1 },
    { strategy: 'shared', workers: 1, senders: manySenders },
    { strategy: 'shared', workers: 2, senders: 1 },
    { strategy: 'shared', workers: 2, senders: manySenders },
    ...(reusePort
      ? ([
          { strategy: 'reuseport', workers: 2, senders: 1 },
          { strategy: 'reuseport', workers: 2, senders: manySenders },
        ] as const)
      : []),
  ]
  console.error(
    `workers bench: node ${node}, ${cells.length} cells × ${reps} runs, ${warmupMs} ms warm-up + ${measureMs} ms each. ` +
      `On ${cpus().length} cores shared by the workers, the generator and the sink the absolute rates are bounded by the machine; ` +
      'the share per worker is the key result.',
  )
  const { child: sink, ready: sinkReady } = await Child.start<SinkReady>('sink', moduleUrl('sink'), [], process.execPath, CHILD_START_TIMEOUT_MS)
  const generator = (await Child.start<null>('load-generator', moduleUrl('load-generator'), [], process.execPath, CHILD_START_TIMEOUT_MS)).child
  const runs: RunResult[] = []
  for (let rep = 0; rep < reps; rep++) {
    const order = rep % 2 === 0 ? cells : [...cells].reverse()
    for (const cell of order) {
      const r = await runCell(cell, rep, sink, sinkReady.port, generator)
      progress(r)
      runs.push(r)
    }
  }
  const meta = {
    node,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}`,
    startedAt,
    elapsedMs: Date.now() - startedAt.getTime(),
    rmemMax: readRmemMax(),
    reusePortNote,
  }
  const markdown = render(runs, cells, meta)
  process.stdout.write(markdown + '\n')
  const prefix = `workers-node${node.slice(1).split('.')[0]}-`
  const name = saveReport(prefix, markdown, startedAt)
  const json = name.replace(/\.md$/, '.json')
  saveJson(json, { ...meta, startedAt: startedAt.toISOString(), rules: RULES, linesPerDatagram: LINES_PER_DATAGRAM, warmupMs, measureMs, reps, cells, runs })
  console.error(`workers bench: report written to bench/results/${name} and bench/results/${json}`)
}

function saveJson(name: string, data: unknown): void {
  const dir = new URL('../../bench/results/', import.meta.url)
  const tmp = new URL(`${name}.tmp`, dir)
  writeFileSync(tmp, JSON.stringify(data, null, 2) + '\n')
  renameSync(tmp, new URL(name, dir))
}

function readRmemMax(): number | null {
  try {
    return Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'))
  } catch {
    return null
  }
}

await runEntryPoint('workers bench', HARD_LIMIT_MS, main)
