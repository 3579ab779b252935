/**
 * What produce checks inside a batch (protocol/record-batch.ts validateRecords), against Kafka's LogValidator,
 * DefaultRecordBatch's record iterator and DefaultRecord.readFrom. The bad batches are built by hand from the record
 * layout (test/helpers/wire.ts: recordBytes, batchBytes) with a valid CRC, so each carries only the damage it names;
 * compressed payloads come from the codec libraries themselves (node:zlib, snappy, lz4-napi), not from Brook.
 *
 * Then two properties over a seeded PRNG (BROOK_FUZZ_SEED=<seed> to replay): random valid batches, encoded by
 * kafkajs's record encoder and compressed by the libraries, always pass and decode to what was put in; and a random
 * byte of a valid batch changed (CRC recomputed) never makes the checks throw: the batch passes or gets a typed
 * error code.
 */
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { randomInt } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import snappy from 'snappy'
import lz4 from 'lz4-napi'
import {
  At,
  BATCH_HEADER_SIZE,
  checkProducedBatch,
  decodeRecords,
  searchRecords,
  validateRecords,
  type RecordRules,
  type RecordsCheck,
} from '../../protocol/record-batch.js'
import { inflationLimit } from '../../protocol/compression.js'
import { batchBytes, crc32cOf, recordBytes } from '../helpers/wire.js'
import { loadFrames } from '../fixtures/frames.js'
import { decodeRequestFrame } from './request-frame.js'
import { seededBelow } from '../helpers/random.js'

const require = createRequire(import.meta.url)
type KafkajsEncoder = { buffer: Buffer }
const KafkajsRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (options: object) => KafkajsEncoder
const { RecordBatch: KafkajsRecordBatch } = require('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch: (options: object) => Promise<KafkajsEncoder>
}

// Kafka's codes (Errors.java).
const CORRUPT_MESSAGE = 2
const MESSAGE_TOO_LARGE = 10
const INVALID_TIMESTAMP = 32
const INVALID_RECORD = 87
const CODECS = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const

const NOW = 1_700_000_000_000
const RULES: RecordRules = {
  now: NOW,
  timestampBounds: { beforeMaxMs: Number.MAX_SAFE_INTEGER, afterMaxMs: 3_600_000 },
  requireKeys: false,
  maxInflatedBytes: inflationLimit(1048588),
}

const plain = (count: number): Buffer =>
  Buffer.concat(Array.from({ length: count }, (_, i) => recordBytes({ offsetDelta: i, value: Buffer.from(`reading ${i}`) })))

/** A batch of `records` (raw bytes) declaring `count` records. */
const uncompressed = (records: Buffer, count: number, extra: { lastOffsetDelta?: number } = {}): Buffer =>
  batchBytes({ records, count, baseTimestamp: BigInt(NOW), ...extra })

const compressed = (codec: number, payload: Buffer, count: number): Buffer =>
  batchBytes({ records: payload, count, attributes: codec, baseTimestamp: BigInt(NOW) })

/** Both checks, as produce runs them. */
function check(batch: Buffer, rules: Partial<RecordRules> = {}): RecordsCheck {
  const header = checkProducedBatch(batch, { allowZstd: true, maxMessageBytes: 1048588 })
  if (!header.ok) return { ...header, recordErrors: [] }
  return validateRecords(batch, { ...RULES, ...rules })
}

describe('the record count against the records (DefaultRecordBatch: "Incorrect declared batch size")', () => {
  it('2^31-1 records declared, 3 held: INVALID_RECORD (it used to move the log end by 2^31-1)', () => {
    const batch = uncompressed(plain(3), 2147483647)
    expect(check(batch)).toMatchObject({ ok: false, errorCode: INVALID_RECORD, message: expect.stringContaining('declares 2147483647 records but holds 3') })
  })

  it('1 record declared, 3 held: INVALID_RECORD (the other two would overlap the next batch\'s offsets)', () => {
    expect(check(uncompressed(plain(3), 1))).toMatchObject({ ok: false, errorCode: INVALID_RECORD, message: expect.stringContaining('follow the last') })
  })

  it('a byte after the last record: INVALID_RECORD', () => {
    expect(check(uncompressed(Buffer.concat([plain(2), Buffer.from([0])]), 2))).toMatchObject({ ok: false, errorCode: INVALID_RECORD })
  })

  it('the same damage inside a compressed payload is found the same way', () => {
    expect(check(compressed(CODECS.gzip, gzipSync(plain(3)), 2147483647))).toMatchObject({ ok: false, errorCode: INVALID_RECORD })
    expect(check(compressed(CODECS.lz4, lz4.compressFrameSync(plain(3)), 1))).toMatchObject({ ok: false, errorCode: INVALID_RECORD })
  })
})

