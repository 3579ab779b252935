/**
 * Our message definitions against Apache Kafka's own message JSON (../shared/reference/kafka-message-specs, relative
 * to the repository): for each definition in protocol/messages and each version that matters — every version the
 * dispatcher advertises for an API, every valid version of headers and data messages — the fields present in that
 * version must match the spec in order, name (lowerCamel), type, nullability, tag, default and field-level
 * flexibleVersions, all the way down the nested structs. Versions newer than the reference specs (codegen's
 * SPEC_ADDITIONS, such as Vote v2) are checked against the spec as those additions rewrite it.
 *
 * The spec folder is reference material beside the repository, not part of it: when it is absent this suite says so
 * and skips, and the build and the other tests do not need it.
 */
import { describe, expect, it } from 'vitest'
import { existsSync, readdirSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import {
  GENERATED_APIS,
  GENERATED_DATA,
  kebab,
  loadSpec,
  lowerCamel,
  parseDefault,
  resolveFields,
  type JsonField,
  type JsonMessage,
} from '../../protocol/codegen/generate.js'
import { inRange, parseRange } from '../../protocol/versions.js'
import type { ApiSpec, FieldSpec, MessageSpec } from '../../protocol/schema.js'
import { HANDLERS } from '../../broker/dispatcher.js'

const ROOT = resolve(import.meta.dirname, '../..')
const SPEC_DIR = resolve(ROOT, '../shared/reference/kafka-message-specs')
const MESSAGES_DIR = join(ROOT, 'protocol/messages')
const specAvailable = existsSync(SPEC_DIR)
if (!specAvailable) console.warn(`spec cross-check skipped: no Kafka message specs at ${SPEC_DIR}`)

/** What one field looks like on the wire in one version. */
interface FieldView {
  name: string
  type: string
  nullable: boolean
  /** The tag when the field is tagged in this version, else null. */
  tag: number | null
  default: unknown
  flexibleVersions: string | null
  fields?: FieldView[]
}

function specView(fields: readonly JsonField[], version: number): FieldView[] {
  return fields
    .filter((field) => inRange(field.versions, version))
    .map((field) => ({
      name: lowerCamel(field.name),
      type: field.type,
      nullable: inRange(field.nullableVersions, version),
      tag: inRange(field.taggedVersions, version) ? field.tag! : null,
      default: parseDefault(field),
      flexibleVersions: field.flexibleVersions ?? null,
      ...(field.fields ? { fields: specView(field.fields, version) } : {}),
    }))
}

function ourView(fields: readonly FieldSpec[], version: number): FieldView[] {
  return fields
    .filter((field) => inRange(field.versions, version))
    .map((field) => ({
      name: field.name,
      type: field.type,
      nullable: inRange(field.nullableVersions, version),
      tag: inRange(field.taggedVersions, version) ? field.tag! : null,
      default: field.default,
      flexibleVersions: field.flexibleVersions ?? null,
      ...(field.fields ? { fields: ourView(field.fields, version) } : {}),
    }))
}

function versionsOf(range: string): number[] {
  const { min, max } = parseRange(range)
  return Array.from({ length: max - min + 1 }, (_, i) => min + i)
}

async function importDefinition<T>(file: string, exportName: string): Promise<T> {
  const module = (await import(pathToFileURL(join(MESSAGES_DIR, `${file}.ts`)).href)) as Record<string, T>
  const definition = module[exportName]
  if (!definition) throw new Error(`protocol/messages/${file}.ts does not export ${exportName}`)
  return definition
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? filesUnder(join(dir, entry.name)) : [join(dir, entry.name)],
  )
}

/** One definition to check: ours, the spec's, and which versions count. */
interface Pair {
  label: string
  ours: MessageSpec
  spec: JsonMessage
  versions: number[]
  /** Why these versions: "advertised 0-9" or "every valid version". */
  scope: string
}

