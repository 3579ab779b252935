/**
 * Keyed state: the task store keeps memory within its byte budget whatever the number of keys (evicted entries
 * come back from LevelDB), and the same random window cases give the reference's results through it; groups marked
 * for rewriting go into the next commit; the task assignor is balanced and moves only the tasks it must.
 */
import { afterAll, describe, expect, test } from 'vitest'
import type { IHeaders, KafkaMessage } from 'kafkajs'
import { randomBytes } from 'node:crypto'
import { assignTasks } from '../../processor/runtime/assignor.js'
import { commitMessages, RestoreReader } from '../../processor/runtime/changelog.js'
import { PLAIN_CODEC } from '../../processor/state/codec.js'
import { CompiledAggregations, max, min, percentile, type AggregationsSpec } from '../../processor/aggregate/aggregations.js'
import { keyedEntryCodec, type KeyedEntry } from '../../processor/runtime/keyed-operators.js'
import { CacheBudget, COMMIT_ID_BYTES, encodeMarker, POSITION_KEY, STATE_FORMAT, TaskStore, type KeyedState, type StateRecord } from '../../processor/state/task-store.js'
import type { WindowEntry } from '../../processor/windows/windowed-aggregate.js'
import { checkCase, type StoreUnderTest } from './window-cases.js'
import { stateDir } from './helpers.js'

const stores: TaskStore[] = []
afterAll(async () => {
  for (const store of stores) await store.close()
})

/** A commit the way the runner makes it (changelog aside): encode the changed groups, then LevelDB with the marker. */
async function commitStore(store: TaskStore, position: number, checkpoint: number): Promise<void> {
  const commit = randomBytes(COMMIT_ID_BYTES)
  const records: StateRecord[] = await store.dirtyRecords(commit)
  const marker = { key: POSITION_KEY, value: encodeMarker({ position: String(position), streamTimes: {}, records: records.length }, commit) }
  await store.commitLocal([...records, marker], checkpoint)
}

/** A task store with a tiny budget. */
async function tinyStore(limitBytes: number): Promise<StoreUnderTest & { budget: CacheBudget; store: TaskStore }> {
  const budget = new CacheBudget(limitBytes)
  const store = await TaskStore.open(stateDir(), budget)
  stores.push(store)
  let checkpoint = 0
  let state!: KeyedState<WindowEntry>
  return {
    budget,
    store,
    useCodec: (codec) => {
      state = store.register('op', codec)
    },
    get: (group: string) => state.get(group),
    put: (group: string, value: WindowEntry) => state.put(group, value),
    delete: (group: string) => state.delete(group),
    async flush() {
      checkpoint += store.dirtyCount + 1
      await commitStore(store, checkpoint, checkpoint)
    },
    async stored() {
      const out: [string, WindowEntry][] = []
      store.discardCache()
      await store.warm((_operator, group, value) => out.push([group, value as WindowEntry]))
      return out
    },
  }
}

