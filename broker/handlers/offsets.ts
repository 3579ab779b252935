/**
 * Committed offsets: OffsetCommit v0-9, OffsetFetch v0-9, OffsetDelete v0.
 *
 * Behaviour
 * - OffsetCommit: a member of the current generation commits (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
 *   FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS otherwise); generation -1 without a member is a standalone commit,
 *   allowed while the group has no members (v0 is always standalone). Unknown topics or partitions are
 *   UNKNOWN_TOPIC_OR_PARTITION, metadata over offset.metadata.max.bytes OFFSET_METADATA_TOO_LARGE, per partition.
 *   The empty group id is accepted, as Kafka keeps it for old consumers' commits (GroupCoordinatorService.commitOffsets
 *   and fetchOffsets refuse only a null one); JoinGroup refuses it, so it only ever holds standalone commits.
 *   The answer goes out once the commit is written to __consumer_offsets.
 * - OffsetFetch: -1 (with metadata "" and leader epoch -1) for a partition without an offset, as Kafka answers, and
 *   for an unknown group; a null topic list (v2+) means every partition the group has an offset for. With
 *   requireStable (v7+, KIP-447) a partition with a transactional commit awaiting its marker is UNSTABLE_OFFSET_COMMIT.
 * - OffsetDelete: GROUP_ID_NOT_FOUND for an unknown group, GROUP_SUBSCRIBED_TO_TOPIC for topics members consume,
 *   INVALID_GROUP_ID for the empty group id (GroupCoordinatorService.deleteOffsets), whose commits it keeps.
 * - A group this node does not coordinate (a cluster node) is NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS while its
 *   partition of __consumer_offsets loads: per partition for OffsetCommit and OffsetFetch v0-1, per group for
 *   OffsetFetch v8+, for the whole answer otherwise.
 * - Storage failures: a commit or delete the node cannot write is NOT_COORDINATOR (Kafka's translation of
 *   KAFKA_STORAGE_ERROR, metadata-manager.ts appendErrorCode); COORDINATOR_NOT_AVAILABLE while __consumer_offsets cannot
 *   be created. OffsetFetch answers from memory, so it goes on.
 *
 * Version notes
 * - v2-4 of OffsetCommit carry a retention time, which Kafka itself has ignored since 2.1 (KIP-211); so does Brook.
 * - OffsetFetch v8+ (KIP-709) asks for several groups at once, each with its own error code.
 */
import { offsetCommit, type OffsetCommitRequest, type OffsetCommitResponse } from '../../protocol/messages/offset-commit.js'
import { offsetFetch, type OffsetFetchRequest, type OffsetFetchResponse } from '../../protocol/messages/offset-fetch.js'
import { offsetDelete, type OffsetDeleteRequest, type OffsetDeleteResponse } from '../../protocol/messages/offset-delete.js'
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import { defineHandler, type BrokerServices } from '../handler.js'
import { appendErrorCode, offsetsToCommit } from '../group/metadata-manager.js'
import { StorageError } from '../../storage/log-store.js'

export const offsetCommitHandler = defineHandler<OffsetCommitRequest, OffsetCommitResponse>(
  offsetCommit,
  '0-9',
  async (request, { services, apiVersion }) => {
    const offsets = offsetsToCommit(request.topics)
    const generationId = apiVersion === 0 ? -1 : request.generationIdOrMemberEpoch
    const identity = { memberId: apiVersion === 0 ? '' : request.memberId, groupInstanceId: request.groupInstanceId }
    let codes: number[]
    try {
      codes = await services.groups.commitOffsets(request.groupId, generationId, identity, offsets, { apiVersion })
    } catch (error) {
      // Failed writes are answered inside commitOffsets; only creating __consumer_offsets throws.
      if (!(error instanceof StorageError) && !(error instanceof KafkaError)) throw error
      codes = offsets.map(() => ErrorCode.COORDINATOR_NOT_AVAILABLE)
    }
    let i = 0
    return {
      throttleTimeMs: 0,
      topics: request.topics.map((t) => ({
        name: t.name,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: codes[i++]! })),
      })),
    }
  },
)

/** A group's committed offsets, as OffsetFetch answers them. */
function fetchGroup(services: BrokerServices, groupId: string, topics: { name: string; partitionIndexes: number[] }[] | null, requireStable: boolean) {
  const wanted = topics === null ? null : topics.map((t) => ({ topic: t.name, partitions: t.partitionIndexes }))
  return services.groups.fetchOffsets(groupId, wanted).map(({ topic, partitions }) => ({
    name: topic,
    partitions: partitions.map(({ partition, committed, pending }) =>
      requireStable && pending
        ? { partitionIndex: partition, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode: ErrorCode.UNSTABLE_OFFSET_COMMIT }
        : {
            partitionIndex: partition,
            committedOffset: committed?.offset ?? -1n,
            committedLeaderEpoch: committed?.leaderEpoch ?? -1,
            metadata: committed?.metadata ?? '',
            errorCode: ErrorCode.NONE,
          },
    ),
  }))
}

export const offsetFetchHandler = defineHandler<OffsetFetchRequest, OffsetFetchResponse>(
  offsetFetch,
  '0-9',
  (request, { services, apiVersion }) => {
    if (apiVersion >= 8) {
      return {
        throttleTimeMs: 0,
        groups: request.groups.map((g) => {
          const errorCode = services.groups.coordinatorError(g.groupId)
          return { groupId: g.groupId, topics: errorCode === ErrorCode.NONE ? fetchGroup(services, g.groupId, g.topics, request.requireStable) : [], errorCode }
        }),
      }
    }
    const errorCode = services.groups.coordinatorError(request.groupId)
    if (errorCode !== ErrorCode.NONE) {
      // Before v2 the answer has no top-level error: each partition asked for carries it (OffsetFetchResponse.json).
      const topics =
        apiVersion >= 2
          ? []
          : (request.topics ?? []).map((t) => ({
              name: t.name,
              partitions: t.partitionIndexes.map((partitionIndex) => ({ partitionIndex, committedOffset: -1n, committedLeaderEpoch: -1, metadata: '', errorCode })),
            }))
      return { throttleTimeMs: 0, errorCode, topics }
    }
    return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, topics: fetchGroup(services, request.groupId, request.topics, apiVersion >= 7 && request.requireStable) }
  },
)

export const offsetDeleteHandler = defineHandler<OffsetDeleteRequest, OffsetDeleteResponse>(
  offsetDelete,
  '0',
  async (request, { services }) => {
    const wanted = request.topics.map((t) => ({ topic: t.name, partitions: t.partitions.map((p) => p.partitionIndex) }))
    let result: Awaited<ReturnType<typeof services.groups.deleteOffsets>>
    try {
      result = await services.groups.deleteOffsets(request.groupId, wanted)
    } catch (error) {
      if (!(error instanceof StorageError) && !(error instanceof KafkaError)) throw error
      result = { errorCode: appendErrorCode(error), results: [] }
    }
    return {
      errorCode: result.errorCode,
      throttleTimeMs: 0,
      topics: result.results.map((t) => ({
        name: t.topic,
        partitions: t.partitions.map((p) => ({ partitionIndex: p.partition, errorCode: p.errorCode })),
      })),
    }
  },
)
