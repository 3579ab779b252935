/**
 * Real sensor data: the NAB machine-temperature series and the seven road-traffic series (test/fixtures/nab/),
 * replayed as eight devices with their own event times through the built-in pipeline with 1-hour tumbling stats,
 * give exactly the windows a naive computation over the CSV files gives: count, min, max and avg per device and
 * hour. The replay is a minimal producer here; one reading per partition far after the data closes the last hours.
 *
 * It also measures (prints, does not assert) how the z-score alerts of the pipeline's shipped settings fall with
 * respect to the labelled anomaly windows of the machine-temperature series.
 */
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { iotPipeline, runPipeline } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { readSettled, readTopic, stateDir, values } from './helpers.js'

const NAB = resolve(import.meta.dirname, '../fixtures/nab')
const FILES = [
  'realKnownCause/machine_temperature_system_failure.csv',
  'realTraffic/TravelTime_387.csv',
  'realTraffic/TravelTime_451.csv',
  'realTraffic/occupancy_6005.csv',
  'realTraffic/occupancy_t4013.csv',
  'realTraffic/speed_6005.csv',
  'realTraffic/speed_7578.csv',
  'realTraffic/speed_t4013.csv',
]
const HOUR = 3_600_000
const PARTITIONS = 4

/** `2013-12-02 21:15:00` (UTC, no zone) in ms since the epoch. */
function utc(timestamp: string): number {
  const ms = Date.parse(`${timestamp.trim().replace(' ', 'T')}Z`)
  if (Number.isNaN(ms)) throw new Error(`not a NAB timestamp: ${timestamp}`)
  return ms
}

interface Series {
  deviceId: string
  sensor: string
  partition: number
  points: { ts: number; value: number }[]
}

/** The files are `timestamp,value` with a header line and nothing quoted, so a split is a full parser. */
function load(): Series[] {
  return FILES.map((file, i) => {
    const [header, ...lines] = readFileSync(join(NAB, file), 'utf8').trim().split('\n')
    expect(header!.trim()).toBe('timestamp,value')
    const name = file.split('/')[1]!.replace('.csv', '')
    return {
      deviceId: name,
      sensor: file.startsWith('realKnownCause') ? 'temperature' : name.split('_')[0]!.toLowerCase(),
      partition: i % PARTITIONS,
      points: lines.map((line) => {
        const [ts, value] = line.split(',')
        return { ts: utc(ts!), value: Number(value) }
      }),
    }
  })
}

let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-nab' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

