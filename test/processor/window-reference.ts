/**
 * The naive reference the windowed operator is checked against: it keeps every accepted record and, at each step,
 * recomputes windows and their contents from scratch by brute force (no slices, no merging of accumulators, no
 * timers, no pruning, no encoding). What it shares with the operator is only the definition of the windows, as
 * written in processor/windows/spec.ts, spelled out again here independently.
 */
import sketches from '@datadog/sketches-js'
import type { WindowSpec } from '../../processor/windows/spec.js'

export interface RefRecord {
  group: string
  ts: number
  x: number
}

export type RefStep = { kind: 'record'; record: RefRecord } | { kind: 'advance'; streamTime: number } | { kind: 'commit' }

export interface RefWindow {
  step: number
  group: string
  windowStart: number
  windowEnd: number
  values: Record<string, number | null>
  /** A retraction of a session emitted earlier under these bounds (emit mode update). */
  retracted?: true
}

interface Accepted extends RefRecord {
  seq: number
}

/**
 * Every window [start, end) (half-open) with its close time, for the records of one group; `anchors` (sliding): the
 * times of late records that make windows as records do but are in none.
 */
function windowsOf(spec: WindowSpec, records: Accepted[], openSessions: Session[] | null, anchors: number[] = []): { start: number; end: number; closeAt: number; members: Accepted[] }[] {
  const out = new Map<string, { start: number; end: number; closeAt: number; members: Accepted[] }>()
  const add = (start: number, end: number, closeAt: number, members: Accepted[]) => out.set(`${start}:${end}`, { start, end, closeAt, members })
  switch (spec.type) {
    case 'tumbling':
    case 'hopping':
      for (const r of records) {
        for (let k = Math.floor((r.ts - spec.sizeMs) / spec.advanceMs) - 1; k * spec.advanceMs <= r.ts; k++) {
          const start = k * spec.advanceMs
          // No window starts before time 0 (Kafka Streams' TimeWindows.windowsFor).
          if (start >= 0 && start <= r.ts && r.ts < start + spec.sizeMs) {
            add(start, start + spec.sizeMs, start + spec.sizeMs + spec.graceMs, records.filter((m) => m.ts >= start && m.ts < start + spec.sizeMs))
          }
        }
      }
      break
    case 'sliding': {
      const d = spec.timeDifferenceMs
      const times = [...records.map((r) => r.ts), ...anchors]
      // A record less than d after time 0 is in [0, d], not [t - d, t] (Kafka Streams' processEarly).
      const ends = new Set<number>(times.map((t) => Math.max(t, d)))
      for (const t of times) if (times.some((u) => u > t && u <= t + d + 1)) ends.add(t + d + 1)
      // Open while e >= streamTime - grace (Kafka Streams expires a sliding window once its end < streamTime - grace).
      for (const e of ends) add(e - d, e + 1, e + spec.graceMs + 1, records.filter((m) => m.ts >= e - d && m.ts <= e))
      break
    }
    case 'session':
      for (const s of openSessions ?? []) add(s.first, s.last + 1, s.last + spec.gapMs + spec.graceMs + 1, s.members)
      break
  }
  return [...out.values()]
}

interface Session {
  first: number
  last: number
  members: Accepted[]
  version: number
}

function values(members: Accepted[]): Record<string, number | null> {
  const xs = [...members].sort((a, b) => a.seq - b.seq).map((m) => m.x)
  const n = xs.length
  let total = 0
  for (const x of xs) total += x
  const mean = total / n
  const variance = n < 2 ? null : xs.reduce((acc, x) => acc + (x - mean) ** 2, 0) / (n - 1)
  const byTime = [...members].sort((a, b) => a.ts - b.ts || a.seq - b.seq)
  const sketch = new sketches.DDSketch({ relativeAccuracy: 0.01 })
  for (const x of xs) sketch.accept(x)
  return {
    count: n,
    sum: total,
    avg: total / n,
    min: Math.min(...xs),
    max: Math.max(...xs),
    stddev: variance === null ? null : Math.sqrt(variance),
    first: byTime[0]!.x,
    last: byTime.filter((m) => m.ts === byTime[byTime.length - 1]!.ts).at(-1)!.x,
    // The sketch's value, clamped to the values' range.
    p50: Math.min(Math.max(sketch.getValueAtQuantile(0.5), Math.min(...xs)), Math.max(...xs)),
    p99: Math.min(Math.max(sketch.getValueAtQuantile(0.99), Math.min(...xs)), Math.max(...xs)),
  }
}

/**
 * Runs the steps; returns the emitted windows (final: at close; update: at commits and at close, and session
 * retractions when a record merges or grows a session emitted under other bounds) and late records.
 */
