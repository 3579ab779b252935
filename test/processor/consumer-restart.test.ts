/**
 * The pipeline's group consumer outlives a cluster that cannot name the group's coordinator. kafkajs looks the
 * coordinator up through every broker it knows; when each lookup fails (its connection closed under it, as when the
 * coordinator's node dies mid-answer) it gives up with KafkaJSGroupCoordinatorNotFound, an error it calls final, and
 * stops the consumer without restarting it. Kafka's own consumer keeps looking, and so must the pipeline: a proxy in
 * front of the broker swallows the answer to the consumer's FindCoordinator for the group (and closes the
 * connection) when the consumer first joins, and again when the consumer started in its place joins. The pipeline
 * starts a consumer a third time, after a longer backoff, goes on, and its read_committed output equals an
 * uninterrupted computation.
 */
import { expect, test } from 'vitest'
import { iotPipeline, runPipeline } from '../../processor/index.js'
import { findCoordinator } from '../../protocol/messages/find-coordinator.js'
import { waitFor } from '../helpers/wait.js'
import { expectedStats, fleet, produceReadings, windowsOf } from './fleet.js'
import { PATIENT_RETRY, proxiedBrokerPerTest, readTopic, stateDir, values } from './helpers.js'

const broker = proxiedBrokerPerTest()

/** Whether a FindCoordinator request frame asks for group `groupId` (its key, a length-prefixed string, is the group id). */
function asksForGroup(groupId: string): (request: Buffer) => boolean {
  const length = Buffer.alloc(2)
  length.writeInt16BE(groupId.length)
  const key = Buffer.concat([length, Buffer.from(groupId)])
  return (request) => request.includes(key)
}

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
