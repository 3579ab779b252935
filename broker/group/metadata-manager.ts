/**
 * The group metadata manager (Kafka's GroupMetadataManager): the groups this node coordinates and their committed
 * offsets, kept as in Kafka in the compacted internal topic `__consumer_offsets` (offsets-topic.ts), and rebuilt by
 * replaying that topic, so they are as durable as any topic and replication covers them. A single node coordinates
 * every group and replays the whole topic when it opens; a cluster node coordinates the groups of the partitions it
 * leads, replaying each partition when it becomes its leader and forgetting its groups when it stops being it
 * (coordinator-partitions.ts, which also says which node coordinates a group).
 *
 *   coordinator.ts ──GroupStore──> GroupMetadataManager ──records──> __consumer_offsets (one partition per group)
 *   (membership,                   (groups, offsets: load, replay,
 *    rebalancing)                   append, commit, fetch, delete, expire)
 *
 * - Load replays a partition of __consumer_offsets in offset order: a later record of a key replaces an earlier
 *   one, a tombstone removes it. A group comes back Stable with its members, or Empty.
 * - Writes go to the log first. Commits reach memory once written, so OffsetFetch never answers what a replay would
 *   not; the records of one group are written in the order of the calls, so a tombstone cannot overtake a commit.
 * - Offsets of a group that has been Empty for offsets.retention.minutes expire (standalone groups: per offset, from
 *   its commit time; Stable consumer groups: offsets of topics nobody subscribes to, from their commit time), checked
 *   every offsets.retention.check.interval.ms; a group with neither members nor offsets is then forgotten.
 * - Deleting a topic removes every group's offsets for it, the same way (Kafka's onPartitionsDeleted), so a topic
 *   created again under the name starts with no committed offsets.
 * - Transactional offset commits (TxnOffsetCommit, GroupMetadataManager's pendingTransactionalOffsetCommits) are
 *   written as the producer's transactional batch and held pending per producer id; the COMMIT marker written to the
 *   group's partition applies them, an ABORT drops them (completeTransaction). A replay does the same with the
 *   batches and markers it meets, so a commit pending at a crash stays pending until the coordinator decides it.
 *   A committed transaction's offset replaces only one written before it in the log (each offset keeps its record's
 *   offset: OffsetMetadataManager.replayEndTransactionMarker), and a tombstone (DeleteGroups, expiry, a deleted
 *   topic) removes the pending commits of its partition too, so a deleted group does not come back with them.
 * Removed offsets leave memory at once and are written as tombstones, so a replay after a restart (clean or not)
 * does not bring them back; a commit that was being written when its topic was deleted is not applied.
 */
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import type { Partition } from '../partition.js'
import type { CoordinatorPartitions } from '../coordinator-partitions.js'
import { Attribute, decodeRecords, encodeRecordBatch } from '../../protocol/record-batch.js'
import { StorageError } from '../../storage/log-store.js'
import { ControlType, producerBatchOf } from '../../storage/producer-state.js'
import { counted } from '../../client/wording.js'
import type { BrokerConfig } from '../config.js'
import type { Logger } from '../logger.js'
import type { Topic } from '../partition.js'
import type { TopicManager } from '../topics.js'
import { Group, GroupState, Member, offsetKey, parseOffsetKey, type CommittedOffset } from './group.js'
import {
  OFFSETS_TOPIC,
  decodeOffsetsRecord,
  groupKey,
  groupValue,
  offsetKey as offsetRecordKey,
  offsetValue,
  partitionForGroup,
} from './offsets-topic.js'
import { quote } from '../quote.js'

/** offset.metadata.max.bytes */
export const OFFSET_METADATA_MAX_BYTES = 4096

export interface OffsetCommitInput {
  topic: string
  partition: number
  offset: bigint
  leaderEpoch: number
  metadata: string | null
}