describe('the task store', () => {
  test('random window cases through LevelDB with a cache of 2 KiB equal the reference', async () => {
    for (let seed = 1; seed <= 150; seed++) await checkCase(seed, await tinyStore(2048))
  })

  test('memory stays within the budget whatever the number of keys', async () => {
    const { budget, store } = await tinyStore(256 * 1024)
    const counts = store.register('counts', PLAIN_CODEC)
    let highest = 0
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 5000; i++) {
        const key = `device-${round * 5000 + i}`
        counts.put(key, { n: i, pad: 'x'.repeat(40) })
      }
      await commitStore(store, round, round + 1)
      highest = Math.max(highest, budget.used)
    }
    // 100,000 keys of ~60 bytes were written; the cache holds at most the budget after each commit.
    expect(budget.used).toBeLessThanOrEqual(256 * 1024)
    expect(await counts.get('device-7')).toEqual({ n: 7, pad: 'x'.repeat(40) })
    expect(await counts.get('device-99999')).toEqual({ n: 4999, pad: 'x'.repeat(40) })
    expect(await counts.get('device-100000')).toBeUndefined()
    console.log(`100,000 keys: cache peak ${highest} bytes after a commit (budget ${256 * 1024})`)
  })

  test('groups to write again go into the next commit as the store holds them, a group it does not hold as a tombstone', async () => {
    const store = await TaskStore.open(stateDir(), new CacheBudget(1 << 20))
    stores.push(store)
    const counts = store.register('counts', PLAIN_CODEC)
    counts.put('kept', { n: 1 })
    const first = randomBytes(COMMIT_ID_BYTES)
    const written = await store.dirtyRecords(first)
    await store.commitLocal([...written, { key: POSITION_KEY, value: encodeMarker({ position: '1', streamTimes: {}, records: 1 }, first) }], 2)
    /** The state bytes of records (after the format byte and commit id), null for a tombstone. */
    const states = (records: StateRecord[]) => records.map((r) => [r.key, r.value === null ? null : r.value.subarray(1 + COMMIT_ID_BYTES).toString('hex')])
    const keptState = written[0]!.value!.subarray(1 + COMMIT_ID_BYTES).toString('hex')
    // As after a restore, the cache is empty and misses go to LevelDB.
    store.discardCache()
    store.rewrite(['\x01kept', '\x01gone'])
    expect(store.dirtyCount).toBe(2)
    const second = randomBytes(COMMIT_ID_BYTES)
    const again = await store.dirtyRecords(second)
    expect(states(again)).toEqual([['\x01kept', keptState], ['\x01gone', null]])
    expect(again[0]!.value!.subarray(1, 1 + COMMIT_ID_BYTES)).toEqual(second)
    await store.commitLocal([...again, { key: POSITION_KEY, value: encodeMarker({ position: '1', streamTimes: {}, records: 2 }, second) }], 4)
    // With every group cached (a warmed store), a group it does not hold is a tombstone without reading LevelDB.
    await store.warm(() => {})
    store.rewrite(['\x01kept', '\x01never'])
    expect(states(await store.dirtyRecords(randomBytes(COMMIT_ID_BYTES)))).toEqual([['\x01kept', keptState], ['\x01never', null]])
    expect(await counts.get('kept')).toEqual({ n: 1 })
  })
})

