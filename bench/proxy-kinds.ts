// The proxies the end-to-end bench can run (bench/proxy-child.ts) and the counters they report, without
// proxy-child's side effects, so the orchestrator and other children can use them.
import type { CounterSnapshot } from '../src/telemetry/counters.ts'
import type { NaiveCounters } from './naive-proxy.ts'
import type { ProxyConfigOptions } from './workload.ts'

/**
 * ours = this proxy as shipped (workers: 1, receive.mode batch: the defaults); ours-dgram = ours with
 * `receive: { mode: dgram }` (Node's socket, one callback per datagram); lean = ours with `insights: false`;
 * ours-w2 = ours with `workers: 2` (two readers of the one listen socket, as src/cluster runs them);
 * ours-tags = ours with the bench's 100 stripTags rules (workload.ts stripTagRules) on top of its blocklist;
 * naive = bench/naive-proxy.ts.
 */
export type ProxyKind = 'ours' | 'ours-dgram' | 'lean' | 'ours-w2' | 'ours-tags' | 'naive'
export const PROXY_KINDS: readonly ProxyKind[] = ['ours', 'ours-dgram', 'lean', 'ours-w2', 'ours-tags', 'naive']

/** The config a kind runs with (the naive proxy reads only its listen, forward and blocklist keys). */
export function proxyConfig(kind: ProxyKind): ProxyConfigOptions {
  return {
    insights: kind !== 'lean',
    workers: proxyWorkers(kind),
    receive: kind === 'ours-dgram' ? 'dgram' : 'batch',
    stripTags: kind === 'ours-tags',
  }
}

/** The `workers` setting a kind runs with: more than 1 is several processes, never pinned to one core. */
export function proxyWorkers(kind: ProxyKind): number {
  return kind === 'ours-w2' ? 2 : 1
}

export interface ProxyLineCounters {
  datagramsIn: number
  /** Every line read; each ends forwarded, blocked, malformed or dropped. */
  linesIn: number
  linesForwarded: number
  linesBlocked: number
  /** Lines that are not metrics, events or service checks (ours only; the naive proxy forwards them). */
  linesMalformed: number
  /** Lines the proxy gave up on for want of a free send buffer (ours only). */
  linesDropped: number
  /** Forwarded lines from which a strip rule removed at least one tag, and the tags removed (0 for naive). */
  linesTagsStripped: number
  tagsStripped: number
  datagramsOut: number
}

/** What a proxy's counters say about lines, in the bench's terms. */
export function lineCounters(c: CounterSnapshot): ProxyLineCounters {
  return {
    ...pickLineCounters(c),
    linesMalformed: c.linesMalformed,
    linesDropped: c.linesDroppedBackpressure,
    linesTagsStripped: c.linesTagsStripped,
    tagsStripped: c.tagsStripped,
  }
}

/** The naive proxy's counters in the same terms: it calls nothing malformed and never runs out of send buffers. */
export function naiveLineCounters(c: NaiveCounters): ProxyLineCounters {
  return { ...pickLineCounters(c), linesMalformed: 0, linesDropped: 0, linesTagsStripped: 0, tagsStripped: 0 }
}

function pickLineCounters(c: SharedLineCounters): SharedLineCounters {
  return {
    datagramsIn: c.datagramsIn,
    linesIn: c.linesIn,
    linesForwarded: c.linesForwarded,
    linesBlocked: c.linesBlocked,
    datagramsOut: c.datagramsOut,
  }
}

/** The counters every kind keeps under the same names. */
export type SharedLineCounters = Pick<
  ProxyLineCounters,
  'datagramsIn' | 'linesIn' | 'linesForwarded' | 'linesBlocked' | 'datagramsOut'
>
