/**
 * The classic group protocol spoken by hand over Brook's wire client (client/kafka-client.ts with the generated message
 * definitions), for what real consumers cannot be made to do on purpose: join with a chosen API version, send a
 * wrong generation, heartbeat as a stranger, rejoin as a static member.
 *
 * The embedded "consumer" protocol bytes (what JoinGroup metadata and SyncGroup assignments carry) are built and read
 * here by hand from ConsumerProtocolSubscription.json / ConsumerProtocolAssignment.json, not with
 * protocol/consumer-protocol.ts, so a bug there cannot hide itself:
 *
 *   subscription v0 = version:int16 | topics:[string] (int32 count) | userData:bytes (int32 length, -1 = null)
 *   assignment   v0 = version:int16 | [topic:string | partitions:[int32]] | userData:bytes
 */
import type { KafkaClient } from '../../client/kafka-client.js'
import { joinGroup, type JoinGroupRequest, type JoinGroupResponse } from '../../protocol/messages/join-group.js'
import { syncGroup, type SyncGroupRequest, type SyncGroupResponse } from '../../protocol/messages/sync-group.js'
import { heartbeat, type HeartbeatRequest, type HeartbeatResponse } from '../../protocol/messages/heartbeat.js'
import { leaveGroup, type LeaveGroupRequest, type LeaveGroupResponse } from '../../protocol/messages/leave-group.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../protocol/messages/find-coordinator.js'
import { offsetCommit, type OffsetCommitRequest, type OffsetCommitResponse } from '../../protocol/messages/offset-commit.js'
import { offsetFetch, type OffsetFetchRequest, type OffsetFetchResponse } from '../../protocol/messages/offset-fetch.js'
import { Bytes } from './wire.js'

export function subscriptionBytes(topics: readonly string[]): Buffer {
  const bytes = new Bytes().int16(0).int32(topics.length)
  for (const topic of topics) bytes.string(topic)
  return bytes.bytes(null).build()
}

export type Assignment = Record<string, number[]>

export function assignmentBytes(assignment: Assignment): Buffer {
  const entries = Object.entries(assignment)
  const bytes = new Bytes().int16(0).int32(entries.length)
  for (const [topic, partitions] of entries) {
    bytes.string(topic).int32(partitions.length)
    for (const p of partitions) bytes.int32(p)
  }
  return bytes.bytes(null).build()
}

/** Reads an assignment of any version: v1+ only append fields after v0's. An empty buffer is no assignment. */
export function readAssignment(bytes: Buffer): Assignment {
  if (bytes.length === 0) return {}
  let at = 2
  const result: Assignment = {}
  const topics = bytes.readInt32BE(at)
  at += 4
  for (let t = 0; t < topics; t++) {
    const length = bytes.readInt16BE(at)
    const topic = bytes.toString('utf8', at + 2, at + 2 + length)
    at += 2 + length
    const count = bytes.readInt32BE(at)
    at += 4
    const partitions: number[] = []
    for (let p = 0; p < count; p++, at += 4) partitions.push(bytes.readInt32BE(at))
    result[topic] = partitions
  }
  return result
}

/** Reads the topics of a subscription of any version (v1+ append fields after v0's). */
export function readSubscription(bytes: Buffer): string[] {
  let at = 2
  const count = bytes.readInt32BE(at)
  at += 4
  const topics: string[] = []
  for (let i = 0; i < count; i++) {
    const length = bytes.readInt16BE(at)
    topics.push(bytes.toString('utf8', at + 2, at + 2 + length))
    at += 2 + length
  }
  return topics
}

export interface JoinOptions {
  version: number
  groupId: string
  memberId?: string
  groupInstanceId?: string | null
  sessionTimeoutMs?: number
  rebalanceTimeoutMs?: number
  protocolType?: string
  /** [name, metadata] pairs; by default one 'range' protocol subscribing to `topics`. */
  protocols?: { name: string; metadata: Buffer }[]
  topics?: string[]
}

