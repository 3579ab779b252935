/**
 * When and how soon a kafkajs consumer that kafkajs stopped for good is started again (the pipeline's group consumer,
 * runner.ts, and the global tables' consumer, global-tables.ts). kafkajs restarts its consumer after the errors it
 * calls retriable, but not after a coordinator lookup that failed at every broker it knows, which it ends with
 * KafkaJSGroupCoordinatorNotFound (cluster/index.js), a final error; Kafka's own consumer keeps looking.
 */

/** Backoff before a consumer's next start: first, and at most (doubling in between). */
const CONSUMER_RESTART_BACKOFF_MS = 1000
const CONSUMER_RESTART_BACKOFF_MAX_MS = 30_000

/** The backoff in ms before start number `restarts + 1` since the consumer last joined its group: 1 s, 2 s, ... 30 s. */
export function consumerRestartDelayMs(restarts: number): number {
  return Math.min(CONSUMER_RESTART_BACKOFF_MS * 2 ** restarts, CONSUMER_RESTART_BACKOFF_MAX_MS)
}

/** kafkajs errors that say only that the cluster could not be reached or asked in time. */
const UNREACHABLE_ERRORS = new Set(['KafkaJSGroupCoordinatorNotFound', 'KafkaJSNoBrokerAvailableError', 'KafkaJSBrokerNotFound', 'KafkaJSConnectionError', 'KafkaJSConnectionClosedError', 'KafkaJSRequestTimeoutError'])

/**
 * Whether an error kafkajs reports from its consumer is the cluster being unreachable or moving the group's
 * coordinator, which Kafka's consumer rides out by looking again: somewhere in its chain of causes, one of
 * UNREACHABLE_ERRORS or a Kafka error code kafkajs marks retriable (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, ...).
 * Anything else (an authorization failure, a bug) is final.
 */
export function clusterUnavailable(error: unknown): boolean {
  for (let e = error as { name?: string; retriable?: boolean; cause?: unknown } | undefined; e !== undefined && e !== null; e = e.cause as typeof e) {
    if (UNREACHABLE_ERRORS.has(e.name ?? '')) return true
    if (e.name === 'KafkaJSProtocolError' && e.retriable === true) return true
  }
  return false
}
