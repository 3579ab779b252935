/**
 * Global tables: every instance reads every partition of each table topic into memory (latest value per key, a
 * null value deletes), through a consumer group of its own (`<applicationId>-global-<instanceId>`, one member, no
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
 * the start at each start of its consumer, so each reading of such a row is a dead letter of its own.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Admin, Consumer, Kafka } from 'kafkajs'
import { ProcessorErrorCode, RecordError } from '../errors.js'
import type { TableSpec } from '../topology/topology.js'
import { clusterUnavailable, consumerRestartDelayMs } from './consumer-restarts.js'

/** Where a row of a table topic was read (its dead letter's brook.error.topic, partition and offset). */
export interface RowOrigin {
  topic: string
  partition: number
  offset: string
}

export class GlobalTables {
  readonly tables = new Map<string, Map<string, unknown>>()
  private consumer?: Consumer
  /** Table partitions not yet read to the end offsets they had at start (`topic:partition` -> that end). */
  private readonly pending = new Map<string, number>()
  private caughtUp!: () => void
  private failed!: (error: Error) => void
  private restarts = 0
  private readonly stopped = new AbortController()

  /**
   * `deadLetter` writes a row that cannot be read to the dead-letter topic (resolving once it is written; a rejection
   * makes kafkajs read the row again). `onFailure` hears of an error that stops the tables' consumer for good once
   * `start` has returned (before, `start` rejects with it): an error kafkajs calls final that is not the cluster being
   * unreachable (consumer-restarts.ts).
   */
  constructor(
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly specs: readonly TableSpec[],
    private readonly groupId: string,
    private readonly log: (line: string) => void,
    private readonly deadLetter: (key: string, value: Buffer, error: RecordError, origin: RowOrigin) => Promise<void>,
    private readonly onFailure: (error: Error) => void,
  ) {
    for (const spec of specs) if (spec.kind === 'topic') this.tables.set(spec.name, new Map())
  }

  private get topics(): Extract<TableSpec, { kind: 'topic' }>[] {
    return this.specs.filter((s): s is Extract<TableSpec, { kind: 'topic' }> => s.kind === 'topic')
  }

  async start(): Promise<void> {
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
    const consumer = this.kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 250, allowAutoTopicCreation: false })
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
      if (this.consumer !== consumer || payload.restart) return
      if (clusterUnavailable(payload.error)) void this.restart(payload.error)
      else this.failed(payload.error)
    })
    await consumer.connect()
    await consumer.subscribe({ topics: topics.map((t) => t.topic), fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, partition, message }) => {
        const spec = topics.find((t) => t.topic === topic)!
        const table = this.tables.get(spec.name)!
        const key = message.key?.toString()
        if (key === undefined) return
        if (message.value === null) {
          table.delete(key)
          return
        }
        let value: unknown
        try {
          value = spec.value.deserialize(message.value)
        } catch (error) {
          const why = error instanceof RecordError ? error.message : `its deserializer (${spec.value.name}) threw: ${(error as Error)?.message ?? String(error)}`
          const code = error instanceof RecordError ? error.code : ProcessorErrorCode.userFunction
          const bad = new RecordError(code, `global table ${spec.name}: the row of key ${key} cannot be read (${why}); the table keeps the key's previous value`)
          this.log(`${bad.message} (${topic}-${partition} offset ${message.offset}; sent to the dead-letter topic)`)
          await this.deadLetter(key, message.value, bad, { topic, partition, offset: message.offset })
          return
        }
        table.set(key, value)
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

  async stop(): Promise<void> {
    this.stopped.abort()
    await this.consumer?.disconnect().catch(() => {})
  }
}
