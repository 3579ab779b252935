/**
 * The group coordinator of the classic rebalance protocol, with committed offsets and group metadata kept, as in
 * Kafka, in the compacted internal topic `__consumer_offsets` (offsets-topic.ts). Its state is rebuilt by replaying
 * that topic when the broker starts, so it is as durable as any topic and replication covers it.
 *
 * Flows (group.ts has the state diagram):
 * - JoinGroup: v4+ dynamic members first get MEMBER_ID_REQUIRED with their id (KIP-394); static members
 *   (group.instance.id, KIP-345) join at once and replace an older member with the same instance id. A join moves the
 *   group to PreparingRebalance; the join completes when every member has rejoined, or at the rebalance deadline
 *   (members that did not rejoin are removed). An Empty group first waits group.initial.rebalance.delay.ms, and a new
 *   group (generation 0) waits once more each time members joined during the wait, up to the rebalance timeout
 *   (Kafka's InitialDelayedJoin): one kafkajs member alone waits one delay. Completing bumps the generation and picks
 *   the protocol; the leader's answer lists the members.
 * - SyncGroup: the leader's assignments are written to the log, then every waiting member gets its assignment and the
 *   group is Stable.
 * - Heartbeats keep members alive; a member silent for its session timeout is removed and the group rebalances.
 * - Commits go to the log first and into memory once written; OffsetFetch answers from memory.
 * - Offsets of a group that has been Empty for offsets.retention.minutes expire (standalone groups: per offset, from
 *   its commit time; Stable consumer groups: offsets of topics nobody subscribes to, from their commit time); a group
 *   with neither members nor offsets is then forgotten.
 * - Deleting a topic removes every group's offsets for it, the same way (Kafka's onPartitionsDeleted), so a topic
 *   created again under the name starts with no committed offsets.
 * Removed offsets leave memory at once and are written as tombstones, so a replay after a restart (clean or not)
 * does not bring them back; a commit that was being written when its topic was deleted is not applied.
 * The sweep (every 100 ms) drives deadlines: session expiry, pending members, rebalance and initial delays.
 */
import { randomUUID } from 'node:crypto'
import { ErrorCode } from '../../protocol/errors.js'
import { decodeRecords, encodeRecordBatch } from '../../protocol/record-batch.js'
import type { JoinGroupRequest, JoinGroupResponse } from '../../protocol/messages/join-group.js'
import type { SyncGroupRequest, SyncGroupResponse } from '../../protocol/messages/sync-group.js'
import type { BrokerConfig } from '../config.js'
import type { Logger } from '../logger.js'
import type { Topic } from '../partition.js'
import type { TopicManager } from '../topics.js'
import { Group, GroupState, Member, offsetKey, parseOffsetKey, type CommittedOffset, type Protocol } from './group.js'
import {
  OFFSETS_TOPIC,
  decodeOffsetsRecord,
  groupKey,
  groupValue,
  offsetKey as offsetRecordKey,
  offsetValue,
  partitionForGroup,
} from './offsets-topic.js'
import { subscribedTopics } from '../../protocol/consumer-protocol.js'
import { StorageError } from '../../storage/log-store.js'
import { counted } from '../../client/wording.js'

/** offset.metadata.max.bytes */
export const OFFSET_METADATA_MAX_BYTES = 4096
const SWEEP_INTERVAL_MS = 100

export interface JoinContext {
  apiVersion: number
  clientId: string
  clientHost: string
}

export interface MemberIdentity {
  memberId: string
  groupInstanceId: string | null
}

export interface OffsetCommitInput {
  topic: string
  partition: number
  offset: bigint
  leaderEpoch: number
  metadata: string | null
}

interface LogRecord {
  key: Buffer
  value: Buffer | null
}

/**
 * The error code for a write to __consumer_offsets that failed, as Kafka's coordinator translates a failed append
 * (GroupMetadataManager.storeGroup and storeOffsets): KAFKA_STORAGE_ERROR becomes NOT_COORDINATOR, so clients look
 * the coordinator up again rather than retry a write this node refuses.
 */
export function appendErrorCode(error: unknown): number {
  return error instanceof StorageError ? ErrorCode.NOT_COORDINATOR : ErrorCode.COORDINATOR_NOT_AVAILABLE
}

export class GroupCoordinator {
  private readonly groups = new Map<string, Group>()
  private offsetsTopic: Topic | null = null
  private creatingTopic: Promise<Topic> | null = null
  private readonly sweep: NodeJS.Timeout
  private lastRetentionCheck = Date.now()

  constructor(
    private readonly topics: TopicManager,
    private readonly config: BrokerConfig,
    private readonly log: Logger,
  ) {
    this.sweep = setInterval(() => this.tick(), SWEEP_INTERVAL_MS)
    this.sweep.unref()
    topics.onDelete((topic) => this.removeOffsetsOf(topic))
  }

  close(): void {
    clearInterval(this.sweep)
  }

