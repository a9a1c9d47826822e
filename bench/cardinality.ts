// The cardinality view's error on generated streams with a known number of series, through the real filter
// (scan -> match -> batch, the view at its defaults), as GET /cardinality reports it; and the feature's memory.
// Each stream: one metric with N distinct series (user_id u0..uN-1 with one of 3 statuses), every series sent
// twice, the second time with its tags in another order and one repeated (the same series to the agent), mixed
// with 200 busy names that have 3 series each and ten times their lines (the view must rank by series, not lines).
//
//   npm run build && node dist/bench/cardinality.js [series=1000,100000,1000000]
import { DEFAULTS } from '../src/config/config.ts'
import { RuleSet } from '../src/match/rule-set.ts'
import { createPipeline } from '../src/pipeline.ts'
import { mergeCardinality } from '../src/telemetry/cardinality.ts'
import { createLogger } from '../src/telemetry/logger.ts'
import { NullTarget } from './lib/null-target.ts'

const sizes = (process.argv[2] ?? '1000,100000,1000000').split(',').map(Number)
const BUSY_NAMES = 200
const LINES_PER_DATAGRAM = 10

interface Row {
  series: number
  sinceStart: number
  window: number
  errorPercent: number
  rank: number
  userIdValues: number
  trackedNames: number
  memoryBytes: number
  seconds: number
}

function measure(n: number): Row {
  const path = createPipeline({
    rules: RuleSet.fromBlocklist({ prefixes: [], names: [] }, 'enforce'),
    target: new NullTarget(),
    maxPacketSize: 8192,
    insights: true,
    cardinality: { ...DEFAULTS.cardinalityView },
    log: createLogger('silent'),
  })
  const started = Date.now()
  let lines: string[] = []
  const flush = (): void => {
    const datagram = Buffer.from(lines.join('\n'))
    path.filter.handleDatagram(datagram, 0, datagram.length)
    lines = []
  }
  const push = (line: string): void => {
    lines.push(line)
    if (lines.length === LINES_PER_DATAGRAM) flush()
  }
  for (let i = 0; i < n; i++) {
    const status = i % 3
    push(`api.req:1|c|#env:prod,user_id:u${i},status:${status}`)
    // The same series: tags in another order, one repeated.
    push(`api.req:2|c|#status:${status},user_id:u${i},env:prod,env:prod`)
    for (let k = 0; k < 10; k++) push(`busy.m${(i * 10 + k) % BUSY_NAMES}:1|g|#env:prod,az:${k % 3}`)
  }
  if (lines.length > 0) flush()
  path.assembler.flush()
  const tracker = path.cardinality
  if (tracker === null) throw new Error('the cardinality view is off')
  const view = mergeCardinality([tracker.report(10)], 10)
  path.close()
  const rank = view.sinceStart.findIndex((r) => r.name === 'api.req')
  const row = view.sinceStart[rank]
  const windowRow = view.window.find((r) => r.name === 'api.req')
  return {
    series: n,
    sinceStart: row?.series ?? 0,
    window: windowRow?.series ?? 0,
    errorPercent: +((100 * ((row?.series ?? 0) - n)) / n).toFixed(2),
    rank: rank + 1,
    userIdValues: row?.keys.find((k) => k.key === 'user_id')?.values ?? 0,
    trackedNames: view.trackedNames,
    memoryBytes: tracker.memoryBytes,
    seconds: (Date.now() - started) / 1000,
  }
}

const rows = sizes.map(measure)
console.log('| true series | since start | window | error | rank | user_id values | tracked names | memory |')
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const r of rows)
  console.log(
    `| ${r.series.toLocaleString('en')} | ${r.sinceStart.toLocaleString('en')} | ${r.window.toLocaleString('en')} | ${r.errorPercent}% | ${r.rank} | ${r.userIdValues.toLocaleString('en')} | ${r.trackedNames} | ${r.memoryBytes.toLocaleString('en')} B |`,
  )
console.log(JSON.stringify(rows))
if (rows.some((r) => Math.abs(r.errorPercent) > 3 || r.rank !== 1)) {
  console.error('FAIL: an estimate is off by more than 3%, or the metric is not ranked first')
  process.exitCode = 1
}
