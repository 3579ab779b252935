/**
 * Record batches (magic 2, DefaultRecordBatch.java) as real producers build them: batches from kafkajs's own encoder
 * (node_modules/kafkajs/src/protocol/recordBatch), and the batches kcat (librdkafka) sent in the golden Produce
 * frames. Expected error codes are Kafka's (Errors.java): CORRUPT_MESSAGE 2, MESSAGE_TOO_LARGE 10,
 * INVALID_TIMESTAMP 32, UNSUPPORTED_COMPRESSION_TYPE 76, INVALID_RECORD 87.
 */
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import {
  At,
  Attribute,
  BATCH_HEADER_SIZE,
  checkProducedBatch,
  computeCrc,
  decodeRecords,
  encodeRecordBatch,
  lastOffsetOf,
  readBatchHeader,
  setBaseOffset,
  setLogAppendTime,
  setPartitionLeaderEpoch,
} from '../../protocol/record-batch.js'
import { compress, decompress, inflatedSizeHint, loadCodec, Compression } from '../../protocol/compression.js'
import { ZSTD_MAX_INPUT_BYTES } from '../../protocol/zstd.js'
import { DecodeError } from '../../protocol/reader.js'
import { frameNamed, loadFrames } from '../fixtures/frames.js'
import { decodeRequestFrame } from './request-frame.js'
import { seededBelow } from '../helpers/random.js'
import { Bytes, xerialSnappy } from '../helpers/wire.js'

const require = createRequire(import.meta.url)
type KafkajsEncoder = { buffer: Buffer }
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch: (options: object) => Promise<KafkajsEncoder>
}
const KafkajsRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (options: object) => KafkajsEncoder
const kafkajsDecodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder.js') as (decoder: unknown) => Promise<{
  firstOffset: string
  records: { key: Buffer | null; value: Buffer | null; offset: string; timestamp: string; headers: Record<string, Buffer> }[]
}>
const KafkajsDecoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => unknown

const CORRUPT_MESSAGE = 2
const MESSAGE_TOO_LARGE = 10
const UNSUPPORTED_COMPRESSION_TYPE = 76
const INVALID_RECORD = 87
const INVALID_TIMESTAMP = 32
const CHECKS = { allowZstd: true, maxMessageBytes: 1048588 }

/** Three sensor readings, as kafkajs's producer lays them out (timestamps 1700000000000 + 0, 5, 10 ms). */
async function kafkajsBatch(compression: number): Promise<Buffer> {
  const records = [
    KafkajsRecord({ offsetDelta: 0, timestampDelta: 0, key: Buffer.from('device-1'), value: Buffer.from('21.5'), headers: { unit: 'C' } }),
    KafkajsRecord({ offsetDelta: 1, timestampDelta: 5, key: Buffer.from('device-2'), value: Buffer.from('19.0') }),
    KafkajsRecord({ offsetDelta: 2, timestampDelta: 10, key: null, value: null }),
  ]
  const batch = await RecordBatch({
    compression,
    firstTimestamp: 1700000000000,
    maxTimestamp: 1700000000010,
    lastOffsetDelta: 2,
    records,
  })
  return Buffer.from(batch.buffer)
}

const producedBatch = (name: string): Buffer => {
  const { body } = decodeRequestFrame(frameNamed(loadFrames(), name).bytes)
  return Buffer.from(body.topicData[0].partitionData[0].records as Buffer)
}

/** A copy of `batch` changed by `edit`, with its CRC made valid again (so later checks are the ones that fire). */
function edited(batch: Buffer, edit: (copy: Buffer) => void): Buffer {
  const copy = Buffer.from(batch)
  edit(copy)
  copy.writeUInt32BE(computeCrc(copy), At.crc)
  return copy
}

describe('CRC-32C (Castagnoli) over attributes..end', () => {
  it('has the standard check value: crc32c("123456789") = 0xE3069283', () => {
    const batch = Buffer.concat([Buffer.alloc(At.attributes, 0xff), Buffer.from('123456789')])
    expect(computeCrc(batch)).toBe(0xe3069283)
  })
})

