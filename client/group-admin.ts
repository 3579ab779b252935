/**
 * Consumer-group administration on the wire, what kafka-consumer-groups.sh does through the Admin client:
 * ListGroups (every node), and at the group's coordinator (FindCoordinator) DescribeGroups, OffsetFetch,
 * DeleteGroups, OffsetCommit and OffsetDelete, with ListOffsets at each partition's leader for log end offsets and
 * resets.
 *
 * - Lag is Kafka's: log end offset (ListOffsets latest, read_uncommitted) minus the committed offset; unknown (null)
 *   when the group has no committed offset for the partition.
 * - Assignments are decoded from the consumer protocol's bytes (protocol/consumer-protocol.ts), as Kafka's tool does.
 * - Resetting offsets follows ConsumerGroupCommand: only while the group is inactive (Empty, or Dead: not yet
 *   existing); targets outside [log start, log end] are moved to the nearest end with a notice; the new offsets are
 *   committed as a standalone commit (generation -1, no member id), which the coordinator accepts only while the
 *   group has no members.
 */
import type { ClusterClient, GroupCoordinator } from './cluster-client.js'
import { checkError, type KafkaClient } from './kafka-client.js'
import { askLeaders, listPartitionOffsets } from './admin.js'
import { IsolationLevel, OffsetSpec } from '../protocol/constants.js'
import { assignedPartitions } from '../protocol/consumer-protocol.js'
import { counted } from './wording.js'
import { ErrorCode } from '../protocol/errors.js'
import { listGroups as listGroupsApi, type ListGroupsRequest, type ListGroupsResponse } from '../protocol/messages/list-groups.js'
import { describeGroups, type DescribeGroupsRequest, type DescribeGroupsResponse } from '../protocol/messages/describe-groups.js'
import { deleteGroups, type DeleteGroupsRequest, type DeleteGroupsResponse } from '../protocol/messages/delete-groups.js'
import { offsetFetch, type OffsetFetchRequest, type OffsetFetchResponse } from '../protocol/messages/offset-fetch.js'
import { offsetCommit, type OffsetCommitRequest, type OffsetCommitResponse } from '../protocol/messages/offset-commit.js'
import { offsetDelete, type OffsetDeleteRequest, type OffsetDeleteRequestTopic, type OffsetDeleteResponse } from '../protocol/messages/offset-delete.js'
import type { MetadataResponseTopic } from '../protocol/messages/metadata.js'
import { toldIfResent } from './retry.js'

/** States in which a group has no members, so its offsets may be reset (Dead: the group does not exist yet). */
const INACTIVE_STATES: readonly string[] = ['Empty', 'Dead']

export interface TopicPartitions {
  topic: string
  partitions: number[]
}

export interface ListedGroup {
  groupId: string
  protocolType: string
  /** null when the broker answers ListGroups below v4, which has no state. */
  state: string | null
}

/**
 * ListGroups at every node (each lists the groups it coordinates), merged and sorted by group id; a node lost meanwhile
 * is waited out as `ClusterClient.atEveryNode` says.
 */
export async function listGroups(cluster: ClusterClient, options: { states: readonly string[] }): Promise<ListedGroup[]> {
  const perNode = await cluster.atEveryNode('cannot list groups', async (client, nodeId) => {
    const version = client.version(listGroupsApi, '0-4')
    // The states filter exists from v4 (ListGroupsRequest.json, KIP-518).
    if (options.states.length > 0 && version < 4) {
      throw new Error(`the broker at ${client.address} cannot filter groups by state (it needs ListGroups v4)`)
    }
    const response = await client.request<ListGroupsRequest, ListGroupsResponse>(listGroupsApi, version, {
      statesFilter: [...options.states],
      typesFilter: [],
    })
    checkError(response.errorCode, `cannot list the groups of node ${nodeId}`)
    return response.groups.map((g): ListedGroup => ({ groupId: g.groupId, protocolType: g.protocolType, state: g.groupState ?? null }))
  })
  return perNode.flat().sort((a, b) => a.groupId.localeCompare(b.groupId))
}

