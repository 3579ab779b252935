/**
 * The cluster's metadata as the committed metadata log defines it (Kafka's MetadataImage and MetadataDelta): the
 * brokers, the topics and their partitions, configs, the producer-id blocks handed out and the feature levels.
 *
 *   metadata log:  [ r0 r1 r2 | r3 r4 | r5 ... ]   records in log order, batch by batch
 *                        |        |
 *   image(offset 2) --delta--> image(offset 4) --delta--> ...
 *
 * An image is never changed: a MetadataDelta replays records on top of one and `apply()` makes the next image,
 * sharing what did not change. Replay is deterministic, so every node that applied the same prefix of the log holds
 * the same image, and `records()` gives the records that rebuild it (a snapshot of the log up to its offset):
 *
 *   image.records()  --replay into an empty image-->  an image equal to `image`
 *
 * Invariants of an image (imageProblems() checks them; replay refuses a record that would break one):
 * - a topic's name and its topicId each name one topic; its partitions are numbered 0..n-1, n >= 1;
 * - a partition's replicas are distinct and non-empty; its isr is a non-empty subset of them (the last member is
 *   kept even when fenced, as Kafka does without ELR: it is the replica that holds everything committed); its
 *   leader is -1 (none) or a member of the isr; leaderEpoch and partitionEpoch are >= 0; a reassignment's adding
 *   and removing replicas are disjoint replicas, and not every replica is being removed (KIP-455);
 * - a partition change always bumps partitionEpoch; one that names a leader (even the same one) bumps leaderEpoch,
 *   so a leader epoch is never reused with another leader;
 * - a broker's registration is the latest RegisterBrokerRecord of its id; fencing, unfencing and unregistering name
 *   the brokerEpoch of that registration, and a record for an older epoch does not apply;
 * - configs of a topic exist only while the topic does (removing the topic removes them);
 * - the next producer id only grows: a block once handed out is never handed out again;
 * - a feature at level 0 is absent.
 * A record that does not apply means the log is not one this code wrote, or is corrupt: replay throws a
 * MetadataImageError and the node must stop rather than serve metadata that differs from its peers'.
 */
import { ResourceType } from '../../../protocol/constants.js'
import { metadataRecord, type MetadataRecord } from './records.js'
import type { RegisterBrokerRecordBrokerEndpoint } from '../../../protocol/messages/internal/metadata/register-broker-record.js'
import type { PartitionChangeRecord } from '../../../protocol/messages/internal/metadata/partition-change-record.js'
import type { DynamicBrokerConfigs } from '../../topic-configs.js'

/** PartitionRecord/PartitionChangeRecord's leader when the partition has none. */
export const NO_LEADER = -1
/** PartitionChangeRecord's leader when the record leaves the leader (and leaderEpoch) as they are. */
export const NO_LEADER_CHANGE = -2

export type BrokerEndpoint = Readonly<RegisterBrokerRecordBrokerEndpoint>

/**
 * The listener clients use, by name (Kafka's `inter.broker.listener.name` and client listener alike: a Brook node has
 * only this one). A broker registers it, and Metadata and DescribeCluster serve its host and port.
 */
export const CLIENT_LISTENER_NAME = 'PLAINTEXT'

/** The endpoint a broker registered for CLIENT_LISTENER_NAME, or undefined when it registered none. */
export function clientEndpoint(broker: { readonly endPoints: readonly BrokerEndpoint[] }): BrokerEndpoint | undefined {
  return broker.endPoints.find((endpoint) => endpoint.name === CLIENT_LISTENER_NAME)
}

/** One broker as registered (Kafka's BrokerRegistration). */
export interface BrokerRegistration {
  readonly brokerId: number
  readonly incarnationId: string
  /** The registration's epoch: the offset of its RegisterBrokerRecord in the metadata log. */
  readonly brokerEpoch: bigint
  readonly endPoints: readonly BrokerEndpoint[]
  readonly rack: string | null
  /** A fenced broker leads nothing and is not counted as live. */
  readonly fenced: boolean
  readonly inControlledShutdown: boolean
}

/** One partition's assignment and leadership (Kafka's PartitionRegistration). */
export interface PartitionRegistration {
  readonly replicas: readonly number[]
  readonly isr: readonly number[]
  readonly removingReplicas: readonly number[]
  readonly addingReplicas: readonly number[]
  /** A broker id, or NO_LEADER. */
  readonly leader: number
  readonly leaderRecoveryState: number
  readonly leaderEpoch: number
  readonly partitionEpoch: number
}

