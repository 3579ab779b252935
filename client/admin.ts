/**
 * Topic administration on the wire, what kafka-topics.sh and kafka-configs.sh do through the Admin client:
 * CreateTopics, Metadata, DeleteTopics, CreatePartitions, DescribeConfigs, IncrementalAlterConfigs and ListOffsets,
 * each at the highest version both sides implement. The requests the active controller runs go to it through
 * `ClusterClient.atController`, which rides out a controller's loss; ListOffsets goes to each partition's leader
 * through `ClusterClient.atLeaders`, which rides out a leader's.
 * Errors are thrown with Kafka's error name and the broker's message (kafka-client.ts checkError), never swallowed;
 * only `describeTopics` keeps going past a leader it cannot ask, and says so per partition.
 */
import { CONTROLLER_REQUEST_TIMEOUT_MS, checkTopicError, type ClusterClient } from './cluster-client.js'
import { checkError, errorText, type KafkaClient } from './kafka-client.js'
import { NODE_LOSS, toldIfResent } from './retry.js'
import { listReassignments } from './reassignments.js'
import { listPartitionReassignments } from '../protocol/messages/list-partition-reassignments.js'
import { ErrorCode } from '../protocol/errors.js'
import { ConfigOperation, ConfigSource, IsolationLevel, OffsetSpec, ResourceType, ZERO_UUID } from '../protocol/constants.js'
import { createTopics, type CreateTopicsRequest, type CreateTopicsResponse } from '../protocol/messages/create-topics.js'
import { deleteTopics, type DeleteTopicsRequest, type DeleteTopicsResponse } from '../protocol/messages/delete-topics.js'
import { createPartitions, type CreatePartitionsRequest, type CreatePartitionsResponse } from '../protocol/messages/create-partitions.js'
import {
  describeConfigs,
  type DescribeConfigsRequest,
  type DescribeConfigsResponse,
} from '../protocol/messages/describe-configs.js'
import {
  incrementalAlterConfigs,
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponse,
} from '../protocol/messages/incremental-alter-configs.js'
import {
  listOffsets,
  type ListOffsetsRequest,
  type ListOffsetsResponse,
  type ListOffsetsResponseListOffsetsPartitionResponse,
} from '../protocol/messages/list-offsets.js'

/** How long the broker may take; below the client's request timeout, so its answer arrives first. */
const TIMEOUT_MS = 15_000

/** Kafka prints topic ids as Uuid.toString() does: the 16 bytes in URL-safe base64 without padding. */
export function topicIdToString(uuid: string): string {
  return Buffer.from(uuid.replaceAll('-', ''), 'hex').toString('base64url')
}

export interface CreateTopicOptions {
  name: string
  /** Omitted: the broker's num.partitions. */
  partitions?: number
  /** Omitted: the broker's default.replication.factor. */
  replicationFactor?: number
  configs?: Readonly<Record<string, string>>
  /**
   * A manual replica assignment: each partition's broker ids, by partition (0..n-1), the first its preferred leader.
   * Given, `partitions` and `replicationFactor` must be omitted (the broker refuses both with INVALID_REQUEST).
   */
  assignments?: readonly (readonly number[])[]
  /** TOPIC_ALREADY_EXISTS is not an error. */
  ifNotExists?: boolean
}

export interface CreatedTopic {
  created: boolean
  topicId: string | null
}

/**
 * CreateTopics at the active controller. A connection lost on the way is asked again like NOT_CONTROLLER (as Kafka's
 * AdminClient does), so a topic the lost attempt created is answered TOPIC_ALREADY_EXISTS.
 */
