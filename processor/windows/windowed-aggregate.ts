/**
 * The windowed aggregation operator: one per `aggregate` node with a window, one instance per task. It keeps one
 * state entry per group (the group's open slices, points or sessions, see below) in a KeyedState (the task's
 * cached LevelDB store in the runtime, a Map in the property tests), and a close-time index (timers.ts): kept in
 * the task's LevelDB with the entries when the state offers one (state/close-times.ts), in memory otherwise.
 *
 * Window lifecycle, per group and window:
 *
 *   (no state) --record on time--> open --streamTime >= close time--> emitted (final) and forgotten
 *                                   |  \--commit (emit: update)--> update emitted, stays open
 *                                   \--record late for it--> unchanged; late record counted, sent to late topic
 *
 * Stream time is the operator's: the largest event time it has seen, or more when the task advances it because
 * its partition has been idle (`advanceTo`). It never goes back, and it is saved with the task's changelog
 * position so that a restarted task neither reopens closed windows nor emits them twice.
 *
 * Closing is split from processing: a record that moves stream time past close times closes only its own group's
 * due windows (before it is applied, so it never lands in a window that should have closed); the windows of the other
 * groups stay due until `closeDue`, which the task calls between records, a bounded number of groups at a time. An
 * epoch-aligned boundary makes every group due at once (200,000 groups for 50,000 devices with four sensors); closed
 * in one go, they held the event loop for seconds and put every result and state change in one commit. A group's
 * state is thus always closed up to stream time when a record reaches it, whatever is still due elsewhere, so the
 * windows and their contents are those of closing everything at once; only the order of results across groups
 * differs (the record's own group comes first).
 *
 * Entries by window family (acc = accumulator of CompiledAggregations; ch = changed since the last update emit):
 *   time (tumbling, hopping)  { k, f, c: closedEnd, s: [[sliceStart, acc, ch], ...] }  one acc per slice of
 *                             gcd(size, advance); a window merges its size/slice slices when it is emitted
 *   sliding                   { k, f, c: closedEnd (inclusive), p: [[t, acc, ch], ...] } one acc per distinct
 *                             record time; a window [e - d, e] merges the points it covers (e >= d: none starts
 *                             before time 0)
 *   session                   { k, f, s: [[first, last, acc, ch], ...] }  ch 2: bounds not emitted yet (a new,
 *                             merged or grown session)
 * `k` is the record key the results carry, `f` the group's fields copied into each result.
 *
 * Sessions in emit mode update are retracted as Kafka Streams' session aggregation forwards a tombstone for each
 * session a merge removes (KStreamSessionWindowAggregate): a session whose result went out at a commit and that a
 * record then merges with another, or grows (an earlier first or a later last record), no longer exists under the
 * bounds it went out with, and a retraction naming those bounds (`retracted: true`, no values) goes out at once, before
 * the new session's next update. A session never emitted under its bounds is not retracted.
 *
 * Binary form (state/codec.ts): `string k` `plain f`, then time and sliding: `f64 c` `varuint n` and n ×
 * (`varint sliceStart|t` (after the first, minus the previous one) `u8 ch` acc); session: `varuint n` and n ×
 * (`varint first` `varint last` `u8 ch` acc).
 */
import { mergeAll, type Accumulation } from '../aggregate/aggregations.js'
import { ByteReader, ByteWriter, INTERNAL_VALUE_MAX_BYTES, type EntryCodec } from '../state/codec.js'
import { ProcessorErrorCode, RecordError } from '../errors.js'
import type { KeyedState } from '../state/task-store.js'
import {
  closedTimeWindowEnd,
  isLateForTimeWindows,
  nextTimeWindowEnd,
  sliceSizeMs,
  sliceStart,
  type TimeWindowSpec,
  type WindowSpec,
} from './spec.js'
import { MemoryCloseTimes, type CloseTimeIndex } from './timers.js'

export type { KeyedState }

export type EmitMode = 'final' | 'update'

