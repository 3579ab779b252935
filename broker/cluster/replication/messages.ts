/**
 * What replicas of a partition send each other, and what a partition leader sends the controller, shaped after
 * Kafka's APIs so that a transport maps each onto its wire message (names are the lowerCamel form of the spec's):
 *
 *   ReplicaFetchRequest / ReplicaFetchResponse       Fetch (1) v12+, replicaId (v15+: ReplicaState, KIP-903)
 *   OffsetForLeaderEpochRequest / ...Response        OffsetForLeaderEpoch (23) v3-4, replicaId set
 *   AlterPartitionRequest / AlterPartitionResponse   AlterPartition (56), KIP-497
 *
 * Each addresses one partition, so the fields are flat: a transport wraps them in Topics[0].Partitions[0] (and
 * batches many partitions of one destination into one request, as Kafka's fetcher threads do). `-1` means
 * "unknown" for ids, epochs and offsets, as on the wire. A response is matched to its request by correlation id;
 * the transport must hand a replica only responses to requests of its own incarnation (a restarted process has new
 * connections), which `firstCorrelationId` lets a simulation honour too. Messages are immutable values.
 */
import type { EpochEndOffset, ReplicaBatch } from './log.js'

export interface ReplicaFetchRequest {
  readonly type: 'ReplicaFetchRequest'
  readonly correlationId: number
  readonly replicaId: number
  /** The leader epoch the follower follows (CurrentLeaderEpoch): fences a stale leader or follower. */
  readonly currentLeaderEpoch: number
  /** The follower's log end offset. */
  readonly fetchOffset: bigint
  /** The epoch of the follower's last batch, -1 for an empty log (KIP-320's LastFetchedEpoch). */
  readonly lastFetchedEpoch: number
  /** The most records to send (a stand-in for PartitionMaxBytes); at least one batch is sent. */
  readonly maxRecords: number
}

export interface ReplicaFetchResponse {
  readonly type: 'ReplicaFetchResponse'
  readonly correlationId: number
  readonly errorCode: number
  /** The responder's leader epoch (the CurrentLeader tagged field, v12+). */
  readonly leaderEpoch: number
  readonly highWatermark: bigint
  /** Set when the follower's log leaves the leader's before fetchOffset (KIP-320): truncate, then fetch again. */
  readonly divergingEpoch: EpochEndOffset | null
  readonly batches: readonly ReplicaBatch[]
}

export interface OffsetForLeaderEpochRequest {
  readonly type: 'OffsetForLeaderEpochRequest'
  readonly correlationId: number
  readonly replicaId: number
  readonly currentLeaderEpoch: number
  /** The epoch whose end offset is asked for: the follower's latest epoch. */
  readonly leaderEpoch: number
}

export interface OffsetForLeaderEpochResponse {
  readonly type: 'OffsetForLeaderEpochResponse'
  readonly correlationId: number
  readonly errorCode: number
  readonly leaderEpoch: number
  readonly endOffset: bigint
}

export type ReplicaMessage =
  | ReplicaFetchRequest
  | ReplicaFetchResponse
  | OffsetForLeaderEpochRequest
  | OffsetForLeaderEpochResponse

export interface ReplicaEnvelope<M extends ReplicaMessage = ReplicaMessage> {
  readonly source: number
  readonly destination: number
  readonly message: M
}

/** A partition leader asks the controller to replace the ISR (one partition of AlterPartition). */
export interface AlterPartitionRequest {
  readonly correlationId: number
  /** The leader's broker id. */
  readonly brokerId: number
  readonly leaderEpoch: number
  /** The partition epoch the change is based on; the controller refuses it if the partition moved on. */
  readonly partitionEpoch: number
  readonly newIsr: readonly number[]
}

/** The controller's answer: on success the partition's state after the change. */
export interface AlterPartitionResponse {
  readonly correlationId: number
  readonly errorCode: number
  readonly state: PartitionState | null
}

/**
 * A partition's state as the controller's metadata holds it (KRaft's PartitionRegistration): Kafka's
 * PartitionRecord / PartitionChangeRecord fields.
 */
export interface PartitionState {
  /** -1 when no replica can lead (every ISR member is fenced). */
  readonly leader: number
  readonly leaderEpoch: number
  readonly isr: readonly number[]
  readonly replicas: readonly number[]
  /** Bumped by every change of the partition (Kafka's partitionEpoch, ZooKeeper's zkVersion). */
  readonly partitionEpoch: number
}
