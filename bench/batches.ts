/**
 * The bench's data: a pool of distinct record batches, encoded once by our own codec as a producer would encode them
 * (magic 2, null keys, random values so that LevelDB's snappy cannot shrink them), as many records of `recordBytes`
 * as fit in `batchBytes` uncompressed, then compressed with the chosen codec (random values do not shrink, so the
 * batches stay the same size and only the broker's work changes). Every scenario sends or writes these same bytes; the pool is saved to a file
 * so that the raw LevelDB worker process stores exactly what the broker stores.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { At, batchesIn, encodeRecordBatch } from '../protocol/record-batch.js'
import { Compression, type CompressionName } from '../protocol/compression.js'

export interface BatchPool {
  readonly batches: readonly Buffer[]
  /** Records in each batch (the same for all). */
  readonly recordsPerBatch: number
}

function encodeBatch(count: number, recordBytes: number, compression: number = Compression.none): Buffer {
  return encodeRecordBatch(Array.from({ length: count }, () => ({ value: randomBytes(recordBytes) })), { compression })
}

/** The largest record count whose batch still fits in `batchBytes` (at least one record). */
function recordsThatFit(batchBytes: number, recordBytes: number): number {
  let count = Math.max(1, Math.floor(batchBytes / (recordBytes + 8)))
  while (count > 1 && encodeBatch(count, recordBytes).length > batchBytes) count--
  while (encodeBatch(count + 1, recordBytes).length <= batchBytes) count++
  return count
}

export function makeBatchPool(options: { batches: number; batchBytes: number; recordBytes: number; compression?: CompressionName }): BatchPool {
  const recordsPerBatch = recordsThatFit(options.batchBytes, options.recordBytes)
  const codec = Compression[options.compression ?? 'none']
  const batches = Array.from({ length: options.batches }, () => encodeBatch(recordsPerBatch, options.recordBytes, codec))
  return { batches, recordsPerBatch }
}

export function savePool(pool: BatchPool, file: string): void {
  writeFileSync(file, Buffer.concat(pool.batches as Buffer[]))
}

export function loadPool(file: string): BatchPool {
  const batches = [...batchesIn(readFileSync(file))]
  if (batches.length === 0) throw new Error(`${file} holds no record batches`)
  return { batches, recordsPerBatch: batches[0]!.readInt32BE(At.recordsCount) }
}

/** Batches a scenario of `totalBytes` moves: the same count for the raw write and for Brook. */
export function batchCount(totalBytes: number, pool: BatchPool): number {
  return Math.max(1, Math.ceil(totalBytes / pool.batches[0]!.length))
}
