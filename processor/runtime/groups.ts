/**
 * The group of a record, for an aggregate of one task: the string that keys the group's state (in the store, in
 * LevelDB and in the changelog) and the fields its results carry.
 *
 *   group = key \x1f field value \x1f field value ...     (the fields in the order the fields function returns them;
 *                                                          a value that is not a string as JSON)
 *   without a fields function: group = key, fields = { key }
 *
 * where key is the record key as groupKey writes it: a record without a key is `\x00`, never the group of a record
 * whose key is the empty string (Kafka tells a null key from an empty one, and so do the results' keys).
 *
 * Invariant: two records share a group only when their keys and field values are the same. No part holds a raw
 * \x1f (JSON escapes it), and a part that could be taken for another — a key or string holding \x1f or starting with
 * \x1e or holding a lone surrogate, a string that is the JSON text of another value (`'1'`, `'null'`, `'[1]'`) or `'undefined'` (what a missing
 * value writes) — is written as \x1e and its JSON string instead. Every other string is written as it is, so the
 * groups of ordinary names (device ids, sensors) are those of earlier versions, whose state they find again.
 *
 * The groups are remembered by record key, with the field names and values they were made from: a record whose
 * fields are those of a group remembered for its key (`Object.is` of each value, names in the same order) gets the
 * same group string and fields object. A key has several groups when its records carry several field values, as a
 * device keyed by its id sends readings of several sensors in turn: up to MAX_GROUPS_PER_KEY are remembered per key. Building the group anew would concatenate the strings and flatten the result at
 * its first lookup (about 200 bytes of garbage per record), hash it at every lookup, and compare it with the store's
 * own copy of the string character by character. The remembered string keeps its hash (V8 stores it in the string),
 * and for a group whose state this task created it is the very string the store's Map holds, so that lookup ends at
 * a pointer comparison. A group and its fields never change, so the
 * results and the state of every record of a group may share them.
 *
 * Only groups of primitive field values are remembered: an object value could change between two records and still
 * be the same object. At most MAX_GROUPS groups are remembered, the first ones seen; the other groups of a larger
 * partition are built anew at each record, as they were without this memory, rather than evicting and refilling it,
 * which would only add garbage for the garbage collector to promote.
 */
import { ProcessorErrorCode, RecordError } from '../errors.js'

/** A record's group and the fields its results carry. `by` is the fields function it was made with. */
export interface Grouping {
  readonly by: unknown
  readonly group: string
  readonly fields: Record<string, unknown>
}

interface Remembered extends Grouping {
  /** The field names and values, in the order of the fields object (empty without a fields function). */
  readonly names: readonly string[]
  readonly values: readonly unknown[]
}

/**
 * Groups remembered per aggregate and task: about 150 bytes each beside the strings the state holds anyway, so 2.4 MB
 * at most, outside the state's cache budget.
 */
const MAX_GROUPS = 16_384
/** Groups remembered per record key: a device's sensors, say; a key whose fields change at every record stops here. */
const MAX_GROUPS_PER_KEY = 8

const NO_NAMES: readonly string[] = []

export class Groups {
  private readonly byKey = new Map<string, Remembered[]>()
  private remembered = 0

  /**
   * `by` is the aggregate's fields function (undefined: the record key alone is the group); `operator` names the
   * aggregate in the reason of a RecordError; `keyField` is what a group without fields gets as its `key` field (the
   * key itself; a bytes key's base64, as the task holds it as latin1 text).
   */
  constructor(
    private readonly by: unknown,
    private readonly operator = 'the aggregate',
    private readonly keyField: (key: string | null) => unknown = (key) => key,
  ) {}

  /** The grouping of a record with this key and (with a fields function) the fields it returned. */
  of(key: string | null, fields: Record<string, unknown> | undefined): Grouping {
    const known = key === null ? undefined : this.byKey.get(key)
    if (known !== undefined) {
      for (let i = 0; i < known.length; i++) if (sameFields(known[i]!, fields)) return known[i]!
    }
    const made = fields === undefined ? withoutFields(this.by, key, this.keyField(key)) : withFields(this.by, key, fields, this.operator)
    if (key !== null && this.remembered < MAX_GROUPS && (known?.length ?? 0) < MAX_GROUPS_PER_KEY && made.values.every(isPrimitive)) {
      if (known === undefined) this.byKey.set(key, [made])
      else known.push(made)
      this.remembered++
    }
    return made
  }
}

function sameFields(remembered: Remembered, fields: Record<string, unknown> | undefined): boolean {
  if (fields === undefined) return true
  const { names, values } = remembered
  let i = 0
  for (const name in fields) {
    if (i === names.length || names[i] !== name || !Object.is(values[i], fields[name])) return false
    i++
  }
  return i === names.length
}

