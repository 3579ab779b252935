/**
 * @platformatic/kafka 1.35 against one real broker process. This client speaks almost only flexible versions
 * (KIP-482: compact types, tagged fields, request header v2), negotiates by walking down from our max, and never
 * falls back, so it is the test of Brook's flexible encodings and of topic ids (Metadata v10+ with Fetch v13+,
 * reference/kafka-clients.md "Metadata v10+ with Fetch v12").
 *
 * Every consume path of its Consumer (`consume()`) joins a consumer group first (clients/consumer/consumer.js
 * #performConsume); `Consumer.fetch({ node, topics })` and `listOffsets` are its group-free lower-level API, and are
 * what is tested here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import {
  AclOperations,
  AclPermissionTypes,
  Admin,
  Connection,
  ResourcePatternTypes,
  ResourceTypes,
  Consumer,
  Producer,
  ProduceAcks,
  connectionsApiChannel,
  describeClusterV1,
  describeTopicPartitionsV0,
  stringSerializers,
} from '@platformatic/kafka'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { fetchPartition, splitBatches, withClient } from '../helpers/kafka.js'
import { kcat } from '../helpers/kcat.js'
import { commit } from '../helpers/groups-wire.js'

/** API key -> versions platformatic sent, from its public diagnostics channel `plt:kafka:connections:api`. */
const sent = new Map<number, Set<number>>()
const onStart = (message: unknown): void => {
  const { apiKey, apiVersion } = message as { apiKey: number; apiVersion: number }
  if (!sent.has(apiKey)) sent.set(apiKey, new Set())
  sent.get(apiKey)!.add(apiVersion)
}

