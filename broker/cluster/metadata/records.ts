/**
 * The records of the metadata log (`__cluster_metadata`), in Kafka's own formats (`internal/metadata/*.json`) and
 * framed as Kafka frames them (ApiMessageAndVersion, AbstractApiMessageSerde):
 *
 *   uvarint frame version (1) | uvarint apiKey | uvarint version | the record, flexible, in that version
 *
 * Each framed record is one record (its value) of a data batch of the Raft log; a snapshot holds the records that
 * rebuild the image (image.ts). Brook writes version 0 of every record unless told otherwise: it carries all Brook
 * uses, and a reader of any Kafka version decodes it. Decoding accepts every version of the spec.
 */
import { codecFor } from '../../../protocol/codec.js'
import { DecodeError, Reader } from '../../../protocol/reader.js'
import { inRange, parseRange } from '../../../protocol/versions.js'
import { Writer } from '../../../protocol/writer.js'
import type { MessageSpec } from '../../../protocol/schema.js'
import { registerBrokerRecord, type RegisterBrokerRecord } from '../../../protocol/messages/internal/metadata/register-broker-record.js'
import { unregisterBrokerRecord, type UnregisterBrokerRecord } from '../../../protocol/messages/internal/metadata/unregister-broker-record.js'
import { topicRecord, type TopicRecord } from '../../../protocol/messages/internal/metadata/topic-record.js'
import { partitionRecord, type PartitionRecord } from '../../../protocol/messages/internal/metadata/partition-record.js'
import { configRecord, type ConfigRecord } from '../../../protocol/messages/internal/metadata/config-record.js'
import { partitionChangeRecord, type PartitionChangeRecord } from '../../../protocol/messages/internal/metadata/partition-change-record.js'
import { fenceBrokerRecord, type FenceBrokerRecord } from '../../../protocol/messages/internal/metadata/fence-broker-record.js'
import { unfenceBrokerRecord, type UnfenceBrokerRecord } from '../../../protocol/messages/internal/metadata/unfence-broker-record.js'
import { removeTopicRecord, type RemoveTopicRecord } from '../../../protocol/messages/internal/metadata/remove-topic-record.js'
import { featureLevelRecord, type FeatureLevelRecord } from '../../../protocol/messages/internal/metadata/feature-level-record.js'
import { producerIdsRecord, type ProducerIdsRecord } from '../../../protocol/messages/internal/metadata/producer-ids-record.js'
import { noOpRecord, type NoOpRecord } from '../../../protocol/messages/internal/metadata/no-op-record.js'

/** AbstractApiMessageSerde.DEFAULT_FRAME_VERSION. */
const FRAME_VERSION = 1
/** The version Brook writes of every record. */
const WRITTEN_VERSION = 0

/** The largest apiKey and version a frame may name: both are Kafka shorts, so larger is corruption. */
const MAX_SHORT = 0x7fff

/** Every record type Brook reads and writes, by Kafka's name. */
const SPECS = {
  RegisterBrokerRecord: registerBrokerRecord,
  UnregisterBrokerRecord: unregisterBrokerRecord,
  TopicRecord: topicRecord,
  PartitionRecord: partitionRecord,
  ConfigRecord: configRecord,
  PartitionChangeRecord: partitionChangeRecord,
  FenceBrokerRecord: fenceBrokerRecord,
  UnfenceBrokerRecord: unfenceBrokerRecord,
  RemoveTopicRecord: removeTopicRecord,
  FeatureLevelRecord: featureLevelRecord,
  ProducerIdsRecord: producerIdsRecord,
  NoOpRecord: noOpRecord,
} as const satisfies Record<string, MessageSpec>

interface RecordData {
  RegisterBrokerRecord: RegisterBrokerRecord
  UnregisterBrokerRecord: UnregisterBrokerRecord
  TopicRecord: TopicRecord
  PartitionRecord: PartitionRecord
  ConfigRecord: ConfigRecord
  PartitionChangeRecord: PartitionChangeRecord
  FenceBrokerRecord: FenceBrokerRecord
  UnfenceBrokerRecord: UnfenceBrokerRecord
  RemoveTopicRecord: RemoveTopicRecord
  FeatureLevelRecord: FeatureLevelRecord
  ProducerIdsRecord: ProducerIdsRecord
  NoOpRecord: NoOpRecord
}

