/**
 * The binary form of state entries, as the changelog and LevelDB hold them: a writer that appends to one reusable
 * buffer (a commit encodes thousands of entries into it, copying each one out once) and a reader over one entry.
 * Operators write their own entries field by field; values of the user's shape (group fields, reduce and
 * updateStateByKey values, detector history) go through msgpack.
 *
 *   u8        one byte
 *   u32       little-endian (the length of a nested entry, patched in once it is written)
 *   varuint   unsigned LEB128 of a safe integer (0 <= n < 2^53)
 *   varint    zigzag, then varuint (negative keys of sketches)
 *   f64       IEEE 754 double, little-endian
 *   string    varuint (UTF-8 length + 1, 0 for null), then the UTF-8 bytes
 *   plain     varuint length, then msgpack
 *
 * A reader that runs past its input throws RangeError (the entry is corrupt); entries are only ever read back from
 * what a writer of the same format wrote.
 */
import { Packr } from 'msgpackr'
import { ProcessorErrorCode, RecordError } from '../errors.js'

const packr = new Packr({ useRecords: false, moreTypes: false })

/** msgpack, for values of the user's shape (also the task position). */
export function packPlain(value: unknown): Buffer {
  return packr.pack(value)
}

export function unpackPlain(bytes: Uint8Array): unknown {
  return packr.unpack(bytes)
}

/**
 * The most bytes of msgpack a value an operator writes to an internal topic may take: a `keyBy`'s record for its
 * repartition topic, a `reduce`'s or `updateStateByKey`'s state for the changelog. Kafka's default max.message.bytes
 * is 1,048,588 for a whole batch, which also holds the record's key, the group's other state and the batch's
 * overhead; msgpack writes every fractional number in 9 bytes, so a value can grow past the limit on the way (a JSON
 * array of 240,000 `0.1` from 960 KB to 2.16 MB). Such a record, refused by the cluster at every commit, would
 * stop the pipeline; a value above this is a dead letter instead (SERIALIZATION_FAILED), before any state changes.
 */
export const INTERNAL_VALUE_MAX_BYTES = 1_000_000

/** msgpack of plain data, as the store writes it. Errors: as `ByteWriter.plain`. */
function packChecked(value: unknown): Buffer {
  const packed = packr.pack(value)
  const found = unplain(value)
  if (found !== null) throw new Error(`${found.path === '' ? 'it' : `its ${found.path}`} is a ${found.kind}, which the store gives back as ${found.kind === 'Set' ? 'an array' : 'a plain object'}: keep state as plain objects, arrays, strings, numbers, booleans, null and Dates`)
  return packed
}

/**
 * A copy of a value of the user's shape as the store gives it back after a restart (msgpack there and back), and the
 * size of its msgpack. Operators keep copies in their state and hand user functions copies of it, as a Kafka Streams
 * store serializes on put and deserializes on get: state never shares an object with user code, so a function that
 * changes its argument in place and then throws, or an operator further on that changes the value it was given,
 * changes no state (and no result depends on whether the state was read from the cache or from disk). Errors: as
 * `ByteWriter.plain`, so a value the store cannot keep is refused when it is put, not at the commit.
 */
export function storedCopy<T>(value: T): { copy: T; bytes: number } {
  const packed = packChecked(value)
  return { copy: packr.unpack(packed) as T, bytes: packed.length }
}

/**
 * The copy of `value` an operator keeps as its state (storedCopy), refused as its record's dead letter when the store
 * cannot keep it or its msgpack is above INTERNAL_VALUE_MAX_BYTES: `unstorable(why)` and `tooLarge(bytes)` word the
 * reason. Returns the copy and the size of its msgpack. Errors: RecordError SERIALIZATION_FAILED, thrown before any
 * state changes.
 */
export function keptCopy<T>(value: T, reason: { unstorable: (why: string) => string; tooLarge: (bytes: number) => string }): { copy: T; bytes: number } {
  let kept: { copy: T; bytes: number }
  try {
    kept = storedCopy(value)
  } catch (error) {
    throw new RecordError(ProcessorErrorCode.serializationFailed, reason.unstorable((error as Error)?.message ?? String(error)))
  }
  if (kept.bytes > INTERNAL_VALUE_MAX_BYTES) throw new RecordError(ProcessorErrorCode.serializationFailed, reason.tooLarge(kept.bytes))
  return kept
}

const TWO_POW_31 = 0x80000000

/** How an operator's entries are written to the store and read back. */
export interface EntryCodec<T = unknown> {
  write(out: ByteWriter, entry: T): void
  read(from: ByteReader): T
  /** The oldest state format (task-store.ts STATE_FORMAT) whose entries `read` takes; absent: every format. */
  readonly oldestFormat?: number
}

/** Entries of the user's shape (updateStateByKey values, detector history), as msgpack. */
export const PLAIN_CODEC: EntryCodec = {
  write: (out, entry) => out.plain(entry),
  read: (from) => from.plain(),
}

