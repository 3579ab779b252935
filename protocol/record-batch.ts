/**
 * Record batches, magic 2 (DefaultRecordBatch.java). The broker stores a batch as its producer sent it, after
 * checking its header (checkProducedBatch) and walking its records in place (walkRecords, validateRecords):
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
import { createRequire } from 'node:module'
import type * as Crc32 from '@node-rs/crc32'
import { DecodeError, Reader } from './reader.js'
import { ErrorCode, KafkaError } from './errors.js'
import { COMPRESSION_NAMES, MAX_DECOMPRESSED_BYTES, compress, decompress, Compression, type DecompressOptions } from './compression.js'

/**
 * Loaded with `require`, not `import`: on Node 20 an ES import of this CommonJS package (whose loader then requires
 * the platform package, a native addon) took 50-100 ms more CPU than `require` does, in every process that loads
 * the codec (each node, each `brook` command): `brook topics list` used 0.27 CPU-seconds with the import, 0.22 with
 * `require`.
 */
const { crc32c } = createRequire(import.meta.url)('@node-rs/crc32') as typeof Crc32

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
  setMaxTimestamp(batch, timestamp)
}

/**
 * Sets maxTimestamp and rewrites the CRC: Kafka stores the largest record timestamp it found while validating
 * (RecordBatch.setMaxTimestamp), whatever the producer wrote, so retention and ListOffsets can trust the header.
 */
export function setMaxTimestamp(batch: Buffer, timestamp: bigint): void {
  batch.writeBigInt64BE(timestamp, At.maxTimestamp)
  batch.writeUInt32BE(computeCrc(batch), At.crc)
}

export function lastOffsetOf(batch: Buffer): bigint {
  return batch.readBigInt64BE(At.baseOffset) + BigInt(batch.readInt32BE(At.lastOffsetDelta))
}

export type BatchCheck = { ok: true; header: BatchHeader } | { ok: false; errorCode: number; message: string }

/**
 * Checks a produced `records` field's header the way Kafka's LogValidator does before anything else: exactly one
 * magic-2 batch, whose length matches, whose CRC holds, whose offsets and count agree, with a known codec, no
 * control batch and no LogAppendTime flag from a client. Its records are checked next, by validateRecords.
 *
 * A producer setting LogAppendTime is refused with INVALID_TIMESTAMP whatever the topic's timestamp type; Kafka
 * refuses it for LogAppendTime topics and, on CreateTime topics, checks the batch's maxTimestamp and rewrites the
 * flag. No client sets it.
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
  if (header.attributes & Attribute.logAppendTime) {
    return fail(ErrorCode.INVALID_TIMESTAMP, 'a producer must not set the LogAppendTime timestamp type; the broker stamps it')
  }
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

/**
 * Where one record's fields lie in the records' bytes, filled in by `walkRecords` for each record in turn. A walk
 * fills one view, so walking allocates nothing per record.
 */
export interface RecordView {
  /** The record's position in the batch (Kafka's batchIndex). */
  index: number
  /** Where the record's attributes byte is (just after its length). */
  start: number
  /** timestampDelta as a double: exact within ±2^53 ms. */
  timestampDelta: number
  offsetDelta: number
  keyStart: number
  /** -1: a null key. */
  keyLength: number
  valueStart: number
  /** -1: a null value (a tombstone). */
  valueLength: number
  headersStart: number
  headerCount: number
}

/** Called for each record of a walk; returning true ends the walk there (the rest is not checked). */
export type RecordVisitor = (record: RecordView) => boolean | void

/** Where the last readVarint/readVarlong ended; read it right after the call (a visitor may read varints too). */
let varintEnd = 0

/** A zig-zag varint (int32, at most 5 bytes, as ByteUtils.readVarint) at `at`, before `end`; NaN when malformed. */
function readVarint(bytes: Uint8Array, at: number, end: number): number {
  let value = 0
  for (let shift = 0; shift <= 28; shift += 7) {
    if (at >= end) return NaN
    const byte = bytes[at++]!
    value |= (byte & 0x7f) << shift
    if (byte < 0x80) {
      varintEnd = at
      return (value >>> 1) ^ -(value & 1)
    }
  }
  return NaN
}

