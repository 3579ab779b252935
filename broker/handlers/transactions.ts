/**
 * Idempotent and transactional producers: InitProducerId v0-5.
 *
 * Behaviour
 * - InitProducerId without a transactional id (an idempotent producer) answers a new producer id, never handed out
 *   before (ids come in blocks reserved durably, broker/transaction/producer-id-manager.ts), with epoch 0. A producer
 *   id given with epoch -1, or epoch given with producer id -1, is INVALID_REQUEST (KafkaApis.handleInitProducerIdRequest).
 * - With a transactional id it is COORDINATOR_NOT_AVAILABLE, as FindCoordinator answers for transactional ids: the node
 *   coordinates no transactions.
 *
 * Version notes
 * - v2+ are flexible; v3+ carry the producer id and epoch a producer resumes with (KIP-360); v4+ may answer
 *   PRODUCER_FENCED where older versions get INVALID_PRODUCER_EPOCH; v5 may answer TRANSACTION_ABORTABLE (KIP-890),
 *   which Brook never needs to.
 */
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../../protocol/messages/init-producer-id.js'
import { ErrorCode } from '../../protocol/errors.js'
import { defineHandler } from '../handler.js'

export const initProducerIdHandler = defineHandler<InitProducerIdRequest, InitProducerIdResponse>(
  initProducerId,
  '0-5',
  async (request, { services, apiVersion }) => {
    const fail = (errorCode: number): InitProducerIdResponse => ({ throttleTimeMs: 0, errorCode, producerId: -1n, producerEpoch: -1 })
    const givenId = apiVersion >= 3 ? request.producerId : -1n
    const givenEpoch = apiVersion >= 3 ? request.producerEpoch : -1
    if ((givenId === -1n) !== (givenEpoch === -1)) return fail(ErrorCode.INVALID_REQUEST)
    const result = await services.transactions.initProducerId(request.transactionalId)
    const errorCode = apiVersion < 4 && result.errorCode === ErrorCode.PRODUCER_FENCED ? ErrorCode.INVALID_PRODUCER_EPOCH : result.errorCode
    return { throttleTimeMs: 0, errorCode, producerId: result.producerId, producerEpoch: result.producerEpoch }
  },
)
