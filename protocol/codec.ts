/**
 * The generic codec: compiles (message, version) into encode/decode functions once, then caches them.
 *
 * Rules (KIP-482 and the message JSON):
 * - a field outside its `versions` is not on the wire; decode fills its default, encode skips it;
 * - in flexible versions strings, bytes and arrays are compact (unsigned varint N+1, 0 = null) unless the field says
 *   `flexibleVersions: 'none'`, and every struct ends with a tagged-field section;
 * - tagged fields are written only when their value differs from the default, in ascending tag order; unknown tags
 *   are kept as raw bytes (`unknownTaggedFields`) and written back, never interpreted;
 * - nullable structs carry an int8 marker (-1 null, 1 present);
 * - a string holds at most 32,767 UTF-8 bytes in every version, compact ones too: longer is a DecodeError when read
 *   and a RangeError when written;
 * - int64 is a bigint, uuid a lowercase 8-4-4-4-12 hex string, bytes a Buffer view into the frame, records a Buffer
 *   (or, when encoding, a list of Buffers written by reference).
 */
import { DecodeError, Reader } from './reader.js'
import { Writer } from './writer.js'
import { inRange } from './versions.js'
import { ZERO_UUID } from './constants.js'
import { PRIMITIVES, UNKNOWN_TAGS, type FieldSpec, type MessageSpec, type UnknownTaggedField } from './schema.js'

type Encode = (writer: Writer, value: any) => void
type Decode = (reader: Reader) => any

export interface Codec<T> {
  readonly spec: MessageSpec
  readonly version: number
  readonly flexible: boolean
  encode(writer: Writer, value: T): void
  decode(reader: Reader): T
}

/** The longest string the protocol carries, compact or not: its int16 length (Kafka's generated code checks 0x7fff). */
export const MAX_STRING_BYTES = 0x7fff

const cache = new WeakMap<MessageSpec, Map<number, Codec<any>>>()

export function codecFor<T>(spec: MessageSpec, version: number): Codec<T> {
  let byVersion = cache.get(spec)
  if (!byVersion) cache.set(spec, (byVersion = new Map()))
  let codec = byVersion.get(version)
  if (!codec) {
    if (!inRange(spec.validVersions, version)) throw new RangeError(`${spec.name} has no version ${version}`)
    const flexible = inRange(spec.flexibleVersions, version)
    const struct = compileStruct(spec.fields, version, flexible, spec.name)
    codec = { spec, version, flexible, encode: struct.encode, decode: struct.decode }
    byVersion.set(version, codec)
  }
  return codec
}

/** Encodes one message to a single buffer (convenient outside hot paths). */
export function encodeToBuffer<T>(spec: MessageSpec, version: number, value: T): Buffer {
  const writer = new Writer()
  codecFor<T>(spec, version).encode(writer, value)
  return writer.toBuffer()
}

interface CompiledStruct {
  encode: Encode
  decode: Decode
  /** The fewest bytes one instance can take on the wire; bounds array lengths before allocation. */
  minSize: number
}

interface CompiledField {
  name: string
  encode: Encode
  decode: Decode
  minSize: number
  makeDefault: () => any
  isDefault: (value: any) => boolean
}

function compileStruct(fields: readonly FieldSpec[], version: number, flexible: boolean, path: string): CompiledStruct {
  const regular: CompiledField[] = []
  const tagged = new Map<number, CompiledField>()
  const absent: CompiledField[] = []
  for (const field of fields) {
    const compiled = compileField(field, version, flexible, `${path}.${field.name}`)
    if (!inRange(field.versions, version)) absent.push(compiled)
    else if (flexible && inRange(field.taggedVersions, version)) tagged.set(field.tag!, compiled)
    else regular.push(compiled)
  }
  const tags = [...tagged.keys()].sort((a, b) => a - b)
  const filled = [...absent, ...tagged.values()]

  const decode: Decode = (reader) => {
    const value: Record<string, unknown> = {}
    for (const field of regular) value[field.name] = field.decode(reader)
    for (const field of filled) value[field.name] = field.makeDefault()
    if (flexible) decodeTaggedFields(reader, tagged, value, path)
    return value
  }

  const encode: Encode = (writer, value) => {
    for (const field of regular) {
      const v = value[field.name]
      field.encode(writer, v === undefined ? field.makeDefault() : v)
    }
    if (!flexible) return
    // Most structs carry no tagged field at all: that is one zero byte, without building the list below (this runs for
    // every struct of every flexible message, each partition of a Fetch answer included).
    const unknown: UnknownTaggedField[] | undefined = value[UNKNOWN_TAGS]
    let present: number[] | undefined
    for (const tag of tags) {
      const field = tagged.get(tag)!
      const v = value[field.name]
      if (v !== undefined && !field.isDefault(v)) (present ??= []).push(tag)
    }
    if (present === undefined && (unknown === undefined || unknown.length === 0)) {
      writer.uvarint(0)
      return
    }
    const all: ({ tag: number; field: CompiledField } | { tag: number; data: Buffer })[] = []
    for (const tag of present ?? []) all.push({ tag, field: tagged.get(tag)! })
    for (const u of unknown ?? []) all.push({ tag: u.tag, data: u.data })
    all.sort((a, b) => a.tag - b.tag)
    writer.uvarint(all.length)
    for (const entry of all) {
      let data: Buffer
      if ('data' in entry) data = entry.data
      else {
        const inner = new Writer(64)
        entry.field.encode(inner, value[entry.field.name])
        data = inner.toBuffer()
      }
      writer.uvarint(entry.tag).uvarint(data.length).bytes(data)
    }
  }

  const minSize = regular.reduce((sum, field) => sum + field.minSize, flexible ? 1 : 0)
  return { encode, decode, minSize }
}

