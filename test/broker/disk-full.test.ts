/**
 * A node whose disk fills up, driven by real clients: a 16 MiB tmpfs is the data directory (skipped, with the reason
 * printed, where it cannot be mounted). kafkajs produces with acks=-1 until a write fails; space comes back (the
 * filler file put there beforehand is deleted, as a user frees space); then every write is refused
 * (KAFKA_STORAGE_ERROR for produce, topic and config changes; NOT_COORDINATOR for an offset commit), each on a
 * connection that stays open, while kcat still reads every acknowledged record. After kill -9, or a clean stop, and a
 * restart, every acknowledged record is back at its offset, nothing that was refused is there, and the node takes
 * writes again. Each step and what it answered is printed as a table. An idempotent producer that retries the batch
 * whose write failed (kafkajs keeps its sequence) is refused again, not answered as a duplicate of records never
 * written.
 *
 * Then the group coordinator's answers in the failed state, with and without __consumer_offsets, and a node started
 * on a full disk, which says why in one line.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigResourceTypes, Kafka, logLevel } from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { connect, createTopic, listOffset, producePartition, readPartition, recordsOf } from '../helpers/kafka.js'
import { commit, committedOffsets, findGroupCoordinator, joinWithMemberId, sync } from '../helpers/groups-wire.js'
import { kcat } from '../helpers/kcat.js'
import { MiB, mountTmpfs, type Tmpfs } from '../helpers/tmpfs.js'
import { waitFor } from '../helpers/wait.js'
import { brook } from '../cli/run-brook.js'
import { ErrorCode } from '../../protocol/errors.js'
import { encodeRecordBatch } from '../../protocol/record-batch.js'
import { createTopics, type CreateTopicsRequest, type CreateTopicsResponse } from '../../protocol/messages/create-topics.js'
import { deleteTopics, type DeleteTopicsRequest, type DeleteTopicsResponse } from '../../protocol/messages/delete-topics.js'
import { deleteRecords, type DeleteRecordsRequest, type DeleteRecordsResponse } from '../../protocol/messages/delete-records.js'
import {
  incrementalAlterConfigs,
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponse,
} from '../../protocol/messages/incremental-alter-configs.js'
import { metadata, type MetadataRequest, type MetadataResponse } from '../../protocol/messages/metadata.js'
import { describeLogDirs, type DescribeLogDirsRequest, type DescribeLogDirsResponse } from '../../protocol/messages/describe-log-dirs.js'
import { deleteGroups, type DeleteGroupsRequest, type DeleteGroupsResponse } from '../../protocol/messages/delete-groups.js'
import { offsetDelete, type OffsetDeleteRequest, type OffsetDeleteResponse } from '../../protocol/messages/offset-delete.js'
import type { KafkaClient } from '../../client/kafka-client.js'

const mounted = mountTmpfs(16 * MiB)
const skipReason = 'skipReason' in mounted ? mounted.skipReason : null
if (skipReason) console.warn(`disk-full tests skipped: ${skipReason}`)
const tmpfs = mounted as Tmpfs
afterAll(() => tmpfs.unmount?.())

const TOPIC = 'readings'
const GROUP = 'dashboard'
const RECORDS_PER_SEND = 50
const VALUE_BYTES = 1000
const TOPIC_RESOURCE = 2

/** The Kafka error name kafkajs reports, wherever it put it (retries-exceeded and aggregate errors wrap it). */
function kafkaErrorType(error: unknown): string | undefined {
  let e = error as { type?: string; cause?: unknown; originalError?: unknown; errors?: unknown[] } | undefined
  for (let depth = 0; e && depth < 5; depth++) {
    if (e.type) return e.type
    e = (e.cause ?? e.originalError ?? e.errors?.[0]) as typeof e
  }
  return undefined
}

const value = (label: string, n: number): string => `${label}-${n}`.padEnd(VALUE_BYTES, '.')

interface Step {
  step: string
  request: string
  answer: string
}

function printSteps(title: string, steps: Step[]): void {
  const rows = steps.map((s, i) => `| ${i + 1} | ${s.step} | ${s.request} | ${s.answer} |`)
  console.info([`${title}`, '| # | step | request | answer |', '|---|---|---|---|', ...rows].join('\n'))
}

