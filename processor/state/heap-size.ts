/**
 * A structural estimate of the V8 heap a decoded state value holds, for the cache's byte budget (task-store.ts): the
 * cache holds decoded entries (objects, arrays, typed arrays, percentile sketches), which take several times the
 * bytes of their encoded form, so counting encoded bytes let a 64 MiB budget hold about 500 MB of heap for the iot
 * pipeline (`node --expose-gc dist/bench/state-memory.js`).
 *
 * The sizes are those of a 64-bit V8 without pointer compression (Node's build): 8 bytes per pointer, a 16-byte
 * heap number for every number that is not a small integer (a double is boxed in an object's field or a mixed array;
 * an array of numbers only holds them unboxed), 16 bytes of header per string plus its characters, a typed array's
 * view, buffer object and backing-store record (about 224 bytes) plus its bytes. Objects reached twice within one
 * value count once. An estimate, not a measurement: the bench prints the heap it stands for.
 */

const POINTER = 8
const HEAP_NUMBER = 16
const OBJECT_HEADER = 24
const ARRAY_HEADER = 32 + 16
const STRING_HEADER = 16
const TYPED_ARRAY = 224
const MAP_ENTRY = 40

/** Whether V8 keeps `n` as a small integer (a Smi: 32 bits on a 64-bit build), in the pointer itself. */
function isSmall(n: number): boolean {
  return (n | 0) === n && !Object.is(n, -0)
}

/** Estimated heap bytes of `value` and everything it holds (own enumerable properties, elements, entries). */
export function heapBytes(value: unknown): number {
  return sizeOf(value, new Set())
}

function sizeOf(value: unknown, seen: Set<object>): number {
  switch (typeof value) {
    case 'number':
      return isSmall(value) ? 0 : HEAP_NUMBER
    case 'string':
      return STRING_HEADER + ((value.length + 7) & ~7)
    case 'bigint':
      return 24
    case 'object':
      break
    default:
      return 0
  }
  if (value === null || seen.has(value)) return 0
  seen.add(value)
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return TYPED_ARRAY + value.byteLength
  if (Array.isArray(value)) {
    let bytes = ARRAY_HEADER + POINTER * value.length
    let numbers = true
    for (let i = 0; i < value.length; i++) {
      if (typeof value[i] !== 'number') {
        numbers = false
        break
      }
    }
    if (!numbers) for (let i = 0; i < value.length; i++) bytes += sizeOf(value[i], seen)
    return bytes
  }
  if (value instanceof Map) {
    let bytes = OBJECT_HEADER + MAP_ENTRY * value.size
    for (const [k, v] of value) bytes += sizeOf(k, seen) + sizeOf(v, seen)
    return bytes
  }
  if (value instanceof Set) {
    let bytes = OBJECT_HEADER + MAP_ENTRY * value.size
    for (const v of value) bytes += sizeOf(v, seen)
    return bytes
  }
  let bytes = OBJECT_HEADER
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue
    bytes += POINTER + sizeOf((value as Record<string, unknown>)[key], seen)
  }
  return bytes
}
