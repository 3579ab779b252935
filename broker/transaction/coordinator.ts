/**
 * The transaction coordinator (Kafka's TransactionCoordinator): producer ids and epochs for idempotent and
 * transactional producers.
 */
import { ErrorCode } from '../../protocol/errors.js'
import { StorageError } from '../../storage/log-store.js'
import type { Logger } from '../logger.js'
import type { ProducerIdManager } from './producer-id-manager.js'

/** What InitProducerId answers: an error, or the producer id and epoch to write with. */
export interface InitProducerIdResult {
  errorCode: number
  producerId: bigint
  producerEpoch: number
}

export class TransactionCoordinator {
  constructor(
    private readonly producerIds: ProducerIdManager,
    private readonly log: Logger,
  ) {}

  /**
   * InitProducerId (TransactionCoordinator.handleInitProducerId). Without a transactional id (an idempotent producer)
   * the answer is always a new producer id with epoch 0, whatever id and epoch the producer names (KIP-360: a producer
   * that lost its state starts over with a new id).
   */
  async initProducerId(transactionalId: string | null): Promise<InitProducerIdResult> {
    if (transactionalId !== null) return { errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, producerId: -1n, producerEpoch: -1 }
    try {
      return { errorCode: ErrorCode.NONE, producerId: await this.producerIds.generateProducerId(), producerEpoch: 0 }
    } catch (error) {
      if (!(error instanceof StorageError)) throw error
      this.log.debug(`no producer id could be reserved: ${error.message}`)
      return { errorCode: ErrorCode.NOT_COORDINATOR, producerId: -1n, producerEpoch: -1 }
    }
  }
}
