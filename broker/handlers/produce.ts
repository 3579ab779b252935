/**
 * Produce: v0-10.
 *
 * Behaviour
 * - acks 0: no response; if any partition failed, the connection is closed instead (Kafka does this so that an
 *   acks=0 producer notices, KafkaApis.handleProduceRequest). acks 1: answered once the batch is written.
 *   acks -1: NOT_ENOUGH_REPLICAS (nothing written) while the ISR is smaller than the topic's min.insync.replicas (on
 *   a cluster node: its members the leader finds in sync, so also while the controller cannot commit a shrink); on
 *   one node the ISR is this broker alone, so otherwise the same as 1. On a cluster node the answer waits until the
 *   partition's high watermark passes the batch (every ISR member has it, cluster/replica-manager.ts):
 *   NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR falls below min.insync.replicas meanwhile, NOT_LEADER_OR_FOLLOWER
 *   when leadership moves, REQUEST_TIMED_OUT after the request's timeoutMs (the batch is written and may still be
 *   replicated, as in Kafka). Leadership is checked again just before the append, as the batch may have waited for
 *   its checks while leadership moved. Other acks: INVALID_REQUIRED_ACKS.
 * - A partition named more than once gets only the last entry's batch, answered once in the place it was first named
 *   (KafkaApis.handleProduceRequest keys the appends by partition).
 * - Each partition's `records` must be exactly one magic-2 batch that passes Kafka's LogValidator: its header
 *   (protocol/record-batch.ts checkProducedBatch: length, CRC, count against lastOffsetDelta, codec, no control
 *   batch, no LogAppendTime flag) and its records (validateRecords: a compressed payload that inflates cleanly to at
 *   most 32x max.message.bytes, records whose lengths, varints, header counts and offsetDeltas hold up, exactly as
 *   many as declared and nothing after them, keys on compacted topics, and on CreateTime topics timestamps within
 *   message.timestamp.before.max.ms / after.max.ms of the broker clock, KIP-937). Failures are per partition and
 *   nothing of that partition is written: CORRUPT_MESSAGE, INVALID_RECORD, INVALID_TIMESTAMP or MESSAGE_TOO_LARGE,
 *   with the failing records in recordErrors (v8+, KIP-467). With log.record.validation.enable=false only the header
 *   is checked, except on compacted topics and for batches the topic's compression.type rebuilds.
 * - Uncompressed batches (and compressed ones saying they inflate to at most 64 KiB) are walked on the event loop;
 *   larger compressed ones in the worker pool (broker/batch-inflater.ts). Appends to a partition still happen in the
 *   order the requests arrived, as under Kafka's log lock: a batch waits for an earlier one still being checked.
 * - The batch is stored whole: baseOffset and partitionLeaderEpoch are stamped in place; maxTimestamp becomes the
 *   largest record timestamp when the producer wrote another (as Kafka's setMaxTimestamp, so retention and
 *   ListOffsets can trust it); LogAppendTime topics get maxTimestamp = now instead (and a new CRC either way), which
 *   the response returns as logAppendTimeMs, else -1. An idempotent producer's retry of a batch already written is
 *   answered with the original's stored maxTimestamp as logAppendTimeMs, on a CreateTime topic too (Kafka's
 *   UnifiedLog.append answers a duplicate with its BatchMetadata.timestamp).
 * - A topic whose compression.type is a codec (uncompressed, gzip, snappy, lz4, zstd) rather than `producer` stores a
 *   batch of another codec rebuilt with it, after the checks above, as Kafka's LogValidator does: the same records,
 *   offset deltas, timestamps, producer id, epoch, sequence and transactional flag (gzip at compression.gzip.level,
 *   zstd at compression.zstd.level). It is MESSAGE_TOO_LARGE when the rebuilt batch exceeds max.message.bytes (as
 *   UnifiedLog checks again after a recompression). The rebuild runs in the worker pool (batch-inflater.ts), never on
 *   the event loop: compressing costs far more than checking.
 * - An unknown topic or partition is UNKNOWN_TOPIC_OR_PARTITION (KafkaApis checks its metadata cache first); a
 *   cluster node answers NOT_LEADER_OR_FOLLOWER for a partition its metadata image holds but it has no log of yet
 *   (a topic just created, in the moment after CreateTopics is answered), as Kafka's
 *   ReplicaManager.getPartitionOrError does, so clients refresh their metadata and retry (handler.ts
 *   `missingPartitionError`).
 * - Internal topics (__consumer_offsets, __transaction_state) are written only by their coordinators; a client's
 *   batch for one is INVALID_TOPIC_EXCEPTION, as in Kafka (ReplicaManager.appendToLocalLog: "Cannot append to
 *   internal topic").
 * - Idempotent and transactional batches (producerId >= 0) are checked against the partition's producer state
 *   (broker/partition.ts, storage/producer-state.ts, as UnifiedLog.analyzeAndValidateProducerState): a retry of one of
 *   the producer's last five batches is answered with the original offsets and written nowhere; a sequence that does
 *   not follow the last one is OUT_OF_ORDER_SEQUENCE_NUMBER, a new epoch must start at sequence 0, an older epoch is
 *   INVALID_PRODUCER_EPOCH, and a non-transactional batch while the producer's transaction is open INVALID_TXN_STATE.
 *   A batch refused for any reason (these, or the checks above) leaves the producer state as it was. Transactional
 *   batches need the request's transactionalId (TRANSACTIONAL_ID_AUTHORIZATION_FAILED without one, as Kafka answers
 *   when it cannot authorize a null id). The first transactional batch of a transaction in a partition is verified
 *   with the transaction coordinator (KIP-890 part 1, as Kafka 3.6+ does for every client version): a partition not
 *   added with AddPartitionsToTxn is INVALID_TXN_STATE, and nothing is written.
 * - A failed write is KAFKA_STORAGE_ERROR, and so is every append after it (the node's storage is fail-stop for
 *   writes, see broker.ts); the error message says which of the two it was.
 *
 * Version notes
 * - v0-2 are advertised because librdkafka 2.0.2 only compresses when it sees Produce v0 (KAFKA-18659), and are
 *   answered UNSUPPORTED_VERSION per partition: they carry legacy message sets (magic 0/1), which Brook does not
 *   store (as Kafka 4, KIP-896).
 * - zstd needs v7+ (UNSUPPORTED_COMPRESSION_TYPE otherwise, KIP-110). v8+ fill errorMessage and recordErrors.
 * - v10 (KIP-951): a partition answered NOT_LEADER_OR_FOLLOWER carries its current leader and leader epoch from the
 *   node's metadata, and the answer the endpoints of those leaders that are live brokers (nodeEndpoints), so the
 *   producer goes to the new leader without asking Metadata first (KafkaApis.handleProduceRequest).
 */
