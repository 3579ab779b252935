/**
 * What a global table costs an instance: R rows of a table topic (JSON values of about 100 bytes, as a table of
 * device limits or sites), held as the processor holds them (`--holder store`: processor/state/global-table-store.ts,
 * LevelDB with a cache of decoded values within `--cache-mb`) or as a Map of every decoded row (`--holder map`, what
 * the processor held before the store), then looked up as enrichment does.
 *
 *   node --expose-gc dist/bench/global-table.js [--holder store|map] [--rows 1000000] [--cache-mb 64] [--lookups 1000000] [--hot-keys 10000]
 *
 * Prints JSON: the time loading the rows took (in batches of 500, as kafkajs hands them over), the V8 heap after a
 * full collection before and after, the process's RSS after the lookups and its peak, and the lookup cost in µs per lookup: `hot` over
 * `--hot-keys` keys (a fleet whose readings name few table keys), `uniform` over every row. Run each holder in a
 * process of its own: the peak RSS is the process's. No broker, no Kafka client.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GlobalTableStore, type TableLookup } from '../processor/state/global-table-store.js'
import { CacheBudget } from '../processor/state/task-store.js'
import { benchCommand, number } from './args.js'
import { heapAfterGc } from './measure.js'
import { Option } from '@commander-js/extra-typings'

const COMMAND = benchCommand(
  'global-table',
  'node --expose-gc dist/bench/global-table.js [--holder store|map] [--rows 1000000] [--cache-mb 64] [--lookups 1000000] [--hot-keys 10000]',
  "A global table's heap, RSS, load and lookup time: in the store (LevelDB and a cache within a budget) or in a Map.",
)
  .addOption(new Option('--holder <holder>', 'where the rows are held').choices(['store', 'map'] as const).default('store' as const))
  .option('--rows <n>', 'rows in the table', number(1), 1_000_000)
  .option('--cache-mb <n>', "the store's cache budget in MiB (the processor's cacheMaxBytes default: 64)", number(), 64)
  .option('--lookups <n>', 'lookups per pattern', number(1), 1_000_000)
  .option('--hot-keys <n>', 'distinct keys of the hot pattern', number(1), 10_000)

const BATCH = 500

const json = (value: Buffer): unknown => JSON.parse(value.toString())
const rowOf = (n: number): Buffer => Buffer.from(JSON.stringify({ deviceId: `device-${n}`, limit: 50 + (n % 40), site: `site-${n % 97}`, unit: 'C', owner: 'plant operations' }))

/** A deterministic sequence of key indexes in [0, range) (a linear congruential generator). */
function* indexes(count: number, range: number): Generator<number> {
  let x = 12345
  for (let i = 0; i < count; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    yield x % range
  }
}

async function main(): Promise<void> {
  const options = COMMAND.parse(process.argv.slice(2), { from: 'user' }).opts()
  const before = heapAfterGc()
  const dir = mkdtempSync(join(tmpdir(), 'brook-bench-global-table-'))
  const budget = new CacheBudget(options.cacheMb * 1024 * 1024)
  let store: GlobalTableStore | undefined
  let table: TableLookup
  const loadStart = performance.now()
  if (options.holder === 'store') {
    store = await GlobalTableStore.open(dir, budget)
    const stored = store.table(json)
    table = stored
    for (let n = 0; n < options.rows; n += BATCH) {
      const rows = []
      for (let i = n; i < Math.min(options.rows, n + BATCH); i++) {
        const value = rowOf(i)
        json(value) // the deserializer's check of each row, as the tables' consumer makes it
        rows.push({ table: stored, key: `device-${i}`, value })
      }
      await store.write(rows)
    }
  } else {
    const map = new Map<string, unknown>()
    table = map
    for (let i = 0; i < options.rows; i++) map.set(`device-${i}`, json(rowOf(i)))
  }
  const loadSeconds = (performance.now() - loadStart) / 1000
  const loaded = heapAfterGc()
  const lookup = (pattern: Generator<number>): number => {
    const began = performance.now()
    let found = 0
    for (const i of pattern) if (table.get(`device-${i}`) !== undefined) found++
    if (found !== options.lookups) throw new Error(`${options.lookups - found} lookups found nothing`)
    return +(((performance.now() - began) * 1000) / options.lookups).toFixed(2)
  }
  const hotMicros = lookup(indexes(options.lookups, Math.min(options.hotKeys, options.rows)))
  const uniformMicros = lookup(indexes(options.lookups, options.rows))
  const after = heapAfterGc()
  const rss = process.memoryUsage().rss
  const counted = budget.used
  await store?.close()
  rmSync(dir, { recursive: true, force: true })
  const mb = (bytes: number) => +(bytes / 2 ** 20).toFixed(1)
  process.stdout.write(
    `${JSON.stringify({
      options,
      loadSeconds: +loadSeconds.toFixed(1),
      heapMb: { before: mb(before), loaded: mb(loaded), afterLookups: mb(after) },
      cacheCountedMb: store ? mb(counted) : null,
      rssMb: mb(rss),
      peakRssMb: mb(process.resourceUsage().maxRSS * 1024),
      lookupMicros: { hot: hotMicros, uniform: uniformMicros },
    })}\n`,
  )
}

await main()