export function createTopic(cluster: ClusterClient, options: CreateTopicOptions): Promise<CreatedTopic> {
  const context = `cannot create topic '${options.name}'`
  return cluster.atController(context, async (client) => {
    const version = client.version(createTopics)
    // -1 ("the broker's default") exists from v4 (CreateTopicsRequest.json); before that Kafka's own defaults apply.
    // Beside an assignment the count and replication factor are -1 in every version.
    const assignments = (options.assignments ?? []).map((brokerIds, partitionIndex) => ({ partitionIndex, brokerIds: [...brokerIds] }))
    const brokerDefault = version >= 4 || assignments.length > 0 ? -1 : 1
    const response = await client.request<CreateTopicsRequest, CreateTopicsResponse>(createTopics, version, {
      topics: [
        {
          name: options.name,
          numPartitions: options.partitions ?? brokerDefault,
          replicationFactor: options.replicationFactor ?? brokerDefault,
          assignments,
          configs: Object.entries(options.configs ?? {}).map(([name, value]) => ({ name, value })),
        },
      ],
      timeoutMs: TIMEOUT_MS,
      validateOnly: false,
    }, { timeoutMs: CONTROLLER_REQUEST_TIMEOUT_MS })
    const result = response.topics[0]
    if (!result) throw new Error(`the broker did not answer for topic '${options.name}'`)
    if (result.errorCode === ErrorCode.TOPIC_ALREADY_EXISTS && options.ifNotExists) return { created: false, topicId: null }
    checkError(result.errorCode, context, result.errorMessage)
    return { created: true, topicId: result.topicId && result.topicId !== ZERO_UUID ? result.topicId : null }
  })
}

/**
 * DeleteTopics at the active controller; UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist. A request sent
 * again after an attempt whose outcome is unknown (its connection lost, a controller that lost its quorum's lead or
 * timed out after proposing the deletion) may find the topic gone because that attempt deleted it, so
 * UNKNOWN_TOPIC_OR_PARTITION to a request sent again is success: the topic does not exist, which is what was asked.
 * (Kafka's AdminClient reports it as an error.)
 */
export function deleteTopic(cluster: ClusterClient, name: string): Promise<void> {
  const context = `cannot delete topic '${name}'`
  return cluster.atController(context, toldIfResent(async (resent, client) => {
    const response = await client.request<DeleteTopicsRequest, DeleteTopicsResponse>(deleteTopics, client.version(deleteTopics), {
      // v6 names topics in `topics` (by name or id), v0-5 in `topicNames`; the codec writes the one the version has.
      topics: [{ name, topicId: ZERO_UUID }],
      topicNames: [name],
      timeoutMs: TIMEOUT_MS,
    }, { timeoutMs: CONTROLLER_REQUEST_TIMEOUT_MS })
    const result = response.responses[0]
    if (!result) throw new Error(`the broker did not answer for topic '${name}'`)
    if (result.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION && resent) return
    checkError(result.errorCode, context, result.errorMessage)
  }))
}

/**
 * CreatePartitions at the active controller: grows topic `name` to `count` partitions in all, the new ones placed by
 * the controller with the topic's replication factor (what `kafka-topics.sh --alter --partitions` sends), or as
 * `assignments` says: every partition's broker ids, the existing ones included, of which those past the topic's
 * current partition count (from Metadata) are sent, as kafka-topics.sh --replica-assignment does. Errors:
 * INVALID_PARTITIONS when `count` is not above the current count (Kafka's "Topic already has 3 partition(s)." or
 * "The topic t currently has 3 partition(s); 2 would not be an increase."), UNKNOWN_TOPIC_OR_PARTITION,
 * INVALID_REPLICATION_FACTOR with fewer live brokers than the topic's replication factor, INVALID_REPLICA_ASSIGNMENT
 * for an assignment the controller refuses (not one list per new partition, for instance).
 */
export async function addPartitions(cluster: ClusterClient, name: string, count: number, assignments?: readonly (readonly number[])[]): Promise<void> {
  const context = `cannot add partitions to topic '${name}'`
  let added: { brokerIds: number[] }[] | null = null
  if (assignments !== undefined) {
    const topic = (await cluster.metadata([name], { allowAutoTopicCreation: false })).topics.find((t) => t.name === name)
    if (!topic) throw new Error(`${context}: the broker did not describe it`)
    checkError(topic.errorCode, context, topic.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION ? `topic '${name}' does not exist` : null)
    added = assignments.slice(topic.partitions.length).map((brokerIds) => ({ brokerIds: [...brokerIds] }))
  }
  return cluster.atController(context, async (client) => {
    const response = await client.request<CreatePartitionsRequest, CreatePartitionsResponse>(createPartitions, client.version(createPartitions), {
      topics: [{ name, count, assignments: added }],
      timeoutMs: TIMEOUT_MS,
      validateOnly: false,
    }, { timeoutMs: CONTROLLER_REQUEST_TIMEOUT_MS })
    const result = response.results[0]
    if (!result) throw new Error(`the broker did not answer for topic '${name}'`)
    checkError(result.errorCode, context, result.errorMessage)
  })
}

