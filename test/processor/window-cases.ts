/**
 * Random window cases and the two ways to run them: through the windowed operator (over any KeyedState, with
 * commits and restarts) and through the naive reference. Shared by the window property test and the state-store
 * test (the same cases over a LevelDB store with a tiny cache).
 */
import { expect } from 'vitest'
import { CompiledAggregations, avg, count, first, last, max, min, percentile, stddev, sum } from '../../processor/aggregate/aggregations.js'
import { ByteReader, ByteWriter, type EntryCodec } from '../../processor/state/codec.js'
import { hopping, session, sliding, tumbling, type WindowSpec } from '../../processor/windows/spec.js'
import { WindowedAggregate, type EmitMode, type KeyedState, type WindowEntry, type WindowResult } from '../../processor/windows/windowed-aggregate.js'
import { seeded } from '../helpers/random.js'
import { runReference, type RefStep, type RefWindow } from './window-reference.js'

const AGGREGATIONS = {
  count: count(),
  sum: sum('x'),
  avg: avg('x'),
  min: min('x'),
  max: max('x'),
  stddev: stddev('x'),
  first: first('x'),
  last: last('x'),
  p50: percentile('x', 0.5),
  p99: percentile('x', 0.99),
}

/** A store that keeps only encoded bytes, so every read goes through the codec as a restored task's would. */
export class EncodedState implements KeyedState<WindowEntry> {
  readonly bytes = new Map<string, Buffer>()
  private codec!: EntryCodec<WindowEntry>
  private readonly writer = new ByteWriter()
  useCodec(codec: EntryCodec<WindowEntry>) {
    this.codec = codec
  }
  private readonly live = new Map<string, WindowEntry>()
  get(group: string) {
    const entry = this.live.get(group)
    if (entry !== undefined) return entry
    const stored = this.bytes.get(group)
    return stored === undefined ? undefined : Promise.resolve(this.codec.read(new ByteReader(stored)))
  }
  put(group: string, value: WindowEntry) {
    this.live.set(group, value)
  }
  delete(group: string) {
    this.live.delete(group)
    this.bytes.delete(group)
  }
  /** What a commit does: encode every live entry and drop the decoded copies. */
  flush() {
    for (const [group, entry] of this.live) {
      this.codec.write(this.writer.reset(), entry)
      this.bytes.set(group, this.writer.finish())
    }
    this.live.clear()
  }
  async stored(): Promise<[string, WindowEntry][]> {
    return [...this.bytes].map(([group, bytes]) => [group, this.codec.read(new ByteReader(bytes))])
  }
}

export interface Case {
  spec: WindowSpec
  mode: EmitMode
  steps: (RefStep | { kind: 'restart' })[]
}

export function randomCase(seed: number): Case {
  const random = seeded(seed)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1))
  const size = pick([10, 20, 30, 60])
  const grace = pick([0, 0, 5, 15])
  const spec = pick<() => WindowSpec>([
    () => tumbling({ size, grace }),
    () => hopping({ size, advance: pick([size, size / 2, size / 5, size / 10].filter((a) => Number.isInteger(a) && a > 0)), grace }),
    () => hopping({ size: 30, advance: 20, grace }),
    () => sliding({ timeDifference: int(1, 20), grace }),
    () => session({ gap: int(1, 15), grace }),
  ])()
  const mode: EmitMode = random() < 0.5 ? 'final' : 'update'
  const groups = ['a', 'b', 'c', 'd'].slice(0, int(1, 4))
  const steps: Case['steps'] = []
  let clock = int(0, 50)
  for (let i = 0, n = int(5, 80); i < n; i++) {
    const roll = random()
    if (roll < 0.05) steps.push({ kind: 'advance', streamTime: clock + int(0, 40) })
    else if (roll < 0.12) steps.push({ kind: 'commit' })
    else if (roll < 0.16) steps.push({ kind: 'restart' })
    else {
      clock += int(0, 6)
      // Mostly near the head, some out of order, some far behind (late).
      const ts = Math.max(0, random() < 0.7 ? clock : random() < 0.7 ? clock - int(1, 20) : clock - int(20, 120))
      steps.push({ kind: 'record', record: { group: pick(groups), ts, x: Math.round((random() * 200 - 60) * 10) / 10 } })
    }
  }
  return { spec, mode, steps }
}