describe('offsetDeltas: a producer numbers its records 0, 1, 2... (the batch is stored with them)', () => {
  it('a repeated or skipped offsetDelta is INVALID_RECORD, naming each record in recordErrors', () => {
    const records = Buffer.concat([0, 0, 2, 5].map((offsetDelta) => recordBytes({ offsetDelta, value: Buffer.from('v') })))
    const result = check(uncompressed(records, 4))
    expect(result).toMatchObject({ ok: false, errorCode: INVALID_RECORD })
    expect(!result.ok && result.recordErrors.map((e) => e.batchIndex)).toEqual([1, 3])
    expect(!result.ok && result.message).toBe("2 of 4 records in the batch were refused (record 1: offsetDelta 0 where 1 was due: records are numbered from 0 without gaps; record 3: offsetDelta 5 where 3 was due: records are numbered from 0 without gaps)")
  })
})

describe('record and field lengths (DefaultRecord.readFrom)', () => {
  /** One record's bytes after its length varint: attributes, timestampDelta 0, offsetDelta 0, then `rest`. */
  const recordWith = (rest: number[], length?: number): Buffer => {
    const body = Buffer.from([0, 0, 0, ...rest])
    return Buffer.concat([Buffer.from([(length ?? body.length) * 2]), body])
  }
  // key null (01), value null (01), no headers (00)
  const NULLS = [0x01, 0x01, 0x00]

  it.each([
    ['a minimal record', recordWith(NULLS), true],
    ['a record length beyond the batch', recordWith(NULLS, 60), false],
    ['a record length shorter than its fields', recordWith(NULLS, 5), false],
    ['a record length longer than its fields', Buffer.concat([recordWith([...NULLS, 0x00], 7)]), false],
    ['a zero record length', Buffer.from([0x00]), false],
    ['a negative record length', Buffer.from([0x03]), false],
    ['a key length of -2', recordWith([0x03, 0x01, 0x00]), false],
    ['a key length beyond the record', recordWith([0x14, 0x01, 0x00]), false],
    ['a value length beyond the record', recordWith([0x01, 0x14, 0x00]), false],
    ['a header count of -1', recordWith([0x01, 0x01, 0x01]), false],
    ['a header count larger than the bytes left', recordWith([0x01, 0x01, 0x7e]), false],
    ['a null header key', recordWith([0x01, 0x01, 0x02, 0x01, 0x01]), false],
    ['a header value length of -2', recordWith([0x01, 0x01, 0x02, 0x02, 0x6b, 0x03]), false],
    ['a length varint of six bytes', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 1, 1, 0]), false],
    ['a timestampDelta varlong of eleven bytes', Buffer.concat([Buffer.from([15 * 2, 0]), Buffer.alloc(10, 0xff), Buffer.from([0x01, 0x00, 0x01, 0x01, 0x00])]), false],
    ['a varint cut by the end of its record', recordWith([0x01, 0x01, 0x80]), false],
  ] as const)('%s', (_, record, ok) => {
    const result = check(uncompressed(record, 1))
    if (ok) expect(result).toMatchObject({ ok: true })
    else expect(result).toMatchObject({ ok: false, errorCode: INVALID_RECORD, recordErrors: [] })
  })

  it('records of 0xff bytes are INVALID_RECORD', () => {
    expect(check(uncompressed(Buffer.alloc(200, 0xff), 3))).toMatchObject({ ok: false, errorCode: INVALID_RECORD })
  })
})

