/**
 * The compression codecs kafkajs 2.2.4 leaves out (it reads and writes gzip only, and fails a fetch holding a snappy,
 * lz4 or zstd batch, saying the codec is missing), registered with its CompressionCodecs so that a
 * pipeline reads topics whatever their producers or their compression.type chose: Java producers with
 * compression.type=lz4 or zstd, librdkafka's snappy, a Brook or Kafka topic that recompresses.
 *
 *   snappy   raw snappy as librdkafka sends it, or xerial's stream format as Java clients send it
 *            (`\x82SNAPPY\0`, two int32 versions, then big-endian length-prefixed raw blocks); written raw
 *   lz4      the LZ4 frame format (KIP-57), read and written by lz4-napi
 *   zstd     read by fzstd; written by zstd's own library built to WebAssembly (@bokuweb/zstd-wasm),
 *            instantiated on the first zstd batch a producer writes, at zstd's default level 3
 *
 * The npm packages are the broker's own dependencies; the processor imports none of Brook's folders (it runs on
 * kafkajs against any Kafka), so it has this small registration of its own.
 */
import { createRequire } from 'node:module'
import kafkajs from 'kafkajs'
import type { compress as ZstdCompress } from '@bokuweb/zstd-wasm'
import type { CompressionName } from './compression-names.js'

const { CompressionCodecs, CompressionTypes } = kafkajs

const require = createRequire(import.meta.url)
/** The codec libraries, each loaded on its first batch: a pipeline that meets no such batch never loads their addons. */
const libraries: { snappy?: typeof import('snappy'); lz4?: typeof import('lz4-napi'); fzstd?: typeof import('fzstd') } = {}
const snappy = (): typeof import('snappy') => (libraries.snappy ??= require('snappy') as typeof import('snappy'))
const lz4 = (): typeof import('lz4-napi') => (libraries.lz4 ??= require('lz4-napi') as typeof import('lz4-napi'))
const unzstd = (data: Uint8Array): Uint8Array => (libraries.fzstd ??= require('fzstd') as typeof import('fzstd')).decompress(data)

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])
/** The magic and the two int32 versions before xerial's first block. */
const XERIAL_HEADER_BYTES = 16

/**
 * Inflates a snappy payload in either framing. Errors: snappy's own, or a plain Error for a xerial block that runs
 * past the payload.
 */
export function unsnappy(data: Buffer): Buffer {
  if (data.length < XERIAL_HEADER_BYTES || !data.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) return snappy().uncompressSync(data) as Buffer
  const blocks: Buffer[] = []
  for (let at = XERIAL_HEADER_BYTES; at < data.length; ) {
    const size = data.readInt32BE(at)
    at += 4
    if (size < 0 || at + size > data.length) throw new Error(`a xerial snappy block of ${size} bytes runs past the payload`)
    blocks.push(snappy().uncompressSync(data.subarray(at, at + size)) as Buffer)
    at += size
  }
  return Buffer.concat(blocks)
}

/** The codecs a pipeline writes with (RunOptions.compressionType, one per COMPRESSION_NAMES), as kafkajs numbers them. */
export const COMPRESSION_TYPES = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
} as const satisfies Record<CompressionName, number>

let zstd: Promise<typeof ZstdCompress> | null = null

/** The zstd compressor, instantiated on first use (a failed load is tried again on the next batch). */
function zstdCompressor(): Promise<typeof ZstdCompress> {
  zstd ??= import('@bokuweb/zstd-wasm')
    .then(async ({ init, compress }) => {
      await init()
      return compress
    })
    .catch((error: unknown) => {
      zstd = null
      throw error
    })
  return zstd
}

let registered = false

/** Registers snappy, lz4 and zstd with kafkajs's CompressionCodecs, once per process (it is kafkajs's global table). */
export function registerCodecs(): void {
  if (registered) return
  registered = true
  // kafkajs's codec interface: a factory of { compress(encoder: its Encoder, bytes in .buffer), decompress(bytes) }.
  const codec = (compress: (data: Buffer) => Buffer | Promise<Buffer>, decompress: (data: Buffer) => Buffer) => () => ({
    compress: async (encoder: { buffer: Buffer }) => compress(encoder.buffer),
    decompress: async (data: Buffer) => decompress(data),
  })
  const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  CompressionCodecs[CompressionTypes.Snappy] = codec((data) => snappy().compressSync(data) as Buffer, unsnappy)
  CompressionCodecs[CompressionTypes.LZ4] = codec(
    (data) => lz4().compressFrameSync(data),
    (data) => lz4().decompressFrameSync(data),
  )
  CompressionCodecs[CompressionTypes.ZSTD] = codec(
    async (data) => asBuffer((await zstdCompressor())(data, 3)),
    (data) => asBuffer(unzstd(data)),
  )
}
