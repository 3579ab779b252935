/**
 * The "consumer" embedded protocol (ConsumerProtocolSubscription.json, ConsumerProtocolAssignment.json): what a
 * consumer puts into JoinGroup metadata and what its leader puts into SyncGroup assignments, each as an int16 version
 * followed by the struct. The broker reads them only to describe groups and to refuse deleting offsets of subscribed
 * topics; newer versions only append fields, so a version above the newest known is read as the newest
 * (ConsumerProtocol.java does the same).
 */
import { codecFor } from './codec.js'
import { Reader } from './reader.js'
import type { MessageSpec } from './schema.js'
import { parseRange } from './versions.js'
import {
  consumerProtocolSubscription,
  type ConsumerProtocolSubscription,
} from './messages/consumer-protocol-subscription.js'
import {
  consumerProtocolAssignment,
  type ConsumerProtocolAssignment,
} from './messages/consumer-protocol-assignment.js'

/**
 * Reads at the stated version, then at each lower one: some clients label an older layout with a newer version
 * (@platformatic/kafka 1.35 writes version 1 without v1's ownedPartitions), and a description should still show what
 * they subscribed to.
 */
function decodeVersioned<T>(spec: MessageSpec, bytes: Buffer): T | null {
  if (bytes.length < 2) return null
  const stated = Math.min(bytes.readInt16BE(0), parseRange(spec.validVersions).max)
  for (let version = stated; version >= 0; version--) {
    try {
      const reader = new Reader(bytes, 2)
      const value = codecFor<T>(spec, version).decode(reader)
      if (reader.remaining === 0 || version === stated) return value
    } catch {
      // try the next older layout
    }
  }
  return null
}

/** The topics a member subscribed to; empty when the metadata is not the consumer protocol. */
export function subscribedTopics(metadata: Buffer): string[] {
  return decodeVersioned<Required<ConsumerProtocolSubscription>>(consumerProtocolSubscription, metadata)?.topics ?? []
}

/** The partitions assigned to a member, by topic; empty when the assignment is not the consumer protocol. */
export function assignedPartitions(assignment: Buffer): { topic: string; partitions: number[] }[] {
  return decodeVersioned<Required<ConsumerProtocolAssignment>>(consumerProtocolAssignment, assignment)?.assignedPartitions ?? []
}
