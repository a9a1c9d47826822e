import t from 'tap'
import { kindOf, packRules, patternOf, ruleCount, unpackRules } from '../src/match/packed-rules.ts'
import { rulesFromBlocklist } from '../src/match/rules.ts'

t.test('packs a blocklist into typed arrays (UTF-8 bytes), and back', async (t) => {
  const blocklist = { prefixes: ['legacy.', { pattern: 'canary.é.', dryRun: true }], names: ['app.old', '指标'] }
  const packed = packRules(blocklist)
  t.equal(ruleCount(packed), 4)
  t.equal(packed.prefixCount, 2)
  t.equal(Buffer.from(packed.patterns).toString('utf8'), 'legacy.\ncanary.é.\napp.old\n指标\n')
  t.same([...packed.starts], [0, 8, 19, 27, 34], 'byte offsets (é is 2 bytes, each of 指标 3)')
  t.same([...packed.dryRun], [0, 1, 0, 0])
  t.same(
    [0, 1, 2, 3].map((i) => [kindOf(packed, i), patternOf(packed, i)]),
    [
      ['prefix', 'legacy.'],
      ['prefix', 'canary.é.'],
      ['name', 'app.old'],
      ['name', '指标'],
    ],
  )
  t.same(unpackRules(packed), rulesFromBlocklist(blocklist), 'the same rule table as rulesFromBlocklist')
})

t.test('an empty blocklist', async (t) => {
  const packed = packRules({ prefixes: [], names: [] })
  t.equal(ruleCount(packed), 0)
  t.equal(packed.patterns.length, 0)
  t.same(unpackRules(packed), [])
})
