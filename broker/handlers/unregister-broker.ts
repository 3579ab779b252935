/**
 * UnregisterBroker: v0 (KIP-500 era, Kafka 2.8+; `kafka-cluster.sh unregister --id N`, Admin.unregisterBroker).
 * Kafka's KafkaApis forwards it to the controller, whose ControllerApis.handleUnregisterBroker runs
 * QuorumController.unregisterBroker (ReplicationControlManager.unregisterBroker).
 *
 * Behaviour
 * - Only a cluster node has it (its client listener forwards it to the active controller, its controller listener
 *   runs it, see cluster/unregister-broker.ts); a single node does not advertise it, as a ZooKeeper-mode Kafka broker
 *   does not, and Admin clients report the API as unsupported.
 * - The controller removes the broker's registration whatever its state (alive, fenced or gone), in one batch with
 *   the broker taken out of every ISR it is in (but as a partition's last member) and its leaderships moved to the
 *   next live ISR member; replica lists stay (`QuorumController.unregisterBroker`). Metadata and DescribeCluster no
 *   longer list it. A broker id that is not registered is BROKER_ID_NOT_REGISTERED. A request no controller took
 *   within 60 s (none known, reached or answering: Kafka's forwarding timeout) is REQUEST_TIMED_OUT.
 * - A node that is still running and is unregistered registers again at its next heartbeat (Brook's nodes register
 *   again on BROKER_ID_NOT_REGISTERED), as after a restart: unregistering is for nodes that are gone. Kafka's broker
 *   instead keeps heartbeating with its old epoch, refused, until it is restarted.
 *
 * Version notes
 * - v0 only, flexible (UnregisterBrokerRequest.json). throttleTimeMs is always 0.
 */
import {
  unregisterBroker,
  type UnregisterBrokerRequest,
  type UnregisterBrokerResponse,
} from '../../protocol/messages/unregister-broker.js'
import { unregisterAtController } from '../cluster/unregister-broker.js'
import { defineHandler, type BrokerServices } from '../handler.js'

/** UnregisterBroker on a cluster node's client listener: forwarded to the active controller. */
export const unregisterBrokerHandler = defineHandler<UnregisterBrokerRequest, UnregisterBrokerResponse>(unregisterBroker, '0', (request, { services }) =>
  unregister(request, services, { forward: true }),
)

/** UnregisterBroker on a cluster node's controller listener: run by this node's controller, never forwarded again. */
export const controllerUnregisterBrokerHandler = defineHandler<UnregisterBrokerRequest, UnregisterBrokerResponse>(unregisterBroker, '0', (request, { services }) =>
  unregister(request, services, { forward: false }),
)

async function unregister(request: UnregisterBrokerRequest, services: BrokerServices, options: { forward: boolean }): Promise<UnregisterBrokerResponse> {
  // Only the cluster's dispatchers route here.
  if (!services.quorum) throw new Error('UnregisterBroker reached a node without a controller quorum')
  const answer = await unregisterAtController(services.quorum, request.brokerId, options)
  return { throttleTimeMs: 0, ...answer }
}
