/**
 * A restore from a compacted changelog. Every commit of a task writes its changed groups and then a marker under the
 * one key `\x00position`, so compaction keeps only the newest marker: the records of earlier commits that are still
 * the latest of their groups (a key that has not changed since) lose their marker. A restore that applied a commit
 * only when its marker came after its records dropped them: a task restored on an empty state directory forgot
 * every group not written by the last commit, and counted from zero again (a trial on a three-node cluster re-emitted
 * a session window closed 26 minutes earlier, from a stale local store the restore did not bring up to date).
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { count, runPipeline, TopologyBuilder } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { readTopic, stateDir, values, type ReadRecord } from './helpers.js'

let setting: KafkajsBroker

beforeAll(async () => {
  // The log cleaner looks every 200 ms, so the changelog is compacted while the test waits.
  setting = await startKafkajsBroker({ ...FAST_GROUPS, logRetentionCheckIntervalMs: 200 }, { clientId: 'compacted-restore' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

const changelog = 'compacted-restore-cr-in-store-changelog'

/** How many commit markers the changelog holds now. */
async function markers(): Promise<number> {
  const records = await readTopic(setting.kafka, changelog, (r) => r.length > 0)
  return records.filter((r) => r.key === '\x00position').length
}

test('exactly_once: a task restored from a compacted changelog keeps the groups that earlier commits wrote last', async () => {
  await setting.admin.createTopics({
    topics: [
      { topic: 'cr-in', numPartitions: 1 },
      { topic: changelog, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }, { name: 'min.cleanable.dirty.ratio', value: '0.01' }] },
    ],
  })
  const b = new TopologyBuilder()
  b.stream<{ n: number }>('cr-in').groupByKey().aggregate({ count: count() }, { name: 'counts' }).to('cr-out')
  const topology = b.build()
  const options = { applicationId: 'compacted-restore', bootstrapServers: setting.broker.address, commitIntervalMs: 100 }
  const send = (key: string) => setting.producer.send({ topic: 'cr-in', messages: [{ key, value: JSON.stringify({ n: 1 }) }] })
  const counted = (key: string, n: number) => (r: ReadRecord[]) => values(r).some((v) => v.key === key && v.count === n)

  const first = await runPipeline(topology, { ...options, stateDir: stateDir() })
  try {
    await send('a')
    await readTopic(setting.kafka, 'cr-out', counted('a', 1))
    // Commits that change only b: each writes b and a marker, so a's record is left behind an older marker.
    for (let n = 1; n <= 3; n++) {
      await send('b')
      await readTopic(setting.kafka, 'cr-out', counted('b', n))
    }
  } finally {
    await first.stop()
  }
  // Compacted: one marker left, the last commit's (b's), and a's record without its own.
  await expect.poll(markers, { timeout: 30_000, interval: 500 }).toBe(1)

  // Another instance, on an empty state directory, restores the task from the changelog alone.
  const second = await runPipeline(topology, { ...options, stateDir: stateDir() })
  try {
    await send('a')
    const out = values(await readTopic(setting.kafka, 'cr-out', (r) => values(r).filter((v) => v.key === 'a').length >= 2))
    expect(out.filter((v) => v.key === 'a').map((v) => v.count)).toEqual([1, 2])
  } finally {
    await second.stop()
  }
})