/** One record as the operator sees it: its group, its event time and its extracted numeric inputs. */
export interface WindowInput {
  key: string | null
  group: string
  fields: Record<string, unknown>
  ts: number
  /** What the accumulation's `extract` read from the record's value. */
  inputs: unknown
}

/** One window result. */
export interface WindowResult {
  key: string | null
  group: string
  fields: Record<string, unknown>
  windowStart: number
  windowEnd: number
  values: Record<string, unknown>
  /**
   * Set on a retraction (session windows, emit mode update): the session emitted earlier with these bounds no
   * longer exists; `values` is empty.
   */
  retracted?: true
}

/** An accumulator of the operator's Accumulation. */
type Acc = unknown

type Emit = (result: WindowResult) => void

interface TimeEntry {
  k: string | null
  f: Record<string, unknown>
  c: number
  s: [number, Acc, number][]
}
interface SlidingEntry {
  k: string | null
  f: Record<string, unknown>
  c: number
  p: [number, Acc, number][]
}
interface SessionEntry {
  k: string | null
  f: Record<string, unknown>
  s: [number, number, Acc, number][]
}
export type WindowEntry = TimeEntry | SlidingEntry | SessionEntry

/** What differs between window families; every method is pure apart from mutating the entry it is given. */
interface WindowFamily<E extends WindowEntry> {
  isLate(ts: number, streamTime: number, entry: E | undefined): boolean
  /**
   * Whether a late record still changes the entry (its values in no window): undefined when it does not, else what
   * changes the entry in place. Only sliding windows have it (the window after the record, see slidingFamily).
   */
  anchorLate?(entry: E | undefined, input: WindowInput, streamTime: number): (() => E) | undefined
  /** Adds a record (not late); `retract`, in emit mode update, hears of each emitted window the record removed. */
  add(entry: E | undefined, input: WindowInput, streamTime: number, retract?: Emit): E
  /** The close time of the entry's earliest open window. */
  nextCloseAt(entry: E): number | undefined
  /**
   * Whether adding this record (not late) to the entry surely leaves its `nextCloseAt` as it is, asked before
   * `add`; a family that cannot tell cheaply leaves it out, and the close-time index is updated at every record.
   */
  keepsCloseTime?(entry: E, input: WindowInput, streamTime: number): boolean
  /** Emits the windows closed at streamTime; returns the entry, or undefined when nothing is left open. */
  close(entry: E, streamTime: number, emit: Emit, mode: EmitMode): E | undefined
  /** Emits the open windows that changed since the last call (emit mode update). */
  emitUpdates(entry: E, emit: Emit): void
  write(out: ByteWriter, entry: E): void
  read(from: ByteReader): E
}

/**
 * The item of `list` (sorted by its first element) for `at`, inserted with a fresh accumulator when missing. A
 * record almost always lands in the last item or just after it, so the scan from the end is O(1).
 */
function itemAt(list: [number, Acc, number][], at: number, aggs: Accumulation, changed: number): [number, Acc, number] {
  let i = list.length
  while (i > 0 && list[i - 1]![0] > at) i--
  if (i > 0 && list[i - 1]![0] === at) return list[i - 1]!
  const item: [number, Acc, number] = [at, aggs.create(), changed]
  if (i === list.length) list.push(item)
  else list.splice(i, 0, item)
  return item
}

/**
 * Points and slices (time and sliding entries): `f64 c`, `varuint n`, then n × (`varint at` `u8 ch` acc), where
 * `at` after the first is the (positive) distance from the previous one: a slice or a few seconds, three bytes at most
 * where the absolute time takes six.
 */
function writeItems(out: ByteWriter, c: number, items: readonly [number, Acc, number][], aggs: Accumulation): void {
  out.f64(c)
  out.varuint(items.length)
  let previous = 0
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!
    out.varint(item[0] - previous)
    previous = item[0]
    out.u8(item[2])
    aggs.write(out, item[1])
  }
}

