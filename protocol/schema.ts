/**
 * The message schema DSL: Kafka's message JSON, as TypeScript data.
 *
 * A message is an ordered list of fields (field order is wire order). Every field says in which versions it exists,
 * in Kafka's own range syntax, so one definition describes every version; `codec.ts` compiles (message, version)
 * into encode/decode functions. Type names follow the JSON: primitives, `'[]int32'`, `'[]StructName'` or
 * `'StructName'` with `fields`.
 *
 * Definitions in `messages/` are generated from the spec JSON by `codegen/generate.ts` and reviewed like code.
 */
import type { VersionRange } from './versions.js'

export type PrimitiveType =
  | 'bool'
  | 'int8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'float64'
  | 'uuid'
  | 'string'
  | 'bytes'
  | 'records'

export type DefaultValue = number | bigint | boolean | string | null

export interface FieldSpec {
  /** lowerCamel form of the spec's field name. */
  readonly name: string
  readonly type: string
  readonly versions: VersionRange
  readonly nullableVersions?: VersionRange
  readonly taggedVersions?: VersionRange
  readonly tag?: number
  /** Field-level override of the message's flexible versions (the request header's clientId says `'none'`). */
  readonly flexibleVersions?: VersionRange
  readonly default?: DefaultValue
  readonly ignorable?: boolean
  readonly fields?: readonly FieldSpec[]
}

export interface MessageSpec {
  readonly name: string
  /** The API key of a request or response; a metadata record's type in the metadata log. */
  readonly apiKey?: number
  /** `metadata`: a record of the metadata log (`__cluster_metadata`), as Kafka's internal/metadata JSON files. */
  readonly type: 'request' | 'response' | 'header' | 'data' | 'metadata'
  readonly validVersions: VersionRange
  readonly flexibleVersions: VersionRange
  readonly fields: readonly FieldSpec[]
}

export interface ApiSpec {
  readonly apiKey: number
  readonly name: string
  readonly request: MessageSpec
  readonly response: MessageSpec
}

export const PRIMITIVES: ReadonlySet<string> = new Set<PrimitiveType>([
  'bool',
  'int8',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'float64',
  'uuid',
  'string',
  'bytes',
  'records',
])

/** Tagged fields this codec did not know, kept as raw bytes so they survive a decode/encode round trip. */
export interface UnknownTaggedField {
  readonly tag: number
  readonly data: Buffer
}

export const UNKNOWN_TAGS = 'unknownTaggedFields'
