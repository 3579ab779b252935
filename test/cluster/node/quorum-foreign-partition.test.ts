/**
 * A quorum request (Vote, BeginQuorumEpoch, EndQuorumEpoch, FetchSnapshot) on the controller listener that names
 * another topic than `__cluster_metadata`, another partition than 0, or more than one partition is not about this
 * quorum: Kafka's KafkaRaftClient refuses it with INVALID_REQUEST (RaftUtil.hasValidTopicPartition) and changes
 * nothing. Brook read the first partition of the first topic whatever they were, so a Vote naming topic `w` at a
 * later epoch moved a voter to that epoch and cost the quorum its leader.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startCluster, type TestCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { KafkaClient } from '../../../client/kafka-client.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { METADATA_TOPIC } from '../../../protocol/constants.js'
import { vote, type VoteRequest, type VoteResponse } from '../../../protocol/messages/vote.js'
import { beginQuorumEpoch, type BeginQuorumEpochRequest, type BeginQuorumEpochResponse } from '../../../protocol/messages/begin-quorum-epoch.js'
import { endQuorumEpoch, type EndQuorumEpochRequest, type EndQuorumEpochResponse } from '../../../protocol/messages/end-quorum-epoch.js'
import { fetchSnapshot, type FetchSnapshotRequest, type FetchSnapshotResponse } from '../../../protocol/messages/fetch-snapshot.js'
import { toWireRequest } from '../../../broker/cluster/raft-wire.js'

describe('quorum requests naming another partition than __cluster_metadata-0', () => {
  let cluster: TestCluster

  beforeAll(async () => {
    cluster = await startCluster({ nodes: 3, extraArgs: ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '3000'] })
  })
  afterAll(async () => {
    await cluster?.destroy()
  })

  it('are INVALID_REQUEST and change neither the leader nor the epoch', async () => {
    const before = await waitFor('a quorum leader', async () => {
      const status = await cluster.status(1)
      return status.leaderId >= 0 ? status : undefined
    })
    const follower = [1, 2, 3].find((id) => id !== before.leaderId)!
    const candidate = [1, 2, 3].find((id) => id !== before.leaderId && id !== follower)!
    const later = before.leaderEpoch + 5
    const client = await KafkaClient.connect('127.0.0.1', cluster.controllerPort(follower), { clientId: 'foreign-partition' })
    try {
      // A vote at a later epoch from a voter with a longer log: named on __cluster_metadata-0 it would move the follower.
      const voteBody = toWireRequest({ type: 'VoteRequest', clusterId: cluster.clusterId, voterId: follower, candidateEpoch: later, candidateId: candidate, lastOffsetEpoch: later, lastOffset: 1n << 40n, preVote: false }).body as VoteRequest
      const [metadataVote] = voteBody.topics
      const voteOnOtherTopic = await client.request<VoteRequest, VoteResponse>(vote, 2, { ...voteBody, topics: [{ ...metadataVote!, topicName: 'w' }] })
      expect(voteOnOtherTopic.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)
      const voteOnTwoPartitions = await client.request<VoteRequest, VoteResponse>(vote, 2, {
        ...voteBody,
        topics: [{ ...metadataVote!, partitions: [metadataVote!.partitions[0]!, { ...metadataVote!.partitions[0]!, partitionIndex: 1 }] }],
      })
      expect(voteOnTwoPartitions.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)

      const beginBody = toWireRequest({ type: 'BeginQuorumEpochRequest', clusterId: cluster.clusterId, voterId: follower, leaderId: candidate, leaderEpoch: later }).body as BeginQuorumEpochRequest
      const [metadataBegin] = beginBody.topics
      const beginOnPartitionOne = await client.request<BeginQuorumEpochRequest, BeginQuorumEpochResponse>(beginQuorumEpoch, 1, {
        ...beginBody,
        topics: [{ ...metadataBegin!, partitions: [{ ...metadataBegin!.partitions[0]!, partitionIndex: 1 }] }],
      })
      expect(beginOnPartitionOne.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)

      const endBody = toWireRequest({ type: 'EndQuorumEpochRequest', clusterId: cluster.clusterId, leaderId: candidate, leaderEpoch: later, preferredSuccessors: [follower] }).body as EndQuorumEpochRequest
      const endOnTwoTopics = await client.request<EndQuorumEpochRequest, EndQuorumEpochResponse>(endQuorumEpoch, 1, { ...endBody, topics: [endBody.topics[0]!, { ...endBody.topics[0]!, topicName: 'w' }] })
      expect(endOnTwoTopics.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)

      const snapshotBody = toWireRequest({ type: 'FetchSnapshotRequest', clusterId: cluster.clusterId, replicaId: candidate, maxBytes: 1024, currentLeaderEpoch: before.leaderEpoch, snapshotId: { endOffset: 0n, epoch: 0 }, position: 0n }).body as FetchSnapshotRequest
      const snapshotOfOtherTopic = await client.request<FetchSnapshotRequest, FetchSnapshotResponse>(fetchSnapshot, 1, { ...snapshotBody, topics: [{ ...snapshotBody.topics[0]!, name: 'w' }] })
      expect(snapshotOfOtherTopic.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.INVALID_REQUEST)
      expect(snapshotBody.topics[0]!.name).toBe(METADATA_TOPIC)
    } finally {
      client.close()
    }
    const after = await cluster.status(before.leaderId)
    expect([after.leaderId, after.leaderEpoch]).toEqual([before.leaderId, before.leaderEpoch])
  })
})
