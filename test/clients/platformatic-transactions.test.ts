/**
 * @platformatic/kafka 1.35's transactional producer against one broker process: transactions over two topics
 * committed and aborted, a consume-transform-produce step whose input offset is committed with the transaction
 * (AddOffsetsToTxn and TxnOffsetCommit through `addConsumer` and `addOffset`), and a zombie fenced by a second
 * producer with the same transactional id (KIP-98).
 *
 * What the transactions left is read back with kcat (librdkafka skips every aborted transaction of a fetch): this
 * client's own read_committed filter keys the fetch's aborted transactions by producer id
 * (`clients/consumer/consumer.js`, `#filterUncommittedMessages`), so of several aborted transactions of one producer
 * in one fetch answer it skips only the last, whatever the broker; the partitions here are read through kcat to test
 * what the broker stored and answered, not that client quirk.
 *
 * The second producer is created with `producerId: -1n, producerEpoch: -1`: without them the client's first
 * InitProducerId names producer id 0 and epoch 0 (`clients/producer/producer.js`, `#initIdempotentProducer`), which
 * Kafka's TransactionCoordinator (`prepareInitProducerIdTransit`, `isValidProducerId`) answers PRODUCER_FENCED (90)
 * for a transactional id whose producer id is another, as Brook does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Admin, Consumer, Producer, ProduceAcks, stringDeserializers, stringSerializers, type Message } from '@platformatic/kafka'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { kcat } from '../helpers/kcat.js'

const INVALID_PRODUCER_EPOCH = 47
const PRODUCER_FENCED = 90

/** The Kafka error codes inside a platformatic error (it nests one error per request and per partition). */
function errorCodes(error: unknown): number[] {
  const codes: number[] = []
  const walk = (e: { errors?: unknown[]; apiCode?: number }): void => {
    if (typeof e.apiCode === 'number') codes.push(e.apiCode)
    for (const inner of e.errors ?? []) walk(inner as typeof e)
  }
  walk(error as Parameters<typeof walk>[0])
  return [...new Set(codes)]
}

