/**
 * The topic a run writes to: created with configs that fit the readings, or, when it exists, checked against the
 * readings' event times.
 *
 * Kafka's time-based rules act on record timestamps, and readings carry their event time as record timestamp:
 * - retention.ms deletes a batch once its newest timestamp is older than retention.ms (LogCleaner / UnifiedLog's
 *   deleteRetentionMsBreachedSegments), so replayed readings from 2013 on a topic with the default 7 days are gone at
 *   the broker's next retention check, minutes after they were written;
 * - message.timestamp.before.max.ms (KIP-937) makes the broker refuse records stamped further in the past than that
 *   with INVALID_TIMESTAMP, a whole batch at a time;
 * - message.timestamp.type=LogAppendTime replaces every record timestamp with the append time.
 * A replay therefore creates its topic with retention.ms=-1 and message.timestamp.before.max.ms at Kafka's "no
 * limit" (a broker-wide log.message.timestamp.before.max.ms would otherwise apply). A fleet creates its topic with the
 * cluster's defaults, then sets whichever of the two would delete or refuse its oldest readings as they arrive (an old
 * --start-ms): the defaults are known only once the topic exists, so they are changed after it is created, before
 * anything is written. Either warns when an existing topic will delete, refuse or restamp what it writes.
 */
import kafkajs from 'kafkajs'
import type { Admin, ITopicConfig } from 'kafkajs'
import { SimulatorError, SimulatorErrorCode } from './errors.js'
import type { Log } from './options.js'
import { replicationFactorAdvice } from '../runtime/topics.js'

const { ConfigResourceTypes } = kafkajs

/** Kafka's Long.MAX_VALUE, the "no limit" of its LONG configs. */
export const LONG_MAX = '9223372036854775807'

/**
 * Configs of a topic that keeps readings of any age: what a replay creates its topic with, and what a fleet sets on
 * the topic it created when the cluster's defaults would delete or refuse its oldest readings.
 */
export const HISTORY_TOPIC_CONFIGS: Readonly<Record<string, string>> = {
  'retention.ms': '-1',
  'message.timestamp.before.max.ms': LONG_MAX,
}

/** The configs the checks read. */
const CHECKED_CONFIGS = ['retention.ms', 'message.timestamp.before.max.ms', 'message.timestamp.type'] as const

export interface TopicPlan {
  topic: string
  /** Partitions if created; undefined for the cluster's num.partitions. */
  partitions?: number
  /** Replicas of each partition if created; undefined or -1 for the cluster's default.replication.factor. */
  replicationFactor?: number
  /** Configs if created, and why (for the log line); none for the cluster's defaults. */
  configs?: Readonly<Record<string, string>>
  reason?: string
  /** Event time of the oldest reading the run will write (ms since the epoch). */
  oldestTs: number
  /**
   * 'any-finite': warn about any finite retention.ms (readings replayed from the past age out early);
   * 'deleted-on-arrival': only when the oldest readings are already past it (a live fleet ages like any live data).
   */
  retentionWarning: 'any-finite' | 'deleted-on-arrival'
}

export interface PreparedTopic {
  created: boolean
  warnings: string[]
}

/**
 * Creates the topic if it does not exist (logging what and why), else reads its configs and logs a warning for each
 * way it would lose, refuse or restamp the readings. Throws SimulatorError (BROKER_REFUSED) when the topic can
 * neither be created nor found; a topic whose configs cannot be read gets a warning, and the run goes on.
 */
