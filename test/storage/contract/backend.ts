/**
 * What the partition-log contract needs from a storage backend. A backend runs the whole contract with one call:
 *
 *   partitionLogContract('LevelDB LogStore', openLevelBackend)
 *
 * Each scenario opens a fresh backend (its own empty data directory) and destroys it afterwards.
 */
import { afterEach } from 'vitest'
import type { PartitionLog } from '../../../storage/partition-log.js'

/** The surface of a partition log that the broker relies on. */
export type ContractLog = Pick<
  PartitionLog,
  | 'logStartOffset'
  | 'logEndOffset'
  | 'durableEndOffset'
  | 'highWatermark'
  | 'latestEpoch'
  | 'epochCache'
  | 'append'
  | 'read'
  | 'setHighWatermark'
  | 'truncateTo'
  | 'deleteBefore'
  | 'findBatchByTimestamp'
  | 'scan'
>

export interface BackendOptions {
  /** Bytes of recent batches a log keeps in memory; 1 keeps only the newest batch, so reads go to the store. */
  tailCacheBytes?: number
}

export interface LogBackend {
  /** The log of one partition of the backend's test topic, created when new, opened when it exists. */
  log(partition: number): Promise<ContractLog>
  /** How many storage writes the backend's group commit has made so far. */
  writes(): number
  /** Closes the backend cleanly and opens it again on the same data, as a broker restart does. */
  restart(): Promise<void>
  /** Closes the backend and removes its data. */
  destroy(): Promise<void>
}

export type BackendFactory = (options: BackendOptions) => Promise<LogBackend>

/** Returns an `open` for the current describe block; every backend it opens is destroyed after each scenario. */
export function backendsOf(factory: BackendFactory): (options?: BackendOptions) => Promise<LogBackend> {
  const opened: LogBackend[] = []
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((backend) => backend.destroy()))
  })
  return async (options = {}) => {
    const backend = await factory(options)
    opened.push(backend)
    return backend
  }
}
