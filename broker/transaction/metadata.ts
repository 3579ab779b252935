/**
 * One transactional id's state (Kafka's TransactionMetadata and TransactionState), as the coordinator keeps it in
 * memory and writes it to `__transaction_state`.
 *
 *                 InitProducerId (epoch + 1)
 *          ┌──────────────────────────────────────────────┐
 *          v                                              │
 *       ┌───────┐  AddPartitionsToTxn /   ┌─────────┐      │
 *  ───> │ Empty │ ──AddOffsetsToTxn─────> │ Ongoing │ <────┼── AddPartitionsToTxn (more partitions)
 *       └───────┘                         └─────────┘      │
 *          ^                     EndTxn(commit) │ │ EndTxn(abort), timeout or InitProducerId (epoch + 1)
 *          │                                    v v                  │
 *          │                  ┌───────────────┐   ┌──────────────┐   │
 *          │                  │ PrepareCommit │   │ PrepareAbort │   │
 *          │                  └───────────────┘   └──────────────┘   │
 *          │            markers written │                 │ markers written
 *          │                            v                 v          │
 *          │                  ┌────────────────┐  ┌───────────────┐  │
 *          └──────────────────│ CompleteCommit │  │ CompleteAbort │──┘
 *                             └────────────────┘  └───────────────┘
 *    Empty, CompleteCommit, CompleteAbort ── transactional.id.expiration.ms idle ──> Dead (a tombstone; forgotten)
 *
 * Invariants:
 * - Every transition is written to __transaction_state before the coordinator acts on it or answers: what a replay
 *   rebuilds is what clients were told.
 * - `partitions` is non-empty exactly in Ongoing, PrepareCommit and PrepareAbort; they are cleared on Complete*.
 * - In PrepareCommit/PrepareAbort the decision is final: after a restart the coordinator writes the markers again
 *   (a marker for a transaction already ended decides nothing) and then Complete*; no request changes the state
 *   meanwhile (CONCURRENT_TRANSACTIONS).
 * - The producer epoch only grows for one producer id; an epoch at the top of the range moves to a new producer id.
 * - Kafka's PrepareEpochFence (a zombie's transaction aborted under a bumped epoch) is written as PrepareAbort with the
 *   bumped epoch, which a replay treats the same way.
 */
import type { TransactionLogValue } from '../../protocol/messages/internal/transaction-coordinator/transaction-log-value.js'

/** TransactionState's ids, as stored in TransactionLogValue.transactionStatus. */
export const TxnState = {
  Empty: 0,
  Ongoing: 1,
  PrepareCommit: 2,
  PrepareAbort: 3,
  CompleteCommit: 4,
  CompleteAbort: 5,
  Dead: 6,
  PrepareEpochFence: 7,
} as const
export type TxnState = (typeof TxnState)[keyof typeof TxnState]

export const TXN_STATE_NAMES: Readonly<Record<TxnState, string>> = {
  0: 'Empty',
  1: 'Ongoing',
  2: 'PrepareCommit',
  3: 'PrepareAbort',
  4: 'CompleteCommit',
  5: 'CompleteAbort',
  6: 'Dead',
  7: 'PrepareEpochFence',
}

/** Which states may follow which (TransactionState.validPreviousStates, inverted). */
const NEXT: Readonly<Record<TxnState, readonly TxnState[]>> = {
  [TxnState.Empty]: [TxnState.Empty, TxnState.Ongoing, TxnState.PrepareAbort, TxnState.Dead],
  [TxnState.Ongoing]: [TxnState.Ongoing, TxnState.PrepareCommit, TxnState.PrepareAbort],
  [TxnState.PrepareCommit]: [TxnState.CompleteCommit],
  [TxnState.PrepareAbort]: [TxnState.CompleteAbort],
  [TxnState.CompleteCommit]: [TxnState.Empty, TxnState.Ongoing, TxnState.PrepareAbort, TxnState.Dead],
  [TxnState.CompleteAbort]: [TxnState.Empty, TxnState.Ongoing, TxnState.PrepareAbort, TxnState.Dead],
  [TxnState.Dead]: [],
  [TxnState.PrepareEpochFence]: [TxnState.PrepareAbort],
}

