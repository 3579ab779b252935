/**
 * The records of `__consumer_offsets`, in Kafka's own format, so tools that read the topic see what they see on Kafka.
 *
 *   key   = int16 key version | struct      1 -> OffsetCommitKey {group, topic, partition}   (0 is the same schema)
 *                                            2 -> GroupMetadataKey {group}
 *   value = int16 value version | struct    OffsetCommitValue v3 / GroupMetadataValue v3, or null (a tombstone)
 *
 * Brook writes the versions Kafka 3.x writes (OffsetCommitValue v3 carries the leader epoch; GroupMetadataValue v3
 * the static instance ids). A group lives in partition `abs(javaHashCode(groupId)) % partitions`, as in Kafka, so the
 * partition holding a group is the same one a Kafka tool would compute.
 */
import { codecFor } from '../../protocol/codec.js'
import { Reader } from '../../protocol/reader.js'
import { Writer } from '../../protocol/writer.js'
import type { MessageSpec } from '../../protocol/schema.js'
import { offsetCommitKey } from '../../protocol/messages/internal/group-coordinator/offset-commit-key.js'
import { offsetCommitValue, type OffsetCommitValue } from '../../protocol/messages/internal/group-coordinator/offset-commit-value.js'
import { groupMetadataKey } from '../../protocol/messages/internal/group-coordinator/group-metadata-key.js'
import {
  groupMetadataValue,
  type GroupMetadataValue,
} from '../../protocol/messages/internal/group-coordinator/group-metadata-value.js'

export const OFFSETS_TOPIC = '__consumer_offsets'
/** offsets.topic.num.partitions */
export const OFFSETS_TOPIC_PARTITIONS = 50

const OFFSET_KEY_VERSION = 1
const GROUP_KEY_VERSION = 2
const OFFSET_VALUE_VERSION = 3
const GROUP_VALUE_VERSION = 3

/** Java's String.hashCode over UTF-16 code units, then Kafka's Utils.abs (MIN_VALUE maps to 0). */
export function partitionForGroup(groupId: string, partitions = OFFSETS_TOPIC_PARTITIONS): number {
  let hash = 0
  for (let i = 0; i < groupId.length; i++) hash = (Math.imul(hash, 31) + groupId.charCodeAt(i)) | 0
  const abs = hash === -2147483648 ? 0 : Math.abs(hash)
  return abs % partitions
}

function versioned<T>(spec: MessageSpec, version: number, value: T): Buffer {
  const writer = new Writer(64)
  writer.int16(version)
  codecFor<T>(spec, version).encode(writer, value)
  return writer.toBuffer()
}

export function offsetKey(group: string, topic: string, partition: number): Buffer {
  return versioned(offsetCommitKey, OFFSET_KEY_VERSION, { group, topic, partition })
}

export function offsetValue(value: OffsetCommitValue): Buffer {
  return versioned(offsetCommitValue, OFFSET_VALUE_VERSION, value)
}

export function groupKey(group: string): Buffer {
  return versioned(groupMetadataKey, GROUP_KEY_VERSION, { group })
}

export function groupValue(value: GroupMetadataValue): Buffer {
  return versioned(groupMetadataValue, GROUP_VALUE_VERSION, value)
}

export type OffsetsRecord =
  | { kind: 'offset'; group: string; topic: string; partition: number; value: Required<OffsetCommitValue> | null }
  | { kind: 'group'; group: string; value: Required<GroupMetadataValue> | null }

/** Decodes one record of the topic; null for key versions this broker does not know (newer group types). */
export function decodeOffsetsRecord(key: Buffer, value: Buffer | null): OffsetsRecord | null {
  const keyReader = new Reader(key)
  const keyVersion = keyReader.int16()
  if (keyVersion === 0 || keyVersion === 1) {
    const k = codecFor<{ group: string; topic: string; partition: number }>(offsetCommitKey, keyVersion).decode(keyReader)
    return { kind: 'offset', ...k, value: value && decodeValue<Required<OffsetCommitValue>>(offsetCommitValue, value) }
  }
  if (keyVersion === GROUP_KEY_VERSION) {
    const k = codecFor<{ group: string }>(groupMetadataKey, keyVersion).decode(keyReader)
    return { kind: 'group', group: k.group, value: value && decodeValue<Required<GroupMetadataValue>>(groupMetadataValue, value) }
  }
  return null
}

function decodeValue<T>(spec: MessageSpec, value: Buffer): T {
  const reader = new Reader(value)
  return codecFor<T>(spec, reader.int16()).decode(reader)
}
