/**
 * ElectLeaders (43, KIP-460) on a cluster node goes to the active controller, as Kafka's brokers forward it (KIP-590):
 * the node whose quorum member is the active controller runs it, any other node forwards it as ElectLeaders v2 to
 * the controller listener of the leader its member knows, where it runs without being forwarded again. It is answered
 * once its elections are committed (the request's timeoutMs is not waited for beyond the controller's commit
 * timeout). A forwarded request follows the quorum to the next leader it elects for up to 60 s
 * (QuorumRunner.requestActiveController, CONTROLLER_CHANNELS.forwarding); with no controller known, or none reached
 * or answering, by then, every partition asked and the answer are REQUEST_TIMED_OUT, as Kafka's
 * ElectLeadersRequest.getErrorResponse answers a forwarding timeout.
 */
import { ErrorCode } from '../../protocol/errors.js'
import { ElectionType } from '../../protocol/constants.js'
import { electLeaders, type ElectLeadersResponse } from '../../protocol/messages/elect-leaders.js'
import { COMMIT_TIMEOUT_MS, controllerRequestFailure, type QuorumRunner } from './quorum-runner.js'
import type { ElectionResult, ElectLeadersRequest } from './controller/controller.js'

/** The answer: a top-level error code (NONE unless the controller could not be asked) and each partition's result. */
export interface ElectLeadersAnswer {
  readonly errorCode: number
  readonly results: readonly ElectionResult[]
}

/** Runs `request` at the active controller (`forward: false`: it arrived on this node's controller listener). */
export async function electLeadersAtController(quorum: QuorumRunner, request: ElectLeadersRequest, options: { forward: boolean }): Promise<ElectLeadersAnswer> {
  if (!options.forward || quorum.leaderId === quorum.nodeId) {
    const elected = await quorum.electLeaders(request)
    return elected.ok ? { errorCode: ErrorCode.NONE, results: elected.results } : electionsFailed(request, elected.errorCode, elected.message)
  }
  const body = {
    electionType: request.electionType,
    topicPartitions: request.topicPartitions?.map(({ topic, partitions }) => ({ topic, partitions: [...partitions] })) ?? null,
    timeoutMs: COMMIT_TIMEOUT_MS,
  }
  let answer: ElectLeadersResponse
  try {
    answer = await quorum.requestActiveController<ElectLeadersResponse>(electLeaders, 2, body, { channel: 'forwarding' })
  } catch (error) {
    const { errorCode, errorMessage } = controllerRequestFailure(error)
    return electionsFailed(request, errorCode, errorMessage)
  }
  const results = answer.replicaElectionResults.flatMap(({ topic, partitionResult }) =>
    partitionResult.map(({ partitionId, errorCode, errorMessage }) => ({ topic, partitionId, errorCode, errorMessage })),
  )
  return { errorCode: answer.errorCode ?? ErrorCode.NONE, results }
}

/** `errorCode` for the request and for every partition it names (none when it names every partition). */
export function electionsFailed(request: { readonly topicPartitions: ElectLeadersRequest['topicPartitions'] }, errorCode: number, errorMessage: string): ElectLeadersAnswer {
  const results = (request.topicPartitions ?? []).flatMap(({ topic, partitions }) =>
    [...new Set(partitions)].map((partitionId) => ({ topic, partitionId, errorCode, errorMessage })),
  )
  return { errorCode, results }
}

/** Whether `electionType` is one Brook runs (Kafka's ElectionType: PREFERRED 0, UNCLEAN 1). */
export function isElectionType(electionType: number): electionType is ElectionType {
  return electionType === ElectionType.PREFERRED || electionType === ElectionType.UNCLEAN
}