/** The offsets an OffsetCommit or TxnOffsetCommit request carries, one per partition, in request order. */
export function offsetsToCommit(
  topics: readonly { name: string; partitions: readonly { partitionIndex: number; committedOffset: bigint; committedLeaderEpoch: number; committedMetadata: string | null }[] }[],
): OffsetCommitInput[] {
  return topics.flatMap((t) =>
    t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, offset: p.committedOffset, leaderEpoch: p.committedLeaderEpoch, metadata: p.committedMetadata })),
  )
}

/** The producer of a transactional offset commit (TxnOffsetCommit). */
export interface TxnOffsetProducer {
  producerId: bigint
  producerEpoch: number
}

/**
 * Committed offsets by topic, as OffsetFetch answers them; null where a partition has none. `pending`: a transactional
 * commit to the partition awaits its marker (OffsetFetch's requireStable answers UNSTABLE_OFFSET_COMMIT then).
 */
export type FetchedOffsets = { topic: string; partitions: { partition: number; committed: CommittedOffset | null; pending: boolean }[] }[]

/** Per topic and partition, what OffsetDelete answers. */
export type DeletedOffsets = { topic: string; partitions: { partition: number; errorCode: number }[] }[]

/**
 * What membership and rebalancing (coordinator.ts) ask of the group metadata manager. The manager asks nothing of the
 * coordinator: it reads a group's state and subscriptions only to decide which offsets expire.
 */
export interface GroupStore {
  /** NONE when this node coordinates the group now; else NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS. */
  errorFor(groupId: string): number
  /** Whether a partition of __consumer_offsets led here is still loading. */
  readonly loading: boolean
  /** Replays a partition of __consumer_offsets this node now coordinates: the groups it holds, the records read. */
  loadPartition(partition: Partition): Promise<{ groups: Group[]; records: number }>
  /** Forgets the groups of a partition of __consumer_offsets another node coordinates now; answers them. */
  unloadPartition(index: number): Group[]
  /**
   * Removes the offsets that the groups of partition `index` hold for topics that no longer exist, once the partition
   * is loaded and served here.
   */
  removeOffsetsOfDeletedTopics(index: number): Promise<void>
  /** The group of this id, if this node has one. */
  get(groupId: string): Group | undefined
  /** The group of this id, made Empty when there is none. */
  getOrCreate(groupId: string): Group
  /** Every group this node has. */
  list(): Group[]
  /**
   * Creates __consumer_offsets on first use (through the controller on a cluster node); rejects with a StorageError
   * when the node refuses writes, or a KafkaError (COORDINATOR_NOT_AVAILABLE) when the controller could not create it.
   */
  ensureOffsetsTopic(): Promise<void>
  /** Writes the group's metadata record (generation, protocol, members and their assignments); rejects if it fails. */
  storeGroup(group: Group): Promise<void>
  /**
   * Checks each offset (UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE), writes the accepted ones, then
   * applies them; an error code per offset, in order (a failed write: appendErrorCode for each accepted one). With
   * `transaction` they are written as the producer's transactional batch and held pending until its marker.
   */
  storeOffsets(group: Group, offsets: readonly OffsetCommitInput[], transaction?: TxnOffsetProducer): Promise<number[]>
  /** Committed offsets for the given partitions (null: every partition the group has an offset for). */
  fetchOffsets(groupId: string, wanted: { topic: string; partitions: number[] }[] | null): FetchedOffsets
  /**
   * Removes committed offsets (OffsetDelete), except of topics in `subscribed` (GROUP_SUBSCRIBED_TO_TOPIC); writes
   * the tombstones, then forgets the offsets. Rejects when the write fails.
   */
  deleteOffsets(group: Group, wanted: { topic: string; partitions: number[] }[], subscribed: ReadonlySet<string>): Promise<DeletedOffsets>
  /** The group goes Dead and is forgotten; its offsets and metadata become tombstones. Rejects when the write fails. */
  deleteGroup(group: Group): Promise<void>
}

interface LogRecord {
  key: Buffer
  value: Buffer | null
}

