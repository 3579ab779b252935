/**
 * Writes `protocol/messages/*.ts` from Apache Kafka's message JSON.
 *
 *   npm run codegen -- <spec dir>        (default: ../shared/reference/kafka-message-specs)
 *
 * The output is committed and reviewed like any code; the build never reads the JSON. What is generated is the list
 * below: add an API here, run the generator, then register a handler for it (see protocol/README.md). Kafka's
 * `about` prose is not carried over.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseRange, type ParsedRange } from '../versions.js'
import { PRIMITIVES } from '../schema.js'

/** Request/response pairs, by API name as the spec files spell it. */
export const GENERATED_APIS = [
  'Produce',
  'Fetch',
  'ListOffsets',
  'Metadata',
  'OffsetCommit',
  'OffsetFetch',
  'FindCoordinator',
  'JoinGroup',
  'Heartbeat',
  'LeaveGroup',
  'SyncGroup',
  'DescribeGroups',
  'ListGroups',
  'ApiVersions',
  'CreateTopics',
  'DeleteTopics',
  'DeleteRecords',
  'DescribeConfigs',
  'AlterConfigs',
  'CreatePartitions',
  'DeleteGroups',
  'IncrementalAlterConfigs',
  'OffsetDelete',
  'DescribeCluster',
  'InitProducerId',
  'AddPartitionsToTxn',
  'AddOffsetsToTxn',
  'EndTxn',
  'WriteTxnMarkers',
  'TxnOffsetCommit',
  'DescribeProducers',
  'DescribeTransactions',
  'ListTransactions',
  'OffsetForLeaderEpoch',
  'Vote',
  'BeginQuorumEpoch',
  'EndQuorumEpoch',
  'DescribeQuorum',
  'AlterPartition',
  'FetchSnapshot',
  'BrokerRegistration',
  'BrokerHeartbeat',
  'AllocateProducerIds',
  'ElectLeaders',
  'AlterPartitionReassignments',
  'ListPartitionReassignments',
  'UnregisterBroker',
  'DescribeLogDirs',
  'DescribeAcls',
  'CreateAcls',
  'DeleteAcls',
  'DescribeTopicPartitions',
  'SaslHandshake',
  'SaslAuthenticate',
] as const

/** Single messages: headers, and the record formats of Kafka's internal topics. */
export const GENERATED_DATA = [
  'RequestHeader',
  'ResponseHeader',
  'ConsumerProtocolSubscription',
  'ConsumerProtocolAssignment',
  'internal/group-coordinator/OffsetCommitKey',
  'internal/group-coordinator/OffsetCommitValue',
  'internal/group-coordinator/GroupMetadataKey',
  'internal/group-coordinator/GroupMetadataValue',
  'internal/transaction-coordinator/TransactionLogKey',
  'internal/transaction-coordinator/TransactionLogValue',
  'internal/metadata/RegisterBrokerRecord',
  'internal/metadata/UnregisterBrokerRecord',
  'internal/metadata/TopicRecord',
  'internal/metadata/PartitionRecord',
  'internal/metadata/ConfigRecord',
  'internal/metadata/PartitionChangeRecord',
  'internal/metadata/FenceBrokerRecord',
  'internal/metadata/UnfenceBrokerRecord',
  'internal/metadata/RemoveTopicRecord',
  'internal/metadata/FeatureLevelRecord',
  'internal/metadata/ProducerIdsRecord',
  'internal/metadata/NoOpRecord',
] as const

export interface JsonField {
  name: string
  type: string
  versions: string
  nullableVersions?: string
  taggedVersions?: string
  tag?: number
  flexibleVersions?: string
  default?: string | number | boolean
  ignorable?: boolean
  fields?: JsonField[]
}

export interface JsonMessage {
  apiKey?: number
  type: string
  name: string
  validVersions: string
  flexibleVersions: string
  fields: JsonField[]
  commonStructs?: { name: string; versions: string; fields: JsonField[] }[]
}

/** Kafka's JSON allows `//` comments; strip them outside strings. */
export function readSpec(file: string): JsonMessage {
  const text = readFileSync(file, 'utf8')
  let out = ''
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (inString) {
      out += c
      if (c === '\\') out += text[++i] ?? ''
      else if (c === '"') inString = false
    } else if (c === '"') {
      inString = true
      out += c
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++
      out += '\n'
    } else out += c
  }
  return JSON.parse(out) as JsonMessage
}

/**
 * Versions newer than the reference specs, added by hand in the spec's own terms: each entry rewrites a parsed spec
 * file (by message name) before it is generated from, and the cross-check (test/protocol/spec-cross-check.test.ts)
 * compares our definitions with the rewritten spec, so the versions the reference has are still checked against it.
 */
