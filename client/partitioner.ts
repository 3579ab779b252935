/**
 * Kafka's default partitioner, so that a key produced by `brook produce` lands on the partition the Java client,
 * librdkafka's `murmur2_random` and kafkajs's DefaultPartitioner would choose:
 *
 *   keyed record:   toPositive(murmur2(key)) % numPartitions      (BuiltInPartitioner.partitionForKey)
 *   null key:       sticky — every record goes to one partition until its batch is closed, then the next one
 *                   (KIP-480; Kafka 3.3+ also weighs by queue size, which a console producer does not need)
 *
 * murmur2 is Utils.murmur2 from Apache Kafka, in 32-bit two's-complement arithmetic: Math.imul for `*` and `| 0`
 * after `>>>`, so every step matches Java's int overflow.
 */

const SEED = 0x9747b28c
const M = 0x5bd1e995
const R = 24

export function murmur2(data: Uint8Array): number {
  const length = data.length
  let h = (SEED ^ length) | 0
  const length4 = length >>> 2
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24)
    k = Math.imul(k, M)
    k ^= k >>> R
    k = Math.imul(k, M)
    h = Math.imul(h, M) ^ k
  }
  // Java's switch falls through from 3 to 1; the same, spelled as conditions.
  const tail = length & ~3
  const rest = length & 3
  if (rest === 3) h ^= data[tail + 2]! << 16
  if (rest >= 2) h ^= data[tail + 1]! << 8
  if (rest >= 1) {
    h ^= data[tail]!
    h = Math.imul(h, M)
  }
  h ^= h >>> 13
  h = Math.imul(h, M)
  h ^= h >>> 15
  return h | 0
}

/** Utils.toPositive: not Math.abs (which overflows for MIN_VALUE), the sign bit masked off. */
export function toPositive(n: number): number {
  return n & 0x7fffffff
}

export function partitionForKey(key: Uint8Array, numPartitions: number): number {
  return toPositive(murmur2(key)) % numPartitions
}

export class DefaultPartitioner {
  private sticky: number

  constructor(
    private readonly numPartitions: number,
    random: () => number = Math.random,
  ) {
    if (!Number.isInteger(numPartitions) || numPartitions < 1) throw new RangeError('a topic has at least one partition')
    this.sticky = Math.floor(random() * numPartitions)
  }

  partition(key: Uint8Array | null): number {
    return key === null ? this.sticky : partitionForKey(key, this.numPartitions)
  }

  /** Called when the batch of `partition` is closed: records without a key move on to the next partition. */
  batchClosed(partition: number): void {
    if (partition === this.sticky) this.sticky = (this.sticky + 1) % this.numPartitions
  }
}
