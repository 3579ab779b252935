/**
 * Test input for the storage suite: record batches built the way a producer builds them, and the bytes storage is
 * expected to hold for them. The expectations are computed here from Kafka's batch layout (DefaultRecordBatch.java),
 * not with the header helpers storage itself uses, so a wrong offset or a stale CRC in storage cannot hide behind
 * the same mistake in the expectation.
 */
import { crc32c } from '@node-rs/crc32'
import { expect } from 'vitest'
import { decodeRecords, encodeRecordBatch } from '../../protocol/record-batch.js'
import type { PartitionLog } from '../../storage/partition-log.js'

/** Byte positions in a magic-2 batch header. */
const Header = {
  baseOffset: 0,
  batchLength: 8,
  partitionLeaderEpoch: 12,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  maxTimestamp: 35,
} as const
const LOG_APPEND_TIME = 0x08

export interface ProducerBatchOptions {
  /** Timestamp of the first record; record i gets `firstTimestamp + i`. */
  firstTimestamp?: bigint
  /** Each record's timestamp, in order (instead of firstTimestamp). */
  timestamps?: readonly bigint[]
  /** Each record's key (instead of `key-<i>`). */
  keys?: readonly string[]
  /** Each value is padded to this many bytes, so batches of a log can differ in size. */
  valueBytes?: number
}

/** A batch of `records` records whose values are `${label}/0`, `${label}/1`, ...; baseOffset 0, epoch -1. */
export function producerBatch(label: string, records: number, options: ProducerBatchOptions = {}): Buffer {
  const firstTimestamp = options.firstTimestamp ?? 1_700_000_000_000n
  return encodeRecordBatch(
    Array.from({ length: records }, (_, i) => ({
      key: Buffer.from(options.keys?.[i] ?? `key-${i}`),
      value: Buffer.from(`${label}/${i}`.padEnd(options.valueBytes ?? 0, '.')),
      timestamp: options.timestamps?.[i] ?? firstTimestamp + BigInt(i),
    })),
  )
}

/** What storage should hold for `input` appended at `baseOffset` in `leaderEpoch` (and LogAppendTime, if set). */
export function expectedStored(
  input: Buffer,
  at: { baseOffset: bigint; leaderEpoch: number; logAppendTime?: bigint },
): Buffer {
  const batch = Buffer.from(input)
  batch.writeBigInt64BE(at.baseOffset, Header.baseOffset)
  batch.writeInt32BE(at.leaderEpoch, Header.partitionLeaderEpoch)
  if (at.logAppendTime !== undefined) {
    batch.writeInt16BE(batch.readInt16BE(Header.attributes) | LOG_APPEND_TIME, Header.attributes)
    batch.writeBigInt64BE(at.logAppendTime, Header.maxTimestamp)
    // The CRC covers attributes to the end, so LogAppendTime must rewrite it; baseOffset and epoch lie outside it.
    batch.writeUInt32BE(crc32c(batch.subarray(Header.attributes)), Header.crc)
  }
  return batch
}

export function crcHolds(batch: Buffer): boolean {
  return crc32c(batch.subarray(Header.attributes)) === batch.readUInt32BE(Header.crc)
}

export function baseOffsetOf(batch: Buffer): bigint {
  return batch.readBigInt64BE(Header.baseOffset)
}

export function lastOffsetOf(batch: Buffer): bigint {
  return baseOffsetOf(batch) + BigInt(batch.readInt32BE(Header.lastOffsetDelta))
}

export function leaderEpochOf(batch: Buffer): number {
  return batch.readInt32BE(Header.partitionLeaderEpoch)
}

export function maxTimestampOf(batch: Buffer): bigint {
  return batch.readBigInt64BE(Header.maxTimestamp)
}

/** Readable offset ranges (`'4-5'`), for assertions whose failures should say which batches came back. */
export function offsetsOf(batches: readonly Buffer[]): string[] {
  return batches.map((batch) => `${baseOffsetOf(batch)}-${lastOffsetOf(batch)}`)
}

/** Every record value of `batches`, in order, as strings. */
export function valuesOf(batches: readonly Buffer[]): string[] {
  return batches.flatMap((batch) => decodeRecords(batch).map((record) => record.value!.toString().replace(/\.+$/, '')))
}

/** Changes one byte of the records (covered by the CRC), leaving the header intact. */
export function withFlippedRecordByte(batch: Buffer): Buffer {
  const copy = Buffer.from(batch)
  copy[copy.length - 3] = copy[copy.length - 3]! ^ 0xff
  return copy
}

/** A copy of `batch` with another base offset (outside the CRC, so the batch stays valid on its own). */
export function withBaseOffset(batch: Buffer, baseOffset: bigint): Buffer {
  const copy = Buffer.from(batch)
  copy.writeBigInt64BE(baseOffset, Header.baseOffset)
  return copy
}

export function sumOfSizes(batches: readonly Buffer[]): number {
  return batches.reduce((sum, batch) => sum + batch.length, 0)
}

/**
 * Asserts that `actual` holds exactly the bytes of `expected`, batch by batch. Offsets are compared first, so a
 * failure says which batches came back before it shows any bytes.
 */
export function expectBatches(
  actual: readonly Buffer[],
  expected: readonly (Buffer | undefined)[],
  message?: string,
): void {
  const wanted = expected.map((batch) => batch ?? Buffer.alloc(0))
  expect(offsetsOf(actual), message).toEqual(offsetsOf(wanted))
  expect(actual.map((batch) => batch.toString('hex')), message).toEqual(wanted.map((batch) => batch.toString('hex')))
}

/** `log.read` with the scenarios' positional shorthand: from `fetchOffset`, at most `maxBytes`, below `upTo`. */
export function readLog(log: PartitionLog, fetchOffset: bigint, maxBytes: number, upTo: bigint, minOneMessage = true): Promise<Buffer[]> {
  return log.read(fetchOffset, { maxBytes, upTo, minOneMessage })
}

/** The bytes of every batch `log.batches(from, upTo)` yields. */
export async function batchBytes(log: PartitionLog, from: bigint, upTo: bigint): Promise<Buffer[]> {
  const batches: Buffer[] = []
  for await (const batch of log.batches(from, upTo)) batches.push(batch.bytes)
  return batches
}
