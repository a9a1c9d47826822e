#!/usr/bin/env -S node --max-semi-space-size=1
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import type * as Util from 'node:util'
import { compileConfig, loadAndCompile, type Compiled } from './config/compile.ts'
import { configPath, loadConfig } from './config/load.ts'
import { ConfigError, formatProblem } from './config/errors.ts'
import { ruleKinds } from './match/rule-set.ts'
import { startProxy, WATCH, type Proxy } from './proxy.ts'
import { createLogger } from './telemetry/logger.ts'

/** node:util by require: imported, Node 24 builds its ES namespace from every export, 1.4 MiB of RSS (24.22). */
const { parseArgs } = createRequire(import.meta.url)('node:util') as typeof Util

const USAGE = `Usage: statsd-filter-proxy [--config PATH] [--check]

A DogStatsD/StatsD filtering proxy: receives metrics over UDP, drops the lines whose
metric names match the blocklist, forwards every other line unchanged.

Options:
  -c, --config PATH   config file (YAML filter.yaml, or statsd-filter-proxy-rs JSON)
      --check         validate the config, print the problems, exit 0 (valid) or 1
  -h, --help          show this help
  -v, --version       print the version

The config file is the first of: --config, $FILTER_CONFIG, $PROXY_CONFIG_FILE, ./filter.yaml
`

function version(): string {
  // dist/src/cli.js and src/cli.ts sit at different depths below package.json.
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
  }
  return 'unknown'
}

async function main(argv: string[]): Promise<number> {
  let args
  try {
    args = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        check: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
      strict: true,
    }).values
  } catch (err) {
    process.stderr.write(`statsd-filter-proxy: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  if (args.help) {
    process.stdout.write(USAGE)
    return 0
  }
  if (args.version) {
    process.stdout.write(`${version()}\n`)
    return 0
  }

  const file = configPath(args.config, process.env)
  let compiled: Compiled
  try {
    // --check compiles too: what it accepts is exactly what would start.
    compiled = args.check ? compileConfig(loadConfig(file)) : await loadAndCompile(file)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`${err.message}\n`)
    if (!args.check) process.stderr.write('statsd-filter-proxy: not started: the config is invalid\n')
    return 1
  }
  const { config } = compiled
  if (args.check) {
    for (const w of config.warnings) process.stdout.write(`warning: ${formatProblem(file, w)}\n`)
    const { prefixes, names, ...tagRules } = ruleKinds(compiled)
    const more = Object.entries(tagRules)
      .filter(([, n]) => n > 0)
      .map(([kind, n]) => `, ${n} ${kind}`)
      .join('')
    process.stdout.write(`${file}: OK (${config.format}, ${prefixes} prefixes, ${names} names${more})\n`)
    return 0
  }

  const log = createLogger(config.log.level)
  let proxy: Proxy
  try {
    proxy = await startProxy(compiled, log, { watch: WATCH })
  } catch (err) {
    log.fatal({ err }, 'statsd-filter-proxy could not start')
    return 1
  }
  // As PID 1 in a container Node ignores SIGTERM unless a handler exists.
  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting without draining')
      process.exit(1)
    }
    stopping = true
    log.info({ signal }, 'shutting down')
    proxy.close().then(
      () => {
        log.flush()
        process.exit(0)
      },
      (err: unknown) => {
        log.error({ err }, 'error during shutdown')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  // The reload's outcome is logged by the reloader.
  process.on('SIGHUP', () => void proxy.reload('signal'))
  return -1 // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`statsd-filter-proxy: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = 1
  },
)
