/**
 * RunOptions.events: an application hears the pipeline's first assignment and restores. runPipeline resolves once its
 * group consumer has joined, so the first 'assigned' (and often the first 'restored') is emitted before the caller
 * holds RunningPipeline.events; a listener added there afterwards never heard of them (in trials of an application
 * embedding the processor, none of five starts logged its first assignment). An emitter passed in the options gets
 * listeners before the start, as Kafka Streams' state listener is set before `start()`.
 */
import { EventEmitter } from 'node:events'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { TopologyBuilder, runPipeline, type RunningPipeline } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { stateDir } from './helpers.js'

describe('an emitter given as RunOptions.events', () => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline | undefined

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-events-option' })
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test("hears the first assignment and restore, which happen before runPipeline resolves", { timeout: 60_000 }, async () => {
    const builder = new TopologyBuilder()
    builder.stream<{ n: number }>('eo-in').groupByKey().updateStateByKey<{ n: number }>((s, r) => ({ n: (s?.n ?? 0) + r.n }), { name: 'total' }).to('eo-out')
    const events = new EventEmitter()
    const assigned: string[][] = []
    const restored: string[] = []
    events.on('assigned', (ids: string[]) => assigned.push(ids))
    events.on('restored', (id: string) => restored.push(id))
    pipeline = await runPipeline(builder.build(), { applicationId: 'eo', bootstrapServers: setting.broker.address, stateDir: stateDir(), partitions: 2, events, log: () => {} })
    expect(pipeline.events).toBe(events)
    await waitFor('both tasks restored', () => restored.length >= 2)
    expect(assigned[0]).toEqual(['0_0', '0_1'])
    expect([...restored].sort()).toEqual(['0_0', '0_1'])
  })
})
