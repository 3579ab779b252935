/**
 * The group coordinator of the classic rebalance protocol (Kafka's GroupCoordinator): membership and rebalancing.
 * What it decides is kept by the group metadata manager (metadata-manager.ts, behind GroupStore), which writes groups
 * and committed offsets to __consumer_offsets and rebuilds them from it; this module only reads and changes groups
 * in memory and asks the store to write.
 *
 *                 join                      all members joined          leader's SyncGroup
 *   Empty ──────────────────> PreparingRebalance ──────────────> CompletingRebalance ──────────> Stable
 *     ^  <── last member leaves ──┘   ^    (or rebalance timeout)         │                         │
 *     │                               └──── join / leave / session expiry ┴─────────────────────────┘
 *     └── Dead: deleted, or offsets expired with no members (the group is then forgotten)
 *
 * Invariants
 * - generationId grows by one each time a join completes; every member of a generation was answered with it.
 * - leaderId names a member whenever there are members.
 * - In CompletingRebalance and Stable every member supports `protocolName`.
 * - A member is either awaiting a JoinGroup answer, awaiting a SyncGroup answer, or neither.
 * - A group becomes Stable only once its assignment is written (SyncGroup answers after the write).
 *
 * Flows:
 * - JoinGroup: v4+ dynamic members first get MEMBER_ID_REQUIRED with their id (KIP-394); static members
 *   (group.instance.id, KIP-345) join at once and replace an older member with the same instance id. A join moves the
 *   group to PreparingRebalance; the join completes when every member has rejoined, or at the rebalance deadline
 *   (members that did not rejoin are removed). An Empty group first waits group.initial.rebalance.delay.ms, and a new
 *   group (generation 0) waits once more each time members joined during the wait, up to the rebalance timeout
 *   (Kafka's InitialDelayedJoin): one kafkajs member alone waits one delay. Completing bumps the generation and picks
 *   the protocol; the leader's answer lists the members.
 * - SyncGroup: the leader's assignments are written to the log, then every waiting member gets its assignment and the
 *   group is Stable. Members that have not sent the generation's SyncGroup a rebalance timeout after the join completed
 *   are removed and the group rebalances (Kafka's pending-sync deadline, KAFKA-13366), in CompletingRebalance and
 *   Stable alike. A static member replaced in a Stable group is answered once the group record naming its new id is
 *   written; a failed write puts the old id back.
 * - Heartbeats keep members alive; a member silent for its session timeout is removed and the group rebalances.
 * - OffsetCommit is checked against the membership (generation, member, instance id) here, then stored.
 * The sweep (every 100 ms) drives deadlines: session expiry, pending members, rebalance and initial delays, syncs.
 *
 * A node coordinates only the groups of the __consumer_offsets partitions it leads (all of them on a single node;
 * coordinator-partitions.ts): every request for another group is NOT_COORDINATOR, and COORDINATOR_LOAD_IN_PROGRESS
 * while its partition loads (Kafka's validateGroupStatus). The sweep leaves a group alone while its partition loads,
 * and a partition loaded gives its members a whole session from then (onGroupLoaded); one unloaded answers its
 * waiting joins and syncs NOT_COORDINATOR (onGroupUnloaded), so they find the new coordinator.
 */
import { randomUUID } from 'node:crypto'
import { ErrorCode } from '../../protocol/errors.js'
import type { JoinGroupRequest, JoinGroupResponse } from '../../protocol/messages/join-group.js'
import type { SyncGroupRequest, SyncGroupResponse } from '../../protocol/messages/sync-group.js'
import { counted } from '../../client/wording.js'
import type { BrokerConfig } from '../config.js'
import type { Logger } from '../logger.js'
import type { Partition } from '../partition.js'
import type { PartitionLoader } from '../coordinator-partitions.js'
import { Group, GroupState, Member, type Protocol } from './group.js'
import { appendErrorCode, type DeletedOffsets, type FetchedOffsets, type GroupStore, type OffsetCommitInput, type TxnOffsetProducer } from './metadata-manager.js'
import { quote } from '../quote.js'
import { monotonicMs } from '../clock.js'

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

