/**
 * The cluster as the CLI's admin and console commands see it: one bootstrap connection for Metadata, and a
 * connection per node opened when a request must go to that node (a partition's leader, the controller), as every
 * Kafka client does. On one node every node id resolves to the bootstrap connection itself. A connection that fails
 * is made again when next needed: the bootstrap connection to another node the cluster or the bootstrap list names,
 * so that Metadata survives the loss of the node it was asked of.
 */
import { BrokerError, ConnectionError, KafkaClient, checkError, errorText } from './kafka-client.js'
import { AGAIN, gaveUp, NODE_LOSS, retrying, SETTLING, type RetryPolicy } from './retry.js'
import { metadata, type MetadataRequest, type MetadataResponse, type MetadataResponseTopic } from '../protocol/messages/metadata.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../protocol/messages/find-coordinator.js'
import { CoordinatorType, ZERO_UUID } from '../protocol/constants.js'
import { ErrorCode, errorInfo } from '../protocol/errors.js'
import type { BrokerAddress } from './address.js'

/**
 * How long a bootstrap server may take to answer before the next one is tried beside it (as librdkafka, which
 * connects to several bootstrap servers at once): one hung node (stopped, or cut off without a reset) costs a second,
 * not the whole request timeout.
 */
const BOOTSTRAP_HEDGE_MS = 1000

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

/** What `ClusterClient.atLeaders` has for a partition. */
export type LeaderOutcome<T> =
  /** Its leader's answer: no error, or one not worth asking again (the caller throws or reports it). */
  | { answer: T }
  /** Why no leader answered it, in words (`leader 2 unreachable (...)`, `...; gave up after 30 s`). */
  | { unavailable: string }

/** What differs between the requests `ClusterClient.atLeaders` sends. */
export interface AtLeadersOptions<T> {
  /** How often and for how long partitions are asked again (retry.ts): NODE_LOSS, or DELIVERY for Produce. */
  policy: RetryPolicy
  /** A partition's error code in the leader's answer. */
  errorCode: (answer: T) => number
  /** A leader that cannot be reached: 'wait' asks its partitions again, 'report' gives them up at once. */
  unreachable: 'wait' | 'report'
}

export interface ClusterClientOptions {
  clientId?: string
  /** Fails a connect or a request that takes longer; must exceed the longest Fetch maxWaitMs. */
  timeoutMs?: number
  /**
   * Told, once per `atEveryNode` call, that a node listed in the metadata cannot be reached and is being waited out
   * (until the controller fences it, up to 30 s): one line naming the node and the connection's error, for a command
   * to show while it waits rather than say nothing for that long.
   */
  onWaiting?: (message: string) => void
}

export class ClusterClient {
  private readonly nodes = new Map<number, Promise<KafkaClient>>()
  private readonly addresses = new Map<number, BrokerAddress>()
  /** Each topic as the last Metadata described it: where `atLeaders` looks for leaders first. */
  private readonly topics = new Map<string, MetadataResponseTopic>()
  private controllerId = -1

  private constructor(
    private bootstrap: KafkaClient,
    private readonly servers: readonly BrokerAddress[],
    private readonly options: ClusterClientOptions,
  ) {}

  /** Connects to the first bootstrap server that answers (firstAnswering); the error names every server tried. */
  static async connect(servers: readonly BrokerAddress[], options: ClusterClientOptions = {}): Promise<ClusterClient> {
    return new ClusterClient(await firstAnswering(servers, options), servers, options)
  }

  /**
   * A new bootstrap connection after the last one failed: to the first that answers of the nodes the last Metadata
   * listed, then of the bootstrap servers, the failed node last. Errors: a ConnectionError naming every node tried.
   */
  private async reconnect(): Promise<void> {
    const failed = this.bootstrap.address
    const candidates = new Map<string, BrokerAddress>()
    for (const address of [...this.addresses.values(), ...this.servers]) candidates.set(`${address.host}:${address.port}`, address)
    const ordered = [...candidates].sort(([a], [b]) => Number(a === failed) - Number(b === failed)).map(([, address]) => address)
    this.bootstrap.close()
    this.bootstrap = await firstAnswering(ordered, this.options)
  }

