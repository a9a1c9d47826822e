import type { Assembler } from './batch/assembler.ts'
import type { RuleSet } from './match/rule-set.ts'
import { ALLOW, BLOCK, BLOCK_GLOB, STRIP, tablePriority, type TagRules } from './match/tag-rules.ts'
import type { LineSink } from './scan/line-sink.ts'
import { scanDatagram } from './scan/scanner.ts'
import { nextPipe, TagCursor, typeSlot } from './scan/tags.ts'
import { Counters } from './telemetry/counters.ts'
import type { WarningGate } from './telemetry/rate-limit.ts'
import type { Insights } from './telemetry/top-talkers.ts'

/** Called (rate-limited by the gate) with a malformed line, for a log sample. Off the hot path. */
export type MalformedReporter = (buf: Buffer, start: number, end: number, suppressed: number) => void

export interface LineFilterOptions {
  rules: RuleSet
  assembler: Assembler
  counters: Counters
  /** Malformed lines reported at most once per interval of the gate. */
  malformed: { gate: WarningGate; report: MalformedReporter }
  /** Per-rule hit counts and the heavy-hitter sketches; null when the config turns insights off. */
  insights: Insights | null
}

const PIPE = 0x7c
const HASH = 0x23
const COMMA = 0x2c
const COLON = 0x3a
/** Lower than any rule's precedence. */
const NO_PRIORITY = -(2 ** 31)

/**
 * The per-datagram path: scan the lines in place, match each metric name against the rules in force, hand
 * survivors to the assembler. Every line ends up counted in exactly one of forwarded, blocked, not allowed, over
 * a limit, malformed, dropped (a dry-run match is forwarded, and also counted as would-block / would-drop).
 */
export class LineFilter implements LineSink {
  private ruleSet: RuleSet
  private readonly assembler: Assembler
  private readonly counters: Counters
  private readonly malformedGate: WarningGate
  private readonly reportMalformed: MalformedReporter
  private readonly insights: Insights | null
  /** The time stamped on rule hits: read from the clock once a second by tick(), never per line. */
  private nowMs = Date.now()
  /** The type field of the line tagged() is on: see typeEndOf. */
  private typeStart = 0
  private typeEnd = -1
  /** Walks a line's tags; one for every line, reset per use. */
  private readonly cursor = new TagCursor()

  constructor(options: LineFilterOptions) {
    this.ruleSet = options.rules
    this.assembler = options.assembler
    this.counters = options.counters
    this.malformedGate = options.malformed.gate
    this.reportMalformed = options.malformed.report
    this.insights = options.insights
  }

  /** The datagram `buf[start, end)`: in place, so one receive area can hold many (no subarray per datagram). */
  handleDatagram(buf: Buffer, start: number, end: number): void {
    const counters = this.counters
    counters.datagramsIn++
    counters.bytesIn += end - start
    counters.linesIn += scanDatagram(buf, start, end, this)
  }

  get rules(): RuleSet {
    return this.ruleSet
  }

  /** Takes effect from the next datagram on: a datagram is always filtered by one rule set. */
  setRules(ruleSet: RuleSet): void {
    this.ruleSet = ruleSet
  }

  tick(nowMs: number): void {
    this.nowMs = nowMs
  }

  metric(buf: Buffer, start: number, nameEnd: number, end: number): void {
    const rs = this.ruleSet
    if (rs.tagMatcher !== null) {
      this.tagged(rs, rs.tagMatcher, buf, start, nameEnd, end)
      return
    }
    const rule = rs.trie.match(buf, start, nameEnd)
    const insights = this.insights
    if (rule === -1) {
      if (insights !== null) insights.forwarded.observe(buf, start, nameEnd)
      this.assembler.append(buf, start, end)
      return
    }
    if (insights !== null) {
      rs.hits[rule]++
      rs.lastHitMs[rule] = this.nowMs
    }
    if (rs.dryRun[rule] === 1) {
      this.counters.linesWouldBlock++
      if (insights !== null) insights.forwarded.observe(buf, start, nameEnd)
      this.assembler.append(buf, start, end)
    } else {
      this.counters.linesBlocked++
      if (insights !== null) insights.blocked.observe(buf, start, nameEnd)
    }
  }