export async function prepareTopic(admin: Admin, plan: TopicPlan, log: Log, nowMs = Date.now()): Promise<PreparedTopic> {
  const configEntries = Object.entries(plan.configs ?? {}).map(([name, value]) => ({ name, value }))
  const spec: ITopicConfig = { topic: plan.topic, numPartitions: plan.partitions ?? -1, replicationFactor: plan.replicationFactor ?? -1, configEntries }
  // Looked up first, by name: CreateTopics through kafkajs asks Metadata for every topic in the cluster, which fails
  // while any partition anywhere is offline (runtime/target-topics.ts); a topic that exists needs no creating.
  const existing = await admin.fetchTopicMetadata({ topics: [plan.topic] }).then(
    (answer) => answer.topics.find((t) => t.name === plan.topic)?.partitions,
    () => undefined,
  )
  let created = false
  if (existing === undefined) {
    try {
      created = await admin.createTopics({ topics: [spec], waitForLeaders: true })
    } catch (error) {
      throw new SimulatorError(SimulatorErrorCode.brokerRefused, `cannot create topic ${plan.topic}: ${describeError(error)}${replicationFactorAdvice(error, spec.replicationFactor!)}`, { cause: error })
    }
  }
  if (created) {
    const configs = configEntries.map(({ name, value }) => `${name}=${value}`).join(', ')
    log.info(`created topic ${plan.topic}${configs === '' ? '' : ` with ${configs}`}${plan.reason ? `: ${plan.reason}` : ''}`)
  }
  const warnings: string[] = []
  if (!created && plan.partitions !== undefined && existing !== undefined && existing.length !== plan.partitions) {
    warnings.push(`topic ${plan.topic} exists with ${existing.length} partition${existing.length === 1 ? '' : 's'}, not the ${plan.partitions} asked for: the partition count applies only to a topic the run creates (brook topics add-partitions grows one; keys may then map to other partitions)`)
  }
  const replicas = existing?.[0]?.replicas.length
  if (!created && plan.replicationFactor !== undefined && plan.replicationFactor > 0 && replicas !== undefined && replicas !== plan.replicationFactor) {
    warnings.push(`topic ${plan.topic} exists with ${replicas} replica${replicas === 1 ? '' : 's'} per partition, not the ${plan.replicationFactor} asked for: the replication factor applies only to a topic the run creates`)
  }
  // A topic the run created has the cluster's defaults for every config it did not set: a fleet started in the past
  // (--start-ms, or a long counted run) on the default retention.ms would lose its oldest readings minutes after they
  // are written, so it gets configs that keep them; it is then checked as an existing one is.
  let configs: ReadonlyMap<string, string> | null = await describeTopicConfigs(admin, plan.topic).catch((error: unknown) => {
    warnings.push(`could not read the configs of topic ${plan.topic} (${describeError(error)}); retention and timestamp limits are not checked`)
    return null
  })
  if (created && configs !== null) configs = await keepOldest(admin, plan, configs, log, warnings, nowMs)
  if (configs !== null) warnings.push(...topicWarnings(plan, configs, nowMs))
  for (const warning of warnings) log.warn(warning)
  return { created, warnings }
}

const retentionMs = (configs: ReadonlyMap<string, string>): number => Number(configs.get('retention.ms') ?? '-1')
const beforeMaxMs = (configs: ReadonlyMap<string, string>): number => Number(configs.get('message.timestamp.before.max.ms') ?? LONG_MAX)

/**
 * Gives a topic the run has just created, whose `configs` (the cluster's defaults) would delete or refuse its oldest
 * readings as they are written, the HISTORY_TOPIC_CONFIGS that keep them (only those needed: a cluster older than
 * KIP-937 has no message.timestamp.before.max.ms to set), and returns the configs it then has. AlterConfigs (the one
 * kafkajs has) replaces the topic's whole set, so the configs it was created with are given again. A refusal (a
 * cluster whose policy or ACLs forbid it) leaves the defaults, and the warnings about them follow.
 */
async function keepOldest(admin: Admin, plan: TopicPlan, configs: ReadonlyMap<string, string>, log: Log, warnings: string[], nowMs: number): Promise<ReadonlyMap<string, string>> {
  const retention = retentionMs(configs)
  const changes: Record<string, string> = {}
  const effects: string[] = []
  if (retention >= 0 && plan.oldestTs < nowMs - retention) {
    changes['retention.ms'] = HISTORY_TOPIC_CONFIGS['retention.ms']!
    effects.push(`retention.ms=${retention} would delete them minutes after they are written`)
  }
  const beforeMax = beforeMaxMs(configs)
  if (plan.oldestTs < nowMs - beforeMax) {
    changes['message.timestamp.before.max.ms'] = HISTORY_TOPIC_CONFIGS['message.timestamp.before.max.ms']!
    effects.push(`message.timestamp.before.max.ms=${beforeMax} would refuse them`)
  }
  if (effects.length === 0) return configs
  const set = Object.entries(changes).map(([name, value]) => `${name}=${value}`).join(', ')
  try {
    await admin.alterConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: plan.topic, configEntries: Object.entries({ ...plan.configs, ...changes }).map(([name, value]) => ({ name, value })) }],
      validateOnly: false,
    })
  } catch (error) {
    warnings.push(`could not set ${set} on topic ${plan.topic} (${describeError(error)})`)
    return configs
  }
  log.info(`set ${set} on topic ${plan.topic}: the readings start at ${iso(plan.oldestTs)}, and the cluster's default ${effects.join(', and its ')}`)
  return new Map([...configs, ...Object.entries(changes)])
}