export interface TopicConfigChanges {
  /** Configs to set, by name. */
  set: readonly (readonly [string, string])[]
  /** Configs to remove, so that the level below (a default) applies again. */
  delete: readonly string[]
}

/**
 * IncrementalAlterConfigs SET and DELETE for one topic (what `kafka-configs.sh --alter --add-config/--delete-config`
 * sends). The broker validates every value first and applies all or nothing (INVALID_CONFIG names the bad one; a
 * config named twice is INVALID_REQUEST).
 */
export function alterTopicConfigs(cluster: ClusterClient, topic: string, changes: TopicConfigChanges): Promise<void> {
  return alterResourceConfigs(cluster, { resourceType: ResourceType.TOPIC, resourceName: topic }, changes, `cannot alter the configs of topic '${topic}'`)
}

/**
 * IncrementalAlterConfigs SET and DELETE of one resource (a topic, or a BROKER resource's dynamic configs), sent to
 * the controller as clients send admin requests; `context` opens the error. Errors: the resource's error by name.
 */
export function alterResourceConfigs(cluster: ClusterClient, resource: { resourceType: number; resourceName: string }, changes: TopicConfigChanges, context: string): Promise<void> {
  return cluster.atController(context, async (client) => {
    const response = await client.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, client.version(incrementalAlterConfigs), {
      resources: [
        {
          ...resource,
          configs: [
            ...changes.set.map(([name, value]) => ({ name, configOperation: ConfigOperation.SET, value })),
            ...changes.delete.map((name) => ({ name, configOperation: ConfigOperation.DELETE, value: null })),
          ],
        },
      ],
      validateOnly: false,
    }, { timeoutMs: CONTROLLER_REQUEST_TIMEOUT_MS })
    const result = response.responses[0]
    if (!result) throw new Error(`${context}: the broker answered no resource`)
    checkError(result.errorCode, context, result.errorMessage)
  })
}

export async function listTopics(cluster: ClusterClient): Promise<string[]> {
  const response = await cluster.metadata(null, { allowAutoTopicCreation: false })
  return response.topics.flatMap((t) => (t.name === null ? [] : [t.name])).sort()
}

export interface PartitionOffset {
  partition: number
  offset: bigint
  /** The timestamp of the record found by a timestamp search; -1 for earliest/latest. */
  timestamp: bigint
}

/** What ListOffsets asks of each leader: OffsetSpec.EARLIEST, OffsetSpec.LATEST or a time in ms, and the isolation level. */
export interface OffsetQuery {
  timestamp: bigint
  isolationLevel: IsolationLevel
}

/**
 * ListOffsets for some partitions of topic `topic`, each asked of its leader, as Kafka's AdminClient.listOffsets does.
 * `timestamp` is OffsetSpec.EARLIEST, OffsetSpec.LATEST or a time in ms (the first offset whose timestamp is at or
 * after it; offset -1 when none is). A partition without a leader, whose leader cannot be reached, or whose leader
 * answers a retriable error (a leader that moved or restarted, one that has not yet learned of a topic just created,
 * an epoch it does not know yet) is asked again through fresh Metadata, as NODE_LOSS says (250 ms apart, up to 30 s,
 * Kafka's default.api.timeout.ms being 60 s): `ClusterClient.atLeaders` with `unreachable: 'wait'`. Errors, at once:
 * the topic's Metadata error (it does not exist), no such partition, a leader's other error; after the 30 s, `cannot
 * list offsets of t-0: ...; gave up after 30 s`. Each names the first of `partitions` that has no offset.
 */