/** Whether a reassignment of `partition` is under way (KIP-455): it has adding or removing replicas. */
export function reassigning(partition: PartitionRegistration): boolean {
  return partition.addingReplicas.length > 0 || partition.removingReplicas.length > 0
}

export interface TopicImage {
  readonly name: string
  readonly topicId: string
  /** By partition id, 0..n-1. */
  readonly partitions: ReadonlyMap<number, PartitionRegistration>
}

/** The last block of producer ids handed out (Kafka's ProducerIdsImage): ids below nextProducerId are taken. */
export interface ProducerIdsImage {
  readonly brokerId: number
  readonly brokerEpoch: bigint
  readonly nextProducerId: bigint
}

/** The log position an image reflects: the offset and epoch of the last record applied (-1 for none). */
export interface ImageProvenance {
  readonly offset: bigint
  readonly epoch: number
}

/** Config key -> value of one resource. */
export type ConfigImage = ReadonlyMap<string, string>

/** ConfigRecord's resource, as one map key: `${resourceType}:${resourceName}` (ResourceType.TOPIC, BROKER). */
export function configResourceKey(resourceType: number, resourceName: string): string {
  return `${resourceType}:${resourceName}`
}

/** A topic's config overrides in `image`, name -> value (empty when it has none). */
export function topicConfigs(image: MetadataImage, topicName: string): Record<string, string> {
  return resourceConfigs(image, ResourceType.TOPIC, topicName)
}

/** The configs of a resource in `image` (ResourceType.TOPIC, BROKER), name -> value (empty when it has none). */
export function resourceConfigs(image: MetadataImage, resourceType: number, resourceName: string): Record<string, string> {
  return Object.fromEntries(image.configs.get(configResourceKey(resourceType, resourceName)) ?? [])
}

/** The dynamic broker configs `image` holds for every node (the BROKER resource "") and for node `nodeId`. */
export function dynamicBrokerConfigs(image: MetadataImage, nodeId: number): DynamicBrokerConfigs {
  return { cluster: resourceConfigs(image, ResourceType.BROKER, ''), broker: resourceConfigs(image, ResourceType.BROKER, String(nodeId)) }
}

/** Whether two sets of config overrides name the same configs with the same values. */
export function sameConfigs(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const names = Object.keys(a)
  return names.length === Object.keys(b).length && names.every((name) => Object.hasOwn(b, name) && a[name] === b[name])
}

export class MetadataImage {
  static readonly EMPTY = new MetadataImage({
    provenance: { offset: -1n, epoch: -1 },
    features: new Map(),
    brokers: new Map(),
    topicsById: new Map(),
    topicIdsByName: new Map(),
    configs: new Map(),
    producerIds: { brokerId: -1, brokerEpoch: -1n, nextProducerId: 0n },
  })

  readonly provenance: ImageProvenance
  /** Feature name -> level (`metadata.version` among them). */
  readonly features: ReadonlyMap<string, number>
  readonly brokers: ReadonlyMap<number, BrokerRegistration>
  readonly topicsById: ReadonlyMap<string, TopicImage>
  readonly topicIdsByName: ReadonlyMap<string, string>
  /** By configResourceKey(); a resource without configs is absent. */
  readonly configs: ReadonlyMap<string, ConfigImage>
  readonly producerIds: ProducerIdsImage

  constructor(parts: Omit<MetadataImage, 'topic' | 'records' | 'liveBrokers'>) {
    this.provenance = parts.provenance
    this.features = parts.features
    this.brokers = parts.brokers
    this.topicsById = parts.topicsById
    this.topicIdsByName = parts.topicIdsByName
    this.configs = parts.configs
    this.producerIds = parts.producerIds
  }

  topic(name: string): TopicImage | undefined {
    const id = this.topicIdsByName.get(name)
    return id === undefined ? undefined : this.topicsById.get(id)
  }

  /** Registered, unfenced brokers' ids, ascending. */
  liveBrokers(): number[] {
    return [...this.brokers.values()]
      .filter((broker) => !broker.fenced)
      .map((broker) => broker.brokerId)
      .sort((a, b) => a - b)
  }