/** A zig-zag varlong (at most 10 bytes) as a double; NaN when malformed. */
function readVarlong(bytes: Uint8Array, at: number, end: number): number {
  let value = 0
  let scale = 1
  for (let i = 0; i < 10; i++) {
    if (at >= end) return NaN
    const byte = bytes[at++]!
    value += (byte & 0x7f) * scale
    if (byte < 0x80) {
      varintEnd = at
      return value % 2 === 0 ? value / 2 : -(value + 1) / 2
    }
    scale *= 128
  }
  return NaN
}

/**
 * Walks the `count` records laid out in body[from, to) and checks their structure the way DefaultRecord.readFrom
 * and DefaultRecordBatch's record iterator do: every varint well formed (at most 5 bytes, 10 for the timestamp), a
 * record's length within what remains and equal to the bytes its fields take, key, value and header lengths within
 * the record (-1 for null; a header key is never null), a header count no larger than the bytes left, exactly
 * `count` records and no byte after the last. Reads in place: no Record objects, no slices.
 *
 * Returns null when the records hold up (or the visitor ended the walk), else what is wrong, naming the record:
 * Kafka answers these with INVALID_RECORD ("Found invalid record structure", "Incorrect declared batch size").
 */
export function walkRecords(body: Uint8Array, from: number, to: number, count: number, visit: RecordVisitor | null): string | null {
  const view: RecordView = {
    index: 0,
    start: 0,
    timestampDelta: 0,
    offsetDelta: 0,
    keyStart: 0,
    keyLength: 0,
    valueStart: 0,
    valueLength: 0,
    headersStart: 0,
    headerCount: 0,
  }
  let at = from
  for (let index = 0; index < count; index++) {
    if (at >= to) return `the batch declares ${count} records but holds ${index}`
    const length = readVarint(body, at, to)
    if (length !== length) return `record ${index}: its length is not a valid varint`
    at = varintEnd
    if (length < 1 || length > to - at) return `record ${index} claims ${length} bytes, ${to - at} remain`
    const end = at + length
    const start = at
    const timestampDelta = readVarlong(body, start + 1, end)
    if (timestampDelta !== timestampDelta) return `record ${index}: its timestampDelta is not a valid varlong`
    const offsetDelta = readVarint(body, varintEnd, end)
    if (offsetDelta !== offsetDelta) return `record ${index}: its offsetDelta is not a valid varint`
    const keyLength = readVarint(body, varintEnd, end)
    const keyStart = varintEnd
    if (keyLength !== keyLength || keyLength < -1 || keyLength > end - keyStart) return `record ${index}: its key length does not fit the record`
    const valueLength = readVarint(body, keyLength > 0 ? keyStart + keyLength : keyStart, end)
    const valueStart = varintEnd
    if (valueLength !== valueLength || valueLength < -1 || valueLength > end - valueStart) return `record ${index}: its value length does not fit the record`
    const headerCount = readVarint(body, valueLength > 0 ? valueStart + valueLength : valueStart, end)
    const headersStart = varintEnd
    if (headerCount !== headerCount || headerCount < 0 || headerCount > end - headersStart) return `record ${index}: its header count does not fit the record`
    let p = headersStart
    for (let h = 0; h < headerCount; h++) {
      const headerKeyLength = readVarint(body, p, end)
      p = varintEnd
      if (headerKeyLength !== headerKeyLength || headerKeyLength < 0 || headerKeyLength > end - p) return `record ${index}: header ${h} has a key length that does not fit`
      const headerValueLength = readVarint(body, p + headerKeyLength, end)
      p = varintEnd
      if (headerValueLength !== headerValueLength || headerValueLength < -1 || headerValueLength > end - p) return `record ${index}: header ${h} has a value length that does not fit`
      if (headerValueLength > 0) p += headerValueLength
    }
    if (p !== end) return `record ${index} claims ${length} bytes but its fields take ${p - start}`
    at = end
    if (visit !== null) {
      view.index = index
      view.start = start
      view.timestampDelta = timestampDelta
      view.offsetDelta = offsetDelta
      view.keyStart = keyStart
      view.keyLength = keyLength
      view.valueStart = valueStart
      view.valueLength = valueLength
      view.headersStart = headersStart
      view.headerCount = headerCount
      if (visit(view) === true) return null
    }
  }
  if (at !== to) return `${to - at} bytes follow the last of the ${count} records the batch declares`
  return null
}

/** The uncompressed records of a batch: the batch itself after its header, or its payload inflated. */
export interface RecordsBody {
  bytes: Buffer
  from: number
  to: number
}

