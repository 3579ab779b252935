/**
 * Transactions at the wire, with Brook's own client, for the inputs no real client sends on purpose and the fields
 * clients hide: a transactional batch for a partition not added (KIP-890's verification), EndTxn for an unknown
 * transactional id, a transaction timeout above transaction.max.timeout.ms, stale epochs after a bump, EndTxn with
 * nothing open, Fetch read_committed's abortedTransactions, OffsetFetch requireStable while a transactional commit is
 * pending, WriteTxnMarkers, AddPartitionsToTxn v4's batch of transactions (adding or only verifying), KIP-360's
 * InitProducerId of a producer a new instance fenced and of a retry after a lost answer, a partition
 * AddPartitionsToTxn names twice, and
 * transactional.id.expiration.ms. After each refusal the partition and the coordinator
 * go on working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { connect, createTopic, fetchPartition, listOffset, splitBatches, withClient } from '../helpers/kafka.js'
import { commit, committedOffsets } from '../helpers/groups-wire.js'
import { deleteGroups, type DeleteGroupsRequest, type DeleteGroupsResponse } from '../../protocol/messages/delete-groups.js'
import { listGroups, type ListGroupsRequest, type ListGroupsResponse } from '../../protocol/messages/list-groups.js'
import { deleteTopics, type DeleteTopicsRequest, type DeleteTopicsResponse } from '../../protocol/messages/delete-topics.js'
import type { KafkaClient } from '../../client/kafka-client.js'
import { Attribute, encodeRecordBatch, decodeRecords } from '../../protocol/record-batch.js'
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../../protocol/messages/init-producer-id.js'
import { addPartitionsToTxn, type AddPartitionsToTxnRequest, type AddPartitionsToTxnResponse } from '../../protocol/messages/add-partitions-to-txn.js'
import { addOffsetsToTxn, type AddOffsetsToTxnRequest, type AddOffsetsToTxnResponse } from '../../protocol/messages/add-offsets-to-txn.js'
import { endTxn, type EndTxnRequest, type EndTxnResponse } from '../../protocol/messages/end-txn.js'
import { txnOffsetCommit, type TxnOffsetCommitRequest, type TxnOffsetCommitResponse } from '../../protocol/messages/txn-offset-commit.js'
import { writeTxnMarkers, type WriteTxnMarkersRequest, type WriteTxnMarkersResponse } from '../../protocol/messages/write-txn-markers.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../protocol/messages/find-coordinator.js'
import { describeTransactions, type DescribeTransactionsRequest, type DescribeTransactionsResponse } from '../../protocol/messages/describe-transactions.js'
import { waitFor } from '../helpers/wait.js'
import { offsetFetch, type OffsetFetchRequest, type OffsetFetchResponse } from '../../protocol/messages/offset-fetch.js'
import { produce, type ProduceRequest, type ProduceResponse } from '../../protocol/messages/produce.js'

// Kafka's codes, spelt out (Errors.java).
const NONE = 0
const UNKNOWN_TOPIC_OR_PARTITION = 3
const INVALID_REQUEST = 42
const INVALID_PRODUCER_EPOCH = 47
const INVALID_TXN_STATE = 48
const INVALID_PRODUCER_ID_MAPPING = 49
const INVALID_TRANSACTION_TIMEOUT = 50
const OPERATION_NOT_ATTEMPTED = 55
const UNSTABLE_OFFSET_COMMIT = 88
const PRODUCER_FENCED = 90
const TRANSACTIONAL_ID_NOT_FOUND = 105

let broker: BrokerProcess
let client: KafkaClient
beforeAll(async () => {
  broker = await startBroker()
  client = await connect(broker)
})
afterAll(async () => {
  client?.close()
  await broker?.stop()
  broker?.cleanup()
})

async function init(transactionalId: string, transactionTimeoutMs = 60_000, version = 4): Promise<InitProducerIdResponse> {
  return client.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, version, { transactionalId, transactionTimeoutMs, producerId: -1n, producerEpoch: -1 })
}

/** KIP-360's InitProducerId of a producer that goes on after an error: it names its producer id and epoch (v3+). */
async function resume(transactionalId: string, producerId: bigint, producerEpoch: number, version = 4): Promise<InitProducerIdResponse> {
  return client.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, version, { transactionalId, transactionTimeoutMs: 60_000, producerId, producerEpoch })
}

async function addPartitions(transactionalId: string, producerId: bigint, producerEpoch: number, topics: { name: string; partitions: number[] }[], version = 3) {
  const response = await client.request<Partial<AddPartitionsToTxnRequest>, AddPartitionsToTxnResponse>(addPartitionsToTxn, version, {
    v3AndBelowTransactionalId: transactionalId,
    v3AndBelowProducerId: producerId,
    v3AndBelowProducerEpoch: producerEpoch,
    v3AndBelowTopics: topics,
  })
  return response.resultsByTopicV3AndBelow!.flatMap((t) => t.resultsByPartition.map((p) => p.partitionErrorCode))
}