export class ByteWriter {
  private buf = Buffer.allocUnsafe(64 * 1024)
  // DataView accessors compile to plain loads and stores; Buffer's writeDoubleLE checks and copies byte by byte.
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength)
  private pos = 0
  /** msgpack of values written with `frozenPlain`, by object. */
  private readonly frozen = new WeakMap<object, Buffer>()

  /** Starts a new entry (the bytes of the previous one are dropped). */
  reset(): this {
    this.pos = 0
    return this
  }

  /** Bytes written since `reset`. */
  get length(): number {
    return this.pos
  }

  /** A copy of what was written since `reset`. */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos))
  }

  private ensure(bytes: number): void {
    if (this.pos + bytes <= this.buf.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + bytes))
    this.buf.copy(grown, 0, 0, this.pos)
    this.buf = grown
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength)
  }

  u8(value: number): void {
    this.ensure(1)
    this.buf[this.pos++] = value
  }

  varuint(value: number): void {
    this.ensure(8)
    const buf = this.buf
    let pos = this.pos
    while (value >= TWO_POW_31) {
      buf[pos++] = (value % 128) | 0x80
      value = Math.floor(value / 128)
    }
    while (value >= 0x80) {
      buf[pos++] = (value & 0x7f) | 0x80
      value >>>= 7
    }
    buf[pos++] = value
    this.pos = pos
  }

  varint(value: number): void {
    this.varuint(value < 0 ? -2 * value - 1 : 2 * value)
  }

  f64(value: number): void {
    this.ensure(8)
    this.view.setFloat64(this.pos, value, true)
    this.pos += 8
  }

  string(value: string | null): void {
    if (value === null) return this.varuint(0)
    // Keys and names are short ASCII: copied here without two calls into C++ (byteLength, then write).
    const n = value.length
    if (n < 0x7f) {
      this.ensure(n + 1)
      const buf = this.buf
      const start = this.pos
      buf[start] = n + 1
      let i = 0
      for (; i < n; i++) {
        const c = value.charCodeAt(i)
        if (c >= 0x80) break
        buf[start + 1 + i] = c
      }
      if (i === n) {
        this.pos = start + 1 + n
        return
      }
    }
    const length = Buffer.byteLength(value)
    this.varuint(length + 1)
    this.ensure(length)
    this.pos += this.buf.write(value, this.pos, 'utf8')
  }

  /** Bytes as they are, without a length. */
  raw(value: Uint8Array): void {
    this.ensure(value.length)
    this.buf.set(value, this.pos)
    this.pos += value.length
  }

  /** Reserves a u32 for the length of what follows; `endLength` fills it in. */
  beginLength(): number {
    this.ensure(4)
    this.pos += 4
    return this.pos
  }

  endLength(mark: number): void {
    this.view.setUint32(mark - 4, this.pos - mark, true)
  }

  bytes(value: Uint8Array): void {
    this.varuint(value.length)
    this.raw(value)
  }

  /** msgpack of plain data. Errors: an Error for a value it cannot write, or one it would give back otherwise (`unplain`). */
  plain(value: unknown): void {
    this.bytes(packChecked(value))
  }

  /**
   * Plain data that never changes once written (a group's fields): its msgpack is kept per object, so an entry
   * rewritten at every commit packs its fields once.
   */
  frozenPlain(value: object): void {
    let packed = this.frozen.get(value)
    if (packed === undefined) this.frozen.set(value, (packed = packr.pack(value)))
    this.bytes(packed)
  }
}

/**
 * The first part of `value` that msgpack gives back as another kind of value (a Map as a plain object, a Set as an
 * array, a class instance as a plain object without its prototype), with its path (`tags`, `[2].seen`; '' for the
 * value itself), or null when it reads back as it is. A state held in the cache keeps its kind until it is evicted
 * or restored, so a Set worked until a restart and then failed every record of its group (`s.add is not a
 * function`); refused when it is first written, it fails at once, the same way every time. Called once msgpack has
 * packed the value, so it has no cycle.
 */
function unplain(value: unknown): { path: string; kind: string } | null {
  if (value === null || typeof value !== 'object' || value instanceof Date || value instanceof Uint8Array) return null
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = unplain(value[i])
      if (found !== null) return { path: `[${i}]${found.path === '' || found.path.startsWith('[') ? '' : '.'}${found.path}`, kind: found.kind }
    }
    return null
  }
  const prototype = Object.getPrototypeOf(value) as { constructor?: { name?: string } } | null
  if (prototype !== Object.prototype && prototype !== null) return { path: '', kind: prototype.constructor?.name || 'object with a prototype' }
  for (const [name, inner] of Object.entries(value)) {
    const found = unplain(inner)
    if (found !== null) return { path: `${name}${found.path === '' || found.path.startsWith('[') ? '' : '.'}${found.path}`, kind: found.kind }
  }
  return null
}

export class ByteReader {
  private readonly view: DataView

  constructor(
    private readonly buf: Buffer,
    public pos = 0,
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }

  get done(): boolean {
    return this.pos >= this.buf.length
  }

  private need(bytes: number): void {
    if (this.pos + bytes > this.buf.length) throw new RangeError(`state entry ends at byte ${this.buf.length}, ${bytes} more needed at ${this.pos}`)
  }

  u8(): number {
    this.need(1)
    return this.buf[this.pos++]!
  }

  u32(): number {
    this.need(4)
    const value = this.view.getUint32(this.pos, true)
    this.pos += 4
    return value
  }

  varuint(): number {
    let value = 0
    let scale = 1
    for (;;) {
      const byte = this.u8()
      value += (byte & 0x7f) * scale
      if (byte < 0x80) return value
      scale *= 128
    }
  }

  varint(): number {
    const zigzag = this.varuint()
    return zigzag % 2 === 1 ? -(zigzag + 1) / 2 : zigzag / 2
  }

  f64(): number {
    this.need(8)
    const value = this.view.getFloat64(this.pos, true)
    this.pos += 8
    return value
  }

  string(): string | null {
    const length = this.varuint()
    if (length === 0) return null
    this.need(length - 1)
    const value = this.buf.toString('utf8', this.pos, this.pos + length - 1)
    this.pos += length - 1
    return value
  }

  bytes(): Buffer {
    const length = this.varuint()
    this.need(length)
    const value = this.buf.subarray(this.pos, this.pos + length)
    this.pos += length
    return value
  }

  plain(): unknown {
    return packr.unpack(this.bytes())
  }
}
