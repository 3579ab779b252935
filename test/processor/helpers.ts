/**
 * Shared setting of the processor's integration tests: a Brook broker process with fast group settings, kafkajs to
 * produce readings and to read what a pipeline wrote, and a state directory per test.
 */
import { mkdtempSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import kafkajs, { type Admin, type IHeaders, type ISocketFactory, type Kafka, type KafkaMessage } from 'kafkajs'
import { afterEach, expect } from 'vitest'
import { TopologyBuilder, count, eventTime, tumbling, type RunningPipeline, type Topology } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { brokerBehindProxy, type ProxiedBroker, type TcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait.js'
import { removedAtFileEnd } from '../helpers/file-end.js'

const dirs = removedAtFileEnd()

/**
 * A kafkajs `socketFactory` of plain sockets whose requests of one Kafka API (`apiKey`, as the protocol guide numbers
 * them; a request starts with its size, int32, then its API key, int16) go to `intercept` as they are about to be
 * written, with the socket and its own write; returning true means it dealt with the request, false writes it.
 * Other requests always go through.
 */
function interceptingSockets(apiKey: number, intercept: (request: Buffer, socket: Socket, write: () => void) => boolean): ISocketFactory {
  return ({ host, port, onConnect }) => {
    const socket: Socket = connect({ host, port }, onConnect)
    socket.setNoDelay(true)
    const write = socket.write.bind(socket) as (...args: unknown[]) => boolean
    socket.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (Buffer.isBuffer(chunk) && chunk.length >= 6 && chunk.readInt16BE(4) === apiKey && intercept(chunk, socket, () => void write(chunk, ...rest))) return true
      return write(chunk, ...rest)
    }) as Socket['write']
    return socket
  }
}

/**
 * Sockets that cut requests of one Kafka API: `cut()` is asked as each is about to be written, and true resets the
 * connection there (ECONNRESET: a connection cut, or a leader's refused, mid-request), false writes it.
 */
export function cuttingSockets(apiKey: number, cut: () => boolean): ISocketFactory {
  return interceptingSockets(apiKey, (_request, socket) => {
    if (!cut()) return false
    const reset: NodeJS.ErrnoException = new Error('read ECONNRESET')
    reset.code = 'ECONNRESET'
    socket.destroy(reset)
    return true
  })
}

/**
 * Sockets that hold requests of one Kafka API whose bytes contain `marker` (a transactional id, a group id) for
 * `delayMs` before writing them: a slow answer, as from a loaded or failing-over coordinator. With `hold`, only the
 * requests it returns true for (asked as each is about to be written).
 */
export function delayingSockets(apiKey: number, marker: string, delayMs: number, hold: () => boolean = () => true): ISocketFactory {
  const bytes = Buffer.from(marker)
  return interceptingSockets(apiKey, (request, socket, write) => {
    if (!request.includes(bytes) || !hold()) return false
    setTimeout(() => socket.destroyed || write(), delayMs)
    return true
  })
}

/** The member id of the one member of group `groupId`, as its coordinator knows it (fails unless it has one). */
export async function onlyMemberOf(admin: Admin, groupId: string): Promise<string> {
  const { groups } = await admin.describeGroups([groupId])
  expect(groups[0]?.members, JSON.stringify(groups[0])).toHaveLength(1)
  return groups[0]!.members[0]!.memberId
}

/**
 * Events per kind in 10 s tumbling windows, behind a `keyBy` on the kind (so through a repartition topic,
 * `<app>-by-kind-repartition`, which the windowed task purges): `{ device, kind, ts }` from `input`, counts to `output`.
 */
export function kindCounts(input: string, output: string): Topology {
  const builder = new TopologyBuilder()
  builder
    .stream<{ device: string; kind: string; ts: number }>(input, { eventTime: eventTime.field('ts') })
    .keyBy((e) => e.kind, { name: 'by-kind' })
    .groupByKey()
    .windowedBy(tumbling({ size: '10s', grace: 0 }))
    .aggregate({ events: count() }, { name: 'kind-10s' })
    .to(output)
  return builder.build()
}

/** An event of `kindCounts`' input: `device`'s event of `kind` at `seconds` of event time, keyed by device. */
export function kindEvent(device: string, kind: string, seconds: number): { key: string; value: string } {
  return { key: device, value: JSON.stringify({ device, kind, ts: seconds * 1000 }) }
}

/** A fresh directory for task stores, removed when the test file ends. */
export function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'brook-processor-'))
  dirs.push(dir)
  return dir
}

export interface ReadRecord {
  key: string | null
  /** The key's bytes as read (`key` is their UTF-8 text). */
  keyBytes: Buffer | null
  value: string | null
  headers: Record<string, string>
  /** The headers as kafkajs read them: bytes, and a list for a name the record repeats. */
  rawHeaders: IHeaders
  partition: number
  offset: string
  timestamp: string
  /** The record's batch as kafkajs decoded it (its `batchContext`): who wrote it, under which epoch and sequence. */
  batch: { firstOffset: string; producerId: string; producerEpoch: number; firstSequence: number; inTransaction: boolean }
}

