import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { DefaultPartitioner, partitionForKey } from '../../client/partitioner.js'

// kafkajs's DefaultPartitioner is the Java client's (murmur2, toPositive, modulo); it is the reference here.
const { Partitioners } = createRequire(import.meta.url)('kafkajs') as {
  Partitioners: {
    DefaultPartitioner: () => (args: { topic: string; partitionMetadata: { partitionId: number; leader: number }[]; message: { key: Buffer } }) => number
  }
}

function kafkajsPartition(key: Buffer, partitions: number): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 1 }))
  return Partitioners.DefaultPartitioner()({ topic: 't', partitionMetadata, message: { key } })
}

describe('the default partitioner', () => {
  it('puts every key where kafkajs (and so the Java client) puts it', () => {
    const keys = [
      ...Array.from({ length: 2000 }, (_, i) => Buffer.from(`key-${i}`)),
      // every tail length (0-3 bytes past a 4-byte block), high bytes, and UTF-8
      ...Array.from({ length: 300 }, (_, i) => Buffer.from(Array.from({ length: i % 13 }, (_, j) => (i * 37 + j * 101) & 0xff))),
      Buffer.from('日本語のキー'),
      Buffer.alloc(0),
    ]
    for (const partitions of [1, 3, 7, 64]) {
      for (const key of keys) expect(partitionForKey(key, partitions), `key ${key.toString('hex')}`).toBe(kafkajsPartition(key, partitions))
    }
  })

  it('keeps records without a key on one partition until its batch closes, then moves on', () => {
    const partitioner = new DefaultPartitioner(3, () => 0.5)
    expect([partitioner.partition(null), partitioner.partition(null)]).toEqual([1, 1])
    partitioner.batchClosed(0)
    expect(partitioner.partition(null)).toBe(1)
    partitioner.batchClosed(1)
    expect(partitioner.partition(null)).toBe(2)
    partitioner.batchClosed(2)
    expect(partitioner.partition(null)).toBe(0)
  })
})
