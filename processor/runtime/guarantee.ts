/**
 * Whether the cluster supports transactions, found out the way the exactly-once path will use them: a
 * transactional producer initializes (FindCoordinator for the transaction coordinator, then InitProducerId) and
 * aborts an empty transaction.
 *
 * Only a definitive answer says "no": the cluster's ApiVersions does not list a transaction API (kafkajs then throws
 * KafkaJSServerDoesNotSupportApiKey before sending the request), or a broker answers UNSUPPORTED_VERSION. Anything
 * that may pass — a node that refuses connections or does not answer (dead, and not yet fenced by the controller),
 * COORDINATOR_NOT_AVAILABLE while `__transaction_state` is created, NOT_COORDINATOR while its leader moves, any other
 * retriable error — is asked again with backoff for up to `maxBlockMs` (60 s, Kafka's `max.block.ms`, which bounds
 * a Java producer's `initTransactions()`), and then is an error: guessing "no" would run at_least_once and write
 * duplicates that a read_committed consumer was promised it would not see. Any other error (authorization:
 * TRANSACTIONAL_ID_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED; a failed SASL authentication) is an error too.
 *
 *   attempt ──▶ supported ───────────────────────────────▶ { supported: true }
 *      │  ├───▶ transaction API not advertised ───────────▶ { supported: false, reason }
 *      │  ├───▶ other non-retriable error ─────────────────▶ throws GuaranteeError (TRANSACTIONS_UNKNOWN)
 *      │  └───▶ retriable error or no answer in ATTEMPT_TIMEOUT_MS
 *      └───── backoff (1 s doubling to 8 s) ◀──┘  until maxBlockMs has passed, then throws GuaranteeError
 *
 * The probe's transactional id is one per application (`<applicationId>-probe`), so that the coordinator keeps one
 * entry for it however often the application starts (a transactional id stays until transactional.id.expiration.ms
 * after its last use). Instances probing at the same time do not fail each other: the empty transaction's abort
 * sends nothing (kafkajs sends EndTxn only for a transaction with partitions), so the id never has an open
 * transaction, and InitProducerId on such an id only bumps its epoch.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Kafka } from 'kafkajs'
import { GuaranteeError, ProcessorErrorCode } from '../errors.js'
import { withTargetTopics } from './target-topics.js'

export type ProcessingGuarantee = 'exactly_once' | 'at_least_once'

/**
 * The API keys of a transactional producer: InitProducerId (22), AddPartitionsToTxn (24), AddOffsetsToTxn (25),
 * EndTxn (26), TxnOffsetCommit (28), from Kafka's `*Request.json`. A cluster whose ApiVersions lacks one has no
 * transactions.
 */
const TRANSACTION_API_KEYS: readonly number[] = [22, 24, 25, 26, 28]

/** Kafka's `max.block.ms` default: how long the probe keeps asking a cluster that does not answer definitively. */
const PROBE_MAX_BLOCK_MS = 60_000
/** One attempt's bound: a node that accepts connections and never answers fails the attempt, not the probe. */
const ATTEMPT_TIMEOUT_MS = 10_000
/** Backoff between attempts: first, and at most. */
const BACKOFF_MS = 1000
const BACKOFF_MAX_MS = 8000

/** The cluster's definitive answer; `reason` says what showed that it has no transactions. */
export type TransactionSupport = { supported: true } | { supported: false; reason: string }

export interface ProbeOptions {
  /** Progress, one line per attempt that failed and will be tried again. */
  log: (line: string) => void
  /** How long to keep asking (ms, default PROBE_MAX_BLOCK_MS). */
  maxBlockMs?: number
  /**
   * Existing topics the probe's producer asks Metadata about instead of every topic in the cluster (see
   * target-topics.ts): with them, a partition offline elsewhere in the cluster does not fail the probe.
   */
  topics?: readonly string[]
  /** Ends the asking: no attempt starts once it aborts, and a wait between attempts ends with the signal's reason. */
  signal?: AbortSignal
}

/**
 * Asks the cluster whether it supports transactions until it answers definitively. Resolves `supported: false`
 * only when the cluster does not offer the transaction APIs; rejects with a GuaranteeError (TRANSACTIONS_UNKNOWN) when
 * the answer stays undecided for `maxBlockMs` or is an error that retrying does not change.
 */
