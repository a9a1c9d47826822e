import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { compileConfig, loadAndCompile } from '../src/config/compile.ts'
import { ConfigError } from '../src/config/errors.ts'
import { loadConfig } from '../src/config/load.ts'
import { ruleCount, unpackRules } from '../src/match/packed-rules.ts'
import { LOADER_THREAD_PADDING } from './fixtures/reload.ts'

function match(trie: { match(b: Uint8Array, s: number, e: number): number }, name: string): number {
  const buf = Buffer.from(name)
  return trie.match(buf, 0, buf.length)
}

/**
 * Where loadAndCompile compiles a file: up to 64 KiB on the calling thread, past it on a loader thread. The same
 * config both ways: `pad` appends comment lines that take it past 64 KiB (at the end: problems keep their lines).
 */
const WAYS = [
  { way: 'on the calling thread', pad: (text: string): string => text },
  { way: 'on a loader thread', pad: (text: string): string => text + LOADER_THREAD_PADDING },
] as const

t.test('either way, loadAndCompile compiles the same rules as the event loop would', async (t) => {
  for (const { way, pad } of WAYS)
    await t.test(way, async (t) => {
      const dir = t.testdir({
        'f.yaml': pad('blocklist:\n  prefixes: [legacy., debug.tmp]\n  names: [app.requests.old]\n'),
      })
      const file = join(dir, 'f.yaml')
      const { config, rules, trie } = await loadAndCompile(file)
      t.notOk('blocklist' in config, 'the rule lists travel packed, not as objects')
      t.same(unpackRules(rules), [
        { index: 0, kind: 'prefix', pattern: 'legacy.', dryRun: false },
        { index: 1, kind: 'prefix', pattern: 'debug.tmp', dryRun: false },
        { index: 2, kind: 'name', pattern: 'app.requests.old', dryRun: false },
      ])
      const local = compileConfig(loadConfig(file)).trie
      t.equal(trie.nodeCount, local.nodeCount)
      for (const name of ['legacy.x', 'debug.tmpfile', 'app.requests.old', 'app.requests.old2', 'other', 'legacy']) {
        t.equal(match(trie, name), match(local, name), name)
      }
      t.equal(match(trie, 'app.requests.old'), 2)
    })
})

t.test('with workers > 1 the compiled arrays arrive in shared memory; with one reader, as copies', async (t) => {
  for (const { way, pad } of WAYS)
    await t.test(way, async (t) => {
      const text = 'blocklist:\n  prefixes: [legacy.]\n  names: [app.old]\n'
      const dir = t.testdir({ 'one.yaml': pad(text), 'two.yaml': pad(`workers: 2\n${text}`) })
      for (const [name, shared] of [
        ['one.yaml', false],
        ['two.yaml', true],
      ] as const) {
        const { rules, trie } = await loadAndCompile(join(dir, name))
        const { base, check, prefixRule, exactRule } = trie.data()
        for (const array of [rules.patterns, rules.starts, rules.dryRun, base, check, prefixRule, exactRule]) {
          t.equal(array.buffer instanceof SharedArrayBuffer, shared, `${name}: ${array.constructor.name}`)
        }
        t.equal(match(trie, 'legacy.x'), 0)
        t.equal(match(trie, 'app.old'), 1)
      }
    })
})

t.test('either way, config problems are reported like loadConfig', async (t) => {
  for (const { way, pad } of WAYS)
    await t.test(way, async (t) => {
      const dir = t.testdir({ 'bad.yaml': pad('forward: { port: 0 }\n') })
      const file = join(dir, 'bad.yaml')
      const err = await loadAndCompile(file).then(
        () => null,
        (e: unknown) => e,
      )
      t.ok(err instanceof ConfigError)
      t.equal((err as Error).message, `${file}:1:18: forward.port: must be an integer from 1 to 65535 (got 0)`)
      const missing = await loadAndCompile(join(dir, 'nope.yaml')).catch((e: Error) => e)
      t.match(missing, { name: 'ConfigError', message: `${join(dir, 'nope.yaml')}: cannot read the file (ENOENT)` })
    })
})

t.test('100,000 rules load off the event loop', async (t) => {
  const dir = t.testdir({})
  const file = join(dir, 'big.yaml')
  writeFileSync(
    file,
    `blocklist:\n  prefixes:\n${Array.from({ length: 100_000 }, (_, i) => `    - legacy.team${i}.\n`).join('')}`,
  )
  // The loop keeps turning while the worker parses and builds: count its turns.
  let turns = 0
  const timer = setInterval(() => turns++, 1)
  const { rules, trie } = await loadAndCompile(file)
  clearInterval(timer)
  t.equal(ruleCount(rules), 100_000)
  t.equal(match(trie, 'legacy.team99999.x'), 99_999)
  t.equal(match(trie, 'legacy.team100000.x'), -1, 'legacy.team10000. is listed, legacy.team100000. is not')
  t.ok(turns > 0, `the event loop ran ${turns} timer turns meanwhile`)
})

t.test(
  'a file up to 64 KiB starts no thread; a larger one a loader thread, gone when loadAndCompile settles',
  { skip: process.platform === 'linux' ? false : 'counts threads in /proc/self/task' },
  async (t) => {
    const [small, large] = WAYS.map(({ pad }) => pad('blocklist:\n  prefixes: [legacy.]\n'))
    t.ok(Buffer.byteLength(small) <= 64 * 1024 && Buffer.byteLength(large) > 64 * 1024)
    const dir = t.testdir({ 'small.yaml': small, 'large.yaml': large, 'bad.yaml': WAYS[1].pad('blocklist: [\n') })
    const threads = (): number => readdirSync('/proc/self/task').length
    const before = threads()
    const inline = loadAndCompile(join(dir, 'small.yaml'))
    t.equal(threads(), before, 'small: no thread started')
    await inline
    const loading = loadAndCompile(join(dir, 'large.yaml'))
    t.equal(threads(), before + 1, 'large: the loader thread runs')
    await loading
    t.equal(threads(), before, 'no thread left running once it settled')
    await t.rejects(loadAndCompile(join(dir, 'bad.yaml')), ConfigError)
    t.equal(threads(), before, 'a rejected config waits for the exit too')
  },
)
