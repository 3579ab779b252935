/**
 * What waits at a leader when leadership moves away, on a three-node cluster of real processes. Kafka completes it at
 * once (ReplicaManager.completeDelayedOperationsWhenNotPartitionLeader, when a partition becomes a follower or is
 * stopped): a consumer's Fetch parked at the old leader with a 60 s maxWaitMs is answered as soon as the node stops
 * leading, well before that maxWaitMs could have run out,
 *
 * - FENCED_LEADER_EPOCH when a preferred leader election makes another replica leader (the old leader follows, in a
 *   later leader epoch than the fetch names: DelayedFetch.tryComplete checks the epoch first);
 * - an error saying it no longer leads when a reassignment (KIP-455) takes the leader off the partition. Kafka answers
 *   NOT_LEADER_OR_FOLLOWER (the partition is no longer hosted: ReplicaManager.getPartitionOrException); Brook
 *   answers FENCED_LEADER_EPOCH, since its local partition still takes the image's leader epoch, which moved with
 *   the new leader. Either sends the consumer to the new leader; what matters here is that it comes at once.
 *
 * And an acks=all Produce waiting at the leader for a follower that is paused (SIGSTOP) is answered
 * NOT_LEADER_OR_FOLLOWER as soon as a preferred leader election moves leadership away (Kafka completes the produce
 * purgatory there too), well before its 60 s timeout. That cluster fences a silent node only after 60 s and keeps a
 * lagging follower in the ISR for 120 s, so nothing but the move can end the wait.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { QUICK_CLUSTER_ARGS, useCluster } from '../../helpers/cluster.js'
import { connect, fetchPartition, partitionsOf, producePartition } from '../../helpers/kafka.js'
import { handBuiltBatch } from '../../helpers/wire.js'
import { waitFor } from '../../helpers/wait.js'
import { brook } from '../../cli/run-brook.js'
import { ErrorCode } from '../../../protocol/errors.js'
import type { FetchResponsePartitionData } from '../../../protocol/messages/fetch.js'
import type { MetadataResponsePartition } from '../../../protocol/messages/metadata.js'

/** Far longer than the test waits for the answer: an answer seen in time came before the fetch's maxWaitMs. */
const MAX_WAIT_MS = 60_000
const ANSWER_WITHIN_MS = 20_000

describe('a consumer fetch parked at a leader that stops leading', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: [...QUICK_CLUSTER_ARGS] })

  /** Creates `topic` on replicas [1, 2, 3] and waits until node 1 leads it with every replica in the ISR. */
  async function ledByNode1(topic: string): Promise<MetadataResponsePartition> {
    const admin = cluster().kafka('leader-moves').admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic, replicaAssignment: [{ partition: 0, replicas: [1, 2, 3] }] }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
    return waitFor(`${topic} led by node 1 with a full ISR`, async () => {
      const [partition] = await partitionsOf(cluster().nodes.get(1)!, topic)
      return partition?.leaderId === 1 && partition.isrNodes.length === 3 && partition
    })
  }

  /**
   * Parks a Fetch of `topic` (empty, so nothing to answer with) at node 1 in its leader epoch, runs `move`, and returns
   * the fetch's answer if it came within ANSWER_WITHIN_MS, else 'still parked'.
   */
  async function parkThenMove(topic: string, leaderEpoch: number, move: () => Promise<void>): Promise<FetchResponsePartitionData | 'still parked'> {
    const client = await connect(cluster().nodes.get(1)!, { timeoutMs: 2 * MAX_WAIT_MS })
    try {
      const parked = fetchPartition(client, { topic, partition: 0, offset: 0n, maxWaitMs: MAX_WAIT_MS, minBytes: 1, currentLeaderEpoch: leaderEpoch })
      // Lets the fetch reach the node; one arriving after the move is answered at once anyway.
      await sleep(500)
      await move()
      return await Promise.race([parked, sleep(ANSWER_WITHIN_MS).then(() => 'still parked' as const)])
    } finally {
      client.close()
    }
  }

  it('is answered FENCED_LEADER_EPOCH at once when a preferred leader election moves leadership to another node', async () => {
    const topic = 'elected-away'
    const before = await ledByNode1(topic)
    const bootstrap = `${cluster().host(2)}:${cluster().nodes.get(2)!.port}`
    const answer = await parkThenMove(topic, before.leaderEpoch!, async () => {
      // The same replicas, node 2 first: node 2 becomes the preferred leader, node 1 stays a follower.
      const admin = cluster().kafka('leader-moves-reassign').admin()
      await admin.connect()
      try {
        await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: 0, replicas: [2, 1, 3] }] }] })
      } finally {
        await admin.disconnect()
      }
      await waitFor('the new replica order applied', async () => (await partitionsOf(cluster().nodes.get(2)!, topic))[0]?.replicaNodes[0] === 2)
      const elected = await brook(['topics', 'elect-leaders', topic, '--bootstrap-server', bootstrap])
      expect(elected.code, elected.stderr).toBe(0)
    })
    expect(answer).not.toBe('still parked')
    expect((answer as FetchResponsePartitionData).errorCode).toBe(ErrorCode.FENCED_LEADER_EPOCH)
    const [after] = await partitionsOf(cluster().nodes.get(2)!, topic)
    expect(after!.leaderId).toBe(2)
  })

  it('is answered at once when a reassignment takes the leader off the partition', async () => {
    const topic = 'reassigned-away'
    const before = await ledByNode1(topic)
    const answer = await parkThenMove(topic, before.leaderEpoch!, async () => {
      const admin = cluster().kafka('leader-moves-reassign').admin()
      await admin.connect()
      try {
        await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: 0, replicas: [2, 3] }] }] })
      } finally {
        await admin.disconnect()
      }
    })
    expect(answer).not.toBe('still parked')
    expect([ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.FENCED_LEADER_EPOCH]).toContain((answer as FetchResponsePartitionData).errorCode)
  })
})