describe('@platformatic/kafka 1.35 against one node', () => {
  let broker: BrokerProcess
  let admin: Admin
  let producer: Producer<string, string, string, string>
  let consumer: Consumer
  beforeAll(async () => {
    subscribe(connectionsApiChannel.start.name, onStart)
    broker = await startBroker()
    const bootstrapBrokers = [broker.address]
    admin = new Admin({ clientId: 'plt-admin', bootstrapBrokers })
    producer = new Producer({ clientId: 'plt-producer', bootstrapBrokers, serializers: stringSerializers })
    // groupId is required by the constructor; fetch and listOffsets never use it.
    consumer = new Consumer({ clientId: 'plt-consumer', groupId: 'unused', bootstrapBrokers })
  })
  afterAll(async () => {
    unsubscribe(connectionsApiChannel.start.name, onStart)
    await consumer?.close()
    await producer?.close()
    await admin?.close()
    await broker?.stop()
    broker?.cleanup()
  })

  /** Fetches one partition through the client's group-free Fetch, by topic id. */
  async function fetchWith(topic: string, partition: number, fetchOffset: bigint) {
    const metadata = await consumer.metadata({ topics: [topic] })
    const topicId = metadata.topics.get(topic)!.id
    const response = await consumer.fetch({
      node: 1,
      maxWaitTime: 100,
      topics: [{ topicId, partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset, lastFetchedEpoch: -1, partitionMaxBytes: 1 << 20 }] }],
    })
    expect(response.responses[0]!.topicId).toBe(topicId)
    return response.responses[0]!.partitions[0]!
  }

  it('admin.createTopics returns the topic id and its effective configs; metadata agrees', async () => {
    const [created] = await admin.createTopics({ topics: ['sensors'], partitions: 3, replicas: 1, configs: [{ name: 'retention.ms', value: '60000' }] })
    expect(created).toMatchObject({ name: 'sensors', partitions: 3, replicas: 1 })
    expect(created!.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    expect(created!.configuration).toMatchObject({ 'retention.ms': '60000', 'cleanup.policy': 'delete' })

    const metadata = await admin.metadata({ topics: ['sensors'] })
    expect(metadata.controllerId).toBe(1)
    expect([...metadata.brokers]).toEqual([[1, { host: '127.0.0.1', port: broker.port, rack: null }]])
    const topic = metadata.topics.get('sensors')!
    expect(topic.id).toBe(created!.id)
    expect(topic.partitions).toEqual(
      [0, 1, 2].map(() => ({ leader: 1, leaderEpoch: 0, replicas: [1], isr: [1], offlineReplicas: [] })),
    )
    expect(await admin.listTopics()).toContain('sensors')
  })

  for (const acks of [ProduceAcks.LEADER, ProduceAcks.ALL]) {
    it(`producer.send (acks=${acks}) returns offsets; Consumer.fetch by topic id returns the records`, async () => {
      const topic = `readings-${acks === ProduceAcks.ALL ? 'all' : 'leader'}`
      await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 })
      const result = await producer.send({
        acks,
        messages: [
          { topic, partition: 0, key: 'dev-1', value: '21.5', headers: { unit: 'C' } },
          { topic, partition: 0, key: 'dev-2', value: '19.0' },
          { topic, partition: 1, key: 'dev-3', value: '30.1' },
        ],
      })
      expect(result.offsets).toEqual(
        expect.arrayContaining([
          { topic, partition: 0, offset: 0n },
          { topic, partition: 1, offset: 0n },
        ]),
      )
      const again = await producer.send({ acks, messages: [{ topic, partition: 0, key: 'dev-1', value: '21.7' }] })
      expect(again.offsets).toEqual([{ topic, partition: 0, offset: 2n }])

      const partition = await fetchWith(topic, 0, 0n)
      expect(partition).toMatchObject({ errorCode: 0, highWatermark: 3n, lastStableOffset: 3n, logStartOffset: 0n })
      const records = partition.records!.flatMap((batch) =>
        batch.records.map((r) => ({ offset: batch.firstOffset + BigInt(r.offsetDelta), key: r.key?.toString(), value: r.value?.toString() })),
      )
      expect(records).toEqual([
        { offset: 0n, key: 'dev-1', value: '21.5' },
        { offset: 1n, key: 'dev-2', value: '19.0' },
        { offset: 2n, key: 'dev-1', value: '21.7' },
      ])
      const headers = partition.records![0]!.records[0]!.headers.map(([k, v]) => [k?.toString(), v?.toString()])
      expect(headers).toEqual([['unit', 'C']])
    })
  }

  it('a fetch from the middle of a batch returns that whole batch (the client drops the records before)', async () => {
    const partition = await fetchWith('readings-leader', 0, 1n)
    expect(partition.records![0]!.firstOffset).toBe(0n)
    expect(partition.records!.flatMap((b) => b.records)).toHaveLength(3)
  })

  it('a fetch past the end is OFFSET_OUT_OF_RANGE, which the client raises', async () => {
    await expect(fetchWith('readings-leader', 0, 99n)).rejects.toMatchObject({
      errors: [expect.objectContaining({ apiId: 'OFFSET_OUT_OF_RANGE' })],
    })
  })

  it('lz4 from the client (its own WASM codec) is stored compressed and read back by kcat', async () => {
    await admin.createTopics({ topics: ['compressed'], partitions: 1, replicas: 1 })
    const values = Array.from({ length: 200 }, (_, i) => `value-${i}-${'z'.repeat(40)}`)
    await producer.send({ compression: 'lz4', messages: values.map((value) => ({ topic: 'compressed', partition: 0, value })) })
    await withClient(broker, async (client) => {
      const batches = splitBatches((await fetchPartition(client, { topic: 'compressed', partition: 0, offset: 0n })).records)
      expect(batches.map((b) => b.header.attributes & 0x07)).toEqual([3])
    })
    const { stdout } = await kcat(['-b', broker.address, '-C', '-t', 'compressed', '-e', '-q'])
    expect(stdout.trim().split('\n')).toEqual(values)
  })

  it('listOffsets gives each partition its latest, or (-2) earliest, offset', async () => {
    expect(await consumer.listOffsets({ topics: ['readings-all'] })).toEqual(new Map([['readings-all', [3n, 1n]]]))
    const earliest = await consumer.listOffsets({ topics: ['readings-all'], timestamp: -2n })
    expect(earliest).toEqual(new Map([['readings-all', [0n, 0n]]]))
  })

  it('admin.describeConfigs (DescribeConfigs v4, flexible) gives topic configs with their source, and the broker\'s', async () => {
    const [topic, node] = await admin.describeConfigs({
      resources: [
        { resourceType: 2, resourceName: 'sensors', configurationKeys: ['retention.ms', 'cleanup.policy'] },
        { resourceType: 4, resourceName: '1', configurationKeys: ['auto.create.topics.enable'] },
      ],
    })
    // ConfigSource (DescribeConfigsResponse.json): 1 TOPIC_CONFIG (set on the topic), 5 DEFAULT_CONFIG.
    expect(topic!.configs.map((c) => [c.name, c.value, c.configSource])).toEqual([
      ['cleanup.policy', 'delete', 5],
      ['retention.ms', '60000', 1],
    ])
    expect(node!.configs.map((c) => [c.name, c.value])).toEqual([['auto.create.topics.enable', 'true']])
  })

  it('DescribeCluster v1 (through the client\'s own connection and API) names this broker and the cluster', async () => {
    const connection = new Connection('plt-describe-cluster')
    await connection.connect(broker.host, broker.port)
    try {
      const cluster = await describeClusterV1.api.async(connection, false, 1)
      expect(cluster).toMatchObject({ errorCode: 0, endpointType: 1, controllerId: 1, brokers: [{ brokerId: 1, host: '127.0.0.1', port: broker.port, rack: null }] })
      const metadata = await admin.metadata({ topics: [] })
      expect(cluster.clusterId).toBe(metadata.id)
    } finally {
      await connection.close()
    }
  })

  // AclOperation codes as bits (Utils.to32BitField), every operation the resource type supports
  // (AclEntry.supportedOperations), which is what Kafka answers without an authorizer (AuthHelper.authorizedOperations).
  // Group: READ 3, DELETE 6, DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11. Cluster: CREATE 5, ALTER 7,
  // DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12. Topic: READ 3, WRITE 4,
  // CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11.
  const GROUP_OPERATIONS = 0b1101_0100_1000
  const TOPIC_OPERATIONS = 0b1101_1111_1000
  const CLUSTER_OPERATIONS = 0b1_1111_1010_0000
  const NOT_REQUESTED = -2147483648

  it('admin.describeGroups with includeAuthorizedOperations gets every group operation, as Kafka without an authorizer answers', async () => {
    const asked = await admin.describeGroups({ groups: ['plt-nobody'], includeAuthorizedOperations: true })
    expect(asked.get('plt-nobody')!.authorizedOperations).toBe(GROUP_OPERATIONS)
    const notAsked = await admin.describeGroups({ groups: ['plt-nobody'] })
    expect(notAsked.get('plt-nobody')!.authorizedOperations).toBe(NOT_REQUESTED)
  })

  it('DescribeCluster with includeClusterAuthorizedOperations gets every cluster operation', async () => {
    const connection = new Connection('plt-describe-cluster-operations')
    await connection.connect(broker.host, broker.port)
    try {
      expect((await describeClusterV1.api.async(connection, true, 1)).clusterAuthorizedOperations).toBe(CLUSTER_OPERATIONS)
      expect((await describeClusterV1.api.async(connection, false, 1)).clusterAuthorizedOperations).toBe(NOT_REQUESTED)
    } finally {
      await connection.close()
    }
  })

  it('admin.describeLogDirs (DescribeLogDirs v4) sizes each partition as the bytes of its batches and leaves out what the node does not hold', async () => {
    await admin.createTopics({ topics: ['log-dirs'], partitions: 2, replicas: 1 })
    for (const values of [['a', 'b'], ['c']]) await producer.send({ messages: values.map((value) => ({ topic: 'log-dirs', value, partition: 0 })) })
    const fetched = await withClient(broker, (client) => fetchPartition(client, { topic: 'log-dirs', partition: 0, offset: 0n }))
    const batches = splitBatches(fetched.records)
    expect(batches).toHaveLength(2)

    const [answer, ...others] = await admin.describeLogDirs({ topics: [{ name: 'log-dirs', partitions: [0, 1, 5] }, { name: 'absent', partitions: [0] }] })
    expect(others).toEqual([])
    expect(answer!.broker).toBe(1)
    const [dir, ...moreDirs] = answer!.results
    expect(moreDirs).toEqual([])
    expect(dir!.logDir).toBe(broker.dataDir)
    expect(dir!.topics).toEqual([{
      name: 'log-dirs',
      partitions: [
        { partitionIndex: 0, partitionSize: BigInt(batches.reduce((sum, b) => sum + b.bytes.length, 0)), offsetLag: 0n, isFutureKey: false },
        { partitionIndex: 1, partitionSize: 0n, offsetLag: 0n, isFutureKey: false },
      ],
    }])
    expect(dir!.totalBytes).toBeGreaterThan(0n)
    expect(dir!.usableBytes).toBeGreaterThan(0n)
    expect(dir!.usableBytes).toBeLessThanOrEqual(dir!.totalBytes)
  })

  it('admin.describeAcls, createAcls and deleteAcls (v3, flexible) are SECURITY_DISABLED, as on a Kafka without an authorizer', async () => {
    const acl = {
      resourceType: ResourceTypes.TOPIC,
      resourceName: 'orders',
      resourcePatternType: ResourcePatternTypes.LITERAL,
      principal: 'User:alice',
      host: '*',
      operation: AclOperations.READ,
      permissionType: AclPermissionTypes.ALLOW,
    }
    // The client raises an AggregateError whose nested errors end in a ProtocolError naming Kafka's error.
    const protocolErrors = (error: unknown): { apiId?: string; apiCode?: number; serverErrorMessage?: string }[] => {
      const nested = (error as { errors?: unknown[] }).errors
      return nested ? nested.flatMap(protocolErrors) : [error as { apiId?: string }]
    }
    const refusal = (call: Promise<unknown>) => call.then(() => [], protocolErrors)
    expect(await refusal(admin.describeAcls({ filter: { ...acl, resourceName: null, principal: null, host: null } }))).toMatchObject([
      { apiId: 'SECURITY_DISABLED', apiCode: 54, serverErrorMessage: 'No Authorizer is configured on the broker' },
    ])
    expect(await refusal(admin.createAcls({ creations: [acl] }))).toMatchObject([{ apiId: 'SECURITY_DISABLED', apiCode: 54, serverErrorMessage: 'No Authorizer is configured.' }])
    expect(await refusal(admin.deleteAcls({ filters: [acl] }))).toMatchObject([{ apiId: 'SECURITY_DISABLED', apiCode: 54, serverErrorMessage: 'No Authorizer is configured.' }])
  })

  it('DescribeTopicPartitions v0 (KIP-966, through its API function) pages through the partitions with a cursor, as Kafka does', async () => {
    await admin.createTopics({ topics: ['paged-a'], partitions: 3, replicas: 1 })
    await admin.createTopics({ topics: ['paged-b'], partitions: 2, replicas: 1 })
    const connection = new Connection('plt-describe-topic-partitions')
    await connection.connect(broker.host, broker.port)
    /** Each topic as [name, error, partition indexes], and the next cursor. */
    type Answer = Awaited<ReturnType<typeof describeTopicPartitionsV0.api.async>>
    const page = async (topics: string[], limit: number, cursor?: { topicName: string; partitionIndex: number }) => {
      const answer = await describeTopicPartitionsV0.api.async(connection, topics.map((name) => ({ name })), limit, cursor).catch((error: { response?: Answer }) => {
        if (!error.response) throw error
        return error.response
      })
      return { topics: answer.topics.map((t) => [t.name, t.errorCode, t.partitions.map((p) => p.partitionIndex)]), next: answer.nextCursor ?? null }
    }
    try {
      const [first] = (await describeTopicPartitionsV0.api.async(connection, [{ name: 'paged-a' }], 2000)).topics
      expect(first).toMatchObject({ errorCode: 0, name: 'paged-a', isInternal: false, topicAuthorizedOperations: TOPIC_OPERATIONS })
      expect(first!.partitions[0]).toEqual({ errorCode: 0, partitionIndex: 0, leaderId: 1, leaderEpoch: 0, replicaNodes: [1], isrNodes: [1], eligibleLeaderReplicas: [], lastKnownElr: [], offlineReplicas: [] })
      // Named topics in name order, at most `limit` partitions, the cursor where the limit stopped; an unknown name is
      // UNKNOWN_TOPIC_OR_PARTITION (3) once reached.
      expect(await page(['paged-b', 'paged-a'], 4)).toEqual({ topics: [['paged-a', 0, [0, 1, 2]], ['paged-b', 0, [0]]], next: { topicName: 'paged-b', partitionIndex: 1 } })
      expect(await page(['paged-b', 'paged-a', 'paged-zz'], 4, { topicName: 'paged-b', partitionIndex: 1 })).toEqual({ topics: [['paged-b', 0, [1]], ['paged-zz', 3, []]], next: null })
      expect(await page(['paged-a', 'paged-b'], 3)).toEqual({ topics: [['paged-a', 0, [0, 1, 2]]], next: { topicName: 'paged-b', partitionIndex: 0 } })
      // Every topic when none is named, from the cursor on; a cursor outside the named topics is INVALID_REQUEST (42).
      const all = await page([], 2000, { topicName: 'paged-a', partitionIndex: 1 })
      expect(all.topics.filter(([name]) => String(name).startsWith('paged-'))).toEqual([['paged-a', 0, [1, 2]], ['paged-b', 0, [0, 1]]])
      expect(await page(['paged-b'], 10, { topicName: 'paged-a', partitionIndex: 0 })).toEqual({ topics: [['paged-b', 42, []]], next: null })
    } finally {
      await connection.close()
    }
  })

  it('admin.listGroups (ListGroups v5, KIP-848 types) lists the classic groups, and none for a filter without classic', async () => {
    await admin.createTopics({ topics: ['plt-listed'], partitions: 1, replicas: 1 })
    // A standalone commit makes an Empty group with no protocol type, as Kafka does.
    await withClient(broker, (client) => commit(client, { groupId: 'plt-listed-group', offsets: { 'plt-listed': { 0: 1n } } }))
    const classic = await admin.listGroups({ types: ['classic'] })
    expect(classic.get('plt-listed-group')).toEqual({ id: 'plt-listed-group', state: 'EMPTY', groupType: 'classic', protocolType: '' })
    expect([...(await admin.listGroups({ types: ['consumer'] })).keys()]).toEqual([])
  })

  it('admin.deleteTopics removes the topic', async () => {
    await admin.createTopics({ topics: ['short-lived'], partitions: 1, replicas: 1 })
    await admin.deleteTopics({ topics: ['short-lived'] })
    expect(await admin.listTopics()).not.toContain('short-lived')
  })

  it('negotiated the flexible versions @platformatic/kafka picks against Brook', () => {
    const versions = Object.fromEntries([...sent].map(([key, set]) => [key, [...set].sort((a, b) => a - b)]))
    // Keys: 18 ApiVersions, 3 Metadata, 0 Produce, 1 Fetch, 2 ListOffsets, 16 ListGroups, 19 CreateTopics, 20 DeleteTopics,
    // 29-31 DescribeAcls, CreateAcls, DeleteAcls, 32 DescribeConfigs, 35 DescribeLogDirs, 60 DescribeCluster (asked for v1 above). Each is the highest version both implement (the
    // client walks down from its own max: ListOffsets v9 of our 0-10), all flexible; ApiVersions is always v3 for
    // this client.
    expect(versions).toMatchObject({ 18: [3], 3: [12], 0: [10], 1: [17], 2: [9], 16: [5], 19: [7], 20: [6], 29: [3], 30: [3], 31: [3], 32: [4], 35: [4], 60: [1] })
  })
})
