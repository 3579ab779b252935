/**
 * What a member of a Raft quorum persists, and the interface its stores implement: `LevelRaftStore`
 * (raft-level-store.ts, a node's database) and `MemoryRaftStore` (raft-memory-store.ts, the deterministic simulation).
 * The Raft core (broker/cluster/raft/) produces the writes; a store only keeps them.
 *
 *   election state   { epoch, leaderId, votedId }       Kafka's quorum-state file (QuorumStateData)
 *   log              batches from logStartOffset on      Kafka's __cluster_metadata-0 segments
 *   latest snapshot  { endOffset, epoch, data }          Kafka's <endOffset>-<epoch>.checkpoint
 *
 *        snapshot (state machine through endOffset - 1)    batches
 *   |=================================================|[b0  ][b1][b2      ]...|
 *   0                                        logStartOffset = snapshot.endOffset      logEndOffset
 *
 * Writes come as an ordered list (`RaftWrite[]`, one call of `write`) that a store applies atomically: after a crash
 * either the whole list or none of it is there. The core sends no message that depends on a write before that write
 * is durable, so what a member promised (a vote, a fetch offset) survives its crash.
 *
 * Invariants of a loaded state:
 * - batches are contiguous: each starts where the previous one ends, the first at snapshot.endOffset (0 without one);
 * - epochs never decrease along the log, and the first batch's epoch is >= the snapshot's epoch.
 */

/** Kafka's QuorumStateData: the epoch, the leader of that epoch if known, the candidate voted for in it if any. */
export interface ElectionState {
  readonly epoch: number
  readonly leaderId: number | null
  readonly votedId: number | null
}

/** Kafka's LeaderChangeMessage: the control record a leader appends first in its epoch. */
export interface LeaderChangeRecord {
  readonly leaderId: number
  readonly voters: readonly number[]
  readonly grantingVoters: readonly number[]
}

/**
 * One atomically appended batch of the replicated log. A data batch holds opaque records, one offset each; a
 * leader-change batch (a control batch on Kafka's wire) holds the one LeaderChangeRecord at one offset.
 */
export type RaftBatch =
  | { readonly type: 'data'; readonly baseOffset: bigint; readonly epoch: number; readonly records: readonly Buffer[] }
  | {
      readonly type: 'leaderChange'
      readonly baseOffset: bigint
      readonly epoch: number
      readonly leaderChange: LeaderChangeRecord
    }

/** Kafka's SnapshotId: the snapshot holds the state after every record below endOffset; epoch is the last one's. */
export interface RaftSnapshotId {
  readonly endOffset: bigint
  readonly epoch: number
}

export interface RaftSnapshot extends RaftSnapshotId {
  /** The state machine's bytes (opaque to Raft). */
  readonly data: Buffer
}

export type RaftWrite =
  | { readonly type: 'election'; readonly election: ElectionState }
  | { readonly type: 'append'; readonly batches: readonly RaftBatch[] }
  /** Removes every batch that starts at or after `offset` (always a batch boundary). */
  | { readonly type: 'truncate'; readonly offset: bigint }
  /** Replaces the latest snapshot and removes every batch below its end offset. */
  | { readonly type: 'snapshot'; readonly snapshot: RaftSnapshot }

export interface RaftPersistentState {
  readonly election: ElectionState | null
  readonly snapshot: RaftSnapshot | null
  /** Contiguous from the snapshot's end offset (or 0). */
  readonly batches: readonly RaftBatch[]
}

/**
 * Where a quorum member keeps its state. `load` once at start; then `write` calls, never two at once, each applied
 * atomically and durable when its promise resolves. Errors reject the promise; the member must then stop (it cannot
 * know what survived).
 */
export interface RaftStore {
  load(): Promise<RaftPersistentState>
  write(writes: readonly RaftWrite[]): Promise<void>
}

/** The number of offsets a batch takes: one per record, one for a leader-change batch. */
export function batchRecordCount(batch: RaftBatch): number {
  return batch.type === 'data' ? batch.records.length : 1
}

/** The offset right after the batch. */
export function batchEndOffset(batch: RaftBatch): bigint {
  return batch.baseOffset + BigInt(batchRecordCount(batch))
}

/**
 * Checks a loaded state against the invariants above; throws an Error naming the first break (a store that holds
 * such a state is corrupt, and a member must not start on it).
 */
export function checkPersistentState(state: RaftPersistentState): void {
  let expected = state.snapshot?.endOffset ?? 0n
  let epoch = state.snapshot?.epoch ?? -1
  for (const batch of state.batches) {
    if (batch.baseOffset !== expected) {
      throw new Error(`raft log is not contiguous: a batch starts at ${batch.baseOffset}, expected ${expected}`)
    }
    if (batch.epoch < epoch)
      throw new Error(`raft log epoch goes back from ${epoch} to ${batch.epoch} at ${batch.baseOffset}`)
    if (batchRecordCount(batch) === 0) throw new Error(`raft log holds an empty batch at ${batch.baseOffset}`)
    expected = batchEndOffset(batch)
    epoch = batch.epoch
  }
}
