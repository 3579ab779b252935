/**
 * Keyed state: the task store keeps memory within its byte budget whatever the number of keys (evicted entries
 * come back from LevelDB), and the same random window cases give the reference's results through it; groups marked
 * for rewriting go into the next commit; a restore reads the changelog by the rules of runtime/changelog.ts, compacted
 * or not; the task assignor is balanced and moves only the tasks it must; the state directory lock names the
 * instance of the same process that holds it.
 */
import { afterAll, describe, expect, test } from 'vitest'
import type { IHeaders, KafkaMessage, Message } from 'kafkajs'
import { randomBytes } from 'node:crypto'
import { assignTasks } from '../../processor/runtime/assignor.js'
import { commitMessages, RestoreReader } from '../../processor/runtime/changelog.js'
import { PLAIN_CODEC, type EntryCodec } from '../../processor/state/codec.js'
import { CompiledAggregations, max, min, percentile, reduction, type AggregationsSpec } from '../../processor/aggregate/aggregations.js'
import { TopologyError } from '../../processor/errors.js'
import { keyedEntryCodec, type KeyedEntry } from '../../processor/runtime/keyed-operators.js'
import { CacheBudget, COMMIT_ID_BYTES, encodeMarker, POSITION_KEY, STATE_FORMAT, TaskStore, type KeyedState, type StateRecord } from '../../processor/state/task-store.js'
import type { WindowEntry } from '../../processor/windows/windowed-aggregate.js'
import { checkCase, type StoreUnderTest } from './window-cases.js'
import { stateDir } from './helpers.js'
import { lockStateDirectory, type StateDirectoryLock } from '../../processor/state/state-directory.js'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

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
  let state: KeyedState<WindowEntry> | undefined
  return {
    budget,
    store,
    useCodec: (codec) => {
      state = store.register('op', codec)
    },
    get: (group: string) => state!.get(group),
    put: (group: string, value: WindowEntry) => state!.put(group, value),
    delete: (group: string) => state!.delete(group),
    prefetch: (groups: readonly string[]) => state!.prefetch!(groups),
    // The operator asks for its index before its codec is known: the codec registered later takes the same slot.
    closeTimes: (closeTimeOf, spec) => (state ?? store.register('op', PLAIN_CODEC as EntryCodec<WindowEntry>)).closeTimes!(closeTimeOf, spec),
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

describe('an entry its codec cannot read', () => {
  test("is a TopologyError naming the operator and saying what to do, not an error the task retries for good", async () => {
    // A running aggregate's entry read as a reduce's (its state written by a version whose markers did not name the
    // operator's kind, so the start could not refuse it): msgpack runs out of data in the accumulator's doubles.
    const aggregations = new CompiledAggregations({ total: max('x') })
    const dir = stateDir()
    const writer = await TaskStore.open(dir, new CacheBudget(1 << 20))
    let acc = aggregations.create()
    acc = aggregations.add(acc, aggregations.extract({ x: 3 }), 0)
    writer.register('running', keyedEntryCodec(aggregations)).put('device-1', { k: 'device-1', f: {}, a: acc })
    const commit = randomBytes(COMMIT_ID_BYTES)
    const records = await writer.dirtyRecords(commit)
    await writer.commitLocal([...records, { key: POSITION_KEY, value: encodeMarker({ position: '1', streamTimes: {}, records: 1 }, commit) }], 1)
    await writer.close()
    const reader = await TaskStore.open(dir, new CacheBudget(1 << 20))
    stores.push(reader)
    const asReduce = reader.register('running', keyedEntryCodec(reduction((a: number, b: number) => a + b)))
    const failure = await Promise.resolve(asReduce.get('device-1')).then(() => null, (error: Error) => error)
    expect(failure).toBeInstanceOf(TopologyError)
    expect(failure?.message).toMatch(/^the state of operator running for group "device-1" in .* cannot be read \(.*\): was it written by another kind of operator of that name\? Give the operator another name to start it afresh, or reset the application/)
  })
})

describe('the changelog', () => {
  /** A commit's messages as a task store writes them: format byte, the commit's id, then the state; null deletes. */
  function commitOf(position: number, changes: [string, string | null][]): { records: Message[]; marker: Message } {
    const commit = randomBytes(COMMIT_ID_BYTES)
    const records = changes.map(([key, state]) => ({ key, value: state === null ? null : Buffer.concat([Buffer.of(STATE_FORMAT), commit, Buffer.from(state)]) }))
    const marker = { key: POSITION_KEY, value: encodeMarker({ position: String(position), streamTimes: {}, records: records.length }, commit) }
    return commitMessages({ changes: records, marker, commit: commit.toString('hex') }, 0)
  }

  /** Messages as a consumer reads them from a log, at the offsets given (a compacted log has gaps). */
  function atOffsets(log: [number, Message][]): KafkaMessage[] {
    return log.map(([offset, m]) => ({ key: Buffer.from(m.key as string), value: m.value as Buffer | null, headers: m.headers as IHeaders, offset: String(offset), timestamp: '0', attributes: 0 }))
  }

  /** What a list of applied records leaves per key (state as text, null for a tombstone), markers left out. */
  function stateOf(records: readonly StateRecord[]): Record<string, string | null> {
    const state: Record<string, string | null> = {}
    for (const r of records) if (r.key !== POSITION_KEY) state[r.key] = r.value === null ? null : r.value.subarray(1 + COMMIT_ID_BYTES).toString()
    return state
  }

  /**
   * A restore of `log` (messages at their offsets) from `start` to `end`, as the runner drives it: the consumer hands
   * over what the log holds from the offset sought, `batch` messages at a time, and seeks where the reader says.
   */
  function restore(log: KafkaMessage[], start: number, end: number, batch = Number.POSITIVE_INFINITY) {
    const reader = new RestoreReader('app-store-changelog', start, end)
    const applied: StateRecord[] = []
    /** What was applied as each batch came, so a test can tell when a record went to the store. */
    const steps: StateRecord[][] = []
    const seeks: number[] = []
    let checkpoint = start
    let from = reader.seekTo
    for (let reads = 0; ; reads++) {
      if (reads > 1000) throw new Error('the reader never ends')
      const rest = log.filter((m) => Number(m.offset) >= from)
      const messages = rest.slice(0, batch)
      const next = messages.length === rest.length ? end : Number(messages.at(-1)!.offset) + 1
      const step = reader.read(messages, next)
      applied.push(...step.apply)
      steps.push(step.apply)
      checkpoint = step.checkpoint
      if (step.seek !== null) {
        seeks.push(step.seek)
        from = step.seek
      } else if (step.done) {
        break
      } else {
        from = next
      }
    }
    const finish = reader.finish()
    return { applied, steps, seeks, checkpoint, finish }
  }

  test('a restore applies whole commits; the records of a commit cut short after the newest marker are left out, and their keys are to be written again', () => {
    const a = commitOf(10, [['\x01g1', 'a1'], ['\x01g2', 'a2']])
    const cut = commitOf(20, [['\x01g1', 'b1'], ['\x01g2', 'b2']])
    // As a log: a's records and marker, then one record of the commit that was killed.
    const log = atOffsets([[0, a.records[0]!], [1, a.records[1]!], [2, a.marker], [3, cut.records[0]!]])
    const { applied, checkpoint, finish, seeks } = restore(log, 0, 4)
    expect(applied.map((r) => r.key)).toEqual(['\x01g1', '\x01g2', '\x00position'])
    // The tail is read first (from 0: the log is short), then the range up to the marker.
    expect(seeks).toEqual([0])
    // The checkpoint stops before the record of the commit cut short.
    expect(checkpoint).toBe(3)
    // Nothing is missing from the offsets read: the cut-short record is dropped, and its key is to be written again.
    expect(finish).toEqual({ cutShort: ['\x01g1'], apply: [], checkpoint: 3 })
  })

  test('records before the newest marker are applied in offset order: a cut-short record, then the commit that wrote its key again', () => {
    const a = commitOf(10, [['\x01g1', 'a1']])
    const cut = commitOf(20, [['\x01g1', 'b1']])
    // The task's first commit after its restart writes g1 again (the value the restore settled on) with its own change.
    const c = commitOf(30, [['\x01g1', 'a1'], ['\x01g3', null]])
    const log = atOffsets([[0, a.records[0]!], [1, a.marker], [2, cut.records[0]!], [3, c.records[0]!], [4, c.records[1]!], [5, c.marker]])
    const { applied, checkpoint, finish } = restore(log, 0, 6)
    expect(applied.map((r) => r.key)).toEqual(['\x01g1', '\x00position', '\x01g1', '\x01g1', '\x01g3', '\x00position'])
    expect(stateOf(applied)).toEqual({ '\x01g1': 'a1', '\x01g3': null })
    expect(checkpoint).toBe(6)
    expect(finish).toEqual({ cutShort: [], apply: [], checkpoint: 6 })
  })

  test('compacted: a marker with fewer records than it counts still applies, and a cut-short value stands in for the committed one it removed', () => {
    const a = commitOf(10, [['\x01g1', 'a1'], ['\x01g2', 'a2']])
    const cut = commitOf(20, [['\x01g1', 'b1'], ['\x01g2', null], ['\x01g4', 'b4']])
    // Compacted: a's g1 and g2 (offsets 0, 1) gave way to the cut-short commit's records of their keys.
    const log = atOffsets([[2, a.marker], [3, cut.records[0]!], [4, cut.records[1]!], [5, cut.records[2]!]])
    const { applied, checkpoint, finish } = restore(log, 0, 6)
    // a's marker counts 2 records and has none left: its position is applied all the same.
    expect(applied.map((r) => r.key)).toEqual(['\x00position'])
    expect(checkpoint).toBe(3)
    expect(finish.cutShort).toEqual(['\x01g1', '\x01g2', '\x01g4'])
    expect(finish.checkpoint).toBe(3)
    // g1 and g4 take the cut-short values (at least once); the tombstone of g2 is not applied.
    expect(stateOf(finish.apply)).toEqual({ '\x01g1': 'b1', '\x01g4': 'b4' })
  })

  test('compacted: a key whose committed record survived in the range read keeps it over the cut-short record', () => {
    const z = commitOf(5, [['\x01g9', 'z9']])
    const a = commitOf(10, [['\x01g4', 'a4']])
    const cut = commitOf(20, [['\x01g4', 'b4']])
    // The cleaner got as far as z's marker (offset 1), which gave way to a's; it never mapped the cut-short record.
    const log = atOffsets([[0, z.records[0]!], [2, a.records[0]!], [3, a.marker], [4, cut.records[0]!]])
    const { applied, finish } = restore(log, 0, 5)
    // z's record, whose marker is gone, is applied with a's commit.
    expect(stateOf(applied)).toEqual({ '\x01g9': 'z9', '\x01g4': 'a4' })
    expect(finish).toEqual({ cutShort: ['\x01g4'], apply: [], checkpoint: 4 })
  })

  test('offsets missing before the first record read count as compaction only below the offset the restore starts from', () => {
    const a = commitOf(10, [['\x01g1', 'a1']])
    const cut = commitOf(20, [['\x01g1', 'b1']])
    const log = atOffsets([[2, a.marker], [3, cut.records[0]!]])
    // From a local checkpoint at 2 (the store holds g1 = a1): nothing is missing, the cut-short record is dropped.
    expect(restore(log, 2, 4).finish).toEqual({ cutShort: ['\x01g1'], apply: [], checkpoint: 3 })
    // From the log start at 0: offsets 0 and 1 are missing, so a's g1 may be gone for the cut-short record.
    expect(stateOf(restore(log, 0, 4).finish.apply)).toEqual({ '\x01g1': 'b1' })
  })

  test('a compacted changelog with one marker left is applied batch by batch, not held until its marker', () => {
    // 3,000 groups written by 30 commits; compaction left every group's record and the newest marker only.
    const log: [number, Message][] = []
    for (let c = 0; c < 30; c++) {
      const commit = commitOf(c + 1, Array.from({ length: 100 }, (_, i) => [`\x01g${c * 100 + i}`, `v${c}`] as [string, string]))
      commit.records.forEach((r, i) => log.push([c * 101 + i, r]))
      if (c === 29) log.push([c * 101 + 100, commit.marker])
    }
    const end = 30 * 101
    const { applied, steps, seeks, checkpoint, finish } = restore(atOffsets(log), 0, end, 500)
    // The tail's last 1,024 offsets hold the marker; then the range from the start, 500 messages a batch.
    expect(seeks).toEqual([0])
    expect(steps.filter((s) => s.length > 0).map((s) => s.length)).toEqual([500, 500, 500, 500, 500, 500, 1])
    expect(Object.keys(stateOf(applied))).toHaveLength(3000)
    expect(applied.at(-1)!.key).toBe(POSITION_KEY)
    expect(checkpoint).toBe(end)
    expect(finish).toEqual({ cutShort: [], apply: [], checkpoint: end })
  })

  test('a tail without a marker is read again twice as long, back to the start offset', () => {
    const a = commitOf(10, [['\x01g1', 'a1']])
    const cut = Array.from({ length: 3000 }, (_, i) => commitOf(20, [[`\x01c${i}`, 'x']]).records[0]!)
    // a's record and marker, then 3,000 records of commits cut short (a task that crashed again and again).
    const log = atOffsets([[0, a.records[0]!], [1, a.marker], ...cut.map((r, i) => [2 + i, r] as [number, Message])])
    const { applied, seeks, finish } = restore(log, 0, 3002, 700)
    // Tails of 1,024, 2,048 and then everything (back to 0), then the range from 0 up to the marker.
    expect(seeks).toEqual([3002 - 2048, 0, 0])
    expect(stateOf(applied)).toEqual({ '\x01g1': 'a1' })
    expect(finish.cutShort).toHaveLength(3000)
    expect(finish.apply).toEqual([])
    expect(finish.checkpoint).toBe(2)
  })

  test('a changelog without any marker is all cut short: nothing applied, the checkpoint stays at the start', () => {
    const cut = commitOf(20, [['\x01g1', 'b1'], ['\x01g2', 'b2']])
    const log = atOffsets([[5, cut.records[0]!], [6, cut.records[1]!]])
    const { applied, checkpoint, finish } = restore(log, 5, 7)
    expect(applied).toEqual([])
    expect(checkpoint).toBe(5)
    expect(finish).toEqual({ cutShort: ['\x01g1', '\x01g2'], apply: [], checkpoint: 5 })
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

describe('the state directory lock', () => {
  test('an instance refused by one of the same process, both started at once, is told which, not what an earlier run left in .owner', async () => {
    const dir = stateDir()
    writeFileSync(join(dir, '.owner'), 'pid 999999 instance from-an-earlier-run since 2026-01-01T00:00:00.000Z\n')
    const [a, b] = await Promise.allSettled([lockStateDirectory(dir, 'instance-a'), lockStateDirectory(dir, 'instance-b')])
    const held = [a, b].filter((r) => r.status === 'fulfilled')
    const refused = [a, b].filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    expect(held.length).toBe(1)
    expect(refused.length).toBe(1)
    const holder = a.status === 'fulfilled' ? 'instance-a' : 'instance-b'
    expect(refused[0]!.reason).toBeInstanceOf(TopologyError)
    expect((refused[0]!.reason as Error).message).toBe(
      `the state directory ${dir} is in use by another instance in this process (pid ${process.pid}, instance ${holder}): give each instance on a machine its own state directory (--state-dir, stateDir)`,
    )
    // Released, the directory is free again for another instance of the process.
    await (held[0] as PromiseFulfilledResult<StateDirectoryLock>).value.release()
    const again = await lockStateDirectory(dir, 'instance-c')
    await again.release()
  })
})
