/**
 * Whether the cluster supports transactions, found out the way the exactly-once path will use them: a
 * transactional producer initializes (FindCoordinator for the transaction coordinator, then InitProducerId) and
 * aborts an empty transaction. A cluster without transactions (a Brook broker that does not advertise InitProducerId
 * yet, or one that has no transaction coordinator) fails fast: the probe allows one retry and a few seconds.
 *
 * The probe's transactional id is one per application (`<applicationId>-probe`), so that the coordinator keeps one
 * entry for it however often the application starts (a transactional id stays until transactional.id.expiration.ms
 * after its last use). Instances probing at the same time do not fail each other: the empty transaction's abort
 * sends nothing (kafkajs sends EndTxn only for a transaction with partitions), so the id never has an open
 * transaction, and InitProducerId on such an id only bumps its epoch.
 */
import type { Kafka } from 'kafkajs'

export type ProcessingGuarantee = 'exactly_once' | 'at_least_once'

export async function transactionsSupported(kafka: Kafka, applicationId: string, timeoutMs = 8000): Promise<{ supported: boolean; reason?: string }> {
  const producer = kafka.producer({ transactionalId: `${applicationId}-probe`, idempotent: true, maxInFlightRequests: 1, retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 } })
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
  })
  try {
    await Promise.race([
      (async () => {
        await producer.connect()
        const transaction = await producer.transaction()
        await transaction.abort()
      })(),
      timeout,
    ])
    return { supported: true }
  } catch (error) {
    return { supported: false, reason: (error as Error).message }
  } finally {
    clearTimeout(timer)
    await producer.disconnect().catch(() => {})
  }
}

