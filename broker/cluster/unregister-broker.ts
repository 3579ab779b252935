/**
 * UnregisterBroker (64) on a cluster node goes to the active controller, as Kafka's brokers forward it (KafkaApis:
 * UNREGISTER_BROKER is forwardToControllerOrFail, KIP-590): the node whose quorum member is the active controller
 * runs it, any other node forwards it as UnregisterBroker v0 to the controller listener of the leader its member
 * knows, where it runs without being forwarded again (ControllerApis.handleUnregisterBroker). It is answered once
 * committed and once this node's image no longer holds the registration it held when asked, so a Metadata or
 * DescribeCluster here right after leaves the broker out. A forwarded request follows the quorum to the next leader
 * it elects for up to 60 s (QuorumRunner.requestActiveController, CONTROLLER_CHANNELS.forwarding); with no
 * controller known, or none reached or answering, by then, the answer is REQUEST_TIMED_OUT, as Kafka's
 * UnregisterBrokerRequest.getErrorResponse answers a forwarding timeout.
 */
import { ErrorCode } from '../../protocol/errors.js'
import { unregisterBroker, type UnregisterBrokerResponse } from '../../protocol/messages/unregister-broker.js'
import { COMMIT_TIMEOUT_MS, controllerRequestFailure, type QuorumRunner } from './quorum-runner.js'

/** The answer: NONE, or the error code (BROKER_ID_NOT_REGISTERED, REQUEST_TIMED_OUT...) and its message. */
export interface UnregisterAnswer {
  readonly errorCode: number
  readonly errorMessage: string | null
}

/** Unregisters `brokerId` at the active controller (`forward: false`: the request arrived on this node's controller listener). */
export async function unregisterAtController(quorum: QuorumRunner, brokerId: number, options: { forward: boolean }): Promise<UnregisterAnswer> {
  if (!options.forward || quorum.leaderId === quorum.nodeId) {
    // Answered once committed, in the image this node serves from.
    const done = await quorum.unregisterBroker(brokerId)
    return done.ok ? { errorCode: ErrorCode.NONE, errorMessage: null } : { errorCode: done.errorCode, errorMessage: done.message }
  }
  const held = quorum.controller.image.brokers.get(brokerId)?.brokerEpoch
  let response: UnregisterBrokerResponse
  try {
    response = await quorum.requestActiveController<UnregisterBrokerResponse>(unregisterBroker, 0, { brokerId }, { channel: 'forwarding' })
  } catch (error) {
    return controllerRequestFailure(error)
  }
  if (response.errorCode === ErrorCode.NONE && held !== undefined) {
    await quorum.imageHolds((image) => image.brokers.get(brokerId)?.brokerEpoch !== held, COMMIT_TIMEOUT_MS)
  }
  return { errorCode: response.errorCode, errorMessage: response.errorMessage }
}