  /**
   * The records that rebuild this image from an empty one, in the order Kafka's image writes them: features,
   * brokers, topics with their partitions, configs, producer ids.
   */
  records(): MetadataRecord[] {
    const records: MetadataRecord[] = []
    for (const [name, featureLevel] of this.features) records.push(metadataRecord('FeatureLevelRecord', { name, featureLevel }))
    for (const broker of this.brokers.values()) {
      records.push(
        metadataRecord('RegisterBrokerRecord', {
          brokerId: broker.brokerId,
          incarnationId: broker.incarnationId,
          brokerEpoch: broker.brokerEpoch,
          endPoints: broker.endPoints.map((endpoint) => ({ ...endpoint })),
          features: [],
          rack: broker.rack,
          fenced: broker.fenced,
          inControlledShutdown: broker.inControlledShutdown,
        }),
      )
    }
    for (const topic of this.topicsById.values()) {
      records.push(metadataRecord('TopicRecord', { name: topic.name, topicId: topic.topicId }))
      for (const [partitionId, partition] of topic.partitions) {
        records.push(
          metadataRecord('PartitionRecord', {
            partitionId,
            topicId: topic.topicId,
            replicas: [...partition.replicas],
            isr: [...partition.isr],
            removingReplicas: [...partition.removingReplicas],
            addingReplicas: [...partition.addingReplicas],
            leader: partition.leader,
            leaderRecoveryState: partition.leaderRecoveryState,
            leaderEpoch: partition.leaderEpoch,
            partitionEpoch: partition.partitionEpoch,
          }),
        )
      }
    }
    for (const [key, configs] of this.configs) {
      const [resourceType, resourceName] = splitResourceKey(key)
      for (const [name, value] of configs) records.push(metadataRecord('ConfigRecord', { resourceType, resourceName, name, value }))
    }
    if (this.producerIds.nextProducerId > 0n) records.push(metadataRecord('ProducerIdsRecord', { ...this.producerIds }))
    return records
  }
}

/** A record of the metadata log that does not apply to the image before it: the log is corrupt or not Brook's. */
export class MetadataImageError extends Error {
  override readonly name = 'MetadataImageError'
}

/**
 * Changes to an image, record by record (Kafka's MetadataDelta). `replay` checks each record against the state so
 * far and throws a MetadataImageError if it does not apply (nothing of that record is applied then); `apply` makes
 * the image. The base image is never changed.
 */
export class MetadataDelta {
  private readonly features: Map<string, number>
  private readonly brokers: Map<number, BrokerRegistration>
  private readonly topicsById: Map<string, TopicImage>
  private readonly topicIdsByName: Map<string, string>
  private readonly configs: Map<string, ConfigImage>
  private producerIds: ProducerIdsImage

  constructor(readonly base: MetadataImage) {
    this.features = new Map(base.features)
    this.brokers = new Map(base.brokers)
    this.topicsById = new Map(base.topicsById)
    this.topicIdsByName = new Map(base.topicIdsByName)
    this.configs = new Map(base.configs)
    this.producerIds = base.producerIds
  }