describe.each([
  ['uncompressed', 0],
  ['gzip', 1],
])('a %s batch built by kafkajs', (_, compression) => {
  it('has the header kafkajs wrote', async () => {
    const batch = await kafkajsBatch(compression)
    expect(readBatchHeader(batch)).toMatchObject({
      baseOffset: 0n,
      batchLength: batch.length - 12,
      magic: 2,
      attributes: compression,
      lastOffsetDelta: 2,
      baseTimestamp: 1700000000000n,
      maxTimestamp: 1700000000010n,
      producerId: -1n,
      recordsCount: 3,
    })
    expect(computeCrc(batch)).toBe(readBatchHeader(batch).crc)
  })

  it('decodes to the records kafkajs was given', async () => {
    const records = decodeRecords(await kafkajsBatch(compression))
    expect(records.map((r) => [r.offset, r.timestamp, r.key?.toString() ?? null, r.value?.toString() ?? null])).toEqual([
      [0n, 1700000000000n, 'device-1', '21.5'],
      [1n, 1700000000005n, 'device-2', '19.0'],
      [2n, 1700000000010n, null, null],
    ])
    expect(records[0]!.headers.map((h) => [h.key, h.value?.toString()])).toEqual([['unit', 'C']])
    expect(records[1]!.headers).toEqual([])
  })

  it('passes the produce checks', async () => {
    expect(checkProducedBatch(await kafkajsBatch(compression), CHECKS)).toMatchObject({ ok: true })
  })
})

describe('batches kcat (librdkafka 2.0.2) produced with each codec', () => {
  it.each([
    ['gzip', Compression.gzip],
    ['snappy', Compression.snappy],
    ['lz4', Compression.lz4],
    ['zstd', Compression.zstd],
  ] as const)('%s: decompresses to the 20 lines kcat was given', (codec, id) => {
    const batch = producedBatch(`produce-v7-kcat-${codec}`)
    expect(readBatchHeader(batch).attributes & Attribute.compressionMask).toBe(id)
    const records = decodeRecords(batch)
    expect(records).toHaveLength(20)
    expect(records.map((r) => r.value!.toString())).toEqual(
      Array.from({ length: 20 }, (_, i) => `{"deviceId":"sensor-${i % 4}","temperature":21.5,"unit":"C"}`),
    )
    expect(records.map((r) => r.offset)).toEqual(Array.from({ length: 20 }, (_, i) => BigInt(i)))
  })
})

describe('checkProducedBatch refuses what Kafka\'s LogValidator refuses', () => {
  it('a CRC mismatch: CORRUPT_MESSAGE', async () => {
    const batch = await kafkajsBatch(0)
    batch[batch.length - 1]! ^= 0x01
    expect(checkProducedBatch(batch, CHECKS)).toMatchObject({ ok: false, errorCode: CORRUPT_MESSAGE })
  })

  it('magic 1: INVALID_RECORD', async () => {
    const batch = await kafkajsBatch(0)
    batch.writeInt8(1, At.magic)
    expect(checkProducedBatch(batch, CHECKS)).toMatchObject({ ok: false, errorCode: INVALID_RECORD })
  })

  it('a batch cut short: CORRUPT_MESSAGE', async () => {
    const batch = await kafkajsBatch(0)
    expect(checkProducedBatch(batch.subarray(0, batch.length - 3), CHECKS)).toMatchObject({ ok: false, errorCode: CORRUPT_MESSAGE })
    expect(checkProducedBatch(batch.subarray(0, BATCH_HEADER_SIZE - 1), CHECKS)).toMatchObject({ ok: false, errorCode: CORRUPT_MESSAGE })
  })

  it('two batches in one partition: INVALID_RECORD', async () => {
    const batch = await kafkajsBatch(0)
    expect(checkProducedBatch(Buffer.concat([batch, batch]), CHECKS)).toMatchObject({ ok: false, errorCode: INVALID_RECORD })
  })

  it('a record count that disagrees with lastOffsetDelta: INVALID_RECORD', async () => {
    const batch = edited(await kafkajsBatch(0), (b) => b.writeInt32BE(4, At.recordsCount))
    expect(checkProducedBatch(batch, CHECKS)).toMatchObject({ ok: false, errorCode: INVALID_RECORD })
  })

  it('a control batch from a client: INVALID_RECORD', async () => {
    const batch = edited(await kafkajsBatch(0), (b) => b.writeInt16BE(Attribute.control | Attribute.transactional, At.attributes))
    expect(checkProducedBatch(batch, CHECKS)).toMatchObject({ ok: false, errorCode: INVALID_RECORD })
  })

  it('an unknown codec (5): INVALID_RECORD', async () => {
    const batch = edited(await kafkajsBatch(0), (b) => b.writeInt16BE(5, At.attributes))
    expect(checkProducedBatch(batch, CHECKS)).toMatchObject({ ok: false, errorCode: INVALID_RECORD })
  })

  it('an idempotent batch without a base sequence: INVALID_RECORD', async () => {
    const batch = edited(await kafkajsBatch(0), (b) => {
      b.writeBigInt64BE(1000n, At.producerId)
      b.writeInt32BE(-1, At.baseSequence)
    })
    expect(checkProducedBatch(batch, CHECKS)).toMatchObject({ ok: false, errorCode: INVALID_RECORD })
  })

  it('zstd below Produce v7: UNSUPPORTED_COMPRESSION_TYPE (KIP-110), accepted from v7', () => {
    const batch = producedBatch('produce-v7-kcat-zstd')
    expect(checkProducedBatch(batch, { ...CHECKS, allowZstd: false })).toMatchObject({ ok: false, errorCode: UNSUPPORTED_COMPRESSION_TYPE })
    expect(checkProducedBatch(batch, CHECKS)).toMatchObject({ ok: true })
  })

  it('a batch above max.message.bytes: MESSAGE_TOO_LARGE', async () => {
    const batch = await kafkajsBatch(0)
    expect(checkProducedBatch(batch, { ...CHECKS, maxMessageBytes: batch.length - 1 })).toMatchObject({ ok: false, errorCode: MESSAGE_TOO_LARGE })
    expect(checkProducedBatch(batch, { ...CHECKS, maxMessageBytes: batch.length })).toMatchObject({ ok: true })
  })
})

