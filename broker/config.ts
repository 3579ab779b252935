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
  dataDir: string
  /** Sync each write to disk before acknowledging it. */
  fsync: boolean
  autoCreateTopics: boolean
  /** `num.partitions`: partitions of auto-created topics and of CreateTopics with -1. */
  defaultPartitions: number
  /** `socket.request.max.bytes`: larger frames close the connection. */
  socketRequestMaxBytes: number
  /** `message.max.bytes`: the broker default of the topic config max.message.bytes. */
  messageMaxBytes: number
  /** `log.retention.check.interval.ms`. */
  retentionCheckIntervalMs: number
  logLevel: LogLevel
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug'

export const DEFAULT_CONFIG: BrokerConfig = {
  nodeId: 1,
  host: '127.0.0.1',
  port: 9092,
  dataDir: '.brook/node-1',
  fsync: false,
  autoCreateTopics: true,
  defaultPartitions: 1,
  socketRequestMaxBytes: 100 * 1024 * 1024,
  messageMaxBytes: 1048588,
  retentionCheckIntervalMs: 300_000,
  logLevel: 'info',
}
