/**
 * The Metadata handler of a cluster node in process, over real services (test/helpers/in-process-node.ts) whose
 * quorum is a metadata image the test builds: a partition is answered with its leader only when that leader is among
 * the brokers answered. One led by a broker that registered no client listener is LISTENER_NOT_FOUND (v6+) or
 * LEADER_NOT_AVAILABLE (before), one led by a broker not registered is LEADER_NOT_AVAILABLE, both with leader -1,
 * as Kafka's KRaftMetadataCache answers them. test/cluster/node/topics.test.ts shows Metadata across real nodes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { metadataHandler } from '../../../broker/handlers/metadata.js'
import type { BrokerServices, RequestContext } from '../../../broker/handler.js'
import type { QuorumRunner } from '../../../broker/cluster/quorum-runner.js'
import { MetadataDelta, MetadataImage } from '../../../broker/cluster/metadata/image.js'
import { metadataRecord, type MetadataRecord } from '../../../broker/cluster/metadata/records.js'
import type { MetadataRequest, MetadataResponse } from '../../../protocol/messages/metadata.js'
import { openNode, type InProcessNode } from '../../helpers/in-process-node.js'

const Err = { NONE: 0, LEADER_NOT_AVAILABLE: 5, LISTENER_NOT_FOUND: 72 } as const
const TOPIC_ID = '6f1c2a3b-4d5e-4f60-8a7b-8c9d0e1f2a3b'

function broker(brokerId: number, endPoints: { name: string; host: string; port: number }[]): MetadataRecord[] {
  return [
    metadataRecord('RegisterBrokerRecord', {
      brokerId,
      incarnationId: `00000000-0000-4000-8000-00000000000${brokerId}`,
      brokerEpoch: BigInt(brokerId),
      endPoints: endPoints.map((endpoint) => ({ ...endpoint, securityProtocol: 0 })),
      features: [],
      rack: null,
      fenced: false,
    }),
  ]
}

/** Broker 1 with its client listener, broker 2 with none (registered before registrations were checked), broker 3 not registered; partition n is led by broker n + 1. */
function image(): MetadataImage {
  const delta = new MetadataDelta(MetadataImage.EMPTY)
  const records = [
    ...broker(1, [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9092 }]),
    ...broker(2, []),
    metadataRecord('TopicRecord', { name: 'readings', topicId: TOPIC_ID }),
    ...[1, 2, 3].map((leader, partitionId) =>
      metadataRecord('PartitionRecord', {
        partitionId,
        topicId: TOPIC_ID,
        replicas: [leader],
        isr: [leader],
        removingReplicas: [],
        addingReplicas: [],
        leader,
        leaderEpoch: 4,
        partitionEpoch: 4,
      }),
    ),
  ]
  for (const record of records) delta.replay(record)
  return delta.apply({ offset: BigInt(records.length - 1), epoch: 1 })
}

describe('Metadata on a cluster node, in process', () => {
  let node: InProcessNode
  let services: BrokerServices
  beforeEach(async () => {
    node = await openNode()
    const quorum = { controller: { image: image() }, leaderId: 1, appliedOffset: 5n } as unknown as QuorumRunner
    services = { ...node.services, quorum }
  })
  afterEach(async () => {
    await node.close()
  })

  const call = async (apiVersion: number): Promise<MetadataResponse> => {
    const context: RequestContext = {
      services,
      apiVersion,
      clientId: 'in-process',
      remote: 'in-process',
      remoteHost: '127.0.0.1',
      signal: new AbortController().signal,
      parked: () => {},
      onAnswerSent: (callback) => callback(),
    }
    const request: MetadataRequest = { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }
    return (await metadataHandler.handle(request, context)) as MetadataResponse
  }

  it('answers a partition whose leader has no client listener LISTENER_NOT_FOUND (v6+) with leader -1, never a leader missing from the brokers', async () => {
    for (const [apiVersion, noListener] of [
      [12, Err.LISTENER_NOT_FOUND],
      [6, Err.LISTENER_NOT_FOUND],
      [5, Err.LEADER_NOT_AVAILABLE],
      [1, Err.LEADER_NOT_AVAILABLE],
    ] as const) {
      const answer = await call(apiVersion)
      expect(answer.brokers.map((b) => b.nodeId)).toEqual([1])
      const partitions = answer.topics.find((topic) => topic.name === 'readings')!.partitions
      expect(partitions.map((p) => [p.partitionIndex, p.errorCode, p.leaderId]), `v${apiVersion}`).toEqual([
        [0, Err.NONE, 1],
        [1, noListener, -1],
        [2, Err.LEADER_NOT_AVAILABLE, -1],
      ])
      const listed = new Set(answer.brokers.map((b) => b.nodeId))
      for (const partition of partitions) expect(partition.leaderId === -1 || listed.has(partition.leaderId)).toBe(true)
    }
  })
})
