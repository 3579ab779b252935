/**
 * Threshold alerts with bounds per group (`threshold({ ..., per })`, processor/anomaly.ts) and the built-in
 * pipeline's default bands per sensor (`DEFAULT_THRESHOLDS`, processor/iot-thresholds.ts), held against the simulator they are
 * made for: no healthy reading of a week-long fleet crosses its sensor's band, and what its faults make (a no-signal
 * value, a vibration shock) does. `test/processor/pipeline.test.ts` runs the bands end to end on a broker.
 */
import { describe, expect, it } from 'vitest'
import { DEFAULT_THRESHOLDS, describeTopology, iotPipeline, threshold, TopologyError, type DetectorSpec, type ThresholdBounds } from '../../processor/index.js'
import { Detector, type DetectorState } from '../../processor/anomaly.js'
import { Fleet, FLEET_SENSORS, SENSOR_MODELS } from '../../processor/simulator/index.js'

/** A detector on a Map as its group state (a threshold keeps none). */
function detector(spec: DetectorSpec): Detector {
  const state = new Map<string, DetectorState>()
  return new Detector(spec, { get: (group) => state.get(group), put: (group, value) => state.set(group, value), delete: (group) => state.delete(group) })
}

const result = (sensor: string, field: string, value: number) => ({ deviceId: 'd1', sensor, windowStart: 0, windowEnd: 60_000, [field]: value })

describe('threshold with bounds per group', () => {
  const spec = threshold({ field: 'max', above: 100, per: { field: 'sensor', bounds: { pressure: { above: 1050, below: 975 }, vibration: { below: 0.5 } } } })

  it('holds a named group against its own bounds and any other against the threshold\'s', async () => {
    const d = detector(spec)
    const check = (sensor: string, value: number) => d.check(`d1|${sensor}`, result(sensor, 'max', value), { deviceId: 'd1', sensor })
    expect(await check('pressure', 1013)).toBeNull()
    expect(await check('pressure', 1060)).toMatchObject({ sensor: 'pressure', value: 1060, baseline: 1050, score: 10, reason: 'max 1060 above 1050' })
    expect(await check('pressure', 970)).toMatchObject({ baseline: 975, score: -5, reason: 'max 970 below 975' })
    // A named group with no upper bound of its own has none: the threshold's 100 is for the groups not named.
    expect(await check('vibration', 120)).toBeNull()
    expect(await check('temperature', 120)).toMatchObject({ baseline: 100, score: 20, reason: 'max 120 above 100' })
    expect(await check('temperature', 99)).toBeNull()
  })

  it('scores a value too large to round to 6 decimals as itself, never as null in JSON', async () => {
    const d = detector(threshold({ field: 'min', below: 5 }))
    const alert = await d.check('d1|temperature', result('temperature', 'min', -1e308), { deviceId: 'd1', sensor: 'temperature' })
    expect(JSON.parse(JSON.stringify(alert))).toMatchObject({ value: -1e308, baseline: 5, score: -1e308, reason: 'min -1e+308 below 5' })
  })

  it('is refused without any bound, or with a band whose bottom is not below its top', () => {
    expect(() => threshold({ field: 'max', per: { field: 'sensor', bounds: { pressure: {} } } })).toThrow(new TopologyError('threshold needs `above`, `below` or both'))
    expect(() => threshold({ field: 'max', above: 100, per: { field: 'sensor', bounds: { pressure: { above: 975, below: 1050 } } } })).toThrow(
      'threshold for sensor pressure: below 1050 must be below above 975: with the band empty, every window would raise an alert',
    )
  })

  it('is described with its bands', () => {
    const text = describeTopology(iotPipeline())
    expect(text).toContain('detect threshold-above: threshold on max (sensor temperature above 40; sensor humidity above 90; sensor pressure above 1050; sensor vibration above 7.1; any other above 100)')
    expect(text).toContain('detect threshold-below: threshold on min (sensor temperature below 5; sensor humidity below 5; sensor pressure below 975; sensor vibration none; any other none)')
    expect(describeTopology(iotPipeline({ thresholdAbove: 50 }))).toContain('detect threshold-above: threshold on max (above 50)')
    expect(describeTopology(iotPipeline({ thresholdAbove: 50 }))).not.toContain('threshold-below')
  })
})

describe("the iot pipeline's default bands against the simulator", () => {
  it('cover every sensor of the fleet; no healthy reading of a week crosses its band, and its no-signal values and vibration shocks do', () => {
    expect(Object.keys(DEFAULT_THRESHOLDS).sort()).toEqual([...FLEET_SENSORS].sort())
    // 20 devices of four sensors, one reading per second: a reading of each series every 80 s, for a week.
    const fleet = new Fleet({ devices: 20, sensors: FLEET_SENSORS, rate: 1, seed: 11, startMs: Date.UTC(2026, 0, 5), latenessMs: 60_000, lateFraction: 0, outOfOrderFraction: 0, gapFraction: 0, faultRate: 0.002 })
    const crossed: string[] = []
    const faults = new Map<string, { n: number; caught: number }>()
    for (let i = 0; i < 7 * 24 * 3600; i++) {
      const { reading, fault } = fleet.next()
      const band: ThresholdBounds = DEFAULT_THRESHOLDS[reading.sensor as keyof typeof DEFAULT_THRESHOLDS]
      const outside = (band.above !== undefined && reading.value > band.above) || (band.below !== undefined && reading.value < band.below)
      if (fault === null) {
        if (outside && crossed.length < 5) crossed.push(`${reading.deviceId} ${reading.sensor} ${reading.value}`)
        continue
      }
      const kind = `${reading.sensor} ${fault}`
      const seen = faults.get(kind) ?? { n: 0, caught: 0 }
      faults.set(kind, { n: seen.n + 1, caught: seen.caught + (outside ? 1 : 0) })
    }
    expect(crossed).toEqual([])
    for (const sensor of ['temperature', 'humidity', 'pressure'] as const) {
      expect(SENSOR_MODELS[sensor].dropoutValue).toBeLessThan(DEFAULT_THRESHOLDS[sensor].below)
      const dropouts = faults.get(`${sensor} dropout`)!
      expect(dropouts.n).toBeGreaterThan(0)
      expect(dropouts.caught).toBe(dropouts.n)
    }
    // A shock only raises vibration, by at least the model's smallest spike: above 7.1 mm/s from any healthy level.
    expect(SENSOR_MODELS.vibration.spike[0]).toBeGreaterThan(DEFAULT_THRESHOLDS.vibration.above)
    const shocks = faults.get('vibration spike')!
    expect(shocks.n).toBeGreaterThan(0)
    expect(shocks.caught).toBe(shocks.n)
  })
})
