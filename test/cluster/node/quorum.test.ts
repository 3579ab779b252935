/**
 * The controller quorum in real node processes: three `brook start` nodes with --controller-quorum-voters elect a
 * leader over their controller listeners, register with the active controller and heartbeat to it; the quorum
 * survives kill -9 of its leader, takes the killed node back from its data directory, and is not disturbed by a
 * follower that was stopped (SIGSTOP) past the fetch timeout. Everything is observed the way a user would, through
 * DescribeQuorum and DescribeCluster (`brook cluster status`), by polling conditions.
 *
 * Sessions are shortened (broker.session.timeout.ms 3000, heartbeats every 500 ms) so that fencing is seen quickly,
 * and every member snapshots after each batch, so that a returning node catches up through FetchSnapshot; the quorum
 * keeps Kafka's timings (fetch timeout 2000 ms).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type TestCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { brook, expectOneLineError } from '../../cli/run-brook.js'
import { newClusterId } from '../../../broker/cluster/voters.js'
import type { ClusterStatus } from '../../../client/cluster-admin.js'
import { KafkaClient } from '../../../client/kafka-client.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { vote, type VoteRequest, type VoteResponse } from '../../../protocol/messages/vote.js'
import { fetch, type FetchRequest, type FetchResponse } from '../../../protocol/messages/fetch.js'
import { describeQuorum, type DescribeQuorumRequest, type DescribeQuorumResponse } from '../../../protocol/messages/describe-quorum.js'
import { beginQuorumEpoch, type BeginQuorumEpochRequest, type BeginQuorumEpochResponse } from '../../../protocol/messages/begin-quorum-epoch.js'
import { endQuorumEpoch, type EndQuorumEpochRequest, type EndQuorumEpochResponse } from '../../../protocol/messages/end-quorum-epoch.js'
import { fetchSnapshot, type FetchSnapshotRequest, type FetchSnapshotResponse } from '../../../protocol/messages/fetch-snapshot.js'
import { toWireRequest } from '../../../broker/cluster/raft-wire.js'

const SESSION_TIMEOUT_MS = 3000

/** Every voter holds the leader's whole metadata log, and exactly `live` are registered unfenced brokers. */
function settled(status: ClusterStatus, live: readonly number[]): boolean {
  const leaderEnd = status.voters.find((voter) => voter.replicaId === status.leaderId)?.logEndOffset
  return (
    status.leaderId >= 0 &&
    status.controllerId === status.leaderId &&
    status.highWatermark === leaderEnd &&
    status.voters.filter((voter) => live.includes(voter.replicaId)).every((voter) => voter.lag === 0n) &&
    JSON.stringify(status.liveBrokers.map((broker) => broker.brokerId)) === JSON.stringify(live)
  )
}

