/**
 * Snappy (format_description.txt of google/snappy) decoded in JavaScript into a buffer the caller keeps, for the
 * reason protocol/lz4.ts gives: the native decoder's fresh buffer per batch cost more in garbage collection than the
 * decoding. Both framings Kafka clients send are read:
 *
 *   raw (librdkafka)   = preamble (uncompressed length, varint) | elements...
 *   xerial (Java)      = "\x82SNAPPY\0" | version i32 | compatible i32 | (length i32 BE | raw block)...
 *   element            = literal (tag 00, length in the tag or 1-4 more bytes) | copy (tag 01/10/11: length and an
 *                        offset of 11, 16 or 32 bits into what is already decoded)
 *
 * A block must decode to exactly its preamble's length, every copy must reach back into the block's own output (as
 * the reference decoder demands), and nothing may be cut short.
 */
import { ErrorCode, KafkaError } from './errors.js'
import type { Inflated } from './lz4.js'

export const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])
const XERIAL_HEADER = 16

function corrupt(message: string): Error {
  return new Error(`snappy: ${message}`)
}

function tooLarge(maxBytes: number): KafkaError {
  return new KafkaError(ErrorCode.MESSAGE_TOO_LARGE, `a compressed record batch inflates to more than ${maxBytes} bytes`)
}

/** A raw block's preamble: its uncompressed length, and where its elements start; null when malformed. */
export function snappyPreamble(block: Uint8Array, from = 0, to = block.length): { length: number; start: number } | null {
  let length = 0
  for (let i = 0, at = from; i < 5 && at < to; i++, at++) {
    length += (block[at]! & 0x7f) * 2 ** (7 * i)
    if ((block[at]! & 0x80) === 0) return length <= 0xffffffff ? { length, start: at + 1 } : null
  }
  return null
}

function isXerial(data: Buffer): boolean {
  return data.length >= XERIAL_HEADER && data.subarray(0, 8).equals(XERIAL_MAGIC)
}

/**
 * The uncompressed length `data` declares (a raw block's preamble, or the sum of a xerial stream's), or null when
 * its framing does not parse. Cheap: reads preambles only.
 */
export function snappyLength(data: Buffer): number | null {
  if (!isXerial(data)) return snappyPreamble(data)?.length ?? null
  let total = 0
  for (let at = XERIAL_HEADER; at + 4 <= data.length; ) {
    const size = data.readInt32BE(at)
    if (size < 0 || at + 4 + size > data.length) return null
    const preamble = snappyPreamble(data, at + 4, at + 4 + size)
    if (preamble === null) return null
    total += preamble.length
    at += 4 + size
  }
  return total
}

/**
 * Decodes `data` (raw or xerial) into `out`, grown as needed but never past `maxBytes` (MESSAGE_TOO_LARGE beyond);
 * throws an Error naming the fault when it is malformed.
 */
export function decodeSnappy(data: Buffer, out: Buffer, maxBytes: number): Inflated {
  if (!isXerial(data)) return decodeBlock(data, 0, data.length, out, 0, maxBytes)
  let result: Inflated = { bytes: out, length: 0 }
  for (let at = XERIAL_HEADER; at < data.length; ) {
    if (at + 4 > data.length) throw corrupt('xerial block length cut short')
    const size = data.readInt32BE(at)
    // A negative block size would step backwards, and loop for ever on the same block.
    if (size < 0 || at + 4 + size > data.length) throw corrupt(`xerial block of ${size} bytes at ${at} does not fit`)
    result = decodeBlock(data, at + 4, at + 4 + size, result.bytes, result.length, maxBytes)
    at += 4 + size
  }
  return result
}

/** One raw block from src[from, to), appended to out at `start`. */
function decodeBlock(src: Buffer, from: number, to: number, out: Buffer, start: number, maxBytes: number): Inflated {
  const preamble = snappyPreamble(src, from, to)
  if (preamble === null) throw corrupt('bad length preamble')
  const end = start + preamble.length
  if (end > maxBytes) throw tooLarge(maxBytes)
  if (end > out.length) {
    const grown = Buffer.allocUnsafe(Math.min(maxBytes, Math.max(2 * out.length, end)))
    out.copy(grown, 0, 0, start)
    out = grown
  }
  let ip = preamble.start
  let op = start
  while (ip < to) {
    const tag = src[ip++]!
    let length: number
    if ((tag & 3) === 0) {
      length = (tag >>> 2) + 1
      if (length > 60) {
        const extra = length - 60
        if (ip + extra > to) throw corrupt('literal length cut short')
        length = 1
        for (let i = 0; i < extra; i++) length += src[ip + i]! * 2 ** (8 * i)
        ip += extra
      }
      if (ip + length > to || op + length > end) throw corrupt('a literal runs past its block')
      if (length < 16) for (let i = 0; i < length; i++) out[op + i] = src[ip + i]!
      else src.copy(out, op, ip, ip + length)
      ip += length
      op += length
      continue
    }
    let offset: number
    if ((tag & 3) === 1) {
      if (ip + 1 > to) throw corrupt('copy cut short')
      length = ((tag >>> 2) & 7) + 4
      offset = ((tag >>> 5) << 8) | src[ip++]!
    } else if ((tag & 3) === 2) {
      if (ip + 2 > to) throw corrupt('copy cut short')
      length = (tag >>> 2) + 1
      offset = src[ip]! | (src[ip + 1]! << 8)
      ip += 2
    } else {
      if (ip + 4 > to) throw corrupt('copy cut short')
      length = (tag >>> 2) + 1
      offset = (src[ip]! | (src[ip + 1]! << 8) | (src[ip + 2]! << 16) | (src[ip + 3]! << 24)) >>> 0
      ip += 4
    }
    if (offset === 0 || offset > op - start) throw corrupt('a copy reaches before the start of its block')
    if (op + length > end) throw corrupt('a copy runs past the length the block declared')
    if (offset >= length && length >= 16) out.copyWithin(op, op - offset, op - offset + length)
    else for (let i = 0; i < length; i++) out[op + i] = out[op - offset + i]!
    op += length
  }
  if (op !== end) throw corrupt(`the block declared ${preamble.length} bytes but holds ${op - start}`)
  return { bytes: out, length: end }
}