/** Short.MAX_VALUE: an epoch that may not be bumped again without a new producer id. */
export const MAX_PRODUCER_EPOCH = 32767

export interface TopicPartitionRef {
  readonly topic: string
  readonly partition: number
}

export function partitionKey(tp: TopicPartitionRef): string {
  return `${tp.topic}\u0000${tp.partition}`
}

export function parsePartitionKey(key: string): TopicPartitionRef {
  const at = key.lastIndexOf('\u0000')
  return { topic: key.slice(0, at), partition: Number(key.slice(at + 1)) }
}

export class TransactionMetadata {
  producerId = -1n
  /**
   * The producer id and epoch before the last bump, when that InitProducerId named them (KIP-360), for its retry after
   * its answer was lost; -1 after a bump that named none (TransactionMetadata.prepareIncrementProducerEpoch).
   */
  lastProducerId = -1n
  lastProducerEpoch = -1
  producerEpoch = -1
  txnTimeoutMs = 0
  state: TxnState = TxnState.Empty
  /** `partitionKey`s of the partitions in the transaction. */
  readonly partitions = new Set<string>()
  txnStartTimestamp = -1
  txnLastUpdateTimestamp = -1

  constructor(readonly transactionalId: string) {}

  /** Moves to `next`; throws on a transition the diagram does not have (a coordinator bug, never a client's doing). */
  transition(next: TxnState, now: number): void {
    if (!NEXT[this.state].includes(next)) throw new Error(`transaction '${this.transactionalId}': ${TXN_STATE_NAMES[this.state]} -> ${TXN_STATE_NAMES[next]} is not a transition`)
    if (next === TxnState.Ongoing && this.state !== TxnState.Ongoing) this.txnStartTimestamp = now
    if (next === TxnState.Empty || next === TxnState.CompleteCommit || next === TxnState.CompleteAbort) this.partitions.clear()
    this.state = next
    this.txnLastUpdateTimestamp = now
  }

  get isCompleting(): boolean {
    return this.state === TxnState.PrepareCommit || this.state === TxnState.PrepareAbort
  }

  toRecord(): TransactionLogValue {
    const byTopic = new Map<string, number[]>()
    for (const key of this.partitions) {
      const { topic, partition } = parsePartitionKey(key)
      byTopic.set(topic, [...(byTopic.get(topic) ?? []), partition])
    }
    return {
      producerId: this.producerId,
      producerEpoch: this.producerEpoch,
      transactionTimeoutMs: this.txnTimeoutMs,
      transactionStatus: this.state,
      transactionPartitions: this.state === TxnState.Empty || this.state === TxnState.CompleteCommit || this.state === TxnState.CompleteAbort
        ? null
        : [...byTopic].map(([topic, partitionIds]) => ({ topic, partitionIds })),
      transactionLastUpdateTimestampMs: BigInt(this.txnLastUpdateTimestamp),
      transactionStartTimestampMs: BigInt(this.txnStartTimestamp),
    }
  }

  static fromRecord(transactionalId: string, value: TransactionLogValue): TransactionMetadata {
    const metadata = new TransactionMetadata(transactionalId)
    metadata.producerId = value.producerId
    metadata.producerEpoch = value.producerEpoch
    metadata.txnTimeoutMs = value.transactionTimeoutMs
    metadata.state = (value.transactionStatus === TxnState.PrepareEpochFence ? TxnState.PrepareAbort : value.transactionStatus) as TxnState
    for (const t of value.transactionPartitions ?? []) for (const p of t.partitionIds) metadata.partitions.add(partitionKey({ topic: t.topic, partition: p }))
    metadata.txnLastUpdateTimestamp = Number(value.transactionLastUpdateTimestampMs)
    metadata.txnStartTimestamp = Number(value.transactionStartTimestampMs)
    return metadata
  }
}
