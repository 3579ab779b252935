/**
 * Metadata images built by hand, for a ReplicaManager driven in process (test/cluster/replica-manager.test.ts, the
 * follower's Fetch in test/broker/handlers/fetch.test.ts) without a controller.
 */
import { MetadataImage, type BrokerRegistration, type PartitionRegistration } from '../../broker/cluster/metadata/image.js'
import type { Topic } from '../../broker/partition.js'

/**
 * An image at metadata offset `offset` in which every partition of `topic` has replicas 1 and 2, both in the ISR, and
 * `leader` leads it in the given epoch. `brokers`: the ids registered as brokers (unfenced, without endpoints, so no
 * fetcher connects to them); none unless given. `assignment`: other replicas and ISR, and a reassignment's adding and
 * removing replicas (KIP-455).
 */
export function imageAt(
  offset: bigint,
  topic: Topic,
  leader: { id: number; leaderEpoch: number },
  brokers: readonly number[] = [],
  assignment: Partial<Pick<PartitionRegistration, 'replicas' | 'isr' | 'addingReplicas' | 'removingReplicas'>> = {},
): MetadataImage {
  const registration = { replicas: [1, 2], isr: [1, 2], removingReplicas: [], addingReplicas: [], ...assignment, leader: leader.id, leaderRecoveryState: 0, leaderEpoch: leader.leaderEpoch, partitionEpoch: leader.leaderEpoch }
  const registered = (brokerId: number): BrokerRegistration => ({
    brokerId,
    incarnationId: '00000000-0000-0000-0000-000000000000',
    brokerEpoch: offset,
    endPoints: [],
    rack: null,
    fenced: false,
    inControlledShutdown: false,
  })
  return new MetadataImage({
    ...MetadataImage.EMPTY,
    provenance: { offset, epoch: 1 },
    brokers: new Map(brokers.map((id) => [id, registered(id)])),
    topicsById: new Map([[topic.topicId, { name: topic.name, topicId: topic.topicId, partitions: new Map(topic.partitions.map((_, index) => [index, registration])) }]]),
    topicIdsByName: new Map([[topic.name, topic.topicId]]),
  })
}