  /**
   * Metadata for `topics` (null: every topic), remembering where each node listens, which is the controller, and each
   * topic's partitions and leaders.
   * Kafka producers ask with auto-creation allowed (the broker's auto.create.topics.enable decides); admin commands
   * and the console consumer do not.
   */
  async metadata(topics: readonly string[] | null, options: { allowAutoTopicCreation: boolean }): Promise<MetadataResponse> {
    const ask = (): Promise<MetadataResponse> =>
      this.bootstrap.request<MetadataRequest, MetadataResponse>(metadata, this.bootstrap.version(metadata, '1-12'), {
        topics: topics === null ? null : topics.map((name) => ({ topicId: ZERO_UUID, name })),
        allowAutoTopicCreation: options.allowAutoTopicCreation,
        includeClusterAuthorizedOperations: false,
        includeTopicAuthorizedOperations: false,
      })
    let response: MetadataResponse
    try {
      if (this.bootstrap.failed) await this.reconnect()
      response = await ask()
    } catch (error) {
      if (!(error instanceof ConnectionError)) throw error
      // The node Metadata was asked of is gone (killed, stopped): any other node answers it as well.
      await this.reconnect()
      response = await ask()
    }
    // The listed brokers only: a node the controller fenced (dead) is no longer one to ask.
    this.addresses.clear()
    for (const broker of response.brokers) this.addresses.set(broker.nodeId, { host: broker.host, port: broker.port })
    this.controllerId = response.controllerId ?? -1
    for (const topic of response.topics) {
      if (topic.name === null) continue
      if (topic.errorCode === ErrorCode.NONE) this.topics.set(topic.name, topic)
      else this.topics.delete(topic.name)
    }
    return response
  }

  /**
   * Metadata for the topics `names` (none auto-created), by name, for admin requests that name topics. `missing`
   * 'fail': a topic Metadata answers with an error (UNKNOWN_TOPIC_OR_PARTITION: it does not exist; checkTopicError's
   * words) or leaves out throws; 'skip': it is left out of the map.
   */
  async topicsNamed(names: readonly string[], missing: 'skip' | 'fail'): Promise<Map<string, MetadataResponseTopic>> {
    if (names.length === 0) return new Map()
    const response = await this.metadata(names, { allowAutoTopicCreation: false })
    const found = new Map<string, MetadataResponseTopic>()
    for (const topic of response.topics) {
      if (topic.name === null) continue
      if (topic.errorCode !== ErrorCode.NONE) {
        if (missing === 'fail') checkTopicError(topic)
        continue
      }
      found.set(topic.name, topic)
    }
    if (missing === 'fail') {
      const absent = names.find((name) => !found.has(name))
      if (absent !== undefined) throw new Error(`the broker did not describe topic '${absent}'`)
    }
    return found
  }

  /**
   * One topic's metadata; an error (by Kafka name) when it does not exist. Retriable errors are asked again for a
   * while: Kafka answers LEADER_NOT_AVAILABLE for a topic it has just auto-created, until its leaders are elected.
   */
  topic(name: string, options: { allowAutoTopicCreation: boolean; policy?: RetryPolicy }): Promise<MetadataResponseTopic> {
    const policy = options.policy ?? SETTLING
    return retrying(policy, async (last) => {
      const found = (await this.metadata([name], { allowAutoTopicCreation: options.allowAutoTopicCreation })).topics.find((t) => t.name === name)
      if (!found) throw new Error(`the broker did not describe topic '${name}'`)
      const settling = found.errorCode === ErrorCode.NONE ? found.partitions.some((p) => p.leaderId < 0) : errorInfo(found.errorCode).retriable
      // UNKNOWN_TOPIC_OR_PARTITION is retriable in Kafka's table, but here it means the topic is not there.
      if (settling && found.errorCode !== ErrorCode.UNKNOWN_TOPIC_OR_PARTITION && !last) return AGAIN
      try {
        checkTopicError(found)
      } catch (error) {
        // A policy bounded by time (a producer waiting for a topic it auto-creates) says how long it waited.
        if (settling && policy.timeoutMs !== undefined) throw new Error(gaveUp(policy, (error as Error).message), { cause: error })
        throw error
      }
      return found
    })
  }