describe('compressed payloads must inflate, cleanly and within the bound', () => {
  const records = plain(50)

  it.each(['gzip', 'snappy', 'lz4', 'zstd'] as const)('a %s flag on bytes that are not compressed: CORRUPT_MESSAGE', (codec) => {
    expect(check(compressed(CODECS[codec], records, 50))).toMatchObject({ ok: false, errorCode: CORRUPT_MESSAGE, message: expect.stringContaining(`${codec} payload does not decompress`) })
  })

  it.each([
    ['gzip', CODECS.gzip, gzipSync(records)],
    ['snappy', CODECS.snappy, snappy.compressSync(records) as Buffer],
    ['lz4', CODECS.lz4, lz4.compressFrameSync(records)],
  ] as const)('truncated %s: CORRUPT_MESSAGE', (_, codec, payload) => {
    expect(check(compressed(codec, payload, 50))).toMatchObject({ ok: true })
    expect(check(compressed(codec, payload.subarray(0, payload.length - 8), 50))).toMatchObject({ ok: false, errorCode: CORRUPT_MESSAGE })
  })

  it('nested compression (gzip around gzipped records) does not parse as records: INVALID_RECORD', () => {
    expect(check(compressed(CODECS.gzip, gzipSync(gzipSync(records)), 50))).toMatchObject({ ok: false, errorCode: INVALID_RECORD })
  })

  it('a gzip bomb within max.message.bytes that inflates past 32x it is MESSAGE_TOO_LARGE', () => {
    // 40 MiB of well-formed records (1 MiB values of zeros) in about 40 KB of gzip.
    const big = Buffer.concat(Array.from({ length: 40 }, (_, i) => recordBytes({ offsetDelta: i, value: Buffer.alloc(1024 * 1024) })))
    const batch = compressed(CODECS.gzip, gzipSync(big), 40)
    expect(batch.length).toBeLessThan(1048588)
    expect(check(batch)).toMatchObject({ ok: false, errorCode: MESSAGE_TOO_LARGE })
    // Within a topic whose max.message.bytes allows it, the same batch is fine.
    expect(check(batch, { maxInflatedBytes: inflationLimit(2 * 1048588) })).toMatchObject({ ok: true })
  })

  it('a zstd frame declaring a 1 GiB window is refused before anything is allocated for it', () => {
    // magic, descriptor 0 (window descriptor follows), window 2^(10+20) = 1 GiB, one empty last raw block
    const bomb = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa0, 0x01, 0x00, 0x00])
    const before = process.memoryUsage().arrayBuffers
    expect(check(compressed(CODECS.zstd, bomb, 1))).toMatchObject({ ok: false, errorCode: MESSAGE_TOO_LARGE })
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024)
  })

  it('a xerial snappy block with a negative size is CORRUPT_MESSAGE (it used to loop for ever)', () => {
    const xerial = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfc, 0, 0, 0, 0])
    expect(check(compressed(CODECS.snappy, xerial, 1))).toMatchObject({ ok: false, errorCode: CORRUPT_MESSAGE })
  })
})

