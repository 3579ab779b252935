/**
 * Record batches, magic 2 (DefaultRecordBatch.java). The broker treats a batch as opaque except its header:
 *
 *   0 baseOffset int64 | 8 batchLength int32 | 12 partitionLeaderEpoch int32 | 16 magic int8 | 17 crc uint32
 *   21 attributes int16 | 23 lastOffsetDelta int32 | 27 baseTimestamp int64 | 35 maxTimestamp int64
 *   43 producerId int64 | 51 producerEpoch int16 | 53 baseSequence int32 | 57 recordsCount int32 | 61 records...
 *
 * The CRC-32C covers attributes to the end, so baseOffset, batchLength and partitionLeaderEpoch can be stamped
 * without recomputing it; setting LogAppendTime changes maxTimestamp and the attributes, so that one does.
 * Records (DefaultRecord.java): length varint, attributes int8, timestampDelta varlong, offsetDelta varint,
 * key (varint length, -1 null), value, header count varint, headers (key string, value bytes).
 */
import { crc32c } from '@node-rs/crc32'
import { DecodeError, Reader } from './reader.js'
import { Writer } from './writer.js'
import { ErrorCode } from './errors.js'
import { compress, decompress, Compression } from './compression.js'

export const BATCH_HEADER_SIZE = 61
/** The bytes before batchLength's count starts: baseOffset + batchLength. */
export const LOG_OVERHEAD = 12
export const MAGIC = 2

export const At = {
  baseOffset: 0,
  batchLength: 8,
  partitionLeaderEpoch: 12,
  magic: 16,
  crc: 17,
  attributes: 21,
  lastOffsetDelta: 23,
  baseTimestamp: 27,
  maxTimestamp: 35,
  producerId: 43,
  producerEpoch: 51,
  baseSequence: 53,
  recordsCount: 57,
} as const

export const Attribute = {
  compressionMask: 0x07,
  logAppendTime: 0x08,
  transactional: 0x10,
  control: 0x20,
  deleteHorizon: 0x40,
} as const

export interface BatchHeader {
  baseOffset: bigint
  batchLength: number
  partitionLeaderEpoch: number
  magic: number
  crc: number
  attributes: number
  lastOffsetDelta: number
  baseTimestamp: bigint
  maxTimestamp: bigint
  producerId: bigint
  producerEpoch: number
  baseSequence: number
  recordsCount: number
}

export function readBatchHeader(batch: Buffer, at = 0): BatchHeader {
  return {
    baseOffset: batch.readBigInt64BE(at + At.baseOffset),
    batchLength: batch.readInt32BE(at + At.batchLength),
    partitionLeaderEpoch: batch.readInt32BE(at + At.partitionLeaderEpoch),
    magic: batch.readInt8(at + At.magic),
    crc: batch.readUInt32BE(at + At.crc),
    attributes: batch.readInt16BE(at + At.attributes),
    lastOffsetDelta: batch.readInt32BE(at + At.lastOffsetDelta),
    baseTimestamp: batch.readBigInt64BE(at + At.baseTimestamp),
    maxTimestamp: batch.readBigInt64BE(at + At.maxTimestamp),
    producerId: batch.readBigInt64BE(at + At.producerId),
    producerEpoch: batch.readInt16BE(at + At.producerEpoch),
    baseSequence: batch.readInt32BE(at + At.baseSequence),
    recordsCount: batch.readInt32BE(at + At.recordsCount),
  }
}

export function computeCrc(batch: Buffer): number {
  return crc32c(batch.subarray(At.attributes))
}

export function setBaseOffset(batch: Buffer, baseOffset: bigint): void {
  batch.writeBigInt64BE(baseOffset, At.baseOffset)
}

export function setPartitionLeaderEpoch(batch: Buffer, epoch: number): void {
  batch.writeInt32BE(epoch, At.partitionLeaderEpoch)
}

/** Marks the batch LogAppendTime with maxTimestamp = `timestamp`, and rewrites the CRC. */
export function setLogAppendTime(batch: Buffer, timestamp: bigint): void {
  batch.writeInt16BE(batch.readInt16BE(At.attributes) | Attribute.logAppendTime, At.attributes)
  batch.writeBigInt64BE(timestamp, At.maxTimestamp)
  batch.writeUInt32BE(computeCrc(batch), At.crc)
}

export function lastOffsetOf(batch: Buffer): bigint {
  return batch.readBigInt64BE(At.baseOffset) + BigInt(batch.readInt32BE(At.lastOffsetDelta))
}

export type BatchCheck = { ok: true; header: BatchHeader } | { ok: false; errorCode: number; message: string }

/**
 * Checks a produced `records` field the way Kafka's LogValidator does before anything is written: exactly one
 * magic-2 batch, whose length matches, whose CRC holds, whose offsets and count agree, with a known codec, and no
 * control batch from a client. The records inside are not walked: the produce path does no per-record work (the
 * CRC vouches for the bytes; readers of record contents cope with a batch whose records do not parse).
 */
