/**
 * Idempotent produce at the wire, with Brook's own client, for what no real client sends on purpose: sequence gaps,
 * stale epochs, a new epoch not starting at 0, retries within and beyond the five-batch window, a transactional batch
 * without a transactional id, InitProducerId in every version (KIP-360's resume fields included), producer state that
 * survives a clean stop and kill -9, producer ids never handed out twice across restarts, and producer.id.expiration.ms.
 * After each refused batch the partition takes the next good one and reads back exactly the accepted batches.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { createTopic, listOffset, producePartition, readPartition, recordsOf, withClient } from '../helpers/kafka.js'
import { waitFor } from '../helpers/wait.js'
import type { KafkaClient } from '../../client/kafka-client.js'
import { encodeRecordBatch, Attribute } from '../../protocol/record-batch.js'
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../../protocol/messages/init-producer-id.js'

// Kafka's codes, spelt out (Errors.java).
const NONE = 0
const OUT_OF_ORDER_SEQUENCE_NUMBER = 45
const INVALID_PRODUCER_EPOCH = 47
const TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53
const INVALID_REQUEST = 42

let brokers: BrokerProcess[] = []
afterEach(async () => {
  for (const broker of brokers) {
    await broker.stop()
    broker.cleanup()
  }
  brokers = []
})

async function start(args: string[] = []): Promise<BrokerProcess> {
  const broker = await startBroker({ args })
  brokers.push(broker)
  return broker
}

function init(client: KafkaClient, version: number, fields: Partial<InitProducerIdRequest> = {}): Promise<InitProducerIdResponse> {
  return client.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, version, {
    transactionalId: null,
    transactionTimeoutMs: 60_000,
    producerId: -1n,
    producerEpoch: -1,
    ...fields,
  })
}

/** A batch of `count` records `${tag}-i` from producer `producerId` at `epoch`, starting at `sequence`. */
function batch(producerId: bigint, epoch: number, sequence: number, count: number, tag: string, options: { transactional?: boolean } = {}): Buffer {
  return encodeRecordBatch(
    Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`${tag}-${i}`) })),
    { producerId, producerEpoch: epoch, baseSequence: sequence, flags: options.transactional ? Attribute.transactional : 0 },
  )
}

async function send(client: KafkaClient, topic: string, records: Buffer): Promise<{ errorCode: number; baseOffset: bigint }> {
  const answer = await producePartition(client, topic, 0, records)
  return { errorCode: answer.errorCode, baseOffset: answer.baseOffset }
}

async function valuesOf(client: KafkaClient, topic: string): Promise<string[]> {
  const { batches } = await readPartition(client, topic, 0)
  return recordsOf(batches).map((r) => r.value!.toString())
}

describe('InitProducerId without a transactional id', () => {
  it('answers a new producer id with epoch 0 in every version, and never the same id twice, across restarts too', async () => {
    let broker = await start()
    const seen = new Set<bigint>()
    await withClient(broker, async (client) => {
      for (let version = 0; version <= 5; version++) {
        const answer = await init(client, version)
        expect(answer.errorCode, `v${version}`).toBe(NONE)
        expect(answer.producerEpoch).toBe(0)
        seen.add(answer.producerId!)
      }
      // KIP-360: an idempotent producer resuming with its id and epoch is given a new id (it has no state to keep).
      const first = [...seen][0]!
      const resumed = await init(client, 4, { producerId: first, producerEpoch: 0 })
      expect(resumed.errorCode).toBe(NONE)
      expect(seen.has(resumed.producerId!)).toBe(false)
      seen.add(resumed.producerId!)
      // A producer id without an epoch (or the reverse) is malformed.
      expect((await init(client, 3, { producerId: first, producerEpoch: -1 })).errorCode).toBe(INVALID_REQUEST)
      expect((await init(client, 5, { producerId: -1n, producerEpoch: 3 })).errorCode).toBe(INVALID_REQUEST)
    })
    expect(seen.size).toBe(7)
    for (const stopping of ['stop', 'kill'] as const) {
      await broker[stopping]()
      broker = await broker.restart()
      brokers = [broker]
      await withClient(broker, async (client) => {
        const answer = await init(client, 4)
        expect(answer.errorCode).toBe(NONE)
        // Ids come in durably reserved blocks: a restart moves on to a block nobody used.
        expect(seen.has(answer.producerId!), `${stopping}: ${answer.producerId} handed out again`).toBe(false)
        seen.add(answer.producerId!)
      })
    }
  }, 60_000)
})

