// What each dependency and each of the proxy's own structures costs in resident memory.
//   npm run build && node dist/bench/rss-imports.js [runs=5]
// Every figure is the median over `runs` fresh child processes (node --expose-gc), read from VmRSS in
// /proc/<pid>/status after two full garbage collections, so it is what stays, not what a start-up left behind:
// - imports: `node -e` that imports the modules named, then collects and reads its own VmRSS;
// - structures: the same child imports the module first, reads VmRSS, builds the structure, keeps a reference,
//   collects and reads again: the difference is the structure's cost (the module's code excluded);
// - the proxy: dist/src/cli.js started idle on a config of 1,000 (or 100,000) prefixes with a preload that, on
//   SIGUSR2, collects and writes its VmRSS to stderr; the bench sends the signal 1 s after the start line.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { runEntryPoint } from './lib/entry-point.ts'
import { median } from './lib/stats.ts'
import { table } from './lib/table.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const DIST = join(ROOT, 'dist', 'src')
const CLI = join(DIST, 'cli.js')
const runs = Number(process.argv[2] ?? 5)
const KB = 1024
const CHILD = join(fileURLToPath(new URL('.', import.meta.url)), `.rss-child-${process.pid}.mjs`)
/** Every production dependency, as package.json lists them. */
const DEPS = Object.keys(
  (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> })
    .dependencies,
)

const distUrl = (module: string): string => pathToFileURL(join(DIST, module)).href

/** Two full collections a moment apart (the second after finalizers ran), then VmRSS in kB. */
const SETTLE_AND_READ = `
const { readFileSync } = await import('node:fs')
const rssKb = () => Number(/^VmRSS:\\s*(\\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1])
gc(); await new Promise((r) => setTimeout(r, 100)); gc()
`

/** VmRSS (kB) of a child that imports `modules` (bare specifiers or file URLs) one after the other. */
function importsScript(modules: readonly string[]): string {
  return `for (const m of ${JSON.stringify(modules)}) await import(m)
${SETTLE_AND_READ}
process.stdout.write(String(rssKb()))`
}

/**
 * VmRSS growth (kB) of a child once `build` (an expression using `lib`, the imported module; awaited) exists, and
 * the bytes it holds by its own count (`held`, an expression using `kept`).
 */
function structureScript(module: string, build: string, held: string): string {
  return `const lib = await import(${JSON.stringify(distUrl(module))})
${SETTLE_AND_READ}
const before = rssKb()
const kept = await ${build}
globalThis.kept = kept
gc(); await new Promise((r) => setTimeout(r, 300)); gc()
process.stdout.write(JSON.stringify([rssKb() - before, ${held}]))`
}

/**
 * Runs `script` as an ES module file beside this one (so bare specifiers resolve from the project's node_modules;
 * not `node -e`, whose --input-type a worker thread would inherit and refuse). Returns what it printed, in kB.
 */
function runScript(script: string): number[] {
  writeFileSync(CHILD, script)
  const r = spawnSync(process.execPath, ['--expose-gc', CHILD], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 })
  const out = [JSON.parse(r.stdout || 'null') as number | number[]].flat()
  if (r.status !== 0 || !out.every(Number.isFinite)) throw new Error(`child failed: ${r.stdout} ${r.stderr}`)
  return out
}

const PRELOAD = `process.on('SIGUSR2', async () => {
  const { readFileSync } = await import('node:fs')
  const rss = () => /^VmRSS:\\s*(\\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]
  const before = rss()
  gc(); await new Promise((r) => setTimeout(r, 100)); gc()
  process.stderr.write('rss-kb ' + before + ' ' + rss() + '\\n')
})
`

/** `extra`: top-level keys, one a line (an `admin:` line replaces the default one). */
const prefixLines = (n: number): string =>
  Array.from({ length: n }, (_, i) => `    - legacy.team${i}.metric.\n`).join('')

function proxyConfig(rules: number, extra: string): string {
  const prefixes = prefixLines(rules)
  const admin = extra.startsWith('admin:') ? '' : 'admin: { host: 127.0.0.1, port: 0 }\n'
  return `listen: { host: 127.0.0.1, port: 0 }
forward: { host: 127.0.0.1, port: 9 }
${admin}log: { level: info }
${extra}blocklist:
  prefixes:
${prefixes}`
}