/**
 * The error code for a write to __consumer_offsets that failed, as Kafka's coordinator translates a failed append
 * (GroupMetadataManager.storeGroup and storeOffsets): KAFKA_STORAGE_ERROR becomes NOT_COORDINATOR, so clients look
 * the coordinator up again rather than retry a write this node refuses; a Kafka error (NOT_COORDINATOR: the group's
 * partition moved to another node meanwhile) is answered as it is.
 */
export function appendErrorCode(error: unknown): number {
  if (error instanceof KafkaError) return error.code
  return error instanceof StorageError ? ErrorCode.NOT_COORDINATOR : ErrorCode.COORDINATOR_NOT_AVAILABLE
}

export type GroupMetadataSettings = Pick<BrokerConfig, 'offsetsRetentionMinutes' | 'offsetsRetentionCheckIntervalMs'>

/** Transactional commits awaiting their marker: producer id -> group id -> offsetKey -> offset. */
type PendingTxnOffsets = Map<bigint, Map<string, Map<string, CommittedOffset>>>

export class GroupMetadataManager implements GroupStore {
  private readonly groups = new Map<string, Group>()
  private readonly pendingTxnOffsets: PendingTxnOffsets = new Map()
  private readonly expiry: NodeJS.Timeout

  /** `partitions`: __consumer_offsets, and which of its partitions this node coordinates. */
  constructor(
    private readonly topics: TopicManager,
    private readonly partitions: CoordinatorPartitions,
    private readonly config: GroupMetadataSettings,
    private readonly log: Logger,
  ) {
    this.expiry = setInterval(() => void this.expireOffsets(), config.offsetsRetentionCheckIntervalMs)
    this.expiry.unref()
    topics.onDelete((topic) => this.removeOffsetsOf(topic))
  }

  close(): void {
    clearInterval(this.expiry)
  }

  /** A single node replays all of __consumer_offsets, if it exists (a cluster node loads the partitions it leads). */
  async load(): Promise<void> {
    const topic = this.partitions.clustered ? undefined : this.topics.get(OFFSETS_TOPIC)
    if (!topic) return
    let records = 0
    for (const partition of topic.partitions) records += (await this.loadPartition(partition)).records
    if (records > 0) this.log.info(`loaded ${counted(this.groups.size, 'group')} from ${counted(records, 'record')} of ${OFFSETS_TOPIC}`)
  }

  /**
   * Replays one partition of __consumer_offsets; answers the groups it holds and how many records it read. Up to the
   * log end offset, as Kafka's GroupMetadataManager: a new leader's high watermark can lag commits the old coordinator
   * answered once the whole ISR had them.
   */
  async loadPartition(partition: Partition): Promise<{ groups: Group[]; records: number }> {
    let records = 0
    for await (const batch of partition.log.batches(partition.logStartOffset, partition.logEndOffset)) {
      const producer = batch.producerId >= 0n ? producerBatchOf(batch.bytes) : null
      if (producer?.marker) {
        this.completeTransaction(partition.index, producer.producerId, producer.marker.type === ControlType.COMMIT)
        continue
      }
      const pendingOf = producer?.transactional ? producer.producerId : null
      for (const record of decodeRecords(batch.bytes)) {
        if (record.key) {
          if (pendingOf === null) this.apply(record.key, record.value, batch.baseOffset)
          else this.applyPending(pendingOf, record.key, record.value, batch.baseOffset)
        }
        records++
      }
    }
    return { groups: this.groupsOf(partition.index), records }
  }

  /**
   * Forgets the groups of a partition of __consumer_offsets and their pending transactional commits (Kafka's
   * removeGroupsForPartition): another node coordinates them now. Answers the groups forgotten.
   */
  unloadPartition(index: number): Group[] {
    const groups = this.groupsOf(index)
    for (const group of groups) this.groups.delete(group.groupId)
    for (const [producerId, byGroup] of this.pendingTxnOffsets) {
      for (const groupId of byGroup.keys()) if (this.partitions.partitionFor(groupId) === index) byGroup.delete(groupId)
      if (byGroup.size === 0) this.pendingTxnOffsets.delete(producerId)
    }
    return groups
  }

