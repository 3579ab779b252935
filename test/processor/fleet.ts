/**
 * A deterministic fleet of readings for the recovery and scale-out tests, and the naive computation of the
 * 1-minute stats windows they must produce: every window of a device and sensor whose end + grace is at or before
 * the largest event time of its partition (its stream time), since nothing else closes windows in these tests.
 */
import type { Kafka } from 'kafkajs'
import { seeded } from '../helpers/random.js'

export interface FleetReading {
  deviceId: string
  sensor: string
  value: number
  unit: string
  ts: number
  partition: number
}

export interface FleetOptions {
  devices: number
  sensors: readonly string[]
  /** Readings per device and sensor, one every `intervalMs`. */
  readings: number
  intervalMs: number
  startMs: number
  partitions: number
  seed: number
}

/** Readings in event-time order; device i lives in partition i % partitions. */
export function fleet(options: FleetOptions): FleetReading[] {
  const random = seeded(options.seed)
  const out: FleetReading[] = []
  for (let n = 0; n < options.readings; n++) {
    for (let d = 0; d < options.devices; d++) {
      for (const sensor of options.sensors) {
        out.push({ deviceId: `device-${d}`, sensor, value: Math.round((20 + d + random() * 10) * 100) / 100, unit: 'C', ts: options.startMs + n * options.intervalMs, partition: d % options.partitions })
      }
    }
  }
  return out
}

export interface Stats {
  count: number
  min: number
  max: number
  avg: number
}

/** `deviceId|sensor|windowStart` -> the window's stats, for the windows that close. */
export function expectedStats(readings: readonly FleetReading[], windowMs: number, graceMs: number): Map<string, Stats> {
  const streamTime = new Map<number, number>()
  for (const r of readings) streamTime.set(r.partition, Math.max(streamTime.get(r.partition) ?? -Infinity, r.ts))
  const sums = new Map<string, { count: number; min: number; max: number; sum: number; end: number; partition: number }>()
  for (const r of readings) {
    const start = Math.floor(r.ts / windowMs) * windowMs
    const key = `${r.deviceId}|${r.sensor}|${start}`
    const s = sums.get(key) ?? { count: 0, min: Infinity, max: -Infinity, sum: 0, end: start + windowMs, partition: r.partition }
    s.count++
    s.min = Math.min(s.min, r.value)
    s.max = Math.max(s.max, r.value)
    s.sum += r.value
    sums.set(key, s)
  }
  const out = new Map<string, Stats>()
  for (const [key, s] of sums) if (s.end + graceMs <= streamTime.get(s.partition)!) out.set(key, { count: s.count, min: s.min, max: s.max, avg: s.sum / s.count })
  return out
}

/** Produces readings keyed by device id to their fleet partition, in order, in chunks. */
export async function produceReadings(kafka: Kafka, topic: string, readings: readonly FleetReading[]): Promise<void> {
  const producer = kafka.producer()
  await producer.connect()
  try {
    for (let i = 0; i < readings.length; i += 2000) {
      await producer.send({
        topic,
        acks: -1,
        messages: readings.slice(i, i + 2000).map(({ partition, ...r }) => ({ key: r.deviceId, value: JSON.stringify(r), partition })),
      })
    }
  } finally {
    await producer.disconnect()
  }
}

/** Output windows as `deviceId|sensor|windowStart` -> stats, and how many were written more than once. */
export function windowsOf(values: readonly Record<string, unknown>[]): { windows: Map<string, Stats>; duplicates: number; conflicting: string[] } {
  const windows = new Map<string, Stats>()
  let duplicates = 0
  const conflicting: string[] = []
  for (const v of values) {
    const key = `${v.deviceId}|${v.sensor}|${v.windowStart}`
    const stats = { count: v.count as number, min: v.min as number, max: v.max as number, avg: v.avg as number }
    const seen = windows.get(key)
    if (seen) {
      duplicates++
      if (JSON.stringify(seen) !== JSON.stringify(stats)) conflicting.push(key)
    }
    windows.set(key, stats)
  }
  return { windows, duplicates, conflicting }
}
