/**
 * Kafka's wire enumerations and special values, defined once for the broker, the client and the CLI. Each names the
 * message JSON (shared/reference/kafka-message-specs) or the Kafka class that defines it.
 */

/** Uuid.ZERO_UUID: "no topic id" (Metadata v10+, Fetch v13+, CreateTopics v7+, DeleteTopics v6+). */
export const ZERO_UUID = '00000000-0000-0000-0000-000000000000'

/**
 * The metadata log's topic and its id (Kafka's Topic.CLUSTER_METADATA_TOPIC_NAME and Uuid.METADATA_TOPIC_ID): the one
 * partition of the controller quorum's Fetch and FetchSnapshot, and the one DescribeQuorum describes (KIP-595).
 */
export const METADATA_TOPIC = '__cluster_metadata'
export const METADATA_TOPIC_ID = '00000000-0000-0000-0000-000000000001'

/** FetchRequest.json and ListOffsetsRequest.json `isolationLevel` (IsolationLevel.java). */
export const IsolationLevel = { READ_UNCOMMITTED: 0, READ_COMMITTED: 1 } as const
export type IsolationLevel = (typeof IsolationLevel)[keyof typeof IsolationLevel]

/**
 * ListOffsetsRequest.json's special timestamps (ListOffsetsRequest.LATEST_TIMESTAMP, EARLIEST_TIMESTAMP,
 * MAX_TIMESTAMP (v7+, KIP-734), EARLIEST_LOCAL_TIMESTAMP (KIP-405) and LATEST_TIERED_TIMESTAMP (KIP-1005)); any other
 * timestamp asks for the first offset whose record timestamp is at or after it.
 */
export const OffsetSpec = { LATEST: -1n, EARLIEST: -2n, MAX_TIMESTAMP: -3n, EARLIEST_LOCAL: -4n, LATEST_TIERED: -5n } as const

/** IncrementalAlterConfigsRequest.json `configOperation` (AlterConfigOp.OpType). */
export const ConfigOperation = { SET: 0, DELETE: 1, APPEND: 2, SUBTRACT: 3 } as const

/** The config resource types Brook answers for (ConfigResource.Type), in DescribeConfigs and both AlterConfigs. */
export const ResourceType = { TOPIC: 2, BROKER: 4, BROKER_LOGGER: 8 } as const

/** DescribeConfigsResponse.json `configSource` (v1+) and the synonyms' `source`. */
export const ConfigSource = {
  UNKNOWN: 0,
  TOPIC_CONFIG: 1,
  DYNAMIC_BROKER_CONFIG: 2,
  DYNAMIC_DEFAULT_BROKER_CONFIG: 3,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
  DYNAMIC_BROKER_LOGGER_CONFIG: 6,
} as const

/** DescribeConfigsResponse.json `configType` (v3+; ConfigDef.Type). */
export const ConfigType = { BOOLEAN: 1, STRING: 2, INT: 3, SHORT: 4, LONG: 5, DOUBLE: 6, LIST: 7 } as const
export type ConfigType = (typeof ConfigType)[keyof typeof ConfigType]

/**
 * The classic protocol's group states, as DescribeGroupsResponse.json `groupState` and ListGroupsResponse.json
 * `groupState` (v4+) spell them, and ListGroupsRequest.json `statesFilter` takes them (KIP-518; ClassicGroupState).
 */
export const GROUP_STATES = ['Stable', 'PreparingRebalance', 'CompletingRebalance', 'Empty', 'Dead'] as const

/** FindCoordinatorRequest.json `keyType` (FindCoordinatorRequest.CoordinatorType). */
export const CoordinatorType = { GROUP: 0, TRANSACTION: 1 } as const

/** ElectLeadersRequest.json `electionType` (v1+; v0 elects the preferred replica), Kafka's ElectionType (KIP-460). */
export const ElectionType = { PREFERRED: 0, UNCLEAN: 1 } as const
export type ElectionType = (typeof ElectionType)[keyof typeof ElectionType]

/**
 * The authorized operations Metadata (v8+), DescribeGroups (v3+) and DescribeCluster answer when asked for them: a
 * 32-bit field with bit `code` set for each AclOperation code allowed (Utils.to32BitField). Without an authorizer,
 * Kafka allows every operation the resource type supports (AuthHelper.authorizedOperations, AclEntry.supportedOperations),
 * and a broker without ACLs answers so. NOT_REQUESTED is the JSON's default, answered when the request did not ask.
 */
const AclOperation = {
  READ: 3, WRITE: 4, CREATE: 5, DELETE: 6, ALTER: 7, DESCRIBE: 8, CLUSTER_ACTION: 9, DESCRIBE_CONFIGS: 10, ALTER_CONFIGS: 11, IDEMPOTENT_WRITE: 12,
} as const
const bits = (...codes: number[]): number => codes.reduce((field, code) => field | (1 << code), 0)
const { READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE } = AclOperation
export const AuthorizedOperations = {
  NOT_REQUESTED: -2147483648,
  TOPIC: bits(READ, WRITE, CREATE, DESCRIBE, DELETE, ALTER, DESCRIBE_CONFIGS, ALTER_CONFIGS),
  GROUP: bits(READ, DESCRIBE, DELETE, DESCRIBE_CONFIGS, ALTER_CONFIGS),
  CLUSTER: bits(CREATE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, ALTER, DESCRIBE),
} as const
