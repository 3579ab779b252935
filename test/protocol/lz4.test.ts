/**
 * The LZ4 frame decoder (protocol/lz4.ts) against frames written by lz4-napi (lz4_flex, with and without its
 * checksums) and by kcat (liblz4, in the golden Produce frame), XXH32 against its published test vectors, and the
 * damage a consumer's decoder would refuse, which must be refused here too.
 */
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import lz4 from 'lz4-napi'
import { decodeLz4Frame, xxh32 } from '../../protocol/lz4.js'
import { KafkaError } from '../../protocol/errors.js'

const MESSAGE_TOO_LARGE = 10
const EMPTY = Buffer.alloc(0)

const decode = (frame: Buffer, maxBytes = 64 * 1024 * 1024): Buffer => {
  const { bytes, length } = decodeLz4Frame(frame, EMPTY, maxBytes)
  return bytes.subarray(0, length)
}

/** Sensor-like text: compresses well, with matches of every length and distance. */
const text = (bytes: number): Buffer => {
  const lines: string[] = []
  for (let i = 0, length = 0; length < bytes; i++) {
    const line = `{"device":"sensor-${i % 97}","t":${(20 + (i % 13) / 10).toFixed(1)},"seq":${i}}\n`
    lines.push(line)
    length += line.length
  }
  return Buffer.from(lines.join('')).subarray(0, bytes)
}

/** A frame header for a hand-written body: FLG (version 01 | `flags`), BD 64 KiB, and its checksum byte. */
const header = (flags: number): Buffer => {
  const descriptor = Buffer.from([0x40 | flags, 0x40])
  return Buffer.concat([Buffer.from([0x04, 0x22, 0x4d, 0x18]), descriptor, Buffer.from([(xxh32(descriptor, 0, 2) >>> 8) & 0xff])])
}
const u32 = (value: number): Buffer => {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(value >>> 0)
  return b
}

describe('XXH32', () => {
  it.each([
    ['', 0x02cc5d05],
    ['a', 0x550d7456],
    ['abc', 0x32d153ff],
    ['Nobody inspects the spammish repetition', 0xe2293b2f],
  ])('%j has the published value', (input, expected) => {
    const bytes = Buffer.from(input)
    expect(xxh32(bytes, 0, bytes.length)).toBe(expected)
  })
})

describe('frames lz4-napi writes decode to what it was given', () => {
  it.each([
    ['empty', Buffer.alloc(0)],
    ['one byte', Buffer.from('x')],
    ['random (stored blocks)', randomBytes(300_000)],
    ['text (compressed blocks, several)', text(500_000)],
    ['zeros (long matches)', Buffer.alloc(200_000)],
  ])('%s', (_, input) => {
    expect(decode(lz4.compressFrameSync(input)).equals(input)).toBe(true)
    const checked = lz4.compressFrameSync(input, { contentChecksum: true, blockChecksums: true })
    expect(decode(checked).equals(input)).toBe(true)
  })

  it('checks a content size the frame declares', () => {
    const input = text(5000)
    expect(decode(withContentSize(lz4.compressFrameSync(input), 5000)).equals(input)).toBe(true)
  })

  it('reuses the buffer it is given when it is large enough, and grows it otherwise', () => {
    const frame = lz4.compressFrameSync(text(10_000))
    const out = Buffer.alloc(1 << 20)
    expect(decodeLz4Frame(frame, out, 1 << 20).bytes).toBe(out)
    expect(decodeLz4Frame(frame, Buffer.alloc(16), 1 << 20).bytes.length).toBeGreaterThanOrEqual(10_000)
  })

  it('reads linked blocks, whose matches reach into the previous block', () => {
    // Block 1: literals "abcdefgh". Block 2: one literal "x", then a match 9 back, 8 long ("abcdefgh"), then "!".
    const block1 = Buffer.from([0x80, ...Buffer.from('abcdefgh')])
    const block2 = Buffer.from([0x14, 0x78, 0x09, 0x00, 0x10, 0x21])
    const frame = Buffer.concat([header(0), u32(block1.length), block1, u32(block2.length), block2, u32(0)])
    expect(decode(frame).toString()).toBe('abcdefghxabcdefgh!')
    // The same frame marked independent is refused: its second block reaches outside itself.
    const independent = Buffer.concat([header(0x20), u32(block1.length), block1, u32(block2.length), block2, u32(0)])
    expect(() => decode(independent)).toThrow(/before the start of its window/)
  })
})

/** The same frame with the content-size flag and `size` in its descriptor, the header checksum made right again. */
function withContentSize(frame: Buffer, size: number): Buffer {
  const descriptor = Buffer.alloc(10)
  descriptor[0] = frame[4]! | 0x08
  descriptor[1] = frame[5]!
  descriptor.writeBigUInt64LE(BigInt(size), 2)
  return Buffer.concat([frame.subarray(0, 4), descriptor, Buffer.from([(xxh32(descriptor, 0, 10) >>> 8) & 0xff]), frame.subarray(7)])
}

describe('what a consumer would refuse is refused', () => {
  const good = lz4.compressFrameSync(text(100_000), { contentChecksum: true, blockChecksums: true })
  const damaged = (at: number): Buffer => {
    const copy = Buffer.from(good)
    copy[at]! ^= 0x01
    return copy
  }

  it.each([
    ['a bad magic', () => damaged(0), /bad magic/],
    ['a bad header checksum', () => damaged(6), /header checksum/],
    ['a changed byte inside a block (block checksum)', () => damaged(40), /block checksum|checksum mismatch/],
    ['a cut frame', () => good.subarray(0, good.length - 10), /cut short|checksum/],
    ['a block larger than the frame allows', () => Buffer.concat([header(0x20), u32(70_000), Buffer.alloc(70_000), u32(0)]), /exceeds/],
    ['a match offset of 0', () => Buffer.concat([header(0x20), u32(6), Buffer.from([0x10, 0x61, 0x00, 0x00, 0x00, 0x00]), u32(0)]), /window/],
    ['a block ending in a match', () => Buffer.concat([header(0x20), u32(4), Buffer.from([0x10, 0x61, 0x01, 0x00]), u32(0)]), /end with literals/],
    ['a dictionary', () => Buffer.concat([header(0x21), u32(0)]), /dictionary/],
    ['a content size that differs from the content', () => withContentSize(lz4.compressFrameSync(text(1000)), 999), /declares 999 bytes but holds 1000/],
  ])('%s', (_, frame, message) => {
    expect(() => decode(frame())).toThrow(message)
  })

  it('a frame inflating past the bound is MESSAGE_TOO_LARGE, compressed or stored', () => {
    for (const frame of [lz4.compressFrameSync(Buffer.alloc(1 << 20)), lz4.compressFrameSync(randomBytes(1 << 20))]) {
      let error: unknown
      try {
        decode(frame, 100_000)
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(KafkaError)
      expect((error as KafkaError).code).toBe(MESSAGE_TOO_LARGE)
    }
  })
})
