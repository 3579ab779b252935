/**
 * What `brook start` accepts, as flags and in its `--config` JSON file (the same settings under BrokerConfig's
 * camelCase names): one table of the numeric settings with their Kafka names and bounds serves both, so a value is
 * checked the same way wherever it comes from. Values are refused with a message naming the setting, never clamped.
 */
import { readFileSync } from 'node:fs'
import { checkClusterId, parseQuorumVoters, type QuorumVoter } from '../broker/cluster/voters.js'
import { DEFAULT_CONFIG, FAILPOINTS, type BrokerConfig, type Failpoint, type LogLevel } from '../broker/config.js'
import { isTopicDefaultName, topicDefaultNames, topicDefaultsProblem } from '../broker/topic-configs.js'
import { cannotRead } from './files.js'
import { bracketed, hasPort, isUnspecifiedAddress } from '../client/address.js'

const INT32_MAX = 2_147_483_647
/** Node's timers take at most 2^31-1 ms; a longer interval would fire at once. */
const TIMER_MAX_MS = INT32_MAX

type NumericKey = { [K in keyof BrokerConfig]-?: BrokerConfig[K] extends number ? K : never }[keyof BrokerConfig]

export interface NumericSetting {
  key: NumericKey
  flag: string
  /** The argument's name in --help (`<ms>`, `<n>`). */
  unit: string
  /** Kafka's name for the setting, when it has one. */
  kafkaName: string | null
  min: number
  max: number
  description: string
}

