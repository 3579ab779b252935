/**
 * The console consumer as a member of a consumer group (kafka-console-consumer.sh --group): kafkajs 2.2.4 does the
 * group protocol (join, sync, heartbeats, rebalances, commits), so this module only adapts its push-style eachBatch
 * to the pull-style iterator the console consumer prints from.
 *
 * Hand-off: eachBatch gives the iterator one record at a time and waits. A record's offset is resolved (and so
 * committed by kafkajs's auto-commit after the batch) only once the iteration has moved past it: the next record
 * was asked for, or the iteration ended after it (--max-messages). So a consumer stopped at any point commits exactly
 * what it printed, and a restart resumes at the first record not printed.
 *
 *   kafkajs eachBatch ──record──▶ hand-off ──yield──▶ cli prints ──next()/return()──▶ resolveOffset ──▶ commit
 *
 * - Start: committed offsets when the group has them; otherwise earliest with `fromBeginning`, else latest (Kafka's
 *   auto.offset.reset).
 * - Every codec is readable: snappy, lz4 and zstd are registered with kafkajs's CompressionCodecs from
 *   protocol/compression.ts (kafkajs itself reads only gzip).
 * - The idle timeout counts from the last record or the last completed join, whichever is later: joining a group
 *   takes at least group.initial.rebalance.delay.ms, which is not silence on the topic.
 * - kafkajs logs nothing unless `verbose`; then it logs to stderr, never into the records on stdout.
 * - A consumer kafkajs stops for good on an error `restart.transient` accepts (kafkajs gives up on a coordinator
 *   lookup that failed at every broker it knows, where Kafka's console consumer keeps looking) is replaced by a new
 *   one after `restart.delayMs`, said through `onNotice`. Records handed over but not yet printed are dropped
 *   uncommitted, so the new member reads them again from the group's committed offsets.
 * - Stopping waits at most STOP_WAIT_MS for kafkajs to commit and leave; the caller should then end the process, as
 *   kafkajs may still be retrying a lookup in the background.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import kafkajs from 'kafkajs'
import type { Consumer, EachBatchPayload, KafkaMessage, LogEntry, RetryOptions } from 'kafkajs'
import type { BrokerAddress } from './address.js'
import type { ConsumedRecord } from './console-consumer.js'
import { Compression, compress, decompress, loadCodec } from '../protocol/compression.js'
import type { RecordHeader } from '../protocol/record-batch.js'

const { Kafka, CompressionCodecs, CompressionTypes, logLevel } = kafkajs

export interface GroupConsumerOptions {
  servers: readonly BrokerAddress[]
  groupId: string
  topic: string
  /** Where to start in partitions the group has no committed offset for: earliest (true) or latest. */
  fromBeginning: boolean
  readUncommitted: boolean
  /** End the iteration once nothing has arrived for this long (after joining); omitted: run until `signal`. */
  idleTimeoutMs?: number
  signal?: AbortSignal
  /** Let kafkajs log to stderr. */
  verbose?: boolean
  /**
   * When a consumer kafkajs stopped for good is replaced: `transient(error)` says whether the error only means the
   * cluster could not be reached or asked (otherwise the iteration ends with it), `delayMs(n)` is the wait in ms
   * before start n + 1 since the group was last joined. Omitted: any error kafkajs calls final ends the iteration.
   */
  restart?: { transient: (error: unknown) => boolean; delayMs: (restarts: number) => number }
  /** kafkajs's retry settings for the consumer (its fetch loop and joins); omitted: kafkajs's defaults. */
  retry?: RetryOptions
  /** Hears one line when a consumer is replaced (the cause and the wait). */
  onNotice?: (message: string) => void
}

/** The client id members show in `brook groups describe` (kafka-console-consumer's is console-consumer). */
const CLIENT_ID = 'brook-console-consumer'
/** Longest a fetch waits at the broker: it bounds how quickly a stopping consumer leaves the group. */
const MAX_WAIT_MS = 500
/** Longest a stopping consumer waits for kafkajs to commit and leave the group (ms). */
const STOP_WAIT_MS = 5000
/** kafkajs's default is 3 s; a shorter interval lets members notice a rebalance sooner. */
const HEARTBEAT_INTERVAL_MS = 1000

