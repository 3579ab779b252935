/**
 * The topics a pipeline needs, created when missing, with configs that fit what they hold. Kafka's retention acts
 * on record timestamps, so each kind is set up to keep its records as long as they are needed whatever event times
 * they carry:
 *
 *   kind          partitions                         configs
 *   source        `partitions` option (if missing)   the cluster's defaults
 *   repartition   keyBy's, or its source's           retention.ms=-1 (records keep their event time as timestamp;
 *                                                    the runner deletes what every task has committed)
 *   changelog     its sub-topology's source's        cleanup.policy=compact, max.message.bytes for one group's
 *                                                    state of every stateful operator (changelogMaxMessageBytes)
 *   outputs       the largest writer's source's      defaults: the processor stamps what it writes with the time it
 *   (sinks, late,                                    writes it, unless a sink asks for event time; then a topic it
 *    dead letters)                                    creates gets retention.ms=-1 and an existing one a warning
 *
 * A changelog whose partition count differs from its source's is refused (TopologyError): its state would be
 * read by the wrong tasks.
 *
 * The pipeline goes on only once every topic it uses is ready: in the cluster's metadata, each partition with a
 * leader. Instances that start together race to create the same topics, and one whose CreateTopics is answered
 * TOPIC_ALREADY_EXISTS (kafkajs then waits for nothing) may ask for a topic another instance is still creating:
 * Kafka answers UNKNOWN_TOPIC_OR_PARTITION until its metadata cache has the topic, LEADER_NOT_AVAILABLE until its
 * partitions have leaders. Both are retriable, so the wait retries them, backing off, for up to
 * TOPICS_READY_TIMEOUT_MS, and then fails with one line naming the topics and the cluster's last answer.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Admin, ITopicConfig } from 'kafkajs'
import { ProcessorErrorCode, TopologyError } from '../errors.js'
import { repartitionTopic, type Plan, type SubTopology } from '../topology/plan.js'
import { INTERNAL_VALUE_MAX_BYTES } from '../state/codec.js'
import { MAX_GROUP_BYTES } from './groups.js'
import type { ProcessorNode } from '../topology/topology.js'

/** How long a starting pipeline waits for its topics to be ready before it gives up. */
const TOPICS_READY_TIMEOUT_MS = 60_000
/** After waiting this long, the wait says so in the log (once). */
const TOPICS_READY_LOG_AFTER_MS = 5000

/** Kafka's default max.message.bytes (message.max.bytes): 1 MiB and a batch header. */
const KAFKA_MAX_MESSAGE_BYTES = 1_048_588
/** What a group's changelog record holds besides the operators' states: format, commit id, names and lengths. */
const CHANGELOG_RECORD_OVERHEAD_BYTES = 64 * 1024
/** The most a changelog's max.message.bytes is set to: Confluent Cloud's limit on a standard cluster's topics. */
const CHANGELOG_MAX_MESSAGE_BYTES_CAP = 8 * 1024 * 1024

/**
 * The max.message.bytes a new changelog topic of `sub` gets: room for one group's record at its largest, which holds
 * the state of every stateful operator of the sub-topology for the group (state/task-store.ts), each kept within
 * INTERNAL_VALUE_MAX_BYTES of msgpack (a reduce's and updateStateByKey's state are refused past it, a windowed
 * reduce's open windows together too; the aggregations' accumulators are numbers and sketches of a few KB), and the
 * group (key and fields, MAX_GROUP_BYTES) as the record's key and in its value: two operators of 600 KB each took
 * Kafka's default of 1,048,588, which the cluster refused at every commit. At least Kafka's default, at most
 * CHANGELOG_MAX_MESSAGE_BYTES_CAP (8 MiB: eight operators). Commits send changelog records in chunks of 512 KiB, so
 * only a group's record alone reaches this size. A changelog that exists already keeps its own.
 */
export function changelogMaxMessageBytes(sub: Pick<SubTopology, 'stateful'>): number {
  const bytes = sub.stateful.length * INTERNAL_VALUE_MAX_BYTES + 2 * MAX_GROUP_BYTES + CHANGELOG_RECORD_OVERHEAD_BYTES
  return Math.min(Math.max(bytes, KAFKA_MAX_MESSAGE_BYTES), CHANGELOG_MAX_MESSAGE_BYTES_CAP)
}

