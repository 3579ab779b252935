/**
 * exactly_once when a task's first commit fails: the broker becomes unreachable as the commit's EndTxn is sent (a
 * proxy in front of it goes down there, as a node killed at that moment), so the task's first transaction is aborted
 * and the task is re-initialized from its committed state, which has no position yet. The consumer's own fetch
 * position is already past the records that transaction covered; the task must go back to the group's committed
 * offset (none yet: the partition's start) and process them again. The read_committed output equals an uninterrupted
 * computation, each window once. (A trial lost the first transaction's windows this way when the group coordinator's
 * node was killed a few seconds into a run.)
 */
import { expect, test } from 'vitest'
import { iotPipeline, runPipeline } from '../../processor/index.js'
import { endTxn } from '../../protocol/messages/end-txn.js'
import { waitFor } from '../helpers/wait.js'
import { expectedStats, fleet, produceReadings, windowsOf } from './fleet.js'
import { PATIENT_RETRY, proxiedBrokerPerTest, readTopic, stateDir, values } from './helpers.js'

const APP = 'first-commit'
const TOPICS = { inputTopic: `${APP}-readings`, statsTopic: `${APP}-stats`, averagesTopic: `${APP}-avg`, alertsTopic: `${APP}-alerts`, lateTopic: `${APP}-late` }

const broker = proxiedBrokerPerTest()

test('a task whose first transaction is aborted processes that transaction\'s records again, and the output equals an uninterrupted run', async () => {
  const { proxy, address, kafka } = await broker.start(APP, { topic: TOPICS.inputTopic, partitions: 1 })
  const readings = fleet({ devices: 6, sensors: ['temperature'], readings: 600, intervalMs: 1000, startMs: Date.UTC(2024, 0, 1), partitions: 1, seed: 5 })
  const expected = expectedStats(readings, 60_000, 10_000)
  await produceReadings(kafka, TOPICS.inputTopic, readings)

  // The first EndTxn is the first commit's: neither the probe nor the task's fencing sends one (their transactions are empty).
  proxy.outageAt(endTxn.request.apiKey, { downMs: 3000 })
  const logged: string[] = []
  const running = broker.track(await runPipeline(iotPipeline({ ...TOPICS, statsWindow: '1m', grace: '10s', averageWindow: '2m', averageAdvance: '1m' }), {
    applicationId: APP,
    bootstrapServers: address,
    stateDir: stateDir(),
    processingGuarantee: 'exactly_once',
    commitIntervalMs: 100,
    idleTimeoutMs: 3_600_000,
    kafka: { retry: PATIENT_RETRY },
    log: (line) => logged.push(line),
  }))
  await waitFor('the first commit to meet the outage', () => proxy.outages === 1, { timeoutMs: 60_000 })
  // The task processes every reading before its first commit is sent, so its position alone says nothing until the
  // failed commit has sent it back to its committed state.
  const reinitialized = (): boolean => logged.some((line) => line.startsWith('task 0_0: ') && line.includes('re-initializing it from its committed state'))
  await waitFor('the failed first commit to re-initialize the task', reinitialized, { timeoutMs: 90_000 })
  await waitFor('every reading processed', () => running.metrics().tasks.some((t) => t.state === 'running' && t.position !== null && Number(t.position) >= readings.length), { timeoutMs: 90_000 })
  await running.stop()

  let seen = 0
  const output = await readTopic(kafka, TOPICS.statsTopic, (records) => (seen = windowsOf(values(records)).windows.size) >= expected.size, { timeoutMs: 60_000 }).catch((error: Error) => {
    // What the pipeline went through says where the windows went.
    throw new Error(`${error.message}: ${seen} of ${expected.size} windows; the pipeline logged: ${logged.join(' | ')}`)
  })
  const result = windowsOf(values(output))
  console.log(`first commit aborted: ${result.windows.size} windows (expected ${expected.size}), ${result.duplicates} twice; ${logged.filter((line) => line.startsWith('task ')).join(' | ')}`)
  expect(result.duplicates).toBe(0)
  expect([...result.windows.keys()].sort()).toEqual([...expected.keys()].sort())
  for (const [key, stats] of expected) expect({ key, ...result.windows.get(key)!, avg: 0 }).toEqual({ key, ...stats, avg: 0 })
}, 240_000)