export function join(client: KafkaClient, options: JoinOptions): Promise<JoinGroupResponse> {
  return client.request<Partial<JoinGroupRequest>, JoinGroupResponse>(joinGroup, options.version, {
    groupId: options.groupId,
    sessionTimeoutMs: options.sessionTimeoutMs ?? 10_000,
    rebalanceTimeoutMs: options.rebalanceTimeoutMs ?? 10_000,
    memberId: options.memberId ?? '',
    groupInstanceId: options.groupInstanceId ?? null,
    protocolType: options.protocolType ?? 'consumer',
    protocols: options.protocols ?? [{ name: 'range', metadata: subscriptionBytes(options.topics ?? []) }],
  })
}

/**
 * A dynamic member's whole join as a v4+ client does it (KIP-394): the first JoinGroup is answered MEMBER_ID_REQUIRED
 * with an id, the second (with that id) waits for the rebalance.
 */
export async function joinWithMemberId(client: KafkaClient, options: JoinOptions): Promise<JoinGroupResponse> {
  const first = await join(client, { ...options, memberId: '' })
  if (first.errorCode !== 79) return first
  return join(client, { ...options, memberId: first.memberId })
}

export interface SyncOptions {
  version: number
  groupId: string
  generationId: number
  memberId: string
  groupInstanceId?: string | null
  protocolType?: string | null
  protocolName?: string | null
  assignments?: Record<string, Assignment>
}

export function sync(client: KafkaClient, options: SyncOptions): Promise<SyncGroupResponse> {
  return client.request<Partial<SyncGroupRequest>, SyncGroupResponse>(syncGroup, options.version, {
    groupId: options.groupId,
    generationId: options.generationId,
    memberId: options.memberId,
    groupInstanceId: options.groupInstanceId ?? null,
    protocolType: options.protocolType ?? null,
    protocolName: options.protocolName ?? null,
    assignments: Object.entries(options.assignments ?? {}).map(([memberId, a]) => ({ memberId, assignment: assignmentBytes(a) })),
  })
}

export async function heartbeatOnce(
  client: KafkaClient,
  options: { version?: number; groupId: string; generationId: number; memberId: string; groupInstanceId?: string | null },
): Promise<number> {
  const response = await client.request<HeartbeatRequest, HeartbeatResponse>(heartbeat, options.version ?? 4, {
    groupId: options.groupId,
    generationId: options.generationId,
    memberId: options.memberId,
    groupInstanceId: options.groupInstanceId ?? null,
  })
  return response.errorCode
}

export function leave(client: KafkaClient, groupId: string, members: { memberId: string; groupInstanceId?: string | null }[], version = 5): Promise<LeaveGroupResponse> {
  return client.request<Partial<LeaveGroupRequest>, LeaveGroupResponse>(leaveGroup, version, {
    groupId,
    members: members.map((m) => ({ memberId: m.memberId, groupInstanceId: m.groupInstanceId ?? null, reason: null })),
  })
}

/** FindCoordinator v3 for a group; creates __consumer_offsets on first use, as with Kafka. */
export async function findGroupCoordinator(client: KafkaClient, groupId: string): Promise<FindCoordinatorResponse> {
  return client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, 3, { key: groupId, keyType: 0 })
}

/**
 * Keeps a member alive with heartbeats every `intervalMs` until stopped; remembers the error codes seen, so a test
 * can tell whether the member was ever asked to rebalance.
 */
