/**
 * A bounds-checked reader over one Kafka frame.
 *
 * Every read checks the remaining bytes first and throws a DecodeError instead of reading past the end, and every
 * length that precedes an allocation (arrays, strings, bytes) is checked against the bytes that remain, so a hostile
 * length never makes us allocate what we were not sent (KAFKA-14063).
 */
import { ZERO_UUID } from './constants.js'

export class DecodeError extends Error {
  override readonly name = 'DecodeError'
}

export class Reader {
  offset: number

  constructor(
    readonly buffer: Buffer,
    offset = 0,
    readonly end = buffer.length,
  ) {
    this.offset = offset
  }

  get remaining(): number {
    return this.end - this.offset
  }

  private take(size: number): number {
    const at = this.offset
    // A negative size would move the offset backwards (a record's header key length of -1 did, in decodeRecords).
    if (size < 0) throw new DecodeError(`negative size ${size} at offset ${at}`)
    if (size > this.end - at) throw new DecodeError(`needed ${size} bytes at offset ${at}, only ${this.end - at} remain`)
    this.offset = at + size
    return at
  }

  int8(): number {
    return this.buffer.readInt8(this.take(1))
  }

  int16(): number {
    return this.buffer.readInt16BE(this.take(2))
  }

  uint16(): number {
    return this.buffer.readUInt16BE(this.take(2))
  }

  int32(): number {
    return this.buffer.readInt32BE(this.take(4))
  }

  uint32(): number {
    return this.buffer.readUInt32BE(this.take(4))
  }

  int64(): bigint {
    return this.buffer.readBigInt64BE(this.take(8))
  }

  float64(): number {
    return this.buffer.readDoubleBE(this.take(8))
  }

  bool(): boolean {
    return this.buffer[this.take(1)] !== 0
  }

  uuid(): string {
    const at = this.take(16)
    const hex = this.buffer.toString('hex', at, at + 16)
    if (hex === '00000000000000000000000000000000') return ZERO_UUID
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  }

  /** Unsigned LEB128 varint of at most 5 bytes (a uint32). */
  uvarint(): number {
    let value = 0
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.buffer[this.take(1)]!
      value += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) {
        if (value > 0xffffffff) throw new DecodeError('varint overflows 32 bits')
        return value
      }
    }
    throw new DecodeError('varint longer than 5 bytes')
  }

  /** Zig-zag signed varint (int32). */
  varint(): number {
    const raw = this.uvarint()
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2
  }

  /**
   * Zig-zag signed varlong (int64), at most 10 bytes. Bits beyond 64 in the tenth byte are dropped, as Kafka's
   * ByteUtils.readVarlong does, so the result is always an int64.
   */
  varlong(): bigint {
    let value = 0n
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const byte = this.buffer[this.take(1)]!
      value |= BigInt(byte & 0x7f) << shift
      if ((byte & 0x80) === 0) {
        const raw = BigInt.asUintN(64, value)
        return (raw >> 1n) ^ -(raw & 1n)
      }
    }
    throw new DecodeError('varlong longer than 10 bytes')
  }

  /** Raw bytes as a view into the frame (no copy). */
  bytes(size: number): Buffer {
    const at = this.take(size)
    return this.buffer.subarray(at, at + size)
  }

  utf8(size: number): string {
    const at = this.take(size)
    return this.buffer.toString('utf8', at, at + size)
  }

  /**
   * A length for something of `minItemBytes` bytes an item: -1 is null, other negatives are errors, and a count
   * that cannot fit in what remains is refused before anything is allocated.
   */
  checkLength(length: number, minItemBytes: number, what: string): number | null {
    if (length === -1) return null
    if (length < 0) throw new DecodeError(`negative ${what} length ${length}`)
    if (length * minItemBytes > this.remaining) {
      throw new DecodeError(`${what} of length ${length} exceeds the ${this.remaining} bytes remaining`)
    }
    return length
  }
}
