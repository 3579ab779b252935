/**
 * Compaction of a log of very many small batches, in one pass: 140,000 single-record batches of 10 keys, written to
 * a topic with cleanup.policy=delete and then switched to compact, so that the cleaner's next pass (every 200 ms,
 * log.retention.check.interval.ms) finds every batch dirty and removes all but the latest of each key.
 *
 * The pass used to hand all 139,990 removals to the log in one rewrite (its chunks were bounded by rewritten bytes,
 * and a removed batch has none), whose `push(...changes)` threw RangeError (Maximum call stack size exceeded) past
 * about 125,000 changes: the partition was marked uncleanable and kept every record until the node restarted. Seen
 * on a three-node cluster as a compacted partition that never shrank (and a node silent long enough to be fenced).
 * Kafka's cleaner compacts such a log like any other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigResourceTypes, type Admin, type Producer } from 'kafkajs'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { startKafkajsBroker, stopKafkajsBroker } from '../helpers/kafkajs-broker.js'
import { kcat } from '../helpers/kcat.js'
import { waitFor } from '../helpers/wait.js'

const TOPIC = 'many-small-batches'
const RECORDS = 140_000
const KEYS = 10

describe('compaction of a log of many single-record batches', () => {
  let broker: BrokerProcess
  let admin: Admin
  let producer: Producer

  beforeAll(async () => {
    ;({ broker, admin, producer } = await startKafkajsBroker({ ...FAST_GROUPS, logRetentionCheckIntervalMs: 200 }, { clientId: 'many-batches-test' }))
  })
  afterAll(async () => {
    // Also checks that the broker logged no error (a failed cleaning is logged as one).
    await stopKafkajsBroker({ broker, admin, producer })
  })

  /** `offset key value` of every record kcat reads from the beginning until it reaches the end. */
  async function readAll(): Promise<string[]> {
    const { stdout } = await kcat(['-b', broker.address, '-C', '-t', TOPIC, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%o %k %s\n'], { timeoutMs: 120_000 })
    return stdout.split('\n').filter((line) => line !== '')
  }

  it('keeps the latest record of each key, at its offset, after one pass over 140,000 batches', async () => {
    await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'delete' }] }] })
    // One record per batch: librdkafka sends each message alone with batch.num.messages=1.
    const input = Array.from({ length: RECORDS }, (_, i) => `k${i % KEYS}:v${i}`).join('\n') + '\n'
    await kcat(['-b', broker.address, '-P', '-t', TOPIC, '-p', '0', '-K', ':', '-X', 'batch.num.messages=1', '-X', 'linger.ms=0', '-X', 'queue.buffering.max.messages=200000'], { input, timeoutMs: 240_000 })
    const before = await readAll()
    expect(before).toHaveLength(RECORDS)

    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: TOPIC, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
    })
    // The last batch stays uncleanable (the active end of the log, as Kafka's active segment), so its key also keeps
    // its latest record below it: the latest of each key remain at their offsets, with at most one more.
    const latest = Array.from({ length: KEYS }, (_, k) => RECORDS - KEYS + k).map((i) => `${i} k${i % KEYS} v${i}`)
    let after: string[] = []
    await waitFor('the log compacted to about one record per key', async () => {
      after = await readAll()
      return after.length <= KEYS + 1
    }, { timeoutMs: 150_000, intervalMs: 1000 })
    expect(after.slice(-KEYS)).toEqual(latest)
    expect(after.length).toBeGreaterThanOrEqual(KEYS)
  }, 600_000)
})
