/**
 * Record-batch compression codecs (attributes bits 0-2). The broker stores and serves compressed batches as sent;
 * it decompresses only where it must look inside a batch (keys for compaction, timestamps for ListOffsets), and the
 * CLI decompresses to print records.
 *
 * Snappy comes in two framings: librdkafka sends raw snappy, Java clients send xerial's stream format
 * (`\x82SNAPPY\0`, then big-endian length-prefixed raw blocks). We read both and write raw.
 * LZ4 is the LZ4 frame format (KIP-57 fixed Kafka's header checksum for magic >= 1).
 *
 * Decompression is bounded (`maxBytes`, 128 MiB by default): a few kilobytes of gzip or zstd can claim gigabytes,
 * and a hostile batch must cost an error (MESSAGE_TOO_LARGE), not the node's memory. gzip is bounded by zlib,
 * snappy by its length preamble, lz4 by its block count times its block size, zstd by streaming with a running count.
 */
import { gunzipSync, gzipSync } from 'node:zlib'
import snappy from 'snappy'
import lz4 from 'lz4-napi'
import { Decompress as ZstdStream } from 'fzstd'
import { KafkaError, ErrorCode } from './errors.js'

export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const
export type CompressionName = keyof typeof Compression
export const COMPRESSION_NAMES = Object.keys(Compression) as CompressionName[]

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])

export const MAX_DECOMPRESSED_BYTES = 128 * 1024 * 1024

function tooLarge(maxBytes: number): KafkaError {
  return new KafkaError(ErrorCode.MESSAGE_TOO_LARGE, `a compressed record batch inflates to more than ${maxBytes} bytes`)
}

function unsnappyBlock(block: Buffer, budget: number, maxBytes: number): Buffer {
  // Raw snappy starts with the uncompressed length as a varint.
  let length = 0
  for (let i = 0, shift = 0; i < 5 && i < block.length; i++, shift += 7) {
    length += (block[i]! & 0x7f) * 2 ** shift
    if ((block[i]! & 0x80) === 0) break
  }
  if (length > budget) throw tooLarge(maxBytes)
  return snappy.uncompressSync(block) as Buffer
}

function unsnappy(data: Buffer, maxBytes: number): Buffer {
  if (data.length < 16 || !data.subarray(0, 8).equals(XERIAL_MAGIC)) return unsnappyBlock(data, maxBytes, maxBytes)
  const blocks: Buffer[] = []
  let total = 0
  for (let at = 16; at + 4 <= data.length; ) {
    const size = data.readInt32BE(at)
    const block = unsnappyBlock(data.subarray(at + 4, at + 4 + size), maxBytes - total, maxBytes)
    blocks.push(block)
    total += block.length
    at += 4 + size
  }
  return Buffer.concat(blocks)
}

/** The most an LZ4 frame can inflate to: its block count times its maximum block size (from the BD byte). */
function lz4Bound(data: Buffer): number {
  if (data.length < 7) return 0
  const flags = data[4]!
  const blockMax = 1 << (8 + 2 * ((data[5]! >> 4) & 0x07))
  let at = 7 + (flags & 0x08 ? 8 : 0) + (flags & 0x01 ? 4 : 0)
  let blocks = 0
  while (at + 4 <= data.length) {
    const size = data.readUInt32LE(at) & 0x7fffffff
    if (size === 0) break
    blocks++
    at += 4 + size + (flags & 0x10 ? 4 : 0)
  }
  return blocks * blockMax
}

function unzstd(data: Buffer, maxBytes: number): Buffer {
  const chunks: Uint8Array[] = []
  let total = 0
  const stream = new ZstdStream((chunk) => {
    total += chunk.length
    if (total > maxBytes) throw tooLarge(maxBytes)
    chunks.push(chunk)
  })
  stream.push(data, true)
  return Buffer.concat(chunks, total)
}

export function decompress(codec: number, data: Buffer, maxBytes = MAX_DECOMPRESSED_BYTES): Buffer {
  switch (codec) {
    case Compression.none:
      return data
    case Compression.gzip:
      try {
        return gunzipSync(data, { maxOutputLength: maxBytes })
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(maxBytes)
        throw error
      }
    case Compression.snappy:
      return unsnappy(data, maxBytes)
    case Compression.lz4:
      if (lz4Bound(data) > maxBytes) throw tooLarge(maxBytes)
      return lz4.decompressFrameSync(data)
    case Compression.zstd:
      return unzstd(data, maxBytes)
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
