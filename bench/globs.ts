// Micro-benchmark of the glob matcher: compile time, size and ns per name for 10, 1,000 and 10,000 globs,
// measured side by side in one process on one fixed set of names (each round times every size in turn, so drift
// of the machine hits all of them alike). The matcher's cost per name must not grow with the number of globs
// (target: 10,000 within 1.3x of 10), and the timed loop must allocate nothing (0 scavenges). Each round reports
// wall-clock and CPU time (the process's user + system): on a shared machine the wall clock also counts the time
// the process waited for a core.
//
//   npm run build && node dist/bench/globs.js [lookupsPerRound=2000000]
//   node --trace-gc dist/bench/globs.js | awk '/timed loop: begin/{on=1} /timed loop: end/{on=0} on&&/Scavenge/{n++} END{print n+0}'
import { constants, performance, PerformanceObserver } from 'node:perf_hooks'
import { compileGlobs, GlobMatcher, type GlobData } from '../src/match/glob.ts'
import { median } from './lib/stats.ts'
import { int, table } from './lib/table.ts'

const lookupsPerRound = Number(process.argv[2] ?? 2_000_000)
const SIZES = [10, 1_000, 10_000]
const ROUNDS = 5

/** Globs of the shapes operators write: a service's debug tree, a temporary counter, a team's namespace, a route, a cache. */
function globsOf(count: number): string[] {
  return Array.from({ length: count }, (_, i) => {
    switch (i % 5) {
      case 0:
        return `svc${i}.*.debug.**`
      case 1:
        return `*.tmp${i}.count`
      case 2:
        return `team${i}.**`
      case 3:
        return `app.*.req${i}`
      default:
        return `*.*.cache${i}.*`
    }
  })
}

/**
 * About 1,000 names, the same for every size: a fifth shaped like a glob of the smallest set (so they match in
 * every set), the rest either unrelated or starting like a glob and missing it, some after walking deep into the
 * 10,000-glob trie (`svc12345.…` runs down `svc1234`).
 */
function names(): string[] {
  const out: string[] = []
  for (let n = 0; n < 1_000; n++) {
    const small = n % 10 // an index the 10-glob set has
    const big = (n * 7919) % 20_000 // present in the big set half of the time, shapes permitting
    switch (n % 10) {
      case 0:
        out.push(`svc${small - (small % 5)}.host${n}.debug.heap.used`)
        break
      case 1:
        out.push(`web${n}.tmp${small - (small % 5) + 1}.count`)
        break
      case 2:
        out.push(`svc${big}.host${n}.debug.gc.pause`)
        break
      case 3:
        out.push(`team${big}.requests.latency`)
        break
      case 4:
        out.push(`app.api.req${big}`)
        break
      case 5:
        out.push(`app.svc${n % 50}.requests.latency`)
        break
      case 6:
        out.push(`system.cpu.user.core${n % 64}`)
        break
      case 7:
        out.push(`kafka.consumer.lag.partition${n}`)
        break
      case 8:
        out.push(`web${n}.tmp${big}.bytes`)
        break
      default:
        out.push(`db.pool${n % 8}.cache${big}.hits.total`)
    }
  }
  return out
}

function dataBytes(data: GlobData): number {
  return data.slots.byteLength + data.idStart.byteLength + data.ids.byteLength
}

interface Subject {
  size: number
  data: GlobData
  matcher: GlobMatcher
  out: Int32Array
  compileMs: number
  /** Per round: wall-clock ns per name, and CPU ns per name (user + system: what the process ran, not waited). */
  roundNs: number[]
  roundCpuNs: number[]
  matchedNames: number
}

function subject(size: number): Subject {
  const globs = globsOf(size)
  const ids = globs.map((_, i) => i)
  const times: number[] = []
  let data = compileGlobs(globs, ids)
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now()
    data = compileGlobs(globs, ids)
    times.push(performance.now() - t0)
  }
  const matcher = new GlobMatcher(data)
  return {
    size,
    data,
    matcher,
    out: new Int32Array(matcher.idCount),
    compileMs: median(times),
    roundNs: [],
    roundCpuNs: [],
    matchedNames: 0,
  }
}

/** `lookups` names, cycling through the set; returns the ids reported, so the work cannot be optimized away. */
function run(s: Subject, buf: Uint8Array, starts: Int32Array, lookups: number): number {
  const { matcher, out } = s
  const count = starts.length - 1
  let reported = 0
  for (let i = 0, k = 0; i < lookups; i++) {
    reported += matcher.match(buf, starts[k], starts[k + 1], out)
    if (++k === count) k = 0
  }
  return reported
}