  /**
   * A metric line under tag rules: limits, then the block rules (name and tag), then the allowlist, then tag
   * stripping (see README, "Tag rules"). Only what the rules in force need is walked.
   */
  private tagged(rs: RuleSet, tr: TagRules, buf: Buffer, start: number, nameEnd: number, end: number): void {
    const counters = this.counters
    const insights = this.insights
    // The type field is found when a rule needs it (tags, types): most lines under name-only extras never do.
    this.typeEnd = -1
    if (
      (tr.maxNameLength > 0 && nameEnd - start > tr.maxNameLength) ||
      (tr.tagLimits && this.overTagLimits(tr, buf, this.typeEndOf(buf, nameEnd, end), end))
    ) {
      if (!tr.limitsDryRun) {
        counters.linesOverLimit++
        if (insights !== null) insights.blocked.observe(buf, start, nameEnd)
        return
      }
      counters.linesWouldOverLimit++
    }

    let block = rs.trie.match(buf, start, nameEnd)
    if (block !== -1 && !tr.taggedLiterals && rs.dryRun[block] === 0) {
      // Nothing can outrank a table rule: blocked whatever else would match.
      this.hit(rs, block)
      counters.linesBlocked++
      if (insights !== null) insights.blocked.observe(buf, start, nameEnd)
      return
    }
    let blockPriority = block === -1 ? NO_PRIORITY : tablePriority(rs.table, block)
    let allow = -1
    let allowPriority = NO_PRIORITY
    let glob = -1
    let strips = 0
    let slot = -1
    const first = tr.firstIndex
    const found = tr.found
    const n = tr.candidates(buf, start, nameEnd)
    tr.beginLine()
    for (let k = 0; k < n; k++) {
      const r = found[k]
      const action = tr.action[r]
      const index = first + r
      if (action === BLOCK) {
        const p = tr.priority[r]
        if (
          (p > blockPriority || (p === blockPriority && index < block)) &&
          (!tr.conditional(r) || this.carries(tr, r, buf, this.typeEndOf(buf, nameEnd, end), end))
        ) {
          block = index
          blockPriority = p
        }
      } else if (action === BLOCK_GLOB) {
        // Literal rules came first (candidates() order): a glob only decides if none did.
        if (
          block === -1 &&
          (glob === -1 || index < glob) &&
          (!tr.conditional(r) || this.carries(tr, r, buf, this.typeEndOf(buf, nameEnd, end), end))
        )
          glob = index
      } else if (action === ALLOW) {
        const p = tr.priority[r]
        if (p > allowPriority || (p === allowPriority && index < allow)) {
          allow = index
          allowPriority = p
        }
      } else if (action === STRIP) {
        if (slot === -1) {
          const typeEnd = this.typeEndOf(buf, nameEnd, end)
          slot = typeSlot(buf, this.typeStart, typeEnd)
        }
        if (tr.appliesToType(r, slot) && tr.firstTime(r)) tr.applying[strips++] = r
      }
    }
    if (block === -1 && glob !== -1) block = this.globBlock(tr, glob, n, buf, this.typeEndOf(buf, nameEnd, end), end)
    if (block === -1 && tr.blockTags) block = this.tagBlock(tr, buf, this.typeEndOf(buf, nameEnd, end), end)
    if (block !== -1) {
      this.hit(rs, block)
      if (rs.dryRun[block] === 1) counters.linesWouldBlock++
      else {
        counters.linesBlocked++
        if (insights !== null) insights.blocked.observe(buf, start, nameEnd)
        return
      }
    }
    if (tr.allowlist) {
      if (allow !== -1) this.hit(rs, allow)
      else if (tr.allowlistDryRun) counters.linesWouldNotAllow++
      else {
        counters.linesNotAllowed++
        if (insights !== null) insights.blocked.observe(buf, start, nameEnd)
        return
      }
    }
    if (insights !== null) insights.forwarded.observe(buf, start, nameEnd)
    if (strips === 0) this.assembler.append(buf, start, end)
    else this.strip(rs, tr, strips, buf, start, end, this.typeEnd, slot)
  }

  /**
   * Where the metric line's type field ends (its `|`, or the line's end), found once per line: tagged() resets
   * it; the type field's start is left in typeStart.
   */
  private typeEndOf(buf: Buffer, nameEnd: number, end: number): number {
    if (this.typeEnd === -1) {
      this.typeStart = nextPipe(buf, nameEnd + 1, end) + 1
      this.typeEnd = nextPipe(buf, this.typeStart, end)
    }
    return this.typeEnd
  }

  private hit(rs: RuleSet, index: number): void {
    if (this.insights === null) return
    rs.hits[index]++
    rs.lastHitMs[index] = this.nowMs
  }

  private overTagLimits(tr: TagRules, buf: Buffer, typeEnd: number, end: number): boolean {
    const cursor = this.cursor
    const maxTags = tr.maxTags
    const maxTagLength = tr.maxTagLength
    let count = 0
    cursor.reset(buf, typeEnd, end)
    while (cursor.next()) {
      if (maxTags > 0 && ++count > maxTags) return true
      if (maxTagLength > 0 && cursor.end - cursor.start > maxTagLength) return true
    }
    return false
  }

  /** Whether the line carries the tag (or key) that rule r's condition names. */
  private carries(tr: TagRules, r: number, buf: Buffer, typeEnd: number, end: number): boolean {
    const cursor = this.cursor
    cursor.reset(buf, typeEnd, end)
    while (cursor.next()) {
      if (tr.satisfies(r, buf, cursor.start, cursor.keyEnd, cursor.end)) return true
    }
    return false
  }

