// The reports the bench entry points write to bench/results/.
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs'

/** bench/results/ in the source tree (this module runs from dist/bench/lib/). */
const RESULTS_DIR = new URL('../../../bench/results/', import.meta.url)

/**
 * Writes a report to bench/results/<prefix><ISO time>.md through a temporary file, so an interrupted run never
 * leaves half a report under a final name; with `alsoAs`, copies it to bench/results/<alsoAs> too (run.ts:
 * latest.md). Returns the file name.
 */
export function saveReport(prefix: string, markdown: string, startedAt: Date, alsoAs?: string): string {
  mkdirSync(RESULTS_DIR, { recursive: true })
  const name = `${prefix}${startedAt
    .toISOString()
    .replace(/:/g, '-')
    .replace(/\.\d+Z$/, 'Z')}.md`
  const tmp = new URL(`${name}.tmp`, RESULTS_DIR)
  writeFileSync(tmp, markdown + '\n')
  renameSync(tmp, new URL(name, RESULTS_DIR))
  if (alsoAs !== undefined) copyFileSync(new URL(name, RESULTS_DIR), new URL(alsoAs, RESULTS_DIR))
  return name
}
