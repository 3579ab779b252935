/**
 * Sparse streams still close their windows (section 2 of the stream-processing anchors: "no final result",
 * idle partitions holding time back):
 * - a sensor that goes quiet gets its final windows and alerts, because other sensors of its partition move the
 *   partition's stream time on;
 * - a partition that goes quiet gets them too, because after idleTimeoutMs its stream time follows the wall clock.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { iotPipeline, runPipeline } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { readTopic, stateDir, values } from './helpers.js'

let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-idle' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

test('a quiet sensor and an idle partition get their final windows and alerts', async () => {
  await setting.admin.createTopics({ topics: [{ topic: 'sparse-readings', numPartitions: 2 }] })
  const base = Date.UTC(2024, 0, 1)
  const reading = (deviceId: string, sensor: string, seconds: number, value: number, partition: number) => ({
    key: deviceId,
    partition,
    value: JSON.stringify({ deviceId, sensor, value, unit: 'C', ts: base + seconds * 1000 }),
  })
  const pipeline = await runPipeline(iotPipeline({ inputTopic: 'sparse-readings', statsTopic: 'sparse-stats', averagesTopic: 'sparse-avg', alertsTopic: 'sparse-alerts', lateTopic: 'sparse-late', statsWindow: '10s', grace: '1s' }), {
    applicationId: 'sparse',
    bootstrapServers: setting.broker.address,
    stateDir: stateDir(),
    commitIntervalMs: 100,
    idleTimeoutMs: 1000,
    log: () => {},
  })
  try {
    await setting.producer.send({
      topic: 'sparse-readings',
      messages: [
        // Partition 0: the quiet sensor speaks once (with a value over the threshold), then only the busy one.
        reading('quiet', 'temperature', 1, 150, 0),
        ...Array.from({ length: 30 }, (_, i) => reading('busy', 'temperature', i, 20 + (i % 3), 0)),
        // Partition 1: a few readings, then nothing more at all.
        reading('lonely', 'temperature', 8, 120, 1),
        reading('lonely', 'temperature', 9, 30, 1),
      ],
    })
    const stats = values(await readTopic(setting.kafka, 'sparse-stats', (r) => r.some((x) => x.value!.includes('"lonely"')) && r.some((x) => x.value!.includes('"quiet"'))))
    expect(stats.filter((s) => s.deviceId === 'quiet')).toEqual([expect.objectContaining({ windowStart: base, windowEnd: base + 10_000, count: 1, max: 150 })])
    expect(stats.filter((s) => s.deviceId === 'lonely')).toEqual([expect.objectContaining({ windowStart: base, windowEnd: base + 10_000, count: 2, max: 120 })])
    const alerts = values(await readTopic(setting.kafka, 'sparse-alerts', (r) => r.length >= 2))
    expect(alerts.map((a) => [a.deviceId, a.windowStart, a.value, a.reason]).sort()).toEqual([
      ['lonely', base, 120, 'max 120 above 40'],
      ['quiet', base, 150, 'max 150 above 40'],
    ])
  } finally {
    await pipeline.stop()
  }
})
