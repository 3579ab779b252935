/**
 * Scenario: Brook fetch throughput, reading a topic back from offset 0 to the end of each partition. The partitions
 * are spread over `connections` connections; each keeps one Fetch in flight for all of its partitions that are not
 * finished (a consumer's fetch loop). Batches are counted from their headers only (length, lastOffsetDelta,
 * recordsCount): decoding records is the consumer's cost, not the broker's.
 */
import { encodeRequestFrame, decodeResponseFrame } from '../protocol/frame.js'
import { fetch, type FetchRequest, type FetchResponse } from '../protocol/messages/fetch.js'
import { IsolationLevel, ZERO_UUID } from '../protocol/constants.js'
import { errorInfo } from '../protocol/errors.js'
import { At, LOG_OVERHEAD, BATCH_HEADER_SIZE } from '../protocol/record-batch.js'
import { throughput, type Throughput } from './measure.js'
import { WireConnection } from './wire.js'

export interface FetchLoadOptions {
  host: string
  port: number
  topic: string
  topicId: string
  version: number
  /** The log end offset of each partition: fetching stops there. */
  endOffsets: readonly number[]
  maxBytes: number
  partitionMaxBytes: number
  connections: number
}

export interface FetchResult extends Throughput {
  requests: number
  errors: number
  firstError?: string
  /** Every partition was read to its end offset. */
  complete: boolean
}

interface Scan {
  bytes: number
  records: number
  /** The offset after the last whole batch. */
  nextOffset: bigint
}

interface PartitionResult {
  index: number
  errorCode: number
  highWatermark: bigint
  scan: Scan | null
}

/** What a partition's `records` hold, from batch headers only. */
function scanBatches(records: Buffer, fetchOffset: bigint): Scan {
  let at = 0
  let count = 0
  let nextOffset = fetchOffset
  while (at + BATCH_HEADER_SIZE <= records.length) {
    const size = records.readInt32BE(at + At.batchLength) + LOG_OVERHEAD
    if (at + size > records.length) break
    count += records.readInt32BE(at + At.recordsCount)
    nextOffset = records.readBigInt64BE(at + At.baseOffset) + BigInt(records.readInt32BE(at + At.lastOffsetDelta)) + 1n
    at += size
  }
  return { bytes: at, records: count, nextOffset }
}

/** Decodes a Fetch response and scans each partition's batches, keeping nothing that points into `payload`. */
function summarize(payload: Buffer, version: number, offsets: readonly bigint[]): PartitionResult[] {
  const { body } = decodeResponseFrame<FetchResponse>(fetch, version, payload)
  return body.responses.flatMap((topic) =>
    topic.partitions.map(({ partitionIndex, errorCode, highWatermark, records }) => ({
      index: partitionIndex,
      errorCode,
      highWatermark,
      scan: Buffer.isBuffer(records) && records.length > 0 ? scanBatches(records, offsets[partitionIndex]!) : null,
    })),
  )
}

export async function fetchLoad(options: FetchLoadOptions): Promise<FetchResult> {
  const offsets = options.endOffsets.map(() => 0n)
  const ends = options.endOffsets.map(BigInt)
  let bytes = 0
  let records = 0
  let requests = 0
  let errors = 0
  let firstError: string | undefined

  const consume = async (connection: WireConnection, partitions: number[]): Promise<void> => {
    let active = partitions.filter((p) => offsets[p]! < ends[p]!)
    while (active.length > 0 && errors === 0) {
      const request: FetchRequest = {
        clusterId: null,
        replicaId: -1,
        replicaState: { replicaId: -1, replicaEpoch: -1n },
        maxWaitMs: 0,
        minBytes: 1,
        maxBytes: options.maxBytes,
        isolationLevel: IsolationLevel.READ_UNCOMMITTED,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [
          {
            topic: options.topic,
            topicId: options.topicId,
            partitions: active.map((partition) => ({
              partition,
              currentLeaderEpoch: -1,
              fetchOffset: offsets[partition]!,
              lastFetchedEpoch: -1,
              logStartOffset: -1n,
              partitionMaxBytes: options.partitionMaxBytes,
              replicaDirectoryId: ZERO_UUID,
            })),
          },
        ],
        forgottenTopicsData: [],
        rackId: '',
      }
      const correlationId = connection.nextCorrelationId()
      const frame = encodeRequestFrame(fetch, options.version, correlationId, 'brook-bench', request)
      // Summarized as it arrives: the payload's buffer is reused for the next response (see wire.ts).
      const partitionResults = await connection.send(frame, correlationId, (payload) =>
        summarize(payload, options.version, offsets),
      )
      requests++
      let progress = false
      for (const partition of partitionResults) {
        if (partition.errorCode !== 0) {
          errors++
          firstError ??= `${options.topic}-${partition.index}: ${errorInfo(partition.errorCode).name}`
          continue
        }
        if (!partition.scan) continue
        bytes += partition.scan.bytes
        records += partition.scan.records
        if (partition.scan.nextOffset > offsets[partition.index]!) progress = true
        offsets[partition.index] = partition.scan.nextOffset
      }
      if (!progress) {
        errors++
        firstError ??=
          `no progress: fetch offsets ${active.map((p) => `${p}:${offsets[p]}`).join(', ')}, ` +
          `acknowledged ends ${active.map((p) => `${p}:${ends[p]}`).join(', ')}, ` +
          `high watermarks ${partitionResults.map((p) => `${p.index}:${p.highWatermark}`).join(', ')}`
      }
      active = active.filter((p) => offsets[p]! < ends[p]!)
    }
  }

  const count = Math.min(options.connections, options.endOffsets.length)
  const connections = await Promise.all(
    Array.from({ length: count }, () => WireConnection.connect(options.host, options.port)),
  )
  const start = performance.now()
  try {
    await Promise.all(
      connections.map((connection, c) =>
        consume(connection, options.endOffsets.map((_, p) => p).filter((p) => p % count === c)),
      ),
    )
  } finally {
    for (const connection of connections) connection.close()
  }
  const seconds = (performance.now() - start) / 1000
  return {
    ...throughput(bytes, records, seconds),
    requests,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    complete: offsets.every((offset, p) => offset >= ends[p]!),
  }
}