  replay(record: MetadataRecord): void {
    switch (record.type) {
      case 'RegisterBrokerRecord': {
        const data = record.data
        const previous = this.brokers.get(data.brokerId)
        if (previous && data.brokerEpoch <= previous.brokerEpoch) {
          fail(`broker ${data.brokerId} registered with epoch ${data.brokerEpoch}, not after ${previous.brokerEpoch}`)
        }
        this.brokers.set(data.brokerId, {
          brokerId: data.brokerId,
          incarnationId: data.incarnationId,
          brokerEpoch: data.brokerEpoch,
          endPoints: data.endPoints.map(({ name, host, port, securityProtocol }) => ({ name, host, port, securityProtocol })),
          rack: data.rack,
          fenced: data.fenced ?? true,
          inControlledShutdown: data.inControlledShutdown ?? false,
        })
        return
      }
      case 'UnregisterBrokerRecord':
        this.registered(record.data.brokerId, record.data.brokerEpoch, 'unregister')
        this.brokers.delete(record.data.brokerId)
        return
      case 'FenceBrokerRecord':
      case 'UnfenceBrokerRecord': {
        const broker = this.registered(record.data.id, record.data.epoch, record.type === 'FenceBrokerRecord' ? 'fence' : 'unfence')
        this.brokers.set(broker.brokerId, { ...broker, fenced: record.type === 'FenceBrokerRecord' })
        return
      }
      case 'TopicRecord': {
        const { name, topicId } = record.data
        if (this.topicIdsByName.has(name)) fail(`topic '${name}' created twice`)
        if (this.topicsById.has(topicId)) fail(`topic id ${topicId} of '${name}' is already taken`)
        this.topicsById.set(topicId, { name, topicId, partitions: new Map() })
        this.topicIdsByName.set(name, topicId)
        return
      }
      case 'PartitionRecord': {
        const data = record.data
        const topic = this.topicOf(data.topicId, 'PartitionRecord')
        const partitionId = data.partitionId ?? -1
        if (partitionId !== topic.partitions.size) {
          fail(`PartitionRecord for partition ${partitionId} of '${topic.name}', which has ${topic.partitions.size}`)
        }
        const partition: PartitionRegistration = {
          replicas: data.replicas,
          isr: data.isr,
          removingReplicas: data.removingReplicas,
          addingReplicas: data.addingReplicas,
          leader: data.leader ?? NO_LEADER,
          leaderRecoveryState: data.leaderRecoveryState ?? 0,
          leaderEpoch: data.leaderEpoch ?? -1,
          partitionEpoch: data.partitionEpoch ?? -1,
        }
        this.setPartition(topic, partitionId, partition)
        return
      }
      case 'PartitionChangeRecord': {
        const data = record.data
        const topic = this.topicOf(data.topicId, 'PartitionChangeRecord')
        const partitionId = data.partitionId ?? -1
        const partition = topic.partitions.get(partitionId)
        if (!partition) fail(`PartitionChangeRecord for partition ${partitionId} of '${topic.name}', which has ${topic.partitions.size}`)
        this.setPartition(topic, partitionId, mergePartitionChange(partition, data))
        return
      }
      case 'RemoveTopicRecord': {
        const topic = this.topicOf(record.data.topicId, 'RemoveTopicRecord')
        this.topicsById.delete(topic.topicId)
        this.topicIdsByName.delete(topic.name)
        this.configs.delete(configResourceKey(ResourceType.TOPIC, topic.name))
        return
      }
      case 'ConfigRecord': {
        const { resourceType, resourceName, name, value } = record.data
        if (resourceType !== ResourceType.TOPIC && resourceType !== ResourceType.BROKER) {
          fail(`ConfigRecord for resource type ${resourceType}`)
        }
        if (resourceType === ResourceType.TOPIC && !this.topicIdsByName.has(resourceName)) {
          fail(`ConfigRecord for topic '${resourceName}', which does not exist`)
        }
        const key = configResourceKey(resourceType, resourceName)
        const configs = new Map(this.configs.get(key))
        if (value === null) configs.delete(name)
        else configs.set(name, value)
        if (configs.size === 0) this.configs.delete(key)
        else this.configs.set(key, configs)
        return
      }
      case 'FeatureLevelRecord': {
        const { name, featureLevel } = record.data
        if (featureLevel < 0) fail(`feature ${name} at level ${featureLevel}`)
        if (featureLevel === 0) this.features.delete(name)
        else this.features.set(name, featureLevel)
        return
      }
      case 'ProducerIdsRecord': {
        const { brokerId, brokerEpoch, nextProducerId } = record.data
        if (nextProducerId <= this.producerIds.nextProducerId) {
          fail(`next producer id ${nextProducerId} does not move past ${this.producerIds.nextProducerId}`)
        }
        this.producerIds = { brokerId, brokerEpoch: brokerEpoch ?? -1n, nextProducerId }
        return
      }
      case 'NoOpRecord':
        return
    }
  }

  /** The image after every replayed record, at `provenance` (the last of them). */
  apply(provenance: ImageProvenance): MetadataImage {
    return new MetadataImage({
      provenance,
      features: new Map(this.features),
      brokers: new Map(this.brokers),
      topicsById: new Map(this.topicsById),
      topicIdsByName: new Map(this.topicIdsByName),
      configs: new Map(this.configs),
      producerIds: this.producerIds,
    })
  }

  private registered(brokerId: number, brokerEpoch: bigint, what: string): BrokerRegistration {
    const broker = this.brokers.get(brokerId)
    if (!broker) fail(`cannot ${what} broker ${brokerId}: it is not registered`)
    if (broker.brokerEpoch !== brokerEpoch) {
      fail(`cannot ${what} broker ${brokerId} at epoch ${brokerEpoch}: it is registered at epoch ${broker.brokerEpoch}`)
    }
    return broker
  }

  private topicOf(topicId: string, what: string): TopicImage {
    const topic = this.topicsById.get(topicId)
    if (!topic) fail(`${what} for topic id ${topicId}, which does not exist`)
    return topic
  }

