/**
 * Idempotent and transactional producers: InitProducerId v0-5, AddPartitionsToTxn v0-4, AddOffsetsToTxn v0-3, EndTxn
 * v0-3, TxnOffsetCommit v0-3, WriteTxnMarkers v0-1. The rules live in transaction/coordinator.ts (the state machine
 * is drawn in transaction/metadata.ts); this module maps requests and responses per version.
 *
 * Behaviour
 * - InitProducerId without a transactional id (an idempotent producer) answers a new producer id, never handed out
 *   before (ids come in blocks reserved durably, broker/transaction/producer-id-manager.ts), with epoch 0. A producer
 *   id given with epoch -1, or epoch given with producer id -1, is INVALID_REQUEST (KafkaApis.handleInitProducerIdRequest).
 *   With a transactional id: INVALID_TRANSACTION_TIMEOUT above transaction.max.timeout.ms, else the id's producer id
 *   with its epoch bumped (the previous producer is fenced and its open transaction aborted).
 * - AddPartitionsToTxn: UNKNOWN_TOPIC_OR_PARTITION for partitions that do not exist, OPERATION_NOT_ATTEMPTED for the
 *   others of that request; otherwise one error for every partition (INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED,
 *   CONCURRENT_TRANSACTIONS). v4 (KIP-890) carries several transactions, each answered on its own; one with
 *   `verifyOnly` is not changed, each partition answering NONE when it is in the ongoing transaction (what a
 *   partition leader on another node asks before the first transactional batch of a transaction there) and
 *   INVALID_TXN_STATE, INVALID_PRODUCER_ID_MAPPING, INVALID_PRODUCER_EPOCH or NOT_COORDINATOR otherwise.
 * - AddOffsetsToTxn adds the group's partition of __consumer_offsets; TxnOffsetCommit then writes offsets that count
 *   once the transaction commits (INVALID_TXN_STATE if AddOffsetsToTxn did not come first; a member and generation,
 *   when given (v3, KIP-447), are checked as OffsetCommit checks them).
 * - EndTxn: the transaction is committed or aborted, markers written, before the answer. Unknown transactional id:
 *   INVALID_PRODUCER_ID_MAPPING, as Kafka answers.
 * - WriteTxnMarkers: what a coordinator on another node sends; each partition answers on its own, and one another
 *   node leads (a cluster node) NOT_LEADER_OR_FOLLOWER, so the coordinator sends it to the leader.
 * - On a cluster node a transactional id's requests go to its coordinator (the leader of its partition of
 *   __transaction_state): any other node answers NOT_COORDINATOR. TxnOffsetCommit goes to the group's coordinator.
 * - A failed write to __transaction_state is NOT_COORDINATOR (the client looks the coordinator up again).
 * - The empty transactional id is INVALID_REQUEST in InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn and EndTxn,
 *   as Kafka's TransactionCoordinator answers it (handleInitProducerId, handleAddPartitionsToTransaction,
 *   endTransaction); only a null one makes an idempotent producer.
 *
 * Version notes
 * - PRODUCER_FENCED (KIP-588) goes to InitProducerId v4+, AddPartitionsToTxn v2+, AddOffsetsToTxn v2+, EndTxn v2+ and
 *   TxnOffsetCommit v3+; older versions get INVALID_PRODUCER_EPOCH.
 * - AddPartitionsToTxn v4 is KIP-890's batched form, which Kafka's brokers send one another to verify (Kafka
 *   advertises it to clients too, and clients that know it may send it). AddPartitionsToTxn v5, AddOffsetsToTxn v4,
 *   EndTxn v4-5 and TxnOffsetCommit v4 (transaction version 2, where the epoch is bumped on every commit) are not
 *   advertised.
 */
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../../protocol/messages/init-producer-id.js'
import { addPartitionsToTxn, type AddPartitionsToTxnRequest, type AddPartitionsToTxnResponse } from '../../protocol/messages/add-partitions-to-txn.js'
import { addOffsetsToTxn, type AddOffsetsToTxnRequest, type AddOffsetsToTxnResponse } from '../../protocol/messages/add-offsets-to-txn.js'
import { endTxn, type EndTxnRequest, type EndTxnResponse } from '../../protocol/messages/end-txn.js'
import { txnOffsetCommit, type TxnOffsetCommitRequest, type TxnOffsetCommitResponse } from '../../protocol/messages/txn-offset-commit.js'
import { writeTxnMarkers, type WriteTxnMarkersRequest, type WriteTxnMarkersResponse } from '../../protocol/messages/write-txn-markers.js'
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import { StorageError } from '../../storage/log-store.js'
import { defineHandler, leadershipError, partitionsNamedOnce, type BrokerServices } from '../handler.js'
import { offsetsToCommit } from '../group/metadata-manager.js'
import type { TxnProducer } from '../transaction/coordinator.js'

