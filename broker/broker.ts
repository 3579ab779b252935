/**
 * A Brook node: storage, topics, the dispatcher and a listener. `Broker.start(config)` opens (and recovers) the data
 * directory, then listens; `stop()` closes connections, lets pending writes finish and closes the database. A start
 * that fails (the port is taken, the database cannot be opened) closes what it opened and removes the data directory
 * if it created it, so nothing is left behind.
 *
 * With `controller.quorum.voters` the node is a member of a replicated cluster (cluster/README.md): it also runs its
 * controller quorum member (cluster/quorum-runner.ts), listens a second time at its own voter address for the quorum
 * (the controller listener), and once listening registers and heartbeats as a broker (cluster/broker-lifecycle.ts).
 * Its client listener accepts connections from the start (so its port is known when it registers) but reads none
 * until the controller has unfenced it, that is until it has caught up with the metadata log: before that, its
 * metadata image may be long stale (a restarted node's names topics deleted since, knows none created since, and
 * counts no live brokers), and answers from it would mislead clients. Kafka's brokers likewise enable request
 * processing only after their initial catch-up; a client sees a slow first answer, or tries another bootstrap server.
 * A failure of the quorum member (a failed metadata write, a broken Raft invariant) stops the node with exit code 1.
 *
 * Storage failures are fail-stop for writes: after the first failed write to the database (a full disk, an I/O
 * error) every write is refused until the node restarts, and handlers answer with Kafka's error codes
 * (KAFKA_STORAGE_ERROR for partitions and topics, NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE for the group
 * coordinator). Kafka takes the failed log directory offline, and halts when it was the last one; Brook keeps
 * serving reads of what it acknowledged instead, which on a developer's machine is the more useful of the two: the
 * data stays readable while space is made, and a restart brings the node back with every acknowledged record.
 */
import { LogStore, StorageError } from '../storage/log-store.js'
import { isStorageFailure } from '../storage/database.js'
import { DEFAULT_CONFIG, type BrokerConfig } from './config.js'
import { Connection } from './connection.js'
import { isIP, type Socket } from 'node:net'
import { Acceptor } from './acceptor.js'
import { RequestBudget } from './request-budget.js'
import { AnswerBudget } from './answer-budget.js'
import { CLUSTER_NODE_HANDLERS, CONTROLLER_HANDLERS, Dispatcher, HANDLERS } from './dispatcher.js'
import { Logger } from './logger.js'
import { TopicManager } from './topics.js'
import { GroupCoordinator } from './group/coordinator.js'
import { GroupMetadataManager } from './group/metadata-manager.js'
import { LogCleaner } from './log-cleaner.js'
import { TransactionCoordinator } from './transaction/coordinator.js'
import { LocalProducerIdBlockSource, ProducerIdManager } from './transaction/producer-id-manager.js'
import { TxnMarkerWriter } from './transaction/markers.js'
import { TxnMarkerChannel } from './transaction/marker-channel.js'
import { NodeChannels } from './cluster/node-channels.js'
import { OFFSETS_TOPIC } from './group/offsets-topic.js'
import { TRANSACTION_STATE_TOPIC } from './transaction/transaction-log.js'
import { CoordinatorPartitions } from './coordinator-partitions.js'
import { counted } from '../client/wording.js'
import type { BrokerServices } from './handler.js'
import { checkClusterId, newClusterId, parseQuorumVoters, type QuorumVoter } from './cluster/voters.js'
import { QuorumRunner } from './cluster/quorum-runner.js'
import { BrokerLifecycle } from './cluster/broker-lifecycle.js'
import { LocalLogs } from './cluster/local-logs.js'
import { ReplicaManager } from './cluster/replica-manager.js'
import { ControllerProducerIdBlockSource } from './cluster/producer-id-blocks.js'
import { hostPort, unbracketed } from '../client/address.js'
import type { Identity } from './data-directory.js'

/** How long a request from this node to another (WriteTxnMarkers, AddPartitionsToTxn) may take before it is retried. */
const BROKER_REQUEST_TIMEOUT_MS = 10_000