function readItems(from: ByteReader, aggs: Accumulation): [number, Acc, number][] {
  const items: [number, Acc, number][] = []
  let at = 0
  for (let i = from.varuint(); i > 0; i--) {
    at += from.varint()
    const ch = from.u8()
    items.push([at, aggs.read(from), ch])
  }
  return items
}

function timeFamily(spec: TimeWindowSpec, aggs: Accumulation): WindowFamily<TimeEntry> {
  const slice = sliceSizeMs(spec)
  const { sizeMs: size, advanceMs: advance, graceMs: grace } = spec
  /** Ends of the windows that contain the slice starting at `a`, after `closedEnd`, up to `upTo` (none before time 0). */
  const windowEnds = (a: number, closedEnd: number, upTo: number, into: Set<number>): void => {
    const lastEnd = Math.floor(a / advance) * advance + size
    for (let e = nextTimeWindowEnd(Math.max(closedEnd, a + slice - 1), spec); e <= Math.min(lastEnd, upTo); e += advance) into.add(e)
  }
  const result = (entry: TimeEntry, end: number): WindowResult => {
    const accs = entry.s.filter(([a]) => a >= end - size && a < end).map(([, acc]) => acc)
    // A window of one slice (every tumbling window) reads its accumulator as it is: merging into a fresh one
    // would copy it, sketch included, for the same results.
    const acc = accs.length === 1 ? accs[0] : mergeAll(aggs, accs)
    return { key: entry.k, group: '', fields: entry.f, windowStart: end - size, windowEnd: end, values: aggs.result(acc) }
  }
  const touchesChanged = (entry: TimeEntry, end: number): boolean => entry.s.some(([a, , ch]) => ch === 1 && a >= end - size && a < end)
  return {
    isLate: (ts, streamTime) => isLateForTimeWindows(ts, streamTime, spec),
    add(entry, input, streamTime) {
      const closed = closedTimeWindowEnd(streamTime, spec)
      if (entry === undefined) entry = { k: input.key, f: input.fields, c: closed, s: [] }
      else if (closed > entry.c) entry.c = closed
      const item = itemAt(entry.s, sliceStart(input.ts, slice), aggs, 0)
      item[1] = aggs.add(item[1], input.inputs, input.ts)
      item[2] = 1
      return entry
    },
    nextCloseAt(entry) {
      if (entry.s.length === 0) return undefined
      return nextTimeWindowEnd(Math.max(entry.c, entry.s[0]![0] + slice - 1), spec) + grace
    },
    // nextCloseAt reads only c and the first slice: `add` moves c only when more windows have closed, and adds a
    // slice before the first only for an earlier record.
    keepsCloseTime: (entry, input, streamTime) =>
      entry.s.length > 0 && closedTimeWindowEnd(streamTime, spec) <= entry.c && sliceStart(input.ts, slice) >= entry.s[0]![0],
    close(entry, streamTime, emit, mode) {
      const closed = closedTimeWindowEnd(streamTime, spec)
      if (closed > entry.c) {
        const ends = new Set<number>()
        for (const [a] of entry.s) windowEnds(a, entry.c, closed, ends)
        for (const end of [...ends].sort((x, y) => x - y)) {
          if (mode === 'final' || touchesChanged(entry, end)) emit(result(entry, end))
        }
        entry.c = closed
        entry.s = entry.s.filter(([a]) => Math.floor(a / advance) * advance + size > closed)
      }
      return entry.s.length === 0 ? undefined : entry
    },
    emitUpdates(entry, emit) {
      const ends = new Set<number>()
      for (const [a, , ch] of entry.s) if (ch === 1) windowEnds(a, entry.c, Number.POSITIVE_INFINITY, ends)
      for (const end of [...ends].sort((x, y) => x - y)) emit(result(entry, end))
      for (const item of entry.s) item[2] = 0
    },
    write(out, entry) {
      out.string(entry.k)
      out.frozenPlain(entry.f)
      writeItems(out, entry.c, entry.s, aggs)
    },
    read(from) {
      const k = from.string()
      const f = from.plain() as Record<string, unknown>
      return { k, f, c: from.f64(), s: readItems(from, aggs) }
    },
  }
}