test('eight NAB series through 1-hour windows give exactly the naive hourly count, min, max and avg', async () => {
  const series = load()
  // Summed in replay order (each file's readings by timestamp), so that even the float sums match to the last bit.
  const expected = new Map<string, { count: number; min: number; max: number; sum: number }>()
  for (const s of series) {
    for (const p of [...s.points].sort((a, b) => a.ts - b.ts)) {
      const key = `${s.deviceId}|${Math.floor(p.ts / HOUR) * HOUR}`
      const w = expected.get(key) ?? { count: 0, min: Infinity, max: -Infinity, sum: 0 }
      w.count++
      w.min = Math.min(w.min, p.value)
      w.max = Math.max(w.max, p.value)
      w.sum += p.value
      expected.set(key, w)
    }
  }
  await setting.admin.createTopics({ topics: [{ topic: 'nab-readings', numPartitions: PARTITIONS, configEntries: [{ name: 'retention.ms', value: '-1' }] }] })
  const hourly = await runPipeline(iotPipeline({ inputTopic: 'nab-readings', statsTopic: 'nab-stats-1h', averagesTopic: 'nab-avg-1h', alertsTopic: 'nab-alerts-1h', lateTopic: 'nab-late', statsWindow: '1h', averageWindow: '1h', averageAdvance: '1h', grace: 0, thresholdAbove: 1e12 }), {
    applicationId: 'nab-hourly',
    bootstrapServers: setting.broker.address,
    stateDir: stateDir(),
    processingGuarantee: 'at_least_once',
    commitIntervalMs: 500,
    idleTimeoutMs: 3_600_000,
    log: () => {},
  })
  const shipped = await runPipeline(iotPipeline({ inputTopic: 'nab-readings', statsTopic: 'nab-stats-1m', averagesTopic: 'nab-avg-5m', alertsTopic: 'nab-alerts', lateTopic: 'nab-late-1m' }), {
    applicationId: 'nab-shipped',
    bootstrapServers: setting.broker.address,
    stateDir: stateDir(),
    processingGuarantee: 'at_least_once',
    commitIntervalMs: 500,
    idleTimeoutMs: 3_600_000,
    log: () => {},
  })
  try {
    const last = Math.max(...series.flatMap((s) => s.points.map((p) => p.ts)))
    // Eight devices reporting at once: readings in event-time order (a stable sort keeps each file's own order).
    const messages = series
      .flatMap((s) => s.points.map((p) => ({ ts: p.ts, message: { key: s.deviceId, partition: s.partition, value: JSON.stringify({ deviceId: s.deviceId, sensor: s.sensor, value: p.value, unit: '', ts: p.ts }) } })))
      .sort((a, b) => a.ts - b.ts)
      .map((m) => m.message)
    for (let p = 0; p < PARTITIONS; p++) messages.push({ key: `end-of-replay-${p}`, partition: p, value: JSON.stringify({ deviceId: `end-of-replay-${p}`, sensor: 'none', value: 0, unit: '', ts: last + 2 * HOUR }) })
    for (let i = 0; i < messages.length; i += 5000) await setting.producer.send({ topic: 'nab-readings', acks: -1, messages: messages.slice(i, i + 5000) })

    const output = values(await readTopic(setting.kafka, 'nab-stats-1h', (r) => r.length >= expected.size, { timeoutMs: 120_000 })).filter((w) => !String(w.deviceId).startsWith('end-of-replay'))
    const got = new Map(output.map((w) => [`${w.deviceId}|${w.windowStart}`, { count: w.count, min: w.min, max: w.max, avg: w.avg, windowEnd: w.windowEnd }]))
    expect(output.length).toBe(got.size)
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort())
    for (const [key, w] of expected) {
      const start = Number(key.split('|')[1])
      expect({ key, ...got.get(key)! }).toEqual({ key, count: w.count, min: w.min, max: w.max, avg: w.sum / w.count, windowEnd: start + HOUR })
    }
    expect(hourly.metrics()).toMatchObject({ late: 0, deadLetters: 0 })

    const labels = JSON.parse(readFileSync(join(NAB, 'labels.json'), 'utf8')) as Record<string, [string, string][]>
    const machine = labels[FILES[0]!]!.map(([from, to]) => [utc(from), utc(to)] as const)
    const machineSeries = series[0]!
    // Every reading processed first, then the alerts read until none has come for 2 s (commits every 500 ms): they are
    // counted once the shipped pipeline is done, not at the first read that finds some.
    await waitFor('the shipped pipeline to process every reading', () => shipped.metrics().recordsIn >= messages.length, { timeoutMs: 120_000 })
    const alerts = values(await readSettled(setting.kafka, 'nab-alerts', (r) => r.length > 0, undefined, { timeoutMs: 60_000 })).filter((a) => a.deviceId === machineSeries.deviceId && String(a.reason).includes('z-score'))
    const inside = alerts.filter((a) => machine.some(([from, to]) => (a.windowStart as number) >= from && (a.windowStart as number) <= to)).length
    console.log(`NAB machine temperature, shipped settings (1-minute avg, |z| >= 4 against the previous 30 windows): ${alerts.length} z-score alerts, ${inside} inside the ${machine.length} labelled anomaly windows, ${alerts.length - inside} outside`)
  } finally {
    await hourly.stop()
    await shipped.stop()
  }
})
