/**
 * Global tables: every instance reads every partition of each table topic into memory (latest value per key, a
 * null value deletes), through a consumer group of its own (`<applicationId>-global-<instanceId>`, one member, no
 * committed offsets: it always reads from the start). `start` returns once each table has caught up with the end
 * offsets it had when the pipeline started, so the first records are enriched with a complete table; updates keep
 * flowing in afterwards. A value that cannot be read is skipped with a log line.
 */
import type { Admin, Consumer, Kafka } from 'kafkajs'
import { RecordError } from '../errors.js'
import type { TableSpec } from '../topology/topology.js'

export class GlobalTables {
  readonly tables = new Map<string, Map<string, unknown>>()
  private consumer?: Consumer

  constructor(
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly specs: readonly TableSpec[],
    private readonly groupId: string,
    private readonly log: (line: string) => void,
  ) {
    for (const spec of specs) if (spec.kind === 'topic') this.tables.set(spec.name, new Map())
  }

  async start(): Promise<void> {
    const topics = this.specs.filter((s): s is Extract<TableSpec, { kind: 'topic' }> => s.kind === 'topic')
    const pending = new Map<string, number>()
    for (const spec of topics) {
      for (const o of await this.admin.fetchTopicOffsets(spec.topic)) if (Number(o.high) > Number(o.low)) pending.set(`${spec.topic}:${o.partition}`, Number(o.high))
    }
    const consumer = this.kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 250, allowAutoTopicCreation: false })
    this.consumer = consumer
    let caughtUp!: () => void
    const ready = new Promise<void>((resolve) => (caughtUp = resolve))
    if (pending.size === 0) caughtUp()
    const progress = (topic: string, partition: number, next: number) => {
      const key = `${topic}:${partition}`
      if (pending.has(key) && next >= pending.get(key)!) {
        pending.delete(key)
        if (pending.size === 0) caughtUp()
      }
    }
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => progress(payload.topic, payload.partition, Number(payload.lastOffset) + 1))
    await consumer.connect()
    await consumer.subscribe({ topics: topics.map((t) => t.topic), fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ topic, message }) => {
        const spec = topics.find((t) => t.topic === topic)!
        const table = this.tables.get(spec.name)!
        const key = message.key?.toString()
        if (key === undefined) return
        if (message.value === null) {
          table.delete(key)
          return
        }
        try {
          table.set(key, spec.value.deserialize(message.value))
        } catch (error) {
          if (!(error instanceof RecordError)) throw error
          this.log(`table ${spec.name}: skipping key ${key} at offset ${message.offset}: ${error.message}`)
        }
      },
    })
    await ready
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => {})
  }
}