  private setPartition(topic: TopicImage, partitionId: number, partition: PartitionRegistration): void {
    const problem = partitionProblem(partition)
    if (problem) fail(`partition ${partitionId} of '${topic.name}': ${problem}`)
    const partitions = new Map(topic.partitions)
    partitions.set(partitionId, partition)
    this.topicsById.set(topic.topicId, { ...topic, partitions })
  }
}

/**
 * A partition after a PartitionChangeRecord (Kafka's PartitionRegistration.merge): null lists and NO_LEADER_CHANGE
 * keep what was; naming a leader bumps leaderEpoch; every change bumps partitionEpoch.
 */
function mergePartitionChange(partition: PartitionRegistration, change: PartitionChangeRecord): PartitionRegistration {
  const leader = change.leader ?? NO_LEADER_CHANGE
  const recovery = change.leaderRecoveryState ?? -1
  return {
    replicas: change.replicas ?? partition.replicas,
    isr: change.isr ?? partition.isr,
    removingReplicas: change.removingReplicas ?? partition.removingReplicas,
    addingReplicas: change.addingReplicas ?? partition.addingReplicas,
    leader: leader === NO_LEADER_CHANGE ? partition.leader : leader,
    leaderRecoveryState: recovery === -1 ? partition.leaderRecoveryState : recovery,
    leaderEpoch: leader === NO_LEADER_CHANGE ? partition.leaderEpoch : partition.leaderEpoch + 1,
    partitionEpoch: partition.partitionEpoch + 1,
  }
}

/** What is wrong with a partition by the invariants above, or null. */
export function partitionProblem(partition: PartitionRegistration): string | null {
  const { replicas, isr, leader } = partition
  if (replicas.length === 0) return 'no replicas'
  if (new Set(replicas).size !== replicas.length) return `replicas [${replicas}] repeat a broker`
  if (isr.length === 0) return 'an empty isr'
  if (new Set(isr).size !== isr.length) return `isr [${isr}] repeats a broker`
  if (!isr.every((id) => replicas.includes(id))) return `isr [${isr}] is not within replicas [${replicas}]`
  if (leader !== NO_LEADER && !isr.includes(leader)) return `leader ${leader} is not in isr [${isr}]`
  const { addingReplicas: adding, removingReplicas: removing } = partition
  if (![...adding, ...removing].every((id) => replicas.includes(id))) return `adding [${adding}] or removing [${removing}] are not within replicas [${replicas}]`
  if (adding.some((id) => removing.includes(id))) return `adding [${adding}] and removing [${removing}] share a broker`
  if (removing.length === replicas.length) return `every replica of [${replicas}] is being removed`
  if (partition.leaderEpoch < 0 || partition.partitionEpoch < 0) return `epochs ${partition.leaderEpoch}/${partition.partitionEpoch}`
  return null
}

/** Every broken invariant of the image (empty when it holds them all); the tests check it after every record. */
export function imageProblems(image: MetadataImage): string[] {
  const problems: string[] = []
  if (image.topicIdsByName.size !== image.topicsById.size) problems.push('topic names and ids differ in number')
  for (const topic of image.topicsById.values()) {
    if (image.topicIdsByName.get(topic.name) !== topic.topicId) problems.push(`topic '${topic.name}' is not found by its name`)
    if (topic.partitions.size === 0) problems.push(`topic '${topic.name}' has no partitions`)
    for (const [partitionId, partition] of topic.partitions) {
      if (partitionId < 0 || partitionId >= topic.partitions.size) problems.push(`topic '${topic.name}' has partition ${partitionId}`)
      const problem = partitionProblem(partition)
      if (problem) problems.push(`partition ${partitionId} of '${topic.name}': ${problem}`)
    }
  }
  for (const key of image.configs.keys()) {
    const [resourceType, resourceName] = splitResourceKey(key)
    if (resourceType === ResourceType.TOPIC && !image.topicIdsByName.has(resourceName)) problems.push(`configs of missing topic '${resourceName}'`)
  }
  for (const [name, level] of image.features) if (level <= 0) problems.push(`feature ${name} at level ${level}`)
  return problems
}

function splitResourceKey(key: string): [number, string] {
  const colon = key.indexOf(':')
  return [Number(key.slice(0, colon)), key.slice(colon + 1)]
}

function fail(message: string): never {
  throw new MetadataImageError(message)
}
