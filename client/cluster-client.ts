/**
 * The cluster as the CLI's admin and console commands see it: one bootstrap connection for Metadata, and a
 * connection per node opened when a request must go to that node (a partition's leader, the controller), as every
 * Kafka client does. On one node every node id resolves to the bootstrap connection itself.
 */
import { KafkaClient, checkError } from './kafka-client.js'
import { AGAIN, retrying, SETTLING } from './retry.js'
import { metadata, type MetadataRequest, type MetadataResponse, type MetadataResponseTopic } from '../protocol/messages/metadata.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../protocol/messages/find-coordinator.js'
import { CoordinatorType, ZERO_UUID } from '../protocol/constants.js'
import { ErrorCode, errorInfo } from '../protocol/errors.js'

export interface BrokerAddress {
  host: string
  port: number
}

/**
 * Parses a `--bootstrap-server` list: `host:port[,host:port...]`, IPv6 hosts in brackets (`[::1]:9092`).
 * Throws a message fit for the command line.
 */
export function parseBootstrapServers(value: string): BrokerAddress[] {
  const addresses = value.split(',').map((item) => item.trim()).filter((item) => item !== '')
  if (addresses.length === 0) throw new Error('the bootstrap server list is empty')
  return addresses.map((item) => {
    const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d+)$/.exec(item)
    const port = match ? Number(match[3]) : NaN
    if (!match || port < 1 || port > 65535) throw new Error(`'${item}' is not host:port`)
    return { host: match[1] ?? match[2]!, port }
  })
}

/**
 * Throws a topic's Metadata error. Metadata carries no error message, and UNKNOWN_TOPIC_OR_PARTITION's generic
 * text speaks of a topic or partition; for a whole topic it says what DeleteTopics says.
 */
export function checkTopicError(topic: MetadataResponseTopic): void {
  const message = topic.errorCode === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION ? 'the topic does not exist' : undefined
  checkError(topic.errorCode, `topic '${topic.name}'`, message)
}

export interface GroupCoordinator {
  nodeId: number
  host: string
  port: number
  client: KafkaClient
}

export interface ClusterClientOptions {
  clientId?: string
  /** Fails a connect or a request that takes longer; must exceed the longest Fetch maxWaitMs. */
  timeoutMs?: number
}

export class ClusterClient {
  private readonly nodes = new Map<number, Promise<KafkaClient>>()
  private readonly addresses = new Map<number, BrokerAddress>()
  private controllerId = -1

  private constructor(
    private readonly bootstrap: KafkaClient,
    private readonly options: ClusterClientOptions,
  ) {}

  /** Connects to the first bootstrap server that answers; the error names every server tried. */
  static async connect(servers: readonly BrokerAddress[], options: ClusterClientOptions = {}): Promise<ClusterClient> {
    const failures: string[] = []
    for (const { host, port } of servers) {
      try {
        return new ClusterClient(await KafkaClient.connect(host, port, options), options)
      } catch (error) {
        failures.push((error as Error).message)
      }
    }
    throw new Error(failures.join('; '))
  }

  /**
   * Metadata for `topics` (null: every topic), remembering where each node listens and which is the controller.
   * Kafka producers ask with auto-creation allowed (the broker's auto.create.topics.enable decides); admin commands
   * and the console consumer do not.
   */
  async metadata(topics: readonly string[] | null, options: { allowAutoTopicCreation: boolean }): Promise<MetadataResponse> {
    const version = this.bootstrap.version(metadata, '1-12')
    const response = await this.bootstrap.request<MetadataRequest, MetadataResponse>(metadata, version, {
      topics: topics === null ? null : topics.map((name) => ({ topicId: ZERO_UUID, name })),
      allowAutoTopicCreation: options.allowAutoTopicCreation,
      includeClusterAuthorizedOperations: false,
      includeTopicAuthorizedOperations: false,
    })
    for (const broker of response.brokers) this.addresses.set(broker.nodeId, { host: broker.host, port: broker.port })
    this.controllerId = response.controllerId ?? -1
    return response
  }

