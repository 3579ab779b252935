/**
 * The close-time index kept in the task's LevelDB (processor/state/close-times.ts) against a plain reference: seeded
 * random moves, chunked pops, commits, discards of uncommitted work and reopened stores. Every chunk must be the
 * smallest (close time, group) pairs due, a discard must bring back what the last commit held, a reopened store what
 * it committed; and the index is rebuilt from the state records when a restore made it stale or the window changed.
 */
import { afterAll, describe, expect, test } from 'vitest'
import { randomBytes } from 'node:crypto'
import { PLAIN_CODEC, type EntryCodec } from '../../processor/state/codec.js'
import { sortableTime, timeFromSortable } from '../../processor/state/close-times.js'
import { CacheBudget, COMMIT_ID_BYTES, TaskStore } from '../../processor/state/task-store.js'
import type { CloseTimeIndex } from '../../processor/windows/timers.js'
import { CompiledAggregations, count } from '../../processor/aggregate/aggregations.js'
import { Groups } from '../../processor/runtime/groups.js'
import { tumbling } from '../../processor/windows/spec.js'
import { WindowedAggregate, type WindowEntry } from '../../processor/windows/windowed-aggregate.js'
import { seeded } from '../helpers/random.js'
import { stateDir } from './helpers.js'

const open: TaskStore[] = []
afterAll(async () => {
  for (const store of open) await store.close().catch(() => {})
})

interface Entry {
  at: number
}

async function openStore(dir: string, spec = 'tumbling 10', closeTimeOf = (entry: Entry) => entry.at): Promise<{ store: TaskStore; index: CloseTimeIndex; entries: ReturnType<TaskStore['register']> }> {
  const store = await TaskStore.open(dir, new CacheBudget(1 << 20))
  open.push(store)
  const entries = store.register('window op', PLAIN_CODEC as EntryCodec<Entry>)
  const index = entries.closeTimes!(closeTimeOf, spec)
  await store.warm()
  return { store, index, entries }
}

/** The `max` smallest (close time, group) pairs due at `time`. */
function dueIn(reference: Map<string, number>, time: number, max: number): string[] {
  return [...reference]
    .filter(([, at]) => at <= time)
    .sort(([ga, a], [gb, b]) => a - b || (ga < gb ? -1 : ga > gb ? 1 : 0))
    .slice(0, max)
    .map(([group]) => group)
}

test('close times sort as numbers, negative, fractional and large ones too', () => {
  const times = [-1e300, -5.5, -1, -0, 0, 1e-9, 1, 59_999.5, 60_000, 1.7e12, 8.64e15, 2 ** 53]
  for (const at of times) expect(timeFromSortable(`x${sortableTime(at)}`, 1)).toBe(at)
  const sorted = [...times].sort((a, b) => (sortableTime(a) < sortableTime(b) ? -1 : 1))
  expect(sorted).toEqual(times)
})

