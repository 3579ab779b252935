/**
 * Sends readings in batches, paced by event time, through one kafkajs producer; the fleet and the replay both send
 * through `sendPaced`.
 *
 * Pacing is a schedule against the clock, not a token bucket: the reading due at event time e goes out at
 *
 *   wallStart + (e - firstDue) / speedup
 *
 * so the rate holds over the whole run whatever the batch sizes, and a run that fell behind (a slow cluster, a busy
 * machine) catches up instead of drifting. Readings already due are batched (up to `batchSize`); when the next one
 * is not due yet, the batch goes out and the sender sleeps until it is (at least MIN_SLEEP_MS, so that a high rate
 * makes batches of a few ms of readings rather than one timer per reading). 'as-fast-as-possible' never sleeps.
 *
 * One batch is in flight at a time, while the next one is being built (as one kafkajs send per partition, so one
 * request per partition): requests of one producer then reach each partition in order, which replays and per-device
 * event-time order depend on (kafkajs gives no ordering guarantee between concurrent sends to a partition without
 * idempotence). A batch is acknowledged before the next one is sent, so `onAcked` sees batches in order.
 *
 * Stopping: an aborted `signal` drops the batch being built and waits for the one in flight; a deadline sends the
 * readings due before it. Either way the promise resolves, and `sent` counts acknowledged readings only. A refused
 * batch, or a cluster that can no longer be reached, stops the run with SimulatorError (BROKER_REFUSED), after kafkajs's
 * own retries of retriable errors; the message says which of the two it was. Once the signal has aborted, the batch in
 * flight failing does not: the run was stopping anyway, so it resolves with that batch as `unconfirmed` (a send that
 * failed may still have been written), and the caller can say what was acknowledged.
 */
import kafkajs, { type Message, type Producer } from 'kafkajs'
import { IncompleteSendError, sendPerPartition, unanswered, type WholeSends } from '../runtime/whole-sends.js'
import { SimulatorError, SimulatorErrorCode } from './errors.js'
import type { Log, Speedup } from './options.js'
import { toMessage, type Outgoing } from './reading.js'
import { describeError } from './topic.js'

/** Shortest sleep between batches of a paced run. */
const MIN_SLEEP_MS = 5

const { KafkaJSConnectionError, KafkaJSProtocolError } = kafkajs

/** The next reading to send, or null when there is none left; a promise when the source must read first. */
export type Source = () => Outgoing | null | Promise<Outgoing | null>

export interface SendPlan {
  producer: Producer
  /** Places each reading on its partition and finds those a send's answer missed (runtime/whole-sends.ts). */
  sends: WholeSends
  topic: string
  speedup: Speedup
  batchSize: number
  signal?: AbortSignal
  /** Date.now() after which no new reading is taken. */
  deadlineMs?: number
  /** Each acknowledged batch, in order, with the wall-clock ms since sending started. */
  onAcked(batch: readonly Outgoing[], elapsedMs: number): void
  /** Hears of readings sent again because a send's answer missed their partition. */
  log: Log
}

export interface SendResult {
  sent: number
  /**
   * Readings taken from the source and never sent: the one waiting for its time, and the batch not yet sent when the
   * run was stopped (a failed batch in flight is `unconfirmed`, not counted here).
   */
  unsent: number
  aborted: boolean
  elapsedMs: number
  /** A stopped run's batch in flight that failed: its readings may or may not have been written. */
  unconfirmed: Unconfirmed | null
}

export interface Unconfirmed {
  readings: number
  /** Why it was not acknowledged, as the error of a run that was not stopped would say. */
  reason: string
}

/** Resends of a batch's readings whose partition a send's answer missed, before the batch counts as refused. */
const MAX_RESENDS = 5

/**
 * Sends `messages`, each partition's as a kafkajs send of its own (kafkajs 2.2.4 writes a batch twice when it retries
 * a send over several brokers while one of their requests is still in flight; `sendPerPartition` in
 * runtime/whole-sends.ts), and sends again those whose partition the answer names no result for: kafkajs can resolve a
 * send without writing a partition whose leader moved during it (runtime/whole-sends.ts), which one partition a send
 * rules out, so that is a guard. Rejects after MAX_RESENDS.
 */
async function sendWhole(producer: Producer, sends: WholeSends, topic: string, messages: Message[], log: Log): Promise<void> {
  let left = [{ topic, messages }]
  sends.place(left)
  for (let resends = 0; ; resends++) {
    left = unanswered(left, await sendPerPartition((topicMessages) => producer.sendBatch({ topicMessages }), left))
    if (left.length === 0) return
    if (resends >= MAX_RESENDS) throw new IncompleteSendError(left.map((t) => `${t.topic} (${t.messages.length} readings)`))
    const missed = left.flatMap((t) => t.messages)
    const partitions = [...new Set(missed.map((m) => m.partition))].sort((a, b) => a! - b!)
    log.info(`kafkajs ended a send without writing ${missed.length} readings of ${topic} partition ${partitions.join(', ')} (a leader moved during it); sending them again`)
  }
}

