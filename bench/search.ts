// The highest offered rate a proxy sustains without losing lines, found by stepping up from a known capacity.
import type { Bench, RunResult, RunSpec, Timing } from './measure.ts'
import type { ProxyKind } from './proxy-kinds.ts'

export interface SearchStep {
  run: RunResult
  passed: boolean
}

export interface SearchResult {
  kind: ProxyKind
  rules: number
  linesPerDatagram: number
  /** Datagrams/s the proxy could take on a full core, from its CPU time per line at saturation: the search's scale. */
  capacity: number
  /** The highest passing rate (datagrams/s), or null if even the lowest step lost lines. */
  best: number | null
  /** Why the search stopped above `best`. */
  stoppedBy: 'loss' | 'generator' | 'ceiling'
  steps: SearchStep[]
}

/** The pass mark: at least this share of the lines the rules let through reaches the sink. */
export const SUSTAINED_RATIO = 0.995

/**
 * Steps are fractions of the proxy's capacity on one full core (1 / its CPU time per datagram at saturation),
 * so the search spends its runs near the answer for a fast proxy and a slow one alike, and does not depend on
 * how much CPU the noisy machine left the proxy during the saturation runs. A failing step (lines lost, or the
 * generator fell short of the rate) is run once more before it counts: one noisy-neighbour hiccup can drop a burst.
 */
export async function searchSustainedRate(
  bench: Bench,
  base: Omit<RunSpec, 'rate'>,
  capacityDatagramsPerSecond: number,
  fractions: readonly number[],
  timing: Timing,
  onRun: (r: RunResult) => void,
): Promise<SearchResult> {
  const steps: SearchStep[] = []
  let best: number | null = null
  const result = (stoppedBy: SearchResult['stoppedBy']): SearchResult => ({
    ...base,
    capacity: capacityDatagramsPerSecond,
    best,
    stoppedBy,
    steps,
  })
  const rates = [...new Set(fractions.map((f) => roundRate(f * capacityDatagramsPerSecond)))]
  for (const rate of rates) {
    let step = await runStep(bench, { ...base, rate }, timing, onRun)
    if (!step.passed || step.run.generatorShort) step = await runStep(bench, { ...base, rate }, timing, onRun)
    steps.push(step)
    if (step.run.generatorShort) return result('generator')
    if (!step.passed) return result('loss')
    best = rate
  }
  return result('ceiling')
}

async function runStep(
  bench: Bench,
  spec: RunSpec,
  timing: Timing,
  onRun: (r: RunResult) => void,
): Promise<SearchStep> {
  const run = await bench.run(spec, timing)
  onRun(run)
  return { run, passed: run.deliveredRatio >= SUSTAINED_RATIO }
}

/** Two significant digits: 187,340 -> 190,000. The search is a step search; more digits would be false precision. */
function roundRate(rate: number): number {
  const unit = 10 ** Math.max(0, Math.floor(Math.log10(rate)) - 1)
  return Math.max(unit, Math.round(rate / unit) * unit)
}
