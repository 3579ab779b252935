/**
 * Reader and Writer primitives against the protocol guide's encodings. The varint, varlong and unsigned varint
 * vectors are Apache Kafka's own (clients/.../common/utils/ByteUtilsTest.java), the float64 ones too; fixed-width
 * integers are big-endian two's complement ("Protocol Primitive Types", kafka.apache.org/protocol).
 */
import { describe, expect, it } from 'vitest'
import { DecodeError, Reader } from '../../protocol/reader.js'
import { Writer } from '../../protocol/writer.js'
import { inRange, parseRange } from '../../protocol/versions.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const written = (write: (w: Writer) => unknown): string => {
  const writer = new Writer(4)
  write(writer)
  return writer.toBuffer().toString('hex')
}

/** Reads with `read`, asserting every byte was consumed. */
function readAll<T>(bytes: string, read: (r: Reader) => T): T {
  const reader = new Reader(hex(bytes))
  const value = read(reader)
  expect(reader.remaining, 'bytes left after the read').toBe(0)
  return value
}

describe('varint (zig-zag int32), Kafka ByteUtilsTest vectors', () => {
  const cases: [number, string][] = [
    [0, '00'],
    [-1, '01'],
    [1, '02'],
    [63, '7e'],
    [-64, '7f'],
    [64, '8001'],
    [-65, '8101'],
    [8191, 'fe7f'],
    [-8192, 'ff7f'],
    [8192, '808001'],
    [-8193, '818001'],
    [1048575, 'feff7f'],
    [-1048576, 'ffff7f'],
    [1048576, '80808001'],
    [-1048577, '81808001'],
    [134217727, 'feffff7f'],
    [-134217728, 'ffffff7f'],
    [134217728, '8080808001'],
    [-134217729, '8180808001'],
    [2147483647, 'feffffff0f'],
    [-2147483648, 'ffffffff0f'],
  ]
  it.each(cases)('%i is %s', (value, bytes) => {
    expect(written((w) => w.varint(value))).toBe(bytes)
    expect(readAll(bytes, (r) => r.varint())).toBe(value)
  })

  it('refuses a varint longer than 5 bytes (testInvalidVarint)', () => {
    expect(() => new Reader(hex('ffffffffff01')).varint()).toThrow(DecodeError)
  })
})

describe('unsigned varint (lengths and tags), Kafka ByteUtilsTest vectors read as uint32', () => {
  const cases: [number, string][] = [
    [0, '00'],
    [1, '01'],
    [63, '3f'],
    [64, '40'],
    [8191, 'ff3f'],
    [8192, '8040'],
    [1048575, 'ffff3f'],
    [1048576, '808040'],
    [2147483647, 'ffffffff07'],
    [2147483648, '8080808008'], // Integer.MIN_VALUE as unsigned
    [4294967232, 'c0ffffff0f'], // -64 as unsigned
    [4294967295, 'ffffffff0f'], // -1 as unsigned
  ]
  it.each(cases)('%i is %s', (value, bytes) => {
    expect(written((w) => w.uvarint(value))).toBe(bytes)
    expect(readAll(bytes, (r) => r.uvarint())).toBe(value)
  })

  it('refuses more than 32 bits and more than 5 bytes', () => {
    expect(() => new Reader(hex('ffffffff1f')).uvarint()).toThrow(DecodeError)
    expect(() => new Reader(hex('8080808080')).uvarint()).toThrow(DecodeError)
  })

  it('refuses a varint cut off by the end of the input', () => {
    expect(() => new Reader(hex('8080')).uvarint()).toThrow(DecodeError)
  })
})