describe('an acks=all produce waiting at a leader that stops leading', () => {
  const cluster = useCluster({
    nodes: 3,
    extraArgs: ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '60000', '--replica-lag-time-max-ms', '120000'],
  })

  it('is answered NOT_LEADER_OR_FOLLOWER at once when a preferred leader election moves leadership to another node', async () => {
    const topic = 'acks-all-elected-away'
    // The paused follower must not be the active controller, which has to commit the election.
    const controller = (await cluster().status(1)).leaderId
    const paused = cluster().nodeIds.find((id) => id !== controller)!
    const [leader, successor] = cluster().nodeIds.filter((id) => id !== paused) as [number, number]
    const admin = cluster().kafka('leader-moves-produce').admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic, replicaAssignment: [{ partition: 0, replicas: [leader, successor, paused] }] }], waitForLeaders: true })
      await waitFor(`${topic} led by node ${leader} with a full ISR`, async () => {
        const [partition] = await partitionsOf(cluster().nodes.get(leader)!, topic)
        return partition?.leaderId === leader && partition.isrNodes.length === 3
      })
      // The successor first: the preferred replica, which the election below makes leader (nothing elects it before).
      await admin.alterPartitionReassignments({ topics: [{ topic, partitionAssignment: [{ partition: 0, replicas: [successor, leader, paused] }] }] })
      await waitFor('the new replica order applied', async () => (await partitionsOf(cluster().nodes.get(successor)!, topic))[0]?.replicaNodes[0] === successor)
      const client = await connect(cluster().nodes.get(leader)!, { timeoutMs: 2 * MAX_WAIT_MS })
      const pausedNode = cluster().nodes.get(paused)!
      pausedNode.child.kill('SIGSTOP')
      try {
        const waiting = producePartition(client, topic, 0, handBuiltBatch(['waits for the paused follower']), { acks: -1, timeoutMs: MAX_WAIT_MS })
        // Lets the produce reach the leader and append; one arriving after the move is refused at once anyway.
        await sleep(500)
        const elected = await brook(['topics', 'elect-leaders', topic, '--bootstrap-server', `${cluster().host(successor)}:${cluster().nodes.get(successor)!.port}`])
        expect(elected.code, elected.stderr).toBe(0)
        const answer = await Promise.race([waiting, sleep(ANSWER_WITHIN_MS).then(() => 'still waiting' as const)])
        expect(answer).not.toBe('still waiting')
        expect((answer as { errorCode: number }).errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER)
      } finally {
        pausedNode.child.kill('SIGCONT')
        client.close()
      }
      const [after] = await partitionsOf(cluster().nodes.get(successor)!, topic)
      expect(after).toMatchObject({ errorCode: ErrorCode.NONE, leaderId: successor })
    } finally {
      await admin.disconnect()
    }
  })
})