  /** The bootstrap connection, for requests any node answers (DescribeCluster, DescribeQuorum). */
  get any(): KafkaClient {
    return this.bootstrap
  }

  /**
   * Runs `send` at any node: the bootstrap connection, made again to another node when it failed. For requests every
   * node answers for the whole cluster that may meet a node not ready to (InitProducerId without a transactional id,
   * which Kafka's producer sends to its least loaded node: COORDINATOR_LOAD_IN_PROGRESS from a cluster node that has
   * no block of producer ids yet). A lost connection or a coordinator error asks again, as NODE_LOSS says (250 ms
   * apart, up to 30 s). `what` names the request for a connection error. Errors: the last such failure, followed by
   * `gave up after 30 s`; any other error `send` throws at once.
   */
  atAnyNode<T>(what: string, send: (client: KafkaClient) => Promise<T>): Promise<T> {
    return retrying(NODE_LOSS, async (last) => {
      try {
        if (this.bootstrap.failed) await this.reconnect()
        return await send(this.bootstrap)
      } catch (error) {
        return retryAfterLoss(what, error as Error, last)
      }
    })
  }

  /**
   * The connection to `nodeId`, opened on first use (the bootstrap connection when it is that node), and opened again
   * when the one made before has failed. Errors: a ConnectionError when the node cannot be reached, or is not among
   * the brokers the last Metadata listed (the controller fenced it: dead, or not yet caught up after a restart).
   */
  async node(nodeId: number): Promise<KafkaClient> {
    const cached = this.nodes.get(nodeId)
    if (cached) {
      const client = await cached
      if (!client.failed) return client
      this.nodes.delete(nodeId)
    }
    const address = this.addresses.get(nodeId)
    if (!address) throw new ConnectionError(`node ${nodeId} is not in the cluster metadata`)
    const client =
      `${address.host}:${address.port}` === this.bootstrap.address && !this.bootstrap.failed
        ? Promise.resolve(this.bootstrap)
        : KafkaClient.connect(address.host, address.port, this.options)
    this.nodes.set(nodeId, client)
    // A failed connect is not cached, so the next request after a metadata refresh tries again.
    client.catch(() => this.nodes.delete(nodeId))
    return client
  }

