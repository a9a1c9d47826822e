// How every bench entry point that starts child processes runs: no child outlives it, and it cannot wedge.
import { constants } from 'node:os'
import { killAllChildren } from './ipc.ts'

/**
 * Runs a bench entry point: children are killed however it ends (error, signal, exit), and a watchdog ends a
 * run that wedges. `label` prefixes its messages.
 */
export async function runEntryPoint(label: string, hardLimitMs: number, main: () => Promise<void>): Promise<void> {
  process.on('exit', killAllChildren)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killAllChildren()
      process.exit(128 + constants.signals[signal])
    })
  }
  const watchdog = setTimeout(() => {
    console.error(`${label}: still running after ${hardLimitMs / 60_000} min; giving up`)
    killAllChildren()
    process.exit(1)
  }, hardLimitMs)
  watchdog.unref()
  try {
    await main()
  } catch (err) {
    console.error(`${label} failed:`, err)
    process.exitCode = 1
  } finally {
    killAllChildren()
  }
}
