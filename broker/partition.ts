/**
 * A partition as the broker sees it: its log, who leads it and in which epoch, and the waiters that long-polling
 * fetches park on. On a single node this broker leads every partition in epoch 0, the ISR is this broker alone, and
 * the high watermark follows the durable log end.
 */
import type { PartitionLog } from '../storage/partition-log.js'
import { ErrorCode } from '../protocol/errors.js'
import type { TopicConfig } from './topic-configs.js'

export interface Topic {
  readonly name: string
  readonly topicId: string
  readonly isInternal: boolean
  /** Parsed when set (create, alter, load); replaced whole when the configs change. */
  config: TopicConfig
  partitions: Partition[]
  readonly replicationFactor: number
}

export class Partition {
  readonly leaderEpoch = 0
  private readonly waiters = new Set<() => void>()

  constructor(
    readonly topic: Topic,
    readonly index: number,
    readonly log: PartitionLog,
    readonly leaderId: number,
  ) {
    // The stored high watermark is saved with each write as it stood before that write, so after a restart it lags
    // the recovered log by the last write, whose records were acknowledged. With the ISR this broker alone, the
    // leader's HW is its durable log end, as Kafka's leader advances it on taking over (Partition.maybeIncrementLeaderHW).
    log.setHighWatermark(log.durableEndOffset)
  }

  get replicas(): number[] {
    return [this.leaderId]
  }

  get isr(): number[] {
    return [this.leaderId]
  }

  get highWatermark(): bigint {
    return this.log.highWatermark
  }

  /** The offset below which every transaction is decided; without transactions it is the high watermark. */
  get lastStableOffset(): bigint {
    return this.log.highWatermark
  }

  get logStartOffset(): bigint {
    return this.log.logStartOffset
  }

  get logEndOffset(): bigint {
    return this.log.logEndOffset
  }

  async appendAsLeader(batch: Buffer, options: { logAppendTime?: bigint }) {
    const result = await this.log.append(batch, { leaderEpoch: this.leaderEpoch, ...options })
    this.log.setHighWatermark(this.log.durableEndOffset)
    this.wake()
    return result
  }

  /** Calls `waiter` once, the next time data becomes readable; returns a function that cancels the wait. */
  onData(waiter: () => void): () => void {
    this.waiters.add(waiter)
    return () => this.waiters.delete(waiter)
  }

  /** Wakes every waiter; also used when the partition goes away, so that parked fetches answer at once. */
  wake(): void {
    if (this.waiters.size === 0) return
    const waiters = [...this.waiters]
    this.waiters.clear()
    for (const waiter of waiters) waiter()
  }
}

/**
 * Kafka's checkCurrentLeaderEpoch: -1 skips the check, an older epoch is fenced, a newer one is unknown to us yet
 * (the client saw a leader change this broker has not applied).
 */
export function leaderEpochError(partition: Partition, requested: number): number {
  if (requested === -1 || requested === partition.leaderEpoch) return ErrorCode.NONE
  return requested < partition.leaderEpoch ? ErrorCode.FENCED_LEADER_EPOCH : ErrorCode.UNKNOWN_LEADER_EPOCH
}
