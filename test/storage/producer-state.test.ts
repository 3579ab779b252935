/**
 * The producer state of a partition (storage/producer-state.ts, driven by broker/partition.ts) against a reference
 * model, on a real LevelDB: seeded random runs of idempotent and transactional appends, retries, sequence gaps, epoch
 * bumps, stale epochs, markers, truncations, snapshots and restarts (clean, and without a final snapshot). The model
 * is deliberately naive: it keeps the list of batches the partition accepted and derives every expectation from that
 * list alone (Kafka's rules read off the log), so it checks that the state is a function of the log, whatever path
 * (appends, replay from a snapshot, truncation and reload) built it. A failing seed is printed and replays exactly.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LogStore } from '../../storage/log-store.js'
import { TopicManager } from '../../broker/topics.js'
import { DEFAULT_CONFIG } from '../../broker/config.js'
import type { Partition } from '../../broker/partition.js'
import { decrementSequence, encodeRecordBatch, incrementSequence } from '../../protocol/record-batch.js'
import { KafkaError } from '../../protocol/errors.js'
import { AppendOrigin, ProducerStateManager } from '../../storage/producer-state.js'
import { Random } from '../cluster/raft/sim/random.js'

const INT32_MAX = 2147483647
// Kafka's codes, spelt out (Errors.java).
const OUT_OF_ORDER_SEQUENCE_NUMBER = 45
const INVALID_PRODUCER_EPOCH = 47
const INVALID_TXN_STATE = 48
const TRANSACTION_COORDINATOR_FENCED = 52

/** A batch the partition accepted, as the model keeps it. */
interface Stored {
  producerId: bigint | null
  epoch: number
  firstSeq: number
  lastSeq: number
  base: bigint
  last: bigint
  transactional: boolean
  marker: { committed: boolean; coordinatorEpoch: number } | null
}

/** What the model derives for one producer from the log: Kafka's rules applied to the batches in offset order. */
function derive(log: readonly Stored[], producerId: bigint) {
  let epoch = -1
  let coordinatorEpoch = -1
  let batches: Stored[] = []
  let ongoing: bigint | null = null
  for (const b of log) {
    if (b.producerId !== producerId) continue
    if (b.epoch !== epoch) {
      epoch = b.epoch
      batches = []
    }
    if (b.marker) {
      ongoing = null
      coordinatorEpoch = b.marker.coordinatorEpoch
    } else {
      batches = [...batches, b].slice(-5)
      if (b.transactional && ongoing === null) ongoing = b.base
    }
  }
  return { epoch, coordinatorEpoch, batches, ongoing, known: epoch !== -1 || log.some((b) => b.producerId === producerId) }
}

/** The aborted transactions the log holds: each ABORT marker that ended data of its producer. */
function abortedOf(log: readonly Stored[]) {
  const open = new Map<bigint, bigint>()
  const aborted: { producerId: bigint; firstOffset: bigint; lastOffset: bigint }[] = []
  for (const b of log) {
    if (b.producerId === null) continue
    if (b.marker) {
      const first = open.get(b.producerId)
      if (first !== undefined && !b.marker.committed) aborted.push({ producerId: b.producerId, firstOffset: first, lastOffset: b.base })
      open.delete(b.producerId)
    } else if (b.transactional && !open.has(b.producerId)) open.set(b.producerId, b.base)
  }
  return aborted
}

type Expected = { code: number } | { duplicate: { base: bigint; last: bigint } } | { accepted: true }

function expectData(log: readonly Stored[], b: Omit<Stored, 'base' | 'last'> & { producerId: bigint }): Expected {
  const e = derive(log, b.producerId)
  if (e.epoch === b.epoch) {
    const dup = e.batches.find((x) => x.firstSeq === b.firstSeq && x.lastSeq === b.lastSeq)
    if (dup) return { duplicate: { base: dup.base, last: dup.last } }
  }
  if (b.epoch < e.epoch) return { code: INVALID_PRODUCER_EPOCH }
  if (b.epoch !== e.epoch) {
    if (b.firstSeq !== 0 && e.epoch !== -1) return { code: OUT_OF_ORDER_SEQUENCE_NUMBER }
  } else {
    const lastSeq = e.batches.at(-1)?.lastSeq ?? -1
    if (!(b.firstSeq === lastSeq + 1 || (b.firstSeq === 0 && lastSeq === INT32_MAX))) return { code: OUT_OF_ORDER_SEQUENCE_NUMBER }
  }
  if (e.ongoing !== null && !b.transactional) return { code: INVALID_TXN_STATE }
  return { accepted: true }
}