function slidingFamily(d: number, grace: number, aggs: Accumulation): WindowFamily<SlidingEntry> {
  /**
   * Inclusive ends of the windows the points define: each point's own, and the one after each point followed within
   * d + 1. A point less than d after time 0 has [0, d] for its own, as Kafka Streams puts such early records
   * (KStreamSlidingWindowAggregate.processEarly): no window starts before 0.
   */
  const ends = (points: SlidingEntry['p']): number[] => {
    const out = new Set<number>()
    for (let i = 0; i < points.length; i++) {
      const t = points[i]![0]
      out.add(Math.max(t, d))
      if (i + 1 < points.length && points[i + 1]![0] <= t + d + 1) out.add(t + d + 1)
    }
    return [...out].sort((x, y) => x - y)
  }
  const result = (entry: SlidingEntry, e: number): WindowResult => {
    const accs = entry.p.filter(([t]) => t >= e - d && t <= e).map(([, acc]) => acc)
    return { key: entry.k, group: '', fields: entry.f, windowStart: e - d, windowEnd: e + 1, values: aggs.result(mergeAll(aggs, accs)) }
  }
  // A window changed when a point it covers changed, or when it is new because the point just before it is new and
  // no point at its end made it exist already: ch is 2 for a point created since the last update emit, 1 for one
  // that only changed.
  const affected = (entry: SlidingEntry, e: number): boolean =>
    entry.p.some(([t, , ch]) => (ch >= 1 && t >= e - d && t <= e) || (ch === 2 && t === e - d - 1 && !entry.p.some(([u]) => u === e)))
  return {
    // A window [s, e] stays open while e >= streamTime - grace (KStreamSlidingWindowAggregate: a window is expired
    // once its end < streamTime - grace), so `closed`, the last end that is closed, is streamTime - grace - 1. A record
    // is late when no open window would hold it: its own ([ts - d, ts], or [0, d] early), a later point's own
    // ending within d after it, or the window after an earlier point within d + 1 before it. Kafka Streams takes such
    // a record, counts it dropped for its expired own window and adds it to whatever open windows hold it; here a
    // record some open window holds is added to those, and one none holds goes to the late records.
    isLate: (ts, streamTime, entry) => {
      const open = streamTime - grace
      if (ts + d < open) return true
      if (Math.max(ts, d) >= open) return false
      for (const [t] of entry?.p ?? []) {
        if (t > ts && Math.max(t, d) <= ts + d && Math.max(t, d) >= open) return false
        if (t < ts && t + d + 1 >= ts && t + d + 1 >= open) return false
      }
      return true
    },
    // A late record no later than d before the open windows (ts + d >= streamTime - grace) still has the window
    // after it, [ts + 1, ts + d + 1], which is open: Kafka Streams takes the record (it only drops records with
    // ts + d < streamTime - grace), creates that window from the records after it when there are some and the window
    // is not there yet (createCurrentRecordRightWindow), and counts the record dropped for its expired windows. Here
    // the record goes to the late records, and leaves a point of its time with nothing in it, which makes that window
    // exist (`ends`); windows made later that cover the point do not hold the record either, as in Kafka Streams.
    // That window holds a record even when the point after ts is such an empty one p: p's window held a record q in
    // (p, p + d] whose own window was closed then, so q < streamTime - grace <= ts + d, and q is in it too.
    anchorLate(entry, input, streamTime) {
      const ts = input.ts
      if (entry === undefined || ts + d < streamTime - grace) return undefined
      if (!entry.p.some(([t]) => t > ts && t <= ts + d + 1) || entry.p.some(([t]) => t === ts || t === ts + d + 1)) return undefined
      return () => {
        const closed = streamTime - grace - 1
        if (closed > entry.c) entry.c = closed
        itemAt(entry.p, ts, aggs, 2)
        return entry
      }
    },
    add(entry, input, streamTime) {
      const closed = streamTime - grace - 1
      if (entry === undefined) entry = { k: input.key, f: input.fields, c: closed, p: [] }
      else if (closed > entry.c) entry.c = closed
      const item = itemAt(entry.p, input.ts, aggs, 2)
      item[1] = aggs.add(item[1], input.inputs, input.ts)
      if (item[2] === 0) item[2] = 1
      return entry
    },
    nextCloseAt(entry) {
      const e = ends(entry.p).find((end) => end > entry.c)
      return e === undefined ? undefined : e + grace + 1
    },
    close(entry, streamTime, emit, mode) {
      const closed = streamTime - grace - 1
      if (closed > entry.c) {
        for (const e of ends(entry.p)) {
          if (e > entry.c && e <= closed && (mode === 'final' || affected(entry, e))) emit(result(entry, e))
        }
        entry.c = closed
        entry.p = entry.p.filter(([t]) => t + d + 1 > closed)
      }
      return entry.p.length === 0 ? undefined : entry
    },
    emitUpdates(entry, emit) {
      for (const e of ends(entry.p)) if (e > entry.c && affected(entry, e)) emit(result(entry, e))
      for (const item of entry.p) item[2] = 0
    },
    write(out, entry) {
      out.string(entry.k)
      out.frozenPlain(entry.f)
      writeItems(out, entry.c, entry.p, aggs)
    },
    read(from) {
      const k = from.string()
      const f = from.plain() as Record<string, unknown>
      return { k, f, c: from.f64(), p: readItems(from, aggs) }
    },
  }
}