export interface TopicOptions {
  /** Partitions of source topics the pipeline creates (default 1, as Kafka's num.partitions). */
  partitions: number
  /** -1: the cluster's default.replication.factor. */
  replicationFactor: number
}

/**
 * How long the one-replica warning waits for the cluster's size. kafkajs's DescribeCluster is a Metadata request for
 * every topic, which kafkajs retries for about 10 s while any partition in the cluster has no leader; the warning is
 * left out instead of holding the start up.
 */
const CLUSTER_SIZE_WAIT_MS = 2000

function eventTimeSinks(plan: Plan): Set<string> {
  const topics = new Set<string>()
  const visit = (nodes: readonly ProcessorNode[]): void => {
    for (const node of nodes) {
      if (node.kind === 'sink' && node.timestamp === 'event') topics.add(node.topic)
      if (node.kind !== 'keyBy') visit(node.children)
    }
  }
  for (const sub of plan.subtopologies) visit(sub.roots)
  return topics
}

/**
 * Creates what is missing, waits until every topic the pipeline reads or writes is ready, and returns their names
 * (sorted). `warn` gets one line per existing topic whose retention may delete what the pipeline writes to
 * it, one per existing repartition topic whose partition count is not the one its keyBy plans (it is used as it is),
 * and one when the topics take long to be ready.
 */
export async function ensureTopics(admin: Admin, plan: Plan, options: TopicOptions, warn: (line: string) => void): Promise<string[]> {
  const partitions = await lookUpTopics(admin, plannedTopics(plan))
  const wanted = new Map<string, { partitions: number; configs: ITopicConfig['configEntries'] }>()
  const used = new Set<string>()
  const want = (topic: string, count: number, configs: ITopicConfig['configEntries'] = []) => {
    used.add(topic)
    const known = partitions.get(topic)
    if (known !== undefined) return
    const existing = wanted.get(topic)
    wanted.set(topic, { partitions: Math.max(count, existing?.partitions ?? 0), configs: existing?.configs?.length ? existing.configs : configs })
  }
  const eventTimed = eventTimeSinks(plan)
  const sourcePartitions = new Map<string, number>()
  for (const sub of plan.subtopologies) {
    let count = partitions.get(sub.sourceTopic) ?? wanted.get(sub.sourceTopic)?.partitions
    if (count === undefined) {
      if (sub.source.kind !== 'source') throw new TopologyError(`repartition topic ${sub.sourceTopic} was not planned before its reader`)
      count = options.partitions
      want(sub.sourceTopic, count)
    }
    used.add(sub.sourceTopic)
    sourcePartitions.set(sub.sourceTopic, count)
    const visit = (nodes: readonly ProcessorNode[]): void => {
      for (const node of nodes) {
        if (node.kind === 'keyBy') {
          const topic = repartitionTopic(plan.applicationId, node.name)
          const planned = node.partitions ?? count!
          const existing = partitions.get(topic)
          if (existing !== undefined && existing !== planned) {
            warn(`repartition topic ${topic} already exists with ${existing} partition${existing === 1 ? '' : 's'}, not the ${planned} keyBy ${node.name} plans: the stages after it run on ${existing} (to change that, stop every instance and delete the application's repartition and changelog topics and state directories)`)
          }
          want(topic, planned, [
            { name: 'retention.ms', value: '-1' },
            { name: 'cleanup.policy', value: 'delete' },
          ])
          continue
        }
        if (node.kind === 'sink') want(node.topic, count!, eventTimed.has(node.topic) ? [{ name: 'retention.ms', value: '-1' }] : [])
        visit(node.children)
      }
    }
    visit(sub.roots)
    for (const topic of sub.outputTopics) want(topic, count)
    want(plan.deadLetterTopic, count)
    if (sub.changelogTopic) {
      const existing = partitions.get(sub.changelogTopic)
      if (existing !== undefined && existing !== count) {
        throw new TopologyError(`changelog ${sub.changelogTopic} has ${existing} partitions but ${sub.sourceTopic} has ${count}: its state would reach the wrong tasks (delete it and the state directory to reset the application)`, ProcessorErrorCode.badState)
      }
      want(sub.changelogTopic, count, [
        { name: 'cleanup.policy', value: 'compact' },
        { name: 'max.message.bytes', value: String(changelogMaxMessageBytes(sub)) },
      ])
    }
  }
  for (const topic of eventTimed) {
    if (partitions.has(topic)) warn(`sink topic ${topic} already exists and gets records stamped with their event time: its retention.ms must be -1 or longer than the age of the oldest event, or Kafka deletes them`)
  }
  if (wanted.size > 0) {
    await admin
      .createTopics({
        waitForLeaders: true,
        topics: [...wanted].map(([topic, spec]) => ({ topic, numPartitions: spec.partitions, replicationFactor: options.replicationFactor, configEntries: spec.configs })),
      })
      .catch((error: unknown) => {
        // kafkajs says only "Topic creation errors"; each topic's error is in `errors`.
        const errors = (error as { errors?: unknown }).errors
        if (!Array.isArray(errors) || errors.length === 0) throw error
        const each = errors.map((e: { topic?: string; type?: string; message?: string }) => `${e.topic ?? '?'}: ${e.type ?? e.message ?? 'failed'}`)
        throw new Error(`could not create the pipeline's topics (${each.join('; ')})${replicationFactorAdvice(error, options.replicationFactor)}`, { cause: error })
      })
  }
  const topics = [...used].sort()
  await untilReady(admin, topics, warn)
  if (wanted.size > 0) await warnSingleCopies(admin, [...wanted.keys()].sort(), options, warn)
  return topics
}