  /**
   * Runs `send` at every node Metadata lists, for requests each node answers for what it holds (ListGroups,
   * ListTransactions: the groups and transactional ids it coordinates), and returns the answers in node id order. A
   * node that cannot be reached (dead, but listed until the controller fences it) or answers a coordinator error
   * (COORDINATOR_LOAD_IN_PROGRESS while it loads what it took over) makes the whole round be asked again through fresh
   * Metadata, as NODE_LOSS says (250 ms apart, up to 30 s): a fenced node leaves the Metadata, and what it coordinated
   * moves to nodes asked in the next round, so no answer mixes rounds. `what` names the request for a connection
   * error. Errors: the first failure of the last round, followed by `gave up after 30 s`; any other error at once, and
   * at once too when the cluster's only node cannot be reached at the address it advertises (it has just answered
   * Metadata at the bootstrap address, so no fencing will change it).
   */
  atEveryNode<T>(what: string, send: (client: KafkaClient, nodeId: number) => Promise<T>): Promise<T[]> {
    let told = false
    return retrying(NODE_LOSS, async (last) => {
      let failure: Error | undefined
      try {
        await this.metadata([], { allowAutoTopicCreation: false })
        const ids = [...this.addresses.keys()].sort((a, b) => a - b)
        const answers = await Promise.allSettled(ids.map(async (nodeId) => send(await this.node(nodeId), nodeId)))
        const failures = answers.flatMap((answer) => (answer.status === 'rejected' ? [answer.reason as Error] : []))
        failure = failures.find((error) => !nodeMoved(error)) ?? failures[0]
        if (!failure) return answers.map((answer) => (answer as PromiseFulfilledResult<T>).value)
        const unreachable = ids.find((_, i) => answers[i]!.status === 'rejected' && (answers[i] as PromiseRejectedResult).reason instanceof ConnectionError)
        // The only node answered Metadata just now: what cannot be reached is the address it advertises, not a dead
        // node that a controller would fence. Waiting would not change it.
        if (unreachable !== undefined && ids.length === 1) {
          const error = (answers[0] as PromiseRejectedResult).reason as Error
          throw new Error(`${what}: node ${unreachable} answers at ${this.bootstrap.address} but not at the address it advertises to clients (${error.message}): its advertised host and port must be reachable from here`)
        }
        if (unreachable !== undefined && !last && !told) {
          told = true
          const error = (answers[ids.indexOf(unreachable)] as PromiseRejectedResult).reason as Error
          this.options.onWaiting?.(`node ${unreachable} cannot be reached (${error.message}); waiting until the controller fences it (up to ${NODE_LOSS.timeoutMs! / 1000} s), then asking the live nodes`)
        }
      } catch (error) {
        failure = error as Error
      }
      return retryAfterLoss(what, failure, last)
    })
  }

  /**
   * Runs `send` at the coordinator of group `groupId` (FindCoordinator, batched from v4), as Kafka's AdminClient does:
   * NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or COORDINATOR_LOAD_IN_PROGRESS (from FindCoordinator, or from what
   * `send` asks: __consumer_offsets being created, or loaded by a new leader) and a coordinator that cannot be reached
   * (a dead node stays the coordinator until the controller fences it and its partition gets a new leader) look the
   * coordinator up again and run `send` again, as NODE_LOSS says (250 ms apart, up to 30 s). Errors: the last such
   * failure, followed by `gave up after 30 s`; any other error `send` throws at once.
   */
  atGroupCoordinator<T>(groupId: string, send: (coordinator: GroupCoordinator) => Promise<T>): Promise<T> {
    return this.atCoordinator(groupId, CoordinatorType.GROUP, `group '${groupId}'`, send)
  }

  /** Runs `send` at the coordinator of a transactional id (FindCoordinator key type 1), as `atGroupCoordinator` does. */
  atTransactionCoordinator<T>(transactionalId: string, send: (coordinator: GroupCoordinator) => Promise<T>): Promise<T> {
    return this.atCoordinator(transactionalId, CoordinatorType.TRANSACTION, `transactional id '${transactionalId}'`, send)
  }

  private atCoordinator<T>(key: string, keyType: number, what: string, send: (coordinator: GroupCoordinator) => Promise<T>): Promise<T> {
    return retrying(NODE_LOSS, async (last) => {
      try {
        return await send(await this.findCoordinator(key, keyType, what))
      } catch (error) {
        return retryAfterLoss(`cannot reach the coordinator of ${what}`, error as Error, last)
      }
    })
  }

