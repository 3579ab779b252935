/**
 * Window specifications and the pure functions that place a timestamp in windows. All times are milliseconds since
 * the epoch; every window is reported half-open, [windowStart, windowEnd).
 *
 *   tumbling   size                 epoch-aligned: start = k * size
 *   hopping    size, advance        epoch-aligned: start = k * advance; a timestamp is in size / advance windows
 *   sliding    timeDifference       Kafka Streams' SlidingWindows: a window [e - d, e] (both ends inclusive, so
 *                                   reported as [e - d, e + 1)) for every record time e, and for every record time
 *                                   t followed by another record within d + 1 ms, the window that starts just after
 *                                   it, [t + 1, t + 1 + d]. Windows are defined by the records, not by the epoch.
 *                                   None starts before 0: a record less than d after time 0 is in [0, d] instead
 *                                   of [e - d, e] (Kafka Streams' KStreamSlidingWindowAggregate.processEarly).
 *   session    gap                  a record joins every session whose [first - gap, last + gap] contains it,
 *                                   merging them; reported as [first, last + 1)
 *
 * Closing: a window is closed once the operator's stream time reaches its close time, and never changes after:
 *
 *   tumbling, hopping   windowEnd + grace                    (Kafka Streams: windowEnd <= streamTime - grace)
 *   sliding             windowEnd + grace (e + 1 + grace)     (Kafka Streams: closed once e < streamTime - grace)
 *   session             windowEnd + gap + grace               (closed once streamTime > last + gap + grace)
 *
 * A record is late when every window it would join is closed; a late record joins nothing and goes to the
 * late-records topic. A record that is late for some of its hopping windows but not all joins the open ones only.
 */
import { TopologyError } from '../errors.js'
import { toMs, type Duration } from '../time.js'

export type WindowSpec =
  | { readonly type: 'tumbling'; readonly sizeMs: number; readonly advanceMs: number; readonly graceMs: number }
  | { readonly type: 'hopping'; readonly sizeMs: number; readonly advanceMs: number; readonly graceMs: number }
  | { readonly type: 'sliding'; readonly timeDifferenceMs: number; readonly graceMs: number }
  | { readonly type: 'session'; readonly gapMs: number; readonly graceMs: number }

/** Time windows: tumbling and hopping. */
export type TimeWindowSpec = Extract<WindowSpec, { type: 'tumbling' | 'hopping' }>

/** Session windows: their results in emit mode update include retractions (topology/builder.ts, WindowedResults). */
export type SessionWindowSpec = Extract<WindowSpec, { type: 'session' }>

function positive(ms: number, what: string): number {
  if (ms <= 0) throw new TopologyError(`${what} must be more than 0 ms`)
  return ms
}

/** Fixed-size, non-overlapping windows. `grace` is how long after a window's end late records are still taken. */
export function tumbling(options: { size: Duration; grace: Duration }): Extract<WindowSpec, { type: 'tumbling' }> {
  const sizeMs = positive(toMs(options.size, 'tumbling size'), 'tumbling size')
  return { type: 'tumbling', sizeMs, advanceMs: sizeMs, graceMs: toMs(options.grace, 'tumbling grace') }
}

/** Fixed-size windows that start every `advance` (advance <= size). */
export function hopping(options: { size: Duration; advance: Duration; grace: Duration }): Extract<WindowSpec, { type: 'hopping' }> {
  const sizeMs = positive(toMs(options.size, 'hopping size'), 'hopping size')
  const advanceMs = positive(toMs(options.advance, 'hopping advance'), 'hopping advance')
  if (advanceMs > sizeMs) throw new TopologyError(`hopping advance (${advanceMs} ms) must not exceed its size (${sizeMs} ms)`)
  return { type: 'hopping', sizeMs, advanceMs, graceMs: toMs(options.grace, 'hopping grace') }
}

/** Kafka Streams' SlidingWindows.ofTimeDifferenceAndGrace: windows of records at most `timeDifference` apart. */
export function sliding(options: { timeDifference: Duration; grace: Duration }): Extract<WindowSpec, { type: 'sliding' }> {
  return {
    type: 'sliding',
    timeDifferenceMs: positive(toMs(options.timeDifference, 'sliding timeDifference'), 'sliding timeDifference'),
    graceMs: toMs(options.grace, 'sliding grace'),
  }
}

