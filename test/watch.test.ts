// Unit tests of FileWatch on a real temporary directory: the directory watch (a plain write, a Kubernetes
// ConfigMap `..data` swap), the stat poll that backs it up, and close().
import { mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { FileWatch, type FileWatchOptions } from '../src/reload/watch.ts'
import { ownTestdir, waitFor } from './fixtures/udp.ts'

/** Long enough that the poll never runs within a test: only the directory watch can report. */
const NO_POLL_MS = 600_000

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Watched {
  watch: FileWatch
  /** When each onChange call came (Date.now()). */
  calls: number[]
  /** What the watched path read at each call. */
  seen: string[]
}

function watch(t: Test, file: string, options: Omit<FileWatchOptions, 'onChange'>): Watched {
  const calls: number[] = []
  const seen: string[] = []
  const w = new FileWatch(file, {
    ...options,
    onChange: () => {
      calls.push(Date.now())
      try {
        seen.push(readFileSync(file, 'utf8'))
      } catch (err) {
        seen.push(`error:${(err as NodeJS.ErrnoException).code}`)
      }
    },
  })
  t.teardown(() => w.close())
  return { watch: w, calls, seen }
}

/**
 * Rewrites `real` (longer each time) until `w` reports a change through the poll. The first stat, taken in the
 * background by the constructor, is the baseline: a write that lands before it would be part of the baseline,
 * so one write alone could go unseen.
 */
async function changeUntilCalled(w: Watched, real: string): Promise<void> {
  let content = readFileSync(real, 'utf8')
  const before = w.calls.length
  await waitFor(
    () => {
      if (w.calls.length > before) return true
      content = `x${content}`
      writeFileSync(real, content)
      return false
    },
    () => 'onChange from the poll',
    5_000,
  )
}

/**
 * A watch polling every 20 ms on watched/filter.yaml, a symlink to elsewhere/real.yaml first holding `content`, once
 * the poll has seen the target change (see changeUntilCalled): the watch and the target's path.
 */
async function linkedWatch(t: Test, content: string): Promise<{ w: Watched; real: string }> {
  const root = ownTestdir(t, { watched: {}, elsewhere: { 'real.yaml': content } })
  const real = join(root, 'elsewhere', 'real.yaml')
  const file = join(root, 'watched', 'filter.yaml')
  symlinkSync(real, file)
  const w = watch(t, file, { debounceMs: 10, pollMs: 20 })
  await changeUntilCalled(w, real)
  return { w, real }
}

t.test('writes to the file: one call, debounceMs after the last of a burst', async (t) => {
  const dir = ownTestdir(t, { 'filter.yaml': 'blocklist: {}\n' })
  const file = join(dir, 'filter.yaml')
  const debounceMs = 100
  const w = watch(t, file, { debounceMs, pollMs: NO_POLL_MS })
  // A burst from one synchronous block, plain writes and editor-style saves (a temp file renamed over the
  // file), so the events differ (inotify merges identical ones): the kernel queues every event before the
  // watcher reads any, so they all reach it in one turn and the debounce restarts on each; one call follows.
  for (let i = 0; i < 5; i++) {
    writeFileSync(file, `blocklist: {prefixes: [w${i}]}\n`)
    writeFileSync(join(dir, `.filter.yaml.${i}.tmp`), `blocklist: {prefixes: [p${i}]}\n`)
    renameSync(join(dir, `.filter.yaml.${i}.tmp`), file)
  }
  const lastWrite = Date.now()
  await waitFor(
    () => w.calls.length > 0,
    () => 'onChange after the writes',
  )
  t.ok(
    w.calls[0] - lastWrite >= debounceMs - 2,
    `called ${w.calls[0] - lastWrite} ms after the last write (debounce ${debounceMs} ms)`,
  )
  t.same(w.seen, ['blocklist: {prefixes: [p4]}\n'], 'the file holds the last write when onChange runs')
  await sleep(3 * debounceMs)
  t.equal(w.calls.length, 1, 'one call for the burst')

  // A later, separate write is a change of its own.
  writeFileSync(file, 'blocklist: {prefixes: [later]}\n')
  await waitFor(
    () => w.calls.length >= 2,
    () => 'onChange after the second write',
  )
  await sleep(3 * debounceMs)
  t.equal(w.calls.length, 2)
})

t.test(
  'a Kubernetes ConfigMap update (the ..data symlink swapped by rename) is seen by the directory watch',
  async (t) => {
    // The layout the kubelet makes: filter.yaml -> ..data/filter.yaml, ..data -> ..<timestamp>/ (a real dir).
    const dir = ownTestdir(t, { '..2024_01_01_00_00_00.1': { 'filter.yaml': 'blocklist: {prefixes: [old]}\n' } })
    symlinkSync('..2024_01_01_00_00_00.1', join(dir, '..data'))
    symlinkSync('..data/filter.yaml', join(dir, 'filter.yaml'))
    const file = join(dir, 'filter.yaml')
    t.equal(readFileSync(file, 'utf8'), 'blocklist: {prefixes: [old]}\n')
    const w = watch(t, file, { debounceMs: 50, pollMs: NO_POLL_MS })

    // The update: a new timestamped dir, a new symlink to it, renamed over ..data (atomic), the old dir removed.
    // The file's own path and the old file's inode never change; only the directory sees the rename.
    mkdirSync(join(dir, '..2024_01_01_00_01_00.2'))
    writeFileSync(join(dir, '..2024_01_01_00_01_00.2', 'filter.yaml'), 'blocklist: {prefixes: [new]}\n')
    symlinkSync('..2024_01_01_00_01_00.2', join(dir, '..data_tmp'))
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'))
    rmSync(join(dir, '..2024_01_01_00_00_00.1'), { recursive: true })
    await waitFor(
      () => w.calls.length > 0,
      () => 'onChange after the ..data swap',
    )
    t.same(w.seen, ['blocklist: {prefixes: [new]}\n'], 'the new content is in place when onChange runs')
    await sleep(150)
    t.equal(w.calls.length, 1, 'the several renames of one update are one call')
  },
)

t.test('the stat poll sees a change the directory watch cannot', async (t) => {
  // The watched path is a symlink to a file in another directory: a write there makes no event in the
  // watched directory, but the poll's stat follows the link and sees the size and mtime change.
  const { w } = await linkedWatch(t, 'a\n')
  t.match(w.seen[0], /^x+a\n$/, 'the changed content is readable through the link')
})

t.test('the stat poll also sees the file go away and come back', async (t) => {
  const { w, real } = await linkedWatch(t, 'one\n')
  rmSync(real)
  await waitFor(
    () => w.seen.includes('error:ENOENT'),
    () => 'onChange after the link target went away',
    5_000,
  )
  writeFileSync(real, 'two\n')
  await waitFor(
    () => w.seen.includes('two\n'),
    () => `onChange after it came back (seen ${JSON.stringify(w.seen)})`,
    5_000,
  )
  t.pass('both seen')
})

t.test('close() stops the watch, the poll and a pending debounce: no call after it', async (t) => {
  const dir = ownTestdir(t, { 'filter.yaml': 'v1\n' })
  const file = join(dir, 'filter.yaml')
  const calls: number[] = []
  const w = new FileWatch(file, { debounceMs: 400, pollMs: 20, onChange: () => calls.push(Date.now()) })
  t.teardown(() => w.close())
  // The witness watches the same directory with a short debounce. libuv hands one inotify event to every watch
  // of the path in the same turn, so both debounces start together; the witness's, far shorter, expires first
  // and closes the watch under test from its callback, while that one's long debounce is still pending.
  let closedAt = 0
  const witness = new FileWatch(file, {
    debounceMs: 10,
    pollMs: NO_POLL_MS,
    onChange: () => {
      if (closedAt !== 0) return
      w.close()
      closedAt = Date.now()
    },
  })
  t.teardown(() => witness.close())
  writeFileSync(file, 'v2\n')
  await waitFor(
    () => closedAt !== 0,
    () => 'the witness saw the write',
  )
  // After close: more writes (the watch), size changes (the poll, every 20 ms), and the debounce's deadline.
  writeFileSync(file, 'v3 longer\n')
  await sleep(100)
  writeFileSync(file, 'v4 longer still\n')
  await sleep(500)
  t.same(calls, [], 'no call after close()')
  w.close() // closing twice is harmless
})
