import { readFileSync } from 'node:fs'
import t from 'tap'
import { PRODUCTION_NODE_FLAGS } from '../bench/measure.ts'

// The proxy is started four ways; all must run Node with the same flags, or the bench measures something else
// than what ships.
const root = new URL('../', import.meta.url)
const read = (file: string): string => readFileSync(new URL(file, root), 'utf8')

t.test('npm start, the image, the CLI shebang and the bench run Node with the same flags', async (t) => {
  const start = (JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start.split(' ')
  t.equal(start[0], 'node')
  t.equal(start[start.length - 1], 'dist/src/cli.js')
  const fromStart = start.slice(1, -1)

  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(read('Dockerfile'))
  t.ok(entrypoint, 'the Dockerfile has an exec-form ENTRYPOINT')
  const argv = JSON.parse(entrypoint?.[1] ?? '[]') as string[]
  t.equal(argv[0], 'node')
  t.equal(argv[argv.length - 1], '/app/dist/src/cli.js')
  const fromImage = argv.slice(1, -1)

  const shebang = read('src/cli.ts').split('\n')[0]
  t.match(shebang, /^#!\/usr\/bin\/env -S node( |$)/)
  const fromShebang = shebang.split(' ').slice(3)

  t.same(fromStart, PRODUCTION_NODE_FLAGS)
  t.same(fromImage, PRODUCTION_NODE_FLAGS)
  t.same(fromShebang, PRODUCTION_NODE_FLAGS)
})