function sessionFamily(gap: number, grace: number, aggs: Accumulation): WindowFamily<SessionEntry> {
  const overlaps = (ts: number) => ([first, last]: SessionEntry['s'][number]) => first - gap <= ts && ts <= last + gap
  const closeAt = (last: number) => last + gap + grace + 1
  const result = (entry: SessionEntry, [first, last, acc]: SessionEntry['s'][number]): WindowResult => ({
    key: entry.k,
    group: '',
    fields: entry.f,
    windowStart: first,
    windowEnd: last + 1,
    values: aggs.result(acc),
  })
  const retraction = (entry: SessionEntry, [first, last]: SessionEntry['s'][number]): WindowResult => ({
    key: entry.k,
    group: '',
    fields: entry.f,
    windowStart: first,
    windowEnd: last + 1,
    values: {},
    retracted: true,
  })
  return {
    isLate: (ts, streamTime, entry) => !(entry?.s.some(overlaps(ts)) ?? false) && ts + gap + grace < streamTime,
    add(entry, input, _streamTime, retract) {
      if (entry === undefined) entry = { k: input.key, f: input.fields, s: [] }
      const joined = entry.s.filter(overlaps(input.ts))
      const merged: SessionEntry['s'][number] = [input.ts, input.ts, aggs.create(), 2]
      for (const [first, last, acc] of joined) {
        merged[0] = Math.min(merged[0], first)
        merged[1] = Math.max(merged[1], last)
        merged[2] = aggs.merge(merged[2], acc)
      }
      merged[2] = aggs.add(merged[2], input.inputs, input.ts)
      const only = joined.length === 1 ? joined[0]! : undefined
      if (only !== undefined && only[0] === merged[0] && only[1] === merged[1]) {
        // The same bounds: an update of the session, still under the bounds it may have gone out with.
        merged[3] = only[3] === 2 ? 2 : 1
      } else if (retract !== undefined) {
        for (const s of joined) if (s[3] !== 2) retract(retraction(entry, s))
      }
      entry.s = entry.s.filter((s) => !joined.includes(s))
      entry.s.push(merged)
      entry.s.sort((a, b) => a[0] - b[0])
      return entry
    },
    nextCloseAt: (entry) => (entry.s.length === 0 ? undefined : Math.min(...entry.s.map(([, last]) => closeAt(last)))),
    close(entry, streamTime, emit, mode) {
      const open: SessionEntry['s'] = []
      for (const s of entry.s) {
        if (closeAt(s[1]) > streamTime) open.push(s)
        else if (mode === 'final' || s[3] !== 0) emit(result(entry, s))
      }
      entry.s = open
      return open.length === 0 ? undefined : entry
    },
    emitUpdates(entry, emit) {
      for (const s of entry.s) {
        if (s[3] !== 0) emit(result(entry, s))
        s[3] = 0
      }
    },
    write(out, entry) {
      out.string(entry.k)
      out.frozenPlain(entry.f)
      out.varuint(entry.s.length)
      for (const [first, last, acc, ch] of entry.s) {
        out.varint(first)
        out.varint(last)
        out.u8(ch)
        aggs.write(out, acc)
      }
    },
    read(from) {
      const k = from.string()
      const f = from.plain() as Record<string, unknown>
      const s: SessionEntry['s'] = []
      for (let i = from.varuint(); i > 0; i--) {
        const first = from.varint()
        const last = from.varint()
        const ch = from.u8()
        s.push([first, last, aggs.read(from), ch])
      }
      return { k, f, s }
    },
  }
}

