/**
 * Record keys as strings (runtime/record-keys.ts): whatever it remembers, the string of a key is what `toString`
 * makes of its bytes, for ASCII keys, UTF-8 keys, keys past the length it remembers and keys whose hash another key
 * took; a key seen again is the string it made the first time; bytes that are no UTF-8 are refused (BAD_KEY), since
 * their string would be another key's too.
 */
import { describe, expect, test } from 'vitest'
import { RecordKeys } from '../../processor/runtime/record-keys.js'

describe('record keys', () => {
  test('every key reads as toString reads it, the first time and again', () => {
    const keys = [
      ...Array.from({ length: 2000 }, (_, i) => Buffer.from(`device-${i}`)),
      Buffer.alloc(0),
      Buffer.from('température'),
      Buffer.from('日本語のキー'),
      Buffer.of(0x00),
      Buffer.from('k'.repeat(64)),
      Buffer.from('k'.repeat(65)),
      ...Array.from({ length: 300 }, (_, i) => Buffer.from(Array.from({ length: i % 29 }, (_, j) => (i * 37 + j * 101) & 0x7f))),
    ]
    const strings = new RecordKeys()
    for (let round = 0; round < 2; round++) {
      for (const key of keys) expect(strings.of(Buffer.from(key))).toBe(key.toString())
    }
  })

  test('bytes that are no UTF-8 are refused with BAD_KEY, whatever their length, rather than read as U+FFFD, which two different keys would share', () => {
    const strings = new RecordKeys()
    for (const key of [Buffer.of(0x64, 0xff, 0xfe, 0x00), Buffer.of(0x00, 0x00, 0x00, 0xc8), Buffer.concat([Buffer.from('k'.repeat(70)), Buffer.of(0xc3)])]) {
      expect(() => strings.of(key)).toThrow(expect.objectContaining({ name: 'RecordError', code: 'BAD_KEY' }))
    }
    expect(() => strings.of(Buffer.of(0x00, 0x00, 0x00, 0xc8))).toThrow("the record's key (4 bytes, 0x000000c8) is not UTF-8 text: the processor's keys are strings")
  })

  test('a key seen again is the same string; a key whose hash another took is still its own', () => {
    const strings = new RecordKeys()
    const first = strings.of(Buffer.from('device-7'))
    expect(strings.of(Buffer.from('device-7'))).toBe(first)
    // Two short ASCII keys of one FNV-1a hash: the second is made anew, never taken for the first.
    const [a, b] = collidingPair()
    expect(strings.of(Buffer.from(a))).toBe(a)
    expect(strings.of(Buffer.from(b))).toBe(b)
    expect(strings.of(Buffer.from(a))).toBe(a)
  })
})

/** Two different ASCII strings with the same 32-bit FNV-1a hash. */
function collidingPair(): [string, string] {
  const fnv = (text: string): number => {
    let hash = 0x811c9dc5
    for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
    return hash
  }
  const seen = new Map<number, string>()
  for (let i = 0; ; i++) {
    const text = `k${i.toString(36)}`
    const other = seen.get(fnv(text))
    if (other !== undefined) return [other, text]
    seen.set(fnv(text), text)
  }
}
