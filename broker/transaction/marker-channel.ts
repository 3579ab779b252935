/**
 * Sending a transaction's COMMIT or ABORT markers to the leaders of its partitions (Kafka's
 * TransactionMarkerChannelManager): on a single node every partition is the node's own and the markers are written
 * in-process (markers.ts). On a cluster node each partition's leader comes from the metadata image: the partitions
 * this node leads are written in-process, the others go to their leaders as one WriteTxnMarkers (27) request per
 * leader, through the client layer, to the client listener the leader registered.
 *
 *   send(marker, partitions)
 *     └─> group by leader (image) ─> this node: TxnMarkerWriter.write
 *                                └─> another: WriteTxnMarkers v1 ─> per partition: done, or retry
 *         retry: after a backoff (100 ms doubling to 1 s), with the image as it is then (a moved leader is found)
 *
 * - Done for a partition: written (NONE); or a marker a newer producer or coordinator has decided already
 *   (INVALID_PRODUCER_EPOCH, TRANSACTION_COORDINATOR_FENCED); or the partition's topic is gone from the image (deleted:
 *   nothing to decide there).
 * - Retried: NOT_LEADER_OR_FOLLOWER (the image moved the partition), UNKNOWN_TOPIC_OR_PARTITION from a leader whose
 *   logs have not caught up with a topic the image holds, a partition without a leader, a lost connection, a
 *   timeout, any other error: a transaction completes only once every marker is written, as Kafka's does.
 * - Retries stop when this node stops coordinating the transactional id (`stillCoordinator`): the new coordinator
 *   completes the transaction from the Prepare record it loads, and `send` rejects with NOT_COORDINATOR.
 * A StorageError of this node's own write rejects at once (the node refuses writes; a restart completes it).
 */
import { ErrorCode, KafkaError, errorInfo } from '../../protocol/errors.js'
import { writeTxnMarkers, type WriteTxnMarkersRequest, type WriteTxnMarkersResponse } from '../../protocol/messages/write-txn-markers.js'
import type { Logger } from '../logger.js'
import type { TxnMarker } from '../partition.js'
import type { QuorumRunner } from '../cluster/quorum-runner.js'
import type { NodeChannels } from '../cluster/node-channels.js'
import type { TopicPartitionRef } from './metadata.js'
import type { TxnMarkerWriter } from './markers.js'

const WRITE_TXN_MARKERS_VERSION = 1
const FIRST_BACKOFF_MS = 100
const MAX_BACKOFF_MS = 1000

/** Codes after which a partition's marker needs no more sending. */
const SETTLED: ReadonlySet<number> = new Set([ErrorCode.NONE, ErrorCode.INVALID_PRODUCER_EPOCH, ErrorCode.TRANSACTION_COORDINATOR_FENCED])

export interface MarkerSendOptions {
  /** Whether this node still coordinates the transaction; retries stop (NOT_COORDINATOR) once it does not. */
  readonly stillCoordinator: () => boolean
  /** Runs once the first marker is written (a failpoint). */
  readonly afterFirst?: () => void
}

export class TxnMarkerChannel {
  /**
   * `cluster`: a cluster node's quorum member (whose image names the leaders), its node id and its connections to
   * the other nodes; absent on a single node.
   */
  constructor(
    private readonly writer: TxnMarkerWriter,
    private readonly log: Logger,
    private readonly cluster?: { readonly quorum: QuorumRunner; readonly nodeId: number; readonly nodes: NodeChannels },
  ) {}