/** What a cluster node runs besides a single node's parts: its quorum member, its logs following the image, its replicas. */
interface ClusterParts {
  runner: QuorumRunner
  self: QuorumVoter
  localLogs: LocalLogs
  replicas: ReplicaManager
  producerIds: ProducerIdManager
}

/** Kafka's replica.high.watermark.checkpoint.interval.ms default: how often a cluster node stores its high watermarks. */
const HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS = 5000

/**
 * The composition root of a node: it builds the services handlers see (BrokerServices), the dispatcher and the
 * listener, and owns their lifecycle. Nothing else under broker/ imports this module.
 */
export class Broker {
  private acceptor: Acceptor | null = null
  /** A cluster node's client connections accepted before it caught up, held unread; null once it serves. */
  private held: Set<Socket> | null
  private readonly dispatcher: Dispatcher
  /** A cluster node's controller listener and its broker lifecycle (registration, heartbeats). */
  private controllerAcceptor: Acceptor | null = null
  private lifecycle: BrokerLifecycle | null = null
  private readonly cleaner: LogCleaner
  private readonly producerExpiry: NodeJS.Timeout
  private readonly producerCheckpoint: NodeJS.Timeout
  /** A cluster node's high-watermark checkpoint (null on a single node, whose high watermark is its durable log end). */
  private readonly highWatermarkCheckpoint: NodeJS.Timeout | null
  /** queued.max.requests and queued.max.request.bytes, shared by every connection. */
  private readonly budget: RequestBudget
  /** This node as clients reach it; the port, unless advertised, is set once the listener is bound. */
  private readonly endpoint: { nodeId: number; host: string; port: number }
  /** Where this node listens; the port is set once the listener is bound. */
  private readonly listener: { host: string; port: number }
  /** What every handler gets of this node. */
  readonly services: BrokerServices

  private constructor(
    readonly config: BrokerConfig,
    private readonly store: LogStore,
    private readonly topics: TopicManager,
    clusterId: string,
    readonly log: Logger,
    private readonly groupMetadata: GroupMetadataManager,
    private readonly groups: GroupCoordinator,
    private readonly transactions: TransactionCoordinator,
    markers: TxnMarkerWriter,
    coordinatorPartitions: BrokerServices['coordinatorPartitions'],
    private readonly quorum: ClusterParts | null,
  ) {
    this.dispatcher = new Dispatcher(quorum ? CLUSTER_NODE_HANDLERS : HANDLERS)
    this.held = quorum ? new Set() : null
    this.cleaner = new LogCleaner(topics, config, log)
    // Kafka's LogManager schedules this as producer-expiration.
    this.producerExpiry = setInterval(() => {
      const removed = topics.removeExpiredProducers()
      if (removed > 0) log.debug(`${counted(removed, 'idle producer id')} forgotten after producer.id.expiration.ms`)
    }, config.producerIdExpirationCheckIntervalMs)
    this.producerExpiry.unref()
    // Kafka's recovery-point checkpoint: after a crash, the producer state is rebuilt from here on.
    this.producerCheckpoint = setInterval(() => {
      void topics.snapshotProducerStates({ changedOnly: true }).then(
        (taken) => {
          for (const { partition, offset } of taken) log.debug(`producer state of ${partition.topic.name}-${partition.index} checkpointed at offset ${offset}`)
        },
        (error: Error) => log.warn(`checkpointing producer states failed: ${error.message}`),
      )
    }, config.logFlushOffsetCheckpointIntervalMs)
    this.producerCheckpoint.unref()
    // Kafka's ReplicaManager schedules this as highwatermark-checkpoint: a node killed with kill -9 restarts from a high
    // watermark at most this old, where the next write alone could be far off for a follower or an idle partition.
    this.highWatermarkCheckpoint = quorum
      ? setInterval(() => {
          void store.checkpointHighWatermarks().catch((error: Error) => log.warn(`checkpointing high watermarks failed: ${error.message}`))
        }, HIGH_WATERMARK_CHECKPOINT_INTERVAL_MS)
      : null
    this.highWatermarkCheckpoint?.unref()
    this.budget = new RequestBudget({ maxRequests: config.queuedMaxRequests, maxBytes: config.queuedMaxRequestBytes }, log)
    this.endpoint = { nodeId: config.nodeId, host: config.advertisedHost ?? config.host, port: config.advertisedPort ?? config.port }
    this.listener = { host: config.host, port: config.port }
    this.services = {
      topics,
      groups,
      transactions,
      markers,
      coordinatorPartitions,
      config,
      log,
      clusterId,
      endpoint: this.endpoint,
      listener: this.listener,
      apiVersions: this.dispatcher.advertised,
      answers: new AnswerBudget(config.queuedMaxResponseBytes),
      ...(quorum ? { quorum: quorum.runner, replicas: quorum.replicas } : {}),
    }
  }

