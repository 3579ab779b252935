/**
 * What the processor's state costs in memory per group, against what its cache counts: one task of the iot pipeline
 * driven in this process (as the task scenario of processor-bench.ts), G distinct groups, each with one reading a
 * minute for `--minutes` minutes, committed every 25,000 readings and while a window boundary closes (as the runner does).
 *
 *   node --expose-gc dist/bench/state-memory.js [--groups 200000] [--minutes 3] [--cache-mb 64]
 *
 * Prints JSON: the time the readings and commits took (wall clock; a window boundary closes every group's window at
 * once), the V8 heap after a full collection (before the task, after the readings, and after the cache is
 * dropped, so what stays is what is not the cache: mainly the close-time indexes of the window operators), the bytes
 * the cache counted, and the process's peak RSS. No broker, no Kafka client.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { iotPipeline } from '../processor/index.js'
import { newMetrics } from '../processor/runtime/metrics.js'
import { Task } from '../processor/runtime/task.js'
import { CacheBudget, TaskStore } from '../processor/state/task-store.js'
import { planTopology } from '../processor/topology/plan.js'
import { benchCommand, number } from './args.js'
import { heapAfterGc } from './measure.js'
import { LocalTask } from './local-task.js'

const COMMAND = benchCommand('state-memory', 'node --expose-gc dist/bench/state-memory.js [--groups 200000] [--minutes 3] [--cache-mb 64]', "Heap per group of the iot pipeline's state, against what its cache counts.")
  .option('--groups <n>', 'distinct deviceId + sensor groups', number(), 200_000)
  .option('--minutes <n>', 'readings per group, one a minute of event time', number(), 3)
  .option('--cache-mb <n>', "the cache's byte budget in MiB", number(), 64)

async function main(): Promise<void> {
  const options = COMMAND.parse(process.argv.slice(2), { from: 'user' }).opts() as { groups: number; minutes: number; cacheMb: number }
  const plan = planTopology(iotPipeline({ inputTopic: 'bench-readings' }), { applicationId: 'bench-memory' })
  const stateDir = mkdtempSync(join(tmpdir(), 'brook-bench-memory-'))
  const budget = new CacheBudget(options.cacheMb * 1024 * 1024)
  const store = await TaskStore.open(stateDir, budget)
  const task = new Task(plan.subtopologies[0]!, 0, store, { plan, tables: new Map(), metrics: newMetrics() })
  await task.load()
  const before = heapAfterGc()
  const start = Date.UTC(2024, 0, 1)
  const began = performance.now()
  let offset = 0
  const local = new LocalTask(task)
  for (let minute = 0; minute < options.minutes; minute++) {
    for (let g = 0; g < options.groups; g++) {
      const deviceId = `device-${g}`
      const value = JSON.stringify({ deviceId, sensor: 'temperature', value: 20 + (g % 97) / 10, unit: 'C', ts: start + minute * 60_000 + (g % 60_000) })
      const pending = local.process({ key: Buffer.from(deviceId), value: Buffer.from(value), offset: String(offset++), timestamp: String(start), attributes: 0, headers: {} })
      if (pending) await pending
      if (offset % 25_000 === 0) await local.commit()
    }
  }
  await local.commit()
  const seconds = (performance.now() - began) / 1000
  const after = heapAfterGc()
  const counted = budget.used
  store.discardCache()
  const withoutCache = heapAfterGc()
  await store.close()
  rmSync(stateDir, { recursive: true, force: true })
  const perGroup = (bytes: number) => Math.round(bytes / options.groups)
  const cache = after - withoutCache
  process.stdout.write(
    `${JSON.stringify(
      {
        options,
        seconds: +seconds.toFixed(1),
        microsPerReading: +((seconds * 1e6) / (options.groups * options.minutes)).toFixed(1),
        heapMb: { before: +(before / 2 ** 20).toFixed(1), after: +(after / 2 ** 20).toFixed(1), withoutCache: +(withoutCache / 2 ** 20).toFixed(1) },
        cacheCountedMb: +(counted / 2 ** 20).toFixed(1),
        cacheHeapMb: +(cache / 2 ** 20).toFixed(1),
        cacheHeapPerCountedByte: +(cache / counted).toFixed(2),
        notCachePerGroupBytes: perGroup(withoutCache - before),
        // The most the process held at once (a window boundary's uncommitted work included), kB on Linux.
        peakRssMb: +((process.resourceUsage().maxRSS * 1024) / 2 ** 20).toFixed(1),
      },
      null,
      2,
    )}\n`,
  )
}

await main()
