/**
 * The log cleaner's bounded memory, in process on real LevelDB: a partition with more keys than the key map holds
 * (log.cleaner.dedupe.buffer.size) is compacted in several passes and ends exactly where one large pass ends, and the
 * cleaned-up-to offset and the tombstones' delete horizons are kept with the log, so a restarted node does not compact
 * everything again and still drops a tombstone of an idle log once it expires (KIP-534), delete.retention.ms after the
 * pass that first compacted it whatever its timestamp.
 *
 * Which batches a pass may clean (Kafka's LogCleanerManager): min.compaction.lag.ms holds back a batch stamped ahead of
 * the clock, and every batch after it, only when it is above 0; max.compaction.lag.ms dates a dirty batch by its newest
 * record, as Kafka dates a segment by its first batch's maxTimestamp.
 *
 * And transactions under compaction, as Kafka's cleaner treats them (CleanedTransactionMetadata): an aborted
 * transaction's batches go in the first pass, its ABORT marker (and index entry) once nothing of it is left and the
 * delete horizon has passed, a COMMIT marker once every record of its transaction was superseded and the horizon has
 * passed; read_committed and read_uncommitted readers (modelled as Kafka's consumer filters a Fetch answer) see what
 * they saw before, less what compaction supersedes.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Attribute, decodeRecords, encodeRecordBatch, type Record } from '../../protocol/record-batch.js'
import { LogStore } from '../../storage/log-store.js'
import { DEFAULT_CONFIG, type BrokerConfig } from '../../broker/config.js'
import { LogCleaner, MAX_TOMBSTONE_HORIZONS } from '../../broker/log-cleaner.js'
import { Logger } from '../../broker/logger.js'
import { TopicManager } from '../../broker/topics.js'
import type { Partition } from '../../broker/partition.js'
import { AppendOrigin, ControlType, producerBatchOfStored } from '../../storage/producer-state.js'
import type { StoredBatch } from '../../storage/partition-log.js'

const TOPIC = 'meters'
const HOUR = 3_600_000
const NOW = 1_800_000_000_000

/** A logger that keeps its info and error lines, to see what the cleaner reports. */
class KeptLines extends Logger {
  readonly lines: string[] = []
  readonly errors: string[] = []
  constructor() {
    super('test', 'error')
  }
  override info(text: string): void {
    this.lines.push(text)
  }
  override error(text: string): void {
    this.errors.push(text)
  }
}