export const NUMERIC_SETTINGS: readonly NumericSetting[] = [
  { key: 'nodeId', flag: '--node-id', unit: 'n', kafkaName: 'node.id', min: 0, max: INT32_MAX, description: 'this node\'s id' },
  { key: 'port', flag: '--port', unit: 'port', kafkaName: null, min: 0, max: 65535, description: 'port to listen on (0: any free port)' },
  { key: 'brokerHeartbeatIntervalMs', flag: '--broker-heartbeat-interval-ms', unit: 'ms', kafkaName: 'broker.heartbeat.interval.ms', min: 1, max: INT32_MAX, description: 'with --controller-quorum-voters: how often the node heartbeats to the active controller' },
  { key: 'brokerSessionTimeoutMs', flag: '--broker-session-timeout-ms', unit: 'ms', kafkaName: 'broker.session.timeout.ms', min: 1, max: INT32_MAX, description: 'with --controller-quorum-voters: the active controller fences a node not heard from for this long' },
  { key: 'replicaLagTimeMaxMs', flag: '--replica-lag-time-max-ms', unit: 'ms', kafkaName: 'replica.lag.time.max.ms', min: 1, max: TIMER_MAX_MS, description: 'on a cluster node, a partition leader finds a follower that has not caught up for this long out of sync and removes it from the ISR' },
  { key: 'replicaFetchWaitMaxMs', flag: '--replica-fetch-wait-max-ms', unit: 'ms', kafkaName: 'replica.fetch.wait.max.ms', min: 1, max: TIMER_MAX_MS, description: 'on a cluster node, how long a partition leader holds a follower\'s fetch that finds nothing new (the follower learns the high watermark and log start offset with the next batch or when it ends)' },
  { key: 'leaderImbalanceCheckIntervalSeconds', flag: '--leader-imbalance-check-interval-seconds', unit: 'seconds', kafkaName: 'leader.imbalance.check.interval.seconds', min: 1, max: Math.floor(TIMER_MAX_MS / 1000), description: 'with --controller-quorum-voters: how often the active controller also looks for partitions not led by their preferred replica (it looks at once when one rejoins its ISR)' },
  { key: 'metadataLogMaxRecordBytesBetweenSnapshots', flag: '--metadata-log-max-record-bytes-between-snapshots', unit: 'bytes', kafkaName: 'metadata.log.max.record.bytes.between.snapshots', min: 1, max: Number.MAX_SAFE_INTEGER, description: 'with --controller-quorum-voters: metadata record bytes applied before the node snapshots its metadata image and drops the log below it' },
  { key: 'controllerQuorumElectionTimeoutMs', flag: '--controller-quorum-election-timeout-ms', unit: 'ms', kafkaName: 'controller.quorum.election.timeout.ms', min: 1, max: TIMER_MAX_MS, description: 'on a cluster node, how long a controller quorum member without a leader waits before it stands for election (randomized up to twice as long)' },
  { key: 'defaultPartitions', flag: '--default-partitions', unit: 'n', kafkaName: 'num.partitions', min: 1, max: 10_000, description: 'partitions of auto-created topics' },
  { key: 'defaultReplicationFactor', flag: '--default-replication-factor', unit: 'n', kafkaName: 'default.replication.factor', min: 1, max: 10_000, description: 'with --controller-quorum-voters: replicas of each partition of auto-created topics and of topics created with -1' },
  { key: 'messageMaxBytes', flag: '--message-max-bytes', unit: 'bytes', kafkaName: 'message.max.bytes', min: 0, max: INT32_MAX, description: 'largest record batch a topic accepts unless its max.message.bytes says otherwise' },
  { key: 'logMessageTimestampBeforeMaxMs', flag: '--log-message-timestamp-before-max-ms', unit: 'ms', kafkaName: 'log.message.timestamp.before.max.ms', min: 0, max: Number.MAX_SAFE_INTEGER, description: 'CreateTime topics refuse records timestamped more than this in the past, unless their message.timestamp.before.max.ms says otherwise' },
  { key: 'logMessageTimestampAfterMaxMs', flag: '--log-message-timestamp-after-max-ms', unit: 'ms', kafkaName: 'log.message.timestamp.after.max.ms', min: 0, max: Number.MAX_SAFE_INTEGER, description: 'CreateTime topics refuse records timestamped more than this in the future, unless their message.timestamp.after.max.ms says otherwise' },
  { key: 'socketRequestMaxBytes', flag: '--socket-request-max-bytes', unit: 'bytes', kafkaName: 'socket.request.max.bytes', min: 1, max: INT32_MAX, description: 'largest request frame; larger ones close the connection' },
  { key: 'queuedMaxRequests', flag: '--queued-max-requests', unit: 'n', kafkaName: 'queued.max.requests', min: 1, max: INT32_MAX, description: 'requests the node holds at once before it stops reading more' },
  { key: 'queuedMaxRequestBytes', flag: '--queued-max-request-bytes', unit: 'bytes', kafkaName: 'queued.max.request.bytes', min: 1, max: Number.MAX_SAFE_INTEGER, description: 'bytes of requests the node holds at once before it stops reading more (at least socket.request.max.bytes)' },
  { key: 'queuedMaxResponseBytes', flag: '--queued-max-response-bytes', unit: 'bytes', kafkaName: 'queued.max.response.bytes', min: 1, max: Number.MAX_SAFE_INTEGER, description: 'bytes of Fetch answers the node holds at once, read and not yet sent; a fetch that finds none left gets one batch' },
  { key: 'fetchMaxBytes', flag: '--fetch-max-bytes', unit: 'bytes', kafkaName: 'fetch.max.bytes', min: 1024, max: INT32_MAX, description: 'most record bytes in one Fetch answer (at least one batch is always returned)' },
  { key: 'connectionsMaxIdleMs', flag: '--connections-max-idle-ms', unit: 'ms', kafkaName: 'connections.max.idle.ms', min: 1, max: TIMER_MAX_MS, description: 'close connections that read and write nothing for this long' },
  { key: 'maxConnections', flag: '--max-connections', unit: 'n', kafkaName: 'max.connections', min: 1, max: INT32_MAX, description: 'connections served at once; more wait, accepted but unread, until one closes' },
  { key: 'maxConnectionsPerIp', flag: '--max-connections-per-ip', unit: 'n', kafkaName: 'max.connections.per.ip', min: 1, max: INT32_MAX, description: 'connections from one address; more are closed at once' },
  { key: 'logRetentionMs', flag: '--log-retention-ms', unit: 'ms', kafkaName: 'log.retention.ms', min: -1, max: Number.MAX_SAFE_INTEGER, description: 'how long partitions keep batches, -1 for ever, unless their topic\'s retention.ms says otherwise' },
  { key: 'logRetentionBytes', flag: '--log-retention-bytes', unit: 'bytes', kafkaName: 'log.retention.bytes', min: -1, max: Number.MAX_SAFE_INTEGER, description: 'most bytes a partition keeps before old batches are deleted, -1 for no limit, unless its topic\'s retention.bytes says otherwise' },
  { key: 'logRetentionCheckIntervalMs', flag: '--log-retention-check-interval-ms', unit: 'ms', kafkaName: 'log.retention.check.interval.ms', min: 1, max: TIMER_MAX_MS, description: 'how often retention and compaction run' },
  { key: 'cacheMaxBytes', flag: '--cache-max-bytes', unit: 'bytes', kafkaName: 'log.cache.max.bytes', min: 0, max: Number.MAX_SAFE_INTEGER, description: 'most memory for recently appended batches, shared by all partitions (the oldest go first; it grows past 16 MiB only for readers behind the log end)' },
  { key: 'logCleanerDedupeBufferSize', flag: '--log-cleaner-dedupe-buffer-size', unit: 'bytes', kafkaName: 'log.cleaner.dedupe.buffer.size', min: 1024, max: INT32_MAX, description: 'memory for the compaction key map; a partition with more keys is compacted in several passes' },
  { key: 'groupInitialRebalanceDelayMs', flag: '--group-initial-rebalance-delay-ms', unit: 'ms', kafkaName: 'group.initial.rebalance.delay.ms', min: 0, max: INT32_MAX, description: 'how long a new group waits for more members before its first rebalance' },
  { key: 'groupMinSessionTimeoutMs', flag: '--group-min-session-timeout-ms', unit: 'ms', kafkaName: 'group.min.session.timeout.ms', min: 1, max: INT32_MAX, description: 'shortest session timeout a consumer may ask for' },
  { key: 'groupMaxSessionTimeoutMs', flag: '--group-max-session-timeout-ms', unit: 'ms', kafkaName: 'group.max.session.timeout.ms', min: 1, max: INT32_MAX, description: 'longest session timeout a consumer may ask for' },
  { key: 'offsetsRetentionMinutes', flag: '--offsets-retention-minutes', unit: 'minutes', kafkaName: 'offsets.retention.minutes', min: 1, max: INT32_MAX, description: 'how long the committed offsets of an empty group are kept' },
  { key: 'offsetsRetentionCheckIntervalMs', flag: '--offsets-retention-check-interval-ms', unit: 'ms', kafkaName: 'offsets.retention.check.interval.ms', min: 1, max: TIMER_MAX_MS, description: 'how often expired offsets are looked for' },
  { key: 'offsetsTopicPartitions', flag: '--offsets-topic-partitions', unit: 'n', kafkaName: 'offsets.topic.num.partitions', min: 1, max: 10_000, description: 'partitions of __consumer_offsets, when it is created' },
  { key: 'producerIdExpirationMs', flag: '--producer-id-expiration-ms', unit: 'ms', kafkaName: 'producer.id.expiration.ms', min: 1, max: INT32_MAX, description: 'how long a partition keeps the state of an idle producer id' },
  { key: 'producerIdExpirationCheckIntervalMs', flag: '--producer-id-expiration-check-interval-ms', unit: 'ms', kafkaName: 'producer.id.expiration.check.interval.ms', min: 1, max: TIMER_MAX_MS, description: 'how often idle producer ids are looked for' },
  { key: 'logFlushOffsetCheckpointIntervalMs', flag: '--log-flush-offset-checkpoint-interval-ms', unit: 'ms', kafkaName: 'log.flush.offset.checkpoint.interval.ms', min: 1, max: TIMER_MAX_MS, description: 'how often producer states are checkpointed, so a restart after a crash replays only what came after' },
  { key: 'transactionMaxTimeoutMs', flag: '--transaction-max-timeout-ms', unit: 'ms', kafkaName: 'transaction.max.timeout.ms', min: 1, max: INT32_MAX, description: 'longest transaction timeout a producer may ask for' },
  { key: 'transactionalIdExpirationMs', flag: '--transactional-id-expiration-ms', unit: 'ms', kafkaName: 'transactional.id.expiration.ms', min: 1, max: INT32_MAX, description: 'how long an idle transactional id is kept' },
  { key: 'transactionStateLogNumPartitions', flag: '--transaction-state-log-num-partitions', unit: 'n', kafkaName: 'transaction.state.log.num.partitions', min: 1, max: 10_000, description: 'partitions of __transaction_state, when it is created' },
  { key: 'transactionStateLogMinIsr', flag: '--transaction-state-log-min-isr', unit: 'n', kafkaName: 'transaction.state.log.min.isr', min: 1, max: INT32_MAX, description: 'with --controller-quorum-voters: min.insync.replicas of __transaction_state, when it is created (at most its replication factor)' },
  { key: 'transactionAbortTimedOutTransactionCleanupIntervalMs', flag: '--transaction-abort-timed-out-transaction-cleanup-interval-ms', unit: 'ms', kafkaName: 'transaction.abort.timed.out.transaction.cleanup.interval.ms', min: 1, max: TIMER_MAX_MS, description: 'how often transactions open past their timeout are aborted' },
  { key: 'transactionRemoveExpiredTransactionCleanupIntervalMs', flag: '--transaction-remove-expired-transaction-cleanup-interval-ms', unit: 'ms', kafkaName: 'transaction.remove.expired.transaction.cleanup.interval.ms', min: 1, max: TIMER_MAX_MS, description: 'how often expired transactional ids are removed' },
]

