/**
 * The records of `__transaction_state`, in Kafka's own format (TransactionLog), so tools that read the topic see what
 * they see on Kafka:
 *
 *   key   = int16 key version (0) | TransactionLogKey {transactionalId}
 *   value = int16 value version (0) | TransactionLogValue {producerId, producerEpoch, transactionTimeoutMs,
 *           transactionStatus, transactionPartitions, transactionLastUpdateTimestampMs, transactionStartTimestampMs}
 *           or null (a tombstone: the transactional id expired)
 *
 * A transactional id lives in partition `abs(javaHashCode(transactionalId)) % partitions` (the group rule), so its
 * coordinator is the leader of that partition, as in Kafka.
 */
import { codecFor } from '../../protocol/codec.js'
import { Reader } from '../../protocol/reader.js'
import { Writer } from '../../protocol/writer.js'
import { transactionLogKey, type TransactionLogKey } from '../../protocol/messages/internal/transaction-coordinator/transaction-log-key.js'
import {
  transactionLogValue,
  type TransactionLogValue,
} from '../../protocol/messages/internal/transaction-coordinator/transaction-log-value.js'

export const TRANSACTION_STATE_TOPIC = '__transaction_state'

export { partitionForGroup as partitionForTransactionalId } from '../group/offsets-topic.js'

const KEY_VERSION = 0
const VALUE_VERSION = 0

export function transactionKey(transactionalId: string): Buffer {
  const writer = new Writer(64)
  writer.int16(KEY_VERSION)
  codecFor<TransactionLogKey>(transactionLogKey, KEY_VERSION).encode(writer, { transactionalId })
  return writer.toBuffer()
}

export function transactionValue(value: TransactionLogValue): Buffer {
  const writer = new Writer(128)
  writer.int16(VALUE_VERSION)
  codecFor<TransactionLogValue>(transactionLogValue, VALUE_VERSION).encode(writer, value)
  return writer.toBuffer()
}

/** Decodes one record of the topic; null for a key version this node does not know. */
export function decodeTransactionRecord(key: Buffer, value: Buffer | null): { transactionalId: string; value: TransactionLogValue | null } | null {
  const keyReader = new Reader(key)
  if (keyReader.int16() !== KEY_VERSION) return null
  const { transactionalId } = codecFor<TransactionLogKey>(transactionLogKey, KEY_VERSION).decode(keyReader)
  if (value === null) return { transactionalId, value: null }
  const reader = new Reader(value)
  return { transactionalId, value: codecFor<TransactionLogValue>(transactionLogValue, reader.int16()).decode(reader) }
}