/**
 * The records' bytes of `batch`, inflating a compressed payload to at most `maxInflatedBytes` (KafkaError
 * MESSAGE_TOO_LARGE beyond; the codec's own Error when the payload does not inflate). With `reuse`, the bytes are
 * valid only until the next call (compression.ts DecompressOptions).
 */
export function recordsBody(batch: Buffer, maxInflatedBytes: number, options: DecompressOptions = {}): RecordsBody {
  const end = LOG_OVERHEAD + batch.readInt32BE(At.batchLength)
  const codec = batch.readInt16BE(At.attributes) & Attribute.compressionMask
  if (codec === Compression.none) return { bytes: batch, from: BATCH_HEADER_SIZE, to: end }
  const bytes = decompress(codec, batch.subarray(BATCH_HEADER_SIZE, end), maxInflatedBytes, options)
  return { bytes, from: 0, to: bytes.length }
}

/**
 * Decodes every record of a batch (decompressing if needed, to at most `maxInflatedBytes`); throws DecodeError when
 * the records do not hold up (walkRecords). Allocates a Record per record: for tools and compaction, not hot paths.
 */
export function decodeRecords(batch: Buffer, maxInflatedBytes = MAX_DECOMPRESSED_BYTES): Record[] {
  const header = readBatchHeader(batch)
  const body = recordsBody(batch, maxInflatedBytes)
  const logAppendTime = (header.attributes & Attribute.logAppendTime) !== 0
  const bytes = body.bytes
  const records: Record[] = []
  const problem = walkRecords(bytes, body.from, body.to, header.recordsCount, (view) => {
    const headers: RecordHeader[] = []
    const reader = new Reader(bytes, view.headersStart)
    for (let h = 0; h < view.headerCount; h++) {
      const key = reader.utf8(reader.varint())
      const length = reader.varint()
      headers.push({ key, value: length < 0 ? null : reader.bytes(length) })
    }
    records.push({
      offset: header.baseOffset + BigInt(view.offsetDelta),
      // Re-read exactly: the walk's double is exact only within ±2^53.
      timestamp: logAppendTime ? header.maxTimestamp : exactTimestamp(header.baseTimestamp, bytes, view),
      key: view.keyLength < 0 ? null : bytes.subarray(view.keyStart, view.keyStart + view.keyLength),
      value: view.valueLength < 0 ? null : bytes.subarray(view.valueStart, view.valueStart + view.valueLength),
      headers,
    })
  })
  if (problem !== null) throw new DecodeError(problem)
  return records
}

/**
 * Within ±2^52 ms a batch's baseTimestamp and a record's timestampDelta add up exactly as doubles, and their difference
 * from the broker's clock too, so the per-record checks run on numbers; a record beyond it (a producer may send any
 * 64-bit timestamp) is computed as a bigint instead (exactTimestamp).
 */
const EXACT_MS = 2 ** 52

/** Long.MAX_VALUE: a bound of Number.MAX_SAFE_INTEGER ms or more is Brook's "no limit" (topic-configs.ts). */
const LONG_MAX = (1n << 63n) - 1n

/**
 * A record's timestamp exactly, as DefaultRecord.readFrom computes it: baseTimestamp + timestampDelta in a Java long,
 * wrapping (a producer's deltas from its first record's timestamp may have wrapped too). `view` is the walked record.
 */
function exactTimestamp(baseTimestamp: bigint, bytes: Buffer, view: RecordView): bigint {
  return BigInt.asIntN(64, baseTimestamp + new Reader(bytes, view.start + 1).varlong())
}

/** A timestamp bound in ms as the Java long Kafka holds: values from Number.MAX_SAFE_INTEGER up stand for Long.MAX_VALUE. */
const asLong = (ms: number): bigint => (ms >= Number.MAX_SAFE_INTEGER ? LONG_MAX : BigInt(ms))

/**
 * LogValidator.recordHasInvalidTimestamp on Java longs: `now - timestamp` wraps, and so does its negation, exactly as
 * Kafka's comparison does for timestamps near ±2^63.
 */
function outOfBoundsAsLongs(now: number, timestamp: bigint, bounds: { beforeMaxMs: number; afterMaxMs: number }): boolean {
  const diff = BigInt.asIntN(64, BigInt(now) - timestamp)
  return diff > asLong(bounds.beforeMaxMs) || BigInt.asIntN(64, -diff) > asLong(bounds.afterMaxMs)
}

