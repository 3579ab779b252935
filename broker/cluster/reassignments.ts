/**
 * AlterPartitionReassignments (45) and ListPartitionReassignments (46) on a cluster node (KIP-455). A reassignment
 * goes to the active controller as Kafka's brokers forward it (KIP-590): the node whose quorum member is the active
 * controller runs it, any other node forwards it as AlterPartitionReassignments v0 to the controller listener of the
 * leader its member knows, where it runs without being forwarded again. It is answered once committed and once this
 * node's image shows it, so a ListPartitionReassignments or Metadata here right after sees it (the request's
 * timeoutMs is not waited for beyond the controller's commit timeout). A forwarded request follows the quorum to the
 * next leader it elects for up to 60 s (QuorumRunner.requestActiveController, CONTROLLER_CHANNELS.forwarding); with
 * no controller known, or none reached or answering, by then, the answer and every partition asked are
 * REQUEST_TIMED_OUT, as Kafka's AlterPartitionReassignmentsRequest.getErrorResponse answers a forwarding timeout.
 * The listing is read from this node's image.
 */
import { ErrorCode } from '../../protocol/errors.js'
import { quote } from '../quote.js'
import { alterPartitionReassignments, type AlterPartitionReassignmentsResponse } from '../../protocol/messages/alter-partition-reassignments.js'
import { COMMIT_TIMEOUT_MS, controllerRequestFailure, type QuorumRunner } from './quorum-runner.js'
import { reassigning, type MetadataImage } from './metadata/image.js'
import { groupBy } from '../group-by.js'
import type { PartitionReassignmentRequest, ReassignmentResult } from './controller/controller.js'

/** The answer: a top-level error code and message (NONE unless the controller could not be asked) and each partition's result. */
export interface ReassignmentsAnswer {
  readonly errorCode: number
  readonly errorMessage: string | null
  readonly results: readonly ReassignmentResult[]
}

/**
 * Runs `partitions` (each named once: `namedOnce`) at the active controller (`forward: false`: the request arrived on
 * this node's controller listener).
 */
export async function reassignAtController(
  quorum: QuorumRunner,
  partitions: readonly PartitionReassignmentRequest[],
  options: { forward: boolean },
): Promise<ReassignmentsAnswer> {
  let answer: ReassignmentsAnswer
  if (!options.forward || quorum.leaderId === quorum.nodeId) {
    const done = await quorum.alterPartitionReassignments({ partitions })
    answer = done.ok ? { errorCode: ErrorCode.NONE, errorMessage: null, results: done.results } : reassignmentsFailed(partitions, done.errorCode, done.message)
  } else {
    const body = {
      timeoutMs: COMMIT_TIMEOUT_MS,
      topics: [...groupBy(partitions, (asked) => asked.topic)].map(([name, asked]) => ({
        name,
        partitions: asked.map(({ partitionIndex, replicas }) => ({ partitionIndex, replicas: replicas === null ? null : [...replicas] })),
      })),
    }
    try {
      const response = await quorum.requestActiveController<AlterPartitionReassignmentsResponse>(alterPartitionReassignments, 0, body, { channel: 'forwarding' })
      answer = {
        errorCode: response.errorCode,
        errorMessage: response.errorMessage,
        results: response.responses.flatMap(({ name, partitions: answered }) =>
          answered.map(({ partitionIndex, errorCode, errorMessage }) => ({ topic: name, partitionIndex, errorCode, errorMessage })),
        ),
      }
    } catch (error) {
      const { errorCode, errorMessage } = controllerRequestFailure(error)
      return reassignmentsFailed(partitions, errorCode, errorMessage)
    }
  }
  // Answered once this node's image shows every change the controller took (a later change may have replaced one).
  const taken = new Set(answer.results.filter((result) => result.errorCode === ErrorCode.NONE).map((result) => `${result.topic}/${result.partitionIndex}`))
  const expected = partitions.filter((asked) => taken.has(`${asked.topic}/${asked.partitionIndex}`))
  if (expected.length > 0) await quorum.imageHolds((image) => expected.every((asked) => shows(image, asked)), COMMIT_TIMEOUT_MS)
  return answer
}

/** Whether `image` shows `asked` under way or done: the target's replicas in place (or, for a cancel, none under way). */
function shows(image: MetadataImage, asked: PartitionReassignmentRequest): boolean {
  const partition = image.topic(asked.topic)?.partitions.get(asked.partitionIndex)
  if (!partition) return true
  if (asked.replicas === null) return !reassigning(partition)
  const target = partition.replicas.filter((id) => !partition.removingReplicas.includes(id))
  return target.length === asked.replicas.length && asked.replicas.every((id, i) => target[i] === id)
}

/** `errorCode` for the request and for every partition it names. */
function reassignmentsFailed(partitions: readonly PartitionReassignmentRequest[], errorCode: number, errorMessage: string): ReassignmentsAnswer {
  return { errorCode, errorMessage, results: partitions.map(({ topic, partitionIndex }) => ({ topic, partitionIndex, errorCode, errorMessage })) }
}

/** `partitions` with each partition once (its first entry): a partition named twice is answered once, as Kafka does. */
export function namedOnce(partitions: readonly PartitionReassignmentRequest[]): PartitionReassignmentRequest[] {
  const seen = new Set<string>()
  return partitions.filter(({ topic, partitionIndex }) => !seen.has(`${topic}/${partitionIndex}`) && seen.add(`${topic}/${partitionIndex}`))
}

/**
 * The reassignments under way in `image` (Kafka's ReplicationControlManager.listPartitionReassignments): of the
 * partitions `topics` names, or of every partition when it is null. A topic it names that does not exist is
 * UNKNOWN_TOPIC_OR_PARTITION for the whole answer; a partition index it does not have is left out.
 */
export function ongoingReassignments(
  image: MetadataImage,
  topics: readonly { readonly name: string; readonly partitionIndexes: readonly number[] }[] | null,
): { errorCode: number; errorMessage: string | null; topics: { name: string; partitions: { partitionIndex: number; replicas: number[]; addingReplicas: number[]; removingReplicas: number[] }[] }[] } {
  const asked = topics ?? [...image.topicsById.values()].map((topic) => ({ name: topic.name, partitionIndexes: [...topic.partitions.keys()] }))
  const missing = asked.find(({ name }) => !image.topic(name))
  if (missing) return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, errorMessage: `topic ${quote(missing.name)} does not exist`, topics: [] }
  const answer = []
  for (const { name, partitionIndexes } of asked) {
    const topic = image.topic(name)!
    const partitions = []
    for (const partitionIndex of new Set(partitionIndexes)) {
      const partition = topic.partitions.get(partitionIndex)
      if (!partition || !reassigning(partition)) continue
      partitions.push({ partitionIndex, replicas: [...partition.replicas], addingReplicas: [...partition.addingReplicas], removingReplicas: [...partition.removingReplicas] })
    }
    if (partitions.length > 0) answer.push({ name, partitions })
  }
  return { errorCode: ErrorCode.NONE, errorMessage: null, topics: answer }
}
