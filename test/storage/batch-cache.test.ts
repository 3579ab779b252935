/**
 * The node's batch cache on its own: one budget for every partition's run, a ring of slabs reused oldest first and
 * grown only while readers behind the log end need it, runs that stay contiguous suffixes, reads that get copies, and reads under a
 * lease that get views of slabs the ring does not write again until the lease is released. (Reads through it, against a reference,
 * are in contract/read-property.ts.)
 */
import { describe, expect, it } from 'vitest'
import { BatchCache, CacheLease, type CacheRun } from '../../storage/batch-cache.js'

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
    run.replaceAll([{ lastOffset: 0n, bytes: Buffer.alloc(40, 0) }])
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
    run.replaceAll([
      { lastOffset: 5n, bytes: Buffer.alloc(40, 55) },
      { lastOffset: 6n, bytes: null },
    ])

    expect(offsets(run)).toEqual([3, 4, 5, 7])
    expect(run.at(2).bytes).toEqual(Buffer.alloc(40, 55))
    expect(cache.bytes).toBe(100 + 100 + 40 + 100)
    run.clear()
    expect([run.length, cache.bytes, cache.count]).toEqual([0, 0, 0])
  })

  it("a cleaner pass's rewrites replace and drop many batches at once, each as it would alone", () => {
    const cache = new BatchCache(10_000_000)
    const run = cache.run()
    append(run, 0, 20_000, 10)
    run.dropBefore(5n)
    // Every batch but each thousandth goes, a few are rewritten smaller, and offsets the run does not hold are ignored.
    const changes = Array.from({ length: 20_000 }, (_, n) => ({ lastOffset: BigInt(n), bytes: n % 1000 === 999 ? null : n % 1000 === 0 ? Buffer.alloc(4, n % 256) : null }))
    changes.push({ lastOffset: 20_005n, bytes: null }, { lastOffset: 30_000n, bytes: Buffer.alloc(4) })
    run.replaceAll(changes.filter((_, n) => n % 1000 !== 999 || n === 19_999))

    // Left: each thousandth, untouched (19,999 excepted), and each rewritten one after it (offset 0 was not cached).
    expect(offsets(run)).toEqual(Array.from({ length: 19 }, (_, k) => [1000 * k + 999, 1000 * (k + 1)]).flat())
    expect(run.at(0).bytes).toEqual(Buffer.alloc(10, 999 % 256))
    expect(run.at(1).bytes).toEqual(Buffer.alloc(4, 1000 % 256))
    expect([cache.count, cache.bytes]).toEqual([run.length, heldBytes([run])])
    // The run still finds and extends from what is left.
    expect(run.indexOf(1001n)).toBe(2)
    append(run, 20_000, 1)
    expect(offsets(run).at(-1)).toBe(20_000)
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

  describe('reads under a lease (a Fetch answer sending views of the cache)', () => {
    it('hand out views of the cache, not copies', () => {
      const cache = new BatchCache(1000)
      const run = cache.run()
      append(run, 0, 2)
      const lease = new CacheLease()
      const [first, second] = [run.at(0, { lease }).bytes, run.at(1, { lease }).bytes]
      // Two batches of one slab: adjacent views of the same memory.
      expect(first.buffer).toBe(second.buffer)
      expect(second.byteOffset).toBe(first.byteOffset + 100)
      expect(run.at(0).bytes.buffer).not.toBe(first.buffer)
      lease.release()
    })

    it('keep a slab from being written again while the lease holds it: the ring replaces it, and reuses it once released', () => {
      // Four slabs of 250 bytes, two 100-byte batches in each.
      const cache = new BatchCache(1000)
      const run = cache.run()
      append(run, 0, 8)
      const lease = new CacheLease()
      const held = [run.at(0, { lease }).bytes, run.at(1, { lease }).bytes]
      const other = run.at(2, { lease: new CacheLease() }).bytes // released never: its slab is replaced too

      // Four turns of the ring: every slab is come round to.
      append(run, 8, 32)
      // The views still hold what was appended at offsets 0, 1 and 2, though the run evicted them long ago.
      expect(held).toEqual([Buffer.alloc(100, 0), Buffer.alloc(100, 1)])
      expect(other).toEqual(Buffer.alloc(100, 2))
      expect(offsets(run)[0]).toBeGreaterThan(2)
      // The two held slabs were replaced once (then their replacements were reused): the ring kept its size.
      expect(cache.replacedSlabs).toBe(2)
      expect(cache.reservedBytes).toBe(1000)

      // Released, the slabs ring round as before: a view of a slab read under a lease that is given back is written over.
      const again = new CacheLease()
      const reused = run.at(run.length - 1, { lease: again }).bytes
      const value = reused[0]!
      again.release()
      append(run, 40, 8)
      expect(reused[0]).not.toBe(value)
      expect(cache.replacedSlabs).toBe(2)
    })

    it('lend at most four slabs at once: past them a read gets a copy, so answers never read keep little memory alive', () => {
      // Four slabs of 250 bytes, two 100-byte batches in each. A view's memory is its slab's (250 bytes); a copy's is not.
      const cache = new BatchCache(1000)
      const run = cache.run()
      const isView = (bytes: Buffer) => bytes.buffer.byteLength === 250
      append(run, 0, 8)
      const stuck = [0, 2, 4, 6].map((i) => {
        const lease = new CacheLease()
        return { lease, bytes: run.at(i, { lease }).bytes }
      })
      expect(stuck.every(({ bytes }) => isView(bytes))).toBe(true)
      expect(cache.lentSlabs).toBe(4)
      // A slab already lent lends views to any lease.
      const other = new CacheLease()
      expect(run.at(1, { lease: other }).bytes.buffer).toBe(stuck[0]!.bytes.buffer)

      // The ring turns over: the four lent slabs are replaced, keeping their bytes for the answers.
      append(run, 8, 8)
      expect(cache.replacedSlabs).toBe(4)
      // Lending a fifth slab (a fresh one of the ring) would pass the bound: a copy.
      const copy = run.at(0, { lease: other }).bytes
      expect(isView(copy)).toBe(false)
      expect(copy).toEqual(Buffer.alloc(100, 8))
      expect(cache.lentSlabs).toBe(4)

      // Turning over again replaces nothing: only the four slabs left to the answers are lent.
      append(run, 16, 8)
      expect(cache.replacedSlabs).toBe(4)
      stuck.forEach(({ bytes }, i) => expect(bytes).toEqual(Buffer.alloc(100, 2 * i)))

      for (const { lease } of stuck) lease.release()
      expect(cache.lentSlabs).toBe(1)
      other.release()
      expect(cache.lentSlabs).toBe(0)
      const fresh = new CacheLease()
      expect(isView(run.at(0, { lease: fresh }).bytes)).toBe(true)
      fresh.release()
    })

    it('count a slab once however many of its batches the answer reads, and give it back in full', () => {
      const cache = new BatchCache(1000)
      const run = cache.run()
      append(run, 0, 8)
      const lease = new CacheLease()
      for (let round = 0; round < 3; round++) for (let i = 0; i < 2; i++) run.at(i, { lease })
      lease.release()
      lease.release()
      // Nothing held: a turn of the ring reuses every slab, none is replaced.
      append(run, 8, 8)
      expect(cache.replacedSlabs).toBe(0)
      expect(offsets(run)).toEqual([8, 9, 10, 11, 12, 13, 14, 15])
    })
  })

  describe('a ring that grows only while readers need it (4 MiB slabs, a 32 MiB budget: up to 8)', () => {
    const MiB = 1024 * 1024
    /** Appends `count` 1 MiB batches (four to a slab) at offsets from, from+1, ... */
    const appendMiB = (run: CacheRun, from: number, count: number) => append(run, from, count, MiB)

    it('keeps four slabs and reuses them while every read is at the log end', () => {
      const cache = new BatchCache(32 * MiB)
      const run = cache.run()
      for (let offset = 0; offset < 64; offset++) {
        appendMiB(run, offset, 1)
        // A reader that keeps up: each batch read as soon as it is appended.
        expect(run.at(run.length - 1).baseOffset).toBe(BigInt(offset))
      }
      expect(cache.reservedBytes).toBe(16 * MiB)
      // The four slabs hold the newest 13-16 batches: the oldest slab was reused for the newest.
      expect(offsets(run).at(-1)).toBe(63)
      expect(run.length).toBeGreaterThanOrEqual(13)
      expect(run.length).toBeLessThanOrEqual(16)
      expect(cache.bytes).toBe(run.length * MiB)
    })

    it('keeps four slabs while a reader trails the log end by a few batches, across slab boundaries', () => {
      const cache = new BatchCache(32 * MiB)
      const run = cache.run()
      appendMiB(run, 0, 2)
      for (let offset = 2; offset < 64; offset++) {
        appendMiB(run, offset, 1)
        // A follower two batches behind: right after the log end enters a new slab, it reads the one before.
        expect(run.at(run.length - 3).baseOffset).toBe(BigInt(offset - 2))
      }
      expect(cache.reservedBytes).toBe(16 * MiB)
      expect(offsets(run).at(-1)).toBe(63)
    })

    it('takes a new slab rather than reuse one a reader behind the log end read, up to the budget and no further', () => {
      const cache = new BatchCache(32 * MiB)
      const [tail, behind] = [cache.run(), cache.run()]
      appendMiB(tail, 0, 16)
      expect(cache.reservedBytes).toBe(16 * MiB)

      // A reader far behind reads batch 0, in the oldest slab, which is no longer being filled.
      expect(tail.at(0).baseOffset).toBe(0n)
      appendMiB(behind, 0, 1)
      // The oldest slab was kept: a fifth slab took the new batch, and nothing was evicted.
      expect(cache.reservedBytes).toBe(20 * MiB)
      expect(offsets(tail)).toEqual(Array.from({ length: 16 }, (_, i) => i))
      expect(offsets(behind)).toEqual([0])

      // With readers behind the log end all along, the ring grows to the budget, then reuses its oldest slab.
      for (let offset = 16; offset < 64; offset++) {
        appendMiB(tail, offset, 1)
        tail.at(0)
      }
      expect(cache.reservedBytes).toBe(32 * MiB)
      expect(offsets(tail).at(-1)).toBe(63)
      expect(offsets(tail)[0]).toBeGreaterThan(0)
      expect(cache.bytes).toBeLessThanOrEqual(32 * MiB)
    })

    it("does not grow for the node's own reads (loading state, cleaning)", () => {
      const cache = new BatchCache(32 * MiB)
      const run = cache.run()
      appendMiB(run, 0, 16)
      expect(run.at(0, { fetched: false }).baseOffset).toBe(0n)
      appendMiB(run, 16, 1)
      expect(cache.reservedBytes).toBe(16 * MiB)
      expect(offsets(run)[0]).toBe(4)
    })
  })
})
