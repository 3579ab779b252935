/**
 * Topic changes on a cluster node go to the active controller (KIP-590, Kafka's ForwardingManager): creation,
 * deletion, new partitions and topic configs. The node that is the active controller runs them itself; any other
 * node forwards them, one topic per request, to the controller listener of the leader its quorum member knows, where
 * they run without being forwarded again. A change is answered once committed and once this node's own image shows
 * it, so the client's next Metadata or DescribeConfigs here sees it. A forwarded change follows the quorum to the next
 * leader it elects (QuorumRunner.requestActiveController); with no leader known, or none reached, within its 6 s the
 * answer is NOT_CONTROLLER, which clients retry.
 */
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import { ZERO_UUID } from '../../protocol/constants.js'
import { createTopics, type CreateTopicsResponse } from '../../protocol/messages/create-topics.js'
import { deleteTopics, type DeleteTopicsResponse } from '../../protocol/messages/delete-topics.js'
import type { ApiSpec } from '../../protocol/schema.js'
import { COMMIT_TIMEOUT_MS, type QuorumRunner } from './quorum-runner.js'
import { sameConfigs, topicConfigs } from './metadata/image.js'
import { createPartitions, type CreatePartitionsResponse } from '../../protocol/messages/create-partitions.js'
import type { AlterTopicConfigsRequest, CreatePartitionsRequest, CreateTopicRequest } from './controller/controller.js'

/** What became of one topic's change: Kafka's error code and message, and the topic's id (ZERO_UUID on failure). */
export interface TopicChangeResult {
  readonly errorCode: number
  readonly errorMessage: string | null
  readonly topicId: string
}

/** Whether a change runs on this node's controller (`forward: false`: it arrived on the controller listener). */
export interface TopicChangeOptions {
  readonly forward: boolean
}

/** Creates one topic at the active controller. Errors as `QuorumController.createTopic`, and NOT_CONTROLLER. */
export async function createTopicAtController(quorum: QuorumRunner, request: CreateTopicRequest, options: TopicChangeOptions): Promise<TopicChangeResult> {
  let result: TopicChangeResult
  if (!options.forward || quorum.leaderId === quorum.nodeId) {
    const created = await quorum.createTopic(request)
    result = created.ok ? done(created.topicId) : failed(created.errorCode, created.message)
  } else {
    const body = {
      topics: [{ name: request.name, numPartitions: request.numPartitions, replicationFactor: request.replicationFactor, assignments: (request.assignments ?? []).map((brokerIds, partitionIndex) => ({ partitionIndex, brokerIds: [...brokerIds] })), configs: Object.entries(request.configs ?? {}).map(([name, value]) => ({ name, value })) }],
      timeoutMs: COMMIT_TIMEOUT_MS,
      validateOnly: false,
    }
    result = await forward(quorum, async (send) => {
      const answer = (await send<CreateTopicsResponse>(createTopics, 7, body)).topics[0]
      if (!answer) return failed(ErrorCode.UNKNOWN_SERVER_ERROR, 'the controller answered no topic')
      return answer.errorCode === ErrorCode.NONE ? done(answer.topicId ?? ZERO_UUID) : failed(answer.errorCode, answer.errorMessage ?? null)
    })
  }
  if (result.errorCode === ErrorCode.NONE) await quorum.imageHolds((image) => image.topicsById.has(result.topicId), COMMIT_TIMEOUT_MS)
  return result
}

/** Deletes one topic at the active controller. Errors: UNKNOWN_TOPIC_OR_PARTITION, NOT_CONTROLLER. */
export async function deleteTopicAtController(quorum: QuorumRunner, name: string, options: TopicChangeOptions): Promise<TopicChangeResult> {
  let result: TopicChangeResult
  if (!options.forward || quorum.leaderId === quorum.nodeId) {
    const deleted = await quorum.deleteTopic(name)
    result = deleted.ok ? done(deleted.topicId) : failed(deleted.errorCode, deleted.message)
  } else {
    const body = { topics: [{ name, topicId: ZERO_UUID }], topicNames: [name], timeoutMs: COMMIT_TIMEOUT_MS }
    result = await forward(quorum, async (send) => {
      const answer = (await send<DeleteTopicsResponse>(deleteTopics, 6, body)).responses[0]
      if (!answer) return failed(ErrorCode.UNKNOWN_SERVER_ERROR, 'the controller answered no topic')
      return answer.errorCode === ErrorCode.NONE ? done(answer.topicId ?? ZERO_UUID) : failed(answer.errorCode, answer.errorMessage ?? null)
    })
  }
  if (result.errorCode === ErrorCode.NONE) await quorum.imageHolds((image) => !image.topicsById.has(result.topicId), COMMIT_TIMEOUT_MS)
  return result
}

