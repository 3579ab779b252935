/**
 * The changelog format, and the reader a restore uses. A commit of a task writes, to the task's changelog
 * partition, its changed groups (key = `\x01<group>`, value = the group's state record, null deletes) and then one
 * marker (key `\x00position`, value = the task position plus how many records the commit wrote), all tagged with the
 * commit's random id — in the value's first bytes (state/task-store.ts), or, for a tombstone, which has no value,
 * in the header `brook.commit`:
 *
 *   ... [g1 c=7f3a] [g2 c=7f3a] ... [gN c=7f3a] [position c=7f3a records=N] [g1 c=91bc] ...
 *
 * The records of a commit may span several produce requests; the marker goes last, alone, and only once the
 * records are acknowledged (acks=all, or in the same transaction). So a marker in the log means every record of its
 * commit is in the log before it, and the position in the marker says where the task's input resumes after it.
 * (The id sits in the value rather than in a header because kafkajs encodes each header of each record into a
 * buffer of its own: a header on every state record cost about a third of producing it.)
 *
 * Compaction keeps only the newest marker (they share one key) and the newest record of each group. Here commit d204
 * was cut short by a crash (killed before its marker), and the cleaner has since compacted the whole log:
 *
 *   offset:      0        1          2        3          4        5        6          7
 *   written:    [c 5e01] [pos 5e01] [a 7f3a] [pos 7f3a] [a 91bc] [b 91bc] [pos 91bc] [b d204]
 *   compacted:  [c 5e01]                               [a 91bc]          [pos 91bc] [b d204]
 *
 * A restore first finds the newest marker (M), reading the partition's tail: the last 1,024 offsets, then twice as
 * many, and so on back to the offset the restore starts from, until a marker is among them. It keeps only the records
 * after the newest marker it has seen (those of commits cut short by a crash, at most a few commits' worth). Then it
 * reads the partition again from its start offset up to M:
 * - R1. Every record up to M is applied at once, in offset order, M included (c at offset 0 up to the marker at
 *   offset 6): each belongs to a commit that completed (whose marker may have been compacted away), or to a commit
 *   cut short by a crash in an earlier incarnation of the task, which that incarnation's successor repaired (R4):
 *   each of its keys was written again by a later commit, before M, so applying them in offset order ends at that
 *   later value. Nothing waits in memory for its marker, so a restore holds no more than a batch however many groups
 *   the changelog holds (compaction leaves one marker per partition: waiting for markers held the whole state).
 * - R2. The count in a marker is not checked (pos 91bc says 2, one is left): the marker is written after its records
 *   are acknowledged, so fewer of them before it can only mean that compaction removed some for newer records of
 *   their keys.
 * - R3. The records after M belong to commits cut short by a crash. They are dropped, and the task reprocesses its
 *   input from M's position: exact. Except where the range read was compacted (a message's offset past the one after
 *   the previous message, or the first one past the start offset; transaction markers and aborted records of an
 *   exactly_once run, which read_committed skips, leave such gaps too and count as compaction): there a cut-short
 *   record may have removed the committed record of its key (b at offset 5). For each key of a cut-short record
 *   that no record up to M wrote, the cut-short record's value is applied instead: the input it reflects is
 *   reprocessed and counts twice, at least once rather than lost. A cut-short tombstone is not applied (the store
 *   keeps what it has). That is the one remaining imprecision: a group whose deletion a crash cut short, and whose
 *   committed record that tombstone removed, is left as the store had it (absent from an empty store). Only the
 *   cut-short keys are looked for while reading up to M, so that check too is bounded by the tail.
 * - R4. The task's first commit after a restore that found cut-short records writes each of their keys again, with
 *   the value the restore settled on (a tombstone for a group the store does not hold), so that every cut-short
 *   record is superseded before the next marker. Until a commit after them reaches LevelDB, the local store's
 *   checkpoint stays at M + 1, before the first cut-short record: a task started again before its repair commit
 *   reads them again and repairs them then.
 *
 * A restore that stops half way (a crash, a rebalance) leaves records in the store past its saved position, with the
 * checkpoint after them; the next restore reads on from that checkpoint up to M, which ends at M's position again.
 *
 * Why "no record up to M wrote the key" is enough in R3, though compaction may also remove records of a key a
 * complete commit wrote: a log cleaner compacts a prefix of the log and removes a record when a newer record of its
 * key is in the range it mapped, so it removes every record of the key older than the newest it mapped, all at once.
 * If a record of b survived before M, no committed record of b newer than it was removed; if none survived, the
 * newest committed value may have gone for the cut-short record, the only record of b left.
 *
 * In exactly_once a commit is a transaction and a restore reads read_committed: every record it reads belongs to a
 * commit that completed, with its marker, so R3 and R4 find nothing to do (the task's producer aborts an open
 * transaction before the restore reads).
 */
