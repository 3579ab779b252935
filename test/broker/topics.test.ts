/**
 * Topic administration and metadata as clients meet them: CreateTopics' validation and validateOnly, Metadata's
 * "all topics" encodings per version, topic ids, auto-creation on and off, names that collide, and LogAppendTime
 * topics.
 * Exact error codes are checked through Brook's wire client; what users see, through kcat and kafkajs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CompressionTypes, Kafka, logLevel } from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { connect, fetchPartition, listOffset, producePartition, recordsOf, splitBatches, withClient } from '../helpers/kafka.js'
import { handBuiltBatch } from '../helpers/wire.js'
import { kcat } from '../helpers/kcat.js'
import { commit } from '../helpers/groups-wire.js'
import type { KafkaClient } from '../../client/kafka-client.js'
import {
  createTopics,
  type CreateTopicsRequest,
  type CreateTopicsRequestCreatableTopic,
  type CreateTopicsResponse,
} from '../../protocol/messages/create-topics.js'
import { metadata, type MetadataRequest, type MetadataResponse } from '../../protocol/messages/metadata.js'
import { deleteTopics, type DeleteTopicsRequest, type DeleteTopicsResponse } from '../../protocol/messages/delete-topics.js'
import { createPartitions, type CreatePartitionsRequest, type CreatePartitionsResponse } from '../../protocol/messages/create-partitions.js'

const ErrorCode = {
  NONE: 0,
  UNKNOWN_TOPIC_OR_PARTITION: 3,
  INVALID_TOPIC_EXCEPTION: 17,
  TOPIC_ALREADY_EXISTS: 36,
  INVALID_PARTITIONS: 37,
  INVALID_REPLICATION_FACTOR: 38,
  INVALID_REPLICA_ASSIGNMENT: 39,
  INVALID_CONFIG: 40,
  INVALID_REQUEST: 42,
  POLICY_VIOLATION: 44,
  UNKNOWN_TOPIC_ID: 100,
} as const

const ZERO_UUID = '00000000-0000-0000-0000-000000000000'

function topicSpec(name: string, spec: Partial<CreateTopicsRequestCreatableTopic> = {}): CreateTopicsRequestCreatableTopic {
  return { name, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [], ...spec }
}

async function create(client: KafkaClient, topics: CreateTopicsRequestCreatableTopic[], options: { validateOnly?: boolean; version?: number } = {}) {
  const response = await client.request<CreateTopicsRequest, CreateTopicsResponse>(createTopics, options.version ?? 7, {
    topics,
    timeoutMs: 10_000,
    validateOnly: options.validateOnly ?? false,
  })
  return response.topics
}

async function metadataFor(client: KafkaClient, version: number, request: Partial<MetadataRequest>): Promise<MetadataResponse> {
  return client.request<Partial<MetadataRequest>, MetadataResponse>(metadata, version, {
    allowAutoTopicCreation: false,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
    ...request,
  })
}

const named = (name: string) => ({ name, topicId: ZERO_UUID })

describe('topics and metadata', () => {
  let broker: BrokerProcess
  let client: KafkaClient
  beforeAll(async () => {
    broker = await startBroker()
    client = await connect(broker)
  })
  afterAll(async () => {
    client?.close()
    await broker?.stop()
    broker?.cleanup()
  })

  describe('CreateTopics', () => {
    it('creates a topic and answers (v5+) with its partitions, replication factor, configs and (v7) id', async () => {
      const [result] = await create(client, [topicSpec('created', { numPartitions: 3, configs: [{ name: 'retention.ms', value: '1000' }] })])
      expect(result).toMatchObject({ name: 'created', errorCode: ErrorCode.NONE, numPartitions: 3, replicationFactor: 1 })
      expect(result!.topicId).not.toBe(ZERO_UUID)
      expect(result!.configs).toContainEqual(expect.objectContaining({ name: 'retention.ms', value: '1000' }))
      const described = await metadataFor(client, 12, { topics: [named('created')] })
      expect(described.topics[0]).toMatchObject({ name: 'created', topicId: result!.topicId, errorCode: ErrorCode.NONE })
      expect(described.topics[0]!.partitions).toHaveLength(3)
    })

    it('refuses names Kafka refuses (Topic.java): empty, "." and "..", over 249 characters, other characters', async () => {
      const bad = ['', '.', '..', 'x'.repeat(250), 'has space', 'slash/name', 'ümlaut']
      const results = await create(client, bad.map((name) => topicSpec(name)))
      expect(results.map((r) => [r.name, r.errorCode])).toEqual(bad.map((name) => [name, ErrorCode.INVALID_TOPIC_EXCEPTION]))
      // The longest legal name is fine.
      const [longest] = await create(client, [topicSpec('y'.repeat(249))])
      expect(longest!.errorCode).toBe(ErrorCode.NONE)
    })

    it('refuses the metadata log\'s name, __cluster_metadata, with INVALID_REQUEST in Kafka\'s words (ControllerApis.createTopics)', async () => {
      for (const validateOnly of [true, false]) {
        const [refused] = await create(client, [topicSpec('__cluster_metadata')], { validateOnly })
        expect([refused!.errorCode, refused!.errorMessage]).toEqual([ErrorCode.INVALID_REQUEST, 'Creation of internal topic __cluster_metadata is prohibited.'])
      }
      const all = await metadataFor(client, 12, { topics: null })
      expect(all.topics.map((t) => t.name)).not.toContain('__cluster_metadata')
    })

    it('refuses to add partitions to __consumer_offsets and __transaction_state (POLICY_VIOLATION): their counts place every group and transactional id', async () => {
      for (const name of ['__consumer_offsets', '__transaction_state']) {
        const answer = await client.request<CreatePartitionsRequest, CreatePartitionsResponse>(createPartitions, 3, { topics: [{ name, count: 60, assignments: null }], timeoutMs: 10_000, validateOnly: false })
        expect(answer.results[0], name).toMatchObject({ errorCode: ErrorCode.POLICY_VIOLATION, errorMessage: expect.stringContaining(`internal topic '${name}' cannot change`) })
      }
    })

    it('refuses zero or negative partitions, and a replication factor this cluster cannot meet', async () => {
      const results = await create(client, [
        topicSpec('zero-partitions', { numPartitions: 0 }),
        topicSpec('negative-partitions', { numPartitions: -5 }),
        topicSpec('rf-two', { replicationFactor: 2 }),
        topicSpec('rf-zero', { replicationFactor: 0 }),
      ])
      expect(results.map((r) => r.errorCode)).toEqual([
        ErrorCode.INVALID_PARTITIONS,
        ErrorCode.INVALID_PARTITIONS,
        ErrorCode.INVALID_REPLICATION_FACTOR,
        ErrorCode.INVALID_REPLICATION_FACTOR,
      ])
    })

    it('-1 partitions and replication factor (v4+) take the broker defaults', async () => {
      const [result] = await create(client, [topicSpec('defaults', { numPartitions: -1, replicationFactor: -1 })])
      expect(result).toMatchObject({ errorCode: ErrorCode.NONE, numPartitions: 1, replicationFactor: 1 })
    })

    it('refuses unknown configs, invalid values and null values with INVALID_CONFIG naming the config', async () => {
      const results = await create(client, [
        topicSpec('unknown-config', { configs: [{ name: 'no.such.config', value: '1' }] }),
        topicSpec('bad-value', { configs: [{ name: 'retention.ms', value: 'soon' }] }),
        topicSpec('bad-enum', { configs: [{ name: 'message.timestamp.type', value: 'WallClock' }] }),
        topicSpec('null-value', { configs: [{ name: 'retention.ms', value: null }] }),
      ])
      expect(results.map((r) => r.errorCode)).toEqual(new Array(4).fill(ErrorCode.INVALID_CONFIG))
      expect(results[0]!.errorMessage).toContain('no.such.config')
      expect(results[1]!.errorMessage).toContain('retention.ms')
    })

    it('a manual assignment sets the partitions; one naming a missing broker is INVALID_REPLICA_ASSIGNMENT', async () => {
      const results = await create(client, [
        topicSpec('assigned', { numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [1] }, { partitionIndex: 1, brokerIds: [1] }] }),
        topicSpec('assigned-elsewhere', { numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [2] }] }),
      ])
      expect(results.map((r) => [r.errorCode, r.numPartitions])).toEqual([
        [ErrorCode.NONE, 2],
        [ErrorCode.INVALID_REPLICA_ASSIGNMENT, -1],
      ])
    })

    it('an existing topic is TOPIC_ALREADY_EXISTS; a name given twice in one request is INVALID_REQUEST, answered once', async () => {
      const [existing] = await create(client, [topicSpec('created')])
      expect(existing!.errorCode).toBe(ErrorCode.TOPIC_ALREADY_EXISTS)
      const twice = await create(client, [topicSpec('twice'), topicSpec('twice')])
      expect(twice.map((r) => [r.name, r.errorCode, r.errorMessage])).toEqual([['twice', ErrorCode.INVALID_REQUEST, 'Duplicate topic name.']])
    })

    it('validateOnly reports what would happen, errors included, and creates nothing', async () => {
      const results = await create(client, [topicSpec('dry-run', { numPartitions: 5 }), topicSpec('dry-run-bad', { numPartitions: 0 })], { validateOnly: true })
      expect(results.map((r) => [r.name, r.errorCode, r.numPartitions])).toEqual([
        ['dry-run', ErrorCode.NONE, 5],
        ['dry-run-bad', ErrorCode.INVALID_PARTITIONS, -1],
      ])
      const described = await metadataFor(client, 12, { topics: [named('dry-run')] })
      expect(described.topics[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    })

    it('v0 (non-flexible) creates and refuses the same way', async () => {
      const results = await create(client, [topicSpec('created-v0', { numPartitions: 2 }), topicSpec('bad name v0')], { version: 0 })
      expect(results.map((r) => r.errorCode)).toEqual([ErrorCode.NONE, ErrorCode.INVALID_TOPIC_EXCEPTION])
    })
  })

  describe('DeleteTopics', () => {
    const remove = (version: number, request: Partial<DeleteTopicsRequest>) =>
      client.request<Partial<DeleteTopicsRequest>, DeleteTopicsResponse>(deleteTopics, version, { topics: [], topicNames: [], timeoutMs: 10_000, ...request })
    const exists = async (name: string) => (await metadataFor(client, 12, { topics: [named(name)] })).topics[0]!.errorCode === ErrorCode.NONE

    it('a topic named twice, by name and id at once, or by neither is INVALID_REQUEST and nothing is deleted (ControllerApis.deleteTopics)', async () => {
      await create(client, [topicSpec('kept-twice'), topicSpec('kept-both'), topicSpec('gone-v6'), topicSpec('gone-v1')])
      const { topics } = await metadataFor(client, 12, { topics: [named('kept-both')] })
      const keptId = topics[0]!.topicId!
      const v6 = await remove(6, {
        topics: [named('kept-twice'), { name: 'kept-both', topicId: keptId }, { name: null, topicId: ZERO_UUID }, named('gone-v6'), named('kept-twice')],
      })
      expect(v6.responses.map((r) => [r.name, r.errorCode, r.errorMessage])).toEqual(expect.arrayContaining([
        ['kept-twice', ErrorCode.INVALID_REQUEST, 'Duplicate topic name.'],
        ['kept-both', ErrorCode.INVALID_REQUEST, 'You may not specify both topic name and topic id.'],
        [null, ErrorCode.INVALID_REQUEST, 'Neither topic name nor id were specified.'],
        ['gone-v6', ErrorCode.NONE, null],
      ]))
      expect(v6.responses.filter((r) => r.name === 'kept-twice')).toHaveLength(1)
      const v1 = await remove(1, { topicNames: ['kept-twice', 'gone-v1', 'kept-twice'] })
      expect(v1.responses.map((r) => [r.name, r.errorCode])).toEqual(expect.arrayContaining([
        ['kept-twice', ErrorCode.INVALID_REQUEST],
        ['gone-v1', ErrorCode.NONE],
      ]))
      expect(await exists('kept-twice')).toBe(true)
      expect(await exists('kept-both')).toBe(true)
      expect(await exists('gone-v6')).toBe(false)
      expect(await exists('gone-v1')).toBe(false)
    })
  })

  describe('Metadata', () => {
    it('v0: an empty topic list means all topics (MetadataRequest.json: only in v0)', async () => {
      const response = await metadataFor(client, 0, { topics: [] })
      expect(response.topics.map((t) => t.name)).toEqual(expect.arrayContaining(['created', 'defaults', 'assigned']))
    })

    it('v1+: null means all topics and an empty list means none', async () => {
      for (const version of [1, 4, 9, 12]) {
        const all = await metadataFor(client, version, { topics: null })
        expect(all.topics.map((t) => t.name), `v${version} null`).toEqual(expect.arrayContaining(['created', 'defaults']))
        const none = await metadataFor(client, version, { topics: [] })
        expect(none.topics, `v${version} []`).toEqual([])
        expect(none.brokers).toEqual([{ nodeId: 1, host: '127.0.0.1', port: broker.port, rack: null }])
      }
    })

    it('names this broker as controller (v1+) and gives the real leader epoch, 0, not a made-up one (v7+)', async () => {
      const response = await metadataFor(client, 12, { topics: [named('created')] })
      expect(response.controllerId).toBe(1)
      expect(response.clusterId).toMatch(/^[A-Za-z0-9_-]{22}$/)
      expect(response.topics[0]!.partitions.map((p) => [p.partitionIndex, p.leaderId, p.leaderEpoch, p.replicaNodes, p.isrNodes])).toEqual([
        [0, 1, 0, [1], [1]],
        [1, 1, 0, [1], [1]],
        [2, 1, 0, [1], [1]],
      ])
    })

    it('v10+: topics by id; v12 answers a request by id alone with the name; an unknown id is UNKNOWN_TOPIC_ID', async () => {
      const { topics } = await metadataFor(client, 12, { topics: [named('created')] })
      const topicId = topics[0]!.topicId!
      const byId = await metadataFor(client, 12, { topics: [{ name: null, topicId }, { name: null, topicId: '0123abcd-0000-4000-8000-000000000000' }] })
      expect(byId.topics.map((t) => [t.name, t.errorCode])).toEqual([
        ['created', ErrorCode.NONE],
        [null, ErrorCode.UNKNOWN_TOPIC_ID],
      ])
    })

    it('authorized operations (v8+) are every operation the topic and the cluster (v8-10) support when asked for, as Kafka without an authorizer answers', async () => {
      // AclOperation codes as bits (Utils.to32BitField; AclEntry.supportedOperations). Topic: READ 3, WRITE 4, CREATE 5,
      // DELETE 6, ALTER 7, DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11. Cluster: CREATE 5, ALTER 7, DESCRIBE 8,
      // CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
      const topicOperations = 0b1101_1111_1000
      const clusterOperations = 0b1_1111_1010_0000
      const notRequested = -2147483648
      const v8 = await metadataFor(client, 8, { topics: [named('created')], includeTopicAuthorizedOperations: true, includeClusterAuthorizedOperations: true })
      expect([v8.topics[0]!.topicAuthorizedOperations, v8.clusterAuthorizedOperations]).toEqual([topicOperations, clusterOperations])
      const all = await metadataFor(client, 12, { topics: null, includeTopicAuthorizedOperations: true })
      expect(new Set(all.topics.map((t) => t.topicAuthorizedOperations))).toEqual(new Set([topicOperations]))
      const notAsked = await metadataFor(client, 12, { topics: [named('created')] })
      expect(notAsked.topics[0]!.topicAuthorizedOperations).toBe(notRequested)
      const v8NotAsked = await metadataFor(client, 8, { topics: [named('created')] })
      expect([v8NotAsked.topics[0]!.topicAuthorizedOperations, v8NotAsked.clusterAuthorizedOperations]).toEqual([notRequested, notRequested])
    })

    it('auto-creates an unknown topic only when the request allows it (always before v4)', async () => {
      const refused = await metadataFor(client, 4, { topics: [named('not-asked-for')], allowAutoTopicCreation: false })
      expect(refused.topics[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
      const allowed = await metadataFor(client, 4, { topics: [named('asked-for')], allowAutoTopicCreation: true })
      expect(allowed.topics[0]).toMatchObject({ name: 'asked-for', errorCode: ErrorCode.NONE })
      const old = await metadataFor(client, 3, { topics: [named('asked-for-v3')] })
      expect(old.topics[0]).toMatchObject({ name: 'asked-for-v3', errorCode: ErrorCode.NONE })
      const all = await metadataFor(client, 1, { topics: null })
      expect(all.topics.map((t) => t.name)).not.toContain('not-asked-for')
    })

    it('an invalid name in a Metadata request is INVALID_TOPIC_EXCEPTION, never auto-created', async () => {
      const response = await metadataFor(client, 4, { topics: [named('bad name')], allowAutoTopicCreation: true })
      expect(response.topics[0]!.errorCode).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION)
    })

    it('kcat -P to an unknown topic auto-creates it (librdkafka, like the Kafka test suite, assumes so)', async () => {
      await kcat(['-b', broker.address, '-P', '-t', 'made-by-kcat'], { input: 'hello\n' })
      const { stdout } = await kcat(['-b', broker.address, '-C', '-t', 'made-by-kcat', '-e', '-q'])
      expect(stdout).toBe('hello\n')
    })
  })

  describe("names that differ only in '.' and '_' (Kafka's Topic.hasCollision)", () => {
    let kafka: Kafka
    beforeAll(() => {
      kafka = new Kafka({ clientId: 'collisions', brokers: [broker.address], logLevel: logLevel.NOTHING })
    })

    it('CreateTopics refuses a colliding name with INVALID_TOPIC_EXCEPTION naming the topic it collides with, validateOnly too', async () => {
      const admin = kafka.admin()
      await admin.connect()
      try {
        await admin.createTopics({ topics: [{ topic: 'plant.temperature' }] })
        for (const validateOnly of [false, true]) {
          const refused = await admin.createTopics({ validateOnly, topics: [{ topic: 'plant_temperature' }] }).catch((error: unknown) => error)
          expect(refused, `validateOnly ${validateOnly}`).toMatchObject({ errors: [{ type: 'INVALID_TOPIC_EXCEPTION', code: ErrorCode.INVALID_TOPIC_EXCEPTION }] })
        }
        expect(await admin.listTopics()).not.toContain('plant_temperature')
      } finally {
        await admin.disconnect()
      }
      const [answer] = await create(client, [topicSpec('plant_temperature')], { validateOnly: true })
      expect(answer).toMatchObject({ errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, errorMessage: "topic 'plant_temperature' collides with existing topics: plant.temperature" })
    })

    it('two colliding names in one request: the first is created, the second refused', async () => {
      const results = await create(client, [topicSpec('line_1.speed'), topicSpec('line_1_speed'), topicSpec('line.1.speed')])
      expect(results.map((r) => [r.name, r.errorCode])).toEqual([
        ['line_1.speed', ErrorCode.NONE],
        ['line_1_speed', ErrorCode.INVALID_TOPIC_EXCEPTION],
        ['line.1.speed', ErrorCode.INVALID_TOPIC_EXCEPTION],
      ])
    })

    it('auto-creation refuses a colliding name: kcat and kafkajs producers get INVALID_TOPIC_EXCEPTION, and nothing is created', async () => {
      await kcat(['-b', broker.address, '-P', '-t', 'hall.humidity'], { input: 'first\n' })
      // librdkafka fails the message with the broker's error, or, when the refusal reached its metadata cache before
      // kcat handed it the line, refuses it at once as a topic it does not know: either way nothing is written.
      await expect(kcat(['-b', broker.address, '-P', '-t', 'hall_humidity'], { input: 'second\n', timeoutMs: 30_000 })).rejects.toThrow(
        /Delivery failed for message: Broker: Invalid topic|Failed to produce message .*: Local: Unknown topic/,
      )
      const producer = kafka.producer({ retry: { retries: 0 } })
      await producer.connect()
      try {
        await expect(producer.send({ topic: 'hall_humidity', messages: [{ value: 'third' }] })).rejects.toMatchObject({ cause: { type: 'INVALID_TOPIC_EXCEPTION' } })
      } finally {
        await producer.disconnect()
      }
      const response = await metadataFor(client, 12, { topics: [named('hall_humidity')], allowAutoTopicCreation: true })
      expect(response.topics[0]!.errorCode).toBe(ErrorCode.INVALID_TOPIC_EXCEPTION)
      const all = await metadataFor(client, 12, { topics: null })
      expect(all.topics.map((t) => t.name)).toContain('hall.humidity')
      expect(all.topics.map((t) => t.name)).not.toContain('hall_humidity')
    })

    it('once the topic it collided with is deleted, the name can be created', async () => {
      const admin = kafka.admin()
      await admin.connect()
      try {
        await admin.createTopics({ topics: [{ topic: 'dock.door' }] })
        await admin.deleteTopics({ topics: ['dock.door'] })
        expect(await admin.createTopics({ topics: [{ topic: 'dock_door' }] })).toBe(true)
      } finally {
        await admin.disconnect()
      }
    })
  })

  describe('with auto.create.topics.enable off', () => {
    let strict: BrokerProcess
    beforeAll(async () => {
      strict = await startBroker({ args: ['--no-auto-create-topics'] })
    })
    afterAll(async () => {
      await strict?.stop()
      strict?.cleanup()
    })

    it('an unknown topic stays unknown even when the request allows creation, and kcat says so', async () => {
      const response = await withClient(strict, (c) => metadataFor(c, 9, { topics: [named('nope')], allowAutoTopicCreation: true }))
      expect(response.topics[0]!.errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
      const { stdout } = await kcat(['-b', strict.address, '-L', '-t', 'nope'])
      expect(stdout).toContain('Broker: Unknown topic or partition')
      await expect(kcat(['-b', strict.address, '-C', '-t', 'nope', '-e'])).rejects.toThrow(/Unknown topic or partition/)
    })
  })

  describe('deleting a topic while it is created again', () => {
    let own: BrokerProcess | undefined
    afterAll(async () => {
      await own?.stop()
      own?.cleanup()
    })

    // Two connections send DeleteTopics and CreateTopics for one name at the same moment (no real client can be made
    // to), many times over: whichever the broker takes first, the topic exists after a kill -9 exactly when its
    // creation was acknowledged after the deletion, and the topic created again never loses its record.
    it('the topic exists after a kill -9 exactly when it was created again after its deletion', async () => {
      own = await startBroker()
      const [deleter, creator, writer] = [await connect(own), await connect(own), await connect(own)]
      expect((await create(creator, [topicSpec('bulk', { configs: [{ name: 'max.message.bytes', value: String(16 * 1024 * 1024) }] })]))[0]!.errorCode).toBe(ErrorCode.NONE)
      const outcomes: string[] = []
      try {
        for (let round = 0; round < 8; round++) {
          const topic = `cycle-${round}`
          expect((await create(creator, [topicSpec(topic, { numPartitions: 4 })]))[0]!.errorCode).toBe(ErrorCode.NONE)
          // Committed offsets to remove make the deletion take a while, so that the two requests overlap.
          for (let g = 0; g < 20; g++) await commit(creator, { groupId: `readers-${g}`, offsets: { [topic]: { 0: 1n, 1: 1n, 2: 1n, 3: 1n } } })
          // A large write in flight holds up the deletion's wait for pending writes, while the creation goes on.
          const writing = producePartition(writer, 'bulk', 0, handBuiltBatch(Array.from({ length: 64 }, () => 'x'.repeat(64 * 1024))))
          const [deleted, [created]] = await Promise.all([
            deleter.request<DeleteTopicsRequest, DeleteTopicsResponse>(deleteTopics, 6, { topics: [named(topic)], topicNames: [], timeoutMs: 10_000 }),
            create(creator, [topicSpec(topic, { numPartitions: 2 })]),
          ])
          expect((await writing).errorCode).toBe(ErrorCode.NONE)
          expect(deleted.responses[0]!.errorCode).toBe(ErrorCode.NONE)
          outcomes.push(created!.errorCode === ErrorCode.NONE ? 'created again' : 'deleted')
        }
      } finally {
        deleter.close()
        creator.close()
        writer.close()
      }
      const listed = async (): Promise<string[]> => {
        const names = new Set((await withClient(own!, (c) => metadataFor(c, 12, { topics: null }))).topics.map((t) => t.name))
        return outcomes.map((_, round) => (names.has(`cycle-${round}`) ? 'created again' : 'deleted'))
      }
      expect(await listed()).toEqual(outcomes)
      await own.kill()
      own = await own.restart()
      expect(await listed()).toEqual(outcomes)
    })
  })

  describe('LogAppendTime topics', () => {
    it('records carry the broker time of the append, whatever the producer put in them', async () => {
      const kafka = new Kafka({ clientId: 'log-append-time', brokers: [broker.address], logLevel: logLevel.NOTHING })
      const admin = kafka.admin()
      const producer = kafka.producer()
      await admin.connect()
      await producer.connect()
      try {
        await admin.createTopics({ topics: [{ topic: 'stamped', configEntries: [{ name: 'message.timestamp.type', value: 'LogAppendTime' }] }] })
        const before = Date.now()
        const [plain] = await producer.send({ topic: 'stamped', messages: [{ value: 'a', timestamp: '1000' }, { value: 'b', timestamp: '2000' }] })
        const [gzipped] = await producer.send({ topic: 'stamped', compression: CompressionTypes.GZIP, messages: [{ value: 'c', timestamp: '3000' }] })
        const after = Date.now()
        // Produce responses carry the append time (ProduceResponse.json logAppendTimeMs: -1 unless LogAppendTime).
        for (const result of [plain!, gzipped!]) {
          expect(Number(result.logAppendTime)).toBeGreaterThanOrEqual(before)
          expect(Number(result.logAppendTime)).toBeLessThanOrEqual(after)
        }

        const { stdout } = await kcat(['-b', broker.address, '-C', '-t', 'stamped', '-e', '-q', '-f', '%s %T\n'])
        const seen = stdout.trim().split('\n').map((line) => line.split(' '))
        expect(seen.map(([value]) => value)).toEqual(['a', 'b', 'c'])
        for (const [, timestamp] of seen) {
          expect(Number(timestamp)).toBeGreaterThanOrEqual(before)
          expect(Number(timestamp)).toBeLessThanOrEqual(after)
        }

        // Stored with the LogAppendTime attribute bit (3) and a CRC that still holds (splitBatches checks it).
        const answer = await fetchPartition(client, { topic: 'stamped', partition: 0, offset: 0n })
        const batches = splitBatches(answer.records)
        expect(batches.map((b) => [b.header.attributes & 0x08, b.header.attributes & 0x07])).toEqual([
          [0x08, 0],
          [0x08, 1],
        ])
        expect(recordsOf(batches).every((r) => r.timestamp >= BigInt(before))).toBe(true)

        // ListOffsets by timestamp searches the append times: the producer's 2000 ms is before every record.
        expect(await listOffset(client, 'stamped', 0, 2000n)).toMatchObject({ errorCode: 0, offset: 0n })
        expect(await listOffset(client, 'stamped', 0, BigInt(after + 60_000))).toMatchObject({ errorCode: 0, offset: -1n })
      } finally {
        await producer.disconnect()
        await admin.disconnect()
      }
    })
  })
})
