/**
 * Window semantics as pure functions: the windowed operator (slices, sketches, timers, pruning, encoding, restart)
 * against the naive reference of window-reference.ts, on random inputs from a fixed-seed PRNG (window-cases.ts).
 * Inputs mix in-order, out-of-order and late records, idle-time advances of stream time, commits (emit mode
 * update) and restarts (the operator is rebuilt from its encoded state, as a restored task would be). A failing
 * case prints its seed; BROOK_WINDOW_SEED=<n> reruns that one, BROOK_WINDOW_SEEDS=<n> runs more.
 */
import sketches from '@datadog/sketches-js'
import { describe, expect, test } from 'vitest'
import { avg, CompiledAggregations, count, max, min, percentile, reduction, sum, type Accumulator } from '../../processor/aggregate/aggregations.js'
import { mergeSketch, newSketch, quantile, readSketch, SKETCH_RELATIVE_ACCURACY, writeSketch } from '../../processor/aggregate/sketch.js'
import { ByteReader, ByteWriter } from '../../processor/state/codec.js'
import { hopping, session, sliding, timeWindowsFor, tumbling, type WindowSpec } from '../../processor/windows/spec.js'
import { seeded } from '../helpers/random.js'
import { WindowedAggregate } from '../../processor/windows/windowed-aggregate.js'
import { checkCase, EncodedState } from './window-cases.js'
import { RecordError, TopologyError } from '../../processor/errors.js'

/**
 * A windowed count (`n`) of one group over an in-memory store, for the cases below: its windows as emitted, each as
 * `[windowStart, windowEnd) n`, and `at(ts)`, which processes a record at `ts` (false: it was late).
 */
function countingWindows(window: WindowSpec, emit: 'final' | 'update') {
  const aggs = new CompiledAggregations({ n: count() })
  const emitted: string[] = []
  const state = new EncodedState()
  const op = new WindowedAggregate({ window, aggregations: aggs, emit }, state, (r) => emitted.push(`[${r.windowStart}, ${r.windowEnd}) ${r.values.n}`))
  state.useCodec(op.codec)
  const at = (ts: number) => op.process({ key: 'd', group: 'd', fields: {}, ts, inputs: aggs.extract({}) })
  return { op, emitted, at }
}

describe('window semantics against the naive reference', () => {
  const SEEDS = Number(process.env.BROOK_WINDOW_SEEDS ?? 1000)
  test(`${SEEDS} random cases (tumbling, hopping, sliding, session; final and update; out of order, late, idle, restarts)`, async () => {
    const only = process.env.BROOK_WINDOW_SEED
    for (let seed = only ? Number(only) : 1; seed <= (only ? Number(only) : SEEDS); seed++) await checkCase(seed)
  })
})

describe('closing due windows a chunk at a time', () => {
  const spec = tumbling({ size: 60_000, grace: 0 })
  const aggs = new CompiledAggregations({ n: count(), total: sum('x') })
  const input = (group: string, ts: number, x: number) => ({ key: group, group, fields: {}, ts, inputs: aggs.extract({ x }) })

  test('a record moving stream time closes only its own group; the rest close in chunks, across a restart, each window once', async () => {
    const state = new EncodedState()
    const emitted: string[] = []
    const make = () => new WindowedAggregate({ window: spec, aggregations: aggs, emit: 'final' }, state, (r) => emitted.push(`${r.group}@${r.windowStart}=${r.values.n}/${r.values.total}`))
    let op = make()
    state.useCodec(op.codec)
    // Ten groups, two readings each in the window [0, 60000).
    for (let g = 0; g < 10; g++) {
      await op.process(input(`g${g}`, 1000 + g, g))
      await op.process(input(`g${g}`, 2000 + g, 1))
    }
    expect(op.hasDue).toBe(false)
    // g9 moves stream time into the next window: its own window closes before its record lands, nothing else yet.
    expect(await op.process(input('g9', 60_000, 100))).toBe(true)
    expect(emitted).toEqual(['g9@0=2/10'])
    expect(op.hasDue).toBe(true)
    expect(await op.closeDue(3)).toBe(3)
    expect(emitted.slice(1)).toEqual(['g0@0=2/1', 'g1@0=2/2', 'g2@0=2/3'])
    // A restart halfway: the store and the saved stream time, as a commit left them.
    state.flush()
    const streamTime = op.streamTime
    op = make()
    op.streamTime = streamTime
    for (const [group, entry] of await state.stored()) op.restore(group, entry)
    expect(op.hasDue).toBe(true)
    // A record of a group still due, for its old window: the window closes first (with what it held), and the record,
    // late for it, is refused.
    expect(await op.process(input('g5', 59_000, 1000))).toBe(false)
    expect(emitted.at(-1)).toBe('g5@0=2/6')
    // A record of another due group for the new window: the old one closes first with what it held.
    expect(await op.process(input('g7', 61_000, 5))).toBe(true)
    expect(emitted.at(-1)).toBe('g7@0=2/8')
    while (op.hasDue) await op.closeDue(2)
    const closed = emitted.filter((e) => e.includes('@0='))
    expect(closed.sort()).toEqual(Array.from({ length: 10 }, (_, g) => `g${g}@0=2/${g + 1}`).sort())
    // The new window holds g9's and g7's readings only, and closes once.
    await op.advanceTo(120_000)
    expect(emitted.filter((e) => e.includes('@60000='))).toEqual(['g7@60000=1/5', 'g9@60000=1/100'])
  })
})