import type { KafkaMessage, Message } from 'kafkajs'
import { commitIdOf, formatError, POSITION_KEY, type StateRecord } from '../state/task-store.js'

export const COMMIT_HEADER = 'brook.commit'

/** The messages of one commit: its records (to send in any number of requests, in order) and then its marker. */
export function commitMessages(commit: { changes: readonly StateRecord[]; marker: StateRecord; commit: string }, partition: number): { records: Message[]; marker: Message } {
  const tombstoneHeaders = { [COMMIT_HEADER]: commit.commit }
  return {
    records: commit.changes.map((r) => (r.value === null ? { key: r.key, value: null, partition, headers: tombstoneHeaders } : { key: r.key, value: r.value, partition })),
    marker: { key: commit.marker.key, value: commit.marker.value, partition },
  }
}

/** Offsets of the first tail read (the restore's first phase, above): a few commits' markers and then some. */
const FIRST_TAIL_OFFSETS = 1024

/** What one batch of a restore gave: records to apply, the checkpoint to store with them, and what to do next. */
export interface RestoreStep {
  /** Records to write to the store, in order (markers included). */
  apply: StateRecord[]
  /** The changelog offset the store is current up to once `apply` is written. */
  checkpoint: number
  /** Where the consumer must go on reading (a new phase began), or null to read on. */
  seek: number | null
  /** The restore has read all it needs: call `finish`. */
  done: boolean
}

/**
 * Reads a changelog partition during a restore (the rules R1-R4 above), in two phases: the tail, to find the newest
 * marker, and then the range up to it. The caller seeks the partition to `seekTo` first, hands every batch to
 * `read` (batches may start before the offset sought, and go past the end), seeks again when a step says so, and
 * calls `finish` once a step is done. Memory: the records after the newest marker, never the state being restored.
 */
export class RestoreReader {
  /** Where the current phase reads from. */
  seekTo: number
  private phase: 'tail' | 'range' | 'done' = 'tail'
  /** The newest marker seen (tail phase) or found (range phase), -1 if none. */
  private marker = -1
  /** The newest record of each key after `marker` in the tail (R3, R4). */
  private readonly cutShort = new Map<string, StateRecord>()
  /** The next offset when nothing is missing: per phase, and in the tail only after the newest marker. */
  private expectedOffset: number
  /** Whether offsets were missing from the range read: compaction may have removed records from it (R3). */
  private compacted = false
  private tailCompacted = false
  /** Cut-short keys a record up to the newest marker wrote (R3). */
  private readonly written = new Set<string>()

  /**
   * `startOffset`: the offset the restore reads the partition from; `endOffset`: its end when the restore began (the
   * caller reads nothing when the start is at the end).
   */
  constructor(
    private readonly topic: string,
    private readonly startOffset: number,
    private readonly endOffset: number,
  ) {
    this.seekTo = Math.max(startOffset, endOffset - FIRST_TAIL_OFFSETS)
    this.expectedOffset = this.seekTo
  }

  /** Takes one batch of the partition; `nextOffset`: the offset after the batch. */
  read(messages: readonly KafkaMessage[], nextOffset: number): RestoreStep {
    return this.phase === 'tail' ? this.readTail(messages, nextOffset) : this.readRange(messages, nextOffset)
  }