  /**
   * Opens (and recovers) the node's data and loads its topics and groups, without listening: the first half of
   * `start`, and what in-process tests run handlers over. A failure closes what it opened and removes the data
   * directory if it created it.
   */
  static async open(options: Partial<BrokerConfig> = {}): Promise<Broker> {
    const config: BrokerConfig = { ...DEFAULT_CONFIG, ...options }
    const log = new Logger(`node ${config.nodeId}`, config.logLevel)
    const clustered = config.controllerQuorumVoters !== undefined
    let broker: Broker | null = null
    let halting = false
    /**
     * Stops a cluster node that can no longer trust what it persists (its storage or its quorum member failed), with
     * one line saying why, and no controlled shutdown (nothing it would commit could be written); the node then
     * exits with code 1. The first cause is the one told: a quorum member that stops because storage failed is not.
     */
    const halt = (reason: string): void => {
      if (halting) return
      halting = true
      log.error(reason)
      process.exitCode = 1
      void broker?.stop({ controlledShutdown: false }).catch((error: Error) => log.error(`stopping failed: ${error.stack ?? error.message}`))
    }
    const store = await LogStore.open(config.dataDir, {
      fsync: config.fsync,
      cacheMaxBytes: config.cacheMaxBytes,
      // A single node keeps serving reads. A cluster node stops, as a Kafka broker halts when its metadata log
      // directory fails: it could not persist the metadata log (its quorum member stops at the next record) nor
      // replicate, and until it stopped it would hold every ISR it is in (acks=all waits for it until
      // replica.lag.time.max.ms) and keep leading partitions it cannot write (the controller fences it once it stops).
      onFailure: (error) =>
        clustered
          ? halt(`${error.message}. A cluster node cannot write its metadata log nor replicate without its storage: stopping the node (its partitions move to the other replicas); restart it once the cause is fixed`)
          : log.error(
              `${error.message}. From now on this node refuses every write (KAFKA_STORAGE_ERROR) and keeps serving reads of ` +
                'what it acknowledged; restart it once the cause is fixed',
            ),
    })
    let groupMetadata: GroupMetadataManager | null = null
    let runner: QuorumRunner | null = null
    try {
      const topics = new TopicManager(store, config.nodeId, config)
      // LevelDB's own errors (a damaged table file: "Corruption: ...") name no directory.
      const { identity, replayed } = await (async () => {
        const identity = await loadIdentity(store, config)
        // Opening reads every partition's state (more after a crash): on a node with thousands of partitions that
        // takes seconds, so say what is being opened before it starts.
        const stored = await store.listTopics()
        const partitions = stored.reduce((sum, record) => sum + record.partitions, 0)
        if (stored.length > 0) log.info(`opening ${counted(stored.length, 'topic')} (${counted(partitions, 'partition')}) in ${config.dataDir}`)
        // A single node's dynamic broker configs are in its data; a cluster node's in the metadata image (LocalLogs).
        if (config.controllerQuorumVoters === undefined) await topics.loadDynamicConfigs()
        return { identity, replayed: await topics.load(stored) }
      })().catch((error: Error) => {
        if (!isStorageFailure(error)) throw error
        throw new StorageError(`cannot open the database in ${config.dataDir}: ${error.message}`, { cause: error })
      })
      if (replayed > 0) log.info(`producer states rebuilt: ${counted(replayed, 'batch', 'batches')} replayed since the last checkpoint`)
      let quorum: ClusterParts | null = null
      let self: QuorumVoter | null = null
      let replicas: ReplicaManager | null = null
      if (config.controllerQuorumVoters !== undefined) {
        const voters = parseQuorumVoters(config.controllerQuorumVoters)
        self = voters.find((voter) => voter.id === config.nodeId) ?? null
        if (!self) throw new Error(`node ${config.nodeId} is not among controller.quorum.voters (${voters.map((v) => v.id).join(', ')}); every node of a Brook cluster is a voter`)
        runner = await QuorumRunner.start({
          nodeId: config.nodeId,
          clusterId: identity.clusterId,
          voters,
          store: store.raftStore(),
          log,
          brokerSessionTimeoutMs: config.brokerSessionTimeoutMs,
          autoLeaderRebalanceEnable: config.autoLeaderRebalance,
          leaderImbalanceCheckIntervalMs: config.leaderImbalanceCheckIntervalSeconds * 1000,
          raftConfig: { maxBytesBetweenSnapshots: config.metadataLogMaxRecordBytesBetweenSnapshots, electionTimeoutMs: config.controllerQuorumElectionTimeoutMs },
          // The member cannot know what survived a failed write or a broken invariant: the node stops.
          onFatal: (error) => halt(`the controller quorum member stopped: ${error.stack ?? error.message}; stopping the node`),
        })
        replicas = new ReplicaManager({
          nodeId: config.nodeId,
          topics,
          quorum: runner,
          brokerEpoch: () => broker?.lifecycle?.currentBrokerEpoch ?? null,
          log,
          config: { replicaLagTimeMaxMs: config.replicaLagTimeMaxMs, replicaFetchWaitMaxMs: config.replicaFetchWaitMaxMs },
        })
      }
      const cluster = runner && replicas ? { quorum: runner, nodeId: config.nodeId, replicas } : undefined
      const coordinatorPartitions = {
        groups: new CoordinatorPartitions({ topic: OFFSETS_TOPIC, partitions: config.offsetsTopicPartitions, topics, log, ...(cluster ? { cluster } : {}) }),
        transactions: new CoordinatorPartitions({
          topic: TRANSACTION_STATE_TOPIC,
          partitions: config.transactionStateLogNumPartitions,
          topics,
          log,
          minInsyncReplicas: config.transactionStateLogMinIsr,
          ...(cluster ? { cluster } : {}),
        }),
      }
      groupMetadata = new GroupMetadataManager(topics, coordinatorPartitions.groups, config, log)
      await groupMetadata.load()
      const groups = new GroupCoordinator(groupMetadata, config, log)
      coordinatorPartitions.groups.serve(groups)
      const markers = new TxnMarkerWriter(topics, log, replicas ?? undefined)
      const offsetsMetadata = groupMetadata
      markers.onMarker((tp, marker) => {
        if (tp.topic === OFFSETS_TOPIC) offsetsMetadata.completeTransaction(tp.partition, marker.producerId, marker.committed)
      })
      // A cluster node's blocks come from the controller (KIP-730), under the broker epoch it registers with once listening.
      const blocks = runner
        ? new ControllerProducerIdBlockSource({ quorum: runner, brokerEpoch: () => broker?.lifecycle?.currentBrokerEpoch ?? null })
        : new LocalProducerIdBlockSource(store)
      // Broker-to-broker requests of the transaction coordinator (markers, verifications), on the other nodes' client listeners.
      const nodes = runner ? new NodeChannels(runner, { clientId: `brook-node-${config.nodeId}`, timeoutMs: BROKER_REQUEST_TIMEOUT_MS }) : undefined
      const markerChannel = new TxnMarkerChannel(markers, log, cluster && nodes ? { ...cluster, nodes } : undefined)
      const producerIds = new ProducerIdManager(blocks)
      const transactions = new TransactionCoordinator(producerIds, topics, coordinatorPartitions.transactions, markerChannel, config, log, nodes)
      await transactions.load()
      coordinatorPartitions.transactions.serve(transactions)
      if (runner && self && replicas) {
        // The node's topics follow the committed metadata image from the start (a restored snapshot included), and
        // the coordinators follow the partitions of their internal topics once the logs are in place and the node has
        // caught up with the metadata log (Kafka's brokers start their coordinators after the initial catch-up).
        const nodeReplicas = replicas
        const localLogs = new LocalLogs(topics, log, {
          nodeId: config.nodeId,
          onApplied: (image, { caughtUp }) => {
            nodeReplicas.apply(image)
            if (!caughtUp) return
            coordinatorPartitions.groups.follow(image)
            coordinatorPartitions.transactions.follow(image)
          },
        })
        runner.onImage((image) => localLogs.follow(image))
        localLogs.follow(runner.controller.image)
        quorum = { runner, self, localLogs, replicas: nodeReplicas, producerIds }
      }
      // Halted while opening, with no node yet to stop (a write that failed and whose caller went on): the open fails.
      if (halting) throw new Error('the node stopped while opening its data (the error above says why)')
      broker = new Broker(config, store, topics, identity.clusterId, log, groupMetadata, groups, transactions, markers, coordinatorPartitions, quorum)
      return broker
    } catch (error) {
      await runner?.stop()
      groupMetadata?.close()
      await store.close({ removeCreatedDir: true })
      throw error
    }
  }