describe("a reduce's open windows of one group", () => {
  test('a record that would take them past what one changelog record holds is refused (GROUP_TOO_LARGE; a session value past the limit itself, SERIALIZATION_FAILED) before anything changes, in every window family', async () => {
    const windows: WindowSpec[] = [
      tumbling({ size: '1m', grace: '10m' }),
      hopping({ size: '3m', advance: '1m', grace: '10m' }),
      sliding({ timeDifference: '1m', grace: '10m' }),
      session({ gap: '1m', grace: '10m' }),
    ]
    for (const window of windows) {
      const aggs = reduction<string>((a, b) => a + b)
      const emitted: string[] = []
      const state = new EncodedState()
      const op = new WindowedAggregate({ window, aggregations: aggs, emit: 'update' }, state, (r) => emitted.push(`${r.windowStart} ${(r.values.value as string).length}`))
      state.useCodec(op.codec)
      const at = (ts: number, value: string) => op.process({ key: 'd', group: 'd', fields: {}, ts, inputs: aggs.extract(value) })
      const part = 'x'.repeat(400_000)
      // Records 30 s apart: two windows (or slices, points) for tumbling, hopping and sliding, one session.
      await at(0, part)
      await at(30_000, part)
      // Written and read back, as after a restart: the accumulators read are weighed afresh.
      state.flush()
      const refused = await Promise.resolve(at(61_000, part)).then(() => null, (error: unknown) => error)
      expect(refused, window.type).toBeInstanceOf(RecordError)
      // The three records are one session, whose reduced value is itself past the limit; elsewhere they are in
      // windows (slices, points) of their own.
      if (window.type === 'session') {
        expect((refused as RecordError).code).toBe('SERIALIZATION_FAILED')
        expect((refused as RecordError).message).toMatch(/^the reduced value takes 12000\d\d bytes of msgpack, above the 1000000/)
      } else {
        expect((refused as RecordError).code, window.type).toBe('GROUP_TOO_LARGE')
        expect((refused as RecordError).message).toMatch(/^the open windows of group "d" would hold 12000\d\d bytes of msgpack with this value of 4000\d\d, past the 1000000/)
      }
      // A small value still goes in; what was refused is in no window.
      await at(61_000, 'z')
      await op.emitUpdates()
      const longest = Math.max(...emitted.map((line) => Number(line.split(' ')[1])))
      expect(longest, window.type).toBeLessThanOrEqual(800_001)
      expect(emitted.some((line) => /\s(1|400001|800001)$/.test(line)), window.type).toBe(true)
    }
  })

  test("a reducer that keeps one of its values is not refused for values that together would pass the limit, since its state does not grow; a session's retraction still goes out", async () => {
    // Two 600 KB values 1 s apart, in one window, slice or session: a last-value reducer holds 600 KB after both
    // (input plus state would be 1.2 MB). Sliding windows keep a point per record, so there the state is 1.2 MB.
    const windows: WindowSpec[] = [
      tumbling({ size: '1m', grace: '10m' }),
      hopping({ size: '3m', advance: '1m', grace: '10m' }),
      sliding({ timeDifference: '1m', grace: '10m' }),
      session({ gap: '1m', grace: '10m' }),
    ]
    const outcomes: string[] = []
    for (const window of windows) {
      const aggs = reduction<string>((_a, b) => b)
      const emitted: string[] = []
      const state = new EncodedState()
      const op = new WindowedAggregate({ window, aggregations: aggs, emit: 'update' }, state, (r) => emitted.push(r.retracted ? `retracted ${r.windowStart}-${r.windowEnd}` : `${r.windowStart}-${r.windowEnd} ${(r.values.value as string).slice(0, 1)}${(r.values.value as string).length}`))
      state.useCodec(op.codec)
      const at = (ts: number, value: string) => Promise.resolve(op.process({ key: 'd', group: 'd', fields: {}, ts, inputs: aggs.extract(value) })).then(() => 'taken', (error: unknown) => (error as RecordError).code)
      await at(0, 'a'.repeat(600_000))
      await op.emitUpdates()
      // Written and read back, as after a restart: the accumulators read are weighed afresh.
      state.flush()
      const second = await at(1_000, 'b'.repeat(600_000))
      await op.emitUpdates()
      outcomes.push(`${window.type} ${second} ${emitted.join(', ')}`)
    }
    expect(outcomes).toEqual([
      'tumbling taken 0-60000 a600000, 0-60000 b600000',
      'hopping taken 0-180000 a600000, 0-180000 b600000',
      'sliding GROUP_TOO_LARGE 0-60001 a600000',
      'session taken 0-1 a600000, retracted 0-1, 0-1001 b600000',
    ])
  })
})