async function describeTopicConfigs(admin: Admin, topic: string): Promise<Map<string, string>> {
  const answer = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: [...CHECKED_CONFIGS] }],
    includeSynonyms: false,
  })
  const resource = answer.resources[0]
  if (resource === undefined) throw new Error('no answer for the topic')
  if (resource.errorCode !== 0) throw new Error(resource.errorMessage || `error code ${resource.errorCode}`)
  return new Map(resource.configEntries.map((entry) => [entry.configName, entry.configValue]))
}

/**
 * What an existing topic with these configs will do to readings from `plan.oldestTs` on, one line each (pure, so the
 * wording is tested without a cluster).
 */
export function topicWarnings(plan: Pick<TopicPlan, 'topic' | 'oldestTs' | 'retentionWarning'>, configs: ReadonlyMap<string, string>, nowMs: number): string[] {
  const { topic, oldestTs } = plan
  const warnings: string[] = []
  const retention = retentionMs(configs)
  if (retention >= 0) {
    const cutoff = nowMs - retention
    const why = `topic ${topic} has retention.ms=${retention} (${duration(retention)}) and retention acts on record timestamps:`
    const keep = `set retention.ms=-1 on ${topic} to keep them`
    if (oldestTs < cutoff) {
      warnings.push(`${why} readings stamped before ${iso(cutoff)} (the oldest are from ${iso(oldestTs)}) will be deleted at the broker's next retention check, minutes after they are written; ${keep}`)
    } else if (plan.retentionWarning === 'any-finite') {
      warnings.push(`${why} the readings (from ${iso(oldestTs)} on) will be deleted as their event time ages past ${duration(retention)}, from ${iso(oldestTs + retention)} on; ${keep}`)
    }
  }
  const beforeMax = beforeMaxMs(configs)
  if (oldestTs < nowMs - beforeMax) {
    warnings.push(
      `topic ${topic} refuses records stamped more than ${duration(beforeMax)} behind the broker clock (message.timestamp.before.max.ms=${beforeMax}): ` +
        `readings stamped before ${iso(nowMs - beforeMax)} will be refused with INVALID_TIMESTAMP, which stops the run; set message.timestamp.before.max.ms=${LONG_MAX} on ${topic} to accept them`,
    )
  }
  if (configs.get('message.timestamp.type') === 'LogAppendTime') {
    warnings.push(`topic ${topic} has message.timestamp.type=LogAppendTime: the broker stamps records with their append time, so record timestamps will not be the readings' event times (their ts field still is)`)
  }
  return warnings
}

/** An ISO-8601 UTC time, to the second. */
export function iso(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** A span in the largest unit that fits: "7 days", "1 hour", "90 s". */
export function duration(ms: number): string {
  const units: readonly (readonly [number, string])[] = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1000, 'second'],
  ]
  for (const [size, name] of units) {
    if (ms >= size) {
      const n = Math.round((ms / size) * 10) / 10
      return `${n} ${name}${n === 1 ? '' : 's'}`
    }
  }
  return `${ms} ms`
}

/** kafkajs errors carry Kafka's error name in `type`; others their message. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const type = (error as { type?: unknown }).type
    const nested = (error as { errors?: unknown[] }).errors
    const inner = Array.isArray(nested) && nested[0] instanceof Error ? `: ${describeError(nested[0])}` : ''
    return typeof type === 'string' && type !== '' ? `${type} (${error.message})${inner}` : `${error.message}${inner}`
  }
  return String(error)
}
