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
 * A restore reads the partition in offset order and keeps the records of each commit aside until a marker comes:
 * - R1. A marker applies the records still kept aside, those of earlier commits first, then its own, then itself
 *   (c, with the marker at offset 6). An earlier commit's records are those of a commit that completed, whose marker
 *   was compacted away, or those of a commit cut short by a crash in an earlier incarnation of the task, which that
 *   incarnation's successor repaired (R4): each of their keys was written again by a later commit, before this
 *   marker, so applying them in offset order ends at that later value.
 * - R2. The count in a marker is not checked (pos 91bc says 2, one is left): the marker is written after its records
 *   are acknowledged, so fewer of them before it can only mean that compaction removed some for newer records of
 *   their keys. Skipping such a marker lost its position and the records of its commit that were still there.
 * - R3. Records kept aside at the end of the restore come after the newest marker, which compaction never removes:
 *   they belong to commits cut short by a crash. They are dropped, and the task reprocesses its input from the
 *   marker's position: exact. Except where the range read was compacted (a message's offset past the one after the
 *   previous message, or the first one past the start offset; transaction markers and aborted records of an
 *   exactly_once run, which read_committed skips, leave such gaps too and count as compaction): there a cut-short
 *   record may have removed the committed record of its key (b at offset 5). For each key of a cut-short record
 *   that no complete commit of this read wrote, the cut-short record's value is applied instead: the input it
 *   reflects is reprocessed and counts twice, at least once rather than lost. A cut-short tombstone is not applied
 *   (the store keeps what it has). That is the one remaining imprecision: a group whose deletion a crash cut short,
 *   and whose committed record that tombstone removed, is left as the store had it (absent from an empty store).
 * - R4. The task's first commit after a restore that found cut-short records writes each of their keys again, with
 *   the value the restore settled on (a tombstone for a group the store does not hold), so that every cut-short
 *   record is superseded before the next marker and R1 never applies one on its own. Until a commit after them
 *   reaches LevelDB, the local store's checkpoint stays before the first cut-short record: a task started again
 *   before its repair commit reads them again and repairs them then.
 *
 * Why "no complete commit of this read wrote the key" is enough in R3, though compaction may also remove records of
 * a key a complete commit wrote: a log cleaner compacts a prefix of the log and removes a record when a newer record
 * of its key is in the range it mapped, so it removes every record of the key older than the newest it mapped, all at
 * once. If a committed record of b survived in the range read, no committed record of b newer than it was removed; if
 * none survived, the newest committed value may have gone for the cut-short record, the only record of b left.
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

/** Reads a changelog partition in offset order during a restore (the rules R1-R4 above). */
export class RestoreReader {
  /** Records read since the last marker, by commit, in the order the commits began. */
  private readonly pending = new Map<string, { records: StateRecord[]; firstOffset: number }>()
  /**
   * The keys of the records complete commits wrote in the range read (R3): a string per group the range holds,
   * until the end of the restore.
   */
  private readonly applied = new Set<string>()
  /** The offset the next message has when nothing before it is missing from the range read. */
  private expectedOffset: number
  /** Whether offsets were missing from the range read: compaction may have removed records from it (R3). */
  private compacted = false

  /** `startOffset`: the offset the restore reads the partition from. */
  constructor(
    private readonly topic: string,
    startOffset: number,
  ) {
    this.expectedOffset = startOffset
  }

  /**
   * The records of the commits whose marker is among `messages` (marker included, so the position is stored),
   * and the checkpoint the store may record: nothing past a record of a commit still waiting for its marker.
   */
  read(messages: readonly KafkaMessage[], nextOffset: number): { apply: StateRecord[]; checkpoint: number } {
    const apply: StateRecord[] = []
    for (const message of messages) {
      const offset = Number(message.offset)
      if (offset > this.expectedOffset) this.compacted = true
      this.expectedOffset = Math.max(this.expectedOffset, offset + 1)
      const key = message.key?.toString()
      if (key === undefined) continue
      const commit = message.value === null ? message.headers?.[COMMIT_HEADER]?.toString() : commitIdOf(message.value)
      if (commit === null) throw formatError(message.value!, `record ${message.offset} of ${this.topic}`)
      if (commit === undefined) continue
      if (key === POSITION_KEY) {
        // R1, R2: earlier commits' records, then this commit's (whatever their number), then the marker.
        const own = this.pending.get(commit)
        this.pending.delete(commit)
        for (const earlier of this.pending.values()) this.complete(earlier.records, apply)
        this.pending.clear()
        if (own) this.complete(own.records, apply)
        apply.push({ key, value: message.value })
        continue
      }
      let pending = this.pending.get(commit)
      if (!pending) this.pending.set(commit, (pending = { records: [], firstOffset: offset }))
      pending.records.push({ key, value: message.value })
    }
    let checkpoint = nextOffset
    for (const { firstOffset } of this.pending.values()) checkpoint = Math.min(checkpoint, firstOffset)
    return { apply, checkpoint }
  }

  /** Adds the records of a complete commit to `apply`, noting their keys (R3). */
  private complete(records: readonly StateRecord[], apply: StateRecord[]): void {
    for (const record of records) {
      this.applied.add(record.key)
      apply.push(record)
    }
  }

  /**
   * Ends the restore (R3): the records still waiting for a marker belong to commits cut short by a crash. Returns
   * the keys of those records, which the task's next commit must write again (R4), and the ones of their records to
   * apply because the range read was compacted and no complete commit of it wrote their key (the newest record of
   * each key; never a tombstone).
   */
  finish(): { cutShort: string[]; apply: StateRecord[] } {
    const newest = new Map<string, StateRecord>()
    for (const { records } of this.pending.values()) for (const record of records) newest.set(record.key, record)
    this.pending.clear()
    const apply = this.compacted ? [...newest.values()].filter((r) => r.value !== null && !this.applied.has(r.key)) : []
    this.applied.clear()
    return { cutShort: [...newest.keys()], apply }
  }
}