describe('@platformatic/kafka 1.35 transactions', () => {
  let broker: BrokerProcess
  const closers: (() => Promise<unknown>)[] = []
  beforeAll(async () => {
    broker = await startBroker({ args: ['--group-initial-rebalance-delay-ms', '0'] })
  })
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined)
    await broker?.stop()
    await broker?.cleanup()
  })

  function transactionalProducer(transactionalId: string, clientId: string): Producer<string, string, string, string> {
    const producer = new Producer({
      clientId,
      bootstrapBrokers: [broker.address],
      serializers: stringSerializers,
      idempotent: true,
      transactionalId,
      acks: ProduceAcks.ALL,
      // The client asks for its request timeout as transaction.timeout.ms: 5 s by default, which a loaded machine
      // can outlast between a transaction's first send and its commit.
      timeout: 60_000,
      producerId: -1n,
      producerEpoch: -1,
    })
    closers.push(() => producer.close())
    return producer
  }

  async function createTopics(topics: string[], partitions: number): Promise<void> {
    const admin = new Admin({ clientId: 'plt-tx-admin', bootstrapBrokers: [broker.address] })
    try {
      await admin.createTopics({ topics, partitions, replicas: 1 })
    } finally {
      await admin.close()
    }
  }

  async function read(topic: string, isolation: 'read_committed' | 'read_uncommitted'): Promise<string[]> {
    const { stdout } = await kcat(['-C', '-b', broker.address, '-t', topic, '-e', '-q', '-X', `isolation.level=${isolation}`, '-f', '%s\\n'])
    return stdout.split('\n').filter((line) => line !== '').sort()
  }

  it('commits and aborts transactions over several partitions of two topics, each all or nothing', async () => {
    await createTopics(['plt-tx-left', 'plt-tx-right'], 3)
    const producer = transactionalProducer('plt-tx-mixed', 'plt-tx-mixed')
    const outcomes: [string, 'commit' | 'abort'][] = [['t1', 'commit'], ['t2', 'abort'], ['t3', 'abort'], ['t4', 'commit'], ['t5', 'abort']]
    for (const [name, outcome] of outcomes) {
      const transaction = await producer.beginTransaction()
      await transaction.send({
        messages: [0, 1, 2].flatMap((partition) => [
          { topic: 'plt-tx-left', partition, value: `${name}-left-${partition}` },
          { topic: 'plt-tx-right', partition, value: `${name}-right-${partition}` },
        ]),
      })
      if (outcome === 'commit') await transaction.commit()
      else await transaction.abort()
    }

    const expected = (topic: string, names: string[]): string[] => names.flatMap((name) => [0, 1, 2].map((p) => `${name}-${topic}-${p}`)).sort()
    expect(await read('plt-tx-left', 'read_committed')).toEqual(expected('left', ['t1', 't4']))
    expect(await read('plt-tx-right', 'read_committed')).toEqual(expected('right', ['t1', 't4']))
    expect(await read('plt-tx-left', 'read_uncommitted')).toEqual(expected('left', ['t1', 't2', 't3', 't4', 't5']))
  })

  it('commits a consumed offset with the transaction that wrote its result, and not with an aborted one', async () => {
    await createTopics(['plt-tx-input', 'plt-tx-output'], 1)
    const source = new Producer({ clientId: 'plt-tx-source', bootstrapBrokers: [broker.address], serializers: stringSerializers })
    closers.push(() => source.close())
    await source.send({ messages: ['a', 'b', 'c'].map((value) => ({ topic: 'plt-tx-input', partition: 0, value })) })

    const producer = transactionalProducer('plt-tx-ctp', 'plt-tx-ctp')
    const consumer = new Consumer({
      clientId: 'plt-tx-ctp-consumer',
      groupId: 'plt-tx-ctp',
      bootstrapBrokers: [broker.address],
      deserializers: stringDeserializers,
      maxWaitTime: 200,
    })
    closers.push(() => consumer.close())
    const stream = await consumer.consume({ topics: ['plt-tx-input'], mode: 'earliest', autocommit: false })
    const consumed: Message<string, string, string, string>[] = []
    for await (const message of stream) {
      consumed.push(message)
      if (consumed.length === 3) break
    }
    // a and b are processed in committed transactions, c in an aborted one.
    for (const message of consumed) {
      const transaction = await producer.beginTransaction()
      await transaction.addConsumer(consumer)
      await transaction.send({ messages: [{ topic: 'plt-tx-output', partition: 0, value: message.value.toUpperCase() }] })
      await transaction.addOffset(message)
      if (message.value === 'c') await transaction.abort()
      else await transaction.commit()
    }

    const committed = await consumer.listCommittedOffsets({ topics: [{ topic: 'plt-tx-input', partitions: [0] }] })
    // The offset after b (offset 1): c's aborted commit is not the group's.
    expect(committed.get('plt-tx-input')).toEqual([2n])
    expect(await read('plt-tx-output', 'read_committed')).toEqual(['A', 'B'])
  })

  it('fences the first producer of a transactional id once a second one has started: its open transaction is aborted', async () => {
    await createTopics(['plt-tx-fenced'], 2)
    const zombie = transactionalProducer('plt-tx-fenced', 'plt-tx-zombie')
    const open = await zombie.beginTransaction()
    await open.send({ messages: [{ topic: 'plt-tx-fenced', partition: 0, value: 'zombie-before' }] })

    const successor = transactionalProducer('plt-tx-fenced', 'plt-tx-successor')
    const current = await successor.beginTransaction()

    // A produce with the old epoch to a partition of its transaction (Kafka's ProducerStateManager).
    const produced = await open.send({ messages: [{ topic: 'plt-tx-fenced', partition: 0, value: 'zombie-after' }] }).then(() => [], errorCodes)
    expect(produced).toEqual([INVALID_PRODUCER_EPOCH])
    // A new partition (AddPartitionsToTxn) and the commit (EndTxn) at the coordinator.
    const added = await open.send({ messages: [{ topic: 'plt-tx-fenced', partition: 1, value: 'zombie-new-partition' }] }).then(() => [], errorCodes)
    expect(added).toEqual([PRODUCER_FENCED])
    expect(await open.commit().then(() => [], errorCodes)).toEqual([PRODUCER_FENCED])

    await current.send({ messages: [{ topic: 'plt-tx-fenced', partition: 0, value: 'successor' }] })
    await current.commit()
    expect(await read('plt-tx-fenced', 'read_committed')).toEqual(['successor'])
    expect(await read('plt-tx-fenced', 'read_uncommitted')).toEqual(['successor', 'zombie-before'])
  })
})
