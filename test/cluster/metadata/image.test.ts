/**
 * The metadata image (broker/cluster/metadata/image.ts, snapshot.ts). The property: a random valid stream of records,
 * applied batch by batch, keeps the image's invariants after every batch, and at any point the snapshot of the
 * image, restored into an empty one, is the same image. Then directed checks of Kafka's replay rules and of
 * records that do not apply.
 *
 *   BROOK_IMAGE_SEED=12 npx vitest run test/cluster/metadata/image.test.ts   replay one seed
 */
import { describe, expect, it } from 'vitest'
import {
  imageProblems,
  MetadataDelta,
  MetadataImage,
  MetadataImageError,
  NO_LEADER,
  NO_LEADER_CHANGE,
} from '../../../broker/cluster/metadata/image.js'
import { decodeMetadataRecord, encodeMetadataRecord, metadataRecord, MetadataRecordError, type MetadataRecord } from '../../../broker/cluster/metadata/records.js'
import { decodeMetadataSnapshot, encodeMetadataSnapshot, restoreMetadataSnapshot } from '../../../broker/cluster/metadata/snapshot.js'
import { ResourceType } from '../../../protocol/constants.js'
import { Random } from '../raft/sim/random.js'

const BROKER_IDS = [1, 2, 3, 4, 5]
const CONFIG_NAMES = ['retention.ms', 'cleanup.policy', 'min.insync.replicas', 'unclean.leader.election.enable']

