/**
 * Record-batch compression codecs (attributes bits 0-2). The broker stores and serves compressed batches as sent;
 * it decompresses where it must look inside a batch (produce's record checks, keys for compaction, timestamps for
 * ListOffsets), and the CLI decompresses to print records.
 *
 * Snappy comes in two framings: librdkafka sends raw snappy, Java clients send xerial's stream format
 * (`\x82SNAPPY\0`, then big-endian length-prefixed raw blocks). protocol/snappy.ts reads both; snappy (the npm
 * package) writes raw.
 * LZ4 is the LZ4 frame format (KIP-57 fixed Kafka's header checksum for magic >= 1), decoded by protocol/lz4.ts and
 * encoded by lz4-napi.
 * zstd is read by fzstd and written by zstd's own library built to WebAssembly (protocol/zstd.ts), which a thread
 * loads once before its first zstd compression (`loadCodec`).
 *
 * Decompression is bounded (`maxBytes`): a few kilobytes of gzip or zstd can claim gigabytes, and a hostile batch
 * must cost an error (MESSAGE_TOO_LARGE), not the node's memory. gzip is bounded by zlib, snappy by its length
 * preambles, lz4 as it decodes, zstd by its frame and block headers and a running count. The broker bounds a
 * produced or stored batch by `inflationLimit(max.message.bytes)`; client-side tools by MAX_DECOMPRESSED_BYTES.
 * LZ4 (like Kafka's KafkaLZ4BlockInputStream) reads the first frame only; bytes after its end mark are ignored.
 */
import { createRequire } from 'node:module'
import { gunzipSync, gzipSync } from 'node:zlib'
import { KafkaError, ErrorCode } from './errors.js'
import { decodeLz4Frame, type Inflated } from './lz4.js'
import { decodeSnappy, snappyLength } from './snappy.js'
import { loadZstd, zstdCompress, zstdLoaded, ZSTD_LEVELS } from './zstd.js'

const require = createRequire(import.meta.url)
/**
 * The codec libraries, each loaded on its first use rather than with this module: snappy's and lz4-napi's native
 * addons and fzstd took 45 ms of the 90 that a `brook topics` command spent loading its modules, and most processes
 * (the CLI's commands, a node whose producers do not compress with them) never use them.
 */
const libraries: { snappy?: typeof import('snappy'); lz4?: typeof import('lz4-napi'); fzstd?: typeof import('fzstd') } = {}
const snappy = (): typeof import('snappy') => (libraries.snappy ??= require('snappy') as typeof import('snappy'))
const lz4 = (): typeof import('lz4-napi') => (libraries.lz4 ??= require('lz4-napi') as typeof import('lz4-napi'))
const fzstd = (): typeof import('fzstd') => (libraries.fzstd ??= require('fzstd') as typeof import('fzstd'))

export const Compression = { none: 0, gzip: 1, snappy: 2, lz4: 3, zstd: 4 } as const
export type CompressionName = keyof typeof Compression
export const COMPRESSION_NAMES = Object.keys(Compression) as CompressionName[]

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

/** The most an LZ4 frame says it can inflate to: its block count times its maximum block size (from the BD byte). */
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
 * the zstd frame's content size (else its block bound). Null when the framing does not say. A hint only: the bytes
 * may lie, and `decompress` enforces its bound whatever the hint was.
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
 * 1 GiB; unzstd checks the window first. Null when the headers do not parse (the decoder then fails on them).
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

/**
 * The largest zstd window accepted whatever a topic's bound: 8 MiB (window log 23), the largest window of zstd's
 * levels 1-19 when the compressor is not told the input's size. Streaming compressors are not: librdkafka 2.0 writes
 * a 2 MiB window into the frame of a batch of three records, so a bound of 32x max.message.bytes alone refused every
 * zstd batch it sent to a topic whose max.message.bytes was under 64 KiB. fzstd allocates the window, so this is
 * also the most a frame can make one inflation allocate beyond the topic's bound.
 */
const ZSTD_WINDOW_FLOOR = 8 * 1024 * 1024