export async function listPartitionOffsets(
  cluster: ClusterClient,
  topic: string,
  partitions: readonly number[],
  options: OffsetQuery,
): Promise<Map<number, PartitionOffset>> {
  const answers = await offsetsFromLeaders(cluster, topic, partitions, { ...options, unreachable: 'wait' })
  const found = new Map<number, PartitionOffset>()
  for (const index of partitions) {
    const answer = answers.get(index)!
    if ('unavailable' in answer) throw new Error(`cannot list offsets of ${topic}-${index}: ${answer.unavailable}`)
    found.set(index, answer)
  }
  return found
}

/** Why a partition's offset could not be had: its leader's error, or its leader unreachable, in words. */
export interface OffsetUnavailable {
  unavailable: string
}

/**
 * ListOffsets as `listPartitionOffsets` asks it, each partition answered on its own: its offset, or why it has none
 * (what a report that goes on without it shows, as `kafka-consumer-groups.sh --describe` shows '-'). A leader that
 * cannot be reached fails its partitions at once (`unreachable: 'report'`): it stays their leader until the
 * controller fences it (broker.session.timeout.ms), longer than a report should wait. Retriable errors are asked again
 * as in `listPartitionOffsets`; past the 30 s the partition's reason ends with `; gave up after 30 s`.
 */
export function askLeaders(
  cluster: ClusterClient,
  topic: string,
  partitions: readonly number[],
  options: OffsetQuery,
): Promise<Map<number, PartitionOffset | OffsetUnavailable>> {
  return offsetsFromLeaders(cluster, topic, partitions, { ...options, unreachable: 'report' })
}

/** ListOffsets at the leaders through `ClusterClient.atLeaders`, a leader's error that is not retriable in words. */
async function offsetsFromLeaders(
  cluster: ClusterClient,
  topic: string,
  partitions: readonly number[],
  options: OffsetQuery & { unreachable: 'wait' | 'report' },
): Promise<Map<number, PartitionOffset | OffsetUnavailable>> {
  const outcomes = await cluster.atLeaders(topic, partitions, (leader, indexes) => listOffsetsAt(leader, topic, indexes, options), {
    policy: NODE_LOSS,
    errorCode: (answer) => answer.errorCode,
    unreachable: options.unreachable,
  })
  const answers = new Map<number, PartitionOffset | OffsetUnavailable>()
  for (const [index, outcome] of outcomes) {
    if ('unavailable' in outcome) answers.set(index, outcome)
    else if (outcome.answer.errorCode !== ErrorCode.NONE) answers.set(index, { unavailable: errorText(outcome.answer.errorCode) })
    else answers.set(index, { partition: index, offset: outcome.answer.offset ?? -1n, timestamp: outcome.answer.timestamp ?? -1n })
  }
  return answers
}

/** One ListOffsets request at a leader: its answer for each of `partitions` (KafkaClient errors as they come). */
export async function listOffsetsAt(
  client: KafkaClient,
  topic: string,
  partitions: readonly number[],
  options: OffsetQuery,
): Promise<Map<number, ListOffsetsResponseListOffsetsPartitionResponse>> {
  // v1 is the first version that answers with one offset and its timestamp instead of a list.
  const response = await client.request<ListOffsetsRequest, ListOffsetsResponse>(listOffsets, client.version(listOffsets, '1-10'), {
    replicaId: -1,
    isolationLevel: options.isolationLevel,
    topics: [
      {
        name: topic,
        partitions: partitions.map((partitionIndex) => ({ partitionIndex, currentLeaderEpoch: -1, timestamp: options.timestamp, maxNumOffsets: 1 })),
      },
    ],
    timeoutMs: TIMEOUT_MS,
  })
  return new Map(response.topics.flatMap((t) => t.partitions).map((p) => [p.partitionIndex, p]))
}

export interface PartitionDescription {
  partition: number
  leader: number
  leaderEpoch: number
  replicas: number[]
  isr: number[]
  /** A reassignment under way (KIP-455): the replicas being added and removed; both empty when none is. */
  addingReplicas: readonly number[]
  removingReplicas: readonly number[]
  /** The partition's offsets from its leader; null when they could not be had, `offsetsUnavailable` says why. */
  logStartOffset: bigint | null
  logEndOffset: bigint | null
  /** Why the offsets are missing (no leader, the leader unreachable or its error), or null. */
  offsetsUnavailable: string | null
}

