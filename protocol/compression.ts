/**
 * Record-batch compression codecs (attributes bits 0-2). The broker stores and serves compressed batches as sent;
 * it decompresses only where it must look inside a batch (keys for compaction, timestamps for ListOffsets), and the
 * CLI decompresses to print records.
 *
 * Snappy comes in two framings: librdkafka sends raw snappy, Java clients send xerial's stream format
 * (`\x82SNAPPY\0`, then big-endian length-prefixed raw blocks). We read both and write raw.
 * LZ4 is the LZ4 frame format (KIP-57 fixed Kafka's header checksum for magic >= 1).
 *
 * Decompression is bounded (`maxBytes`): a few kilobytes of gzip or zstd can claim gigabytes, and a hostile batch
 * must cost an error (MESSAGE_TOO_LARGE), not the node's memory. gzip is bounded by zlib, snappy by its length
 * preamble, lz4 by its block count times its block size, zstd by streaming with a running count. The broker bounds a
 * produced or stored batch by `inflationLimit(max.message.bytes)`; client-side tools by MAX_DECOMPRESSED_BYTES.
 * LZ4 (like Kafka's KafkaLZ4BlockInputStream) reads the first frame only; bytes after its end mark are ignored.
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

/** The bound for tools that print records (the CLI's consumers), where the batch comes from a broker. */
export const MAX_DECOMPRESSED_BYTES = 128 * 1024 * 1024

/**
 * How many times its `max.message.bytes` a compressed batch may inflate to. Kafka bounds only the compressed size
 * (message.max.bytes, "after compression") and would inflate whatever a producer sends; Brook bounds the inflated
 * records too, so that validating or searching one batch costs a bounded amount of memory and CPU. Compression
 * ratios of real record data are 2x to 10x (text, JSON, logs; zstd at most ~20x), so 32x leaves room above any of
 * them while a gzip bomb (up to ~1000x) or an lz4 one (~250x) is refused. A topic whose producers really compress
 * better raises its max.message.bytes, which raises this bound with it; Java producers split a batch refused with
 * MESSAGE_TOO_LARGE and send the halves.
 */
export const INFLATION_RATIO = 32

/** The most a batch of a topic whose max.message.bytes is `maxMessageBytes` may inflate to, in bytes. */
export function inflationLimit(maxMessageBytes: number): number {
  return INFLATION_RATIO * maxMessageBytes
}

function tooLarge(maxBytes: number): KafkaError {
  return new KafkaError(ErrorCode.MESSAGE_TOO_LARGE, `a compressed record batch inflates to more than ${maxBytes} bytes`)
}

function unsnappyBlock(block: Buffer, budget: number, maxBytes: number): Buffer {
  // Raw snappy starts with the uncompressed length; the decoder checks the block against it.
  if ((snappyPreamble(block) ?? 0) > budget) throw tooLarge(maxBytes)
  return snappy.uncompressSync(block) as Buffer
}