export const LOG_LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug']

/** Settings that are not numbers, with the type each must have in the config file. */
const OTHER_SETTINGS: Readonly<Record<string, 'string' | 'boolean' | 'logLevel' | 'failpoint' | 'port'>> = {
  host: 'string',
  advertisedHost: 'string',
  // Not in NUMERIC_SETTINGS: it has no default to show (unset, the port bound is advertised).
  advertisedPort: 'port',
  dataDir: 'string',
  controllerQuorumVoters: 'string',
  clusterId: 'string',
  fsync: 'boolean',
  autoCreateTopics: 'boolean',
  recordValidation: 'boolean',
  autoLeaderRebalance: 'boolean',
  logLevel: 'logLevel',
  failpoint: 'failpoint',
}

/** Kafka's names of the settings that are not numbers, where the config file may use them. */
const KAFKA_NAMES: Readonly<Record<string, string>> = {
  'controller.quorum.voters': 'controllerQuorumVoters',
  'auto.leader.rebalance.enable': 'autoLeaderRebalance',
  'auto.create.topics.enable': 'autoCreateTopics',
  'log.record.validation.enable': 'recordValidation',
}

/**
 * Kafka settings that Brook takes under another name or unit, with what to write instead: a Kafka server.properties
 * carried over would otherwise meet only "unknown setting".
 */
