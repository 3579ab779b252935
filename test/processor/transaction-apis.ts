/**
 * The APIs a transactional producer uses, from Brook's copies of Kafka's message JSON: a proxy that hides them makes
 * a broker look like one from before transactions (KIP-98).
 */
import { addOffsetsToTxn } from '../../protocol/messages/add-offsets-to-txn.js'
import { addPartitionsToTxn } from '../../protocol/messages/add-partitions-to-txn.js'
import { endTxn } from '../../protocol/messages/end-txn.js'
import { initProducerId } from '../../protocol/messages/init-producer-id.js'
import { txnOffsetCommit } from '../../protocol/messages/txn-offset-commit.js'

export const TRANSACTION_APIS = [initProducerId, addPartitionsToTxn, addOffsetsToTxn, endTxn, txnOffsetCommit] as const