export type GroupCoordinatorSettings = Pick<
  BrokerConfig,
  'groupMinSessionTimeoutMs' | 'groupMaxSessionTimeoutMs' | 'groupInitialRebalanceDelayMs'
>

export class GroupCoordinator implements PartitionLoader {
  private readonly sweep: NodeJS.Timeout

  /** `store` holds the groups already loaded from __consumer_offsets. */
  constructor(
    private readonly store: GroupStore,
    private readonly config: GroupCoordinatorSettings,
    private readonly log: Logger,
  ) {
    this.groupsLoaded(store.list())
    this.sweep = setInterval(() => this.tick(), SWEEP_INTERVAL_MS)
    this.sweep.unref()
  }

  close(): void {
    clearInterval(this.sweep)
  }

  /** Members loaded from the log get a whole session from now (Kafka's onGroupLoaded). */
  private groupsLoaded(groups: readonly Group[]): void {
    const now = monotonicMs()
    for (const group of groups) {
      for (const member of group.members.values()) member.heartbeatDeadline = now + member.sessionTimeoutMs
    }
  }

  /** This node became the coordinator of a partition of __consumer_offsets: its groups are replayed. */
  async loadPartition(partition: Partition): Promise<void> {
    const { groups, records } = await this.store.loadPartition(partition)
    this.groupsLoaded(groups)
    if (records > 0) this.log.info(`loaded ${counted(groups.length, 'group')} from ${counted(records, 'record')} of __consumer_offsets-${partition.index}`)
  }

  /** This node serves a partition of __consumer_offsets it loaded: offsets of topics deleted meanwhile go. */
  partitionLoaded(index: number): Promise<void> {
    return this.store.removeOffsetsOfDeletedTopics(index)
  }

  /** This node no longer coordinates a partition of __consumer_offsets: its groups are forgotten here. */
  unloadPartition(index: number): void {
    for (const group of this.store.unloadPartition(index)) {
      for (const member of group.members.values()) {
        member.awaitingJoin?.(this.joinError(ErrorCode.NOT_COORDINATOR, member.memberId))
        member.awaitingJoin = null
        member.awaitingSync?.(syncError(ErrorCode.NOT_COORDINATOR))
        member.awaitingSync = null
      }
    }
  }

  /** NONE when this node coordinates the group now; else NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS. */
  coordinatorError(groupId: string): number {
    return this.store.errorFor(groupId)
  }

  /** Whether a partition of __consumer_offsets led here is still loading (ListGroups cannot answer for it yet). */
  get loading(): boolean {
    return this.store.loading
  }