describe('a three-node cluster', () => {
  let cluster: TestCluster

  beforeAll(async () => {
    cluster = await startCluster({
      nodes: 3,
      extraArgs: [
        '--broker-session-timeout-ms', String(SESSION_TIMEOUT_MS),
        '--broker-heartbeat-interval-ms', '500',
        // Every member snapshots after each batch it applies and drops the log below: a node that returns behind the
        // leader's log start has to fetch the leader's snapshot (FetchSnapshot) to catch up.
        '--metadata-log-max-record-bytes-between-snapshots', '1',
      ],
    })
  })
  afterAll(async () => {
    await cluster?.destroy()
  })

  it('elects a leader, and every node registers and is unfenced', async () => {
    const status = await waitFor('a leader and three unfenced brokers', async () => {
      const seen = await cluster.status(1)
      return settled(seen, [1, 2, 3]) && seen
    })
    expect(status.voters.map((voter) => voter.replicaId)).toEqual([1, 2, 3])
    expect(status.clusterId).toBe(cluster.clusterId)
    // Every node tells the same story, the followers by forwarding DescribeQuorum to the leader.
    for (const id of [2, 3]) expect((await cluster.status(id)).leaderId).toBe(status.leaderId)
    for (const id of cluster.nodeIds) expect(cluster.nodes.get(id)!.output()).toMatch(/unfenced by the controller/)

    const shown = await brook(['cluster', 'status', '--bootstrap-server', cluster.nodes.get(2)!.address])
    expect(shown.code).toBe(0)
    expect(shown.stdout).toContain(`ClusterId: ${cluster.clusterId}`)
    expect(shown.stdout).toContain(`Controller: ${status.leaderId}`)
    expect(shown.stdout).toMatch(new RegExp(`LeaderId: ${status.leaderId}\\tLeaderEpoch: \\d+\\tHighWatermark: \\d+`))
    expect(shown.stdout).toMatch(/^NODE +QUORUM +LOG-END-OFFSET +LAG +BROKER +ENDPOINT$/m)
    for (const id of cluster.nodeIds) {
      // The endpoint each broker registered: the address Metadata gives clients.
      const endpoint = cluster.nodes.get(id)!.address.replaceAll('.', '\\.')
      expect(shown.stdout).toMatch(new RegExp(`^${id} +${id === status.leaderId ? 'leader' : 'follower'} +\\d+ +\\d+ +unfenced +${endpoint}$`, 'm'))
    }

    // Pointed at a controller listener (a follower's answers DescribeQuorum NOT_LEADER_OR_FOLLOWER, the leader's has
    // no DescribeCluster), brook says what the port is rather than that the quorum has no leader.
    for (const id of cluster.nodeIds) {
      const address = `127.0.0.1:${cluster.controllerPort(id)}`
      const atController = await brook(['cluster', 'status', '--bootstrap-server', address])
      expectOneLineError(atController, `the node at ${address} cannot say: it is a controller listener, which serves the controller quorum only: give a node's client port`)
    }
    const topics = await brook(['topics', 'list', '--bootstrap-server', `127.0.0.1:${cluster.controllerPort(1)}`])
    expectOneLineError(topics, "it is a controller listener, which serves the controller quorum only: give a node's client port")
  })

  it('answers bad quorum requests on the controller listener with Kafka error codes, and keeps its leader and epoch', async () => {
    const before = await cluster.status(1)
    const client = await KafkaClient.connect('127.0.0.1', cluster.controllerPort(1), { clientId: 'bad-voter' })
    try {
      const wire = toWireRequest({ type: 'VoteRequest', clusterId: newClusterId(), voterId: 1, candidateEpoch: before.leaderEpoch + 5, candidateId: 2, lastOffsetEpoch: 99, lastOffset: 1000n, preVote: false })
      const otherCluster = await client.request<VoteRequest, VoteResponse>(vote, 2, wire.body as VoteRequest)
      expect(otherCluster.errorCode).toBe(ErrorCode.INCONSISTENT_CLUSTER_ID)
      const noPartition = await client.request<VoteRequest, VoteResponse>(vote, 2, { ...(wire.body as VoteRequest), topics: [] })
      expect(noPartition.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)
      const fetchWire = toWireRequest({ type: 'FetchRequest', clusterId: cluster.clusterId, replicaId: 2, maxWaitMs: 0, maxBytes: 1024, currentLeaderEpoch: -1, fetchOffset: 0n, lastFetchedEpoch: -1, logStartOffset: 0n })
      const body = fetchWire.body as FetchRequest
      const otherTopic = await client.request<FetchRequest, FetchResponse>(fetch, 17, { ...body, topics: [{ ...body.topics[0]!, topicId: '00000000-0000-0000-0000-000000000042' }] })
      expect(otherTopic.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)
      // A fetch with no replica id (a consumer's), and a vote in the receiving node's own name.
      const anonymous = await client.request<FetchRequest, FetchResponse>(fetch, 17, { ...body, replicaState: { replicaId: -1, replicaEpoch: -1n } })
      expect(anonymous.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)
      const ownWire = toWireRequest({ type: 'VoteRequest', clusterId: cluster.clusterId, voterId: 1, candidateEpoch: before.leaderEpoch + 5, candidateId: 1, lastOffsetEpoch: 99, lastOffset: 1000n, preVote: false })
      const ownName = await client.request<VoteRequest, VoteResponse>(vote, 2, ownWire.body as VoteRequest)
      expect(ownName.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)
      // A fetch from before the log's start, or waiting a negative time (Kafka's KafkaRaftClient.handleFetchRequest).
      const negativeOffset = await client.request<FetchRequest, FetchResponse>(fetch, 17, { ...body, topics: [{ ...body.topics[0]!, partitions: [{ ...body.topics[0]!.partitions[0]!, fetchOffset: -5n }] }] })
      expect(negativeOffset.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)
      const negativeWait = await client.request<FetchRequest, FetchResponse>(fetch, 17, { ...body, maxWaitMs: -1 })
      expect(negativeWait.responses[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)

      // Requests that name another topic than __cluster_metadata, another partition than 0, or more than one are not
      // about this quorum (Kafka's RaftUtil.hasValidTopicPartition): INVALID_REQUEST, however valid the vote, the new
      // leader or the snapshot they carry would be on __cluster_metadata-0.
      const later = before.leaderEpoch + 5
      const voteBody = toWireRequest({ type: 'VoteRequest', clusterId: cluster.clusterId, voterId: 1, candidateEpoch: later, candidateId: 2, lastOffsetEpoch: later, lastOffset: 1n << 40n, preVote: false }).body as VoteRequest
      const [metadataVote] = voteBody.topics
      const voteOnOtherTopic = await client.request<VoteRequest, VoteResponse>(vote, 2, { ...voteBody, topics: [{ ...metadataVote!, topicName: 'w' }] })
      expect(voteOnOtherTopic.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)
      const voteOnTwoPartitions = await client.request<VoteRequest, VoteResponse>(vote, 2, {
        ...voteBody,
        topics: [{ ...metadataVote!, partitions: [metadataVote!.partitions[0]!, { ...metadataVote!.partitions[0]!, partitionIndex: 1 }] }],
      })
      expect(voteOnTwoPartitions.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)
      const beginBody = toWireRequest({ type: 'BeginQuorumEpochRequest', clusterId: cluster.clusterId, voterId: 1, leaderId: 2, leaderEpoch: later }).body as BeginQuorumEpochRequest
      const [metadataBegin] = beginBody.topics
      const beginOnPartitionOne = await client.request<BeginQuorumEpochRequest, BeginQuorumEpochResponse>(beginQuorumEpoch, 1, {
        ...beginBody,
        topics: [{ ...metadataBegin!, partitions: [{ ...metadataBegin!.partitions[0]!, partitionIndex: 1 }] }],
      })
      expect(beginOnPartitionOne.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)
      const endBody = toWireRequest({ type: 'EndQuorumEpochRequest', clusterId: cluster.clusterId, leaderId: 2, leaderEpoch: later, preferredSuccessors: [1] }).body as EndQuorumEpochRequest
      const endOnTwoTopics = await client.request<EndQuorumEpochRequest, EndQuorumEpochResponse>(endQuorumEpoch, 1, { ...endBody, topics: [endBody.topics[0]!, { ...endBody.topics[0]!, topicName: 'w' }] })
      expect(endOnTwoTopics.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)
      const snapshotBody = toWireRequest({ type: 'FetchSnapshotRequest', clusterId: cluster.clusterId, replicaId: 2, maxBytes: 1024, currentLeaderEpoch: before.leaderEpoch, snapshotId: { endOffset: 0n, epoch: 0 }, position: 0n }).body as FetchSnapshotRequest
      const snapshotOfOtherTopic = await client.request<FetchSnapshotRequest, FetchSnapshotResponse>(fetchSnapshot, 1, { ...snapshotBody, topics: [{ ...snapshotBody.topics[0]!, name: 'w' }] })
      expect(snapshotOfOtherTopic.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)
    } finally {
      client.close()
    }
    const after = await cluster.status(1)
    expect([after.leaderId, after.leaderEpoch]).toEqual([before.leaderId, before.leaderEpoch])
  })

  it('answers DescribeQuorum for __cluster_metadata partition 0 only, UNKNOWN_TOPIC_OR_PARTITION for anything else, on both listeners', async () => {
    const leaderId = (await cluster.status(1)).leaderId
    for (const port of [cluster.nodes.get(2)!.port, cluster.controllerPort(leaderId)]) {
      const client = await KafkaClient.connect('127.0.0.1', port, { clientId: 'describe-quorum' })
      try {
        const ask = (topics: DescribeQuorumRequest['topics']) => client.request<DescribeQuorumRequest, DescribeQuorumResponse>(describeQuorum, 2, { topics })
        const metadataLog = await ask([{ topicName: '__cluster_metadata', partitions: [{ partitionIndex: 0 }] }])
        expect(metadataLog.topics[0]!.partitions[0]).toMatchObject({ partitionIndex: 0, errorCode: ErrorCode.NONE, leaderId })
        // Kafka's KafkaRaftClient answers each partition named with UNKNOWN_TOPIC_OR_PARTITION unless the request names
        // exactly the metadata log's one partition.
        const wrong = [
          [{ topicName: 'readings', partitions: [{ partitionIndex: 0 }] }],
          [{ topicName: '__cluster_metadata', partitions: [{ partitionIndex: 1 }] }],
          [{ topicName: '__cluster_metadata', partitions: [{ partitionIndex: 0 }, { partitionIndex: 1 }] }],
          [{ topicName: '__cluster_metadata', partitions: [{ partitionIndex: 0 }] }, { topicName: 'readings', partitions: [{ partitionIndex: 3 }] }],
        ]
        for (const topics of wrong) {
          const answer = await ask(topics)
          expect(answer.errorCode).toBe(ErrorCode.NONE)
          expect(answer.topics.map((t) => [t.topicName, t.partitions.map((p) => [p.partitionIndex, p.errorCode])])).toEqual(
            topics.map((t) => [t.topicName, t.partitions.map((p) => [p.partitionIndex, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION])]),
          )
        }
      } finally {
        client.close()
      }
    }
  })

  it('names every voter and its controller listener in DescribeQuorum v2 Nodes, as Kafka\'s leader does, on both listeners', async () => {
    // Kafka's RaftUtil.singletonDescribeQuorumResponse adds a Node per voter with its listeners from v2 on, which
    // Admin.describeMetadataQuorum turns into QuorumInfo.nodes (kafka-metadata-quorum's voter endpoints).
    const leaderId = (await cluster.status(1)).leaderId
    const expected = [1, 2, 3].map((id) => ({ nodeId: id, listeners: [{ name: 'CONTROLLER', host: '127.0.0.1', port: cluster.controllerPort(id) }] }))
    for (const port of [cluster.nodes.get(2)!.port, cluster.controllerPort(leaderId)]) {
      const client = await KafkaClient.connect('127.0.0.1', port, { clientId: 'describe-quorum-nodes' })
      try {
        const answer = await client.request<DescribeQuorumRequest, DescribeQuorumResponse>(describeQuorum, 2, {
          topics: [{ topicName: '__cluster_metadata', partitions: [{ partitionIndex: 0 }] }],
        })
        expect(answer.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE)
        expect([...(answer.nodes ?? [])].sort((a, b) => a.nodeId - b.nodeId)).toEqual(expected)
      } finally {
        client.close()
      }
    }
  })

  it('elects another leader when the active controller is killed, fences it, and takes it back from its data directory', async () => {
    const before = await cluster.status(1)
    const killed = before.leaderId
    const killedEndOffset = before.voters.find((voter) => voter.replicaId === killed)!.logEndOffset
    const survivors = cluster.nodeIds.filter((id) => id !== killed)
    await cluster.nodes.get(killed)!.kill()

    // A new leader in a later epoch, which fences the dead node once its session expires; the survivors keep their
    // sessions with the new controller by heartbeating to it.
    const after = await waitFor('a new leader that fenced the killed node', async () => {
      const seen = await cluster.status(survivors[0]!)
      return seen.leaderId !== killed && settled(seen, survivors) && seen
    })
    expect(after.leaderEpoch).toBeGreaterThan(before.leaderEpoch)
    expect(survivors).toContain(after.leaderId)
    for (const id of survivors) expect(cluster.nodes.get(id)!.output()).toContain(`controller quorum epoch ${after.leaderEpoch}: `)

    // Back on its data directory: it rejoins, catches up to the leader's log end (through the leader's snapshot, as
    // the leader no longer holds the batches after the killed node's end) and is unfenced again.
    const returned = await cluster.restart(killed)
    const rejoined = await waitFor('the killed node caught up and unfenced', async () => {
      const seen = await cluster.status(killed)
      return settled(seen, cluster.nodeIds) && seen
    })
    const leaderEnd = rejoined.voters.find((voter) => voter.replicaId === rejoined.leaderId)!.logEndOffset
    expect(rejoined.voters.find((voter) => voter.replicaId === killed)!.logEndOffset).toBe(leaderEnd)
    expect(rejoined.leaderEpoch).toBe(after.leaderEpoch)
    expect(returned.output()).toContain(`cluster ${cluster.clusterId}`)
    const restored = [...returned.output().matchAll(/metadata image restored from the snapshot ending at offset (\d+)/g)].map((match) => BigInt(match[1]!))
    expect(restored.some((endOffset) => endOffset > killedEndOffset)).toBe(true)
  })

  it('keeps its leader and epoch when a stopped follower returns (pre-vote and check-quorum)', async () => {
    const before = await waitFor('a settled cluster', async () => {
      const seen = await cluster.status(1)
      return settled(seen, cluster.nodeIds) && seen
    })
    const follower = cluster.nodeIds.find((id) => id !== before.leaderId)!
    const observer = cluster.nodeIds.find((id) => id !== before.leaderId && id !== follower)!
    const stopped = cluster.nodes.get(follower)!
    stopped.child.kill('SIGSTOP')
    try {
      // Fenced: it has been silent for the session timeout, longer than the quorum's fetch timeout (2000 ms).
      await waitFor('the stopped follower fenced', async () => {
        const seen = await cluster.status(observer)
        return !seen.liveBrokers.some((broker) => broker.brokerId === follower) && seen
      })
    } finally {
      stopped.child.kill('SIGCONT')
    }
    const after = await waitFor('the follower back and unfenced', async () => {
      const seen = await cluster.status(follower)
      return settled(seen, cluster.nodeIds) && seen
    })
    expect(after.leaderId).toBe(before.leaderId)
    expect(after.leaderEpoch).toBe(before.leaderEpoch)
    // The controller said why it fenced the node (Kafka: "Fencing broker 3 because its session has timed out"), and
    // the node, whose next heartbeat was answered unfenced, said that it will have been fenced.
    expect(cluster.nodes.get(before.leaderId)!.output()).toMatch(new RegExp(` INFO \\[node ${before.leaderId}\\] fencing broker ${follower}: no heartbeat for \\d+ ms \\(broker\\.session\\.timeout\\.ms \\d+\\)\\n`))
    expect(stopped.output()).toMatch(new RegExp(` WARN \\[node ${follower}\\] heartbeats reach the controller \\(node ${before.leaderId}\\) again after \\d+ ms without one, longer than broker\\.session\\.timeout\\.ms \\(\\d+ ms\\): the controller will have fenced this node meanwhile`))
  })

  it('refuses to start a node on another cluster\'s data directory, in one line', async () => {
    const id = cluster.nodeIds[2]!
    const node = cluster.nodes.get(id)!
    await node.stop()
    const otherCluster = newClusterId()
    const args = cluster.args(id).map((arg) => arg.replace(cluster.clusterId, otherCluster))
    expectOneLineError(
      await brook(['start', '--port', '0', '--data-dir', node.dataDir, ...args]),
      `the data directory ${node.dataDir} belongs to cluster ${cluster.clusterId}, not cluster ${otherCluster}`,
    )
  })
})