function unzstd(data: Buffer, maxBytes: number): Buffer {
  const bound = zstdBound(data)
  if (!bound) throw new Error('the zstd frame headers do not parse')
  // Only the window is checked before inflating: a compressed block's bound (up to 128 KiB) is not what it inflates
  // to, and the stream below stops at maxBytes of real output.
  const windowLimit = Math.max(maxBytes, ZSTD_WINDOW_FLOOR)
  if (bound.window > windowLimit) {
    throw new KafkaError(ErrorCode.MESSAGE_TOO_LARGE, `a zstd frame asks for a window of ${bound.window} bytes, more than ${windowLimit}`)
  }
  const chunks: Uint8Array[] = []
  let total = 0
  const stream = new (fzstd().Decompress)((chunk) => {
    total += chunk.length
    if (total > maxBytes) throw tooLarge(maxBytes)
    chunks.push(chunk)
  })
  stream.push(data, true)
  return Buffer.concat(chunks, total)
}

const EMPTY: Buffer = Buffer.alloc(0)
/**
 * Where snappy and LZ4 output goes when the caller lets it be reused: one buffer per thread (each worker has its
 * own), as large as the largest batch that thread inflated, at most 32x max.message.bytes.
 */
let scratch: Buffer = EMPTY

function intoScratch(inflated: Inflated, options: DecompressOptions): Buffer {
  if (options.reuse) scratch = inflated.bytes
  return inflated.bytes.subarray(0, inflated.length)
}

export interface DecompressOptions {
  /**
   * The result may live in a buffer the next call reuses, so it is valid only until then: for callers that walk the
   * records and keep nothing (produce's checks, ListOffsets), which then allocate nothing per batch for LZ4.
   */
  reuse?: boolean
}

/**
 * Inflates a batch's records (the bytes after its 61-byte header) compressed with `codec`, refusing to produce more
 * than `maxBytes` (KafkaError MESSAGE_TOO_LARGE). Bytes the codec cannot read throw the codec's own Error.
 */
export function decompress(codec: number, data: Buffer, maxBytes = MAX_DECOMPRESSED_BYTES, options: DecompressOptions = {}): Buffer {
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
      return intoScratch(decodeSnappy(data, options.reuse ? scratch : EMPTY, maxBytes), options)
    case Compression.lz4:
      return intoScratch(decodeLz4Frame(data, options.reuse ? scratch : EMPTY, maxBytes), options)
    case Compression.zstd:
      return unzstd(data, maxBytes)
    default:
      throw new KafkaError(ErrorCode.INVALID_RECORD, `unknown compression codec ${codec}`)
  }
}

/**
 * Compresses `data` with `codec` (Compression). `level` is the codec's level, as a topic's KIP-390 configs give it:
 * gzip's 1-9, or -1 for zlib's default (compression.gzip.level); zstd's -131072 to 22 (compression.zstd.level, default
 * 3); snappy and lz4 have one level here and ignore it. Errors: unknown codecs; zstd before this thread loaded its
 * compressor (`loadCodec`).
 */
export function compress(codec: number, data: Buffer, level?: number): Buffer {
  switch (codec) {
    case Compression.none:
      return data
    case Compression.gzip:
      return gzipSync(data, { level: level ?? -1 })
    case Compression.snappy:
      return snappy().compressSync(data)
    case Compression.lz4:
      return lz4().compressFrameSync(data)
    case Compression.zstd:
      return zstdCompress(data, level ?? ZSTD_LEVELS.default)
    default:
      throw new Error(`compressing with codec ${codec} is not supported`)
  }
}

/** Whether `compress` may be called with `codec` on this thread now (zstd's compressor loads once, `loadCodec`). */
export function codecLoaded(codec: number): boolean {
  return codec !== Compression.zstd || zstdLoaded()
}

/** Readies `codec`'s compressor on this thread before `compress` is called with it (zstd's loads once; the rest need nothing). */
export async function loadCodec(codec: number): Promise<void> {
  if (codec === Compression.zstd) await loadZstd()
}