export const SPEC_ADDITIONS: Readonly<Record<string, (spec: JsonMessage) => JsonMessage>> = {
  // Kafka 4.0's VoteRequest v2 (KIP-996, pre-vote): a PreVote flag after LastOffset in each partition. (v2 also
  // renames CandidateEpoch/CandidateId to ReplicaEpoch/ReplicaId, which does not change the wire; the v0-1 names
  // are kept.)
  VoteRequest: (spec) => ({
    ...spec,
    validVersions: '0-2',
    fields: spec.fields.map((topics) =>
      topics.name !== 'Topics'
        ? topics
        : {
            ...topics,
            fields: topics.fields!.map((partitions) =>
              partitions.name !== 'Partitions'
                ? partitions
                : { ...partitions, fields: [...partitions.fields!, { name: 'PreVote', type: 'bool', versions: '2+' }] },
            ),
          },
    ),
  }),
  // VoteResponse v2 answers pre-votes; its fields are v1's.
  VoteResponse: (spec) => ({ ...spec, validVersions: '0-2' }),
}

/** A spec file by its path under the spec folder without `.json` (`FetchRequest`, `internal/metadata/TopicRecord`), with SPEC_ADDITIONS applied. */
export function loadSpec(specDir: string, path: string): JsonMessage {
  const spec = readSpec(join(specDir, `${path}.json`))
  return SPEC_ADDITIONS[spec.name]?.(spec) ?? spec
}

export const lowerCamel = (name: string): string => name[0]!.toLowerCase() + name.slice(1)
export const kebab = (name: string): string => name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase()

/** Inlines commonStructs so every struct field carries its own `fields`. */
export function resolveFields(message: JsonMessage): JsonField[] {
  const common = new Map((message.commonStructs ?? []).map((s) => [s.name, s.fields]))
  const resolve = (fields: JsonField[]): JsonField[] =>
    fields.map((given) => {
      // A tagged-only field may leave out `versions`: it exists in its tagged versions (TransactionLogValue).
      const tagged = given.versions === undefined && given.taggedVersions !== undefined ? { ...given, versions: given.taggedVersions } : given
      // Some files spell a tag as a string ("tag": "0", RegisterBrokerRecord, BrokerHeartbeatRequest).
      const field = tagged.tag === undefined ? tagged : { ...tagged, tag: Number(tagged.tag) }
      const element = field.type.startsWith('[]') ? field.type.slice(2) : field.type
      if (PRIMITIVES.has(element)) return field
      const members = field.fields ?? common.get(element)
      if (!members) throw new Error(`${message.name}.${field.name}: unknown struct ${element}`)
      return { ...field, fields: resolve(members) }
    })
  return resolve(message.fields)
}

/** The spec's default, as the TypeScript value the codec uses. */
export function parseDefault(field: JsonField): string | number | bigint | boolean | null | undefined {
  const raw = field.default
  if (raw === undefined) return undefined
  if (raw === 'null') return null
  if (field.type === 'bool') return raw === true || raw === 'true'
  if (field.type === 'string') return String(raw)
  if (field.type === 'int64') return BigInt(raw)
  if (PRIMITIVES.has(field.type)) return Number(raw)
  return undefined
}

function literal(value: string | number | bigint | boolean | null): string {
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'string') return `'${value.replace(/'/g, "\\'")}'`
  return String(value)
}

function fieldLines(fields: JsonField[], indent: string): string[] {
  const lines: string[] = []
  for (const field of fields) {
    const parts = [`name: '${lowerCamel(field.name)}'`, `type: '${field.type}'`, `versions: '${field.versions}'`]
    if (field.nullableVersions) parts.push(`nullableVersions: '${field.nullableVersions}'`)
    if (field.taggedVersions) parts.push(`taggedVersions: '${field.taggedVersions}'`, `tag: ${field.tag}`)
    if (field.flexibleVersions) parts.push(`flexibleVersions: '${field.flexibleVersions}'`)
    const def = parseDefault(field)
    if (def !== undefined) parts.push(`default: ${literal(def)}`)
    if (field.ignorable) parts.push('ignorable: true')
    if (field.fields) {
      lines.push(`${indent}{ ${parts.join(', ')}, fields: [`)
      lines.push(...fieldLines(field.fields, indent + '  '))
      lines.push(`${indent}] },`)
    } else lines.push(`${indent}{ ${parts.join(', ')} },`)
  }
  return lines
}

function messageLiteral(message: JsonMessage, fields: JsonField[], indent: string): string[] {
  const head = [`name: '${message.name}'`, `type: '${message.type}'`]
  if (message.apiKey !== undefined) head.push(`apiKey: ${message.apiKey}`)
  head.push(`validVersions: '${message.validVersions}'`, `flexibleVersions: '${message.flexibleVersions}'`)
  return [`${indent}${head.join(', ')},`, `${indent}fields: [`, ...fieldLines(fields, indent + '  '), `${indent}],`]
}

const intersect = (a: ParsedRange, b: ParsedRange): ParsedRange => ({
  min: Math.max(a.min, b.min),
  max: Math.min(a.max, b.max),
})

const TS_TYPES: Record<string, string> = {
  bool: 'boolean',
  int8: 'number',
  int16: 'number',
  uint16: 'number',
  int32: 'number',
  uint32: 'number',
  float64: 'number',
  int64: 'bigint',
  uuid: 'string',
  string: 'string',
  bytes: 'Buffer',
}

