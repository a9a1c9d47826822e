import { readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { compileConfig, loadAndCompile } from '../src/config/compile.ts'
import { ConfigError } from '../src/config/errors.ts'
import { loadConfig } from '../src/config/load.ts'
import { ruleCount, unpackRules } from '../src/match/packed-rules.ts'

function match(trie: { match(b: Uint8Array, s: number, e: number): number }, name: string): number {
  const buf = Buffer.from(name)
  return trie.match(buf, 0, buf.length)
}

t.test('a worker thread loads and compiles the same rules as the event loop would', async (t) => {
  const dir = t.testdir({ 'f.yaml': 'blocklist:\n  prefixes: [legacy., debug.tmp]\n  names: [app.requests.old]\n' })
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

t.test('with workers > 1 the compiled arrays arrive in shared memory; with one reader, as copies', async (t) => {
  const text = 'blocklist:\n  prefixes: [legacy.]\n  names: [app.old]\n'
  const dir = t.testdir({ 'one.yaml': text, 'two.yaml': `workers: 2\n${text}` })
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

t.test('a worker thread reports config problems like loadConfig', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'forward: { port: 0 }\n' })
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
  'loadAndCompile settles once the worker thread has exited (its memory is freed by then)',
  { skip: process.platform === 'linux' ? false : 'counts threads in /proc/self/task' },
  async (t) => {
    const dir = t.testdir({ 'f.yaml': 'blocklist:\n  prefixes: [legacy.]\n' })
    const threads = (): number => readdirSync('/proc/self/task').length
    const before = threads()
    await loadAndCompile(join(dir, 'f.yaml'))
    t.equal(threads(), before, 'no thread left running')
    const bad = join(dir, 'bad.yaml')
    writeFileSync(bad, 'blocklist: [\n')
    await t.rejects(loadAndCompile(bad), ConfigError)
    t.equal(threads(), before, 'a rejected config waits for the exit too')
  },
)
