/**
 * `runPipeline`: runs a topology on any Kafka cluster with kafkajs, as one instance of a consumer group named by the
 * application id. Instances share the work through the group: each gets a balanced, sticky set of tasks
 * (assignor.ts), restores their state, processes their partitions in micro-batches and commits.
 *
 * Task lifecycle (per task, in this instance):
 *
 *   assigned ──▶ restoring ──(changelog read up to its end offset at assignment)──▶ running ──▶ revoked/closed
 *      ▲   source partition paused; changelog partition read from the   source partition resumed at the position
 *      │   local checkpoint (or from the start when the local store is   saved with the state (the marker), commits
 *      │   missing or does not match the changelog)                      every commitIntervalMs
 *      └── every rebalance (kafkajs's protocol is eager): uncommitted work is dropped and the task re-initialized;
 *          a task that stays here replays nothing, its local store being current. Only restoring tasks wait.
 *
 * A commit (per task): emit-mode update results, then
 *   at_least_once: outputs (acks=all) ─▶ changelog: state changes, then the marker with the position ─▶ LevelDB
 *                  ─▶ group offset
 *   exactly_once:  one transaction of the task's producer (transactional.id <applicationId>-<taskId>, so a zombie
 *                  is fenced when the task starts elsewhere): outputs, changelog, sendOffsets, commit ─▶ LevelDB
 * A restore applies a commit's changelog records only with its marker (changelog.ts), which holds the task's input
 * position: it resumes exactly after the last commit that reached the changelog whole, so state never counts a
 * record twice (but for at_least_once after a crash cut a commit short in a changelog compacted since: changelog.ts,
 * R3). In at_least_once, outputs of a commit that did not reach the changelog are written again.
 */
import { EventEmitter } from 'node:events'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { join, resolve } from 'node:path'
import kafkajs, { type Admin, type Batch, type Consumer, type KafkaConfig, type KafkaMessage, type Message, type Producer, type RecordMetadata, type Transaction } from 'kafkajs'
import { GuaranteeError, ProcessorErrorCode, RecordError, StateEncodingError, TopologyError } from '../errors.js'
import { CacheBudget, TaskStore } from '../state/task-store.js'
import { lockStateDirectory, type StateDirectoryLock } from '../state/state-directory.js'
import { planTopology, type Plan, type SubTopology } from '../topology/plan.js'
import type { Topology } from '../topology/topology.js'
import { taskAssigner, taskId, topologyRefusal } from './assignor.js'
import { transactionsSupported, type ProcessingGuarantee } from './guarantee.js'
import { newMetrics, type Metrics } from './metrics.js'
import { deadLetterMessage, HeaderNames, Task, type OutputRecord, type PeekedRecord } from './task.js'
import { saslNotOffered } from './sasl.js'
import { socketFactory } from './sockets.js'
import { ensureTopics, lookUpTopics, plannedTopics, seedTopics } from './topics.js'
import { withTargetTopics } from './target-topics.js'
import { commitMessages, RestoreReader, type RestoreStep } from './changelog.js'
import { GlobalTables, type RowOrigin } from './global-tables.js'
import { COMPRESSION_TYPES, registerCodecs } from './codecs.js'
import type { CompressionName } from './compression-names.js'
import { GROUP_CONSUMER_RETRY, clusterUnavailable, consumerRestartDelayMs } from './consumer-restarts.js'
import { ClusterWait } from './cluster-wait.js'
import { guardFetches, onFailedFetch } from './fetch-guards.js'
import { skipAbortedTransactions } from './aborted-transactions.js'
import { sendPerPartition, WholeSends } from './whole-sends.js'
import { ALIGN_MAX_WAIT_MS, alignmentSlackMs, EventTimeAlignment } from './alignment.js'
import { topologyFingerprint } from './topology-fingerprint.js'

const { Kafka, Partitioners, logLevel } = kafkajs

/**
 * Due windows are closed this many groups at a time between records (WindowedAggregate.closeDue), and a task commits
 * between two such chunks once its next commit is large (Task.commitIsLarge): a window boundary of 200,000 groups is
 * then many commits of bounded size, with the event loop free (and the consumer heartbeating) between chunks,
 * instead of one commit of 600,000 records that outlives the session timeout.
 */
export const CLOSE_CHUNK_GROUPS = 1000
/** Chunks of due windows a tick closes while holding a task's lock; the next tick, or the task's next batch, goes on. */
const CLOSE_CHUNKS_PER_TICK = 20
/** Processing failures in a row at one source offset after which the pipeline stops (failedTooOften). */
const MAX_FAILURES_IN_A_ROW = 3

/**
 * Outputs and changelog records are sent in chunks of at most this many records (and 512 KiB): kafkajs groups the
 * messages of one send by partition in time quadratic in their number (it copies the partition's list for each).
 */
const OUTPUT_CHUNK_RECORDS = 500
const CHANGELOG_CHUNK_RECORDS = 500

/** A commit's failure met while closing due windows: recovered from, not held against a record (failedTooOften). */
class CommitError extends Error {
  constructor(override readonly cause: Error) {
    super(cause.message)
  }
}

/** How often a task deletes the committed part of the repartition topic it reads (DeleteRecords). */
const REPARTITION_PURGE_INTERVAL_MS = 30_000

/**
 * The request timeout (ms) of the clients whose answers nothing waits for: the repartition purges and the looks at
 * source ends of idle advancement. kafkajs's disconnect waits for the requests under way, so with the client's usual
 * 30 s (and its retries) a request that a broker accepted and never answered (its node paused, a network that drops
 * rather than refuses) held a pipeline's stop that long. DeleteRecords asks the leader to answer within 5 s (kafkajs's
 * `timeout`, waiting for the followers' log starts), so one unanswered a second later has a leader that is gone; a
 * purge that fails loses nothing (the next one, after the next start too, deletes those records as well), and a look
 * that fails counts as the cluster not answering. Kafka Streams does not wait for its purges either.
 */
const PROMPT_REQUEST_TIMEOUT_MS = 6000

/**
 * What a failed purge (admin.deleteTopicRecords) says. kafkajs 2.2.4's retry handler there reads `partitions` of any
 * retriable error, and one that is not about partitions (the connection to the leader closed or refused, a request
 * timed out: a node killed, a network cut) has none, so the call fails with a TypeError of its own (`Cannot read
 * properties of undefined (reading 'some')`) in place of the cause, which is then lost (`test/processor/purge.test.ts`).
 */
function purgeFailure(error: Error, partition: string): string {
  // kafkajs's retrier hands the TypeError on inside a KafkaJSNonRetriableError, under the same message.
  if (/^Cannot read properties of undefined \(reading 'some'\)$/.test(error.message)) return `the request to the leader of ${partition} got no answer (a connection lost or refused, or a request timed out: kafkajs 2.2.4 does not say which)`
  // kafkajs's KafkaJSDeleteTopicRecordsError says only "Error while deleting records"; each partition's error says why.
  const partitions = (error as Error & { partitions?: { partition: number; error?: Error }[] }).partitions
  const why = partitions?.flatMap((p) => (p.error ? [`partition ${p.partition}: ${p.error.message}`] : [])) ?? []
  return why.length > 0 ? `${error.message} (${why.join('; ')})` : error.message
}

/** Backoff between attempts to re-initialize a failed task (recover): first, and at most. */
const RECOVER_BACKOFF_MS = 250
const RECOVER_BACKOFF_MAX_MS = 5000
/**
 * Retries of a task's transactional producer for one send. kafkajs retries an idempotent producer's sends forever
 * (warning that fewer retries may break exactly-once); with a transaction around every send, a send that gives up
 * only aborts its transaction, and the task starts again from its last commit. With kafkajs's backoff (from the
 * client's `retry.initialRetryTime`, 300 ms, doubling) and each wait at most TRANSACTION_SEND_MAX_WAIT_MS, 25 retries
 * give up after about 24 s, as Kafka's `delivery.timeout.ms` (120 s) bounds a send: a topic deleted under the
 * pipeline then stops it (deletedTopics) instead of holding its commits forever.
 */
const TRANSACTION_SEND_RETRIES = 25
/**
 * The longest wait between two tries of a send, unless the client's `retry.maxRetryTime` says otherwise: Kafka's
 * producer's retry.backoff.max.ms (KIP-580). A send to a partition whose leader died goes through within this long of
 * the new leader (the controller moves it once it fences the node, after broker.session.timeout.ms, 9 s). With 5 s,
 * as it was, the try just before the election failed and the next came 5 s later: on a 3-node `brook dev` whose
 * repartition topic's leader was killed with kill -9, the output came 5-6.5 s after the new leader in every trial
 * (9-12 s after the kill with 1 s); with kafkajs's own cap, 30 s, the next try could come 19 s after it, holding the
 * task's commits, and a clean stop's final commit, as long.
 */
const TRANSACTION_SEND_MAX_WAIT_MS = 1000
/**
 * How long a task's sendOffsets is tried again while its failure only says that a coordinator could not be reached
 * (ms), and the waits between tries: first and at most (doubling). kafkajs 2.2.4 gives up on the group coordinator
 * sooner than a coordinator failover takes: a TxnOffsetCommit whose connection closes (the coordinator's node killed
 * under it) fails at once, and a coordinator lookup while the dead node still leads its `__consumer_offsets` partition
 * (until the controller fences it, broker.session.timeout.ms, 9 s) fails after kafkajs's client-level retries,
 * about 5 s; the commit then failed and the task was re-initialized, processing its records since the last commit
 * again. Kafka's producer looks the coordinator up again and retries its TxnOffsetCommit until its max.block.ms
 * (60 s). The transaction stays open meanwhile (its timeout is 60 s), and a stopping pipeline stops trying.
 */
const SEND_OFFSETS_RETRY_MS = 30_000
const SEND_OFFSETS_BACKOFF_MS = 250
const SEND_OFFSETS_BACKOFF_MAX_MS = 1000
/**
 * How old a task producer's metadata may be at a send before kafkajs asks the cluster again (its `metadataMaxAge`;
 * the default, Kafka's metadata.max.age.ms, is 5 minutes). kafkajs 2.2.4 looks a coordinator up (FindCoordinator, at
 * every sendOffsets and whenever it must find the transaction coordinator again) through a broker of its metadata
 * picked at random, and one that is dead (a node killed with kill -9: its connection refused) fails the lookup, which
 * kafkajs tries again after its backoff without refreshing the metadata: a dead node that led none of the
 * producer's partitions stayed in it, and held up about every third lookup, for 5 minutes. On a 3-node `brook dev`
 * with a node killed that only followed the pipeline's partitions, the commits took 1-3 s from then on, and output
 * that came every 1.4 s came every 3 s (gaps of 2.5-5 s); with this age, every 1.3 s from 15 s after the kill. Kafka's
 * producer asks for metadata again as soon as a connection fails. Here the first send once the controller has fenced
 * the node (broker.session.timeout.ms) and the metadata is 10 s old leaves the node out; a Metadata request for the
 * pipeline's topics every 10 s a task costs little.
 */
const TASK_PRODUCER_METADATA_MAX_AGE_MS = 10_000
/** A topic of the pipeline is taken as deleted when missing at two looks this far apart. */
const DELETED_TOPIC_RECHECK_MS = 1000

/** How long a consumer kafkajs stopped may take to report a crash (and whether it restarts) before it counts as stopped for good. */
const CONSUMER_STOPPED_GRACE_MS = 5000

/** kafkajs's partitionsConsumedConcurrently: how many tasks' batches are in flight at once. */
const PARTITIONS_CONCURRENTLY = 4

/**
 * Idle advancement counts a quiet stretch only while looks at the cluster confirm it at most this far apart (or four
 * ticks, if longer): a longer gap (the cluster unreachable, a tick stuck behind a commit in retries) starts it again.
 */
const MAX_UNCONFIRMED_MS = 1000