import {
  produce,
  type ProduceRequest,
  type ProduceResponse,
  type ProduceResponseBatchIndexAndErrorMessage,
  type ProduceResponsePartitionProduceResponse,
} from '../../protocol/messages/produce.js'
import { ErrorCode, KafkaError, errorInfo } from '../../protocol/errors.js'
import { Attribute, checkProducedBatch, setMaxTimestamp, type RecordsCheck } from '../../protocol/record-batch.js'
import { Compression, inflationLimit } from '../../protocol/compression.js'
import { CLOSE_CONNECTION, NO_RESPONSE, defineHandler, fillCurrentLeaders, leadershipError, missingPartitionError, partitionsNamedOnce } from '../handler.js'
import { batchInflater } from '../batch-inflater.js'
import { effectiveMinIsr } from '../cluster/replication/config.js'
import type { Partition, VerificationGuard } from '../partition.js'
import type { TopicConfig } from '../topic-configs.js'
import type { Logger } from '../logger.js'
import { StorageError } from '../../storage/log-store.js'
import { AppendOrigin } from '../../storage/producer-state.js'

type PartitionResult = ProduceResponsePartitionProduceResponse

/**
 * Appends to one partition happen in the order their produce requests arrived (Kafka validates and appends under
 * the log's lock). A batch decided at once is appended at once, unless an earlier one to the same partition is still
 * being checked in a worker; then it waits for that one. A turn ends once the append has taken its offsets
 * (PartitionLog.append assigns them synchronously), not once the write completes, so group commit still gathers
 * the writes.
 */