export type MetadataRecordType = keyof RecordData

/** One record of the metadata log: its Kafka type name and its fields (lowerCamel, as the spec names them). */
export type MetadataRecord = { [T in MetadataRecordType]: { readonly type: T; readonly data: RecordData[T] } }[MetadataRecordType]

const BY_API_KEY = new Map<number, MetadataRecordType>(
  Object.entries(SPECS).map(([type, spec]) => [spec.apiKey, type as MetadataRecordType]),
)

/** A record of `type` with `data`, for building records with their types checked. */
export function metadataRecord<T extends MetadataRecordType>(type: T, data: RecordData[T]): MetadataRecord {
  return { type, data } as MetadataRecord
}

/** Kafka's definition of `type` (its fields, versions and apiKey). */
export function metadataRecordSpec(type: MetadataRecordType): MessageSpec {
  return SPECS[type]
}

/** Every version of `type` the spec defines (`validVersions`), lowest first. */
export function metadataRecordVersions(type: MetadataRecordType): number[] {
  const { min, max } = parseRange(SPECS[type].validVersions)
  return Array.from({ length: max - min + 1 }, (_, i) => min + i)
}

/**
 * The record, framed as Kafka frames it, in `options.version` (default 0). Throws a RangeError for a version the
 * spec does not define, or a field the version cannot carry (a string over 32,767 bytes).
 */
export function encodeMetadataRecord(record: MetadataRecord, options: { version?: number } = {}): Buffer {
  const spec = SPECS[record.type]
  const version = options.version ?? WRITTEN_VERSION
  const writer = new Writer(64)
  writer.uvarint(FRAME_VERSION).uvarint(spec.apiKey).uvarint(version)
  codecFor(spec, version).encode(writer, record.data)
  return writer.toBuffer()
}

/**
 * A framed record and the version it was written in. Throws a MetadataRecordError, saying what is wrong, for bytes
 * that are not one: truncated, another frame version, a record type Brook does not know, a version outside the
 * spec's, a field that does not decode, or bytes left over.
 */
export function decodeMetadataRecord(bytes: Buffer): MetadataRecord {
  return decodeVersioned(bytes).record
}

/** As decodeMetadataRecord, with the version the record was written in. */
export function decodeVersioned(bytes: Buffer): { record: MetadataRecord; version: number } {
  const reader = new Reader(bytes)
  const header = (what: string): number => {
    try {
      const value = reader.uvarint()
      if (value > MAX_SHORT) throw new DecodeError(`${value} is not a short`)
      return value
    } catch (error) {
      throw new MetadataRecordError(`metadata record ${what} does not decode: ${(error as Error).message}`)
    }
  }
  const frameVersion = header('frame version')
  if (frameVersion !== FRAME_VERSION) throw new MetadataRecordError(`metadata record frame version ${frameVersion}, expected ${FRAME_VERSION}`)
  const apiKey = header('type')
  const type = BY_API_KEY.get(apiKey)
  if (type === undefined) throw new MetadataRecordError(`unknown metadata record type ${apiKey}`)
  const version = header('version')
  if (!inRange(SPECS[type].validVersions, version)) {
    throw new MetadataRecordError(`${type} has no version ${version} (valid: ${SPECS[type].validVersions})`)
  }
  let data: unknown
  try {
    data = codecFor(SPECS[type], version).decode(reader)
  } catch (error) {
    throw new MetadataRecordError(`${type} v${version} does not decode: ${(error as Error).message}`)
  }
  if (reader.remaining !== 0) throw new MetadataRecordError(`${reader.remaining} bytes after ${type} v${version}`)
  return { record: { type, data } as MetadataRecord, version }
}

/** Bytes in the metadata log that are not a record Brook can apply: the log is not Brook's, or is corrupt. */
export class MetadataRecordError extends Error {
  override readonly name = 'MetadataRecordError'
}
