/**
 * A window boundary that closes the windows of tens of thousands of groups at once in one task (as the 200,000 of
 * 50,000 devices with four sensors do): the task closes them a chunk at a time between records and commits between
 * chunks, so the boundary is several transactions of bounded size. A kill -9 halfway through leaves some of its
 * windows committed and the rest due in the changelog; the restarted instance closes those, and the read_committed
 * output holds every window of the boundary once, with its values.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { expectedStats, fleet, produceReadings, windowsOf } from './fleet.js'
import { readSettled, stateDir, values } from './helpers.js'
import { startProcessor, untilRunning } from './processes.js'

let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-boundary' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

test('kill -9 halfway through a boundary of 32,000 groups: committed in parts, every window once after the restart', { timeout: 240_000 }, async () => {
  const app = 'boundary'
  const topics = { inputTopic: `${app}-readings`, statsTopic: `${app}-stats`, averagesTopic: `${app}-avg`, alertsTopic: `${app}-alerts`, lateTopic: `${app}-late` }
  await setting.admin.createTopics({ topics: [{ topic: topics.inputTopic, numPartitions: 1 }] })
  // 8,000 devices x 4 sensors, readings at 0 s, 35 s and 70 s: the first reading at 70 s makes every group's first
  // 1-minute window due (its end, 60 s, plus the 10 s grace).
  const readings = fleet({ devices: 8000, sensors: ['temperature', 'humidity', 'pressure', 'co2'], readings: 3, intervalMs: 35_000, startMs: Date.UTC(2024, 0, 1), partitions: 1, seed: 11 })
  const expected = expectedStats(readings, 60_000, 10_000)
  expect(expected.size).toBe(32_000)
  await produceReadings(setting.kafka, topics.inputTopic, readings)
  const run = { applicationId: app, bootstrapServers: setting.broker.address, stateDir: stateDir(), processingGuarantee: 'exactly_once' as const, commitIntervalMs: 100, idleTimeoutMs: 3_600_000, sessionTimeoutMs: 6000 }

  const first = startProcessor(topics, run)
  // Killed as soon as a committed result of the boundary can be read: the rest of the boundary is still being closed.
  const watcher = setting.kafka.consumer({ groupId: `${app}-watcher`, maxWaitTimeInMs: 50 })
  let killed: Promise<void> | null = null
  await watcher.connect()
  try {
    await watcher.subscribe({ topics: [topics.statsTopic], fromBeginning: true })
    await watcher.run({ eachMessage: async () => void (killed ??= first.kill()) })
    await waitFor(`a committed result of the first instance\n${first.output().slice(-2000)}`, () => killed !== null, { timeoutMs: 120_000 })
    await killed
  } finally {
    await watcher.disconnect()
  }
  const before = windowsOf(values(await readSettled(setting.kafka, topics.statsTopic, (records) => records.length > 0)))
  console.log(`killed with ${before.windows.size} of the boundary's ${expected.size} windows committed`)
  expect(before.windows.size).toBeGreaterThan(0)
  expect(before.windows.size).toBeLessThan(expected.size)

  const second = startProcessor(topics, run)
  try {
    await untilRunning(second)
    const after = windowsOf(values(await readSettled(setting.kafka, topics.statsTopic, (records) => windowsOf(values(records)).windows.size >= expected.size, undefined, { timeoutMs: 120_000 })))
    expect(after.duplicates).toBe(0)
    expect(after.conflicting).toEqual([])
    expect(after.windows.size).toBe(expected.size)
    for (const [key, stats] of expected) {
      const got = after.windows.get(key)
      expect({ key, count: got?.count, min: got?.min, max: got?.max }).toEqual({ key, count: stats.count, min: stats.min, max: stats.max })
    }
    console.log(`after the restart: ${after.windows.size} windows, each once; the second instance committed ${second.metrics?.commits} times`)
  } finally {
    await second.stop()
  }
})