  /** Writes `marker` to every partition (see the top of the module); resolves once every one is settled. */
  async send(marker: TxnMarker, partitions: readonly TopicPartitionRef[], options: MarkerSendOptions): Promise<void> {
    let first = true
    const afterFirst = (): void => {
      if (!first) return
      first = false
      options.afterFirst?.()
    }
    if (!this.cluster) {
      await this.writer.write(marker, partitions, { afterFirst })
      return
    }
    let remaining = [...partitions]
    for (let attempt = 0, backoffMs = FIRST_BACKOFF_MS; remaining.length > 0; attempt++) {
      if (attempt > 0) {
        await new Promise((resolve) => setTimeout(resolve, backoffMs))
        backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS)
        if (!options.stillCoordinator()) {
          throw new KafkaError(ErrorCode.NOT_COORDINATOR, `markers of producer ${marker.producerId} left unsent: this node no longer coordinates the transaction`)
        }
      }
      remaining = await this.attempt(marker, remaining, afterFirst)
    }
  }

  /** One round: every partition sent to its leader of the moment; answers the partitions still to send. */
  private async attempt(marker: TxnMarker, partitions: readonly TopicPartitionRef[], afterFirst: () => void): Promise<TopicPartitionRef[]> {
    const { quorum, nodeId } = this.cluster!
    const image = quorum.controller.image
    const byLeader = new Map<number, TopicPartitionRef[]>()
    const retry: TopicPartitionRef[] = []
    for (const tp of partitions) {
      const topic = image.topic(tp.topic)
      if (!topic) continue
      const leader = topic.partitions.get(tp.partition)?.leader ?? -1
      if (leader < 0) retry.push(tp)
      else byLeader.set(leader, [...(byLeader.get(leader) ?? []), tp])
    }
    await Promise.all(
      [...byLeader].map(async ([leader, tps]) => {
        let codes: number[]
        try {
          codes = leader === nodeId ? await this.writer.write(marker, tps, { afterFirst }) : await this.sendTo(leader, marker, tps)
        } catch (error) {
          if (leader === nodeId || error instanceof KafkaError) throw error
          this.log.debug(`markers of producer ${marker.producerId} to node ${leader}: ${(error as Error).message}; retrying`)
          retry.push(...tps)
          return
        }
        tps.forEach((tp, i) => {
          const code = codes[i] ?? ErrorCode.UNKNOWN_SERVER_ERROR
          if (code === ErrorCode.NONE && leader !== nodeId) afterFirst()
          if (SETTLED.has(code)) return
          // A topic deleted since is settled by the image (above); one the leader does not hold yet is not.
          if (code === ErrorCode.UNKNOWN_TOPIC_OR_PARTITION && !quorum.controller.image.topic(tp.topic)) return
          this.log.debug(`marker of producer ${marker.producerId} for ${tp.topic}-${tp.partition} at node ${leader}: ${errorInfo(code).name}; retrying`)
          retry.push(tp)
        })
      }),
    )
    return retry
  }

  /** WriteTxnMarkers to node `leader`'s client listener; an error code per partition, in order. */
  private async sendTo(leader: number, marker: TxnMarker, partitions: readonly TopicPartitionRef[]): Promise<number[]> {
    const topics = new Map<string, number[]>()
    for (const tp of partitions) topics.set(tp.topic, [...(topics.get(tp.topic) ?? []), tp.partition])
    const request: WriteTxnMarkersRequest = {
      markers: [
        {
          producerId: marker.producerId,
          producerEpoch: marker.producerEpoch,
          transactionResult: marker.committed,
          topics: [...topics].map(([name, partitionIndexes]) => ({ name, partitionIndexes })),
          coordinatorEpoch: marker.coordinatorEpoch,
        },
      ],
    }
    const response = await this.cluster!.nodes.request<WriteTxnMarkersResponse>(leader, writeTxnMarkers, WRITE_TXN_MARKERS_VERSION, request)
    const codes = new Map<string, number>()
    for (const t of response.markers[0]?.topics ?? []) for (const p of t.partitions) codes.set(`${t.name}:${p.partitionIndex}`, p.errorCode)
    return partitions.map((tp) => codes.get(`${tp.topic}:${tp.partition}`) ?? ErrorCode.UNKNOWN_SERVER_ERROR)
  }
}
