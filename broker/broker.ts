/**
 * A Brook node: storage, topics, the dispatcher and a listener. `Broker.start(config)` opens (and recovers) the data
 * directory, then listens; `stop()` closes connections, lets pending writes finish and closes the database. A start
 * that fails (the port is taken, the database cannot be opened) closes what it opened and removes the data directory
 * if it created it, so nothing is left behind.
 *
 * Storage failures are fail-stop for writes: after the first failed write to the database (a full disk, an I/O
 * error) every write is refused until the node restarts, and handlers answer with Kafka's error codes
 * (KAFKA_STORAGE_ERROR for partitions and topics, NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE for the group
 * coordinator). Kafka takes the failed log directory offline, and halts when it was the last one; Brook keeps
 * serving reads of what it acknowledged instead, which on a developer's machine is the more useful of the two: the
 * data stays readable while space is made, and a restart brings the node back with every acknowledged record.
 */
import { randomBytes } from 'node:crypto'
import { LogStore } from '../storage/log-store.js'
import { DEFAULT_CONFIG, type BrokerConfig } from './config.js'
import { Connection } from './connection.js'
import { Acceptor } from './acceptor.js'
import { RequestBudget } from './request-budget.js'
import { Dispatcher } from './dispatcher.js'
import { Logger } from './logger.js'
import { TopicManager } from './topics.js'
import { GroupCoordinator } from './group/coordinator.js'
import { LogCleaner } from './log-cleaner.js'
import { counted } from '../client/wording.js'

interface Identity {
  clusterId: string
  nodeId: number
}

export class Broker {
  private acceptor: Acceptor | null = null
  readonly dispatcher = new Dispatcher()
  readonly cleaner: LogCleaner
  /** queued.max.requests and queued.max.request.bytes, shared by every connection. */
  private readonly budget: RequestBudget

  private constructor(
    readonly config: BrokerConfig,
    readonly store: LogStore,
    readonly topics: TopicManager,
    readonly clusterId: string,
    readonly log: Logger,
    readonly groups: GroupCoordinator,
  ) {
    this.cleaner = new LogCleaner(topics, config, log)
    this.budget = new RequestBudget({ maxRequests: config.queuedMaxRequests, maxBytes: config.queuedMaxRequestBytes }, log)
  }

  static async start(options: Partial<BrokerConfig> = {}): Promise<Broker> {
    const config: BrokerConfig = { ...DEFAULT_CONFIG, ...options }
    const log = new Logger(`node ${config.nodeId}`, config.logLevel)
    const store = await LogStore.open(config.dataDir, {
      fsync: config.fsync,
      onFailure: (error) =>
        log.error(
          `${error.message}. From now on this node refuses every write (KAFKA_STORAGE_ERROR) and keeps serving reads of ` +
            'what it acknowledged; restart it once the cause is fixed',
        ),
    })
    try {
      const identity = await loadIdentity(store, config.nodeId)
      const topics = new TopicManager(store, config.nodeId)
      await topics.load()
      const groups = new GroupCoordinator(topics, config, log)
      await groups.load()
      const broker = new Broker(config, store, topics, identity.clusterId, log, groups)
      await broker.listen()
      broker.cleaner.start()
      log.info(
        `listening on ${config.host}:${broker.port} (cluster ${identity.clusterId}, data in ${config.dataDir}, ` +
          `${counted(topics.list().length, 'topic')})`,
      )
      return broker
    } catch (error) {
      await store.close({ removeCreatedDir: true })
      throw error
    }
  }

  get nodeId(): number {
    return this.config.nodeId
  }

  /** The port actually bound (differs from the config when it asked for 0). */
  get port(): number {
    return this.acceptor?.port ?? this.config.port
  }

  get advertisedHost(): string {
    return this.config.advertisedHost ?? this.config.host
  }

  private listen(): Promise<void> {
    const { config } = this
    this.acceptor = new Acceptor({
      host: config.host,
      port: config.port,
      maxConnections: config.maxConnections,
      maxConnectionsPerIp: config.maxConnectionsPerIp,
      log: this.log,
      serve: (socket) => new Connection(socket, this, this.budget, this.log),
    })
    return this.acceptor.listen()
  }

  async stop(): Promise<void> {
    const acceptor = this.acceptor
    this.acceptor = null
    await acceptor?.close()
    this.groups.close()
    await this.cleaner.stop()
    await this.store.close()
    this.log.info('stopped')
  }
}

/** The cluster id is made once, Kafka-style (a random 16-byte id in base64url), and kept with the data. */
async function loadIdentity(store: LogStore, nodeId: number): Promise<Identity> {
  const stored = await store.getNodeValue<Identity>('identity')
  if (stored) {
    if (stored.nodeId !== nodeId) {
      throw new Error(`this data directory belongs to node ${stored.nodeId}, not node ${nodeId}`)
    }
    return stored
  }
  const identity = { clusterId: randomBytes(16).toString('base64url'), nodeId }
  await store.putNodeValue('identity', identity)
  return identity
}
