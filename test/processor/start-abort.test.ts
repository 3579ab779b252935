/**
 * RunOptions.signal: an application can give up on a start. A start against a cluster that does not answer (its
 * node stopped with SIGSTOP: connections are accepted, requests never answered) waited out each client's request
 * timeout, about 30 s, with no way to end it sooner; an aborted signal now ends it with the signal's reason, and
 * leaves nothing behind: the state directory is free for the next start, which then runs.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { TopologyBuilder, runPipeline, type RunningPipeline } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { readTopic, stateDir, values } from './helpers.js'

function topology() {
  const builder = new TopologyBuilder()
  builder.stream<{ n: number }>('abort-in').map((r) => ({ n: r.n * 2 })).to('abort-out')
  return builder.build()
}

describe('a start given RunOptions.signal', () => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline | undefined

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-start-abort' })
  })
  afterAll(async () => {
    setting.broker.child.kill('SIGCONT')
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test('rejects at once, touching nothing, when the signal has already aborted', async () => {
    const dir = join(stateDir(), 'never-made')
    const started = runPipeline(topology(), { applicationId: 'abort-early', bootstrapServers: setting.broker.address, stateDir: dir, log: () => {}, signal: AbortSignal.abort() })
    await expect(started).rejects.toMatchObject({ name: 'AbortError' })
    expect(existsSync(dir)).toBe(false)
  })

  test('ends a start that waits for a cluster that does not answer, and the next start runs', { timeout: 120_000 }, async () => {
    const dir = stateDir()
    const lines: string[] = []
    setting.broker.child.kill('SIGSTOP')
    const started = runPipeline(topology(), { applicationId: 'abort-paused', bootstrapServers: setting.broker.address, stateDir: dir, log: (line) => lines.push(line), signal: AbortSignal.timeout(1500) })
    await expect(started).rejects.toMatchObject({ name: 'TimeoutError' })
    expect(lines.filter((line) => line.includes('started'))).toEqual([])
    setting.broker.child.kill('SIGCONT')

    // The state directory was released: a start on it runs the pipeline.
    pipeline = await runPipeline(topology(), { applicationId: 'abort-paused', bootstrapServers: setting.broker.address, stateDir: dir, log: () => {} })
    await setting.producer.send({ topic: 'abort-in', messages: [{ key: 'k', value: JSON.stringify({ n: 21 }) }] })
    const out = await readTopic(setting.kafka, 'abort-out', (records) => records.length >= 1)
    expect(values<{ n: number }>(out)).toEqual([{ n: 42 }])
  })
})
