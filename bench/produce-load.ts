/**
 * Scenario: Brook produce throughput from a pre-encoded batch generator. The Produce frames (acks=1, or -1 with
 * `acks`; each carrying one batch for each of `batchesPerRequest` consecutive partitions) are encoded once; then
 * `connections` connections each keep `window` requests in flight, resending those frames round-robin until
 * `totalBatches` batches are acknowledged. The broker stamps offsets into its own copy of each batch, so resending the
 * same bytes is valid. Only acknowledged, error-free partitions count.
 *
 * With `idempotent` (a producer id and epoch from InitProducerId), every batch sent is a copy of its pool batch with
 * the producer id, epoch and the partition's next base sequence written in and its CRC recomputed, as an idempotent
 * producer sends it; sequences are taken in send order, so this needs one connection (appends of one connection
 * keep their order; Kafka's producers keep at most 5 requests in flight).
 */
import { encodeRequestFrame, decodeResponseFrame } from '../protocol/frame.js'
import { produce, type ProduceRequest, type ProduceResponse } from '../protocol/messages/produce.js'
import { errorInfo } from '../protocol/errors.js'
import { At, computeCrc } from '../protocol/record-batch.js'
import type { BatchPool } from './batches.js'
import { percentile, throughput, type Throughput } from './measure.js'
import { WireConnection } from './wire.js'

export interface ProduceLoadOptions {
  host: string
  port: number
  topic: string
  partitions: number
  version: number
  pool: BatchPool
  totalBatches: number
  batchesPerRequest: number
  window: number
  connections: number
  idempotent?: { producerId: bigint; producerEpoch: number }
  /** The Produce requests' acks: 1 (the default, the leader's append) or -1 (all: every replica of the ISR). */
  acks?: 1 | -1
}

export interface ProduceResult extends Throughput {
  requests: number
  /** Partition results with an error code, and the first of them. */
  errors: number
  firstError?: string
  latencyMs: { p50: number; p99: number; max: number }
  /** Records acknowledged per partition: with offsets from 0, each partition's log end offset. */
  recordsByPartition: number[]
}

interface EncodedRequest {
  frame: Buffer
  batches: { index: number; records: Buffer }[]
  /** Batch bytes by partition index (a request names each partition once). */
  batchBytes: Map<number, number>
}

/**
 * Enough distinct frames to use every batch of the pool, rounded up so that the round-robin hits every partition
 * equally often.
 */
function encodeRequests(options: ProduceLoadOptions): EncodedRequest[] {
  const { pool, partitions, batchesPerRequest: perRequest } = options
  let count = Math.ceil(pool.batches.length / perRequest)
  count = Math.ceil(count / partitions) * partitions
  return Array.from({ length: count }, (_, k) => {
    const indexes = Array.from({ length: perRequest }, (_, i) => (k * perRequest + i) % partitions)
    const batches = indexes.map((_, i) => pool.batches[(k * perRequest + i) % pool.batches.length]!)
    const request: ProduceRequest = {
      transactionalId: null,
      acks: options.acks ?? 1,
      timeoutMs: 30_000,
      topicData: [{ name: options.topic, partitionData: indexes.map((index, i) => ({ index, records: batches[i]! })) }],
    }
    const frame = Buffer.concat(encodeRequestFrame(produce, options.version, 0, 'brook-bench', request))
    return { frame, batches: indexes.map((index, i) => ({ index, records: batches[i]! })), batchBytes: new Map(indexes.map((index, i) => [index, batches[i]!.length])) }
  })
}

/** The next sequence per partition, and a frame of `request`'s batches stamped with them. */
function sequencedFrame(options: ProduceLoadOptions, request: EncodedRequest, nextSequence: number[]): Buffer {
  const { producerId, producerEpoch } = options.idempotent!
  const partitionData = request.batches.map(({ index, records }) => {
    const stamped = Buffer.from(records)
    stamped.writeBigInt64BE(producerId, At.producerId)
    stamped.writeInt16BE(producerEpoch, At.producerEpoch)
    stamped.writeInt32BE(nextSequence[index]!, At.baseSequence)
    stamped.writeUInt32BE(computeCrc(stamped), At.crc)
    nextSequence[index]! += stamped.readInt32BE(At.recordsCount)
    return { index, records: stamped }
  })
  const body: ProduceRequest = { transactionalId: null, acks: options.acks ?? 1, timeoutMs: 30_000, topicData: [{ name: options.topic, partitionData }] }
  return Buffer.concat(encodeRequestFrame(produce, options.version, 0, 'brook-bench', body))
}

export async function produceLoad(options: ProduceLoadOptions): Promise<ProduceResult> {
  if (options.idempotent && options.connections !== 1) throw new Error('an idempotent produce load needs one connection')
  const nextSequence = new Array<number>(options.partitions).fill(0)
  const encoded = encodeRequests(options)
  const totalRequests = Math.ceil(options.totalBatches / options.batchesPerRequest)
  const connections = await Promise.all(
    Array.from({ length: options.connections }, () => WireConnection.connect(options.host, options.port)),
  )
  const recordsByPartition = new Array<number>(options.partitions).fill(0)
  const latencies: number[] = []
  let next = 0
  let bytes = 0
  let records = 0
  let errors = 0
  let firstError: string | undefined

  // One lane keeps one request in flight: `window` lanes per connection.
  const lane = async (connection: WireConnection): Promise<void> => {
    while (next < totalRequests) {
      const request = encoded[next++ % encoded.length]!
      const frame = options.idempotent ? sequencedFrame(options, request, nextSequence) : request.frame
      const sent = performance.now()
      const { body } = await connection.resend(frame, (payload) =>
        decodeResponseFrame<ProduceResponse>(produce, options.version, payload),
      )
      latencies.push(performance.now() - sent)
      for (const topic of body.responses) {
        for (const partition of topic.partitionResponses) {
          if (partition.errorCode !== 0) {
            errors++
            firstError ??= `${topic.name}-${partition.index}: ${errorInfo(partition.errorCode).name} ${partition.errorMessage ?? ''}`
            continue
          }
          recordsByPartition[partition.index]! += options.pool.recordsPerBatch
          records += options.pool.recordsPerBatch
          bytes += request.batchBytes.get(partition.index) ?? 0
        }
      }
    }
  }

  const start = performance.now()
  try {
    await Promise.all(connections.flatMap((c) => Array.from({ length: options.window }, () => lane(c))))
  } finally {
    for (const connection of connections) connection.close()
  }
  const seconds = (performance.now() - start) / 1000
  latencies.sort((a, b) => a - b)
  return {
    ...throughput(bytes, records, seconds),
    requests: totalRequests,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    latencyMs: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) ?? 0 },
    recordsByPartition,
  }
}