function decodeTaggedFields(
  reader: Reader,
  tagged: ReadonlyMap<number, CompiledField>,
  value: Record<string, unknown>,
  path: string,
): void {
  const count = reader.uvarint()
  reader.checkLength(count, 2, `${path} tagged fields`)
  let unknown: UnknownTaggedField[] | undefined
  let previous = -1
  for (let i = 0; i < count; i++) {
    const tag = reader.uvarint()
    if (tag <= previous) throw new DecodeError(`${path}: tagged fields out of order (${tag} after ${previous})`)
    previous = tag
    const size = reader.uvarint()
    const data = reader.bytes(size)
    const field = tagged.get(tag)
    if (field) {
      const inner = new Reader(data)
      value[field.name] = field.decode(inner)
      if (inner.remaining !== 0) throw new DecodeError(`${path}: tagged field ${tag} has ${inner.remaining} extra bytes`)
    } else (unknown ??= []).push({ tag, data })
  }
  if (unknown) value[UNKNOWN_TAGS] = unknown
}

function compileField(field: FieldSpec, version: number, flexible: boolean, path: string): CompiledField {
  const compact = flexible && (field.flexibleVersions === undefined || inRange(field.flexibleVersions, version))
  const nullable = inRange(field.nullableVersions, version)
  const makeDefault = defaultFactory(field)
  const isDefault = defaultTest(field)
  const type = field.type
  if (type.startsWith('[]')) {
    const element = type.slice(2)
    const item = PRIMITIVES.has(element)
      ? primitive(element, compact, false, path)
      : compileStruct(field.fields ?? [], version, flexible, path)
    return { name: field.name, makeDefault, isDefault, ...array(item, compact, nullable, path) }
  }
  if (PRIMITIVES.has(type)) return { name: field.name, makeDefault, isDefault, ...primitive(type, compact, nullable, path) }
  const struct = compileStruct(field.fields ?? [], version, flexible, path)
  if (!nullable) return { name: field.name, makeDefault, isDefault, ...struct }
  return {
    name: field.name,
    makeDefault,
    isDefault,
    minSize: 1,
    encode: (writer, value) => {
      if (value === null) writer.int8(-1)
      else struct.encode(writer.int8(1), value)
    },
    decode: (reader) => (reader.int8() < 0 ? null : struct.decode(reader)),
  }
}

type Coder = { encode: Encode; decode: Decode; minSize: number }

function readLength(reader: Reader, compact: boolean): number {
  return compact ? reader.uvarint() - 1 : reader.int32()
}

function writeLength(writer: Writer, compact: boolean, length: number): void {
  if (compact) writer.uvarint(length + 1)
  else writer.int32(length)
}

function nullError(path: string): DecodeError {
  return new DecodeError(`${path} is not nullable in this version but was null`)
}

function array(item: Coder, compact: boolean, nullable: boolean, path: string): Coder {
  const itemSize = Math.max(1, item.minSize)
  return {
    minSize: compact ? 1 : 4,
    decode: (reader) => {
      const length = reader.checkLength(readLength(reader, compact), itemSize, path)
      if (length === null) {
        if (!nullable) throw nullError(path)
        return null
      }
      const items = new Array(length)
      for (let i = 0; i < length; i++) items[i] = item.decode(reader)
      return items
    },
    encode: (writer, value) => {
      if (value === null) {
        if (!nullable) throw new TypeError(`${path} is not nullable in this version`)
        writeLength(writer, compact, -1)
        return
      }
      writeLength(writer, compact, value.length)
      for (const element of value) item.encode(writer, element)
    },
  }
}

