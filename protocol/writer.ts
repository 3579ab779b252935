/**
 * A growable writer that produces a list of buffers.
 *
 * Small fields go into a scratch buffer; large byte payloads (record batches read from storage) are appended by
 * reference, so a Fetch response is written to the socket with writev and its records are never copied.
 *
 *   chunks: [ scratch slice | records buffer | records buffer | scratch slice | ... ]
 */
const LARGE = 4096
const HEX_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export class Writer {
  private readonly chunks: Buffer[] = []
  private scratch: Buffer
  private start = 0
  private pos = 0
  private flushed = 0

  constructor(initialSize = 512) {
    this.scratch = Buffer.allocUnsafe(initialSize)
  }

  /** Bytes written so far. */
  get length(): number {
    return this.flushed + this.pos - this.start
  }

  private ensure(size: number): void {
    if (this.pos + size <= this.scratch.length) return
    this.cut()
    this.scratch = Buffer.allocUnsafe(Math.max(size, this.scratch.length * 2))
    this.start = 0
    this.pos = 0
  }

  /** Moves what the scratch buffer holds into the chunk list. */
  private cut(): void {
    if (this.pos > this.start) {
      this.chunks.push(this.scratch.subarray(this.start, this.pos))
      this.flushed += this.pos - this.start
      this.start = this.pos
    }
  }

  int8(value: number): this {
    this.ensure(1)
    this.pos = this.scratch.writeInt8(value, this.pos)
    return this
  }

  int16(value: number): this {
    this.ensure(2)
    this.pos = this.scratch.writeInt16BE(value, this.pos)
    return this
  }

  uint16(value: number): this {
    this.ensure(2)
    this.pos = this.scratch.writeUInt16BE(value, this.pos)
    return this
  }

  int32(value: number): this {
    this.ensure(4)
    this.pos = this.scratch.writeInt32BE(value, this.pos)
    return this
  }

  uint32(value: number): this {
    this.ensure(4)
    this.pos = this.scratch.writeUInt32BE(value, this.pos)
    return this
  }

  int64(value: bigint): this {
    this.ensure(8)
    this.pos = this.scratch.writeBigInt64BE(BigInt.asIntN(64, value), this.pos)
    return this
  }

  float64(value: number): this {
    this.ensure(8)
    this.pos = this.scratch.writeDoubleBE(value, this.pos)
    return this
  }

  bool(value: boolean): this {
    return this.int8(value ? 1 : 0)
  }

  uuid(value: string): this {
    if (!HEX_UUID.test(value)) throw new TypeError(`not a UUID: '${value}'`)
    this.ensure(16)
    this.pos += this.scratch.write(value.replaceAll('-', ''), this.pos, 16, 'hex')
    return this
  }

  uvarint(value: number): this {
    this.ensure(5)
    while (value >= 0x80) {
      this.scratch[this.pos++] = (value & 0x7f) | 0x80
      value = Math.floor(value / 128)
    }
    this.scratch[this.pos++] = value
    return this
  }

  varint(value: number): this {
    return this.uvarint(value >= 0 ? value * 2 : -value * 2 - 1)
  }

  varlong(value: bigint): this {
    let zigzag = BigInt.asUintN(64, (value << 1n) ^ (value >> 63n))
    this.ensure(10)
    while (zigzag >= 0x80n) {
      this.scratch[this.pos++] = Number(zigzag & 0x7fn) | 0x80
      zigzag >>= 7n
    }
    this.scratch[this.pos++] = Number(zigzag)
    return this
  }

  bytes(value: Buffer): this {
    if (value.length >= LARGE) {
      this.cut()
      this.chunks.push(value)
      this.flushed += value.length
      return this
    }
    this.ensure(value.length)
    this.pos += value.copy(this.scratch, this.pos)
    return this
  }

  utf8(value: string, byteLength: number): this {
    this.ensure(byteLength)
    this.pos += this.scratch.write(value, this.pos, byteLength, 'utf8')
    return this
  }

  /** The buffers written, in order. */
  buffers(): Buffer[] {
    this.cut()
    return this.chunks
  }

  /** Everything written, as one buffer (copies when more than one chunk). */
  toBuffer(): Buffer {
    const chunks = this.buffers()
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.flushed)
  }
}
