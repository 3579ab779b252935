/**
 * Random values of a message spec in one version, driven by the spec's fields alone: every field the version carries
 * gets a value of its type (null where the version allows it, sometimes), tagged fields are sometimes left out.
 * Round trips of every record type and version use it, so a field the codec mishandles in some version shows up.
 */
import { inRange } from '../../../protocol/versions.js'
import type { FieldSpec, MessageSpec } from '../../../protocol/schema.js'
import type { Random } from '../raft/sim/random.js'

export function randomMessage(spec: MessageSpec, version: number, random: Random): Record<string, unknown> {
  return randomStruct(spec.fields, version, random)
}

function randomStruct(fields: readonly FieldSpec[], version: number, random: Random): Record<string, unknown> {
  const value: Record<string, unknown> = {}
  for (const field of fields) {
    if (!inRange(field.versions, version)) continue
    if (inRange(field.taggedVersions, version) && random.chance(0.3)) continue
    value[field.name] = inRange(field.nullableVersions, version) && random.chance(0.2) ? null : randomField(field, version, random)
  }
  return value
}

function randomField(field: FieldSpec, version: number, random: Random): unknown {
  if (field.type.startsWith('[]')) {
    const element = field.type.slice(2)
    return Array.from({ length: random.int(0, 4) }, () =>
      field.fields ? randomStruct(field.fields, version, random) : randomPrimitive(element, random),
    )
  }
  if (field.fields) return randomStruct(field.fields, version, random)
  return randomPrimitive(field.type, random)
}

function randomPrimitive(type: string, random: Random): unknown {
  switch (type) {
    case 'bool':
      return random.chance(0.5)
    case 'int8':
      return random.int(-128, 127)
    case 'int16':
      return random.int(-32768, 32767)
    case 'uint16':
      return random.int(0, 65535)
    case 'int32':
      return random.int(-2147483648, 2147483647)
    case 'int64':
      return BigInt(random.int(-2147483648, 2147483647)) * BigInt(random.int(0, 2147483647)) + BigInt(random.int(0, 9))
    case 'uuid':
      return Array.from({ length: 16 }, () => random.int(0, 255).toString(16).padStart(2, '0'))
        .join('')
        .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5')
    case 'string':
      return random.pick(['', 'sensor-readings', 'PLAINTEXT', 'retention.ms', 'rack-α', 'π'.repeat(random.int(1, 40))])
    default:
      throw new Error(`no random value for type ${type}`)
  }
}
