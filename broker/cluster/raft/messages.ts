/**
 * The messages quorum members exchange, shaped after Kafka's KRaft APIs so that a transport maps each one onto its
 * wire message field by field (names are the lowerCamel form of the spec's):
 *
 *   VoteRequest / VoteResponse                          Vote (52)              KIP-595; `preVote` is v2's PreVote
 *                                                                              (KIP-996), which v0-1 lack
 *   BeginQuorumEpochRequest / BeginQuorumEpochResponse  BeginQuorumEpoch (53)  a new leader announces itself
 *   EndQuorumEpochRequest / EndQuorumEpochResponse      EndQuorumEpoch (54)    a leader resigns (v0's successors)
 *   FetchRequest / FetchResponse                        Fetch (1), v13+        followers pull the log (KIP-595)
 *   FetchSnapshotRequest / FetchSnapshotResponse        FetchSnapshot (59)     followers pull a snapshot (KIP-630)
 *
 * Every API addresses the one partition of the metadata log (`__cluster_metadata`, partition 0), so the fields are
 * flat here: a transport wraps them in Topics[0].Partitions[0], puts `errorCode` at the partition level (at the top
 * level for INCONSISTENT_CLUSTER_ID) and encodes `records` as record batches, a leader-change batch as a control
 * batch holding a LeaderChangeMessage. `-1` means "unknown" for ids, epochs and offsets, as on the wire.
 *
 * A response carries the correlation id of its request in the envelope. Messages are immutable values: a receiver
 * never changes one (the simulation may deliver one object twice).
 */
import type { RaftBatch, RaftSnapshotId } from '../../../storage/raft-store.js'

/** The leader a responder knows: Kafka's LeaderIdAndEpoch (CurrentLeader). */
export interface LeaderIdAndEpoch {
  readonly leaderId: number
  readonly leaderEpoch: number
}

export interface VoteRequest {
  readonly type: 'VoteRequest'
  readonly clusterId: string
  /** The receiver's id (v1+). */
  readonly voterId: number
  /** For a vote: the candidate's new epoch. For a pre-vote: the prospective's current epoch (KIP-996). */
  readonly candidateEpoch: number
  readonly candidateId: number
  /** The epoch of the candidate's last log entry (its snapshot's without entries; -1 with neither). */
  readonly lastOffsetEpoch: number
  /** The candidate's log end offset. */
  readonly lastOffset: bigint
  readonly preVote: boolean
}

export interface VoteResponse {
  readonly type: 'VoteResponse'
  readonly errorCode: number
  readonly leaderId: number
  readonly leaderEpoch: number
  readonly voteGranted: boolean
}

export interface BeginQuorumEpochRequest {
  readonly type: 'BeginQuorumEpochRequest'
  readonly clusterId: string
  readonly voterId: number
  readonly leaderId: number
  readonly leaderEpoch: number
}

export interface BeginQuorumEpochResponse {
  readonly type: 'BeginQuorumEpochResponse'
  readonly errorCode: number
  readonly leaderId: number
  readonly leaderEpoch: number
}

export interface EndQuorumEpochRequest {
  readonly type: 'EndQuorumEpochRequest'
  readonly clusterId: string
  readonly leaderId: number
  readonly leaderEpoch: number
  /** Voters best placed to lead next, most caught-up first. */
  readonly preferredSuccessors: readonly number[]
}

export interface EndQuorumEpochResponse {
  readonly type: 'EndQuorumEpochResponse'
  readonly errorCode: number
  readonly leaderId: number
  readonly leaderEpoch: number
}

export interface FetchRequest {
  readonly type: 'FetchRequest'
  readonly clusterId: string
  /** ReplicaState.ReplicaId (v15+): the fetching member. */
  readonly replicaId: number
  readonly maxWaitMs: number
  readonly maxBytes: number
  readonly currentLeaderEpoch: number
  /** The fetcher's log end offset. */
  readonly fetchOffset: bigint
  /** The epoch of the fetcher's last entry (its snapshot's without entries; -1 with neither). */
  readonly lastFetchedEpoch: number
  readonly logStartOffset: bigint
}

export interface FetchResponse {
  readonly type: 'FetchResponse'
  readonly errorCode: number
  /** -1 while the leader does not know it (before it commits in its epoch). */
  readonly highWatermark: bigint
  readonly logStartOffset: bigint
  /** Set when the fetcher's log diverges: truncate to min(own end of this epoch, endOffset). */
  readonly divergingEpoch: { readonly epoch: number; readonly endOffset: bigint } | null
  /** Set when the fetcher must load this snapshot first (its offset is below the leader's log start). */
  readonly snapshotId: RaftSnapshotId | null
  readonly currentLeader: LeaderIdAndEpoch
  /** Whole batches from fetchOffset on. */
  readonly records: readonly RaftBatch[]
}

export interface FetchSnapshotRequest {
  readonly type: 'FetchSnapshotRequest'
  readonly clusterId: string
  readonly replicaId: number
  readonly maxBytes: number
  readonly currentLeaderEpoch: number
  readonly snapshotId: RaftSnapshotId
  /** Byte position in the snapshot to read from. */
  readonly position: bigint
}

export interface FetchSnapshotResponse {
  readonly type: 'FetchSnapshotResponse'
  readonly errorCode: number
  readonly snapshotId: RaftSnapshotId
  readonly currentLeader: LeaderIdAndEpoch
  /** The snapshot's total size in bytes. */
  readonly size: bigint
  readonly position: bigint
  readonly unalignedRecords: Buffer
}

export type RaftRequest =
  | VoteRequest
  | BeginQuorumEpochRequest
  | EndQuorumEpochRequest
  | FetchRequest
  | FetchSnapshotRequest

export type RaftResponse =
  | VoteResponse
  | BeginQuorumEpochResponse
  | EndQuorumEpochResponse
  | FetchResponse
  | FetchSnapshotResponse

export type RaftMessage = RaftRequest | RaftResponse

/** A message between two members: node ids, and the request's correlation id (echoed by its response). */
export interface RaftEnvelope<M extends RaftMessage = RaftMessage> {
  readonly source: number
  readonly destination: number
  readonly correlationId: number
  readonly message: M
}
