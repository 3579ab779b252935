/**
 * The state cache's byte budget bounds the heap it holds, not only the encoded bytes it counts: the iot pipeline's
 * decoded entries (accumulators, percentile sketches) take about eight times their encoded form, so a budget that
 * counted encoded bytes held eight times its size. Measured by `bench/state-memory.ts` in its own process (V8's
 * heap after full collections, with the cache and after dropping it), for a task of the iot pipeline with more
 * groups than its budget holds. What is not the cache does not grow with the groups either: the windowed operators'
 * close-time indexes are in LevelDB (processor/state/close-times.ts), not in memory.
 */
import { expect, test } from 'vitest'
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { promisify } from 'node:util'

const BENCH = resolve(import.meta.dirname, '../../dist/bench/state-memory.js')

interface Report {
  cacheCountedMb: number
  cacheHeapMb: number
  heapMb: { after: number; withoutCache: number }
}

async function measure(groups: number, minutes: number, budgetMb: number): Promise<Report> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', BENCH, '--groups', String(groups), '--minutes', String(minutes), '--cache-mb', String(budgetMb)], { timeout: 120_000 })
  return JSON.parse(stdout) as Report
}

test('the heap the cache holds stays near its budget, however many groups the task has', async () => {
  const budgetMb = 4
  const report = await measure(20_000, 2, budgetMb)
  console.log(`20,000 groups, ${budgetMb} MiB budget: the cache counted ${report.cacheCountedMb} MB and held ${report.cacheHeapMb} MB of heap`)
  // 20,000 groups hold about 70 MB of decoded state: far more than the budget, so the cache is full.
  expect(report.cacheCountedMb).toBeGreaterThan(budgetMb * 0.8)
  expect(report.cacheCountedMb).toBeLessThanOrEqual(budgetMb * 1.05)
  // The budget counts heap: what the cache holds is within twice its size (counting encoded bytes, eight times).
  expect(report.cacheHeapMb).toBeLessThan(budgetMb * 2)
})

test('the heap besides the cache does not grow with the number of groups with open windows', async () => {
  // Both above what the task's memo of record keys and groups holds (16,384 each, runtime/groups.ts), which is bounded.
  const few = await measure(20_000, 1, 4)
  const many = await measure(100_000, 1, 4)
  const perGroup = ((many.heapMb.withoutCache - few.heapMb.withoutCache) * 2 ** 20) / 80_000
  console.log(`heap besides a 4 MiB cache: ${few.heapMb.withoutCache} MB with 20,000 groups, ${many.heapMb.withoutCache} MB with 100,000 (${perGroup.toFixed(0)} bytes per group more)`)
  // With the close-time indexes in memory, each group with windows open in both of the pipeline's window operators
  // kept about 160 bytes more there (350 with the stale copies of later windows).
  expect(perGroup).toBeLessThan(80)
})
