/**
 * Event-time alignment of the source tasks that write to a repartition topic.
 *
 * A windowed operator behind a `keyBy` reads a repartition topic that every source task writes to, and its stream
 * time is the largest event time it has read. A task processes a fetched batch whole and its commit writes the
 * batch's output in one go, so while catching up on a backlog one source partition's records could reach the
 * repartition topic many seconds of event time ahead of another's, and the other's would then be late there. Kafka
 * Streams avoids most of it by processing its tasks a few records at a time in turn; Brook holds a task back instead:
 *
 *   task A  ──records──▶ next record 40 s ─┐     limit of A = min(head of the other tasks that still have records) + slack
 *   task B  ──records──▶ head B = 12 s ────┴─▶  A's next record is past 12 s + slack: A stops before it (its output so
 *                                               far is in the repartition topic), its partition is paused, head A = 40 s
 *   task B  ──records──▶ head B = 39 s ───────▶ A's head (40 s) is within B's head + slack again: A goes on
 *
 * - The head of a running task is the event time of the last record it processed; the head of a held task is the
 *   event time of the record it stopped before (its next one); a task that has just started has an unknown head
 *   (-Infinity) until its first batch, when the cluster said it had records to read.
 * - A task assigned but not yet running (`expect`: still initializing or restoring, or waiting for the tasks assigned
 *   with it to be initialized one after the other) counts as lagging with an unknown head from then on: without it,
 *   the first task of an assignment to run could process a whole backlog before the second had joined. Its news is
 *   that moment, so it holds the others back for at most `maxWaitMs`: a long restore holds up no other partition.
 * - Only tasks that still have records to read (`lagging`: the last batch did not reach the partition's high
 *   watermark, the task was held back mid-batch, or it has a batch in hand not yet processed: `arrived`) hold others
 *   back. A caught-up or quiet partition holds nothing back: live, every batch reaches the high watermark, and a
 *   task is held only by another's batch in hand (a burst whose partitions come in one fetch). A lagging task whose
 *   last news is older than `maxWaitMs` (its records do not come: control records only, a slow fetch) stops holding
 *   others back.
 * - A held task goes on once its head is within its limit, or after `maxWaitMs` held (a record with an event time far
 *   in the future must not hold its partition for good; that task then processes at least its next record): the
 *   held task with the smallest head always may go on, so alignment never stops the pipeline.
 * - A task's new head counts only once the output of the records up to it is in the repartition topic.
 * - What reaches the repartition topic is then out of event-time order by at most `slack` (plus the source's own
 *   disorder); `slack` is half the smallest grace of the windows that read the repartition topic, directly or through
 *   further repartition topics, so the difference stays within their grace.
 *
 * Alignment is among the tasks of one instance: instances do not see each other's tasks, so with several instances
 * a backlog can still skew time by as much as one instance gets ahead of another.
 */
import type { Plan, SubTopology } from '../topology/plan.js'

/** A lagging task's news counts this long; a held task waits at most this long. */
export const ALIGN_MAX_WAIT_MS = 1000
/** The least slack: with a grace of 0 every task would otherwise stop at each record ahead of another's. */
export const MIN_ALIGN_SLACK_MS = 100

interface Member {
  /** Event time (ms) of the last record processed; -Infinity before the first. */
  head: number
  lagging: boolean
  /** Wall-clock ms of the last news (start, batch, hold). */
  updatedMs: number
  /** Wall-clock ms since when the task is held back; null when it runs. */
  heldSinceMs: number | null
  /** Released by the wait rather than by the others catching up: its next record goes through whatever its time. */
  mustGo: boolean
  /** Assigned but not running yet (`expect`): it holds the others back whether or not `active` says it runs. */
  pending: boolean
}

/**
 * How far ahead (ms of event time) a source task of `sub` may get of the others: half the smallest grace of the
 * windowed operators of the sub-topologies reading `sub`'s repartition topics, at least MIN_ALIGN_SLACK_MS; null
 * when `sub` writes no repartition topic or none of its readers has a window (no stream time to skew).
 */
export function alignmentSlackMs(plan: Plan, sub: SubTopology): number | null {
  let grace = Number.POSITIVE_INFINITY
  // The readers of its repartition topics, and theirs in turn: a window two keyBys away sees the disorder too.
  const written = new Set(sub.repartitionTopics)
  const seen = new Set<SubTopology>()
  for (let grew = true; grew; ) {
    grew = false
    for (const reader of plan.subtopologies) {
      if (seen.has(reader) || !written.has(reader.sourceTopic)) continue
      seen.add(reader)
      grew = true
      for (const topic of reader.repartitionTopics) written.add(topic)
      for (const node of reader.stateful) if ('window' in node && node.window) grace = Math.min(grace, node.window.graceMs)
    }
  }
  return grace === Number.POSITIVE_INFINITY ? null : Math.max(MIN_ALIGN_SLACK_MS, grace / 2)
}

