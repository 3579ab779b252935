/**
 * The partition of a keyed record as Kafka's default partitioner chooses it (BuiltInPartitioner.partitionForKey:
 * `toPositive(murmur2(key)) % numPartitions`, Utils.murmur2 over the key's bytes, a string key's as UTF-8), so that a
 * pipeline's output lands where the Java client, librdkafka's `murmur2_random` and kafkajs's DefaultPartitioner put
 * the same key.
 *
 * Why not kafkajs's own: its murmur2 (kafkajs 2.2.4, producer/partitioners/default/murmur2.js) multiplies in BigInt
 * without masking to 32 bits, so the hash grows by 32 bits at each 4 bytes of key and the work is quadratic in the key's
 * length: a 600 KB key took minutes of CPU, with the task's event loop held (no commit, no heartbeat, no Ctrl-C). This
 * one is Kafka's arithmetic in 32-bit two's complement (Math.imul), linear in the key. The processor imports none of
 * Brook's other folders, so it does not share `client/partitioner.ts`; the tests hold both to kafkajs's answers.
 */

const SEED = 0x9747b28c
const M = 0x5bd1e995

/** Utils.murmur2 of `data`: a signed 32-bit hash. */
export function murmur2(data: Uint8Array): number {
  const length = data.length
  let h = (SEED ^ length) | 0
  const length4 = length >>> 2
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24)
    k = Math.imul(k, M)
    k ^= k >>> 24
    h = Math.imul(h, M) ^ Math.imul(k, M)
  }
  const tail = length & ~3
  const rest = length & 3
  if (rest === 3) h ^= data[tail + 2]! << 16
  if (rest >= 2) h ^= data[tail + 1]! << 8
  if (rest >= 1) h = Math.imul(h ^ data[tail]!, M)
  h ^= h >>> 13
  h = Math.imul(h, M)
  return (h ^ (h >>> 15)) | 0
}

/** The partition, of `numPartitions` (at least 1), that Kafka's default partitioner gives a record keyed `key`. */
export function keyPartition(key: Buffer | string, numPartitions: number): number {
  return (murmur2(typeof key === 'string' ? Buffer.from(key) : key) & 0x7fffffff) % numPartitions
}