  /** Replays __consumer_offsets if it exists. */
  async load(): Promise<void> {
    const topic = this.topics.get(OFFSETS_TOPIC)
    if (!topic) return
    this.offsetsTopic = topic
    let records = 0
    for (const partition of topic.partitions) {
      for await (const batch of partition.log.scan(partition.logStartOffset, partition.highWatermark)) {
        for (const record of decodeRecords(batch)) {
          if (record.key) this.apply(record.key, record.value)
          records++
        }
      }
    }
    const now = Date.now()
    for (const group of this.groups.values()) {
      for (const member of group.members.values()) member.heartbeatDeadline = now + member.sessionTimeoutMs
    }
    if (records > 0) this.log.info(`loaded ${counted(this.groups.size, 'group')} from ${counted(records, 'record')} of ${OFFSETS_TOPIC}`)
  }

  private apply(key: Buffer, value: Buffer | null): void {
    const record = decodeOffsetsRecord(key, value)
    if (!record) return
    if (record.kind === 'offset') {
      const group = this.groupFor(record.group)
      const k = offsetKey(record.topic, record.partition)
      if (record.value === null) group.offsets.delete(k)
      else {
        group.offsets.set(k, {
          offset: record.value.offset,
          leaderEpoch: record.value.leaderEpoch,
          metadata: record.value.metadata,
          commitTimestamp: record.value.commitTimestamp,
        })
      }
      return
    }
    if (record.value === null) {
      this.groups.delete(record.group)
      return
    }
    const group = this.groupFor(record.group)
    const stored = record.value
    group.members.clear()
    group.staticMembers.clear()
    group.protocolType = stored.protocolType === '' ? null : stored.protocolType
    group.generationId = stored.generation
    group.protocolName = stored.protocol
    group.leaderId = stored.leader
    for (const m of stored.members) {
      const member = new Member(m.memberId, m.groupInstanceId ?? null, m.clientId, m.clientHost, m.sessionTimeout, m.rebalanceTimeout ?? m.sessionTimeout, stored.protocolType, [
        { name: stored.protocol ?? '', metadata: m.subscription },
      ])
      member.assignment = m.assignment
      group.members.set(member.memberId, member)
      if (member.groupInstanceId !== null) group.staticMembers.set(member.groupInstanceId, member.memberId)
    }
    group.state = group.members.size > 0 ? GroupState.Stable : GroupState.Empty
    group.stateTimestamp = stored.currentStateTimestamp > 0n ? Number(stored.currentStateTimestamp) : Date.now()
  }

  private groupFor(groupId: string): Group {
    let group = this.groups.get(groupId)
    if (!group) {
      group = new Group(groupId)
      this.groups.set(groupId, group)
    }
    return group
  }

  /** Creates __consumer_offsets on first use, compacted, as Kafka does. */
  async ensureOffsetsTopic(): Promise<Topic> {
    if (this.offsetsTopic) return this.offsetsTopic
    this.creatingTopic ??= this.topics
      .getOrCreate({
        name: OFFSETS_TOPIC,
        partitions: this.config.offsetsTopicPartitions,
        replicationFactor: 1,
        configs: { 'cleanup.policy': 'compact' },
      })
      .then(({ topic, created }) => {
        if (created) this.log.info(`created ${OFFSETS_TOPIC} with ${counted(topic.partitions.length, 'partition')}`)
        this.offsetsTopic = topic
        return topic
      })
      .finally(() => (this.creatingTopic = null))
    return this.creatingTopic
  }

  /**
   * Writes records to the group's partition of __consumer_offsets. Once that topic exists the records are queued
   * before this returns its promise, so writes keep the order of the calls (tombstones cannot overtake a commit).
   */
  private async append(groupId: string, records: LogRecord[]): Promise<void> {
    const topic = this.offsetsTopic ?? (await this.ensureOffsetsTopic())
    const partition = topic.partitions[partitionForGroup(groupId, topic.partitions.length)]!
    await partition.appendAsLeader(encodeRecordBatch(records.map((r) => ({ key: r.key, value: r.value }))), {})
  }

  private groupRecord(group: Group): LogRecord {
    return {
      key: groupKey(group.groupId),
      value: groupValue({
        protocolType: group.protocolType ?? '',
        generation: group.generationId,
        protocol: group.protocolName,
        leader: group.leaderId,
        currentStateTimestamp: BigInt(group.stateTimestamp),
        members: [...group.members.values()].map((m) => ({
          memberId: m.memberId,
          groupInstanceId: m.groupInstanceId,
          clientId: m.clientId,
          clientHost: m.clientHost,
          rebalanceTimeout: m.rebalanceTimeoutMs,
          sessionTimeout: m.sessionTimeoutMs,
          subscription: group.protocolName === null ? Buffer.alloc(0) : m.metadataFor(group.protocolName),
          assignment: m.assignment,
        })),
      }),
    }
  }

  private storeGroup(group: Group): Promise<void> {
    return this.append(group.groupId, [this.groupRecord(group)]).catch((error: Error) => {
      this.log.error(`could not store group '${group.groupId}': ${error.message}`)
      throw error
    })
  }

  // ---- JoinGroup ----------------------------------------------------------------------------------------------

