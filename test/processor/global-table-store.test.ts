/**
 * Global tables on disk (processor/state/global-table-store.ts): the rows live in LevelDB under the state directory,
 * and only a cache of decoded values within the instance's byte budget is in memory. In process on a real LevelDB:
 * lookups through a cache far smaller than the table, updates and deletions over cached keys, two tables with the
 * same keys, leftovers of a killed instance. On a broker: a pipeline enriching from a table of thousands of rows with
 * a budget that holds a fraction of them, an update read while it runs, and the directory gone after it stops.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { Level } from 'level'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { GLOBAL_TABLES_DIRECTORY, GlobalTableStore } from '../../processor/state/global-table-store.js'
import { CacheBudget } from '../../processor/state/task-store.js'
import { TopologyBuilder, runPipeline, type RunningPipeline } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { readTopic, stateDir, values } from './helpers.js'

const json = (value: Buffer): unknown => JSON.parse(value.toString())
const row = (n: number): Buffer => Buffer.from(JSON.stringify({ n, site: `site-${n % 7}`, note: 'x'.repeat(40) }))

describe('GlobalTableStore on a real LevelDB', () => {
  test('a table many times the cache budget: every lookup is right and the cache stays within the budget', async () => {
    const budget = new CacheBudget(32 * 1024)
    const store = await GlobalTableStore.open(stateDir(), budget)
    try {
      const table = store.table(json)
      const keys = Array.from({ length: 5000 }, (_, n) => `device-${n}`)
      await store.write(keys.map((key, n) => ({ table, key, value: row(n) })))
      // Twice over, in an order that is neither the write order nor its reverse.
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < keys.length; i++) {
          const n = (i * 7919) % keys.length
          expect(table.get(keys[n]!)).toEqual({ n, site: `site-${n % 7}`, note: 'x'.repeat(40) })
          expect(budget.used).toBeLessThanOrEqual(budget.limitBytes)
        }
      }
      expect(store.cachedEntries).toBeGreaterThan(0)
      expect(store.cachedEntries).toBeLessThan(keys.length / 10)
      expect(table.get('device-none')).toBeUndefined()
    } finally {
      await store.close()
    }
    expect(budget.used).toBe(0)
  })

  test('updates and deletions replace what the cache holds; two tables keep their own values of one key', async () => {
    const budget = new CacheBudget(1024 * 1024)
    const store = await GlobalTableStore.open(stateDir(), budget)
    try {
      const limits = store.table(json)
      const plants = store.table((value) => value.toString().toUpperCase())
      await store.write([
        { table: limits, key: 'd1', value: Buffer.from('{"limit":7}') },
        { table: plants, key: 'd1', value: Buffer.from('north') },
      ])
      expect(limits.get('d1')).toEqual({ limit: 7 })
      expect(plants.get('d1')).toBe('NORTH')
      // A key looked up while absent is cached as absent, and a row written after makes it present.
      expect(limits.get('d2')).toBeUndefined()
      await store.write([
        { table: limits, key: 'd1', value: Buffer.from('{"limit":8}') },
        { table: limits, key: 'd2', value: Buffer.from('{"limit":3}') },
      ])
      expect(limits.get('d1')).toEqual({ limit: 8 })
      expect(limits.get('d2')).toEqual({ limit: 3 })
      expect(plants.get('d1')).toBe('NORTH')
      await store.write([{ table: limits, key: 'd1', value: null }])
      expect(limits.get('d1')).toBeUndefined()
      expect(plants.get('d1')).toBe('NORTH')
      // Keys are strings, as in a Map: 42 does not find the row of '42', nor undefined that of 'undefined'.
      await store.write([
        { table: limits, key: '42', value: Buffer.from('{"limit":42}') },
        { table: limits, key: 'undefined', value: Buffer.from('{"limit":0}') },
      ])
      expect(limits.get('42')).toEqual({ limit: 42 })
      expect(limits.get(42 as unknown as string)).toBeUndefined()
      expect(limits.get(undefined as unknown as string)).toBeUndefined()
    } finally {
      await store.close()
    }
  })

  test('open starts empty over what a killed instance left, and close removes the directory', async () => {
    const dir = stateDir()
    const leftover = new Level<string, string>(join(dir, GLOBAL_TABLES_DIRECTORY))
    await leftover.put('0:d1', '{"limit":99}')
    await leftover.close()
    const store = await GlobalTableStore.open(dir, new CacheBudget(1024 * 1024))
    expect(store.table(json).get('d1')).toBeUndefined()
    await store.close()
    expect(existsSync(join(dir, GLOBAL_TABLES_DIRECTORY))).toBe(false)
  })
})

describe('a pipeline enriching from a global table larger than its cache', () => {
  const ROWS = 3000
  let setting: KafkajsBroker
  let pipeline: RunningPipeline | undefined
  const dir = stateDir()

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'global-table-store' })
    await setting.admin.createTopics({ topics: [{ topic: 'gts-limits', numPartitions: 2, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] })
    await setting.producer.send({ topic: 'gts-limits', messages: Array.from({ length: ROWS }, (_, n) => ({ key: `d${n}`, value: JSON.stringify({ limit: n, note: 'y'.repeat(60) }) })) })
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test('every event finds its row, an update is read while it runs, and the rows leave with the instance', async () => {
    const b = new TopologyBuilder()
    const limits = b.globalTable<{ limit: number }>('gts-limits')
    b.stream<{ device: string; seq: number }>('gts-events')
      .enrich(limits, (e, limit: { limit: number } | undefined) => ({ ...e, limit: limit?.limit ?? null }), { key: (e) => e.device })
      .to('gts-enriched')
    // 64 KiB holds a few hundred of the 3,000 rows decoded.
    pipeline = await runPipeline(b.build(), { applicationId: 'gts', bootstrapServers: setting.broker.address, stateDir: dir, commitIntervalMs: 200, partitions: 1, cacheMaxBytes: 64 * 1024, log: () => {} })
    expect(existsSync(join(dir, GLOBAL_TABLES_DIRECTORY))).toBe(true)
    const devices = Array.from({ length: 600 }, (_, i) => `d${(i * 37) % ROWS}`)
    await setting.producer.send({ topic: 'gts-events', messages: [...devices, 'unknown'].map((device, seq) => ({ key: device, value: JSON.stringify({ device, seq }) })) })
    const enriched = values<{ device: string; seq: number; limit: number | null }>(await readTopic(setting.kafka, 'gts-enriched', (r) => r.length >= devices.length + 1))
    expect(enriched).toHaveLength(devices.length + 1)
    for (const e of enriched) expect(e.limit).toBe(e.device === 'unknown' ? null : Number(e.device.slice(1)))

    // d5's row changes: a later event of d5 reads the new value (the table keeps being read).
    await setting.producer.send({ topic: 'gts-limits', messages: [{ key: 'd5', value: JSON.stringify({ limit: -5 }) }] })
    let seq = 10_000
    await waitFor("d5's new limit", async () => {
      await setting.producer.send({ topic: 'gts-events', messages: [{ key: 'd5', value: JSON.stringify({ device: 'd5', seq: ++seq }) }] })
      const late = values<{ device: string; seq: number; limit: number }>(await readTopic(setting.kafka, 'gts-enriched', (r) => r.some((x) => JSON.parse(x.value!).seq === seq)))
      return late.find((e) => e.seq === seq)?.limit === -5
    })
    await pipeline.stop()
    pipeline = undefined
    expect(existsSync(join(dir, GLOBAL_TABLES_DIRECTORY))).toBe(false)
  })
})
