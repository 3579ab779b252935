/**
 * What the LevelDB benches share (write-size.ts and cache-memory.ts; level-worker.ts its keys): each variant runs in
 * a fresh worker process on a fresh database under a work directory, the runs interleaving the variants so that a
 * burst of other load on the machine does not land on one variant only; figures are reported as median [min..max].
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { LOG_KEY_SIZE, PARTITION_KEY_SIZE, partitionKey } from '../storage/database.js'
import { median } from './measure.js'
import { spawnWorker } from './worker.js'

/**
 * Runs `script` (a worker of this folder) `runs` times for each variant, interleaved; `input` gets the variant and a
 * database directory of its own, removed after the run. Each result is printed as a JSON line as it comes.
 */
export async function interleavedRuns<V, R>(options: {
  script: string
  variants: readonly V[]
  runs: number
  work: string
  input: (variant: V, dir: string) => object
}): Promise<Map<V, R[]>> {
  const results = new Map<V, R[]>()
  for (let r = 0; r < options.runs; r++) {
    for (const [i, variant] of options.variants.entries()) {
      const dir = join(options.work, `db-${i}-${r}`)
      const worker = spawnWorker(options.script, options.input(variant, dir))
      const result = await worker.next<R>()
      await worker.exited
      rmSync(dir, { recursive: true, force: true })
      console.log(JSON.stringify(result))
      results.set(variant, [...(results.get(variant) ?? []), result])
    }
  }
  return results
}

/** `median [min..max]` of `values`, with `digits` decimals. */
export function spread(values: number[], digits = 0): string {
  const f = (v: number): string => v.toFixed(digits)
  return `${f(median(values))} [${f(Math.min(...values))}..${f(Math.max(...values))}]`
}

/**
 * Log keys shaped like Brook's (topicId 16 | partition 4 | lastOffset 8) for `partitions` partitions of a new topic,
 * each batch taking `recordsPerBatch` offsets: `next(p)` gives partition p's next batch its key and offsets.
 */
export function brookLogKeys(partitions: number, recordsPerBatch: number): { next(partition: number): { key: Buffer; baseOffset: bigint; lastOffset: bigint } } {
  const topicId = randomUUID()
  const prefixes = Array.from({ length: partitions }, (_, p) => partitionKey(topicId, p))
  const nextOffset = new Array<bigint>(partitions).fill(0n)
  return {
    next(partition) {
      const baseOffset = nextOffset[partition]!
      const lastOffset = baseOffset + BigInt(recordsPerBatch) - 1n
      nextOffset[partition] = lastOffset + 1n
      const key = Buffer.allocUnsafe(LOG_KEY_SIZE)
      prefixes[partition]!.copy(key, 0)
      key.writeBigInt64BE(lastOffset, PARTITION_KEY_SIZE)
      return { key, baseOffset, lastOffset }
    },
  }
}