const advertised = new Map(HANDLERS.map((entry) => [entry.api.apiKey, entry.versions]))
const dataFile = (path: string): string => {
  const parts = path.split('/')
  return [...parts.slice(0, -1), kebab(parts.at(-1)!)].join('/')
}

async function loadPairs(): Promise<{ apis: { name: string; ours: ApiSpec; request: JsonMessage }[]; pairs: Pair[] }> {
  const apis: { name: string; ours: ApiSpec; request: JsonMessage }[] = []
  const pairs: Pair[] = []
  for (const name of GENERATED_APIS) {
    const ours = await importDefinition<ApiSpec>(kebab(name), lowerCamel(name))
    const request = loadSpec(SPEC_DIR, `${name}Request`)
    const response = loadSpec(SPEC_DIR, `${name}Response`)
    apis.push({ name, ours, request })
    const range = advertised.get(ours.apiKey)
    // APIs without a handler are not on the wire yet; check all their versions so they are right when they are.
    const versions = versionsOf(range ?? request.validVersions)
    const scope = range ? `advertised ${range}` : 'every valid version (not advertised)'
    pairs.push({ label: `${name}Request`, ours: ours.request, spec: request, versions, scope })
    pairs.push({ label: `${name}Response`, ours: ours.response, spec: response, versions, scope })
  }
  for (const path of GENERATED_DATA) {
    const spec = loadSpec(SPEC_DIR, path)
    const ours = await importDefinition<MessageSpec>(dataFile(path), lowerCamel(spec.name))
    pairs.push({ label: spec.name, ours, spec, versions: versionsOf(spec.validVersions), scope: 'every valid version' })
  }
  return { apis, pairs }
}

const loaded = specAvailable ? await loadPairs() : { apis: [], pairs: [] }

describe.skipIf(!specAvailable)(
  specAvailable
    ? 'message definitions match the Kafka message JSON'
    : `message definitions vs Kafka's JSON: SKIPPED, spec folder not found at ${SPEC_DIR}`,
  () => {
    it('every file in protocol/messages is a generated definition this suite checks', () => {
      const files = filesUnder(MESSAGES_DIR)
        .map((file) => relative(MESSAGES_DIR, file).replace(/\.ts$/, ''))
        .filter((file) => file !== 'index')
        .sort()
      const checked = [...GENERATED_APIS.map(kebab), ...GENERATED_DATA.map(dataFile)].sort()
      expect(files).toEqual(checked)
    })

    it.each(loaded.apis.map((api) => [api.name, api] as const))('%s has the spec API key', (_, api) => {
      expect(api.ours.apiKey).toBe(api.request.apiKey)
      expect(api.ours.name).toBe(api.name)
    })

    it.each(HANDLERS.map((entry) => [entry.api.name, entry] as const))(
      '%s: every advertised version is a valid version in the spec',
      (_, entry) => {
        const spec = loadSpec(SPEC_DIR, `${entry.api.name}Request`)
        for (const version of versionsOf(entry.versions)) expect(inRange(spec.validVersions, version), `v${version}`).toBe(true)
      },
    )

    describe.each(loaded.pairs.map((pair) => [pair.label, pair] as const))('%s', (_, pair) => {
      it('has the spec name, kind, valid and flexible versions', () => {
        expect({
          name: pair.ours.name,
          type: pair.ours.type,
          validVersions: pair.ours.validVersions,
          flexibleVersions: pair.ours.flexibleVersions,
        }).toEqual({
          name: pair.spec.name,
          type: pair.spec.type,
          validVersions: pair.spec.validVersions,
          flexibleVersions: pair.spec.flexibleVersions,
        })
      })

      const specFields = resolveFields(pair.spec)
      it.each(pair.versions)(`v%i has the spec's fields (${pair.scope})`, (version) => {
        expect(ourView(pair.ours.fields, version)).toEqual(specView(specFields, version))
      })
    })
  },
)
