/**
 * `brook produce` on a three-node cluster whose followers stall, the trial that found it writing a record twice: an
 * RF=3 topic with min.insync.replicas=2, its two followers paused with SIGSTOP, so the leader writes the batch but
 * cannot get it replicated within the Produce timeout (15 s) and answers REQUEST_TIMED_OUT; the producer sends the
 * batch again, and once the followers resume (SIGCONT) the leader answers the retry as a duplicate of the batch it
 * holds. The record is in the log once (without idempotence, once per attempt the leader appended). Brokers are
 * fenced only after 60 s without a heartbeat here, so that the pause moves no leadership and the retries all meet
 * the leader that wrote the batch.
 */
import { describe, expect, it } from 'vitest'
import { useCluster } from '../helpers/cluster.js'
import { partitionsOf } from '../helpers/kafka.js'
import { waitFor } from '../helpers/wait.js'
import { brook, lines } from './run-brook.js'

/** The console producer's Produce timeoutMs (DEFAULT_PRODUCER_OPTIONS), which the pause must outlast. */
const PRODUCE_TIMEOUT_MS = 15_000

describe('brook produce while the followers of its partition stall', () => {
  const started = useCluster({ nodes: 3, extraArgs: ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '60000'] })

  it('writes a batch answered REQUEST_TIMED_OUT, and sent again, once', async () => {
    const cluster = started()
    const all = ['--bootstrap-server', cluster.nodeIds.map((id) => cluster.nodes.get(id)!.address).join(',')]
    const created = await brook(['topics', 'create', 'stalled', '--partitions', '1', '--replication-factor', '3', '--config', 'min.insync.replicas=2', ...all])
    expect(created.code, created.stderr).toBe(0)
    const { leaderId } = await waitFor('every replica of stalled in the ISR', async () => {
      const [partition] = await partitionsOf(cluster.nodes.get(1)!, 'stalled')
      return partition?.leaderId !== undefined && partition.leaderId >= 0 && partition.isrNodes.length === 3 && partition
    }, { timeoutMs: 60_000 })
    const leader = ['--bootstrap-server', cluster.nodes.get(leaderId)!.address]
    // The leader takes its block of producer ids from the controller now, while there is a quorum to ask.
    const before = await brook(['produce', 'stalled', ...leader], { input: 'before\n' })
    expect(before.code, before.stderr).toBe(0)

    const followers = cluster.nodeIds.filter((id) => id !== leaderId).map((id) => cluster.nodes.get(id)!.child)
    for (const follower of followers) follower.kill('SIGSTOP')
    let produced: Awaited<ReturnType<typeof brook>> | undefined
    try {
      const producing = brook(['produce', 'stalled', ...leader], { input: 'once\n' }).then((result) => (produced = result))
      await new Promise((resolve) => setTimeout(resolve, PRODUCE_TIMEOUT_MS + 2_000))
      // Still waiting: the first attempt was answered REQUEST_TIMED_OUT, and a retry waits for the followers.
      expect(produced).toBeUndefined()
      for (const follower of followers) follower.kill('SIGCONT')
      await producing
    } finally {
      for (const follower of followers) follower.kill('SIGCONT')
    }
    expect(produced!.code, produced!.stderr).toBe(0)
    expect(produced!.stderr).toBe('produced 1 record in 1 batch to stalled (partition 0: 1)\n')

    const consumed = await brook(['consume', 'stalled', '--from-beginning', '--timeout-ms', '1000', ...leader])
    expect(consumed.code, consumed.stderr).toBe(0)
    expect(lines(consumed.stdout)).toEqual(['before', 'once'])
  }, 90_000)
})