/**
 * Sessions of activity separated by more than `gap` of inactivity (Kafka Streams' SessionWindows with an inactivity
 * gap and a grace). A session [first, last] closes (emitted final, then forgotten) once stream time passes
 * last + gap + grace. A record at `ts` joins, and merges, the open sessions within `gap` of it. It is late (it changes
 * nothing, goes to the late-records topic and is counted) when it joins no open session and ts + gap + grace < stream
 * time: the session it would start alone would be closed already, Kafka Streams' test (`mergedWindow.end() <
 * streamTime - gap - grace`, KStreamSessionWindowAggregate). A closed session is never reopened: a record within
 * `gap` of one that is not late by that test starts a new session, as in Kafka Streams, whose session store (retention
 * gap + grace by default) no longer returns a session that ended before stream time - gap - grace.
 */
export function session(options: { gap: Duration; grace: Duration }): SessionWindowSpec {
  return { type: 'session', gapMs: positive(toMs(options.gap, 'session gap'), 'session gap'), graceMs: toMs(options.grace, 'session grace') }
}

export function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b]
  return a
}

/** Hopping windows share slices of gcd(size, advance): each record updates one slice, windows merge their slices. */
export function sliceSizeMs(spec: TimeWindowSpec): number {
  return gcd(spec.sizeMs, spec.advanceMs)
}

/** Start of the slice (or tumbling window) that holds `ts`. */
export function sliceStart(ts: number, sliceMs: number): number {
  return Math.floor(ts / sliceMs) * sliceMs
}

/**
 * Every time window [start, end) that contains `ts` (>= 0), earliest first. None starts before time 0, as in Kafka
 * Streams' TimeWindows.windowsFor: a hopping window's first is [0, size).
 */
export function timeWindowsFor(ts: number, spec: TimeWindowSpec): { start: number; end: number }[] {
  const windows: { start: number; end: number }[] = []
  const last = Math.floor(ts / spec.advanceMs) * spec.advanceMs
  for (let start = last; start > ts - spec.sizeMs && start >= 0; start -= spec.advanceMs) windows.unshift({ start, end: start + spec.sizeMs })
  return windows
}

/** The end of the latest time window closed at `streamTime` (windows ending at or before it are closed). */
export function closedTimeWindowEnd(streamTime: number, spec: TimeWindowSpec): number {
  return Math.floor((streamTime - spec.graceMs - spec.sizeMs) / spec.advanceMs) * spec.advanceMs + spec.sizeMs
}

/**
 * The earliest time window end that is > `after` and aligned (end - size is a multiple of advance), of a window that
 * does not start before time 0 (timeWindowsFor): at least `size`.
 */
export function nextTimeWindowEnd(after: number, spec: TimeWindowSpec): number {
  return Math.max(spec.sizeMs, Math.floor((after - spec.sizeMs) / spec.advanceMs) * spec.advanceMs + spec.advanceMs + spec.sizeMs)
}

/** Whether a record at `ts` is late for every time window it falls in, at `streamTime`. */
export function isLateForTimeWindows(ts: number, streamTime: number, spec: TimeWindowSpec): boolean {
  const lastEnd = Math.floor(ts / spec.advanceMs) * spec.advanceMs + spec.sizeMs
  return lastEnd + spec.graceMs <= streamTime
}

/**
 * The part of a window spec that a windowed operator's state depends on, in words, or null when none does: a time
 * window's state is kept in slices of its size and advance, a sliding window's keeps the records its time difference
 * needs; a session window's sessions, and every window's grace, are read the same whatever they are. Saved with each
 * commit (the marker's `windows`), so that a task started with another spec is refused rather than reading old slices
 * as windows of the new size (runtime/task.ts).
 */
export function stateLayout(spec: WindowSpec, format: (ms: number) => string): string | null {
  switch (spec.type) {
    case 'tumbling':
      return `tumbling ${format(spec.sizeMs)}`
    case 'hopping':
      // Advancing by its size, it makes the tumbling window's windows from the same state (Kafka Streams' TimeWindows).
      return spec.advanceMs === spec.sizeMs ? `tumbling ${format(spec.sizeMs)}` : `hopping ${format(spec.sizeMs)} every ${format(spec.advanceMs)}`
    case 'sliding':
      return `sliding, time difference ${format(spec.timeDifferenceMs)}`
    case 'session':
      return null
  }
}

/** Human-readable summary for describe output. */
export function describeWindow(spec: WindowSpec, format: (ms: number) => string): string {
  switch (spec.type) {
    case 'tumbling':
      return `tumbling ${format(spec.sizeMs)}, grace ${format(spec.graceMs)}`
    case 'hopping':
      return `hopping ${format(spec.sizeMs)} every ${format(spec.advanceMs)} (slices of ${format(sliceSizeMs(spec))}), grace ${format(spec.graceMs)}`
    case 'sliding':
      return `sliding, time difference ${format(spec.timeDifferenceMs)}, grace ${format(spec.graceMs)}`
    case 'session':
      return `session, gap ${format(spec.gapMs)}, grace ${format(spec.graceMs)}`
  }
}
