// Reads the long rule lists of a filter.yaml line by line. The YAML parser's document costs about 1.2 KB per
// list item (1.2 GB for a million rules); a list read here costs its strings. Only the simplest shape is read:
// whatever this reader is not sure of, the caller parses with YAML instead.

/** A block sequence that followed a `prefixes:` or `names:` key line, read without the YAML parser. */
export interface RuleLines {
  key: 'prefixes' | 'names'
  /** Where the `[]` that stands in for the list starts in `rest`. */
  offset: number
  items: string[]
}

export interface CutRuleLines {
  /** The text with each list's item lines cut out and ` []` put after its key. */
  rest: string
  lists: RuleLines[]
}

// A YAML 1.1 directive changes what plain scalars mean, and a document marker or a lone CR (a line break to
// YAML, not to this reader) would make YAML see other lines than the ones read here.
const LINES_YAML_COULD_SEE_OTHERWISE = /^\uFEFF?(?:---|\.\.\.|%)|\r(?!\n)/m
const KEY_LINE = /^( *)(prefixes|names): *$/
const ITEM_LINE = /^( *)-(?: (.*))?$/
const BLANK_LINE = /^ *$/
// What a plain scalar may not hold here: YAML indicators anywhere (a comment, a mapping, a flow collection, an
// anchor, a tag, ...), and `-` or `?` first (a nested item, a complex key). Some of them are legal inside a
// plain scalar, but no metric name needs them.
const PLAIN_INDICATOR = /[#:,[\]{}&*!|>'"%@`]|^[-?]/
// A plain scalar YAML's core schema might read as a number, a boolean or null. A superset: metric names start
// with a letter, so `-x`, `.x` or `1x` may as well go to YAML.
const MAYBE_NOT_A_STRING = /^[-+.~0-9]|^(?:null|true|false)$/i
// Anything but printable characters, and also tab, NEL, NBSP, LS, PS and BOM (white space or line breaks to
// some YAML versions) and lone surrogates.
const UNUSUAL_CHAR = /[^\x20-\x7E\u00A1-\u2027\u202A-\uD7FF\uE000-\uFEFE\uFF00-\uFFFD\u{10000}-\u{10FFFF}]/u

/**
 * Cuts the block sequences of one-line scalars that follow `prefixes:` or `names:` key lines out of `text`.
 * undefined when there is a list, or something around one, that this reader is not sure of. Whether each key
 * line is a key of `blocklist` is for the caller to check in YAML's reading of `rest`.
 */
export function cutRuleLines(text: string): CutRuleLines | undefined {
  if (LINES_YAML_COULD_SEE_OTHERWISE.test(text)) return undefined
  const lists: RuleLines[] = []
  let rest = ''
  let copied = 0
  let start = 0
  while (start < text.length) {
    const line = lineAt(text, start)
    start = line.end + 1
    const key = KEY_LINE.exec(line.text)
    if (key === null) continue
    const list = readSequence(text, start, key[1].length)
    if (list === undefined) return undefined
    if (list === null) continue
    rest += `${text.slice(copied, line.start + key[0].indexOf(':') + 1)} `
    lists.push({ key: key[2] as RuleLines['key'], offset: rest.length, items: list.items })
    rest += '[]'
    copied = list.end
    start = list.end + 1
  }
  return { rest: rest + text.slice(copied), lists }
}

/**
 * The block sequence on the lines from `from` (blank lines aside) that is the value of a key indented by
 * `keyIndent`, and where its last item line ends; null if the key's value is empty; undefined if unsure.
 */
function readSequence(
  text: string,
  from: number,
  keyIndent: number,
): { items: string[]; end: number } | null | undefined {
  const first = nextNonBlankLine(text, from)
  if (first === undefined) return null
  const firstItem = ITEM_LINE.exec(first.text)
  if (firstItem === null || firstItem[1].length < keyIndent) return endsValue(first.text, keyIndent) ? null : undefined
  const indent = firstItem[1].length
  const items: string[] = []
  let end = first.end
  for (let line: Line | undefined = first; line !== undefined; line = nextNonBlankLine(text, line.end + 1)) {
    const item = ITEM_LINE.exec(line.text)
    if (item === null || item[1].length !== indent) return endsValue(line.text, keyIndent) ? { items, end } : undefined
    const value = scalarValue((item[2] ?? '').replace(/^ +| +$/g, ''))
    if (value === undefined) return undefined
    items.push(value)
    end = line.end
  }
  return { items, end }
}

/**
 * Whether a non-blank line after a key's value certainly ends it: it is indented no deeper than the key and
 * starts neither an item nor a comment (comment lines may sit anywhere inside a YAML sequence).
 */
function endsValue(line: string, keyIndent: number): boolean {
  const indent = line.search(/[^ ]|$/)
  return indent <= keyIndent && !/^[-#\t]/.test(line.slice(indent))
}

/** A one-line scalar YAML reads as this string (quoted without escapes, or plain); undefined if unsure. */
function scalarValue(source: string): string | undefined {
  if (source === '' || UNUSUAL_CHAR.test(source)) return undefined
  const quote = source[0]
  if (quote === '"' || quote === "'") {
    const inner = source.slice(1, -1)
    const closed = source.length >= 2 && source.endsWith(quote) && !inner.includes(quote)
    return closed && !inner.includes('\\') ? inner : undefined
  }
  return PLAIN_INDICATOR.test(source) || MAYBE_NOT_A_STRING.test(source) ? undefined : source
}

interface Line {
  start: number
  /** Where its LF is, or the end of the text. */
  end: number
  /** Without the line break (LF or CRLF). */
  text: string
}

function lineAt(text: string, start: number): Line {
  const nl = text.indexOf('\n', start)
  const end = nl === -1 ? text.length : nl
  return { start, end, text: text.slice(start, text[end - 1] === '\r' ? end - 1 : end) }
}

function nextNonBlankLine(text: string, start: number): Line | undefined {
  while (start < text.length) {
    const line = lineAt(text, start)
    if (!BLANK_LINE.test(line.text)) return line
    start = line.end + 1
  }
  return undefined
}
