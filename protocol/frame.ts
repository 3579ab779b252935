/**
 * Frames: a 4-byte big-endian size, then a header, then the body.
 *
 *   request  = size:int32 | RequestHeader (v1; v2 when the API version is flexible) | body
 *   response = size:int32 | ResponseHeader (v0; v1 when flexible)               | body
 *
 * The exception (ApiVersionsResponse.json, KIP-511): an ApiVersions response always uses response header v0, even
 * for flexible versions, so a client can read it whatever version it asked for.
 */
import { codecFor } from './codec.js'
import { Reader } from './reader.js'
import { Writer } from './writer.js'
import { inRange } from './versions.js'
import type { ApiSpec } from './schema.js'
import { requestHeader, type RequestHeader } from './messages/request-header.js'
import { responseHeader } from './messages/response-header.js'

export const API_VERSIONS_KEY = 18

export function requestHeaderVersion(api: ApiSpec | undefined, version: number): number {
  return api && inRange(api.request.flexibleVersions, version) ? 2 : 1
}

export function responseHeaderVersion(api: ApiSpec, version: number): number {
  if (api.apiKey === API_VERSIONS_KEY) return 0
  return inRange(api.response.flexibleVersions, version) ? 1 : 0
}

/** Reads the request header; `lookup` says which API the key names (undefined when we do not know it). */
export function decodeRequestHeader(reader: Reader, lookup: (apiKey: number) => ApiSpec | undefined): RequestHeader {
  const apiKey = reader.buffer.readInt16BE(reader.offset)
  const version = reader.buffer.readInt16BE(reader.offset + 2)
  const api = lookup(apiKey)
  const flexibleKnown = api !== undefined && inRange(api.request.validVersions, version)
  return codecFor<RequestHeader>(requestHeader, requestHeaderVersion(flexibleKnown ? api : undefined, version)).decode(
    reader,
  )
}

function framed(writer: Writer): Buffer[] {
  const chunks = writer.buffers()
  const size = Buffer.allocUnsafe(4)
  size.writeInt32BE(writer.length)
  return [size, ...chunks]
}

export function encodeRequestFrame<T>(
  api: ApiSpec,
  version: number,
  correlationId: number,
  clientId: string | null,
  body: T,
): Buffer[] {
  const writer = new Writer()
  codecFor<RequestHeader>(requestHeader, requestHeaderVersion(api, version)).encode(writer, {
    requestApiKey: api.apiKey,
    requestApiVersion: version,
    correlationId,
    clientId,
  })
  codecFor<T>(api.request, version).encode(writer, body)
  return framed(writer)
}

export function encodeResponseFrame<T>(api: ApiSpec, version: number, correlationId: number, body: T): Buffer[] {
  const writer = new Writer()
  codecFor(responseHeader, responseHeaderVersion(api, version)).encode(writer, { correlationId })
  codecFor<T>(api.response, version).encode(writer, body)
  return framed(writer)
}

/** Decodes a response frame's payload (without the size prefix). */
export function decodeResponseFrame<T>(api: ApiSpec, version: number, payload: Buffer): { correlationId: number; body: T } {
  const reader = new Reader(payload)
  const header = codecFor<{ correlationId: number }>(responseHeader, responseHeaderVersion(api, version)).decode(reader)
  return { correlationId: header.correlationId, body: codecFor<T>(api.response, version).decode(reader) }
}