/** What became of a change to an existing topic: Kafka's error code and message. */
export type ChangeResult = Pick<TopicChangeResult, 'errorCode' | 'errorMessage'>

/**
 * Adds partitions to one topic at the active controller (forwarded as CreatePartitions v3). Errors as
 * `QuorumController.createPartitions`, and NOT_CONTROLLER.
 */
export async function createPartitionsAtController(quorum: QuorumRunner, request: CreatePartitionsRequest, options: TopicChangeOptions): Promise<ChangeResult> {
  let result: ChangeResult
  if (!options.forward || quorum.leaderId === quorum.nodeId) {
    const created = await quorum.createPartitions(request)
    result = created.ok ? done(ZERO_UUID) : failed(created.errorCode, created.message)
  } else {
    const body = {
      topics: [{ name: request.name, count: request.count, assignments: request.assignments?.map((brokerIds) => ({ brokerIds: [...brokerIds] })) ?? null }],
      timeoutMs: COMMIT_TIMEOUT_MS,
      validateOnly: request.validateOnly,
    }
    result = await forward(quorum, async (send) => {
      const answer = (await send<CreatePartitionsResponse>(createPartitions, 3, body)).results[0]
      if (!answer) return failed(ErrorCode.UNKNOWN_SERVER_ERROR, 'the controller answered no topic')
      return answer.errorCode === ErrorCode.NONE ? done(ZERO_UUID) : failed(answer.errorCode, answer.errorMessage ?? null)
    })
  }
  if (result.errorCode === ErrorCode.NONE && !request.validateOnly) {
    await quorum.imageHolds((image) => (image.topic(request.name)?.partitions.size ?? 0) >= request.count, COMMIT_TIMEOUT_MS)
  }
  return { errorCode: result.errorCode, errorMessage: result.errorMessage }
}

/** The request a node forwards to the active controller for a change it does not run itself, and how to read its answer. */
export interface ForwardedRequest<Res> {
  readonly api: ApiSpec
  readonly version: number
  readonly body: unknown
  readonly result: (response: Res) => ChangeResult
}

/**
 * Changes one topic's configs at the active controller: run by this node's controller, or sent to the active one as
 * `forwarded` (the client's AlterConfigs or IncrementalAlterConfigs, for this one topic). `request.alter` is first
 * run on this node's image, so a change it refuses is answered here. The answer waits until this node's image holds
 * the overrides the change made (when forwarded, the ones it makes of this node's image: a concurrent change of the
 * same topic through another node can make that wait last the commit timeout, and the answer is the same). Errors as
 * `QuorumController.alterTopicConfigs`, and NOT_CONTROLLER.
 */
export async function alterTopicConfigsAtController<Res>(
  quorum: QuorumRunner,
  request: AlterTopicConfigsRequest,
  forwarded: ForwardedRequest<Res>,
  options: TopicChangeOptions,
): Promise<ChangeResult> {
  let expected: Readonly<Record<string, string>>
  try {
    expected = request.alter(topicConfigs(quorum.controller.image, request.name))
  } catch (error) {
    if (error instanceof KafkaError) return { errorCode: error.code, errorMessage: error.message }
    throw error
  }
  let result: ChangeResult
  if (!options.forward || quorum.leaderId === quorum.nodeId) {
    const altered = await quorum.alterTopicConfigs(request)
    if (altered.ok) expected = altered.overrides
    result = altered.ok ? done(ZERO_UUID) : failed(altered.errorCode, altered.message)
  } else {
    result = await forward(quorum, async (send) => ({ ...forwarded.result(await send<Res>(forwarded.api, forwarded.version, forwarded.body)), topicId: ZERO_UUID }))
  }
  if (result.errorCode === ErrorCode.NONE && !request.validateOnly) {
    await quorum.imageHolds((image) => sameConfigs(topicConfigs(image, request.name), expected), COMMIT_TIMEOUT_MS)
  }
  return { errorCode: result.errorCode, errorMessage: result.errorMessage }
}

type Send = <Res>(api: ApiSpec, version: number, body: unknown) => Promise<Res>

async function forward(quorum: QuorumRunner, call: (send: Send) => Promise<TopicChangeResult>): Promise<TopicChangeResult> {
  try {
    return await call((api, version, body) => quorum.requestActiveController(api, version, body))
  } catch (error) {
    return failed(ErrorCode.NOT_CONTROLLER, (error as Error).message)
  }
}

function done(topicId: string): TopicChangeResult {
  return { errorCode: ErrorCode.NONE, errorMessage: null, topicId }
}

function failed(errorCode: number, errorMessage: string | null): TopicChangeResult {
  return { errorCode, errorMessage, topicId: ZERO_UUID }
}