export async function transactionsSupported(kafka: Kafka, applicationId: string, options: ProbeOptions): Promise<TransactionSupport> {
  const maxBlockMs = options.maxBlockMs ?? PROBE_MAX_BLOCK_MS
  const deadline = Date.now() + maxBlockMs
  let backoffMs = BACKOFF_MS
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted()
    const outcome = await probeOnce(kafka, applicationId, options.topics ?? [], Math.min(ATTEMPT_TIMEOUT_MS, Math.max(1000, deadline - Date.now())))
    if (outcome.kind === 'supported') return { supported: true }
    if (outcome.kind === 'unsupported') return { supported: false, reason: outcome.reason }
    if (outcome.kind === 'failed') {
      throw new GuaranteeError(ProcessorErrorCode.transactionsUnknown, `could not find out whether the cluster supports transactions: ${outcome.reason}`, { cause: outcome.error })
    }
    const waitMs = Math.min(backoffMs, deadline - Date.now())
    if (waitMs <= 0) {
      throw new GuaranteeError(
        ProcessorErrorCode.transactionsUnknown,
        `could not find out whether the cluster supports transactions within ${maxBlockMs / 1000} s (${attempt} attempt${attempt === 1 ? '' : 's'}; last: ${outcome.reason}); ` +
          'exactly_once needs them: wait for the cluster, or run with processingGuarantee at_least_once (--processing-guarantee at_least_once), which uses no transactions',
        { cause: outcome.error },
      )
    }
    options.log(`cannot tell yet whether the cluster supports transactions (${outcome.reason}); asking again in ${(waitMs / 1000).toFixed(1)} s`)
    await sleep(waitMs, undefined, { signal: options.signal })
    backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS)
  }
}

type Outcome = { kind: 'supported' } | { kind: 'unsupported' | 'retriable' | 'failed'; reason: string; error?: unknown }

/** One attempt: a new transactional producer (new connections, fresh metadata) initializes and aborts. */
async function probeOnce(kafka: Kafka, applicationId: string, topics: readonly string[], timeoutMs: number): Promise<Outcome> {
  const producer = withTargetTopics(kafka, topics, () =>
    kafka.producer({ transactionalId: `${applicationId}-probe`, idempotent: true, maxInFlightRequests: 1, retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 } }),
  )
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'retriable', reason: `no answer within ${timeoutMs} ms` }), timeoutMs)
  })
  try {
    return await Promise.race([
      (async (): Promise<Outcome> => {
        await producer.connect()
        const transaction = await producer.transaction()
        await transaction.abort()
        return { kind: 'supported' }
      })().catch(classify),
      timeout,
    ])
  } finally {
    clearTimeout(timer)
    await producer.disconnect().catch(() => {})
  }
}

/**
 * kafkajs errors marked non-retriable that say only that no broker answered in time: KafkaJSGroupCoordinatorNotFound
 * is FindCoordinator failing on every broker kafkajs knows (it drops their errors, connection errors included), and
 * KafkaJSLockTimeout a request that waited too long for a connection's lock.
 */
const UNANSWERED = new Set(['KafkaJSGroupCoordinatorNotFound', 'KafkaJSLockTimeout'])

interface KafkajsErrorFields {
  name?: unknown
  message?: unknown
  type?: unknown
  apiKey?: unknown
  apiName?: unknown
  retriable?: unknown
  cause?: unknown
}

/**
 * What a kafkajs error says about transactions. kafkajs wraps the error that ended its retries in
 * KafkaJSNumberOfRetriesExceeded, and a non-retriable one in KafkaJSNonRetriableError, both with `cause`: the error
 * underneath is the one that decides.
 */
function classify(error: unknown): Outcome {
  let fields = (error ?? {}) as KafkajsErrorFields
  while ((fields.name === 'KafkaJSNumberOfRetriesExceeded' || fields.name === 'KafkaJSNonRetriableError') && fields.cause) {
    fields = fields.cause as KafkajsErrorFields
  }
  const reason = String(fields.message ?? error)
  if (fields.name === 'KafkaJSServerDoesNotSupportApiKey' && TRANSACTION_API_KEYS.includes(Number(fields.apiKey))) {
    return { kind: 'unsupported', reason: `its ApiVersions does not list ${String(fields.apiName)} (API key ${String(fields.apiKey)})`, error }
  }
  if (fields.type === 'UNSUPPORTED_VERSION') return { kind: 'unsupported', reason: `a broker answered UNSUPPORTED_VERSION: ${reason}`, error }
  const named = typeof fields.type === 'string' ? `${fields.type}: ${reason}` : reason
  // A kafkajs error says whether retrying may help; one that is not a kafkajs error is a bug or a misuse, not a blip.
  const retriable = fields.retriable === true || UNANSWERED.has(String(fields.name))
  return { kind: retriable ? 'retriable' : 'failed', reason: named, error }
}
