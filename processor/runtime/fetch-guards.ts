/**
 * Three guards on kafkajs 2.2.4's consumer fetch loop (kafkajs/src/consumer/runner.js), and a report of its failed
 * fetches, installed on its Runner once per process, so that every kafkajs consumer of the process has them: a
 * pipeline's group consumer and its global tables' consumer, and `brook consume --group`.
 *
 * 1. No spinning after a stop. kafkajs fetches with one fetcher per broker it knows (consumer/fetchManager.js). When
 *    that set of brokers changes (kafkajs drops a node whose connection closed under a fetch, as at a kill -9; a fenced
 *    node leaves the metadata, a restarted one comes back), the first fetcher to notice fails with
 *    KafkaJSFetcherRebalanceError; the fetch manager then waits for the other fetchers to end (one may be processing a
 *    batch, a task's commit retrying against a node that is down, or waiting for such a node's answer) and builds a
 *    fetcher for every broker again, without looking whether the consumer was stopped meanwhile. A stop in that wait
 *    (disconnect: a pipeline's clean stop) marks the consumer's runner stopped and stops the old fetchers only. The new
 *    ones then fetch in a loop whose fetch answers with no batches at once when the runner is stopped: a chain of
 *    promise continuations with nothing else between them, which holds the event loop for good (no timer, no I/O, no
 *    signal handler runs again, so a second Ctrl-C does nothing) at the full CPU of a core, and the disconnect never
 *    ends. The guard makes such a fetch fail instead: the new fetchers end at once, the fetch manager hands the error to
 *    the runner's retry, whose next attempt finds the runner stopped and ends the consuming, and the disconnect goes on
 *    (the consumer leaves its group) as if the fetchers had never been rebuilt. Only that bug's fetchers fetch through
 *    a stopped runner: stopping a runner stops its fetchers in the same turn of the event loop, and a running runner's
 *    fetches are kafkajs's own (`test/processor/stopped-fetches.test.ts`).
 *
 * 2. Heartbeats while fetches fail. kafkajs heartbeats only from its fetch loop, after a fetch that brought nothing or
 *    after a batch. A fetch that fails (a partition leader killed and not yet replaced: its connection refused until
 *    the controller fences the node and a metadata refresh names a new leader, 9-10 s on `brook dev`) sends none, so a
 *    leader gone for longer than the session timeout (10 s for a pipeline) got the member evicted by a coordinator that
 *    was up all along: the group rebalanced once the leader was back and every task was initialized again. Kafka's
 *    consumer heartbeats from a thread of its own whatever its fetches do. The guard heartbeats after a failed fetch
 *    (at most once per heartbeat interval, kafkajs's own rule), waiting for the answer up to
 *    FAILED_FETCH_HEARTBEAT_WAIT_MS so that a coordinator that does not answer does not slow the fetch loop's retries;
 *    an answer saying the membership changed (a rebalance, an unknown member) goes to the runner's retry in place of
 *    the fetch's error, so the member joins again as after kafkajs's own heartbeats (`test/processor/fetch-retries.test.ts`).
 *    It sees only fetches that fail: a coordinator that cannot answer (paused) still lets the session run out.
 *
 * 3. Heartbeats while a batch is handled. A fetcher waits until the batches of its fetch are handled before it fetches
 *    again (consumer/fetcher.js), and kafkajs heartbeats after each batch, so a batch whose handler waits stops the
 *    heartbeats once every worker holds one: a pipeline's task commits inside its batch, and its sends to a partition
 *    whose leader is down retry for up to about 25 s (runner.ts, TRANSACTION_SEND_RETRIES), which let the member's
 *    10 s session run out on a coordinator that was up all along (two instances on a three-node cluster, one node the
 *    only replica of one of the output's partitions, 22 s down: a member evicted 18 s into it, and every task
 *    initialized again). Kafka's consumer heartbeats from a thread of its own whatever its processing does (and bounds
 *    the processing with `max.poll.interval.ms`, which a kafkajs member has in its rebalance timeout once a rebalance
 *    starts). The guard heartbeats every heartbeat interval while a batch is handled, as long as the runner runs; a
 *    heartbeat's error is left for the one kafkajs sends once the batch is handled (a failed heartbeat does not count
 *    as sent, so that one asks the coordinator again and a rebalance or an unknown member reaches kafkajs as usual:
 *    `test/processor/batch-heartbeats.test.ts`).
 *
 * 4. Failed fetches reported. kafkajs keeps a failed fetch's error to itself: its fetch loop retries
 *    (GROUP_CONSUMER_RETRY, about 44 s), then crashes the consumer and starts it again. A topic deleted under a
 *    consumer shows only there: each fetch of its partitions is answered UNKNOWN_TOPIC_OR_PARTITION, kafkajs refreshes
 *    its metadata, which fails the same way (it fails a whole Metadata answer on one topic's error), and the loop
 *    retries, with no rebalance and nothing said; once restarted, the consumer fails the same way at its start, for
 *    good. The guard hands the error of every fetch that fails while the consumer runs to the listeners of its
 *    consumer's group (onFailedFetch): a pipeline's runner looks for its deleted topics there (runner.ts,
 *    noticeUnknownTopic).
 */
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'