/**
 * What Kafka's LogValidator checks record by record, beyond their structure (validateRecord, validateKey,
 * validateTimestamp).
 */
export interface RecordRules {
  /** The broker's clock, in ms, that timestamps are held against. */
  now: number
  /**
   * CreateTime topics: a record's timestamp must lie within [now - beforeMaxMs, now + afterMaxMs]
   * (message.timestamp.before.max.ms / after.max.ms, KIP-937); -1 (no timestamp) passes. Null for LogAppendTime
   * topics, whose records are stamped by the broker instead.
   */
  timestampBounds: { beforeMaxMs: number; afterMaxMs: number } | null
  /** Compacted topics refuse records without a key. */
  requireKeys: boolean
  /** The most the records may inflate to (compression.ts inflationLimit). */
  maxInflatedBytes: number
}

/** ProduceResponse's BatchIndexAndErrorMessage (v8+, KIP-467). */
export interface RecordError {
  batchIndex: number
  batchIndexErrorMessage: string
}

/** Kafka lists every failing record; a batch of a million bad ones would make a response of tens of MB. */
export const MAX_RECORD_ERRORS = 100

export type RecordsCheck =
  | { ok: true; maxTimestamp: bigint }
  | { ok: false; errorCode: number; message: string; recordErrors: RecordError[] }

/**
 * Checks the records of a produced batch that passed checkProducedBatch, as LogValidator does before a batch is
 * appended: the compressed payload inflates cleanly within `maxInflatedBytes`, the records hold up (walkRecords),
 * each record's offsetDelta is its index (a magic-2 batch is stored with the offsets its producer gave), keys on
 * compacted topics, timestamps within the topic's bounds. Returns the batch's true maxTimestamp (the largest record
 * timestamp, -1 if none), which Kafka writes into the header in place of the producer's.
 *
 * Errors: MESSAGE_TOO_LARGE (inflates past the bound), CORRUPT_MESSAGE (the payload does not inflate: Kafka's own
 * path surfaces the decompressor's IOException as an unexpected error), INVALID_RECORD (structure, offsets, keys,
 * with `recordErrors` for per-record ones), INVALID_TIMESTAMP (when any record's timestamp is out of bounds).
 */
export function validateRecords(batch: Buffer, rules: RecordRules): RecordsCheck {
  let body: RecordsBody
  try {
    body = recordsBody(batch, rules.maxInflatedBytes, { reuse: true })
  } catch (error) {
    return inflationFailure(batch, error)
  }
  return checkRecords(batch, body, rules, false) ?? checkRecords(batch, body, rules, true)!
}

/**
 * validateRecords' walk. With `wide` false, timestamps are doubles, and null is the answer when one lies beyond
 * ±EXACT_MS (where a double may not hold it): the walk then runs again with `wide`, every timestamp a bigint.
 */
