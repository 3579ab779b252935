/**
 * A quorum member's timing and size settings, named after Kafka's `controller.quorum.*` settings (QuorumConfig) and
 * KafkaRaftClient's constants, with Kafka's defaults.
 */
export interface RaftConfig {
  /** controller.quorum.election.timeout.ms: how long without a leader before an election; randomized up to 2x. */
  readonly electionTimeoutMs: number
  /** controller.quorum.election.backoff.max.ms: the most a candidate waits after losing before trying again. */
  readonly electionBackoffMaxMs: number
  /**
   * controller.quorum.fetch.timeout.ms: a follower that has not fetched successfully for this long starts an
   * election; a leader that has not been fetched from by a majority for 1.5x this long resigns (check-quorum).
   */
  readonly fetchTimeoutMs: number
  /** controller.quorum.request.timeout.ms: an unanswered request is sent again after this long. */
  readonly requestTimeoutMs: number
  /** controller.quorum.retry.backoff.ms: the pause before sending again after an error. */
  readonly retryBackoffMs: number
  /** How long a leader holds a fetch that has nothing new (KafkaRaftClient's fetchMaxWaitMs). */
  readonly fetchMaxWaitMs: number
  /** Bytes of batches (or snapshot) per fetch response, at least one batch (MAX_FETCH_SIZE_BYTES). */
  readonly fetchMaxBytes: number
  /** The largest batch `propose` accepts (MAX_BATCH_SIZE_BYTES). */
  readonly maxBatchBytes: number
  /** metadata.log.max.record.bytes.between.snapshots: record bytes applied before the next snapshot. */
  readonly maxBytesBetweenSnapshots: number
}

export const DEFAULT_RAFT_CONFIG: RaftConfig = {
  electionTimeoutMs: 1000,
  electionBackoffMaxMs: 1000,
  fetchTimeoutMs: 2000,
  requestTimeoutMs: 2000,
  retryBackoffMs: 20,
  fetchMaxWaitMs: 500,
  fetchMaxBytes: 8 * 1024 * 1024,
  maxBatchBytes: 8 * 1024 * 1024,
  maxBytesBetweenSnapshots: 20 * 1024 * 1024,
}

/** Kafka's check-quorum timeout is this many fetch timeouts (LeaderState.CHECK_QUORUM_TIMEOUT_FACTOR). */
export const CHECK_QUORUM_TIMEOUT_FACTOR = 1.5

/** Defaults filled in and the settings checked; throws an Error naming the first bad setting. */
export function raftConfig(overrides: Partial<RaftConfig> = {}): RaftConfig {
  const config = { ...DEFAULT_RAFT_CONFIG, ...overrides }
  for (const [name, value] of Object.entries(config)) {
    if (!Number.isInteger(value) || value <= 0)
      throw new Error(`raft setting ${name} must be a positive integer, got ${value}`)
  }
  if (config.fetchMaxWaitMs >= config.requestTimeoutMs) {
    throw new Error(
      `raft setting fetchMaxWaitMs (${config.fetchMaxWaitMs}) must be below ` +
        `requestTimeoutMs (${config.requestTimeoutMs})`,
    )
  }
  return config
}

/** The smallest number of voters that is a majority of `voterCount`: what a vote, a commit and check-quorum need. */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1
}