describe('idempotent produce', () => {
  it('answers a retry with the original offsets, refuses gaps and stale epochs, and a refused batch moves nothing', async () => {
    const broker = await start()
    await createTopic(broker, 'idem-wire')
    await withClient(broker, async (client) => {
      const { producerId } = await init(client, 4)
      const id = producerId!
      expect(await send(client, 'idem-wire', batch(id, 0, 0, 3, 'a'))).toEqual({ errorCode: NONE, baseOffset: 0n })
      expect(await send(client, 'idem-wire', batch(id, 0, 3, 2, 'b'))).toEqual({ errorCode: NONE, baseOffset: 3n })
      // A retry of either of them: the original offsets, nothing written.
      expect(await send(client, 'idem-wire', batch(id, 0, 0, 3, 'a'))).toEqual({ errorCode: NONE, baseOffset: 0n })
      expect(await send(client, 'idem-wire', batch(id, 0, 3, 2, 'b'))).toEqual({ errorCode: NONE, baseOffset: 3n })
      // A gap, and an overlap that is not a retry of a whole batch.
      expect((await send(client, 'idem-wire', batch(id, 0, 9, 1, 'gap'))).errorCode).toBe(OUT_OF_ORDER_SEQUENCE_NUMBER)
      expect((await send(client, 'idem-wire', batch(id, 0, 4, 2, 'overlap'))).errorCode).toBe(OUT_OF_ORDER_SEQUENCE_NUMBER)
      // The refused batches did not advance the sequence: 5 still follows.
      expect(await send(client, 'idem-wire', batch(id, 0, 5, 1, 'c'))).toEqual({ errorCode: NONE, baseOffset: 5n })
      // A new epoch must start at 0; then the old epoch is fenced.
      expect((await send(client, 'idem-wire', batch(id, 1, 6, 1, 'bad-epoch-start'))).errorCode).toBe(OUT_OF_ORDER_SEQUENCE_NUMBER)
      expect(await send(client, 'idem-wire', batch(id, 1, 0, 1, 'd'))).toEqual({ errorCode: NONE, baseOffset: 6n })
      expect((await send(client, 'idem-wire', batch(id, 0, 6, 1, 'stale'))).errorCode).toBe(INVALID_PRODUCER_EPOCH)
      // Five more batches push the first batch of epoch 1 out of the window: its retry is no longer recognised.
      for (let i = 0; i < 5; i++) expect((await send(client, 'idem-wire', batch(id, 1, 1 + i, 1, `e${i}`))).errorCode).toBe(NONE)
      expect((await send(client, 'idem-wire', batch(id, 1, 0, 1, 'd'))).errorCode).toBe(OUT_OF_ORDER_SEQUENCE_NUMBER)
      // ...while the oldest of the last five still is.
      expect(await send(client, 'idem-wire', batch(id, 1, 1, 1, 'e0'))).toEqual({ errorCode: NONE, baseOffset: 7n })
      // A transactional batch needs the request's transactional id.
      expect((await send(client, 'idem-wire', batch(id, 1, 6, 1, 'txn', { transactional: true }))).errorCode).toBe(TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
      // The partition is healthy: plain and idempotent batches go on, and it holds exactly the accepted batches.
      expect(await send(client, 'idem-wire', encodeRecordBatch([{ value: Buffer.from('plain') }]))).toEqual({ errorCode: NONE, baseOffset: 12n })
      expect(await send(client, 'idem-wire', batch(id, 1, 6, 1, 'f'))).toEqual({ errorCode: NONE, baseOffset: 13n })
      expect(await valuesOf(client, 'idem-wire')).toEqual(['a-0', 'a-1', 'a-2', 'b-0', 'b-1', 'c-0', 'd-0', 'e0-0', 'e1-0', 'e2-0', 'e3-0', 'e4-0', 'plain', 'f-0'])
    })
  }, 60_000)

  it('answers a retry on a CreateTime topic with the original batch\'s maxTimestamp as logAppendTime, as Kafka answers a duplicate', async () => {
    const broker = await start()
    await createTopic(broker, 'idem-create-time')
    await withClient(broker, async (client) => {
      const id = (await init(client, 4)).producerId!
      const now = BigInt(Date.now())
      const timestamps = [now - 3000n, now - 1000n, now - 2000n]
      const records = encodeRecordBatch(
        timestamps.map((timestamp, i) => ({ value: Buffer.from(`t-${i}`), timestamp })),
        { producerId: id, producerEpoch: 0, baseSequence: 0 },
      )
      const first = await producePartition(client, 'idem-create-time', 0, records)
      expect(first.errorCode).toBe(NONE)
      expect(first.logAppendTimeMs).toBe(-1n)
      // UnifiedLog.append's duplicate branch sets logAppendTime to BatchMetadata.timestamp, the batch's maxTimestamp.
      const retry = await producePartition(client, 'idem-create-time', 0, Buffer.from(records))
      expect(retry.errorCode).toBe(NONE)
      expect(retry.baseOffset).toBe(first.baseOffset)
      expect(retry.logAppendTimeMs).toBe(now - 1000n)
      expect(await valuesOf(client, 'idem-create-time')).toEqual(['t-0', 't-1', 't-2'])
    })
  }, 60_000)

  for (const stopping of ['stop', 'kill'] as const) {
    it(`keeps the producer state across ${stopping === 'stop' ? 'a clean stop' : 'kill -9'}: retries are still recognised, gaps still refused`, async () => {
      let broker = await start()
      await createTopic(broker, `idem-restart-${stopping}`)
      const topic = `idem-restart-${stopping}`
      let id = 0n
      await withClient(broker, async (client) => {
        id = (await init(client, 4)).producerId!
        for (let i = 0; i < 8; i++) expect((await send(client, topic, batch(id, 0, i * 2, 2, `r${i}`))).errorCode).toBe(NONE)
      })
      await broker[stopping]()
      broker = await broker.restart()
      brokers = [broker]
      await withClient(broker, async (client) => {
        // The last batch, and the oldest of the five retained, are retries; the one before those is not recognised.
        expect(await send(client, topic, batch(id, 0, 14, 2, 'r7'))).toEqual({ errorCode: NONE, baseOffset: 14n })
        expect(await send(client, topic, batch(id, 0, 6, 2, 'r3'))).toEqual({ errorCode: NONE, baseOffset: 6n })
        expect((await send(client, topic, batch(id, 0, 4, 2, 'r2'))).errorCode).toBe(OUT_OF_ORDER_SEQUENCE_NUMBER)
        expect((await send(client, topic, batch(id, 0, 20, 1, 'gap'))).errorCode).toBe(OUT_OF_ORDER_SEQUENCE_NUMBER)
        expect(await send(client, topic, batch(id, 0, 16, 1, 'next'))).toEqual({ errorCode: NONE, baseOffset: 16n })
        expect(await listOffset(client, topic, 0, -1n)).toMatchObject({ offset: 17n })
      })
    }, 60_000)
  }

  it('checkpoints producer states every log.flush.offset.checkpoint.interval.ms: after kill -9 nothing before it is replayed', async () => {
    const produceAndKill = async (args: string[], topic: string): Promise<{ restarted: BrokerProcess; id: bigint }> => {
      const broker = await start(['--log-level', 'debug', ...args])
      await createTopic(broker, topic)
      let id = 0n
      await withClient(broker, async (client) => {
        id = (await init(client, 4)).producerId!
        for (let i = 0; i < 8; i++) expect((await send(client, topic, batch(id, 0, i * 2, 2, `r${i}`))).errorCode).toBe(NONE)
      })
      if (args.length > 0) await waitFor('a checkpoint after the appends', () => broker.output().includes(`producer state of ${topic}-0 checkpointed at offset 16`))
      await broker.kill()
      const restarted = await broker.restart()
      brokers.push(restarted)
      return { restarted, id }
    }
    // With the default interval (a minute), the restart replays all eight batches.
    const unchecked = await produceAndKill([], 'idem-unchecked')
    expect(unchecked.restarted.output()).toMatch(/producer states rebuilt: 8 batches replayed/)

    const checked = await produceAndKill(['--log-flush-offset-checkpoint-interval-ms', '200'], 'idem-checked')
    expect(checked.restarted.output()).not.toMatch(/producer states rebuilt/)
    await withClient(checked.restarted, async (client) => {
      expect(await send(client, 'idem-checked', batch(checked.id, 0, 14, 2, 'r7'))).toEqual({ errorCode: NONE, baseOffset: 14n })
      expect((await send(client, 'idem-checked', batch(checked.id, 0, 20, 1, 'gap'))).errorCode).toBe(OUT_OF_ORDER_SEQUENCE_NUMBER)
      expect(await send(client, 'idem-checked', batch(checked.id, 0, 16, 1, 'next'))).toEqual({ errorCode: NONE, baseOffset: 16n })
    })
  }, 90_000)

  it('forgets an idle producer after producer.id.expiration.ms: its next batch may start at any sequence', async () => {
    const broker = await start(['--producer-id-expiration-ms', '1000', '--producer-id-expiration-check-interval-ms', '100'])
    await createTopic(broker, 'idem-expiry')
    await withClient(broker, async (client) => {
      const id = (await init(client, 4)).producerId!
      expect((await send(client, 'idem-expiry', batch(id, 0, 0, 1, 'x'))).errorCode).toBe(NONE)
      expect((await send(client, 'idem-expiry', batch(id, 0, 7, 1, 'gap'))).errorCode).toBe(OUT_OF_ORDER_SEQUENCE_NUMBER)
      // Once the state is gone, Kafka accepts any sequence from an unknown producer (its batches may have been deleted).
      await waitFor('the idle producer to be forgotten', async () => (await send(client, 'idem-expiry', batch(id, 0, 7, 1, 'late'))).errorCode === NONE)
      expect(await valuesOf(client, 'idem-expiry')).toEqual(['x-0', 'late-0'])
    })
  }, 60_000)
})
