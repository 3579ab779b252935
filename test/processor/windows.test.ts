/**
 * Window semantics as pure functions: the windowed operator (slices, sketches, timers, pruning, encoding, restart)
 * against the naive reference of window-reference.ts, on random inputs from a fixed-seed PRNG (window-cases.ts).
 * Inputs mix in-order, out-of-order and late records, idle-time advances of stream time, commits (emit mode
 * update) and restarts (the operator is rebuilt from its encoded state, as a restored task would be). A failing
 * case prints its seed; BROOK_WINDOW_SEED=<n> reruns that one, BROOK_WINDOW_SEEDS=<n> runs more.
 */
import { describe, expect, test } from 'vitest'
import { hopping, timeWindowsFor, tumbling, type WindowSpec } from '../../processor/windows/spec.js'
import { checkCase } from './window-cases.js'

describe('window semantics against the naive reference', () => {
  const SEEDS = Number(process.env.BROOK_WINDOW_SEEDS ?? 1000)
  test(`${SEEDS} random cases (tumbling, hopping, sliding, session; final and update; out of order, late, idle, restarts)`, async () => {
    const only = process.env.BROOK_WINDOW_SEED
    for (let seed = only ? Number(only) : 1; seed <= (only ? Number(only) : SEEDS); seed++) await checkCase(seed)
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
})