/**
 * The alignment of one sub-topology's source tasks on this instance, keyed by task (`K`). `active(k)` says whether a
 * task runs now: a suspended or restoring task holds nothing back. Not thread-safe beyond Node's single thread; the
 * caller pauses and resumes partitions as `hold` and `released` say. A task `expect`ed holds back until it joins,
 * running or not.
 */
export class EventTimeAlignment<K> {
  private readonly members = new Map<K, Member>()

  constructor(
    readonly slackMs: number,
    private readonly active: (k: K) => boolean,
    private readonly maxWaitMs = ALIGN_MAX_WAIT_MS,
  ) {}

  /**
   * A task is assigned, or initialized again: until it `join`s, it holds the others back as a lagging task whose head
   * is unknown, for at most `maxWaitMs` from `now`.
   */
  expect(k: K, now: number): void {
    this.members.set(k, { head: Number.NEGATIVE_INFINITY, lagging: true, updatedMs: now, heldSinceMs: null, mustGo: false, pending: true })
  }

  /** A task (re)starts: its head is unknown; `lagging` is whether its partition has records beyond its position. */
  join(k: K, lagging: boolean, now: number): void {
    this.members.set(k, { head: Number.NEGATIVE_INFINITY, lagging, updatedMs: now, heldSinceMs: null, mustGo: false, pending: false })
  }

  leave(k: K): void {
    this.members.delete(k)
  }

  /** Whether `k` is held back (its partition paused by the caller). */
  held(k: K): boolean {
    return this.members.get(k)?.heldSinceMs != null
  }

  /**
   * The event time (ms) past which `k` stops: the smallest head among the other active tasks that hold back, plus the
   * slack; +Infinity when none does.
   */
  limit(k: K, now: number): number {
    let min = Number.POSITIVE_INFINITY
    for (const [other, m] of this.members) {
      if (other === k || !(m.pending || this.active(other))) continue
      const holdsBack = m.heldSinceMs !== null || (m.lagging && now - m.updatedMs < this.maxWaitMs)
      if (holdsBack && m.head < min) min = m.head
    }
    return min + this.slackMs
  }

  /**
   * Whether `k`'s next record goes through whatever its event time (released by the wait); asking clears it.
   */
  takeMustGo(k: K): boolean {
    const m = this.members.get(k)
    if (!m?.mustGo) return false
    m.mustGo = false
    return true
  }

  /**
   * A batch of `k` was handed over and waits to be processed: until it is (`processed`), `k` holds the others back as a
   * lagging task whose head is `firstTime`, the event time of the batch's first record (the earliest it will write
   * next), or its head so far when that cannot be read (null). So a burst that reaches two caught-up partitions at
   * once is taken in turns: without it, the task whose batch came first processed all of it while the other, not
   * lagging before its batch, held nothing back, and the other's records were late behind the keyBy. A held task
   * takes no batch (its partition is paused).
   */
  arrived(k: K, firstTime: number | null, now: number): void {
    const m = this.members.get(k)
    if (!m || m.pending || m.heldSinceMs !== null) return
    if (firstTime !== null) m.head = firstTime
    m.lagging = true
    m.updatedMs = now
  }

  /**
   * After a batch of `k`, once its output is written: `head` is the event time of the record it stopped before when
   * it is held (`hold`: the caller pauses its partition), else of its last record processed; `lagging` whether
   * records remain beyond what it processed.
   */
  processed(k: K, head: number, lagging: boolean, hold: boolean, now: number): void {
    const m = this.members.get(k)
    if (!m) return
    m.head = head
    m.lagging = lagging || hold
    m.updatedMs = now
    m.heldSinceMs = hold ? now : null
  }

  /** The held tasks that may go on now (their head within their limit, or held for maxWaitMs); they count as running again. */
  released(now: number): K[] {
    const going: K[] = []
    for (const [k, m] of this.members) {
      if (m.heldSinceMs === null || !this.active(k)) continue
      if (m.head <= this.limit(k, now)) going.push(k)
      else if (now - m.heldSinceMs >= this.maxWaitMs) {
        m.mustGo = true
        going.push(k)
      }
    }
    for (const k of going) {
      const m = this.members.get(k)!
      m.heldSinceMs = null
      m.updatedMs = now
    }
    return going
  }
}
