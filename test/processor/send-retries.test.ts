/**
 * A task's send to a leader it cannot reach is tried again at most 1 s apart, as Kafka's producer does
 * (retry.backoff.max.ms), so the output goes out within about a second of the partition's new leader. With waits of up
 * to 5 s, the output of a 3-node `brook dev` whose repartition topic's leader was killed with kill -9 came 5-6.5 s after
 * the new leader in every trial: the send's try just before the election failed, and the next came 5 s later
 * (processor/runtime/runner.ts, TRANSACTION_SEND_MAX_WAIT_MS).
 *
 * Here every Produce request the pipeline's clients send fails with its connection (reset as the request is written:
 * a KafkaJSConnectionError, as a refused connection is) until seven have failed. The client's backoff is kafkajs's
 * own outside tests (300 ms doubling, ±20% a wait; under vitest kafkajs starts at 50 ms): the waits grow at least
 * 1.6 times a try, so the seventh is at the cap whatever the randomization did. The waits kafkajs schedules after the
 * failed tries (the `retryTime` its producer logs with each failure: the schedule, not a clock) are all at most 1 s, the
 * last ones exactly 1 s (with the cap at 5 s they grew past 2 s), and the output is the input's.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { logLevel, type logCreator } from 'kafkajs'
import { TopologyBuilder, runPipeline, type RunningPipeline } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { cuttingSockets, readTopic, stateDir } from './helpers.js'
import { produce } from '../../protocol/messages/produce.js'

/** Produce requests that fail before the leader can be reached again. */
const FAILURES = 7

/**
 * Collects the wait kafkajs's producer schedules after each failed send: the `retryTime` of its send retrier's log line
 * ("Failed to send messages", or at debug level "Cluster has disconnected, reconnecting" when the failed connection
 * was its only one).
 */
function sendRetryWaits(waits: number[]): logCreator {
  return () => ({ log }) => {
    const { message, retryTime } = log as { message?: string; retryTime?: unknown }
    if (/^(Failed to send messages|Cluster has disconnected, reconnecting)/.test(message ?? '') && typeof retryTime === 'number') waits.push(retryTime)
  }
}

/** Cuts every Produce request while `outage.on`; the last of FAILURES cuts ends the outage, and the next one written is its end. */
function cutProduces(outage: Outage): () => boolean {
  return () => {
    if (outage.on) {
      outage.failedAt.push(Date.now())
      if (outage.failedAt.length >= FAILURES) outage.on = false
      return true
    }
    if (outage.failedAt.length >= FAILURES) outage.resumedAt ??= Date.now()
    return false
  }
}

interface Outage {
  on: boolean
  /** When each failed Produce request was written. */
  failedAt: number[]
  /** When the first Produce request after the outage was written. */
  resumedAt?: number
}

function topology() {
  const builder = new TopologyBuilder()
  builder
    .stream<{ n: number }>('sr-in')
    .map((r) => ({ n: r.n, doubled: r.n * 2 }))
    .to('sr-out')
  return builder.build()
}

describe('a leader the task producer cannot reach for a while', () => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline
  const lines: string[] = []
  const outage: Outage = { on: false, failedAt: [] }
  const waits: number[] = []
  const send = (from: number, count: number) =>
    setting.producer.send({ topic: 'sr-in', messages: Array.from({ length: count }, (_, i) => ({ key: `k${from + i}`, value: JSON.stringify({ n: from + i }) })) })

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-send-retries' })
    pipeline = await runPipeline(topology(), {
      applicationId: 'sr',
      bootstrapServers: setting.broker.address,
      stateDir: stateDir(),
      commitIntervalMs: 200,
      partitions: 1,
      // kafkajs's backoff outside tests; the cap of the waits is the pipeline's.
      kafka: { socketFactory: cuttingSockets(produce.request.apiKey, cutProduces(outage)), retry: { initialRetryTime: 300, multiplier: 2, factor: 0.2 }, logLevel: logLevel.DEBUG, logCreator: sendRetryWaits(waits) },
      log: (line) => lines.push(line),
    })
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test('is tried again within the 1 s cap of the waits once it answers, and the output is whole', { timeout: 120_000 }, async () => {
    await send(0, 10)
    await readTopic(setting.kafka, 'sr-out', (r) => r.length >= 10)
    outage.on = true
    await send(10, 10)
    const resumed = await waitFor(`the send tried again after ${FAILURES} failures\n${lines.join('\n')}`, () => outage.resumedAt, { timeoutMs: 60_000 })
    const output = await readTopic(setting.kafka, 'sr-out', (r) => r.length >= 20)
    console.log(`tries failed at +${outage.failedAt.map((t) => t - outage.failedAt[0]!).join(', +')} ms; the next came ${resumed - outage.failedAt[FAILURES - 1]!} ms after the last; kafkajs scheduled waits of ${waits.join(', ')} ms`)
    expect(output.map((r) => (JSON.parse(r.value!) as { doubled: number }).doubled).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i * 2))
    expect(waits.length).toBeGreaterThanOrEqual(FAILURES)
    expect(Math.max(...waits)).toBe(1000)
  })
})
