/**
 * Broker configuration: what `brook start` takes as flags or from a `--config` JSON file. Names follow Kafka's
 * server.properties where one exists (`auto.create.topics.enable` is `autoCreateTopics` here).
 */
export interface BrokerConfig {
  nodeId: number
  /** Interface to listen on. */
  host: string
  /** Port to listen on; 0 picks a free one (tests). */
  port: number
  /** Host clients are told to connect to (Metadata); defaults to `host`. */
  advertisedHost?: string
  /**
   * Port clients are told to connect to (Metadata, FindCoordinator, DescribeCluster, the node's broker registration);
   * defaults to the port bound. With `advertisedHost` it is Kafka's `advertised.listeners=PLAINTEXT://host:port`: a
   * node behind a port forward (`docker -p 33021:9092`, `ssh -L`, `kubectl port-forward`) names the forward's port.
   */
  advertisedPort?: number
  dataDir: string
  /**
   * `controller.quorum.voters`: the controller quorum as `id@host:port,...` (the voters' controller listeners). Unset,
   * the node runs alone as it always has; set, it is a member of a replicated cluster (broker/cluster/README.md).
   */
  controllerQuorumVoters?: string
  /**
   * The cluster id (Kafka's base64url form of 16 bytes). Required for the first start of a cluster node on an empty
   * data directory; a data directory keeps the id it was made with, and a node given another one refuses to start.
   */
  clusterId?: string
  /** `broker.heartbeat.interval.ms`: how often a cluster node heartbeats to the active controller. */
  brokerHeartbeatIntervalMs: number
  /** `broker.session.timeout.ms`: the active controller fences a node not heard from for this long. */
  brokerSessionTimeoutMs: number
  /**
   * `replica.lag.time.max.ms`: a partition leader finds an ISR member that has not caught up with its log end for
   * this long out of sync: it asks the controller to remove it, and counts the ISR without it for min.insync.replicas.
   */
  replicaLagTimeMaxMs: number
  /**
   * `replica.fetch.wait.max.ms`: how long a partition leader holds a follower's fetch that finds nothing new to copy
   * (a follower learns the leader's high watermark and log start offset with the next batch, or when this runs out).
   */
  replicaFetchWaitMaxMs: number
  /**
   * `auto.leader.rebalance.enable`: the active controller moves each partition's leadership back to its preferred
   * (first) replica once that replica is live and in the ISR again (broker/cluster/README.md, "Preferred leaders").
   */
  autoLeaderRebalance: boolean
  /** `leader.imbalance.check.interval.seconds`: how often the active controller also looks for preferred leaders that do not lead. */
  leaderImbalanceCheckIntervalSeconds: number
  /**
   * `metadata.log.max.record.bytes.between.snapshots`: bytes of metadata records a quorum member applies before it
   * snapshots its image and drops the log below it.
   */
  metadataLogMaxRecordBytesBetweenSnapshots: number
  /**
   * `controller.quorum.election.timeout.ms`: how long a quorum member without a leader waits before it stands for
   * election (randomized up to twice as long), at start and once it has lost the leader.
   */
  controllerQuorumElectionTimeoutMs: number
  /** Sync each write to disk before acknowledging it. */
  fsync: boolean
  autoCreateTopics: boolean
  /** `num.partitions`: partitions of auto-created topics and of CreateTopics with -1. */
  defaultPartitions: number
  /**
   * `default.replication.factor`: replicas of each partition of auto-created topics and of CreateTopics with -1
   * (Kafka's default, 1; `brook dev` sets min(3, nodes)). Above 1 only on a cluster node: a single node keeps one.
   */
  defaultReplicationFactor: number
  /** `socket.request.max.bytes`: larger frames close the connection. */
  socketRequestMaxBytes: number
  /** `queued.max.requests`: requests the node holds at once (read, not yet answered, not parked); more wait unread. */
  queuedMaxRequests: number
  /**
   * `queued.max.request.bytes`: the node's pool for request bytes, partly received frames included. A frame is read
   * only while the pool has room left (frames of up to 16 KiB also when it has none), so the bytes held stay below
   * this + socket.request.max.bytes + queued.max.requests x 16 KiB (see request-budget.ts).
   */
  queuedMaxRequestBytes: number
  /** `fetch.max.bytes`: the most record bytes one Fetch answer carries (beyond one first batch, minOneMessage). */
  fetchMaxBytes: number
  /**
   * `queued.max.response.bytes` (Brook's own; Kafka sends from the page cache): record bytes of Fetch answers the node
   * holds at once, read and not yet handed to the kernel. A fetch that finds it full still returns one batch.
   */
  queuedMaxResponseBytes: number
  /** `connections.max.idle.ms`: a connection with no bytes read or written for this long is closed. */
  connectionsMaxIdleMs: number
  /** `max.connections`: connections beyond it wait, accepted but unread, until one closes. */
  maxConnections: number
  /** `max.connections.per.ip`: a connection beyond it from the same address is closed at once. */
  maxConnectionsPerIp: number
  /** `message.max.bytes`: the broker default of the topic config max.message.bytes. */
  messageMaxBytes: number
  /** `log.message.timestamp.before.max.ms` (KIP-937): the broker default of message.timestamp.before.max.ms. */
  logMessageTimestampBeforeMaxMs: number
  /** `log.message.timestamp.after.max.ms` (KIP-937): the broker default of message.timestamp.after.max.ms. */
  logMessageTimestampAfterMaxMs: number
  /** `log.retention.ms`: the broker default of the topic config retention.ms (-1: no limit). */
  logRetentionMs: number
  /** `log.retention.bytes`: the broker default of the topic config retention.bytes (-1: no limit). */
  logRetentionBytes: number
  /**
   * The node's defaults of the other topic configs, under Kafka's broker names as a server.properties gives them
   * (ServerTopicConfigSynonyms: `log.cleanup.policy`, `log.message.timestamp.type`, `compression.type`,
   * `min.insync.replicas`, `unclean.leader.election.enable`...) -> the value as a string. A topic without its own
   * setting takes it, and DescribeConfigs shows it as STATIC_BROKER_CONFIG. Values must meet the topic config's rule
   * (topic-configs.ts topicDefaultsProblem; `brook start` checks them).
   */
  topicConfigDefaults: Readonly<Record<string, string>>
  /** `log.record.validation.enable`: false trusts produced records and checks only batch headers (protocol/README.md). */
  recordValidation: boolean
  /** `log.retention.check.interval.ms`. */
  logRetentionCheckIntervalMs: number
  /**
   * `log.cache.max.bytes`: bytes of recently appended batches kept in memory for all partitions together (the node's
   * batch cache, storage/batch-cache.ts); the oldest go first.
   */
  cacheMaxBytes: number
  /** `log.cleaner.dedupe.buffer.size`: bytes of the compaction key map; a partition with more keys takes several passes. */
  logCleanerDedupeBufferSize: number
  /** `group.initial.rebalance.delay.ms`: how long a new group waits for more members before its first rebalance. */
  groupInitialRebalanceDelayMs: number
  /** `group.min.session.timeout.ms` / `group.max.session.timeout.ms`. */
  groupMinSessionTimeoutMs: number
  groupMaxSessionTimeoutMs: number
  /** `offsets.retention.minutes`: how long offsets of an empty group are kept. */
  offsetsRetentionMinutes: number
  /** `offsets.retention.check.interval.ms`. */
  offsetsRetentionCheckIntervalMs: number
  /** `offsets.topic.num.partitions`, used when __consumer_offsets is created. */
  offsetsTopicPartitions: number
  /** `producer.id.expiration.ms`: a producer id with no open transaction and no batch for this long is forgotten. */
  producerIdExpirationMs: number
  /** `producer.id.expiration.check.interval.ms`. */
  producerIdExpirationCheckIntervalMs: number
  /**
   * `log.flush.offset.checkpoint.interval.ms`: how often the node checkpoints the producer state of partitions appended
   * to since their last snapshot (Kafka's recovery point), so that a restart after a crash replays only what came after.
   */
  logFlushOffsetCheckpointIntervalMs: number
  /** `transaction.max.timeout.ms`: the longest transaction.timeout.ms a producer may ask for. */
  transactionMaxTimeoutMs: number
  /** `transactional.id.expiration.ms`: a transactional id idle (no transaction open) this long is forgotten. */
  transactionalIdExpirationMs: number
  /** `transaction.state.log.num.partitions`, used when __transaction_state is created. */
  transactionStateLogNumPartitions: number
  /**
   * `transaction.state.log.min.isr`: the min.insync.replicas __transaction_state is created with on a cluster (at most
   * its replication factor), so that a transaction's state is acknowledged only once that many replicas hold it.
   */
  transactionStateLogMinIsr: number
  /** `transaction.abort.timed.out.transaction.cleanup.interval.ms`: how often open transactions past their timeout are aborted. */
  transactionAbortTimedOutTransactionCleanupIntervalMs: number
  /** `transaction.remove.expired.transaction.cleanup.interval.ms`: how often expired transactional ids are removed. */
  transactionRemoveExpiredTransactionCleanupIntervalMs: number
  /**
   * For tests of recovery only: the node kills itself (SIGKILL, as kill -9) when it reaches this point of the
   * two-phase commit (FAILPOINTS). Unset in any real use; settable only in the --config file.
   */
  failpoint?: Failpoint
  logLevel: LogLevel
}