/**
 * TypeScript interfaces for a message. Decoded messages (requests) have every field, filled with its default where
 * the version lacks it. Messages we build (responses, data) may leave out a field that has a default, is tagged, or
 * is missing from some version.
 */
function interfaces(message: JsonMessage, fields: JsonField[], building: boolean, seen: Map<string, string>): string[] {
  const out: string[] = []
  const emit = (name: string, members: JsonField[], within: ParsedRange): void => {
    const lines = [`export interface ${name} {`]
    for (const field of members) {
      const element = field.type.startsWith('[]') ? field.type.slice(2) : field.type
      let ts: string
      if (element === 'records') ts = building ? 'Buffer | readonly Buffer[]' : 'Buffer'
      else if (PRIMITIVES.has(element)) ts = TS_TYPES[element]!
      else {
        // Predictable names: the message name, then the spec's struct name (unless it already starts with it).
        ts = element.startsWith(message.name) ? element : `${message.name}${element}`
        // A common struct used by two fields (AddPartitionsToTxn's v3-and-below and v4+ topics) is one interface.
        const shape = JSON.stringify(field.fields)
        const earlier = seen.get(ts)
        if (earlier !== undefined && earlier !== shape) throw new Error(`${message.name}: two structs would be named ${ts}`)
        if (earlier === undefined) {
          seen.set(ts, shape)
          emit(ts, field.fields!, intersect(within, parseRange(field.versions)))
        }
      }
      if (field.type.startsWith('[]')) ts = `${ts}[]`
      if (field.nullableVersions || (element === 'records' && field.default === undefined)) ts = `${ts} | null`
      const range = parseRange(field.versions)
      const optional =
        building &&
        (field.default !== undefined ||
          field.taggedVersions !== undefined ||
          range.min > within.min ||
          range.max < within.max)
      lines.push(`  ${lowerCamel(field.name)}${optional ? '?' : ''}: ${ts}`)
    }
    lines.push('}')
    out.unshift(...lines, '')
  }
  emit(message.name, fields, parseRange(message.validVersions))
  return out
}

function header(sources: string[]): string[] {
  return [
    `// Generated by protocol/codegen/generate.ts from Apache Kafka's ${sources.join(' and ')}.`,
    '// Regenerate with `npm run codegen`; review changes like code.',
  ]
}

export function generateApi(specDir: string, api: string): string {
  const request = loadSpec(specDir, `${api}Request`)
  const response = loadSpec(specDir, `${api}Response`)
  const requestFields = resolveFields(request)
  const responseFields = resolveFields(response)
  const names = new Map<string, string>()
  return [
    ...header([`${api}Request.json`, `${api}Response.json`]),
    "import type { ApiSpec } from '../schema.js'",
    '',
    `export const ${lowerCamel(api)} = {`,
    `  apiKey: ${request.apiKey},`,
    `  name: '${api}',`,
    '  request: {',
    ...messageLiteral(request, requestFields, '    '),
    '  },',
    '  response: {',
    ...messageLiteral(response, responseFields, '    '),
    '  },',
    '} as const satisfies ApiSpec',
    '',
    ...interfaces(request, requestFields, false, names),
    ...interfaces(response, responseFields, true, names),
  ].join('\n')
}

export function generateData(specDir: string, path: string): string {
  const message = loadSpec(specDir, path)
  const fields = resolveFields(message)
  const depth = path.split('/').length - 1
  return [
    ...header([`${path.split('/').pop()}.json`]),
    `import type { MessageSpec } from '${'../'.repeat(depth + 1)}schema.js'`,
    '',
    `export const ${lowerCamel(message.name)} = {`,
    ...messageLiteral(message, fields, '  '),
    '} as const satisfies MessageSpec',
    '',
    // Data messages are both decoded (headers, stored records) and built, so their types follow the building rule.
    ...interfaces(message, fields, true, new Map()),
  ].join('\n')
}

function main(): void {
  const here = dirname(fileURLToPath(import.meta.url))
  const root = resolve(here, '../../..')
  const specDir = resolve(process.argv[2] ?? join(root, '../shared/reference/kafka-message-specs'))
  const outDir = join(root, 'protocol/messages')
  for (const api of GENERATED_APIS) writeFileSync(join(outDir, `${kebab(api)}.ts`), generateApi(specDir, api))
  for (const path of GENERATED_DATA) {
    const parts = path.split('/')
    const file = join(outDir, ...parts.slice(0, -1), `${kebab(parts.at(-1)!)}.ts`)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, generateData(specDir, path))
  }
  const index = [
    ...header(['message JSON']),
    ...GENERATED_APIS.map((api) => `export * from './${kebab(api)}.js'`),
    '',
  ]
  writeFileSync(join(outDir, 'index.ts'), index.join('\n'))
  console.log(`wrote ${GENERATED_APIS.length} APIs and ${GENERATED_DATA.length} data messages to ${outDir}`)
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main()