export interface RunOptions {
  /** Group id of the instances and prefix of the internal topics. */
  applicationId: string
  /** `host:port[,host:port]` or a list. */
  bootstrapServers: string | readonly string[]
  /**
   * exactly_once needs a cluster with transactions. Left out, the pipeline runs exactly_once, or at_least_once with a
   * log line when the cluster does not offer the transaction APIs; given as exactly_once, such a cluster makes
   * runPipeline reject instead. Either way a cluster that does not answer definitively (a node down, a transaction
   * coordinator not yet elected) is asked again for up to a minute, and then runPipeline rejects: the guarantee is
   * never lowered on a guess.
   */
  processingGuarantee?: ProcessingGuarantee
  /** Where task stores live: `<stateDir>/<taskId>/`. Default `.brook/processor/<applicationId>`. One per instance. */
  stateDir?: string
  /** How often each task commits (ms, default 1000); also how often emit-mode update results are written. */
  commitIntervalMs?: number
  /** After its partition has been quiet this long (ms, default 10000; confirmed by the cluster), a task's stream time follows the wall clock. */
  idleTimeoutMs?: number
  /** Byte budget of the instance's state caches (default 64 MiB). */
  cacheMaxBytes?: number
  /** Consumer session timeout (ms, default 10000): how soon the group notices a dead instance. */
  sessionTimeoutMs?: number
  /**
   * How old the group consumer's metadata may get before it asks again (ms, default 300000, Kafka's
   * metadata.max.age.ms): partitions added to a source topic are noticed within it, and stop the pipeline when the
   * source has state (its changelog keeps the old count).
   */
  metadataMaxAgeMs?: number
  /** Late records topic (default `<applicationId>-late`). */
  lateTopic?: string
  /** Dead-letter topic (default `<applicationId>-dlq`). */
  deadLetterTopic?: string
  /** Partitions of source topics the pipeline creates (default 1). */
  partitions?: number
  /**
   * Whether source tasks writing to a repartition topic that a window reads are held back by event time, so that
   * catching up on a backlog does not make records late behind a `keyBy` (runtime/alignment.ts; default true).
   * false catches up with fewer, larger commits, and a backlog can then send records to the late-records topic.
   * `{ maxWaitMs }` keeps it on and sets how long (ms, default 1000) a task with records still to read holds the others
   * back without news of it, and how long a held task waits at most, much as Kafka Streams' `max.task.idle.ms` bounds
   * its wait for a partition with nothing buffered: where fetches can take longer (a loaded machine, a distant
   * cluster), a task waited on for longer than that runs ahead, and its records can come late behind the `keyBy`.
   */
  eventTimeAlignment?: boolean | { maxWaitMs: number }
  /** Replication factor of topics the pipeline creates (default -1: the cluster's default). */
  replicationFactor?: number
  /**
   * The codec of every batch the pipeline writes (outputs, changelogs, repartition, late and dead-letter records), as
   * Kafka Streams' `producer.compression.type`: none (the default), gzip, snappy, lz4 or zstd. A topic whose own
   * compression.type names a codec stores its batches with that one whatever the producer chose.
   */
  compressionType?: CompressionName
  /** More kafkajs client settings (ssl, sasl, clientId, connectionTimeout...) for other clusters. */
  kafka?: Omit<KafkaConfig, 'brokers'>
  /** Progress and warnings, one line each (default: stderr, prefixed `brook processor:`). */
  log?: (line: string) => void
  /** Where console sinks print (default: stdout). */
  print?: (line: string) => void
  /**
   * The emitter the pipeline emits its events on (RunningPipeline.events; default: a new one). The first assignment,
   * and often the first restores, happen before runPipeline resolves, so a listener added to `events` once it has
   * resolved misses them: add listeners to an emitter of your own and pass it here, as Kafka Streams takes its state
   * listener before `start()`.
   */
  events?: EventEmitter
  /**
   * Aborts the start. A start against a cluster that does not answer can take minutes (each client's connection waits
   * out its request timeout; the exactly_once probe asks for up to a minute); once this signal aborts, runPipeline
   * stops waiting, closes what it connected, releases the state directory and rejects with the signal's reason (an
   * `AbortError`, or the `TimeoutError` of `AbortSignal.timeout(ms)`), as `fetch` and Node's `events.once` do. A
   * request already sent is left to end on its own; a client it connects after the abort is disconnected. An abort
   * once runPipeline has resolved does nothing: `stop()` stops a running pipeline.
   */
  signal?: AbortSignal
}

/** What an output event carries (emitted after the commit that wrote it). */
export interface OutputEvent {
  topic: string
  key: string | null
  value: Buffer | string | null
}

export interface TaskStatus {
  id: string
  state: 'restoring' | 'running' | 'suspended'
  /** Next input offset (null before the first record or commit). */
  position: string | null
}

export interface RunningPipeline {
  readonly applicationId: string
  readonly instanceId: string
  /** The guarantee in force (at_least_once in place of the default exactly_once when the cluster has no transactions). */
  readonly processingGuarantee: ProcessingGuarantee
  metrics(): Metrics & { tasks: TaskStatus[] }
  /** 'output' (OutputEvent) after each commit, 'assigned' (task ids), 'restored' (task id, records, ms); RunOptions.events when given, so that listeners added before the start hear the first assignment. */
  readonly events: EventEmitter
  /**
   * Commits what has been processed, leaves the group and closes the stores. Called again, or after the pipeline
   * crashed, it resolves once the pipeline has stopped (a crash's error is `closed`'s, not stop()'s).
   */
  stop(): Promise<void>
  /** Settles when the pipeline stops: resolves after stop(), rejects if it crashed. */
  readonly closed: Promise<void>
}

class Lock {
  private tail: Promise<unknown> = Promise.resolve()
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn)
    this.tail = result.catch(() => {})
    return result
  }
}

interface Slot {
  id: string
  sub: SubTopology
  partition: number
  task: Task
  state: TaskStatus['state']
  lock: Lock
  restoreStartedMs: number
  restoredRecords: number
  /** Bumped at every (re)initialization: async work of an older one is ignored. */
  epoch: number
  /** When the task last deleted committed records of its repartition topic. */
  purgedMs: number
  /** The restore in progress: commits whose records were read but whose marker was not yet. */
  reader: RestoreReader
  /**
   * The source offset after the last one fetched while running, control records included (a transaction's marker
   * is never a record the task processes, so its position alone would never reach the partition's end).
   */
  fetchedTo: number
  producer?: Producer
  /** The transaction the task's repartition outputs were written ahead into (writeAhead), which its next commit ends. */
  transaction?: Transaction
  /** What an aligned task kept back of a batch when it was held (processRecords), and whether its partition had more. */
  heldBack: { messages: KafkaMessage[]; lagging: boolean } | null
  /** Outputs written ahead of the next commit: counted and reported when it is durable, dropped with it otherwise. */
  writtenAhead: OutputRecord[]
  /** Where the task resumes when its store has no position: the group's committed offset, or the partition's start. */
  resumeAt: bigint
  /** The group's committed offset of the task's source partition when the task was initialized, null for none. */
  groupOffset: bigint | null
  /** The source offset processing last failed at (the record's, or the position when none was at fault), and how often in a row. */
  failure?: { offset: bigint; times: number }
}

/**
 * Kafka error codes that refuse the records themselves, whoever sends them and however often: CORRUPT_MESSAGE (2),
 * MESSAGE_TOO_LARGE (10), RECORD_LIST_TOO_LARGE (18), INVALID_TIMESTAMP (32, e.g. an event time far in the future
 * carried as a repartition record's timestamp, past the topic's message.timestamp.after.max.ms), INVALID_RECORD (87).
 */
const REFUSED_RECORD_CODES = new Set([2, 10, 18, 32, 87])

/** MESSAGE_TOO_LARGE: a record above the topic's max.message.bytes. */
const MESSAGE_TOO_LARGE = 10

/** INVALID_TIMESTAMP: a record stamped outside the topic's message.timestamp.before/after.max.ms (KIP-937). */
const INVALID_TIMESTAMP = 32