/**
 * Sends what `next` gives until it gives null, the deadline passes or the signal aborts; resolves with the readings
 * acknowledged. Throws SimulatorError (BROKER_REFUSED) when a batch is refused or cannot be delivered; errors of `next`
 * pass through.
 */
export async function sendPaced(next: Source, plan: SendPlan): Promise<SendResult> {
  const { producer, sends, topic, speedup, batchSize, signal, deadlineMs } = plan
  const startedAt = performance.now()
  let firstDue: number | null = null
  let waiting: Outgoing | null = null
  let batch: Outgoing[] = []
  let inFlight: Promise<void> | null = null
  let failure: unknown = null
  let failedReadings = 0
  let sent = 0

  const flush = async (): Promise<void> => {
    if (inFlight !== null) await inFlight
    if (batch.length === 0 || failure !== null) return
    const items = batch
    batch = []
    inFlight = sendWhole(producer, sends, topic, items.map(toMessage), plan.log).then(
      () => {
        inFlight = null
        sent += items.length
        plan.onAcked(items, performance.now() - startedAt)
      },
      (error: unknown) => {
        inFlight = null
        failure = error
        failedReadings = items.length
      },
    )
  }

  for (;;) {
    if (failure !== null || signal?.aborted) break
    if (deadlineMs !== undefined && Date.now() >= deadlineMs) break
    let item: Outgoing | null = waiting
    waiting = null
    if (item === null) {
      const pulled = next()
      item = pulled instanceof Promise ? await pulled : pulled
    }
    if (item === null) break
    if (speedup !== 'as-fast-as-possible') {
      if (firstDue === null) firstDue = item.dueMs
      const dueAt = startedAt + (item.dueMs - firstDue) / speedup
      if (dueAt > performance.now()) {
        waiting = item
        await flush()
        const untilDue = dueAt - performance.now()
        const untilDeadline = deadlineMs === undefined ? Infinity : deadlineMs - Date.now()
        if (untilDue > 0) await sleep(Math.min(Math.max(untilDue, MIN_SLEEP_MS), untilDeadline), signal)
        continue
      }
    }
    batch.push(item)
    if (batch.length >= batchSize) await flush()
  }
  const aborted = signal?.aborted ?? false
  let unsent = waiting === null ? 0 : 1
  if (aborted) {
    unsent += batch.length
    batch = []
  }
  await flush()
  if (inFlight !== null) await inFlight
  const elapsedMs = performance.now() - startedAt
  if (failure === null) return { sent, unsent, aborted, elapsedMs, unconfirmed: null }
  const reason = `topic ${topic}: ${undelivered(failure, sent)}`
  if (aborted) return { sent, unsent, aborted, elapsedMs, unconfirmed: { readings: failedReadings, reason } }
  throw new SimulatorError(SimulatorErrorCode.brokerRefused, reason, { cause: failure })
}

/**
 * Why a batch was not delivered, after `sent` acknowledged readings: a refusal when the broker answered with an error
 * code (kafkajs's KafkaJSProtocolError, e.g. INVALID_TIMESTAMP), an unreachable broker when kafkajs could not connect
 * to the one it needed (KafkaJSConnectionError names its host:port: on a cluster of several nodes, the last one tried,
 * not the whole cluster), or kafkajs's reason otherwise.
 * The error is looked for along kafkajs's chain: KafkaJSNumberOfRetriesExceeded carries the last attempt's error as
 * its cause.
 */
function undelivered(failure: unknown, acknowledged: number): string {
  const sent = acknowledged.toLocaleString('en-US')
  const refusal = findInChain(failure, (error) => error instanceof KafkaJSProtocolError)
  if (refusal !== undefined) return `the cluster refused readings after ${sent} were sent: ${describeError(refusal)}`
  const connection = findInChain(failure, (error) => error instanceof KafkaJSConnectionError)
  const broker = (connection as kafkajs.KafkaJSConnectionError | undefined)?.broker
  if (connection !== undefined) {
    const where = broker === undefined || broker === '' ? 'the cluster' : `broker ${broker}`
    return `could not deliver readings after ${sent} were sent: ${where} is unreachable (${describeError(connection)})`
  }
  return `could not deliver readings after ${sent} were sent: ${describeError(failure)}`
}

/** The first error along `error`'s causes (and first nested errors) that `test` accepts. */
function findInChain(error: unknown, test: (error: Error) => boolean): Error | undefined {
  for (let current: unknown = error, depth = 0; current instanceof Error && depth < 10; depth++) {
    if (test(current)) return current
    const nested = (current as { errors?: unknown[] }).errors
    current = current.cause ?? (Array.isArray(nested) ? nested[0] : undefined)
  }
  return undefined
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve()
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
