// Dependencies are loaded only where they are used: every one costs RSS in every pod (bench/rss-imports.ts, with
// the other dependencies loaded: hot-shots 5–8 MB, yaml about 5 MB; the admin server 0.5 MB of the idle proxy,
// 2.7 MB when it used prom-client). Runs the built CLI with a preload (test/fixtures/loaded-packages.mjs) that
// writes the packages and the project's own modules its main thread loaded.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import { CLI, ensureBuilt, output, ROOT, sleep } from './fixtures/faults.ts'
import { LOADER_THREAD_PADDING } from './fixtures/reload.ts'
import { ownTestdir } from './fixtures/udp.ts'

const PRELOAD = pathToFileURL(join(ROOT, 'test', 'fixtures', 'loaded-packages.mjs')).href
const BASE = 'listen: { host: 127.0.0.1, port: 0 }\nforward: { host: 127.0.0.1, port: 9 }\n'
const ADMIN = 'admin: { host: 127.0.0.1, port: 0 }\n'

t.before(() => ensureBuilt(t))

/**
 * Runs the CLI on `config` with the preload; without --check, stops it with SIGTERM once it has started.
 * Returns the packages and the project's modules (dist/src/...) its main thread loaded.
 */
async function loadedPackages(tt: Test, config: string, check = false): Promise<string[]> {
  const dir = ownTestdir(tt, { 'filter.yaml': config })
  const list = join(dir, 'packages.txt')
  const env: NodeJS.ProcessEnv = { ...process.env, LOADED_PACKAGES_FILE: list }
  delete env.FILTER_CONFIG
  delete env.PROXY_CONFIG_FILE
  const args = ['--import', PRELOAD, CLI, '--config', join(dir, 'filter.yaml'), ...(check ? ['--check'] : [])]
  const child = spawn(process.execPath, args, { cwd: ROOT, env, timeout: 60_000 })
  const out = output(child)
  if (!check) {
    while (!out.stdout().includes('"msg":"statsd-filter-proxy started"') && child.exitCode === null) await sleep(10)
    child.kill('SIGTERM')
  }
  const exit = await out.done
  tt.equal(exit.code, 0, `exit 0 (stderr: ${exit.stderr})`)
  return readFileSync(list, 'utf8').split('\n').slice(0, -1)
}

const ADMIN_MODULES = ['dist/src/admin/exposition.js', 'dist/src/admin/metrics.js', 'dist/src/admin/server.js']

t.test('started without selfMetrics: no hot-shots; yaml on the thread that parsed the config', async (t) => {
  const packages = await loadedPackages(t, BASE + ADMIN)
  t.ok(packages.includes('pino'), 'pino (the logger)')
  t.same(
    ADMIN_MODULES.filter((m) => !packages.includes(m)),
    [],
    'the admin modules, the metrics exposition among them (the admin server is on)',
  )
  t.notOk(packages.includes('hot-shots'), 'no hot-shots')
  t.ok(packages.includes('yaml'), 'yaml: a file up to 64 KiB is parsed on the main thread')
  const large = await loadedPackages(t, BASE + ADMIN + LOADER_THREAD_PADDING)
  t.notOk(large.includes('yaml'), 'no yaml for a larger file: it was parsed on the loader thread')
})

t.test('the built-ins are required, not imported: no undici bundle for node:http on Node 24', async (t) => {
  // Node 24 builds an imported built-in's ES namespace from all its exports, and http's WebSocket getter loads
  // undici (+12.4 MiB in a bare process, 3 MiB of the idle proxy); Node 20's http has no such export.
  const packages = await loadedPackages(t, BASE + ADMIN)
  t.ok(packages.includes('node:http'), 'the admin server loaded node:http')
  t.notOk(packages.includes('node:internal/deps/undici/undici'), 'but not undici')
})

t.test('started with selfMetrics: hot-shots (the preload sees it when it is there)', async (t) => {
  const packages = await loadedPackages(t, `${BASE}${ADMIN}selfMetrics: { interval: 10s }\n`)
  t.ok(packages.includes('hot-shots'))
})

t.test('admin off: no admin module, no metrics exposition', async (t) => {
  const packages = await loadedPackages(t, `${BASE}admin: { enabled: false }\n`)
  t.same(
    packages.filter((m) => m.startsWith('dist/src/admin/')),
    [],
    'no module of dist/src/admin/',
  )
  t.notOk(packages.includes('hot-shots'))
})

t.test('--check parses on the main thread: yaml (the preload sees it when it is there)', async (t) => {
  const packages = await loadedPackages(t, BASE, true)
  t.ok(packages.includes('yaml'))
  t.notOk(packages.includes('hot-shots'))
})
