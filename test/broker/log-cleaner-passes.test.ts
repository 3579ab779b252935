/**
 * The log cleaner's bounded memory, in process on real LevelDB: a partition with more keys than the key map holds
 * (log.cleaner.dedupe.buffer.size) is compacted in several passes and ends exactly where one large pass ends, and the
 * cleaned-up-to offset and the tombstones' delete horizons are kept with the log, so a restarted node does not compact
 * everything again and still drops a tombstone of an idle log once it expires (KIP-534), delete.retention.ms after the
 * pass that first compacted it whatever its timestamp.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeRecords, encodeRecordBatch } from '../../protocol/record-batch.js'
import { LogStore } from '../../storage/log-store.js'
import { DEFAULT_CONFIG, type BrokerConfig } from '../../broker/config.js'
import { LogCleaner, MAX_TOMBSTONE_HORIZONS } from '../../broker/log-cleaner.js'
import { Logger } from '../../broker/logger.js'
import { TopicManager } from '../../broker/topics.js'
import type { Partition } from '../../broker/partition.js'
import { AppendOrigin } from '../../storage/producer-state.js'

const TOPIC = 'meters'
const HOUR = 3_600_000
const NOW = 1_800_000_000_000

/** A logger that keeps its info lines, to see what the cleaner reports. */
class KeptLines extends Logger {
  readonly lines: string[] = []
  constructor() {
    super('test', 'error')
  }
  override info(text: string): void {
    this.lines.push(text)
  }
}

interface Node {
  store: LogStore
  cleaner: LogCleaner
  logger: KeptLines
  partition: Partition
}

const dirs: string[] = []
const stores: LogStore[] = []
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close().catch(() => undefined)))
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

/** Opens (or reopens) a node's storage in `dir` with a cleaner configured by `config`; creates the topic when new. */
async function node(dir: string, config: Partial<BrokerConfig>): Promise<Node> {
  const store = await LogStore.open(dir)
  stores.push(store)
  const brokerConfig = { ...DEFAULT_CONFIG, ...config }
  const topics = new TopicManager(store, 1, brokerConfig)
  await topics.load(await store.listTopics())
  const overrides = { 'cleanup.policy': 'compact', 'delete.retention.ms': String(HOUR / 2), 'min.cleanable.dirty.ratio': '0.01' }
  const topic = topics.get(TOPIC) ?? (await topics.create({ name: TOPIC, partitions: 1, replicationFactor: 1, config: topics.parseConfig(overrides) }))
  const logger = new KeptLines()
  return { store, cleaner: new LogCleaner(topics, brokerConfig, logger), logger, partition: topic.partitions[0]! }
}

async function freshNode(config: Partial<BrokerConfig>): Promise<{ dir: string; node: Node }> {
  const dir = await mkdtemp(join(tmpdir(), 'brook-cleaner-'))
  dirs.push(dir)
  return { dir, node: await node(dir, config) }
}

interface Written {
  key: string
  value: string | null
  timestamp: bigint
}

/**
 * 40 batches of 8 records over 120 keys, an hour old to now, with one record in ten a tombstone: compacted for the
 * first time, every tombstone stays, however old (its delete horizon starts with that pass).
 */
function workload(): Written[][] {
  let seed = 7
  const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
  return Array.from({ length: 40 }, (_, b) =>
    Array.from({ length: 8 }, (_, i) => {
      const n = b * 8 + i
      return { key: `meter-${Math.floor(next() * 120)}`, value: next() < 0.1 ? null : `reading-${n}`, timestamp: BigInt(NOW - HOUR + n * 10_000) }
    }),
  )
}

async function appendAll(partition: Partition, batches: Written[][]): Promise<void> {
  for (const records of batches) {
    await partition.appendAsLeader(
      encodeRecordBatch(records.map((r) => ({ key: Buffer.from(r.key), value: r.value === null ? null : Buffer.from(r.value), timestamp: r.timestamp }))),
      { origin: AppendOrigin.CLIENT },
    )
  }
}

