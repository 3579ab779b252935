/**
 * A cluster node's local logs follow its metadata image (Kafka's BrokerMetadataPublisher handing topic deltas to the
 * ReplicaManager): for each image the node applies, every topic of the image has its local logs under the image's
 * topic id with as many partitions as the image gives it (new partitions are added, CreatePartitions), each carrying
 * the image's leaderEpoch, and with the image's config overrides (ConfigRecords, AlterConfigs) parsed against this
 * node's defaults; a local topic whose id the image no longer holds is deleted with its data. The internal topics (`__consumer_offsets`, `__transaction_state`) are the cluster's like any
 * other; once an image is applied, `onApplied` hands it on, saying whether the node has caught up (the coordinators
 * load and unload the partitions of their internal topics then, with the logs in place, and only from the images of
 * a node that has caught up: a restarted node's snapshot may name it the leader of partitions that have moved since).
 *
 * Deleting waits until the node has caught up with the metadata log (the controller unfenced it, which it does
 * only once the node applied everything up to its registration, Kafka's BrokerLifecycleManager): a restarted node
 * starts from its latest snapshot, which may be older than topics it holds data for, and must not take a topic
 * missing from a stale image for a deleted one. Opening needs no such wait: a topic in any committed image exists.
 *
 * Images arrive faster than logs open: one change runs at a time, and only the newest image waiting is applied
 * next (each image holds the whole state, so skipping one in between loses nothing).
 *
 * A topic gets a local log for every partition, replicated here or not: the partitions this node is a replica of are
 * handed on through `onApplied` to the node's ReplicaManager, which makes each leader or follower; the data paths
 * answer NOT_LEADER_OR_FOLLOWER for every partition this node does not lead (handler.ts, `leadershipError`), so the
 * logs of partitions it does not replicate stay empty.
 */
import type { Logger } from '../logger.js'
import { counted } from '../../client/wording.js'
import type { TopicManager } from '../topics.js'
import type { Topic } from '../partition.js'
import { dynamicBrokerConfigs, sameConfigs, topicConfigs, type MetadataImage, type TopicImage } from './metadata/image.js'

export class LocalLogs {
  private running: Promise<void> | null = null
  private next: MetadataImage | null = null
  private latest: MetadataImage | null = null
  private caughtUp = false
  /** Topics of the image waiting for a local topic of their name to go (logged once each). */
  private readonly waitingForCatchUp = new Set<string>()

  constructor(
    private readonly topics: TopicManager,
    private readonly log: Logger,
    private readonly options: { readonly nodeId?: number; readonly onApplied?: (image: MetadataImage, state: { readonly caughtUp: boolean }) => void } = {},
  ) {}

  /**
   * Brings the local topics to `image` (after the changes already under way). The dynamic broker configs it holds for
   * every node and for this one become the topics' defaults at once, before anything waiting on the image goes on (an
   * AlterConfigs answered once the image holds its change, a DescribeConfigs after it).
   */
  follow(image: MetadataImage): void {
    if (this.options.nodeId !== undefined) {
      const dynamic = dynamicBrokerConfigs(image, this.options.nodeId)
      const current = this.topics.dynamicConfigs
      if (!sameConfigs(dynamic.cluster, current.cluster) || !sameConfigs(dynamic.broker, current.broker)) {
        this.topics.setDynamicConfigs(dynamic)
        this.log.info(`dynamic broker configs from the metadata image: ${JSON.stringify(dynamic)}`)
      }
    }
    this.latest = image
    this.next = image
    this.running ??= this.drain()
  }

  /** The node has caught up with the metadata log: local topics the image does not hold may be deleted from now on. */
  markCaughtUp(): void {
    if (this.caughtUp) return
    this.caughtUp = true
    if (this.latest) this.follow(this.latest)
  }

  /** Resolves once every image handed in has been applied. */
  async settled(): Promise<void> {
    while (this.running) await this.running
  }

  private async drain(): Promise<void> {
    try {
      while (this.next) {
        const image = this.next
        this.next = null
        await this.apply(image)
        try {
          this.options.onApplied?.(image, { caughtUp: this.caughtUp })
        } catch (error) {
          this.log.error(`could not apply the partition states of metadata offset ${image.provenance.offset}: ${(error as Error).stack ?? (error as Error).message}`)
        }
      }
    } finally {
      this.running = null
    }
  }

  private async apply(image: MetadataImage): Promise<void> {
    for (const local of this.caughtUp ? this.topics.list() : []) {
      if (image.topicsById.has(local.topicId)) continue
      try {
        await this.topics.delete(local)
        this.log.info(`deleted topic '${local.name}' (${local.topicId}): the metadata image no longer has it`)
      } catch (error) {
        this.log.error(`could not delete topic '${local.name}': ${(error as Error).message}`)
      }
    }
    for (const topic of image.topicsById.values()) {
      // A topic deleted and created again under its name while this node was away: the old one's log goes once this
      // node has caught up with the metadata log (above), and the new one opens then.
      const replaced = this.topics.getById(topic.topicId) === undefined ? this.topics.get(topic.name) : undefined
      if (replaced !== undefined && !this.caughtUp) {
        if (!this.waitingForCatchUp.has(topic.topicId)) {
          this.waitingForCatchUp.add(topic.topicId)
          this.log.info(`topic '${topic.name}' (${topic.topicId}) replaces the local topic of that name (${replaced.topicId}) once this node has caught up with the metadata log`)
        }
        continue
      }
      try {
        const local = this.topics.getById(topic.topicId) ?? (await this.open(image, topic))
        if (local.partitions.length < topic.partitions.size) {
          await this.topics.addPartitions(local, topic.partitions.size)
          this.log.info(`topic '${topic.name}' now has ${counted(topic.partitions.size, 'partition')} from the metadata image`)
        }
        const overrides = topicConfigs(image, topic.name)
        if (!sameConfigs(local.config.overrides, overrides)) {
          await this.topics.setConfig(local, this.topics.parseConfig(overrides, { stored: true }))
          this.log.info(`topic '${topic.name}' configs from the metadata image: ${JSON.stringify(overrides)}`)
        }
        for (const [index, registration] of topic.partitions) {
          const partition = local.partitions[index]
          if (partition) partition.leaderEpoch = registration.leaderEpoch
        }
      } catch (error) {
        this.log.error(`could not bring topic '${topic.name}' to the metadata image (its logs, partitions or configs): ${(error as Error).message}`)
      }
    }
  }

  private async open(image: MetadataImage, topic: TopicImage): Promise<Topic> {
    const overrides = topicConfigs(image, topic.name)
    const created = await this.topics.create({
      name: topic.name,
      topicId: topic.topicId,
      partitions: topic.partitions.size,
      replicationFactor: topic.partitions.get(0)?.replicas.length ?? 1,
      config: this.topics.parseConfig(overrides, { stored: true }),
    })
    this.log.info(`opened topic '${topic.name}' (${topic.topicId}) from the metadata image, ${counted(topic.partitions.size, 'partition')}`)
    return created
  }
}

