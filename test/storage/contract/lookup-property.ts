/**
 * ListOffsets answers as a property: on random logs (out-of-order timestamps inside and across batches, outliers),
 * changed by DeleteRecords at random offsets, retention at batch boundaries, compaction, truncation and restarts,
 * `offsetForTimestamp` and `offsetOfMaxTimestamp` must give what a naive reference gives. The reference keeps its own
 * model of the records (offset, timestamp, batch epoch) and picks the answer by walking every record:
 *
 *   by timestamp T:   the first record, in offset order, at or above the log start with timestamp >= T
 *   MAX_TIMESTAMP:    the first record, in offset order, at or above the log start with the largest timestamp
 *   either one:       none when that record is at or above upTo (Kafka answers -1 rather than an earlier record)
 *
 * Runs are seeded; a failure names its seed and step, and `SEED=<n>` runs that seed alone.
 */
import { describe, expect, it } from 'vitest'
import { decodeRecords, rebuildBatch } from '../../../protocol/record-batch.js'
import type { PartitionLog, Rewrite, TimestampMatch } from '../../../storage/partition-log.js'
import { producerBatch } from '../batches.js'
import type { BackendOptions, LogBackend } from './backend.js'
import { integers, seeded, seeds } from './random.js'
import { below } from './lookup.js'

interface ModelRecord {
  offset: bigint
  timestamp: bigint
}

interface ModelBatch {
  baseOffset: bigint
  lastOffset: bigint
  leaderEpoch: number
  records: ModelRecord[]
}

class Model {
  batches: ModelBatch[] = []
  logStart = 0n
  end = 0n

  records(): ModelRecord[] {
    return this.batches.flatMap((b) => b.records).filter((r) => r.offset >= this.logStart)
  }

  epochOf(offset: bigint): number {
    return this.batches.find((b) => b.baseOffset <= offset && offset <= b.lastOffset)!.leaderEpoch
  }

  byTimestamp(timestamp: bigint, upTo: bigint): TimestampMatch | null {
    const found = this.records().find((r) => r.timestamp >= timestamp)
    return found && found.offset < upTo ? { ...found, leaderEpoch: this.epochOf(found.offset) } : null
  }

  maxTimestamp(upTo: bigint): TimestampMatch | null {
    let best: ModelRecord | undefined
    for (const record of this.records()) if (!best || record.timestamp > best.timestamp) best = record
    return best && best.offset < upTo ? { ...best, leaderEpoch: this.epochOf(best.offset) } : null
  }

  deleteBefore(offset: bigint): void {
    const start = offset < this.end ? offset : this.end
    if (start <= this.logStart) return
    this.logStart = start
    this.batches = this.batches.filter((b) => b.lastOffset >= start)
  }

  truncateTo(offset: bigint): void {
    if (offset >= this.end) return
    const removed = this.batches.filter((b) => b.lastOffset >= offset)
    const newEnd = removed.reduce((end, b) => (b.baseOffset < end ? b.baseOffset : end), offset)
    this.batches = this.batches.filter((b) => b.lastOffset < offset)
    this.end = newEnd
    if (this.logStart > newEnd) this.logStart = newEnd
  }
}

const KEYS = 20