export interface GroupMember {
  memberId: string
  groupInstanceId: string | null
  clientId: string
  host: string
  /** The partitions assigned to the member, by topic (empty while the group rebalances). */
  assignment: TopicPartitions[]
}

export interface GroupDescription {
  groupId: string
  state: string
  protocolType: string
  /** The protocol chosen for the generation: for consumer groups, the assignor (range, roundrobin...); '' if none. */
  protocol: string
  coordinator: { nodeId: number; host: string; port: number }
  members: GroupMember[]
}

/** DescribeGroups at the coordinator; an unknown group comes back in state Dead, as Kafka describes it. */
export function describeGroup(cluster: ClusterClient, groupId: string): Promise<GroupDescription> {
  return cluster.atGroupCoordinator(groupId, (coordinator) => describeAt(coordinator, groupId))
}

async function describeAt(coordinator: GroupCoordinator, groupId: string): Promise<GroupDescription> {
  const client = coordinator.client
  const response = await client.request<DescribeGroupsRequest, DescribeGroupsResponse>(describeGroups, client.version(describeGroups, '0-5'), {
    groups: [groupId],
    includeAuthorizedOperations: false,
  })
  const group = response.groups.find((g) => g.groupId === groupId)
  if (!group) throw new Error(`the broker did not describe group '${groupId}'`)
  checkError(group.errorCode, `cannot describe group '${groupId}'`)
  // Only the consumer protocol (or a group that has only committed offsets) has assignments we can read.
  const readable = group.protocolType === 'consumer' || group.protocolType === ''
  return {
    groupId,
    state: group.groupState,
    protocolType: group.protocolType,
    protocol: group.protocolData,
    coordinator: { nodeId: coordinator.nodeId, host: coordinator.host, port: coordinator.port },
    members: group.members.map((m) => ({
      memberId: m.memberId,
      groupInstanceId: m.groupInstanceId ?? null,
      clientId: m.clientId,
      host: m.clientHost,
      assignment: readable ? sortedAssignment(assignedPartitions(m.memberAssignment)) : [],
    })),
  }
}

function sortedAssignment(assignment: TopicPartitions[]): TopicPartitions[] {
  return assignment
    .map(({ topic, partitions }) => ({ topic, partitions: [...partitions].sort((a, b) => a - b) }))
    .sort((a, b) => a.topic.localeCompare(b.topic))
}

const partitionKey = (topic: string, partition: number): string => `${topic}\0${partition}`

/** The group's committed offsets (OffsetFetch for every partition it has one for), keyed by partitionKey. */
async function committedOffsets(client: KafkaClient, groupId: string): Promise<Map<string, bigint>> {
  // v2 is the first version where a null topic list means "every partition with an offset".
  const version = client.version(offsetFetch, '2-9')
  const response = await client.request<OffsetFetchRequest, OffsetFetchResponse>(offsetFetch, version, {
    groupId,
    topics: null,
    // v8+ (KIP-709) ask for several groups at once; the codec writes whichever layout the version has.
    groups: [{ groupId, memberId: null, memberEpoch: -1, topics: null }],
    requireStable: false,
  })
  const context = `cannot fetch the committed offsets of group '${groupId}'`
  const group = version >= 8 ? response.groups?.find((g) => g.groupId === groupId) : { errorCode: response.errorCode, topics: response.topics ?? [] }
  if (!group) throw new Error(`the broker did not answer OffsetFetch for group '${groupId}'`)
  checkError(group.errorCode ?? ErrorCode.NONE, context)
  const offsets = new Map<string, bigint>()
  for (const topic of group.topics) {
    for (const p of topic.partitions) {
      checkError(p.errorCode, `${context} (${topic.name}-${p.partitionIndex})`)
      // -1: no offset (OffsetFetchResponse.json).
      if (p.committedOffset >= 0n) offsets.set(partitionKey(topic.name, p.partitionIndex), p.committedOffset)
    }
  }
  return offsets
}