function checkRecords(batch: Buffer, body: RecordsBody, rules: RecordRules, wide: boolean): RecordsCheck | null {
  const exactBase = batch.readBigInt64BE(At.baseTimestamp)
  const baseTimestamp = Number(exactBase)
  if (!wide && Math.abs(baseTimestamp) > EXACT_MS) return null
  const { now, timestampBounds: bounds, requireKeys } = rules
  let maxTimestamp = -1
  let maxWideTimestamp = -1n
  let inexact = false
  let failures = 0
  let timestampFailures = 0
  const recordErrors: RecordError[] = []
  const fail = (batchIndex: number, batchIndexErrorMessage: string): void => {
    failures++
    if (recordErrors.length < MAX_RECORD_ERRORS) recordErrors.push({ batchIndex, batchIndexErrorMessage })
  }
  const count = batch.readInt32BE(At.recordsCount)
  const problem = walkRecords(body.bytes, body.from, body.to, count, (record) => {
    let timestamp: number | bigint
    let outOfBounds: boolean
    if (!wide) {
      timestamp = baseTimestamp + record.timestampDelta
      if (timestamp > maxTimestamp) maxTimestamp = timestamp
      else if (timestamp < -EXACT_MS) return (inexact = true)
      outOfBounds = bounds !== null && timestamp !== -1 && (now - timestamp > bounds.beforeMaxMs || timestamp - now > bounds.afterMaxMs)
    } else {
      timestamp = exactTimestamp(exactBase, body.bytes, record)
      if (timestamp > maxWideTimestamp) maxWideTimestamp = timestamp
      outOfBounds = bounds !== null && timestamp !== -1n && outOfBoundsAsLongs(now, timestamp, bounds)
    }
    if (record.offsetDelta !== record.index) {
      fail(record.index, `offsetDelta ${record.offsetDelta} where ${record.index} was due: records are numbered from 0 without gaps`)
    } else if (requireKeys && record.keyLength < 0) {
      fail(record.index, 'a compacted topic cannot accept a record without a key')
    } else if (outOfBounds) {
      timestampFailures++
      fail(record.index, `timestamp ${timestamp} is out of range: it must lie within [${BigInt.asIntN(64, BigInt(now) - asLong(bounds!.beforeMaxMs))}, ${BigInt.asIntN(64, BigInt(now) + asLong(bounds!.afterMaxMs))}]`)
    }
    return false
  })
  if (inexact || maxTimestamp > EXACT_MS) return null
  if (problem !== null) return { ok: false, errorCode: ErrorCode.INVALID_RECORD, message: problem, recordErrors: [] }
  if (failures === 0) return { ok: true, maxTimestamp: wide ? maxWideTimestamp : BigInt(maxTimestamp) }
  // As LogValidator.processRecordErrors: any bad timestamp makes it INVALID_TIMESTAMP.
  const shown = recordErrors.slice(0, 3).map((e) => `record ${e.batchIndex}: ${e.batchIndexErrorMessage}`).join('; ')
  return {
    ok: false,
    errorCode: timestampFailures > 0 ? ErrorCode.INVALID_TIMESTAMP : ErrorCode.INVALID_RECORD,
    message: `${failures} of ${count} ${count === 1 ? 'record' : 'records'} in the batch ${failures === 1 ? 'was' : 'were'} refused (${failures > 3 ? 'the first 3: ' : ''}${shown})`,
    recordErrors,
  }
}

function inflationFailure(batch: Buffer, error: unknown): RecordsCheck & { ok: false } {
  if (error instanceof KafkaError) return { ok: false, errorCode: error.code, message: error.message, recordErrors: [] }
  const codec = COMPRESSION_NAMES[batch.readInt16BE(At.attributes) & Attribute.compressionMask]
  const cause = String((error as Error).message).slice(0, 200)
  return { ok: false, errorCode: ErrorCode.CORRUPT_MESSAGE, message: `the ${codec} payload does not decompress: ${cause}`, recordErrors: [] }
}

/** A record found by a ListOffsets search. */
export interface FoundRecord {
  offset: bigint
  timestamp: bigint
}

/**
 * Walks a stored batch's records (at most `maxInflatedBytes` inflated) for ListOffsets: with `timestamp`, the first
 * record at or above `minOffset` whose timestamp is >= it; without, the record at or above `minOffset` with the
 * largest timestamp (the first of equals, as Kafka's KIP-734 answer). Null when no record qualifies. Throws when the
 * batch's records cannot be read (a batch stored before produce walked records).
 */
export function searchRecords(batch: Buffer, query: { minOffset: bigint; timestamp?: bigint; maxInflatedBytes: number }): FoundRecord | null {
  const header = readBatchHeader(batch)
  const body = recordsBody(batch, query.maxInflatedBytes, { reuse: true })
  const logAppendTime = (header.attributes & Attribute.logAppendTime) !== 0
  const minDelta = Number(query.minOffset - header.baseOffset)
  const target = query.timestamp ?? null
  let found: { offsetDelta: number; timestamp: bigint } | null = null
  const problem = walkRecords(body.bytes, body.from, body.to, header.recordsCount, (record) => {
    if (record.offsetDelta < minDelta) return false
    const timestamp = logAppendTime ? header.maxTimestamp : exactTimestamp(header.baseTimestamp, body.bytes, record)
    if (target === null ? found === null || timestamp > found.timestamp : timestamp >= target) {
      found = { offsetDelta: record.offsetDelta, timestamp }
      return target !== null
    }
    return false
  })
  if (problem !== null) throw new DecodeError(problem)
  const result = found as { offsetDelta: number; timestamp: bigint } | null
  if (result === null) return null
  return { offset: header.baseOffset + BigInt(result.offsetDelta), timestamp: result.timestamp }
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
  /** The codec's level (compression.ts `compress`): gzip's 1-9 or -1, zstd's; absent: the codec's default. */
  level?: number
}