  /** Opens the node (`open`), listens, and starts the log cleaner. */
  static async start(options: Partial<BrokerConfig> = {}): Promise<Broker> {
    const broker = await Broker.open(options)
    try {
      await broker.listen()
    } catch (error) {
      await broker.acceptor?.close()
      await broker.quorum?.runner.stop()
      broker.stopBackgroundWork()
      await broker.store.close({ removeCreatedDir: true })
      throw error
    }
    broker.cleaner.start()
    broker.transactions.startTimers()
    const { config, quorum } = broker
    const controller = quorum ? `controller listener ${hostPort(quorum.self.host, quorum.self.port)}, ` : ''
    broker.log.info(
      `listening on ${hostPort(config.host, broker.port)} (${boundAs(config.host, broker.acceptor?.boundHost ?? null)}${controller}cluster ${broker.services.clusterId}, data in ${config.dataDir}, ` +
        `${counted(broker.services.topics.list().length, 'topic')})`,
    )
    if (quorum) {
      const { localLogs, replicas, producerIds } = quorum
      broker.lifecycle = new BrokerLifecycle({
        quorum: quorum.runner,
        endpoint: broker.endpoint,
        heartbeatIntervalMs: config.brokerHeartbeatIntervalMs,
        sessionTimeoutMs: config.brokerSessionTimeoutMs,
        log: broker.log,
        onStateChange: (state) => {
          if (state === 'unfenced') {
            localLogs.markCaughtUp()
            replicas.markCaughtUp()
            // InitProducerId does not wait for a block (RPCProducerIdManager): the first one is asked for before the
            // node serves, so a client's first InitProducerId rarely finds none.
            producerIds.maybeRequestNextBlock()
            broker.startServing()
          }
        },
      })
      broker.lifecycle.start()
    }
    return broker
  }