async function offsetsAt(
  cluster: ClusterClient,
  topic: MetadataResponseTopic,
  partitions: readonly number[],
  timestamp: bigint,
): Promise<Map<number, bigint>> {
  const found = await listPartitionOffsets(cluster, topic.name!, partitions, { timestamp, isolationLevel: IsolationLevel.READ_UNCOMMITTED })
  return new Map([...found].map(([partition, { offset }]) => [partition, offset]))
}

export interface PartitionLag {
  topic: string
  partition: number
  /** null: the group has no committed offset for the partition. */
  committedOffset: bigint | null
  /** null: the topic no longer exists, or its leader could not be asked. */
  logEndOffset: bigint | null
  lag: bigint | null
  /** The member the partition is assigned to; null when no member has it. */
  member: GroupMember | null
}

export interface GroupOffsets {
  group: GroupDescription
  /** Assigned partitions and partitions with a committed offset, by topic and partition. */
  partitions: PartitionLag[]
}

/** What `kafka-consumer-groups.sh --describe` shows: per partition, committed offset, log end offset, lag, owner. */
export function describeGroupOffsets(cluster: ClusterClient, groupId: string): Promise<GroupOffsets> {
  return cluster.atGroupCoordinator(groupId, (coordinator) => describeOffsetsAt(cluster, coordinator, groupId))
}

async function describeOffsetsAt(cluster: ClusterClient, coordinator: GroupCoordinator, groupId: string): Promise<GroupOffsets> {
  const group = await describeAt(coordinator, groupId)
  if (group.state === 'Dead') return { group, partitions: [] }
  const committed = await committedOffsets(coordinator.client, groupId)
  const owners = new Map<string, GroupMember>()
  for (const member of group.members) {
    for (const { topic, partitions } of member.assignment) for (const p of partitions) owners.set(partitionKey(topic, p), member)
  }
  const keys = [...new Set([...owners.keys(), ...committed.keys()])]
  const byTopic = new Map<string, number[]>()
  for (const key of keys) {
    const [topic, partition] = key.split('\0') as [string, string]
    byTopic.set(topic, [...(byTopic.get(topic) ?? []), Number(partition)])
  }
  const topics = await cluster.topicsNamed([...byTopic.keys()], 'skip')
  const ends = new Map<string, bigint>()
  await Promise.all(
    [...topics.values()].map(async (topic) => {
      const existing = new Set(topic.partitions.map((p) => p.partitionIndex))
      const wanted = byTopic.get(topic.name!)!.filter((p) => existing.has(p))
      if (wanted.length === 0) return
      // A partition whose leader cannot be asked shows no log end and no lag, as Kafka's tool shows '-'.
      const answers = await askLeaders(cluster, topic.name!, wanted, { timestamp: OffsetSpec.LATEST, isolationLevel: IsolationLevel.READ_UNCOMMITTED })
      for (const [partition, answer] of answers) if (!('unavailable' in answer)) ends.set(partitionKey(topic.name!, partition), answer.offset)
    }),
  )
  const partitions = keys.map((key): PartitionLag => {
    const [topic, partition] = key.split('\0') as [string, string]
    const committedOffset = committed.get(key) ?? null
    const logEndOffset = ends.get(key) ?? null
    return {
      topic,
      partition: Number(partition),
      committedOffset,
      logEndOffset,
      lag: committedOffset !== null && logEndOffset !== null ? logEndOffset - committedOffset : null,
      member: owners.get(key) ?? null,
    }
  })
  partitions.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)
  return { group, partitions }
}

/**
 * DeleteGroups at the coordinator: only a group without members can be deleted (NON_EMPTY_GROUP otherwise), and an
 * unknown one is GROUP_ID_NOT_FOUND. A request sent again after an attempt whose outcome is unknown may find the group
 * gone because that attempt deleted it: its answer was lost with its connection, or its coordinator wrote the
 * tombstones and then lost the group's partition before the ISR confirmed them (NOT_COORDINATOR, or
 * COORDINATOR_NOT_AVAILABLE), and the next coordinator loaded them. So GROUP_ID_NOT_FOUND to a request sent again is
 * success: the group does not exist, which is what was asked. (Kafka's AdminClient reports it as an error.)
 */