class AppendOrder {
  private readonly tails = new WeakMap<Partition, Promise<void>>()

  run<R>(partition: Partition, verdict: Prepared | Promise<Prepared>, append: (verdict: Prepared) => Promise<R>): Promise<R> {
    const tail = this.tails.get(partition)
    if (tail === undefined && !(verdict instanceof Promise)) return append(verdict)
    const turn = (tail ?? Promise.resolve()).then(() => verdict)
    // Registered before `done`, so this append takes its offsets before the next one is let through.
    const result = turn.then(append)
    const done = turn.then(
      () => undefined,
      () => undefined,
    )
    this.tails.set(partition, done)
    void done.then(() => {
      if (this.tails.get(partition) === done) this.tails.delete(partition)
    })
    return result
  }
}

const appendOrder = new AppendOrder()

/** A checked batch, with what to store instead when the topic's compression.type recompressed it. */
type Prepared = Extract<RecordsCheck, { ok: false }> | { ok: true; maxTimestamp: bigint; batch?: Buffer }

/**
 * The batch rebuilt with `codec`, the topic's compression.type (Kafka's LogValidator recompresses a batch whose codec
 * is not the topic's): every record, offset delta, timestamp and producer field kept. MESSAGE_TOO_LARGE when the
 * result exceeds max.message.bytes (UnifiedLog checks the size again after a recompression), the records' own error
 * when they cannot be read.
 */
async function recompressed(verdict: RecordsCheck | Promise<RecordsCheck>, records: Buffer, codec: number, config: TopicConfig, log: Logger): Promise<Prepared> {
  const check = await verdict
  if (!check.ok) return check
  const refused = (errorCode: number, message: string): Prepared => ({ ok: false, errorCode, message, recordErrors: [] })
  let batch: Buffer
  try {
    const level = codec === Compression.zstd ? config.compressionZstdLevel : config.compressionGzipLevel
    batch = await batchInflater.recompress(records, codec, level, inflationLimit(config.maxMessageBytes))
  } catch (error) {
    if (error instanceof KafkaError) return refused(error.code, error.message)
    log.error(`recompressing a batch failed: ${(error as Error).message}`)
    return refused(ErrorCode.UNKNOWN_SERVER_ERROR, 'the batch could not be recompressed')
  }
  if (batch.length > config.maxMessageBytes) {
    return refused(ErrorCode.MESSAGE_TOO_LARGE, `the batch is ${batch.length} bytes compressed with the topic's compression.type, more than its max.message.bytes (${config.maxMessageBytes})`)
  }
  return { ...check, batch }
}

function failed(index: number, errorCode: number, message?: string, recordErrors: ProduceResponseBatchIndexAndErrorMessage[] = []): PartitionResult {
  return {
    index,
    errorCode,
    baseOffset: -1n,
    logAppendTimeMs: -1n,
    logStartOffset: -1n,
    recordErrors,
    errorMessage: message ?? errorInfo(errorCode).message,
  }
}

