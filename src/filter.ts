import { copyBytes, copyFields, copyStepping, viewOf, type Assembler } from './batch/assembler.ts'
import { FORECAST_BYTES, FORECAST_PRECISION, type RuleSet } from './match/rule-set.ts'
import { ADMITTED, FULL } from './match/admission.ts'
import {
  ALLOW,
  BLOCK,
  BLOCK_GLOB,
  DROP_LINE,
  DROP_TAG,
  LIMIT,
  OVERFLOW,
  STRIP,
  tablePriority,
  type TagRules,
} from './match/tag-rules.ts'
import type { LineSink } from './scan/line-sink.ts'
import { scanDatagram } from './scan/scanner.ts'
import {
  DROP_FROM_SERIES,
  IDENTITY1,
  IDENTITY2,
  KEEP_IN_SERIES,
  lineDone,
  lineHash,
  lineHashes,
  nameDone,
  OVERFLOW_IN_SERIES,
  SeriesHasher,
  startLine,
  stepFields,
} from './scan/series-hash.ts'
import { nextPipe, TagCursor, typeSlot } from './scan/tags.ts'
import type { CardinalityTracker } from './telemetry/cardinality.ts'
import { Counters } from './telemetry/counters.ts'
import { hllAdd } from './telemetry/hyperloglog.ts'
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
  /** The series of forwarded lines, for GET /cardinality; null when the view is off. */
  cardinality: CardinalityTracker | null
}

const PIPE = 0x7c
const HASH = 0x23
const COMMA = 0x2c
const COLON = 0x3a
/** Lower than any rule's precedence. */
const NO_PRIORITY = -(2 ** 31)
/** Tags per line the series hasher records (a 65,507-byte line holds at most 32,754): the rest count as none. */
const MAX_TAGS = 1024
/** What a line's rewrite does with one tag (decided before the copy when limits apply, during it otherwise). */
const KEEP = 0
const STRIPPED = 1
const WOULD_STRIP = 2
const OVERFLOWED = 3
const DROPPED = 4
/** Seeds of the two hashes of a (metric name, tag key) pair: which admission set a tag's value goes to. */
const PAIR_SEED1 = 0x27d4eb2f
const PAIR_SEED2 = 0x165667b1

/** A 32-bit hash of (name hash, key hash) under a seed: murmur3's finalizer over their mix. */
function pairHash(nameHash: number, keyHash: number, seed: number): number {
  let h = nameHash ^ Math.imul(keyHash ^ seed, 0xcc9e2d51)
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return (h ^ (h >>> 16)) | 0
}

/** What an over-limit value becomes: written after the tag's key (the `:` included), in place of its value. */
const OVERFLOW_VALUE = viewOf(Buffer.from(':__overflow__'))
const OVERFLOW_LENGTH = OVERFLOW_VALUE.byteLength
/**
 * Lines the strip rules' forecasts remember as added: a table of line identities in pairs (a line goes in one of
 * two places), 256 KB. Direct-mapped, two identities in one place evicted each other: with the 3,400 identities of
 * bench/tag-rules.ts's strip run, 9.3% of lookups missed and re-added a line.
 */
