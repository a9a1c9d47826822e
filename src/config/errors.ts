/** One thing wrong with a config file, located as precisely as the parser allows. */
export interface ConfigProblem {
  /** Key path such as `blocklist.prefixes[2]`; empty for the document itself. */
  path: string
  line?: number
  column?: number
  message: string
}

export class ConfigError extends Error {
  readonly file: string
  readonly problems: readonly ConfigProblem[]

  constructor(file: string, problems: readonly ConfigProblem[]) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'))
    this.name = 'ConfigError'
    this.file = file
    this.problems = problems
  }
}

/** `file:line:column: path: message`, the shape editors and CI annotations understand. */
export function formatProblem(file: string, p: ConfigProblem): string {
  const where = p.line === undefined ? file : `${file}:${p.line}:${p.column ?? 1}`
  return p.path === '' ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`
}
