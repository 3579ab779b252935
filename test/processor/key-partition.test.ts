/**
 * The processor's key partitioner (runtime/key-partition.ts) against kafkajs's DefaultPartitioner (the Java client's
 * murmur2, toPositive, modulo), on keys of every tail length, high bytes, UTF-8 strings and Buffers; and on a key too
 * long for kafkajs's own (quadratic) murmur2, against Brook's client partitioner, which the client tests hold to
 * kafkajs's answers.
 */
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { keyPartition } from '../../processor/runtime/key-partition.js'
import { partitionForKey } from '../../client/partitioner.js'

const { Partitioners } = createRequire(import.meta.url)('kafkajs') as {
  Partitioners: {
    DefaultPartitioner: () => (args: { topic: string; partitionMetadata: { partitionId: number; leader: number }[]; message: { key: Buffer | string } }) => number
  }
}

function kafkajsPartition(key: Buffer | string, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 1 }))
  return Partitioners.DefaultPartitioner()({ topic: 't', partitionMetadata, message: { key } })
}

describe('the processor\'s key partitioner', () => {
  it('puts every key where kafkajs (and so the Java client) puts it', () => {
    const keys: (Buffer | string)[] = [
      ...Array.from({ length: 1000 }, (_, i) => `device-${String(i).padStart(5, '0')}`),
      ...Array.from({ length: 300 }, (_, i) => Buffer.from(Array.from({ length: i % 29 }, (_, j) => (i * 37 + j * 101) & 0xff))),
      '日本語のキー',
      'température',
      '',
      Buffer.alloc(0),
    ]
    for (const partitions of [1, 3, 4, 7, 64]) {
      for (const key of keys) expect(keyPartition(key, partitions), `key ${JSON.stringify(String(key))}`).toBe(kafkajsPartition(key, partitions))
    }
  })

  it('places a 600 KB key at once, where the client partitioner does', () => {
    const key = Buffer.alloc(600_000, 'k')
    for (const partitions of [1, 3, 50]) {
      expect(keyPartition(key, partitions)).toBe(partitionForKey(key, partitions))
      expect(keyPartition(key.toString(), partitions)).toBe(partitionForKey(key, partitions))
    }
  })
})
