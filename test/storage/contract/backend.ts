/**
 * What the partition-log contract needs from a storage backend. A backend runs the whole contract with one call:
 *
 *   partitionLogContract('LevelDB LogStore', openLevelBackend)
 *
 * The scenarios are written against storage's PartitionLog interface, so a second engine runs them unchanged. Each
 * scenario opens a fresh backend (its own empty data directory) and destroys it afterwards.
 */
import { afterEach } from 'vitest'
import type { PartitionLog } from '../../../storage/partition-log.js'

export interface BackendOptions {
  /** Bytes of recently appended batches the backend keeps in memory for all its logs; 0 sends every read to the store. */
  cacheMaxBytes?: number
}

export interface LogBackend {
  /** The log of one partition of the backend's test topic, created when new, opened when it exists. */
  log(partition: number): Promise<PartitionLog>
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