export function keepAlive(
  client: KafkaClient,
  member: { groupId: string; generationId: number; memberId: string; groupInstanceId?: string | null },
  intervalMs = 200,
): { codes: number[]; stop: () => void } {
  const codes: number[] = []
  let stopped = false
  const beat = async (): Promise<void> => {
    while (!stopped) {
      try {
        codes.push(await heartbeatOnce(client, member))
      } catch {
        return
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
  }
  void beat()
  return { codes, stop: () => (stopped = true) }
}

/** topic -> partition -> offset (and optional metadata). */
export type OffsetsToCommit = Record<string, Record<number, bigint | { offset: bigint; metadata: string | null; leaderEpoch?: number }>>

/** OffsetCommit; returns topic -> partition -> error code. */
export async function commit(
  client: KafkaClient,
  options: { version?: number; groupId: string; generationId?: number; memberId?: string; groupInstanceId?: string | null; offsets: OffsetsToCommit },
): Promise<Record<string, Record<number, number>>> {
  const response = await client.request<Partial<OffsetCommitRequest>, OffsetCommitResponse>(offsetCommit, options.version ?? 8, {
    groupId: options.groupId,
    generationIdOrMemberEpoch: options.generationId ?? -1,
    memberId: options.memberId ?? '',
    groupInstanceId: options.groupInstanceId ?? null,
    topics: Object.entries(options.offsets).map(([name, partitions]) => ({
      name,
      partitions: Object.entries(partitions).map(([partition, value]) => {
        const { offset, metadata, leaderEpoch } = typeof value === 'bigint' ? { offset: value, metadata: '', leaderEpoch: -1 } : value
        return { partitionIndex: Number(partition), committedOffset: offset, committedLeaderEpoch: leaderEpoch ?? -1, commitTimestamp: -1n, committedMetadata: metadata }
      }),
    })),
  })
  return Object.fromEntries(
    response.topics.map((t) => [t.name, Object.fromEntries(t.partitions.map((p) => [p.partitionIndex, p.errorCode]))]),
  )
}

/** OffsetFetch v7 (one group): topic -> partition -> committed offset (-1 when none). */
export async function committedOffsets(client: KafkaClient, groupId: string, topics: Record<string, number[]>): Promise<Record<string, Record<number, bigint>>> {
  const response = await client.request<Partial<OffsetFetchRequest>, OffsetFetchResponse>(offsetFetch, 7, {
    groupId,
    topics: Object.entries(topics).map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
    requireStable: false,
  })
  if (response.errorCode !== 0) throw new Error(`OffsetFetch for ${groupId} failed with error ${response.errorCode}`)
  return Object.fromEntries(
    response.topics!.map((t) => [t.name, Object.fromEntries(t.partitions.map((p) => [p.partitionIndex, p.committedOffset]))]),
  )
}

export interface RawMember {
  client: KafkaClient
  memberId: string
  generationId: number
  groupInstanceId: string | null
  isLeader: boolean
  assignment: Assignment
}

/**
 * Forms a Stable group of one member per client: everyone joins at once (dynamic members with the v4+ two-step
 * join, static members directly), the elected leader hands out `topics`' partitions round-robin in member order, and
 * everyone syncs. Returns the members in client order.
 */
export async function formGroup(
  clients: KafkaClient[],
  options: { groupId: string; topics: Record<string, number>; version?: number; instanceIds?: (string | null)[]; sessionTimeoutMs?: number; rebalanceTimeoutMs?: number },
): Promise<RawMember[]> {
  const version = options.version ?? 5
  const subscribed = Object.keys(options.topics)
  const joined = await Promise.all(
    clients.map((client, i) => {
      const groupInstanceId = options.instanceIds?.[i] ?? null
      const joinOptions = { version, groupId: options.groupId, topics: subscribed, groupInstanceId, sessionTimeoutMs: options.sessionTimeoutMs, rebalanceTimeoutMs: options.rebalanceTimeoutMs }
      return groupInstanceId === null ? joinWithMemberId(client, joinOptions) : join(client, joinOptions)
    }),
  )
  for (const answer of joined) if (answer.errorCode !== 0) throw new Error(`JoinGroup failed with error ${answer.errorCode}`)
  const leader = joined.find((j) => j.leader === j.memberId)!
  const memberIds = leader.members.map((m) => m.memberId)
  const assignments: Record<string, Assignment> = Object.fromEntries(memberIds.map((id) => [id, {}]))
  let next = 0
  for (const [topic, count] of Object.entries(options.topics)) {
    for (let p = 0; p < count; p++) ((assignments[memberIds[next++ % memberIds.length]!]![topic] ??= []) as number[]).push(p)
  }
  const synced = await Promise.all(
    clients.map((client, i) =>
      sync(client, {
        version: Math.min(version, 5),
        groupId: options.groupId,
        generationId: joined[i]!.generationId!,
        memberId: joined[i]!.memberId,
        groupInstanceId: options.instanceIds?.[i] ?? null,
        assignments: joined[i] === leader ? assignments : {},
      }),
    ),
  )
  return clients.map((client, i) => {
    if (synced[i]!.errorCode !== 0) throw new Error(`SyncGroup failed with error ${synced[i]!.errorCode}`)
    return {
      client,
      memberId: joined[i]!.memberId,
      generationId: joined[i]!.generationId!,
      groupInstanceId: options.instanceIds?.[i] ?? null,
      isLeader: joined[i] === leader,
      assignment: readAssignment(synced[i]!.assignment),
    }
  })
}
