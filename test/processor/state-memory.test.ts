/**
 * The state cache's byte budget bounds the heap it holds, not only the encoded bytes it counts: the iot pipeline's
 * decoded entries (accumulators, percentile sketches) take about eight times their encoded form, so a budget that
 * counted encoded bytes held eight times its size. Measured by `bench/state-memory.ts` in its own process (V8's
 * heap after full collections, with the cache and after dropping it), for a task of the iot pipeline with more
 * groups than its budget holds.
 */
import { expect, test } from 'vitest'
import { execFile } from 'node:child_process'
import { resolve } from 'node:path'
import { promisify } from 'node:util'

const BENCH = resolve(import.meta.dirname, '../../dist/bench/state-memory.js')

test('the heap the cache holds stays near its budget, however many groups the task has', async () => {
  const budgetMb = 4
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', BENCH, '--groups', '20000', '--minutes', '2', '--cache-mb', String(budgetMb)], { timeout: 120_000 })
  const report = JSON.parse(stdout) as { cacheCountedMb: number; cacheHeapMb: number; heapMb: { after: number; withoutCache: number } }
  console.log(`20,000 groups, ${budgetMb} MiB budget: the cache counted ${report.cacheCountedMb} MB and held ${report.cacheHeapMb} MB of heap`)
  // 20,000 groups hold about 70 MB of decoded state: far more than the budget, so the cache is full.
  expect(report.cacheCountedMb).toBeGreaterThan(budgetMb * 0.8)
  expect(report.cacheCountedMb).toBeLessThanOrEqual(budgetMb * 1.05)
  // The budget counts heap: what the cache holds is within twice its size (counting encoded bytes, eight times).
  expect(report.cacheHeapMb).toBeLessThan(budgetMb * 2)
})