async function end(transactionalId: string, producerId: bigint, producerEpoch: number, committed: boolean, version = 3): Promise<number> {
  return (await client.request<EndTxnRequest, EndTxnResponse>(endTxn, version, { transactionalId, producerId, producerEpoch, committed })).errorCode
}

/** Produces a transactional batch of `values` (sequence `sequence`) with the request's transactional id. */
async function produceTxn(transactionalId: string, producerId: bigint, producerEpoch: number, topic: string, partition: number, sequence: number, values: string[]) {
  const records = encodeRecordBatch(values.map((v) => ({ value: Buffer.from(v) })), { producerId, producerEpoch, baseSequence: sequence, flags: Attribute.transactional })
  const response = await client.request<ProduceRequest, ProduceResponse>(produce, 9, {
    transactionalId,
    acks: -1,
    timeoutMs: 10_000,
    topicData: [{ name: topic, partitionData: [{ index: partition, records }] }],
  })
  return response.responses[0]!.partitionResponses[0]!
}

async function readValues(topic: string, isolationLevel: 0 | 1) {
  const answer = await fetchPartition(client, { topic, partition: 0, offset: 0n, isolationLevel })
  const batches = splitBatches(answer.records)
  const values = batches.filter((b) => (b.header.attributes & Attribute.control) === 0).flatMap((b) => decodeRecords(b.bytes).map((r) => r.value!.toString()))
  return { values, abortedTransactions: answer.abortedTransactions, lastStableOffset: answer.lastStableOffset, highWatermark: answer.highWatermark }
}

