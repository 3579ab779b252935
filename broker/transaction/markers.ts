/**
 * Writing transaction markers (Kafka's WriteTxnMarkers, as the leader of each partition handles it): a COMMIT or
 * ABORT control batch to every partition of a transaction. The coordinator calls this in-process on one node; the
 * WriteTxnMarkers API (handlers/transactions.ts) calls the same code, as a coordinator on another node will.
 *
 * A marker for a partition of __consumer_offsets also decides the transactional offset commits pending there
 * (GroupMetadataManager.completeTransaction, through `onMarker`), once it is written.
 */
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import { StorageError } from '../../storage/log-store.js'
import type { Logger } from '../logger.js'
import type { TxnMarker } from '../partition.js'
import type { TopicManager } from '../topics.js'
import type { TopicPartitionRef } from './metadata.js'

/** Told of each marker written: the partition, and the marker. */
export type MarkerListener = (partition: TopicPartitionRef, marker: TxnMarker) => void

export class TxnMarkerWriter {
  private readonly listeners: MarkerListener[] = []

  constructor(
    private readonly topics: TopicManager,
    private readonly log: Logger,
  ) {}

  onMarker(listener: MarkerListener): void {
    this.listeners.push(listener)
  }

  /**
   * Writes `marker` to each partition, one after another; returns an error code per partition: NONE,
   * UNKNOWN_TOPIC_OR_PARTITION (the topic was deleted: nothing to decide there), INVALID_PRODUCER_EPOCH or
   * TRANSACTION_COORDINATOR_FENCED (a newer producer or coordinator has decided already). Rejects with the
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
      try {
        await partition.appendMarker(marker)
      } catch (error) {
        if (error instanceof StorageError || !(error instanceof KafkaError)) throw error
        this.log.warn(`${marker.committed ? 'COMMIT' : 'ABORT'} marker of producer ${marker.producerId} refused by ${tp.topic}-${tp.partition}: ${error.message}`)
        codes.push(error.code)
        continue
      }
      codes.push(ErrorCode.NONE)
      for (const listener of this.listeners) listener(tp, marker)
      if (codes.length === 1) options.afterFirst?.()
    }
    return codes
  }
}
