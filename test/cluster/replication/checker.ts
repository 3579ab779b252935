/**
 * Checks replicas of one partition against replication's safety properties, after every step of a run:
 *
 * - committed history: every replica's log below its HW is a prefix of one history (offset -> epoch and value), so
 *   replicas agree up to each one's HW and nothing below a HW ever changes;
 * - the high watermark never decreases at a replica (Kafka promises it within a leader epoch; as every change of it
 *   is persisted here, it holds across epochs and restarts too), and at a leader never exceeds the LEO of a member
 *   of its maximal ISR or of the controller's ISR of its epoch, neither as the leader recorded it (once known in
 *   its epoch) nor as that member's log really is (agreeing with the leader's up to the HW);
 * - one leader per leader epoch;
 * - every acks=all acknowledged record is at its offset in the log of every leader of that epoch or a later one;
 * - a consumer reads nothing at or above the HW it is told, and only committed history below it.
 *
 * A violation throws a ReplicationViolation saying what and where.
 */
import type { ReplicaBatch } from '../../../broker/cluster/replication/log.js'
import type { PartitionState } from '../../../broker/cluster/replication/messages.js'
import type { PartitionReplica } from '../../../broker/cluster/replication/partition.js'

export class ReplicationViolation extends Error {
  override readonly name = 'ReplicationViolation'
}

interface Acknowledged {
  readonly offset: number
  readonly value: string
  /** The leader epoch in which it was acknowledged. */
  readonly epoch: number
}

/** A replica as the checker sees it: live, or down with what it persisted. */
export interface ReplicaView {
  readonly id: number
  readonly replica: PartitionReplica | null
  readonly batches: readonly ReplicaBatch[]
}

/** Each offset of a log as `e<epoch>:<value>`. */
export function logEntries(batches: readonly ReplicaBatch[]): string[] {
  return batches.flatMap((batch) => batch.records.map((record) => `e${batch.leaderEpoch}:${record.toString()}`))
}

/** The entry at `offset` as `e<epoch>:<value>`, or undefined past the log end (a binary search over the batches). */
export function entryAt(batches: readonly ReplicaBatch[], offset: number): string | undefined {
  let low = 0
  let high = batches.length - 1
  while (low <= high) {
    const middle = (low + high) >> 1
    const batch = batches[middle]!
    const base = Number(batch.baseOffset)
    if (offset < base) high = middle - 1
    else if (offset >= base + batch.records.length) low = middle + 1
    else return `e${batch.leaderEpoch}:${batch.records[offset - base]!.toString()}`
  }
  return undefined
}

export class ReplicationChecker {
  /** The committed history: entry i is offset i. */
  readonly history: string[] = []
  readonly acknowledged: Acknowledged[] = []
  private readonly leaders = new Map<number, number>()
  private readonly highWatermarks = new Map<number, { epoch: number; hw: bigint }>()
  /** Per leader and epoch, how many acknowledged records its log was checked for. */
  private readonly ackChecked = new Map<string, number>()
  /** Per replica, the offsets below which its log was compared with the history. */
  private readonly comparedUpTo = new Map<number, number>()

  /**
   * Checks one replica after a step, with the other replicas' logs for the leader's ISR bound. Comparing whole
   * logs costs their length, so a step compares what lies above the offsets already compared and `full` (every
   * so many steps, and at the end) compares everything again.
   */
  observe(
    view: ReplicaView,
    all: ReadonlyMap<number, ReplicaView>,
    options: { full: boolean; controller: PartitionState },
  ): void {
    const replica = view.replica
    if (!replica) return
    const entries = replica.batches()
    const hw = replica.highWatermark
    this.extendHistory(view.id, entries, hw, options.full ? 0 : (this.comparedUpTo.get(view.id) ?? 0))
    this.comparedUpTo.set(view.id, Number(hw))
    const epoch = replica.leaderEpoch
    const previous = this.highWatermarks.get(view.id)
    if (previous && hw < previous.hw) {
      throw new ReplicationViolation(
        `replica ${view.id}: HW went from ${previous.hw} (leader epoch ${previous.epoch}) ` +
          `to ${hw} (leader epoch ${epoch})`,
      )
    }
    this.highWatermarks.set(view.id, { epoch, hw })
    if (replica.role !== 'Leader') return
    const leader = this.leaders.get(epoch)
    if (leader !== undefined && leader !== view.id)
      throw new ReplicationViolation(`two leaders in leader epoch ${epoch}: ${leader} and ${view.id}`)
    this.leaders.set(epoch, view.id)
    // The leader's own maximal ISR, and the controller's ISR while it is of the same epoch: an ISR member the
    // controller counts (one an AlterPartition added) that the leader's HW ignored would be a hole.
    const isr = new Set(replica.maximalIsr)
    if (options.controller.leaderEpoch === epoch) for (const member of options.controller.isr) isr.add(member)
    for (const member of isr) {
      if (member === view.id) continue
      // Unknown (-1) until the member fetches in this leader's epoch; the HW does not move meanwhile.
      const recorded = replica.followerState(member)?.logEndOffset ?? -1n
      if (recorded >= 0n && recorded < hw)
        throw new ReplicationViolation(
          `leader ${view.id} (epoch ${epoch}): HW ${hw} above ISR member ${member}'s LEO ${recorded}`,
        )
      const other = all.get(member)
      if (!other || !options.full) continue
      const memberBatches = other.replica ? other.replica.batches() : other.batches
      for (let offset = 0; offset < Number(hw); offset++) {
        const held = entryAt(memberBatches, offset)
        if (held !== entryAt(entries, offset)) {
          throw new ReplicationViolation(
            `leader ${view.id} (epoch ${epoch}) has HW ${hw}, but ISR member ${member} holds ` +
              `${held ?? 'nothing'} at ${offset} where the leader holds ${entryAt(entries, offset)}`,
          )
        }
      }
    }
    this.checkAcknowledged(view.id, epoch, entries)
  }

