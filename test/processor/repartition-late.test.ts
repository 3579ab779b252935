/**
 * Late records and dead letters of a sub-topology fed by a keyBy's repartition topic hold the record as JSON, as
 * those of a source topic hold it as read: the repartition topic's values are the processor's internal msgpack,
 * which a consumer of the late-records or dead-letter topic could not read (before, they were written as is).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { TopologyBuilder, count, eventTime, runPipeline, tumbling, type RunningPipeline } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { readTopic, stateDir } from './helpers.js'

interface Event { device: string; kind: string; ts: number }

function topology() {
  const builder = new TopologyBuilder()
  builder
    .stream<Event>('rl-events', { eventTime: eventTime.field('ts') })
    .keyBy((e) => e.kind, { name: 'by-kind' })
    .map((e) => {
      if (e.device === 'broken') throw new Error('a broken device')
      return e
    })
    .groupByKey()
    .windowedBy(tumbling({ size: '10s', grace: 0 }))
    .aggregate({ events: count() }, { name: 'kind-10s' })
    .to('rl-kinds')
  return builder.build()
}

describe('late records and dead letters after a repartition', () => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-repartition-late' })
    pipeline = await runPipeline(topology(), {
      applicationId: 'rl',
      bootstrapServers: setting.broker.address,
      stateDir: stateDir(),
      commitIntervalMs: 200,
      partitions: 1,
      log: () => {},
    })
    const event = (device: string, kind: string, seconds: number) => ({ key: device, value: JSON.stringify({ device, kind, ts: seconds * 1000 }) })
    // One source partition, one repartition partition: the record at 2 s comes after stream time reached 25 s, so
    // the window [0 s, 10 s) of 'read' has closed and it is late there.
    await setting.producer.send({ topic: 'rl-events', messages: [event('d1', 'read', 1), event('d2', 'read', 25), event('d3', 'read', 2), event('broken', 'read', 26)] })
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test('a late record holds the repartitioned record as JSON', async () => {
    const [late] = await readTopic(setting.kafka, 'rl-late', (r) => r.length >= 1)
    expect(late!.key).toBe('read')
    expect(JSON.parse(late!.value!)).toEqual({ device: 'd3', kind: 'read', ts: 2000 })
    expect(late!.headers).toMatchObject({ 'brook.late.operator': 'kind-10s', 'brook.late.event-time': '2000' })
  })

  test('a dead letter holds the repartitioned record as JSON', async () => {
    const [dead] = await readTopic(setting.kafka, 'rl-dlq', (r) => r.length >= 1)
    expect(dead!.headers).toMatchObject({ 'brook.error.code': 'USER_FUNCTION_FAILED', 'brook.error.topic': 'rl-by-kind-repartition' })
    expect(JSON.parse(dead!.value!)).toEqual({ device: 'broken', kind: 'read', ts: 26000 })
  })
})
