/**
 * zstd compression (RFC 8878), for the batches Brook writes: a topic's `compression.type=zstd`, compaction of zstd
 * batches, `brook produce --compression zstd`. The compressor is zstd's own C library compiled to WebAssembly
 * (@bokuweb/zstd-wasm), so it installs from npm alone on every platform. Decompression stays with fzstd
 * (compression.ts), which Brook bounds as it decodes.
 *
 * The WebAssembly module is instantiated on first need, not at import (a few milliseconds, off the event loop's
 * critical path, and a few MB that processes which never write zstd do not take): every thread that compresses with
 * zstd awaits `loadZstd()` once before its first `zstdCompress` (the broker's batch workers before a task that writes
 * zstd, the CLI's producer before it starts). `zstdCompress` is synchronous after that, as the other codecs are.
 *
 * The frames carry their content size and, for a batch, a window no larger than it (zstd sizes the window to the
 * input), so compression.ts's window bound and size hint accept them, and so do librdkafka's and Java's readers.
 */
import type { compress as Compress } from '@bokuweb/zstd-wasm'
import { ErrorCode, KafkaError } from './errors.js'

/** KIP-390's compression.zstd.level range and default (zstd's ZSTD_minCLevel, ZSTD_MAX_CLEVEL, ZSTD_CLEVEL_DEFAULT). */
export const ZSTD_LEVELS = { min: -131072, max: 22, default: 3 } as const

/**
 * The most `zstdCompress` takes at once. zstd's WebAssembly heap holds at most 2 GiB for the input, the output and the
 * level's tables (about 650 MB at level 22 for an input this large), and an input that did not fit made the compressor
 * spin instead of failing (1.1 GB at level 3 had not returned after 100 s). A batch inflates to 32x its topic's
 * max.message.bytes at most (compression.ts), so only a topic allowing batches above 8 MB can reach this.
 */
export const ZSTD_MAX_INPUT_BYTES = 256 * 1024 * 1024

let compressor: typeof Compress | null = null
let loading: Promise<void> | null = null

/**
 * Instantiates the compressor for this thread, once; later calls return the same promise. Rejects with the loader's
 * error (and a later call tries again).
 */
export function loadZstd(): Promise<void> {
  loading ??= import('@bokuweb/zstd-wasm')
    .then(async ({ init, compress }) => {
      await init()
      compressor = compress
    })
    .catch((error: unknown) => {
      loading = null
      throw error
    })
  return loading
}

/** Whether `zstdCompress` may be called on this thread. */
export function zstdLoaded(): boolean {
  return compressor !== null
}

/**
 * One zstd frame holding `data`, at `level` (ZSTD_LEVELS; 0 is zstd's default). Errors: KafkaError
 * MESSAGE_TOO_LARGE for more than ZSTD_MAX_INPUT_BYTES; a plain Error when this thread has not loaded the compressor
 * (`loadZstd`); zstd's own.
 */
export function zstdCompress(data: Uint8Array, level: number = ZSTD_LEVELS.default): Buffer {
  if (data.length > ZSTD_MAX_INPUT_BYTES) {
    throw new KafkaError(ErrorCode.MESSAGE_TOO_LARGE, `${data.length} bytes of records are more than Brook compresses with zstd at once (${ZSTD_MAX_INPUT_BYTES})`)
  }
  if (compressor === null) throw new Error('the zstd compressor is not loaded on this thread (await loadZstd() first)')
  const frame = compressor(data, level)
  return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength)
}
