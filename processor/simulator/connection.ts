/**
 * The cluster side of a run, shared by the fleet and the replay: prepare the topic with an admin client, then send
 * through one producer, and always disconnect both so that the process can exit.
 *
 * The producer uses kafkajs's DefaultPartitioner, the Java client's murmur2 of the key: a deviceId lands on the
 * partition where any Kafka client would put it. It is idempotent, as Kafka's producers are by default (KIP-679): a
 * batch kafkajs sends again after a lost answer or a leader change is written once, and a batch `sendWhole` sends
 * again after kafkajs cut a send short keeps its sequence numbers (kafkajs moves them on only for the partitions an
 * answer names), so the leader writes it if the first try never arrived and answers it as a duplicate if it did.
 * Topics are never auto-created by a send: `prepareTopic` has created or checked the topic before, with the configs
 * the run needs.
 */
import kafkajs from 'kafkajs'
import type { Producer } from 'kafkajs'
import { SimulatorError, SimulatorErrorCode } from './errors.js'
import type { ConnectionOptions, Log, RunOptions } from './options.js'
import { describeError, prepareTopic, type PreparedTopic, type TopicPlan } from './topic.js'
import { saslNotOffered } from '../runtime/sasl.js'
import { socketFactory } from '../runtime/sockets.js'
import { withTargetTopics } from '../runtime/target-topics.js'
import { seedTopics } from '../runtime/topics.js'
import { WholeSends } from '../runtime/whole-sends.js'

const { Kafka, Partitioners, logLevel } = kafkajs

/**
 * How the producer retries a batch, where the client's `retry` settings say nothing else: kafkajs's backoff (300 ms
 * doubling, ±20%) capped at 5 s a wait, twelve times, about 44 s in all. That rides out the death of a node: its
 * partitions get new leaders once the controller fences it (broker.session.timeout.ms, 9 s by default in Kafka and
 * Brook, a controller election more when it was the controller), and the run goes on within 5 s of that. kafkajs's
 * own default, five retries with waits up to 30 s, gives up after about 9 s, often just before the leaders move; seven
 * would last long enough but could wait 19 s more after the move. Kafka's producer retries every 100 ms
 * (retry.backoff.ms) for up to delivery.timeout.ms, 2 minutes. Every field is set, so the schedule does not depend on
 * kafkajs's defaults (which differ when NODE_ENV is `test`).
 */
export const SIMULATOR_RETRY = { initialRetryTime: 300, multiplier: 2, factor: 0.2, maxRetryTime: 5000, retries: 12 } as const

/** Lines on stderr, prefixed with what they are. */
export const STDERR_LOG: Log = {
  info: (message) => process.stderr.write(`${message}\n`),
  warn: (message) => process.stderr.write(`warning: ${message}\n`),
}

/** Prepares `plan.topic`, then hands a connected producer to `send`; tells `connection.onStage` how far it got. */
export async function withTopicProducer<T>(connection: ConnectionOptions & Pick<RunOptions, 'onStage'>, plan: TopicPlan, log: Log, send: (producer: Producer, topic: PreparedTopic, sends: WholeSends) => Promise<T>): Promise<T> {
  /** A client of the cluster; `retry` (the simulator's for the producer) goes before any --kafka-config retry. */
  const client = (retry?: typeof SIMULATOR_RETRY) =>
    new Kafka({ clientId: 'brook-simulator', logLevel: logLevel.NOTHING, socketFactory: socketFactory(), ...connection.kafka, brokers: connection.bootstrapServers, ...(retry ? { retry: { ...retry, ...connection.kafka?.retry } } : {}) })
  const kafka = client()
  // The admin client's CreateTopics refreshes metadata for the client's topics, every topic in the cluster when it has
  // none, which fails while any partition anywhere is offline (runtime/target-topics.ts): it starts with the topic, or
  // with __consumer_offsets while the topic does not exist yet.
  const scout = kafka.admin()
  let seeds: string[]
  try {
    await connect(() => scout.connect(), connection)
    connection.onStage?.('preparing-topic')
    seeds = await seedTopics(scout, [plan.topic]).catch(() => [])
  } finally {
    await scout.disconnect()
  }
  const admin = withTargetTopics(kafka, seeds, () => kafka.admin())
  const sends = new WholeSends(admin)
  let prepared: PreparedTopic
  try {
    await connect(() => admin.connect(), connection)
    prepared = await prepareTopic(admin, plan, log)
    await sends.learn([plan.topic])
  } finally {
    await admin.disconnect()
  }
  // Its first Metadata (an idempotent producer's, at connect) asks about the topic only, not every topic in the
  // cluster, which would fail while any partition anywhere is offline (runtime/target-topics.ts).
  // The producer's client gets the same retries: kafkajs reconnects a producer whose cluster it lost (a lone broker
  // restarted) with the client's retry settings, not the producer's, and kafkajs's default five gave up within about
  // 20 s. The admin clients above keep kafkajs's, so that a cluster that is not there fails the start in seconds.
  const producerKafka = client(SIMULATOR_RETRY)
  const producer = withTargetTopics(producerKafka, [plan.topic], () => producerKafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    idempotent: true,
    // kafkajs makes an idempotent producer's retries unbounded unless told otherwise: a cluster gone for good would
    // hold the run forever. SIMULATOR_RETRY (or the client's own settings) bound them.
    retry: { ...SIMULATOR_RETRY, ...connection.kafka?.retry },
  }))
  try {
    await connect(() => producer.connect(), connection)
    connection.onStage?.('sending')
    return await send(producer, prepared, sends)
  } finally {
    await producer.disconnect()
  }
}

async function connect(open: () => Promise<void>, connection: ConnectionOptions): Promise<void> {
  try {
    await open()
  } catch (error) {
    throw new SimulatorError(SimulatorErrorCode.brokerRefused, `cannot connect to ${connection.bootstrapServers.join(',')}: ${saslNotOffered(error) ?? describeError(error)}`, { cause: error })
  }
}