  /**
   * An acks=all produce was acknowledged: its records sit at `baseOffset` onwards in a batch of `batchEpoch`,
   * acknowledged by the leader of `ackEpoch` (a later one when the leader was re-elected meanwhile).
   */
  acknowledge(baseOffset: bigint, values: readonly string[], batchEpoch: number, ackEpoch: number): void {
    values.forEach((value, i) => {
      const offset = Number(baseOffset) + i
      const entry = `e${batchEpoch}:${value}`
      const committed = this.history[offset]
      if (committed !== undefined && committed !== entry)
        throw new ReplicationViolation(`acknowledged ${entry} at ${offset}, but ${committed} is committed there`)
      this.acknowledged.push({ offset, value: entry, epoch: ackEpoch })
    })
  }

  /** A consumer's fetch returned `batches` with `highWatermark`. */
  consumed(replicaId: number, batches: readonly ReplicaBatch[], highWatermark: bigint): void {
    for (const batch of batches) {
      batch.records.forEach((record, i) => {
        const offset = Number(batch.baseOffset) + i
        const entry = `e${batch.leaderEpoch}:${record.toString()}`
        if (BigInt(offset) >= highWatermark)
          throw new ReplicationViolation(`a consumer read ${entry} at ${offset} from ${replicaId}, at or above its HW ${highWatermark}`)
        if (this.history[offset] !== entry) {
          throw new ReplicationViolation(
            `a consumer read ${entry} at ${offset} from ${replicaId}, but ${this.history[offset] ?? 'nothing'} is committed there`,
          )
        }
      })
    }
  }

  /** Checks a log (of the leader at the end of a run, say) holds every acknowledged record. */
  checkHoldsAcknowledged(replicaId: number, batches: readonly ReplicaBatch[]): void {
    for (const ack of this.acknowledged) this.checkAck(replicaId, batches, ack)
  }

  private checkAcknowledged(replicaId: number, epoch: number, entries: readonly ReplicaBatch[]): void {
    const key = `${replicaId}@${epoch}`
    let checked = this.ackChecked.get(key) ?? 0
    for (; checked < this.acknowledged.length; checked++) {
      const ack = this.acknowledged[checked]!
      if (ack.epoch <= epoch) this.checkAck(replicaId, entries, ack)
    }
    this.ackChecked.set(key, checked)
  }

  private checkAck(replicaId: number, entries: readonly ReplicaBatch[], ack: Acknowledged): void {
    const held = entryAt(entries, ack.offset)
    if (held !== ack.value) {
      throw new ReplicationViolation(
        `acknowledged record ${ack.value} at offset ${ack.offset} (acks=all, epoch ${ack.epoch}) is not in leader ` +
          `${replicaId}'s log: it holds ${held ?? 'nothing'} there`,
      )
    }
  }

  private extendHistory(replicaId: number, entries: readonly ReplicaBatch[], hw: bigint, from: number): void {
    const end = Number(hw)
    for (let offset = Math.min(from, end); offset < end; offset++) {
      const held = entryAt(entries, offset)
      if (held === undefined) throw new ReplicationViolation(`replica ${replicaId}: HW ${hw} above its log end ${offset}`)
      const committed = this.history[offset]
      if (committed === undefined) this.history.push(held)
      else if (committed !== held) {
        throw new ReplicationViolation(
          `replica ${replicaId} holds ${held} at ${offset} below its HW ${hw}, but ${committed} was committed there`,
        )
      }
    }
  }
}
