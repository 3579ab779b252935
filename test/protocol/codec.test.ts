/**
 * The generic codec's edge cases, with expected bytes written by hand from the protocol guide's type table
 * (kafka.apache.org/protocol, "Protocol Primitive Types") and KIP-482 (compact types, tagged fields):
 *
 *   STRING            int16 N, N bytes; null = ffff               COMPACT_STRING  uvarint N+1, N bytes; null = 00
 *   BYTES             int32 N, N bytes; null = ffffffff           COMPACT_BYTES   uvarint N+1
 *   ARRAY             int32 N, N items; null = ffffffff           COMPACT_ARRAY   uvarint N+1
 *   nullable struct   int8 -1 (null) or 1, then the struct
 *   TAGGED_FIELDS     uvarint count, then per field: uvarint tag, uvarint size, size bytes; ascending tags
 *
 * A small example message (in the spirit of Kafka's SimpleExampleMessage.json) exercises every rule; a few real
 * definitions (request header, ApiVersions response) check the header rules.
 */
import { describe, expect, it } from 'vitest'
import { codecFor, encodeToBuffer } from '../../protocol/codec.js'
import { DecodeError, Reader } from '../../protocol/reader.js'
import { encodeResponseFrame } from '../../protocol/frame.js'
import { UNKNOWN_TAGS, type MessageSpec } from '../../protocol/schema.js'
import { requestHeader } from '../../protocol/messages/request-header.js'
import { apiVersions } from '../../protocol/messages/api-versions.js'
import { metadata } from '../../protocol/messages/metadata.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const clean = (s: string): string => s.replace(/\s+/g, '')

const example = {
  name: 'ExampleMessage',
  type: 'data',
  validVersions: '0-2',
  flexibleVersions: '2+',
  fields: [
    { name: 'name', type: 'string', versions: '0+' },
    { name: 'nullableName', type: 'string', versions: '0+', nullableVersions: '1+' },
    { name: 'ids', type: '[]int32', versions: '0+', nullableVersions: '1+' },
    { name: 'payload', type: 'bytes', versions: '1+', nullableVersions: '1+' },
    { name: 'added', type: 'int16', versions: '1+', default: 7 },
    { name: 'child', type: 'Child', versions: '1+', nullableVersions: '1+', fields: [{ name: 'x', type: 'int32', versions: '0+' }] },
    { name: 'taggedLong', type: 'int64', versions: '2+', taggedVersions: '2+', tag: 1, default: -1n },
    { name: 'taggedName', type: 'string', versions: '2+', nullableVersions: '2+', taggedVersions: '2+', tag: 4, default: null },
  ],
} as const satisfies MessageSpec

function decode(version: number, bytes: string): { value: any; left: number } {
  const reader = new Reader(hex(bytes))
  const value = codecFor<any>(example, version).decode(reader)
  return { value, left: reader.remaining }
}

const encode = (version: number, value: unknown): string => encodeToBuffer(example, version, value).toString('hex')

describe('classic (non-flexible) encodings, v0 and v1', () => {
  const v0 = '0002 6162  0001 63  00000002 00000001 00000002'
  it('v0: int16-length strings and an int32-count array', () => {
    expect(decode(0, v0)).toMatchObject({ value: { name: 'ab', nullableName: 'c', ids: [1, 2] }, left: 0 })
    expect(encode(0, { name: 'ab', nullableName: 'c', ids: [1, 2] })).toBe(clean(v0))
  })

  it('v0: fields that only exist from v1 are not on the wire and decode to their defaults', () => {
    expect(decode(0, v0).value).toMatchObject({ added: 7, child: { x: 0 } })
  })

  it('v0: null is refused where the version does not allow it', () => {
    expect(() => decode(0, '0002 6162  ffff  00000000')).toThrow(DecodeError)
    expect(() => encode(0, { name: 'ab', nullableName: null, ids: [] })).toThrow(TypeError)
  })

  const v1Nulls = '0002 6162  ffff  ffffffff  ffffffff  0007  ff'
  it('v1: null string, array and bytes are -1 lengths; a null struct is an int8 -1', () => {
    const value = { name: 'ab', nullableName: null, ids: null, payload: null, added: 7, child: null }
    expect(decode(1, v1Nulls)).toEqual({ value: { ...value, taggedLong: -1n, taggedName: null }, left: 0 })
    expect(encode(1, value)).toBe(clean(v1Nulls))
  })

  const v1Present = '0000  0000  00000000  00000002 aabb  0009  01 00000005'
  it('v1: empty values are zero lengths, a present struct is an int8 1 and its fields', () => {
    const value = { name: '', nullableName: '', ids: [], payload: hex('aabb'), added: 9, child: { x: 5 } }
    expect(decode(1, v1Present)).toEqual({ value: { ...value, taggedLong: -1n, taggedName: null }, left: 0 })
    expect(encode(1, value)).toBe(clean(v1Present))
  })

  it('reads a nullable-struct marker other than -1 as present (Kafka tests `< 0`)', () => {
    expect(decode(1, '0000 0000 00000000 00000000 0007 7f 00000005').value.child).toEqual({ x: 5 })
  })
})