function uuid(random: Random): string {
  const hex = Array.from({ length: 32 }, () => random.int(0, 15).toString(16)).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

function subset(random: Random, items: readonly number[], min: number): number[] {
  const shuffled = random.shuffle(items)
  return shuffled.slice(0, random.int(min, items.length))
}

/** One batch of records that applies to `image`, as a controller could write it. */
function randomBatch(image: MetadataImage, random: Random, offset: bigint): MetadataRecord[] {
  const brokers = [...image.brokers.values()]
  const topics = [...image.topicsById.values()]
  switch (random.int(0, 11)) {
    case 0: {
      const brokerId = random.pick(BROKER_IDS)
      return [
        metadataRecord('RegisterBrokerRecord', {
          brokerId,
          incarnationId: uuid(random),
          brokerEpoch: offset,
          endPoints: [{ name: 'PLAINTEXT', host: `10.0.0.${brokerId}`, port: 9092 + random.int(0, 3), securityProtocol: 0 }],
          features: [],
          rack: random.chance(0.5) ? null : `rack-${random.int(0, 2)}`,
          fenced: random.chance(0.7),
        }),
      ]
    }
    case 1:
    case 2: {
      if (brokers.length === 0) return [metadataRecord('NoOpRecord', {})]
      const broker = random.pick(brokers)
      const type = random.pick(['FenceBrokerRecord', 'UnfenceBrokerRecord', 'UnregisterBrokerRecord'] as const)
      if (type === 'UnregisterBrokerRecord') return [metadataRecord(type, { brokerId: broker.brokerId, brokerEpoch: broker.brokerEpoch })]
      return [metadataRecord(type, { id: broker.brokerId, epoch: broker.brokerEpoch })]
    }
    case 3:
    case 4: {
      const name = `topic-${random.int(0, 30)}`
      if (image.topic(name)) return [metadataRecord('NoOpRecord', {})]
      const topicId = uuid(random)
      const records: MetadataRecord[] = [metadataRecord('TopicRecord', { name, topicId })]
      const partitions = random.int(1, 4)
      for (let partitionId = 0; partitionId < partitions; partitionId++) {
        const replicas = subset(random, BROKER_IDS, 1).slice(0, 3)
        const isr = subset(random, replicas, 1)
        records.push(
          metadataRecord('PartitionRecord', {
            partitionId,
            topicId,
            replicas,
            isr,
            removingReplicas: [],
            addingReplicas: [],
            leader: random.chance(0.9) ? random.pick(isr) : NO_LEADER,
            leaderEpoch: 0,
            partitionEpoch: 0,
          }),
        )
      }
      if (random.chance(0.5)) {
        records.push(metadataRecord('ConfigRecord', { resourceType: ResourceType.TOPIC, resourceName: name, name: 'retention.ms', value: String(random.int(1, 1e9)) }))
      }
      return records
    }
    case 5:
    case 6:
    case 7: {
      if (topics.length === 0) return [metadataRecord('NoOpRecord', {})]
      const topic = random.pick(topics)
      const partitionId = random.int(0, topic.partitions.size - 1)
      const partition = topic.partitions.get(partitionId)!
      const replicas = random.chance(0.2) ? subset(random, BROKER_IDS, 1).slice(0, 3) : null
      const isr = subset(random, replicas ?? partition.replicas, 1)
      const leader = random.chance(0.3) ? NO_LEADER_CHANGE : random.chance(0.9) ? random.pick(isr) : NO_LEADER
      // Keeping the leader needs it in the new isr.
      const keepsLeader = leader === NO_LEADER_CHANGE && partition.leader !== NO_LEADER && !isr.includes(partition.leader)
      return [
        metadataRecord('PartitionChangeRecord', {
          partitionId,
          topicId: topic.topicId,
          isr,
          leader: keepsLeader ? random.pick(isr) : leader,
          replicas,
        }),
      ]
    }
    case 8:
      if (topics.length === 0) return [metadataRecord('NoOpRecord', {})]
      return [metadataRecord('RemoveTopicRecord', { topicId: random.pick(topics).topicId })]
    case 9: {
      const toTopic = topics.length > 0 && random.chance(0.6)
      return [
        metadataRecord('ConfigRecord', {
          resourceType: toTopic ? ResourceType.TOPIC : ResourceType.BROKER,
          resourceName: toTopic ? random.pick(topics).name : String(random.pick(BROKER_IDS)),
          name: random.pick(CONFIG_NAMES),
          value: random.chance(0.3) ? null : String(random.int(0, 1000)),
        }),
      ]
    }
    case 10:
      return [metadataRecord('FeatureLevelRecord', { name: random.pick(['metadata.version', 'kraft.version', 'transaction.version']), featureLevel: random.int(0, 20) })]
    default:
      return [
        metadataRecord('ProducerIdsRecord', {
          brokerId: random.pick(BROKER_IDS),
          brokerEpoch: BigInt(random.int(0, 100)),
          nextProducerId: image.producerIds.nextProducerId + 1000n,
        }),
      ]
  }
}

/** Applies a seeded stream of batches; checks invariants after each and snapshot -> restore at random points. */
function runStream(seed: number, batches: number): { image: MetadataImage; restores: number } {
  const random = new Random(seed)
  let image = MetadataImage.EMPTY
  let offset = 0n
  let restores = 0
  for (let i = 0; i < batches; i++) {
    const batch = randomBatch(image, random, offset)
    const delta = new MetadataDelta(image)
    // Every record goes through its frame, as it would through the log.
    for (const record of batch) delta.replay(decodeMetadataRecord(encodeMetadataRecord(record)))
    offset += BigInt(batch.length)
    const next = delta.apply({ offset: offset - 1n, epoch: 1 + Math.floor(i / 50) })
    expect(imageProblems(next), `seed ${seed}, batch ${i}`).toEqual([])
    image = next
    if (random.chance(0.05) || i === batches - 1) {
      const restored = restoreMetadataSnapshot(encodeMetadataSnapshot(image), image.provenance)
      expect(restored, `seed ${seed}, batch ${i}: the restored snapshot differs`).toEqual(image)
      restores++
    }
  }
  return { image, restores }
}

describe('metadata image', () => {
  const replay = process.env.BROOK_IMAGE_SEED
  const seeds = replay !== undefined ? [Number(replay)] : Array.from({ length: 200 }, (_, i) => i + 1)

  it(`${seeds.length} random record streams keep the invariants, and snapshot -> restore gives the same image`, () => {
    let restores = 0
    let topics = 0
    let brokers = 0
    for (const seed of seeds) {
      const result = runStream(seed, 300)
      restores += result.restores
      topics += result.image.topicsById.size
      brokers += result.image.brokers.size
    }
    // The streams are not degenerate: images end with topics and brokers, and many snapshots were compared.
    expect(topics).toBeGreaterThan(seeds.length)
    expect(brokers).toBeGreaterThan(seeds.length)
    expect(restores).toBeGreaterThan(seeds.length * 5)
  })

  it('a seed gives the same image each time', () => {
    expect(runStream(99, 200).image).toEqual(runStream(99, 200).image)
  })

  it('leaves the base image as it was', () => {
    let seed = 1
    while (runStream(seed, 100).image.topicsById.size === 0) seed++
    const before = runStream(seed, 100).image
    const snapshot = encodeMetadataSnapshot(before)
    const delta = new MetadataDelta(before)
    const topic = [...before.topicsById.values()][0]!
    delta.replay(metadataRecord('RemoveTopicRecord', { topicId: topic.topicId }))
    delta.replay(metadataRecord('FeatureLevelRecord', { name: 'metadata.version', featureLevel: 30 }))
    const after = delta.apply({ offset: before.provenance.offset + 2n, epoch: 9 })
    expect(after.topicsById.has(topic.topicId)).toBe(false)
    expect(before.topicsById.has(topic.topicId)).toBe(true)
    expect(encodeMetadataSnapshot(before)).toEqual(snapshot)
  })

  describe("Kafka's replay rules", () => {
    const topicId = '00000000-0000-4000-8000-000000000001'
    const base = (): MetadataDelta => {
      const delta = new MetadataDelta(MetadataImage.EMPTY)
      delta.replay(metadataRecord('RegisterBrokerRecord', { brokerId: 1, incarnationId: topicId, brokerEpoch: 10n, endPoints: [], features: [], rack: null }))
      delta.replay(metadataRecord('TopicRecord', { name: 'readings', topicId }))
      delta.replay(
        metadataRecord('PartitionRecord', { partitionId: 0, topicId, replicas: [1, 2, 3], isr: [1, 2, 3], removingReplicas: [], addingReplicas: [], leader: 1, leaderEpoch: 0, partitionEpoch: 0 }),
      )
      delta.replay(metadataRecord('ConfigRecord', { resourceType: ResourceType.TOPIC, resourceName: 'readings', name: 'retention.ms', value: '1000' }))
      return delta
    }

    it('a registration starts fenced unless it says otherwise', () => {
      expect(base().apply({ offset: 3n, epoch: 1 }).brokers.get(1)?.fenced).toBe(true)
    })

    it('a partition change bumps partitionEpoch always and leaderEpoch when it names a leader', () => {
      const delta = base()
      delta.replay(metadataRecord('PartitionChangeRecord', { partitionId: 0, topicId, isr: [1, 2] }))
      let partition = delta.apply({ offset: 4n, epoch: 1 }).topic('readings')!.partitions.get(0)!
      expect(partition).toMatchObject({ isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 1 })
      delta.replay(metadataRecord('PartitionChangeRecord', { partitionId: 0, topicId, leader: 1 }))
      partition = delta.apply({ offset: 5n, epoch: 1 }).topic('readings')!.partitions.get(0)!
      expect(partition).toMatchObject({ isr: [1, 2], leader: 1, leaderEpoch: 1, partitionEpoch: 2 })
      delta.replay(metadataRecord('PartitionChangeRecord', { partitionId: 0, topicId, isr: [2], leader: 2 }))
      partition = delta.apply({ offset: 6n, epoch: 1 }).topic('readings')!.partitions.get(0)!
      expect(partition).toMatchObject({ replicas: [1, 2, 3], isr: [2], leader: 2, leaderEpoch: 2, partitionEpoch: 3 })
    })

    it('removing a topic removes its configs; a null config value deletes the key', () => {
      const delta = base()
      delta.replay(metadataRecord('ConfigRecord', { resourceType: ResourceType.BROKER, resourceName: '1', name: 'log.retention.ms', value: '5' }))
      delta.replay(metadataRecord('ConfigRecord', { resourceType: ResourceType.BROKER, resourceName: '1', name: 'log.retention.ms', value: null }))
      delta.replay(metadataRecord('RemoveTopicRecord', { topicId }))
      const image = delta.apply({ offset: 6n, epoch: 1 })
      expect(image.configs.size).toBe(0)
      expect(image.topic('readings')).toBeUndefined()
    })

    const refused: [string, MetadataRecord, RegExp][] = [
      ['a second topic of one name', metadataRecord('TopicRecord', { name: 'readings', topicId: '00000000-0000-4000-8000-000000000002' }), /created twice/],
      ['a change of a missing partition', metadataRecord('PartitionChangeRecord', { partitionId: 1, topicId, isr: [1] }), /which has 1/],
      ['a change for an unknown topic id', metadataRecord('PartitionChangeRecord', { partitionId: 0, topicId: '00000000-0000-4000-8000-000000000009', isr: [1] }), /does not exist/],
      ['an isr outside the replicas', metadataRecord('PartitionChangeRecord', { partitionId: 0, topicId, isr: [1, 4] }), /not within replicas/],
      ['an empty isr', metadataRecord('PartitionChangeRecord', { partitionId: 0, topicId, isr: [] }), /empty isr/],
      ['a leader outside the isr', metadataRecord('PartitionChangeRecord', { partitionId: 0, topicId, isr: [2, 3], leader: 1 }), /leader 1 is not in isr/],
      ['fencing a stale broker epoch', metadataRecord('FenceBrokerRecord', { id: 1, epoch: 9n }), /registered at epoch 10/],
      ['unfencing an unknown broker', metadataRecord('UnfenceBrokerRecord', { id: 7, epoch: 1n }), /not registered/],
      ['a registration at an older epoch', metadataRecord('RegisterBrokerRecord', { brokerId: 1, incarnationId: topicId, brokerEpoch: 5n, endPoints: [], features: [], rack: null }), /not after 10/],
      ['a config of a missing topic', metadataRecord('ConfigRecord', { resourceType: ResourceType.TOPIC, resourceName: 'nope', name: 'retention.ms', value: '1' }), /does not exist/],
      ['producer ids that do not grow', metadataRecord('ProducerIdsRecord', { brokerId: 1, brokerEpoch: 10n, nextProducerId: 0n }), /does not move past/],
    ]
    for (const [what, record, message] of refused) {
      it(`refuses ${what} with a MetadataImageError, leaving the delta as it was`, () => {
        const delta = base()
        const before = delta.apply({ offset: 3n, epoch: 1 })
        expect(() => delta.replay(record)).toThrow(MetadataImageError)
        expect(() => delta.replay(record)).toThrow(message)
        expect(delta.apply({ offset: 3n, epoch: 1 })).toEqual(before)
      })
    }
  })

  it('a corrupt snapshot gives a MetadataRecordError', () => {
    const bytes = encodeMetadataSnapshot(runStream(3, 100).image)
    expect(decodeMetadataSnapshot(bytes).length).toBeGreaterThan(0)
    expect(() => decodeMetadataSnapshot(bytes.subarray(0, bytes.length - 1))).toThrow(MetadataRecordError)
    expect(() => decodeMetadataSnapshot(Buffer.concat([bytes, Buffer.from([0x05, 0x01])]))).toThrow(MetadataRecordError)
  })
})