export function deleteGroup(cluster: ClusterClient, groupId: string): Promise<void> {
  return cluster.atGroupCoordinator(groupId, toldIfResent((resent, { client }) => deleteAt(client, groupId, resent)))
}

async function deleteAt(client: KafkaClient, groupId: string, resent: boolean): Promise<void> {
  const response = await client.request<DeleteGroupsRequest, DeleteGroupsResponse>(deleteGroups, client.version(deleteGroups, '0-2'), {
    groupsNames: [groupId],
  })
  const result = response.results.find((r) => r.groupId === groupId)
  if (!result) throw new Error(`the broker did not answer DeleteGroups for group '${groupId}'`)
  if (result.errorCode === ErrorCode.GROUP_ID_NOT_FOUND && resent) return
  const message =
    result.errorCode === ErrorCode.NON_EMPTY_GROUP
      ? 'the group has active members; stop its consumers first'
      : result.errorCode === ErrorCode.GROUP_ID_NOT_FOUND
        ? 'the group does not exist'
        : null
  checkError(result.errorCode, `cannot delete group '${groupId}'`, message)
}

/** What OffsetDelete answered for one partition: NONE (no committed offset is left), or why the offset stays. */
export interface OffsetDeletion {
  topic: string
  /** null: a topic named without partitions that Metadata could not describe (Kafka's tool prints "Not Provided"). */
  partition: number | null
  errorCode: number
}

/**
 * Deletes the group's committed offsets of `topics` (kafka-consumer-groups.sh --delete-offsets, KIP-496): OffsetDelete
 * v0 at the group's coordinator, as Kafka's Admin deleteConsumerGroupOffsets sends it. A topic named without
 * partitions means all of its partitions, which Metadata gives first (Kafka's tool asks DescribeTopics); one that
 * Metadata does not describe is left out of the request and answered with its Metadata error and partition null.
 * Returns one entry per partition (and per such topic), in topic and partition order, each NONE or the coordinator's
 * error for it: GROUP_SUBSCRIBED_TO_TOPIC (a member of the consumer group subscribes to the topic, KIP-496),
 * UNKNOWN_TOPIC_OR_PARTITION. An offset the group does not have is deleted without error, so a request sent again
 * after a lost answer changes nothing more. Errors, for the whole group (after the coordinator errors and lost
 * connections `atGroupCoordinator` waits out): GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP (a group with members that is not a
 * consumer group, whose subscriptions would say which topics it reads), INVALID_GROUP_ID (the empty group id).
 */
export async function deleteGroupOffsets(cluster: ClusterClient, groupId: string, topics: readonly TopicSelection[]): Promise<OffsetDeletion[]> {
  // Topic -> the partitions named, or null for all of them.
  const named = new Map<string, number[] | null>()
  for (const { topic, partitions } of topics) {
    const before = named.get(topic)
    named.set(topic, partitions === undefined || before === null ? null : [...(before ?? []), ...partitions])
  }
  const whole = [...named].flatMap(([topic, partitions]) => (partitions === null ? [topic] : []))
  const undescribed: OffsetDeletion[] = []
  if (whole.length > 0) {
    const described = (await cluster.metadata(whole, { allowAutoTopicCreation: false })).topics
    for (const name of whole) {
      const topic = described.find((t) => t.name === name)
      if (!topic) throw new Error(`the broker did not describe topic '${name}'`)
      if (topic.errorCode === ErrorCode.NONE) named.set(name, topic.partitions.map((p) => p.partitionIndex))
      else {
        named.delete(name)
        undescribed.push({ topic: name, partition: null, errorCode: topic.errorCode })
      }
    }
  }
  const request = [...named].map(([name, partitions]) => ({
    name,
    partitions: [...new Set(partitions)].sort((a, b) => a - b).map((partitionIndex) => ({ partitionIndex })),
  }))
  // Sent even when every topic was undescribed, so that a group that does not exist is still said to be missing.
  const deleted = await cluster.atGroupCoordinator(groupId, ({ client }) => deleteOffsetsAt(client, groupId, request))
  return [...undescribed, ...deleted].sort((a, b) => a.topic.localeCompare(b.topic) || (a.partition ?? -1) - (b.partition ?? -1))
}

