// The highest offered rate a proxy sustains without losing lines, found by stepping up from a known capacity.
import type { Bench, RunResult, RunSpec, Timing } from './measure.ts'
import type { ProxyKind } from './proxy-child.ts'

export interface SearchStep {
  rate: number
  deliveredRatio: number
  cpuUsPerLine: number
  passed: boolean
  generatorShort: boolean
}

export interface SearchResult {
  kind: ProxyKind
  rules: number
  linesPerDatagram: number
  /** The highest passing rate (datagrams/s), or null if even the lowest step lost lines. */
  best: number | null
  /** Why the search stopped above `best`. */
  stoppedBy: 'loss' | 'generator' | 'ceiling'
  steps: SearchStep[]
}

/** The pass mark: at least this share of the lines the rules let through reaches the sink. */
export const SUSTAINED_RATIO = 0.995

/**
 * Steps are fractions of the proxy's saturation throughput, so the search spends its runs near the answer for a
 * fast proxy and a slow one alike. It may pass 100%: at saturation the generator burns a whole core, at a
 * paced rate far less, leaving the proxy more CPU. A failing step is run once more before it counts, because
 * one noisy-neighbour hiccup can drop a burst.
 */
export async function searchSustainedRate(
  bench: Bench,
  base: Omit<RunSpec, 'rate'>,
  saturationDatagramsPerSecond: number,
  fractions: readonly number[],
  timing: Timing,
  onRun: (r: RunResult) => void,
): Promise<SearchResult> {
  const steps: SearchStep[] = []
  let best: number | null = null
  const rates = [...new Set(fractions.map((f) => roundRate(f * saturationDatagramsPerSecond)))]
  for (const rate of rates) {
    let step = await runStep(bench, { ...base, rate }, timing, onRun)
    if (!step.passed && !step.generatorShort) step = await runStep(bench, { ...base, rate }, timing, onRun)
    steps.push(step)
    if (step.generatorShort) return { ...base, best, stoppedBy: 'generator', steps }
    if (!step.passed) return { ...base, best, stoppedBy: 'loss', steps }
    best = rate
  }
  return { ...base, best, stoppedBy: 'ceiling', steps }
}

async function runStep(bench: Bench, spec: RunSpec, timing: Timing, onRun: (r: RunResult) => void): Promise<SearchStep> {
  const r = await bench.run(spec, timing)
  onRun(r)
  return {
    rate: spec.rate ?? 0,
    deliveredRatio: r.deliveredRatio,
    cpuUsPerLine: r.cpuUsPerLine,
    passed: r.deliveredRatio >= SUSTAINED_RATIO,
    generatorShort: r.generatorShort,
  }
}

/** Two significant digits: 187,340 -> 190,000. The search is a step search; more digits would be false precision. */
function roundRate(rate: number): number {
  const unit = 10 ** Math.max(0, Math.floor(Math.log10(rate)) - 1)
  return Math.max(unit, Math.round(rate / unit) * unit)
}
