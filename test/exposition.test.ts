// The hand-written Prometheus text exposition (src/admin/exposition.ts) and the process and Node.js metrics it
// serves (src/admin/process-metrics.ts), without a proxy.
import { readdirSync } from 'node:fs'
import t from 'tap'
import { CONTENT_TYPE, Exposition } from '../src/admin/exposition.ts'
import { addProcessMetrics } from '../src/admin/process-metrics.ts'
import { parsePrometheus, promSeries } from './fixtures/udp.ts'

t.equal(CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8', 'the content type of format 0.0.4')

t.test('counters and gauges, in the order added, each with its HELP and TYPE', async (t) => {
  const e = new Exposition()
  e.gauge('b_gauge', 'A gauge.', () => -2.5)
  e.counter('a_total', 'A counter.', () => 3)
  t.equal(
    await e.render(),
    '# HELP b_gauge A gauge.\n# TYPE b_gauge gauge\nb_gauge -2.5\n' +
      '# HELP a_total A counter.\n# TYPE a_total counter\na_total 3\n',
  )
})

t.test('labels: in the order each sample lists them, one line per sample', async (t) => {
  const e = new Exposition()
  e.counter('x_total', 'X.', () => [
    [{ zeta: 'z', alpha: 'a' }, 1],
    [{ alpha: 'b', zeta: 'y' }, 2],
  ])
  t.equal(
    await e.render(),
    '# HELP x_total X.\n# TYPE x_total counter\nx_total{zeta="z",alpha="a"} 1\nx_total{alpha="b",zeta="y"} 2\n',
  )
})

t.test('escaping: label values (backslash, double quote, line feed) and HELP (backslash, line feed)', async (t) => {
  const e = new Exposition()
  e.gauge('g', 'Help with \\ a backslash,\na line feed and a "quote".', () => [[{ v: 'a\\b"c\nd' }, 1]])
  t.equal(
    await e.render(),
    '# HELP g Help with \\\\ a backslash,\\na line feed and a "quote".\n# TYPE g gauge\ng{v="a\\\\b\\"c\\nd"} 1\n',
  )
  t.same(parsePrometheus(await e.render()), [{ name: 'g', labels: { v: 'a\\b"c\nd' }, value: 1 }], 'parses back')
})

t.test('a metric whose callback returns nothing, or no series, is left out of that scrape', async (t) => {
  let value: number | undefined = undefined
  const e = new Exposition()
  e.gauge('sometimes', 'Only when known.', () => value)
  e.gauge('none', 'No series.', () => [])
  e.counter('always_total', 'Always.', () => 1)
  const always = '# HELP always_total Always.\n# TYPE always_total counter\nalways_total 1\n'
  t.equal(await e.render(), always, 'undefined and [] leave no HELP, no TYPE, no sample')
  value = 7
  t.equal(await e.render(), `# HELP sometimes Only when known.\n# TYPE sometimes gauge\nsometimes 7\n${always}`)
})

t.test('every callback is read at each scrape; an async one is awaited', async (t) => {
  let n = 0
  const e = new Exposition()
  e.counter('n_total', 'N.', () => ++n)
  e.gauge('later', 'Async.', () => new Promise<number>((resolve) => setImmediate(() => resolve(n * 10))))
  const text = (i: number): string =>
    `# HELP n_total N.\n# TYPE n_total counter\nn_total ${i}\n# HELP later Async.\n# TYPE later gauge\nlater ${i * 10}\n`
  t.equal(await e.render(), text(1))
  t.equal(await e.render(), text(2))
})

t.test('special values as the format spells them', async (t) => {
  const e = new Exposition()
  e.gauge('v', 'V.', () => [
    [{ k: 'inf' }, Infinity],
    [{ k: 'neg' }, -Infinity],
    [{ k: 'nan' }, NaN],
    [{ k: 'big' }, 2 ** 53],
    [{ k: 'small' }, 1.5e-7],
  ])
  t.match(
    await e.render(),
    'v{k="inf"} +Inf\nv{k="neg"} -Inf\nv{k="nan"} NaN\nv{k="big"} 9007199254740992\nv{k="small"} 1.5e-7\n',
  )
})

t.test('a name added twice is refused (Prometheus would reject the whole scrape)', async (t) => {
  const e = new Exposition()
  e.counter('dup_total', 'One.', () => 1)
  t.throws(() => e.gauge('dup_total', 'Two.', () => 2), /metric dup_total added twice/)
})

t.test('process and Node.js metrics', async (t) => {
  const e = new Exposition()
  addProcessMetrics(e)
  const resources = process.getActiveResourcesInfo().sort()
  const text = await e.render()
  t.same(process.getActiveResourcesInfo().sort(), resources, 'no timer or handle left behind by adding or scraping')
  const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`)
  t.same(types, [
    'process_cpu_user_seconds_total counter',
    'process_cpu_system_seconds_total counter',
    'process_cpu_seconds_total counter',
    'process_start_time_seconds gauge',
    'process_resident_memory_bytes gauge',
    'process_open_fds gauge',
    'nodejs_eventloop_lag_seconds gauge',
    'nodejs_heap_size_total_bytes gauge',
    'nodejs_heap_size_used_bytes gauge',
    'nodejs_external_memory_bytes gauge',
    'nodejs_version_info gauge',
  ])
  const m = parsePrometheus(text)
  const one = (name: string): number => {
    const series = promSeries(m, name)
    t.same(Object.keys(series), ['{}'], `${name}: one series without labels`)
    return series['{}']
  }
  const user = one('process_cpu_user_seconds_total')
  const system = one('process_cpu_system_seconds_total')
  const cpu = one('process_cpu_seconds_total')
  t.ok(user > 0 && system >= 0, `CPU since the process started: user ${user} s, system ${system} s`)
  t.ok(cpu >= user + system && cpu < user + system + 0.1, `process_cpu_seconds_total ${cpu}: user + system`)
  const start = one('process_start_time_seconds')
  t.ok(Math.abs(start - (Date.now() / 1000 - process.uptime())) <= 1, `start time ${start}: now - uptime`)
  const rss = one('process_resident_memory_bytes')
  t.ok(rss > 10e6 && rss < 2e9, `RSS ${rss}`)
  const fds = one('process_open_fds')
  const now = readdirSync('/proc/self/fd').length - 1
  t.ok(Math.abs(fds - now) <= 2, `open fds ${fds}: the entries of /proc/self/fd (${now} now)`)
  const heapTotal = one('nodejs_heap_size_total_bytes')
  const heapUsed = one('nodejs_heap_size_used_bytes')
  t.ok(heapUsed > 0 && heapUsed <= heapTotal, `heap used ${heapUsed} of ${heapTotal}`)
  t.ok(one('nodejs_external_memory_bytes') > 0, 'external memory')
  t.ok(one('nodejs_eventloop_lag_seconds') > 0, 'event loop lag: measured in this scrape (prom-client reported 0)')
  const [major, minor, patch] = process.versions.node.split('.')
  t.same(
    promSeries(m, 'nodejs_version_info'),
    { [`{major="${major}",minor="${minor}",patch="${patch}",version="${process.version}"}`]: 1 },
    'nodejs_version_info',
  )
})

t.test('event loop lag: how long a setImmediate scheduled by the scrape waited', async (t) => {
  const e = new Exposition()
  addProcessMetrics(e)
  const scrape = e.render()
  // Queued before the scrape's own setImmediate (the scrape reaches the gauge a few microtasks later), so it runs
  // first in the same check phase and holds the event loop for 50 ms.
  setImmediate(() => {
    for (const until = performance.now() + 50; performance.now() < until;);
  })
  const lag = promSeries(parsePrometheus(await scrape), 'nodejs_eventloop_lag_seconds')['{}']
  t.ok(lag >= 0.05 && lag < 1, `lag ${lag} s: the 50 ms the loop was held`)
})