export const produceHandler = defineHandler<ProduceRequest, ProduceResponse>(
  produce,
  '0-10',
  async (request, { services, apiVersion }) => {
    const { acks } = request
    const topicDataOnce = partitionsNamedOnce(request.topicData, (t) => t.partitionData, (t, p) => `${t.name}\0${p.index}`, (t, partitionData) => ({ ...t, partitionData }))
    const results: Promise<PartitionResult>[][] = []
    for (const topicData of topicDataOnce) {
      const topic = services.topics.get(topicData.name)
      results.push(
        topicData.partitionData.map(async ({ index, records }): Promise<PartitionResult> => {
          if (apiVersion < 3) return failed(index, ErrorCode.UNSUPPORTED_VERSION, 'Produce v0-2 (message format v0/v1) is not supported; use v3 or later')
          if (acks !== 0 && acks !== 1 && acks !== -1) return failed(index, ErrorCode.INVALID_REQUIRED_ACKS)
          const partition = topic?.partitions[index]
          if (!topic || !partition) return failed(index, missingPartitionError(services, { topic: topicData.name }, index))
          const notLeader = leadershipError(services, topic, index)
          if (notLeader !== ErrorCode.NONE) return failed(index, notLeader)
          if (topic.isInternal) {
            return failed(index, ErrorCode.INVALID_TOPIC_EXCEPTION, `cannot produce to the internal topic '${topic.name}'`)
          }
          if (records === null) return failed(index, ErrorCode.INVALID_RECORD, 'records are null')
          // Read once: an AlterConfigs while this batch is checked applies from the next batch on.
          const config = topic.config
          const check = checkProducedBatch(records, { allowZstd: apiVersion >= 7, maxMessageBytes: config.maxMessageBytes })
          if (!check.ok) return failed(index, check.errorCode, check.message)
          let verification: VerificationGuard | undefined
          if ((check.header.attributes & Attribute.transactional) !== 0) {
            if (request.transactionalId === null) {
              return failed(index, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, 'a transactional batch needs the request\'s transactionalId')
            }
            const { producerId, producerEpoch } = check.header
            verification = partition.startVerification(producerId, producerEpoch)
            if (verification !== undefined) {
              const code = await services.transactions.verifyPartition({ transactionalId: request.transactionalId, producerId, producerEpoch }, { topic: topic.name, partition: index })
              if (code !== ErrorCode.NONE) {
                return failed(index, code, code === ErrorCode.INVALID_TXN_STATE ? `${topic.name}-${index} was not added to the transaction of '${request.transactionalId}'` : undefined)
              }
            }
          }
          const logAppendTime = config.messageTimestampType === 'LogAppendTime'
          const compacted = config.cleanupPolicy.compact
          // A topic's compression.type other than the producer's codec: the batch is stored recompressed, so every
          // record is read anyway, and checked first whatever log.record.validation.enable says (as LogValidator
          // does), so that records that do not hold up are the producer's error, not the rebuild's.
          const codec = config.compressionType
          const recompress = codec !== null && codec !== (check.header.attributes & Attribute.compressionMask)
          const verdict: RecordsCheck | Promise<RecordsCheck> =
            services.config.recordValidation || compacted || recompress
              ? batchInflater.validate(records, {
                  now: Date.now(),
                  timestampBounds: logAppendTime
                    ? null
                    : { beforeMaxMs: config.messageTimestampBeforeMaxMs, afterMaxMs: config.messageTimestampAfterMaxMs },
                  requireKeys: compacted,
                  maxInflatedBytes: inflationLimit(config.maxMessageBytes),
                })
              : { ok: true, maxTimestamp: check.header.maxTimestamp }
          const settled =
            verdict instanceof Promise
              ? verdict.catch((error: Error): RecordsCheck => {
                  services.log.error(`checking a batch for ${topic.name}-${index} failed: ${error.message}`)
                  return { ok: false, errorCode: ErrorCode.UNKNOWN_SERVER_ERROR, message: 'the batch could not be checked', recordErrors: [] }
                })
              : verdict
          const prepared: Prepared | Promise<Prepared> = recompress ? recompressed(settled, records, codec, config, services.log) : settled
          return appendOrder.run(partition, prepared, async (verdict) => {
            if (!verdict.ok) return failed(index, verdict.errorCode, verdict.message, verdict.recordErrors)
            const batch = verdict.batch ?? records
            const stillLeader = leadershipError(services, topic, index)
            if (stillLeader !== ErrorCode.NONE) return failed(index, stillLeader)
            // A cluster node's leader counts only the ISR members in sync now (cluster/replica-manager.ts).
            const underMinIsr = (): boolean =>
              services.replicas ? services.replicas.underMinIsr(topic.topicId, index, Date.now()) : partition.isr.length < effectiveMinIsr(config.minInsyncReplicas, partition.replicas.length)
            if (acks === -1 && underMinIsr()) {
              // Kafka logs each such refusal at ERROR ("The size of the current ISR ... is insufficient to satisfy the
              // min.isr requirement"); once a minute per partition is enough to show why every acks=all write fails.
              services.log.warnOncePer(`min-isr-${topic.topicId}-${index}`, `${topic.name}-${index}: refusing acks=all produces with NOT_ENOUGH_REPLICAS: fewer in-sync replicas than min.insync.replicas (${config.minInsyncReplicas}; ISR [${partition.isr.join(',')}])`)
              return failed(index, ErrorCode.NOT_ENOUGH_REPLICAS)
            }
            // A recompressed batch was built with its records' largest timestamp.
            if (!logAppendTime && batch === records && verdict.maxTimestamp !== check.header.maxTimestamp) setMaxTimestamp(records, verdict.maxTimestamp)
            const appendTime = logAppendTime ? BigInt(Date.now()) : undefined
            try {
              const { baseOffset, lastOffset, duplicateOfMaxTimestamp } = await partition.appendAsLeader(batch, { origin: AppendOrigin.CLIENT, logAppendTime: appendTime, verification })
              if (acks === -1 && services.replicas) {
                const replicated = await services.replicas.awaitHighWatermark(topic.topicId, index, lastOffset + 1n, request.timeoutMs)
                if (replicated !== ErrorCode.NONE) return failed(index, replicated)
              }
              return {
                index,
                errorCode: ErrorCode.NONE,
                baseOffset,
                // A retry of a batch already written gets the original's stored maxTimestamp, on CreateTime topics too.
                logAppendTimeMs: duplicateOfMaxTimestamp ?? appendTime ?? -1n,
                logStartOffset: partition.logStartOffset,
                errorMessage: null,
              }
            } catch (error) {
              if (error instanceof KafkaError) return failed(index, error.code, error.message)
              // A storage failure is logged once, by the node; each append it refuses only here, quietly.
              if (error instanceof StorageError) {
                services.log.debug(`append to ${topic.name}-${index} refused: ${error.message}`)
                return failed(index, ErrorCode.KAFKA_STORAGE_ERROR, error.message)
              }
              services.log.error(`append to ${topic.name}-${index} failed: ${(error as Error).message}`)
              return failed(index, ErrorCode.KAFKA_STORAGE_ERROR)
            }
          })
        }),
      )
    }
    const responses = await Promise.all(
      topicDataOnce.map(async (topicData, i) => ({
        name: topicData.name,
        partitionResponses: await Promise.all(results[i]!),
      })),
    )
    if (acks === 0) {
      const anyFailed = responses.some((t) => t.partitionResponses.some((p) => p.errorCode !== ErrorCode.NONE))
      return anyFailed ? CLOSE_CONNECTION : NO_RESPONSE
    }
    const refused = apiVersion >= 10 && responses.some((t) => t.partitionResponses.some((p) => p.errorCode === ErrorCode.NOT_LEADER_OR_FOLLOWER))
    if (!refused) return { responses, throttleTimeMs: 0 }
    const slots = responses.flatMap((t) => {
      // A partition answered before this node opened its log is the image's (missingPartitionError).
      const topicId = services.topics.get(t.name)?.topicId ?? services.quorum?.controller.image.topic(t.name)?.topicId ?? null
      return t.partitionResponses.map((answer) => ({ topicId, index: answer.index, answer }))
    })
    return { responses, throttleTimeMs: 0, nodeEndpoints: fillCurrentLeaders(services, slots, [ErrorCode.NOT_LEADER_OR_FOLLOWER]) }
  },
)
