/**
 * Kill -9 of a processor instance mid-stream, then a restart on the same state directory.
 * - at_least_once: nothing is missing, and every window has exactly the values of an uninterrupted computation
 *   (state resumes at the position saved with it); a window may be written twice.
 * - exactly_once: the read_committed output is exactly the uninterrupted one, each window once.
 * - the default guarantee on a cluster without transactions (a proxy in front of the broker leaves the transaction
 *   APIs out of ApiVersions and refuses their requests, as a broker from before transactions does): the pipeline
 *   says so, runs at_least_once, and after the kill nothing is missing.
 */
import kafkajs from 'kafkajs'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { ProcessingGuarantee } from '../../processor/index.js'
import { FAST_GROUPS, startConfiguredBroker } from '../helpers/broker-config.js'
import { startProxy } from '../helpers/tcp-proxy.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { expectedStats, fleet, produceReadings, windowsOf } from './fleet.js'
import { readTopic, stateDir, values } from './helpers.js'
import { startProcessor, untilRunning } from './processes.js'
import { TRANSACTION_APIS } from './transaction-apis.js'

let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-recovery' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

/** Runs the scenario on `on` (the suite's broker unless given), asking for `guarantee` (the default, exactly_once, if none). */
async function killAndRestart(guarantee: ProcessingGuarantee | undefined, on: Pick<KafkajsBroker, 'kafka' | 'admin'> & { address: string } = { ...setting, address: setting.broker.address }) {
  const app = `recovery-${guarantee ?? 'default'}`
  const topics = { inputTopic: `${app}-readings`, statsTopic: `${app}-stats`, averagesTopic: `${app}-avg`, alertsTopic: `${app}-alerts`, lateTopic: `${app}-late` }
  await on.admin.createTopics({ topics: [{ topic: topics.inputTopic, numPartitions: 4 }] })
  const readings = fleet({ devices: 12, sensors: ['temperature', 'humidity'], readings: 600, intervalMs: 1000, startMs: Date.UTC(2024, 0, 1), partitions: 4, seed: 7 })
  const expected = expectedStats(readings, 60_000, 10_000)
  const run = { applicationId: app, bootstrapServers: on.address, stateDir: stateDir(), processingGuarantee: guarantee, commitIntervalMs: 100, idleTimeoutMs: 3_600_000, sessionTimeoutMs: 3000 }
  const half = readings.length / 2
  await produceReadings(on.kafka, topics.inputTopic, readings.slice(0, half))
  const first = startProcessor(topics, run)
  await untilRunning(first, 4)
  await waitFor('the first instance to process the first half', () => (first.metrics?.recordsIn ?? 0) >= half / 2)
  await produceReadings(on.kafka, topics.inputTopic, readings.slice(half, half + 2000))
  await waitFor('the first instance to be mid-stream', () => (first.metrics?.recordsIn ?? 0) > half)
  await first.kill()
  await produceReadings(on.kafka, topics.inputTopic, readings.slice(half + 2000))
  const second = startProcessor(topics, run)
  try {
    await untilRunning(second, 4)
    const output = await readTopic(on.kafka, topics.statsTopic, (records) => windowsOf(values(records)).windows.size >= expected.size, { timeoutMs: 90_000 })
    return { expected, ...windowsOf(values(output)), guarantee: second.guarantee, logs: [first.output(), second.output()] }
  } finally {
    await second.stop()
  }
}

/** at_least_once: every window there, with the uninterrupted values (written twice at most, never differently). */
function expectEveryWindow(result: Awaited<ReturnType<typeof killAndRestart>>): void {
  expect(result.conflicting).toEqual([])
  expect([...result.windows.keys()].sort()).toEqual([...result.expected.keys()].sort())
  for (const [key, stats] of result.expected) {
    const got = result.windows.get(key)!
    expect({ key, count: got.count, min: got.min, max: got.max }).toEqual({ key, count: stats.count, min: stats.min, max: stats.max })
    expect(got.avg).toBeCloseTo(stats.avg, 9)
  }
}

describe('kill -9 mid-stream and restart', () => {
  test('at_least_once: every window is there with the uninterrupted values', async () => {
    const result = await killAndRestart('at_least_once')
    expect(result.guarantee).toBe('at_least_once')
    expectEveryWindow(result)
    // Restarted on its own state directory, each of the four tasks says how it got its state: from its local store
    // as it was, or with the changelog records past the store's checkpoint.
    const starts = result.logs[1]!.split('\n').filter((line) => /task \d+_\d+: (local state is current \(changelog offset \d+\): nothing to restore|restored \d+ changelog records)/.test(line))
    expect(starts).toHaveLength(4)
    console.log(`at_least_once after kill -9: ${result.windows.size} windows, ${result.duplicates} written twice; ${starts.join(' / ')}`)
  })

  test('the default guarantee on a cluster without transactions: it says so, runs at_least_once, and nothing is missing after kill -9', async () => {
    // The broker listens on 127.0.0.2 and advertises 127.0.0.1, where the proxy listens with the same port.
    const broker = await startConfiguredBroker(FAST_GROUPS, { args: ['--host', '127.0.0.2', '--advertised-host', '127.0.0.1'] })
    const proxy = await startProxy({ listenHost: '127.0.0.1', targetHost: '127.0.0.2', port: broker.port })
    for (const api of TRANSACTION_APIS) proxy.hide(api.request.apiKey)
    const address = `127.0.0.1:${broker.port}`
    const kafka = new kafkajs.Kafka({ clientId: 'processor-fallback', brokers: [address], logLevel: kafkajs.logLevel.NOTHING })
    const admin = kafka.admin()
    await admin.connect()
    try {
      const result = await killAndRestart(undefined, { kafka, admin, address })
      expect(result.guarantee).toBe('at_least_once')
      for (const log of result.logs) expect(log).toContain('the cluster does not support transactions (its ApiVersions does not list InitProducerId')
      expectEveryWindow(result)
      console.log(`no guarantee asked, at_least_once run, after kill -9: ${result.windows.size} windows, ${result.duplicates} written twice`)
    } finally {
      await admin.disconnect()
      await proxy.close()
      await broker.kill()
      broker.cleanup()
    }
  })

  test('exactly_once: the read_committed output equals an uninterrupted run, no window twice', async () => {
    const result = await killAndRestart('exactly_once')
    expect(result.guarantee).toBe('exactly_once')
    expect(result.duplicates).toBe(0)
    expect([...result.windows.keys()].sort()).toEqual([...result.expected.keys()].sort())
    for (const [key, stats] of result.expected) expect({ key, ...result.windows.get(key)!, avg: 0 }).toEqual({ key, ...stats, avg: 0 })
  })
})