describe('varlong (zig-zag int64), Kafka ByteUtilsTest vectors', () => {
  const cases: [bigint, string][] = [
    [0n, '00'],
    [-1n, '01'],
    [1n, '02'],
    [63n, '7e'],
    [-64n, '7f'],
    [64n, '8001'],
    [-65n, '8101'],
    [2147483647n, 'feffffff0f'],
    [-2147483648n, 'ffffffff0f'],
    [17179869183n, 'feffffff7f'],
    [-17179869184n, 'ffffffff7f'],
    [17179869184n, '808080808001'],
    [-17179869185n, '818080808001'],
    [281474976710655n, 'feffffffffff7f'],
    [-281474976710656n, 'ffffffffffff7f'],
    [36028797018963967n, 'feffffffffffff7f'],
    [36028797018963968n, '808080808080808001'],
    [4611686018427387903n, 'feffffffffffffff7f'],
    [-4611686018427387904n, 'ffffffffffffffff7f'],
    [4611686018427387904n, '80808080808080808001'],
    [-4611686018427387905n, '81808080808080808001'],
    [9223372036854775807n, 'feffffffffffffffff01'],
    [-9223372036854775808n, 'ffffffffffffffffff01'],
  ]
  it.each(cases)('%s is %s', (value, bytes) => {
    expect(written((w) => w.varlong(value))).toBe(bytes)
    expect(readAll(bytes, (r) => r.varlong())).toBe(value)
  })

  it('refuses a varlong longer than 10 bytes (testInvalidVarlong)', () => {
    expect(() => new Reader(hex('ffffffffffffffffffff01')).varlong()).toThrow(DecodeError)
  })

  it('keeps a 10-byte varlong within int64, dropping bits beyond 64 as ByteUtils.readVarlong does', () => {
    // The tenth byte holds bit 63 only; Kafka shifts the rest out. 0x7f there would otherwise give a 70-bit value.
    const value = new Reader(hex('feffffffffffffffff7f')).varlong()
    expect(value).toBe(9223372036854775807n)
    expect(BigInt.asIntN(64, value)).toBe(value)
  })
})

describe('fixed-width integers are big-endian two\'s complement', () => {
  const cases: [string, (w: Writer) => unknown, (r: Reader) => unknown, unknown, string][] = [
    ['int8 min', (w) => w.int8(-128), (r) => r.int8(), -128, '80'],
    ['int8 max', (w) => w.int8(127), (r) => r.int8(), 127, '7f'],
    ['int16 min', (w) => w.int16(-32768), (r) => r.int16(), -32768, '8000'],
    ['int16 -1', (w) => w.int16(-1), (r) => r.int16(), -1, 'ffff'],
    ['uint16 max', (w) => w.uint16(65535), (r) => r.uint16(), 65535, 'ffff'],
    ['int32 min', (w) => w.int32(-2147483648), (r) => r.int32(), -2147483648, '80000000'],
    ['int32 max', (w) => w.int32(2147483647), (r) => r.int32(), 2147483647, '7fffffff'],
    ['uint32 max', (w) => w.uint32(4294967295), (r) => r.uint32(), 4294967295, 'ffffffff'],
    ['int64 min', (w) => w.int64(-9223372036854775808n), (r) => r.int64(), -9223372036854775808n, '8000000000000000'],
    ['int64 max', (w) => w.int64(9223372036854775807n), (r) => r.int64(), 9223372036854775807n, '7fffffffffffffff'],
    ['int64 -1', (w) => w.int64(-1n), (r) => r.int64(), -1n, 'ffffffffffffffff'],
    ['bool true', (w) => w.bool(true), (r) => r.bool(), true, '01'],
    ['bool false', (w) => w.bool(false), (r) => r.bool(), false, '00'],
  ]
  it.each(cases)('%s', (_, write, read, value, bytes) => {
    expect(written(write)).toBe(bytes)
    expect(readAll(bytes, read)).toBe(value)
  })

  it('reads any non-zero byte as true (the guide: "When reading a boolean value, any non-zero value is considered true")', () => {
    expect(readAll('02', (r) => r.bool())).toBe(true)
  })
})

describe('float64 is an IEEE 754 double, Kafka ByteUtilsTest vectors', () => {
  const cases: [number, string][] = [
    [0, '0000000000000000'],
    [-0, '8000000000000000'],
    [1, '3ff0000000000000'],
    [-1, 'bff0000000000000'],
    [123e45, '49b58b82c0e0bb00'],
    [Number.MIN_VALUE, '0000000000000001'],
    [Number.MAX_VALUE, '7fefffffffffffff'],
    [Infinity, '7ff0000000000000'],
    [-Infinity, 'fff0000000000000'],
  ]
  it.each(cases)('%d is %s', (value, bytes) => {
    expect(written((w) => w.float64(value))).toBe(bytes)
    expect(Object.is(readAll(bytes, (r) => r.float64()), value)).toBe(true)
  })
})