const INT32_MAX = 2147483647

/**
 * DefaultRecordBatch.incrementSequence: sequences wrap to 0 after Int32 max. A producer numbers its batches with it
 * (client/console-producer.ts), a partition's producer state checks them (storage/producer-state.ts).
 */
export function incrementSequence(sequence: number, increment: number): number {
  if (sequence > INT32_MAX - increment) return increment - (INT32_MAX - sequence) - 1
  return sequence + increment
}

/** DefaultRecordBatch.decrementSequence. */
export function decrementSequence(sequence: number, decrement: number): number {
  if (sequence < decrement) return INT32_MAX - (decrement - sequence) + 1
  return sequence - decrement
}

/** Bytes of `value` (>= 0, an integer below 2^53) as an unsigned varint. */
function uvarintSize(value: number): number {
  let size = 1
  for (; value >= 0x80; value = Math.floor(value / 128)) size++
  return size
}

/** Writes `value` (>= 0, an integer below 2^53) as an unsigned varint at `at`; returns the offset after it. */
function putUvarint(target: Buffer, at: number, value: number): number {
  for (; value >= 0x80; value = Math.floor(value / 128)) target[at++] = (value % 128) | 0x80
  target[at++] = value
  return at
}

/** Zigzag encoding of a 32-bit varint's value (a length, an offset delta, a count; -1 for null). */
const zigzag = (value: number): number => (value >= 0 ? value * 2 : -value * 2 - 1)

/**
 * The zigzag form of a timestamp delta (>= 0) as a number when it stays exact, else as a bigint. A delta of 2^63 or
 * more (timestamps at both ends of the int64 range) is written as Java's long subtraction leaves it, wrapped to a
 * negative int64, which a reader's wrapping sum turns back into the timestamp (DefaultRecord.writeTo, readFrom).
 */
function zigzagDelta(delta: bigint): number | bigint {
  if (delta < 0x10000000000000n) return Number(delta) * 2
  const wrapped = BigInt.asIntN(64, delta)
  return BigInt.asUintN(64, (wrapped << 1n) ^ (wrapped >> 63n))
}

function zigzagSize(value: number | bigint): number {
  if (typeof value === 'number') return uvarintSize(value)
  let size = 1
  for (; value >= 0x80n; value >>= 7n) size++
  return size
}

function putZigzag(target: Buffer, at: number, value: number | bigint): number {
  if (typeof value === 'number') return putUvarint(target, at, value)
  for (; value >= 0x80n; value >>= 7n) target[at++] = Number(value & 0x7fn) | 0x80
  target[at++] = Number(value)
  return at
}

const varBytesSize = (value: Buffer | null): number => (value === null ? 1 : uvarintSize(value.length * 2) + value.length)

function putVarBytes(target: Buffer, at: number, value: Buffer | null): number {
  if (value === null) {
    target[at] = 1
    return at + 1
  }
  at = putUvarint(target, at, value.length * 2)
  return at + value.copy(target, at)
}

/**
 * The records of a batch as its (uncompressed) payload, written at `offset` of a buffer of `offset` + their size
 * bytes: each record's size is worked out first, so every byte is written once, in place. Timestamps are deltas from
 * `baseTimestamp` (the least of them).
 */
function encodeRecords(records: readonly RecordInput[], timestamps: readonly bigint[], baseTimestamp: bigint, offset: number): Buffer {
  const deltas: (number | bigint)[] = new Array(records.length)
  const sizes: number[] = new Array(records.length)
  let total = offset
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!
    const delta = zigzagDelta(timestamps[i]! - baseTimestamp)
    const headers = record.headers ?? []
    let size = 1 + zigzagSize(delta) + uvarintSize(zigzag(record.offsetDelta ?? i)) + varBytesSize(record.key ?? null) + varBytesSize(record.value) + uvarintSize(headers.length * 2)
    for (const header of headers) {
      const keyBytes = Buffer.byteLength(header.key)
      size += uvarintSize(keyBytes * 2) + keyBytes + varBytesSize(header.value)
    }
    deltas[i] = delta
    sizes[i] = size
    total += uvarintSize(size * 2) + size
  }
  const out = Buffer.allocUnsafe(total)
  let at = offset
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!
    const headers = record.headers ?? []
    at = putUvarint(out, at, sizes[i]! * 2)
    out[at++] = 0
    at = putZigzag(out, at, deltas[i]!)
    at = putUvarint(out, at, zigzag(record.offsetDelta ?? i))
    at = putVarBytes(out, at, record.key ?? null)
    at = putVarBytes(out, at, record.value)
    at = putUvarint(out, at, headers.length * 2)
    for (const header of headers) {
      const keyBytes = Buffer.byteLength(header.key)
      at = putUvarint(out, at, keyBytes * 2)
      at += out.write(header.key, at, keyBytes, 'utf8')
      at = putVarBytes(out, at, header.value)
    }
  }
  return out
}