export function runReference(spec: WindowSpec, mode: 'final' | 'update', steps: RefStep[]): { windows: RefWindow[]; late: number[] } {
  let streamTime = Number.NEGATIVE_INFINITY
  const accepted = new Map<string, Accepted[]>()
  const anchors = new Map<string, number[]>()
  const sessions = new Map<string, Session[]>()
  const closed = new Set<string>()
  const lastEmitted = new Map<string, string>()
  const windows: RefWindow[] = []
  const late: number[] = []
  const signature = (members: Accepted[]) => members.map((m) => m.seq).sort((a, b) => a - b).join(',')

  const all = (group: string) => windowsOf(spec, accepted.get(group) ?? [], sessions.get(group) ?? null, anchors.get(group))
  const closeStep = (step: number, previous: number) => {
    for (const group of [...accepted.keys()].sort()) {
      for (const w of all(group).sort((a, b) => a.end - b.end)) {
        const id = `${group}|${w.start}|${w.end}`
        if (closed.has(id) || w.closeAt > streamTime || w.closeAt <= previous) continue
        closed.add(id)
        if (mode === 'final' || lastEmitted.get(id) !== signature(w.members)) windows.push({ step, group, windowStart: w.start, windowEnd: w.end, values: values(w.members) })
        if (spec.type === 'session') sessions.set(group, sessions.get(group)!.filter((s) => s.first !== w.start || s.last + 1 !== w.end))
      }
    }
  }
  steps.forEach((s, step) => {
    if (s.kind === 'commit') {
      if (mode === 'update') {
        for (const group of [...accepted.keys()].sort()) {
          for (const w of all(group).sort((a, b) => a.end - b.end)) {
            const id = `${group}|${w.start}|${w.end}`
            if (closed.has(id) || w.closeAt <= streamTime || w.members.length === 0) continue
            const sig = signature(w.members)
            if (lastEmitted.get(id) === sig) continue
            lastEmitted.set(id, sig)
            windows.push({ step, group, windowStart: w.start, windowEnd: w.end, values: values(w.members) })
          }
        }
      }
      return
    }
    const target = s.kind === 'record' ? s.record.ts : s.streamTime
    if (target > streamTime) {
      const previous = streamTime
      streamTime = target
      closeStep(step, previous)
    }
    if (s.kind !== 'record') return
    const r = { ...s.record, seq: step }
    const groupRecords = accepted.get(r.group) ?? []
    let isLate: boolean
    if (spec.type === 'session') {
      const open = sessions.get(r.group) ?? []
      const joined = open.filter((o) => o.first - spec.gapMs <= r.ts && r.ts <= o.last + spec.gapMs)
      isLate = joined.length === 0 && r.ts + spec.gapMs + spec.graceMs < streamTime
      if (!isLate) {
        const merged: Session = { first: r.ts, last: r.ts, members: [r], version: step }
        for (const o of joined) {
          merged.first = Math.min(merged.first, o.first)
          merged.last = Math.max(merged.last, o.last)
          merged.members.push(...o.members)
        }
        // A session emitted under bounds that it no longer has (merged away, or grown) is retracted at once.
        for (const o of joined) {
          const id = `${r.group}|${o.first}|${o.last + 1}`
          if ((o.first === merged.first && o.last === merged.last) || !lastEmitted.has(id)) continue
          lastEmitted.delete(id)
          windows.push({ step, group: r.group, windowStart: o.first, windowEnd: o.last + 1, values: {}, retracted: true })
        }
        sessions.set(r.group, [...open.filter((o) => !joined.includes(o)), merged])
      }
    } else {
      const containing = windowsOf(spec, [...groupRecords, r], null, anchors.get(r.group)).filter((w) => w.members.some((m) => m.seq === r.seq))
      // Late: every window that would hold it is closed already (none would show it).
      isLate = containing.every((w) => w.closeAt <= streamTime)
      // Sliding: a late record with ts + d >= streamTime - grace still makes the open windows its time makes (the one
      // after it), holding the records after it and not it (Kafka Streams' createCurrentRecordRightWindow).
      if (isLate && spec.type === 'sliding' && r.ts + spec.timeDifferenceMs >= streamTime - spec.graceMs) {
        const own = anchors.get(r.group) ?? []
        const key = (w: { start: number; end: number }) => `${w.start}:${w.end}`
        const before = new Set(windowsOf(spec, groupRecords, null, own).map(key))
        const made = windowsOf(spec, groupRecords, null, [...own, r.ts]).filter((w) => !before.has(key(w)) && w.closeAt > streamTime && w.members.length > 0)
        if (made.length > 0) anchors.set(r.group, [...own, r.ts])
      }
    }
    if (isLate) late.push(step)
    else accepted.set(r.group, [...groupRecords, r])
    // Windows that closed before this record was accepted must not show it: the operator never reopens them.
    if (!isLate && spec.type !== 'session') {
      for (const w of windowsOf(spec, accepted.get(r.group)!, null)) {
        if (w.closeAt <= streamTime) closed.add(`${r.group}|${w.start}|${w.end}`)
      }
    }
  })
  return { windows, late }
}