describe('aggregations', () => {
  test('the average of equal values is that value, within min and max, through merges too', () => {
    const aggs = new CompiledAggregations({ avg: avg('x'), min: min('x'), max: max('x') })
    let one = aggs.create()
    for (let i = 0; i < 3; i++) one = aggs.add(one, aggs.extract({ x: 1019.7 }), i)
    // sum / n would be 1019.7000000000002, above the max.
    expect(aggs.result(one)).toEqual({ avg: 1019.7, min: 1019.7, max: 1019.7 })
    let other = aggs.create()
    for (let i = 0; i < 7; i++) other = aggs.add(other, aggs.extract({ x: 0.1 }), i)
    expect(aggs.result(other).avg).toBe(0.1)
    expect(aggs.result(aggs.merge(aggs.merge(aggs.create(), other), other)).avg).toBe(0.1)
    // Values that differ keep the naive sum / n.
    let mixed = aggs.create()
    for (const x of [10, 20, 30, 0.1]) mixed = aggs.add(mixed, aggs.extract({ x }), 0)
    expect(aggs.result(mixed).avg).toBe((10 + 20 + 30 + 0.1) / 4)
  })
})

describe('window assignment', () => {
  test('epoch-aligned, half-open hopping windows', () => {
    const spec = hopping({ size: '5m', advance: '1m', grace: 0 }) as Extract<WindowSpec, { type: 'hopping' }>
    const windows = timeWindowsFor(Date.UTC(2024, 0, 1, 0, 7, 30), spec)
    expect(windows.map((w) => [new Date(w.start).toISOString().slice(11, 16), new Date(w.end).toISOString().slice(11, 16)])).toEqual([
      ['00:03', '00:08'], ['00:04', '00:09'], ['00:05', '00:10'], ['00:06', '00:11'], ['00:07', '00:12'],
    ])
    // A timestamp equal to a window's end belongs to the next window only.
    expect(timeWindowsFor(60_000, tumbling({ size: '1m', grace: 0 }) as Extract<WindowSpec, { type: 'tumbling' }>)).toEqual([{ start: 60_000, end: 120_000 }])
  })

  test('no hopping window starts before time 0, as in Kafka Streams (TimeWindows.windowsFor); the operator emits none', async () => {
    const spec = hopping({ size: '10s', advance: '5s', grace: 0 }) as Extract<WindowSpec, { type: 'hopping' }>
    expect(timeWindowsFor(1000, spec)).toEqual([{ start: 0, end: 10_000 }])
    expect(timeWindowsFor(7000, spec)).toEqual([{ start: 0, end: 10_000 }, { start: 5000, end: 15_000 }])
    for (const emit of ['final', 'update'] as const) {
      const { op, emitted, at } = countingWindows(spec, emit)
      for (const ts of [0, 1000, 7000]) await at(ts)
      if (emit === 'update') await op.emitUpdates()
      await at(30_000)
      while (op.hasDue) await op.closeDue(10)
      expect(emitted.filter((w) => w.startsWith('[-'))).toEqual([])
      expect(emitted).toContain('[0, 10000) 3')
      expect(emitted).toContain('[5000, 15000) 1')
    }
  })

  test('no sliding window starts before time 0: a record less than d after it is in [0, d], its right window as usual, as in Kafka Streams (KStreamSlidingWindowAggregate.processEarly)', async () => {
    for (const emit of ['final', 'update'] as const) {
      const { op, emitted, at } = countingWindows(sliding({ timeDifference: '10s', grace: '1s' }), emit)
      for (const ts of [2000, 4000, 15_000]) await at(ts)
      if (emit === 'update') await op.emitUpdates()
      await at(60_000)
      while (op.hasDue) await op.closeDue(10)
      // [0, 10 s] holds both early records; 2 s's right window [2.001 s, 12.001 s] holds 4 s's; 15 s's own, [5 s, 15 s].
      expect(emitted).toEqual(['[0, 10001) 2', '[2001, 12002) 1', '[5000, 15001) 1'])
    }
  })

  test('a sliding window stays open while its end is at least stream time - grace, as in Kafka Streams: with grace 0 the newest record has its window emitted, and a record whose own window ends at stream time - grace is counted in it', async () => {
    for (const emit of ['final', 'update'] as const) {
      // Grace 0: the record at 20 s makes stream time 20 s, and its own window [15 s, 20 s] is still open then.
      const noGrace = countingWindows(sliding({ timeDifference: '5s', grace: 0 }), emit)
      for (const ts of [10_000, 20_000]) await noGrace.at(ts)
      expect(noGrace.emitted.filter((w) => w.startsWith('[15000,'))).toEqual([])
      await noGrace.op.advanceTo(20_001)
      expect(noGrace.emitted).toEqual(['[5000, 10001) 1', '[15000, 20001) 1'])

      // Grace 2 s, stream time 30 s: a record at 28 s has its own window [23 s, 28 s], whose end is 30 s - 2 s: open.
      // One at 22.999 s is late: its last window, [22.999 s, 27.999 s], ends before 28 s.
      const withGrace = countingWindows(sliding({ timeDifference: '5s', grace: '2s' }), emit)
      await withGrace.at(30_000)
      expect(await withGrace.at(22_999)).toBe(false)
      expect(await withGrace.at(28_000)).toBe(true)
      await withGrace.op.advanceTo(40_000)
      expect(withGrace.emitted).toEqual(['[23000, 28001) 1', '[25000, 30001) 2', '[28001, 33002) 1'])
    }
  })

  test('a sliding-window record whose own window is closed is added to the open windows that hold it, and is late when none does', async () => {
    for (const emit of ['final', 'update'] as const) {
      const { op, emitted, at } = countingWindows(sliding({ timeDifference: '5s', grace: '1s' }), emit)
      // Stream time 30 s: windows ending before 29 s are closed.
      for (const ts of [27_000, 30_000]) expect(await at(ts)).toBe(true)
      // 24.5 s: its own window [19.5 s, 24.5 s] is closed, 27 s's own [22 s, 27 s] too, and neither 30 s's own
      // [25 s, 30 s] nor 27 s's right window [27.001 s, 32.001 s] holds it: no open window would show it, so it is late.
      expect(await at(24_500)).toBe(false)
      // 28.5 s: its own window [23.5 s, 28.5 s] is closed, but 30 s's own [25 s, 30 s] is open and holds it.
      expect(await at(28_500)).toBe(true)
      await op.advanceTo(60_000)
      expect(emitted).toContain('[25000, 30001) 3')
      expect(emitted.some((w) => w.startsWith('[23500,'))).toBe(false)
    }
  })

  test('a late sliding-window record less than d before the open windows still makes the window after it, holding the records after it and not itself, as Kafka Streams (KStreamSlidingWindowAggregate drops only records with ts + d < streamTime - grace, and creates the record\'s right window)', async () => {
    for (const emit of ['final', 'update'] as const) {
      const { op, emitted, at } = countingWindows(sliding({ timeDifference: '5s', grace: '1s' }), emit)
      for (const ts of [27_000, 30_000]) expect(await at(ts)).toBe(true)
      if (emit === 'update') await op.emitUpdates()
      emitted.length = 0
      // Stream time 30 s: 24.5 s is in no open window (late), but 24.5 s + 5 s >= 29 s: the window after it,
      // [24.501 s, 29.501 s], is open and holds 27 s.
      expect(await at(24_500)).toBe(false)
      if (emit === 'update') {
        await op.emitUpdates()
        expect(emitted).toEqual(['[24501, 29502) 1'])
      }
      // 29.2 s joins it; its own window [24.2 s, 29.2 s] covers 24.5 s but holds 27 s and 29.2 s only.
      expect(await at(29_200)).toBe(true)
      await op.advanceTo(60_000)
      expect(emitted.filter((w) => w.startsWith('[24'))).toEqual([...(emit === 'update' ? ['[24501, 29502) 1'] : []), '[24200, 29201) 2', '[24501, 29502) 2'])
      expect(emitted).toContain('[25000, 30001) 3')
    }
    // Early: with d = 10 and grace 17, stream time 30 closes [0, 10]; 6 is late, and makes [7, 17], which holds 8.
    const early = countingWindows(sliding({ timeDifference: 10, grace: 17 }), 'final')
    for (const ts of [8, 30]) await early.at(ts)
    expect(await early.at(6)).toBe(false)
    await early.op.advanceTo(100)
    expect(early.emitted).toEqual(['[0, 11) 1', '[7, 18) 1', '[20, 31) 1'])
  })

  test('a window left without its grace (JavaScript, or TypeScript run without type checks) says it is missing', () => {
    expect(() => tumbling({ size: '1m' } as unknown as Parameters<typeof tumbling>[0])).toThrow(new TopologyError("tumbling grace is missing: give a number of ms or e.g. '10s', '1m' (0 for none)"))
  })
})

