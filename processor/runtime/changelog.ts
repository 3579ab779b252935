/**
 * The changelog format, and the reader a restore uses. A commit of a task writes, to the task's changelog
 * partition, its changed groups (key = `\x01<group>`, value = the group's state record, null deletes) and then one
 * marker (key `\x00position`, value = the task position plus how many records the commit wrote), all tagged with the
 * commit's random id — in the value's first bytes (state/task-store.ts), or, for a tombstone, which has no value,
 * in the header `brook.commit`:
 *
 *   ... [g1 c=7f3a] [g2 c=7f3a] ... [gN c=7f3a] [position c=7f3a records=N] [g1 c=91bc] ...
 *
 * A commit counts only once its marker is in the log after all N of its records: a restore applies a commit's
 * records when its marker arrives, and forgets records whose marker never comes (a process killed between the
 * two). So the state a restore builds is always the state of a whole commit, and the position in the marker says
 * where its input resumes. The records of a commit may span several produce requests; the marker goes last, alone.
 *
 * Compaction keeps only the newest marker (they share one key), so a record an earlier commit wrote last for its
 * group is left without its marker:
 *
 *   written:    [a c=7f3a] [position c=7f3a] [b c=91bc] [position c=91bc]
 *   compacted:  [a c=7f3a]                   [b c=91bc] [position c=91bc]
 *
 * In exactly_once a commit is a transaction and a restore reads read_committed, so every record it reads belongs to
 * a commit that completed: a marker also completes the records of earlier commits still waiting when it arrives.
 * In at_least_once such records may be those of a commit cut short by a crash, which nothing tells from records whose
 * marker compaction removed; they are left out, so a task restored there from a compacted changelog (not only from
 * its own state directory) still loses the groups that no commit after the compacted markers rewrote. On Kafka the
 * active segment is never compacted, which puts that off until it rolls (segment.ms, 7 days); Brook compacts all
 * but the last batch.
 * (The id sits in the value rather than in a header because kafkajs encodes each header of each record into a
 * buffer of its own: a header on every state record cost about a third of producing it.)
 *
 * Until the next commit of the task rewrites them, the forgotten records are the latest records of their keys;
 * Kafka never compacts the active segment they sit in, so the values they would shadow are still there.
 */
import type { KafkaMessage, Message } from 'kafkajs'
import { commitIdOf, decodeMarker, formatError, POSITION_KEY, type StateRecord } from '../state/task-store.js'

export const COMMIT_HEADER = 'brook.commit'

/** The messages of one commit: its records (to send in any number of requests, in order) and then its marker. */
export function commitMessages(commit: { changes: readonly StateRecord[]; marker: StateRecord; commit: string }, partition: number): { records: Message[]; marker: Message } {
  const tombstoneHeaders = { [COMMIT_HEADER]: commit.commit }
  return {
    records: commit.changes.map((r) => (r.value === null ? { key: r.key, value: null, partition, headers: tombstoneHeaders } : { key: r.key, value: r.value, partition })),
    marker: { key: commit.marker.key, value: commit.marker.value, partition },
  }
}

/** Reads a changelog partition in offset order during a restore. */
export class RestoreReader {
  private readonly pending = new Map<string, { records: StateRecord[]; firstOffset: number }>()

  /**
   * `transactional`: the changelog is written in transactions (exactly_once) and read read_committed, so every
   * record read belongs to a commit that completed, whether its marker is still there or not.
   */
  constructor(
    private readonly topic: string,
    private readonly options: { transactional: boolean },
  ) {}

  /**
   * The records of the commits whose marker is among `messages` (marker included, so the position is stored),
   * and the checkpoint the store may record: nothing past a record of a commit still waiting for its marker.
   */
  read(messages: readonly KafkaMessage[], nextOffset: number): { apply: StateRecord[]; checkpoint: number } {
    const apply: StateRecord[] = []
    for (const message of messages) {
      const key = message.key?.toString()
      if (key === undefined) continue
      const commit = message.value === null ? message.headers?.[COMMIT_HEADER]?.toString() : commitIdOf(message.value)
      if (commit === null) throw formatError(message.value!, `record ${message.offset} of ${this.topic}`)
      if (commit === undefined) continue
      if (key === POSITION_KEY) {
        const marker = decodeMarker(message.value!)
        const pending = this.pending.get(commit)
        this.pending.delete(commit)
        // In transactions, records of earlier commits still waiting lost their markers to compaction (every marker
        // has one key, so only the newest stays). Dropped, a task restored from the changelog forgot every group no
        // later commit rewrote, and counted it from zero again.
        if (this.options.transactional) {
          for (const earlier of this.pending.values()) apply.push(...earlier.records)
          this.pending.clear()
        }
        if ((pending?.records.length ?? 0) !== marker.records) continue
        if (pending) apply.push(...pending.records)
        apply.push({ key, value: message.value })
        continue
      }
      let pending = this.pending.get(commit)
      if (!pending) this.pending.set(commit, (pending = { records: [], firstOffset: Number(message.offset) }))
      pending.records.push({ key, value: message.value })
    }
    let checkpoint = nextOffset
    for (const { firstOffset } of this.pending.values()) checkpoint = Math.min(checkpoint, firstOffset)
    return { apply, checkpoint }
  }

  /** Records still without a marker at the end of the restore belong to commits that never completed. */
  get incomplete(): number {
    let count = 0
    for (const { records } of this.pending.values()) count += records.length
    return count
  }
}