/** The idle proxy's VmRSS in kB: [as it stood 1 s after the start line, after two collections]. */
async function proxyRss(config: string, preload: string): Promise<[number, number]> {
  const args = ['--max-semi-space-size=1', '--expose-gc', '--import', pathToFileURL(preload).href, CLI]
  const child = spawn(process.execPath, [...args, '--config', config], { cwd: ROOT, timeout: 120_000 })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s))
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const until = async (done: () => boolean, what: string): Promise<void> => {
    for (const deadline = Date.now() + 60_000; !done(); await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`proxy: no ${what}; stdout: ${stdout} stderr: ${stderr}`)
    }
  }
  try {
    await until(() => stdout.includes('"msg":"statsd-filter-proxy started"'), 'start line')
    await new Promise((r) => setTimeout(r, 1000))
    child.kill('SIGUSR2')
    await until(() => /rss-kb \d+ \d+\n/.test(stderr), 'RSS reading')
    const [, before, after] = /rss-kb (\d+) (\d+)\n/.exec(stderr) ?? []
    return [Number(before), Number(after)]
  } finally {
    child.kill('SIGTERM')
    await exited
  }
}

const mb = (kb: number): string => (kb / KB).toFixed(1)
const signedMb = (kb: number): string => `${kb >= 0 ? '+' : '−'}${mb(Math.abs(kb))}`
const spread = (values: readonly number[]): string => `${mb(Math.min(...values))}–${mb(Math.max(...values))}`

/** The first figure `script` prints, once per run. */
function repeat(script: string): number[] {
  return Array.from({ length: runs }, () => runScript(script)[0])
}

