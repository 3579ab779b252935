/**
 * The log cleaner's key map (Kafka's SkimpyOffsetMap): for each record key of the range being compacted, the offset
 * of its latest record, in a table of fixed size, so the cleaner's memory is bounded whatever the partition holds.
 *
 *   slot (24 bytes): MD5 of the key (16) | offset + 1 (8; 0 = empty)      open addressing, linear probing
 *
 * The table is filled to at most LOAD_FACTOR of its slots (Kafka's log.cleaner.io.buffer.load.factor, 0.9); the
 * cleaner stops adding before that and compacts what the map holds (log-cleaner.ts). Two keys with the same MD5 count
 * as one, as in Kafka: the newer record of either would hide the older of the other.
 */
import { hash } from 'node:crypto'

export const BYTES_PER_ENTRY = 24
export const LOAD_FACTOR = 0.9

/** A key's hash, as the map stores it. */
export function keyHash(key: Buffer): Buffer {
  return hash('md5', key, 'buffer')
}

export class OffsetMap {
  readonly slots: number
  /** The most entries the map takes. */
  readonly capacity: number
  private readonly table: Buffer
  private entries = 0

  /** A map in `bytes` of memory (at least two slots). */
  constructor(bytes: number) {
    this.slots = Math.max(2, Math.floor(bytes / BYTES_PER_ENTRY))
    this.capacity = Math.max(1, Math.floor(this.slots * LOAD_FACTOR))
    this.table = Buffer.alloc(this.slots * BYTES_PER_ENTRY)
  }

  get size(): number {
    return this.entries
  }

  /** The latest offset recorded for the key with `hash`, or -1. */
  get(hash: Buffer): bigint {
    const slot = this.find(hash)
    const stored = this.table.readBigInt64BE(slot * BYTES_PER_ENTRY + 16)
    return stored === 0n ? -1n : stored - 1n
  }

  /** Records `offset` as the latest of the key with `hash`; throws when a new key would pass the capacity. */
  put(hash: Buffer, offset: bigint): void {
    const slot = this.find(hash)
    const at = slot * BYTES_PER_ENTRY
    if (this.table.readBigInt64BE(at + 16) === 0n) {
      if (this.entries >= this.capacity) throw new RangeError(`the offset map is full (${this.capacity} keys)`)
      hash.copy(this.table, at, 0, 16)
      this.entries++
    }
    this.table.writeBigInt64BE(offset + 1n, at + 16)
  }

  /** The slot that holds `hash`, or the empty slot where it would go. */
  private find(hash: Buffer): number {
    let slot = hash.readUInt32BE(0) % this.slots
    for (;;) {
      const at = slot * BYTES_PER_ENTRY
      if (this.table.readBigInt64BE(at + 16) === 0n || this.table.compare(hash, 0, 16, at, at + 16) === 0) return slot
      slot = slot + 1 === this.slots ? 0 : slot + 1
    }
  }
}
