/**
 * The changelog format, and the reader a restore uses. A commit of a task writes, to the task's changelog
 * partition, its changed entries (key = `<operator>\x01<group>`, value = msgpack bytes, null deletes) and then one
 * marker (key `\x00position`, value = msgpack of the task position plus `commit` and `records`), every record
 * carrying the header `brook.commit` = the commit's random id:
 *
 *   ... [e1 c=7f3a] [e2 c=7f3a] ... [eN c=7f3a] [position c=7f3a records=N] [e1 c=91bc] ...
 *
 * A commit counts only once its marker is in the log after all N of its records: a restore applies a commit's
 * records when its marker arrives, and forgets records whose marker never comes (a process killed between the
 * two). So the state a restore builds is always the state of a whole commit, and the position in the marker says
 * where its input resumes. The records of a commit may span several produce requests (kafkajs groups a send's
 * messages in time quadratic in their number, so sends are kept small); the marker goes last, alone.
 *
 * Until the next commit of the task rewrites them, the forgotten records are the latest records of their keys;
 * Kafka never compacts the active segment they sit in, so the values they would shadow are still there.
 */
import type { KafkaMessage, Message } from 'kafkajs'
import { randomBytes } from 'node:crypto'
import { decodeValue, encodeValue, POSITION_KEY, type StateRecord, type TaskPosition } from '../state/task-store.js'

export const COMMIT_HEADER = 'brook.commit'

/** The marker's value: the task position, and which commit it closes with how many records. */
interface Marker extends TaskPosition {
  commit: string
  records: number
}

/** The messages of one commit: its records (to send in any number of requests, in order) and then its marker. */
export function commitMessages(changes: readonly StateRecord[], position: TaskPosition, partition: number): { records: Message[]; marker: Message } {
  const headers = { [COMMIT_HEADER]: randomBytes(8).toString('hex') }
  const marker: Marker = { ...position, commit: headers[COMMIT_HEADER], records: changes.length }
  return {
    records: changes.map((r) => ({ key: r.key, value: r.value, partition, headers })),
    marker: { key: POSITION_KEY, value: encodeValue(marker), partition, headers },
  }
}

/** Reads a changelog partition in offset order during a restore. */
export class RestoreReader {
  private readonly pending = new Map<string, { records: StateRecord[]; firstOffset: number }>()

  /**
   * The records of the commits whose marker is among `messages` (marker included, so the position is stored),
   * and the checkpoint the store may record: nothing past a record of a commit still waiting for its marker.
   */
  read(messages: readonly KafkaMessage[], nextOffset: number): { apply: StateRecord[]; checkpoint: number } {
    const apply: StateRecord[] = []
    for (const message of messages) {
      const commit = message.headers?.[COMMIT_HEADER]?.toString()
      const key = message.key?.toString()
      if (commit === undefined || key === undefined) continue
      if (key === POSITION_KEY) {
        const marker = decodeValue(message.value!) as Marker
        const pending = this.pending.get(commit)
        this.pending.delete(commit)
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