const FORECAST_LINES = 32_768

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
  /** A line's tags and series hashes: for the cardinality view, and the limits' admission sets. */
  private readonly hasher = new SeriesHasher(MAX_TAGS)
  /** Per tag the hasher recorded: KEEP, STRIPPED, WOULD_STRIP, OVERFLOWED or DROPPED (lines analyse() decided). */
  private readonly decisions = new Uint8Array(MAX_TAGS)
  private readonly cardinality: CardinalityTracker | null
  /** Whether rewrite() puts the identity of the received line in lineHashes (see tagged). */
  private identified = false
  /** Bytes the last analyse() adds to its line (values replaced by OVERFLOW_VALUE). */
  private growth = 0
  /** Per recorded tag: the most severe enforced limit action on it (0: none), and its key id. */
  private readonly actions = new Uint8Array(MAX_TAGS)
  private readonly keyIds = new Int32Array(MAX_TAGS)
  /** Per recorded tag, what one rule does to it, for that rule's forecast (SeriesHasher.series). */
  private readonly keep = new Uint8Array(MAX_TAGS)
  /** The identities of lines lately added to the strip rules' forecasts (forecastedLately): 2 words each. */
  private readonly forecastLines = new Int32Array(2 * FORECAST_LINES)

  constructor(options: LineFilterOptions) {
    this.ruleSet = options.rules
    this.assembler = options.assembler
    this.counters = options.counters
    this.malformedGate = options.malformed.gate
    this.reportMalformed = options.malformed.report
    this.insights = options.insights
    this.cardinality = options.cardinality
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
    // Both keyed stripped lines by the bytes they came with, which other rules may change.
    this.forecastLines.fill(0)
    this.cardinality?.forgetRecent()
  }

  tick(nowMs: number): void {
    this.nowMs = nowMs
    this.cardinality?.tick(nowMs)
    const admission = this.ruleSet.admission
    for (let i = 0; i < admission.length; i++) admission[i].tick(nowMs)
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
      this.forward(buf, start, nameEnd, end)
      return
    }
    if (insights !== null) {
      rs.hits[rule]++
      rs.lastHitMs[rule] = this.nowMs
    }
    if (rs.dryRun[rule] === 1) {
      this.counters.linesWouldBlock++
      if (insights !== null) insights.forwarded.observe(buf, start, nameEnd)
      this.forward(buf, start, nameEnd, end)
    } else {
      this.counters.linesBlocked++
      if (insights !== null) insights.blocked.observe(buf, start, nameEnd)
    }
  }

  /**
   * Forwards `buf[start, end)` as it came: with the cardinality view on, hashing its identity in the copy
   * (appendHashing) and counting it unless the assembler dropped it (no free buffer: counted as backpressure).
   */
  private forward(buf: Buffer, start: number, nameEnd: number, end: number): void {
    if (this.cardinality === null) {
      this.assembler.append(buf, start, end)
      return
    }
    if (this.assembler.appendHashing(buf, start, nameEnd, nextPipe(buf, nameEnd + 1, end), end))
      this.observe(buf, start, nameEnd, end)
  }

  /**
   * Counts the forwarded line `buf[start, end)` (name up to nameEnd; its identity in lineHashes) in the
   * cardinality view.
   */
  private observe(buf: Buffer, start: number, nameEnd: number, end: number): void {
    const tracker = this.cardinality as CardinalityTracker
    tracker.observe(this.hasher, buf, start, nameEnd, end, lineHashes)
  }

  /**
   * A metric line under tag rules: limits, then the block rules (name and tag), then the allowlist, then tag
   * stripping and cardinality limits (see README, "Tag rules"). Only what the rules in force need is walked.
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
    let limits = 0
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
      } else if (action === LIMIT) {
        if (tr.firstTime(r)) tr.limiting[limits++] = r
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
    if (strips === 0 && limits === 0) {
      if (insights !== null) insights.forwarded.observe(buf, start, nameEnd)
      this.forward(buf, start, nameEnd, end)
      return
    }
    // Tags are walked from the type field's end: found now if no strip rule needed it.
    const typeEnd = this.typeEndOf(buf, nameEnd, end)
    // Limits decide before the copy: a value over a dropLine limit drops the line.
    if (limits > 0) {
      this.identified = false
      if (!this.analyse(rs, tr, strips, limits, buf, start, nameEnd, end)) {
        if (insights !== null) insights.blocked.observe(buf, start, nameEnd)
        return
      }
      if (insights !== null) insights.forwarded.observe(buf, start, nameEnd)
      this.rewrite(rs, tr, strips, true, buf, start, nameEnd, end, typeEnd, slot)
      return
    }
    // Under strip rules alone a received line always leaves the same: its identity (of the received bytes, the
    // value left out; hashed by the rewrite as it copies) then keys what the forecasts and the view saw lately.
    this.identified = insights !== null || this.cardinality !== null
    if (insights !== null) insights.forwarded.observe(buf, start, nameEnd)
    if (this.rewrite(rs, tr, strips, false, buf, start, nameEnd, end, typeEnd, slot) && insights !== null) {
      if (!this.forecastedLately()) this.forecastStrips(rs, tr, strips, buf, start, nameEnd, end)
    }
  }

  /**
   * Adds the line `buf[start, end)` to the forecasts of the strip rules tr.applying[0, strips), after the rewrite
   * decided and counted what they remove.
   */
  private forecastStrips(
    rs: RuleSet,
    tr: TagRules,
    strips: number,
    buf: Buffer,
    start: number,
    nameEnd: number,
    end: number,
  ): void {
    const hasher = this.hasher
    const n = hasher.collect(buf, start, nameEnd, end)
    for (let t = 0; t < n; t++) this.keyIds[t] = tr.keyId(buf, hasher.tagStart[t], hasher.keyEnd[t])
    this.forecastStripRules(rs, tr, strips, n)
  }

  /**
   * Adds the line the hasher collected (its n tags' key ids in keyIds) to the forecast of each strip rule
   * tr.applying[0, strips): its series as it came, and without the tags that rule alone removes. Returns the
   * former (seriesHash of the hasher is then the last rule's after).
   */
  private forecastStripRules(rs: RuleSet, tr: TagRules, strips: number, n: number): number {
    const hasher = this.hasher
    const keep = this.keep
    const keyIds = this.keyIds
    hasher.series(null)
    const before = hasher.seriesHash
    for (let k = 0; k < strips; k++) {
      const r = tr.applying[k]
      for (let t = 0; t < n; t++) keep[t] = tr.removes(r, keyIds[t]) ? DROP_FROM_SERIES : KEEP_IN_SERIES
      this.forecast(rs, r, before, true)
    }
    return before
  }

  /**
   * For a line under limits: decides, for every tag the hasher records, what the strip rules (tr.applying[0,
   * strips)) and the limits (tr.limiting[0, limits)) do to it, into `decisions`, and (with insights) adds the line
   * to each rule's forecast. Before the copy, because a value over a dropLine limit drops the whole line, and
   * because the values admitted must not be those of tags a strip rule removes. Returns false when the line is dropped
   * (counted); `growth` is then what OVERFLOWED values add to the line.
   */
  private analyse(
    rs: RuleSet,
    tr: TagRules,
    strips: number,
    limits: number,
    buf: Buffer,
    start: number,
    nameEnd: number,
    end: number,
  ): boolean {
    const counters = this.counters
    const hasher = this.hasher
    const decisions = this.decisions
    const actions = this.actions
    const keyIds = this.keyIds
    const keep = this.keep
    const limiting = tr.limiting
    const limitTags = tr.limitTags
    const first = tr.firstIndex
    const dryRun = rs.dryRun
    const forecasts = this.insights !== null
    const n = hasher.collect(buf, start, nameEnd, end)
    for (let k = 0; k < strips; k++) tr.ruleTags[k] = 0
    for (let t = 0; t < n; t++) {
      const key = tr.keyId(buf, hasher.tagStart[t], hasher.keyEnd[t])
      keyIds[t] = key
      decisions[t] = this.stripDecision(tr, strips, key, dryRun)
      actions[t] = 0
    }
    const before = forecasts ? this.forecastStripRules(rs, tr, strips, n) : 0
    let would = 0
    for (let k = 0; k < limits; k++) {
      const r = limiting[k]
      this.hit(rs, first + r)
      const table = rs.admission[tr.limitSlot[r]]
      const over = tr.overAction[r]
      const dry = dryRun[first + r] === 1
      let overs = 0
      for (let t = 0; t < n; t++) {
        keep[t] = KEEP_IN_SERIES
        if (decisions[t] === STRIPPED || tr.exempts(r, keyIds[t])) continue
        const keyHash = hasher.keyHash[t]
        const verdict = table.admit(
          pairHash(hasher.nameHash, keyHash, PAIR_SEED1),
          pairHash(hasher.nameHash2, keyHash, PAIR_SEED2),
          hasher.tagHash[t],
        )
        if (verdict === ADMITTED) continue
        if (verdict === FULL) counters.cardinalityKeysFull++
        overs++
        keep[t] = over === OVERFLOW ? OVERFLOW_IN_SERIES : DROP_FROM_SERIES
        if (dry) would |= 1 << over
        else if (over > actions[t]) actions[t] = over
      }
      limitTags[k] = overs
      if (forecasts) this.forecast(rs, r, before, over !== DROP_LINE || overs === 0)
    }
    let enforced = 0
    let growth = 0
    let limitedTags = 0
    for (let t = 0; t < n && limits > 0; t++) {
      const action = actions[t]
      if (action === 0) continue
      enforced |= 1 << action
      limitedTags++
      if (action === OVERFLOW) {
        decisions[t] = OVERFLOWED
        growth += hasher.keyEnd[t] + OVERFLOW_LENGTH - hasher.tagEnd[t]
      } else if (action === DROP_TAG) decisions[t] = DROPPED
    }
    // Per-rule counts are insights, like hits.
    for (let k = 0; k < limits && forecasts; k++) {
      if (limitTags[k] === 0) continue
      const r = limiting[k]
      rs.linesStripped[r]++
      rs.tagsStripped[r] += limitTags[k]
    }
    counters.tagsCardinalityLimited += limitedTags
    if ((would & (1 << OVERFLOW)) !== 0) counters.linesCardinalityWouldOverflow++
    if ((would & (1 << DROP_TAG)) !== 0) counters.linesCardinalityWouldDropTag++
    if ((would & (1 << DROP_LINE)) !== 0) counters.linesCardinalityWouldDropLine++
    if ((enforced & (1 << DROP_LINE)) !== 0) {
      counters.linesCardinalityDropped++
      return false
    }
    if ((enforced & (1 << OVERFLOW)) !== 0) counters.linesCardinalityOverflow++
    if ((enforced & (1 << DROP_TAG)) !== 0) counters.linesCardinalityDropTag++
    this.growth = growth
    return true
  }

  /**
   * Whether a line with the identity in lineHashes (its name and fields, the value left out) was added to the
   * forecasts of the rules in force lately: the same bytes under the same strip rules add the same series, which
   * a HyperLogLog already holds. Otherwise it is remembered in its pair's first place (the other one moves to
   * the second, the one there is forgotten), and the caller adds it (forecastStrips).
   */
  private forecastedLately(): boolean {
    const h1 = lineHashes[IDENTITY1]
    const h2 = lineHashes[IDENTITY2]
    // The pair's first word: 4 words a pair, FORECAST_LINES / 2 pairs.
    const at = ((Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b) >>> 0) & (FORECAST_LINES / 2 - 1)) << 2
    const lines = this.forecastLines
    if (lines[at] === h1 && lines[at + 1] === h2) return true
    if (lines[at + 2] === h1 && lines[at + 3] === h2) return true
    lines[at + 2] = lines[at]
    lines[at + 3] = lines[at + 1]
    lines[at] = h1
    lines[at + 1] = h2
    return false
  }

  /**
   * Adds the line to rule r's forecast: `before` (its series as it came) and, when it leaves, its series with
   * the tags `keep` marks dropped or overflowed.
   */
  private forecast(rs: RuleSet, r: number, before: number, leaves: boolean): void {
    const at = rs.forecastSlot[r] * FORECAST_BYTES
    hllAdd(rs.forecast, at, FORECAST_PRECISION, before)
    if (!leaves) return
    this.hasher.series(this.keep)
    hllAdd(rs.forecast, at + (FORECAST_BYTES >> 1), FORECAST_PRECISION, this.hasher.seriesHash)
  }

  /**
   * What the strip rules tr.applying[0, strips) do to a tag with this key id: STRIPPED when an enforced one
   * removes it, WOULD_STRIP when only dry-run ones do, else KEEP; counts it for each rule that removes it.
   */
  private stripDecision(tr: TagRules, strips: number, key: number, dryRun: Uint8Array): number {
    const applying = tr.applying
    const first = tr.firstIndex
    let decision = KEEP
    for (let k = 0; k < strips; k++) {
      const r = applying[k]
      if (!tr.removes(r, key)) continue
      tr.ruleTags[k]++
      if (dryRun[first + r] === 0) decision = STRIPPED
      else if (decision === KEEP) decision = WOULD_STRIP
    }
    return decision
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
   * Forwards the line without the tags that the applying strip rules (tr.applying[0, strips)) remove, and (when
   * `analysed`) with what analyse() decided for each tag, copying it straight into the output datagram in runs: the
   * bytes kept since the last cut (`buf[run, i)`) go in one copyBytes when a tag is cut, an overflowed value is
   * replaced, or the line ends. A removed tag goes with one comma (the one before it, or after it when no tag of its
   * field was kept before it), a tag field left without tags goes whole (`|#` included), every other byte leaves
   * as it came. Tags are only read here (each key walked once, through the key trie as its end is sought): a copy
   * in the walk's byte loop cost 2-3x copyBytes per byte.
   */
  private rewrite(
    rs: RuleSet,
    tr: TagRules,
    strips: number,
    analysed: boolean,
    buf: Buffer,
    start: number,
    nameEnd: number,
    end: number,
    typeEnd: number,
    slot: number,
  ): boolean {
    const assembler = this.assembler
    const counters = this.counters
    const hasher = this.hasher
    const decisions = this.decisions
    const applying = tr.applying
    const ruleTags = tr.ruleTags
    const first = tr.firstIndex
    const dryRun = rs.dryRun
    for (let i = 0; i < strips; i++) {
      // analyse() counted its tags already.
      if (!analysed) ruleTags[i] = 0
      this.hit(rs, first + applying[i])
    }
    // One strip rule, the common case: its decision on a key is one read of the removal table.
    const single = strips === 1 && !analysed && tr.removal !== null
    const removal = single ? tr.removal : null
    const row = single ? tr.removalRow[applying[0]] + 1 : 0
    const removedAs = single && dryRun[first + applying[0]] === 1 ? WOULD_STRIP : STRIPPED
    const lineStart = assembler.beginLine(end - start + (analysed ? this.growth : 0))
    if (lineStart === -1) return false
    const out = assembler.lineBuffer
    const to = assembler.lineView
    const from = assembler.sourceView(buf)
    let removed = 0
    let wouldRemove = 0
    // The next tag analyse() decided on (the hasher skips empty tags: those are decided here).
    let t = 0
    let at = lineStart
    let run = start
    // The identity leaves the value out: the name and value go first.
    const valueEnd = this.typeStart - 1
    if (this.identified) {
      startLine()
      at = copyStepping(from, start, nameEnd, to, at)
      nameDone(nameEnd - start)
      at = copyBytes(from, nameEnd, valueEnd, to, at)
      run = valueEnd
    }
    let i = typeEnd
    // buf[i] is a field's `|` (or i is the end).
    while (i < end) {
      const fieldStart = i
      // Not a tag field, or an empty one (no tags): as it came.
      if (i + 2 >= end || buf[i + 1] !== HASH || buf[i + 2] === PIPE) {
        i = nextPipe(buf, i + 1, end)
        continue
      }
      // Where the field's `|` is in the output, for a field left without tags.
      const fieldAt = at + (fieldStart - run)
      let kept = 0
      let tagStart = i + 2
      // Each tag ends at a `,` (another follows), or at the field's end: a `|` or the line's.
      let tagEnd: number
      let more: boolean
      for (;;) {
        let keyEnd: number
        let decision: number
        if (analysed && t < hasher.count && hasher.tagStart[t] === tagStart) {
          keyEnd = hasher.keyEnd[t]
          tagEnd = hasher.tagEnd[t]
          decision = decisions[t++]
        } else {
          const key = tr.keyIdUntil(buf, tagStart, end)
          keyEnd = tr.keyEnd
          tagEnd = keyEnd
          if (tagEnd < end && buf[tagEnd] === COLON) {
            while (++tagEnd < end) {
              const b = buf[tagEnd]
              if (b === COMMA || b === PIPE) break
            }
          }
          if (removal === null) decision = this.stripDecision(tr, strips, key, dryRun)
          else if (removal[row + key] === 0) decision = KEEP
          else {
            decision = removedAs
            ruleTags[0]++
          }
        }
        more = tagEnd < end && buf[tagEnd] === COMMA
        if (decision === STRIPPED || decision === DROPPED) {
          if (decision === STRIPPED) removed++
          // The first kept tag of a field starts it: with none before, its comma after goes with it, else the
          // one before does (and the one after, if any, comes before the next tag kept).
          const cut = kept === 0 ? tagStart : tagStart - 1
          at = this.copyRun(from, run, cut, to, at)
          run = kept === 0 && more ? tagEnd + 1 : tagEnd
          this.skipRun(buf, cut, run)
        } else if (decision === OVERFLOWED) {
          kept++
          at = copyBytes(OVERFLOW_VALUE, 0, OVERFLOW_LENGTH, to, this.copyRun(from, run, keyEnd, to, at))
          this.skipRun(buf, keyEnd, tagEnd)
          run = tagEnd
        } else {
          if (decision === WOULD_STRIP) wouldRemove++
          kept++
        }
        if (!more) break
        tagStart = tagEnd + 1
      }
      i = tagEnd
      if (kept === 0) {
        at = fieldAt
        run = tagEnd
      }
    }
    at = this.copyRun(from, run, end, to, at)
    if (this.identified) lineDone(nameEnd - start, end - valueEnd)
    if (this.cardinality !== null) {
      // Under limits, by the bytes it leaves with (see tagged): the view counts what the agent receives.
      const outNameEnd = lineStart + (nameEnd - start)
      if (!this.identified) lineHash(out, lineStart, outNameEnd, nextPipe(out, outNameEnd + 1, at), at)
      this.observe(out, lineStart, outNameEnd, at)
    }
    if (!assembler.endLine(at)) return false
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
    return true
  }

  /**
   * rewrite's copy of the kept bytes `src[from, to)` to `out` at `at` (returns their end there), stepping the
   * identity's chains over them when the line is identified.
   */
  private copyRun(src: DataView, from: number, to: number, out: DataView, at: number): number {
    return this.identified ? copyFields(src, from, to, out, at) : copyBytes(src, from, to, out, at)
  }

  /** rewrite's step of the identity's chains over bytes it cuts, `buf[from, to)`. */
  private skipRun(buf: Buffer, from: number, to: number): void {
    if (this.identified) stepFields(buf, from, to)
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