  /** Where clients reach this node (`host:port`, Kafka's advertised listener), once it listens. */
  get advertisedAddress(): string {
    return hostPort(this.endpoint.host, this.endpoint.port)
  }

  /** The port actually bound (differs from the config when it asked for 0), whatever port is advertised. */
  get port(): number {
    return this.listener.port
  }

  private async listen(): Promise<void> {
    const { config } = this
    const acceptor = new Acceptor({
      host: config.host,
      port: config.port,
      maxConnections: config.maxConnections,
      maxConnectionsPerIp: config.maxConnectionsPerIp,
      log: this.log,
      serve: (socket) => {
        const held = this.held
        if (!held) return this.serve(socket)
        held.add(socket)
        socket.once('close', () => held.delete(socket))
      },
    })
    this.acceptor = acceptor
    await listenFor('--host', acceptor, config.host, config.port)
    this.listener.port = acceptor.port
    // Kafka's advertised.listeners: behind a port forward the port clients reach is not the one bound.
    if (config.advertisedPort === undefined) this.endpoint.port = acceptor.port
    if (!this.quorum) return
    // The quorum's own listener, with its own request budget: client load never queues the quorum's messages.
    const { self } = this.quorum
    const dispatcher = new Dispatcher(CONTROLLER_HANDLERS)
    const services = { ...this.services, apiVersions: dispatcher.advertised }
    const budget = new RequestBudget({ maxRequests: config.queuedMaxRequests, maxBytes: config.queuedMaxRequestBytes }, this.log)
    const controllerAcceptor = new Acceptor({
      host: self.host,
      port: self.port,
      maxConnections: config.maxConnections,
      maxConnectionsPerIp: config.maxConnectionsPerIp,
      log: this.log,
      serve: (socket) => new Connection(socket, { dispatcher, services, budget, log: this.log }),
    })
    this.controllerAcceptor = controllerAcceptor
    await listenFor(`controller.quorum.voters (node ${config.nodeId}'s controller listener)`, controllerAcceptor, self.host, self.port)
  }

