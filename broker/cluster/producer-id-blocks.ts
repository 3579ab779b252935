/**
 * A cluster node's producer-id blocks come from the active controller (KIP-730, Kafka's RPCProducerIdManager): each
 * block is an AllocateProducerIds request naming this node and its broker epoch, run by this node's own controller
 * when it is the active one, else sent to the active controller's listener. The controller answers once the
 * ProducerIdsRecord that moves the cluster's next producer id past the block is committed, so no two nodes, and no
 * node before and after a restart, ever get the same block: the node itself keeps nothing.
 *
 * While no block can be had (the node is not registered yet, no controller is known or reachable, the controller
 * refuses the epoch) `nextBlock` rejects with COORDINATOR_LOAD_IN_PROGRESS. InitProducerId never waits for a block
 * from here (ProducerIdManager answers COORDINATOR_LOAD_IN_PROGRESS, retriable, at once while one is on its way); a
 * call after a failed request asks the controller again.
 */
import { ErrorCode, errorInfo, KafkaError } from '../../protocol/errors.js'
import { allocateProducerIds, type AllocateProducerIdsResponse } from '../../protocol/messages/allocate-producer-ids.js'
import type { ProducerIdBlock, ProducerIdBlockSource } from '../transaction/producer-id-manager.js'
import type { QuorumRunner } from './quorum-runner.js'

export interface ControllerProducerIdBlockSourceOptions {
  readonly quorum: QuorumRunner
  /** The node's current broker epoch (its registration with the controller), null while it is not registered. */
  readonly brokerEpoch: () => bigint | null
}

export class ControllerProducerIdBlockSource implements ProducerIdBlockSource {
  readonly remote = true

  constructor(private readonly options: ControllerProducerIdBlockSourceOptions) {}

  /** The next block from the active controller. Rejects with a KafkaError of COORDINATOR_LOAD_IN_PROGRESS while it cannot. */
  async nextBlock(): Promise<ProducerIdBlock> {
    const { quorum } = this.options
    const brokerEpoch = this.options.brokerEpoch()
    if (brokerEpoch === null) throw unavailable('this node is not registered with the controller yet')
    const request = { brokerId: quorum.nodeId, brokerEpoch }
    const leaderId = quorum.leaderId
    let answer: { errorCode: number; producerIdStart: bigint; producerIdLen: number }
    if (leaderId === quorum.nodeId) {
      const result = await quorum.allocateProducerIds(request)
      answer = result.ok
        ? { errorCode: ErrorCode.NONE, producerIdStart: result.producerIdStart, producerIdLen: result.producerIdLen }
        : { errorCode: result.errorCode, producerIdStart: -1n, producerIdLen: 0 }
    } else {
      try {
        // The 'internal' channel (CONTROLLER_CHANNELS): the node's own request, asked again by the next call if it fails.
        answer = await quorum.requestActiveController<AllocateProducerIdsResponse>(allocateProducerIds, 0, request, { channel: 'internal' })
      } catch (error) {
        throw unavailable((error as Error).message)
      }
    }
    if (answer.errorCode !== ErrorCode.NONE) throw unavailable(`the controller answered AllocateProducerIds with ${errorInfo(answer.errorCode).name}`)
    if (answer.producerIdStart < 0n || answer.producerIdLen <= 0) {
      throw unavailable(`the controller answered an empty block (start ${answer.producerIdStart}, length ${answer.producerIdLen})`)
    }
    return { firstProducerId: answer.producerIdStart, size: answer.producerIdLen }
  }
}

function unavailable(why: string): KafkaError {
  return new KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, `no producer-id block: ${why}`)
}