function expectMarker(log: readonly Stored[], producerId: bigint, epoch: number, coordinatorEpoch: number): Expected {
  const e = derive(log, producerId)
  if (epoch < e.epoch) return { code: INVALID_PRODUCER_EPOCH }
  if (coordinatorEpoch < e.coordinatorEpoch) return { code: TRANSACTION_COORDINATOR_FENCED }
  return { accepted: true }
}

async function outcome(append: () => Promise<{ baseOffset: bigint; lastOffset: bigint; duplicate: boolean }>): Promise<Expected & { got?: { base: bigint; last: bigint } }> {
  try {
    const result = await append()
    if (result.duplicate) return { duplicate: { base: result.baseOffset, last: result.lastOffset } }
    return { accepted: true, got: { base: result.baseOffset, last: result.lastOffset } }
  } catch (error) {
    if (error instanceof KafkaError) return { code: error.code }
    throw error
  }
}

class Node {
  private constructor(
    readonly dataDir: string,
    private store: LogStore,
    private topics: TopicManager,
  ) {}

  static async open(): Promise<Node> {
    const dataDir = mkdtempSync(join(tmpdir(), 'brook-producer-state-'))
    const store = await LogStore.open(dataDir)
    const topics = new TopicManager(store, 1, DEFAULT_CONFIG)
    await topics.create({ name: 't', partitions: 1, replicationFactor: 1, config: topics.parseConfig({}) })
    return new Node(dataDir, store, topics)
  }

  get partition(): Partition {
    return this.topics.get('t')!.partitions[0]!
  }

  /** Closes and reopens the database; with `snapshot` first, as a clean stop does. */
  async restart(options: { snapshot: boolean }): Promise<void> {
    if (options.snapshot) await this.topics.snapshotProducerStates()
    await this.store.close()
    this.store = await LogStore.open(this.dataDir)
    this.topics = new TopicManager(this.store, 1, DEFAULT_CONFIG)
    await this.topics.load(await this.store.listTopics())
  }

  async close(): Promise<void> {
    await this.store.close()
    rmSync(this.dataDir, { recursive: true, force: true })
  }
}

let node: Node | null = null
afterEach(async () => {
  await node?.close()
  node = null
})

/** The partition's producer state and derived offsets against the model's. */
async function expectSameState(partition: Partition, log: readonly Stored[], producerIds: readonly bigint[], where: string): Promise<void> {
  for (const producerId of producerIds) {
    const e = derive(log, producerId)
    const entry = partition.producers.lastEntry(producerId)
    const actual = entry
      ? { epoch: entry.producerEpoch, coordinatorEpoch: entry.coordinatorEpoch, ongoing: entry.currentTxnFirstOffset, batches: entry.batches.map((b) => [b.lastSeq, b.lastOffset, b.offsetDelta]) }
      : null
    const expected = e.known
      ? { epoch: e.epoch, coordinatorEpoch: e.coordinatorEpoch, ongoing: e.ongoing, batches: e.batches.map((b) => [b.lastSeq, b.last, Number(b.last - b.base)]) }
      : null
    expect(actual, `${where}: producer ${producerId}`).toEqual(expected)
  }
  const end = log.at(-1) ? log.at(-1)!.last + 1n : 0n
  expect(partition.logEndOffset, `${where}: log end`).toBe(end)
  const ongoing = producerIds.map((id) => derive(log, id).ongoing).filter((o): o is bigint => o !== null)
  const lso = ongoing.length === 0 ? end : ongoing.reduce((a, b) => (b < a ? b : a))
  expect(partition.lastStableOffset, `${where}: last stable offset`).toBe(lso)
  const aborted = (await partition.abortedTransactions(0n, end + 1n)).map(({ producerId, firstOffset, lastOffset }) => ({ producerId, firstOffset, lastOffset }))
  expect(aborted, `${where}: aborted transaction index`).toEqual(abortedOf(log))
}