  private serve(socket: Socket): void {
    new Connection(socket, { dispatcher: this.dispatcher, services: this.services, budget: this.budget, log: this.log })
  }

  /** Starts reading client connections: the ones held until now, and every new one. */
  private startServing(): void {
    const held = this.held ?? new Set()
    this.held = null
    for (const socket of held) this.serve(socket)
  }

  /** Stops the coordinators' timers and producer-id expiration. */
  private stopBackgroundWork(): void {
    this.groups.close()
    this.groupMetadata.close()
    this.transactions.close()
    clearInterval(this.producerExpiry)
    clearInterval(this.producerCheckpoint)
    if (this.highWatermarkCheckpoint) clearInterval(this.highWatermarkCheckpoint)
  }

  /**
   * Closes the listener and its connections, stops background work, and closes the database. A cluster node first
   * hands its leaderships over through a controlled shutdown (cluster/broker-lifecycle.ts), still serving its clients
   * meanwhile, then, if it is the active controller, resigns from the controller quorum and waits (an election
   * timeout at most) for the other voters to elect a new leader (QuorumRunner.resign), its listeners still open;
   * neither happens when `controlledShutdown` is false (its quorum member failed: nothing it knows can be trusted),
   * nor with `withCluster`: every node is stopping with this one (`brook dev`), so none would be left to take the
   * leaderships, and a voter it cannot reach meanwhile is no WARN.
   */
  async stop(options: { controlledShutdown?: boolean; withCluster?: boolean } = {}): Promise<void> {
    if (options.withCluster) this.quorum?.runner.peersStopping()
    if (options.controlledShutdown !== false && !options.withCluster) {
      await this.lifecycle?.controlledShutdown()
      await this.quorum?.runner.resign()
    }
    const acceptor = this.acceptor
    this.acceptor = null
    await acceptor?.close()
    await this.lifecycle?.stop()
    this.lifecycle = null
    await this.quorum?.replicas.stop()
    await this.quorum?.runner.stop()
    await this.quorum?.localLogs.settled()
    // A coordinator's partition being loaded reads the database, which closes below.
    const { groups, transactions } = this.services.coordinatorPartitions
    await Promise.all([groups.settled(), transactions.settled()])
    const controllerAcceptor = this.controllerAcceptor
    this.controllerAcceptor = null
    await controllerAcceptor?.close()
    this.stopBackgroundWork()
    await this.cleaner.stop()
    await this.topics.snapshotProducerStates()
    await this.store.close()
    this.log.info('stopped')
  }
}

/**
 * The data directory records the cluster id, node id and controller quorum voters it was made with (Kafka's
 * meta.properties, and the voters of its bootstrap checkpoint). A node refuses a data directory of another node id,
 * of another cluster (`clusterId` given and different), or of another controller quorum: a cluster node's directory
 * opened as a single node would take writes its cluster later truncates, and a quorum whose voters changed could
 * elect a leader from new, empty voters, whose metadata log would delete every topic this node holds (Brook's
 * quorum has a fixed voter set; Kafka's static `controller.quorum.voters` cannot change either). A new directory takes
 * `clusterId` when given; a node of a replicated cluster (`controller.quorum.voters` set) must be given one then, as
 * every voter must agree on it; a single node makes one, Kafka-style (16 random bytes in base64url).
 */