describe('uuid is 16 bytes in 8-4-4-4-12 hex order', () => {
  it('reads and writes the bytes in order', () => {
    const bytes = '0123456789abcdeffedcba9876543210'
    expect(readAll(bytes, (r) => r.uuid())).toBe('01234567-89ab-cdef-fedc-ba9876543210')
    expect(written((w) => w.uuid('01234567-89AB-CDEF-FEDC-BA9876543210'))).toBe(bytes)
  })

  it('refuses to write what is not a UUID', () => {
    expect(() => new Writer().uuid('not-a-uuid')).toThrow(TypeError)
  })
})

describe('the reader never reads past its end', () => {
  it('throws DecodeError for every fixed-width read that does not fit', () => {
    const reads: ((r: Reader) => unknown)[] = [
      (r) => r.int8(),
      (r) => r.int16(),
      (r) => r.int32(),
      (r) => r.int64(),
      (r) => r.float64(),
      (r) => r.uuid(),
      (r) => r.bytes(3),
      (r) => r.utf8(3),
    ]
    for (const read of reads) expect(() => read(new Reader(Buffer.alloc(0)))).toThrow(DecodeError)
  })

  it('stops at `end`, not at the end of the buffer it views', () => {
    const reader = new Reader(hex('0000000100000002'), 0, 6)
    expect(reader.int32()).toBe(1)
    expect(() => reader.int32()).toThrow(DecodeError)
  })

  it('refuses a negative size instead of moving backwards', () => {
    const reader = new Reader(hex('00010203'), 2)
    expect(() => reader.bytes(-1)).toThrow(DecodeError)
    expect(() => reader.utf8(-2)).toThrow(DecodeError)
    expect(reader.offset).toBe(2)
  })

  it('returns bytes as a view into the frame, not a copy', () => {
    const frame = hex('aabbccdd')
    const view = new Reader(frame, 1).bytes(2)
    frame[1] = 0x11
    expect(view.toString('hex')).toBe('11cc')
  })
})

describe('checkLength refuses what cannot fit before anything is allocated', () => {
  it('reads -1 as null', () => {
    expect(new Reader(Buffer.alloc(0)).checkLength(-1, 1, 'x')).toBeNull()
  })

  it('refuses other negative lengths', () => {
    expect(() => new Reader(Buffer.alloc(8)).checkLength(-2, 1, 'x')).toThrow(DecodeError)
  })

  it('refuses a count whose smallest encoding exceeds the bytes that remain', () => {
    const reader = new Reader(Buffer.alloc(8))
    expect(reader.checkLength(2, 4, 'int32 array')).toBe(2)
    expect(() => reader.checkLength(3, 4, 'int32 array')).toThrow(DecodeError)
    expect(() => reader.checkLength(2147483647, 1, 'bytes')).toThrow(DecodeError)
  })
})

describe("the writer's chunks", () => {
  it('keeps large payloads by reference and still produces the bytes in order', () => {
    const payload = Buffer.alloc(5000, 0xab)
    const writer = new Writer(8).int32(5000).bytes(payload).int8(7)
    const chunks = writer.buffers()
    expect(chunks).toContain(payload)
    expect(writer.length).toBe(4 + 5000 + 1)
    const all = Buffer.concat(chunks)
    expect(all.readInt32BE(0)).toBe(5000)
    expect(all.subarray(4, 5004).equals(payload)).toBe(true)
    expect(all[5004]).toBe(7)
  })
})

describe("version ranges in the spec's syntax", () => {
  it.each([
    ['0+', 0, true],
    ['3+', 2, false],
    ['3+', 1000, true],
    ['0-2', 2, true],
    ['0-2', 3, false],
    ['5', 5, true],
    ['5', 4, false],
    ['none', 0, false],
  ] as const)('%s contains %i: %s', (range, version, expected) => {
    expect(inRange(range, version)).toBe(expected)
  })

  it('treats an absent range as never', () => {
    expect(inRange(undefined, 0)).toBe(false)
  })

  it('refuses what is not a range', () => {
    expect(() => parseRange('x+')).toThrow()
  })
})