interface Delivery {
  record: ConsumedRecord
  /** true: the record was handled and its offset may be committed; false: the consumer is stopping without it. */
  settle: (handled: boolean) => void
}

let codecsRegistered = false

/** kafkajs's codec interface: compress gets its Encoder (bytes in `.buffer`), decompress the compressed bytes. */
function registerCodecs(): void {
  if (codecsRegistered) return
  codecsRegistered = true
  const codec = (type: number) => () => ({
    compress: async (encoder: { buffer: Buffer }) => {
      await loadCodec(type)
      return compress(type, encoder.buffer)
    },
    decompress: async (buffer: Buffer) => decompress(type, buffer),
  })
  CompressionCodecs[CompressionTypes.Snappy] = codec(Compression.snappy)
  CompressionCodecs[CompressionTypes.LZ4] = codec(Compression.lz4)
  CompressionCodecs[CompressionTypes.ZSTD] = codec(Compression.zstd)
}

/** kafkajs's log entries as one line each on stderr. */
function stderrLogger() {
  return ({ namespace, label, log }: LogEntry): void => {
    const { message, timestamp: _timestamp, logger: _logger, ...details } = log
    const extra = Object.keys(details).length > 0 ? ` ${JSON.stringify(details)}` : ''
    process.stderr.write(`kafkajs ${label} [${namespace}] ${message}${extra}\n`)
  }
}

/** A kafkajs message as the console consumer's record; headers keep kafkajs's grouping of repeated keys. */
function toRecord(message: KafkaMessage, partition: number): ConsumedRecord {
  const headers: RecordHeader[] = []
  for (const [key, value] of Object.entries(message.headers ?? {})) {
    for (const item of Array.isArray(value) ? value : [value]) {
      headers.push({ key, value: item === undefined || item === null ? null : Buffer.from(item) })
    }
  }
  // kafkajs keeps the batch's timestamp type only in its decoding context (1: LogAppendTime).
  const context = (message as { batchContext?: { timestampType?: number } }).batchContext
  return {
    offset: BigInt(message.offset),
    timestamp: BigInt(message.timestamp),
    key: message.key ?? null,
    value: message.value ?? null,
    headers,
    partition,
    timestampType: context?.timestampType === 1 ? 'LogAppendTime' : 'CreateTime',
  }
}