const KAFKA_NAMES_ELSEWHERE: Readonly<Record<string, string>> = {
  'log.retention.hours': 'use log.retention.ms (hours x 3600000)',
  'log.retention.minutes': 'use log.retention.ms (minutes x 60000)',
  'broker.id': 'use node.id (Kafka\'s own newer name of the same setting)',
  'log.dirs': 'use dataDir (one directory, which holds all of the node\'s data)',
  'log.dir': 'use dataDir (one directory, which holds all of the node\'s data)',
  // One PLAINTEXT listener, so its URI's parts are settings of their own.
  listeners: 'Brook takes host and port (listeners) and advertisedHost and advertisedPort (advertised.listeners)',
  'advertised.listeners': 'Brook takes host and port (listeners) and advertisedHost and advertisedPort (advertised.listeners)',
}

/** Checks a whole number against a setting's bounds; returns the problem, or null. */
export function numericProblem(setting: NumericSetting, value: number): string | null {
  if (!Number.isInteger(value)) return 'must be a whole number'
  if (value < setting.min || value > setting.max) return `must be between ${setting.min} and ${setting.max}`
  return null
}

/**
 * Reads and checks a `--config` file: a JSON object whose keys are BrokerConfig names or, for the numeric settings,
 * their Kafka names (`log.cache.max.bytes` for `cacheMaxBytes`), as can the other settings in KAFKA_NAMES. Unknown
 * keys are refused (a misspelt setting would otherwise be ignored without a word) with the name meant, when one is
 * close, and so is a setting given under both names.
 */