describe('transactions at the wire', () => {
  it('FindCoordinator answers transactional ids (key type 1) in every version, batched in v4', async () => {
    for (let version = 1; version <= 3; version++) {
      const answer = await client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, version, { key: 'txn-x', keyType: 1 })
      expect(answer.errorCode, `v${version}`).toBe(NONE)
      expect(answer.port).toBe(broker.port)
    }
    const batched = await client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, 4, { keyType: 1, coordinatorKeys: ['a', 'b'] })
    expect(batched.coordinators!.map((c) => [c.key, c.errorCode, c.port])).toEqual([['a', NONE, broker.port], ['b', NONE, broker.port]])
  })

  it('refuses a timeout above transaction.max.timeout.ms, and EndTxn for an unknown transactional id', async () => {
    expect((await init('txn-too-long', 900_001)).errorCode).toBe(INVALID_TRANSACTION_TIMEOUT)
    expect((await init('txn-too-long', 0)).errorCode).toBe(INVALID_TRANSACTION_TIMEOUT)
    expect(await end('txn-never-seen', 5n, 0, true)).toBe(INVALID_PRODUCER_ID_MAPPING)
    // The coordinator is healthy: the id can start with a timeout within bounds.
    const ok = await init('txn-too-long', 900_000)
    expect(ok.errorCode).toBe(NONE)
    expect(ok.producerEpoch).toBe(0)
  })

  it('refuses the empty transactional id with INVALID_REQUEST in InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn and DescribeTransactions (TransactionCoordinator)', async () => {
    await createTopic(broker, 'txn-empty-id')
    expect((await init('')).errorCode).toBe(INVALID_REQUEST)
    expect(await addPartitions('', 1n, 0, [{ name: 'txn-empty-id', partitions: [0] }])).toEqual([INVALID_REQUEST])
    const offsets = await client.request<AddOffsetsToTxnRequest, AddOffsetsToTxnResponse>(addOffsetsToTxn, 3, { transactionalId: '', producerId: 1n, producerEpoch: 0, groupId: 'txn-empty-id-group' })
    expect(offsets.errorCode).toBe(INVALID_REQUEST)
    expect(await end('', 1n, 0, true)).toBe(INVALID_REQUEST)
    const described = await client.request<DescribeTransactionsRequest, DescribeTransactionsResponse>(describeTransactions, 0, { transactionalIds: [''] })
    expect(described.transactionStates.map((t) => [t.transactionalId, t.errorCode])).toEqual([['', INVALID_REQUEST]])
  })

  it('refuses a transactional batch for a partition not added; once added it is accepted and committed', async () => {
    await createTopic(broker, 'txn-verify')
    const { producerId, producerEpoch } = await init('txn-verify-id')
    const id = producerId!
    const refused = await produceTxn('txn-verify-id', id, producerEpoch, 'txn-verify', 0, 0, ['sneaky'])
    expect(refused.errorCode).toBe(INVALID_TXN_STATE)
    expect((await listOffset(client, 'txn-verify', 0, -1n)).offset).toBe(0n)
    // Adding an unknown partition fails it alone; the known ones are not attempted.
    expect(await addPartitions('txn-verify-id', id, producerEpoch, [{ name: 'txn-verify', partitions: [0, 7] }])).toEqual([OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION])
    expect(await addPartitions('txn-verify-id', id, producerEpoch, [{ name: 'txn-verify', partitions: [0] }])).toEqual([NONE])
    // The refused batch did not take sequence 0.
    expect((await produceTxn('txn-verify-id', id, producerEpoch, 'txn-verify', 0, 0, ['a', 'b'])).errorCode).toBe(NONE)
    expect((await readValues('txn-verify', 1)).values).toEqual([])
    expect(await end('txn-verify-id', id, producerEpoch, true)).toBe(NONE)
    // A retried EndTxn of the same decision is answered NONE; the other decision, or ending nothing, INVALID_TXN_STATE.
    expect(await end('txn-verify-id', id, producerEpoch, true)).toBe(NONE)
    expect(await end('txn-verify-id', id, producerEpoch, false)).toBe(INVALID_TXN_STATE)
    const read = await readValues('txn-verify', 1)
    expect(read.values).toEqual(['a', 'b'])
    expect(read.lastStableOffset).toBe(3n)
  })

  it('refuses a batch of an epoch the coordinator never gave, later than the open transaction\'s, which would otherwise hold the partition\'s last stable offset for ever (UnifiedLog.hasOngoingTransaction compares the epoch)', async () => {
    await createTopic(broker, 'txn-future-epoch')
    const { producerId, producerEpoch } = await init('txn-future-epoch-id')
    const id = producerId!
    expect(await addPartitions('txn-future-epoch-id', id, producerEpoch, [{ name: 'txn-future-epoch', partitions: [0] }])).toEqual([NONE])
    expect((await produceTxn('txn-future-epoch-id', id, producerEpoch, 'txn-future-epoch', 0, 0, ['a'])).errorCode).toBe(NONE)
    // The open transaction's epoch is not enough: the coordinator is asked, and it knows no such epoch.
    expect((await produceTxn('txn-future-epoch-id', id, producerEpoch + 1, 'txn-future-epoch', 0, 0, ['b'])).errorCode).toBe(INVALID_PRODUCER_EPOCH)
    expect(await end('txn-future-epoch-id', id, producerEpoch, true)).toBe(NONE)
    // The COMMIT marker was taken, so the transaction is decided here: read_committed reads it, and nothing stays open.
    await waitFor('the commit to reach the partition', async () => (await readValues('txn-future-epoch', 1)).lastStableOffset === 2n)
    expect((await readValues('txn-future-epoch', 1)).values).toEqual(['a'])
  })

  it('answers AddPartitionsToTxn v4 per transaction: one adds its partitions, one only verifies them', async () => {
    await createTopic(broker, 'txn-batched', { partitions: 2 })
    const adder = await init('txn-batched-adder')
    const checker = await init('txn-batched-checker')
    const request = (verifyOnlyChecker: boolean) =>
      client.request<Partial<AddPartitionsToTxnRequest>, AddPartitionsToTxnResponse>(addPartitionsToTxn, 4, {
        transactions: [
          { transactionalId: 'txn-batched-adder', producerId: adder.producerId!, producerEpoch: adder.producerEpoch, verifyOnly: false, topics: [{ name: 'txn-batched', partitions: [0, 1] }] },
          { transactionalId: 'txn-batched-checker', producerId: checker.producerId!, producerEpoch: checker.producerEpoch, verifyOnly: verifyOnlyChecker, topics: [{ name: 'txn-batched', partitions: [1] }] },
        ],
      })
    const codes = (response: AddPartitionsToTxnResponse) =>
      response.resultsByTransaction!.map((t) => [t.transactionalId, t.topicResults.flatMap((r) => r.resultsByPartition.map((p) => p.partitionErrorCode))])
    const first = await request(true)
    expect(first.errorCode).toBe(NONE)
    // The checker never added partition 1: verifying it is INVALID_TXN_STATE, and it changes nothing.
    expect(codes(first)).toEqual([['txn-batched-adder', [NONE, NONE]], ['txn-batched-checker', [INVALID_TXN_STATE]]])
    expect(codes(await request(false))).toEqual([['txn-batched-adder', [NONE, NONE]], ['txn-batched-checker', [NONE]]])
    expect(codes(await request(true))).toEqual([['txn-batched-adder', [NONE, NONE]], ['txn-batched-checker', [NONE]]])
    expect((await produceTxn('txn-batched-adder', adder.producerId!, adder.producerEpoch, 'txn-batched', 0, 0, ['batched'])).errorCode).toBe(NONE)
    expect(await end('txn-batched-adder', adder.producerId!, adder.producerEpoch, true)).toBe(NONE)
    expect(await end('txn-batched-checker', checker.producerId!, checker.producerEpoch, false)).toBe(NONE)
  })

  it('answers a partition AddPartitionsToTxn names twice once, in v3 and in a v4 transaction, as Kafka gathers the partitions in a set', async () => {
    await createTopic(broker, 'txn-twice', { partitions: 2 })
    const producer = await init('txn-twice-id')
    const v3 = await client.request<Partial<AddPartitionsToTxnRequest>, AddPartitionsToTxnResponse>(addPartitionsToTxn, 3, {
      v3AndBelowTransactionalId: 'txn-twice-id',
      v3AndBelowProducerId: producer.producerId!,
      v3AndBelowProducerEpoch: producer.producerEpoch,
      v3AndBelowTopics: [{ name: 'txn-twice', partitions: [0, 1, 0] }, { name: 'txn-twice', partitions: [1] }],
    })
    expect(v3.resultsByTopicV3AndBelow!.map((t) => [t.name, t.resultsByPartition.map((p) => [p.partitionIndex, p.partitionErrorCode])])).toEqual([['txn-twice', [[0, NONE], [1, NONE]]]])
    const v4 = await client.request<Partial<AddPartitionsToTxnRequest>, AddPartitionsToTxnResponse>(addPartitionsToTxn, 4, {
      transactions: [{ transactionalId: 'txn-twice-id', producerId: producer.producerId!, producerEpoch: producer.producerEpoch, verifyOnly: true, topics: [{ name: 'txn-twice', partitions: [1, 1] }] }],
    })
    expect(v4.resultsByTransaction!.map((t) => t.topicResults.map((r) => [r.name, r.resultsByPartition.map((p) => [p.partitionIndex, p.partitionErrorCode])]))).toEqual([[['txn-twice', [[1, NONE]]]]])
    expect(await end('txn-twice-id', producer.producerId!, producer.producerEpoch, false)).toBe(NONE)
  })

  it('stamps a transaction marker on a LogAppendTime topic with the append time and its timestamp type, as every batch there (Kafka\'s LogValidator)', async () => {
    await createTopic(broker, 'txn-stamped', { configs: { 'message.timestamp.type': 'LogAppendTime' } })
    const producer = await init('txn-stamped-id')
    expect(await addPartitions('txn-stamped-id', producer.producerId!, producer.producerEpoch, [{ name: 'txn-stamped', partitions: [0] }])).toEqual([NONE])
    expect((await produceTxn('txn-stamped-id', producer.producerId!, producer.producerEpoch, 'txn-stamped', 0, 0, ['stamped'])).errorCode).toBe(NONE)
    const before = BigInt(Date.now())
    expect(await end('txn-stamped-id', producer.producerId!, producer.producerEpoch, true)).toBe(NONE)
    const batches = splitBatches((await fetchPartition(client, { topic: 'txn-stamped', partition: 0, offset: 0n, isolationLevel: 1 })).records)
    expect(batches.map((b) => b.header.attributes & (Attribute.control | Attribute.logAppendTime))).toEqual([Attribute.logAppendTime, Attribute.control | Attribute.logAppendTime])
    expect(batches[1]!.header.maxTimestamp).toBeGreaterThanOrEqual(before)
  })

  it('fences the old epoch after a new InitProducerId: PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for old versions', async () => {
    await createTopic(broker, 'txn-epochs')
    const first = await init('txn-epochs-id')
    const second = await init('txn-epochs-id')
    expect(second.producerId).toBe(first.producerId)
    expect(second.producerEpoch).toBe(first.producerEpoch + 1)
    const id = first.producerId!
    expect(await addPartitions('txn-epochs-id', id, first.producerEpoch, [{ name: 'txn-epochs', partitions: [0] }], 3)).toEqual([PRODUCER_FENCED])
    expect(await addPartitions('txn-epochs-id', id, first.producerEpoch, [{ name: 'txn-epochs', partitions: [0] }], 1)).toEqual([INVALID_PRODUCER_EPOCH])
    expect(await end('txn-epochs-id', id, first.producerEpoch, true, 1)).toBe(INVALID_PRODUCER_EPOCH)
    expect(await addPartitions('txn-epochs-id', id + 1000n, second.producerEpoch, [{ name: 'txn-epochs', partitions: [0] }])).toEqual([INVALID_PRODUCER_ID_MAPPING])
    // Nothing open: EndTxn is INVALID_TXN_STATE. The current epoch goes on.
    expect(await end('txn-epochs-id', id, second.producerEpoch, true)).toBe(INVALID_TXN_STATE)
    expect(await addPartitions('txn-epochs-id', id, second.producerEpoch, [{ name: 'txn-epochs', partitions: [0] }])).toEqual([NONE])
    expect((await produceTxn('txn-epochs-id', id, second.producerEpoch, 'txn-epochs', 0, 0, ['x'])).errorCode).toBe(NONE)
    // A batch of the old epoch is refused by the partition too.
    expect((await produceTxn('txn-epochs-id', id, first.producerEpoch, 'txn-epochs', 0, 1, ['old'])).errorCode).toBe(INVALID_PRODUCER_EPOCH)
    expect(await end('txn-epochs-id', id, second.producerEpoch, false)).toBe(NONE)
  })

  it('fences a producer that resumes (KIP-360) after a new instance of its transactional id started, at its epoch or the one before; a retry of a lost answer gets the same answer', async () => {
    await createTopic(broker, 'txn-resume')
    const first = await init('txn-resume-id')
    const id = first.producerId!
    // A goes on after an error: its epoch is bumped. Its retry, the answer lost, gets the same id and epoch again.
    const bumped = await resume('txn-resume-id', id, first.producerEpoch)
    expect(bumped).toMatchObject({ errorCode: NONE, producerId: id, producerEpoch: first.producerEpoch + 1 })
    expect(await resume('txn-resume-id', id, first.producerEpoch)).toMatchObject({ errorCode: NONE, producerId: id, producerEpoch: bumped.producerEpoch })
    // B, a new instance, names no producer id: its bump keeps no last epoch (TransactionMetadata
    // .prepareIncrementProducerEpoch), so A's epochs are neither the current one nor the last one.
    const second = await init('txn-resume-id')
    expect(second).toMatchObject({ errorCode: NONE, producerId: id, producerEpoch: bumped.producerEpoch + 1 })
    expect(await resume('txn-resume-id', id, bumped.producerEpoch)).toMatchObject({ errorCode: PRODUCER_FENCED, producerId: -1n, producerEpoch: -1 })
    expect((await resume('txn-resume-id', id, first.producerEpoch)).errorCode).toBe(PRODUCER_FENCED)
    expect((await resume('txn-resume-id', id, bumped.producerEpoch, 3)).errorCode).toBe(INVALID_PRODUCER_EPOCH)
    expect(await addPartitions('txn-resume-id', id, bumped.producerEpoch, [{ name: 'txn-resume', partitions: [0] }])).toEqual([PRODUCER_FENCED])
    expect(await end('txn-resume-id', id, bumped.producerEpoch, true)).toBe(PRODUCER_FENCED)
    // B's epoch is untouched: its transaction commits, and a read_committed consumer reads B's record only.
    expect(await addPartitions('txn-resume-id', id, second.producerEpoch, [{ name: 'txn-resume', partitions: [0] }])).toEqual([NONE])
    expect((await produceTxn('txn-resume-id', id, second.producerEpoch, 'txn-resume', 0, 0, ['b'])).errorCode).toBe(NONE)
    expect(await end('txn-resume-id', id, second.producerEpoch, true)).toBe(NONE)
    expect((await readValues('txn-resume', 1)).values).toEqual(['b'])
  })

  it('answers a read_committed fetch with the aborted transactions of the range it returns', async () => {
    await createTopic(broker, 'txn-aborted')
    const { producerId, producerEpoch } = await init('txn-aborted-id')
    const id = producerId!
    expect(await addPartitions('txn-aborted-id', id, producerEpoch, [{ name: 'txn-aborted', partitions: [0] }])).toEqual([NONE])
    expect((await produceTxn('txn-aborted-id', id, producerEpoch, 'txn-aborted', 0, 0, ['gone-1', 'gone-2'])).errorCode).toBe(NONE)
    expect(await end('txn-aborted-id', id, producerEpoch, false)).toBe(NONE)
    expect(await addPartitions('txn-aborted-id', id, producerEpoch, [{ name: 'txn-aborted', partitions: [0] }])).toEqual([NONE])
    expect((await produceTxn('txn-aborted-id', id, producerEpoch, 'txn-aborted', 0, 2, ['kept'])).errorCode).toBe(NONE)
    expect(await end('txn-aborted-id', id, producerEpoch, true)).toBe(NONE)
    const committed = await readValues('txn-aborted', 1)
    // The records are all returned; the client drops those of the aborted transaction, which the answer names.
    expect(committed.abortedTransactions).toEqual([{ producerId: id, firstOffset: 0n }])
    expect(committed.lastStableOffset).toBe(5n)
    const uncommitted = await readValues('txn-aborted', 0)
    expect(uncommitted.abortedTransactions).toBeNull()
    expect(uncommitted.values).toEqual(['gone-1', 'gone-2', 'kept'])
  })

  it('holds a transactional offset commit pending (requireStable: UNSTABLE_OFFSET_COMMIT) until the commit', async () => {
    await createTopic(broker, 'txn-consumed')
    const { producerId, producerEpoch } = await init('txn-offsets-id')
    const id = producerId!
    const offsetsOf = () =>
      client.request<Partial<OffsetFetchRequest>, OffsetFetchResponse>(offsetFetch, 7, {
        groupId: 'txn-offsets-group',
        topics: [{ name: 'txn-consumed', partitionIndexes: [0] }],
        requireStable: true,
      })
    const commit = (epoch = producerEpoch) =>
      client.request<Partial<TxnOffsetCommitRequest>, TxnOffsetCommitResponse>(txnOffsetCommit, 3, {
        transactionalId: 'txn-offsets-id',
        groupId: 'txn-offsets-group',
        producerId: id,
        producerEpoch: epoch,
        generationId: -1,
        memberId: '',
        groupInstanceId: null,
        topics: [{ name: 'txn-consumed', partitions: [{ partitionIndex: 0, committedOffset: 42n, committedLeaderEpoch: -1, committedMetadata: null }] }],
      })
    // Without AddOffsetsToTxn first, the commit is not part of a transaction.
    expect((await commit()).topics[0]!.partitions[0]!.errorCode).toBe(INVALID_TXN_STATE)
    const added = await client.request<AddOffsetsToTxnRequest, AddOffsetsToTxnResponse>(addOffsetsToTxn, 3, {
      transactionalId: 'txn-offsets-id',
      producerId: id,
      producerEpoch,
      groupId: 'txn-offsets-group',
    })
    expect(added.errorCode).toBe(NONE)
    expect((await commit()).topics[0]!.partitions[0]!.errorCode).toBe(NONE)
    const pending = (await offsetsOf()).topics![0]!.partitions[0]!
    expect([pending.errorCode, pending.committedOffset]).toEqual([UNSTABLE_OFFSET_COMMIT, -1n])
    expect(await end('txn-offsets-id', id, producerEpoch, true)).toBe(NONE)
    const stable = (await offsetsOf()).topics![0]!.partitions[0]!
    expect([stable.errorCode, stable.committedOffset]).toEqual([NONE, 42n])
  })

  it('writes markers asked for with WriteTxnMarkers, each partition answering on its own', async () => {
    await createTopic(broker, 'txn-markers')
    const { producerId, producerEpoch } = await init('txn-markers-id')
    const id = producerId!
    expect(await addPartitions('txn-markers-id', id, producerEpoch, [{ name: 'txn-markers', partitions: [0] }])).toEqual([NONE])
    expect((await produceTxn('txn-markers-id', id, producerEpoch, 'txn-markers', 0, 0, ['m'])).errorCode).toBe(NONE)
    expect((await readValues('txn-markers', 1)).lastStableOffset).toBe(0n)
    const answer = await client.request<WriteTxnMarkersRequest, WriteTxnMarkersResponse>(writeTxnMarkers, 1, {
      markers: [{ producerId: id, producerEpoch, transactionResult: true, coordinatorEpoch: 0, topics: [{ name: 'txn-markers', partitionIndexes: [0] }, { name: 'txn-no-such-topic', partitionIndexes: [0] }] }],
    })
    expect(answer.markers[0]!.topics.map((t) => t.partitions[0]!.errorCode)).toEqual([NONE, UNKNOWN_TOPIC_OR_PARTITION])
    const read = await readValues('txn-markers', 1)
    expect(read.values).toEqual(['m'])
    expect(read.lastStableOffset).toBe(2n)
    // A marker of an older producer epoch is refused.
    const stale = await client.request<WriteTxnMarkersRequest, WriteTxnMarkersResponse>(writeTxnMarkers, 1, {
      markers: [{ producerId: id, producerEpoch: producerEpoch - 1, transactionResult: false, coordinatorEpoch: 0, topics: [{ name: 'txn-markers', partitionIndexes: [0] }] }],
    })
    expect(stale.markers[0]!.topics[0]!.partitions[0]!.errorCode).toBe(INVALID_PRODUCER_EPOCH)
    // A marker without a producer id (-1) is answered INVALID_REQUEST, not an internal error that closes the connection.
    const anonymous = await client.request<WriteTxnMarkersRequest, WriteTxnMarkersResponse>(writeTxnMarkers, 1, {
      markers: [{ producerId: -1n, producerEpoch: 0, transactionResult: true, coordinatorEpoch: 0, topics: [{ name: 'txn-markers', partitionIndexes: [0] }] }],
    })
    expect(anonymous.markers[0]!.topics[0]!.partitions[0]!.errorCode).toBe(INVALID_REQUEST)
    expect((await readValues('txn-markers', 1)).values).toEqual(['m'])
  })
})

