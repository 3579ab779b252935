/**
 * A partition replica's settings, named after Kafka's broker and topic configs, with Kafka's defaults.
 */
export interface ReplicationConfig {
  /**
   * replica.lag.time.max.ms: a follower that has not caught up to the leader's log end for this long leaves the
   * ISR. The leader checks every half of it (ReplicaManager's isr-expiration task).
   */
  readonly replicaLagTimeMaxMs: number
  /**
   * min.insync.replicas: the ISR size an acks=all produce needs, and below which the high watermark stays put; a
   * partition with fewer replicas needs all of them (effectiveMinIsr).
   */
  readonly minInsyncReplicas: number
  /** replica.fetch.wait.max.ms: how long a leader holds a follower's fetch that has nothing new. */
  readonly replicaFetchWaitMaxMs: number
  /** replica.fetch.backoff.ms: a follower's pause after a fetch error. */
  readonly replicaFetchBackoffMs: number
  /** A stand-in for replica.fetch.max.bytes: the most records per fetch response (at least one batch). */
  readonly replicaFetchMaxRecords: number
  /**
   * replica.socket.timeout.ms: a follower sends again a request left unanswered this long; a leader sends again an
   * AlterPartition left unanswered this long (AlterPartitionManager retries until answered).
   */
  readonly requestTimeoutMs: number
  /**
   * How a follower finds where its log leaves its new leader's: 'divergingEpoch' fetches at once and truncates on
   * the Fetch response's divergingEpoch (KIP-320, Kafka since 2.7); 'offsetForLeaderEpoch' asks OffsetForLeaderEpoch
   * first (KIP-101/279, the older protocol, still what a leader must answer).
   */
  readonly truncation: 'divergingEpoch' | 'offsetForLeaderEpoch'
}

export const DEFAULT_REPLICATION_CONFIG: ReplicationConfig = {
  replicaLagTimeMaxMs: 30_000,
  minInsyncReplicas: 1,
  replicaFetchWaitMaxMs: 500,
  replicaFetchBackoffMs: 1000,
  replicaFetchMaxRecords: 10_000,
  requestTimeoutMs: 30_000,
  truncation: 'divergingEpoch',
}

/**
 * The ISR size a partition of `replicaCount` replicas (the assigned replicas, a reassignment's adding ones included)
 * needs under `min.insync.replicas`: Kafka's Partition.effectiveMinIsr, min(min.insync.replicas, replicas). The
 * config is not bounded by the replication factor when set, so a topic of one replica with min.insync.replicas=2
 * takes acks=all writes, and its high watermark moves, as in Kafka.
 */
export function effectiveMinIsr(minInsyncReplicas: number, replicaCount: number): number {
  return Math.min(minInsyncReplicas, replicaCount)
}