  private readTail(messages: readonly KafkaMessage[], nextOffset: number): RestoreStep {
    for (const message of messages) {
      const offset = Number(message.offset)
      if (offset < this.seekTo || offset >= this.endOffset) continue
      // Gaps count in the tail only after its newest marker (the range phase reads what comes before), and before the
      // first message only when the tail starts at the start offset.
      if (offset > this.expectedOffset && (this.marker >= 0 || this.seekTo === this.startOffset)) this.tailCompacted = true
      this.expectedOffset = Math.max(this.expectedOffset, offset + 1)
      const record = this.recordOf(message)
      if (record === null) continue
      if (record.key === POSITION_KEY) {
        this.marker = offset
        this.cutShort.clear()
        this.tailCompacted = false
        continue
      }
      this.cutShort.set(record.key, record)
    }
    const none = { apply: [], checkpoint: this.startOffset }
    if (nextOffset < this.endOffset) return { ...none, seek: null, done: false }
    if (this.marker < 0 && this.seekTo > this.startOffset) {
      // No marker in this tail: read a tail twice as long.
      this.seekTo = Math.max(this.startOffset, this.endOffset - 2 * (this.endOffset - this.seekTo))
      this.expectedOffset = this.seekTo
      this.cutShort.clear()
      this.tailCompacted = false
      return { ...none, seek: this.seekTo, done: false }
    }
    this.compacted = this.tailCompacted
    if (this.marker < 0) {
      // No marker since the start offset: everything read belongs to commits cut short.
      this.phase = 'done'
      return { ...none, seek: null, done: true }
    }
    this.phase = 'range'
    this.seekTo = this.startOffset
    this.expectedOffset = this.startOffset
    return { ...none, seek: this.startOffset, done: false }
  }

  private readRange(messages: readonly KafkaMessage[], nextOffset: number): RestoreStep {
    const apply: StateRecord[] = []
    for (const message of messages) {
      const offset = Number(message.offset)
      if (offset < this.startOffset || offset > this.marker) continue
      if (offset > this.expectedOffset) this.compacted = true
      this.expectedOffset = Math.max(this.expectedOffset, offset + 1)
      const record = this.recordOf(message)
      if (record === null) continue
      if (this.cutShort.has(record.key)) this.written.add(record.key)
      apply.push(record)
    }
    const done = nextOffset > this.marker
    if (done) this.phase = 'done'
    return { apply, checkpoint: Math.min(nextOffset, this.marker + 1), seek: null, done }
  }

  /** A message's key and value, or null for one that is not a state record or marker (no key, or no commit id). */
  private recordOf(message: KafkaMessage): StateRecord | null {
    const key = message.key?.toString()
    if (key === undefined) return null
    const commit = message.value === null ? message.headers?.[COMMIT_HEADER]?.toString() : commitIdOf(message.value)
    if (commit === null) throw formatError(message.value!, `record ${message.offset} of ${this.topic}`)
    if (commit === undefined) return null
    return { key, value: message.value }
  }

  /**
   * Ends the restore (R3): the records after the newest marker belong to commits cut short by a crash. Returns the
   * keys of those records, which the task's next commit must write again (R4), the ones of their records to apply
   * because the range read was compacted and no record up to the marker wrote their key (the newest record of each
   * key; never a tombstone), and the checkpoint: the end offset when nothing was cut short, else the offset after
   * the newest marker (the start offset when there is none).
   */
  finish(): { cutShort: string[]; apply: StateRecord[]; checkpoint: number } {
    const records = [...this.cutShort.values()]
    const apply = this.compacted ? records.filter((r) => r.value !== null && !this.written.has(r.key)) : []
    const checkpoint = records.length === 0 ? this.endOffset : Math.max(this.startOffset, this.marker + 1)
    this.cutShort.clear()
    this.written.clear()
    return { cutShort: records.map((r) => r.key), apply, checkpoint }
  }
}