  private groupsOf(index: number): Group[] {
    return [...this.groups.values()].filter((group) => this.partitions.partitionFor(group.groupId) === index)
  }

  errorFor(groupId: string): number {
    return this.partitions.errorFor(groupId)
  }

  get loading(): boolean {
    return this.partitions.loading
  }

  private apply(key: Buffer, value: Buffer | null, recordOffset: bigint): void {
    const record = decodeOffsetsRecord(key, value)
    if (!record) return
    if (record.kind === 'offset') {
      const group = this.getOrCreate(record.group)
      const k = offsetKey(record.topic, record.partition)
      if (record.value === null) {
        group.offsets.delete(k)
        // A tombstone removes the pending transactional commits of its partition too (OffsetMetadataManager.replay):
        // a group deleted, or an offset removed, while a transaction's commit of it was pending stays so.
        this.dropPending(record.group, [k])
      } else {
        group.offsets.set(k, {
          offset: record.value.offset,
          leaderEpoch: record.value.leaderEpoch,
          metadata: record.value.metadata,
          commitTimestamp: record.value.commitTimestamp,
          recordOffset,
        })
      }
      return
    }
    if (record.value === null) {
      this.groups.delete(record.group)
      return
    }
    const group = this.getOrCreate(record.group)
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

  /** A transactional offset record met in a replay: held pending for its producer. */
  private applyPending(producerId: bigint, key: Buffer, value: Buffer | null, recordOffset: bigint): void {
    const record = decodeOffsetsRecord(key, value)
    if (record?.kind !== 'offset' || record.value === null) return
    const { offset, leaderEpoch, metadata, commitTimestamp } = record.value
    this.addPending(producerId, record.group, offsetKey(record.topic, record.partition), { offset, leaderEpoch, metadata, commitTimestamp, recordOffset })
  }

  /** Forgets the pending transactional commits of `groupId` for `keys` (offsetKeys), whichever producer's. */
  private dropPending(groupId: string, keys: readonly string[]): void {
    for (const [producerId, byGroup] of this.pendingTxnOffsets) {
      const offsets = byGroup.get(groupId)
      if (!offsets) continue
      for (const key of keys) offsets.delete(key)
      if (offsets.size === 0) byGroup.delete(groupId)
      if (byGroup.size === 0) this.pendingTxnOffsets.delete(producerId)
    }
  }

  /** The offsetKeys a pending transactional commit of `groupId` names. */
  private pendingKeys(groupId: string): string[] {
    const keys = new Set<string>()
    for (const byGroup of this.pendingTxnOffsets.values()) for (const key of byGroup.get(groupId)?.keys() ?? []) keys.add(key)
    return [...keys]
  }

  private addPending(producerId: bigint, groupId: string, key: string, committed: CommittedOffset): void {
    let byGroup = this.pendingTxnOffsets.get(producerId)
    if (!byGroup) this.pendingTxnOffsets.set(producerId, (byGroup = new Map()))
    let offsets = byGroup.get(groupId)
    if (!offsets) byGroup.set(groupId, (offsets = new Map()))
    offsets.set(key, committed)
  }

  /**
   * A COMMIT or ABORT marker of `producerId` was written to partition `partitionIndex` of __consumer_offsets
   * (GroupMetadataManager.handleTxnCompletion): its pending commits to groups of that partition are applied or dropped.
   */
  completeTransaction(partitionIndex: number, producerId: bigint, committed: boolean): void {
    const byGroup = this.pendingTxnOffsets.get(producerId)
    if (!byGroup) return
    for (const [groupId, offsets] of byGroup) {
      if (this.partitions.partitionFor(groupId) !== partitionIndex) continue
      byGroup.delete(groupId)
      if (!committed) continue
      const group = this.getOrCreate(groupId)
      for (const [key, offset] of offsets) {
        // A topic deleted since the commit was written had its offsets removed already. A commit written after this
        // one (a plain OffsetCommit while the transaction was open) stays: the newest record wins
        // (OffsetMetadataManager.replayEndTransactionMarker, GroupMetadata.completePendingTxnOffsetCommit).
        const current = group.offsets.get(key)
        if (this.topics.get(parseOffsetKey(key).topic) && (current === undefined || current.recordOffset < offset.recordOffset)) group.offsets.set(key, offset)
      }
    }
    if (byGroup.size === 0) this.pendingTxnOffsets.delete(producerId)
  }

  private hasPending(groupId: string, key: string): boolean {
    for (const byGroup of this.pendingTxnOffsets.values()) if (byGroup.get(groupId)?.has(key)) return true
    return false
  }

  get(groupId: string): Group | undefined {
    return this.groups.get(groupId)
  }

  getOrCreate(groupId: string): Group {
    let group = this.groups.get(groupId)
    if (!group) {
      group = new Group(groupId)
      this.groups.set(groupId, group)
    }
    return group
  }

  list(): Group[] {
    return [...this.groups.values()]
  }

  /** Creates __consumer_offsets on first use, compacted, as Kafka does. */
  ensureOffsetsTopic(): Promise<void> {
    return this.partitions.ensureTopic()
  }

  /**
   * Writes records to the group's partition of __consumer_offsets. Once that topic exists the records are queued
   * before this returns its promise, so writes keep the order of the calls (tombstones cannot overtake a commit).
   * A partition this node no longer coordinates is NOT_COORDINATOR (a KafkaError), and nothing is written.
   */
  private async append(groupId: string, records: LogRecord[], transaction?: TxnOffsetProducer, { awaitReplication = true } = {}): Promise<bigint> {
    const topic = this.topics.get(OFFSETS_TOPIC) ?? (await this.partitions.localTopic())
    const index = partitionForGroup(groupId, topic.partitions.length)
    const notHere = this.partitions.errorForPartition(index)
    if (notHere !== ErrorCode.NONE) throw new KafkaError(notHere, `group ${quote(groupId)} is not coordinated here`)
    const partition = topic.partitions[index]!
    const producer = transaction
      ? { producerId: transaction.producerId, producerEpoch: transaction.producerEpoch, flags: Attribute.transactional }
      : {}
    return this.partitions.append(partition, encodeRecordBatch(records.map((r) => ({ key: r.key, value: r.value })), producer), { awaitReplication })
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

  /**
   * Appends the group's metadata record. A refusal with a Kafka error (this node no longer leads the group's partition,
   * too few replicas in sync, a timeout) is what a coordinator that is moving away meets, and the member hears it as
   * NOT_COORDINATOR or its kin, and looks up the coordinator again: a warning (Kafka's GroupMetadataManager logs it at
   * debug). Any other failure is an error. Errors: the append's.
   */
  storeGroup(group: Group): Promise<void> {
    return this.append(group.groupId, [this.groupRecord(group)]).then(
      () => undefined,
      (error: Error) => {
        const line = `could not store group ${quote(group.groupId)}: ${error.message}`
        if (error instanceof KafkaError) this.log.warn(line)
        else this.log.error(line)
        throw error
      },
    )
  }

  async storeOffsets(group: Group, offsets: readonly OffsetCommitInput[], transaction?: TxnOffsetProducer): Promise<number[]> {
    const { groupId } = group
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
      committed: { offset: o.offset, leaderEpoch: o.leaderEpoch, metadata: o.metadata ?? '', commitTimestamp, recordOffset: -1n } satisfies CommittedOffset,
    }))
    try {
      const recordOffset = await this.append(groupId, values.map((v) => ({ key: offsetRecordKey(groupId, v.topic, v.partition), value: offsetValue(v.committed) })), transaction)
      for (const v of values) v.committed.recordOffset = recordOffset
    } catch (error) {
      if (error instanceof KafkaError) return codes.map((c) => (c === ErrorCode.NONE ? error.code : c))
      this.log.error(`could not store offsets of group ${quote(groupId)}: ${(error as Error).message}`)
      return codes.map((c) => (c === ErrorCode.NONE ? appendErrorCode(error) : c))
    }
    if (transaction) {
      for (const v of values) this.addPending(transaction.producerId, groupId, offsetKey(v.topic, v.partition), v.committed)
      return codes
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
  ): FetchedOffsets {
    const group = this.groups.get(groupId)
    if (wanted === null) {
      const byTopic = new Map<string, { partition: number; committed: CommittedOffset | null; pending: boolean }[]>()
      for (const [key, committed] of group?.offsets ?? []) {
        const { topic, partition } = parseOffsetKey(key)
        if (!byTopic.has(topic)) byTopic.set(topic, [])
        byTopic.get(topic)!.push({ partition, committed, pending: this.hasPending(groupId, key) })
      }
      return [...byTopic].map(([topic, partitions]) => ({ topic, partitions: partitions.sort((a, b) => a.partition - b.partition) }))
    }
    return wanted.map(({ topic, partitions }) => ({
      topic,
      partitions: partitions.map((partition) => ({
        partition,
        committed: group?.offsets.get(offsetKey(topic, partition)) ?? null,
        pending: this.hasPending(groupId, offsetKey(topic, partition)),
      })),
    }))
  }