async function loadIdentity(store: LogStore, config: BrokerConfig): Promise<Identity> {
  const { nodeId, clusterId } = config
  if (clusterId !== undefined) checkClusterId(clusterId)
  const voters = config.controllerQuorumVoters === undefined ? null : parseQuorumVoters(config.controllerQuorumVoters).map((voter) => voter.id)
  const stored = await store.getNodeValue<Identity>('identity')
  if (stored) {
    if (stored.nodeId !== nodeId) {
      throw new Error(`this data directory belongs to node ${stored.nodeId}, not node ${nodeId}`)
    }
    // The voters first: a single node's directory given to a cluster node says so, rather than naming two cluster ids.
    const recorded = stored.voters
    if (recorded === undefined) {
      // Made before the voters were kept: a metadata log says it was a cluster node's, whose voters this start names;
      // none, with topics stored, a single node's, whose topics a cluster node would delete as missing from its image.
      const clusterNode = await store.hasMetadataLog()
      if (voters === null && clusterNode) throw new Error(quorumMismatch(config.dataDir, [], null))
      if (voters !== null && !clusterNode && (await store.listTopics()).length > 0) throw new Error(quorumMismatch(config.dataDir, null, voters))
    } else if (!sameVoters(recorded, voters)) {
      throw new Error(quorumMismatch(config.dataDir, recorded, voters))
    }
    if (clusterId !== undefined && stored.clusterId !== clusterId) {
      throw new Error(`the data directory ${config.dataDir} belongs to cluster ${stored.clusterId}, not cluster ${clusterId}`)
    }
    if (recorded === undefined) await store.putNodeValue('identity', { ...stored, voters })
    return { ...stored, voters }
  }
  if (clusterId === undefined && voters !== null) {
    throw new Error(`${config.dataDir} is a new data directory: a cluster node needs --cluster-id (the same on every node; \`brook cluster new-id\` makes one)`)
  }
  const identity = { clusterId: clusterId ?? newClusterId(), nodeId, voters }
  await store.putNodeValue('identity', identity)
  return identity
}

function sameVoters(a: readonly number[] | null, b: readonly number[] | null): boolean {
  if (a === null || b === null) return a === b
  return a.length === b.length && a.every((id, i) => id === b[i])
}

/** The one-line refusal of a data directory made for another controller quorum (or none). */
function quorumMismatch(dataDir: string, stored: readonly number[] | null, configured: readonly number[] | null): string {
  if (stored === null) {
    return `the data directory ${dataDir} holds a single node's data; a node of a replicated cluster needs a new data directory`
  }
  if (configured === null) {
    const named = stored.length > 0 ? ` (controller quorum voters ${stored.join(', ')})` : ''
    return `the data directory ${dataDir} belongs to a node of a replicated cluster${named}; start it with its cluster's --controller-quorum-voters (brook dev does), or give a single node another --data-dir`
  }
  return (
    `the data directory ${dataDir} belongs to a cluster whose controller quorum voters are ${stored.join(', ')}, not ${configured.join(', ')}: ` +
    'the voters of a cluster cannot change; start it with the same voters, or use a new data directory'
  )
}

/**
 * For a host name given to listen on, the address it was bound to (`bound to ::1, `): a name resolves to one address
 * of the machine, which may not be the one clients try (`localhost` to ::1 where /etc/hosts lists ::1 first). Empty
 * for an address given as such.
 */
function boundAs(host: string, bound: string | null): string {
  return bound === null || isIP(unbracketed(host)) !== 0 || unbracketed(host) === bound ? '' : `bound to ${bound}, `
}

/**
 * `acceptor.listen()`, with Node's errors for an address the machine does not have (`listen EADDRNOTAVAIL ...`) or a
 * name that does not resolve (`getaddrinfo ENOTFOUND ...`) told in one line that names `setting`, where the host
 * came from: those are a mistake in it, not in the node. Kafka's SocketServer, likewise, names the listener
 * ("Socket server failed to bind to h:p").
 */
async function listenFor(setting: string, acceptor: Acceptor, host: string, port: number): Promise<void> {
  try {
    await acceptor.listen()
  } catch (error) {
    const { code } = error as NodeJS.ErrnoException
    const address = hostPort(host, port)
    if (code === 'EADDRNOTAVAIL') throw new Error(`${setting}: cannot listen on ${address}: ${host} is not an address of this machine (EADDRNOTAVAIL)`, { cause: error })
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL') {
      throw new Error(`${setting}: cannot listen on ${address}: the name ${host} does not resolve (getaddrinfo ${code})`, { cause: error })
    }
    throw error
  }
}