describe('percentile sketches', () => {
  // The library's own sketch of all the values is the reference: accepting, merging in any split and writing and
  // reading back must give the same bins, so the same value at every quantile.
  const QUANTILES = [0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1]
  const reference = (xs: readonly number[]) => {
    const sketch = new sketches.DDSketch({ relativeAccuracy: SKETCH_RELATIVE_ACCURACY })
    for (const x of xs) sketch.accept(x)
    return QUANTILES.map((q) => sketch.getValueAtQuantile(q))
  }
  const ours = (parts: readonly (readonly number[])[]) => {
    const merged = newSketch()
    for (const xs of parts) {
      const part = newSketch()
      for (const x of xs) part.accept(x)
      const out = new ByteWriter()
      writeSketch(out, part)
      mergeSketch(merged, readSketch(new ByteReader(out.finish())))
    }
    return QUANTILES.map((q) => quantile(merged, q))
  }

  test('accept, merge and write/read equal one sketch of all the values, in any split and order', () => {
    const random = seeded(7)
    const ranges = [[20, 30], [0.5, 1], [-50, 50], [1e-3, 1e6], [-1, -1e-4]] as const
    for (let round = 0; round < 300; round++) {
      const [low, high] = ranges[round % ranges.length]!
      const xs = Array.from({ length: 1 + Math.floor(random() * 400) }, () => low + random() * (high - low))
      const parts: number[][] = [[]]
      for (const x of xs) {
        if (random() < 0.05) parts.push([])
        parts.at(-1)!.push(x)
      }
      expect(ours(parts)).toEqual(reference(xs))
    }
  })

  test('percentiles stay within the min and max of their values, through merges and write/read; one value, and the quantiles 0 and 1, are exact', () => {
    const aggregations = new CompiledAggregations({ p0: percentile('x', 0), p50: percentile('x', 0.5), p99: percentile('x', 1) })
    const restored = (acc: Accumulator): Accumulator => {
      const out = new ByteWriter()
      aggregations.write(out, acc)
      return aggregations.read(new ByteReader(out.finish()))
    }
    const of = (xs: readonly number[]): Accumulator => xs.reduce((acc, x) => aggregations.add(acc, [x], 0), aggregations.create())
    // The sketch alone answers 5.0028 for 5, 30.27 for 30 (the largest value) and 59.75 for 60 (the smallest).
    expect(aggregations.result(restored(of([5])))).toEqual({ p0: 5, p50: 5, p99: 5 })
    expect(aggregations.result(restored(aggregations.merge(of([10, 20]), restored(of([30])))))).toEqual({ p0: 10, p50: expect.closeTo(20, 0), p99: 30 })
    expect(aggregations.result(of([60, 150])).p0).toBe(60)
    const random = seeded(11)
    for (let round = 0; round < 200; round++) {
      const xs = Array.from({ length: 1 + Math.floor(random() * 20) }, () => (random() - 0.3) * 10 ** Math.floor(random() * 4))
      const half = Math.floor(xs.length / 2)
      const result = aggregations.result(aggregations.merge(restored(of(xs.slice(0, half))), restored(of(xs.slice(half)))))
      for (const value of Object.values(result)) {
        expect(value!).toBeGreaterThanOrEqual(Math.min(...xs))
        expect(value!).toBeLessThanOrEqual(Math.max(...xs))
      }
      // The quantiles 0 and 1 are the smallest and the largest value, exactly.
      expect([result.p0, result.p99]).toEqual([Math.min(...xs), Math.max(...xs)])
    }
  })

  test('a store whose largest key is 0 merges into one whose keys are all negative', () => {
    // Keys are ceil(log(x) / log(gamma)): values in (1 / gamma, 1] have key 0, values below have negative keys.
    const into = [0.2, 0.3]
    const from = [0.5, 0.999]
    expect(ours([into, from])).toEqual(reference([...into, ...from]))
  })
})