function isPrimitive(value: unknown): boolean {
  return value === null || (typeof value !== 'object' && typeof value !== 'function')
}

/**
 * The most UTF-8 bytes a group string may take. It keys the group's changelog record and its fields travel in that
 * record's value too, so a group of half the changelog's max.message.bytes (Kafka's default: 1,048,588) or more
 * makes a record the cluster refuses at every commit (MESSAGE_TOO_LARGE): a reading with a 700 KB device id, itself
 * within the source topic's limit, stopped the pipeline after three tries. A quarter leaves room for the
 * accumulators (a percentile's sketch: a few KB).
 */
export const MAX_GROUP_BYTES = 256 * 1024

/**
 * Refuses a group too large to be stored (MAX_GROUP_BYTES): a RecordError (GROUP_TOO_LARGE), so that the record is
 * a dead letter before it changes any state. `operator` names the aggregate in the reason.
 */
export function checkGroupSize(group: string, operator: string): void {
  // A UTF-16 unit takes at most 3 bytes in UTF-8: only long strings need counting.
  if (group.length <= MAX_GROUP_BYTES / 3) return
  const bytes = Buffer.byteLength(group)
  if (bytes <= MAX_GROUP_BYTES) return
  throw new RecordError(
    ProcessorErrorCode.groupTooLarge,
    `the group of ${operator} (the record key and fields) takes ${bytes.toLocaleString('en-US')} bytes, more than ${MAX_GROUP_BYTES.toLocaleString('en-US')}: its state would not fit a changelog record`,
  )
}

/**
 * A record key as it starts a group string (and keys the state of updateStateByKey): the key itself, `\x00` for a
 * record without a key, and a key that starts with `\x00` with one more in front, so no key, null included, takes
 * another's group.
 */
export function groupKey(key: string | null): string {
  if (key === null) return '\x00'
  return key.charCodeAt(0) === 0 ? `\x00${key}` : key
}

function withoutFields(by: unknown, key: string | null, keyField: unknown): Remembered {
  return { by, group: groupKey(key), fields: { key: keyField }, names: NO_NAMES, values: NO_NAMES }
}

/**
 * The group of `key` and `fields`. Errors: a RecordError (USER_FUNCTION_FAILED) when a field value has no JSON form
 * (a BigInt, a cycle): the fields function's result, like a map's, makes a dead letter of its record, where the
 * TypeError failed the task at that record until the pipeline stopped.
 */
function withFields(by: unknown, key: string | null, fields: Record<string, unknown>, operator: string): Remembered {
  const names: string[] = []
  const values: unknown[] = []
  let group = key !== null && mistakable(key) ? marked(key) : groupKey(key)
  for (const name in fields) {
    const v = fields[name]
    names.push(name)
    values.push(v)
    group += `\x1f${typeof v !== 'string' ? fieldJson(v, name, operator) : mistakable(v) || looksLikeJson(v) ? marked(v) : v}`
  }
  return { by, group, fields, names, values }
}

/** A field value that is not a string as JSON, or a RecordError saying which field of which aggregate has none. */
function fieldJson(value: unknown, name: string, operator: string): string {
  try {
    return JSON.stringify(value)
  } catch (error) {
    throw new RecordError(ProcessorErrorCode.userFunction, `the fields function of ${operator} returned field '${name}', which cannot be part of a group: ${(error as Error).message}`)
  }
}

/** A string as a part of a group that no other part can be: \x1e, then its JSON (which holds no raw \x1f). */
function marked(text: string): string {
  return `\x1e${JSON.stringify(text)}`
}

/**
 * Whether a string would hold a separator, start like a marked part, or not survive UTF-8: a lone surrogate (JSON's
 * `"\ud800"`) becomes U+FFFD in the store's LevelDB keys, so a group read back from them (a close-time index, a warmed
 * cache) would not be the group its records make, and the cache could hold one group's state under two names.
 */
function mistakable(text: string): boolean {
  return text.charCodeAt(0) === 0x1e || text.includes('\x1f') || !(text as unknown as WellFormed).isWellFormed()
}

/** String.prototype.isWellFormed (ES2024, in Node 20), which the ES2022 library this project compiles against lacks. */
interface WellFormed {
  isWellFormed(): boolean
}

const JSON_NUMBER = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i

/** Whether a string is what another value writes in a group: JSON that is not a string, or `undefined`. */
function looksLikeJson(text: string): boolean {
  if (text === 'null' || text === 'true' || text === 'false' || text === 'undefined' || JSON_NUMBER.test(text)) return true
  const first = text.charCodeAt(0)
  // Of what JSON.stringify writes for a value that is not a string, only objects and arrays are left: '{' and '['.
  if (first !== 0x7b && first !== 0x5b) return false
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}