/** Every topic the pipeline reads or writes: sources, outputs (sinks, repartition, late records), changelogs, dead letters. */
export function plannedTopics(plan: Plan): string[] {
  const topics = new Set<string>([plan.deadLetterTopic])
  for (const sub of plan.subtopologies) {
    topics.add(sub.sourceTopic)
    for (const topic of sub.outputTopics) topics.add(topic)
    if (sub.changelogTopic) topics.add(sub.changelogTopic)
  }
  return [...topics].sort()
}

/**
 * Which of `topics` exist, with their partition counts. Each topic is asked about on its own: a Metadata request for
 * every topic in the cluster fails in kafkajs while any partition anywhere has no leader (target-topics.ts), and one
 * for several named topics fails when one of them does not exist. Errors: kafkajs's, except UNKNOWN_TOPIC_OR_PARTITION,
 * which means the topic is missing.
 */
export async function lookUpTopics(admin: Admin, topics: readonly string[]): Promise<Map<string, number>> {
  const found = await Promise.all(
    topics.map((topic) =>
      admin.fetchTopicMetadata({ topics: [topic] }).then(
        (answer) => [topic, answer.topics.find((t) => t.name === topic)?.partitions.length ?? 0] as const,
        (error: unknown) => {
          if ((error as { type?: unknown }).type === 'UNKNOWN_TOPIC_OR_PARTITION') return null
          throw error
        },
      ),
    ),
  )
  return new Map(found.filter((entry) => entry !== null))
}

/** Kafka's internal topic of committed offsets, there once any consumer group has been used on the cluster. */
const OFFSETS_TOPIC = '__consumer_offsets'

/**
 * The topics a new kafkajs client's metadata should start with (withTargetTopics, target-topics.ts): those of `own`
 * that exist, or, when none does yet, `__consumer_offsets` if it exists (asked about by name, Kafka answers for an
 * internal topic too), or none (kafkajs then asks about every topic). Errors: lookUpTopics's.
 */
export async function seedTopics(admin: Admin, own: readonly string[]): Promise<string[]> {
  const found = await lookUpTopics(admin, [...new Set([...own, OFFSETS_TOPIC])])
  const existing = own.filter((topic) => found.has(topic))
  if (existing.length > 0) return existing
  return found.has(OFFSETS_TOPIC) ? [OFFSETS_TOPIC] : []
}

