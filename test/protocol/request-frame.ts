/**
 * Request-frame helpers shared by the golden-frame and fuzz tests: decode a whole frame the way the broker's
 * connection does (header, then body), and encode a decoded frame back to bytes, header tags included.
 */
import { codecFor } from '../../protocol/codec.js'
import { decodeRequestHeader, requestHeaderVersion } from '../../protocol/frame.js'
import { Reader } from '../../protocol/reader.js'
import { Writer } from '../../protocol/writer.js'
import type { ApiSpec } from '../../protocol/schema.js'
import { requestHeader, type RequestHeader } from '../../protocol/messages/request-header.js'
import * as messages from '../../protocol/messages/index.js'

export const API_BY_KEY: ReadonlyMap<number, ApiSpec> = new Map(
  Object.values(messages as Record<string, unknown>)
    .filter((value): value is ApiSpec => typeof value === 'object' && value !== null && 'apiKey' in value && 'request' in value)
    .map((api) => [api.apiKey, api]),
)

export const lookupApi = (apiKey: number): ApiSpec | undefined => API_BY_KEY.get(apiKey)

export interface DecodedFrame {
  readonly api: ApiSpec
  readonly header: RequestHeader
  readonly body: any
  /** Bytes after the body that nothing read (a correct decode leaves none). */
  readonly leftover: number
}

/** Decodes `size | header | body`; throws DecodeError/RangeError on what it cannot read. */
export function decodeRequestFrame(frame: Buffer): DecodedFrame {
  const size = frame.readInt32BE(0)
  const reader = new Reader(frame, 4, Math.min(frame.length, 4 + Math.max(size, 0)))
  const header = decodeRequestHeader(reader, lookupApi)
  const api = lookupApi(header.requestApiKey)
  if (!api) throw new RangeError(`unknown API key ${header.requestApiKey}`)
  const body = codecFor(api.request, header.requestApiVersion).decode(reader)
  return { api, header, body, leftover: reader.remaining }
}

/** Encodes a decoded frame back to `size | header | body` with our codec. */
export function encodeRequestFrame(api: ApiSpec, header: RequestHeader, body: unknown): Buffer {
  const writer = new Writer()
  codecFor(requestHeader, requestHeaderVersion(api, header.requestApiVersion)).encode(writer, header)
  codecFor(api.request, header.requestApiVersion).encode(writer, body)
  const payload = writer.toBuffer()
  const size = Buffer.alloc(4)
  size.writeInt32BE(payload.length)
  return Buffer.concat([size, payload])
}