/** `error` and the errors it wraps (kafkajs's `cause`: its retrier wraps the last failure), five deep at most. */
function* causes(error: unknown): Generator<{ code?: unknown; type?: unknown; name?: unknown; cause?: unknown }> {
  for (let e = error as { cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) yield e
}

/**
 * Whether the cluster said it does not know a topic (UNKNOWN_TOPIC_OR_PARTITION), in `error` or an error it wraps.
 * kafkajs 2.2.4 names topics in its Fetch and Metadata requests, so it never meets UNKNOWN_TOPIC_ID (KIP-516), which
 * its error table lacks.
 */
function topicUnknown(error: unknown): boolean {
  for (const e of causes(error)) if (e.type === 'UNKNOWN_TOPIC_OR_PARTITION') return true
  return false
}

/** The refusal of the records sent (REFUSED_RECORD_CODES) that `error`, or an error it wraps, is; null if none. */
function recordsRefused(error: unknown): { code: number; type: string } | null {
  for (const e of causes(error)) {
    if (e.name === 'KafkaJSProtocolError' && typeof e.code === 'number' && REFUSED_RECORD_CODES.has(e.code)) return { code: e.code, type: String(e.type) }
  }
  return null
}

/**
 * A refusal of what a task wrote, said as such: its failures are counted at its last commit's offset, not at a
 * record's, so the error says the records were written since then (the record at that offset is not to blame), and,
 * for INVALID_TIMESTAMP, which records carry a timestamp the pipeline did not choose; for MESSAGE_TOO_LARGE in a task
 * with state, that a group's state is one record of `changelogTopic` and what to do about it.
 */
function refusedRecordsError(error: Error, refusal: { code: number; type: string }, changelogTopic: string | null): Error {
  const hint = refusal.code === INVALID_TIMESTAMP
    ? ': records stamped with their event time (repartition records, of a keyBy or of the repartition a countByValue or groupBy makes; sinks with timestamp \'event\') are refused past the topic\'s message.timestamp.after.max.ms; filter readings stamped that far ahead out before that operator or sink'
    : refusal.code === MESSAGE_TOO_LARGE && changelogTopic !== null
      ? `: a record above its topic's max.message.bytes, an output or a group's state, which is one record of ${changelogTopic} holding every stateful operator's state of the group and every open window (the operators each keep theirs within 1,000,000 bytes; a changelog the pipeline creates takes them together, one that existed before may not); raise that topic's max.message.bytes, or keep less state per group`
      : ''
  return new Error(`the cluster refused records the task wrote since its last commit (${refusal.type}: ${error.message})${hint}`, { cause: error })
}

/** The event time of the first record of `messages` at or past the task's position; null when none can be read. */
function firstEventTime(task: Task, messages: readonly KafkaMessage[]): number | null {
  const position = task.position === null ? -1 : Number(task.position)
  const first = messages.find((message) => Number(message.offset) >= position)
  return first ? (task.peek(first)?.ts ?? null) : null
}

function brokersOf(servers: string | readonly string[]): string[] {
  return (typeof servers === 'string' ? servers.split(',') : [...servers]).map((s) => s.trim()).filter((s) => s.length > 0)
}

/**
 * Starts a pipeline instance; resolves once it has joined its group (tasks then restore and run). Rejects when it
 * cannot start (a topology that does not fit the cluster's topics; its topics not ready within a minute, topics.ts;
 * exactly_once without a definitive answer about transactions within a minute, or asked for explicitly of a cluster
 * without them, guarantee.ts), after closing whatever it had connected or opened.
 */
export async function runPipeline(topology: Topology, options: RunOptions): Promise<RunningPipeline> {
  options.signal?.throwIfAborted()
  const runner = new Runner(topology, options)
  try {
    await runner.start()
  } catch (error) {
    // Whatever connected or opened before the failure is closed, so that a caller's process can exit, and a state
    // directory the start made for nothing is removed.
    await runner.stop()
    runner.removeStateDirectoryIfUnused()
    throw error
  }
  return runner
}

class Runner implements RunningPipeline {
  readonly applicationId: string
  readonly instanceId = randomUUID()
  processingGuarantee: ProcessingGuarantee
  readonly events: EventEmitter
  readonly closed: Promise<void>
  private readonly plan: Plan
  /** The plan's fingerprint (topology-fingerprint.ts), which the group's leader compares with its own (assignor.ts). */
  private readonly topology: string
  /** What every send of the pipeline's producers carries: acks=all and RunOptions.compressionType. */
  private readonly sendSettings: { acks: -1; compression: (typeof COMPRESSION_TYPES)[CompressionName] }
  private readonly kafka: InstanceType<typeof Kafka>
  /** The clients whose requests time out after PROMPT_REQUEST_TIMEOUT_MS: `kafka`'s settings otherwise. */
  private readonly promptKafka: InstanceType<typeof Kafka>
  private readonly counters = newMetrics()
  private readonly slots = new Map<string, Slot>()
  private readonly budget: CacheBudget
  /** The global tables' cache (global-table-store.ts): the other half of cacheMaxBytes when the topology has any. */
  private readonly tablesBudget: CacheBudget
  private readonly stateDir: string
  private readonly commitIntervalMs: number
  private readonly idleTimeoutMs: number
  private readonly log: (line: string) => void
  private readonly print: (line: string) => void
  private readonly topicSub = new Map<string, { sub: SubTopology; changelog: boolean }>()
  /** By sub-topology index: the event-time alignment of source tasks that write to a repartition topic read by a window (alignment.ts). */
  private readonly alignments = new Map<number, EventTimeAlignment<Slot>>()
  /** Every topic the pipeline reads or writes (ensureTopics). */
  private topics: readonly string[] = []
  private admin!: Admin
  /** Places output messages on their partitions and checks that each send's answer names them all (whole-sends.ts). */
  private sends!: WholeSends
  private consumer!: Consumer
  private producer?: Producer
  private tables?: GlobalTables
  /** Writes the rows of global tables that cannot be read to the dead-letter topic (no transaction: no task owns them). */
  private tablesProducer?: Producer
  /** Repartition purges (DeleteRecords) under way. */
  private readonly purges = new Set<Promise<void>>()
  /**
   * The last purge asked for: each runs once the one before has ended. kafkajs 2.2.4's admin keeps the metadata of the
   * topics its last fetchTopicMetadata named only, so two purges of different repartition topics at once each found
   * the other's topic in its place and failed ("Could not find the leader for the partition").
   */
  private purgeTail: Promise<void> = Promise.resolve()
  /** Whether start() has ended: until then an aborted RunOptions.signal lets shutdown leave clients to disconnect on their own. */
  private startEnded = false
  /** The purges' admin client (purgeAdmin), once a purge asked for it. */
  private purger?: Promise<Admin>
  /** Held from the start of `start()` to the end of the shutdown: no other instance uses the state directory meanwhile. */
  private stateLock?: StateDirectoryLock
  private ticker?: NodeJS.Timeout
  private readonly tickMs: number
  /** Looks at source end offsets for idle advancement: no retries, so an unreachable cluster answers at once. */
  private looker!: Admin
  /** Looks still waiting for an answer, by topic: a tick neither waits for them nor asks again. */
  private readonly looking = new Map<string, Promise<unknown>>()
  private ticking = false
  /** Rebalances, consumer stops and joins this instance has seen (a task's recovery stops retrying when one comes: reconcile takes over). */
  private rebalances = 0
  private stopping = false
  /** Aborted when the pipeline stops: ends a consumer restart's backoff. */
  private readonly stopped = new AbortController()
  /** When the current consumer stopped without the runner asking (kafkajs's crash handling), until it joins again. */
  private consumerStoppedMs: number | null = null
  /** Whether kafkajs reported, after the consumer's last stop, that it starts the consumer again itself. */
  private restartAnnounced = false
  /** Consumer restarts since the last join (restartConsumer's backoff). */
  private consumerRestarts = 0
  /** The group consumer's member id at its last join (a new one is said in the log: memberJoined). */
  private memberId?: string
  /** Whether a consumer restart is waiting out its backoff (restartConsumer). */
  private restartingConsumer = false
  /** The last consumer restart (shutdown waits for it, so that no consumer it starts outlives the pipeline). */
  private consumerRestart: Promise<void> = Promise.resolve()
  /**
   * Stop handing the failed fetches of the group consumer and of the global tables' consumer to noticeUnknownTopic
   * (set up by start, called by shutdown).
   */
  private stopHearingFetches: (() => void)[] = []
  /** Whether a look for deleted topics that an unknown topic started is under way (noticeUnknownTopic). */
  private lookingForDeletedTopics = false
  /** Says when the pipeline waits for the cluster, reminds while it does, and says when processing resumes. */
  private readonly clusterWait = new ClusterWait({
    log: (line) => this.log(line),
    resumed: () => !this.stopping && this.consumerStoppedMs === null && !this.restartingConsumer && [...this.slots.values()].every((slot) => slot.state === 'running'),
    waitingFor: () => this.waitingFor(),
  })
  private reconciling: Promise<void> = Promise.resolve()
  private settle!: { resolve: () => void; reject: (error: Error) => void }

  constructor(
    topology: Topology,
    private readonly options: RunOptions,
  ) {
    this.applicationId = options.applicationId
    this.events = options.events ?? new EventEmitter()
    this.plan = planTopology(topology, { applicationId: options.applicationId, lateTopic: options.lateTopic, deadLetterTopic: options.deadLetterTopic })
    this.topology = topologyFingerprint(this.plan)
    this.processingGuarantee = options.processingGuarantee ?? 'exactly_once'
    const compression = options.compressionType ?? 'none'
    if (!Object.hasOwn(COMPRESSION_TYPES, compression)) throw new Error(`compressionType must be one of ${Object.keys(COMPRESSION_TYPES).join(', ')}, not '${compression}'`)
    this.sendSettings = { acks: -1, compression: COMPRESSION_TYPES[compression] }
    this.commitIntervalMs = options.commitIntervalMs ?? 1000
    this.idleTimeoutMs = options.idleTimeoutMs ?? 10_000
    this.tickMs = Math.max(50, Math.min(this.commitIntervalMs, this.idleTimeoutMs) / 4)
    const maxWaitMs = typeof options.eventTimeAlignment === 'object' ? options.eventTimeAlignment.maxWaitMs : ALIGN_MAX_WAIT_MS
    if (!(maxWaitMs > 0 && maxWaitMs < Number.POSITIVE_INFINITY)) throw new Error(`eventTimeAlignment.maxWaitMs must be a positive number of ms, not ${maxWaitMs}`)
    for (const sub of this.plan.subtopologies) {
      const slackMs = alignmentSlackMs(this.plan, sub)
      if (slackMs === null || options.eventTimeAlignment === false) continue
      this.alignments.set(sub.index, new EventTimeAlignment<Slot>(slackMs, (slot) => slot.state === 'running' && this.slots.get(slot.id) === slot, maxWaitMs))
    }
    // As Kafka Streams divides statestore.cache.max.bytes among its stream threads and its global thread
    // (KafkaStreams.cacheSizePerThread): one instance is one stream thread here, so with global tables the task stores
    // and the global tables' store get half each, and neither pushes the other's entries out.
    const cacheMaxBytes = options.cacheMaxBytes ?? 64 * 1024 * 1024
    const globalTables = this.plan.tables.some((t) => t.kind === 'topic')
    this.budget = new CacheBudget(globalTables ? cacheMaxBytes / 2 : cacheMaxBytes)
    this.tablesBudget = new CacheBudget(cacheMaxBytes / 2)
    this.stateDir = resolve(options.stateDir ?? join('.brook', 'processor', options.applicationId))
    this.log = options.log ?? ((line) => process.stderr.write(`brook processor: ${line}\n`))
    this.print = options.print ?? ((line) => process.stdout.write(`${line}\n`))
    const brokers = brokersOf(options.bootstrapServers)
    if (brokers.length === 0) throw new TopologyError('no bootstrap server given')
    // Topics written by other producers may hold snappy, lz4 or zstd batches, which kafkajs cannot read by itself.
    registerCodecs()
    // A consumer stopped while kafkajs rebuilds its fetchers (a node fenced or back) would otherwise hold the event
    // loop for good (a clean stop that never ends, deaf to a second Ctrl-C), and one whose fetches fail for longer
    // than its session timeout (a dead partition leader) would be evicted from its group (fetch-guards.ts).
    guardFetches()
    // kafkajs hands out records of aborted transactions that began before a fetch's records (aborted-transactions.ts).
    skipAbortedTransactions()
    const kafkaConfig: KafkaConfig = { clientId: `${options.applicationId}-processor`, logLevel: logLevel.NOTHING, socketFactory: socketFactory(), ...options.kafka, brokers }
    this.kafka = new Kafka(kafkaConfig)
    this.promptKafka = new Kafka({ ...kafkaConfig, requestTimeout: PROMPT_REQUEST_TIMEOUT_MS })
    for (const sub of this.plan.subtopologies) {
      this.topicSub.set(sub.sourceTopic, { sub, changelog: false })
      if (sub.changelogTopic) this.topicSub.set(sub.changelogTopic, { sub, changelog: true })
    }
    this.closed = new Promise((resolve, reject) => (this.settle = { resolve, reject }))
    this.closed.catch(() => {})
  }

  /** After a failed start and its stop: the state directory goes if the start made it and no task store is in it. */
  removeStateDirectoryIfUnused(): void {
    this.stateLock?.removeIfUnused()
  }

  metrics() {
    return { ...this.counters, tasks: [...this.slots.values()].map((s) => ({ id: s.id, state: s.state, position: s.task.position?.toString() ?? null })) }
  }

  async start(): Promise<void> {
    this.stateLock = await lockStateDirectory(this.stateDir, this.instanceId)
    const scout = this.kafka.admin()
    let seeds: string[]
    try {
      await this.startStep(this.connect(scout), () => scout.disconnect()).catch((error: unknown) => {
        const sasl = saslNotOffered(error)
        throw sasl === null ? error : new Error(sasl, { cause: error })
      })
      seeds = await this.startStep(seedTopics(scout, plannedTopics(this.plan)))
      // A table is read from a topic the pipeline does not make (as a Kafka Streams GlobalKTable's source): one that
      // is missing ends the start here, before any topic is created, naming it.
      const tables = this.plan.tables.flatMap((t) => (t.kind === 'topic' ? [t] : []))
      const found = await this.startStep(lookUpTopics(scout, tables.map((t) => t.topic)))
      const missing = tables.filter((t) => !found.has(t.topic))
      if (missing.length > 0) {
        const names = missing.map((t) => t.topic).join(', ')
        throw new TopologyError(`global table topic${missing.length === 1 ? ` ${names} does` : `s ${names} do`} not exist: create ${missing.length === 1 ? 'it' : 'them'} first (a global table reads an existing topic, usually compacted)`)
      }
    } finally {
      await this.disconnect(scout)
    }
    // The clients that refresh metadata before they name a topic (the admin's CreateTopics, the transactions probe)
    // start with the pipeline's existing topics, not every topic in the cluster (target-topics.ts).
    this.admin = withTargetTopics(this.kafka, seeds, () => this.kafka.admin())
    await this.startStep(this.connect(this.admin), () => this.admin.disconnect())
    this.looker = this.promptKafka.admin({ retry: { retries: 0 } })
    const looker = this.looker
    await this.startStep(this.connect(looker), () => looker.disconnect())
    // Before the topics are made: a start that fails here has created none.
    if (this.processingGuarantee === 'exactly_once') {
      const probe = await this.startStep(transactionsSupported(this.kafka, this.applicationId, { log: this.log, topics: seeds, signal: this.options.signal }))
      if (!probe.supported && this.options.processingGuarantee === 'exactly_once') {
        throw new GuaranteeError(
          ProcessorErrorCode.transactionsUnsupported,
          `exactly_once needs transactions, which the cluster does not support (${probe.reason}); run with processingGuarantee at_least_once (--processing-guarantee at_least_once) to process without them`,
        )
      }
      if (!probe.supported) {
        this.log(`the cluster does not support transactions (${probe.reason}); running at_least_once instead of exactly_once (the default; asked for explicitly, exactly_once makes this an error)`)
        this.processingGuarantee = 'at_least_once'
      }
    }
    this.topics = await this.startStep(ensureTopics(this.admin, this.plan, { partitions: this.options.partitions ?? 1, replicationFactor: this.options.replicationFactor ?? -1 }, this.log))
    this.sends = new WholeSends(this.admin)
    await this.startStep(this.sends.learn(this.topics))
    if (this.processingGuarantee === 'at_least_once') {
      this.producer = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
      const producer = this.producer
      await this.startStep(this.connect(producer), () => producer.disconnect())
    }
    if (this.plan.tables.some((t) => t.kind === 'topic')) {
      this.tablesProducer = this.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
      const tablesProducer = this.tablesProducer
      await this.startStep(this.connect(tablesProducer), () => tablesProducer.disconnect())
      const deadLetter = async (key: Buffer | string, value: Buffer | null, error: RecordError, row: RowOrigin) => {
        const origin = { [HeaderNames.errorTopic]: row.topic, [HeaderNames.errorPartition]: String(row.partition), [HeaderNames.errorOffset]: row.offset }
        await this.tablesProducer!.send({ topic: this.plan.deadLetterTopic, messages: [deadLetterMessage(key, value, error, origin)], ...this.sendSettings })
        this.counters.deadLetters++
      }
      const tablesGroup = `${this.applicationId}-global-${this.instanceId}`
      this.tables = new GlobalTables(this.kafka, { ...GROUP_CONSUMER_RETRY, ...this.options.kafka?.retry }, this.admin, this.plan.tables, tablesGroup, this.stateDir, this.tablesBudget, this.log, deadLetter, (error) => this.crash(error))
      await this.startStep(this.tables.start())
      this.stopHearingFetches.push(onFailedFetch(tablesGroup, (error) => this.noticeUnknownTopic(error)))
    }
    this.stopHearingFetches.push(onFailedFetch(this.applicationId, (error) => this.noticeUnknownTopic(error)))
    await this.startStep(this.startConsumer())
    this.ticker = setInterval(() => void this.tick(), this.tickMs)
    this.startEnded = true
    this.log(`${this.applicationId}: instance ${this.instanceId} started (${this.processingGuarantee}, ${this.plan.subtopologies.length === 1 ? '1 sub-topology' : `${this.plan.subtopologies.length} sub-topologies`})`)
  }

  /**
   * Disconnects `client`, without waiting when RunOptions.signal aborted the start: kafkajs's disconnect waits for a
   * connect still under way, which against a cluster that does not answer ends only at its request timeout.
   */
  private async disconnect(client: { disconnect(): Promise<void> } | undefined): Promise<void> {
    const closing = client?.disconnect().catch(() => {})
    if (this.startEnded || this.options.signal?.aborted !== true) await closing
  }

  /**
   * `step` of the start, unless RunOptions.signal aborts first: then rejects with the signal's reason, and leaves
   * `step` to end on its own, running `undo` on what it resolves to (a client it connected is disconnected).
   */
  private async startStep<T>(step: Promise<T>, undo?: (value: T) => Promise<unknown>): Promise<T> {
    const signal = this.options.signal
    if (signal === undefined) return step
    let onAbort = (): void => {}
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason)
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    })
    try {
      return await Promise.race([step, aborted])
    } catch (error) {
      if (signal.aborted) step.then((value) => undo?.(value).catch(() => {}), () => {})
      throw error
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }

  /**
   * Creates the group consumer, connects it, subscribes it to the pipeline's sources and changelogs and runs it;
   * resolves once it has joined the group (or its first join failed, which its CRASH event reports).
   */
  private async startConsumer(): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.applicationId,
      partitionAssigners: [taskAssigner(this.plan, { topology: this.topology, ownedTasks: () => [...this.slots.keys()] })],
      sessionTimeout: this.options.sessionTimeoutMs ?? 10_000,
      heartbeatInterval: Math.min(3000, Math.floor((this.options.sessionTimeoutMs ?? 10_000) / 4)),
      rebalanceTimeout: 30_000,
      metadataMaxAge: this.options.metadataMaxAgeMs ?? 300_000,
      maxWaitTimeInMs: 250,
      readUncommitted: false,
      allowAutoTopicCreation: false,
      // Rides out a dead partition leader (GROUP_CONSUMER_RETRY); the client's own `retry` settings, when given, win.
      retry: { ...GROUP_CONSUMER_RETRY, ...this.options.kafka?.retry },
    })
    this.consumer = consumer
    this.consumerStoppedMs = null
    // A consumer replaced by restartConsumer may still report; only the current one's events count.
    const current = (): boolean => this.consumer === consumer
    const { GROUP_JOIN, REBALANCING, CRASH, END_BATCH_PROCESS, STOP } = consumer.events
    consumer.on(REBALANCING, () => {
      if (current()) this.suspendTasks()
    })
    consumer.on(GROUP_JOIN, ({ payload }) => {
      if (this.stopping) {
        void consumer.disconnect().catch(() => {})
        return
      }
      if (!current()) return
      this.memberJoined(payload.memberId)
      this.consumerStoppedMs = null
      this.consumerRestarts = 0
      // Recoveries still retrying stop: reconcile initializes every task of the new assignment.
      this.rebalances++
      const assignment = payload.memberAssignment as Record<string, number[]>
      const topics = Object.entries(assignment).filter(([, ps]) => ps.length > 0).map(([topic, ps]) => ({ topic, partitions: ps }))
      if (topics.length > 0) consumer.pause(topics)
      else void this.refusedByLeader(payload.memberId)
      this.reconciling = this.reconciling.then(() => this.reconcile(assignment)).catch((error) => this.crash(error as Error))
    })
    consumer.on(END_BATCH_PROCESS, ({ payload }) => {
      if (!current()) return
      const route = this.topicSub.get(payload.topic)
      if (!route) return
      const slot = this.slots.get(taskId(route.sub.index, payload.partition))
      // Batches of control records only (transaction markers) reach no eachBatch: this is where they show.
      if (!route.changelog && slot?.state === 'running' && !this.alignments.get(route.sub.index)?.held(slot)) slot.fetchedTo = Math.max(slot.fetchedTo, Number(payload.lastOffset) + 1)
      // A changelog batch with messages went through eachBatch; one without (transaction markers only) moves the restore on.
      if (route.changelog && slot?.state === 'restoring' && payload.batchSize === 0) {
        const epoch = slot.epoch
        void slot.lock.run(() => this.restoreStep(slot, epoch, [], Number(payload.lastOffset) + 1)).catch((error) => this.crash(error as Error))
      }
    })
    // kafkajs stops its consumer before it reports a crash, and its assignment goes with it: the tasks are suspended
    // until the consumer (restarted by kafkajs or by restartConsumer) joins again. A stop with no report after it
    // (kafkajs's crash handling failed) leaves the consumer stopped for good, which tick() notices.
    consumer.on(STOP, () => {
      if (!current() || this.stopping) return
      this.suspendTasks()
      this.consumerStoppedMs ??= Date.now()
      this.restartAnnounced = false
    })
    consumer.on(CRASH, ({ payload }) => {
      // A crash after the pipeline stopped (its fetch loop failing on a cluster that went away): kafkajs sets its
      // restart timer right after this event, and a disconnect once that is set clears it, so that no consumer
      // rejoins the group after the pipeline has stopped.
      if (this.stopping) {
        setImmediate(() => void consumer.disconnect().catch(() => {}))
        return
      }
      if (!current()) return
      this.noticeUnknownTopic(payload.error)
      if (payload.restart || clusterUnavailable(payload.error)) this.clusterWait.begin(`the group consumer: ${payload.error.message}`)
      if (payload.restart) this.restartAnnounced = true
      else if (clusterUnavailable(payload.error)) void this.restartConsumer(payload.error)
      else this.crash(payload.error)
    })
    await this.connect(consumer)
    await consumer.subscribe({ topics: [...this.topicSub.keys()], fromBeginning: true })
    // Batches of different partitions run concurrently (each task has its lock), so one task's commit waits for
    // its acks while another task processes.
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: PARTITIONS_CONCURRENTLY, eachBatch: (payload) => this.onBatch(payload.batch, payload) })
  }

  /**
   * Notes the group consumer's member id at a join. A new one after the first (the coordinator dropped the member: its
   * session ran out, or it was removed; or the consumer was started again) is said in one line: the group rebalanced
   * and the instance's tasks were initialized again, which otherwise shows only on the coordinator's side.
   */
  private memberJoined(memberId: string): void {
    const previous = this.memberId
    this.memberId = memberId
    if (previous !== undefined && previous !== memberId) {
      this.log(`the group consumer joined ${this.applicationId} as a new member (${memberId}, was ${previous}): the coordinator dropped the old one (its session ran out, or it was removed or started again), so the group rebalanced and this instance's tasks start from their committed state`)
    }
  }

  /**
   * Stops the pipeline if the group's leader refused this member its tasks for running another topology (assignor.ts).
   * Such a member is assigned no partition, and kafkajs hands on nothing else of an assignment (it drops the userData
   * that says why), so the member reads its assignment back from the coordinator: DescribeGroups gives each member's
   * assignment while the group is stable, as Kafka's does. Asked at each join that brings no partition, as a member of
   * a group with more members than tasks gets none either; an answer of a group rebalancing again, or none, leaves it
   * to the next join.
   */
  private async refusedByLeader(memberId: string): Promise<void> {
    try {
      const { groups } = await this.admin.describeGroups([this.applicationId])
      const assignment = groups[0]?.members.find((m) => m.memberId === memberId)?.memberAssignment
      const refusal = assignment ? topologyRefusal(assignment, { applicationId: this.applicationId, topology: this.topology }) : null
      if (refusal) this.crash(refusal, true)
    } catch (error) {
      this.log(`could not read this member's assignment back from the group's coordinator (${(error as Error).message}): the next join asks again`)
    }
  }

  /**
   * Suspends every task, as a rebalance does: their uncommitted work is dropped, their recoveries stop retrying, and
   * the next join re-initializes them.
   */
  private suspendTasks(): void {
    this.rebalances++
    for (const slot of this.slots.values()) {
      slot.state = 'suspended'
      slot.epoch++
    }
  }

  /**
   * Replaces a group consumer kafkajs has stopped for good: one that failed on an error kafkajs calls final though it
   * is only the cluster being unreachable or moving the group's coordinator (clusterUnavailable), or one stopped
   * with no restart to follow (its crash handling failed; tick). Kafka's own consumer rides such faults out, so the
   * pipeline does too: its tasks are suspended as at a rebalance, and after a backoff (1 s, doubling to 30 s, reset
   * by a join) a new consumer joins the group as a new member, whose assignment re-initializes the tasks from their
   * committed state. Never rejects: an error starting the new consumer is retried the same way when the cluster is
   * unavailable, and stops the pipeline otherwise.
   */
  private restartConsumer(cause: Error): void {
    if (this.stopping || this.restartingConsumer) return
    this.restartingConsumer = true
    this.consumerRestart = this.replaceConsumer(cause).catch((error: Error) => this.crash(error))
  }

  private async replaceConsumer(cause: Error): Promise<void> {
    for (let reason = cause; ; ) {
      const delayMs = consumerRestartDelayMs(this.consumerRestarts)
      this.consumerRestarts++
      this.log(`the group consumer stopped (${reason.message}); starting the group consumer again in ${delayMs} ms`)
      this.clusterWait.begin(`the group consumer: ${reason.message}`)
      this.suspendTasks()
      await this.consumer.disconnect().catch(() => {})
      await sleep(delayMs, undefined, { signal: this.stopped.signal }).catch(() => {})
      // From here a failed join is the new consumer's CRASH event, which may start the next restart.
      this.restartingConsumer = false
      if (this.stopping) return
      try {
        await this.startConsumer()
        return
      } catch (error) {
        if (!clusterUnavailable(error) || this.stopping) throw error
        // The new consumer's CRASH event has already started the next restart.
        if (this.restartingConsumer) return
        this.restartingConsumer = true
        reason = error as Error
      }
    }
  }

  /**
   * Connects a kafkajs client. kafkajs's connect fails at the first bootstrap server it picks if that one is down (a
   * node killed and not yet fenced), and picks another at the next connect: each bootstrap server is tried once before
   * the error counts.
   */
  private async connect(client: { connect(): Promise<void> }): Promise<void> {
    const servers = brokersOf(this.options.bootstrapServers).length
    for (let attempt = 1; ; attempt++) {
      try {
        await client.connect()
        return
      } catch (error) {
        if (attempt >= servers) throw error
      }
    }
  }

  /**
   * Stops the pipeline with `error`. The log line carries its stack, unless `explained` says the message is the whole
   * story (a task that failed too often, topics that no longer fit the application): a user's mistake, not Brook's.
   */
  private crash(error: Error, explained = false): void {
    if (this.stopping) return
    this.log(`stopping after an error: ${explained ? error.message : (error.stack ?? error.message)}`)
    void this.shutdown().finally(() => this.settle.reject(error))
  }

  /** Closes revoked tasks, (re)initializes assigned ones. */
  private async reconcile(assignment: Record<string, number[]>): Promise<void> {
    const wanted = new Set<string>()
    for (const sub of this.plan.subtopologies) for (const p of assignment[sub.sourceTopic] ?? []) wanted.add(taskId(sub.index, p))
    for (const [id, slot] of this.slots) {
      if (wanted.has(id)) continue
      this.slots.delete(id)
      this.alignments.get(slot.sub.index)?.leave(slot)
      await slot.lock.run(async () => {
        slot.epoch++
        await slot.producer?.disconnect()
        await slot.task.store.close()
      })
    }
    this.events.emit('assigned', [...wanted].sort())
    const assigned: Slot[] = []
    for (const id of [...wanted].sort()) {
      let slot = this.slots.get(id)
      if (!slot) {
        const [subIndex, partition] = id.split('_').map(Number) as [number, number]
        const sub = this.plan.subtopologies[subIndex]!
        const store = await TaskStore.open(join(this.stateDir, id), this.budget, { changelogTopic: sub.changelogTopic ?? undefined })
        const task = new Task(sub, partition, store, { plan: this.plan, tables: this.tables?.tables ?? new Map(), metrics: this.counters })
        slot = { id, sub, partition, task, state: 'suspended', lock: new Lock(), restoreStartedMs: 0, restoredRecords: 0, epoch: 0, purgedMs: 0, reader: new RestoreReader(sub.changelogTopic ?? '', 0, 0), fetchedTo: -1, resumeAt: 0n, groupOffset: null, writtenAhead: [], heldBack: null }
        this.slots.set(id, slot)
      }
      assigned.push(slot)
    }
    // Every task of the assignment holds the others back before the first one runs (alignment.ts, `expect`): they are
    // initialized one after the other, and the first could otherwise process a whole backlog before the next joined.
    const now = Date.now()
    for (const slot of assigned) this.alignments.get(slot.sub.index)?.expect(slot, now)
    for (const target of assigned) await target.lock.run(() => this.initialize(target).catch((error: Error) => this.recover(target, error)))
  }

  /**
   * Starts a task's restore: from the local checkpoint, or from the changelog's start when the store cannot be used.
   * In exactly_once the task's producer first fences any previous owner, which settles a transaction left open or
   * in doubt (committed or aborted by the coordinator before InitProducerId answers); only then are the changelog's
   * offsets and the group's committed offset read, so that both include that transaction's outcome. The local store
   * is a cache of what committed transactions wrote: one whose position is past the group's committed offset holds
   * a commit the cluster does not have (a transaction the coordinator aborted after all, or work of an
   * at_least_once run) and is rebuilt from the changelog, as Kafka Streams rebuilds a store it cannot trust under EOS.
   * In either mode a store whose position is the group's committed offset is kept even where the changelog's range
   * does not hold its checkpoint: nothing committed is missing from it, and wiping it would go on from that offset
   * without the state.
   */
  private async initialize(slot: Slot): Promise<void> {
    const epoch = ++slot.epoch
    slot.state = 'restoring'
    this.alignments.get(slot.sub.index)?.expect(slot, Date.now())
    slot.fetchedTo = -1
    slot.restoreStartedMs = Date.now()
    slot.restoredRecords = 0
    this.consumer.pause([{ topic: slot.sub.sourceTopic, partitions: [slot.partition] }])
    slot.writtenAhead = []
    slot.heldBack = null
    // Outputs written ahead into a transaction its commit never ended: aborted, with the producer dropped (a new one's
    // InitProducerId fences it), as after a failed commit.
    if (slot.transaction) await this.dropTransaction(slot)
    if (this.processingGuarantee === 'exactly_once') {
      // Initializing the task's transactional id fences a previous owner and aborts its open transaction.
      // Its first Metadata asks about the pipeline's topics only: one for every topic would fail while any partition in
      // the cluster is offline (target-topics.ts).
      slot.producer ??= withTargetTopics(this.kafka, this.topics, () =>
        this.kafka.producer({ transactionalId: `${this.applicationId}-${slot.id}`, idempotent: true, maxInFlightRequests: 1, metadataMaxAge: TASK_PRODUCER_METADATA_MAX_AGE_MS, createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, retry: { retries: TRANSACTION_SEND_RETRIES, maxRetryTime: this.options.kafka?.retry?.maxRetryTime ?? TRANSACTION_SEND_MAX_WAIT_MS } }),
      )
      await this.connect(slot.producer)
      const fence = await slot.producer.transaction()
      await fence.abort()
    }
    const committed = await this.committedOffset(slot.sub.sourceTopic, slot.partition)
    slot.groupOffset = committed
    // A task that ends its restore without a saved position resumes here, not where the consumer's fetch position
    // happens to be: a re-initialization keeps the group membership and with it that position, which may be past
    // records whose work was never committed (a first transaction aborted, a commit that failed).
    slot.resumeAt = committed ?? BigInt((await this.partitionOffsets(slot.sub.sourceTopic, slot.partition)).low)
    const store = slot.task.store
    const changelog = slot.sub.changelogTopic
    // A task id names its sub-topology by its place in the topology: with a stream or keyBy added, removed or moved
    // since the store was written, the directory holds another sub-topology's state and position, which this task
    // would take as its own (its groups' counts, its source offset), as Kafka Streams would not (its stores are named).
    const other = store.checkpoint === null ? undefined : store.writtenFrom ?? (changelog ? undefined : 'a changelog')
    if (other !== undefined && other !== changelog) {
      // Another application's state directory (a new --application-id on the old --state-dir), or this application's
      // sub-topologies renumbered.
      const why = other.startsWith(`${this.applicationId}-`) || other === 'a changelog' ? 'the sub-topologies were numbered otherwise (a stream or keyBy added, removed or moved)' : `it is another application's state, not ${this.applicationId}'s (the state directory was used with another application id)`
      this.log(`task ${slot.id}: local state was written from ${other}, not ${changelog ?? 'this sub-topology, which keeps no state'}: ${why}; discarding it`)
      await store.wipe()
    }
    if (!changelog) return this.finishRestore(slot, epoch)
    const changelogEnds = await this.admin.fetchTopicOffsets(changelog)
    const found = changelogEnds.find((o) => o.partition === slot.partition)
    if (!found) {
      // Partitions added to the source while the application ran: its state is spread over the changelog's partitions
      // by the old count, so the new tasks' state would be wrong (Kafka Streams stops on such a changelog too).
      throw new TopologyError(
        `${slot.sub.sourceTopic} now has a partition ${slot.partition} but changelog ${changelog} has ${changelogEnds.length} partition${changelogEnds.length === 1 ? '' : 's'}: ` +
          `partitions were added to the source topic while the application ran, and its keys' state would reach the wrong tasks ` +
          `(to go on with the new count, reset the application: stop every instance, delete its changelog and repartition topics, its group and its state directories)`,
        ProcessorErrorCode.badState,
      )
    }
    const offsets = { low: Number(found.low), high: Number(found.high) }
    let from = store.checkpoint
    const outOfRange = from !== null && (from < offsets.low || from > offsets.high)
    if (from !== null && (this.processingGuarantee === 'exactly_once' || outOfRange)) {
      const saved = (await store.position())?.position
      if (this.processingGuarantee === 'exactly_once' && saved !== undefined && (committed === null || BigInt(saved) > committed)) {
        // Past the committed offset: a transaction the coordinator aborted after all, or the group's offsets reset or
        // deleted by hand since (its topic deleted, say). The changelog's last commit says where the state goes on from.
        this.log(
          `task ${slot.id}: local state is at input offset ${saved}, past the group's committed offset ${committed ?? '(none)'} of ${slot.sub.sourceTopic}-${slot.partition} ` +
            `(a commit aborted after all, or the group's offsets reset or deleted since): restoring from the changelog, and going on from the input offset its last commit records (where it records one), not from the group's; ` +
            `to process the input again from an earlier offset, reset the application (stop every instance, delete its changelog and repartition topics, its group and its state directories)`,
        )
        from = null
      } else if (outOfRange && saved !== undefined && BigInt(saved) === committed) {
        // The store holds the last committed transaction's state: the changelog has nothing to add, whatever range
        // it reports now (a leader elected a moment ago may report an end below its records, KIP-207).
        if (offsets.high > offsets.low) {
          this.log(`task ${slot.id}: ${changelog} [${offsets.low}, ${offsets.high}) does not hold the local state's changelog offset ${from}, but the local state is at the group's committed offset ${committed}: keeping it`)
          return this.finishRestore(slot, epoch)
        }
        // An empty changelog was deleted (and created again) since: kept, the state must be written to it again, or
        // the instance that takes the task over next restores only what later commits wrote.
        this.log(
          `task ${slot.id}: ${changelog} is empty but the local state is at its changelog offset ${from} and at the group's committed offset ${committed}: ` +
            `the changelog was deleted since; keeping the local state and writing all of it to the changelog at the next commit`,
        )
        return this.finishRestore(slot, epoch, { rewriteAll: true })
      }
    }
    if (from === null || from < offsets.low || from > offsets.high) {
      if (from !== null) this.log(`task ${slot.id}: local state (changelog offset ${from}) does not match ${changelog} [${offsets.low}, ${offsets.high}); restoring from the changelog`)
      await store.wipe()
      from = offsets.low
    }
    if (from >= offsets.high) return this.finishRestore(slot, epoch)
    // Suspended meanwhile (a rebalance, or the consumer stopped): the next join initializes the task again.
    if (slot.epoch !== epoch) return
    slot.reader = new RestoreReader(changelog, from, offsets.high)
    this.consumer.seek({ topic: changelog, partition: slot.partition, offset: String(slot.reader.seekTo) })
    this.consumer.resume([{ topic: changelog, partitions: [slot.partition] }])
  }

  /**
   * The log start and end of one partition (ListOffsets EARLIEST and LATEST, as kafkajs asks them: read_committed);
   * rejects when the cluster does not answer.
   */
  private async partitionOffsets(topic: string, partition: number): Promise<{ low: number; high: number }> {
    const found = (await this.admin.fetchTopicOffsets(topic)).find((o) => o.partition === partition)
    if (!found) throw new Error(`${topic} has no partition ${partition}`)
    return { low: Number(found.low), high: Number(found.high) }
  }

  /** The group's committed offset of a source partition (the application id is the group), or null when it has none. */
  private async committedOffset(topic: string, partition: number): Promise<bigint | null> {
    const [answer] = await this.admin.fetchOffsets({ groupId: this.applicationId, topics: [topic] })
    const offset = answer?.partitions.find((p) => p.partition === partition)?.offset
    return offset === undefined || Number(offset) < 0 ? null : BigInt(offset)
  }

  /**
   * Ends a restore whose reader has read all it needs (the tail, then up to the newest marker). Records of commits
   * cut short by a crash (changelog.ts, R3) keep the checkpoint before them, so that a restore from this store reads
   * them again until a commit supersedes them, and the task's first commit writes their keys again (R4).
   */
  private async finishRestoreRead(slot: Slot, epoch: number): Promise<void> {
    if (slot.epoch !== epoch || slot.state !== 'restoring') return
    const store = slot.task.store
    const { cutShort, apply, checkpoint } = slot.reader.finish()
    if (cutShort.length > 0) {
      const kept = apply.length === 0 ? 'left out' : `${apply.length} kept, as the changelog's compaction may have removed the committed record of their group`
      this.log(`task ${slot.id}: ${cutShort.length} changelog record${cutShort.length === 1 ? '' : 's'} of a commit that never completed (${kept}); the next commit writes their groups again`)
    }
    if (apply.length > 0 || store.checkpoint !== checkpoint) await store.applyRestored(apply, checkpoint)
    await this.finishRestore(slot, epoch, { rewrite: cutShort })
  }

  /**
   * Ends a task's restore: loads its state, seeks its source partition to its position and resumes it. Does nothing
   * once the task has been suspended since initialization `epoch` began (the next join initializes it again, and
   * the consumer may be stopped: kafkajs refuses seek and resume then). `rewrite`: changelog keys the task's next
   * commit writes again (changelog.ts, R4); `rewriteAll`: every group the store holds.
   */
  private async finishRestore(slot: Slot, epoch: number, options: { rewrite?: readonly string[]; rewriteAll?: boolean } = {}): Promise<void> {
    if (slot.epoch !== epoch) return
    if (slot.sub.changelogTopic) this.consumer.pause([{ topic: slot.sub.changelogTopic, partitions: [slot.partition] }])
    await slot.task.load()
    if (slot.epoch !== epoch) return
    slot.task.store.rewrite(options.rewrite ?? [])
    const dropped = slot.task.operatorsDropped
    if (dropped.length > 0) {
      this.log(
        `task ${slot.id}: its state holds operator${dropped.length === 1 ? '' : 's'} ${dropped.join(', ')}, which this pipeline no longer has: ` +
          `that state is dropped (an operator added back under the name later starts afresh)`,
      )
    }
    if (options.rewriteAll) {
      const groups = await slot.task.store.rewriteAll()
      if (slot.epoch !== epoch) return
      this.log(`task ${slot.id}: ${groups} group${groups === 1 ? '' : 's'} of the local state to be written to ${slot.sub.changelogTopic} at the next commit`)
    }
    let position = slot.task.position ?? slot.resumeAt
    if (slot.groupOffset !== null && slot.groupOffset > position) {
      // The group's offset was moved forward since this state was committed (reset by hand, or a version of the
      // pipeline without this state read on): the committed offset wins, as Kafka Streams resumes from it.
      this.log(
        `task ${slot.id}: the group's committed offset ${slot.groupOffset} of ${slot.sub.sourceTopic}-${slot.partition} is past the local state's input offset ${position} ` +
          `(the group's offsets moved forward since, by hand or by another version of the pipeline): going on from the committed offset; the state has not seen the records in between`,
      )
      position = slot.groupOffset
    }
    const alignment = this.alignments.get(slot.sub.index)
    // Whether the partition has records to read: until its first batch says more, the task holds the others back.
    const high = alignment ? await this.partitionOffsets(slot.sub.sourceTopic, slot.partition).then((o) => o.high, () => Number.POSITIVE_INFINITY) : 0
    if (slot.epoch !== epoch) return
    this.consumer.seek({ topic: slot.sub.sourceTopic, partition: slot.partition, offset: position.toString() })
    slot.state = 'running'
    const ms = Date.now() - slot.restoreStartedMs
    this.counters.restoreMs += ms
    this.events.emit('restored', slot.id, slot.restoredRecords, ms)
    if (slot.restoredRecords > 0) this.log(`task ${slot.id}: restored ${slot.restoredRecords} changelog records in ${ms} ms`)
    else if (slot.sub.changelogTopic && slot.task.store.checkpoint !== null) this.log(`task ${slot.id}: local state is current (changelog offset ${slot.task.store.checkpoint}): nothing to restore, ready in ${ms} ms`)
    slot.task.lastEventTime = Number.NEGATIVE_INFINITY
    alignment?.join(slot, high > Number(position), Date.now())
    this.consumer.resume([{ topic: slot.sub.sourceTopic, partitions: [slot.partition] }])
  }

  /**
   * Hands one changelog batch of a restoring task to its reader (its lock held): applies what the reader says,
   * seeks where it says (a new phase of the restore), and ends the restore once it has read all it needs.
   */
  private async restoreStep(slot: Slot, epoch: number, messages: KafkaMessage[], next: number, resolve?: () => void): Promise<void> {
    if (slot.epoch !== epoch || slot.state !== 'restoring') return
    let step: RestoreStep
    try {
      step = slot.reader.read(messages, next)
    } catch (error) {
      // A changelog this version cannot read: retrying would meet the same record again.
      this.crash(error as Error)
      return
    }
    const store = slot.task.store
    if (step.apply.length > 0 || store.checkpoint !== step.checkpoint) await store.applyRestored(step.apply, step.checkpoint)
    slot.restoredRecords += messages.length
    this.counters.restoredRecords += messages.length
    resolve?.()
    if (step.seek !== null) this.consumer.seek({ topic: slot.sub.changelogTopic!, partition: slot.partition, offset: String(step.seek) })
    else if (step.done) {
      // As a failed initialization is (its lock held here too): state that does not fit the application (a window
      // spec changed, task.ts) stops the pipeline, anything else re-initializes the task. Thrown on to kafkajs, the
      // error would have it fetch the batch again from a changelog partition the restore has paused, for good.
      await this.finishRestoreRead(slot, epoch).catch((error: Error) => this.recover(slot, error))
    }
  }

  private async onBatch(batch: Batch, payload: { resolveOffset(offset: string): void; heartbeat(): Promise<void>; pause(): () => void }): Promise<void> {
    const route = this.topicSub.get(batch.topic)
    const slot = route && this.slots.get(taskId(route.sub.index, batch.partition))
    if (!route || !slot || this.stopping) {
      payload.pause()
      return
    }
    if (route.changelog) {
      if (slot.state !== 'restoring') {
        payload.pause()
        return
      }
      const epoch = slot.epoch
      await slot.lock.run(() => this.restoreStep(slot, epoch, batch.messages, Number(batch.lastOffset()) + 1, () => payload.resolveOffset(batch.lastOffset())))
      await payload.heartbeat()
      return
    }
    if (slot.state !== 'running') {
      payload.pause()
      return
    }
    const alignment = this.alignments.get(slot.sub.index)
    if (alignment && !alignment.held(slot)) {
      alignment.arrived(slot, firstEventTime(slot.task, batch.messages), Date.now())
      // kafkajs hands over the batches of one fetch in this turn: each is counted (arrived) before any is processed.
      await new Promise((resolve) => setImmediate(resolve))
    }
    const epoch = slot.epoch
    await slot.lock.run(async () => {
      if (slot.epoch !== epoch || slot.state !== 'running') return
      // A batch fetched before the partition was held back: fetched again once it goes on.
      if (this.alignments.get(slot.sub.index)?.held(slot)) return
      await this.processRecords(slot, batch.messages, Number(batch.offsetLag()) > 0, (offset) => payload.resolveOffset(offset ?? batch.lastOffset()), () => payload.heartbeat())
    })
    this.release(slot.sub.index)
    await payload.heartbeat()
  }

  /**
   * Processes `messages` of a running task (its lock held), then commits when the commit interval has passed, or
   * writes its repartition output ahead (writeAhead) when the task is aligned. An aligned task stops before the first
   * record past its limit (runtime/alignment.ts): its partition is paused and the records from that one on wait in
   * `heldBack` (no fetching them again) until `release` lets it go on. `lagging`: whether the partition has records
   * beyond `messages`; `processed` is called once they are processed (with the offset processed up to when a commit
   * comes between them), before any commit (kafkajs's resolveOffset: a rebalance during the commit could leave
   * kafkajs without the partition's offsets). Due windows are closed before the first record and after each record
   * that makes some due (closeDue), with `heartbeat` between chunks.
   */
  private async processRecords(slot: Slot, messages: KafkaMessage[], lagging: boolean, processed?: (offset?: string) => void, heartbeat?: () => Promise<void>): Promise<void> {
    const task = slot.task
    const alignment = this.alignments.get(slot.sub.index)
    const limit = alignment ? alignment.limit(slot, Date.now()) : Number.POSITIVE_INFINITY
    let failing: string | null = null
    try {
      if (task.hasDue) {
        failing = String(task.position ?? -1n)
        await this.closeDue(slot, Number.POSITIVE_INFINITY, heartbeat)
      }
      // After a seek, kafkajs may hand over records before the position (the batch that holds it starts earlier).
      const skipBelow = task.position === null ? -1 : Number(task.position)
      let rest: KafkaMessage[] | null = null
      let nextTime = Number.NEGATIVE_INFINITY
      let mustGo = alignment?.takeMustGo(slot) ?? false
      for (let i = 0; i < messages.length; i++) {
        const message = messages[i]!
        if (Number(message.offset) < skipBelow) continue
        let peeked: PeekedRecord | null = null
        if (limit !== Number.POSITIVE_INFINITY) {
          // A record past the limit waits, unprocessed: once processed, its time would reach the windows downstream.
          peeked = task.peek(message)
          if (peeked !== null && peeked.ts > limit && !mustGo) {
            rest = messages.slice(i)
            nextTime = peeked.ts
            break
          }
          mustGo = false
        }
        failing = message.offset
        const pending = task.process(message, peeked ?? undefined)
        if (pending) await pending
        if (task.hasDue) {
          // Due windows are closed between records, and belong to the position after this one.
          failing = String(task.position)
          await this.closeDue(slot, Number.POSITIVE_INFINITY, heartbeat, () => processed?.(message.offset))
        }
      }
      failing = null
      task.markActive(Date.now())
      processed?.()
      const held = rest !== null
      if (held) {
        slot.heldBack = { messages: rest!, lagging }
        this.consumer.pause([{ topic: slot.sub.sourceTopic, partitions: [slot.partition] }])
      }
      if (Date.now() - task.lastCommitMs >= this.commitIntervalMs || task.commitIsLarge) await this.commit(slot)
      else if (alignment) await this.writeAhead(slot)
      // The new head counts once the records up to it are in the repartition topic: until then the other tasks stay
      // within the old one, or one of them could write records past it ahead of these.
      alignment?.processed(slot, held ? nextTime : task.lastEventTime, lagging || held, held, Date.now())
    } catch (thrown) {
      await this.failed(slot, failing === null ? null : BigInt(failing), thrown)
    }
  }

  /**
   * A task's processing or commit failed: a failure of processing at source offset `at` (null: none to blame) is
   * counted (failedTooOften), a commit's (CommitError) is not; unless that stops the pipeline, the task recovers.
   */
  private async failed(slot: Slot, at: bigint | null, thrown: unknown): Promise<void> {
    const commit = thrown instanceof CommitError
    const error = commit ? thrown.cause : (thrown as Error)
    if (at !== null && !commit && this.failedTooOften(slot, at, error)) return
    await this.recover(slot, error)
  }

  /**
   * Closes the task's due windows (its lock held), CLOSE_CHUNK_GROUPS groups at a time, at most `maxChunks` chunks,
   * committing between chunks whenever the next commit is large (Task.commitIsLarge; after `beforeCommit`), and
   * letting the event loop run after each chunk; `heartbeat`
   * (kafkajs's, inside a batch) is called too, until it fails: a rebalance it reports reaches kafkajs at the end of the
   * batch. An error of a commit is thrown as a CommitError, one of the closing (downstream code) as it is.
   */
  private async closeDue(slot: Slot, maxChunks: number, heartbeat?: () => Promise<void>, beforeCommit?: () => void): Promise<void> {
    const task = slot.task
    // A stopping pipeline closes no more: its final commit saves them due, and the next start closes them.
    for (let chunk = 0; chunk < maxChunks && task.hasDue && !this.stopping; chunk++) {
      await task.closeDue(CLOSE_CHUNK_GROUPS)
      if (task.commitIsLarge) {
        beforeCommit?.()
        await this.commit(slot).catch((error: Error) => {
          throw new CommitError(error)
        })
      }
      if (heartbeat) await heartbeat().catch(() => (heartbeat = undefined))
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  /**
   * Lets the held-back source tasks of sub-topology `subIndex` that may go on (alignment.ts) do so: each first
   * processes the records it kept back, then, unless held again, its partition is resumed.
   */
  private release(subIndex: number): void {
    const alignment = this.alignments.get(subIndex)
    if (!alignment || this.stopping) return
    for (const slot of alignment.released(Date.now())) {
      const kept = slot.heldBack
      slot.heldBack = null
      const epoch = slot.epoch
      // A task re-initialized meanwhile (a failure, a rebalance, the consumer replaced) is resumed by its initialization.
      const resume = () => {
        if (slot.epoch === epoch && slot.state === 'running' && !alignment.held(slot) && !this.stopping) this.consumer.resume([{ topic: slot.sub.sourceTopic, partitions: [slot.partition] }])
      }
      if (!kept || kept.messages.length === 0) {
        resume()
        continue
      }
      void slot.lock
        .run(async () => {
          if (slot.epoch === epoch && slot.state === 'running') await this.processRecords(slot, kept.messages, kept.lagging)
        })
        .then(() => {
          resume()
          this.release(subIndex)
        })
        .catch((error: Error) => this.crash(error))
    }
  }

  /**
   * Counts a processing error (not a commit's) at a source offset; at the MAX_FAILURES_IN_A_ROW-th in a row at the
   * same offset, stops the pipeline with one error saying where, and returns true. Errors a record can be blamed for
   * before state changes are dead letters already (task.ts); what reaches here is code that failed while state was
   * changing (a reduce function, a bug, the store), where skipping the record could leave state half-changed, so the
   * task retries from its last commit a bounded number of times and then fails, as Kafka Streams' default processing
   * exception handler does, rather than restarting forever. The failed task is suspended first, so that stopping
   * does not commit its uncommitted work: its position stays before the record, which a restart meets again.
   */
  private failedTooOften(slot: Slot, offset: bigint, error: Error): boolean {
    const times = slot.failure?.offset === offset ? slot.failure.times + 1 : 1
    slot.failure = { offset, times }
    if (times < MAX_FAILURES_IN_A_ROW) return false
    slot.epoch++
    slot.state = 'suspended'
    this.crash(new Error(`task ${slot.id} failed ${times} times in a row at offset ${offset} of ${slot.sub.sourceTopic}-${slot.partition}: ${error.message}`, { cause: error }), true)
    return true
  }

  /**
   * After a failed commit or processing error: drop uncommitted work and restore the task from its store. Restoring
   * needs the cluster (the changelog's offsets; in exactly_once a producer that fences the old one), which may be
   * what failed: see reinitialize.
   */
  private async recover(slot: Slot, error: Error): Promise<void> {
    if (this.stopping) {
      this.log(`task ${slot.id}: ${error.message}; stopping, so it is not re-initialized`)
      return
    }
    // The application's topics no longer fit it: no retry makes them fit.
    if (error instanceof TopologyError) return this.crash(error, true)
    // Output the cluster refuses as such (a timestamp out of its range, a record too large), and state the store
    // cannot encode (a cycle in an updateStateByKey state), fail again at every retry from the same commit: counted
    // like a record whose processing fails, they stop the pipeline after a few.
    const refusal = recordsRefused(error)
    if (refusal !== null) error = refusedRecordsError(error, refusal, slot.sub.changelogTopic)
    if (refusal !== null || error instanceof StateEncodingError) {
      if (this.failedTooOften(slot, slot.task.committedAt ?? slot.resumeAt, error)) return
    }
    if (this.consumerStoppedMs !== null) {
      // The task was suspended with the consumer; its next join initializes it.
      this.log(`task ${slot.id}: ${error.message}; it waits for the group consumer to join again`)
      this.clusterWait.begin(`task ${slot.id}: ${error.message}`)
      return
    }
    this.log(`task ${slot.id}: ${error.message}; re-initializing it from its committed state`)
    await this.reinitialize(slot, this.rebalances, RECOVER_BACKOFF_MS)
  }

  /**
   * One attempt to re-initialize a task (its lock held). When it fails, the task is suspended — it neither processes
   * nor commits, so the work of the failed commit is never committed — and the next attempt is scheduled `delayMs`
   * later (doubling up to RECOVER_BACKOFF_MAX_MS) without holding the lock meanwhile, so the other tasks' ticks go
   * on. Attempts end when one works, a rebalance hands the task to reconcile, or the pipeline stops.
   */
  private async reinitialize(slot: Slot, rebalances: number, delayMs: number): Promise<void> {
    if (this.stopping || this.rebalances !== rebalances || this.slots.get(slot.id) !== slot) return
    try {
      await this.initialize(slot)
    } catch (failure) {
      if (failure instanceof TopologyError) return this.crash(failure, true)
      const epoch = ++slot.epoch
      slot.state = 'suspended'
      // A producer whose fencing failed may be left mid-transaction: the next attempt starts a new one.
      const producer = slot.producer
      slot.producer = undefined
      await producer?.disconnect().catch(() => {})
      if (this.stopping || this.rebalances !== rebalances) return
      const gone = await this.deletedTopics()
      if (gone.length > 0) {
        this.crash(this.deletedTopicsError(gone), true)
        return
      }
      this.log(`task ${slot.id}: re-initializing failed (${(failure as Error).message}); trying again in ${delayMs} ms`)
      this.clusterWait.begin(`task ${slot.id}: ${(failure as Error).message}`)
      const retry = async () => {
        if (slot.epoch === epoch) await this.reinitialize(slot, rebalances, Math.min(RECOVER_BACKOFF_MAX_MS, delayMs * 2))
      }
      setTimeout(() => void slot.lock.run(retry).catch((error: Error) => this.crash(error)), delayMs).unref()
    }
  }

  /** What a pipeline waiting for the cluster waits for (ClusterWait's lines). */
  private waitingFor(): string {
    if (this.consumerStoppedMs !== null || this.restartingConsumer) return 'the group consumer to join the group again'
    const waiting = [...this.slots.values()].filter((slot) => slot.state !== 'running').map((slot) => slot.id)
    if (waiting.length === 0) return 'the group consumer to join the group again'
    return waiting.length === 1 ? `task ${waiting[0]} to re-initialize from its committed state` : `tasks ${waiting.join(', ')} to re-initialize from their committed state`
  }

  /** The topics the pipeline's global tables read. */
  private tableTopics(): string[] {
    return this.plan.tables.flatMap((t) => (t.kind === 'topic' ? [t.topic] : []))
  }

  /**
   * The pipeline's topics (its global tables' included) the cluster no longer has, seen missing twice
   * DELETED_TOPIC_RECHECK_MS apart (a node that has just started may not know every topic yet). Empty when the
   * cluster does not answer: that is an outage, which re-initializing rides out.
   */
  private async deletedTopics(): Promise<string[]> {
    const missing = async (among: readonly string[]): Promise<string[]> => {
      const existing = await lookUpTopics(this.looker, among).catch(() => null)
      return existing === null ? [] : among.filter((topic) => !existing.has(topic))
    }
    const first = await missing([...new Set([...this.topics, ...this.tableTopics()])])
    if (first.length === 0) return first
    await new Promise((resolve) => setTimeout(resolve, DELETED_TOPIC_RECHECK_MS))
    return missing(first)
  }

  /**
   * Looks for topics of the pipeline deleted under it (deletedTopics) when the group consumer or the global tables'
   * consumer says the cluster does not know a topic (a failed fetch, onFailedFetch, or a crash), and stops the
   * pipeline with one line naming those gone, as Kafka Streams stops on a missing source topic
   * (MissingSourceTopicException). A deleted source topic shows
   * nowhere else: kafkajs retries the fetches of its partitions with no rebalance, then starts the consumer again, for
   * good (fetch-guards.ts), and a topic created again meanwhile was read from the offset reached in the old one. One
   * look at a time: one that finds every topic (a node that did not know one yet) or gets no answer (an outage) stops
   * nothing, and the next failure looks again.
   */
  private noticeUnknownTopic(error: unknown): void {
    if (this.stopping || this.lookingForDeletedTopics || !topicUnknown(error)) return
    this.lookingForDeletedTopics = true
    void this.deletedTopics()
      .then((gone) => {
        if (gone.length > 0) this.crash(this.deletedTopicsError(gone), true)
      })
      .finally(() => (this.lookingForDeletedTopics = false))
  }

  /**
   * The error a pipeline stops with when topics of its own were deleted while it ran (deletedTopics), saying what
   * follows: a source topic created again is read from its start at the next start (the cluster deleted the group's
   * offsets with the topic), but by a task with state only from the input offset that state had reached in the old
   * one (its record of it wins over a group offset that is gone); a global table's topic must exist for the pipeline to
   * start again; a changelog or repartition topic takes state with it; an output topic (a sink, the late-records or the
   * dead-letter topic) is created again, empty, at the next start.
   */
  private deletedTopicsError(gone: readonly string[]): Error {
    const { subtopologies } = this.plan
    const sources = new Set(subtopologies.flatMap((sub) => (sub.source.kind === 'source' ? [sub.sourceTopic] : [])))
    const tables = new Set(this.tableTopics())
    const internal = new Set(subtopologies.flatMap((sub) => [...(sub.source.kind === 'source' ? [] : [sub.sourceTopic]), ...(sub.changelogTopic ? [sub.changelogTopic] : [])]))
    const hints: string[] = []
    if (gone.some((topic) => tables.has(topic))) hints.push('a global table reads an existing topic: create it again (usually compacted) before the pipeline starts again')
    if (gone.some((topic) => sources.has(topic))) hints.push('a source topic created again is read from its start when the pipeline starts again, but a task with state goes on from the input offset its state had reached in the old one: to process all of it there, reset the application (stop every instance, delete its changelog and repartition topics, its group and its state directories)')
    if (gone.some((topic) => internal.has(topic))) hints.push("a deleted changelog or repartition topic takes state with it: to start over, delete the application's topics and state directories")
    if (gone.some((topic) => !sources.has(topic) && !tables.has(topic) && !internal.has(topic))) hints.push('an output topic (a sink, the late-records or the dead-letter topic) is created again, empty, when the pipeline starts again: what it held before is gone')
    return new Error(`${gone.join(', ')} no longer exist${gone.length === 1 ? 's' : ''}: deleted while the pipeline ran (${hints.join('; ')})`)
  }

  /**
   * Sends `outputs` partition by partition: each round sends every partition its next slice of at most
   * OUTPUT_CHUNK_RECORDS records and 512 KiB (a batch size every cluster accepts), one kafkajs send per partition
   * (sendPerPartition), and the next round starts once all of them are answered. A partition's records keep their
   * order. Slicing by partition, rather than slicing the outputs and then splitting each slice among the partitions
   * it touches, keeps each request full where a task writes to every partition of a topic (a keyBy's repartition
   * topic; outputs keyed otherwise than the input): on four partitions, slices of the outputs made requests of a
   * quarter of a slice.
   */
  private async sendOutputs(send: (topicMessages: { topic: string; messages: Message[] }[]) => Promise<RecordMetadata[]>, outputs: readonly OutputRecord[]): Promise<void> {
    if (outputs.length === 0) return
    const CHUNK_BYTES = 512 * 1024
    const byTopic = new Map<string, Message[]>()
    for (const o of outputs) {
      const message: Message = { key: o.key, value: o.value, timestamp: o.timestamp, headers: o.headers }
      const list = byTopic.get(o.topic)
      if (list) list.push(message)
      else byTopic.set(o.topic, [message])
    }
    // Every topic the pipeline writes is one of this.topics, whose partitions were learnt at start.
    this.sends.place([...byTopic].map(([topic, messages]) => ({ topic, messages })))
    const partitions: { topic: string; messages: Message[]; next: number }[] = []
    for (const [topic, messages] of byTopic) {
      const byPartition = new Map<number, Message[]>()
      for (const message of messages) {
        const list = byPartition.get(message.partition!)
        if (list) list.push(message)
        else byPartition.set(message.partition!, [message])
      }
      for (const list of byPartition.values()) partitions.push({ topic, messages: list, next: 0 })
    }
    for (;;) {
      const round: { topic: string; messages: Message[] }[] = []
      for (const partition of partitions) {
        const { messages } = partition
        let end = partition.next
        let bytes = 0
        while (end < messages.length && end - partition.next < OUTPUT_CHUNK_RECORDS && bytes < CHUNK_BYTES) {
          const m = messages[end++]!
          bytes += (m.value?.length ?? 0) + (m.key?.length ?? 0) + 64
        }
        if (end > partition.next) round.push({ topic: partition.topic, messages: messages.slice(partition.next, end) })
        partition.next = end
      }
      if (round.length === 0) return
      const targets = new Set(round.map(({ topic, messages }) => `${topic}-${messages[0]!.partition}`))
      this.sends.check(targets, await sendPerPartition(send, round))
    }
  }

  /**
   * Writes the repartition outputs of an aligned task now, ahead of its commit (its lock held): into the transaction
   * its next commit ends, opened here (exactly_once), or straight away (at_least_once). Each batch's output so
   * reaches the repartition topic by the end of the batch, which is what bounds how far out of event-time order the
   * windows reading it see the source tasks' records (runtime/alignment.ts); writing it only at the commit interval
   * would let a task that is never held put a whole interval's records behind the others'. A failure drops the
   * transaction, as a failed commit does.
   */
  private async writeAhead(slot: Slot): Promise<void> {
    const outputs = slot.task.takeOutputs(slot.sub.repartitionTopics)
    if (outputs.length === 0) return
    // One by one: a spread of a flatMap's outputs can pass V8's argument limit (about 125,000).
    for (const output of outputs) slot.writtenAhead.push(output)
    if (this.processingGuarantee === 'at_least_once') return this.sendOutputs((topicMessages) => this.producer!.sendBatch({ topicMessages, ...this.sendSettings }), outputs)
    if (!slot.producer) throw new Error('its transactional producer is gone since its last commit failed; it writes nothing more until it is re-initialized')
    try {
      const transaction = (slot.transaction ??= await slot.producer.transaction())
      await this.sendOutputs((topicMessages) => transaction.sendBatch({ topicMessages, ...this.sendSettings }), outputs)
    } catch (error) {
      await this.dropTransaction(slot)
      throw error
    }
  }

  /**
   * Aborts the task's transaction after a failure and drops its producer: the task gets a new one when it is
   * re-initialized, whose InitProducerId bumps the epoch (fencing this one, and letting the coordinator finish a
   * transaction that could be neither committed nor aborted, which leaves kafkajs's producer COMMITTING for good) and
   * starts every partition's sequence numbers afresh. Kept, kafkajs would send the redone records of a partition
   * whose batch got no answer (a send it cut short, whole-sends.ts) under that batch's sequence numbers: the leader,
   * which may hold the aborted batch, would take the redone one for its duplicate and write nothing.
   */
  private async dropTransaction(slot: Slot): Promise<void> {
    await slot.transaction?.abort().catch(() => {})
    slot.transaction = undefined
    slot.writtenAhead = []
    const stale = slot.producer
    slot.producer = undefined
    await stale?.disconnect().catch(() => {})
  }

  /**
   * The transaction's sendOffsets (AddOffsetsToTxn, then TxnOffsetCommit to the group coordinator), tried again while
   * it fails only because a coordinator could not be reached or has moved (clusterUnavailable), for up to
   * SEND_OFFSETS_RETRY_MS; then, or on any other error, it rejects with the last error.
   */
  private async sendOffsets(transaction: Transaction, offsets: Parameters<Transaction['sendOffsets']>[0]): Promise<void> {
    const deadline = Date.now() + SEND_OFFSETS_RETRY_MS
    for (let waitMs = SEND_OFFSETS_BACKOFF_MS; ; waitMs = Math.min(waitMs * 2, SEND_OFFSETS_BACKOFF_MAX_MS)) {
      try {
        return await transaction.sendOffsets(offsets)
      } catch (error) {
        if (this.stopping || !clusterUnavailable(error) || Date.now() + waitMs > deadline) throw error
        await sleep(waitMs)
      }
    }
  }

  /** Commits one task (its lock held). */
  private async commit(slot: Slot): Promise<void> {
    const task = slot.task
    if (!task.hasWork && slot.transaction === undefined && slot.writtenAhead.length === 0) {
      task.lastCommitMs = Date.now()
      return
    }
    const prepared = await task.prepareCommit()
    const changelog = slot.sub.changelogTopic && prepared.marker ? commitMessages({ ...prepared, marker: prepared.marker }, slot.partition) : null
    const offsets = task.position === null ? [] : [{ topic: slot.sub.sourceTopic, partition: slot.partition, offset: task.position.toString() }]
    let checkpoint: number | null = null
    const writeChangelog = async (send: (messages: Message[]) => Promise<{ partition: number; baseOffset?: string }[]>) => {
      if (!changelog) return
      for (let i = 0; i < changelog.records.length; i += CHANGELOG_CHUNK_RECORDS) await send(changelog.records.slice(i, i + CHANGELOG_CHUNK_RECORDS))
      const sent = (await send([changelog.marker])).find((m) => m.partition === slot.partition)
      if (sent?.baseOffset !== undefined) checkpoint = Number(sent.baseOffset) + 1
    }
    if (this.processingGuarantee === 'exactly_once') {
      // A failed commit drops the task's producer, and only re-initializing gives it a new one; a stopping pipeline
      // re-initializes nothing, so a later commit of the task (its next batch) lands here.
      if (!slot.producer) throw new Error('its transactional producer is gone since its last commit failed; it commits nothing more until it is re-initialized')
      try {
        const transaction = (slot.transaction ??= await slot.producer.transaction())
        await this.sendOutputs((topicMessages) => transaction.sendBatch({ topicMessages, ...this.sendSettings }), prepared.outputs)
        await writeChangelog((messages) => transaction.send({ topic: slot.sub.changelogTopic!, messages, ...this.sendSettings }))
        if (offsets.length > 0) await this.sendOffsets(transaction, { consumerGroupId: this.applicationId, topics: [{ topic: slot.sub.sourceTopic, partitions: [{ partition: slot.partition, offset: offsets[0]!.offset }] }] })
        await transaction.commit()
        slot.transaction = undefined
      } catch (error) {
        await this.dropTransaction(slot)
        throw error
      }
    } else {
      await this.sendOutputs((topicMessages) => this.producer!.sendBatch({ topicMessages, ...this.sendSettings }), prepared.outputs)
      await writeChangelog((messages) => this.producer!.send({ topic: slot.sub.changelogTopic!, messages, ...this.sendSettings }))
    }
    await task.committed(prepared, checkpoint)
    if (this.processingGuarantee === 'at_least_once' && offsets.length > 0) {
      // The position is in the changelog already; a failed group commit (a rebalance) only means a restore seeks.
      await this.consumer.commitOffsets(offsets).catch((error: Error) => this.log(`task ${slot.id}: offset commit failed (${error.message}); its changelog holds the position`))
    }
    if (slot.sub.source.kind === 'keyBy' && offsets.length > 0 && Date.now() - slot.purgedMs >= REPARTITION_PURGE_INTERVAL_MS) {
      // Repartition records keep their (possibly old) event time and retention.ms=-1: what every task committed is
      // deleted here instead, as Kafka Streams purges its repartition topics.
      slot.purgedMs = Date.now()
      // Not waited for: on a cluster DeleteRecords is answered once the followers have moved their log starts too (a
      // replica fetch round), which the commit has no reason to wait for. The shutdown waits for it.
      const topic = slot.sub.sourceTopic
      const purge: Promise<void> = this.purgeTail
        .then(() => this.purgeAdmin())
        .then(async (admin) => {
          // kafkajs looks the leader up in the metadata it holds, without loading what it lacks.
          await admin.fetchTopicMetadata({ topics: [topic] })
          await admin.deleteTopicRecords({ topic, partitions: [{ partition: slot.partition, offset: offsets[0]!.offset }] })
        })
        .catch((error: Error) => this.log(`task ${slot.id}: purging ${slot.sub.sourceTopic} failed: ${purgeFailure(error, `${slot.sub.sourceTopic}-${slot.partition}`)}; the next purge deletes these records too`))
        .finally(() => this.purges.delete(purge))
      this.purges.add(purge)
      this.purgeTail = purge
    }
    if (slot.failure !== undefined && (task.position ?? -1n) > slot.failure.offset) slot.failure = undefined
    this.counters.commits++
    const ahead = slot.writtenAhead
    slot.writtenAhead = []
    this.counters.recordsOut += ahead.length + prepared.outputs.length
    for (const line of prepared.console) this.print(line)
    if (this.events.listenerCount('output') > 0) for (const o of [...ahead, ...prepared.outputs]) this.events.emit('output', { topic: o.topic, key: Buffer.isBuffer(o.key) ? o.key.toString() : o.key, value: o.value } satisfies OutputEvent)
  }

  /**
   * One look at the end offsets of the source partitions of running windowed tasks that got no records during the
   * last tick: per task, whether it has read everything (null when the cluster did not answer within `waitMs`).
   */
  private async lookAtEnds(waitMs: number): Promise<Map<Slot, { at: number; caughtUp: boolean } | null>> {
    const at = Date.now()
    const quiet = [...this.slots.values()].filter((s) => s.state === 'running' && s.task.hasWindows && at - s.task.lastRecordWallMs >= this.tickMs && !this.alignments.get(s.sub.index)?.held(s))
    const looks = new Map<Slot, { at: number; caughtUp: boolean } | null>()
    for (const topic of new Set(quiet.map((s) => s.sub.sourceTopic))) {
      let ends: Map<number, number> | null = null
      if (!this.looking.has(topic)) {
        // A broker that accepts the request but does not answer (stopped, overloaded) must not hold up commits.
        const asked = this.looker.fetchTopicOffsets(topic).then(
          (offsets) => new Map(offsets.map((o) => [o.partition, Number(o.high)])),
          () => null,
        )
        this.looking.set(topic, asked)
        void asked.finally(() => this.looking.delete(topic))
        let timer: NodeJS.Timeout | undefined
        ends = await Promise.race([asked, new Promise<null>((resolve) => (timer = setTimeout(resolve, waitMs, null)))])
        clearTimeout(timer)
      }
      for (const slot of quiet) {
        if (slot.sub.sourceTopic !== topic) continue
        const end = ends?.get(slot.partition)
        looks.set(slot, end === undefined ? null : { at, caughtUp: end <= Math.max(Number(slot.task.position ?? -1), slot.fetchedTo) })
      }
    }
    return looks
  }

  /** Idle advancement and time-based commits of every running task. */
  private async tick(): Promise<void> {
    if (this.ticking || this.stopping) return
    if (this.consumerStoppedMs !== null && !this.restartAnnounced && Date.now() - this.consumerStoppedMs >= CONSUMER_STOPPED_GRACE_MS) this.restartConsumer(new Error('kafkajs stopped it without starting it again'))
    this.ticking = true
    try {
      const maxGapMs = Math.max(MAX_UNCONFIRMED_MS, 4 * this.tickMs)
      const looks = await this.lookAtEnds(maxGapMs)
      for (const slot of this.slots.values()) {
        if (slot.state !== 'running') continue
        const epoch = slot.epoch
        await slot.lock.run(async () => {
          if (slot.epoch !== epoch || slot.state !== 'running') return
          const now = Date.now()
          let closing = false
          try {
            const look = looks.get(slot)
            if (look !== undefined) slot.task.advanceIdle(look, this.idleTimeoutMs, maxGapMs)
            // Windows made due by idle time, or left due by a restart or an earlier tick, are closed here too.
            closing = true
            if (slot.task.hasDue) await this.closeDue(slot, CLOSE_CHUNKS_PER_TICK)
            closing = false
            if (now - slot.task.lastCommitMs >= this.commitIntervalMs) await this.commit(slot)
          } catch (thrown) {
            // Windows closed by idle time run downstream code too: a failure there is held against the position.
            await this.failed(slot, closing ? (slot.task.position ?? -1n) : null, thrown)
          }
        })
      }
      // A held task whose wait is over, or whose holder left, goes on.
      for (const subIndex of this.alignments.keys()) this.release(subIndex)
    } catch (error) {
      this.crash(error as Error)
    } finally {
      this.ticking = false
    }
  }

  async stop(): Promise<void> {
    // Stopped already, or stopping: resolves once stopped, also after a crash (whose error `closed` holds), as Kafka
    // Streams' close() returns on an instance in ERROR.
    if (this.stopping) return this.closed.catch(() => {})
    await this.shutdown()
    this.settle.resolve()
  }

  /**
   * The admin client of repartition purges, connected at the first purge: one of its own, whose requests time out
   * after PROMPT_REQUEST_TIMEOUT_MS. Rejects with the connect's error, and the next purge connects again.
   */
  private purgeAdmin(): Promise<Admin> {
    if (this.purger === undefined) {
      const admin = withTargetTopics(this.promptKafka, this.topics, () => this.promptKafka.admin())
      const connecting = admin.connect().then(() => admin)
      connecting.catch(() => {
        if (this.purger === connecting) this.purger = undefined
      })
      this.purger = connecting
    }
    return this.purger
  }

  private async shutdown(): Promise<void> {
    this.stopping = true
    for (const stop of this.stopHearingFetches) stop()
    clearInterval(this.ticker)
    this.clusterWait.stop()
    this.stopped.abort()
    await this.consumerRestart
    await this.reconciling.catch(() => {})
    for (const slot of this.slots.values()) {
      await slot.lock.run(async () => {
        // A commit that failed while stopping left the task without its producer (and its uncommitted work
        // unusable): recover does not re-initialize a stopping pipeline, so there is nothing to commit.
        if (slot.state === 'running' && this.processingGuarantee === 'exactly_once' && slot.producer === undefined) {
          this.log(`task ${slot.id}: no final commit: its last commit failed; the next start redoes the work not committed`)
        } else if (slot.state === 'running') await this.commit(slot).catch((error: Error) => this.log(`task ${slot.id}: final commit failed: ${error.message}`))
        slot.epoch++
        slot.state = 'suspended'
      })
    }
    await this.disconnect(this.consumer)
    for (const slot of this.slots.values()) {
      await this.disconnect(slot.producer)
      await slot.task.store.close().catch(() => {})
    }
    this.slots.clear()
    await this.tables?.stop()
    await this.disconnect(this.tablesProducer)
    await this.disconnect(this.producer)
    await Promise.all(this.purges)
    await this.purger?.then((admin) => admin.disconnect()).catch(() => {})
    await this.disconnect(this.looker)
    await this.disconnect(this.admin)
    await this.stateLock?.release().catch(() => {})
  }
}