function toRecord(partition: number, message: KafkaMessage): ReadRecord {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(message.headers ?? {})) if (value !== undefined) headers[name] = String(value)
  // kafkajs 2.2.4 hands each message its batch's header fields (not in its typings).
  const context = (message as KafkaMessage & { batchContext?: { firstOffset: string; producerId: string; producerEpoch: number; firstSequence: number; inTransaction: boolean } }).batchContext
  const batch = { firstOffset: String(context?.firstOffset ?? ''), producerId: String(context?.producerId ?? ''), producerEpoch: Number(context?.producerEpoch ?? -1), firstSequence: Number(context?.firstSequence ?? -1), inTransaction: context?.inTransaction === true }
  return { key: message.key?.toString() ?? null, keyBytes: message.key ?? null, rawHeaders: message.headers ?? {}, value: message.value?.toString() ?? null, headers, partition, offset: message.offset, timestamp: message.timestamp, batch }
}

/**
 * Every record of `topic` from the start (read_committed), read by a one-off group until `done` holds for what has
 * been read (or the wait times out); the result is in partition then offset order. A record the group's consumer is
 * handed again (same partition and offset: kafkajs resumes from the group's last commit after a rebalance, which a
 * coordinator moving to a restarted node causes) is kept once: a record written twice has two offsets and shows.
 */
export async function readTopic(kafka: Kafka, topic: string, done: (records: ReadRecord[]) => boolean, options: { timeoutMs?: number } = {}): Promise<ReadRecord[]> {
  const records: ReadRecord[] = []
  const seen = new Set<string>()
  const consumer = kafka.consumer({ groupId: `reader-${topic}-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 100 })
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const at = `${partition}:${message.offset}`
        if (seen.has(at)) return
        seen.add(at)
        records.push(toRecord(partition, message))
      },
    })
    await waitFor(`records of ${topic}`, () => done(records), { timeoutMs: options.timeoutMs ?? 60_000 })
    return [...records].sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)))
  } finally {
    await consumer.disconnect()
  }
}

/** The JSON values of records. */
export function values<T = Record<string, unknown>>(records: readonly ReadRecord[]): T[] {
  return records.map((r) => JSON.parse(r.value!) as T)
}

/**
 * Every record of `topic` (read_committed) once `done` holds for what has been read and nothing more has come for a
 * while (2 s): a record written twice shows (a window written twice has its second copy after its first in its partition,
 * once everything is committed). `missing` adds to the error at the timeout (30 s unless `options.timeoutMs`).
 */
export async function readSettled(
  kafka: Kafka,
  topic: string,
  done: (records: ReadRecord[]) => boolean,
  missing: (records: ReadRecord[]) => string = () => '',
  options: { timeoutMs?: number } = {},
): Promise<ReadRecord[]> {
  let seen: ReadRecord[] = []
  let quietSince = Date.now()
  try {
    return await readTopic(kafka, topic, (records) => {
      if (records.length !== seen.length) [seen, quietSince] = [[...records], Date.now()]
      return done(records) && Date.now() - quietSince > 2000
    }, { timeoutMs: options.timeoutMs ?? 30_000 })
  } catch (error) {
    const perPartition = new Map<number, number>()
    for (const r of seen) perPartition.set(r.partition, (perPartition.get(r.partition) ?? 0) + 1)
    throw new Error(`${(error as Error).message}: ${seen.length} read (${[...perPartition].sort().map(([p, n]) => `partition ${p}: ${n}, last offset ${seen.filter((r) => r.partition === p).at(-1)?.offset}`).join('; ')}) ${missing(seen)}`)
  }
}

/** Whether `records` holds nothing more after `quietMs` (used after waiting for the expected records). */
export async function settled(kafka: Kafka, topic: string, count: number, quietMs = 1500): Promise<ReadRecord[]> {
  await new Promise((resolve) => setTimeout(resolve, quietMs))
  return readTopic(kafka, topic, (r) => r.length >= count)
}

/** kafkajs retries that ride out a proxy's faults (tcp-proxy.ts): every 100 ms to 1 s, 30 times. */
export const PATIENT_RETRY = { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 }

/**
 * For tests of a pipeline run in this process against a broker behind a proxy (brokerBehindProxy, FAST_GROUPS):
 * `start(clientId, input?)` starts them, makes the input topic when given, and returns the proxy, its address and a
 * kafkajs client through it (PATIENT_RETRY); `track(pipeline)` returns the pipeline after noting it. After each test
 * the pipeline is stopped, then the proxy and the broker.
 */
export function proxiedBrokerPerTest(): {
  start(clientId: string, input?: { topic: string; partitions: number }): Promise<{ proxy: TcpProxy; address: string; kafka: Kafka }>
  track(pipeline: RunningPipeline): RunningPipeline
} {
  let setup: ProxiedBroker | undefined
  let pipeline: RunningPipeline | undefined
  afterEach(async () => {
    await pipeline?.stop()
    await setup?.close()
    pipeline = setup = undefined
  })
  return {
    async start(clientId, input) {
      setup = await brokerBehindProxy(FAST_GROUPS)
      const { proxy, address } = setup
      const kafka = new kafkajs.Kafka({ clientId, brokers: [address], logLevel: kafkajs.logLevel.NOTHING, retry: PATIENT_RETRY })
      if (input) {
        const admin = kafka.admin()
        await admin.connect()
        await admin.createTopics({ topics: [{ topic: input.topic, numPartitions: input.partitions }] })
        await admin.disconnect()
      }
      return { proxy, address, kafka }
    },
    track(running) {
      pipeline = running
      return running
    },
  }
}