/** Kafka's tool's words for the group-level errors of OffsetDelete (ConsumerGroupCommand deleteOffsets). */
const OFFSET_DELETE_GROUP_ERRORS: ReadonlyMap<number, string> = new Map([
  [ErrorCode.GROUP_ID_NOT_FOUND, 'the group does not exist'],
  [ErrorCode.NON_EMPTY_GROUP, 'deleting offsets of a group is forbidden while it is not empty'],
])

async function deleteOffsetsAt(client: KafkaClient, groupId: string, topics: OffsetDeleteRequestTopic[]): Promise<OffsetDeletion[]> {
  const response = await client.request<OffsetDeleteRequest, OffsetDeleteResponse>(offsetDelete, client.version(offsetDelete), { groupId, topics })
  checkError(response.errorCode, `cannot delete offsets of group '${groupId}'`, OFFSET_DELETE_GROUP_ERRORS.get(response.errorCode))
  return topics.flatMap(({ name, partitions }) =>
    partitions.map(({ partitionIndex }) => {
      const answer = response.topics.find((t) => t.name === name)?.partitions.find((p) => p.partitionIndex === partitionIndex)
      if (!answer) throw new Error(`the broker did not answer OffsetDelete for ${name}-${partitionIndex}`)
      return { topic: name, partition: partitionIndex, errorCode: answer.errorCode }
    }),
  )
}

/** A topic, or some of its partitions. */
export interface TopicSelection {
  topic: string
  /** Omitted: every partition. */
  partitions?: number[]
}

/** Which partitions to reset: named topics, or every topic the group has offsets for. */
export type ResetScope = { allTopics: true } | { allTopics: false; topics: TopicSelection[] }

export type ResetTarget =
  | { to: 'earliest' }
  | { to: 'latest' }
  | { to: 'offset'; offset: bigint }
  | { to: 'datetime'; timestamp: bigint }
  | { to: 'shift'; by: bigint }

export interface ResetOptions {
  scope: ResetScope
  target: ResetTarget
  /** Commit the new offsets; without it nothing changes (a dry run). */
  execute: boolean
  /** Adjustments worth telling the user (a target outside the log moved to its nearest end). */
  onNotice?: (message: string) => void
}

export interface PlannedOffset {
  topic: string
  partition: number
  newOffset: bigint
}

/** Plans (and with `execute`, commits) new committed offsets for an inactive group. */
export function resetGroupOffsets(cluster: ClusterClient, groupId: string, options: ResetOptions): Promise<PlannedOffset[]> {
  return cluster.atGroupCoordinator(groupId, (coordinator) => resetAt(cluster, coordinator, groupId, options))
}

async function resetAt(cluster: ClusterClient, coordinator: GroupCoordinator, groupId: string, options: ResetOptions): Promise<PlannedOffset[]> {
  const group = await describeAt(coordinator, groupId)
  if (!INACTIVE_STATES.includes(group.state)) {
    throw new Error(
      `offsets of group '${groupId}' can only be reset while the group is inactive, but it is ${group.state} with ` +
        `${counted(group.members.length, 'member')}; stop its consumers first`,
    )
  }
  const committed = await committedOffsets(coordinator.client, groupId)
  const wanted = new Map<string, number[] | null>()
  if (options.scope.allTopics) {
    for (const key of committed.keys()) {
      const [topic, partition] = key.split('\0') as [string, string]
      wanted.set(topic, [...(wanted.get(topic) ?? []), Number(partition)])
    }
    if (wanted.size === 0) throw new Error(`group '${groupId}' has no committed offsets; name the topics to reset with --topic`)
  } else {
    for (const { topic, partitions } of options.scope.topics) {
      const before = wanted.get(topic)
      wanted.set(topic, partitions === undefined || before === null ? null : [...(before ?? []), ...partitions])
    }
  }
  const topics = await cluster.topicsNamed([...wanted.keys()], 'fail')
  const plan: PlannedOffset[] = []
  for (const [name, listed] of wanted) {
    const topic = topics.get(name)!
    const all = topic.partitions.map((p) => p.partitionIndex).sort((a, b) => a - b)
    const partitions = listed === null ? all : [...new Set(listed)].sort((a, b) => a - b)
    for (const p of partitions) {
      if (!all.includes(p)) throw new Error(`topic '${name}' has ${counted(all.length, 'partition')}; there is no partition ${p}`)
    }
    const [start, end] = await Promise.all([offsetsAt(cluster, topic, partitions, OffsetSpec.EARLIEST), offsetsAt(cluster, topic, partitions, OffsetSpec.LATEST)])
    const atTime = options.target.to === 'datetime' ? await offsetsAt(cluster, topic, partitions, options.target.timestamp) : null
    for (const partition of partitions) {
      const bounds = { start: start.get(partition)!, end: end.get(partition)! }
      const newOffset = targetOffset(options.target, { topic: name, partition, committed: committed.get(partitionKey(name, partition)), atTime: atTime?.get(partition), ...bounds }, options.onNotice)
      plan.push({ topic: name, partition, newOffset })
    }
  }
  if (options.execute) await commitStandalone(coordinator.client, groupId, plan)
  return plan
}