export function checkProducedBatch(records: Buffer, options: { allowZstd: boolean; maxMessageBytes: number }): BatchCheck {
  const fail = (errorCode: number, message: string): BatchCheck => ({ ok: false, errorCode, message })
  if (records.length < BATCH_HEADER_SIZE) return fail(ErrorCode.CORRUPT_MESSAGE, `record batch of ${records.length} bytes is shorter than its header`)
  const magic = records.readInt8(At.magic)
  if (magic !== MAGIC) return fail(ErrorCode.INVALID_RECORD, `record batch magic ${magic} is not supported (only magic 2)`)
  const size = records.readInt32BE(At.batchLength) + LOG_OVERHEAD
  if (size > records.length) return fail(ErrorCode.CORRUPT_MESSAGE, `record batch claims ${size} bytes but ${records.length} were sent`)
  if (size < records.length) return fail(ErrorCode.INVALID_RECORD, 'a produce request must hold exactly one record batch per partition')
  if (size > options.maxMessageBytes) {
    return fail(ErrorCode.MESSAGE_TOO_LARGE, `record batch of ${size} bytes exceeds max.message.bytes (${options.maxMessageBytes})`)
  }
  const header = readBatchHeader(records)
  if (computeCrc(records) !== header.crc) return fail(ErrorCode.CORRUPT_MESSAGE, 'record batch CRC-32C mismatch')
  const codec = header.attributes & Attribute.compressionMask
  if (codec > Compression.zstd) return fail(ErrorCode.INVALID_RECORD, `unknown compression codec ${codec}`)
  if (codec === Compression.zstd && !options.allowZstd) {
    return fail(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, 'zstd needs Produce v7 or later')
  }
  if (header.attributes & Attribute.control) return fail(ErrorCode.INVALID_RECORD, 'clients may not write control batches')
  if (header.recordsCount <= 0 || header.lastOffsetDelta + 1 !== header.recordsCount) {
    return fail(ErrorCode.INVALID_RECORD, `record count ${header.recordsCount} does not match lastOffsetDelta ${header.lastOffsetDelta}`)
  }
  if (header.producerId >= 0n && header.baseSequence < 0) {
    return fail(ErrorCode.INVALID_RECORD, 'an idempotent batch needs a base sequence >= 0')
  }
  return { ok: true, header }
}

/** Splits a buffer of concatenated batches; a trailing partial batch is left out (as Kafka's readers do). */
export function* batchesIn(records: Buffer): Generator<Buffer> {
  let at = 0
  while (at + LOG_OVERHEAD <= records.length) {
    const size = records.readInt32BE(at + At.batchLength) + LOG_OVERHEAD
    if (size < BATCH_HEADER_SIZE || at + size > records.length) return
    yield records.subarray(at, at + size)
    at += size
  }
}

export interface RecordHeader {
  key: string
  value: Buffer | null
}

export interface Record {
  offset: bigint
  timestamp: bigint
  key: Buffer | null
  value: Buffer | null
  headers: RecordHeader[]
}

/** Decodes every record of a batch (decompressing if needed). Not for hot paths. */
export function decodeRecords(batch: Buffer): Record[] {
  const header = readBatchHeader(batch)
  const end = LOG_OVERHEAD + header.batchLength
  const body = decompress(header.attributes & Attribute.compressionMask, batch.subarray(BATCH_HEADER_SIZE, end))
  const reader = new Reader(body)
  const logAppendTime = (header.attributes & Attribute.logAppendTime) !== 0
  const records: Record[] = []
  for (let i = 0; i < header.recordsCount; i++) {
    // As DefaultRecord.readFrom: a record must take exactly the bytes its length says. A negative length used to send
    // the reader backwards, so a hostile batch with a huge recordsCount looped (and allocated) without end.
    const length = reader.varint()
    if (length < 0 || length > reader.remaining) throw new DecodeError(`record ${i} claims ${length} bytes, ${reader.remaining} remain`)
    const recordEnd = reader.offset + length
    reader.int8()
    const timestampDelta = reader.varlong()
    const offsetDelta = reader.varint()
    const key = varBytes(reader)
    const value = varBytes(reader)
    const headerCount = reader.varint()
    if (reader.checkLength(headerCount, 2, 'record headers') === null) throw new DecodeError(`record ${i} has -1 headers`)
    const headers: RecordHeader[] = []
    for (let h = 0; h < headerCount; h++) {
      const keyLength = reader.varint()
      reader.checkLength(keyLength, 1, 'header key')
      headers.push({ key: reader.utf8(keyLength), value: varBytes(reader) })
    }
    if (reader.offset !== recordEnd) throw new DecodeError(`record ${i} claims ${length} bytes but its fields end elsewhere`)
    records.push({
      offset: header.baseOffset + BigInt(offsetDelta),
      timestamp: logAppendTime ? header.maxTimestamp : header.baseTimestamp + timestampDelta,
      key,
      value,
      headers,
    })
  }
  return records
}

