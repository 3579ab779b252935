/**
 * A consumer group of the classic rebalance protocol: its members, generation, chosen protocol and committed offsets.
 * This file holds the data and the pure decisions; the coordinator (coordinator.ts, where the state diagram and the
 * invariants are) drives the transitions, and the group metadata manager (metadata-manager.ts) stores groups and
 * offsets in __consumer_offsets.
 */
import type { JoinGroupResponse } from '../../protocol/messages/join-group.js'
import type { SyncGroupResponse } from '../../protocol/messages/sync-group.js'
import { subscribedTopics } from '../../protocol/consumer-protocol.js'
import { ErrorCode } from '../../protocol/errors.js'

export const GroupState = {
  Empty: 'Empty',
  PreparingRebalance: 'PreparingRebalance',
  CompletingRebalance: 'CompletingRebalance',
  Stable: 'Stable',
  Dead: 'Dead',
} as const
export type GroupState = (typeof GroupState)[keyof typeof GroupState]

export interface Protocol {
  name: string
  metadata: Buffer
}

export class Member {
  assignment: Buffer = Buffer.alloc(0)
  /** When its session ends without a heartbeat: monotonicMs() (broker/clock.ts), as every deadline of a group. */
  heartbeatDeadline = 0
  awaitingJoin: ((response: JoinGroupResponse) => void) | null = null
  awaitingSync: ((response: SyncGroupResponse) => void) | null = null

  constructor(
    public memberId: string,
    readonly groupInstanceId: string | null,
    public clientId: string,
    public clientHost: string,
    public sessionTimeoutMs: number,
    public rebalanceTimeoutMs: number,
    public protocolType: string,
    public protocols: Protocol[],
  ) {}

  metadataFor(protocolName: string): Buffer {
    return this.protocols.find((p) => p.name === protocolName)?.metadata ?? Buffer.alloc(0)
  }

  sameProtocols(protocols: readonly Protocol[]): boolean {
    return (
      protocols.length === this.protocols.length &&
      protocols.every((p, i) => p.name === this.protocols[i]!.name && p.metadata.equals(this.protocols[i]!.metadata))
    )
  }
}

export interface CommittedOffset {
  offset: bigint
  leaderEpoch: number
  metadata: string
  commitTimestamp: bigint
  /**
   * The offset in __consumer_offsets of the batch that wrote it (Kafka's OffsetAndMetadata.recordOffset): a
   * transactional commit decided later replaces it only if written after it.
   */
  recordOffset: bigint
}

export class Group {
  state: GroupState = GroupState.Empty
  generationId = 0
  protocolType: string | null = null
  protocolName: string | null = null
  leaderId: string | null = null
  stateTimestamp = Date.now()
  readonly members = new Map<string, Member>()
  /** Member ids handed out with MEMBER_ID_REQUIRED, until they rejoin (or their session timeout passes: the deadline). */
  readonly pendingMembers = new Map<string, number>()
  readonly staticMembers = new Map<string, string>()
  /** `topic\0partition` -> committed offset. */
  readonly offsets = new Map<string, CommittedOffset>()
  /** When PreparingRebalance must complete even if members are missing (or, in the initial delay, when it ends). */
  rebalanceDeadline = 0
  /**
   * The initial rebalance delay in progress, or null (Kafka's InitialDelayedJoin): the length of the current wait and
   * what is left of the rebalance timeout for further waits.
   */
  initialDelay: { delayMs: number; remainingMs: number } | null = null
  /** A member joined the new group (generation 0) while its initial delay was pending (Kafka's newMemberAdded). */
  newMemberAdded = false
  /**
   * Members of the current generation that have not sent its SyncGroup yet (Kafka's pendingSyncMembers), and when
   * they must have (a rebalance timeout after the join completed; null when no deadline runs): a member that never
   * syncs is removed then and the group rebalances, instead of holding the others in CompletingRebalance for good.
   */
  readonly pendingSync = new Set<string>()
  syncDeadline: number | null = null

  constructor(readonly groupId: string) {}

  transition(state: GroupState): void {
    this.state = state
    this.stateTimestamp = Date.now()
  }

  get isEmpty(): boolean {
    return this.members.size === 0
  }

