/**
 * Produce: v0-9.
 *
 * Behaviour
 * - acks 0: no response; if any partition failed, the connection is closed instead (Kafka does this so that an
 *   acks=0 producer notices, KafkaApis.handleProduceRequest). acks 1: answered once the batch is written.
 *   acks -1: on one node the ISR is this broker alone, so the same as 1, unless the topic's min.insync.replicas is
 *   larger than the ISR (NOT_ENOUGH_REPLICAS, checked before anything is written). Other acks: INVALID_REQUIRED_ACKS.
 * - Each partition's `records` must be exactly one magic-2 batch that passes LogValidator's checks (see
 *   protocol/record-batch.ts checkProducedBatch); failures are per partition and nothing of that partition is written.
 * - The batch is stored whole: baseOffset and partitionLeaderEpoch are stamped in place; LogAppendTime topics also
 *   get maxTimestamp = now (and a new CRC), which the response returns as logAppendTimeMs.
 * - Internal topics (__consumer_offsets, __transaction_state) are written only by their coordinators; a client's
 *   batch for one is INVALID_TOPIC_EXCEPTION, as in Kafka (ReplicaManager.appendToLocalLog: "Cannot append to
 *   internal topic").
 * - Compacted topics (cleanup.policy=compact) refuse records without a key: INVALID_RECORD.
 * - Idempotent and transactional batches (producerId >= 0) are refused with UNKNOWN_PRODUCER_ID: Brook does not
 *   advertise InitProducerId yet, so accepting them would promise deduplication it does not do.
 * - A failed write is KAFKA_STORAGE_ERROR, and so is every append after it (the node's storage is fail-stop for
 *   writes, see broker.ts); the error message says which of the two it was.
 *
 * Version notes
 * - v0-2 are advertised because librdkafka 2.0.2 only compresses when it sees Produce v0 (KAFKA-18659), and are
 *   answered UNSUPPORTED_VERSION per partition: they carry legacy message sets (magic 0/1), which Brook does not
 *   store (as Kafka 4, KIP-896).
 * - zstd needs v7+ (UNSUPPORTED_COMPRESSION_TYPE otherwise, KIP-110). v8+ fill errorMessage.
 */
import {
  produce,
  type ProduceRequest,
  type ProduceResponse,
  type ProduceResponsePartitionProduceResponse,
} from '../../protocol/messages/produce.js'
import { ErrorCode, KafkaError, errorInfo } from '../../protocol/errors.js'
import { checkProducedBatch, decodeRecords } from '../../protocol/record-batch.js'
import { CLOSE_CONNECTION, NO_RESPONSE, defineHandler } from '../handler.js'
import { topicConfig } from '../topic-configs.js'
import { StorageError } from '../../storage/log-store.js'

type PartitionResult = ProduceResponsePartitionProduceResponse

/**
 * Compaction keeps the latest record per key, so a compacted topic refuses records without one (LogValidator:
 * "Compacted topic cannot accept message without key"). The only per-record work on the produce path, and only for
 * compacted topics.
 */
function keylessProblem(batch: Buffer): { errorCode: number; message: string } | null {
  try {
    if (!decodeRecords(batch).some((record) => record.key === null)) return null
    return { errorCode: ErrorCode.INVALID_RECORD, message: 'a compacted topic cannot accept a record without a key' }
  } catch (error) {
    if (error instanceof KafkaError) return { errorCode: error.code, message: error.message }
    return { errorCode: ErrorCode.CORRUPT_MESSAGE, message: `the records of the batch do not parse: ${(error as Error).message}` }
  }
}

function failed(index: number, errorCode: number, message?: string): PartitionResult {
  return {
    index,
    errorCode,
    baseOffset: -1n,
    logAppendTimeMs: -1n,
    logStartOffset: -1n,
    errorMessage: message ?? errorInfo(errorCode).message,
  }
}

export const produceHandler = defineHandler<ProduceRequest, ProduceResponse>(
  produce,
  '0-9',
  async (request, { broker, apiVersion }) => {
    const { acks } = request
    const results: Promise<PartitionResult>[][] = []
    for (const topicData of request.topicData) {
      const topic = broker.topics.get(topicData.name)
      results.push(
        topicData.partitionData.map(async ({ index, records }): Promise<PartitionResult> => {
          if (apiVersion < 3) return failed(index, ErrorCode.UNSUPPORTED_VERSION, 'Produce v0-2 (message format v0/v1) is not supported; use v3 or later')
          if (acks !== 0 && acks !== 1 && acks !== -1) return failed(index, ErrorCode.INVALID_REQUIRED_ACKS)
          const partition = topic?.partitions[index]
          if (!topic || !partition) return failed(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
          if (topic.isInternal) {
            return failed(index, ErrorCode.INVALID_TOPIC_EXCEPTION, `cannot produce to the internal topic '${topic.name}'`)
          }
          if (records === null) return failed(index, ErrorCode.INVALID_RECORD, 'records are null')
          const maxMessageBytes = Number(topicConfig(topic.configs, 'max.message.bytes', broker.config))
          const check = checkProducedBatch(records, { allowZstd: apiVersion >= 7, maxMessageBytes })
          if (!check.ok) return failed(index, check.errorCode, check.message)
          if (check.header.producerId >= 0n) {
            return failed(index, ErrorCode.UNKNOWN_PRODUCER_ID, 'idempotent and transactional producers are not supported yet')
          }
          if (topicConfig(topic.configs, 'cleanup.policy', broker.config).includes('compact')) {
            const problem = keylessProblem(records)
            if (problem) return failed(index, problem.errorCode, problem.message)
          }
          const minInsync = Number(topicConfig(topic.configs, 'min.insync.replicas', broker.config))
          if (acks === -1 && partition.isr.length < minInsync) return failed(index, ErrorCode.NOT_ENOUGH_REPLICAS)
          const logAppendTime =
            topicConfig(topic.configs, 'message.timestamp.type', broker.config) === 'LogAppendTime'
              ? BigInt(Date.now())
              : undefined
          try {
            const { baseOffset } = await partition.appendAsLeader(records, { logAppendTime })
            return {
              index,
              errorCode: ErrorCode.NONE,
              baseOffset,
              logAppendTimeMs: logAppendTime ?? -1n,
              logStartOffset: partition.logStartOffset,
              errorMessage: null,
            }
          } catch (error) {
            // A storage failure is logged once, by the node; each append it refuses only here, quietly.
            if (error instanceof StorageError) {
              broker.log.debug(`append to ${topic.name}-${index} refused: ${error.message}`)
              return failed(index, ErrorCode.KAFKA_STORAGE_ERROR, error.message)
            }
            broker.log.error(`append to ${topic.name}-${index} failed: ${(error as Error).message}`)
            return failed(index, ErrorCode.KAFKA_STORAGE_ERROR)
          }
        }),
      )
    }
    const responses = await Promise.all(
      request.topicData.map(async (topicData, i) => ({
        name: topicData.name,
        partitionResponses: await Promise.all(results[i]!),
      })),
    )
    if (acks === 0) {
      const anyFailed = responses.some((t) => t.partitionResponses.some((p) => p.errorCode !== ErrorCode.NONE))
      return anyFailed ? CLOSE_CONNECTION : NO_RESPONSE
    }
    return { responses, throttleTimeMs: 0 }
  },
)
