/**
 * Topic changes on a cluster node go to the active controller (KIP-590, Kafka's ForwardingManager): creation,
 * deletion, new partitions and topic configs. The node that is the active controller runs them itself; any other
 * node forwards them, one topic per request, to the controller listener of the leader its quorum member knows, where
 * they run without being forwarded again. A change is answered once committed and once this node's own image shows
 * it, so the client's next Metadata or DescribeConfigs here sees it. A forwarded change follows the quorum to the next
 * leader it elects (QuorumRunner.requestActiveController) for up to 60 s from its first send, as Kafka's forwarding
 * channel does (CONTROLLER_CHANNELS.forwarding); with no controller known, or none reached or answering, by then, the
 * topic is answered REQUEST_TIMED_OUT, as the getErrorResponse of Kafka's CreateTopicsRequest, DeleteTopicsRequest,
 * CreatePartitionsRequest, AlterConfigsRequest and IncrementalAlterConfigsRequest answer its timeout for every topic
 * of the request, with a message saying why. Not sooner: an answer clients retry (NOT_CONTROLLER) could have the
 * retry find the change made by the controller asked first. A change the node makes while its client waits on
 * another request (a topic auto-created for Metadata, an internal topic for FindCoordinator) goes through the
 * 'internal' channel instead, whose window is 6 s.
 */
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import { ResourceType, ZERO_UUID } from '../../protocol/constants.js'
import { createTopics, type CreateTopicsResponse } from '../../protocol/messages/create-topics.js'
import { deleteTopics, type DeleteTopicsResponse } from '../../protocol/messages/delete-topics.js'
import type { ApiSpec } from '../../protocol/schema.js'
import { COMMIT_TIMEOUT_MS, controllerRequestFailure, type ControllerChannelName, type QuorumRunner } from './quorum-runner.js'
import { resourceConfigs, sameConfigs, topicConfigs, type MetadataImage } from './metadata/image.js'
import { createPartitions, type CreatePartitionsResponse } from '../../protocol/messages/create-partitions.js'
import type { AlterTopicConfigsRequest, CreatePartitionsRequest, CreateTopicRequest } from './controller/controller.js'

/** What became of one topic's change: Kafka's error code and message, and the topic's id (ZERO_UUID on failure). */
export interface TopicChangeResult {
  readonly errorCode: number
  readonly errorMessage: string | null
  readonly topicId: string
}

/** Where a change runs. */
export interface TopicChangeOptions {
  /** false: on this node's controller (it arrived on the controller listener); true: at the active controller. */
  readonly forward: boolean
  /**
   * The channel a change forwarded to another node goes through (CONTROLLER_CHANNELS): 'forwarding' (the default)
   * for a client's own request, 'internal' for a change made while the client waits on another request.
   */
  readonly channel?: ControllerChannelName
}

/** Creates one topic at the active controller. Errors as `QuorumController.createTopic`, and REQUEST_TIMED_OUT. */
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
    result = await forward(quorum, options, async (send) => {
      const answer = (await send<CreateTopicsResponse>(createTopics, 7, body)).topics[0]
      if (!answer) return failed(ErrorCode.UNKNOWN_SERVER_ERROR, 'the controller answered no topic')
      return answer.errorCode === ErrorCode.NONE ? done(answer.topicId ?? ZERO_UUID) : failed(answer.errorCode, answer.errorMessage ?? null)
    })
  }
  if (result.errorCode === ErrorCode.NONE) await quorum.imageHolds((image) => image.topicsById.has(result.topicId), COMMIT_TIMEOUT_MS)
  return result
}

/**
 * Whether a change to a topic would go to another node (the active controller, as this node knows it): a topic this
 * node's image lacks may then still exist, created at the controller but not yet applied here, so only the controller
 * says whether it does (Kafka's brokers forward DeleteTopics without looking at their own metadata).
 */
export function forwardsChanges(quorum: QuorumRunner, options: TopicChangeOptions): boolean {
  return options.forward && quorum.leaderId !== quorum.nodeId
}

/**
 * Deletes one topic, named or by id, at the active controller; `name` is the deleted topic's, as the controller's
 * answer gives it (null when it names none: a topic asked for by an id the controller does not know). Errors:
 * UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN_TOPIC_ID (from the controller: here only a topic named is deleted),
 * NOT_CONTROLLER, REQUEST_TIMED_OUT.
 */
export async function deleteTopicAtController(quorum: QuorumRunner, topic: { name: string } | { topicId: string }, options: TopicChangeOptions): Promise<TopicChangeResult & { name: string | null }> {
  let result: TopicChangeResult & { name: string | null }
  if (!forwardsChanges(quorum, options)) {
    if (!('name' in topic)) throw new Error('a topic is deleted here by its name')
    const deleted = await quorum.deleteTopic(topic.name)
    result = { ...(deleted.ok ? done(deleted.topicId) : failed(deleted.errorCode, deleted.message)), name: topic.name }
  } else {
    const body = 'name' in topic ? { topics: [{ name: topic.name, topicId: ZERO_UUID }], topicNames: [topic.name], timeoutMs: COMMIT_TIMEOUT_MS } : { topics: [{ name: null, topicId: topic.topicId }], topicNames: [], timeoutMs: COMMIT_TIMEOUT_MS }
    let name = 'name' in topic ? topic.name : null
    const forwarded = await forward(quorum, options, async (send) => {
      const answer = (await send<DeleteTopicsResponse>(deleteTopics, 6, body)).responses[0]
      if (!answer) return failed(ErrorCode.UNKNOWN_SERVER_ERROR, 'the controller answered no topic')
      name = answer.name ?? name
      return answer.errorCode === ErrorCode.NONE ? done(answer.topicId ?? ZERO_UUID) : failed(answer.errorCode, answer.errorMessage ?? null)
    })
    result = { ...forwarded, name }
  }
  if (result.errorCode === ErrorCode.NONE) await quorum.imageHolds((image) => !image.topicsById.has(result.topicId), COMMIT_TIMEOUT_MS)
  return result
}

