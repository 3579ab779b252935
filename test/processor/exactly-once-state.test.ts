/**
 * exactly_once when the local store is ahead of the cluster: the store holds a commit that the cluster does not (what
 * a transaction the coordinator aborted after the processor had seen its commit leaves, or work of an at_least_once
 * run). The local store is a cache of committed transactions, so the restarted task must rebuild it from the
 * changelog and process again from the group's committed offset, not go on from its own position.
 *
 * The state is made by rolling the broker back: its data directory is copied after a first run, a second run goes
 * further, and the copy is put back. An aborted transaction on the changelog then carries its end past the second
 * run's checkpoint, as the aborted commit's own records and marker do, so the changelog's range alone does not show
 * the store is ahead. The read_committed output must equal an uninterrupted computation, each window once.
 *
 * The other way round, in either mode, a store at the group's committed offset is kept even where the changelog's range does not
 * hold its checkpoint (what a newly elected leader's stale end offset shows, KIP-207; here the changelog is deleted
 * between two runs): wiping it would go on from the committed offset without the state, and get windows wrong.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import kafkajs from 'kafkajs'
import { afterEach, expect, test } from 'vitest'
import { iotPipeline, runPipeline, type ProcessingGuarantee, type RunningPipeline } from '../../processor/index.js'
import { FAST_GROUPS, startConfiguredBroker } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { waitFor } from '../helpers/wait.js'
import { expectedStats, fleet, produceReadings, windowsOf } from './fleet.js'
import { readTopic, stateDir, values } from './helpers.js'

const { Kafka, logLevel } = kafkajs

const APP = 'eos-local-ahead'
const TOPICS = { inputTopic: `${APP}-readings`, statsTopic: `${APP}-stats`, averagesTopic: `${APP}-avg`, alertsTopic: `${APP}-alerts`, lateTopic: `${APP}-late` }
const WINDOW_MS = 60_000
const GRACE_MS = 10_000

let broker: BrokerProcess | undefined
let pipeline: RunningPipeline | undefined
const snapshots: string[] = []
afterEach(async () => {
  await pipeline?.stop()
  await broker?.kill()
  broker?.cleanup()
  for (const dir of snapshots.splice(0)) rmSync(dir, { recursive: true, force: true })
  pipeline = broker = undefined
})

/** A broker, the fleet's readings split in two halves, a state directory, and a way to run the pipeline to the input's end. */
async function scenario(guarantee: ProcessingGuarantee = 'exactly_once') {
  broker = await startConfiguredBroker(FAST_GROUPS)
  const client = () => new Kafka({ brokers: [broker!.address], clientId: APP, logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } })
  const readings = fleet({ devices: 6, sensors: ['temperature'], readings: 1200, intervalMs: 1000, startMs: Date.UTC(2024, 0, 1), partitions: 1, seed: 11 })
  const half = readings.length / 2
  const expected = expectedStats(readings, WINDOW_MS, GRACE_MS)
  const state = stateDir()
  const log: string[] = []

  /** Runs the pipeline on the local store until it has processed the input topic to its end, then stops it cleanly. */
  const runToEnd = async (): Promise<void> => {
    const admin = client().admin()
    await admin.connect()
    const [end] = await admin.fetchTopicOffsets(TOPICS.inputTopic)
    await admin.disconnect()
    const running = await runPipeline(iotPipeline({ ...TOPICS, statsWindow: '1m', grace: '10s', averageWindow: '2m', averageAdvance: '1m' }), {
      applicationId: APP,
      bootstrapServers: broker!.address,
      stateDir: state,
      processingGuarantee: guarantee,
      commitIntervalMs: 100,
      idleTimeoutMs: 3_600_000,
      log: (line) => log.push(line),
    })
    pipeline = running
    await waitFor('the input processed to its end', () => running.metrics().tasks.some((t) => t.state === 'running' && t.position !== null && BigInt(t.position) >= BigInt(end!.high)), { timeoutMs: 60_000 })
    await running.stop()
    pipeline = undefined
  }

  const admin = client().admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: TOPICS.inputTopic, numPartitions: 1 }] })
  await admin.disconnect()
  await produceReadings(client(), TOPICS.inputTopic, readings.slice(0, half))
  await runToEnd()

  /** The stats windows written (read_committed), checked against an uninterrupted computation of every reading. */
  const expectUninterrupted = async (): Promise<ReturnType<typeof windowsOf>> => {
    const output = await readTopic(client(), TOPICS.statsTopic, (records) => windowsOf(values(records)).windows.size >= expected.size, { timeoutMs: 60_000 })
    const result = windowsOf(values(output))
    expect(result.duplicates).toBe(0)
    expect([...result.windows.keys()].sort()).toEqual([...expected.keys()].sort())
    for (const [key, stats] of expected) expect({ key, ...result.windows.get(key)!, avg: 0 }).toEqual({ key, ...stats, avg: 0 })
    return result
  }
  return { client, readings, half, expected, log, runToEnd, expectUninterrupted }
}