async function run(seed: number, steps: number): Promise<void> {
  const random = new Random(seed)
  node = await Node.open()
  const producerIds = [1n, 2n, 3n]
  let log: Stored[] = []
  for (let step = 0; step < steps; step++) {
    const where = `seed ${seed}, step ${step}`
    const partition = node.partition
    const roll = random.next()
    if (roll < 0.6) {
      const producerId = random.pick(producerIds)
      const e = derive(log, producerId)
      const count = random.int(1, 4)
      let epoch = e.epoch < 0 ? random.int(0, 2) : e.epoch
      const kind = random.next()
      if (kind < 0.15 && e.batches.length > 0) {
        // A retry carries the same records as the batch it repeats.
        const again = random.pick(e.batches)
        await check(producerId, epoch, again.firstSeq, Number(again.last - again.base) + 1)
      } else {
        const next = e.batches.length > 0 ? incrementSequence(e.batches.at(-1)!.lastSeq, 1) : e.epoch < 0 ? random.pick([0, 17, INT32_MAX - 2]) : 0
        let firstSeq = next
        if (kind < 0.25) firstSeq = incrementSequence(next, random.int(1, 3))
        else if (kind < 0.3) {
          epoch = e.epoch + 1
          firstSeq = random.chance(0.8) ? 0 : 5
        } else if (kind < 0.35 && e.epoch > 0) epoch = e.epoch - 1
        await check(producerId, epoch, firstSeq, count)
      }
    } else if (roll < 0.72) {
      const producerId = random.pick(producerIds)
      const e = derive(log, producerId)
      const epoch = Math.max(0, Math.max(0, e.epoch) + (random.chance(0.2) ? 1 : random.chance(0.1) ? -1 : 0))
      const coordinatorEpoch = Math.max(0, e.coordinatorEpoch) + (random.chance(0.1) ? -1 : random.chance(0.2) ? 1 : 0)
      const committed = random.chance(0.5)
      const expected = expectMarker(log, producerId, epoch, coordinatorEpoch)
      const got = await outcome(() => partition.appendMarker({ producerId, producerEpoch: epoch, coordinatorEpoch, committed }))
      expect({ where, ...strip(got) }, 'marker').toEqual({ where, ...expected })
      if ('accepted' in got) log.push({ producerId, epoch, firstSeq: -1, lastSeq: -1, base: got.got!.base, last: got.got!.last, transactional: true, marker: { committed, coordinatorEpoch } })
    } else if (roll < 0.77) {
      const got = await partition.appendAsLeader(encodeRecordBatch([{ value: Buffer.from('plain') }]), { origin: AppendOrigin.CLIENT })
      log.push({ producerId: null, epoch: -1, firstSeq: -1, lastSeq: -1, base: got.baseOffset, last: got.lastOffset, transactional: false, marker: null })
    } else if (roll < 0.85 && log.length > 0) {
      const end = log.at(-1)!.last + 1n
      const offset = BigInt(random.int(0, Number(end)))
      await partition.truncateTo(offset)
      log = log.filter((b) => b.last < offset && b.base < offset)
    } else if (roll < 0.92) {
      await partition.takeSnapshot()
    } else {
      await node.restart({ snapshot: random.chance(0.5) })
    }
    await expectSameState(node.partition, log, producerIds, where)

    async function check(producerId: bigint, epoch: number, firstSeq: number, count: number): Promise<void> {
      const transactional = random.chance(0.3)
      const lastSeq = incrementSequence(firstSeq, count - 1)
      const expected = expectData(log, { producerId, epoch, firstSeq, lastSeq, transactional, marker: null })
      const batch = encodeRecordBatch(
        Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`r${i}`) })),
        { producerId, producerEpoch: epoch, baseSequence: firstSeq, flags: transactional ? 0x10 : 0 },
      )
      // A transactional batch that opens a transaction is appended once the coordinator confirmed it (the produce path).
      const verification = transactional ? node!.partition.startVerification(producerId, epoch) : undefined
      const got = await outcome(() => node!.partition.appendAsLeader(batch, { origin: AppendOrigin.CLIENT, verification }))
      expect({ where, ...strip(got) }, `batch of producer ${producerId} epoch ${epoch} seq ${firstSeq}+${count}`).toEqual({ where, ...expected })
      if ('accepted' in got) log.push({ producerId, epoch, firstSeq, lastSeq, base: got.got!.base, last: got.got!.last, transactional, marker: null })
    }
  }
}

