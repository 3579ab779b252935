/**
 * Kill -9 of a processor instance mid-stream, then a restart on the same state directory.
 * - at_least_once: nothing is missing, and every window has exactly the values of an uninterrupted computation
 *   (state resumes at the position saved with it); a window may be written twice.
 * - exactly_once: the read_committed output is exactly the uninterrupted one, each window once.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ProcessingGuarantee } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { expectedStats, fleet, produceReadings, windowsOf } from './fleet.js'
import { readTopic, stateDir, values } from './helpers.js'
import { startProcessor, untilRunning } from './processes.js'

let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-recovery' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

async function killAndRestart(guarantee: ProcessingGuarantee) {
  const app = `recovery-${guarantee}`
  const topics = { inputTopic: `${app}-readings`, statsTopic: `${app}-stats`, averagesTopic: `${app}-avg`, alertsTopic: `${app}-alerts`, lateTopic: `${app}-late` }
  await setting.admin.createTopics({ topics: [{ topic: topics.inputTopic, numPartitions: 4 }] })
  const readings = fleet({ devices: 12, sensors: ['temperature', 'humidity'], readings: 600, intervalMs: 1000, startMs: Date.UTC(2024, 0, 1), partitions: 4, seed: 7 })
  const expected = expectedStats(readings, 60_000, 10_000)
  const run = { applicationId: app, bootstrapServers: setting.broker.address, stateDir: stateDir(), processingGuarantee: guarantee, commitIntervalMs: 100, idleTimeoutMs: 3_600_000, sessionTimeoutMs: 3000 }
  const half = readings.length / 2
  await produceReadings(setting.kafka, topics.inputTopic, readings.slice(0, half))
  const first = startProcessor(topics, run)
  await untilRunning(first, 4)
  await waitFor('the first instance to process the first half', () => (first.metrics?.recordsIn ?? 0) >= half / 2)
  await produceReadings(setting.kafka, topics.inputTopic, readings.slice(half, half + 2000))
  await waitFor('the first instance to be mid-stream', () => (first.metrics?.recordsIn ?? 0) > half)
  await first.kill()
  await produceReadings(setting.kafka, topics.inputTopic, readings.slice(half + 2000))
  const second = startProcessor(topics, run)
  try {
    await untilRunning(second, 4)
    const output = await readTopic(setting.kafka, topics.statsTopic, (records) => windowsOf(values(records)).windows.size >= expected.size, { timeoutMs: 90_000 })
    return { expected, ...windowsOf(values(output)), guarantee: second.guarantee }
  } finally {
    await second.stop()
  }
}

describe('kill -9 mid-stream and restart', () => {
  test('at_least_once: every window is there with the uninterrupted values', async () => {
    const result = await killAndRestart('at_least_once')
    expect(result.guarantee).toBe('at_least_once')
    expect(result.conflicting).toEqual([])
    expect([...result.windows.keys()].sort()).toEqual([...result.expected.keys()].sort())
    for (const [key, stats] of result.expected) {
      const got = result.windows.get(key)!
      expect({ key, count: got.count, min: got.min, max: got.max }).toEqual({ key, count: stats.count, min: stats.min, max: stats.max })
      expect(got.avg).toBeCloseTo(stats.avg, 9)
    }
    console.log(`at_least_once after kill -9: ${result.windows.size} windows, ${result.duplicates} written twice`)
  })

  test('exactly_once: the read_committed output equals an uninterrupted run, no window twice', async () => {
    const result = await killAndRestart('exactly_once')
    expect(result.guarantee).toBe('exactly_once')
    expect(result.duplicates).toBe(0)
    expect([...result.windows.keys()].sort()).toEqual([...result.expected.keys()].sort())
    for (const [key, stats] of result.expected) expect({ key, ...result.windows.get(key)!, avg: 0 }).toEqual({ key, ...stats, avg: 0 })
  })
})