function familyOf(spec: WindowSpec, aggs: Accumulation): WindowFamily<WindowEntry> {
  switch (spec.type) {
    case 'tumbling':
    case 'hopping':
      return timeFamily(spec, aggs) as WindowFamily<WindowEntry>
    case 'sliding':
      return slidingFamily(spec.timeDifferenceMs, spec.graceMs, aggs) as WindowFamily<WindowEntry>
    case 'session':
      return sessionFamily(spec.gapMs, spec.graceMs, aggs) as WindowFamily<WindowEntry>
  }
}

/** The bytes `ofState` gives for the accumulators an entry holds (its slices', points' or sessions'), added up. */
function heldBytes(entry: WindowEntry, ofState: (acc: Acc) => number): number {
  let bytes = 0
  if ('p' in entry) for (const point of entry.p) bytes += ofState(point[1])
  else if ('c' in entry) for (const slice of entry.s) bytes += ofState(slice[1])
  else for (const session of entry.s) bytes += ofState(session[2])
  return bytes
}

function codecOf(family: WindowFamily<WindowEntry>): EntryCodec<WindowEntry> {
  return { write: (out, entry) => family.write(out, entry), read: (from) => family.read(from) }
}

/** How the entries of a windowed aggregation with this window and accumulation are stored. */
export function windowEntryCodec(window: WindowSpec, aggregations: Accumulation): EntryCodec<WindowEntry> {
  const codec = codecOf(familyOf(window, aggregations))
  return aggregations.oldestFormat === undefined ? codec : { ...codec, oldestFormat: aggregations.oldestFormat }
}

export interface WindowedAggregateOptions {
  window: WindowSpec
  aggregations: Accumulation
  emit: EmitMode
}

/** One windowed aggregation of one task. Not reentrant: the task calls it from one async flow at a time. */
export class WindowedAggregate {
  /** The operator's stream time (ms); -Infinity before its first record. */
  streamTime = Number.NEGATIVE_INFINITY
  private readonly family: WindowFamily<WindowEntry>
  /** For every group the state holds an entry of: that entry's nextCloseAt. */
  private readonly timers: CloseTimeIndex
  private readonly changed = new Set<string>()
  /** Emits a retraction for the group of the record being added; only in emit mode update. */
  private readonly retract: Emit | undefined
  /** The group of the record being added. */
  private adding = ''

  constructor(
    private readonly options: WindowedAggregateOptions,
    private readonly state: KeyedState<WindowEntry>,
    private readonly emit: Emit,
  ) {
    const family = familyOf(options.window, options.aggregations)
    this.family = family
    this.retract = options.emit === 'update' ? (result) => this.emitFor(this.adding, result) : undefined
    this.timers = state.closeTimes?.((entry) => family.nextCloseAt(entry), JSON.stringify(options.window)) ?? new MemoryCloseTimes()
  }

  /** The entry codec, for the store. */
  get codec(): EntryCodec<WindowEntry> {
    return codecOf(this.family)
  }

