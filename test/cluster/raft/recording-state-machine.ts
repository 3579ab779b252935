/**
 * The state machine of the simulated cluster: it keeps every record it applied (offset and value), so its state is
 * its history, and reports each apply and restore to an observer (the checker). Its snapshot is that history as
 * JSON, large enough to take several FetchSnapshot chunks.
 */
import type { CommittedBatch, LeaderAndEpoch, RaftStateMachine } from '../../../broker/cluster/raft/node.js'
import type { RaftSnapshot } from '../../../storage/raft-store.js'

export interface AppliedRecord {
  readonly offset: bigint
  readonly value: string
}

export interface StateMachineObserver {
  applied(records: readonly AppliedRecord[], from: RecordingStateMachine): void
  restored(records: readonly AppliedRecord[], from: RecordingStateMachine): void
}

export class RecordingStateMachine implements RaftStateMachine {
  records: AppliedRecord[] = []
  restores = 0
  readonly leaderChanges: LeaderAndEpoch[] = []

  constructor(
    readonly nodeId: number,
    private readonly observer: StateMachineObserver,
  ) {}

  apply(batch: CommittedBatch): void {
    const last = this.records.at(-1)
    if (last && batch.baseOffset <= last.offset) {
      throw new Error(`node ${this.nodeId} applied offset ${batch.baseOffset} after ${last.offset}`)
    }
    const applied = batch.records.map((record, i) => ({
      offset: batch.baseOffset + BigInt(i),
      value: record.toString(),
    }))
    this.records.push(...applied)
    this.observer.applied(applied, this)
  }

  snapshot(): Buffer {
    return Buffer.from(JSON.stringify(this.records.map((record) => [record.offset.toString(), record.value])))
  }

  restore(snapshot: RaftSnapshot): void {
    const parsed = JSON.parse(snapshot.data.toString()) as [string, string][]
    this.records = parsed.map(([offset, value]) => ({ offset: BigInt(offset), value }))
    this.restores++
    this.observer.restored(this.records, this)
  }

  leaderChange(leader: LeaderAndEpoch): void {
    this.leaderChanges.push(leader)
  }

  has(value: string): boolean {
    return this.records.some((record) => record.value === value)
  }
}