/** Builds one magic-2 batch, as a producer does. */
export function encodeRecordBatch(records: readonly RecordInput[], options: BatchOptions = {}): Buffer {
  if (records.length === 0) throw new RangeError('a record batch needs at least one record')
  const now = BigInt(Date.now())
  const timestamps = records.map((r) => r.timestamp ?? now)
  const baseTimestamp = timestamps.reduce((a, b) => (b < a ? b : a))
  const maxTimestamp = options.maxTimestamp ?? timestamps.reduce((a, b) => (b > a ? b : a))
  const codec = options.compression ?? Compression.none
  // Uncompressed, the records are written where the batch holds them; compressed, into a payload first.
  const batch =
    codec === Compression.none
      ? encodeRecords(records, timestamps, baseTimestamp, BATCH_HEADER_SIZE)
      : withHeaderRoom(compress(codec, encodeRecords(records, timestamps, baseTimestamp, 0), options.level))
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
  batch.writeUInt32BE(computeCrc(batch), At.crc)
  return batch
}

/** A batch-sized buffer holding `payload` after room for the batch header. */
function withHeaderRoom(payload: Buffer): Buffer {
  const batch = Buffer.allocUnsafe(BATCH_HEADER_SIZE + payload.length)
  payload.copy(batch, BATCH_HEADER_SIZE)
  return batch
}

/**
 * `original`'s header with none of its records (Kafka's DefaultRecordBatch.writeEmptyHeader): what compaction keeps of
 * an active producer's last batch once every record of it went (LogCleaner's BatchRetention.RETAIN_EMPTY), so that the
 * batch's producer id, epoch and sequence range stay in the log for whoever rebuilds producer state from it. The offset
 * range (baseOffset, lastOffsetDelta), leader epoch, producer fields, timestamp type and transactional and control
 * flags stay; no compression; both timestamps are the original's maxTimestamp; 0 records, 61 bytes.
 */
export function emptyBatchOf(original: Buffer): Buffer {
  const batch = Buffer.alloc(BATCH_HEADER_SIZE)
  original.copy(batch, 0, 0, BATCH_HEADER_SIZE)
  const attributes = original.readInt16BE(At.attributes)
  batch.writeInt32BE(BATCH_HEADER_SIZE - LOG_OVERHEAD, At.batchLength)
  batch.writeInt16BE(attributes & (Attribute.logAppendTime | Attribute.transactional | Attribute.control), At.attributes)
  batch.writeBigInt64BE(original.readBigInt64BE(At.maxTimestamp), At.baseTimestamp)
  batch.writeInt32BE(0, At.recordsCount)
  batch.writeUInt32BE(computeCrc(batch), At.crc)
  return batch
}

/**
 * The same batch holding only `kept` of its records, at their original offsets: what compaction stores, and, with all
 * of them and another `codec`, what a topic's compression.type stores. The offset range (baseOffset, lastOffsetDelta),
 * leader epoch, producer fields and timestamp type stay; the codec stays unless `codec` names another. `level` as in
 * BatchOptions. Writing zstd needs its compressor loaded on this thread (compression.ts `loadCodec`).
 */
export function rebuildBatch(original: Buffer, kept: readonly Record[], options: { codec?: number; level?: number } = {}): Buffer {
  const header = readBatchHeader(original)
  const codec = options.codec ?? header.attributes & Attribute.compressionMask
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
      compression: codec,
      producerId: header.producerId,
      producerEpoch: header.producerEpoch,
      baseSequence: header.baseSequence,
      partitionLeaderEpoch: header.partitionLeaderEpoch,
      lastOffsetDelta: header.lastOffsetDelta,
      flags: header.attributes & (Attribute.logAppendTime | Attribute.transactional),
      maxTimestamp: logAppendTime ? header.maxTimestamp : undefined,
      level: options.level,
    },
  )
}