function strip<T extends { got?: unknown }>(value: T): Omit<T, 'got'> {
  const { got: _, ...rest } = value
  return rest
}

describe('producer state against a reference model, on LevelDB', () => {
  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    test(`seed ${seed}`, async () => {
      await run(seed, 250)
    }, 120_000)
  }
})

describe('producer state', () => {
  test('sequences wrap to 0 after Int32 max (DefaultRecordBatch.incrementSequence)', () => {
    expect(incrementSequence(INT32_MAX, 1)).toBe(0)
    expect(incrementSequence(INT32_MAX - 1, 3)).toBe(1)
    expect(decrementSequence(1, 3)).toBe(INT32_MAX - 1)
    expect(decrementSequence(10, 3)).toBe(7)
  })

  test('a transactional batch that opens a transaction without the coordinator\'s confirmation is INVALID_TXN_STATE', async () => {
    node = await Node.open()
    const batch = encodeRecordBatch([{ value: Buffer.from('x') }], { producerId: 9n, producerEpoch: 0, baseSequence: 0, flags: 0x10 })
    const stale = node.partition.startVerification(9n, 0)
    node.partition.startVerification(9n, 0)
    for (const verification of [undefined, stale]) {
      await expect(node.partition.appendAsLeader(batch, { origin: AppendOrigin.CLIENT, verification })).rejects.toMatchObject({ code: INVALID_TXN_STATE })
    }
    expect(node.partition.logEndOffset).toBe(0n)
    expect(node.partition.producers.lastEntry(9n)).toBeUndefined()
  })

  test('idle producers expire after producer.id.expiration.ms, those with an open transaction stay', () => {
    const producers = new ProducerStateManager({ producerIdExpirationMs: 1000 })
    const at = (producerId: bigint, offset: bigint, transactional: boolean) => {
      const batch = { producerId, producerEpoch: 0, baseSequence: 0, baseOffset: offset, lastOffset: offset, maxTimestamp: 5000n, transactional, marker: null }
      producers.update(producers.prepare(batch, AppendOrigin.CLIENT), offset + 1n)
    }
    at(1n, 0n, false)
    at(2n, 1n, true)
    expect(producers.removeExpiredProducers(5999)).toBe(0)
    expect(producers.removeExpiredProducers(6000)).toBe(1)
    expect(producers.activeProducers().map((e) => e.producerId)).toEqual([2n])
  })

  test('a snapshot written past the recovered log end is dropped and the producer state rebuilt from the log', async () => {
    node = await Node.open()
    const append = (seq: number) =>
      node!.partition.appendAsLeader(encodeRecordBatch([{ value: Buffer.from('x') }], { producerId: 4n, producerEpoch: 0, baseSequence: seq }), { origin: AppendOrigin.CLIENT })
    for (let seq = 0; seq < 3; seq++) await append(seq)
    await node.partition.takeSnapshot()
    // The batch at offset 2 vanishes under the snapshot (a torn tail cut at recovery): the snapshot says seq 2 is done.
    await node.partition.log.truncateTo(2n)
    await node.restart({ snapshot: false })
    expect(node.partition.producers.lastEntry(4n)!.batches.at(-1)!.lastSeq).toBe(1)
    await append(2)
    expect(node.partition.logEndOffset).toBe(3n)
  })
})
