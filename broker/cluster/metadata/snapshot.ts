/**
 * A snapshot of the metadata log, as the Raft snapshot's bytes: the records that rebuild the image (image.records()),
 * each framed (records.ts) and prefixed with its length as an unsigned varint:
 *
 *   uvarint length | framed record | uvarint length | framed record | ...
 *
 * The Raft snapshot carries the offset and epoch it stands for; restoring replays the records into an empty image
 * at that provenance, so a member that restored a snapshot holds the image of a member that applied the log.
 */
import { DecodeError, Reader } from '../../../protocol/reader.js'
import { Writer } from '../../../protocol/writer.js'
import { MetadataDelta, MetadataImage, type ImageProvenance } from './image.js'
import { decodeMetadataRecord, encodeMetadataRecord, MetadataRecordError, type MetadataRecord } from './records.js'

/** The image's snapshot records, framed. */
export function encodeMetadataSnapshot(image: MetadataImage): Buffer {
  const writer = new Writer(4096)
  for (const record of image.records()) {
    const framed = encodeMetadataRecord(record)
    writer.uvarint(framed.length).bytes(framed)
  }
  return writer.toBuffer()
}

/** The records of a snapshot. Throws a MetadataRecordError for bytes that are not a sequence of framed records. */
export function decodeMetadataSnapshot(bytes: Buffer): MetadataRecord[] {
  const reader = new Reader(bytes)
  const records: MetadataRecord[] = []
  while (reader.remaining > 0) {
    let framed: Buffer
    try {
      framed = reader.bytes(reader.uvarint())
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error
      throw new MetadataRecordError(`metadata snapshot record ${records.length} is cut short: ${error.message}`)
    }
    records.push(decodeMetadataRecord(framed))
  }
  return records
}

/**
 * The image a snapshot rebuilds, at `provenance` (the snapshot's last offset and epoch). Throws a
 * MetadataRecordError or MetadataImageError for a snapshot that is corrupt or not Brook's.
 */
export function restoreMetadataSnapshot(bytes: Buffer, provenance: ImageProvenance): MetadataImage {
  const delta = new MetadataDelta(MetadataImage.EMPTY)
  for (const record of decodeMetadataSnapshot(bytes)) delta.replay(record)
  return delta.apply(provenance)
}