function varBytes(reader: Reader): Buffer | null {
  const length = reader.checkLength(reader.varint(), 1, 'record field')
  return length === null ? null : reader.bytes(length)
}

export interface RecordInput {
  key?: Buffer | null
  value: Buffer | null
  headers?: RecordHeader[]
  timestamp?: bigint
  /** Position in the batch; defaults to the record's index (a batch rebuilt by compaction has gaps). */
  offsetDelta?: number
}

export interface BatchOptions {
  baseOffset?: bigint
  compression?: number
  producerId?: bigint
  producerEpoch?: number
  baseSequence?: number
  partitionLeaderEpoch?: number
  /** Defaults to the last record's offsetDelta. */
  lastOffsetDelta?: number
  /** Attribute bits besides the codec: timestamp type, transactional. */
  flags?: number
  /** For LogAppendTime batches, the broker's stamp. */
  maxTimestamp?: bigint
}

/** Builds one magic-2 batch, as a producer does. */
export function encodeRecordBatch(records: readonly RecordInput[], options: BatchOptions = {}): Buffer {
  if (records.length === 0) throw new RangeError('a record batch needs at least one record')
  const now = BigInt(Date.now())
  const timestamps = records.map((r) => r.timestamp ?? now)
  const baseTimestamp = timestamps.reduce((a, b) => (b < a ? b : a))
  const maxTimestamp = options.maxTimestamp ?? timestamps.reduce((a, b) => (b > a ? b : a))
  const body = new Writer(records.length * 32)
  records.forEach((record, i) => {
    const inner = new Writer(64)
    inner.int8(0).varlong(timestamps[i]! - baseTimestamp).varint(record.offsetDelta ?? i)
    writeVarBytes(inner, record.key ?? null)
    writeVarBytes(inner, record.value)
    inner.varint(record.headers?.length ?? 0)
    for (const h of record.headers ?? []) {
      const key = Buffer.from(h.key)
      inner.varint(key.length).bytes(key)
      writeVarBytes(inner, h.value)
    }
    const bytes = inner.toBuffer()
    body.varint(bytes.length).bytes(bytes)
  })
  const codec = options.compression ?? Compression.none
  const payload = compress(codec, body.toBuffer())
  const batch = Buffer.alloc(BATCH_HEADER_SIZE + payload.length)
  batch.writeBigInt64BE(options.baseOffset ?? 0n, At.baseOffset)
  batch.writeInt32BE(batch.length - LOG_OVERHEAD, At.batchLength)
  batch.writeInt32BE(options.partitionLeaderEpoch ?? -1, At.partitionLeaderEpoch)
  batch.writeInt8(MAGIC, At.magic)
  batch.writeInt16BE(codec | (options.flags ?? 0), At.attributes)
  batch.writeInt32BE(options.lastOffsetDelta ?? records.at(-1)!.offsetDelta ?? records.length - 1, At.lastOffsetDelta)
  batch.writeBigInt64BE(baseTimestamp, At.baseTimestamp)
  batch.writeBigInt64BE(maxTimestamp, At.maxTimestamp)
  batch.writeBigInt64BE(options.producerId ?? -1n, At.producerId)
  batch.writeInt16BE(options.producerEpoch ?? -1, At.producerEpoch)
  batch.writeInt32BE(options.baseSequence ?? -1, At.baseSequence)
  batch.writeInt32BE(records.length, At.recordsCount)
  payload.copy(batch, BATCH_HEADER_SIZE)
  batch.writeUInt32BE(computeCrc(batch), At.crc)
  return batch
}

/**
 * The same batch holding only `kept` of its records, at their original offsets: what compaction stores. The offset
 * range (baseOffset, lastOffsetDelta), leader epoch, producer fields and timestamp type stay; the codec stays when
 * Brook can write it (zstd batches are rewritten uncompressed).
 */
export function rebuildBatch(original: Buffer, kept: readonly Record[]): Buffer {
  const header = readBatchHeader(original)
  const codec = header.attributes & Attribute.compressionMask
  const logAppendTime = (header.attributes & Attribute.logAppendTime) !== 0
  return encodeRecordBatch(
    kept.map((r) => ({
      key: r.key,
      value: r.value,
      headers: r.headers,
      timestamp: r.timestamp,
      offsetDelta: Number(r.offset - header.baseOffset),
    })),
    {
      baseOffset: header.baseOffset,
      compression: codec === Compression.zstd ? Compression.none : codec,
      producerId: header.producerId,
      producerEpoch: header.producerEpoch,
      baseSequence: header.baseSequence,
      partitionLeaderEpoch: header.partitionLeaderEpoch,
      lastOffsetDelta: header.lastOffsetDelta,
      flags: header.attributes & (Attribute.logAppendTime | Attribute.transactional),
      maxTimestamp: logAppendTime ? header.maxTimestamp : undefined,
    },
  )
}

function writeVarBytes(writer: Writer, value: Buffer | null): void {
  if (value === null) writer.varint(-1)
  else writer.varint(value.length).bytes(value)
}