  /** One FindCoordinator and a connection to the node it names. Errors: a BrokerError, a ConnectionError. */
  private async findCoordinator(key: string, keyType: number, what: string): Promise<GroupCoordinator> {
    if (this.bootstrap.failed) await this.reconnect()
    const version = this.bootstrap.version(findCoordinator, '0-4')
    if (keyType !== CoordinatorType.GROUP && version < 1) throw new Error(`the broker at ${this.bootstrap.address} cannot find the coordinator of a ${what} (it needs FindCoordinator v1)`)
    const response = await this.bootstrap.request<FindCoordinatorRequest, FindCoordinatorResponse>(findCoordinator, version, {
      key,
      keyType,
      coordinatorKeys: [key],
    })
    const answer = version >= 4 ? response.coordinators?.find((c) => c.key === key) : { ...response, errorCode: response.errorCode ?? ErrorCode.NONE }
    if (!answer) throw new Error(`the broker did not answer FindCoordinator for ${what}`)
    checkError(answer.errorCode, `cannot find the coordinator of ${what}`, answer.errorMessage)
    const nodeId = answer.nodeId!
    // Metadata, when it was asked, already knows the node; otherwise the answer says where it listens.
    if (!this.addresses.has(nodeId)) this.addresses.set(nodeId, { host: answer.host!, port: answer.port! })
    return { nodeId, host: answer.host!, port: answer.port!, client: await this.node(nodeId) }
  }

  /**
   * Runs `send` at the leaders of `partitions` of `topic`, one request per leader, as Kafka's AdminClient
   * (ListOffsetsHandler, DescribeProducersHandler) and producer (Sender) do, and asks again what got no final answer:
   *
   *   partitions --topic's last Metadata, later fresh Metadata--> by leader --send--> per partition:
   *     NONE, or an error not retriable                          final: { answer }
   *     retriable (retriableAtLeader), no leader                 asked again
   *     leader unreachable (ConnectionError)   unreachable 'wait': asked again; 'report': { unavailable } at once
   *     no node answers Metadata               unreachable 'wait': asked again; 'report': the ConnectionError thrown
   *
   * `send(leader, partitions)` sends one request and returns the leader's answer by partition index; `options.policy`
   * says how long to ask again: NODE_LOSS for admin requests (ListOffsets, DescribeProducers: a dead node leads until
   * the controller fences it and elects another from the ISR), DELIVERY for Produce. Once its time is spent, a
   * partition still unanswered is `{ unavailable }` with its last reason and `; gave up after 30 s`. Errors, at once:
   * the topic's Metadata error (so a leader's UNKNOWN_TOPIC_OR_PARTITION never waits for a topic that is gone),
   * `topic 't' has no partition 9`, a leader that leaves out a partition, what `send` throws but a ConnectionError;
   * with 'report', the ConnectionError of a Metadata no node answered.
   */
  atLeaders<T>(
    topic: string,
    partitions: readonly number[],
    send: (leader: KafkaClient, partitions: number[]) => Promise<Map<number, T>>,
    options: AtLeadersOptions<T>,
  ): Promise<Map<number, LeaderOutcome<T>>> {
    const outcomes = new Map<number, LeaderOutcome<T>>()
    let pending = [...partitions]
    let known = this.topics.get(topic)
    return retrying(options.policy, async (last) => {
      const described =
        known ??
        (await this.topic(topic, { allowAutoTopicCreation: false }).catch((error: unknown) => {
          // No node answered the Metadata (a lone node restarting, every node down at once): with 'wait', the
          // partitions are asked again, as when their leader cannot be reached.
          if (error instanceof ConnectionError && options.unreachable === 'wait') return error
          throw error
        }))
      known = undefined
      // Partition -> why it is to be asked again.
      const again = new Map<number, string>()
      const byLeader = new Map<number, number[]>()
      for (const index of pending) {
        if (described instanceof ConnectionError) {
          again.set(index, described.message)
          continue
        }
        const partition = described.partitions.find((p) => p.partitionIndex === index)
        if (!partition) throw new Error(`topic '${topic}' has no partition ${index}`)
        if (partition.leaderId < 0) again.set(index, errorText(ErrorCode.LEADER_NOT_AVAILABLE))
        else byLeader.set(partition.leaderId, [...(byLeader.get(partition.leaderId) ?? []), index])
      }
      await Promise.all(
        [...byLeader].map(async ([leaderId, indexes]) => {
          let answers: Map<number, T>
          try {
            answers = await send(await this.node(leaderId), indexes)
          } catch (error) {
            if (!(error instanceof ConnectionError)) throw error
            const why = `leader ${leaderId} unreachable (${error.message})`
            for (const index of indexes) {
              if (options.unreachable === 'wait') again.set(index, why)
              else outcomes.set(index, { unavailable: why })
            }
            return
          }
          for (const index of indexes) {
            const answer = answers.get(index)
            if (answer === undefined) throw new Error(`leader ${leaderId} did not answer for ${topic}-${index}`)
            const errorCode = options.errorCode(answer)
            if (errorCode !== ErrorCode.NONE && retriableAtLeader(errorCode)) again.set(index, errorText(errorCode))
            else outcomes.set(index, { answer })
          }
        }),
      )
      if (again.size === 0) return outcomes
      if (last) {
        for (const [index, why] of again) outcomes.set(index, { unavailable: gaveUp(options.policy, why) })
        return outcomes
      }
      pending = [...again.keys()]
      return AGAIN
    })
  }