/** Every collection from now until `stop()`, with its start on the performance.now() clock; entries arrive late. */
function recordGcs(): { entries: { start: number; kind: number | undefined }[]; stop: () => void } {
  const entries: { start: number; kind: number | undefined }[] = []
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      // Node 16+ puts the kind in `detail`, which these typings do not declare (as in lib/gc.ts).
      entries.push({ start: e.startTime, kind: (e as unknown as { detail?: { kind?: number } }).detail?.kind })
    }
  })
  observer.observe({ entryTypes: ['gc'] })
  return { entries, stop: () => observer.disconnect() }
}

async function main(): Promise<void> {
  // Printed first: the first write sets up stdout (modules, streams), an old-space allocation to keep out of the loop.
  console.log(`globs bench: ${SIZES.join(', ')} globs, ${ROUNDS} rounds of ${int(lookupsPerRound)} lookups per size`)
  const list = names()
  const buf = Buffer.from(list.join(''))
  const starts = new Int32Array(list.length + 1)
  list.forEach((n, i) => (starts[i + 1] = starts[i] + Buffer.byteLength(n)))
  // The compiler's own code optimized first, so that the first size's compile times are not the interpreter's.
  for (let r = 0; r < 3; r++) compileGlobs(globsOf(SIZES[SIZES.length - 1]), [...Array(SIZES[SIZES.length - 1]).keys()])
  const subjects = SIZES.map(subject)
  for (const s of subjects) {
    for (let k = 0; k < list.length; k++)
      if (s.matcher.match(buf, starts[k], starts[k + 1], s.out) > 0) s.matchedNames++
    run(s, buf, starts, 500_000) // warm-up: optimized code before the timed rounds
  }
  // Settle the heap: the compiles left megabytes of garbage, and a collection they trigger must not land in the loop.
  await new Promise((resolve) => setTimeout(resolve, 200))

  let sink = 0
  const gcs = recordGcs()
  const orders = [subjects, [...subjects].reverse()]
  console.log('timed loop: begin')
  const loopStart = performance.now()
  for (let round = 0; round < ROUNDS; round++) {
    // Every other round backwards, so that no size always runs first (or right after the biggest).
    for (const s of orders[round % 2]) {
      const cpu0 = process.cpuUsage()
      const t0 = process.hrtime.bigint()
      sink += run(s, buf, starts, lookupsPerRound)
      s.roundNs.push(Number(process.hrtime.bigint() - t0) / lookupsPerRound)
      const cpu = process.cpuUsage(cpu0)
      s.roundCpuNs.push(((cpu.user + cpu.system) * 1e3) / lookupsPerRound)
    }
  }
  const loopEnd = performance.now()
  console.log('timed loop: end')
  await new Promise((resolve) => setTimeout(resolve, 50)) // let the gc entries arrive
  gcs.stop()
  // Only collections that began in the loop: the memory reducer's mark-compact often runs in the wait after it.
  const inLoop = gcs.entries.filter((e) => e.start >= loopStart && e.start <= loopEnd)
  const scavenges = inLoop.filter((e) => e.kind === constants.NODE_PERFORMANCE_GC_MINOR).length
  const markSweeps = inLoop.filter((e) => e.kind === constants.NODE_PERFORMANCE_GC_MAJOR).length

  const smallest = subjects[0]
  const rows = subjects.map((s) => [
    int(s.size),
    int(s.data.nodeCount),
    s.compileMs.toFixed(2),
    int(dataBytes(s.data)),
    int(s.matcher.ownBytes),
    `${s.matchedNames} / ${list.length}`,
    median(s.roundNs).toFixed(1),
    s.roundNs.map((x) => x.toFixed(0)).join(' '),
    (median(s.roundNs) / median(smallest.roundNs)).toFixed(2),
    median(s.roundCpuNs).toFixed(1),
    (median(s.roundCpuNs) / median(smallest.roundCpuNs)).toFixed(2),
  ])
  const header = ['globs', 'nodes', 'compile ms', 'GlobData bytes', 'matcher bytes (DFA as built)', 'names matching']
  header.push('ns/name', 'rounds', `ratio to ${SIZES[0]}`, 'CPU ns/name', `CPU ratio to ${SIZES[0]}`)
  console.log(table(header, rows).join('\n'))
  const bytes = buf.length / list.length
  console.log(`${list.length} names, ${bytes.toFixed(1)} bytes each`)
  console.log(`timed loop: ${scavenges} scavenges, ${markSweeps} mark-sweeps (ids reported: ${sink})`)
  const ratio = median(subjects[subjects.length - 1].roundNs) / median(smallest.roundNs)
  if (ratio > 1.3) console.error(`over target: ${subjects[subjects.length - 1].size} globs cost ${ratio.toFixed(2)}x`)
  if (scavenges + markSweeps > 0) {
    console.error(`FAIL: the timed loop allocated (${scavenges} scavenges, ${markSweeps} mark-sweeps)`)
    process.exitCode = 1
  }
}

await main()