describe('what the broker stamps on a stored batch', () => {
  it('baseOffset and partitionLeaderEpoch lie outside the CRC', () => {
    const batch = producedBatch('produce-v7-kcat')
    setBaseOffset(batch, 1000n)
    setPartitionLeaderEpoch(batch, 7)
    expect(readBatchHeader(batch)).toMatchObject({ baseOffset: 1000n, partitionLeaderEpoch: 7 })
    expect(computeCrc(batch)).toBe(readBatchHeader(batch).crc)
    expect(lastOffsetOf(batch)).toBe(1001n)
    expect(decodeRecords(batch).map((r) => r.offset)).toEqual([1000n, 1001n])
  })

  it('setLogAppendTime marks the batch, sets maxTimestamp and keeps the CRC valid', async () => {
    const batch = await kafkajsBatch(1)
    setLogAppendTime(batch, 1800000000000n)
    const header = readBatchHeader(batch)
    expect(header.attributes).toBe(Compression.gzip | Attribute.logAppendTime)
    expect(header.maxTimestamp).toBe(1800000000000n)
    expect(computeCrc(batch)).toBe(header.crc)
    // Only the broker sets it: a producer's batch with the flag is refused (LogValidator.validateTimestamp).
    expect(checkProducedBatch(batch, CHECKS)).toMatchObject({ ok: false, errorCode: INVALID_TIMESTAMP })
    // LogAppendTime: every record reads the broker's time (DefaultRecordBatch: "the max timestamp is used").
    expect(decodeRecords(batch).map((r) => r.timestamp)).toEqual([1800000000000n, 1800000000000n, 1800000000000n])
  })
})