export function readConfigFile(path: string): Partial<BrokerConfig> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw cannotRead(path, error)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new Error(`${path} is not valid JSON: ${withLineAndColumn((error as Error).message, text)}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${path} must hold a JSON object of settings`)
  const config: Record<string, unknown> = {}
  const topicConfigDefaults: Record<string, string> = {}
  for (const [name, value] of Object.entries(parsed)) {
    const key = NUMERIC_SETTINGS.find((s) => s.kafkaName === name)?.key ?? own(KAFKA_NAMES, name) ?? name
    if (isTopicDefaultName(name)) {
      // A topic config's default under its broker name (log.cleanup.policy), written as server.properties would.
      if (!['string', 'number', 'boolean'].includes(typeof value)) throw new Error(`${path}: ${name} must be a string, a number or a boolean, not ${JSON.stringify(value)}`)
      topicConfigDefaults[name] = String(value)
      continue
    }
    if (!isSetting(key)) throw new Error(unknownSetting(name, path))
    if (key in config) throw new Error(`${path}: ${key} is given twice (as ${key} and as its Kafka name)`)
    // The message names the setting as the file does (log.cache.max.bytes, or cacheMaxBytes).
    const problem = settingProblem(key, value, name)
    if (problem) throw new Error(`${path}: ${problem}`)
    config[key] = value
  }
  const problem = topicDefaultsProblem(topicConfigDefaults)
  if (problem) throw new Error(`${path}: ${problem}`)
  if (Object.keys(topicConfigDefaults).length > 0) config.topicConfigDefaults = topicConfigDefaults
  return config as Partial<BrokerConfig>
}

/** `table[name]` when `table` has it as its own: a file's `constructor` or `__proto__` must not find Object's. */
function own(table: Readonly<Record<string, string>>, name: string): string | undefined {
  return Object.hasOwn(table, name) ? table[name] : undefined
}

/** Whether a BrokerConfig name is a setting the file may give. */
function isSetting(key: string): boolean {
  // topicConfigDefaults is given by its entries' own names (log.cleanup.policy), as a Kafka server.properties does.
  if (key === 'topicConfigDefaults') return false
  return NUMERIC_SETTINGS.some((s) => s.key === key) || Object.hasOwn(OTHER_SETTINGS, key) || Object.hasOwn(DEFAULT_CONFIG, key)
}

/** Every name the config file takes: the camelCase ones and Kafka's. */
function settingNames(): string[] {
  const kafkaNames = NUMERIC_SETTINGS.flatMap((s) => (s.kafkaName === null ? [] : [s.kafkaName]))
  return [...NUMERIC_SETTINGS.map((s) => s.key), ...Object.keys(OTHER_SETTINGS), ...kafkaNames, ...Object.keys(KAFKA_NAMES), ...topicDefaultNames()]
}

/**
 * One line for a key that names no setting: what to write instead for a Kafka name Brook takes otherwise, else the
 * closest name when it is close (about one typo in five letters, or the same letters in another case or separators:
 * `default_partitions`), else where the list is. The whole list, some sixty names, would bury the mistake.
 */
function unknownSetting(name: string, path: string): string {
  const unknown = `unknown setting '${name}' in ${path}`
  // Close to one of those (`log.retention.hour`): what to write instead, not the other Kafka name, refused in turn.
  const closest = own(KAFKA_NAMES_ELSEWHERE, name) === undefined ? closestName(name, [...settingNames(), ...Object.keys(KAFKA_NAMES_ELSEWHERE)]) : name
  const instead = closest === null ? undefined : own(KAFKA_NAMES_ELSEWHERE, closest)
  if (instead !== undefined) return `${unknown}; ${instead}`
  if (closest !== null) return `${unknown}; did you mean '${closest}'?`
  return `${unknown} (\`brook start --help\` lists the settings: the file takes them by camelCase name, nodeId for --node-id, or by the Kafka name shown)`
}

