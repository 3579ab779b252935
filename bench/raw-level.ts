/**
 * Scenario: raw LevelDB write and read of the bench's batches (see level-worker.ts), the limits Brook's produce and
 * fetch are compared with.
 */
import { rmSync } from 'node:fs'
import type { CpuUse, Throughput } from './measure.js'
import type { LevelWorkerInput } from './level-worker.js'
import { spawnWorker } from './worker.js'

export interface RawLevelResult {
  write: Throughput & { cpu?: CpuUse }
  /** Read at once on the same handle, as Brook's first fetch. */
  read: Throughput & { cpu?: CpuUse }
  /**
   * Read after closing and reopening the database, as Brook's fetch after a restart, once the compaction the reopen
   * starts is done (`settledMs` after the open).
   */
  readReopened: Throughput & { cpu?: CpuUse; settledMs: number }
}

export async function rawLevel(input: LevelWorkerInput): Promise<RawLevelResult> {
  try {
    const worker = spawnWorker('level-worker.js', input)
    const write = await worker.next<RawLevelResult['write']>()
    const read = await worker.next<RawLevelResult['read']>()
    const readReopened = await worker.next<RawLevelResult['readReopened']>()
    await worker.exited
    return { write, read, readReopened }
  } finally {
    rmSync(input.dir, { recursive: true, force: true })
  }
}