  /**
   * Runs `send` against the active controller, for the requests it runs (CreateTopics, DeleteTopics, CreatePartitions,
   * topic configs), as Kafka's AdminClient does: Metadata first, then the controller it names, or, while it names
   * none or that node cannot be reached, the bootstrap node, which forwards the request (KIP-590). NOT_CONTROLLER
   * (a node that knows no controller, or one that lost its place) and a connection that fails or times out are
   * tried again through fresh Metadata, 250 ms apart, for up to NODE_LOSS's 30 s (Kafka's
   * request.timeout.ms), the node that failed left out; so a command survives the loss of the controller or of the
   * node it bootstrapped from, whose successor the quorum elects within seconds. A change `send` makes waits up to
   * CONTROLLER_REQUEST_TIMEOUT_MS for its answer, so that it is not sent again while the node that forwards it may
   * still have the controller make it. REQUEST_TIMED_OUT (a forwarding node that reached no controller within its
   * 60 s, or a controller whose change did not commit in time) is not asked again, as Kafka's AdminClient does not:
   * the change may yet be made, and the error says so. `what` names the operation for a connection
   * error (`cannot create topic 'orders'`). Errors: the last failure, followed by `gave up after 30 s` once the time
   * is spent; any other error `send` throws (a BrokerError other than NOT_CONTROLLER) at once.
   */
  atController<T>(what: string, send: (client: KafkaClient) => Promise<T>): Promise<T> {
    const unreachable = new Set<number>()
    return retrying(NODE_LOSS, async (last) => {
      let target: number | null = null
      try {
        await this.metadata([], { allowAutoTopicCreation: false })
        const named = this.controllerId
        target = named >= 0 && this.addresses.has(named) && !unreachable.has(named) ? named : null
        return await send(target === null ? this.bootstrap : await this.node(target))
      } catch (error) {
        if (error instanceof ConnectionError && target !== null) unreachable.add(target)
        if (error instanceof BrokerError && error.errorCode === ErrorCode.REQUEST_TIMED_OUT) {
          throw new BrokerError(`${error.message}; the outcome is unknown: the controller may still make the change`, error.errorCode)
        }
        return retryAfterLoss(what, error as Error, last)
      }
    })
  }

  close(): void {
    this.bootstrap.close()
    for (const client of this.nodes.values()) client.then((c) => c.close(), () => {})
  }
}

/**
 * How long a request the active controller runs (CreateTopics, DeleteTopics, CreatePartitions, the config changes,
 * ElectLeaders, AlterPartitionReassignments, UnregisterBroker) waits for its answer, through `atController`: a
 * cluster node that forwards it asks the controller for up to 60 s from its first send (Kafka's forwarding channel,
 * retryTimeoutMs; a Kafka broker also waits for the send in flight then, up to controller.socket.timeout.ms, 30 s)
 * before it answers REQUEST_TIMED_OUT. A client that gave up sooner and sent the request again could be told the
 * change is in the way (TOPIC_ALREADY_EXISTS) when its first request made it, as Kafka's AdminClient can be after its
 * request.timeout.ms of 30 s.
 */