/**
 * Where a node can be made to die for a recovery test (BrokerConfig.failpoint), in the order a transaction meets them:
 * - `transaction-prepared`: PrepareCommit or PrepareAbort is written to __transaction_state, no marker yet;
 * - `transaction-marker-written`: the marker of the transaction's first partition is written, the others not.
 */
export const FAILPOINTS = ['transaction-prepared', 'transaction-marker-written'] as const
export type Failpoint = (typeof FAILPOINTS)[number]

export type LogLevel = 'error' | 'warn' | 'info' | 'debug'

export const DEFAULT_CONFIG: BrokerConfig = {
  nodeId: 1,
  host: '127.0.0.1',
  port: 9092,
  dataDir: '.brook/node-1',
  brokerHeartbeatIntervalMs: 2000,
  brokerSessionTimeoutMs: 9000,
  replicaLagTimeMaxMs: 30_000,
  replicaFetchWaitMaxMs: 500,
  autoLeaderRebalance: true,
  leaderImbalanceCheckIntervalSeconds: 300,
  metadataLogMaxRecordBytesBetweenSnapshots: 20 * 1024 * 1024,
  controllerQuorumElectionTimeoutMs: 1000,
  fsync: false,
  autoCreateTopics: true,
  defaultPartitions: 1,
  defaultReplicationFactor: 1,
  socketRequestMaxBytes: 100 * 1024 * 1024,
  queuedMaxRequests: 500,
  queuedMaxRequestBytes: 100 * 1024 * 1024,
  fetchMaxBytes: 57_671_680,
  queuedMaxResponseBytes: 256 * 1024 * 1024,
  connectionsMaxIdleMs: 600_000,
  maxConnections: 2_147_483_647,
  maxConnectionsPerIp: 2_147_483_647,
  messageMaxBytes: 1048588,
  // Kafka's default is Long.MAX_VALUE, which a JS number cannot hold exactly; 2^53-1 ms (285,000 years) is the same
  // "no limit".
  logMessageTimestampBeforeMaxMs: Number.MAX_SAFE_INTEGER,
  // Kafka 4.0's default (KIP-1030); Kafka 3.6-3.9 had Long.MAX_VALUE.
  logMessageTimestampAfterMaxMs: 3_600_000,
  // Kafka's log.retention.hours of 168.
  logRetentionMs: 604_800_000,
  logRetentionBytes: -1,
  topicConfigDefaults: {},
  recordValidation: true,
  logRetentionCheckIntervalMs: 300_000,
  cacheMaxBytes: 256 * 1024 * 1024,
  // Kafka's default.
  logCleanerDedupeBufferSize: 128 * 1024 * 1024,
  groupInitialRebalanceDelayMs: 3000,
  groupMinSessionTimeoutMs: 6000,
  groupMaxSessionTimeoutMs: 1_800_000,
  offsetsRetentionMinutes: 10080,
  offsetsRetentionCheckIntervalMs: 600_000,
  offsetsTopicPartitions: 50,
  producerIdExpirationMs: 86_400_000,
  producerIdExpirationCheckIntervalMs: 600_000,
  logFlushOffsetCheckpointIntervalMs: 60_000,
  transactionMaxTimeoutMs: 900_000,
  transactionalIdExpirationMs: 604_800_000,
  transactionStateLogNumPartitions: 50,
  transactionStateLogMinIsr: 2,
  transactionAbortTimedOutTransactionCleanupIntervalMs: 10_000,
  transactionRemoveExpiredTransactionCleanupIntervalMs: 3_600_000,
  logLevel: 'info',
}
