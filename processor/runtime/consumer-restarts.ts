/**
 * When and how soon a kafkajs consumer that kafkajs stopped for good is started again (the pipeline's group consumer,
 * runner.ts, and the global tables' consumer, global-tables.ts). kafkajs restarts its consumer after the errors it
 * calls retriable, but not after a coordinator lookup that failed at every broker it knows, which it ends with
 * KafkaJSGroupCoordinatorNotFound (cluster/index.js), a final error; Kafka's own consumer keeps looking. And how long the
 * group consumer retries before kafkajs stops it at all (GROUP_CONSUMER_RETRY).
 */

/**
 * How the pipeline's group consumer and its global tables' consumer retry their fetch loops (and joins), where the
 * client's `retry` settings say nothing else, and so does `brook consume --group` (cli/console.ts): kafkajs's backoff
 * (300 ms doubling, ±20%) capped at 1 s a wait, 45 times, about 44 s in all. When a
 * partition's leader dies, kafkajs 2.2.4's fetch for it fails (connection refused) until the controller fences the
 * node (broker.session.timeout.ms, 9 s) and a metadata refresh names the new leader; each failure stops the fetches
 * of every partition and counts as one retry of the fetch loop. With kafkajs's own default (five retries, about 5 to
 * 17 s) the retries often ran out first: the consumer crashed, was started again after kafkajs's backoff (7-15 s seen)
 * and rejoined the group, so the output came 20-35 s after the kill instead of soon after the new leader (a 3-node
 * `brook dev` with its repartition topic's leader killed with kill -9). Kafka's consumer never gives up on a node: it
 * refreshes its metadata and tries the node again at most 1 s apart (reconnect.backoff.max.ms), which the cap
 * follows, so the fetches go on within about a second of the new leader. A global tables' consumer that kafkajs
 * stopped would read every table from its start again once restarted, and the console consumer's would join its
 * group again. Every field is set, so the schedule does not depend on kafkajs's defaults (which differ when NODE_ENV
 * is `test`).
 */
export const GROUP_CONSUMER_RETRY = { initialRetryTime: 300, multiplier: 2, factor: 0.2, maxRetryTime: 1000, retries: 45 } as const

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