async function main(): Promise<void> {
  if (spawnSync(process.execPath, ['-e', '0']).status !== 0) throw new Error('cannot run node')
  const BUILTINS = ['node:http', 'node:dgram', 'node:worker_threads']
  const lines: string[] = [
    `# RSS: dependencies and structures (Node ${process.version}, median of ${runs} processes each)`,
    '',
    '## Imports (VmRSS after two full collections)',
    '',
  ]
  const importRows: string[][] = []
  const bare = repeat(importsScript([]))
  const bareMedian = median(bare)
  const row = (what: string, values: number[], base = bareMedian, baseName = 'bare node'): string[] => [
    what,
    mb(median(values)),
    `${signedMb(median(values) - base)} (vs ${baseName})`,
    spread(values),
  ]
  importRows.push([`bare node`, mb(bareMedian), '', spread(bare)])
  for (const dep of DEPS) importRows.push(row(`+ ${dep}`, repeat(importsScript([dep]))))
  const builtins = repeat(importsScript(BUILTINS))
  importRows.push(row(`+ ${BUILTINS.join(', ')} (the proxy needs them anyway)`, builtins))
  const all = repeat(importsScript([...BUILTINS, ...DEPS]))
  const allMedian = median(all)
  importRows.push(row(`+ those built-ins and all ${DEPS.length} dependencies`, all))
  // What each costs once the others are loaded: leaving it out saves this much.
  for (const dep of DEPS) {
    const without = repeat(importsScript([...BUILTINS, ...DEPS.filter((d) => d !== dep)]))
    importRows.push(row(`  all but ${dep}`, without, allMedian, 'all'))
  }
  importRows.push(
    row('+ dist/src/proxy.js (every module the proxy loads at start)', repeat(importsScript([distUrl('proxy.js')]))),
  )
  lines.push(...table(['process', 'RSS MB', 'difference MB', 'runs MB'], importRows), '')

  lines.push(
    '## Structures (VmRSS growth once built and kept, module code excluded; held: the bytes of their arrays)',
    '',
  )
  const dir = mkdtempSync(join(tmpdir(), 'statsd-rss-'))
  const prefixFile = (n: number): string => {
    const file = join(dir, `prefixes-${n}.yaml`)
    writeFileSync(file, `blocklist:\n  prefixes:\n${prefixLines(n)}`)
    return file
  }
  const prefixes = (n: number): string =>
    `{ prefixes: Array.from({ length: ${n} }, (_, i) => 'legacy.team' + i + '.metric.'), names: [] }`
  const arrays = (rules: string, trie: string): string =>
    `${rules}.patterns.byteLength + ${rules}.starts.byteLength + ${rules}.dryRun.byteLength + ` +
    `${trie}.base.byteLength + ${trie}.check.byteLength + ${trie}.prefixRule.byteLength + ${trie}.exactRule.byteLength`
  const structures: [string, string, string, string][] = [1000, 100_000].flatMap(
    (n): [string, string, string, string][] => [
      [
        `rules in force, ${n.toLocaleString('en-US')} prefixes, from a file as the proxy loads it (${n > 1000 ? 'on the loader thread' : 'up to 64 KiB: on the calling thread'})`,
        'config/compile.js',
        `lib.loadAndCompile(${JSON.stringify(prefixFile(n))})`,
        arrays('kept.rules', 'kept.trie'),
      ],
      [
        `rules in force, ${n.toLocaleString('en-US')} prefixes, compiled on the calling thread`,
        'match/rule-set.js',
        `lib.compileRules({ blocklist: ${prefixes(n)}, ...lib.NO_TAG_RULES })`,
        arrays('kept.rules', 'kept.trie'),
      ],
    ],
  )
  structures.push(
    [
      '`insights`: the two top-talker sketches',
      'telemetry/top-talkers.js',
      'new lib.Insights()',
      'kept.report(1).memoryBytes',
    ],
    ['send pool, 128 × 8 KiB', 'batch/pool.js', 'new lib.BufferPool(128, 8192)', 'kept.size * kept.bufferSize'],
    // Its arrays are zero pages until a name is tracked: what a fresh one costs, not a busy one.
    ['the cardinality view, fresh', 'telemetry/cardinality.js', 'new lib.CardinalityTracker()', 'kept.memoryBytes'],
  )
  const structureRows: string[][] = []
  try {
    for (const [what, module, build, held] of structures) {
      const readings = Array.from({ length: runs }, () => runScript(structureScript(module, build, held)))
      const growth = readings.map((r) => r[0])
      structureRows.push([what, signedMb(median(growth)), spread(growth), (readings[0][1] / 1e6).toFixed(2)])
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  lines.push(...table(['structure', 'RSS MB', 'runs MB', 'held MB'], structureRows), '')

  lines.push(
    '## The proxy started idle (`node --max-semi-space-size=1 dist/src/cli.js --config <file>`, 1 s after the start line)',
    '',
  )
  const proxyDir = mkdtempSync(join(tmpdir(), 'statsd-rss-'))
  try {
    const preload = join(proxyDir, 'preload.mjs')
    writeFileSync(preload, PRELOAD)
    const variants: [string, number, string][] = [
      ['1,000 prefixes, admin on (the defaults)', 1000, ''],
      ['1,000 prefixes, admin off', 1000, 'admin: { enabled: false }\n'],
      ['1,000 prefixes, admin on, selfMetrics', 1000, 'selfMetrics: { interval: 10s }\n'],
      ['1,000 prefixes, insights: false', 1000, 'insights: false\n'],
      ['100,000 prefixes, admin on', 100_000, ''],
    ]
    const proxyRows: string[][] = []
    for (const [what, rules, extra] of variants) {
      const config = join(proxyDir, 'filter.yaml')
      writeFileSync(config, proxyConfig(rules, extra))
      const readings: [number, number][] = []
      for (let i = 0; i < runs; i++) readings.push(await proxyRss(config, preload))
      const idle = readings.map((r) => r[0])
      const collected = readings.map((r) => r[1])
      proxyRows.push([what, mb(median(idle)), spread(idle), mb(median(collected)), spread(collected)])
    }
    lines.push(...table(['config', 'RSS MB', 'runs MB', 'after two collections MB', 'runs MB'], proxyRows), '')
  } finally {
    rmSync(proxyDir, { recursive: true, force: true })
    rmSync(CHILD, { force: true })
  }
  process.stdout.write(`${lines.join('\n')}\n`)
}

await runEntryPoint('rss-imports', 20 * 60_000, main)