describe('transactional offset commits beside plain commits and group deletion', () => {
  /** A transactional id whose transaction holds an offset commit of `groupId` for `topic`-0 at `offset`, pending. */
  async function pendingTxnCommit(c: KafkaClient, transactionalId: string, groupId: string, topic: string, offset: bigint): Promise<{ id: bigint; epoch: number }> {
    const init = await c.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, 4, { transactionalId, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 })
    const id = init.producerId!
    const epoch = init.producerEpoch
    const added = await c.request<AddOffsetsToTxnRequest, AddOffsetsToTxnResponse>(addOffsetsToTxn, 3, { transactionalId, producerId: id, producerEpoch: epoch, groupId })
    expect(added.errorCode).toBe(NONE)
    const committed = await c.request<Partial<TxnOffsetCommitRequest>, TxnOffsetCommitResponse>(txnOffsetCommit, 3, {
      transactionalId,
      groupId,
      producerId: id,
      producerEpoch: epoch,
      generationId: -1,
      memberId: '',
      groupInstanceId: null,
      topics: [{ name: topic, partitions: [{ partitionIndex: 0, committedOffset: offset, committedLeaderEpoch: -1, committedMetadata: null }] }],
    })
    expect(committed.topics[0]!.partitions[0]!.errorCode).toBe(NONE)
    return { id, epoch }
  }

  async function endOn(c: KafkaClient, transactionalId: string, { id, epoch }: { id: bigint; epoch: number }): Promise<number> {
    return (await c.request<EndTxnRequest, EndTxnResponse>(endTxn, 3, { transactionalId, producerId: id, producerEpoch: epoch, committed: true })).errorCode
  }

  it('a plain commit written while a transaction\'s commit of the same partition was pending stays when the transaction commits, also after kill -9 (the newest record wins: OffsetMetadataManager.replayEndTransactionMarker)', async () => {
    let own = await startBroker()
    try {
      await createTopic(own, 'txn-vs-plain')
      await withClient(own, async (c) => {
        const producer = await pendingTxnCommit(c, 'txn-vs-plain-id', 'txn-vs-plain-group', 'txn-vs-plain', 5n)
        expect(await commit(c, { groupId: 'txn-vs-plain-group', offsets: { 'txn-vs-plain': { 0: 7n } } })).toEqual({ 'txn-vs-plain': { 0: NONE } })
        expect(await endOn(c, 'txn-vs-plain-id', producer)).toBe(NONE)
        expect(await committedOffsets(c, 'txn-vs-plain-group', { 'txn-vs-plain': [0] })).toEqual({ 'txn-vs-plain': { 0: 7n } })
      })
      await own.kill()
      own = await own.restart()
      await withClient(own, async (c) => {
        await waitFor('the group to be loaded', async () => (await committedOffsets(c, 'txn-vs-plain-group', { 'txn-vs-plain': [0] }).catch(() => null)) !== null)
        expect(await committedOffsets(c, 'txn-vs-plain-group', { 'txn-vs-plain': [0] })).toEqual({ 'txn-vs-plain': { 0: 7n } })
      })
    } finally {
      await own.stop()
      own.cleanup()
    }
  })

  it('a group deleted while a transaction\'s offset commit was pending stays deleted when the transaction commits, also after kill -9 (OffsetMetadataManager.deleteAllOffsets tombstones pending offsets too)', async () => {
    let own = await startBroker()
    const listed = async (c: KafkaClient): Promise<string[]> =>
      (await c.request<ListGroupsRequest, ListGroupsResponse>(listGroups, 4, { statesFilter: [], typesFilter: [] })).groups.map((g) => g.groupId)
    try {
      await createTopic(own, 'txn-deleted-group')
      await withClient(own, async (c) => {
        expect(await commit(c, { groupId: 'txn-deleted-group', offsets: { 'txn-deleted-group': { 0: 3n } } })).toEqual({ 'txn-deleted-group': { 0: NONE } })
        const producer = await pendingTxnCommit(c, 'txn-deleted-group-id', 'txn-deleted-group', 'txn-deleted-group', 5n)
        const deleted = await c.request<DeleteGroupsRequest, DeleteGroupsResponse>(deleteGroups, 2, { groupsNames: ['txn-deleted-group'] })
        expect(deleted.results[0]!.errorCode).toBe(NONE)
        expect(await endOn(c, 'txn-deleted-group-id', producer)).toBe(NONE)
        expect(await committedOffsets(c, 'txn-deleted-group', { 'txn-deleted-group': [0] })).toEqual({ 'txn-deleted-group': { 0: -1n } })
        expect(await listed(c)).not.toContain('txn-deleted-group')
      })
      await own.kill()
      own = await own.restart()
      await withClient(own, async (c) => {
        await waitFor('the groups to be loaded', async () => (await committedOffsets(c, 'txn-deleted-group', { 'txn-deleted-group': [0] }).catch(() => null)) !== null)
        expect(await committedOffsets(c, 'txn-deleted-group', { 'txn-deleted-group': [0] })).toEqual({ 'txn-deleted-group': { 0: -1n } })
        expect(await listed(c)).not.toContain('txn-deleted-group')
      })
    } finally {
      await own.stop()
      own.cleanup()
    }
  })

  it('a transaction\'s offset commit pending for a topic deleted and created again under its name is not applied to the new topic, also after kill -9 (GroupMetadata.removeOffsets drops pending commits of deleted partitions)', async () => {
    let own = await startBroker()
    try {
      await createTopic(own, 'txn-recreated')
      const producer = await withClient(own, async (c) => {
        // The group has committed nothing for the topic: only the transaction names it.
        const pending = await pendingTxnCommit(c, 'txn-recreated-id', 'txn-recreated-group', 'txn-recreated', 77n)
        const deleted = await c.request<Partial<DeleteTopicsRequest>, DeleteTopicsResponse>(deleteTopics, 4, { topicNames: ['txn-recreated'], timeoutMs: 10_000 })
        expect(deleted.responses[0]!.errorCode).toBe(NONE)
        return pending
      })
      await createTopic(own, 'txn-recreated')
      await withClient(own, async (c) => {
        expect(await endOn(c, 'txn-recreated-id', producer)).toBe(NONE)
        expect(await committedOffsets(c, 'txn-recreated-group', { 'txn-recreated': [0] })).toEqual({ 'txn-recreated': { 0: -1n } })
      })
      await own.kill()
      own = await own.restart()
      await withClient(own, async (c) => {
        await waitFor('the groups to be loaded', async () => (await committedOffsets(c, 'txn-recreated-group', { 'txn-recreated': [0] }).catch(() => null)) !== null)
        expect(await committedOffsets(c, 'txn-recreated-group', { 'txn-recreated': [0] })).toEqual({ 'txn-recreated': { 0: -1n } })
      })
    } finally {
      await own.stop()
      own.cleanup()
    }
  })
})