function closestName(name: string, names: readonly string[]): string | null {
  const bare = (text: string): string => text.toLowerCase().replace(/[._-]/g, '')
  const sameLetters = names.find((candidate) => bare(candidate) === bare(name))
  if (sameLetters !== undefined) return sameLetters
  let best: string | null = null
  let bestDistance = Math.max(1, Math.floor(name.length / 5)) + 1
  for (const candidate of names) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance]
  }
  return best
}

/** Levenshtein distance in which swapping two neighbouring letters counts as one edit (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      rows[i]![j] = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) rows[i]![j] = Math.min(rows[i]![j]!, rows[i - 2]![j - 2]! + 1)
    }
  }
  return rows[a.length]![b.length]!
}

/** V8 places a JSON syntax error by character position; an editor wants line and column (both from 1). */
function withLineAndColumn(message: string, text: string): string {
  const position = / in JSON at position (\d+)/.exec(message)
  if (position === null || /line \d+/.test(message)) return message
  const before = text.slice(0, Number(position[1]))
  const line = before.split('\n').length
  const column = before.length - before.lastIndexOf('\n')
  return `${message.replace(position[0], '')} at line ${line}, column ${column}`
}

/** Checks the value of a known setting; returns the problem, or null. */
function settingProblem(key: string, value: unknown, shownAs = key): string | null {
  const numeric = NUMERIC_SETTINGS.find((s) => s.key === key)
  if (numeric) {
    if (typeof value !== 'number') return `${shownAs} must be a number, not ${JSON.stringify(value)}`
    const problem = numericProblem(numeric, value)
    return problem && `${shownAs} ${problem}, not ${value}`
  }
  // A setting added to BrokerConfig without an entry here is checked by the type of its default (isSetting took it).
  const kind = OTHER_SETTINGS[key] ?? (typeof DEFAULT_CONFIG[key as keyof BrokerConfig] as 'string' | 'boolean' | 'number')
  if (kind === 'logLevel') return LOG_LEVELS.includes(value as LogLevel) ? null : `logLevel must be one of ${LOG_LEVELS.join(', ')}, not ${JSON.stringify(value)}`
  if (kind === 'port') {
    return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535 ? null : `${shownAs} must be a port, a whole number between 1 and 65535, not ${JSON.stringify(value)}`
  }
  if (kind === 'failpoint') return FAILPOINTS.includes(value as Failpoint) ? null : `failpoint must be one of ${FAILPOINTS.join(', ')}, not ${JSON.stringify(value)}`
  return typeof value === kind ? null : `${shownAs} must be a ${kind}, not ${JSON.stringify(value)}`
}

/**
 * A voter node's controller listener must not take its client listener's port, whatever the two hosts: KafkaConfig's
 * rule, "Each listener must have a different port". Hosts cannot be compared by their spelling (`--host localhost`
 * and a voter at 127.0.0.1 are one address, a name may resolve to several), and where they are one the node would
 * find its own port taken and say so, which reads as another program holding it.
 */
function checkOwnVoter(config: Partial<BrokerConfig>, voters: readonly QuorumVoter[]): void {
  const nodeId = config.nodeId ?? DEFAULT_CONFIG.nodeId
  const own = voters.find((voter) => voter.id === nodeId)
  const port = config.port ?? DEFAULT_CONFIG.port
  if (own && own.port === port && port !== 0) {
    throw new Error(`controller.quorum.voters gives node ${nodeId}'s controller listener port ${port}, which is its client port (--port ${port}): the controller listener needs a port of its own (brook dev puts it 100 above the client port)`)
  }
}

/**
 * A session no longer than the heartbeat interval fences every node between two of its heartbeats (the controller
 * counts a node alive for `broker.session.timeout.ms` after each), while its partitions go on being served: throws an
 * Error of one line naming both settings. Kafka's own advice keeps the session several heartbeats long.
 */