export interface TopicDescription {
  name: string
  /** Kafka's string form (topicIdToString); null when the broker does not send topic ids (Metadata < 10). */
  topicId: string | null
  isInternal: boolean
  replicationFactor: number
  partitions: PartitionDescription[]
  /** Configs set on the topic itself, by name; defaults are left out, as kafka-topics.sh --describe does. */
  configs: { name: string; value: string | null }[]
  /** The topic's min.insync.replicas in effect (set on it, or the cluster's default); null when not reported. */
  minInsyncReplicas: number | null
}

/**
 * Describes the named topics (null: every topic), in name order: partitions, leaders, replicas and ISR from Metadata,
 * configs and the reassignments under way from the controller, and each partition's log start and end offsets from
 * its leader. A partition whose leader cannot be asked (none, unreachable, an error) is described all the same, its
 * offsets unavailable with the reason, as kafka-topics.sh --describe shows a partition whatever its leader's state;
 * after such a wait the leaders and ISR come from Metadata read again. Errors: a topic's Metadata error (the topic
 * does not exist), the configs' errors.
 */
export async function describeTopics(cluster: ClusterClient, names: readonly string[] | null): Promise<TopicDescription[]> {
  const response = await cluster.metadata(names, { allowAutoTopicCreation: false })
  for (const topic of response.topics) checkTopicError(topic)
  const topics = response.topics.filter((t) => t.name !== null).sort((a, b) => a.name!.localeCompare(b.name!))
  if (topics.length === 0) return []
  const { configs, minInsyncReplicas } = await topicConfigs(cluster, topics.map((t) => t.name!))
  // As kafka-topics.sh --describe asks; a broker without ListPartitionReassignments has none under way.
  const reassigning = new Map((cluster.any.supports(listPartitionReassignments) ? await listReassignments(cluster, null) : []).map((r) => [`${r.topic}-${r.partition}`, r]))
  const level = IsolationLevel.READ_UNCOMMITTED
  const offsets = await Promise.all(
    topics.map(async (topic) => {
      // An offline partition (no live leader) has no one to ask: it is not asked, as it would be again for 30 s.
      const indexes = topic.partitions.filter((p) => p.leaderId >= 0).map((p) => p.partitionIndex)
      const [start, end] = await Promise.all([
        askLeaders(cluster, topic.name!, indexes, { timestamp: OffsetSpec.EARLIEST, isolationLevel: level }),
        askLeaders(cluster, topic.name!, indexes, { timestamp: OffsetSpec.LATEST, isolationLevel: level }),
      ])
      return { start, end }
    }),
  )
  // A leader that did not answer (a stopped node: the request timed out) may have been replaced while the command
  // waited for it; the leaders and ISR printed are those of a Metadata read after the wait, not before.
  const waited = offsets.some(({ start, end }) => [...start.values(), ...end.values()].some((answer) => 'unavailable' in answer))
  // Metadata that cannot be read again leaves the one read before.
  const after = waited ? await cluster.metadata(topics.map((t) => t.name!), { allowAutoTopicCreation: false }).catch(() => null) : null
  // Partitions whose offsets were unavailable and that have another leader now are asked again, of that leader, so
  // that the offsets printed and the leader printed beside them agree.
  if (after) {
    await Promise.all(
      topics.map(async (before, i) => {
        const now = after.topics.find((t) => t.name === before.name && t.errorCode === ErrorCode.NONE)
        const { start, end } = offsets[i]!
        const moved = (now?.partitions ?? [])
          .filter((p) => p.leaderId >= 0 && p.leaderId !== before.partitions.find((b) => b.partitionIndex === p.partitionIndex)?.leaderId)
          .map((p) => p.partitionIndex)
          .filter((index) => [start.get(index), end.get(index)].some((answer) => answer === undefined || 'unavailable' in answer))
        if (moved.length === 0) return
        const [newStart, newEnd] = await Promise.all([
          askLeaders(cluster, before.name!, moved, { timestamp: OffsetSpec.EARLIEST, isolationLevel: level }),
          askLeaders(cluster, before.name!, moved, { timestamp: OffsetSpec.LATEST, isolationLevel: level }),
        ])
        for (const [index, answer] of newStart) start.set(index, answer)
        for (const [index, answer] of newEnd) end.set(index, answer)
      }),
    )
  }
  return topics.map((before, i): TopicDescription => {
    const topic = after?.topics.find((t) => t.name === before.name && t.errorCode === ErrorCode.NONE) ?? before
    const { start, end } = offsets[i]!
    const partitions = [...topic.partitions].sort((a, b) => a.partitionIndex - b.partitionIndex)
    return {
      name: topic.name!,
      topicId: topic.topicId && topic.topicId !== ZERO_UUID ? topicIdToString(topic.topicId) : null,
      isInternal: topic.isInternal ?? false,
      // While partition 0 is reassigned its replicas include those being removed, which kafka-topics.sh leaves out.
      replicationFactor: (partitions[0]?.replicaNodes.length ?? 0) - (reassigning.get(`${topic.name}-0`)?.removingReplicas.length ?? 0),
      partitions: partitions.map((p) => {
        const first = start.get(p.partitionIndex) ?? { unavailable: 'no leader' }
        const last = end.get(p.partitionIndex) ?? first
        const unavailable = 'unavailable' in first ? first.unavailable : 'unavailable' in last ? last.unavailable : null
        const reassignment = reassigning.get(`${topic.name}-${p.partitionIndex}`)
        return {
          partition: p.partitionIndex,
          leader: p.leaderId,
          leaderEpoch: p.leaderEpoch ?? -1,
          replicas: p.replicaNodes,
          isr: p.isrNodes,
          addingReplicas: reassignment?.addingReplicas ?? [],
          removingReplicas: reassignment?.removingReplicas ?? [],
          logStartOffset: unavailable === null && !('unavailable' in first) ? first.offset : null,
          logEndOffset: unavailable === null && !('unavailable' in last) ? last.offset : null,
          offsetsUnavailable: unavailable,
        }
      }),
      configs: configs.get(topic.name!) ?? [],
      minInsyncReplicas: minInsyncReplicas.get(topic.name!) ?? null,
    }
  })
}

