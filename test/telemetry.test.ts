import t from 'tap'
import { escapeSample } from '../src/telemetry/escape.ts'
import { WarningGate } from '../src/telemetry/rate-limit.ts'

t.test('escapeSample renders raw bytes log-safe and short', async (t) => {
  const buf = Buffer.from([0x61, 0x00, 0x5c, 0x0d, 0xff, 0x7f, 0x20, 0x7e])
  t.equal(escapeSample(buf, 0, buf.length), 'a\\x00\\\\\\x0d\\xff\\x7f ~')
  t.equal(escapeSample(Buffer.from('abcdef'), 1, 6, 3), 'bcd...(+2 bytes)')
  t.equal(escapeSample(Buffer.from('é'), 0, 2), '\\xc3\\xa9', 'non-ASCII is shown as bytes')
})

t.test('WarningGate lets one warning through per interval and counts the rest', async (t) => {
  const gate = new WarningGate(20)
  t.teardown(() => gate.close())
  t.equal(gate.pass(), true)
  t.equal(gate.pass(), false)
  t.equal(gate.pass(), false)
  t.equal(gate.takeSuppressed(), 2)
  t.equal(gate.takeSuppressed(), 0)
  // Re-armed by its timer, not by the caller.
  while (!gate.armed) await new Promise((resolve) => setTimeout(resolve, 5))
  t.equal(gate.pass(), true)
})
