/**
 * A guard against kafkajs 2.2.4's group consumer spinning for good when it is stopped while it rebuilds its fetchers.
 *
 * kafkajs fetches with one fetcher per broker it knows (consumer/fetchManager.js). When that set of brokers changes
 * (kafkajs drops a node whose connection closed under a fetch, as at a kill -9; a fenced node leaves the metadata, a
 * restarted one comes back), the first fetcher to notice fails with KafkaJSFetcherRebalanceError; the fetch manager
 * then waits for the other fetchers to end (one may be processing a batch, a task's commit retrying against a node
 * that is down, or waiting for such a node's answer) and builds a fetcher for every broker again, without looking
 * whether the consumer was stopped meanwhile. A stop in that wait (disconnect: a pipeline's clean stop) marks the
 * consumer's runner stopped and stops the old fetchers only. The new ones then fetch in a loop whose fetch
 * (consumer/runner.js) answers with no batches at once when the runner is stopped: a chain of promise continuations
 * with nothing else between them, which holds the event loop for good (no timer, no I/O, no signal handler runs
 * again, so a second Ctrl-C does nothing) at the full CPU of a core, and the disconnect never ends.
 *
 * The guard makes such a fetch fail instead: the new fetchers end at once, the fetch manager hands the error to the
 * runner's retry, whose next attempt finds the runner stopped and ends the consuming, and the disconnect goes on (the
 * consumer leaves its group) as if the fetchers had never been rebuilt. Only that bug's fetchers fetch through a
 * stopped runner: stopping a runner stops its fetchers in the same turn of the event loop, and a running runner's
 * fetches are kafkajs's own.
 */
import { createRequire } from 'node:module'

/** What the guard reads of kafkajs's consumer Runner (kafkajs/src/consumer/runner.js, not part of its typed API). */
interface KafkaJsRunner {
  running: boolean
  fetch(nodeId: number): Promise<unknown[]>
}

/** The error of a fetch through a stopped runner: plain (not a KafkaJSError), so kafkajs's retry takes it as retriable. */
class StoppedFetchError extends Error {
  constructor() {
    super('kafkajs started a fetcher after its consumer stopped (it rebuilt its fetchers meanwhile); it fetches nothing')
  }
}

/** The guard put in place of kafkajs's fetch, once installed. */
let guard: KafkaJsRunner['fetch'] | null = null

/** kafkajs's consumer Runner class, as the `kafkajs` import loaded it (both go through require's cache). */
function kafkaJsRunner(): { prototype: KafkaJsRunner } {
  return createRequire(import.meta.url)('kafkajs/src/consumer/runner.js') as { prototype: KafkaJsRunner }
}

/** Whether kafkajs's consumer fetches through the guard in this process (what a test of its installation reads). */
export function stoppedFetchesGuarded(): boolean {
  return guard !== null && kafkaJsRunner().prototype.fetch === guard
}

/**
 * Installs the guard on kafkajs's consumer Runner, once per process (the class is shared by every kafkajs client, and
 * every consumer of the process gets it: a pipeline's group consumer, its global tables' consumer; `brook consume
 * --group` installs it too). Throws when kafkajs's consumer has no Runner with a fetch method (a kafkajs other than 2.x, whose layout the guard knows).
 */
export function guardStoppedFetches(): void {
  if (guard !== null) return
  const Runner = kafkaJsRunner()
  const fetch = Runner.prototype.fetch
  if (typeof fetch !== 'function') throw new Error('kafkajs/src/consumer/runner.js has no Runner.prototype.fetch: a kafkajs this processor does not know')
  guard = async function (this: KafkaJsRunner, nodeId: number): Promise<unknown[]> {
    if (!this.running) throw new StoppedFetchError()
    return fetch.call(this, nodeId)
  }
  Runner.prototype.fetch = guard
}