describe('compact encodings and tagged fields, v2 (flexible)', () => {
  // name "ab", nullableName null, ids [1], payload aa, added 7, child {x: 5} with its own empty tag section
  const body = '03 6162  00  02 00000001  02 aa  0007  01 00000005 00'

  it('writes compact lengths (N+1, null = 0) and ends every struct with a tag section', () => {
    const value = { name: 'ab', nullableName: null, ids: [1], payload: hex('aa'), added: 7, child: { x: 5 } }
    expect(encode(2, value)).toBe(clean(body + ' 00'))
    expect(decode(2, body + ' 00')).toEqual({ value: { ...value, taggedLong: -1n, taggedName: null }, left: 0 })
  })

  it('does not write tagged fields that hold their default', () => {
    expect(encode(2, { name: 'ab', nullableName: null, ids: [1], payload: hex('aa'), child: { x: 5 }, taggedLong: -1n, taggedName: null })).toBe(
      clean(body + ' 00'),
    )
  })

  const tagged = ' 02  01 08 0000000000000005  04 03 03 6869'
  it('writes set tagged fields in ascending tag order, each as tag, size, value', () => {
    const value = { name: 'ab', nullableName: null, ids: [1], payload: hex('aa'), child: { x: 5 }, taggedName: 'hi', taggedLong: 5n }
    expect(encode(2, value)).toBe(clean(body + tagged))
    expect(decode(2, body + tagged)).toMatchObject({ value: { taggedLong: 5n, taggedName: 'hi' }, left: 0 })
  })

  it('keeps unknown tags as raw bytes and writes them back in tag order among the known ones', () => {
    const withUnknown = body + ' 03  00 02 cafe  01 08 0000000000000005  09 01 ff'
    const { value, left } = decode(2, withUnknown)
    expect(left).toBe(0)
    expect(value.taggedLong).toBe(5n)
    expect(value[UNKNOWN_TAGS].map((u: { tag: number; data: Buffer }) => [u.tag, u.data.toString('hex')])).toEqual([
      [0, 'cafe'],
      [9, 'ff'],
    ])
    expect(encode(2, value)).toBe(clean(withUnknown))
  })

  it('refuses tags out of ascending order, and repeated tags', () => {
    expect(() => decode(2, body + ' 02  04 03 03 6869  01 08 0000000000000005')).toThrow(/out of order/)
    expect(() => decode(2, body + ' 02  01 08 0000000000000005  01 08 0000000000000006')).toThrow(DecodeError)
  })

  it('refuses a known tagged field whose size does not match its value', () => {
    expect(() => decode(2, body + ' 01  01 09 0000000000000005 00')).toThrow(/extra bytes/)
    expect(() => decode(2, body + ' 01  01 04 00000005')).toThrow(DecodeError)
  })

  it('refuses a tagged field that claims more bytes than remain', () => {
    expect(() => decode(2, body + ' 01  07 7f 00')).toThrow(DecodeError)
  })

  it('a compact length of 0 is null, and null is refused where not nullable', () => {
    expect(() => decode(2, '00 00 00 00 0007 ff 00')).toThrow(/not nullable/)
  })
})

describe('lengths beyond the remaining bytes are refused before anything is allocated', () => {
  it.each([
    ['classic array of 2^31-1 int32s', 0, '0000 0000 7fffffff 00000001', /ids of length 2147483647 exceeds/],
    ['classic string of 32767 bytes', 0, '7fff 6162', /name of length 32767 exceeds/],
    ['classic bytes of 10^9', 1, '0000 0000 00000000 3b9aca00 aa', /payload of length 1000000000 exceeds/],
    ['compact array of 2^32-2 items', 2, '01 00 ffffffff0f 00000001', /ids of length 4294967294 exceeds/],
    ['compact string of 2^31 bytes', 2, '8080808008 6162', /name of length 2147483647 exceeds/],
    ['2^31 tagged fields', 2, '01 00 01 00 0007 ff 8080808008 00', /tagged fields of length 2147483648 exceeds/],
  ])('%s', (_, version, bytes, message) => {
    expect(() => decode(version, bytes)).toThrow(DecodeError)
    expect(() => decode(version, bytes)).toThrow(message)
  })
})