/** A store under test: KeyedState plus what a commit does, and what a restart reads back. */
export interface StoreUnderTest extends KeyedState<WindowEntry> {
  useCodec(codec: EntryCodec<WindowEntry>): void
  flush(): void | Promise<void>
  stored(): Promise<[string, WindowEntry][]>
}

export async function runOperator(c: Case, state: StoreUnderTest = new EncodedState()): Promise<{ windows: RefWindow[]; late: number[] }> {
  const aggs = new CompiledAggregations(AGGREGATIONS)
  const windows: RefWindow[] = []
  const late: number[] = []
  let step = 0
  const make = () => new WindowedAggregate({ window: c.spec, aggregations: aggs, emit: c.mode }, state, (r: WindowResult) => windows.push({ step, group: r.group, windowStart: r.windowStart, windowEnd: r.windowEnd, values: r.values as Record<string, number | null>, ...(r.retracted ? { retracted: true as const } : {}) }))
  let operator = make()
  state.useCodec(operator.codec)
  for (; step < c.steps.length; step++) {
    const s = c.steps[step]!
    switch (s.kind) {
      case 'record': {
        const accepted = await operator.process({ key: s.record.group, group: s.record.group, fields: {}, ts: s.record.ts, inputs: aggs.extract({ x: s.record.x }) })
        if (!accepted) late.push(step)
        // As the runner: due windows closed after the record, a few groups at a time.
        while (operator.hasDue) await operator.closeDue(1 + (step % 3))
        break
      }
      case 'advance':
        await operator.advanceTo(s.streamTime)
        break
      case 'commit':
        if (c.mode === 'update') await operator.emitUpdates()
        await state.flush()
        break
      case 'restart': {
        // A restored task: a commit happened, then a new operator reads the store and the saved stream time.
        if (c.mode === 'update') await operator.emitUpdates()
        await state.flush()
        const streamTime = operator.streamTime
        operator = make()
        operator.streamTime = streamTime
        for (const [group, entry] of await state.stored()) operator.restore(group, entry)
        break
      }
    }
  }
  return { windows, late }
}

export function referenceSteps(c: Case): RefStep[] {
  // A restart is a commit to the reference (the operator emits pending updates before restarting).
  return c.steps.map((s) => (s.kind === 'restart' ? { kind: 'commit' } : s))
}

function normalize(windows: RefWindow[]) {
  const exact = ['count', 'min', 'max', 'first', 'last', 'p50', 'p99']
  return windows
    .map((w) => ({
      at: `${w.step} ${w.group} [${w.windowStart},${w.windowEnd})${w.retracted ? ' retracted' : ''}`,
      exact: Object.fromEntries(exact.map((k) => [k, w.values[k]])),
      // A retraction has no values: null, as the reference's.
      approx: ['sum', 'avg', 'stddev'].map((k) => w.values[k] ?? null),
    }))
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0))
}

/** Runs a case both ways and fails with the seed when they differ. */
export async function checkCase(seed: number, state?: StoreUnderTest): Promise<void> {
  const c = randomCase(seed)
  const expected = runReference(c.spec, c.mode, referenceSteps(c))
  const actual = await runOperator(c, state)
  try {
    expect(actual.late).toEqual(expected.late)
    const a = normalize(actual.windows)
    const e = normalize(expected.windows)
    const firstDiff = a.findIndex((w, i) => JSON.stringify([w.at, w.exact]) !== JSON.stringify([e[i]?.at, e[i]?.exact]))
    if (firstDiff >= 0 || a.length !== e.length) {
      const at = firstDiff >= 0 ? firstDiff : Math.min(a.length, e.length)
      throw new Error(`window ${at}: operator ${JSON.stringify(a[at])} reference ${JSON.stringify(e[at])} (${a.length} vs ${e.length} windows)`)
    }
    a.forEach((w, i) => w.approx.forEach((v, j) => {
      const want = e[i]!.approx[j]!
      if (v === null || want === null) expect(v).toBe(want)
      else expect(Math.abs(v - want)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want)))
    }))
  } catch (error) {
    throw new Error(`seed ${seed} failed (${JSON.stringify(c.spec)}, emit ${c.mode}; rerun with BROOK_WINDOW_SEED=${seed}):\n${(error as Error).message}`)
  }
}
