/**
 * How the broker names a string a client sent, in an error message or a log line. Kafka's messages name things
 * briefly; an echo of a whole client string would grow with what the client sends, and an error message longer than
 * the protocol's 32,767-byte strings cannot be encoded at all.
 */

/** Characters of a client string kept in a message; longer strings are cut and their length given instead. */
const QUOTED_MAX_CHARS = 64

/**
 * The string in single quotes; when longer than 64 characters, its first 64 followed by `…'` and its length in
 * UTF-8 bytes: `'aaaa…' (32767 bytes)`. The result is at most about 100 characters, whatever the input.
 */
export function quote(text: string): string {
  if (text.length <= QUOTED_MAX_CHARS) return `'${text}'`
  return `'${text.slice(0, QUOTED_MAX_CHARS)}…' (${Buffer.byteLength(text)} bytes)`
}
