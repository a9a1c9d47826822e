import type * as Http from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import type { Endpoint } from '../config/config.ts'
import type { Mode, RuleStats } from '../match/rule-set.ts'
import type { ReloadResult } from '../reload/reloader.ts'
import type { Logger } from '../telemetry/logger.ts'
import type { CardinalityView } from '../telemetry/cardinality.ts'
import type { TopReport } from '../telemetry/top-talkers.ts'
import { CONTENT_TYPE } from './exposition.ts'

/**
 * node:http by require, not import: Node 24 gives an imported built-in an ES module namespace of all its exports,
 * and reading http's WebSocket, CloseEvent and MessageEvent getters for it loads the whole undici bundle. Idle
 * proxy on Node 24.22: 3 MiB of RSS for nothing (a bare import: 59.1 MiB against 46.7 for require; Node 20: no
 * difference).
 */
const { createServer } = createRequire(import.meta.url)('node:http') as typeof Http

export interface AdminHandlers {
  /** The listen socket is bound and a valid config is in force (false once shutdown starts). */
  ready(): boolean
  /** The Prometheus text of every metric, read now. */
  metrics(): Promise<string>
  /** Brings what metrics() reads up to date before a scrape (with workers, asks each for its counters). */
  refresh?(): Promise<void>
  /** The mode in force, which /rules reports with the rules. */
  mode(): Mode
  rules(): RuleStats | Promise<RuleStats>
  /** The heaviest metric names; null when insights are off. */
  top(n: number): TopReport | null | Promise<TopReport | null>
  /** The names with the most distinct series; null when the view is off. */
  cardinality(n: number): Promise<CardinalityView | null>
  reload(): Promise<ReloadResult>
}

export interface AdminServer {
  readonly port: number
  close(): Promise<void>
}

const TOP_MAX = 1000

/** The operator's view: probes, Prometheus, rule hits, top talkers and reload, on plain node:http. */
export async function startAdmin(endpoint: Endpoint, handlers: AdminHandlers, log: Logger): Promise<AdminServer> {
  const server = createServer((req, res) => {
    route(req, res, handlers).catch((err: unknown) => {
      log.error({ err, url: req.url }, 'admin request failed')
      if (!res.headersSent) send(res, 500, { error: 'internal error' })
      else res.end()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(endpoint.port, endpoint.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : endpoint.port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

async function route(req: IncomingMessage, res: ServerResponse, h: AdminHandlers): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://admin')
  const get = req.method === 'GET' || req.method === 'HEAD'
  switch (url.pathname) {
    case '/healthz':
      if (!get) return methodNotAllowed(res, 'GET')
      return sendText(res, 200, 'ok\n')
    case '/readyz':
      if (!get) return methodNotAllowed(res, 'GET')
      return h.ready() ? sendText(res, 200, 'ready\n') : sendText(res, 503, 'not ready\n')
    case '/metrics': {
      if (!get) return methodNotAllowed(res, 'GET')
      await h.refresh?.()
      const body = await h.metrics()
      res.writeHead(200, { 'content-type': CONTENT_TYPE })
      res.end(body)
      return
    }
    case '/rules': {
      if (!get) return methodNotAllowed(res, 'GET')
      const rules = await h.rules()
      const unusedOnly = url.searchParams.get('unused') === '1'
      const list: Record<string, unknown>[] = []
      const stats = (index: number): { dryRun: boolean; hits: number; lastHit: string | null } => {
        const last = rules.lastHitMs[index]
        return {
          dryRun: rules.dryRun[index] === 1,
          hits: rules.hits[index],
          lastHit: last === 0 ? null : new Date(last).toISOString(),
        }
      }
      // Built here, not kept: a million-rule table is one string until someone asks for it.
      for (const rule of rules.rules) {
        if (unusedOnly && rules.hits[rule.index] > 0) continue
        list.push({ index: rule.index, action: 'block', kind: rule.kind, pattern: rule.pattern, ...stats(rule.index) })
      }
      const first = rules.firstTagRule
      rules.tagRules.forEach((info, i) => {
        const index = first + i
        if (unusedOnly && rules.hits[index] > 0) return
        const entry: Record<string, unknown> = { index, action: info.action, kind: info.kind }
        for (const key of ['pattern', 'tag', 'metrics', 'keys', 'keepOnly', 'types'] as const)
          if (info[key] !== null) entry[key] = info[key]
        Object.assign(entry, stats(index))
        if (info.action === 'strip')
          Object.assign(entry, { linesStripped: rules.linesStripped[i], tagsStripped: rules.tagsStripped[i] })
        if (info.limit !== null) {
          const { windowMs, ...limit } = info.limit
          Object.assign(entry, limit, {
            windowSeconds: windowMs / 1000,
            linesLimited: rules.linesStripped[i],
            tagsLimited: rules.tagsStripped[i],
          })
        }
        // What the rule saves (or would save, enforced): distinct series of its lines before and after it.
        const series = rules.forecastOf(i)
        if (series !== null) entry.series = series
        list.push(entry)
      })
      return send(res, 200, { mode: h.mode(), count: list.length, rules: list })
    }
    case '/top': {
      if (!get) return methodNotAllowed(res, 'GET')
      const n = count(url)
      if (n === null) return send(res, 400, { error: `n must be an integer from 1 to ${TOP_MAX}` })
      const top = await h.top(n)
      if (top === null) return send(res, 404, { error: 'top talkers are off (insights: false)' })
      return send(res, 200, top)
    }
    case '/cardinality': {
      if (!get) return methodNotAllowed(res, 'GET')
      const n = count(url)
      if (n === null) return send(res, 400, { error: `n must be an integer from 1 to ${TOP_MAX}` })
      const view = await h.cardinality(n)
      if (view === null)
        return send(res, 404, { error: 'the cardinality view is off (cardinality.view.enabled: false)' })
      return send(res, 200, view)
    }
    case '/-/reload': {
      if (req.method !== 'POST') return methodNotAllowed(res, 'POST')
      let result: ReloadResult
      try {
        result = await h.reload()
      } catch (err) {
        // Only a proxy whose config was not loaded from a file refuses to reload.
        return send(res, 409, { error: (err as Error).message })
      }
      return send(res, result.ok ? 200 : 422, result)
    }
    default:
      return send(res, 404, {
        error: 'not found',
        endpoints: ['/healthz', '/readyz', '/metrics', '/rules', '/top', '/cardinality', 'POST /-/reload'],
      })
  }
}

/** The `n` of /top and /cardinality (50 unless given), or null when it is not an integer from 1 to TOP_MAX. */
function count(url: URL): number | null {
  const n = Number(url.searchParams.get('n') ?? '50')
  return Number.isInteger(n) && n >= 1 && n <= TOP_MAX ? n : null
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(`${JSON.stringify(body)}\n`)
}

function sendText(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' })
  res.end(body)
}

function methodNotAllowed(res: ServerResponse, allow: string): void {
  res.writeHead(405, { allow, 'content-type': 'application/json' })
  res.end(`${JSON.stringify({ error: `use ${allow}` })}\n`)
}
