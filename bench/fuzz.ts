// Fuzz: the property of test/property.test.ts (the real scan -> match -> batch path forwards exactly the lines a
// string-based reference filter keeps, and its counters agree), run in batches of fast-check runs until at least N
// generated datagrams have gone through. Exits 1 on a counterexample (printed, shrunk, with how to replay it).
//
//   npm run bench:fuzz                       1,000,000 datagrams
//   node dist/bench/fuzz.js 200000           fewer
//   options: --seed <int> (replays a previous fuzz run: the batches use seed, seed + 1, ...) --max-minutes <m>
import fc from 'fast-check'
import { parseArgs } from 'node:util'
import { int } from './lib/table.ts'
import type { FilterRules } from '../src/match/rules.ts'
import { checkAgainstReference, referenceProperty, type Mode, type ReferenceCheck } from '../test/fixtures/reference.ts'

/** fast-check runs per batch: each batch is one fc.check with its own seed, so a failure replays on its own. */
const RUNS_PER_BATCH = 5000

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seed: { type: 'string' },
    'max-minutes': { type: 'string', default: '30' },
  },
})
const wanted = positionals[0] === undefined ? 1_000_000 : Number(positionals[0])
if (!(Number.isInteger(wanted) && wanted >= 1)) throw new Error(`expected a number of datagrams, got ${positionals[0]}`)
const baseSeed =
  flags.seed === undefined ? (Date.now() ^ Math.floor(Math.random() * 0x100000000)) | 0 : Number(flags.seed)
if (!Number.isSafeInteger(baseSeed)) throw new Error(`--seed: expected an integer, got ${flags.seed}`)
const maxMinutes = Number(flags['max-minutes'])
if (!(maxMinutes > 0 && maxMinutes <= 240))
  throw new Error(`--max-minutes: expected a number in (0, 240], got ${flags['max-minutes']}`)

const totals = {
  runs: 0,
  datagrams: 0,
  bytes: 0,
  lines: 0,
  forwarded: 0,
  blocked: 0,
  malformed: 0,
  notAllowed: 0,
  overLimit: 0,
  linesStripped: 0,
  tagsStripped: 0,
  datagramsOut: 0,
}
const count = (datagrams: Buffer[], check: ReferenceCheck): void => {
  const c = check.actual.counters
  totals.runs++
  totals.datagrams += datagrams.length
  for (const d of datagrams) totals.bytes += d.length
  totals.lines += c.linesIn
  totals.forwarded += c.linesForwarded
  totals.blocked += c.linesBlocked
  totals.malformed += c.linesMalformed
  totals.notAllowed += check.expected.notAllowed
  totals.overLimit += check.expected.overLimit
  totals.linesStripped += check.expected.linesTagsStripped
  totals.tagsStripped += check.expected.tagsStripped
  totals.datagramsOut += c.datagramsOut
}
// A failing batch's shrinking runs the property again and again: only runs of batches that passed are counted.
let batchTotals = { ...totals }
const property = referenceProperty(count)

const started = process.hrtime.bigint()
const elapsedS = (): number => Number(process.hrtime.bigint() - started) / 1e9
const summary = (): string =>
  [
    `datagrams ${int(totals.datagrams)} (${int(totals.bytes)} bytes) in ${int(totals.runs)} runs of the property`,
    `lines ${int(totals.lines)}: forwarded ${int(totals.forwarded)}, blocked ${int(totals.blocked)}, malformed ${int(totals.malformed)}, ` +
      `not allowed ${int(totals.notAllowed)}, over limit ${int(totals.overLimit)} (forwarded in ${int(totals.datagramsOut)} datagrams)`,
    `tags stripped ${int(totals.tagsStripped)} from ${int(totals.linesStripped)} lines`,
    `time ${elapsedS().toFixed(1)} s (${int(totals.datagrams / elapsedS())} datagrams/s)`,
    `seed ${baseSeed} (batches of ${int(RUNS_PER_BATCH)} runs, seeds ${baseSeed} + batch number); replay: node dist/bench/fuzz.js ${wanted} --seed ${baseSeed}`,
  ].join('\n')

/** Batches of fast-check runs until `wanted` datagrams have gone through; the exit code says how it ended. */
function main(): number {
  console.error(`fuzz: at least ${int(wanted)} datagrams, seed ${baseSeed}`)
  for (let batch = 0; totals.datagrams < wanted; batch++) {
    if (elapsedS() > maxMinutes * 60) {
      console.log(
        `fuzz: stopped after ${maxMinutes} min (--max-minutes) short of ${int(wanted)} datagrams; no counterexample\n${summary()}`,
      )
      return 2
    }
    const seed = (baseSeed + batch) | 0
    const details = fc.check(property, { seed, numRuns: RUNS_PER_BATCH })
    if (details.failed) {
      Object.assign(totals, batchTotals)
      console.log(`fuzz: COUNTEREXAMPLE in batch ${batch} (seed ${seed}, after ${int(details.numRuns)} runs of it)`)
      console.log(fc.defaultReportMessage(details) ?? '')
      if (details.counterexample !== null) describe(...details.counterexample)
      console.log(
        `replay just this case: fc.assert(referenceProperty(), { seed: ${seed}, path: ${JSON.stringify(details.counterexamplePath)} })`,
      )
      console.log(`before it, in batches that passed:\n${summary()}`)
      return 1
    }
    batchTotals = { ...totals }
    if (batch % 10 === 9) console.error(`fuzz: ${int(totals.datagrams)} datagrams, ${elapsedS().toFixed(0)} s`)
  }
  console.log(`fuzz: no counterexample\n${summary()}`)
  return 0
}

/** What the reference kept and what the proxy forwarded for the shrunk counterexample, side by side. */
function describe(rules: FilterRules, mode: Mode, datagrams: Buffer[], size: number): void {
  console.log(`rules: ${JSON.stringify(rules)}, mode: ${mode}, maxPacketSize: ${size}`)
  console.log(`datagrams (latin1): ${JSON.stringify(datagrams.map((d) => d.toString('latin1')))}`)
  try {
    const { expected, actual, mismatches } = checkAgainstReference(rules, datagrams, size, mode)
    const { kept, ...counts } = expected
    console.log(`reference kept: ${JSON.stringify(kept)}; ${JSON.stringify(counts)}`)
    console.log(
      `proxy forwarded: ${JSON.stringify(actual.lines)}; counters: ${JSON.stringify(actual.counters.snapshot())}`,
    )
    console.log(`mismatches: ${mismatches.join('; ')}`)
  } catch (err) {
    console.log(`the proxy path threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
  }
}

process.exitCode = main()
