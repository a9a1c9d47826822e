import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { Document, LineCounter } from 'yaml'
import { ConfigError, type ConfigProblem } from './errors.ts'
import type { Config } from './config.ts'
import { cutRuleLines, type RuleLines } from './rule-lines.ts'
import { RUST_KEYS, validateRustJson, validateYaml, type Checker, type Path } from './validate.ts'

/**
 * The YAML parser, loaded on the first parse, not with this module: the proxy parses its config on the loader
 * thread (compile-worker.ts), so the main thread, which imports this module for configPath and --check, would
 * otherwise keep yaml's code for nothing: 2–5 MB of RSS with the other dependencies loaded (7.4 MB over
 * bare node; bench/rss-imports.ts). `require`, not `import()`: parseConfig stays synchronous (yaml's Node
 * build is CommonJS, the same module either way).
 */
function yaml(): typeof import('yaml') {
  return (parser ??= createRequire(import.meta.url)('yaml') as typeof import('yaml'))
}
let parser: typeof import('yaml') | undefined

/** The config path by precedence: flag, our variable, statsd-filter-proxy-rs' variable, the working dir. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag || env.FILTER_CONFIG || env.PROXY_CONFIG_FILE || 'filter.yaml'
}

/** Reads, parses and validates a config file; throws ConfigError naming the file and every problem found. */
export function loadConfig(file: string): Config {
  return parseConfig(file, readConfigFile(file).toString('utf8'))
}

export function readConfigFile(file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    throw new ConfigError(file, [{ path: '', message: `cannot read the file (${e.code ?? e.message})` }])
  }
}

/** Parses config text. YAML is a superset of JSON, so one parser serves filter.yaml and the Rust JSON file. */
export function parseConfig(file: string, text: string): Config {
  return parseConfigTraced(file, text).config
}

/** `rule-lines`: the rule lists were read line by line, the rest with YAML; `yaml`: the whole text with YAML. */
export type ParsedBy = 'rule-lines' | 'yaml'

/**
 * parseConfig, telling which way it went. The YAML document of a million rules takes about 1.2 GB, so a valid
 * file whose rule lists are simple one-line items is read mostly line by line. Any problem or warning sends
 * the file to parseWithYaml, since only its document knows where in the file the offending value is.
 */
export function parseConfigTraced(file: string, text: string): { config: Config; parsedBy: ParsedBy } {
  const config = parseWithRuleLines(file, text)
  return config === undefined
    ? { config: parseWithYaml(file, text), parsedBy: 'yaml' }
    : { config, parsedBy: 'rule-lines' }
}

const YAML_OPTIONS = { uniqueKeys: true, prettyErrors: false } as const

/** The whole text as one YAML document: what defines a config, and what locates every problem in it. */
export function parseWithYaml(file: string, text: string): Config {
  const { LineCounter, parseDocument } = yaml()
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { ...YAML_OPTIONS, lineCounter })
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0])
        return { path: '', line, column: col, message: `YAML syntax error: ${e.message.split('\n')[0]}` }
      }),
    )
  }
  const checker = new DocumentChecker(doc, lineCounter)
  const config = validate(doc.toJS({ maxAliasCount: 100 }) ?? {}, checker, file)
  if (checker.problems.length > 0) throw new ConfigError(file, byPosition(checker.problems))
  config.warnings = byPosition(checker.warnings)
  return config
}

/** The config if the rule lists read line by line and YAML's reading of the rest make a valid one, else undefined. */
function parseWithRuleLines(file: string, text: string): Config | undefined {
  const cut = cutRuleLines(text)
  if (cut === undefined || cut.lists.length === 0) return undefined
  const doc = yaml().parseDocument(cut.rest, YAML_OPTIONS)
  if (doc.errors.length > 0 || !cut.lists.every((list) => isBlocklistValue(doc, list))) return undefined
  // isBlocklistValue found `blocklist` to be a mapping.
  const root = doc.toJS({ maxAliasCount: 100 }) as { blocklist: Record<string, unknown> }
  for (const list of cut.lists) root.blocklist[list.key] = list.items
  const checker = new SilentChecker()
  const config = validate(root, checker, file)
  return checker.silent ? config : undefined
}

/**
 * Whether YAML reads the `[]` put in for a list as `blocklist.<key>`, in block mappings: then the lines cut out
 * after the key were that key's block sequence, and nothing else in the file changed meaning.
 */
function isBlocklistValue(doc: Document, list: RuleLines): boolean {
  const { isMap, isSeq } = yaml()
  const root = doc.contents
  const blocklist = isMap(root) && !root.flow ? root.get('blocklist', true) : undefined
  const value = isMap(blocklist) && !blocklist.flow ? blocklist.get(list.key, true) : undefined
  return isSeq(value) && value.range?.[0] === list.offset
}

function validate(root: unknown, checker: Checker, file: string): Config {
  const isRust = isPlainObject(root) && Object.keys(root).some((k) => RUST_KEYS.includes(k))
  return isRust ? validateRustJson(root, checker, file) : validateYaml(root, checker, file)
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Notes only whether validation had anything to say. */
class SilentChecker implements Checker {
  silent = true

  problem(): void {
    this.silent = false
  }

  warning(): void {
    this.silent = false
  }
}

/** Records problems with the line and column of the offending key or value in the source. */
class DocumentChecker implements Checker {
  readonly problems: ConfigProblem[] = []
  readonly warnings: ConfigProblem[] = []
  private readonly doc: Document
  private readonly lineCounter: LineCounter

  constructor(doc: Document, lineCounter: LineCounter) {
    this.doc = doc
    this.lineCounter = lineCounter
  }

  problem(path: Path, message: string, atKey = false): void {
    this.problems.push(this.locate(path, message, atKey))
  }

  warning(path: Path, message: string): void {
    this.warnings.push(this.locate(path, message, false))
  }

  private locate(path: Path, message: string, atKey: boolean): ConfigProblem {
    const offset = this.offsetOf(path, atKey)
    const pos = offset === undefined ? undefined : this.lineCounter.linePos(offset)
    return { path: formatPath(path), line: pos?.line, column: pos?.col, message }
  }

  private offsetOf(path: Path, atKey: boolean): number | undefined {
    const { isMap, isNode } = yaml()
    if (atKey && path.length > 0) {
      const parent = path.length === 1 ? this.doc.contents : this.doc.getIn(path.slice(0, -1), true)
      if (isMap(parent)) {
        const key = path[path.length - 1]
        const pair = parent.items.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === key)
        if (pair !== undefined && isNode(pair.key)) return pair.key.range?.[0]
      }
    }
    const node = path.length === 0 ? this.doc.contents : this.doc.getIn(path, true)
    return isNode(node) ? node.range?.[0] : undefined
  }
}

/** In file order, as an editor would list them; problems without a position first. */
function byPosition(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.slice().sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0))
}

function formatPath(path: Path): string {
  let out = ''
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`
  return out
}
