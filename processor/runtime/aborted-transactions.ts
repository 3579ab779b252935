/**
 * Aborted transactions skipped as a read_committed Kafka consumer skips them, for kafkajs 2.2.4's consumers.
 *
 * A read_committed Fetch answer lists the aborted transactions that overlap the records it returns, each as its
 * producer id and first offset. Kafka's consumer (Fetcher's CompletedFetch) keeps them in a queue ordered by first
 * offset and, before each record batch, takes every one whose first offset is at or below the batch: from then on it
 * skips that producer's transactional records until the producer's ABORT marker. kafkajs
 * (consumer/filterAbortedMessages.js) takes at most one per record: where two aborted transactions had both begun
 * before the records of a fetch (two tasks' producers writing one repartition partition, both aborted when their
 * instance was killed, and the fetch starting between their first records), the second producer's first records
 * come through as if committed. A pipeline counted a reading twice in its windows behind a `keyBy`, in exactly_once.
 *
 * So kafkajs's Broker.fetch is wrapped: in a read_committed answer, each record of an aborted transaction is marked
 * a control record (kafkajs's Batch hands no control record to the application, but still counts it as read, so the
 * consumer moves past it as it does past the records it filters itself), and the list of aborted transactions is
 * emptied, leaving kafkajs's own filter nothing to do.
 *
 *   records:   [P1 a][P2 b][P2 c][P1 ABORT][P2 ABORT][P3 d][P3 COMMIT]     aborted: P1 from 0, P2 from 1
 *   fetch from offset 1:    kafkajs takes P1 at b (1 >= 0) and P2 only at c: b is handed out
 *                           here both are taken at b: b and c are skipped, d is handed out
 */
import { createRequire } from 'node:module'

/** A record as kafkajs's decoder gives it (kafkajs/src/protocol/recordBatch/record/v0/decoder.js). */
interface KafkaJsRecord {
  offset: string
  key: Buffer | null
  isControlRecord: boolean
  batchContext: { producerId: string; inTransaction: boolean }
}

interface KafkaJsFetchResponse {
  responses: { partitions: { abortedTransactions?: { producerId: string; firstOffset: string }[] | null; messages: KafkaJsRecord[] }[] }[]
}

type KafkaJsFetch = (this: unknown, request: { isolationLevel?: number }) => Promise<KafkaJsFetchResponse>

/** Kafka's isolation levels in a Fetch request (FetchRequest.json: IsolationLevel). */
const READ_COMMITTED = 1

/** The key of an ABORT control record: version 0, type 0 (Kafka's ControlRecordType). */
function isAbortMarker(record: KafkaJsRecord): boolean {
  return record.isControlRecord && record.key !== null && record.key.length >= 4 && record.key.readInt16BE(2) === 0
}

/**
 * The records of a read_committed answer's partition with those of its aborted transactions marked as control
 * records (Kafka's CompletedFetch.nextFetchedRecord and consumeAbortedTransactionsUpTo).
 */
export function markAbortedRecords(records: readonly KafkaJsRecord[], aborted: readonly { producerId: string; firstOffset: string }[]): KafkaJsRecord[] {
  const queue = [...aborted].sort((a, b) => (BigInt(a.firstOffset) < BigInt(b.firstOffset) ? -1 : BigInt(a.firstOffset) > BigInt(b.firstOffset) ? 1 : 0))
  const abortedProducers = new Set<string>()
  return records.map((record) => {
    const offset = BigInt(record.offset)
    while (queue.length > 0 && BigInt(queue[0]!.firstOffset) <= offset) abortedProducers.add(String(queue.shift()!.producerId))
    const producerId = String(record.batchContext.producerId)
    if (record.isControlRecord) {
      if (isAbortMarker(record)) abortedProducers.delete(producerId)
      return record
    }
    if (!record.batchContext.inTransaction || !abortedProducers.has(producerId)) return record
    return Object.assign(Object.create(Object.getPrototypeOf(record) as object) as KafkaJsRecord, record, { isControlRecord: true })
  })
}

let installed: KafkaJsFetch | null = null

function kafkaJsBroker(): { prototype: { fetch: KafkaJsFetch } } {
  return createRequire(import.meta.url)('kafkajs/src/broker/index.js') as { prototype: { fetch: KafkaJsFetch } }
}

/** Whether kafkajs's fetches in this process skip aborted transactions as above. */
export function abortedTransactionsSkipped(): boolean {
  return installed !== null && kafkaJsBroker().prototype.fetch === installed
}

/**
 * Wraps kafkajs's Broker.fetch, once per process (the class is shared by every kafkajs client). Throws when kafkajs
 * has no Broker.prototype.fetch (a kafkajs other than 2.x).
 */
export function skipAbortedTransactions(): void {
  if (installed !== null) return
  const Broker = kafkaJsBroker()
  const fetch = Broker.prototype.fetch
  if (typeof fetch !== 'function') throw new Error('kafkajs/src/broker/index.js has no Broker.prototype.fetch: a kafkajs this processor does not know')
  installed = async function (this: unknown, request) {
    const response = await fetch.call(this, request)
    if (request.isolationLevel !== READ_COMMITTED) return response
    for (const topic of response.responses) {
      for (const partition of topic.partitions) {
        if (!partition.abortedTransactions || partition.abortedTransactions.length === 0) continue
        partition.messages = markAbortedRecords(partition.messages, partition.abortedTransactions)
        partition.abortedTransactions = []
      }
    }
    return response
  }
  Broker.prototype.fetch = installed
}