/**
 * The configs set on each topic (DescribeConfigs; v0 says isDefault, v1+ the config source), and each topic's
 * min.insync.replicas in effect (set or default, for the partition filters), asked of the active controller as
 * configs are changed there, so that a change just made through it is seen.
 */
async function topicConfigs(
  cluster: ClusterClient,
  names: readonly string[],
): Promise<{ configs: Map<string, { name: string; value: string | null }[]>; minInsyncReplicas: Map<string, number> }> {
  const { version, response } = await cluster.atController('cannot describe the configs of the topics', async (client) => {
    const version = client.version(describeConfigs)
    const response = await client.request<DescribeConfigsRequest, DescribeConfigsResponse>(describeConfigs, version, {
      resources: names.map((resourceName) => ({ resourceType: ResourceType.TOPIC, resourceName, configurationKeys: null })),
      includeSynonyms: false,
      includeDocumentation: false,
    })
    return { version, response }
  })
  const byTopic = new Map<string, { name: string; value: string | null }[]>()
  const minInsyncReplicas = new Map<string, number>()
  for (const result of response.results) {
    checkError(result.errorCode, `cannot describe the configs of topic '${result.resourceName}'`, result.errorMessage)
    const set = result.configs.filter((c) => (version === 0 ? c.isDefault === false : c.configSource === ConfigSource.TOPIC_CONFIG))
    byTopic.set(result.resourceName, set.map(({ name, value }) => ({ name, value })).sort((a, b) => a.name.localeCompare(b.name)))
    // DescribeConfigs names every topic config with the value in effect, a default included.
    const minIsr = Number(result.configs.find((c) => c.name === 'min.insync.replicas')?.value ?? NaN)
    if (Number.isInteger(minIsr)) minInsyncReplicas.set(result.resourceName, minIsr)
  }
  return { configs: byTopic, minInsyncReplicas }
}