describe('decodeRecords refuses records that lie about their size (DefaultRecord.readFrom)', () => {
  /** One uncompressed batch around a hand-written records body, with a consistent header and CRC. */
  function batchAround(body: string, recordsCount: number): Buffer {
    const records = Buffer.from(body.replace(/\s+/g, ''), 'hex')
    const batch = Buffer.alloc(BATCH_HEADER_SIZE + records.length)
    batch.writeInt32BE(batch.length - 12, At.batchLength)
    batch.writeInt8(2, At.magic)
    batch.writeInt32BE(recordsCount - 1, At.lastOffsetDelta)
    batch.writeBigInt64BE(-1n, At.producerId)
    batch.writeInt32BE(recordsCount, At.recordsCount)
    records.copy(batch, BATCH_HEADER_SIZE)
    batch.writeUInt32BE(computeCrc(batch), At.crc)
    return batch
  }

  // length 6 | attributes | timestampDelta 0 | offsetDelta 0 | key null | value null | 0 headers
  const record = '0c 00 00 00 01 01 00'

  it('reads a well-formed minimal record', () => {
    expect(decodeRecords(batchAround(record, 1))).toMatchObject([{ offset: 0n, key: null, value: null, headers: [] }])
  })

  it('a negative record length, even with a huge record count, fails at once', () => {
    expect(() => decodeRecords(batchAround('01 00 00 00 01 01 00', 2147483647))).toThrow(DecodeError)
  })

  it('a record longer than the batch', () => {
    expect(() => decodeRecords(batchAround('7e 00 00 00 01 01 00', 1))).toThrow(DecodeError)
  })

  it('a record whose fields do not fill its length', () => {
    expect(() => decodeRecords(batchAround('0e 00 00 00 01 01 00 ff', 1))).toThrow(DecodeError)
  })

  it('a header count of -1 and a null header key', () => {
    expect(() => decodeRecords(batchAround('0c 00 00 00 01 01 01', 1))).toThrow(DecodeError)
    expect(() => decodeRecords(batchAround('10 00 00 00 01 01 02 01 01', 1))).toThrow(DecodeError)
  })

  it('more records than the batch holds', () => {
    expect(() => decodeRecords(batchAround(record, 2))).toThrow(DecodeError)
  })
})

describe('compression codecs', () => {
  const text = Buffer.from('{"deviceId":"sensor-1","temperature":21.5,"unit":"C"}\n'.repeat(50))

  it.each([
    ['gzip', Compression.gzip],
    ['snappy', Compression.snappy],
    ['lz4', Compression.lz4],
    ['zstd', Compression.zstd],
  ] as const)('%s round-trips and actually compresses', async (_, codec) => {
    await loadCodec(codec)
    const compressed = compress(codec, text)
    expect(compressed.length).toBeLessThan(text.length)
    expect(decompress(codec, compressed).equals(text)).toBe(true)
  })

  it("reads xerial-framed snappy as Java clients send it (magic, version 1, compat 1, then int32-length blocks)", () => {
    expect(decompress(Compression.snappy, xerialSnappy(text, 1000)).equals(text)).toBe(true)
  })

  it('refuses unknown codecs', () => {
    expect(() => compress(5, text)).toThrow('compressing with codec 5 is not supported')
    expect(() => decompress(5, text)).toThrow()
  })

  it('refuses to zstd more than its WebAssembly heap holds, as MESSAGE_TOO_LARGE, before touching the bytes', async () => {
    await loadCodec(Compression.zstd)
    // Zero pages the check never reads: no memory is used for them.
    expect(() => compress(Compression.zstd, Buffer.alloc(ZSTD_MAX_INPUT_BYTES + 1))).toThrow(expect.objectContaining({ code: MESSAGE_TOO_LARGE }))
  })

  it('writes zstd at the level asked for, each frame saying its content size and a window no larger (what the broker bounds)', async () => {
    await loadCodec(Compression.zstd)
    const fast = compress(Compression.zstd, text, -50)
    const small = compress(Compression.zstd, text, 19)
    expect(small.length).toBeLessThan(fast.length)
    for (const frame of [fast, small, compress(Compression.zstd, text)]) {
      expect(inflatedSizeHint(Compression.zstd, frame)).toBe(text.length)
      expect(decompress(Compression.zstd, frame, text.length).equals(text)).toBe(true)
    }
  })
})

describe('batches our encoder builds, read back by kafkajs\'s decoder', () => {
  it.each([
    ['uncompressed', Compression.none],
    ['gzip', Compression.gzip],
  ] as const)('%s', async (_, compression) => {
    const batch = encodeRecordBatch(
      [
        { key: Buffer.from('device-1'), value: Buffer.from('21.5'), timestamp: 1700000000000n, headers: [{ key: 'unit', value: Buffer.from('C') }] },
        { key: null, value: Buffer.from('19.0'), timestamp: 1700000000007n },
      ],
      { baseOffset: 42n, compression },
    )
    const decoded = await kafkajsDecodeBatch(new KafkajsDecoder(batch))
    expect(decoded.records.map((r) => [r.offset, r.timestamp, r.key?.toString() ?? null, r.value?.toString()])).toEqual([
      ['42', '1700000000000', 'device-1', '21.5'],
      ['43', '1700000000007', null, '19.0'],
    ])
    expect(decoded.records[0]!.headers.unit!.toString()).toBe('C')
    expect(checkProducedBatch(batch, CHECKS)).toMatchObject({ ok: true })
  })
})