function primitive(type: string, compact: boolean, nullable: boolean, path: string): Coder {
  switch (type) {
    case 'bool':
      return { minSize: 1, decode: (r) => r.bool(), encode: (w, v) => w.bool(v) }
    case 'int8':
      return { minSize: 1, decode: (r) => r.int8(), encode: (w, v) => w.int8(v) }
    case 'int16':
      return { minSize: 2, decode: (r) => r.int16(), encode: (w, v) => w.int16(v) }
    case 'uint16':
      return { minSize: 2, decode: (r) => r.uint16(), encode: (w, v) => w.uint16(v) }
    case 'int32':
      return { minSize: 4, decode: (r) => r.int32(), encode: (w, v) => w.int32(v) }
    case 'uint32':
      return { minSize: 4, decode: (r) => r.uint32(), encode: (w, v) => w.uint32(v) }
    case 'int64':
      return { minSize: 8, decode: (r) => r.int64(), encode: (w, v) => w.int64(v) }
    case 'float64':
      return { minSize: 8, decode: (r) => r.float64(), encode: (w, v) => w.float64(v) }
    case 'uuid':
      return { minSize: 16, decode: (r) => r.uuid(), encode: (w, v) => w.uuid(v) }
    case 'string':
      return {
        minSize: compact ? 1 : 2,
        decode: (reader) => {
          const length = reader.checkLength(compact ? reader.uvarint() - 1 : reader.int16(), 1, path)
          if (length === null) {
            if (!nullable) throw nullError(path)
            return null
          }
          // Only a compact length can claim more; Kafka's generated readers refuse it too.
          if (length > MAX_STRING_BYTES) throw new DecodeError(`${path} of ${length} bytes is longer than a string may be (${MAX_STRING_BYTES})`)
          return reader.utf8(length)
        },
        encode: (writer, value) => {
          if (value === null) {
            if (!nullable) throw new TypeError(`${path} is not nullable in this version`)
            if (compact) writer.uvarint(0)
            else writer.int16(-1)
            return
          }
          const length = Buffer.byteLength(value)
          if (length > MAX_STRING_BYTES) throw new RangeError(`${path} of ${length} bytes is too long to be encoded (at most ${MAX_STRING_BYTES})`)
          if (compact) writer.uvarint(length + 1)
          else writer.int16(length)
          writer.utf8(value, length)
        },
      }
    case 'bytes':
    case 'records':
      return {
        minSize: compact ? 1 : 4,
        decode: (reader) => {
          const length = reader.checkLength(readLength(reader, compact), 1, path)
          if (length === null) {
            if (!nullable) throw nullError(path)
            return null
          }
          return reader.bytes(length)
        },
        encode: (writer, value: Buffer | readonly Buffer[] | null) => {
          if (value === null) {
            if (!nullable) throw new TypeError(`${path} is not nullable in this version`)
            writeLength(writer, compact, -1)
          } else if (Buffer.isBuffer(value)) {
            writeLength(writer, compact, value.length)
            writer.bytes(value)
          } else {
            writeLength(
              writer,
              compact,
              value.reduce((sum, b) => sum + b.length, 0),
            )
            for (const buffer of value) writer.bytes(buffer)
          }
        },
      }
    default:
      throw new Error(`${path}: unknown type ${type}`)
  }
}

const EMPTY = Buffer.alloc(0)

function defaultFactory(field: FieldSpec): () => any {
  const type = field.type
  if (field.default !== undefined && !type.startsWith('[]') && PRIMITIVES.has(type)) {
    const value = field.default
    if (type === 'int64' && value !== null) {
      const big = BigInt(value)
      return () => big
    }
    return () => value
  }
  if (field.default === null) return () => null
  if (type.startsWith('[]')) return () => []
  switch (type) {
    case 'bool':
      return () => false
    case 'int64':
      return () => 0n
    case 'uuid':
      return () => ZERO_UUID
    case 'string':
      return () => ''
    case 'bytes':
      return () => EMPTY
    case 'records':
      return () => null
    default:
      if (PRIMITIVES.has(type)) return () => 0
  }
  const members = (field.fields ?? []).map((f) => [f.name, defaultFactory(f)] as const)
  return () => {
    const value: Record<string, unknown> = {}
    for (const [name, make] of members) value[name] = make()
    return value
  }
}

function defaultTest(field: FieldSpec): (value: any) => boolean {
  // One default to compare with, made once: sameValue only reads it.
  const fallback = defaultFactory(field)()
  return (value) => sameValue(value, fallback)
}

function sameValue(a: any, b: any): boolean {
  if (a === b) return true
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b)
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]))
  }
  const keys = Object.keys(b)
  return keys.every((key) => sameValue(a[key] ?? b[key], b[key]))
}
