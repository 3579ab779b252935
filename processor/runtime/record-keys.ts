/**
 * Record keys as strings, one string per distinct key of a task. A partition's records keep coming back to the same
 * keys (a device id each), and `Buffer.toString` makes a new string at every record: a call into C++, about 40 bytes
 * for the garbage collector, and a string whose hash the group lookup (groups.ts) then computes and whose characters
 * it compares with the remembered key's. The string remembered here keeps its hash, and is the very key groups.ts
 * remembers, so that lookup ends at a pointer comparison.
 *
 *   bytes ─▶ FNV-1a of the bytes ─▶ remembered string with that hash ─▶ same characters? ─▶ it
 *                                                                     └─ otherwise ─▶ toString (not remembered)
 *
 * Keys are text: bytes that are no UTF-8 (a Java IntegerSerializer's four bytes, say) would decode with U+FFFD in
 * place of what is not, and different keys would become one, so such a record is refused (RecordError BAD_KEY: a
 * dead letter keeping the key's bytes) rather than counted under another key. A source read with `key: bytes()`
 * takes such keys: its task holds them as latin1 text instead (runtime/task.ts), without this memo.
 *
 * Invariant: the string returned is the UTF-8 decoding of the bytes, as `toString` makes it. Only keys of ASCII bytes
 * are remembered (their string has one character per byte, compared without decoding); up to MAX_KEY_BYTES long,
 * the first MAX_KEYS seen, and one per hash: a key whose hash another took is made anew at each record.
 */

import { isUtf8 } from 'node:buffer'
import { ProcessorErrorCode, RecordError } from '../errors.js'

/** Keys remembered per task: with a device id each, a partition of 16,384 devices, about 1 MB. */
const MAX_KEYS = 16_384
/** Longer keys are made anew: hashing them costs about what decoding does. */
const MAX_KEY_BYTES = 64

export class RecordKeys {
  private readonly byHash = new Map<number, string>()

  /** The key's string (`bytes.toString()`). Errors: RecordError BAD_KEY for bytes that are no UTF-8. */
  of(bytes: Buffer): string {
    const length = bytes.length
    if (length > MAX_KEY_BYTES) return keyText(bytes)
    let hash = 0x811c9dc5
    for (let i = 0; i < length; i++) {
      const byte = bytes[i]!
      if (byte >= 0x80) return keyText(bytes)
      hash = Math.imul(hash ^ byte, 0x01000193)
    }
    const known = this.byHash.get(hash)
    if (known !== undefined && sameAscii(known, bytes)) return known
    const key = bytes.toString('latin1')
    if (known === undefined && this.byHash.size < MAX_KEYS) this.byHash.set(hash, key)
    return key
  }
}

/** The UTF-8 text of a key (a record's, a global table row's). Errors: RecordError BAD_KEY for bytes that are no UTF-8. */
export function keyText(bytes: Buffer): string {
  if (!isUtf8(bytes)) {
    throw new RecordError(ProcessorErrorCode.badKey, `the record's key (${bytes.length} bytes, 0x${bytes.subarray(0, 16).toString('hex')}${bytes.length > 16 ? '…' : ''}) is not UTF-8 text: the processor's keys are strings`)
  }
  return bytes.toString()
}

function sameAscii(text: string, bytes: Buffer): boolean {
  if (text.length !== bytes.length) return false
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) !== bytes[i]) return false
  return true
}