/**
 * `warn`s once when topics the pipeline has just created hold one replica on a cluster of several brokers (Brook's
 * and Kafka's default.replication.factor is 1): losing that node takes their partitions offline. kafkajs 2.2.4 fails
 * a Metadata answer that holds a partition without a leader, and a task's transactional producer asks about all the
 * pipeline's topics (target-topics.ts), so a task that needs a new one meanwhile (after a failed commit, or newly
 * assigned) cannot start until the node is back. Nothing is said when the cluster's size cannot be read within
 * CLUSTER_SIZE_WAIT_MS.
 */
async function warnSingleCopies(admin: Admin, created: readonly string[], options: TopicOptions, warn: (line: string) => void): Promise<void> {
  try {
    // The race handles a DescribeCluster that fails after the wait is over; the timer does not hold the process.
    const cluster = await Promise.race([admin.describeCluster(), sleep(CLUSTER_SIZE_WAIT_MS, null, { ref: false })])
    if (cluster === null || cluster.brokers.length < 2) return
    const { topics } = await admin.fetchTopicMetadata({ topics: [...created] })
    const single = topics.filter((t) => t.partitions.some((p) => p.replicas.length === 1)).map((t) => t.name).sort()
    if (single.length === 0) return
    const why = options.replicationFactor === -1 ? "replicationFactor -1: the cluster's default.replication.factor" : `replicationFactor ${options.replicationFactor}`
    warn(
      `the pipeline created ${single.join(', ')} with one replica on a cluster of ${cluster.brokers.length} brokers (${why}): while that node is down, a task that has to start again waits for it; set replicationFactor (--replication-factor) to 2 or 3`,
    )
  } catch {
    // A cluster that does not answer now fails the pipeline's next step with its own error.
  }
}

/**
 * Waits until every topic of `topics` is in the cluster's metadata with a leader for each partition, retrying
 * retriable answers (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, a lost connection) with backoff for up to
 * TOPICS_READY_TIMEOUT_MS. Errors: the last non-retriable one as kafkajs raised it; at the deadline, an Error naming
 * the topics not ready and the last answer.
 */
async function untilReady(admin: Admin, topics: readonly string[], log: (line: string) => void): Promise<void> {
  const started = Date.now()
  let delayMs = 50
  let logged = false
  for (;;) {
    let problem: string
    try {
      const { topics: found } = await admin.fetchTopicMetadata({ topics: [...topics] })
      const ready = new Set(found.filter((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)).map((t) => t.name))
      const waiting = topics.filter((t) => !ready.has(t))
      if (waiting.length === 0) return
      problem = `no leader yet for ${waiting.join(', ')}`
    } catch (error) {
      if ((error as { retriable?: boolean }).retriable !== true) throw error
      problem = (error as Error).message
    }
    const waitedMs = Date.now() - started
    if (waitedMs + delayMs > TOPICS_READY_TIMEOUT_MS) {
      throw new Error(`the pipeline's topics (${topics.join(', ')}) were not ready after ${Math.round(waitedMs / 1000)} s; the cluster's last answer: ${problem}`)
    }
    if (!logged && waitedMs >= TOPICS_READY_LOG_AFTER_MS) {
      logged = true
      log(`waiting for the pipeline's topics to be ready (${problem})`)
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs))
    delayMs = Math.min(1000, delayMs * 2)
  }
}

/**
 * For a kafkajs createTopics `error` whose topics' errors (its `errors`) hold INVALID_REPLICATION_FACTOR: why, and
 * what to do, as `; ...` to append to the message (the pipeline's and the simulator's words); '' for any other error.
 */
export function replicationFactorAdvice(error: unknown, replicationFactor: number): string {
  const errors = (error as { errors?: unknown }).errors
  if (!Array.isArray(errors) || !errors.some((e: { type?: string }) => e.type === 'INVALID_REPLICATION_FACTOR')) return ''
  const asked = replicationFactor === -1 ? "-1 (the cluster's default.replication.factor)" : String(replicationFactor)
  return `; replicationFactor ${asked} is more than the brokers alive: set replicationFactor (--replication-factor) to at most their number`
}