  /**
   * Creates __consumer_offsets on first use (FindCoordinator); rejects with a StorageError when it cannot be, or a
   * KafkaError (COORDINATOR_NOT_AVAILABLE) when the controller could not create it.
   */
  ensureOffsetsTopic(): Promise<void> {
    return this.store.ensureOffsetsTopic()
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
    const notHere = this.store.errorFor(request.groupId)
    if (notHere !== ErrorCode.NONE) return fail(notHere)
    if (request.sessionTimeoutMs < this.config.groupMinSessionTimeoutMs || request.sessionTimeoutMs > this.config.groupMaxSessionTimeoutMs) {
      return fail(ErrorCode.INVALID_SESSION_TIMEOUT)
    }
    await this.store.ensureOffsetsTopic()
    let group = this.store.get(request.groupId)
    if (!group) {
      if (request.memberId !== '') return fail(ErrorCode.UNKNOWN_MEMBER_ID)
      group = this.store.getOrCreate(request.groupId)
    }
    if (group.state === GroupState.Dead) return fail(ErrorCode.COORDINATOR_NOT_AVAILABLE)
    const protocols: Protocol[] = request.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }))
    if (!group.supports(request.protocolType, protocols)) return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
    // v1 has no rebalance timeout: it is the session timeout (JoinGroupRequest.json).
    const rebalanceTimeoutMs = request.rebalanceTimeoutMs === -1 ? request.sessionTimeoutMs : request.rebalanceTimeoutMs
    const details = { ...request, protocols, rebalanceTimeoutMs }

    if (request.memberId === '') {
      // Kafka's GroupMetadata.generateMemberId: a static member's id starts with its group.instance.id, a dynamic
      // member's with its client id. That part is cut so that the id always fits a protocol string (a client id
      // alone may fill one).
      const memberId = `${(request.groupInstanceId ?? context.clientId).slice(0, 255)}-${randomUUID()}`
      if (request.groupInstanceId !== null) return this.joinStatic(group, memberId, details, context)
      if (context.apiVersion >= 4) {
        // KIP-394: hand out the id and ask the client to come back with it, so a member that never returns is not
        // counted in the rebalance.
        group.pendingMembers.set(memberId, monotonicMs() + request.sessionTimeoutMs)
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
    member.heartbeatDeadline = monotonicMs() + member.sessionTimeoutMs
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
    const before = { clientId: old.clientId, clientHost: old.clientHost, sessionTimeoutMs: old.sessionTimeoutMs, rebalanceTimeoutMs: old.rebalanceTimeoutMs, protocols: old.protocols }
    old.memberId = memberId
    old.clientId = context.clientId
    old.clientHost = context.clientHost
    old.sessionTimeoutMs = request.sessionTimeoutMs
    old.rebalanceTimeoutMs = request.rebalanceTimeoutMs
    old.protocols = request.protocols
    old.heartbeatDeadline = monotonicMs() + old.sessionTimeoutMs
    group.members.set(memberId, old)
    group.staticMembers.set(instanceId, memberId)
    if (group.leaderId === oldId) group.leaderId = memberId
    if (group.state === GroupState.Stable && group.selectProtocol() === group.protocolName) {
      // The group would select the same protocol: no rebalance; the member gets the current generation and, through
      // SyncGroup, its current assignment. Kafka compares only the selected protocol, not the member's metadata
      // (GroupMetadataManager.updateStaticMemberThenRebalanceOrCompleteJoin): a cooperative-sticky member's names the
      // partitions it owns, which a restarted one does not know, and a changed subscription is the client's to notice.
      // A Stable group's SyncGroup ignores new assignments, so a restarted leader must not run its assignor: before v9
      // Kafka names the leader as it was before the replacement (the old member id, which the client does not
      // recognise as its own); from v9 it names the new id with skipAssignment (KIP-814,
      // GroupCoordinator.updateStaticMemberAndRebalance).
      // The answer waits for the group record naming the new id, as Kafka's (appendFuture.whenComplete): answered
      // before it, a node that crashed meanwhile would come back knowing only the old id, and fence the live new
      // incarnation for good (FENCED_INSTANCE_ID, fatal to the Java consumer). A failed write puts the old id back.
      const generation = group.generationId
      return this.store.storeGroup(group).then(
        () => {
          const answer = this.joinAnswer(group, old)
          if (context.apiVersion >= 9) return { ...answer, skipAssignment: group.leaderId === memberId }
          return { ...answer, leader: previousLeader ?? '', members: [] }
        },
        (error: unknown) => {
          if (group.members.get(memberId) === old && group.staticMembers.get(instanceId) === memberId && group.generationId === generation) {
            this.log.warn(`group ${quote(group.groupId)}: could not store static member ${quote(instanceId)}'s new member id; ${oldId} stays its member id`)
            group.members.delete(memberId)
            Object.assign(old, before, { memberId: oldId! })
            group.members.set(oldId!, old)
            group.staticMembers.set(instanceId, oldId!)
            if (group.leaderId === memberId) group.leaderId = oldId!
          }
          return this.joinError(appendErrorCode(error), '')
        },
      )
    }
    const answer = new Promise<JoinGroupResponse>((resolve) => (old.awaitingJoin = resolve))
    this.prepareRebalance(group, `static member ${instanceId} rejoined`)
    return answer
  }

  private rejoin(group: Group, member: Member, request: JoinGroupRequest & { protocols: Protocol[]; rebalanceTimeoutMs: number }): Promise<JoinGroupResponse> {
    member.heartbeatDeadline = monotonicMs() + member.sessionTimeoutMs
    const unchanged = member.sameProtocols(request.protocols)
    member.protocols = request.protocols
    member.sessionTimeoutMs = request.sessionTimeoutMs
    member.rebalanceTimeoutMs = request.rebalanceTimeoutMs
    // A member that lost its JoinGroup answer asks again with the same protocols: answer with the current generation.
    if (unchanged && (group.state === GroupState.CompletingRebalance || (group.state === GroupState.Stable && member.memberId !== group.leaderId))) {
      return Promise.resolve(this.joinAnswer(group, member))
    }
    // A JoinGroup that supersedes one still waiting (a client that joins twice at once: kafkajs 2.2.4 rejoins from each
    // of its fetchers when it sees new partitions): the superseded one gets this one's answer too. Kafka's coordinator
    // drops the superseded one unanswered (ClassicGroup.updateMember); answering it UNKNOWN_MEMBER_ID made kafkajs clear
    // the member id its two joins share and join again as a new member, which left a pipeline on a cluster without its
    // new partitions.
    const answer = new Promise<JoinGroupResponse>((resolve) => (member.awaitingJoin = alsoAnswering(member.awaitingJoin, resolve)))
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
    group.pendingSync.clear()
    group.syncDeadline = null
    if (group.state === GroupState.CompletingRebalance) {
      for (const member of group.members.values()) {
        member.assignment = Buffer.alloc(0)
        member.awaitingSync?.(syncError(ErrorCode.REBALANCE_IN_PROGRESS))
        member.awaitingSync = null
      }
    }
    const now = monotonicMs()
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
      this.log.debug(`group ${quote(group.groupId)} rebalancing (generation ${group.generationId}): ${reason}`)
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
    const now = monotonicMs()
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
        this.log.debug(`group ${quote(group.groupId)}: removing ${quote(member.memberId)}, which did not rejoin in time`)
        group.remove(member.memberId)
      }
    }
    // Members still between their two JoinGroups (MEMBER_ID_REQUIRED) stay pending: when they come back they join
    // and start the next rebalance, as in Kafka's onCompleteJoin; otherwise their session timeout forgets them.
    group.generationId++
    if (group.isEmpty) {
      group.protocolName = null
      group.transition(GroupState.Empty)
      void this.store.storeGroup(group).catch(() => undefined)
      return
    }
    group.protocolName = group.selectProtocol()
    group.transition(GroupState.CompletingRebalance)
    const now = monotonicMs()
    // Every member must sync within the rebalance timeout (GroupMetadataManager.schedulePendingSync, KAFKA-13366).
    group.pendingSync.clear()
    for (const memberId of group.members.keys()) group.pendingSync.add(memberId)
    group.syncDeadline = now + group.rebalanceTimeoutMs
    for (const member of group.members.values()) {
      const resolve = member.awaitingJoin!
      member.awaitingJoin = null
      member.heartbeatDeadline = now + member.sessionTimeoutMs
      resolve(this.joinAnswer(group, member))
    }
    this.log.info(
      `group ${quote(group.groupId)} generation ${group.generationId}: ${counted(group.members.size, 'member')}, protocol ${group.protocolName === null ? 'none' : quote(group.protocolName)}`,
    )
  }

  // ---- SyncGroup ----------------------------------------------------------------------------------------------

  async sync(request: SyncGroupRequest): Promise<SyncGroupResponse> {
    if (request.groupId === '') return syncError(ErrorCode.INVALID_GROUP_ID)
    const notHere = this.store.errorFor(request.groupId)
    if (notHere !== ErrorCode.NONE) return syncError(notHere)
    const group = this.store.get(request.groupId)
    if (!group) return syncError(ErrorCode.UNKNOWN_MEMBER_ID)
    if (group.state === GroupState.Dead) return syncError(ErrorCode.COORDINATOR_NOT_AVAILABLE)
    const memberError = group.memberError(request.memberId, request.groupInstanceId)
    if (memberError !== ErrorCode.NONE) return syncError(memberError)
    const member = group.members.get(request.memberId)
    if (!member) return syncError(ErrorCode.UNKNOWN_MEMBER_ID)
    if (request.generationId !== group.generationId) return syncError(ErrorCode.ILLEGAL_GENERATION)
    if (
      (request.protocolType !== null && request.protocolType !== group.protocolType) ||
      (request.protocolName !== null && request.protocolName !== group.protocolName)
    ) {
      return syncError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
    }
    member.heartbeatDeadline = monotonicMs() + member.sessionTimeoutMs
    if (group.state === GroupState.CompletingRebalance || group.state === GroupState.Stable) group.pendingSync.delete(member.memberId)
    switch (group.state) {
      case GroupState.Empty:
        return syncError(ErrorCode.UNKNOWN_MEMBER_ID)
      case GroupState.PreparingRebalance:
        return syncError(ErrorCode.REBALANCE_IN_PROGRESS)
      case GroupState.Stable:
        return this.syncAnswer(group, member)
    }
    // A SyncGroup that supersedes one of the same member still waiting (see rejoin): both get this one's answer.
    const answer = new Promise<SyncGroupResponse>((resolve) => (member.awaitingSync = alsoAnswering(member.awaitingSync, resolve)))
    if (member.memberId === group.leaderId) {
      const assignments = new Map(request.assignments.map((a) => [a.memberId, Buffer.from(a.assignment)]))
      const generation = group.generationId
      for (const m of group.members.values()) m.assignment = assignments.get(m.memberId) ?? Buffer.alloc(0)
      try {
        await this.store.storeGroup(group)
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
    if (groupId === '') return ErrorCode.INVALID_GROUP_ID
    const notHere = this.store.errorFor(groupId)
    if (notHere !== ErrorCode.NONE) return notHere
    const group = this.store.get(groupId)
    if (!group || group.state === GroupState.Empty) return ErrorCode.UNKNOWN_MEMBER_ID
    if (group.state === GroupState.Dead) return ErrorCode.COORDINATOR_NOT_AVAILABLE
    const memberError = group.memberError(identity.memberId, identity.groupInstanceId)
    if (memberError !== ErrorCode.NONE) return memberError
    const member = group.members.get(identity.memberId)
    if (!member) return ErrorCode.UNKNOWN_MEMBER_ID
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION
    member.heartbeatDeadline = monotonicMs() + member.sessionTimeoutMs
    return group.state === GroupState.PreparingRebalance ? ErrorCode.REBALANCE_IN_PROGRESS : ErrorCode.NONE
  }

  /** Removes members; answers an error code per member, or a group-level code when the group is unknown. */
  leave(groupId: string, members: MemberIdentity[]): { errorCode: number; members: (MemberIdentity & { errorCode: number })[] } {
    if (groupId === '') return { errorCode: ErrorCode.INVALID_GROUP_ID, members: [] }
    const notHere = this.store.errorFor(groupId)
    if (notHere !== ErrorCode.NONE) return { errorCode: notHere, members: members.map((m) => ({ ...m, errorCode: notHere })) }
    const group = this.store.get(groupId)
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
    this.log.debug(`group ${quote(group.groupId)}: ${quote(memberId)} ${reason}`)
    if (group.state === GroupState.Stable || group.state === GroupState.CompletingRebalance) {
      this.prepareRebalance(group, `${memberId} ${reason}`)
    } else if (group.state === GroupState.PreparingRebalance) this.tryCompleteJoin(group)
  }

  // ---- Offsets ------------------------------------------------------------------------------------------------

  /**
   * Kafka's handleCommitOffsets and validateOffsetCommit (GroupCoordinator.scala): a commit that names a generation,
   * a member or an instance id must come from a member of the current generation (a generation for a group that does
   * not exist is from an older one: ILLEGAL_GENERATION, GROUP_ID_NOT_FOUND from OffsetCommit v9, `options.apiVersion`;
   * an instance id the group does not know is UNKNOWN_MEMBER_ID, Group.memberError); a standalone commit (generation
   * -1, no member) is allowed only while the group has no members (UNKNOWN_MEMBER_ID otherwise), and generation -1 into
   * an Empty group is one whatever member or instance id it names. Members' commits wait out
   * CompletingRebalance. The empty group id is a group like any other here, as in Kafka (GroupCoordinatorService
   * keeps it for old consumers' commits); TxnOffsetCommit refuses it before this. A transactional commit
   * (TxnOffsetCommit, `options.transaction`) is checked the same way when it names a member (KIP-447), and is held
   * pending until its transaction's marker decides it.
   */
  async commitOffsets(
    groupId: string,
    generationId: number,
    identity: MemberIdentity,
    offsets: readonly OffsetCommitInput[],
    options: { transaction?: TxnOffsetProducer; apiVersion?: number } = {},
  ): Promise<number[]> {
    const all = (code: number): number[] => offsets.map(() => code)
    const notHere = this.store.errorFor(groupId)
    if (notHere !== ErrorCode.NONE) return all(notHere)
    await this.store.ensureOffsetsTopic()
    const existing = this.store.get(groupId)
    // From OffsetCommit v9 a generation for a group that does not exist is GROUP_ID_NOT_FOUND, before it
    // ILLEGAL_GENERATION (OffsetMetadataManager.validateOffsetCommit).
    if (!existing && generationId >= 0) return all((options.apiVersion ?? 0) >= 9 ? ErrorCode.GROUP_ID_NOT_FOUND : ErrorCode.ILLEGAL_GENERATION)
    if (existing?.state === GroupState.Dead) return all(ErrorCode.COORDINATOR_NOT_AVAILABLE)
    // Generation -1 into an Empty group is a standalone commit whatever member or instance id it names (an admin
    // client, or a consumer that left the group): ClassicGroup.validateOffsetCommit returns before the member checks.
    const standalone = generationId < 0 && existing?.state === GroupState.Empty
    if (!standalone && (generationId >= 0 || identity.memberId !== '' || identity.groupInstanceId !== null)) {
      const memberError = existing?.memberError(identity.memberId, identity.groupInstanceId) ?? ErrorCode.UNKNOWN_MEMBER_ID
      if (memberError !== ErrorCode.NONE) return all(memberError)
      const member = existing?.members.get(identity.memberId)
      if (!existing || !member) return all(ErrorCode.UNKNOWN_MEMBER_ID)
      if (generationId !== existing.generationId) return all(ErrorCode.ILLEGAL_GENERATION)
      if (existing.state === GroupState.CompletingRebalance) return all(ErrorCode.REBALANCE_IN_PROGRESS)
      member.heartbeatDeadline = monotonicMs() + member.sessionTimeoutMs
    } else if (existing && !existing.isEmpty && !options.transaction) {
      // A transactional commit without a member (TxnOffsetCommit before KIP-447) is not checked against the group.
      return all(ErrorCode.UNKNOWN_MEMBER_ID)
    }
    const group = existing ?? this.store.getOrCreate(groupId)
    return this.store.storeOffsets(group, offsets, options.transaction)
  }

  /** Committed offsets: for the given partitions (null: every partition the group has an offset for). */
  fetchOffsets(groupId: string, wanted: { topic: string; partitions: number[] }[] | null): FetchedOffsets {
    return this.store.fetchOffsets(groupId, wanted)
  }

  /**
   * OffsetDelete (GroupCoordinator.handleDeleteOffsets): an unknown group is GROUP_ID_NOT_FOUND, a group with members
   * that is not a consumer group NON_EMPTY_GROUP; partitions of topics the members subscribe to stay
   * (GROUP_SUBSCRIBED_TO_TOPIC).
   */
  async deleteOffsets(groupId: string, wanted: { topic: string; partitions: number[] }[]): Promise<{ errorCode: number; results: DeletedOffsets }> {
    if (groupId === '') return { errorCode: ErrorCode.INVALID_GROUP_ID, results: [] }
    const notHere = this.store.errorFor(groupId)
    if (notHere !== ErrorCode.NONE) return { errorCode: notHere, results: [] }
    const group = this.store.get(groupId)
    if (!group || group.state === GroupState.Dead) return { errorCode: ErrorCode.GROUP_ID_NOT_FOUND, results: [] }
    if (!group.isEmpty && group.protocolType !== 'consumer') return { errorCode: ErrorCode.NON_EMPTY_GROUP, results: [] }
    // Before its first protocol is selected (the first rebalance), a consumer group's subscriptions are not known yet:
    // every topic counts as subscribed (ClassicGroup.isSubscribedToTopic falls back to usesConsumerGroupProtocol).
    const unknown = !group.isEmpty && group.protocolName === null
    const subscribed = group.isEmpty ? new Set<string>() : unknown ? new Set(wanted.map((w) => w.topic)) : group.subscribedTopics()
    return { errorCode: ErrorCode.NONE, results: await this.store.deleteOffsets(group, wanted, subscribed) }
  }

  // ---- Describe, list, delete ---------------------------------------------------------------------------------

  describe(groupId: string): Group | undefined {
    return this.store.get(groupId)
  }

  list(): Group[] {
    return this.store.list().filter((g) => g.state !== GroupState.Dead)
  }

  /** DeleteGroups: only groups without members; their offsets and metadata become tombstones. */
  async deleteGroup(groupId: string): Promise<number> {
    const notHere = this.store.errorFor(groupId)
    if (notHere !== ErrorCode.NONE) return notHere
    const group = this.store.get(groupId)
    if (!group || group.state === GroupState.Dead) return ErrorCode.GROUP_ID_NOT_FOUND
    if (!group.isEmpty) return ErrorCode.NON_EMPTY_GROUP
    await this.store.deleteGroup(group)
    return ErrorCode.NONE
  }

  // ---- Deadlines ----------------------------------------------------------------------------------------------

  private tick(): void {
    const now = monotonicMs()
    for (const group of this.store.list()) {
      // A group whose partition is still loading is being replayed: its members get their session once it is loaded
      // (groupsLoaded), and until then nothing of it may be written.
      if (this.store.errorFor(group.groupId) !== ErrorCode.NONE) continue
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
      // Members that did not send SyncGroup within the rebalance timeout after the join completed go, and the group
      // rebalances without them (GroupMetadataManager.expirePendingSync), in CompletingRebalance and in Stable alike.
      if (group.syncDeadline !== null && now >= group.syncDeadline) {
        const late = [...group.pendingSync]
        group.syncDeadline = null
        group.pendingSync.clear()
        if (group.state === GroupState.CompletingRebalance || group.state === GroupState.Stable) {
          for (const memberId of late) this.removeMember(group, memberId, 'did not send SyncGroup within the rebalance timeout')
        }
      }
    }
  }
}

function syncError(errorCode: number): SyncGroupResponse {
  return { errorCode, protocolType: null, protocolName: null, assignment: Buffer.alloc(0) }
}

/** A member's waiter for its answer: `resolve`, and a `superseded` request of the same member still waiting gets that answer too. */
function alsoAnswering<T>(superseded: ((response: T) => void) | null, resolve: (response: T) => void): (response: T) => void {
  if (!superseded) return resolve
  return (response) => {
    superseded(response)
    resolve(response)
  }
}