  /**
   * The deciding block glob, given the first candidate in file order (`glob`): it picks the pattern, and among
   * the candidates with that pattern, the first with a tag condition the line carries wins, else `glob` itself.
   */
  private globBlock(tr: TagRules, glob: number, n: number, buf: Buffer, typeEnd: number, end: number): number {
    const first = tr.firstIndex
    const pattern = tr.globPattern[glob - first]
    let tagged = -1
    for (let k = 0; k < n; k++) {
      const r = tr.found[k]
      const index = first + r
      if (tr.globPattern[r] !== pattern || !tr.conditional(r) || (tagged !== -1 && index > tagged)) continue
      if (this.carries(tr, r, buf, typeEnd, end)) tagged = index
    }
    return tagged === -1 ? glob : tagged
  }

  /** The blocklist.tags rule of the line's first tag that has one, or -1. */
  private tagBlock(tr: TagRules, buf: Buffer, typeEnd: number, end: number): number {
    const cursor = this.cursor
    cursor.reset(buf, typeEnd, end)
    while (cursor.next()) {
      const r = tr.tagRule(buf, cursor.start, cursor.end)
      if (r !== -1) return tr.firstIndex + r
    }
    return -1
  }

  /**
   * Forwards the line without the tags that the applying strip rules (tr.applying[0, strips)) remove, in one pass
   * that copies the line straight into the output datagram while it finds the tags: a removed tag is taken back by
   * moving the write position back to where it began (with the comma written before it), and a tag field left
   * without tags goes whole, `|#` included. Every other byte leaves as it came. One pass instead of a walk and a
   * copy: the walk alone cost as much as the copy.
   */
  private strip(
    rs: RuleSet,
    tr: TagRules,
    strips: number,
    buf: Buffer,
    start: number,
    end: number,
    typeEnd: number,
    slot: number,
  ): void {
    const assembler = this.assembler
    const counters = this.counters
    const applying = tr.applying
    const ruleTags = tr.ruleTags
    const first = tr.firstIndex
    const dryRun = rs.dryRun
    for (let i = 0; i < strips; i++) {
      ruleTags[i] = 0
      this.hit(rs, first + applying[i])
    }
    let at = assembler.beginLine(end - start)
    if (at === -1) return
    const out = assembler.lineBuffer
    let removed = 0
    let wouldRemove = 0
    let i = start
    while (i < typeEnd) out[at++] = buf[i++]
    // buf[i] is a field's `|` (or i is the end).
    while (i < end) {
      const fieldAt = at
      out[at++] = PIPE
      i++
      if (i + 1 >= end || buf[i] !== HASH || buf[i + 1] === PIPE) {
        // Not a tag field, or an empty one (no tags): as it came.
        while (i < end && buf[i] !== PIPE) out[at++] = buf[i++]
        continue
      }
      out[at++] = HASH
      i++
      let kept = 0
      for (;;) {
        const tagAt = at
        if (kept > 0) out[at++] = COMMA
        const tagStart = i
        // The key (up to a `:`), copied as it is read; the decision comes before the value is.
        let b = 0
        while (i < end && (b = buf[i]) !== COLON && b !== COMMA && b !== PIPE) {
          out[at++] = b
          i++
        }
        if (i === end) b = 0
        const key = tr.keyId(buf, tagStart, i)
        let enforced = false
        let dry = false
        for (let k = 0; k < strips; k++) {
          const r = applying[k]
          if (!tr.removes(r, key)) continue
          ruleTags[k]++
          if (dryRun[first + r] === 1) dry = true
          else enforced = true
        }
        if (enforced) {
          removed++
          at = tagAt
          if (b === COLON) while (i < end && (b = buf[i]) !== COMMA && b !== PIPE) i++
        } else {
          if (dry) wouldRemove++
          kept++
          if (b === COLON)
            while (i < end && (b = buf[i]) !== COMMA && b !== PIPE) {
              out[at++] = b
              i++
            }
        }
        if (i < end && b === COMMA) i++
        else break
      }
      if (kept === 0) at = fieldAt
    }
    if (!assembler.endLine(at)) return
    // Per-rule counts are insights, like hits.
    for (let k = 0; k < strips && this.insights !== null; k++) {
      if (ruleTags[k] === 0) continue
      const r = applying[k]
      rs.linesStripped[r]++
      rs.tagsStripped[r] += ruleTags[k]
    }
    if (removed > 0) {
      counters.linesTagsStripped++
      counters.tagsStripped += removed
      counters.values[Counters.strippedByTypeSlot + slot]++
    }
    if (wouldRemove > 0) {
      counters.linesTagsWouldStrip++
      counters.tagsWouldStrip += wouldRemove
    }
  }

  event(buf: Buffer, start: number, end: number): void {
    this.assembler.append(buf, start, end)
  }

  serviceCheck(buf: Buffer, start: number, end: number): void {
    this.assembler.append(buf, start, end)
  }

  malformed(buf: Buffer, start: number, end: number): void {
    this.counters.linesMalformed++
    if (this.malformedGate.pass()) this.reportMalformed(buf, start, end, this.malformedGate.takeSuppressed())
  }
}