  async deleteOffsets(group: Group, wanted: { topic: string; partitions: number[] }[], subscribed: ReadonlySet<string>): Promise<DeletedOffsets> {
    const { groupId } = group
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
    return results
  }

  /**
   * Deletes a group (DeleteGroups): it goes Dead and is forgotten at once, and its offsets and metadata are written
   * as tombstones.
   */
  async deleteGroup(group: Group): Promise<void> {
    const { state, stateTimestamp } = group
    group.transition(GroupState.Dead)
    this.groups.delete(group.groupId)
    // Pending transactional commits get tombstones too (OffsetMetadataManager.deleteAllOffsets), so a transaction
    // committed after the deletion does not bring the group back, live or in a replay.
    const pending = this.pendingKeys(group.groupId)
    const keys = [...new Set([...group.offsets.keys(), ...pending])]
    const tombstones = keys.map((key) => offsetTombstone(group.groupId, key))
    tombstones.push({ key: groupKey(group.groupId), value: null })
    try {
      await this.append(group.groupId, tombstones)
      this.dropPending(group.groupId, pending)
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
   * for expired offsets and deleted partitions: from memory at once, whatever becomes of their tombstones, which go to
   * the leader's log of the group's partition without waiting for its ISR (Kafka appends them with requiredAcks = 0).
   * So a deleted topic's offsets are gone even while a dead replica holds the partition's high watermark back (waiting
   * would fail the deletion, and keeping the offsets would start a topic created again under the name at them), and
   * the tombstones stay ordered before any later commit of the group. A group left Empty with no offsets (and no member
   * about to join) is forgotten, its metadata tombstoned too. Returns whether it was. Rejects when the tombstones
   * could not be appended (this node no longer leads the partition, storage refuses writes); memory has changed anyway.
   */
  private async removeOffsets(group: Group, keys: readonly string[]): Promise<{ forgotten: boolean }> {
    const tombstones = keys.map((key) => offsetTombstone(group.groupId, key))
    for (const key of keys) group.offsets.delete(key)
    this.dropPending(group.groupId, keys)
    // A transaction still holding commits for the group will bring it back when it commits: not forgotten meanwhile.
    const forgotten = group.state === GroupState.Empty && group.pendingMembers.size === 0 && group.offsets.size === 0 && this.pendingKeys(group.groupId).length === 0
    if (forgotten) {
      group.transition(GroupState.Dead)
      this.groups.delete(group.groupId)
      tombstones.push({ key: groupKey(group.groupId), value: null })
    }
    await this.append(group.groupId, tombstones, undefined, { awaitReplication: false })
    return { forgotten }
  }

  /**
   * A topic was deleted (GroupCoordinator.onPartitionsDeleted): every group's offsets for it go. The topic has left
   * the registry already, so no new commit for it can start; one being written is not applied (storeOffsets). A group
   * whose tombstones could not be written is logged and does not hold the topic's deletion back.
   */
  private removeOffsetsOf(topic: Topic): Promise<void> {
    return this.removeOffsetsWhere(() => true, (name) => name === topic.name)
  }

  /**
   * This node took over partition `index` of __consumer_offsets (a cluster node, now its leader) and has loaded it:
   * the offsets its groups hold for topics that no longer exist go. A topic deleted while no node held these groups
   * (their coordinator dead, or the partition moving) left them in the log, and a topic created again under its name
   * would be read from them. Commits are only taken for existing topics, so an offset of a topic this node does not
   * have (it loads once it has applied the image that made it the leader) is one of a deleted topic.
   */
  removeOffsetsOfDeletedTopics(index: number): Promise<void> {
    return this.removeOffsetsWhere((groupId) => this.partitions.partitionFor(groupId) === index, (name) => this.topics.get(name) === undefined)
  }

  /**
   * Removes the offsets of the deleted topics `deleted` names from the groups `inGroups` takes, from memory at once
   * (in this turn) and with tombstones; a group left with neither members nor offsets goes too. Pending
   * transactional commits of those topics go the same way (GroupMetadata.removeOffsets drops them from
   * pendingTransactionalOffsetCommits), those of a group with no committed offset for the topic, or with no group
   * loaded yet, included: a transaction committed later must not apply them to a topic created again under the name,
   * and their tombstones, after them in the log, keep a replay from doing so.
   */
  private async removeOffsetsWhere(inGroups: (groupId: string) => boolean, deleted: (topic: string) => boolean): Promise<void> {
    const groupIds = new Set([...this.groups.keys(), ...[...this.pendingTxnOffsets.values()].flatMap((byGroup) => [...byGroup.keys()])])
    await Promise.all(
      [...groupIds].filter(inGroups).map(async (groupId) => {
        const group = this.groups.get(groupId)
        const committed = [...(group?.offsets.keys() ?? [])].filter((key) => deleted(parseOffsetKey(key).topic))
        const pending = this.pendingKeys(groupId).filter((key) => deleted(parseOffsetKey(key).topic) && !committed.includes(key))
        if (committed.length + pending.length === 0) return
        const topics = [...new Set([...committed, ...pending].map((key) => quote(parseOffsetKey(key).topic)))]
        const what = [committed.length > 0 ? counted(committed.length, 'committed offset') : null, pending.length > 0 ? counted(pending.length, 'pending transactional offset') : null]
        const removed = `group ${quote(groupId)}: ${what.filter((part) => part !== null).join(' and ')} of deleted ${topics.length === 1 ? 'topic' : 'topics'} ${topics.join(', ')} removed`
        try {
          if (group) {
            const { forgotten } = await this.removeOffsets(group, [...committed, ...pending])
            this.log.info(removed + (forgotten ? '; the group, left with no members and no offsets, is gone' : ''))
          } else {
            this.dropPending(groupId, pending)
            await this.append(groupId, pending.map((key) => offsetTombstone(groupId, key)), undefined, { awaitReplication: false })
            this.log.info(removed)
          }
        } catch (error) {
          this.log.error(`${removed} from memory, but their tombstones could not be written: ${(error as Error).message}`)
        }
      }),
    )
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
        const subscribed = group.subscribedTopics()
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
          !forgotten
            ? `group ${quote(group.groupId)}: ${counted(expired.length, 'offset')} expired after offsets.retention.minutes`
            : expired.length > 0
              ? `group ${quote(group.groupId)} expired after offsets.retention.minutes`
              : `group ${quote(group.groupId)}, left with no members and no offsets, is gone`,
        )
      } catch (error) {
        // Storage refuses writes (logged once by the node): every other group would be refused too.
        if (error instanceof StorageError) return
        this.log.error(`offset expiry for group ${quote(group.groupId)} failed: ${(error as Error).message}`)
      }
    }
  }
}

function offsetTombstone(groupId: string, key: string): LogRecord {
  const { topic, partition } = parseOffsetKey(key)
  return { key: offsetRecordKey(groupId, topic, partition), value: null }
}

