/**
 * The node's batch cache on its own: one budget for every partition's run, least recently used first, runs that stay
 * contiguous suffixes. (Reads through it, against a reference, are in contract/read-property.ts.)
 */
import { describe, expect, it } from 'vitest'
import { BatchCache, type CacheRun } from '../../storage/batch-cache.js'

/** Appends batches of `size` bytes at offsets from, from+1, ... (one record each). */
function append(run: CacheRun, from: number, count: number, size = 100): void {
  for (let i = 0; i < count; i++) {
    const offset = BigInt(from + i)
    run.append({ baseOffset: offset, lastOffset: offset, bytes: Buffer.alloc(size, from + i) })
  }
}

function offsets(run: CacheRun): number[] {
  return Array.from({ length: run.length }, (_, i) => Number(run.at(i).baseOffset))
}

describe('the batch cache', () => {
  it('keeps the cached bytes of all runs within one budget', () => {
    const cache = new BatchCache(1000)
    const runs = [cache.run(), cache.run(), cache.run()]
    for (let round = 0; round < 20; round++) {
      for (const [i, run] of runs.entries()) {
        append(run, round * 2, 2, 60 + 10 * i)
        expect(cache.bytes).toBeLessThanOrEqual(1000)
      }
    }
    const held = runs.reduce((sum, run) => sum + Array.from({ length: run.length }, (_, i) => run.at(i).bytes.length).reduce((a, b) => a + b, 0), 0)
    expect(held).toBe(cache.bytes)
    expect(cache.count).toBe(runs.reduce((sum, run) => sum + run.length, 0))
  })

  it('evicts the least recently used batches first, across partitions: a read keeps a run', () => {
    const cache = new BatchCache(1000)
    const [a, b] = [cache.run(), cache.run()]
    append(a, 0, 5)
    append(b, 0, 5)
    a.touch(0, 5)

    append(b, 5, 3)

    // b's oldest three went, although a's were appended before them: a was read since.
    expect(offsets(a)).toEqual([0, 1, 2, 3, 4])
    expect(offsets(b)).toEqual([3, 4, 5, 6, 7])
  })

  it('keeps a run contiguous: evicting a batch drops the older batches of its run too', () => {
    const cache = new BatchCache(600)
    const run = cache.run()
    append(run, 0, 6)
    // Batches 2-5 are read, so batch 0 and then 1 are the least recently used; touching 0 makes 1 the oldest.
    run.touch(2, 6)
    run.touch(0, 1)

    append(run, 6, 1)

    expect(offsets(run)).toEqual([2, 3, 4, 5, 6])
  })

  it('does not keep a batch larger than the budget, and a budget of 0 keeps nothing', () => {
    const small = new BatchCache(150)
    const run = small.run()
    append(run, 0, 1, 100)
    append(run, 1, 1, 200)
    expect(run.length).toBe(0)
    expect(small.bytes).toBe(0)

    const none = new BatchCache(0)
    const other = none.run()
    append(other, 0, 3)
    expect([other.length, none.bytes]).toEqual([0, 0])
  })

  it('truncation, a new log start, a rewrite and clearing keep the accounting right', () => {
    const cache = new BatchCache(10_000)
    const run = cache.run()
    append(run, 0, 10)

    run.dropBefore(3n)
    run.dropFrom(8n)
    run.replace(5n, Buffer.alloc(40))
    run.replace(6n, null)

    expect(offsets(run)).toEqual([3, 4, 5, 7])
    expect(cache.bytes).toBe(100 + 100 + 40 + 100)
    run.clear()
    expect([run.length, cache.bytes, cache.count]).toEqual([0, 0, 0])
  })

  it('copies a batch that is a small view of a larger buffer, so the budget bounds what it keeps alive', () => {
    const cache = new BatchCache(10_000)
    const run = cache.run()
    const chunk = Buffer.alloc(64 * 1024, 7)
    const view = chunk.subarray(100, 300)

    run.append({ baseOffset: 0n, lastOffset: 0n, bytes: view })

    expect(run.at(0).bytes.equals(view)).toBe(true)
    expect(run.at(0).bytes.buffer.byteLength).toBe(200)
  })
})
