/**
 * Two instances share a 4-partition input through the consumer group; one is killed with SIGKILL mid-stream; the
 * other takes its tasks over, restores their state from the changelogs, and the final output equals what a single
 * instance writes for the same input (and the naive computation of it). Instances that start at the same moment
 * race to create the pipeline's topics; each waits for the topics the other is creating instead of failing.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { iotPipeline, runPipeline, type TaskStatus } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { expectedStats, fleet, produceReadings, windowsOf } from './fleet.js'
import { readTopic, stateDir, values } from './helpers.js'
import { startProcessor, untilRunning, type ProcessorProcess } from './processes.js'

let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-scale-out' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

const topicsOf = (app: string) => ({ inputTopic: 'shared-readings', statsTopic: `${app}-stats`, averagesTopic: `${app}-avg`, alertsTopic: `${app}-alerts`, lateTopic: `${app}-late` })
// A session of 6 s: the takeover waits that long for the killed member, and a member whose heartbeats a loaded machine
// delays does not drop out and start the rebalance over.
const runOf = (app: string) => ({ applicationId: app, bootstrapServers: setting.broker.address, processingGuarantee: 'at_least_once' as const, commitIntervalMs: 100, idleTimeoutMs: 3_600_000, sessionTimeoutMs: 6000 })

test('one of two instances is killed; the other takes over with restored state; the output equals a single instance', async () => {
  await setting.admin.createTopics({ topics: [{ topic: 'shared-readings', numPartitions: 4 }] })
  const readings = fleet({ devices: 8, sensors: ['temperature', 'vibration'], readings: 600, intervalMs: 1000, startMs: Date.UTC(2024, 0, 1), partitions: 4, seed: 11 })
  const expected = expectedStats(readings, 60_000, 10_000)
  const third = readings.length / 3

  await produceReadings(setting.kafka, 'shared-readings', readings.slice(0, third))
  const a = startProcessor(topicsOf('pair'), { ...runOf('pair'), stateDir: stateDir() })
  const b = startProcessor(topicsOf('pair'), { ...runOf('pair'), stateDir: stateDir() })
  try {
    // A wait that times out says where both instances stood, and what they logged.
    const waitForPair = (what: string, probe: () => boolean) =>
      waitFor(what, probe).catch((error: Error) => {
        const metrics = [a, b].map((i) => JSON.stringify(i.metrics && { ...i.metrics, tasks: i.metrics.tasks.map((t) => `${t.id}:${t.state}@${t.position}`) })).join('\n')
        throw new Error(`${error.message}; at the end:\n${metrics}\n${a.output().slice(-1500)}\n${b.output().slice(-1500)}`)
      })
    await waitForPair('two instances with two tasks each', () => a.metrics?.tasks.length === 2 && b.metrics?.tasks.length === 2 && [a, b].every((i) => i.metrics!.tasks.every((t) => t.state === 'running')))
    // Where each task stands, by partition (the pipeline has one sub-topology: task 0_<partition>). Not recordsIn: an
    // instance that got its tasks after the other had processed them, restored at the end, has nothing to process.
    const ends = async () => new Map((await setting.admin.fetchTopicOffsets('shared-readings')).map((o) => [o.partition, Number(o.high)]))
    const beyondOf = (task: TaskStatus, offsets: Map<number, number>) => Number(task.position ?? 0) - offsets.get(Number(task.id.split('_')[1]))!
    const beyond = (instance: ProcessorProcess, offsets: Map<number, number>) => instance.metrics!.tasks.reduce((sum, t) => sum + beyondOf(t, offsets), 0)
    const firstThird = await ends()
    await waitForPair('the first third to be processed', () => [a, b].every((i) => i.metrics?.tasks.length === 2 && i.metrics.tasks.every((t) => t.state === 'running' && beyondOf(t, firstThird) >= 0)))
    const commitsBefore = a.metrics!.commits
    await produceReadings(setting.kafka, 'shared-readings', readings.slice(third, 2 * third))
    // a has processed part of the second third and committed since: its changelogs hold state b must restore. One
    // commit is all there may be: an instance that processes the whole third within a commit interval commits it once,
    // and commits nothing more while no input comes.
    await waitForPair('instance a mid-stream', () => beyond(a, firstThird) > 500 && a.metrics!.commits > commitsBefore)
    await a.kill()
    await untilRunning(b, 4)
    expect(b.restored.filter((r) => r.records > 0).length).toBeGreaterThan(0)
    await produceReadings(setting.kafka, 'shared-readings', readings.slice(2 * third))
    const pair = windowsOf(values(await readTopic(setting.kafka, 'pair-stats', (r) => windowsOf(values(r)).windows.size >= expected.size, { timeoutMs: 90_000 })))

    const single = startProcessor(topicsOf('single'), { ...runOf('single'), stateDir: stateDir() })
    try {
      const alone = windowsOf(values(await readTopic(setting.kafka, 'single-stats', (r) => windowsOf(values(r)).windows.size >= expected.size, { timeoutMs: 90_000 })))
      expect(alone.duplicates).toBe(0)
      expect(pair.conflicting).toEqual([])
      expect([...pair.windows].sort()).toEqual([...alone.windows].sort())
      expect([...alone.windows.keys()].sort()).toEqual([...expected.keys()].sort())
      for (const [key, stats] of expected) expect({ key, ...alone.windows.get(key)!, avg: 0 }).toEqual({ key, ...stats, avg: 0 })
      console.log(`scale-out: ${pair.windows.size} windows, ${pair.duplicates} written twice after the kill; restores on b: ${JSON.stringify(b.restored)}`)
    } finally {
      await single.stop()
    }
  } finally {
    await a.kill()
    await b.stop()
  }
})

test('instances that start at the same moment both start, whichever of them creates the topics', async () => {
  // A CreateTopics answered TOPIC_ALREADY_EXISTS, because the other instance is creating the topic, returns before
  // the topic is in the metadata: the instance must wait for it, not fail on UNKNOWN_TOPIC_OR_PARTITION.
  for (let round = 0; round < 4; round++) {
    const app = `together-${round}`
    await setting.admin.createTopics({ topics: [{ topic: `${app}-readings`, numPartitions: 4 }] })
    const topics = { ...topicsOf(app), inputTopic: `${app}-readings` }
    const started = await Promise.allSettled([0, 1].map(() => runPipeline(iotPipeline(topics), { ...runOf(app), stateDir: stateDir(), log: () => {} })))
    for (const instance of started) if (instance.status === 'fulfilled') await instance.value.stop()
    expect(started.map((instance) => (instance.status === 'fulfilled' ? 'started' : String(instance.reason)))).toEqual(['started', 'started'])
  }
})