/** What became of a change to an existing topic: Kafka's error code and message. */
export type ChangeResult = Pick<TopicChangeResult, 'errorCode' | 'errorMessage'>

/**
 * Adds partitions to one topic at the active controller (forwarded as CreatePartitions v3). Errors as
 * `QuorumController.createPartitions`, and REQUEST_TIMED_OUT.
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
    result = await forward(quorum, options, async (send) => {
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
 * `QuorumController.alterTopicConfigs`, and REQUEST_TIMED_OUT.
 */
export async function alterTopicConfigsAtController<Res>(
  quorum: QuorumRunner,
  request: AlterTopicConfigsRequest,
  forwarded: ForwardedRequest<Res>,
  options: TopicChangeOptions,
): Promise<ChangeResult> {
  // A topic this node's image does not show yet (a forwarded change, forwardsChanges) is awaited as such below: its
  // configs here would be another topic's than the controller changes.
  const known = quorum.controller.image.topic(request.name) !== undefined
  let expected: Readonly<Record<string, string>>
  try {
    expected = known ? request.alter(topicConfigs(quorum.controller.image, request.name)) : {}
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
    result = await forward(quorum, options, async (send) => ({ ...forwarded.result(await send<Res>(forwarded.api, forwarded.version, forwarded.body)), topicId: ZERO_UUID }))
  }
  if (result.errorCode === ErrorCode.NONE && !request.validateOnly) {
    await quorum.imageHolds((image) => (known ? sameConfigs(topicConfigs(image, request.name), expected) : image.topic(request.name) !== undefined), COMMIT_TIMEOUT_MS)
  }
  return { errorCode: result.errorCode, errorMessage: result.errorMessage }
}

/**
 * Changes the dynamic broker configs of one BROKER resource ("" for every node, or a node id) at the active
 * controller, as `alterTopicConfigsAtController` changes a topic's: run here or forwarded, and answered once this
 * node's image holds the change. Run here, that is the image at the change's offset; forwarded, the one whose configs
 * of the resource have the values the change gave the configs it changed (as computed from this node's image), so a
 * concurrent change of other configs of the resource (the resource "" is every admin's) does not hold the answer
 * back; one of the same config, forwarded, may hold it up to COMMIT_TIMEOUT_MS, as for a topic's. Errors as `QuorumController.alterBrokerConfigs`, and REQUEST_TIMED_OUT.
 */
export async function alterBrokerConfigsAtController<Res>(
  quorum: QuorumRunner,
  request: AlterTopicConfigsRequest,
  forwarded: ForwardedRequest<Res>,
  options: TopicChangeOptions,
): Promise<ChangeResult> {
  const before = resourceConfigs(quorum.controller.image, ResourceType.BROKER, request.name)
  let after: Readonly<Record<string, string>>
  try {
    after = request.alter(before)
  } catch (error) {
    if (error instanceof KafkaError) return { errorCode: error.code, errorMessage: error.message }
    throw error
  }
  const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter((name) => before[name] !== after[name])
  let result: ChangeResult
  let holds: (image: MetadataImage) => boolean
  if (!options.forward || quorum.leaderId === quorum.nodeId) {
    const altered = await quorum.alterBrokerConfigs(request)
    result = altered.ok ? done(ZERO_UUID) : failed(altered.errorCode, altered.message)
    holds = (image) => !altered.ok || image.provenance.offset >= altered.lastOffset
  } else {
    result = await forward(quorum, options, async (send) => ({ ...forwarded.result(await send<Res>(forwarded.api, forwarded.version, forwarded.body)), topicId: ZERO_UUID }))
    holds = (image) => {
      const now = resourceConfigs(image, ResourceType.BROKER, request.name)
      return changed.every((name) => now[name] === after[name])
    }
  }
  if (result.errorCode === ErrorCode.NONE && !request.validateOnly) await quorum.imageHolds(holds, COMMIT_TIMEOUT_MS)
  return { errorCode: result.errorCode, errorMessage: result.errorMessage }
}

type Send = <Res>(api: ApiSpec, version: number, body: unknown) => Promise<Res>

/** Runs `call` with requests sent to the active controller through the channel `options` names; a give-up is the topic's error. */
async function forward(quorum: QuorumRunner, options: TopicChangeOptions, call: (send: Send) => Promise<TopicChangeResult>): Promise<TopicChangeResult> {
  const channel = options.channel ?? 'forwarding'
  try {
    return await call((api, version, body) => quorum.requestActiveController(api, version, body, { channel }))
  } catch (error) {
    const { errorCode, errorMessage } = controllerRequestFailure(error)
    return failed(errorCode, errorMessage)
  }
}

function done(topicId: string): TopicChangeResult {
  return { errorCode: ErrorCode.NONE, errorMessage: null, topicId }
}

function failed(errorCode: number, errorMessage: string | null): TopicChangeResult {
  return { errorCode, errorMessage, topicId: ZERO_UUID }
}
