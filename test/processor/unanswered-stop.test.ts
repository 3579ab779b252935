/**
 * A pipeline's stop does not wait long for the requests whose answers nothing waits for, when a broker accepted them
 * and never answers (its node paused, a network that drops rather than refuses): kafkajs's disconnect waits for the
 * requests under way, and with the client's usual request timeout (30 s) and retries the stop waited that long. The
 * repartition purges (DeleteRecords) and the looks at source ends of idle advancement (ListOffsets) go through clients
 * whose requests time out after 6 s (processor/runtime/runner.ts, PROMPT_REQUEST_TIMEOUT_MS).
 *
 * Each case holds those requests for ten minutes (never answered while the test runs) and checks that the stop ends
 * within 20 s; before, neither did. A purge left unanswered is logged, and the next purge after a start deletes those
 * records too.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { runPipeline, type RunningPipeline } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { delayingSockets, kindCounts, kindEvent, readTopic, stateDir } from './helpers.js'
import { deleteRecords } from '../../protocol/messages/delete-records.js'
import { listOffsets } from '../../protocol/messages/list-offsets.js'

/** Long enough that a held request is never answered while the test runs. */
const HELD_MS = 600_000

/** Stops `pipeline`: 'stopped', or what is still going on after 20 s. */
async function stopWithin20s(pipeline: RunningPipeline): Promise<string> {
  return Promise.race([pipeline.stop().then(() => 'stopped'), sleep(20_000).then(() => 'still stopping after 20 s')])
}

describe('requests a broker accepted and never answers', () => {
  let setting: KafkajsBroker
  let pipeline: RunningPipeline | undefined

  beforeAll(async () => {
    setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-unanswered-stop' })
  })
  afterAll(async () => {
    await pipeline?.stop()
    await stopKafkajsBroker(setting)
  })

  test('a purge holds the stop for its request timeout only, and the next start purges those records', async () => {
    const lines: string[] = []
    const run = (socketFactory?: ReturnType<typeof delayingSockets>) =>
      runPipeline(kindCounts('us-events', 'us-kinds'), { applicationId: 'pu', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, partitions: 1, kafka: { socketFactory }, log: (line) => lines.push(line) })
    // Every DeleteRecords of the repartition topic held.
    const held = { count: 0 }
    pipeline = await run(delayingSockets(deleteRecords.request.apiKey, 'pu-by-kind-repartition', HELD_MS, () => ++held.count > 0))
    await setting.producer.send({ topic: 'us-events', messages: [kindEvent('d1', 'read', 1), kindEvent('d2', 'read', 2), kindEvent('d3', 'read', 25)] })
    await readTopic(setting.kafka, 'us-kinds', (r) => r.length >= 1)
    // The task committed what it read of the repartition topic, and its purge is held.
    await waitFor('a purge held', () => held.count > 0)
    expect(await stopWithin20s(pipeline)).toBe('stopped')
    pipeline = undefined
    expect(lines.filter((line) => line.includes('purg')), lines.join('\n')).toEqual([expect.stringMatching(/^task 1_0: purging pu-by-kind-repartition failed: .*(no answer|timed out).*; the next purge deletes these records too$/)])

    // Started again, the task purges at its first commit of what it read from the repartition topic.
    pipeline = await run()
    await setting.producer.send({ topic: 'us-events', messages: [kindEvent('d4', 'read', 26)] })
    // Offsets 0-2 the records before the stop and 3 their transaction's marker, 4 the new record and 5 its marker.
    const low = await waitFor('the repartition topic purged up to what was committed', async () => {
      const [offsets] = await setting.admin.fetchTopicOffsets('pu-by-kind-repartition')
      return offsets!.high === '6' && offsets!.low !== '0' ? offsets!.low : undefined
    })
    expect(low).toBe('5')
    await pipeline.stop()
    pipeline = undefined
  })

  test('a look at the source ends for idle advancement does not hold the stop', async () => {
    const held = { on: false, count: 0 }
    // Once the pipeline runs, every ListOffsets naming the windowed task's source (the repartition topic) held: its
    // group consumer sends none then, the looks of idle advancement (the partition quiet for a tick) do.
    pipeline = await runPipeline(kindCounts('us-events', 'us-kinds'), {
      applicationId: 'ul',
      bootstrapServers: setting.broker.address,
      stateDir: stateDir(),
      commitIntervalMs: 200,
      idleTimeoutMs: 1000,
      partitions: 1,
      log: () => {},
      kafka: {
        socketFactory: delayingSockets(listOffsets.request.apiKey, 'ul-by-kind-repartition', HELD_MS, () => {
          if (held.on) held.count++
          return held.on
        }),
      },
    })
    await setting.producer.send({ topic: 'us-events', messages: [kindEvent('d5', 'write', 30)] })
    const running = pipeline
    await waitFor('the pipeline running, a commit made', () => running.metrics().commits > 0)
    held.on = true
    await waitFor('a look at the source ends held', () => held.count > 0)
    expect(await stopWithin20s(pipeline)).toBe('stopped')
    pipeline = undefined
  })
})