/** Reads the topic as a member of the group, committing what the iteration has moved past. */
export async function* consumeAsGroupMember(options: GroupConsumerOptions): AsyncGenerator<ConsumedRecord> {
  registerCodecs()
  const kafka = new Kafka({
    clientId: CLIENT_ID,
    brokers: options.servers.map(({ host, port }) => `${host}:${port}`),
    logLevel: options.verbose ? logLevel.INFO : logLevel.NOTHING,
    logCreator: stderrLogger,
  })
  const newConsumer = (): Consumer =>
    kafka.consumer({
      groupId: options.groupId,
      heartbeatInterval: HEARTBEAT_INTERVAL_MS,
      maxWaitTimeInMs: MAX_WAIT_MS,
      allowAutoTopicCreation: false,
      readUncommitted: options.readUncommitted,
      retry: options.retry,
    })

  const inbox: Delivery[] = []
  let wake: (() => void) | null = null
  const notify = (): void => {
    wake?.()
    wake = null
  }
  // Set from kafkajs's callbacks (an object, so that TypeScript does not narrow them to their initial values).
  // `stalled`: the error a transient stop of the current consumer gave, until the consumer is replaced.
  const state = { stopping: false, joinedAt: null as number | null, failure: null as Error | null, stalled: null as Error | null }
  let consumer = newConsumer()
  let restarts = 0
  /** Listens to `member`'s events while it is the current consumer; replaced consumers are not heard any more. */
  const listen = (member: Consumer): void => {
    member.on(member.events.GROUP_JOIN, () => {
      if (member !== consumer) return
      state.joinedAt = Date.now()
      restarts = 0
      notify()
    })
    member.on(member.events.CRASH, ({ payload }) => {
      // A retriable crash is followed by kafkajs restarting the consumer; anything else stops it for good.
      if (member !== consumer || payload.restart) return
      if (options.restart?.transient(payload.error)) state.stalled = payload.error
      else state.failure = payload.error
      notify()
    })
  }
  listen(consumer)
  // An abort wakes the iteration, and ends a start still waiting for kafkajs (`start`).
  let resolveAborted!: () => void
  const aborted = new Promise<void>((resolve) => (resolveAborted = resolve))
  const onAbort = (): void => {
    notify()
    resolveAborted()
  }
  if (options.signal?.aborted) resolveAborted()
  options.signal?.addEventListener('abort', onAbort)

  const eachBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> => {
    for (const message of batch.messages) {
      if (state.stopping || !isRunning() || isStale()) return
      const handled = await new Promise<boolean>((settle) => {
        inbox.push({ record: toRecord(message, batch.partition), settle })
        notify()
      })
      if (!handled) return
      resolveOffset(message.offset)
      // Rate-limited by kafkajs to the heartbeat interval; throws when the group rebalances, after which kafkajs
      // commits what was resolved and rejoins.
      await heartbeat()
    }
  }

  /**
   * Connects, subscribes and runs `member`. kafkajs's run() can take as long as a coordinator lookup with all its
   * retries: an abort meanwhile returns at once (the member is disconnected when the iteration ends).
   */
  const start = async (member: Consumer): Promise<void> => {
    const starting = (async () => {
      await member.connect()
      await member.subscribe({ topics: [options.topic], fromBeginning: options.fromBeginning })
      await member.run({ autoCommit: true, eachBatchAutoResolve: false, eachBatch })
    })()
    starting.catch(() => {})
    await Promise.race([starting, aborted])
  }

  /** Replaces the consumer kafkajs stopped with `cause` once the backoff is over; false when aborted meanwhile. */
  const replace = async (cause: Error): Promise<boolean> => {
    const delayMs = options.restart!.delayMs(restarts++)
    options.onNotice?.(`the group consumer stopped (${cause.message}); starting it again in ${delayMs} ms`)
    for (const pending of inbox.splice(0)) pending.settle(false)
    await consumer.disconnect().catch(() => {})
    await sleep(delayMs, undefined, { signal: options.signal }).catch(() => {})
    if (options.signal?.aborted) return false
    consumer = newConsumer()
    listen(consumer)
    try {
      await start(consumer)
    } catch (error) {
      if (!options.restart!.transient(error)) throw error
      state.stalled = error as Error
    }
    return true
  }

  let current: Delivery | null = null
  try {
    await start(consumer)
    let lastRecordAt = 0
    for (;;) {
      if (state.failure) throw new Error(`the group consumer stopped: ${state.failure.message}`)
      if (options.signal?.aborted) return
      if (state.stalled) {
        const cause = state.stalled
        state.stalled = null
        if (!(await replace(cause))) return
        continue
      }
      const next = inbox.shift()
      if (next) {
        current = next
        yield next.record
        current = null
        next.settle(true)
        lastRecordAt = Date.now()
        continue
      }
      const since = state.joinedAt === null ? null : Math.max(state.joinedAt, lastRecordAt)
      const idleLeft = options.idleTimeoutMs === undefined || since === null ? Infinity : since + options.idleTimeoutMs - Date.now()
      if (idleLeft <= 0) return
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(idleLeft) ? setTimeout(resolve, idleLeft) : null
        wake = () => {
          if (timer) clearTimeout(timer)
          resolve()
        }
      })
    }
  } finally {
    state.stopping = true
    options.signal?.removeEventListener('abort', onAbort)
    // Ended right after a record (--max-messages): that record was handled.
    current?.settle(true)
    for (const pending of inbox.splice(0)) pending.settle(false)
    // Waits for the batch in hand (and its commit), then leaves the group; but not longer than STOP_WAIT_MS: kafkajs
    // finishes a coordinator lookup under way, with all its retries, before it stops (Kafka's consumer close() is
    // bounded too). What was printed but not committed by then is read again by the group's next member.
    await Promise.race([consumer.disconnect(), sleep(STOP_WAIT_MS, undefined, { ref: false })])
  }
}
