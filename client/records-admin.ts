/**
 * A topic's records from outside: what kafka-get-offsets.sh (GetOffsetShell) and kafka-delete-records.sh do through
 * Admin.listOffsets and Admin.deleteRecords. Both go to each partition's leader through `ClusterClient.atLeaders`,
 * which rides out a leader's loss; a partition's own error is reported with its answer, not thrown, as those tools
 * print it per partition.
 */
import { checkTopicError, type ClusterClient } from './cluster-client.js'
import { errorText, type KafkaClient } from './kafka-client.js'
import { NODE_LOSS } from './retry.js'
import { askLeaders } from './admin.js'
import { ErrorCode } from '../protocol/errors.js'
import { IsolationLevel } from '../protocol/constants.js'
import { deleteRecords, type DeleteRecordsRequest, type DeleteRecordsResponse, type DeleteRecordsResponseDeleteRecordsPartitionResult } from '../protocol/messages/delete-records.js'

/** How long a leader may take to have every replica's log start moved (DeleteRecords' timeoutMs); below the client's 30 s. */
const DELETE_TIMEOUT_MS = 15_000

/** One partition's answer: `value` (an offset, a low watermark), or why it has none, in words (`<NAME> (<message>)`). */
export type PartitionAnswer = { topic: string; partition: number; value: bigint } | { topic: string; partition: number; error: string }

/**
 * ListOffsets at `timestamp` (OffsetSpec: -1 latest, -2 earliest, -3 max timestamp, -4 earliest local, -5 latest
 * tiered; otherwise ms since the epoch: the first offset whose record timestamp is at or after it) for the partitions
 * selected (`topic` null: every topic, internal ones unless `excludeInternal`), read_uncommitted, as GetOffsetShell
 * asks Admin.listOffsets. Sorted by topic then partition; a partition its leader has no offset for (-1: no record at or
 * after the time) is left out, as the tool leaves it out. Errors thrown: the topic's Metadata error (it does not
 * exist); `could not match any topic-partitions` when the selection names none that exist (GetOffsetShell's words).
 */
export async function offsetsAt(
  cluster: ClusterClient,
  selection: { topic: string | null; partitions: readonly number[] | null; excludeInternal: boolean },
  timestamp: bigint,
): Promise<PartitionAnswer[]> {
  const metadata = await cluster.metadata(selection.topic === null ? null : [selection.topic], { allowAutoTopicCreation: false })
  const answers: PartitionAnswer[] = []
  const topics = metadata.topics
    .filter((t) => t.name !== null && !(selection.excludeInternal && t.isInternal))
    .sort((a, b) => (a.name! < b.name! ? -1 : a.name! > b.name! ? 1 : 0))
  for (const found of topics) {
    checkTopicError(found)
    const indexes = found.partitions.map((p) => p.partitionIndex).filter((p) => selection.partitions?.includes(p) ?? true).sort((a, b) => a - b)
    if (indexes.length === 0) continue
    const offsets = await askLeaders(cluster, found.name!, indexes, { timestamp, isolationLevel: IsolationLevel.READ_UNCOMMITTED })
    for (const partition of indexes) {
      const offset = offsets.get(partition)!
      if ('unavailable' in offset) answers.push({ topic: found.name!, partition, error: offset.unavailable })
      else if (offset.offset >= 0n) answers.push({ topic: found.name!, partition, value: offset.offset })
    }
  }
  if (answers.length === 0 && !topics.some((t) => t.partitions.some((p) => selection.partitions?.includes(p.partitionIndex) ?? true))) {
    throw new Error('could not match any topic-partitions with the specified filters')
  }
  return answers
}

/**
 * DeleteRecords (v0-2) at each partition's leader, as kafka-delete-records.sh asks Admin.deleteRecords: for each topic
 * of `wanted`, every record of partition p below its offset goes (-1: below the high watermark, Kafka's
 * RecordsToDelete.beforeOffset(-1)), and the answer is the partition's new log start (its low watermark, which on a
 * cluster every live replica has reached). A topic's value is an offset by partition, or one offset for every
 * partition Metadata lists. Every topic and partition is checked against Metadata before anything is deleted, so a
 * request that names one that does not exist deletes nothing: thrown are the topic's Metadata error
 * (UNKNOWN_TOPIC_OR_PARTITION) and `topic 't' has no partition 9`. A leader lost meanwhile, or one answering a
 * retriable error, is asked again as NODE_LOSS says; a partition's own error is its answer: OFFSET_OUT_OF_RANGE past
 * the high watermark, POLICY_VIOLATION on a compacted topic, INVALID_TOPIC_EXCEPTION on an internal one. Answers by
 * topic, then partition.
 */
export async function deleteRecordsBefore(cluster: ClusterClient, wanted: ReadonlyMap<string, ReadonlyMap<number, bigint> | bigint>): Promise<PartitionAnswer[]> {
  const names = [...wanted.keys()].sort()
  const described = await cluster.topicsNamed(names, 'fail')
  const plans = names.map((topic) => {
    const found = described.get(topic)!
    const offsets = wanted.get(topic)!
    const before = typeof offsets === 'bigint' ? new Map(found.partitions.map((p) => [p.partitionIndex, offsets])) : offsets
    for (const partition of before.keys()) {
      if (!found.partitions.some((p) => p.partitionIndex === partition)) throw new Error(`topic '${topic}' has no partition ${partition}`)
    }
    return { topic, before }
  })
  const answers: PartitionAnswer[] = []
  for (const { topic, before } of plans) answers.push(...(await deleteRecordsOf(cluster, topic, before)))
  return answers
}

/** DeleteRecords for the partitions of one topic, checked already, each at its leader. */
async function deleteRecordsOf(cluster: ClusterClient, topic: string, before: ReadonlyMap<number, bigint>): Promise<PartitionAnswer[]> {
  const partitions = [...before.keys()].sort((a, b) => a - b)
  const outcomes = await cluster.atLeaders(topic, partitions, (leader, indexes) => deleteRecordsAt(leader, topic, indexes, before), {
    policy: NODE_LOSS,
    errorCode: (answer) => answer.errorCode,
    unreachable: 'wait',
  })
  return partitions.map((partition): PartitionAnswer => {
    const outcome = outcomes.get(partition)!
    if ('unavailable' in outcome) return { topic, partition, error: outcome.unavailable }
    if (outcome.answer.errorCode !== ErrorCode.NONE) return { topic, partition, error: errorText(outcome.answer.errorCode) }
    return { topic, partition, value: outcome.answer.lowWatermark }
  })
}

/** One DeleteRecords request at a leader for `partitions` of `topic`: its answer by partition index. */
async function deleteRecordsAt(
  client: KafkaClient,
  topic: string,
  partitions: readonly number[],
  before: ReadonlyMap<number, bigint>,
): Promise<Map<number, DeleteRecordsResponseDeleteRecordsPartitionResult>> {
  const response = await client.request<DeleteRecordsRequest, DeleteRecordsResponse>(deleteRecords, client.version(deleteRecords, '0-2'), {
    topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, offset: before.get(partitionIndex)! })) }],
    timeoutMs: DELETE_TIMEOUT_MS,
  })
  return new Map(response.topics.flatMap((t) => t.partitions).map((p) => [p.partitionIndex, p]))
}