  async join(request: JoinGroupRequest, context: JoinContext): Promise<JoinGroupResponse> {
    const fail = (errorCode: number, memberId = request.memberId): JoinGroupResponse => ({
      errorCode,
      generationId: -1,
      protocolName: null,
      leader: '',
      memberId,
      members: [],
    })
    if (request.groupId === '') return fail(ErrorCode.INVALID_GROUP_ID)
    if (request.sessionTimeoutMs < this.config.groupMinSessionTimeoutMs || request.sessionTimeoutMs > this.config.groupMaxSessionTimeoutMs) {
      return fail(ErrorCode.INVALID_SESSION_TIMEOUT)
    }
    await this.ensureOffsetsTopic()
    let group = this.groups.get(request.groupId)
    if (!group) {
      if (request.memberId !== '') return fail(ErrorCode.UNKNOWN_MEMBER_ID)
      group = this.groupFor(request.groupId)
    }
    if (group.state === GroupState.Dead) return fail(ErrorCode.COORDINATOR_NOT_AVAILABLE)
    const protocols: Protocol[] = request.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }))
    if (!group.supports(request.protocolType, protocols)) return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
    // v1 has no rebalance timeout: it is the session timeout (JoinGroupRequest.json).
    const rebalanceTimeoutMs = request.rebalanceTimeoutMs === -1 ? request.sessionTimeoutMs : request.rebalanceTimeoutMs
    const details = { ...request, protocols, rebalanceTimeoutMs }

    if (request.memberId === '') {
      // The client id part is cut so that the id always fits a protocol string (a client id alone may fill one).
      const memberId = `${context.clientId.slice(0, 255)}-${randomUUID()}`
      if (request.groupInstanceId !== null) return this.joinStatic(group, memberId, details, context)
      if (context.apiVersion >= 4) {
        // KIP-394: hand out the id and ask the client to come back with it, so a member that never returns is not
        // counted in the rebalance.
        group.pendingMembers.set(memberId, Date.now() + request.sessionTimeoutMs)
        return fail(ErrorCode.MEMBER_ID_REQUIRED, memberId)
      }
      return this.addMemberAndRebalance(group, memberId, details, context)
    }

    if (group.isFenced(request.memberId, request.groupInstanceId)) return fail(ErrorCode.FENCED_INSTANCE_ID)
    if (group.pendingMembers.has(request.memberId)) {
      group.pendingMembers.delete(request.memberId)
      return this.addMemberAndRebalance(group, request.memberId, details, context)
    }
    const member = group.members.get(request.memberId)
    if (!member) return fail(ErrorCode.UNKNOWN_MEMBER_ID)
    return this.rejoin(group, member, details)
  }

  private addMemberAndRebalance(
    group: Group,
    memberId: string,
    request: JoinGroupRequest & { protocols: Protocol[]; rebalanceTimeoutMs: number },
    context: JoinContext,
  ): Promise<JoinGroupResponse> {
    const member = new Member(
      memberId,
      request.groupInstanceId,
      context.clientId,
      context.clientHost,
      request.sessionTimeoutMs,
      request.rebalanceTimeoutMs,
      request.protocolType,
      request.protocols,
    )
    member.heartbeatDeadline = Date.now() + member.sessionTimeoutMs
    // Kafka's addMemberAndRebalance: only a member that joins a new group during its initial delay extends the delay.
    if (group.state === GroupState.PreparingRebalance && group.generationId === 0) group.newMemberAdded = true
    const answer = new Promise<JoinGroupResponse>((resolve) => (member.awaitingJoin = resolve))
    group.add(member)
    this.prepareRebalance(group, `${memberId} joined`)
    return answer
  }

  private joinStatic(
    group: Group,
    memberId: string,
    request: JoinGroupRequest & { protocols: Protocol[]; rebalanceTimeoutMs: number },
    context: JoinContext,
  ): Promise<JoinGroupResponse> {
    const instanceId = request.groupInstanceId!
    const oldId = group.staticMembers.get(instanceId)
    const old = oldId === undefined ? undefined : group.members.get(oldId)
    if (!old) return this.addMemberAndRebalance(group, memberId, request, context)
    // KIP-345: the new incarnation takes over the old member's place; the old id is fenced from now on.
    old.awaitingJoin?.(this.joinError(ErrorCode.FENCED_INSTANCE_ID, old.memberId))
    old.awaitingJoin = null
    old.awaitingSync?.(syncError(ErrorCode.FENCED_INSTANCE_ID))
    old.awaitingSync = null
    group.members.delete(old.memberId)
    const previousLeader = group.leaderId
    const unchanged = old.sameProtocols(request.protocols)
    old.memberId = memberId
    old.clientId = context.clientId
    old.clientHost = context.clientHost
    old.sessionTimeoutMs = request.sessionTimeoutMs
    old.rebalanceTimeoutMs = request.rebalanceTimeoutMs
    old.protocols = request.protocols
    old.heartbeatDeadline = Date.now() + old.sessionTimeoutMs
    group.members.set(memberId, old)
    group.staticMembers.set(instanceId, memberId)
    if (group.leaderId === oldId) group.leaderId = memberId
    if (group.state === GroupState.Stable && unchanged) {
      // Same subscription: no rebalance; the member gets the current generation and, through SyncGroup, its
      // current assignment. A Stable group's SyncGroup ignores new assignments, so a restarted leader must not run
      // its assignor: before v9 Kafka names the leader as it was before the replacement (the old member id, which the
      // client does not recognise as its own); from v9 it names the new id with skipAssignment (KIP-814,
      // GroupCoordinator.updateStaticMemberAndRebalance).
      void this.storeGroup(group).catch(() => undefined)
      const answer = this.joinAnswer(group, old)
      if (context.apiVersion >= 9) return Promise.resolve({ ...answer, skipAssignment: group.leaderId === memberId })
      return Promise.resolve({ ...answer, leader: previousLeader ?? '', members: [] })
    }
    const answer = new Promise<JoinGroupResponse>((resolve) => (old.awaitingJoin = resolve))
    this.prepareRebalance(group, `static member ${instanceId} rejoined`)
    return answer
  }

  private rejoin(group: Group, member: Member, request: JoinGroupRequest & { protocols: Protocol[]; rebalanceTimeoutMs: number }): Promise<JoinGroupResponse> {
    member.heartbeatDeadline = Date.now() + member.sessionTimeoutMs
    const unchanged = member.sameProtocols(request.protocols)
    member.protocols = request.protocols
    member.sessionTimeoutMs = request.sessionTimeoutMs
    member.rebalanceTimeoutMs = request.rebalanceTimeoutMs
    // A member that lost its JoinGroup answer asks again with the same protocols: answer with the current generation.
    if (unchanged && (group.state === GroupState.CompletingRebalance || (group.state === GroupState.Stable && member.memberId !== group.leaderId))) {
      return Promise.resolve(this.joinAnswer(group, member))
    }
    member.awaitingJoin?.(this.joinError(ErrorCode.UNKNOWN_MEMBER_ID, member.memberId))
    const answer = new Promise<JoinGroupResponse>((resolve) => (member.awaitingJoin = resolve))
    if (group.state === GroupState.PreparingRebalance) this.tryCompleteJoin(group)
    else this.prepareRebalance(group, `${member.memberId} rejoined`)
    return answer
  }

  private joinError(errorCode: number, memberId: string): JoinGroupResponse {
    return { errorCode, generationId: -1, protocolName: null, leader: '', memberId, members: [] }
  }

  private joinAnswer(group: Group, member: Member): JoinGroupResponse {
    const isLeader = member.memberId === group.leaderId
    return {
      errorCode: ErrorCode.NONE,
      generationId: group.generationId,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      leader: group.leaderId ?? '',
      memberId: member.memberId,
      skipAssignment: false,
      members: isLeader
        ? [...group.members.values()].map((m) => ({
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            metadata: m.metadataFor(group.protocolName ?? ''),
          }))
        : [],
    }
  }

  private prepareRebalance(group: Group, reason: string): void {
    if (group.state === GroupState.CompletingRebalance) {
      for (const member of group.members.values()) {
        member.assignment = Buffer.alloc(0)
        member.awaitingSync?.(syncError(ErrorCode.REBALANCE_IN_PROGRESS))
        member.awaitingSync = null
      }
    }
    const now = Date.now()
    if (group.state === GroupState.Empty) {
      // Kafka's prepareRebalance: an Empty group waits the initial delay, with the rest of the rebalance timeout left
      // for extensions.
      const delayMs = this.config.groupInitialRebalanceDelayMs
      group.initialDelay = { delayMs, remainingMs: Math.max(group.rebalanceTimeoutMs - delayMs, 0) }
      group.newMemberAdded = false
      group.rebalanceDeadline = now + delayMs
    } else if (group.state !== GroupState.PreparingRebalance) {
      group.initialDelay = null
      group.rebalanceDeadline = now + group.rebalanceTimeoutMs
    }
    if (group.state !== GroupState.PreparingRebalance) {
      this.log.debug(`group '${group.groupId}' rebalancing (generation ${group.generationId}): ${reason}`)
      group.transition(GroupState.PreparingRebalance)
    }
    this.tryCompleteJoin(group)
  }

  /**
   * Completes the join when everyone is in or the deadline has passed; in the initial delay, only when the delay
   * ends. Kafka's InitialDelayedJoin.onComplete: if a member joined during the delay and some of the rebalance timeout
   * is left, wait min(delay, remaining) more (with remaining reduced by the wait that just ended) and clear the flag;
   * so a lone member waits one delay, and members that keep arriving extend it until the rebalance timeout.
   */
  private tryCompleteJoin(group: Group): void {
    if (group.state !== GroupState.PreparingRebalance) return
    const now = Date.now()
    if (group.initialDelay) {
      if (now < group.rebalanceDeadline) return
      const { delayMs, remainingMs } = group.initialDelay
      if (group.newMemberAdded && remainingMs > 0) {
        group.newMemberAdded = false
        const next = Math.min(this.config.groupInitialRebalanceDelayMs, remainingMs)
        group.initialDelay = { delayMs: next, remainingMs: Math.max(remainingMs - delayMs, 0) }
        group.rebalanceDeadline = now + next
        return
      }
      group.initialDelay = null
    } else if (!group.allMembersJoined() && now < group.rebalanceDeadline) return
    this.completeJoin(group)
  }

  private completeJoin(group: Group): void {
    for (const member of [...group.members.values()]) {
      if (!member.awaitingJoin) {
        this.log.debug(`group '${group.groupId}': removing ${member.memberId}, which did not rejoin in time`)
        group.remove(member.memberId)
      }
    }
    // Members still between their two JoinGroups (MEMBER_ID_REQUIRED) stay pending: when they come back they join
    // and start the next rebalance, as in Kafka's onCompleteJoin; otherwise their session timeout forgets them.
    group.generationId++
    if (group.isEmpty) {
      group.protocolName = null
      group.transition(GroupState.Empty)
      void this.storeGroup(group).catch(() => undefined)
      return
    }
    group.protocolName = group.selectProtocol()
    group.transition(GroupState.CompletingRebalance)
    const now = Date.now()
    for (const member of group.members.values()) {
      const resolve = member.awaitingJoin!
      member.awaitingJoin = null
      member.heartbeatDeadline = now + member.sessionTimeoutMs
      resolve(this.joinAnswer(group, member))
    }
    this.log.info(
      `group '${group.groupId}' generation ${group.generationId}: ${counted(group.members.size, 'member')}, protocol ${group.protocolName}`,
    )
  }

  // ---- SyncGroup ----------------------------------------------------------------------------------------------

  async sync(request: SyncGroupRequest): Promise<SyncGroupResponse> {
    const group = this.groups.get(request.groupId)
    if (!group) return syncError(ErrorCode.UNKNOWN_MEMBER_ID)
    if (group.state === GroupState.Dead) return syncError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
    if (group.isFenced(request.memberId, request.groupInstanceId)) return syncError(ErrorCode.FENCED_INSTANCE_ID)
    const member = group.members.get(request.memberId)
    if (!member) return syncError(ErrorCode.UNKNOWN_MEMBER_ID)
    if (request.generationId !== group.generationId) return syncError(ErrorCode.ILLEGAL_GENERATION)
    if (
      (request.protocolType !== null && request.protocolType !== group.protocolType) ||
      (request.protocolName !== null && request.protocolName !== group.protocolName)
    ) {
      return syncError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
    }
    member.heartbeatDeadline = Date.now() + member.sessionTimeoutMs
    switch (group.state) {
      case GroupState.Empty:
        return syncError(ErrorCode.UNKNOWN_MEMBER_ID)
      case GroupState.PreparingRebalance:
        return syncError(ErrorCode.REBALANCE_IN_PROGRESS)
      case GroupState.Stable:
        return this.syncAnswer(group, member)
    }
    const answer = new Promise<SyncGroupResponse>((resolve) => (member.awaitingSync = resolve))
    if (member.memberId === group.leaderId) {
      const assignments = new Map(request.assignments.map((a) => [a.memberId, Buffer.from(a.assignment)]))
      const generation = group.generationId
      for (const m of group.members.values()) m.assignment = assignments.get(m.memberId) ?? Buffer.alloc(0)
      try {
        await this.storeGroup(group)
      } catch (error) {
        if (group.generationId === generation && group.state === GroupState.CompletingRebalance) {
          for (const m of group.members.values()) {
            m.awaitingSync?.(syncError(appendErrorCode(error)))
            m.awaitingSync = null
          }
          this.prepareRebalance(group, 'could not store the assignment')
        }
        return answer
      }
      // A join, leave or expiry during the write started another rebalance; its members were already answered.
      if (group.generationId === generation && group.state === GroupState.CompletingRebalance) {
        group.transition(GroupState.Stable)
        for (const m of group.members.values()) {
          m.awaitingSync?.(this.syncAnswer(group, m))
          m.awaitingSync = null
        }
      }
    }
    return answer
  }

  private syncAnswer(group: Group, member: Member): SyncGroupResponse {
    return {
      errorCode: ErrorCode.NONE,
      protocolType: group.protocolType,
      protocolName: group.protocolName,
      assignment: member.assignment,
    }
  }

  // ---- Heartbeat and LeaveGroup -------------------------------------------------------------------------------

  heartbeat(groupId: string, generationId: number, identity: MemberIdentity): number {
    const group = this.groups.get(groupId)
    if (!group || group.state === GroupState.Empty) return ErrorCode.UNKNOWN_MEMBER_ID
    if (group.state === GroupState.Dead) return ErrorCode.COORDINATOR_NOT_AVAILABLE
    if (group.isFenced(identity.memberId, identity.groupInstanceId)) return ErrorCode.FENCED_INSTANCE_ID
    const member = group.members.get(identity.memberId)
    if (!member) return ErrorCode.UNKNOWN_MEMBER_ID
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION
    member.heartbeatDeadline = Date.now() + member.sessionTimeoutMs
    return group.state === GroupState.PreparingRebalance ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE
  }

  /** Removes members; answers an error code per member, or a group-level code when the group is unknown. */
  leave(groupId: string, members: MemberIdentity[]): { errorCode: number; members: (MemberIdentity & { errorCode: number })[] } {
    const group = this.groups.get(groupId)
    if (!group || group.state === GroupState.Dead) {
      return { errorCode: ErrorCode.UNKNOWN_MEMBER_ID, members: members.map((m) => ({ ...m, errorCode: ErrorCode.UNKNOWN_MEMBER_ID })) }
    }
    const results = members.map((identity) => {
      const memberId = identity.memberId === '' && identity.groupInstanceId !== null ? (group.staticMembers.get(identity.groupInstanceId) ?? '') : identity.memberId
      if (identity.groupInstanceId !== null && group.isFenced(memberId, identity.groupInstanceId)) {
        return { ...identity, errorCode: ErrorCode.FENCED_INSTANCE_ID }
      }
      if (group.pendingMembers.delete(memberId)) {
        this.tryCompleteJoin(group)
        return { ...identity, errorCode: ErrorCode.NONE }
      }
      if (!group.members.has(memberId)) return { ...identity, errorCode: ErrorCode.UNKNOWN_MEMBER_ID }
      this.removeMember(group, memberId, 'left the group')
      return { ...identity, errorCode: ErrorCode.NONE }
    })
    return { errorCode: ErrorCode.NONE, members: results }
  }

  private removeMember(group: Group, memberId: string, reason: string): void {
    const member = group.remove(memberId)
    if (!member) return
    member.awaitingJoin?.(this.joinError(ErrorCode.UNKNOWN_MEMBER_ID, memberId))
    member.awaitingJoin = null
    member.awaitingSync?.(syncError(ErrorCode.UNKNOWN_MEMBER_ID))
    member.awaitingSync = null
    this.log.debug(`group '${group.groupId}': ${memberId} ${reason}`)
    if (group.state === GroupState.Stable || group.state === GroupState.CompletingRebalance) {
      this.prepareRebalance(group, `${memberId} ${reason}`)
    } else if (group.state === GroupState.PreparingRebalance) this.tryCompleteJoin(group)
  }

  // ---- Offsets ------------------------------------------------------------------------------------------------

  /**
   * Kafka's handleCommitOffsets and validateOffsetCommit (GroupCoordinator.scala): a commit that names a generation,
   * a member or an instance id must come from a member of the current generation (a generation for a group that does
   * not exist is from an older one: ILLEGAL_GENERATION); a standalone commit (generation -1, no member) is allowed
   * only while the group has no members (UNKNOWN_MEMBER_ID otherwise). Members' commits wait out
   * CompletingRebalance.
   */
  async commitOffsets(groupId: string, generationId: number, identity: MemberIdentity, offsets: OffsetCommitInput[]): Promise<number[]> {
    const all = (code: number): number[] => offsets.map(() => code)
    if (groupId === '') return all(ErrorCode.INVALID_GROUP_ID)
    await this.ensureOffsetsTopic()
    const existing = this.groups.get(groupId)
    if (!existing && generationId >= 0) return all(ErrorCode.ILLEGAL_GENERATION)
    if (existing?.state === GroupState.Dead) return all(ErrorCode.COORDINATOR_NOT_AVAILABLE)
    if (generationId >= 0 || identity.memberId !== '' || identity.groupInstanceId !== null) {
      if (existing?.isFenced(identity.memberId, identity.groupInstanceId)) return all(ErrorCode.FENCED_INSTANCE_ID)
      const member = existing?.members.get(identity.memberId)
      if (!existing || !member) return all(ErrorCode.UNKNOWN_MEMBER_ID)
      if (generationId !== existing.generationId) return all(ErrorCode.ILLEGAL_GENERATION)
      if (existing.state === GroupState.CompletingRebalance) return all(ErrorCode.REBALANCE_IN_PROGRESS)
      member.heartbeatDeadline = Date.now() + member.sessionTimeoutMs
    } else if (existing && !existing.isEmpty) {
      return all(ErrorCode.UNKNOWN_MEMBER_ID)
    }
    const group = existing ?? this.groupFor(groupId)
    const commitTimestamp = BigInt(Date.now())
    const codes = offsets.map((o) => {
      const partitions = this.topics.get(o.topic)?.partitions.length ?? 0
      if (o.partition < 0 || o.partition >= partitions) return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
      if (o.metadata !== null && Buffer.byteLength(o.metadata) > OFFSET_METADATA_MAX_BYTES) return ErrorCode.OFFSET_METADATA_TOO_LARGE
      return ErrorCode.NONE
    })
    const accepted = offsets.filter((_, i) => codes[i] === ErrorCode.NONE)
    if (accepted.length === 0) return codes
    const values = accepted.map((o) => ({
      topic: o.topic,
      topicId: this.topics.get(o.topic)!.topicId,
      partition: o.partition,
      committed: { offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata ?? '', commitTimestamp } satisfies CommittedOffset,
    }))
    try {
      await this.append(groupId, values.map((v) => ({ key: offsetRecordKey(groupId, v.topic, v.partition), value: offsetValue(v.committed) })))
    } catch (error) {
      this.log.error(`could not store offsets of group '${groupId}': ${(error as Error).message}`)
      return codes.map((c) => (c === ErrorCode.NONE ? appendErrorCode(error) : c))
    }
    // A topic deleted while the commit was written (maybe created again since) had its offsets removed; the
    // tombstones went to the log after this commit, so applying it now would hold what a replay would not.
    for (const v of values) {
      if (this.topics.get(v.topic)?.topicId === v.topicId) group.offsets.set(offsetKey(v.topic, v.partition), v.committed)
    }
    return codes
  }

  /** Committed offsets: for the given partitions (null: every partition the group has an offset for). */
  fetchOffsets(
    groupId: string,
    wanted: { topic: string; partitions: number[] }[] | null,
  ): { topic: string; partitions: { partition: number; committed: CommittedOffset | null }[] }[] {
    const group = this.groups.get(groupId)
    if (wanted === null) {
      const byTopic = new Map<string, { partition: number; committed: CommittedOffset | null }[]>()
      for (const [key, committed] of group?.offsets ?? []) {
        const { topic, partition } = parseOffsetKey(key)
        if (!byTopic.has(topic)) byTopic.set(topic, [])
        byTopic.get(topic)!.push({ partition, committed })
      }
      return [...byTopic].map(([topic, partitions]) => ({ topic, partitions: partitions.sort((a, b) => a.partition - b.partition) }))
    }
    return wanted.map(({ topic, partitions }) => ({
      topic,
      partitions: partitions.map((partition) => ({ partition, committed: group?.offsets.get(offsetKey(topic, partition)) ?? null })),
    }))
  }

  /** OffsetDelete: only for partitions the group is not subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise). */
  async deleteOffsets(groupId: string, wanted: { topic: string; partitions: number[] }[]): Promise<{ errorCode: number; results: { topic: string; partitions: { partition: number; errorCode: number }[] }[] }> {
    const group = this.groups.get(groupId)
    if (!group || group.state === GroupState.Dead) return { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, results: [] }
    if (!group.isEmpty && group.protocolType !== 'consumer') return { errorCode: ErrorCode.NON_EMPTY_GROUP, results: [] }
    const subscribed = group.isEmpty ? new Set<string>() : this.subscriptions(group)
    const tombstones: LogRecord[] = []
    const results = wanted.map(({ topic, partitions }) => ({
      topic,
      partitions: partitions.map((partition) => {
        if (!this.topics.get(topic)?.partitions[partition]) return { partition, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION }
        if (subscribed.has(topic)) return { partition, errorCode: ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC }
        if (group.offsets.has(offsetKey(topic, partition))) tombstones.push({ key: offsetRecordKey(groupId, topic, partition), value: null })
        return { partition, errorCode: ErrorCode.NONE }
      }),
    }))
    if (tombstones.length > 0) {
      await this.append(groupId, tombstones)
      for (const r of results) for (const p of r.partitions) if (p.errorCode === ErrorCode.NONE) group.offsets.delete(offsetKey(r.topic, p.partition))
    }
    return { errorCode: ErrorCode.NONE, results }
  }

  private subscriptions(group: Group): Set<string> {
    const topics = new Set<string>()
    if (group.protocolName === null) return topics
    for (const member of group.members.values()) for (const t of subscribedTopics(member.metadataFor(group.protocolName))) topics.add(t)
    return topics
  }

  // ---- Describe, list, delete ---------------------------------------------------------------------------------

  describe(groupId: string): Group | undefined {
    return this.groups.get(groupId)
  }

  list(): Group[] {
    return [...this.groups.values()].filter((g) => g.state !== GroupState.Dead)
  }

  /** DeleteGroups: only groups without members; their offsets and metadata become tombstones. */
  async deleteGroup(groupId: string): Promise<number> {
    const group = this.groups.get(groupId)
    if (!group || group.state === GroupState.Dead) return ErrorCode.GROUP_ID_NOT_FOUND
    if (!group.isEmpty) return ErrorCode.NON_EMPTY_GROUP
    await this.forget(group)
    return ErrorCode.NONE
  }

  /** The group goes Dead and is forgotten at once; its offsets and metadata are written as tombstones. */
  private async forget(group: Group): Promise<void> {
    const { state, stateTimestamp } = group
    group.transition(GroupState.Dead)
    this.groups.delete(group.groupId)
    const tombstones = [...group.offsets.keys()].map((key) => offsetTombstone(group.groupId, key))
    tombstones.push({ key: groupKey(group.groupId), value: null })
    try {
      await this.append(group.groupId, tombstones)
    } catch (error) {
      // The tombstones were not written, so the group is not gone (a restart would load it again): it stays as it
      // was, unless a new group of the same id has started meanwhile.
      group.state = state
      group.stateTimestamp = stateTimestamp
      if (!this.groups.has(group.groupId)) this.groups.set(group.groupId, group)
      throw error
    }
  }

  /**
   * Removes committed offsets (`offsetKey`s) of a group, as Kafka's GroupMetadataManager.cleanupGroupMetadata does
   * for expired offsets and deleted partitions: from memory at once, then as tombstones in __consumer_offsets. A group
   * left Empty with no offsets (and no member about to join) is forgotten. Returns whether it was.
   */
  private async removeOffsets(group: Group, keys: readonly string[]): Promise<{ forgotten: boolean }> {
    if (group.state === GroupState.Empty && group.pendingMembers.size === 0 && keys.length === group.offsets.size) {
      await this.forget(group)
      return { forgotten: true }
    }
    for (const key of keys) group.offsets.delete(key)
    await this.append(group.groupId, keys.map((key) => offsetTombstone(group.groupId, key)))
    return { forgotten: false }
  }

  /**
   * A topic was deleted (GroupCoordinator.onPartitionsDeleted): every group's offsets for it go. The topic has left
   * the registry already, so no new commit for it can start; one being written is not applied (commitOffsets).
   */
  private async removeOffsetsOf(topic: Topic): Promise<void> {
    await Promise.all(
      [...this.groups.values()].map(async (group) => {
        const keys = [...group.offsets.keys()].filter((key) => parseOffsetKey(key).topic === topic.name)
        if (keys.length === 0) return
        const { forgotten } = await this.removeOffsets(group, keys)
        this.log.info(
          `group '${group.groupId}': ${counted(keys.length, 'committed offset')} of deleted topic '${topic.name}' removed` +
            (forgotten ? '; the group, left with no members and no offsets, is gone' : ''),
        )
      }),
    )
  }

  // ---- Deadlines ----------------------------------------------------------------------------------------------

  private tick(): void {
    const now = Date.now()
    for (const group of this.groups.values()) {
      for (const [memberId, deadline] of group.pendingMembers) {
        if (deadline <= now) {
          group.pendingMembers.delete(memberId)
          this.tryCompleteJoin(group)
        }
      }
      for (const member of [...group.members.values()]) {
        // Members waiting for a join or sync answer are kept alive by the rebalance, as in Kafka.
        if (member.heartbeatDeadline <= now && !member.awaitingJoin && !member.awaitingSync) {
          this.removeMember(group, member.memberId, `missed its session timeout (${member.sessionTimeoutMs} ms)`)
        }
      }
      if (group.state === GroupState.PreparingRebalance && now >= group.rebalanceDeadline) this.tryCompleteJoin(group)
    }
    if (now - this.lastRetentionCheck >= this.config.offsetsRetentionCheckIntervalMs) {
      this.lastRetentionCheck = now
      void this.expireOffsets(now)
    }
  }

  /**
   * Offsets retention (KIP-211, GroupMetadata.removeExpiredOffsets): all offsets of a group that has been Empty for
   * offsets.retention.minutes (the group is then forgotten); offsets of standalone groups (no protocol type) by
   * their commit time; and in a Stable consumer group, by commit time, offsets of topics no member subscribes to.
   */
  async expireOffsets(now = Date.now()): Promise<void> {
    const retentionMs = this.config.offsetsRetentionMinutes * 60_000
    for (const group of [...this.groups.values()]) {
      // A member that was just handed its id (MEMBER_ID_REQUIRED) is about to join: forgetting the group now would
      // answer its second JoinGroup with UNKNOWN_MEMBER_ID.
      if (group.pendingMembers.size > 0) continue
      let expired: string[]
      if (group.state === GroupState.Empty) {
        expired = [...group.offsets]
          .filter(([, c]) => (group.protocolType === null ? Number(c.commitTimestamp) : group.stateTimestamp) + retentionMs <= now)
          .map(([key]) => key)
        // A group with neither members nor offsets is forgotten at once.
        if (expired.length === 0 && group.offsets.size > 0) continue
      } else if (group.state === GroupState.Stable && group.protocolType === 'consumer') {
        const subscribed = this.subscriptions(group)
        // Subscriptions that could not be read say nothing about which offsets are unused: keep them all.
        if (subscribed.size === 0) continue
        expired = [...group.offsets]
          .filter(([key, c]) => !subscribed.has(parseOffsetKey(key).topic) && Number(c.commitTimestamp) + retentionMs <= now)
          .map(([key]) => key)
        if (expired.length === 0) continue
      } else continue
      try {
        const { forgotten } = await this.removeOffsets(group, expired)
        this.log.info(
          forgotten
            ? `group '${group.groupId}' expired after offsets.retention.minutes`
            : `group '${group.groupId}': ${counted(expired.length, 'offset')} expired after offsets.retention.minutes`,
        )
      } catch (error) {
        // Storage refuses writes (logged once by the node): every other group would be refused too.
        if (error instanceof StorageError) return
        this.log.error(`offset expiry for group '${group.groupId}' failed: ${(error as Error).message}`)
      }
    }
  }
}

function offsetTombstone(groupId: string, key: string): LogRecord {
  const { topic, partition } = parseOffsetKey(key)
  return { key: offsetRecordKey(groupId, topic, partition), value: null }
}

function syncError(errorCode: number): SyncGroupResponse {
  return { errorCode, protocolType: null, protocolName: null, assignment: Buffer.alloc(0) }
}
