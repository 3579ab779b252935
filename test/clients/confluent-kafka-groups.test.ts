/**
 * librdkafka 2.0.2's consumer groups through confluent-kafka-python (Debian's python3-confluent-kafka; skipped, saying
 * why, without it) against one real broker process.
 *
 * A static member (group.instance.id, KIP-345) of a cooperative-sticky group that restarts gets its partitions back
 * without a rebalance: its JoinGroup metadata names the partitions it owns, which the new process does not know, so it
 * differs from what the old one sent, but Kafka rebalances a Stable group for a returning static member only when the
 * group would select another protocol (GroupMetadataManager.updateStaticMemberThenRebalanceOrCompleteJoin).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startConfiguredBroker, FAST_GROUPS } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { confluentKafkaMissing, fixtureAnswers } from '../helpers/confluent-kafka.js'
import { createTopic } from '../helpers/kafka.js'

const missing = confluentKafkaMissing()
if (missing !== null) console.log(`confluent-kafka-python group test skipped: ${missing}`)

interface StaticRestart {
  before: { steady: number[]; restarting: number[] }
  after: { steady: number[]; restarted: number[] }
  steadyCallbacks: [string, number[]][]
}

describe.skipIf(missing !== null)('librdkafka\'s consumer groups against one node', () => {
  let broker: BrokerProcess

  beforeAll(async () => {
    broker = await startConfiguredBroker(FAST_GROUPS)
    await createTopic(broker, 'readings', { partitions: 4 })
  })

  afterAll(async () => {
    await broker?.stop()
    broker?.cleanup()
  })

  it('a restarted static member of a cooperative-sticky group gets its partitions back; the other member sees no rebalance', async () => {
    const [restart] = await fixtureAnswers<StaticRestart>('confluent-static-member.py', [broker.address, 'readings', 'sticky'])
    expect(restart!.before.restarting.length).toBe(2)
    expect(restart!.after).toEqual({ steady: restart!.before.steady, restarted: restart!.before.restarting })
    // A rebalance, even one that moves nothing, calls librdkafka's rebalance callback (an empty incremental assign).
    expect(restart!.steadyCallbacks).toEqual([])
  })
})