function unsnappy(data: Buffer, maxBytes: number): Buffer {
  if (data.length < 16 || !data.subarray(0, 8).equals(XERIAL_MAGIC)) return unsnappyBlock(data, maxBytes, maxBytes)
  const blocks: Buffer[] = []
  let total = 0
  for (let at = 16; at + 4 <= data.length; ) {
    const size = data.readInt32BE(at)
    // A negative block size would step backwards, and loop for ever on the same block.
    if (size < 0 || at + 4 + size > data.length) throw new Error(`xerial snappy block of ${size} bytes at ${at} does not fit`)
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

/**
 * The size `data` says it inflates to, read from its framing without decompressing: gzip's ISIZE trailer (of the
 * last member), snappy's length preambles, the LZ4 frame's content size (else its block count times its block size),
 * the zstd frame's content size (else its block bound). Null when the framing does not say. A hint only: the bytes may lie, and
 * `decompress` enforces its bound whatever the hint was.
 */
export function inflatedSizeHint(codec: number, data: Buffer): number | null {
  switch (codec) {
    case Compression.none:
      return data.length
    case Compression.gzip:
      return data.length >= 18 ? data.readUInt32LE(data.length - 4) : null
    case Compression.snappy:
      return snappyLength(data)
    case Compression.lz4:
      return lz4ContentSize(data) ?? lz4Bound(data)
    case Compression.zstd:
      return zstdContentSize(data) ?? zstdBound(data)?.inflated ?? null
    default:
      return null
  }
}

/** Raw snappy's varint preamble, or the sum of a xerial stream's block preambles. */
function snappyLength(data: Buffer): number | null {
  if (data.length < 16 || !data.subarray(0, 8).equals(XERIAL_MAGIC)) return snappyPreamble(data)
  let total = 0
  for (let at = 16; at + 4 <= data.length; ) {
    const size = data.readInt32BE(at)
    if (size < 0) return null
    const length = snappyPreamble(data.subarray(at + 4, at + 4 + size))
    if (length === null) return null
    total += length
    at += 4 + size
  }
  return total
}

function snappyPreamble(block: Buffer): number | null {
  let length = 0
  for (let i = 0, shift = 0; i < 5 && i < block.length; i++, shift += 7) {
    length += (block[i]! & 0x7f) * 2 ** shift
    if ((block[i]! & 0x80) === 0) return length
  }
  return null
}

/** The LZ4 frame descriptor's content size (FLG bit 3), when the producer wrote it. */
function lz4ContentSize(data: Buffer): number | null {
  if (data.length < 15 || (data[4]! & 0x08) === 0) return null
  return Number(data.readBigUInt64LE(6))
}

/** The zstd frame header's content size (RFC 8878 §3.1.1.1), when the producer wrote it. */
function zstdContentSize(data: Buffer): number | null {
  if (data.length < 6 || data.readUInt32LE(0) !== 0xfd2fb528) return null
  const descriptor = data[4]!
  const sizeFlag = descriptor >> 6
  const singleSegment = (descriptor & 0x20) !== 0
  const at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 0x03]!
  const width = sizeFlag === 0 ? (singleSegment ? 1 : 0) : [0, 2, 4, 8][sizeFlag]!
  if (width === 0 || at + width > data.length) return null
  if (width === 1) return data[at]!
  if (width === 2) return data.readUInt16LE(at) + 256
  if (width === 4) return data.readUInt32LE(at)
  return Number(data.readBigUInt64LE(at))
}

const ZSTD_MAGIC = 0xfd2fb528
/** RFC 8878 §3.1.1.2: no block regenerates more than this. */
const ZSTD_BLOCK_MAX = 128 * 1024

/**
 * What a zstd payload may inflate to and the largest window it asks for, from its frame and block headers (RFC 8878
 * §3.1): a raw or RLE block regenerates its stated size, a compressed one at most min(window, 128 KiB). fzstd
 * allocates each frame's window before reading a block, so a 9-byte frame declaring a 1 GiB window would cost
 * 1 GiB; this is checked first. Null when the headers do not parse (the decoder then fails on them).
 */
function zstdBound(data: Buffer): { inflated: number; window: number } | null {
  let inflated = 0
  let largestWindow = 0
  let at = 0
  while (at + 4 <= data.length) {
    const magic = data.readUInt32LE(at)
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      if (at + 8 > data.length) return null
      at += 8 + data.readUInt32LE(at + 4)
      continue
    }
    if (magic !== ZSTD_MAGIC || at + 5 > data.length) return null
    const descriptor = data[at + 4]!
    const singleSegment = (descriptor & 0x20) !== 0
    const sizeWidth = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6]!
    let header = at + 5
    let window = 0
    if (!singleSegment) {
      if (header >= data.length) return null
      const exponent = data[header]! >> 3
      const base = 2 ** (10 + exponent)
      window = base + (base / 8) * (data[header]! & 0x07)
      header += 1
    }
    header += [0, 1, 2, 4][descriptor & 0x03]!
    if (header + sizeWidth > data.length) return null
    if (singleSegment) window = sizeWidth === 1 ? data[header]! : sizeWidth === 2 ? data.readUInt16LE(header) + 256 : sizeWidth === 4 ? data.readUInt32LE(header) : Number(data.readBigUInt64LE(header))
    largestWindow = Math.max(largestWindow, window)
    at = header + sizeWidth
    for (let last = false; !last; ) {
      if (at + 3 > data.length) return null
      const block = data.readUIntLE(at, 3)
      last = (block & 1) === 1
      const type = (block >> 1) & 0x03
      const size = block >>> 3
      if (type === 3) return null
      inflated += type === 2 ? Math.min(window, ZSTD_BLOCK_MAX) : size
      at += 3 + (type === 1 ? 1 : size)
    }
    if (descriptor & 0x04) at += 4
  }
  return { inflated, window: largestWindow }
}

function unzstd(data: Buffer, maxBytes: number): Buffer {
  const bound = zstdBound(data)
  if (!bound) throw new Error('the zstd frame headers do not parse')
  if (bound.window > maxBytes || bound.inflated > maxBytes) throw tooLarge(maxBytes)
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

/**
 * Inflates a batch's records (the bytes after its 61-byte header) compressed with `codec`, refusing to produce more
 * than `maxBytes` (KafkaError MESSAGE_TOO_LARGE). Bytes the codec cannot read throw the codec's own Error.
 */
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
