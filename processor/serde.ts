/**
 * Serdes: how record values are read from and written to Kafka. Values are JSON by default; `string()` and
 * `bytes()` read values as UTF-8 text or raw Buffers. A deserializer that cannot read a value throws RecordError
 * (the record goes to the dead-letter topic). Keys are UTF-8 strings (or null) by default, as IoT pipelines key by
 * device id; a source's `key: bytes()` reads them as raw Buffers instead (Kafka Streams' `Serdes.ByteArray()` as a
 * key serde), for keys that are no text (a Java IntegerSerializer's four bytes). A pipeline that needs a structured
 * key derives it with keyBy.
 */
import { ProcessorErrorCode, RecordError } from './errors.js'

/** Reads a value; `null` is a tombstone or an absent value. Throws RecordError when the bytes are not readable. */
export interface Deserializer<V> {
  readonly name: string
  deserialize(bytes: Buffer | null): V
}

/** Writes a value; `null` writes a tombstone. */
export interface Serializer<V> {
  readonly name: string
  serialize(value: V): Buffer | string | null
}

export type Serde<V> = Deserializer<V> & Serializer<V>

/** JSON values: a value that does not parse is a RecordError with code NOT_JSON; an absent value reads as null. */
export function json<V = unknown>(): Serde<V> {
  return {
    name: 'json',
    deserialize(bytes) {
      if (bytes === null) return null as V
      try {
        // UTF-8 is toString's default; naming it takes Node's path that looks the encoding up at every call.
        return JSON.parse(bytes.toString()) as V
      } catch (error) {
        throw new RecordError(ProcessorErrorCode.notJson, `value is not JSON: ${(error as Error).message}`)
      }
    },
    serialize: (value) => (value === null ? null : JSON.stringify(value)),
  }
}

/** UTF-8 text values. */
export function string(): Serde<string | null> {
  return {
    name: 'string',
    deserialize: (bytes) => (bytes === null ? null : bytes.toString('utf8')),
    serialize: (value) => value,
  }
}

/** Raw bytes, as the producer sent them. */
export function bytes(): Serde<Buffer | null> {
  return {
    name: 'bytes',
    deserialize: (value) => value,
    serialize: (value) => value,
  }
}