describe('state written by the previous format', () => {
  /** Stores one keyed entry of `spec` with its record's format byte set to `format`, and reads it back from a new store. */
  async function readBack(spec: AggregationsSpec, format: number): Promise<unknown> {
    const aggregations = new CompiledAggregations(spec)
    const dir = stateDir()
    const writer = await TaskStore.open(dir, new CacheBudget(1 << 20))
    const entries = writer.register('stats', keyedEntryCodec(aggregations))
    let acc = aggregations.create()
    for (const x of [3, 9, 5]) acc = aggregations.add(acc, aggregations.extract({ x }), 0)
    entries.put('device-1', { k: 'device-1', f: {}, a: acc })
    const commit = randomBytes(COMMIT_ID_BYTES)
    const records = (await writer.dirtyRecords(commit)).map((r) => ({ key: r.key, value: Buffer.concat([Buffer.of(format), r.value!.subarray(1)]) }))
    await writer.commitLocal([...records, { key: POSITION_KEY, value: encodeMarker({ position: '3', streamTimes: {}, records: 1 }, commit) }], 1)
    await writer.close()
    const reader = await TaskStore.open(dir, new CacheBudget(1 << 20))
    stores.push(reader)
    const entry = (await reader.register('stats', keyedEntryCodec(new CompiledAggregations(spec))).get('device-1')) as KeyedEntry
    return aggregations.result(entry.a as never)
  }

  test('is read as it is when the operators kept their layout, and refused in one line when one did not', async () => {
    // min and max declared: percentiles share them, so the accumulator is what format 1 wrote.
    expect(await readBack({ lo: min('x'), hi: max('x'), p50: percentile('x', 0.5) }, 1)).toMatchObject({ lo: 3, hi: 9 })
    // A percentile alone has gained its bounds since format 1: that record cannot be read.
    await expect(readBack({ p50: percentile('x', 0.5) }, 1)).rejects.toThrow(/is not in state format 2 \(first byte 1\).*delete the application's changelog topics and state directories/)
    const { p50 } = (await readBack({ p50: percentile('x', 0.5) }, STATE_FORMAT)) as { p50: number }
    expect(p50).toBeCloseTo(5, 1)
  })
})

describe('the changelog', () => {
  test('a restore applies whole commits only: the records of a commit cut short before its marker are left out', () => {
    // A commit's records as a task store writes them: format byte, the commit's id, then the state.
    const commitOf = (position: number, changes: [string, string | null][]) => {
      const commit = randomBytes(COMMIT_ID_BYTES)
      const records = changes.map(([key, state]) => ({ key, value: state === null ? null : Buffer.concat([Buffer.of(STATE_FORMAT), commit, Buffer.from(state)]) }))
      const marker = { key: POSITION_KEY, value: encodeMarker({ position: String(position), streamTimes: {}, records: records.length }, commit) }
      return commitMessages({ changes: records, marker, commit: commit.toString('hex') }, 0)
    }
    const a = commitOf(10, [['op\x01g1', 'a1'], ['op\x01g2', 'a2']])
    const cut = commitOf(20, [['op\x01g1', 'b1'], ['op\x01g2', 'b2']])
    const c = commitOf(30, [['op\x01g3', null]])
    // As a log: a's records and marker, one record of the commit that was killed, then c (written after a restart).
    const log = [...a.records, a.marker, cut.records[0]!, ...c.records, c.marker].map(
      (m, offset): KafkaMessage => ({ key: Buffer.from(m.key as string), value: m.value as Buffer | null, headers: m.headers as IHeaders, offset: String(offset), timestamp: '0', attributes: 0 }),
    )
    const reader = new RestoreReader('app-store-changelog', { transactional: false })
    const first = reader.read(log.slice(0, 4), 4)
    expect(first.apply.map((r) => r.key)).toEqual(['op\x01g1', 'op\x01g2', '\x00position'])
    // The checkpoint stops before the record still waiting for its marker.
    expect(first.checkpoint).toBe(3)
    const rest = reader.read(log.slice(4), log.length)
    expect(rest.apply.map((r) => [r.key, r.value?.toString() ?? null])).toEqual([['op\x01g3', null], ['\x00position', expect.any(String)]])
    expect(reader.incomplete).toBe(1)
    expect(rest.checkpoint).toBe(3)
  })
})

describe('the task assignor', () => {
  const tasks = ['0_0', '0_1', '0_2', '0_3', '1_0', '1_1', '1_2', '1_3']
  test('balanced: every member gets floor or ceil of tasks / members', () => {
    const result = assignTasks(tasks, ['a', 'b', 'c'], new Map())
    expect([...result.values()].map((t) => t.length).sort()).toEqual([2, 3, 3])
    expect([...result.values()].flat().sort()).toEqual(tasks)
  })

  test('sticky: a joining member takes only what balance requires, a leaving one gives only its own', () => {
    const before = assignTasks(tasks, ['a', 'b'], new Map())
    const joined = assignTasks(tasks, ['a', 'b', 'c'], before)
    const moved = tasks.filter((t) => ![...before].some(([m, ts]) => ts.includes(t) && joined.get(m)!.includes(t)))
    expect(moved).toHaveLength(joined.get('c')!.length)
    const left = assignTasks(tasks, ['a', 'c'], joined)
    for (const m of ['a', 'c']) for (const t of joined.get(m)!) expect(left.get(m)).toContain(t)
    expect([...left.values()].flat().sort()).toEqual(tasks)
  })
})