describe.skipIf(skipReason !== null)('a node whose disk fills up', () => {
  describe.each([
    { ending: 'kill -9', stopNode: (broker: BrokerProcess) => broker.kill() },
    { ending: 'a clean stop', stopNode: (broker: BrokerProcess) => broker.stop() },
  ])('then $ending and a restart with space', ({ ending, stopNode }) => {
    let broker: BrokerProcess | undefined
    afterAll(async () => {
      await broker?.kill()
      tmpfs.free()
      if (broker) rmSync(broker.dataDir, { recursive: true, force: true })
    })

    it('acknowledges nothing after the failed write, serves what it acknowledged, and brings all of it back', { timeout: 240_000 }, async () => {
      const steps: Step[] = []
      const dataDir = join(tmpfs.dir, `node-${ending.replaceAll(/\W/g, '')}`)
      broker = await startBroker({ dataDir, args: ['--offsets-topic-partitions', '1'] })
      const kafka = new Kafka({ clientId: 'disk-full', brokers: [broker.address], logLevel: logLevel.NOTHING, retry: { retries: 0 } })
      const admin = kafka.admin({ retry: { retries: 0 } })
      const producer = kafka.producer({ retry: { retries: 0 } })
      await admin.connect()
      await producer.connect()

      // Before the disk fills: a topic with a config, and a committed offset (which creates __consumer_offsets).
      await createTopic(broker, TOPIC, { configs: { 'retention.ms': '86400000' } })
      const wire = await connect(broker)
      expect(await commit(wire, { groupId: GROUP, offsets: { [TOPIC]: { 0: 0n } } })).toEqual({ [TOPIC]: { 0: ErrorCode.NONE } })
      tmpfs.fill({ leaveBytes: 2 * MiB })

      // 1. Produce until a write fails. Sends are sequential, so each is acknowledged or refused on its own.
      const acknowledged = new Map<bigint, string>()
      let failure: unknown
      let sends = 0
      while (failure === undefined) {
        const values = Array.from({ length: RECORDS_PER_SEND }, (_, i) => value('acked', sends * RECORDS_PER_SEND + i))
        try {
          const [result] = await producer.send({ topic: TOPIC, acks: -1, messages: values.map((v) => ({ value: v })) })
          const base = BigInt(result!.baseOffset!)
          values.forEach((v, i) => acknowledged.set(base + BigInt(i), v))
        } catch (error) {
          failure = error
        }
        if (++sends > 10_000) throw new Error('the disk never filled up')
      }
      const end = BigInt(acknowledged.size)
      expect([...acknowledged.keys()]).toEqual([...Array(acknowledged.size).keys()].map(BigInt))
      expect(kafkaErrorType(failure)).toBe('KAFKA_STORAGE_ERROR')
      steps.push({ step: 'produce until the disk is full', request: `kafkajs send x${sends}, ${RECORDS_PER_SEND} records of 1 KB, acks=-1`, answer: `${sends - 1} acknowledged (offsets 0-${end - 1n}), then KAFKA_STORAGE_ERROR` })
      // The node says what happened, once (its stdout may trail the answer a little).
      const node = broker
      await waitFor('the failure in the broker log', () => /ERROR .*No space left on device\. From now on this node refuses every write/.test(node.output()))

      // 2. Space comes back; writes are still refused, and say why.
      tmpfs.free()
      steps.push({ step: 'free space', request: `delete the filler file (${(tmpfs.available() / MiB).toFixed(1)} MiB free)`, answer: '-' })
      let refusedSends = 0
      for (let i = 0; i < 10; i++) {
        const error = await producer.send({ topic: TOPIC, acks: -1, messages: [{ value: value('refused-kafkajs', i) }] }).then(() => null, (e: unknown) => e)
        expect(kafkaErrorType(error)).toBe('KAFKA_STORAGE_ERROR')
        refusedSends++
      }
      steps.push({ step: 'produce after space came back', request: `kafkajs send x${refusedSends}, acks=-1`, answer: `KAFKA_STORAGE_ERROR x${refusedSends}` })
      const produced = await kcat(['-b', broker.address, '-P', '-t', TOPIC, '-p', '0', '-X', 'acks=all', '-X', 'message.send.max.retries=0', '-X', 'message.timeout.ms=10000'], {
        input: Array.from({ length: 5 }, (_, i) => value('refused-kcat', i)).join('\n') + '\n',
      }).then(
        () => null,
        (error: Error) => error.message,
      )
      // librdkafka's text for KAFKA_STORAGE_ERROR.
      expect(produced?.match(/Delivery failed for message: Broker: Disk error when trying to access log file on disk/g)).toHaveLength(5)
      steps.push({ step: 'produce after space came back', request: 'kcat -P, 5 records, acks=all', answer: 'delivery failed x5: "Broker: Disk error when trying to access log file on disk" (KAFKA_STORAGE_ERROR)' })
      const answer = await producePartition(wire, TOPIC, 0, encodeRecordBatch([{ value: Buffer.from('refused-wire') }]))
      expect(answer).toMatchObject({ errorCode: ErrorCode.KAFKA_STORAGE_ERROR, baseOffset: -1n })
      expect(answer.errorMessage).toMatch(/^storage failed earlier: IO error: .*No space left on device; restart the node$/)
      steps.push({ step: 'produce after space came back', request: 'Produce v9 (Brook wire client)', answer: `KAFKA_STORAGE_ERROR, errorMessage "${answer.errorMessage!.replace(/IO error: \S+:/, 'IO error: <wal>:')}"` })

      // 3. Reads go on: kcat reads exactly what was acknowledged, at its offsets; latest is the acknowledged end.
      const consumed = (await kcat(['-b', broker.address, '-C', '-t', TOPIC, '-p', '0', '-o', 'beginning', '-e', '-q', '-f', '%o %s\n'])).stdout
      const served = new Map(consumed.trim().split('\n').map((line) => [BigInt(line.split(' ')[0]!), line.split(' ')[1]!] as const))
      expect(served).toEqual(acknowledged)
      steps.push({ step: 'read back', request: 'kcat -C -o beginning -e', answer: `${served.size} records, offsets 0-${end - 1n}, exactly the acknowledged ones` })
      expect((await listOffset(wire, TOPIC, 0, -1n)).offset).toBe(end)
      steps.push({ step: 'latest offset', request: 'ListOffsets latest', answer: `${end} (the acknowledged end)` })

      // 4. Other writes get their error codes, and the connection answers the next request.
      const created = await wire.request<Partial<CreateTopicsRequest>, CreateTopicsResponse>(createTopics, 7, {
        topics: [{ name: 'new-topic', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }],
        timeoutMs: 10_000,
        validateOnly: false,
      })
      expect(created.topics[0]).toMatchObject({ errorCode: ErrorCode.KAFKA_STORAGE_ERROR })
      steps.push({ step: 'create a topic', request: 'CreateTopics v7', answer: 'KAFKA_STORAGE_ERROR' })
      const kafkajsCreate = await admin.createTopics({ topics: [{ topic: 'new-topic' }] }).then(() => null, (e: unknown) => e)
      expect(kafkaErrorType(kafkajsCreate)).toBe('KAFKA_STORAGE_ERROR')
      steps.push({ step: 'create a topic', request: 'kafkajs admin.createTopics', answer: 'KafkaJSAggregateError [KAFKA_STORAGE_ERROR]' })
      const altered = await wire.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, {
        resources: [{ resourceType: TOPIC_RESOURCE, resourceName: TOPIC, configs: [{ name: 'retention.ms', configOperation: 0, value: '1000' }] }],
        validateOnly: false,
      })
      expect(altered.responses[0]).toMatchObject({ errorCode: ErrorCode.KAFKA_STORAGE_ERROR })
      steps.push({ step: 'change a config', request: 'IncrementalAlterConfigs v1 retention.ms=1000', answer: 'KAFKA_STORAGE_ERROR' })
      const kafkajsAlter = await admin
        .alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: TOPIC, configEntries: [{ name: 'retention.ms', value: '1000' }] }] })
        .then(() => null, (e: unknown) => e)
      expect(kafkaErrorType(kafkajsAlter)).toBe('KAFKA_STORAGE_ERROR')
      steps.push({ step: 'change a config', request: 'kafkajs admin.alterConfigs', answer: 'KAFKA_STORAGE_ERROR' })
      expect(await commit(wire, { groupId: GROUP, offsets: { [TOPIC]: { 0: 100n } } })).toEqual({ [TOPIC]: { 0: ErrorCode.NOT_COORDINATOR } })
      steps.push({ step: 'commit an offset', request: 'OffsetCommit v8, standalone', answer: 'NOT_COORDINATOR (Kafka\'s translation of KAFKA_STORAGE_ERROR)' })
      const deleted = await wire.request<Partial<DeleteRecordsRequest>, DeleteRecordsResponse>(deleteRecords, 2, {
        topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, offset: 10n }] }],
        timeoutMs: 10_000,
      })
      expect(deleted.topics[0]!.partitions[0]).toMatchObject({ errorCode: ErrorCode.KAFKA_STORAGE_ERROR, lowWatermark: -1n })
      steps.push({ step: 'delete records', request: 'DeleteRecords v2 before offset 10', answer: 'KAFKA_STORAGE_ERROR' })
      const dropped = await wire.request<Partial<DeleteTopicsRequest>, DeleteTopicsResponse>(deleteTopics, 6, {
        topics: [{ name: TOPIC, topicId: '00000000-0000-0000-0000-000000000000' }],
        timeoutMs: 10_000,
      })
      expect(dropped.responses[0]).toMatchObject({ errorCode: ErrorCode.KAFKA_STORAGE_ERROR })
      steps.push({ step: 'delete the topic', request: 'DeleteTopics v6', answer: 'KAFKA_STORAGE_ERROR (the topic stays, readable)' })
      const logDirs = await wire.request<DescribeLogDirsRequest, DescribeLogDirsResponse>(describeLogDirs, 4, { topics: null })
      expect(logDirs).toMatchObject({ errorCode: ErrorCode.NONE, results: [{ errorCode: ErrorCode.KAFKA_STORAGE_ERROR, logDir: dataDir, topics: [] }] })
      steps.push({ step: 'describe the log directory', request: 'DescribeLogDirs v4', answer: 'KAFKA_STORAGE_ERROR for the directory (Kafka\'s offline log directory)' })
      const described = await wire.request<Partial<MetadataRequest>, MetadataResponse>(metadata, 12, {
        topics: [{ name: TOPIC, topicId: '00000000-0000-0000-0000-000000000000' }],
        allowAutoTopicCreation: false,
        includeTopicAuthorizedOperations: false,
      })
      expect(described.topics[0]).toMatchObject({ name: TOPIC, errorCode: ErrorCode.NONE })
      expect(await committedOffsets(wire, GROUP, { [TOPIC]: [0] })).toEqual({ [TOPIC]: { 0: 0n } })
      steps.push({ step: 'same connection, reads', request: 'Metadata v12, OffsetFetch v7', answer: `answered: the topic is there; committed offset 0` })
      wire.close()

      expect(broker.output().match(/From now on this node refuses every write/g)).toHaveLength(1)
      // Every refusal was answered or handled where it arose: none reached the process as an unhandled rejection.
      expect(broker.output()).not.toContain('unhandled rejection')

      // 5. Stop, restart with space: every acknowledged record, at its offset, and nothing else.
      await producer.disconnect()
      await admin.disconnect()
      await stopNode(broker)
      steps.push({ step: ending, request: ending === 'kill -9' ? 'SIGKILL' : 'SIGTERM', answer: 'stopped' })
      broker = await broker.restart()
      steps.push({ step: 'restart', request: 'brook start on the same data directory', answer: 'listening' })
      const restarted = await connect(broker)
      const { batches, highWatermark } = await readPartition(restarted, TOPIC, 0)
      const stored = new Map(recordsOf(batches).map((record) => [record.offset, record.value!.toString()]))
      expect(highWatermark).toBe(end)
      expect(stored).toEqual(acknowledged)
      expect(await committedOffsets(restarted, GROUP, { [TOPIC]: [0] })).toEqual({ [TOPIC]: { 0: 0n } })
      steps.push({ step: 'read back after the restart', request: 'Fetch from 0 (wire client), OffsetFetch', answer: `high watermark ${highWatermark}; ${stored.size} records, each acknowledged one at its offset, none of the refused; committed offset 0` })
      const kafkaAgain = new Kafka({ clientId: 'disk-full', brokers: [broker.address], logLevel: logLevel.NOTHING })
      const adminAgain = kafkaAgain.admin()
      await adminAgain.connect()
      const [config] = (await adminAgain.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: TOPIC, configNames: ['retention.ms'] }] })).resources
      expect(config!.configEntries[0]!.configValue).toBe('86400000')
      await adminAgain.disconnect()
      const producerAgain = kafkaAgain.producer()
      await producerAgain.connect()
      const [next] = await producerAgain.send({ topic: TOPIC, acks: -1, messages: [{ value: 'after-restart' }] })
      await producerAgain.disconnect()
      expect(BigInt(next!.baseOffset!)).toBe(end)
      await kcat(['-b', broker.address, '-P', '-t', TOPIC, '-p', '0', '-X', 'acks=all'], { input: 'kcat-after-restart\n' })
      expect((await listOffset(restarted, TOPIC, 0, -1n)).offset).toBe(end + 2n)
      restarted.close()
      steps.push({ step: 'produce after the restart', request: 'kafkajs send, kcat -P (acks=all)', answer: `acknowledged at offsets ${end} and ${end + 1n}` })
      printSteps(`disk full, then ${ending}:`, steps)
    })
  })

  describe('the group coordinator after a failed write', () => {
    let broker: BrokerProcess | undefined
    afterAll(async () => {
      await broker?.kill()
      tmpfs.free()
      if (broker) rmSync(broker.dataDir, { recursive: true, force: true })
    })

    /** Makes the node's storage fail: a full disk under a 256 KB produce, then space again. */
    async function failStorage(client: KafkaClient): Promise<void> {
      tmpfs.fill({ leaveBytes: 0 })
      const answer = await producePartition(client, TOPIC, 0, encodeRecordBatch([{ value: Buffer.alloc(256 * 1024, 1) }]))
      expect(answer.errorCode).toBe(ErrorCode.KAFKA_STORAGE_ERROR)
      tmpfs.free()
    }

    it('answers group writes NOT_COORDINATOR, keeps the group and its offsets, and answers reads', { timeout: 120_000 }, async () => {
      broker = await startBroker({ dataDir: join(tmpfs.dir, 'node-groups'), args: ['--offsets-topic-partitions', '1', '--group-initial-rebalance-delay-ms', '0'] })
      await createTopic(broker, TOPIC)
      const client = await connect(broker)
      expect(await commit(client, { groupId: 'idle', offsets: { [TOPIC]: { 0: 7n } } })).toEqual({ [TOPIC]: { 0: ErrorCode.NONE } })
      await failStorage(client)

      // Reads: the coordinator is still this node, and the committed offset is served.
      expect((await findGroupCoordinator(client, 'idle')).errorCode).toBe(ErrorCode.NONE)
      expect(await committedOffsets(client, 'idle', { [TOPIC]: [0] })).toEqual({ [TOPIC]: { 0: 7n } })
      // Writes: an offset commit, an offset delete, a group delete, a leader's assignment.
      expect(await commit(client, { groupId: 'idle', offsets: { [TOPIC]: { 0: 9n } } })).toEqual({ [TOPIC]: { 0: ErrorCode.NOT_COORDINATOR } })
      const offsetDeleted = await client.request<OffsetDeleteRequest, OffsetDeleteResponse>(offsetDelete, 0, {
        groupId: 'idle',
        topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0 }] }],
      })
      expect(offsetDeleted.errorCode).toBe(ErrorCode.NOT_COORDINATOR)
      const groupDeleted = await client.request<DeleteGroupsRequest, DeleteGroupsResponse>(deleteGroups, 2, { groupsNames: ['idle'] })
      expect(groupDeleted.results).toEqual([{ groupId: 'idle', errorCode: ErrorCode.NOT_COORDINATOR }])
      const joined = await joinWithMemberId(client, { version: 5, groupId: 'active', topics: [TOPIC] })
      expect(joined.errorCode).toBe(ErrorCode.NONE)
      const synced = await sync(client, { version: 3, groupId: 'active', generationId: joined.generationId!, memberId: joined.memberId, assignments: { [joined.memberId]: { [TOPIC]: [0] } } })
      expect(synced.errorCode).toBe(ErrorCode.NOT_COORDINATOR)
      // Nothing changed: the group and its offset are still there.
      expect(await committedOffsets(client, 'idle', { [TOPIC]: [0] })).toEqual({ [TOPIC]: { 0: 7n } })
      client.close()
      expect(broker.output()).not.toContain('unhandled rejection')

      await broker.kill()
      broker = await broker.restart()
      const restarted = await connect(broker)
      expect(await committedOffsets(restarted, 'idle', { [TOPIC]: [0] })).toEqual({ [TOPIC]: { 0: 7n } })
      expect(await commit(restarted, { groupId: 'idle', offsets: { [TOPIC]: { 0: 9n } } })).toEqual({ [TOPIC]: { 0: ErrorCode.NONE } })
      restarted.close()
    })

    it('answers COORDINATOR_NOT_AVAILABLE while __consumer_offsets cannot be created, and LEADER_NOT_AVAILABLE for an auto-creation', { timeout: 120_000 }, async () => {
      await broker?.kill()
      broker = await startBroker({ dataDir: join(tmpfs.dir, 'node-no-offsets-topic'), args: ['--offsets-topic-partitions', '1'] })
      await createTopic(broker, TOPIC)
      const client = await connect(broker)
      await failStorage(client)

      const found = await findGroupCoordinator(client, 'g')
      expect(found).toMatchObject({ errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE, nodeId: -1 })
      expect(found.errorMessage).toMatch(/^__consumer_offsets cannot be created: storage failed earlier: .*; restart the node$/)
      expect((await joinWithMemberId(client, { version: 5, groupId: 'g', topics: [TOPIC] })).errorCode).toBe(ErrorCode.COORDINATOR_NOT_AVAILABLE)
      expect(await commit(client, { groupId: 'g', offsets: { [TOPIC]: { 0: 1n } } })).toEqual({ [TOPIC]: { 0: ErrorCode.COORDINATOR_NOT_AVAILABLE } })
      const autoCreated = await client.request<Partial<MetadataRequest>, MetadataResponse>(metadata, 12, {
        topics: [{ name: 'never-created', topicId: '00000000-0000-0000-0000-000000000000' }],
        allowAutoTopicCreation: true,
        includeTopicAuthorizedOperations: false,
      })
      expect(autoCreated.topics[0]).toMatchObject({ name: 'never-created', errorCode: ErrorCode.LEADER_NOT_AVAILABLE })
      client.close()
    })
  })

  describe('an idempotent producer whose batch failed to be written', () => {
    let broker: BrokerProcess | undefined
    afterAll(async () => {
      await broker?.kill()
      tmpfs.free()
      if (broker) rmSync(broker.dataDir, { recursive: true, force: true })
    })

    it('is refused again when it retries the batch (same sequence), never told it was written', { timeout: 120_000 }, async () => {
      broker = await startBroker({ dataDir: join(tmpfs.dir, 'node-idempotent-retry') })
      await createTopic(broker, TOPIC)
      const kafka = new Kafka({ clientId: 'disk-full-idempotent', brokers: [broker.address], logLevel: logLevel.NOTHING })
      // kafkajs retries KAFKA_STORAGE_ERROR (retriable) with the batch's sequence unchanged: the broker sees a duplicate
      // of the batch whose write failed.
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, retry: { retries: 3, initialRetryTime: 50 } })
      await producer.connect()
      const acknowledged = new Map<bigint, string>()
      const send = async (values: string[]): Promise<void> => {
        const [result] = await producer.send({ topic: TOPIC, acks: -1, messages: values.map((v) => ({ value: v })) })
        values.forEach((v, i) => acknowledged.set(BigInt(result!.baseOffset!) + BigInt(i), v))
      }
      await send(Array.from({ length: 10 }, (_, i) => value('before', i)))
      tmpfs.fill({ leaveBytes: 0 })
      const failed = await send(Array.from({ length: 256 }, (_, i) => value('lost', i))).then(() => null, (e: unknown) => e)
      expect(kafkaErrorType(failed)).toBe('KAFKA_STORAGE_ERROR')
      await producer.disconnect()
      tmpfs.free()
      expect(broker.output()).not.toContain('unhandled rejection')

      await broker.kill()
      broker = await broker.restart()
      const restarted = await connect(broker)
      const { batches } = await readPartition(restarted, TOPIC, 0)
      restarted.close()
      expect(new Map(recordsOf(batches).map((record) => [record.offset, record.value!.toString()]))).toEqual(acknowledged)
    })
  })

  describe('a node started on a full disk', () => {
    let broker: BrokerProcess | undefined
    afterAll(async () => {
      await broker?.kill()
      tmpfs.free()
      if (broker) rmSync(broker.dataDir, { recursive: true, force: true })
    })

    it('says why in one line, and starts once there is space', { timeout: 120_000 }, async () => {
      broker = await startBroker({ dataDir: join(tmpfs.dir, 'node-full-at-start') })
      await createTopic(broker, TOPIC)
      await kcat(['-b', broker.address, '-P', '-t', TOPIC, '-p', '0'], { input: 'kept\n' })
      await broker.stop()
      tmpfs.fill({ leaveBytes: 0 })

      const result = await brook(['start', '--host', '127.0.0.1', '--port', '0', '--data-dir', broker.dataDir])
      expect(result.code).toBe(1)
      expect(result.stderr).toMatch(new RegExp(`^brook: cannot open the database in ${broker.dataDir}: IO error: [^\\n]*No space left on device\\n$`))

      tmpfs.free()
      broker = await broker.restart()
      const { stdout } = await kcat(['-b', broker.address, '-C', '-t', TOPIC, '-p', '0', '-o', 'beginning', '-e', '-q'])
      expect(stdout).toBe('kept\n')
    })
  })
})