export function checkHeartbeats(config: Pick<Partial<BrokerConfig>, 'brokerHeartbeatIntervalMs' | 'brokerSessionTimeoutMs'>): void {
  const heartbeat = config.brokerHeartbeatIntervalMs ?? DEFAULT_CONFIG.brokerHeartbeatIntervalMs
  const session = config.brokerSessionTimeoutMs ?? DEFAULT_CONFIG.brokerSessionTimeoutMs
  if (session <= heartbeat) {
    throw new Error(`broker.session.timeout.ms (${session}) must be greater than broker.heartbeat.interval.ms (${heartbeat}): each node would be fenced between two of its heartbeats; keep the session several heartbeats long`)
  }
}

/** Checks what only the combined settings can show; throws an Error of one line naming the settings at fault. */
export function checkCombined(config: Partial<BrokerConfig>): void {
  const min = config.groupMinSessionTimeoutMs ?? DEFAULT_CONFIG.groupMinSessionTimeoutMs
  const max = config.groupMaxSessionTimeoutMs ?? DEFAULT_CONFIG.groupMaxSessionTimeoutMs
  if (min > max) {
    throw new Error(`group.min.session.timeout.ms (${min}) must not be greater than group.max.session.timeout.ms (${max})`)
  }
  if (config.controllerQuorumVoters !== undefined) {
    checkOwnVoter(config, parseQuorumVoters(config.controllerQuorumVoters))
    checkHeartbeats(config)
  } else if ((config.defaultReplicationFactor ?? 1) > 1) {
    throw new Error(`default.replication.factor (${config.defaultReplicationFactor}) above 1 needs --controller-quorum-voters: a single node keeps one replica of each partition`)
  }
  if (config.clusterId !== undefined) checkClusterId(config.clusterId)
  // An empty string is no value: Node would listen on every interface for --host '' (past the 0.0.0.0 check below),
  // Metadata would tell clients to connect to '' for --advertised-host '', and --data-dir '' would put the data in
  // ./db of the working directory.
  for (const [flag, value, wanted] of [
    ['--host', config.host, 'an interface to listen on'],
    ['--advertised-host', config.advertisedHost, 'the name or address clients reach this node by'],
    ['--data-dir', config.dataDir, 'a directory'],
  ] as const) {
    if (value !== undefined && value.trim() === '') throw new Error(`${flag} is empty: give ${wanted}`)
  }
  // A Kafka user's listener habit (advertised.listeners=PLAINTEXT://h:9092): Node would look the whole of it up as a
  // name, and Metadata would send clients to the host "h:9092".
  for (const [flag, value, portFlag] of [
    ['--host', config.host, '--port'],
    ['--advertised-host', config.advertisedHost, '--advertised-port'],
  ] as const) {
    if (value !== undefined && hasPort(value)) throw new Error(`${flag} ${value} is not a host: give the name or address alone, and the port as ${portFlag}`)
  }
  // KafkaConfig's rule: "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0". Metadata would send
  // every client to an address it cannot connect to.
  const advertised = config.advertisedHost ?? config.host ?? DEFAULT_CONFIG.host
  if (isUnspecifiedAddress(advertised)) {
    throw new Error(
      config.advertisedHost === undefined
        ? `--host ${advertised} listens on every interface, but clients cannot connect to ${bracketed(advertised)}: give --advertised-host, the name or address clients reach this node by`
        : `--advertised-host ${advertised} is not an address clients can connect to; give the name or address clients reach this node by`,
    )
  }
  // KafkaConfig's rule: the pool must hold one largest request, or that request could never be read.
  const queuedBytes = config.queuedMaxRequestBytes ?? DEFAULT_CONFIG.queuedMaxRequestBytes
  const requestMax = config.socketRequestMaxBytes ?? DEFAULT_CONFIG.socketRequestMaxBytes
  if (queuedBytes < requestMax) {
    throw new Error(`queued.max.request.bytes (${queuedBytes}) must not be smaller than socket.request.max.bytes (${requestMax})`)
  }
}
