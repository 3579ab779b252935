/**
 * Record-batch compression codecs (attributes bits 0-2). The broker stores and serves compressed batches as sent;
 * it decompresses only where it must look inside a batch (keys for compaction, timestamps for ListOffsets), and the
 * CLI decompresses to print records.
 *
 * Snappy comes in two framings: librdkafka sends raw snappy, Java clients send xerial's stream format
 * (`\x82SNAPPY\0`, then big-endian length-prefixed raw blocks). We read both and write raw.
 * LZ4 is the LZ4 frame format (KIP-57 fixed Kafka's header checksum for magic >= 1).
 */
import { gunzipSync, gzipSync } from 'node:zlib'
import snappy from 'snappy'
import lz4 from 'lz4-napi'
import { decompress as zstdDecompress } from 'fzstd'
import { KafkaError, ErrorCode } from './errors.js'

export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const
export type CompressionName = keyof typeof Compression
export const COMPRESSION_NAMES = Object.keys(Compression) as CompressionName[]

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])

function unsnappy(data: Buffer): Buffer {
  if (data.length < 16 || !data.subarray(0, 8).equals(XERIAL_MAGIC)) return snappy.uncompressSync(data) as Buffer
  const blocks: Buffer[] = []
  for (let at = 16; at < data.length; ) {
    const size = data.readInt32BE(at)
    blocks.push(snappy.uncompressSync(data.subarray(at + 4, at + 4 + size)) as Buffer)
    at += 4 + size
  }
  return Buffer.concat(blocks)
}

export function decompress(codec: number, data: Buffer): Buffer {
  switch (codec) {
    case Compression.none:
      return data
    case Compression.gzip:
      return gunzipSync(data)
    case Compression.snappy:
      return unsnappy(data)
    case Compression.lz4:
      return lz4.decompressFrameSync(data)
    case Compression.zstd:
      return Buffer.from(zstdDecompress(data))
    default:
      throw new KafkaError(ErrorCode.INVALID_RECORD, `unknown compression codec ${codec}`)
  }
}

export function compress(codec: number, data: Buffer): Buffer {
  switch (codec) {
    case Compression.none:
      return data
    case Compression.gzip:
      return gzipSync(data)
    case Compression.snappy:
      return snappy.compressSync(data)
    case Compression.lz4:
      return lz4.compressFrameSync(data)
    default:
      throw new Error(`compressing with codec ${codec} is not supported (gzip, snappy and lz4 are)`)
  }
}