  /** The longest rebalance timeout of the members: how long a rebalance waits for everyone. */
  get rebalanceTimeoutMs(): number {
    let max = 0
    for (const member of this.members.values()) max = Math.max(max, member.rebalanceTimeoutMs)
    return max
  }

  add(member: Member): void {
    this.members.set(member.memberId, member)
    if (member.groupInstanceId !== null) this.staticMembers.set(member.groupInstanceId, member.memberId)
    if (this.leaderId === null) this.leaderId = member.memberId
    if (this.members.size === 1) this.protocolType = member.protocolType
  }

  remove(memberId: string): Member | undefined {
    const member = this.members.get(memberId)
    if (!member) return undefined
    this.members.delete(memberId)
    this.pendingSync.delete(memberId)
    if (member.groupInstanceId !== null && this.staticMembers.get(member.groupInstanceId) === memberId) {
      this.staticMembers.delete(member.groupInstanceId)
    }
    if (this.leaderId === memberId) this.leaderId = this.members.keys().next().value ?? null
    return member
  }

  /** Kafka's supportsProtocols: an empty group takes any non-empty offer; otherwise type and one protocol must match. */
  supports(protocolType: string, protocols: readonly Protocol[]): boolean {
    if (protocolType === '' || protocols.length === 0) return false
    if (this.isEmpty) return true
    if (protocolType !== this.protocolType) return false
    const candidates = this.candidateProtocols()
    return protocols.some((p) => candidates.has(p.name))
  }

  /** Protocols every member supports. */
  candidateProtocols(): Set<string> {
    let candidates: Set<string> | null = null
    for (const member of this.members.values()) {
      const names = new Set(member.protocols.map((p) => p.name))
      candidates = candidates === null ? names : new Set([...candidates].filter((name: string) => names.has(name)))
    }
    return candidates ?? new Set()
  }

  /** Each member votes for its most preferred candidate; the most votes wins (Kafka's selectProtocol). */
  selectProtocol(): string {
    const candidates = this.candidateProtocols()
    const votes = new Map<string, number>()
    for (const member of this.members.values()) {
      const choice = member.protocols.find((p) => candidates.has(p.name))!.name
      votes.set(choice, (votes.get(choice) ?? 0) + 1)
    }
    let best = ''
    let most = -1
    for (const [name, count] of votes) {
      if (count > most) {
        best = name
        most = count
      }
    }
    return best
  }

  allMembersJoined(): boolean {
    if (this.pendingMembers.size > 0) return false
    for (const member of this.members.values()) if (!member.awaitingJoin) return false
    return true
  }

  /** Whether `groupInstanceId` belongs to another member id than `memberId` (FENCED_INSTANCE_ID, as memberError says). */
  isFenced(memberId: string, groupInstanceId: string | null): boolean {
    return this.memberError(memberId, groupInstanceId) === ErrorCode.FENCED_INSTANCE_ID
  }

  /**
   * Whether a request naming `memberId` and `groupInstanceId` comes from a member of this group (Kafka's
   * ClassicGroup.validateMember): an instance id the group does not know is UNKNOWN_MEMBER_ID, one that belongs to
   * another member id FENCED_INSTANCE_ID; without an instance id, a member id the group does not have is
   * UNKNOWN_MEMBER_ID. NONE otherwise.
   */
  memberError(memberId: string, groupInstanceId: string | null): number {
    if (groupInstanceId !== null) {
      const current = this.staticMembers.get(groupInstanceId)
      if (current === undefined) return ErrorCode.UNKNOWN_MEMBER_ID
      return current === memberId ? ErrorCode.NONE : ErrorCode.FENCED_INSTANCE_ID
    }
    return this.members.has(memberId) ? ErrorCode.NONE : ErrorCode.UNKNOWN_MEMBER_ID
  }

  /** The topics the members subscribe to, read from their consumer-protocol metadata; empty without a protocol. */
  subscribedTopics(): Set<string> {
    const topics = new Set<string>()
    if (this.protocolName === null) return topics
    for (const member of this.members.values()) for (const t of subscribedTopics(member.metadataFor(this.protocolName))) topics.add(t)
    return topics
  }
}

export function offsetKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`
}

/** The topic and partition of an `offsetKey`. */
export function parseOffsetKey(key: string): { topic: string; partition: number } {
  const at = key.lastIndexOf('\0')
  return { topic: key.slice(0, at), partition: Number(key.slice(at + 1)) }
}