export function lookupPropertyScenarios(open: (options?: BackendOptions) => Promise<LogBackend>): void {
  describe.each([
    { cache: 'no cache', cacheMaxBytes: 0 },
    { cache: 'a 16 KiB cache', cacheMaxBytes: 16 * 1024 },
  ])('ListOffsets against a naive reference, $cache', ({ cacheMaxBytes }) => {
    it.each(seeds([11, 23, 37, 41]))('seed %i', async (seed) => {
      const next = seeded(seed)
      const int = integers(next)
      const backend = await open({ cacheMaxBytes })
      let log: PartitionLog = await backend.log(0)
      const model = new Model()
      let clock = 1_700_000_000_000
      let epoch = 0
      let label = 0

      const append = async (): Promise<void> => {
        const count = int(1, 12)
        clock += int(0, 2000)
        const earlier = model.batches.flatMap((b) => b.records.map((r) => r.timestamp))
        const largest = earlier.reduce((a, b) => (b > a ? b : a), 0n)
        const timestamps = Array.from({ length: count }, () => {
          const roll = next()
          // Mostly near the clock, out of order both ways; now and then far in the future or the past, or the same
          // time as an earlier record or as the largest so far (ties for MAX_TIMESTAMP).
          if (roll < 0.03) return BigInt(clock + int(1, 10_000_000))
          if (roll < 0.06) return BigInt(clock - int(1, 10_000_000))
          if (roll < 0.09 && earlier.length > 0) return earlier[int(0, earlier.length - 1)]!
          if (roll < 0.12 && earlier.length > 0) return largest
          return BigInt(clock + int(-5000, 5000))
        })
        const keys = Array.from({ length: count }, () => `k${int(0, KEYS - 1)}`)
        if (next() < 0.05) epoch++
        const baseOffset = log.logEndOffset
        const pending = log.append(producerBatch(`b${label++}`, count, { timestamps, keys, valueBytes: int(100, 400) }), { leaderEpoch: epoch })
        model.batches.push({
          baseOffset,
          lastOffset: baseOffset + BigInt(count - 1),
          leaderEpoch: epoch,
          records: timestamps.map((timestamp, i) => ({ offset: baseOffset + BigInt(i), timestamp })),
        })
        model.end = baseOffset + BigInt(count)
        await pending
      }

      const compact = async (): Promise<void> => {
        const candidates = model.batches.slice(0, -1).filter((b) => b.lastOffset >= model.logStart)
        const chosen = candidates.filter(() => next() < 0.3)
        if (chosen.length === 0) return
        const changes: Rewrite[] = []
        for await (const stored of log.batches(chosen[0]!.baseOffset, chosen.at(-1)!.lastOffset + 1n)) {
          const modelBatch = chosen.find((b) => b.lastOffset === stored.lastOffset)
          if (!modelBatch) continue
          const kept = decodeRecords(stored.bytes).filter(() => next() < 0.5)
          changes.push({ previous: stored, replacement: kept.length === 0 ? null : rebuildBatch(stored.bytes, kept) })
          const keptOffsets = new Set(kept.map((r) => r.offset))
          modelBatch.records = modelBatch.records.filter((r) => keptOffsets.has(r.offset))
        }
        await log.rewrite(changes)
        model.batches = model.batches.filter((b) => b.records.length > 0 || b === model.batches.at(-1))
      }

      const check = async (step: number, what: string): Promise<void> => {
        const context = `seed ${seed}, step ${step} (${what})`
        const records = model.records()
        const probes = new Set<bigint>([0n, BigInt(clock + 20_000_000)])
        for (let i = 0; i < 6 && records.length > 0; i++) {
          const record = records[int(0, records.length - 1)]!
          probes.add(record.timestamp).add(record.timestamp - 1n).add(record.timestamp + 1n)
        }
        const upTos = [model.end, model.logStart + BigInt(int(0, Number(model.end - model.logStart)))]
        for (const upTo of upTos) {
          for (const timestamp of probes) {
            expect(await log.offsetForTimestamp(timestamp, below(upTo)), `${context}: timestamp ${timestamp} below ${upTo}`).toEqual(
              model.byTimestamp(timestamp, upTo),
            )
          }
          expect(await log.offsetOfMaxTimestamp(below(upTo)), `${context}: max timestamp below ${upTo}`).toEqual(model.maxTimestamp(upTo))
        }
      }

      for (let step = 0; step < 220; step++) {
        const roll = next()
        let what: string
        if (roll < 0.55 || model.end === 0n) {
          what = 'append'
          await append()
        } else if (roll < 0.63) {
          const offset = model.logStart + BigInt(int(0, Number(model.end - model.logStart)))
          what = `DeleteRecords before ${offset}`
          await log.deleteBefore(offset)
          model.deleteBefore(offset)
        } else if (roll < 0.68 && model.batches.length > 1) {
          const batch = model.batches[int(0, Math.min(3, model.batches.length - 2))]!
          what = `retention up to ${batch.lastOffset + 1n}`
          await log.deleteBefore(batch.lastOffset + 1n)
          model.deleteBefore(batch.lastOffset + 1n)
        } else if (roll < 0.78) {
          what = 'compaction'
          await compact()
        } else if (roll < 0.82) {
          const offset = model.logStart + BigInt(int(0, Number(model.end - model.logStart)))
          what = `truncation to ${offset}`
          await log.truncateTo(offset)
          model.truncateTo(offset)
        } else if (roll < 0.86) {
          what = 'restart'
          await backend.restart()
          log = await backend.log(0)
        } else {
          what = 'lookups'
        }
        log.setHighWatermark(log.durableEndOffset)
        expect([log.logStartOffset, log.logEndOffset], `seed ${seed}, step ${step} (${what})`).toEqual([model.logStart, model.end])
        if (what !== 'append' || step % 5 === 0) await check(step, what)
      }
    })
  })
}
