/**
 * A task's sendOffsets rides out a group coordinator it cannot reach for a moment, as Kafka's producer does, instead of
 * failing the commit and re-initializing the task (processor/runtime/runner.ts, SEND_OFFSETS_RETRY_MS). kafkajs 2.2.4
 * fails a transaction's sendOffsets at once when the connection of its TxnOffsetCommit closes (the coordinator's node
 * killed under it), and after about 5 s when the coordinator cannot be looked up (its node not yet fenced).
 *
 * Here the first TxnOffsetCommit requests a pipeline sends once it runs are cut as they are written (the connection
 * reset: ECONNRESET, as at a kill). The pipeline goes on in the same transactions: no task is re-initialized, and what
 * was sent is in the output once, read_committed.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { TopologyBuilder, runPipeline, type RunningPipeline } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { cuttingSockets, readTopic, stateDir } from './helpers.js'
import { txnOffsetCommit } from '../../protocol/messages/txn-offset-commit.js'

/** TxnOffsetCommit requests cut in a row. */
const FAILURES = 3

function topology() {
  const builder = new TopologyBuilder()
  builder
    .stream<{ n: number }>('sor-in')
    .map((r) => ({ n: r.n, doubled: r.n * 2 }))
    .to('sor-out')
  return builder.build()
}

describe('a group coordinator the task cannot reach for a moment', () => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline
  const lines: string[] = []
  const outage = { on: false, cut: 0 }
  const send = (from: number, count: number) =>
    setting.producer.send({ topic: 'sor-in', messages: Array.from({ length: count }, (_, i) => ({ key: `k${from + i}`, value: JSON.stringify({ n: from + i }) })) })

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-send-offsets-retries' })
    pipeline = await runPipeline(topology(), {
      applicationId: 'sor',
      bootstrapServers: setting.broker.address,
      stateDir: stateDir(),
      commitIntervalMs: 200,
      partitions: 1,
      kafka: {
        socketFactory: cuttingSockets(txnOffsetCommit.request.apiKey, () => {
          if (!outage.on) return false
          if (++outage.cut >= FAILURES) outage.on = false
          return true
        }),
      },
      log: (line) => lines.push(line),
    })
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test('sends the offsets again in the same transaction instead of re-initializing the task', { timeout: 120_000 }, async () => {
    await send(0, 10)
    await readTopic(setting.kafka, 'sor-out', (r) => r.length >= 10)
    const commits = pipeline.metrics().commits

    outage.on = true
    await send(10, 10)
    await waitFor('every cut made', () => outage.cut >= FAILURES)
    await send(20, 10)

    const output = await readTopic(setting.kafka, 'sor-out', (r) => r.length >= 30)
    expect(output.map((r) => (JSON.parse(r.value!) as { doubled: number }).doubled).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i * 2))
    expect(pipeline.metrics().commits).toBeGreaterThan(commits)
    expect(lines.filter((line) => line.includes('re-initializ')), lines.join('\n')).toEqual([])
  })
})