describe('the close-time index in LevelDB', () => {
  test('pops due groups in (close time, group) order through moves, chunks, commits, discards and reopens, as a reference does', async () => {
    for (let seed = 1; seed <= 60; seed++) {
      const next = seeded(seed)
      const dir = stateDir()
      let { store, index } = await openStore(dir)
      let committed = new Map<string, number>()
      let current = new Map<string, number>()
      let time = 0
      let checkpoint = 0
      let pops = 0
      for (let step = 0; step < 300; step++) {
        const where = `seed ${seed} step ${step}`
        const roll = next()
        if (roll < 0.5) {
          // Many groups share each close time, as epoch-aligned windows make them.
          const group = `g${Math.floor(next() * 30)}`
          const to = next() < 0.1 ? undefined : time + Math.floor(next() * 6 - 1) * 10
          index.move(group, current.get(group), to)
          if (to === undefined) current.delete(group)
          else current.set(group, to)
        } else if (roll < 0.75) {
          time += Math.floor(next() * 3) * 10
          const max = 1 + Math.floor(next() * 4)
          const got = await index.popDue(time, max)
          expect(got, where).toEqual(dueIn(current, time, max))
          for (const group of got) current.delete(group)
          if (got.length === 0) expect(index.peek(), where).toBeGreaterThan(time)
          pops += got.length
        } else if (roll < 0.88) {
          await store.commitLocal([], ++checkpoint)
          committed = new Map(current)
        } else if (roll < 0.95) {
          // A task that drops its uncommitted work (a failed commit, a reload).
          store.discardCache()
          current = new Map(committed)
        } else {
          await store.close()
          ;({ store, index } = await openStore(dir))
          current = new Map(committed)
        }
        expect(index.peek(), where).toBeLessThanOrEqual(Math.min(...current.values()))
      }
      // What is left comes out in order at the end of time.
      let rest: string[] = []
      for (let chunk = await index.popDue(Number.POSITIVE_INFINITY, 7); chunk.length > 0; chunk = await index.popDue(Number.POSITIVE_INFINITY, 7)) rest = rest.concat(chunk)
      expect(rest, `seed ${seed}`).toEqual(dueIn(current, Number.POSITIVE_INFINITY, Number.MAX_SAFE_INTEGER))
      expect(pops).toBeGreaterThan(0)
      await store.close()
    }
  })

  test('a restore makes it stale and the next start rebuilds it from the state records; so does another window', async () => {
    const dir = stateDir()
    const { store, entries } = await openStore(dir)
    for (let g = 0; g < 25; g++) entries.put(`g${String(g).padStart(2, '0')}`, { at: 1000 * (g % 5) })
    const records = await store.dirtyRecords(randomBytes(COMMIT_ID_BYTES))
    // As a restore writes them: raw records, no index.
    await store.applyRestored(records, 1)
    store.discardCache()
    await store.close()
    let { store: again, index } = await openStore(dir)
    const all = async () => {
      const out: string[] = []
      for (let chunk = await index.popDue(Number.POSITIVE_INFINITY, 10); chunk.length > 0; chunk = await index.popDue(Number.POSITIVE_INFINITY, 10)) out.push(...chunk)
      return out
    }
    const expected = Array.from({ length: 25 }, (_, g) => `g${String(g).padStart(2, '0')}`).sort((a, b) => (Number(a.slice(1)) % 5) - (Number(b.slice(1)) % 5) || (a < b ? -1 : 1))
    expect(await all()).toEqual(expected)
    // Nothing committed the pops: reopened, the rebuilt index is in LevelDB.
    await again.close()
    ;({ store: again, index } = await openStore(dir))
    expect(await index.popDue(2500, 100)).toEqual(expected.slice(0, 15))
    await again.close()
    // Another spec for the same operator, whose close times run the other way: rebuilt with them.
    ;({ store: again, index } = await openStore(dir, 'tumbling 20', (entry) => 10_000 - entry.at))
    const reversed = [...expected].sort((a, b) => (Number(b.slice(1)) % 5) - (Number(a.slice(1)) % 5) || (a < b ? -1 : 1))
    expect(await all()).toEqual(reversed)
    await again.close()
  })

  test('a group whose field holds a lone surrogate comes back from LevelDB as itself, and its window closes once', async () => {
    // LevelDB keys are UTF-8, where a lone surrogate (JSON's "\ud800") becomes U+FFFD: the group read back from the
    // index would be another string than the one the records make, and the cache would hold two slots for one key.
    const groups = new Groups((reading: { sensor: string }) => ({ sensor: reading.sensor }))
    const odd = groups.of('device-1', { sensor: '\ud800' })
    expect(Buffer.from(odd.group).toString()).toBe(odd.group)
    expect(odd.group).not.toBe(groups.of('device-1', { sensor: '\ufffd' }).group)
    const store = await TaskStore.open(stateDir(), new CacheBudget(1 << 20))
    open.push(store)
    const aggs = new CompiledAggregations({ n: count() })
    const emitted: string[] = []
    const spec = tumbling({ size: 60_000, grace: 0 })
    let state!: ReturnType<TaskStore['register']>
    const keyed = {
      get: (g: string) => state.get(g),
      put: (g: string, v: unknown) => state.put(g, v),
      delete: (g: string) => state.delete(g),
      prefetch: (gs: readonly string[]) => state.prefetch!(gs),
      closeTimes: (of: (entry: WindowEntry) => number | undefined, s: string) => (state ??= store.register('w', PLAIN_CODEC)).closeTimes!(of as (entry: unknown) => number | undefined, s),
    }
    const op = new WindowedAggregate({ window: spec, aggregations: aggs, emit: 'final' }, keyed as never, (r) => emitted.push(`${JSON.stringify(r.group)}@${r.windowStart}=${r.values.n}`))
    state = store.register('w', op.codec as EntryCodec<unknown>)
    await store.warm()
    const input = (group: string, ts: number) => ({ key: 'device-1', group, fields: {}, ts, inputs: aggs.extract({}) })
    await op.process(input(odd.group, 1_000))
    await store.commitLocal(await store.dirtyRecords(randomBytes(COMMIT_ID_BYTES)), 1)
    // Another group moves stream time past the window: the odd group's window closes from the index, once.
    await op.process(input('other', 61_000))
    while (op.hasDue) await op.closeDue(10)
    await op.process(input(odd.group, 62_000))
    while (op.hasDue) await op.closeDue(10)
    expect(emitted.filter((e) => e.endsWith('@0=1'))).toEqual([`${JSON.stringify(odd.group)}@0=1`])
  })
})
