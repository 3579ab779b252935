/**
 * DescribeCluster: v0-1.
 *
 * Behaviour
 * - The cluster id, the controller and the brokers: on a single node the node itself; on a cluster node the
 *   registered, unfenced brokers of the node's metadata image with their listener (as a KRaft broker lists the live
 *   brokers of its image), and as controller one of them that forwards to the active controller, as Metadata names
 *   it (a KRaft broker names a random live broker, KIP-590; handler.ts `controllerIdOf`). The active controller
 *   itself is DescribeQuorum's leader.
 * - includeClusterAuthorizedOperations: every operation the cluster supports, as Kafka answers without an authorizer
 *   (AuthHelper.computeDescribeClusterResponse, authorizedOperations): Brook has no ACLs. Otherwise the JSON's
 *   default, -2147483648 ("not requested").
 *
 * Version notes
 * - v1 adds endpointType (KIP-919). Brook's nodes answer as brokers: asking one for controllers (2) is
 *   MISMATCHED_ENDPOINT_TYPE, any other type UNSUPPORTED_ENDPOINT_TYPE, as in Kafka.
 */
import {
  describeCluster,
  type DescribeClusterRequest,
  type DescribeClusterResponse,
} from '../../protocol/messages/describe-cluster.js'
import { ErrorCode } from '../../protocol/errors.js'
import { AuthorizedOperations } from '../../protocol/constants.js'
import { controllerIdOf, defineHandler, liveBrokerEndpoints, type BrokerServices } from '../handler.js'

const BROKER_ENDPOINTS = 1
const CONTROLLER_ENDPOINTS = 2

export const describeClusterHandler = defineHandler<DescribeClusterRequest, DescribeClusterResponse>(
  describeCluster,
  '0-1',
  (request, { services }) => {
    const brokersOnly = request.endpointType === BROKER_ENDPOINTS
    const errorCode = brokersOnly
      ? ErrorCode.NONE
      : request.endpointType === CONTROLLER_ENDPOINTS
        ? ErrorCode.MISMATCHED_ENDPOINT_TYPE
        : ErrorCode.UNSUPPORTED_ENDPOINT_TYPE
    return {
      throttleTimeMs: 0,
      errorCode,
      errorMessage: brokersOnly ? null : `endpoint type ${request.endpointType} cannot be described here; brokers (1) can`,
      endpointType: request.endpointType,
      clusterId: services.clusterId,
      controllerId: controllerIdOf(services),
      brokers: brokersOnly ? brokersOf(services) : [],
      clusterAuthorizedOperations: request.includeClusterAuthorizedOperations ? AuthorizedOperations.CLUSTER : AuthorizedOperations.NOT_REQUESTED,
    }
  },
)

function brokersOf(services: BrokerServices): DescribeClusterResponse['brokers'] {
  return liveBrokerEndpoints(services).map(({ nodeId, ...endpoint }) => ({ brokerId: nodeId, ...endpoint }))
}