/** What the guards read of kafkajs's consumer Runner (kafkajs/src/consumer/runner.js, not part of its typed API). */
interface KafkaJsRunner {
  running: boolean
  fetch(nodeId: number): Promise<unknown[]>
  /** Heartbeats if the interval has passed since the last one; rejects with the coordinator's error. */
  heartbeat(): Promise<void>
  /** Hands one fetched batch to the consumer's eachBatch or eachMessage, then heartbeats. */
  handleBatch(batch: unknown): Promise<void>
  /** The consumer's heartbeat interval (ms; kafkajs's `heartbeatInterval`, 3000 by default). */
  heartbeatInterval: number
  /** The consumer's group (kafkajs/src/consumer/consumerGroup.js). */
  consumerGroup: { groupId: string }
}

/** The error of a fetch through a stopped runner: plain (not a KafkaJSError), so kafkajs's retry takes it as retriable. */
class StoppedFetchError extends Error {
  constructor() {
    super('kafkajs started a fetcher after its consumer stopped (it rebuilt its fetchers meanwhile); it fetches nothing')
  }
}

/** How long a failed fetch waits for its heartbeat's answer before the fetch loop retries (ms). */
const FAILED_FETCH_HEARTBEAT_WAIT_MS = 1000

/**
 * Heartbeat errors that mean the member must join again, as kafkajs's runner handles them (kafkajs's isRebalancing
 * and UNKNOWN_MEMBER_ID).
 */
const MEMBERSHIP_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID'])

/** Listeners of failed fetches (onFailedFetch), by the group id of the consumer whose fetch failed. */
const failedFetchListeners = new Map<string, Set<(error: unknown) => void>>()

/**
 * Calls `listener` with the error of every fetch that fails while a consumer of group `groupId` runs (kafkajs's own
 * error, before its retry handles it), until the function returned is called. Every consumer of the group in this
 * process counts: two instances of one pipeline in one process hear each other's failures.
 */
export function onFailedFetch(groupId: string, listener: (error: unknown) => void): () => void {
  let listeners = failedFetchListeners.get(groupId)
  if (listeners === undefined) failedFetchListeners.set(groupId, (listeners = new Set()))
  listeners.add(listener)
  return () => {
    listeners.delete(listener)
    if (listeners.size === 0 && failedFetchListeners.get(groupId) === listeners) failedFetchListeners.delete(groupId)
  }
}

/** The guards put in place of kafkajs's fetch and handleBatch, once installed. */
let guard: Pick<KafkaJsRunner, 'fetch' | 'handleBatch'> | null = null

/** kafkajs's consumer Runner class, as the `kafkajs` import loaded it (both go through require's cache). */
function kafkaJsRunner(): { prototype: KafkaJsRunner } {
  return createRequire(import.meta.url)('kafkajs/src/consumer/runner.js') as { prototype: KafkaJsRunner }
}

/** Whether kafkajs's consumer fetches through the guards in this process (what a test of their installation reads). */
export function fetchesGuarded(): boolean {
  const { prototype } = kafkaJsRunner()
  return guard !== null && prototype.fetch === guard.fetch && prototype.handleBatch === guard.handleBatch
}

/**
 * The heartbeat after a failed fetch: resolves with the heartbeat's error when the coordinator said the membership
 * changed, otherwise (answered, failed otherwise, or no answer within FAILED_FETCH_HEARTBEAT_WAIT_MS) with null.
 */
async function heartbeatAfterFailure(runner: KafkaJsRunner): Promise<Error | null> {
  const answer = runner.heartbeat().then(
    () => null,
    (error: Error & { type?: string }) => (MEMBERSHIP_ERRORS.has(error?.type ?? '') ? error : null),
  )
  const waited = new AbortController()
  try {
    return await Promise.race([answer, sleep(FAILED_FETCH_HEARTBEAT_WAIT_MS, null, { signal: waited.signal })])
  } finally {
    waited.abort()
  }
}

/**
 * Installs the guards on kafkajs's consumer Runner, once per process (the class is shared by every kafkajs client).
 * Throws when kafkajs's consumer has no Runner with fetch, heartbeat and handleBatch methods (a kafkajs other than
 * 2.x, whose layout the guards know).
 */
export function guardFetches(): void {
  if (guard !== null) return
  const Runner = kafkaJsRunner()
  const { fetch, heartbeat, handleBatch } = Runner.prototype
  if (typeof fetch !== 'function' || typeof heartbeat !== 'function' || typeof handleBatch !== 'function') {
    throw new Error('kafkajs/src/consumer/runner.js has no Runner.prototype.fetch, heartbeat and handleBatch: a kafkajs this processor does not know')
  }
  guard = {
    async fetch(this: KafkaJsRunner, nodeId: number): Promise<unknown[]> {
      if (!this.running) throw new StoppedFetchError()
      try {
        return await fetch.call(this, nodeId)
      } catch (error) {
        if (!this.running) throw error
        for (const listener of failedFetchListeners.get(this.consumerGroup.groupId) ?? []) listener(error)
        throw (await heartbeatAfterFailure(this)) ?? error
      }
    },
    async handleBatch(this: KafkaJsRunner, batch: unknown): Promise<void> {
      const beat = setInterval(() => {
        if (this.running) this.heartbeat().catch(() => {})
      }, this.heartbeatInterval)
      beat.unref()
      try {
        await handleBatch.call(this, batch)
      } finally {
        clearInterval(beat)
      }
    },
  }
  Runner.prototype.fetch = guard.fetch
  Runner.prototype.handleBatch = guard.handleBatch
}