interface Node {
  store: LogStore
  topics: TopicManager
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
async function node(dir: string, config: Partial<BrokerConfig>, replicationFactor = 1): Promise<Node> {
  const store = await LogStore.open(dir)
  stores.push(store)
  const brokerConfig = { ...DEFAULT_CONFIG, ...config }
  const topics = new TopicManager(store, 1, brokerConfig)
  await topics.load(await store.listTopics())
  const overrides = { 'cleanup.policy': 'compact', 'delete.retention.ms': String(HOUR / 2), 'min.cleanable.dirty.ratio': '0.01' }
  const topic = topics.get(TOPIC) ?? (await topics.create({ name: TOPIC, partitions: 1, replicationFactor, config: topics.parseConfig(overrides) }))
  const logger = new KeptLines()
  return { store, topics, cleaner: new LogCleaner(topics, brokerConfig, logger), logger, partition: topic.partitions[0]! }
}

/** Sets the topic's configs to the ones `node` created it with, changed by `overrides`. */
async function setTopicConfigs(node: Node, overrides: { readonly [name: string]: string }): Promise<void> {
  const topic = node.partition.topic
  await node.topics.setConfig(topic, node.topics.parseConfig({ ...topic.config.overrides, ...overrides }))
}

async function freshNode(config: Partial<BrokerConfig>, replicationFactor = 1): Promise<{ dir: string; node: Node }> {
  const dir = await mkdtemp(join(tmpdir(), 'brook-cleaner-'))
  dirs.push(dir)
  return { dir, node: await node(dir, config, replicationFactor) }
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

function line(record: Record): string {
  return `${record.offset} ${record.key} ${record.value ?? 'null'}`
}

/** The log as stored: `offset key value` per record, `offset COMMIT` or `offset ABORT` per transaction marker. */
async function contents(partition: Partition): Promise<string[]> {
  const lines: string[] = []
  for await (const batch of partition.log.batches(partition.logStartOffset, partition.highWatermark)) {
    if (batch.isControl) lines.push(`${batch.baseOffset} ${markerName(batch)}`)
    else lines.push(...decodeRecords(batch.bytes).map(line))
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

  it('marks a partition with a batch of more keys than the map holds uncleanable: one error line, and later passes skip it', async () => {
    const { dir, node: small } = await freshNode({ logCleanerDedupeBufferSize: 1024 })
    // 60 keys in one batch, where the map holds 38; a newer value of one of them; the last batch is never cleaned.
    const batches = [
      Array.from({ length: 60 }, (_, i) => ({ key: `meter-${i}`, value: `reading-${i}`, timestamp: BigInt(NOW - HOUR + i) })),
      [{ key: 'meter-0', value: 'newer', timestamp: BigInt(NOW - 2000) }],
      [{ key: 'meter-1', value: 'last', timestamp: BigInt(NOW - 1000) }],
    ]
    await appendAll(small.partition, batches)
    for (let pass = 0; pass < 3; pass++) await small.cleaner.runOnce(NOW + pass * 1000)
    expect(small.logger.errors).toEqual([
      "cleaning meters-0 failed: a batch of 60 keys at offset 0 does not fit the cleaner's map (log.cleaner.dedupe.buffer.size); the partition is marked uncleanable: its compaction is skipped until the node restarts",
    ])
    expect(await contents(small.partition)).toHaveLength(62)

    // A node restarted with a map large enough compacts it: meter-0's first value goes.
    await small.store.close()
    const restarted = await node(dir, {})
    await restarted.cleaner.runOnce(NOW)
    expect(restarted.logger.errors).toEqual([])
    expect((await contents(restarted.partition)).filter((l) => l.includes(' meter-0 '))).toEqual(['60 meter-0 newer'])
    expect(await contents(restarted.partition)).toHaveLength(61)
  })

  it('compacts a log of 150,000 single-record batches in one pass, handing its removals to the log in chunks', async () => {
    // A pass that removed most of such a log handed every removal to the log in one rewrite (its chunks were bounded
    // by rewritten bytes, and a removed batch has none), whose push(...changes) threw RangeError (Maximum call stack
    // size exceeded) past about 125,000 changes: the partition was marked uncleanable.
    const { node: many } = await freshNode({})
    const batches = Array.from({ length: 150_000 }, (_, n) => [{ key: `meter-${n % 10}`, value: `reading-${n}`, timestamp: BigInt(NOW - HOUR + n) }])
    for (let from = 0; from < batches.length; from += 5000) {
      const appends = batches.slice(from, from + 5000).map(([r]) =>
        many.partition.appendAsLeader(encodeRecordBatch([{ key: Buffer.from(r!.key), value: Buffer.from(r!.value), timestamp: r!.timestamp }]), { origin: AppendOrigin.CLIENT }),
      )
      await Promise.all(appends)
    }
    expect(many.partition.logEndOffset).toBe(150_000n)
    await many.cleaner.runOnce(NOW)
    expect(many.logger.errors).toEqual([])
    // The last batch (meter-9's) is never cleaned (the active end of the log), nor superseded from it: meter-9 keeps
    // its latest record below it too.
    expect(await contents(many.partition)).toEqual(Array.from({ length: 11 }, (_, k) => 149_989 + k).map((n) => `${n} meter-${n % 10} reading-${n}`))
  }, 300_000)

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

  it('stops halfway when the node stops, leaving every key\'s latest record, and the next start compacts the rest to what one pass gives', async () => {
    const batches = workload()
    const { dir, node: first } = await freshNode({ logCleanerDedupeBufferSize: 1024 })
    await appendAll(first.partition, batches)
    const before = await contents(first.partition)
    // The node stops right after the first pass's rewrite: the cleaner must not go on with the other passes.
    const log = first.partition.log
    const rewrite = log.rewrite.bind(log)
    let stopped: Promise<void> | null = null
    log.rewrite = async (...args: Parameters<typeof rewrite>) => {
      await rewrite(...args)
      stopped ??= first.cleaner.stop()
    }
    await first.cleaner.runOnce(NOW)
    await stopped

    const cleanedUpTo = log.cleanerCheckpoint.cleanedUpTo
    expect(cleanedUpTo).toBeGreaterThan(0n)
    expect(cleanedUpTo).toBeLessThan(312n)
    expect(first.logger.lines.join('\n')).toMatch(new RegExp(`${TOPIC}-0: cleaning stopped halfway for the node's stop; its next start goes on from offset ${cleanedUpTo}`))
    expect(first.logger.lines.join('\n')).not.toMatch(/compaction removed/)
    // What is left is a log compaction could have left: a subset of what was written, holding all one pass keeps.
    const halfway = await contents(first.partition)
    expect(halfway.length).toBeLessThan(before.length)
    expect(before).toEqual(expect.arrayContaining(halfway))
    expect(halfway).toEqual(expect.arrayContaining(reference(batches)))
    // Stopped, it starts no pass any more.
    await first.cleaner.runOnce(NOW + 1000)
    expect(await contents(first.partition)).toEqual(halfway)
    await first.store.close()

    const second = await node(dir, { logCleanerDedupeBufferSize: 1024 })
    await second.cleaner.runOnce(NOW + 2000)
    expect(await contents(second.partition)).toEqual(reference(batches))
    expect(second.partition.log.cleanerCheckpoint.cleanedUpTo).toBe(312n)
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

/** Writes transactional batches and markers to a partition as a transactional producer and its coordinator do. */
class Transactions {
  private readonly sequences = new Map<bigint, number>()
  private readonly open = new Set<bigint>()
  constructor(private readonly partition: Partition) {}

  /** A batch of `producerId`'s transaction (opened by its first batch); returns its base offset. */
  async send(producerId: bigint, records: [string, string | null][]): Promise<bigint> {
    const baseSequence = this.sequences.get(producerId) ?? 0
    this.sequences.set(producerId, baseSequence + records.length)
    const batch = encodeRecordBatch(
      records.map(([key, value]) => ({ key: Buffer.from(key), value: value === null ? null : Buffer.from(value), timestamp: BigInt(NOW - HOUR) })),
      { producerId, producerEpoch: 0, baseSequence, flags: Attribute.transactional },
    )
    const verification = this.open.has(producerId) ? undefined : this.partition.startVerification(producerId, 0)
    this.open.add(producerId)
    return (await this.partition.appendAsLeader(batch, { origin: AppendOrigin.CLIENT, verification })).baseOffset
  }

  /** The coordinator's COMMIT or ABORT marker for `producerId`; returns its offset. */
  async end(producerId: bigint, outcome: 'commit' | 'abort'): Promise<bigint> {
    this.open.delete(producerId)
    return (await this.partition.appendMarker({ producerId, producerEpoch: 0, coordinatorEpoch: 0, committed: outcome === 'commit' })).baseOffset
  }

  get openProducers(): bigint[] {
    return [...this.open]
  }
}

function markerName(batch: StoredBatch): string {
  const type = producerBatchOfStored(batch)?.marker?.type
  return type === ControlType.COMMIT ? 'COMMIT' : type === ControlType.ABORT ? 'ABORT' : 'CONTROL'
}

/**
 * The records a consumer reading from the log start sees, `offset key value`: read_uncommitted gets every data
 * record; read_committed reads up to the last stable offset and is told the aborted transactions that overlap it (as
 * the Fetch handler asks the index), then filters as Kafka's consumer does (CompletedFetch): a producer is skipped
 * from the first offset of each aborted transaction the answer names until that producer's ABORT marker.
 */
async function consumed(partition: Partition, isolation: 'read_committed' | 'read_uncommitted'): Promise<string[]> {
  const upTo = isolation === 'read_committed' ? partition.lastStableOffset : partition.highWatermark
  const pending = isolation === 'read_committed' ? (await partition.abortedTransactions(partition.logStartOffset, upTo)).sort((a, b) => Number(a.firstOffset - b.firstOffset)) : []
  const skipped = new Set<bigint>()
  const lines: string[] = []
  for await (const batch of partition.log.batches(partition.logStartOffset, upTo)) {
    if (batch.producerId >= 0n) {
      while (pending.length > 0 && pending[0]!.firstOffset <= batch.lastOffset) skipped.add(pending.shift()!.producerId)
      if (batch.isControl && markerName(batch) === 'ABORT') skipped.delete(batch.producerId)
    }
    if (batch.isControl || (batch.isTransactional && skipped.has(batch.producerId))) continue
    lines.push(...decodeRecords(batch.bytes).map(line))
  }
  return lines
}

describe('which batches a pass may clean (LogCleanerManager.cleanableOffsets, maxCompactionDelay)', () => {
  const MINUTE = 60_000
  const old = BigInt(NOW - HOUR)

  /** k five times, a record stamped 20 minutes ahead of the clock, k five more times, a last record; one batch each. */
  function withOneAheadOfTheClock(): Written[][] {
    const k = (value: string): Written[] => [{ key: 'k', value, timestamp: old }]
    return [
      ...['v0', 'v1', 'v2', 'v3', 'v4'].map(k),
      [{ key: 'other', value: 'ahead', timestamp: BigInt(NOW + 20 * MINUTE) }],
      ...['w0', 'w1', 'w2', 'w3', 'w4'].map(k),
      [{ key: 'last', value: 'x', timestamp: old }],
    ]
  }

  it('with min.compaction.lag.ms=0, a batch stamped ahead of the clock holds back nothing: k keeps its last record only', async () => {
    const { node: cleaning } = await freshNode({})
    await appendAll(cleaning.partition, withOneAheadOfTheClock())
    await cleaning.cleaner.runOnce(NOW)
    expect(await contents(cleaning.partition)).toEqual(['5 other ahead', '10 k w4', '11 last x'])
    expect(cleaning.partition.log.cleanerCheckpoint.cleanedUpTo).toBe(11n)
  })

  it('with min.compaction.lag.ms above 0, it holds back every batch after it until the clock passes it by the lag, as in Kafka', async () => {
    const { node: cleaning } = await freshNode({})
    await setTopicConfigs(cleaning, { 'min.compaction.lag.ms': String(MINUTE) })
    await appendAll(cleaning.partition, withOneAheadOfTheClock())
    await cleaning.cleaner.runOnce(NOW)
    expect(await contents(cleaning.partition)).toEqual(['4 k v4', '5 other ahead', '6 k w0', '7 k w1', '8 k w2', '9 k w3', '10 k w4', '11 last x'])
    await cleaning.cleaner.runOnce(NOW + 21 * MINUTE - 1)
    expect(await contents(cleaning.partition)).toHaveLength(8)
    await cleaning.cleaner.runOnce(NOW + 21 * MINUTE)
    expect(await contents(cleaning.partition)).toEqual(['5 other ahead', '10 k w4', '11 last x'])
  })

  it('max.compaction.lag.ms dates the oldest dirty batch by its newest record, as Kafka its first batch\'s maxTimestamp', async () => {
    const { node: cleaning } = await freshNode({})
    const meters: Written[][] = Array.from({ length: 20 }, (_, i) => [{ key: `meter-${i}`, value: 'first', timestamp: BigInt(NOW) }])
    await appendAll(cleaning.partition, meters)
    await cleaning.cleaner.runOnce(NOW)
    expect(cleaning.partition.log.cleanerCheckpoint.cleanedUpTo).toBe(19n)
    // From here on only max.compaction.lag.ms (an hour) has a pass compact: one dirty batch is far below half the log.
    await setTopicConfigs(cleaning, { 'min.cleanable.dirty.ratio': '0.5', 'max.compaction.lag.ms': String(HOUR) })
    // One batch whose first record is two hours old and whose newest is ten minutes old, then one that closes the log.
    await cleaning.partition.appendAsLeader(
      encodeRecordBatch([
        { key: Buffer.from('meter-1'), value: Buffer.from('second'), timestamp: BigInt(NOW - 2 * HOUR) },
        { key: Buffer.from('meter-2'), value: Buffer.from('second'), timestamp: BigInt(NOW - 10 * MINUTE) },
      ]),
      { origin: AppendOrigin.CLIENT },
    )
    await appendAll(cleaning.partition, [[{ key: 'meter-3', value: 'second', timestamp: BigInt(NOW) }]])
    const before = await contents(cleaning.partition)
    expect(before).toContain('1 meter-1 first')

    await cleaning.cleaner.runOnce(NOW + 50 * MINUTE - 1)
    expect(await contents(cleaning.partition)).toEqual(before)
    await cleaning.cleaner.runOnce(NOW + 50 * MINUTE + 1)
    const after = await contents(cleaning.partition)
    expect(after).not.toContain('1 meter-1 first')
    expect(after).not.toContain('2 meter-2 first')
    expect(after.slice(-3)).toEqual(['20 meter-1 second', '21 meter-2 second', '22 meter-3 second'])
  })
})

describe('transactions under compaction', () => {
  const P = 1000n
  const Q = 1001n

  it('an aborted transaction\'s batches go in the first pass; its ABORT marker and index entry go only after the delete horizon', async () => {
    const { node: cleaning } = await freshNode({})
    const { partition } = cleaning
    const txns = new Transactions(partition)
    await txns.send(P, [['k1', 'c1'], ['k2', 'c1']])
    await txns.end(P, 'commit')
    await txns.send(P, [['k1', 'aborted'], ['k3', 'aborted']])
    await txns.end(P, 'abort')
    await txns.send(P, [['k2', 'c2']])
    await txns.end(P, 'commit')
    // The newest batch is never compacted; this one only closes the log.
    await appendAll(partition, [[{ key: 'k9', value: 'plain', timestamp: BigInt(NOW - HOUR) }]])
    expect(await contents(partition)).toEqual(['0 k1 c1', '1 k2 c1', '2 COMMIT', '3 k1 aborted', '4 k3 aborted', '5 ABORT', '6 k2 c2', '7 COMMIT', '8 k9 plain'])
    expect(await consumed(partition, 'read_committed')).toEqual(['0 k1 c1', '1 k2 c1', '6 k2 c2', '8 k9 plain'])

    await cleaning.cleaner.runOnce(NOW)
    // The aborted batch went whole; the committed records of the same producer and keys stayed. Its ABORT marker
    // stays (this pass read the transaction's batch), and so does its index entry.
    expect(await contents(partition)).toEqual(['0 k1 c1', '2 COMMIT', '5 ABORT', '6 k2 c2', '7 COMMIT', '8 k9 plain'])
    expect(await consumed(partition, 'read_uncommitted')).toEqual(['0 k1 c1', '6 k2 c2', '8 k9 plain'])
    expect(await consumed(partition, 'read_committed')).toEqual(['0 k1 c1', '6 k2 c2', '8 k9 plain'])
    expect(await partition.abortedTransactions(0n, 9n)).toMatchObject([{ producerId: P, firstOffset: 3n, lastOffset: 5n }])

    // Nothing of the transaction is left, but its marker waits for the delete horizon of its range (half an hour
    // after the first pass): a pass before it (a new record makes the log dirty) keeps it.
    await appendAll(partition, [[{ key: 'k8', value: 'later', timestamp: BigInt(NOW) }]])
    await cleaning.cleaner.runOnce(NOW + HOUR / 2 - 1)
    expect(await contents(partition)).toEqual(['0 k1 c1', '2 COMMIT', '5 ABORT', '6 k2 c2', '7 COMMIT', '8 k9 plain', '9 k8 later'])
    // At the horizon a pass comes by itself, as for a tombstone of a log nobody writes to.
    await cleaning.cleaner.runOnce(NOW + HOUR / 2)
    expect(await contents(partition)).toEqual(['0 k1 c1', '2 COMMIT', '6 k2 c2', '7 COMMIT', '8 k9 plain', '9 k8 later'])
    // Its index entry went with it: left behind, it would make a read_committed reader skip P's committed k2=c2.
    expect(await partition.abortedTransactions(0n, 10n)).toEqual([])
    expect(await consumed(partition, 'read_committed')).toEqual(['0 k1 c1', '6 k2 c2', '8 k9 plain', '9 k8 later'])
    expect(await consumed(partition, 'read_uncommitted')).toEqual(['0 k1 c1', '6 k2 c2', '8 k9 plain', '9 k8 later'])
    expect(cleaning.partition.log.cleanerCheckpoint.tombstonesExpireAtMs).toBeNull()
  })

  it('on a replicated partition, an aborted transaction\'s batches go but every marker stays, past the horizon too', async () => {
    // A replica away longer than the horizon, holding the aborted batch but not the marker, would never get it.
    const { node: cleaning } = await freshNode({}, 3)
    const { partition } = cleaning
    const txns = new Transactions(partition)
    await txns.send(P, [['k1', 'aborted']])
    await txns.end(P, 'abort')
    await txns.send(P, [['k1', 'c1']])
    await txns.end(P, 'commit')
    await txns.end(Q, 'commit')
    await appendAll(partition, [[{ key: 'k1', value: 'plain', timestamp: BigInt(NOW - HOUR) }]])
    expect(await contents(partition)).toEqual(['0 k1 aborted', '1 ABORT', '2 k1 c1', '3 COMMIT', '4 COMMIT', '5 k1 plain'])
    await cleaning.cleaner.runOnce(NOW)
    await appendAll(partition, [[{ key: 'k8', value: 'later', timestamp: BigInt(NOW) }]])
    await cleaning.cleaner.runOnce(NOW + HOUR)
    expect(await contents(partition)).toEqual(['1 ABORT', '3 COMMIT', '4 COMMIT', '5 k1 plain', '6 k8 later'])
    expect(await partition.abortedTransactions(0n, 7n)).toMatchObject([{ producerId: P, firstOffset: 0n, lastOffset: 1n }])
    expect(await consumed(partition, 'read_committed')).toEqual(['5 k1 plain', '6 k8 later'])
  })

  it('a COMMIT marker goes once every record of its transaction was superseded and its producer is gone, and an empty transaction\'s once the horizon has passed and its producer is gone', async () => {
    const { dir, node: first } = await freshNode({})
    const txns = new Transactions(first.partition)
    await txns.send(P, [['k1', 'v1']])
    await txns.end(P, 'commit')
    await txns.end(Q, 'commit')
    await appendAll(first.partition, [[{ key: 'k1', value: 'v2', timestamp: BigInt(NOW) }], [{ key: 'k5', value: 'x', timestamp: BigInt(NOW) }]])

    await first.cleaner.runOnce(NOW)
    // k1=v1 is superseded: this pass read it, so P's marker stays until the next pass; Q's wrote nothing here.
    expect(await contents(first.partition)).toEqual(['1 COMMIT', '2 COMMIT', '3 k1 v2', '4 k5 x'])
    await first.store.close()

    // The horizon survives a restart.
    const second = await node(dir, {})
    await second.cleaner.runOnce(NOW + HOUR / 2 - 1)
    expect(await contents(second.partition)).toEqual(['1 COMMIT', '2 COMMIT', '3 k1 v2', '4 k5 x'])
    // Past the horizon both markers stay while their producers are active (Kafka's RETAIN_EMPTY): P's batch is kept
    // empty as its last one, and with it its transaction's marker; Q's marker is its last record.
    await second.cleaner.runOnce(NOW + HOUR / 2)
    expect(await contents(second.partition)).toEqual(['1 COMMIT', '2 COMMIT', '3 k1 v2', '4 k5 x'])
    // Once producer.id.expiration.ms has forgotten them, Q's marker goes, and P's empty batch; P's marker a pass later.
    expect(second.partition.producers.removeExpiredProducers(NOW + 2 * 86_400_000)).toBe(2)
    await second.cleaner.runOnce(NOW + HOUR / 2 + 1)
    expect(await contents(second.partition)).toEqual(['1 COMMIT', '3 k1 v2', '4 k5 x'])
    await second.cleaner.runOnce(NOW + HOUR / 2 + 2)
    expect(await contents(second.partition)).toEqual(['3 k1 v2', '4 k5 x'])
    expect(await consumed(second.partition, 'read_committed')).toEqual(['3 k1 v2', '4 k5 x'])
  })

  it('random transactions, committed and aborted, interleaved with plain writes: compaction ends where a naive reference says', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      let state = seed
      const next = (): number => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648
      const { node: cleaning } = await freshNode({})
      const { partition } = cleaning
      const txns = new Transactions(partition)
      const producers = [P, Q, 1002n]
      const record = (): [string, string | null] => [`k${Math.floor(next() * 8)}`, next() < 0.1 ? null : `v${Math.floor(next() * 1000)}`]
      // What each transactional batch and marker belongs to, for the reference: producer -> its current transaction.
      const current = new Map<bigint, number>()
      const outcome: ('commit' | 'abort')[] = []
      const batchOf = new Map<bigint, { txn: number | null }>()
      // Each producer's last transaction (every transaction writes data): its last data batch is in it.
      const lastTxnOf = new Map<bigint, number>()
      let transactionCount = 0
      for (let step = 0; step < 60; step++) {
        const producerId = producers[Math.floor(next() * producers.length)]!
        const roll = next()
        if (roll < 0.3) {
          await appendAll(partition, [[record(), record()].map(([key, value]) => ({ key, value, timestamp: BigInt(NOW - HOUR) }))])
          batchOf.set(partition.logEndOffset - 2n, { txn: null })
        } else if (roll < 0.8 || !current.has(producerId)) {
          if (!current.has(producerId)) {
            current.set(producerId, transactionCount)
            lastTxnOf.set(producerId, transactionCount++)
          }
          const offset = await txns.send(producerId, [record(), record()])
          batchOf.set(offset, { txn: current.get(producerId)! })
        } else {
          outcome[current.get(producerId)!] = next() < 0.5 ? 'commit' : 'abort'
          const offset = await txns.end(producerId, outcome[current.get(producerId)!]!)
          batchOf.set(offset, { txn: current.get(producerId)! })
          current.delete(producerId)
        }
      }
      for (const producerId of txns.openProducers) {
        outcome[current.get(producerId)!] = 'commit'
        batchOf.set(await txns.end(producerId, 'commit'), { txn: current.get(producerId)! })
      }
      await appendAll(partition, [[{ key: 'closing', value: 'x', timestamp: BigInt(NOW) }]])
      const before = await contents(partition)
      const committedBefore = await consumed(partition, 'read_committed')

      // The reference, from the lines as written: a record of an aborted transaction is never seen; of the rest,
      // the latest record of each key stays (the last batch stays whole), tombstones until the horizon; a marker
      // stays until the horizon, then only while a record of its transaction stays, or while its transaction holds
      // its producer's last data batch (kept, emptied if need be, for the producer's state: Kafka's RETAIN_EMPTY).
      const txnAt = (offset: bigint): number | null => {
        let found: number | null = null
        for (const [base, { txn }] of batchOf) if (base <= offset) found = txn
        return found
      }
      const parsed = before.map((line) => {
        const [offset, key, value] = line.split(' ') as [string, string, string?]
        return { line, offset: BigInt(offset), key, value, txn: txnAt(BigInt(offset)), marker: key === 'COMMIT' || key === 'ABORT' }
      })
      const closing = parsed.at(-1)!
      const live = parsed.filter((r) => !r.marker && (r.txn === null || outcome[r.txn] === 'commit'))
      const latest = new Map<string, bigint>()
      for (const r of live) latest.set(r.key, r.offset)
      const survivors = live.filter((r) => r === closing || latest.get(r.key) === r.offset)
      const afterFirst = parsed.filter((r) => r.marker || survivors.includes(r)).map((r) => r.line)
      const settled = survivors.filter((r) => r === closing || r.value !== 'null')
      const afterHorizon = parsed
        .filter((r) => (r.marker ? settled.some((s) => s.txn === r.txn) || [...lastTxnOf.values()].includes(r.txn!) : settled.includes(r)))
        .map((r) => r.line)
      const seen = (lines: string[]): string[] => lines.filter((line) => !/ (COMMIT|ABORT)$/.test(line))

      // The consumer's filter with the index's entries agrees with the reference before any compaction.
      expect(committedBefore, `seed ${seed}`).toEqual(live.map((r) => r.line))

      await cleaning.cleaner.runOnce(NOW)
      expect(await contents(partition), `seed ${seed}`).toEqual(afterFirst)
      expect(await consumed(partition, 'read_uncommitted'), `seed ${seed}`).toEqual(seen(afterFirst))
      expect(await consumed(partition, 'read_committed'), `seed ${seed}`).toEqual(seen(afterFirst))
      // What read_committed saw before, less what compaction superseded.
      expect(committedBefore.filter((line) => seen(afterFirst).includes(line)), `seed ${seed}`).toEqual(seen(afterFirst))

      // Past the horizon, in an idle log: tombstones go, then the markers whose transactions have nothing left.
      for (let pass = 1; pass <= 3; pass++) await cleaning.cleaner.runOnce(NOW + HOUR + pass)
      expect(await contents(partition), `seed ${seed}`).toEqual(afterHorizon)
      expect(await consumed(partition, 'read_committed'), `seed ${seed}`).toEqual(seen(afterHorizon))
      expect(await consumed(partition, 'read_uncommitted'), `seed ${seed}`).toEqual(seen(afterHorizon))
    }
  })
})