test('exactly_once rebuilds a local store that is past the group\'s committed offset, and the output equals an uninterrupted run', async () => {
  const { client, readings, half, expected, log, runToEnd, expectUninterrupted } = await scenario()

  // The cluster as it was after the first run.
  const first = broker!
  await first.kill()
  const snapshot = mkdtempSync(join(tmpdir(), 'brook-snapshot-'))
  snapshots.push(snapshot)
  cpSync(first.dataDir, snapshot, { recursive: true })
  broker = await first.restart()

  await produceReadings(client(), TOPICS.inputTopic, readings.slice(half))
  await runToEnd()
  const storeAt = log.length

  // Back to the first run's cluster: the local store is now ahead of it.
  await broker.kill()
  rmSync(broker.dataDir, { recursive: true, force: true })
  cpSync(snapshot, broker.dataDir, { recursive: true })
  broker = await broker.restart()
  const kafka = client()
  const topicAdmin = kafka.admin()
  await topicAdmin.connect()
  const changelogs = (await topicAdmin.listTopics()).filter((topic) => topic.startsWith(APP) && topic.endsWith('-changelog'))
  await topicAdmin.disconnect()
  expect(changelogs.length).toBeGreaterThan(0)
  const aborting = kafka.producer({ transactionalId: `${APP}-aborted-commit`, idempotent: true, maxInFlightRequests: 1 })
  await aborting.connect()
  const transaction = await aborting.transaction()
  for (const topic of changelogs) {
    await transaction.send({ topic, messages: Array.from({ length: 3000 }, (_, i) => ({ key: `never-${i}`, value: 'never committed', partition: 0 })) })
  }
  await transaction.abort()
  await aborting.disconnect()
  // The input as the second run saw it, and the rest of the history the rollback lost is written again by the pipeline.
  await produceReadings(kafka, TOPICS.inputTopic, readings.slice(half))
  await runToEnd()

  const restarted = log.slice(storeAt)
  const result = await expectUninterrupted()
  console.log(`local store ahead of the cluster: ${result.windows.size} windows (expected ${expected.size}); ${restarted.filter((line) => line.includes('task ')).join(' | ')}`)
  expect(restarted.some((line) => line.includes('past the group\'s committed offset'))).toBe(true)
}, 240_000)

test.for(['exactly_once', 'at_least_once'] as const)('%s keeps a local store at the group\'s committed offset when the changelog does not reach its checkpoint', { timeout: 240_000 }, async (guarantee) => {
  const { client, readings, half, log, runToEnd, expectUninterrupted } = await scenario(guarantee)
  // A changelog range below the local checkpoint, as a new leader reporting a stale end would show it; deleted, the
  // changelog is empty, and the kept store is written to it again.
  const admin = client().admin()
  await admin.connect()
  const changelogs = (await admin.listTopics()).filter((topic) => topic.startsWith(APP) && topic.endsWith('-changelog'))
  expect(changelogs.length).toBeGreaterThan(0)
  await admin.deleteTopics({ topics: changelogs })
  await waitFor('the changelogs deleted', async () => !(await admin.listTopics()).some((topic) => changelogs.includes(topic)))
  await admin.disconnect()
  const firstRun = log.length
  await produceReadings(client(), TOPICS.inputTopic, readings.slice(half))
  await runToEnd()

  const restarted = log.slice(firstRun)
  const result = await expectUninterrupted()
  console.log(`${guarantee}, changelog below the local checkpoint: ${result.windows.size} windows; ${restarted.filter((line) => line.includes('task ')).join(' | ')}`)
  expect(restarted.some((line) => line.includes('the changelog was deleted since; keeping the local state and writing all of it to the changelog at the next commit'))).toBe(true)
})
