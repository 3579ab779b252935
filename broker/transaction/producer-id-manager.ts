/**
 * Producer ids, handed out from blocks (Kafka's ProducerIdManager and ProducerIdsBlock): a node reserves a block of
 * PRODUCER_ID_BLOCK_SIZE ids from a block source, which records the reservation durably before the block is used, so
 * no id is handed out twice, across restarts included. On one node the source is the node's own records; in a
 * cluster the controller hands out blocks (AllocateProducerIds, `cluster/producer-id-blocks.ts`), behind the same interface.
 *
 *   source: next free id ── reserve ──> [first, first + 1000) ── generate ──> first, first + 1, ...   (next block
 *   fetched when 90% of this one is used, as Kafka's RPCProducerIdManager prefetches)
 *
 * With no id left, a local source's write is waited for (as Kafka's ZkProducerIdManager waits for its ZooKeeper
 * write); a remote source's block is not (RPCProducerIdManager.generateProducerId): the call is answered at once with
 * COORDINATOR_LOAD_IN_PROGRESS, which clients retry, and the block is asked for behind it.
 */
import { ErrorCode, KafkaError } from '../../protocol/errors.js'

/** A reserved range of producer ids: [firstProducerId, firstProducerId + size). */
export interface ProducerIdBlock {
  readonly firstProducerId: bigint
  readonly size: number
}

/** Where blocks come from. A block it returns is reserved durably: it is never returned again. */
export interface ProducerIdBlockSource {
  nextBlock(): Promise<ProducerIdBlock>
  /** Blocks come from another node (the controller): `generateProducerId` never waits for one. */
  readonly remote: boolean
}

/** ProducerIdManager's block size (ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE). */
export const PRODUCER_ID_BLOCK_SIZE = 1000
const PREFETCH_AT = 0.9

/** What the local block source needs: a durable key-value record of the node (LogStore's node records). */
export interface NodeRecords {
  getNodeValue<T>(key: string): Promise<T | undefined>
  putNodeValue(key: string, value: unknown): Promise<void>
}

const NEXT_BLOCK_KEY = 'producer-id-next-block'

/**
 * A single node's block source: the first id of the next block is a node record, moved past each block before the
 * block is handed out (a crash after the write loses at most the rest of one block, never reuses an id).
 */
export class LocalProducerIdBlockSource implements ProducerIdBlockSource {
  readonly remote = false
  private reserving: Promise<unknown> = Promise.resolve()

  constructor(private readonly records: NodeRecords) {}

  nextBlock(): Promise<ProducerIdBlock> {
    const run = this.reserving.then(async () => {
      const first = BigInt((await this.records.getNodeValue<bigint | number>(NEXT_BLOCK_KEY)) ?? 0n)
      await this.records.putNodeValue(NEXT_BLOCK_KEY, first + BigInt(PRODUCER_ID_BLOCK_SIZE))
      return { firstProducerId: first, size: PRODUCER_ID_BLOCK_SIZE }
    })
    this.reserving = run.catch(() => undefined)
    return run
  }
}

export class ProducerIdManager {
  private block: ProducerIdBlock | null = null
  private nextId = 0n
  /** The next block, asked for and not yet in use. */
  private prefetched: Promise<ProducerIdBlock> | null = null
  /** The asked-for blocks that have arrived. */
  private readonly arrived = new WeakSet<Promise<ProducerIdBlock>>()

  constructor(private readonly source: ProducerIdBlockSource) {}

  /**
   * A producer id no one has had; rejects when none can be had now: with a remote source and no id left, at once with
   * a KafkaError of COORDINATOR_LOAD_IN_PROGRESS while the next block is asked for (RPCProducerIdManager); with a local
   * one, when its write fails (a StorageError).
   */
  async generateProducerId(): Promise<bigint> {
    for (;;) {
      const block = this.block
      if (block && this.nextId < block.firstProducerId + BigInt(block.size)) {
        const id = this.nextId++
        if (Number(this.nextId - block.firstProducerId) >= block.size * PREFETCH_AT) this.maybeRequestNextBlock()
        return id
      }
      this.maybeRequestNextBlock()
      const pending = this.prefetched!
      if (this.source.remote && !this.arrived.has(pending)) {
        throw new KafkaError(ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, 'this node has no producer id left: its next block is on its way')
      }
      let next: ProducerIdBlock
      try {
        next = await pending
      } finally {
        if (this.prefetched === pending) this.prefetched = null
      }
      // Another caller may have installed it already while this one waited.
      if (this.block !== next) {
        this.block = next
        this.nextId = next.firstProducerId
      }
    }
  }

  /**
   * Asks the source for the next block unless it is being asked already or has answered one not yet used
   * (RPCProducerIdManager.maybeRequestNextBlock): a cluster node calls this once unfenced, so its first InitProducerId
   * finds a block.
   */
  maybeRequestNextBlock(): void {
    if (this.prefetched !== null) return
    const pending = this.source.nextBlock()
    this.prefetched = pending
    pending.then(
      () => this.arrived.add(pending),
      () => {
        if (this.prefetched === pending) this.prefetched = null
      },
    )
  }
}