export const CONTROLLER_REQUEST_TIMEOUT_MS = 90_000

/**
 * Errors that mean the node asked is gone, or not (or not yet) the one that answers, so that another round through
 * fresh Metadata may succeed: a lost connection, NOT_CONTROLLER, the coordinator errors and the leader errors.
 */
const MOVED: ReadonlySet<number> = new Set([
  ErrorCode.NOT_CONTROLLER,
  ErrorCode.NOT_COORDINATOR,
  ErrorCode.COORDINATOR_NOT_AVAILABLE,
  ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
  ErrorCode.NOT_LEADER_OR_FOLLOWER,
  ErrorCode.LEADER_NOT_AVAILABLE,
])

/**
 * Whether a partition error from its leader (ListOffsets, Produce, DescribeProducers) may go away when the partition
 * is asked again through fresh Metadata: the errors Kafka's table marks retriable, its `RetriableException` subclasses, which hold
 * every `InvalidMetadataException` (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION,
 * UNKNOWN_LEADER_EPOCH, FENCED_LEADER_EPOCH) and OFFSET_NOT_AVAILABLE; Kafka's admin ListOffsetsHandler and its
 * producer's Sender retry these and fail on any other (TOPIC_AUTHORIZATION_FAILED, MESSAGE_TOO_LARGE). A node
 * restarted a moment ago answers them until it has replayed the metadata log and taken its partitions back, and a
 * leader that has not yet learned of a topic just created answers UNKNOWN_TOPIC_OR_PARTITION. Retrying the last does
 * not make a missing topic wait: the Metadata asked before the next attempt (`ClusterClient.topic`) fails at once
 * when the topic does not exist.
 */
function retriableAtLeader(errorCode: number): boolean {
  return errorInfo(errorCode).retriable
}

function nodeMoved(error: Error): boolean {
  return error instanceof ConnectionError || (error instanceof BrokerError && MOVED.has(error.errorCode))
}

/**
 * What a NODE_LOSS retry does with an attempt's failure: AGAIN while time is left and the failure is `nodeMoved`;
 * else it throws, `what` before a connection's error (which does not name the request), and after the last attempt
 * `; gave up after 30 s`.
 */
function retryAfterLoss(what: string, error: Error, last: boolean): typeof AGAIN {
  if (!nodeMoved(error)) throw error
  if (!last) return AGAIN
  const message = error instanceof ConnectionError ? `${what}: ${error.message}` : error.message
  throw new Error(gaveUp(NODE_LOSS, message))
}

/**
 * A connection to the first of `servers` that answers, tried in order, each next one started when the previous
 * failed or has not answered within BOOTSTRAP_HEDGE_MS; the first to answer wins and the rest are abandoned.
 * Errors: a ConnectionError naming every server tried, once all have failed.
 */
function firstAnswering(servers: readonly BrokerAddress[], options: ClusterClientOptions): Promise<KafkaClient> {
  const abandon = new AbortController()
  const failures: string[] = []
  return new Promise<KafkaClient>((resolve, reject) => {
    let started = 0
    let settled = false
    let hedge: NodeJS.Timeout | undefined
    const startNext = (): void => {
      clearTimeout(hedge)
      if (settled || started >= servers.length) return
      const { host, port } = servers[started++]!
      if (started < servers.length) hedge = setTimeout(startNext, BOOTSTRAP_HEDGE_MS)
      KafkaClient.connect(host, port, { ...options, signal: abandon.signal }).then(
        (client) => {
          if (settled) return client.close()
          settled = true
          clearTimeout(hedge)
          // The others still connecting are abandoned: a hung one must not hold the process for its timeout.
          abandon.abort()
          resolve(client)
        },
        (error: Error) => {
          if (settled) return
          failures.push(error.message)
          if (started < servers.length) startNext()
          else if (failures.length === servers.length) {
            settled = true
            reject(new ConnectionError(failures.join('; ')))
          }
        },
      )
    }
    startNext()
  })
}