describe('a string holds at most 32,767 bytes, in flexible versions too (Kafka\'s generated readers check 0x7fff)', () => {
  const compactString = (length: number): string => {
    // uvarint length+1, then the bytes; written out here rather than with the writer under test.
    let n = length + 1
    let varint = ''
    while (n >= 0x80) {
      varint += ((n & 0x7f) | 0x80).toString(16).padStart(2, '0')
      n = Math.floor(n / 128)
    }
    varint += n.toString(16).padStart(2, '0')
    return varint + '61'.repeat(length)
  }
  const rest = ' 00 00 00 0007 ff 00' // nullableName, ids, payload: null; added 7; child null; no tags

  it('a compact string of 32,767 bytes is read', () => {
    expect(decode(2, compactString(32767) + rest).value.name).toHaveLength(32767)
  })

  it('a compact string of 32,768 bytes is refused although the bytes are there', () => {
    expect(() => decode(2, compactString(32768) + rest)).toThrow(DecodeError)
    expect(() => decode(2, compactString(32768) + rest)).toThrow(/name of 32768 bytes is longer than a string may be/)
  })

  it('writing a string of 32,768 bytes throws instead of writing a wrong length, in both encodings', () => {
    const name = 'a'.repeat(32768)
    expect(() => encode(0, { name, nullableName: '', ids: [] })).toThrow(/name of 32768 bytes is too long to be encoded/)
    expect(() => encode(2, { name, nullableName: null, ids: null, payload: null, child: null })).toThrow(RangeError)
    expect(encode(0, { name: 'a'.repeat(32767), nullableName: '', ids: [] }).slice(0, 4)).toBe('7fff')
  })
})

describe('request header (RequestHeader.json)', () => {
  it('v1: int16-length client id', () => {
    const bytes = '0003 0006 0000002a 0003 616263'
    const reader = new Reader(hex(bytes))
    expect(codecFor(requestHeader, 1).decode(reader)).toEqual({ requestApiKey: 3, requestApiVersion: 6, correlationId: 42, clientId: 'abc' })
    expect(reader.remaining).toBe(0)
  })

  it('v2: the client id keeps its int16 length ("flexibleVersions": "none"), then a tag section', () => {
    const bytes = '0012 0003 00000001 0003 616263 00'
    const header = { requestApiKey: 18, requestApiVersion: 3, correlationId: 1, clientId: 'abc' }
    expect(encodeToBuffer(requestHeader, 2, header).toString('hex')).toBe(clean(bytes))
    expect(codecFor(requestHeader, 2).decode(new Reader(hex(bytes)))).toEqual(header)
  })

  it('a null client id is an int16 -1 in every version', () => {
    expect(encodeToBuffer(requestHeader, 2, { requestApiKey: 18, requestApiVersion: 3, correlationId: 1, clientId: null }).toString('hex')).toBe(
      clean('0012 0003 00000001 ffff 00'),
    )
  })
})

describe('response frames', () => {
  it('ApiVersions v3 keeps response header v0 although its body is flexible (ApiVersionsResponse.json)', () => {
    const frame = Buffer.concat(
      encodeResponseFrame(apiVersions, 3, 7, { errorCode: 0, apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 3 }], throttleTimeMs: 0 }),
    )
    // size | correlationId (no tag section) | errorCode | compact array of 1 | key, min, max, tags | throttle | tags
    expect(frame.toString('hex')).toBe(clean('00000013  00000007  0000  02 0012 0000 0003 00  00000000  00'))
  })

  it('other flexible responses use response header v1, with its tag section', () => {
    const frame = Buffer.concat(
      encodeResponseFrame(metadata, 9, 7, { throttleTimeMs: 0, brokers: [], clusterId: null, controllerId: 1, topics: [] }),
    )
    // size | correlationId | header tags | throttle | brokers [] | clusterId null | controllerId | topics []
    //   | clusterAuthorizedOperations (v8-10, its default -2^31 as none was given) | tags
    expect(frame.toString('hex')).toBe(clean('00000015  00000007 00  00000000  01  00  00000001  01  80000000  00'))
  })

  it('v0 ApiVersions responses use classic arrays', () => {
    const frame = Buffer.concat(encodeResponseFrame(apiVersions, 0, 7, { errorCode: 35, apiKeys: [{ apiKey: 18, minVersion: 0, maxVersion: 3 }] }))
    expect(frame.toString('hex')).toBe(clean('00000010  00000007  0023  00000001 0012 0000 0003'))
  })
})

describe('codecFor', () => {
  it('refuses a version the message does not have', () => {
    expect(() => codecFor(example, 3)).toThrow(RangeError)
  })

  it('compiles each (message, version) once', () => {
    expect(codecFor(example, 2)).toBe(codecFor(example, 2))
  })
})
