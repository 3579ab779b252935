/**
 * Metadata images built by hand, for a ReplicaManager driven in process (test/cluster/replica-manager.test.ts, the
 * follower's Fetch in test/broker/handlers/fetch.test.ts) without a controller.
 */
import { MetadataImage } from '../../broker/cluster/metadata/image.js'
import type { Topic } from '../../broker/partition.js'

/**
 * An image at metadata offset `offset` in which every partition of `topic` has replicas 1 and 2, both in the ISR, and
 * `leader` leads it in the given epoch.
 */
export function imageAt(offset: bigint, topic: Topic, leader: { id: number; leaderEpoch: number }): MetadataImage {
  const registration = { replicas: [1, 2], isr: [1, 2], removingReplicas: [], addingReplicas: [], leader: leader.id, leaderRecoveryState: 0, leaderEpoch: leader.leaderEpoch, partitionEpoch: leader.leaderEpoch }
  return new MetadataImage({
    ...MetadataImage.EMPTY,
    provenance: { offset, epoch: 1 },
    topicsById: new Map([[topic.topicId, { name: topic.name, topicId: topic.topicId, partitions: new Map(topic.partitions.map((_, index) => [index, registration])) }]]),
    topicIdsByName: new Map([[topic.name, topic.topicId]]),
  })
}
