/**
 * The first retention pass after a node starts comes 30 s after the start (Kafka's LogManager schedules
 * kafka-log-retention with InitialTaskDelayMs), not one whole log.retention.check.interval.ms (5 minutes by default)
 * later: a node restarted more often than that (a rolling restart of a `brook dev` cluster, a node killed -9 and
 * started again) still applies its topics' retention.ms.
 */
import { describe, expect, it } from 'vitest'
import { clusterPerTest, QUICK_CLUSTER_ARGS } from '../../helpers/cluster.js'
import { createTopic, listOffset, producePartition, withClient } from '../../helpers/kafka.js'
import { handBuiltBatch } from '../../helpers/wire.js'
import { waitFor } from '../../helpers/wait.js'

const EARLIEST = -2n

describe('retention after a restart, at the default log.retention.check.interval.ms', () => {
  const { start } = clusterPerTest()

  it('moves the log start past expired batches within 30 s of the start, not 5 minutes', async () => {
    const cluster = await start({ nodes: 1, extraArgs: QUICK_CLUSTER_ARGS })
    const node = cluster.nodes.get(1)!
    await createTopic(node, 'expiring', { configs: { 'retention.ms': '60000' } })
    const tenMinutesAgo = BigInt(Date.now() - 600_000)
    // The new partition's leader takes it up a moment after CreateTopics answers (NOT_LEADER_OR_FOLLOWER until then).
    await waitFor('the batch produced', async () => {
      const answer = await withClient(node, (client) => producePartition(client, 'expiring', 0, handBuiltBatch(['a', 'b', 'c'], { timestamp: tenMinutesAgo })))
      return answer.errorCode === 0
    })

    await node.kill()
    const restarted = await cluster.restart(1)
    const earliest = async (): Promise<bigint | false> => {
      const offset = await withClient(restarted, (client) => listOffset(client, 'expiring', 0, EARLIEST))
      return offset.errorCode === 0 && offset.offset
    }
    // Well within the 5 minutes a pass one interval after the start would take.
    await waitFor('the first retention pass after the restart', async () => (await earliest()) === 3n, { timeoutMs: 150_000 })
    expect(restarted.output()).toContain('expiring-0: retention moved the log start to 3')
  }, 240_000)
})
