/**
 * Global tables: every instance reads every partition of each table topic into its GlobalTableStore (the latest
 * value per key on disk under `<stateDir>/global-tables/`, a cache of decoded values within half of the instance's
 * cacheMaxBytes; a null value deletes), through a consumer group of its own (`<applicationId>-global-<instanceId>`, one member, no
 * committed offsets: it always reads from the start). `start` returns once each table has caught up with the end
 * offsets it had when the pipeline started, so the first records are enriched with a complete table; updates keep
 * flowing in afterwards. A consumer kafkajs stops for good on a cluster fault is started again after a backoff and
 * reads the tables anew (consumer-restarts.ts).
 *
 * A row whose value the table's deserializer cannot read (it throws) changes nothing in the table: the key keeps the
 * value it had (none, if it had none), as Kafka Streams' global state update task skips a record its
 * DeserializationExceptionHandler answers CONTINUE for (LogAndContinueExceptionHandler; the default, LogAndFail,
 * stops the application instead). The row is not dropped silently: it goes to the dead-letter topic (`deadLetter`:
 * its key and value as read, code NOT_JSON or USER_FUNCTION_FAILED, a reason naming the table, and its topic,
 * partition and offset), is counted in `deadLetters`, and one line is logged. Every instance reads every table, from
 * the start at each start of its consumer, so each reading of such a row is a dead letter of its own. So is a row
 * whose key is not UTF-8 text (BAD_KEY, record-keys.ts): table keys are strings, and such bytes would read as another
 * row's key.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Admin, Consumer, Kafka, RetryOptions } from 'kafkajs'
import { ProcessorErrorCode, RecordError } from '../errors.js'
import type { TableSpec } from '../topology/topology.js'
import { clusterUnavailable, consumerRestartDelayMs } from './consumer-restarts.js'
import { keyText } from './record-keys.js'
import { GlobalTableStore, type GlobalTable, type TableRow } from '../state/global-table-store.js'
import type { CacheBudget } from '../state/task-store.js'

/** Where a row of a table topic was read (its dead letter's brook.error.topic, partition and offset). */
export interface RowOrigin {
  topic: string
  partition: number
  offset: string
}

export class GlobalTables {
  /** Each table by name (a table is named by its topic), filled by `start`. */
  readonly tables = new Map<string, GlobalTable>()
  private store?: GlobalTableStore
  private consumer?: Consumer
  /** Table partitions not yet read to the end offsets they had at start (`topic:partition` -> that end). */
  private readonly pending = new Map<string, number>()
  private caughtUp!: () => void
  private failed!: (error: Error) => void
  private restarts = 0
  private readonly stopped = new AbortController()

  /**
   * The tables' rows are kept under `stateDir` (the instance's, which it holds locked), their cache within `budget`.
   * `deadLetter` writes a row that cannot be read to the dead-letter topic (resolving once it is written; a rejection
   * makes kafkajs read the row again). `onFailure` hears of an error that stops the tables' consumer for good once
   * `start` has returned (before, `start` rejects with it): an error kafkajs calls final that is not the cluster being
   * unreachable (consumer-restarts.ts). `retry` is the consumer's kafkajs retry settings (the pipeline passes
   * GROUP_CONSUMER_RETRY under the client's own `retry`, so that the consumer rides out a dead partition leader
   * instead of being stopped and started again, which would read every table from its start again).
   */
  constructor(
    private readonly kafka: Kafka,
    private readonly retry: RetryOptions,
    private readonly admin: Admin,
    private readonly specs: readonly TableSpec[],
    private readonly groupId: string,
    private readonly stateDir: string,
    private readonly budget: CacheBudget,
    private readonly log: (line: string) => void,
    private readonly deadLetter: (key: Buffer | string, value: Buffer | null, error: RecordError, origin: RowOrigin) => Promise<void>,
    private readonly onFailure: (error: Error) => void,
  ) {}

  private get topics(): Extract<TableSpec, { kind: 'topic' }>[] {
    return this.specs.filter((s): s is Extract<TableSpec, { kind: 'topic' }> => s.kind === 'topic')
  }

  /**
   * Opens the store and reads every table to the end offsets it had at the call. Errors: the store's open error, an
   * admin error, or a final error of the tables' consumer.
   */
  async start(): Promise<void> {
    const store = await GlobalTableStore.open(this.stateDir, this.budget)
    this.store = store
    // One table per topic, read with the first of its specs' deserializers.
    for (const spec of this.topics) if (!this.tables.has(spec.name)) this.tables.set(spec.name, store.table((value) => spec.value.deserialize(value)))
    for (const spec of this.topics) {
      for (const o of await this.admin.fetchTopicOffsets(spec.topic)) if (Number(o.high) > Number(o.low)) this.pending.set(`${spec.topic}:${o.partition}`, Number(o.high))
    }
    const ready = new Promise<void>((resolve, reject) => {
      this.caughtUp = resolve
      this.failed = reject
    })
    if (this.pending.size === 0) this.caughtUp()
    await this.startConsumer()
    await ready
    this.failed = this.onFailure
  }

