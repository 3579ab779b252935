/**
 * Topic creation and deletion on a cluster node go to the active controller (KIP-590, Kafka's ForwardingManager):
 * the node that is the active controller runs them itself; any other node forwards them, one topic per request, to
 * the controller listener of the leader its quorum member knows, where they run without being forwarded again. A
 * change is answered once committed and once this node's own image shows it, so the client's next Metadata here
 * sees it. With no leader known, or the leader unreachable, the answer is NOT_CONTROLLER, which clients retry.
 */
import { ErrorCode } from '../../protocol/errors.js'
import { ZERO_UUID } from '../../protocol/constants.js'
import { createTopics, type CreateTopicsResponse } from '../../protocol/messages/create-topics.js'
import { deleteTopics, type DeleteTopicsResponse } from '../../protocol/messages/delete-topics.js'
import type { ApiSpec } from '../../protocol/schema.js'
import { COMMIT_TIMEOUT_MS, type QuorumRunner } from './quorum-runner.js'
import type { CreateTopicRequest } from './controller/controller.js'

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
      topics: [{ name: request.name, numPartitions: request.numPartitions, replicationFactor: request.replicationFactor, assignments: [], configs: Object.entries(request.configs ?? {}).map(([name, value]) => ({ name, value })) }],
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
