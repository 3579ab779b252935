/**
 * The pipeline's group consumer outlives a cluster that cannot name the group's coordinator. kafkajs looks the
 * coordinator up through every broker it knows; when each lookup fails (its connection closed under it, as when the
 * coordinator's node dies mid-answer) it gives up with KafkaJSGroupCoordinatorNotFound, an error it calls final, and
 * stops the consumer without restarting it. Kafka's own consumer keeps looking, and so must the pipeline: a proxy in
 * front of the broker swallows the answer to the consumer's FindCoordinator for the group (and closes the
 * connection) when the consumer first joins, and again when the consumer started in its place joins. The pipeline
 * starts a consumer a third time, after a longer backoff, goes on, and its read_committed output equals an
 * uninterrupted computation. The global tables' consumer (a group of its own) is started again the same way: a
 * pipeline whose global table's first lookup loses its answer starts, and enriches with the whole table.
 */
import { expect, test } from 'vitest'
import { TopologyBuilder, iotPipeline, runPipeline } from '../../processor/index.js'
import { findCoordinator } from '../../protocol/messages/find-coordinator.js'
import { asksForGroup } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait.js'
import { expectedStats, fleet, produceReadings, windowsOf } from './fleet.js'
import { PATIENT_RETRY, proxiedBrokerPerTest, readTopic, stateDir, values } from './helpers.js'

const broker = proxiedBrokerPerTest()

test.for(['at_least_once', 'exactly_once'] as const)('%s: a consumer that cannot find the group coordinator is started again, and the output equals an uninterrupted run', { timeout: 240_000 }, async (guarantee) => {
  const app = `consumer-restart-${guarantee.replaceAll('_', '-')}`
  const topics = { inputTopic: `${app}-readings`, statsTopic: `${app}-stats`, averagesTopic: `${app}-avg`, alertsTopic: `${app}-alerts`, lateTopic: `${app}-late` }
  const { proxy, address, kafka } = await broker.start(app, { topic: topics.inputTopic, partitions: 2 })
  const readings = fleet({ devices: 8, sensors: ['temperature'], readings: 4000, intervalMs: 1000, startMs: Date.UTC(2024, 0, 1), partitions: 2, seed: 9 })
  const expected = expectedStats(readings, 60_000, 10_000)
  await produceReadings(kafka, topics.inputTopic, readings)

  // The consumer's lookup is the first for the group: the tasks' own (committed offsets) follow its join.
  const lookups = asksForGroup(app)
  proxy.dropNextAnswer(findCoordinator.request.apiKey, lookups)
  const logged: string[] = []
  const starting = runPipeline(iotPipeline({ ...topics, statsWindow: '1m', grace: '10s', averageWindow: '2m', averageAdvance: '1m' }), {
    applicationId: app,
    bootstrapServers: address,
    stateDir: stateDir(),
    processingGuarantee: guarantee,
    commitIntervalMs: 100,
    idleTimeoutMs: 3_600_000,
    kafka: { retry: PATIENT_RETRY },
    log: (line) => logged.push(line),
  })
  // The next lookup for the group is the replacing consumer's, a second after the first failed.
  await waitFor('the first lost answer', () => proxy.dropped === 1, { timeoutMs: 60_000, intervalMs: 20 })
  proxy.dropNextAnswer(findCoordinator.request.apiKey, lookups)
  const running = broker.track(await starting)
  const processed = () => running.metrics().tasks.reduce((sum, t) => sum + (t.position === null ? 0 : Number(t.position)), 0) >= readings.length
  await waitFor(`every reading processed\n${logged.join('\n')}`, processed, { timeoutMs: 120_000 })
  expect(proxy.dropped).toBe(2)
  await running.stop()

  const output = await readTopic(kafka, topics.statsTopic, (records) => windowsOf(values(records)).windows.size >= expected.size, { timeoutMs: 60_000 })
  const result = windowsOf(values(output))
  const restarts = logged.filter((line) => line.includes('starting the group consumer again'))
  console.log(`${guarantee}: ${result.windows.size} windows (expected ${expected.size}), ${result.duplicates} twice; ${restarts.join(' | ')}`)
  expect(restarts.map((line) => line.replace(/^.*again in /, ''))).toEqual(['1000 ms', '2000 ms'])
  if (guarantee === 'exactly_once') expect(result.duplicates).toBe(0)
  expect(result.conflicting).toEqual([])
  expect([...result.windows.keys()].sort()).toEqual([...expected.keys()].sort())
  for (const [key, stats] of expected) expect({ key, ...result.windows.get(key)!, avg: 0 }).toEqual({ key, ...stats, avg: 0 })
})

test('the global tables\' consumer that cannot find its coordinator is started again, and the pipeline enriches with the whole table', { timeout: 120_000 }, async () => {
  const app = 'consumer-restart-global'
  const { proxy, address, kafka } = await broker.start(app, { topic: `${app}-events`, partitions: 1 })
  const producer = kafka.producer()
  await producer.connect()
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: `${app}-limits`, numPartitions: 2, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] })
  await admin.disconnect()
  const devices = Array.from({ length: 20 }, (_, i) => `d${i}`)
  await producer.send({ topic: `${app}-limits`, messages: devices.map((d, i) => ({ key: d, value: JSON.stringify({ limit: i * 10 }) })) })
  await producer.send({ topic: `${app}-events`, messages: devices.map((d) => ({ key: d, value: JSON.stringify({ device: d }) })) })
  await producer.disconnect()

  const b = new TopologyBuilder()
  const limits = b.globalTable<{ limit: number }>(`${app}-limits`)
  b.stream<{ device: string }>(`${app}-events`)
    .enrich(limits, (e, limit: { limit: number } | undefined) => ({ ...e, limit: limit?.limit ?? null }))
    .to(`${app}-enriched`)
  // The group of the tables' consumer is <app>-global-<instance id>; no other group or transactional id holds that.
  proxy.dropNextAnswer(findCoordinator.request.apiKey, (request) => request.includes(Buffer.from(`${app}-global-`)))
  const logged: string[] = []
  broker.track(await runPipeline(b.build(), { applicationId: app, bootstrapServers: address, stateDir: stateDir(), processingGuarantee: 'at_least_once', commitIntervalMs: 100, kafka: { retry: PATIENT_RETRY }, log: (line) => logged.push(line) }))
  expect(proxy.dropped).toBe(1)
  expect(logged.filter((line) => line.startsWith("the global tables' consumer stopped (Failed to find group coordinator); starting it again in 1000 ms"))).toHaveLength(1)
  const output = values<{ device: string; limit: number | null }>(await readTopic(kafka, `${app}-enriched`, (records) => records.length >= devices.length))
  expect(output.map((e) => [e.device, e.limit]).sort()).toEqual(devices.map((d, i) => [d, i * 10]).sort())
})
