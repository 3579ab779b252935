/**
 * A history checker for the replication fault tests (test/cluster/node/) and bench/nemesis.ts: it records every
 * produce a client had acknowledged (topic, partition, offset, value) and every record a consumer read, and reports
 * what Kafka promises must not happen:
 *
 * - a lost acknowledged record: acknowledged at an offset, and never read there with that value;
 * - a duplicate from an idempotent producer: one value (each value is sent once) read at two offsets;
 * - an offset order violation: a consumer's reads of a partition going backwards or repeating an offset within one
 *   pass, or two values read at one offset. A consumer whose group rebalanced starts again from its committed
 *   offset (kafkajs: from the beginning when none was committed yet); such a reader is recorded with
 *   `rewinds: 'allowed'`, and each backward step counts as a rewind instead, its records checked against what was
 *   read at those offsets before.
 *
 * Records a producer sent but was not told were written (an error, a timeout) may or may not be there; the summary
 * counts them.
 */

/** What `History.check` found: each problem a line (at most ten of a kind), the counts, and a one-line summary. */
export interface HistoryCheck {
  readonly problems: readonly string[]
  readonly summary: string
  readonly acknowledged: number
  readonly lost: number
  /** Values read at more than one offset. */
  readonly duplicates: number
  /** Reads going backwards in one pass, and offsets acknowledged or read with two values. */
  readonly orderViolations: number
}

/** The history of one run: acknowledged produces and consumed records, checked against each other (above). */
export class History {
  /** `topic/partition` -> offset -> value. */
  private readonly acknowledged = new Map<string, Map<bigint, string>>()
  /** `topic/partition` -> offset -> value, as read. */
  private readonly read = new Map<string, Map<bigint, string>>()
  /** value -> the offsets it was read at. */
  private readonly offsetsOfValue = new Map<string, Set<string>>()
  /** `topic/partition` -> values acknowledged without their offsets. */
  private readonly unplaced = new Map<string, string[]>()
  private readonly problems: string[] = []
  private unacknowledged = 0
  private reads = 0
  private rewinds = 0

  /** A batch of `values` the producer was told starts at `baseOffset` of the partition. */
  acknowledge(topic: string, partition: number, baseOffset: bigint, values: readonly string[]): void {
    const key = `${topic}/${partition}`
    const offsets = this.acknowledged.get(key) ?? new Map<bigint, string>()
    this.acknowledged.set(key, offsets)
    values.forEach((value, i) => {
      const offset = baseOffset + BigInt(i)
      const earlier = offsets.get(offset)
      if (earlier !== undefined && earlier !== value) this.problems.push(`${key}: offset ${offset} acknowledged for '${earlier}' and for '${value}'`)
      offsets.set(offset, value)
    })
  }

  /**
   * Values the producer was told were written to the partition without being told where (kcat reports delivery,
   * not offsets): each must be read at some offset of the partition.
   */
  acknowledgeUnplaced(topic: string, partition: number, values: readonly string[]): void {
    const key = `${topic}/${partition}`
    const unplaced = this.unplaced.get(key) ?? []
    this.unplaced.set(key, unplaced)
    unplaced.push(...values)
  }

  /** How many records were acknowledged so far. */
  get acknowledgedCount(): number {
    const placed = [...this.acknowledged.values()].reduce((sum, offsets) => sum + offsets.size, 0)
    return placed + [...this.unplaced.values()].reduce((sum, values) => sum + values.length, 0)
  }

  /** Values sent whose produce failed or was not answered. */
  notAcknowledged(count: number): void {
    this.unacknowledged += count
  }

  /** A consumer's reads of a partition, in the order it read them. */
  consumed(topic: string, partition: number, records: readonly { offset: bigint; value: string }[], options: { rewinds: 'allowed' | 'violation' }): void {
    const key = `${topic}/${partition}`
    const seen = this.read.get(key) ?? new Map<bigint, string>()
    this.read.set(key, seen)
    let previous = -1n
    for (const { offset, value } of records) {
      this.reads++
      if (offset <= previous) {
        if (options.rewinds === 'allowed') this.rewinds++
        else this.problems.push(`${key}: offset ${offset} read after offset ${previous}`)
      }
      previous = offset
      const earlier = seen.get(offset)
      if (earlier !== undefined && earlier !== value) this.problems.push(`${key}: offset ${offset} read as '${earlier}' and as '${value}'`)
      seen.set(offset, value)
      const offsets = this.offsetsOfValue.get(value) ?? new Set<string>()
      offsets.add(`${key}@${offset}`)
      this.offsetsOfValue.set(value, offsets)
    }
  }

  check(): HistoryCheck {
    const problems = [...this.problems]
    let acknowledged = 0
    let lost = 0
    for (const [key, offsets] of this.acknowledged) {
      const seen = this.read.get(key)
      for (const [offset, value] of offsets) {
        acknowledged++
        const got = seen?.get(offset)
        if (got === value) continue
        lost++
        if (lost <= 10) problems.push(`${key}: '${value}' acknowledged at offset ${offset} was ${got === undefined ? 'never read' : `read as '${got}'`}`)
      }
    }
    for (const [key, values] of this.unplaced) {
      const seen = new Set(this.read.get(key)?.values() ?? [])
      for (const value of values) {
        acknowledged++
        if (seen.has(value)) continue
        lost++
        if (lost <= 10) problems.push(`${key}: '${value}' acknowledged (offset not told) was never read`)
      }
    }
    if (lost > 10) problems.push(`... ${lost} acknowledged records lost in all`)
    let duplicates = 0
    for (const [value, offsets] of this.offsetsOfValue) {
      if (offsets.size < 2) continue
      duplicates++
      if (duplicates <= 10) problems.push(`'${value}' read at ${[...offsets].join(', ')}`)
    }
    const distinct = [...this.read.values()].reduce((sum, offsets) => sum + offsets.size, 0)
    const summary =
      `history: ${acknowledged} acknowledged records, ${this.unacknowledged} sent without acknowledgement, ` +
      `${this.reads} reads of ${distinct} distinct offsets (${this.rewinds} consumer rewinds); lost ${lost}, duplicated ${duplicates}, ` +
      `${this.problems.length} order violations`
    return { problems, summary, acknowledged, lost, duplicates, orderViolations: this.problems.length }
  }
}