  /** Schedules a group found in the store when the task starts (for an index in memory; the store keeps its own). */
  restore(group: string, entry: WindowEntry): void {
    this.timers.restore?.(group, this.family.nextCloseAt(entry))
  }

  /**
   * Adds one record; returns false when it is late (it is in no window: only a late sliding-window record can change
   * something, the window after it, see slidingFamily's anchorLate). Moves stream time, and closes the due windows
   * of the record's own group first; other groups' due windows wait for `closeDue`. Synchronous (no promise) when the
   * group's entry is in memory, which is the common case.
   */
  process(input: WindowInput): boolean | Promise<boolean> {
    if (input.ts > this.streamTime) this.streamTime = input.ts
    return this.apply(input)
  }

  // The path that waits is a method of its own rather than an arrow inside `apply`: an arrow capturing `input` would
  // make every call allocate a context for it, waiting or not.
  private apply(input: WindowInput): boolean | Promise<boolean> {
    const entry = this.state.get(input.group)
    return entry instanceof Promise ? this.applyLoaded(input, entry) : this.applyTo(input, entry)
  }

  private async applyLoaded(input: WindowInput, entry: Promise<WindowEntry | undefined>): Promise<boolean> {
    return this.applyTo(input, await entry)
  }

  private applyTo(input: WindowInput, entry: WindowEntry | undefined): boolean {
    this.adding = input.group
    // Only while some group may be due (rarely) is the group's own close time computed.
    if (entry !== undefined && this.timers.peek() <= this.streamTime) {
      const at = this.family.nextCloseAt(entry)
      if (at !== undefined && at <= this.streamTime) {
        this.timers.move(input.group, at, undefined)
        entry = this.closeGroup(input.group, entry)
      }
    }
    if (this.family.isLate(input.ts, this.streamTime, entry)) {
      const anchor = this.family.anchorLate?.(entry, input, this.streamTime)
      if (anchor !== undefined && entry !== undefined) {
        // The anchor changes the entry in place: its close time before is read first, when the index needs it.
        const from = this.timers.needsFrom(input.group) ? this.family.nextCloseAt(entry) : undefined
        const next = anchor()
        this.state.put(input.group, next)
        this.timers.move(input.group, from, this.family.nextCloseAt(next))
        if (this.options.emit === 'update') this.changed.add(input.group)
      }
      return false
    }
    // The index holds nextCloseAt of every entry in the state, so a record that keeps it needs no index update
    // (most records of a dense stream keep it).
    const keeps = entry !== undefined && this.family.keepsCloseTime?.(entry, input, this.streamTime) === true
    // `add` changes the entry in place: its close time before is read first, when the index needs it.
    const from = keeps || entry === undefined || !this.timers.needsFrom(input.group) ? undefined : this.family.nextCloseAt(entry)
    const tried = entry !== undefined && this.options.aggregations.sizes !== undefined ? this.checkGroupState(entry, input) : undefined
    const next = tried === undefined ? this.family.add(entry, input, this.streamTime, this.retract) : tried.next
    if (tried !== undefined && this.retract !== undefined) for (const result of tried.retracted) this.retract(result)
    this.state.put(input.group, next)
    if (!keeps) this.timers.move(input.group, from, this.family.nextCloseAt(next))
    if (this.options.emit === 'update') this.changed.add(input.group)
    return true
  }