/** KIP-588: versions before `firstFencedVersion` know PRODUCER_FENCED as INVALID_PRODUCER_EPOCH. */
function fenced(errorCode: number, apiVersion: number, firstFencedVersion: number): number {
  return errorCode === ErrorCode.PRODUCER_FENCED && apiVersion < firstFencedVersion ? ErrorCode.INVALID_PRODUCER_EPOCH : errorCode
}

/** The __consumer_offsets partition of a group, which AddOffsetsToTxn adds to the transaction. */
function offsetsPartitionOf(services: BrokerServices, groupId: string): { topic: string; partition: number } {
  const offsets = services.coordinatorPartitions.groups
  return { topic: offsets.topicName, partition: offsets.partitionFor(groupId) }
}

export const initProducerIdHandler = defineHandler<InitProducerIdRequest, InitProducerIdResponse>(
  initProducerId,
  '0-5',
  async (request, { services, apiVersion }) => {
    const fail = (errorCode: number): InitProducerIdResponse => ({ throttleTimeMs: 0, errorCode, producerId: -1n, producerEpoch: -1 })
    const givenId = apiVersion >= 3 ? request.producerId : -1n
    const givenEpoch = apiVersion >= 3 ? request.producerEpoch : -1
    if ((givenId === -1n) !== (givenEpoch === -1)) return fail(ErrorCode.INVALID_REQUEST)
    const result = await services.transactions.initProducerId(request.transactionalId, {
      transactionTimeoutMs: request.transactionTimeoutMs,
      resume: givenId === -1n ? null : { producerId: givenId, producerEpoch: givenEpoch },
    })
    return { throttleTimeMs: 0, errorCode: fenced(result.errorCode, apiVersion, 4), producerId: result.producerId, producerEpoch: result.producerEpoch }
  },
)

type TopicPartitions = { name: string; partitions: number[] }

/**
 * One transaction's AddPartitionsToTxn, per topic and partition: UNKNOWN_TOPIC_OR_PARTITION for partitions that do
 * not exist and OPERATION_NOT_ATTEMPTED for the others; else each partition verified (`verifyOnly`, v4 from another
 * node: NONE if it is in the transaction) or all of them added, with one error for all. A partition named twice is
 * answered once, as Kafka's handler gathers the partitions in a set.
 */
async function addOrVerify(services: BrokerServices, producer: TxnProducer, named: readonly TopicPartitions[], options: { verifyOnly: boolean; apiVersion: number }) {
  const topics = partitionsNamedOnce(named, (t) => t.partitions, (t, partition) => `${t.name}\0${partition}`, (t, partitions) => ({ ...t, partitions }))
  const wanted = topics.flatMap((t) => t.partitions.map((partition) => ({ topic: t.name, partition })))
  const missing = (tp: { topic: string; partition: number }): boolean => !services.topics.partition(tp.topic, tp.partition)
  let codeOf: (tp: { topic: string; partition: number }) => number
  if (wanted.some(missing)) {
    codeOf = (tp) => (missing(tp) ? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION : ErrorCode.OPERATION_NOT_ATTEMPTED)
  } else if (options.verifyOnly) {
    codeOf = (tp) => services.transactions.verifyHere(producer, tp)
  } else {
    const code = await services.transactions.addPartitions(producer, wanted)
    codeOf = () => fenced(code, options.apiVersion, 2)
  }
  return topics.map((t) => ({
    name: t.name,
    resultsByPartition: t.partitions.map((partition) => ({ partitionIndex: partition, partitionErrorCode: codeOf({ topic: t.name, partition }) })),
  }))
}

export const addPartitionsToTxnHandler = defineHandler<AddPartitionsToTxnRequest, AddPartitionsToTxnResponse>(
  addPartitionsToTxn,
  '0-4',
  async (request, { services, apiVersion }) => {
    if (apiVersion >= 4) {
      const resultsByTransaction = await Promise.all(
        request.transactions.map(async (t) => ({
          transactionalId: t.transactionalId,
          topicResults: await addOrVerify(services, t, t.topics, { verifyOnly: t.verifyOnly, apiVersion }),
        })),
      )
      return { throttleTimeMs: 0, errorCode: ErrorCode.NONE, resultsByTransaction }
    }
    const producer = { transactionalId: request.v3AndBelowTransactionalId, producerId: request.v3AndBelowProducerId, producerEpoch: request.v3AndBelowProducerEpoch }
    return { throttleTimeMs: 0, resultsByTopicV3AndBelow: await addOrVerify(services, producer, request.v3AndBelowTopics, { verifyOnly: false, apiVersion }) }
  },
)