describe('__transaction_state with a transaction marker in it', () => {
  it('loads past the marker (a control batch) on restart instead of refusing to start', async () => {
    let own = await startBroker()
    try {
      await createTopic(own, 'txn-state-marker')
      const c = await connect(own)
      let producerId: bigint
      try {
        const init = await c.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, 4, { transactionalId: 'txn-state-marker-id', transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 })
        expect(init.errorCode).toBe(NONE)
        producerId = init.producerId!
        // Any client may send WriteTxnMarkers; one naming __transaction_state's partitions writes a COMMIT marker there.
        const partitions = Array.from({ length: 50 }, (_, i) => i)
        const answer = await c.request<WriteTxnMarkersRequest, WriteTxnMarkersResponse>(writeTxnMarkers, 1, {
          markers: [{ producerId: 7n, producerEpoch: 0, transactionResult: true, coordinatorEpoch: 0, topics: [{ name: '__transaction_state', partitionIndexes: partitions }] }],
        })
        expect(answer.markers[0]!.topics[0]!.partitions.every((p) => p.errorCode === NONE)).toBe(true)
      } finally {
        c.close()
      }
      await own.stop()
      own = await own.restart()
      const after = await connect(own)
      try {
        const described = await after.request<DescribeTransactionsRequest, DescribeTransactionsResponse>(describeTransactions, 0, { transactionalIds: ['txn-state-marker-id'] })
        expect(described.transactionStates[0]).toMatchObject({ errorCode: NONE, producerId })
      } finally {
        after.close()
      }
    } finally {
      await own.stop()
      own.cleanup()
    }
  }, 60_000)
})

