/**
 * Writing transaction markers (Kafka's WriteTxnMarkers, as the leader of each partition handles it): a COMMIT or
 * ABORT control batch to every partition of a transaction. The coordinator calls this in-process on one node; the
 * WriteTxnMarkers API (handlers/transactions.ts) calls the same code, as a coordinator on another node will.
 *
 * A marker for a partition of __consumer_offsets also decides the transactional offset commits pending there
 * (GroupMetadataManager.completeTransaction, through `onMarker`), once it is written.
 *
 * On a cluster node a marker counts as written once the partition's ISR has it (Kafka appends markers with acks=-1):
 * a marker only the leader held would be lost with it, and the transaction, completed by its coordinator, would stay
 * open on the new leader, holding every read_committed consumer at its last stable offset. Until then the partition's
 * code is the replication's (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT), and the
 * coordinator sends the marker again; a second marker of a transaction already decided changes nothing for readers.
 */
import { ErrorCode, errorInfo, KafkaError } from '../../protocol/errors.js'
import { StorageError } from '../../storage/log-store.js'
import type { Logger } from '../logger.js'
import type { TxnMarker } from '../partition.js'
import type { TopicManager } from '../topics.js'
import type { ReplicaManager } from '../cluster/replica-manager.js'
import type { TopicPartitionRef } from './metadata.js'

/** How long a marker waits for the ISR before the coordinator is told to send it again. */
const MARKER_REPLICATION_TIMEOUT_MS = 5000

/** Told of each marker written: the partition, and the marker. */
export type MarkerListener = (partition: TopicPartitionRef, marker: TxnMarker) => void

export class TxnMarkerWriter {
  private readonly listeners: MarkerListener[] = []

  /** `replicas`: a cluster node's, whose ISR must have a marker before it counts as written; absent on a single node. */
  constructor(
    private readonly topics: TopicManager,
    private readonly log: Logger,
    private readonly replicas?: ReplicaManager,
  ) {}

  onMarker(listener: MarkerListener): void {
    this.listeners.push(listener)
  }

  /**
   * Writes `marker` to each partition, one after another; returns an error code per partition: NONE,
   * UNKNOWN_TOPIC_OR_PARTITION (the topic was deleted: nothing to decide there), INVALID_PRODUCER_EPOCH or
   * TRANSACTION_COORDINATOR_FENCED (a newer producer or coordinator has decided already), or on a cluster node the
   * replication's code when the ISR did not take the marker (see the top of the module). Rejects with the
   * StorageError when the node refuses writes: the transaction is then completed after a restart.
   * `afterFirst` runs once the first marker is written (a failpoint).
   */
  async write(marker: TxnMarker, partitions: readonly TopicPartitionRef[], options: { afterFirst?: () => void } = {}): Promise<number[]> {
    const codes: number[] = []
    for (const tp of partitions) {
      const partition = this.topics.partition(tp.topic, tp.partition)
      if (!partition) {
        codes.push(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        continue
      }
      let replicated: number = ErrorCode.NONE
      try {
        const { lastOffset } = await partition.appendMarker(marker)
        if (this.replicas) {
          replicated = await this.replicas.awaitHighWatermark(partition.topic.topicId, partition.index, lastOffset + 1n, MARKER_REPLICATION_TIMEOUT_MS)
        }
      } catch (error) {
        if (error instanceof StorageError || !(error instanceof KafkaError)) throw error
        this.log.warn(`${marker.committed ? 'COMMIT' : 'ABORT'} marker of producer ${marker.producerId} refused by ${tp.topic}-${tp.partition}: ${error.message}`)
        codes.push(error.code)
        continue
      }
      if (replicated !== ErrorCode.NONE) {
        this.log.warn(`${marker.committed ? 'COMMIT' : 'ABORT'} marker of producer ${marker.producerId} not replicated by ${tp.topic}-${tp.partition} (${errorInfo(replicated).name}); the coordinator sends it again`)
        codes.push(replicated)
        continue
      }
      codes.push(ErrorCode.NONE)
      for (const listener of this.listeners) listener(tp, marker)
      if (codes.length === 1) options.afterFirst?.()
    }
    return codes
  }
}