interface PartitionPosition {
  topic: string
  partition: number
  start: bigint
  end: bigint
  committed: bigint | undefined
  /** The first offset at or after the --to-datetime time; -1 when there is none. */
  atTime: bigint | undefined
}

/** ConsumerGroupCommand's prepareOffsetsToReset for one partition. */
function targetOffset(target: ResetTarget, at: PartitionPosition, onNotice?: (message: string) => void): bigint {
  const clamp = (offset: bigint): bigint => {
    if (offset > at.end) {
      onNotice?.(`new offset ${offset} is past the log end offset of ${at.topic}-${at.partition}; using ${at.end}`)
      return at.end
    }
    if (offset < at.start) {
      onNotice?.(`new offset ${offset} is before the log start offset of ${at.topic}-${at.partition}; using ${at.start}`)
      return at.start
    }
    return offset
  }
  switch (target.to) {
    case 'earliest':
      return at.start
    case 'latest':
      return at.end
    case 'offset':
      return clamp(target.offset)
    case 'datetime':
      // No record at or after the time: the log end, as Kafka does.
      return at.atTime !== undefined && at.atTime >= 0n ? at.atTime : at.end
    case 'shift':
      if (at.committed === undefined) {
        throw new Error(`cannot shift the offset of ${at.topic}-${at.partition}: the group has no committed offset for it`)
      }
      return clamp(at.committed + target.by)
  }
}

/** OffsetCommit with generation -1 and no member id: what Kafka's admin alterConsumerGroupOffsets sends. */
async function commitStandalone(client: KafkaClient, groupId: string, plan: readonly PlannedOffset[]): Promise<void> {
  const byTopic = new Map<string, PlannedOffset[]>()
  for (const entry of plan) byTopic.set(entry.topic, [...(byTopic.get(entry.topic) ?? []), entry])
  const response = await client.request<OffsetCommitRequest, OffsetCommitResponse>(offsetCommit, client.version(offsetCommit), {
    groupId,
    generationIdOrMemberEpoch: -1,
    memberId: '',
    groupInstanceId: null,
    retentionTimeMs: -1n,
    topics: [...byTopic].map(([name, entries]) => ({
      name,
      partitions: entries.map((e) => ({
        partitionIndex: e.partition,
        committedOffset: e.newOffset,
        committedLeaderEpoch: -1,
        commitTimestamp: -1n,
        committedMetadata: '',
      })),
    })),
  })
  for (const topic of response.topics) {
    for (const p of topic.partitions) {
      // A standalone commit to a group with members is refused with UNKNOWN_MEMBER_ID (GroupCoordinator.scala).
      const message = p.errorCode === ErrorCode.UNKNOWN_MEMBER_ID ? 'a consumer joined the group; offsets can only be reset while it is inactive' : null
      checkError(p.errorCode, `cannot commit the offset of ${topic.name}-${p.partitionIndex} for group '${groupId}'`, message)
    }
  }
}