  /**
   * Refuses, before it changes anything, a record that would take the accumulators of its group's open windows past
   * INTERNAL_VALUE_MAX_BYTES together (an accumulation with `sizes`: a reduce, whose value may grow with every
   * record): a group's state is one changelog record holding every open window, so windows each within the limit
   * (three 400 KB lists in a tumbling window with grace) made a record the cluster refused at every commit
   * (MESSAGE_TOO_LARGE), and the pipeline stopped. The test adds the input's size to what the windows hold, as a
   * reduce that collects its inputs grows by about that much. When that sum passes the limit, the record is added to a
   * copy of the entry and the copy weighed, since a reducer that keeps one of its values (the latest, the largest)
   * does not grow: two 600 KB values in one window hold 600 KB, not 1.2 MB. Returns undefined when the record may be
   * added to the entry as usual, or that copy with the record added (`next`) and the retractions its `add` made, to
   * be used instead. Errors: RecordError GROUP_TOO_LARGE, with the entry unchanged.
   */
  private checkGroupState(entry: WindowEntry, input: WindowInput): { next: WindowEntry; retracted: WindowResult[] } | undefined {
    const sizes = this.options.aggregations.sizes!
    const adding = sizes.ofInput(input.inputs)
    if (heldBytes(entry, sizes.ofState) + adding <= INTERNAL_VALUE_MAX_BYTES) return undefined
    const writer = new ByteWriter()
    this.family.write(writer, entry)
    const retracted: WindowResult[] = []
    // A reduced value past the limit on its own, or one the store cannot keep, is refused by the reduce itself
    // (SERIALIZATION_FAILED, naming what is wrong with it), as on the usual path.
    const next = this.family.add(this.family.read(new ByteReader(writer.finish())), input, this.streamTime, this.retract === undefined ? undefined : (result) => void retracted.push(result))
    const after = heldBytes(next, sizes.ofState)
    if (after <= INTERNAL_VALUE_MAX_BYTES) return { next, retracted }
    throw new RecordError(
      ProcessorErrorCode.groupTooLarge,
      `the open windows of group ${JSON.stringify(input.group)} would hold ${after} bytes of msgpack with this value of ${adding}, past the ${INTERNAL_VALUE_MAX_BYTES} one changelog record holds (a group's open windows are stored together)`,
    )
  }

  /** Moves stream time forward (never back) and emits every window that closes by then. */
  async advanceTo(streamTime: number): Promise<void> {
    if (streamTime > this.streamTime) this.streamTime = streamTime
    while (this.hasDue) await this.closeDue(Number.POSITIVE_INFINITY)
  }

  /** Whether some group has a window that closes at or before stream time (`closeDue` has work). */
  get hasDue(): boolean {
    return this.timers.peek() <= this.streamTime
  }

  /**
   * Emits the windows due at stream time of at most `maxGroups` groups (earliest close time first, then group order),
   * their entries read from the store together (one LevelDB read for those not cached); returns how many groups it
   * closed (0 when none was due).
   */
  async closeDue(maxGroups: number): Promise<number> {
    const groups = await this.timers.popDue(this.streamTime, maxGroups)
    if (groups.length === 0) return 0
    await this.state.prefetch?.(groups)
    for (const group of groups) {
      const entry = await this.state.get(group)
      if (entry !== undefined) this.closeGroup(group, entry)
    }
    return groups.length
  }

  /** Emits a group's windows closed at stream time (its index entry already removed) and stores what stays open. */
  private closeGroup(group: string, entry: WindowEntry): WindowEntry | undefined {
    const next = this.family.close(entry, this.streamTime, (result) => this.emitFor(group, result), this.options.emit)
    if (next === undefined) {
      this.state.delete(group)
      this.changed.delete(group)
    } else {
      this.state.put(group, next)
      this.timers.move(group, undefined, this.family.nextCloseAt(next))
    }
    return next
  }

  /** Emits a result the family made (a new object each time) as the group's. */
  private emitFor(group: string, result: WindowResult): void {
    result.group = group
    this.emit(result)
  }

  /** Emit mode update: emits the open windows changed since the last call (the task calls it at each commit). */
  async emitUpdates(): Promise<void> {
    for (const group of this.changed) {
      const entry = await this.state.get(group)
      if (entry === undefined) continue
      this.family.emitUpdates(entry, (result) => this.emitFor(group, result))
      this.state.put(group, entry)
    }
    this.changed.clear()
  }

  /** Forgets in-memory bookkeeping (the task reloads from its store). */
  reset(): void {
    this.timers.discard()
    this.changed.clear()
    this.streamTime = Number.NEGATIVE_INFINITY
  }
}
