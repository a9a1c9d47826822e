// The proxies the end-to-end bench can run (bench/proxy-child.ts), without proxy-child's side effects, so the
// orchestrator can ask what a kind is before it starts one.

/**
 * ours = this proxy as shipped (workers: 1, the default); lean = ours with `insights: false`; ours-w2 = ours with
 * `workers: 2` (a cluster primary and two worker processes on the one shared listen socket); naive =
 * bench/naive-proxy.ts.
 */
export type ProxyKind = 'ours' | 'lean' | 'ours-w2' | 'naive'
export const PROXY_KINDS: readonly ProxyKind[] = ['ours', 'lean', 'ours-w2', 'naive']

/** The `workers` setting a kind runs with: more than 1 is several processes, never pinned to one core. */
export function proxyWorkers(kind: ProxyKind): number {
  return kind === 'ours-w2' ? 2 : 1
}