describe('random batches our encoder builds (offset gaps as compaction leaves them), read back by kafkajs\'s decoder and by ours', () => {
  it('every key, value, header, timestamp and offset, with null fields, gaps, large values and 64-bit timestamp deltas', async () => {
    const below = seededBelow(20261205)
    const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => below(256)))
    for (let round = 0; round < 200; round++) {
      // One batch in ten spans timestamps far apart (NO_TIMESTAMP beside one near Long.MAX_VALUE): a delta beyond 2^53.
      const far = below(10) === 0
      let offsetDelta = 0
      const records = Array.from({ length: 1 + below(30) }, (_, i) => ({
        key: below(4) === 0 ? null : bytes(below(below(20) === 0 ? 5000 : 40)),
        value: below(10) === 0 ? null : bytes(below(below(20) === 0 ? 70_000 : 200)),
        headers: Array.from({ length: below(3) }, (_, h) => ({ key: `${h}-${below(2) === 0 ? 'unit' : 'единица'}`, value: below(5) === 0 ? null : bytes(below(12)) })),
        timestamp: far ? (i % 2 === 0 ? -1n : 9223372036854775807n - BigInt(below(1000))) : 1_700_000_000_000n + BigInt(below(1_000_000_000)),
        offsetDelta: (offsetDelta += i === 0 ? 0 : 1 + below(3)),
      }))
      const batch = encodeRecordBatch(records, { baseOffset: 1000n, compression: round % 4 === 0 ? Compression.gzip : Compression.none })
      const expected = records.map((r) => ({
        offset: String(1000 + r.offsetDelta),
        timestamp: String(r.timestamp),
        key: r.key?.toString('hex') ?? null,
        value: r.value?.toString('hex') ?? null,
        headers: r.headers.map((h) => [h.key, h.value?.toString('hex') ?? null]),
      }))
      const theirs = await kafkajsDecodeBatch(new KafkajsDecoder(batch))
      expect(
        theirs.records.map((r) => ({
          offset: r.offset,
          timestamp: r.timestamp,
          key: r.key?.toString('hex') ?? null,
          value: r.value?.toString('hex') ?? null,
          headers: Object.entries(r.headers).map(([key, value]) => [key, (value as Buffer | null)?.toString('hex') ?? null]),
        })),
        `round ${round}`,
      ).toEqual(expected)
      const ours = decodeRecords(batch)
      expect(ours.map((r) => ({ offset: String(r.offset), timestamp: String(r.timestamp), key: r.key?.toString('hex') ?? null, value: r.value?.toString('hex') ?? null, headers: r.headers.map((h) => [h.key, h.value?.toString('hex') ?? null]) }))).toEqual(expected)
    }
  })

  it('timestamps at both ends of the int64 range: deltas of 2^63 or more are written wrapped, as Java\'s longs leave them', () => {
    const timestamps = [2n ** 62n, -(2n ** 63n), 2n ** 63n - 1n, -1n, -(2n ** 62n), 0n]
    const batch = encodeRecordBatch(timestamps.map((timestamp, i) => ({ value: Buffer.from(`v${i}`), timestamp })), { compression: Compression.none })
    expect(readBatchHeader(batch).baseTimestamp).toBe(-(2n ** 63n))
    // The first record's delta, 2^62 + 2^63, as DefaultRecord.writeTo's long subtraction and ByteUtils.writeVarlong
    // leave it: -2^62, zigzag 2^63 - 1, nine bytes (after the record's length varint and attributes byte).
    const first = batch.subarray(BATCH_HEADER_SIZE + 2, BATCH_HEADER_SIZE + 2 + 9)
    expect(first).toEqual(new Bytes().varlong(-(2n ** 62n)).build())
    expect(decodeRecords(batch).map((r) => r.timestamp)).toEqual(timestamps)
  })
})