describe('per-record rules (LogValidator.validateRecord)', () => {
  it('a compacted topic refuses keyless records, listing each one', () => {
    const records = Buffer.concat([
      recordBytes({ offsetDelta: 0, key: Buffer.from('k'), value: Buffer.from('v') }),
      recordBytes({ offsetDelta: 1, value: Buffer.from('v') }),
      recordBytes({ offsetDelta: 2, key: Buffer.from('k'), value: null }),
    ])
    expect(check(uncompressed(records, 3))).toMatchObject({ ok: true })
    expect(check(uncompressed(records, 3), { requireKeys: true })).toMatchObject({
      ok: false,
      errorCode: INVALID_RECORD,
      recordErrors: [{ batchIndex: 1, batchIndexErrorMessage: 'a compacted topic cannot accept a record without a key' }],
      message: "1 of 3 records in the batch was refused (record 1: a compacted topic cannot accept a record without a key)",
    })
  })

  it('CreateTime timestamps outside [now - before.max.ms, now + after.max.ms] are INVALID_TIMESTAMP, each listed', () => {
    const deltas = [0, -120_000, 30_000, 120_000]
    const records = Buffer.concat(deltas.map((timestampDelta, i) => recordBytes({ offsetDelta: i, timestampDelta, value: Buffer.from('v') })))
    const batch = uncompressed(records, 4)
    const bounds = { beforeMaxMs: 60_000, afterMaxMs: 60_000 }
    const result = check(batch, { timestampBounds: bounds })
    expect(result).toMatchObject({ ok: false, errorCode: INVALID_TIMESTAMP })
    expect(!result.ok && result.recordErrors.map((e) => e.batchIndex)).toEqual([1, 3])
    // LogAppendTime topics stamp records themselves, so nothing is held against the clock.
    expect(check(batch, { timestampBounds: null })).toMatchObject({ ok: true })
  })

  it('a record without a timestamp (-1) passes any bounds, as in Kafka', () => {
    const batch = batchBytes({ records: plain(1), count: 1, baseTimestamp: -1n })
    expect(check(batch, { timestampBounds: { beforeMaxMs: 0, afterMaxMs: 0 } })).toMatchObject({ ok: true, maxTimestamp: -1n })
  })

  it('any bad timestamp makes the batch INVALID_TIMESTAMP even beside other record errors (processRecordErrors)', () => {
    const records = Buffer.concat([recordBytes({ offsetDelta: 0 }), recordBytes({ offsetDelta: 1, key: Buffer.from('k'), timestampDelta: 10_000_000 })])
    expect(check(uncompressed(records, 2), { requireKeys: true })).toMatchObject({ ok: false, errorCode: INVALID_TIMESTAMP, recordErrors: [{ batchIndex: 0 }, { batchIndex: 1 }] })
  })

  it('the producer may not set LogAppendTime: INVALID_TIMESTAMP', () => {
    const batch = batchBytes({ records: plain(1), count: 1, attributes: 0x08 })
    expect(check(batch)).toMatchObject({ ok: false, errorCode: INVALID_TIMESTAMP })
  })

  it('returns the largest record timestamp, whatever the header claimed', () => {
    const records = Buffer.concat([recordBytes({ offsetDelta: 0, timestampDelta: 5 }), recordBytes({ offsetDelta: 1, timestampDelta: -3 })])
    const batch = batchBytes({ records, count: 2, baseTimestamp: BigInt(NOW), maxTimestamp: 0n })
    expect(check(batch)).toEqual({ ok: true, maxTimestamp: BigInt(NOW + 5) })
  })

  it('timestamps far from now are held to the bounds as Kafka\'s long arithmetic holds them, and the largest comes back exact', () => {
    // The node's defaults: no limit before (Long.MAX_VALUE, held as Number.MAX_SAFE_INTEGER), one hour after.
    for (const timestamp of [-(2n ** 62n) - 7n, -(2n ** 53n) - 1n]) {
      expect(check(batchBytes({ records: plain(1), count: 1, baseTimestamp: timestamp }))).toEqual({ ok: true, maxTimestamp: -1n })
    }
    // Below -2^63 + now, now - timestamp overflows a long: Kafka's difference wraps negative, so its negation is past the
    // one hour after now, and the record is refused; so is one near Long.MAX_VALUE, named exactly, with the bounds as
    // Kafka's longs give them (now - Long.MAX_VALUE, not the double nearest it).
    for (const timestamp of [-(2n ** 63n), -(2n ** 63n) + BigInt(NOW) - 1n]) {
      expect(check(batchBytes({ records: plain(1), count: 1, baseTimestamp: timestamp }))).toMatchObject({ ok: false, errorCode: INVALID_TIMESTAMP })
    }
    expect(check(batchBytes({ records: plain(1), count: 1, baseTimestamp: -(2n ** 63n) + BigInt(NOW) + 1n }))).toMatchObject({ ok: true })
    const future = batchBytes({ records: plain(1), count: 1, baseTimestamp: 2n ** 63n - 1n })
    expect(check(future)).toMatchObject({ ok: false, errorCode: INVALID_TIMESTAMP, message: expect.stringContaining('timestamp 9223372036854775807 is out of range: it must lie within [-9223370336854775807, 1700003600000]') })
    // A delta beyond 2^53 from a near base: 2^60 + 3 ms exactly, not the double nearest it.
    const records = Buffer.concat([recordBytes({ offsetDelta: 0 }), recordBytes({ offsetDelta: 1, timestampDelta: 2n ** 60n + 3n - BigInt(NOW) })])
    const wide = check(uncompressed(records, 2), { timestampBounds: { beforeMaxMs: Number.MAX_SAFE_INTEGER, afterMaxMs: Number.MAX_SAFE_INTEGER } })
    expect(wide).toEqual({ ok: true, maxTimestamp: 2n ** 60n + 3n })
  })

  it('lists at most 100 record errors, and says how many there were', () => {
    const records = Buffer.concat(Array.from({ length: 150 }, (_, i) => recordBytes({ offsetDelta: i })))
    const result = check(uncompressed(records, 150), { requireKeys: true })
    expect(result).toMatchObject({ ok: false, message: expect.stringMatching(/^150 of 150 records in the batch were refused \(the first 3: record 0: /) })
    expect(!result.ok && result.recordErrors.length).toBe(100)
  })
})

describe('searchRecords (ListOffsets)', () => {
  const deltas = [0, 10, 5, 30]
  const batch = batchBytes({
    records: Buffer.concat(deltas.map((timestampDelta, i) => recordBytes({ offsetDelta: i, timestampDelta }))),
    count: 4,
    baseTimestamp: 1000n,
  })
  batch.writeBigInt64BE(100n, At.baseOffset)

  it('finds the first record at or after a timestamp, and the record with the largest one', () => {
    expect(searchRecords(batch, { minOffset: 0n, timestamp: 1006n, maxInflatedBytes: 1 << 20 })).toEqual({ offset: 101n, timestamp: 1010n })
    expect(searchRecords(batch, { minOffset: 102n, timestamp: 1006n, maxInflatedBytes: 1 << 20 })).toEqual({ offset: 103n, timestamp: 1030n })
    expect(searchRecords(batch, { minOffset: 0n, timestamp: 1031n, maxInflatedBytes: 1 << 20 })).toBeNull()
    expect(searchRecords(batch, { minOffset: 0n, maxInflatedBytes: 1 << 20 })).toEqual({ offset: 103n, timestamp: 1030n })
  })

  it('compares timestamps beyond 2^53 exactly', () => {
    const base = 2n ** 60n
    const far = batchBytes({ records: Buffer.concat([0, 1, 2].map((timestampDelta, i) => recordBytes({ offsetDelta: i, timestampDelta }))), count: 3, baseTimestamp: base })
    // 2^60 + 1 and 2^60 + 2 are the same double: a search on doubles finds offset 0's record for both.
    expect(searchRecords(far, { minOffset: 0n, timestamp: base + 1n, maxInflatedBytes: 1 << 20 })).toEqual({ offset: 1n, timestamp: base + 1n })
    expect(searchRecords(far, { minOffset: 0n, timestamp: base + 2n, maxInflatedBytes: 1 << 20 })).toEqual({ offset: 2n, timestamp: base + 2n })
    expect(searchRecords(far, { minOffset: 0n, maxInflatedBytes: 1 << 20 })).toEqual({ offset: 2n, timestamp: base + 2n })
  })
})

describe('batches real clients sent (the golden Produce frames: kafkajs, kcat with every codec, @platformatic/kafka)', () => {
  const produced = loadFrames().filter((frame) => frame.api === 'Produce')

  it.each(produced.map((frame) => [frame.name, frame] as const))('%s passes', (_, frame) => {
    const { body } = decodeRequestFrame(frame.bytes)
    for (const topic of body.topicData) {
      for (const partition of topic.partitionData) {
        const batch = Buffer.from(partition.records as Buffer)
        expect(validateRecords(batch, { ...RULES, now: Number(batch.readBigInt64BE(At.maxTimestamp)) })).toMatchObject({ ok: true })
      }
    }
  })
})

const SEED = Number(process.env.BROOK_FUZZ_SEED ?? randomInt(2 ** 31))

interface Generated {
  batch: Buffer
  records: { key: Buffer | null; value: Buffer | null; headers: Record<string, Buffer>; timestampDelta: number }[]
}

/** A random valid batch: kafkajs encodes the records, a codec library compresses them. */
async function randomBatch(random: (below: number) => number): Promise<Generated> {
  const bytes = (max: number): Buffer => Buffer.from(Array.from({ length: random(max) }, () => random(256)))
  const count = 1 + random(40)
  const records = Array.from({ length: count }, () => ({
    key: random(3) === 0 ? null : bytes(20),
    value: random(5) === 0 ? null : bytes(300),
    headers: Object.fromEntries(Array.from({ length: random(3) }, (_, h) => [`h${h}-${random(1000)}`, bytes(20)])),
    timestampDelta: random(5000) - 1000,
  }))
  const encoded = await KafkajsRecordBatch({
    compression: 0,
    firstTimestamp: NOW,
    maxTimestamp: NOW + Math.max(...records.map((r) => r.timestampDelta)),
    lastOffsetDelta: count - 1,
    records: records.map((r, offsetDelta) => KafkajsRecord({ offsetDelta, ...r })),
  })
  const plainBatch = Buffer.from(encoded.buffer)
  const body = plainBatch.subarray(BATCH_HEADER_SIZE)
  const codec = random(4)
  const payload = [body, gzipSync(body), snappy.compressSync(body) as Buffer, lz4.compressFrameSync(body)][codec]!
  const batch = batchBytes({
    records: payload,
    count,
    attributes: codec,
    baseTimestamp: plainBatch.readBigInt64BE(At.baseTimestamp),
    maxTimestamp: plainBatch.readBigInt64BE(At.maxTimestamp),
  })
  return { batch, records }
}

describe(`properties (seed ${SEED})`, () => {
  it('random valid batches of every codec pass, and decode to the records put in', async () => {
    const random = seededBelow(SEED)
    for (let n = 0; n < 300; n++) {
      const { batch, records } = await randomBatch(random)
      expect(check(batch), `case ${n}`).toMatchObject({ ok: true })
      const decoded = decodeRecords(batch)
      expect(decoded.map((r) => [r.key, r.value, r.timestamp]), `case ${n}`).toEqual(records.map((r) => [r.key, r.value, BigInt(NOW + r.timestampDelta)]))
      expect(decoded.map((r) => Object.fromEntries(r.headers.map((h) => [h.key, h.value]))), `case ${n}`).toEqual(records.map((r) => r.headers))
    }
  })

  it('a random byte changed (CRC recomputed) never makes the checks throw: a pass or a typed error', async () => {
    const random = seededBelow(SEED ^ 0xbadc0de)
    const outcomes = new Map<number | 'ok', number>()
    for (let n = 0; n < 3000; n++) {
      const { batch } = await randomBatch(random)
      // Anywhere from the attributes on (the CRC covers them): header fields, lengths, varints, compressed bytes.
      const at = At.attributes + random(batch.length - At.attributes)
      batch[at] = random(256)
      batch.writeUInt32BE(crc32cOf(batch.subarray(At.attributes)), At.crc)
      let result
      try {
        result = check(batch)
      } catch (error) {
        expect.fail(`case ${n} (byte ${at}): threw ${(error as Error).message}`)
      }
      const outcome = result.ok ? 'ok' : result.errorCode
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    }
    expect([...outcomes.keys()].filter((k) => k !== 'ok' && ![CORRUPT_MESSAGE, MESSAGE_TOO_LARGE, INVALID_TIMESTAMP, INVALID_RECORD, 76].includes(k))).toEqual([])
    // Both outcomes happen: changed payload bytes often still parse, changed lengths do not.
    expect(outcomes.get('ok')).toBeGreaterThan(0)
    expect(outcomes.get(INVALID_RECORD)).toBeGreaterThan(0)
  })
})