export const addOffsetsToTxnHandler = defineHandler<AddOffsetsToTxnRequest, AddOffsetsToTxnResponse>(
  addOffsetsToTxn,
  '0-3',
  async (request, { services, apiVersion }) => {
    if (request.groupId === '') return { throttleTimeMs: 0, errorCode: ErrorCode.INVALID_GROUP_ID }
    try {
      await services.groups.ensureOffsetsTopic()
    } catch (error) {
      if (!(error instanceof StorageError) && !(error instanceof KafkaError)) throw error
      return { throttleTimeMs: 0, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE }
    }
    const offsetsPartition = offsetsPartitionOf(services, request.groupId)
    const code = await services.transactions.addPartitions(request, [offsetsPartition])
    return { throttleTimeMs: 0, errorCode: fenced(code, apiVersion, 2) }
  },
)

export const endTxnHandler = defineHandler<EndTxnRequest, EndTxnResponse>(
  endTxn,
  '0-3',
  async (request, { services, apiVersion }) => {
    const code = await services.transactions.endTxn(request, request.committed)
    return { throttleTimeMs: 0, errorCode: fenced(code, apiVersion, 2) }
  },
)

export const txnOffsetCommitHandler = defineHandler<TxnOffsetCommitRequest, TxnOffsetCommitResponse>(
  txnOffsetCommit,
  '0-3',
  async (request, { services, apiVersion }) => {
    const answer = (codeOf: (index: number) => number): TxnOffsetCommitResponse => {
      let index = 0
      return {
        throttleTimeMs: 0,
        topics: request.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => ({ partitionIndex: p.partitionIndex, errorCode: codeOf(index++) })) })),
      }
    }
    if (request.groupId === '') return answer(() => ErrorCode.INVALID_GROUP_ID)
    const notHere = services.groups.coordinatorError(request.groupId)
    if (notHere !== ErrorCode.NONE) return answer(() => notHere)
    const verified = await services.transactions.verifyPartition(request, offsetsPartitionOf(services, request.groupId))
    // A coordinator that could not verify is COORDINATOR_NOT_AVAILABLE to TxnOffsetCommit (Kafka's GroupMetadataManager
    // maps NOT_ENOUGH_REPLICAS so), which the producer retries.
    const refused = verified === ErrorCode.INVALID_PRODUCER_EPOCH ? ErrorCode.PRODUCER_FENCED : verified === ErrorCode.NOT_ENOUGH_REPLICAS ? ErrorCode.COORDINATOR_NOT_AVAILABLE : verified
    if (verified !== ErrorCode.NONE) return answer(() => fenced(refused, apiVersion, 3))
    const offsets = offsetsToCommit(request.topics)
    const generationId = apiVersion >= 3 ? request.generationId : -1
    const identity = { memberId: apiVersion >= 3 ? request.memberId : '', groupInstanceId: apiVersion >= 3 ? request.groupInstanceId : null }
    const codes = await services.groups.commitOffsets(request.groupId, generationId, identity, offsets, {
      transaction: { producerId: request.producerId, producerEpoch: request.producerEpoch },
    })
    return answer((i) => fenced(codes[i] === ErrorCode.INVALID_PRODUCER_EPOCH ? ErrorCode.PRODUCER_FENCED : codes[i]!, apiVersion, 3))
  },
)

export const writeTxnMarkersHandler = defineHandler<WriteTxnMarkersRequest, WriteTxnMarkersResponse>(
  writeTxnMarkers,
  '0-1',
  async (request, { services }) => {
    const markers = []
    for (const m of request.markers) {
      const partitions = m.topics.flatMap((t) => t.partitionIndexes.map((partition) => ({ topic: t.name, partition })))
      // A partition another node leads is NOT_LEADER_OR_FOLLOWER: the coordinator finds its leader and sends again.
      const notLed = partitions.map((tp) => {
        const topic = services.topics.get(tp.topic)
        return topic ? leadershipError(services, topic, tp.partition) : ErrorCode.NONE
      })
      const led = partitions.filter((_, i) => notLed[i] === ErrorCode.NONE)
      let written: number[]
      try {
        written = await services.markers.write(
          { producerId: m.producerId, producerEpoch: m.producerEpoch, coordinatorEpoch: m.coordinatorEpoch, committed: m.transactionResult },
          led,
        )
      } catch (error) {
        if (!(error instanceof StorageError)) throw error
        written = led.map(() => ErrorCode.KAFKA_STORAGE_ERROR)
      }
      let next = 0
      const codes = notLed.map((code) => (code === ErrorCode.NONE ? written[next++]! : code))
      let index = 0
      markers.push({
        producerId: m.producerId,
        topics: m.topics.map((t) => ({ name: t.name, partitions: t.partitionIndexes.map((partitionIndex) => ({ partitionIndex, errorCode: codes[index++]! })) })),
      })
    }
    return { markers }
  },
)