  /**
   * Starts a consumer reading every table topic from the start (a consumer started again after a fault reads the
   * tables anew, which leaves each at the latest value per key).
   */
  private async startConsumer(): Promise<void> {
    const topics = this.topics
    const consumer = this.kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 250, allowAutoTopicCreation: false, retry: this.retry })
    this.consumer = consumer
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      const key = `${payload.topic}:${payload.partition}`
      if (this.pending.has(key) && Number(payload.lastOffset) + 1 >= this.pending.get(key)!) {
        this.pending.delete(key)
        if (this.pending.size === 0) this.caughtUp()
      }
    })
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (this.consumer === consumer) this.restarts = 0
    })
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (this.consumer !== consumer) return
      if (payload.restart) {
        // kafkajs starts it again itself; it then reads the tables from the start.
        this.log(`the global tables' consumer stopped (${payload.error.message}); kafkajs starts it again, and it reads the tables from the start`)
        return
      }
      if (clusterUnavailable(payload.error)) void this.restart(payload.error)
      else this.failed(payload.error)
    })
    await consumer.connect()
    await consumer.subscribe({ topics: topics.map((t) => t.topic), fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      // A batch's rows land in one LevelDB write; the batch counts as read (END_BATCH_PROCESS) only once they have.
      eachBatch: async ({ batch, resolveOffset }) => {
        const { topic, partition } = batch
        const spec = topics.find((t) => t.topic === topic)!
        const table = this.tables.get(spec.name)!
        const rows: TableRow[] = []
        for (const message of batch.messages) {
          if (message.key === null) continue
          let key: string
          try {
            key = keyText(message.key)
          } catch (error) {
            // Bytes that are no text would read as another row's key (U+FFFD where they are not): left out, said so.
            const bad = new RecordError(ProcessorErrorCode.badKey, `global table ${spec.name}: ${(error as Error).message}; the row is left out`)
            this.log(`${bad.message} (${topic}-${partition} offset ${message.offset}; sent to the dead-letter topic)`)
            await this.store!.write(rows.splice(0))
            await this.deadLetter(message.key, message.value, bad, { topic, partition, offset: message.offset })
            resolveOffset(message.offset)
            continue
          }
          if (message.value === null) {
            rows.push({ table, key, value: null })
            continue
          }
          try {
            spec.value.deserialize(message.value)
          } catch (error) {
            const why = error instanceof RecordError ? error.message : `its deserializer (${spec.value.name}) threw: ${(error as Error)?.message ?? String(error)}`
            const code = error instanceof RecordError ? error.code : ProcessorErrorCode.userFunction
            const bad = new RecordError(code, `global table ${spec.name}: the row of key ${key} cannot be read (${why}); the table keeps the key's previous value`)
            this.log(`${bad.message} (${topic}-${partition} offset ${message.offset}; sent to the dead-letter topic)`)
            // The rows before it land first, so that a failed dead-letter write reads again from this row only.
            await this.store!.write(rows.splice(0))
            await this.deadLetter(key, message.value, bad, { topic, partition, offset: message.offset })
            resolveOffset(message.offset)
            continue
          }
          rows.push({ table, key, value: message.value })
        }
        await this.store!.write(rows)
      },
    })
  }

  /** Replaces a consumer kafkajs stopped for good on a cluster fault, after a backoff (consumerRestartDelayMs). */
  private async restart(cause: Error): Promise<void> {
    const delayMs = consumerRestartDelayMs(this.restarts++)
    this.log(`the global tables' consumer stopped (${cause.message}); starting it again in ${delayMs} ms`)
    await this.consumer?.disconnect().catch(() => {})
    await sleep(delayMs, undefined, { signal: this.stopped.signal }).catch(() => {})
    if (this.stopped.signal.aborted) return
    try {
      await this.startConsumer()
      // Stopped while this consumer started: it must not outlive the pipeline.
      if (this.stopped.signal.aborted) await this.consumer?.disconnect().catch(() => {})
    } catch (error) {
      if (clusterUnavailable(error)) return this.restart(error as Error)
      this.failed(error as Error)
    }
  }

  /** Stops the tables' consumer, then closes the store and removes its directory. */
  async stop(): Promise<void> {
    this.stopped.abort()
    await this.consumer?.disconnect().catch(() => {})
    await this.store?.close().catch(() => {})
  }
}
