/**
 * The fleet's stream of readings on its own (no cluster): determinism, the long-run shares of what it does to
 * readings, and that each kind of behaviour looks the way its model says.
 */
import { getHeapStatistics } from 'node:v8'
import { describe, expect, it } from 'vitest'
import { Fleet, SENSOR_MODELS, type FleetModel, type Outgoing } from '../../../processor/simulator/index.js'

const START_MS = Date.UTC(2026, 0, 5, 0, 0, 0)

const MODEL: FleetModel = {
  devices: 20,
  sensors: ['temperature', 'humidity', 'pressure', 'vibration'],
  rate: 100,
  seed: 5,
  startMs: START_MS,
  latenessMs: 60_000,
  lateFraction: 0.01,
  outOfOrderFraction: 0.02,
  gapFraction: 0.01,
  faultRate: 0.002,
}

function take(model: FleetModel, count: number): Outgoing[] {
  const fleet = new Fleet(model)
  return Array.from({ length: count }, () => fleet.next())
}

describe('Fleet', () => {
  it('gives the same readings for the same model, and others for another seed', () => {
    const first = take(MODEL, 20_000)
    expect(take(MODEL, 20_000)).toEqual(first)
    const other = take({ ...MODEL, seed: 6 }, 20_000)
    expect(other.filter((o, i) => o.reading.value === first[i]!.reading.value).length).toBeLessThan(2000)
  })

  it('keeps healthy values when only the fault rate changes', () => {
    const calm = take({ ...MODEL, faultRate: 0 }, 20_000)
    const faulty = take({ ...MODEL, faultRate: 0.05 }, 20_000)
    let faulted = 0
    calm.forEach((c, i) => {
      const f = faulty[i]!
      expect({ ...f.reading, value: 0 }).toEqual({ ...c.reading, value: 0 })
      if (f.fault === null) expect(f.reading.value).toBe(c.reading.value)
      else faulted++
    })
    expect(faulted).toBeGreaterThan(500)
  })

  it('reaches the configured shares of gaps, late, out-of-order and faulted readings over a long run', () => {
    const model = { ...MODEL, devices: 200, rate: 200, lateFraction: 0.02, outOfOrderFraction: 0.05, gapFraction: 0.05, faultRate: 0.01 }
    const fleet = new Fleet(model)
    const count = 400_000
    const seen = { late: 0, 'out-of-order': 0, faulted: 0 }
    for (let i = 0; i < count; i++) {
      const { fault, delivery } = fleet.next()
      if (delivery !== null) seen[delivery]++
      if (fault !== null) seen.faulted++
    }
    const { slots, gapped } = fleet.counts
    expect(gapped / slots).toBeGreaterThan(0.05 * 0.8)
    expect(gapped / slots).toBeLessThan(0.05 * 1.2)
    expect(seen.late / count).toBeGreaterThan(0.02 * 0.8)
    expect(seen.late / count).toBeLessThan(0.02 * 1.2)
    expect(seen['out-of-order'] / count).toBeGreaterThan(0.05 * 0.8)
    expect(seen['out-of-order'] / count).toBeLessThan(0.05 * 1.2)
    expect(seen.faulted / count).toBeGreaterThan(0.01 * 0.8)
    expect(seen.faulted / count).toBeLessThan(0.01 * 1.2)
  })

  it('ends a run of n readings with the ones it held back: exactly the first n readings of the slots, then null', () => {
    const model = { ...MODEL, lateFraction: 0.1, outOfOrderFraction: 0.1, latenessMs: 2000 }
    const fleet = new Fleet(model)
    const run: Outgoing[] = []
    for (let o = fleet.nextOf(2000); o !== null; o = fleet.nextOf(2000)) run.push(o)
    expect(run).toHaveLength(2000)
    expect(fleet.counts.held).toBe(0)
    // Delays decide when a reading goes out, not which readings there are: the same model without them, in slot order.
    const inSlotOrder = take({ ...model, lateFraction: 0, outOfOrderFraction: 0 }, 2000).map((o) => o.reading)
    expect([...run].map((o) => o.reading).sort((a, b) => a.ts - b.ts)).toEqual(inSlotOrder)
    // The held-back ones come last, in due order, none due after the end of the schedule; some are late by then.
    const lastOnTime = run.map((o) => o.delivery === null).lastIndexOf(true)
    const tail = run.slice(lastOnTime + 1)
    expect(tail.length).toBeGreaterThan(0)
    tail.forEach((o, i) => expect(o.dueMs).toBeGreaterThanOrEqual(i === 0 ? 0 : tail[i - 1]!.dueMs))
    expect(Math.max(...tail.map((o) => o.dueMs))).toBeLessThanOrEqual(START_MS + fleet.counts.slots * 10)
    expect(tail.filter((o) => o.delivery === 'late').length).toBeGreaterThan(0)
    // Up to its last on-time reading, the run is the stream of next().
    expect(run.slice(0, lastOnTime + 1)).toEqual(take(model, lastOnTime + 1))
  })

  it('counts the readings a counted run sends at its end; with event time shorter than the lateness, its late fraction goes out there as out of order', () => {
    // `brook simulate --count 2400000 --rate 20000`: 120 s of event time, the default 120 s lateness.
    const model = { ...MODEL, devices: 500, rate: 1000, latenessMs: 120_000, lateFraction: 0.01, outOfOrderFraction: 0.02 }
    const count = 120_000
    const fleet = new Fleet(model)
    const run: Outgoing[] = []
    for (let o = fleet.nextOf(count); o !== null; o = fleet.nextOf(count)) run.push(o)
    const { flushed, slots } = fleet.counts
    const lastSlotTs = START_MS + Math.floor((slots - 1) * 1000 / model.rate)
    const tail = run.slice(run.length - flushed)
    // Every held-back reading of the late fraction is in the tail (none was due within the run), behind by up to 120 s,
    expect(flushed).toBeGreaterThan(count * model.lateFraction * 0.8)
    expect(tail.every((o) => o.reading.ts <= lastSlotTs)).toBe(true)
    // and labelled late only when more than the lateness behind: almost none.
    const late = run.filter((o) => o.delivery === 'late').length
    expect(late).toBeLessThan(flushed / 20)
    // A 1-minute tumbling window with a 10 s grace (brook process iot) refuses most of them.
    const closedAt = (ts: number): number => Math.floor(ts / 60_000) * 60_000 + 60_000 + 10_000
    let streamTime = -Infinity
    let refused = 0
    for (const o of run) {
      streamTime = Math.max(streamTime, o.reading.ts)
      if (closedAt(o.reading.ts) <= streamTime) refused++
    }
    expect(refused).toBeGreaterThan(late * 10)
  })

  it('spreads slots evenly over event time and reads every sensor of every device each round', () => {
    const readings = take({ ...MODEL, lateFraction: 0, outOfOrderFraction: 0, gapFraction: 0 }, 800)
    readings.forEach(({ reading, dueMs }, i) => {
      expect(reading.ts).toBe(START_MS + Math.floor(i * 10))
      expect(dueMs).toBe(reading.ts)
      expect(reading.deviceId).toBe(`device-${String(Math.floor((i % 80) / 4)).padStart(5, '0')}`)
      expect(reading.sensor).toBe(MODEL.sensors[i % 4])
    })
  })

  it('starts a fleet of ten million devices without building per-device objects, ids padded to seven digits', () => {
    const before = getHeapStatistics().used_heap_size
    const fleet = new Fleet({ ...MODEL, devices: 10_000_000, rate: 100_000, lateFraction: 0, outOfOrderFraction: 0, gapFraction: 0 })
    const first = Array.from({ length: 8 }, () => fleet.next().reading)
    // An id string per device would be hundreds of MB of heap before the first reading.
    expect(getHeapStatistics().used_heap_size - before).toBeLessThan(64 * 2 ** 20)
    expect(first.map((r) => `${r.deviceId}/${r.sensor}`)).toEqual(
      ['device-0000000', 'device-0000001'].flatMap((id) => MODEL.sensors.map((sensor) => `${id}/${sensor}`)),
    )
    expect(first.every((r) => Number.isFinite(r.value))).toBe(true)
  })

  it('follows a daily cycle: temperature peaks in the afternoon, humidity around dawn', () => {
    // 20 devices, every sensor read every 10 s for a day.
    const readings = take({ ...MODEL, sensors: ['temperature', 'humidity'], rate: 4, faultRate: 0, lateFraction: 0, outOfOrderFraction: 0 }, 4 * 86_400)
    const meanAt = (sensor: string, fromHour: number) => {
      const values = readings.filter(({ reading }) => reading.sensor === sensor && new Date(reading.ts).getUTCHours() >= fromHour && new Date(reading.ts).getUTCHours() < fromHour + 2)
      return values.reduce((sum, { reading }) => sum + reading.value, 0) / values.length
    }
    expect(meanAt('temperature', 14) - meanAt('temperature', 2)).toBeGreaterThan(3)
    expect(meanAt('humidity', 4) - meanAt('humidity', 16)).toBeGreaterThan(6)
  })

  it('injects faults that look like faults: spikes jump, stuck values repeat the last healthy one, dropouts read the no-signal value', () => {
    const readings = take({ ...MODEL, faultRate: 0.02, lateFraction: 0, outOfOrderFraction: 0 }, 100_000)
    const lastHealthy = new Map<string, number>()
    const kinds = { spike: 0, stuck: 0, dropout: 0 }
    for (const { reading, fault } of readings) {
      const series = `${reading.deviceId}/${reading.sensor}`
      const model = SENSOR_MODELS[reading.sensor as keyof typeof SENSOR_MODELS]
      const before = lastHealthy.get(series)
      if (fault === null) {
        lastHealthy.set(series, reading.value)
        continue
      }
      kinds[fault]++
      if (before === undefined) continue
      if (fault === 'stuck') expect(reading.value).toBe(before)
      if (fault === 'dropout') expect(reading.value).toBe(model.dropoutValue)
      // A spike jumps by at least its smallest size, less what the healthy value moved since (noise and drift are
      // far smaller), unless it hit the end of the sensor's range.
      if (fault === 'spike' && reading.value !== model.min && reading.value !== model.max) {
        expect(Math.abs(reading.value - before)).toBeGreaterThan(model.spike[0] * 0.7)
      }
    }
    expect(kinds.spike).toBeGreaterThan(50)
    expect(kinds.stuck).toBeGreaterThan(50)
    expect(kinds.dropout).toBeGreaterThan(50)
  })
})
