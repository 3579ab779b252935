/**
 * The snappy decoder (protocol/snappy.ts) against blocks written by the snappy npm package (Google's C++ snappy),
 * in the raw framing librdkafka sends and the xerial framing Java clients send, and against hand-written blocks
 * carrying each fault the reference decoder refuses.
 */
import { describe, expect, it } from 'vitest'
import { randomBytes } from 'node:crypto'
import snappy from 'snappy'
import { XERIAL_MAGIC, decodeSnappy, snappyLength } from '../../protocol/snappy.js'
import { KafkaError } from '../../protocol/errors.js'

const EMPTY = Buffer.alloc(0)
const decode = (data: Buffer, maxBytes = 64 * 1024 * 1024): Buffer => {
  const { bytes, length } = decodeSnappy(data, EMPTY, maxBytes)
  return bytes.subarray(0, length)
}

const text = (bytes: number): Buffer =>
  Buffer.from(Array.from({ length: bytes / 40 + 1 }, (_, i) => `{"device":"sensor-${i % 89}","t":${i % 31}}\n`).join('')).subarray(0, bytes)

/** Java's framing: magic, version 1, compatible 1, then each raw block after its big-endian length. */
const xerial = (...blocks: Buffer[]): Buffer =>
  Buffer.concat([
    XERIAL_MAGIC,
    Buffer.from([0, 0, 0, 1, 0, 0, 0, 1]),
    ...blocks.flatMap((block) => {
      const size = Buffer.alloc(4)
      size.writeInt32BE(block.length)
      return [size, block]
    }),
  ])

describe('blocks the snappy library writes decode to what it was given', () => {
  it.each([
    ['empty', Buffer.alloc(0)],
    ['random (literals)', randomBytes(200_000)],
    ['text (copies of every kind)', text(300_000)],
    ['zeros (overlapping copies)', Buffer.alloc(100_000)],
  ])('%s, raw and xerial', (_, input) => {
    const raw = snappy.compressSync(input) as Buffer
    expect(decode(raw).equals(input)).toBe(true)
    expect(snappyLength(raw)).toBe(input.length)
    const halves = [input.subarray(0, input.length >> 1), input.subarray(input.length >> 1)]
    const framed = xerial(...halves.map((half) => snappy.compressSync(half) as Buffer))
    expect(decode(framed).equals(input)).toBe(true)
    expect(snappyLength(framed)).toBe(input.length)
  })
})

describe('what the reference decoder refuses is refused', () => {
  it.each([
    // preamble 5 | literal "ab" (tag 0x04) | copy-1 of 3 bytes back 2 ... made wrong in each case
    ['a copy reaching before the block', Buffer.from([0x05, 0x04, 0x61, 0x62, 0x01, 0x05]), /before the start/],
    ['a copy with offset 0', Buffer.from([0x06, 0x04, 0x61, 0x62, 0x01, 0x00]), /before the start/],
    ['fewer bytes than the preamble declares', Buffer.from([0x05, 0x04, 0x61, 0x62]), /declared 5 bytes but holds 2/],
    ['more bytes than the preamble declares', Buffer.from([0x01, 0x04, 0x61, 0x62]), /runs past/],
    ['a literal cut short', Buffer.from([0x05, 0x10, 0x61]), /runs past/],
    ['a copy cut short', Buffer.from([0x05, 0x04, 0x61, 0x62, 0x02, 0x01]), /cut short/],
    ['a preamble that never ends', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), /preamble/],
  ])('%s', (_, data, message) => {
    expect(() => decode(data)).toThrow(message)
  })

  it('a xerial stream with a negative block length ends (it used to loop for ever)', () => {
    const stream = Buffer.concat([xerial(), Buffer.from([0xff, 0xff, 0xff, 0xfc, 0, 0, 0, 0])])
    expect(() => decode(stream)).toThrow(/does not fit/)
  })

  it('a preamble beyond the bound is MESSAGE_TOO_LARGE before anything is decoded', () => {
    const claim = snappy.compressSync(Buffer.alloc(1 << 20)) as Buffer
    expect(() => decode(claim, 1000)).toThrow(KafkaError)
  })
})
