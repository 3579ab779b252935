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
import type { ConnectionOptions, Log } from './options.js'
import { describeError, prepareTopic, type PreparedTopic, type TopicPlan } from './topic.js'
import { saslNotOffered } from '../runtime/sasl.js'
import { socketFactory } from '../runtime/sockets.js'
import { withTargetTopics } from '../runtime/target-topics.js'
import { seedTopics } from '../runtime/topics.js'
import { WholeSends } from '../runtime/whole-sends.js'

const { Kafka, Partitioners, logLevel } = kafkajs

/** kafkajs's default number of retries of a request. */
const DEFAULT_RETRIES = 5

/** Lines on stderr, prefixed with what they are. */
export const STDERR_LOG: Log = {
  info: (message) => process.stderr.write(`${message}\n`),
  warn: (message) => process.stderr.write(`warning: ${message}\n`),
}

/** Prepares `plan.topic`, then hands a connected producer to `send`. */
export async function withTopicProducer<T>(connection: ConnectionOptions, plan: TopicPlan, log: Log, send: (producer: Producer, topic: PreparedTopic, sends: WholeSends) => Promise<T>): Promise<T> {
  const kafka = new Kafka({ clientId: 'brook-simulator', logLevel: logLevel.NOTHING, socketFactory: socketFactory(), ...connection.kafka, brokers: connection.bootstrapServers })
  // The admin client's CreateTopics refreshes metadata for the client's topics, every topic in the cluster when it has
  // none, which fails while any partition anywhere is offline (runtime/target-topics.ts): it starts with the topic, or
  // with __consumer_offsets while the topic does not exist yet.
  const scout = kafka.admin()
  let seeds: string[]
  try {
    await connect(() => scout.connect(), connection)
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
  const producer = withTargetTopics(kafka, [plan.topic], () => kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    idempotent: true,
    // kafkajs makes an idempotent producer's retries unbounded unless told otherwise: a cluster gone for good would
    // hold the run forever. The client's own retries (kafkajs's default 5) bound them, as they did before.
    retry: { retries: connection.kafka?.retry?.retries ?? DEFAULT_RETRIES },
  }))
  try {
    await connect(() => producer.connect(), connection)
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