describe('transactional.id.expiration.ms', () => {
  it('forgets an idle transactional id (a tombstone, so a restart does not bring it back), never one with a transaction open', async () => {
    const args = ['--transactional-id-expiration-ms', '1000', '--transaction-remove-expired-transaction-cleanup-interval-ms', '100']
    let expiring = await startBroker({ args })
    const states = async (ids: string[]) => {
      const own = await connect(expiring)
      try {
        const answer = await own.request<DescribeTransactionsRequest, DescribeTransactionsResponse>(describeTransactions, 0, { transactionalIds: ids })
        return answer.transactionStates.map((t) => (t.errorCode === NONE ? t.transactionState : t.errorCode))
      } finally {
        own.close()
      }
    }
    try {
      await createTopic(expiring, 'txn-expiry')
      const own = await connect(expiring)
      try {
        const idle = await own.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, 4, { transactionalId: 'txn-idle', transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 })
        const busy = await own.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, 4, { transactionalId: 'txn-busy', transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 })
        expect([idle.errorCode, busy.errorCode]).toEqual([NONE, NONE])
        const added = await own.request<Partial<AddPartitionsToTxnRequest>, AddPartitionsToTxnResponse>(addPartitionsToTxn, 3, {
          v3AndBelowTransactionalId: 'txn-busy',
          v3AndBelowProducerId: busy.producerId!,
          v3AndBelowProducerEpoch: busy.producerEpoch,
          v3AndBelowTopics: [{ name: 'txn-expiry', partitions: [0] }],
        })
        expect(added.resultsByTopicV3AndBelow![0]!.resultsByPartition[0]!.partitionErrorCode).toBe(NONE)
      } finally {
        own.close()
      }
      await waitFor('the idle transactional id to expire', async () => (await states(['txn-idle']))[0] === TRANSACTIONAL_ID_NOT_FOUND)
      expect(await states(['txn-busy'])).toEqual(['Ongoing'])
      await expiring.kill()
      expiring = await expiring.restart()
      expect(await states(['txn-idle', 'txn-busy'])).toEqual([TRANSACTIONAL_ID_NOT_FOUND, 'Ongoing'])
    } finally {
      await expiring.stop()
      expiring.cleanup()
    }
  }, 60_000)
})