/** Every record the log holds: `offset key value`. */
async function contents(partition: Partition): Promise<string[]> {
  const lines: string[] = []
  for await (const batch of partition.log.batches(partition.logStartOffset, partition.highWatermark)) {
    for (const r of decodeRecords(batch.bytes)) lines.push(`${r.offset} ${r.key} ${r.value ?? 'null'}`)
  }
  return lines
}

/** What compaction must leave, computed directly: the last batch is never cleaned, nor superseded from it. */
function reference(batches: Written[][]): string[] {
  const records = batches.flatMap((records, b) => records.map((r, i) => ({ ...r, offset: b * 8 + i, cleanable: b < batches.length - 1 })))
  const latest = new Map<string, number>()
  for (const r of records) if (r.cleanable) latest.set(r.key, r.offset)
  return records
    .filter((r) => !r.cleanable || latest.get(r.key) === r.offset)
    .map((r) => `${r.offset} ${r.key} ${r.value ?? 'null'}`)
}

describe('the log cleaner in bounded memory', () => {
  it('compacts a partition with more keys than its map holds in several passes, to what one pass gives', async () => {
    const batches = workload()
    const small = (await freshNode({ logCleanerDedupeBufferSize: 1024 })).node
    const large = (await freshNode({})).node
    await appendAll(small.partition, batches)
    await appendAll(large.partition, batches)

    await small.cleaner.runOnce(NOW)
    await large.cleaner.runOnce(NOW)

    expect(await contents(small.partition)).toEqual(await contents(large.partition))
    expect(await contents(large.partition)).toEqual(reference(batches))
    // 1024 bytes hold 38 keys (24 bytes each, 90% full); one pass over everything needs 120.
    expect(small.logger.lines.join('\n')).toMatch(/compaction removed \d+ records below offset 312 in [3-9] passes/)
    expect(large.logger.lines.join('\n')).toMatch(/compaction removed \d+ records below offset 312$/m)
    expect(small.partition.log.cleanerCheckpoint.cleanedUpTo).toBe(312n)
  })

  it('keeps the cleaned-up-to offset across a restart: an unchanged log is not compacted again', async () => {
    const { dir, node: first } = await freshNode({})
    await appendAll(first.partition, workload())
    await first.cleaner.runOnce(NOW)
    const checkpoint = first.partition.log.cleanerCheckpoint
    await first.store.close()

    const second = await node(dir, {})
    const writes = second.store.commit.stats.writes
    await second.cleaner.runOnce(NOW + 1000)

    expect(second.partition.log.cleanerCheckpoint).toEqual(checkpoint)
    // Nothing dirty: no pass, so not even the checkpoint was written.
    expect(second.store.commit.stats.writes).toBe(writes)
    expect(second.logger.lines).toEqual([])

    // New records make the log dirty again, and compaction resumes from the checkpoint.
    await appendAll(second.partition, [[{ key: 'meter-1', value: 'late', timestamp: BigInt(NOW) }], [{ key: 'meter-2', value: 'later', timestamp: BigInt(NOW) }]])
    await second.cleaner.runOnce(NOW + 2000)
    expect(second.partition.log.cleanerCheckpoint.cleanedUpTo).toBe(321n)
  })

  it('still drops a tombstone of an idle log once it expires after a restart (KIP-534)', async () => {
    const { dir, node: first } = await freshNode({})
    const young = BigInt(NOW - 1000)
    await appendAll(first.partition, [[{ key: 'meter-9', value: 'on', timestamp: young }], [{ key: 'meter-9', value: null, timestamp: young }], [{ key: 'meter-5', value: 'last', timestamp: young }]])
    await first.cleaner.runOnce(NOW)
    expect(await contents(first.partition)).toEqual(['1 meter-9 null', '2 meter-5 last'])
    expect(first.partition.log.cleanerCheckpoint.tombstonesExpireAtMs).toBe(NOW + HOUR / 2)
    await first.store.close()

    const second = await node(dir, {})
    await second.cleaner.runOnce(NOW + HOUR)

    expect(await contents(second.partition)).toEqual(['2 meter-5 last'])
    expect(second.partition.log.cleanerCheckpoint.tombstonesExpireAtMs).toBeNull()
  })

  it('keeps a tombstone for delete.retention.ms after the pass that first compacts it, however old its timestamp (KIP-534)', async () => {
    const { dir, node: first } = await freshNode({})
    // Replayed or mirrored records carry old CreateTime timestamps: two hours, past delete.retention.ms (half an hour).
    const old = BigInt(NOW - 2 * HOUR)
    await appendAll(first.partition, [[{ key: 'meter-9', value: 'on', timestamp: old }], [{ key: 'meter-9', value: null, timestamp: old }], [{ key: 'meter-5', value: 'last', timestamp: old }]])
    await first.cleaner.runOnce(NOW)
    // A consumer that read meter-9's value still has half an hour to read its deletion.
    expect(await contents(first.partition)).toEqual(['1 meter-9 null', '2 meter-5 last'])

    // More records, compacted at NOW + 20 min: the tombstone keeps the horizon of its first pass, across a restart.
    await appendAll(first.partition, [
      [{ key: 'meter-7', value: null, timestamp: old }],
      [{ key: 'meter-5', value: 'later', timestamp: old }],
      [{ key: 'meter-1', value: 'last', timestamp: old }],
    ])
    await first.cleaner.runOnce(NOW + HOUR / 3)
    expect(await contents(first.partition)).toEqual(['1 meter-9 null', '3 meter-7 null', '4 meter-5 later', '5 meter-1 last'])
    await first.store.close()

    const second = await node(dir, {})
    await second.cleaner.runOnce(NOW + HOUR / 2 - 1)
    expect(await contents(second.partition)).toEqual(['1 meter-9 null', '3 meter-7 null', '4 meter-5 later', '5 meter-1 last'])
    await second.cleaner.runOnce(NOW + HOUR / 2)
    expect(await contents(second.partition)).toEqual(['3 meter-7 null', '4 meter-5 later', '5 meter-1 last'])
    await second.cleaner.runOnce(NOW + HOUR / 3 + HOUR / 2)
    expect(await contents(second.partition)).toEqual(['4 meter-5 later', '5 meter-1 last'])
  })

  it('keeps at most MAX_TOMBSTONE_HORIZONS horizons however many passes keep new tombstones, and no tombstone goes before its own horizon', async () => {
    const { node: cleaning } = await freshNode({})
    const MINUTE = 60_000
    const passes = 3 * MAX_TOMBSTONE_HORIZONS
    // Each pass, a minute after the one before, compacts one new tombstone (followed by a record, so that the
    // tombstone is not in the last batch, which compaction leaves alone).
    for (let i = 0; i < passes; i++) {
      await appendAll(cleaning.partition, [[{ key: `gone-${i}`, value: null, timestamp: BigInt(NOW) }], [{ key: 'meter-0', value: `v${i}`, timestamp: BigInt(NOW) }]])
      await cleaning.cleaner.runOnce(NOW + i * MINUTE)
      expect(cleaning.partition.log.cleanerCheckpoint.tombstoneHorizons!.length).toBeLessThanOrEqual(MAX_TOMBSTONE_HORIZONS)
    }
    const tombstones = async () => (await contents(cleaning.partition)).filter((line) => line.endsWith(' null')).length
    expect(await tombstones()).toBe(passes)
    // Tombstone k's horizon is its pass plus delete.retention.ms: a moment before it, tombstones k and after remain
    // (merged ranges keep theirs longer, never shorter).
    for (let k = 0; k < passes; k++) {
      await cleaning.cleaner.runOnce(NOW + k * MINUTE + HOUR / 2 - 1)
      expect(await tombstones()).toBeGreaterThanOrEqual(passes - k)
    }
    // Past the last pass's horizon, every tombstone has gone.
    await cleaning.cleaner.runOnce(NOW + (passes - 1) * MINUTE + HOUR / 2)
    expect(await tombstones()).toBe(0)
    expect(cleaning.partition.log.cleanerCheckpoint.tombstoneHorizons).toEqual([])
  })
})