  /**
   * One topic's metadata; an error (by Kafka name) when it does not exist. Retriable errors are asked again for a
   * while: Kafka answers LEADER_NOT_AVAILABLE for a topic it has just auto-created, until its leaders are elected.
   */
  topic(name: string, options: { allowAutoTopicCreation: boolean }): Promise<MetadataResponseTopic> {
    return retrying(SETTLING, async (last) => {
      const found = (await this.metadata([name], options)).topics.find((t) => t.name === name)
      if (!found) throw new Error(`the broker did not describe topic '${name}'`)
      const settling = found.errorCode === ErrorCode.NONE ? found.partitions.some((p) => p.leaderId < 0) : errorInfo(found.errorCode).retriable
      // UNKNOWN_TOPIC_OR_PARTITION is retriable in Kafka's table, but here it means the topic is not there.
      if (settling && found.errorCode !== ErrorCode.UNKNOWN_TOPIC_OR_PARTITION && !last) return AGAIN
      checkTopicError(found)
      return found
    })
  }

  /** The bootstrap connection, for requests any node answers (DescribeCluster, DescribeQuorum). */
  get any(): KafkaClient {
    return this.bootstrap
  }

  /** The connection to `nodeId`, opened on first use (the bootstrap connection when it is that node). */
  node(nodeId: number): Promise<KafkaClient> {
    let client = this.nodes.get(nodeId)
    if (!client) {
      const address = this.addresses.get(nodeId)
      if (!address) return Promise.reject(new Error(`node ${nodeId} is not in the cluster metadata`))
      client =
        `${address.host}:${address.port}` === this.bootstrap.address
          ? Promise.resolve(this.bootstrap)
          : KafkaClient.connect(address.host, address.port, this.options)
      this.nodes.set(nodeId, client)
      // A failed connect is not cached, so the next request after a metadata refresh tries again.
      client.catch(() => this.nodes.delete(nodeId))
    }
    return client
  }

  /** Every node the last Metadata answer listed, by id. */
  nodeIds(): number[] {
    return [...this.addresses.keys()].sort((a, b) => a - b)
  }

  /**
   * The coordinator of a consumer group (FindCoordinator, batched from v4) and a connection to it. Asked again for a
   * while on retriable errors: a coordinator answers COORDINATOR_NOT_AVAILABLE or COORDINATOR_LOAD_IN_PROGRESS while
   * __consumer_offsets is created or loaded.
   */
  groupCoordinator(groupId: string): Promise<GroupCoordinator> {
    return this.coordinator(groupId, CoordinatorType.GROUP, `group '${groupId}'`)
  }

  /** The coordinator of a transactional id (FindCoordinator key type 1), as `groupCoordinator` finds a group's. */
  transactionCoordinator(transactionalId: string): Promise<GroupCoordinator> {
    return this.coordinator(transactionalId, CoordinatorType.TRANSACTION, `transactional id '${transactionalId}'`)
  }

  private coordinator(key: string, keyType: number, what: string): Promise<GroupCoordinator> {
    return retrying(SETTLING, async (last) => {
      const version = this.bootstrap.version(findCoordinator, '0-4')
      if (keyType !== CoordinatorType.GROUP && version < 1) throw new Error(`the broker at ${this.bootstrap.address} cannot find the coordinator of a ${what} (it needs FindCoordinator v1)`)
      const response = await this.bootstrap.request<FindCoordinatorRequest, FindCoordinatorResponse>(findCoordinator, version, {
        key,
        keyType,
        coordinatorKeys: [key],
      })
      const answer = version >= 4 ? response.coordinators?.find((c) => c.key === key) : { ...response, errorCode: response.errorCode ?? ErrorCode.NONE }
      if (!answer) throw new Error(`the broker did not answer FindCoordinator for ${what}`)
      if (answer.errorCode !== ErrorCode.NONE && errorInfo(answer.errorCode).retriable && !last) return AGAIN
      checkError(answer.errorCode, `cannot find the coordinator of ${what}`, answer.errorMessage)
      const nodeId = answer.nodeId!
      // Metadata, when it was asked, already knows the node; otherwise the answer says where it listens.
      if (!this.addresses.has(nodeId)) this.addresses.set(nodeId, { host: answer.host!, port: answer.port! })
      return { nodeId, host: answer.host!, port: answer.port!, client: await this.node(nodeId) }
    })
  }

  /** The controller, for CreateTopics and DeleteTopics (older Kafka needs them there; KRaft forwards them). */
  controller(): Promise<KafkaClient> {
    return this.controllerId >= 0 && this.addresses.has(this.controllerId) ? this.node(this.controllerId) : Promise.resolve(this.bootstrap)
  }

  close(): void {
    this.bootstrap.close()
    for (const client of this.nodes.values()) client.then((c) => c.close(), () => {})
  }
}
