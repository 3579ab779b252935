/**
 * The node's batch cache on its own: one budget for every partition's run, a ring of slabs reused oldest first, runs
 * that stay contiguous suffixes, reads that get copies. (Reads through it, against a reference, are in
 * contract/read-property.ts.)
 */
import { describe, expect, it } from 'vitest'
import { BatchCache, type CacheRun } from '../../storage/batch-cache.js'

/** Appends batches of `size` bytes at offsets from, from+1, ... (one record each), each filled with its offset. */
function append(run: CacheRun, from: number, count: number, size = 100): void {
  for (let i = 0; i < count; i++) {
    const offset = BigInt(from + i)
    run.append({ baseOffset: offset, lastOffset: offset, bytes: Buffer.alloc(size, from + i) })
  }
}

function offsets(run: CacheRun): number[] {
  return Array.from({ length: run.length }, (_, i) => Number(run.at(i).baseOffset))
}

function heldBytes(runs: CacheRun[]): number {
  return runs.reduce((sum, run) => sum + Array.from({ length: run.length }, (_, i) => run.at(i).bytes.length).reduce((a, b) => a + b, 0), 0)
}

describe('the batch cache', () => {
  it('keeps the memory of all runs within one budget', () => {
    const cache = new BatchCache(1000)
    const runs = [cache.run(), cache.run(), cache.run()]
    for (let round = 0; round < 20; round++) {
      for (const [i, run] of runs.entries()) {
        append(run, round * 2, 2, 60 + 10 * i)
        expect(cache.reservedBytes).toBeLessThanOrEqual(1000)
        expect(cache.bytes).toBeLessThanOrEqual(cache.reservedBytes)
      }
    }
    expect(heldBytes(runs)).toBe(cache.bytes)
    expect(cache.count).toBe(runs.reduce((sum, run) => sum + run.length, 0))
    // Every batch still cached holds its own bytes, whatever was written over the slabs since.
    for (const run of runs) for (let i = 0; i < run.length; i++) expect(run.at(i).bytes.every((b) => b === Number(run.at(i).baseOffset) % 256)).toBe(true)
  })

  it('reuses the oldest slab first, across partitions, whatever was read', () => {
    // 1000 bytes: four slabs of 250, two 100-byte batches in each.
    const cache = new BatchCache(1000)
    const [a, b] = [cache.run(), cache.run()]
    append(a, 0, 4)
    append(b, 0, 4)
    expect(offsets(a)).toEqual([0, 1, 2, 3])
    a.at(0)

    append(b, 4, 1)

    // The first slab (a's 0 and 1) was reused, although a was just read.
    expect(offsets(a)).toEqual([2, 3])
    expect(offsets(b)).toEqual([0, 1, 2, 3, 4])
  })

  it('keeps a run contiguous: evicting a batch drops the older batches of its run, wherever they are', () => {
    const cache = new BatchCache(1000)
    const run = cache.run()
    append(run, 0, 6)
    // The rewritten batch 0 lands in the newest slab; batch 1 stays in the oldest.
    run.replace(0n, Buffer.alloc(40, 0))
    append(run, 6, 2)

    append(run, 8, 1)

    expect(offsets(run)).toEqual([2, 3, 4, 5, 6, 7, 8])
    expect(cache.bytes).toBe(7 * 100)
    expect(cache.count).toBe(7)
  })

  it('does not keep a batch larger than a slab, and a budget of 0 keeps nothing', () => {
    const small = new BatchCache(1000)
    const run = small.run()
    append(run, 0, 2, 100)
    append(run, 2, 1, 300)
    expect(run.length).toBe(0)
    expect(small.bytes).toBe(0)
    append(run, 3, 1, 100)
    expect(offsets(run)).toEqual([3])

    const none = new BatchCache(0)
    const other = none.run()
    append(other, 0, 3)
    expect([other.length, none.bytes, none.reservedBytes]).toEqual([0, 0, 0])
  })

  it('truncation, a new log start, a rewrite and clearing keep the accounting right', () => {
    const cache = new BatchCache(10_000)
    const run = cache.run()
    append(run, 0, 10)

    run.dropBefore(3n)
    run.dropFrom(8n)
    run.replace(5n, Buffer.alloc(40, 55))
    run.replace(6n, null)

    expect(offsets(run)).toEqual([3, 4, 5, 7])
    expect(run.at(2).bytes).toEqual(Buffer.alloc(40, 55))
    expect(cache.bytes).toBe(100 + 100 + 40 + 100)
    run.clear()
    expect([run.length, cache.bytes, cache.count]).toEqual([0, 0, 0])
  })

  it('keeps a copy of what is appended, and hands out copies: neither side sees the other change', () => {
    const cache = new BatchCache(1000)
    const run = cache.run()
    const chunk = Buffer.alloc(64 * 1024, 7)
    const view = chunk.subarray(100, 300)
    run.append({ baseOffset: 0n, lastOffset: 0n, bytes: view })
    chunk.fill(9)

    const read = run.at(0).bytes
    expect(read).toEqual(Buffer.alloc(200, 7))
    read.fill(1)
    expect(run.at(0).bytes).toEqual(Buffer.alloc(200, 7))

    // Reusing the slab under a copy already handed out leaves the copy alone.
    append(run, 1, 8, 200)
    expect(run.at(0).baseOffset).toBeGreaterThan(0n)
    expect(read).toEqual(Buffer.alloc(200, 1))
  })
})
