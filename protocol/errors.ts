/**
 * The one catalogue of Kafka wire errors: code, name, whether a client may retry, and a short description.
 * Codes and names are Apache Kafka's (`org.apache.kafka.common.protocol.Errors`); descriptions are ours, written for
 * what the code means where Brook uses it (a handler passes a more specific message where it has one).
 */
export interface KafkaErrorInfo {
  readonly code: number
  readonly name: string
  readonly retriable: boolean
  readonly message: string
}

const table = {
  UNKNOWN_SERVER_ERROR: [-1, false, 'unexpected error on the broker'],
  NONE: [0, false, 'no error'],
  OFFSET_OUT_OF_RANGE: [1, false, 'the offset is outside the range the partition holds'],
  CORRUPT_MESSAGE: [2, true, 'the record batch is corrupt: its CRC, sizes or records do not check out'],
  UNKNOWN_TOPIC_OR_PARTITION: [3, true, 'the topic or partition does not exist'],
  INVALID_FETCH_SIZE: [4, false, 'the fetch size is invalid'],
  LEADER_NOT_AVAILABLE: [5, true, 'the partition has no leader right now'],
  NOT_LEADER_OR_FOLLOWER: [6, true, 'this broker is not the leader (or a replica) of that partition'],
  REQUEST_TIMED_OUT: [7, true, 'the request timed out'],
  BROKER_NOT_AVAILABLE: [8, false, 'the broker is not available'],
  REPLICA_NOT_AVAILABLE: [9, true, 'the replica is not available'],
  MESSAGE_TOO_LARGE: [10, false, 'the record batch is larger than max.message.bytes'],
  STALE_CONTROLLER_EPOCH: [11, false, 'the controller moved'],
  OFFSET_METADATA_TOO_LARGE: [12, false, 'the offset commit metadata is too large'],
  NETWORK_EXCEPTION: [13, true, 'the connection closed before a response arrived'],
  COORDINATOR_LOAD_IN_PROGRESS: [14, true, 'the coordinator is still loading'],
  COORDINATOR_NOT_AVAILABLE: [15, true, 'the coordinator is not available'],
  NOT_COORDINATOR: [16, true, 'this broker is not the coordinator'],
  INVALID_TOPIC_EXCEPTION: [17, false, 'the topic name is invalid, collides with an existing topic, or names an internal topic'],
  RECORD_LIST_TOO_LARGE: [18, false, 'the request holds more records than allowed'],
  NOT_ENOUGH_REPLICAS: [19, true, 'fewer in-sync replicas than min.insync.replicas'],
  NOT_ENOUGH_REPLICAS_AFTER_APPEND: [20, true, 'written, but fewer in-sync replicas than min.insync.replicas'],
  INVALID_REQUIRED_ACKS: [21, false, 'acks must be -1, 0 or 1'],
  ILLEGAL_GENERATION: [22, false, 'the generation id is not the current one'],
  INCONSISTENT_GROUP_PROTOCOL: [23, false, 'the protocol type or protocols do not match the group'],
  INVALID_GROUP_ID: [24, false, 'the group id is invalid'],
  UNKNOWN_MEMBER_ID: [25, false, 'the group does not know this member id'],
  INVALID_SESSION_TIMEOUT: [26, false, 'the session timeout is outside the allowed range'],
  REBALANCE_IN_PROGRESS: [27, false, 'the group is rebalancing'],
  INVALID_COMMIT_OFFSET_SIZE: [28, false, 'the committed offset is invalid'],
  TOPIC_AUTHORIZATION_FAILED: [29, false, 'not authorized to access the topic'],
  GROUP_AUTHORIZATION_FAILED: [30, false, 'not authorized to access the group'],
  CLUSTER_AUTHORIZATION_FAILED: [31, false, 'not authorized for the cluster'],
  INVALID_TIMESTAMP: [32, false, 'the timestamp is out of the accepted range'],
  UNSUPPORTED_SASL_MECHANISM: [33, false, 'the SASL mechanism is not supported'],
  ILLEGAL_SASL_STATE: [34, false, 'the request is not valid in the SASL state'],
  UNSUPPORTED_VERSION: [35, false, 'the API version is not supported'],
  TOPIC_ALREADY_EXISTS: [36, false, 'the topic already exists'],
  INVALID_PARTITIONS: [37, false, 'the number of partitions is invalid'],
  INVALID_REPLICATION_FACTOR: [38, false, 'the replication factor is invalid'],
  INVALID_REPLICA_ASSIGNMENT: [39, false, 'the replica assignment is invalid'],
  INVALID_CONFIG: [40, false, 'the configuration is invalid'],
  NOT_CONTROLLER: [41, true, 'this broker is not the controller'],
  INVALID_REQUEST: [42, false, 'the request is malformed or not valid here'],
  UNSUPPORTED_FOR_MESSAGE_FORMAT: [43, false, 'not supported by the message format'],
  POLICY_VIOLATION: [44, false, "the topic's cleanup.policy (or another policy) does not allow this"],
  OUT_OF_ORDER_SEQUENCE_NUMBER: [45, false, 'the producer sequence number is out of order'],
  DUPLICATE_SEQUENCE_NUMBER: [46, false, 'the producer sequence number is a duplicate'],
  INVALID_PRODUCER_EPOCH: [47, false, 'the producer epoch is stale'],
  INVALID_TXN_STATE: [48, false, 'the transaction state does not allow this'],
  INVALID_PRODUCER_ID_MAPPING: [49, false, 'the producer id does not match the transactional id'],
  INVALID_TRANSACTION_TIMEOUT: [50, false, 'the transaction timeout is too large'],
  CONCURRENT_TRANSACTIONS: [51, true, 'another transaction of this producer is completing'],
  TRANSACTION_COORDINATOR_FENCED: [52, false, 'the transaction coordinator was fenced'],
  TRANSACTIONAL_ID_AUTHORIZATION_FAILED: [53, false, 'not authorized for the transactional id'],
  SECURITY_DISABLED: [54, false, 'security is disabled'],
  OPERATION_NOT_ATTEMPTED: [55, false, 'the operation was not attempted'],
  KAFKA_STORAGE_ERROR: [56, true, 'the broker could not read or write its storage'],
  LOG_DIR_NOT_FOUND: [57, false, 'the log directory does not exist'],
  SASL_AUTHENTICATION_FAILED: [58, false, 'SASL authentication failed'],
  UNKNOWN_PRODUCER_ID: [59, false, 'the producer id is unknown'],
  REASSIGNMENT_IN_PROGRESS: [60, false, 'a partition reassignment is in progress'],
  NON_EMPTY_GROUP: [68, false, 'the group is not empty'],
  GROUP_ID_NOT_FOUND: [69, false, 'the group does not exist'],
  FETCH_SESSION_ID_NOT_FOUND: [70, true, 'the fetch session does not exist'],
  INVALID_FETCH_SESSION_EPOCH: [71, true, 'the fetch session epoch is invalid'],
  LISTENER_NOT_FOUND: [72, true, 'no listener of that name on the leader'],
  TOPIC_DELETION_DISABLED: [73, false, 'topic deletion is disabled'],
  FENCED_LEADER_EPOCH: [74, true, 'the leader epoch is older than the current one'],
  UNKNOWN_LEADER_EPOCH: [75, true, 'the leader epoch is newer than the current one'],
  UNSUPPORTED_COMPRESSION_TYPE: [76, false, 'the compression type is not supported in this version'],
  STALE_BROKER_EPOCH: [77, false, 'the broker epoch is stale'],
  OFFSET_NOT_AVAILABLE: [78, true, 'the offset is not available yet'],
  MEMBER_ID_REQUIRED: [79, false, 'join again with the member id the broker assigned'],
  PREFERRED_LEADER_NOT_AVAILABLE: [80, true, 'the preferred leader is not available'],
  GROUP_MAX_SIZE_REACHED: [81, false, 'the group is full'],
  FENCED_INSTANCE_ID: [82, false, 'another member with this group.instance.id took over'],
  ELIGIBLE_LEADERS_NOT_AVAILABLE: [83, true, 'no eligible leader for the partition'],
  ELECTION_NOT_NEEDED: [84, true, 'no leader election needed'],
  NO_REASSIGNMENT_IN_PROGRESS: [85, false, 'no partition reassignment in progress'],
  GROUP_SUBSCRIBED_TO_TOPIC: [86, false, 'the group is subscribed to that topic'],
  INVALID_RECORD: [87, false, 'the record batch is invalid'],
  UNSTABLE_OFFSET_COMMIT: [88, true, 'there are pending transactional offsets for the partition'],
  THROTTLING_QUOTA_EXCEEDED: [89, true, 'the throttling quota was exceeded'],
  PRODUCER_FENCED: [90, false, 'a newer producer with the same transactional id fenced this one'],
  RESOURCE_NOT_FOUND: [91, false, 'the resource does not exist'],
  DUPLICATE_RESOURCE: [92, false, 'the resource is named twice in the request'],
  UNACCEPTABLE_CREDENTIAL: [93, false, 'the credential is not acceptable'],
  INCONSISTENT_VOTER_SET: [94, false, 'the sender or the receiver is not a voter of the controller quorum'],
  INVALID_UPDATE_VERSION: [95, false, 'the partition epoch of the update is not the current one'],
  SNAPSHOT_NOT_FOUND: [98, false, 'the metadata snapshot asked for does not exist'],
  POSITION_OUT_OF_RANGE: [99, false, 'the position is outside the metadata snapshot'],
  UNKNOWN_TOPIC_ID: [100, true, 'no topic has that topic id'],
  DUPLICATE_BROKER_REGISTRATION: [101, false, 'another live incarnation of this broker id is registered'],
  BROKER_ID_NOT_REGISTERED: [102, false, 'the broker id is not registered'],
  INCONSISTENT_TOPIC_ID: [103, true, 'the topic id does not match the topic'],
  INCONSISTENT_CLUSTER_ID: [104, false, 'the cluster id does not match'],
  TRANSACTIONAL_ID_NOT_FOUND: [105, false, 'the transactional id does not exist'],
  FETCH_SESSION_TOPIC_ID_ERROR: [106, true, 'the fetch session has a topic id mismatch'],
  INELIGIBLE_REPLICA: [107, false, 'the new ISR holds a replica that is fenced or not registered'],
  NEW_LEADER_ELECTED: [108, false, 'the ISR changed, but the partition has a new leader since'],
  MISMATCHED_ENDPOINT_TYPE: [114, false, 'the request was sent to an endpoint of the wrong type'],
  UNSUPPORTED_ENDPOINT_TYPE: [115, false, 'the endpoint type is not supported'],
  TRANSACTION_ABORTABLE: [120, false, 'the transaction must be aborted'],
} as const satisfies Record<string, readonly [number, boolean, string]>

export type ErrorName = keyof typeof table

/** Error codes by name: `ErrorCode.OFFSET_OUT_OF_RANGE === 1`. */
export const ErrorCode = Object.fromEntries(Object.entries(table).map(([name, [code]]) => [name, code])) as {
  readonly [K in ErrorName]: (typeof table)[K][0]
}

const byCode = new Map<number, KafkaErrorInfo>(
  Object.entries(table).map(([name, [code, retriable, message]]) => [code, { code, name, retriable, message }]),
)

export function errorInfo(code: number): KafkaErrorInfo {
  return byCode.get(code) ?? { code, name: `ERROR_${code}`, retriable: false, message: `Kafka error code ${code}` }
}

/** An error that carries a Kafka error code, thrown where a handler wants that code on the wire. */
export class KafkaError extends Error {
  override readonly name = 'KafkaError'
  constructor(
    readonly code: number,
    message?: string,
  ) {
    super(message ?? `${errorInfo(code).name}: ${errorInfo(code).message}`)
  }
}
