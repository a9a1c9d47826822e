// The text of the markdown reports: tables and the numbers in them.

/** Decimal, as the targets are stated ("80 MB"); the stricter reading of them (80 MiB would be 83.9 MB). */
export const MB = 1e6
export const MIB = 1024 * 1024

export const int = (n: number): string => Math.round(n).toLocaleString('en-US')
export const pct = (ratio: number, digits: number): string => `${(ratio * 100).toFixed(digits)}%`
export const mb = (bytes: number): string => (bytes / MB).toFixed(1)
/** Load averages (os.loadavg()) to two decimals, joined by `separator`. */
export const loadText = (load: readonly number[], separator = ' / '): string =>
  load.map((x) => x.toFixed(2)).join(separator)

/**
 * A markdown table. `align`: one letter per column, `l` or `r` (numbers); by default the first column is
 * left-aligned and the others right-aligned.
 */
export function table(header: string[], rows: string[][], align?: string): string[] {
  const right = (i: number): boolean => (align === undefined ? i > 0 : align[i] === 'r')
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map((_, i) => (right(i) ? ' ---: ' : ' --- ')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ]
}
