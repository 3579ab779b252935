/**
 * New partitions and topic configs on a three-node cluster go through the active controller and live in the metadata
 * log: a kafkajs admin and CreatePartitions sent to a node that is not the controller (forwarded) add partitions whose
 * replicas the controller places (leaders spread, the topic's replication factor, or a manual assignment), which
 * every node's Metadata shows with replicas and ISR, which kafkajs produces to and consumes from, and which a
 * restarted node still replicates; a kafkajs admin, IncrementalAlterConfigs and `brook topics alter-config` through
 * one node change a topic's configs as ConfigRecords, which DescribeConfigs on every node shows, which another node
 * enforces (min.insync.replicas on acks=all), and which survive a restart of every node and a controller failover;
 * dynamic broker configs (the default resource and one node's) changed through any node, which every node's topics
 * follow and a restarted node keeps.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { Kafka, logLevel, ConfigResourceTypes } from 'kafkajs'
import { QUICK_CLUSTER_ARGS, useCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { partitionsOf, producePartition, withClient } from '../../helpers/kafka.js'
import { handBuiltBatch } from '../../helpers/wire.js'
import { brook } from '../../cli/run-brook.js'
import { loggedErrors } from '../../helpers/broker-log.js'
import { metadata, type MetadataRequest, type MetadataResponse } from '../../../protocol/messages/metadata.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { ConfigOperation, ResourceType, ZERO_UUID } from '../../../protocol/constants.js'
import { createPartitions, type CreatePartitionsRequest, type CreatePartitionsResponse } from '../../../protocol/messages/create-partitions.js'
import {
  incrementalAlterConfigs,
  type IncrementalAlterConfigsRequest,
  type IncrementalAlterConfigsResponse,
} from '../../../protocol/messages/incremental-alter-configs.js'
import { describeConfigs, type DescribeConfigsRequest, type DescribeConfigsResponse } from '../../../protocol/messages/describe-configs.js'

const GROWN = 'grown'
const TUNED = 'tuned'

describe('partitions and configs through the controller on a three-node cluster', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })

  function kafka(clientId: string, bootstrap = 1): Kafka {
    return new Kafka({ clientId, brokers: [cluster().nodes.get(bootstrap)!.address], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 10 } })
  }

  async function withAdmin<T>(bootstrap: number, use: (admin: ReturnType<Kafka['admin']>) => Promise<T>): Promise<T> {
    const admin = kafka(`admin-${bootstrap}`, bootstrap).admin()
    await admin.connect()
    try {
      return await use(admin)
    } finally {
      await admin.disconnect()
    }
  }

  /** Nodes killed and not yet started again. */
  const down = new Set<number>()

  /** The active controller and a running node that is not it. */
  async function controllerAndOther(): Promise<{ controller: number; other: number }> {
    const controller = (await cluster().status(cluster().nodeIds.find((id) => !down.has(id))!)).controllerId
    return { controller, other: cluster().nodeIds.find((id) => id !== controller && !down.has(id))! }
  }

  function createPartitionsAt(node: number, topics: CreatePartitionsRequest['topics'], options: { validateOnly?: boolean } = {}): Promise<CreatePartitionsResponse> {
    return withClient(cluster().nodes.get(node)!, (client) =>
      client.request<CreatePartitionsRequest, CreatePartitionsResponse>(createPartitions, 3, { topics, timeoutMs: 10_000, validateOnly: options.validateOnly ?? false }),
    )
  }

  /** IncrementalAlterConfigs of one resource (a topic unless `resourceType` says otherwise) sent to `node`: its answer. */
  function alterAt(node: number, resourceName: string, configs: IncrementalAlterConfigsRequest['resources'][number]['configs'], options: { validateOnly?: boolean; resourceType?: number } = {}) {
    return withClient(cluster().nodes.get(node)!, async (client) => {
      const answer = await client.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, {
        resources: [{ resourceType: options.resourceType ?? ResourceType.TOPIC, resourceName, configs }],
        validateOnly: options.validateOnly ?? false,
      })
      return answer.responses[0]!
    })
  }

  /** `alterAt` of a BROKER resource: "" for every node, or a node id. */
  function alterBrokerAt(node: number, resourceName: string, configs: IncrementalAlterConfigsRequest['resources'][number]['configs']) {
    return alterAt(node, resourceName, configs, { resourceType: ResourceType.BROKER })
  }

  /** The configs node `node` describes as set on `topic` (source TOPIC_CONFIG), name -> value. */
  function overridesAt(node: number, topic: string): Promise<Record<string, string>> {
    return withClient(cluster().nodes.get(node)!, async (client) => {
      const answer = await client.request<DescribeConfigsRequest, DescribeConfigsResponse>(describeConfigs, 4, {
        resources: [{ resourceType: ResourceType.TOPIC, resourceName: topic, configurationKeys: null }],
        includeSynonyms: false,
        includeDocumentation: false,
      })
      const result = answer.results[0]!
      expect(result.errorCode).toBe(ErrorCode.NONE)
      return Object.fromEntries(result.configs.filter((c) => c.configSource === 1).map((c) => [c.name, c.value ?? '']))
    })
  }

  /** Waits until every running node describes `expected` as the overrides of `topic`. */
  async function everyNodeDescribes(topic: string, expected: Record<string, string>): Promise<void> {
    for (const id of cluster().nodeIds) {
      if (down.has(id)) continue
      await waitFor(`node ${id} describing ${JSON.stringify(expected)} on '${topic}'`, async () => JSON.stringify(sorted(await overridesAt(id, topic))) === JSON.stringify(sorted(expected)))
    }
  }

  beforeAll(async () => {
    await withAdmin(1, (admin) =>
      admin.createTopics({
        topics: [
          { topic: GROWN, numPartitions: 3, replicationFactor: 2 },
          { topic: TUNED, numPartitions: 3, replicationFactor: 2, configEntries: [{ name: 'retention.ms', value: '3600000' }] },
        ],
        waitForLeaders: true,
      }),
    )
  })

  it('adds partitions with a kafkajs admin: every node shows them with replicas and ISR, leaders spread, and kafkajs produces to and consumes from them', async () => {
    await withAdmin(2, (admin) => admin.createPartitions({ topicPartitions: [{ topic: GROWN, count: 6 }] }))
    for (const id of cluster().nodeIds) {
      const partitions = await waitFor(`node ${id} showing six partitions`, async () => {
        const seen = await partitionsOf(cluster().nodes.get(id)!, GROWN)
        return seen.length === 6 && seen
      })
      const added = partitions.filter((p) => p.partitionIndex >= 3)
      for (const partition of added) {
        expect(partition.errorCode).toBe(ErrorCode.NONE)
        expect(partition.replicaNodes).toHaveLength(2)
        expect(new Set(partition.replicaNodes).size).toBe(2)
        expect([...partition.isrNodes].sort()).toEqual([...partition.replicaNodes].sort())
        expect(partition.leaderId).toBe(partition.replicaNodes[0])
        expect(partition.leaderEpoch).toBe(0)
      }
      // Three new partitions on three live brokers: one leader each.
      expect(new Set(added.map((p) => p.leaderId)).size).toBe(3)
    }

    const producer = kafka('grown-producer').producer()
    await producer.connect()
    const sent = [3, 4, 5].flatMap((partition) => Array.from({ length: 10 }, (_, i) => ({ partition, value: `p${partition}-${i}` })))
    try {
      await producer.send({ topic: GROWN, acks: -1, messages: sent })
    } finally {
      await producer.disconnect()
    }
    const consumer = kafka('grown-consumer').consumer({ groupId: 'grown-readers', maxWaitTimeInMs: 200 })
    // By partition and offset: a consumer may read a record again after a rebalance (its group's coordinator moving
    // to a preferred leader, say) before it commits; the log must hold each record once, in order.
    const received = new Map<number, Map<string, string>>()
    const count = () => [...received.values()].reduce((n, records) => n + records.size, 0)
    await consumer.connect()
    try {
      await consumer.subscribe({ topic: GROWN, fromBeginning: true })
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          received.set(partition, (received.get(partition) ?? new Map()).set(message.offset, message.value!.toString()))
        },
      })
      await waitFor('every record of the new partitions consumed', () => count() >= sent.length)
    } finally {
      await consumer.disconnect()
    }
    for (const partition of [3, 4, 5]) {
      const records = [...(received.get(partition) ?? new Map<string, string>())].sort(([a], [b]) => Number(a) - Number(b))
      expect(records.map(([, value]) => value)).toEqual(sent.filter((m) => m.partition === partition).map((m) => m.value))
    }
  })

  it('forwards CreatePartitions from a node that is not the controller: manual assignments, validateOnly, and Kafka\'s errors', async () => {
    const { other } = await controllerAndOther()
    const refused = await createPartitionsAt(other, [
      { name: GROWN, count: 6, assignments: null },
      { name: 'missing', count: 2, assignments: null },
      { name: TUNED, count: 4, assignments: [{ brokerIds: [1] }] },
      // A group lives in the partition its id's hash names among __consumer_offsets' partitions: refused, as Kafka's tool does.
      { name: '__consumer_offsets', count: 60, assignments: null },
    ])
    expect(refused.results.map((r) => [r.name, r.errorCode])).toEqual([
      [GROWN, ErrorCode.INVALID_PARTITIONS],
      ['missing', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION],
      [TUNED, ErrorCode.INVALID_REPLICA_ASSIGNMENT],
      ['__consumer_offsets', ErrorCode.POLICY_VIOLATION],
    ])
    expect(refused.results[0]!.errorMessage).toBe('Topic already has 6 partition(s).')
    expect(refused.results[2]!.errorMessage).toMatch(/given 1 replica; the topic's partitions have 2/)
    const unknownBroker = await createPartitionsAt(other, [{ name: GROWN, count: 7, assignments: [{ brokerIds: [1, 9] }] }])
    expect(unknownBroker.results[0]).toMatchObject({ errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: expect.stringMatching(/broker 9, which is not registered/) })
    const twice = await createPartitionsAt(other, [{ name: GROWN, count: 7, assignments: [{ brokerIds: [2, 2] }] }])
    expect(twice.results[0]!.errorCode).toBe(ErrorCode.INVALID_REPLICA_ASSIGNMENT)

    const validated = await createPartitionsAt(other, [{ name: GROWN, count: 10, assignments: null }], { validateOnly: true })
    expect(validated.results[0]!.errorCode).toBe(ErrorCode.NONE)
    expect(await partitionsOf(cluster().nodes.get(other)!, GROWN)).toHaveLength(6)

    const manual = await createPartitionsAt(other, [{ name: GROWN, count: 8, assignments: [{ brokerIds: [3, 1] }, { brokerIds: [2, 3] }] }])
    expect(manual.results[0]!.errorCode).toBe(ErrorCode.NONE)
    // Answered once the forwarding node's own image holds them.
    const partitions = await partitionsOf(cluster().nodes.get(other)!, GROWN)
    expect(partitions.slice(6).map((p) => [p.partitionIndex, p.replicaNodes, p.isrNodes, p.leaderId])).toEqual([
      [6, [3, 1], [3, 1], 3],
      [7, [2, 3], [2, 3], 2],
    ])
    // The leaders take records once they have applied the image (NOT_LEADER_OR_FOLLOWER until then, which writes nothing).
    for (const partition of [6, 7]) {
      const leader = cluster().nodes.get(partitions[partition]!.leaderId)!
      await waitFor(`partition ${partition} taking a record`, async () => {
        const answer = await withClient(leader, (client) => producePartition(client, GROWN, partition, handBuiltBatch([`manual-${partition}`]), { acks: -1 }))
        expect([ErrorCode.NONE, ErrorCode.NOT_LEADER_OR_FOLLOWER]).toContain(answer.errorCode)
        return answer.errorCode === ErrorCode.NONE
      })
    }
  })

  it('changes configs through one node as ConfigRecords: every node describes them, another node enforces them, and a bad config changes nothing', async () => {
    await withAdmin(1, (admin) =>
      admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: TUNED, configEntries: [{ name: 'retention.ms', value: '86400000' }, { name: 'max.message.bytes', value: '200' }] }],
      }),
    )
    await everyNodeDescribes(TUNED, { 'retention.ms': '86400000', 'max.message.bytes': '200' })

    // max.message.bytes 200: the leader refuses a larger batch, whichever node it is, and takes a smaller one.
    const partitions = await partitionsOf(cluster().nodes.get(1)!, TUNED)
    const onTwo = partitions.find((p) => p.leaderId === 2)!
    const produce = (value: string) => withClient(cluster().nodes.get(2)!, (client) => producePartition(client, TUNED, onTwo.partitionIndex, handBuiltBatch([value]), { acks: -1 }))
    const large = 'x'.repeat(300)
    await waitFor('node 2 enforcing max.message.bytes=200', async () => (await produce(large)).errorCode === ErrorCode.MESSAGE_TOO_LARGE)
    expect((await produce('small')).errorCode).toBe(ErrorCode.NONE)

    // IncrementalAlterConfigs through a node that is not the controller (forwarded): a DELETE returns to the default.
    const { other } = await controllerAndOther()
    expect((await alterAt(other, TUNED, [{ name: 'max.message.bytes', configOperation: ConfigOperation.DELETE, value: null }])).errorCode).toBe(ErrorCode.NONE)
    await everyNodeDescribes(TUNED, { 'retention.ms': '86400000' })
    await waitFor('node 2 taking the larger batch again', async () => (await produce(large)).errorCode === ErrorCode.NONE)
    const appended = await alterAt(other, TUNED, [{ name: 'cleanup.policy', configOperation: ConfigOperation.APPEND, value: 'compact' }])
    expect(appended.errorCode).toBe(ErrorCode.NONE)
    // Answered once this node's image holds the change: its own DescribeConfigs shows it at once.
    expect(sorted(await overridesAt(other, TUNED))).toEqual({ 'cleanup.policy': 'delete,compact', 'retention.ms': '86400000' })
    await everyNodeDescribes(TUNED, { 'cleanup.policy': 'delete,compact', 'retention.ms': '86400000' })

    const unknown = await alterAt(other, TUNED, [{ name: 'retention.minutes', configOperation: ConfigOperation.SET, value: '5' }])
    expect(unknown).toMatchObject({ errorCode: ErrorCode.INVALID_CONFIG, errorMessage: "unknown topic config 'retention.minutes'" })
    const badValue = await alterAt(other, TUNED, [
      { name: 'segment.ms', configOperation: ConfigOperation.SET, value: '1000' },
      { name: 'retention.ms', configOperation: ConfigOperation.SET, value: 'soon' },
    ])
    expect(badValue.errorCode).toBe(ErrorCode.INVALID_CONFIG)
    const validated = await alterAt(other, TUNED, [{ name: 'segment.ms', configOperation: ConfigOperation.SET, value: '1000' }], { validateOnly: true })
    expect(validated.errorCode).toBe(ErrorCode.NONE)
    expect((await alterAt(other, 'missing', [{ name: 'retention.ms', configOperation: ConfigOperation.SET, value: '1' }])).errorCode).toBe(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    await everyNodeDescribes(TUNED, { 'cleanup.policy': 'delete,compact', 'retention.ms': '86400000' })

    // The CLI (IncrementalAlterConfigs) through node 3; a broker config read at start only cannot change.
    const cli = await brook(['topics', 'alter-config', TUNED, '--set', 'max.message.bytes=2048', '--bootstrap-server', cluster().nodes.get(3)!.address])
    expect(cli).toMatchObject({ code: 0, stdout: `Completed updating config for topic ${TUNED}.\n` })
    await everyNodeDescribes(TUNED, { 'cleanup.policy': 'delete,compact', 'retention.ms': '86400000', 'max.message.bytes': '2048' })
    expect((await alterBrokerAt(1, '1', [{ name: 'num.partitions', configOperation: ConfigOperation.SET, value: '3' }])).errorCode).toBe(ErrorCode.INVALID_REQUEST)
  })

  it("changes dynamic broker configs through any node: every node's topics follow the one for every node, one node its own, also after its restart", async () => {
    /** max.message.bytes of GROWN as node `node` describes it: value and source. */
    const limitAt = (node: number) =>
      withClient(cluster().nodes.get(node)!, async (client) => {
        const answer = await client.request<DescribeConfigsRequest, DescribeConfigsResponse>(describeConfigs, 4, {
          resources: [{ resourceType: ResourceType.TOPIC, resourceName: GROWN, configurationKeys: ['max.message.bytes'] }],
          includeSynonyms: false,
          includeDocumentation: false,
        })
        const entry = answer.results[0]!.configs[0]!
        return `${entry.value} from ${entry.configSource}`
      })
    const partitions = await partitionsOf(cluster().nodes.get(1)!, GROWN)
    /** Produces a batch of a 700-byte record to a partition of GROWN that node `leader` leads, through it. */
    const produceTo = (leader: number) => {
      const partition = partitions.find((p) => p.leaderId === leader)!
      return withClient(cluster().nodes.get(leader)!, async (client) => (await producePartition(client, GROWN, partition.partitionIndex, handBuiltBatch(['y'.repeat(700)]), { acks: -1 })).errorCode)
    }
    for (const id of cluster().nodeIds) expect(await produceTo(id)).toBe(ErrorCode.NONE)

    // For every node, through a node that is not the controller (forwarded), answered once that node's image holds it.
    const { other } = await controllerAndOther()
    expect(await alterBrokerAt(other, '', [{ name: 'message.max.bytes', configOperation: ConfigOperation.SET, value: '500' }])).toMatchObject({ errorCode: ErrorCode.NONE })
    expect(await limitAt(other)).toBe('500 from 3') // DYNAMIC_DEFAULT_BROKER_CONFIG
    for (const id of cluster().nodeIds) await waitFor(`node ${id} refusing 700 bytes`, async () => (await produceTo(id)) === ErrorCode.MESSAGE_TOO_LARGE)

    // For node 3 alone, through node 1: node 3 takes the batch, the others still refuse it.
    expect(await alterBrokerAt(1, '3', [{ name: 'message.max.bytes', configOperation: ConfigOperation.SET, value: '5000' }])).toMatchObject({ errorCode: ErrorCode.NONE })
    await waitFor('node 3 taking 700 bytes again', async () => (await produceTo(3)) === ErrorCode.NONE)
    expect(await produceTo(2)).toBe(ErrorCode.MESSAGE_TOO_LARGE)
    expect(await limitAt(3)).toBe('5000 from 2') // DYNAMIC_BROKER_CONFIG
    expect(await limitAt(2)).toBe('500 from 3')
    expect(await alterBrokerAt(2, '', [{ name: 'num.partitions', configOperation: ConfigOperation.SET, value: '3' }])).toMatchObject({ errorCode: ErrorCode.INVALID_REQUEST })

    // Node 3 restarted finds both in its metadata log.
    await cluster().nodes.get(3)!.stop()
    await cluster().restart(3)
    await waitFor('node 3 describing its own limit again', async () => (await limitAt(3)) === '5000 from 2')
    expect(await limitAt(1)).toBe('500 from 3')

    // Removed again (a DELETE each): every node back at Kafka's default.
    expect(await alterBrokerAt(1, '3', [{ name: 'message.max.bytes', configOperation: ConfigOperation.DELETE, value: null }])).toMatchObject({ errorCode: ErrorCode.NONE })
    expect(await alterBrokerAt(1, '', [{ name: 'message.max.bytes', configOperation: ConfigOperation.DELETE, value: null }])).toMatchObject({ errorCode: ErrorCode.NONE })
    for (const id of cluster().nodeIds) await waitFor(`node ${id} at the default max.message.bytes`, async () => (await limitAt(id)) === '1048588 from 5')
  })

  it("refuses dynamic broker configs that would conflict on a node (its own, or every node's beside its own) through any node, as through that node, and the node still describes its configs", async () => {
    /** The error code of DescribeConfigs of node `node`'s own BROKER resource, sent to it. */
    const describeOwn = (node: number) =>
      withClient(cluster().nodes.get(node)!, async (client) => {
        const answer = await client.request<DescribeConfigsRequest, DescribeConfigsResponse>(describeConfigs, 4, {
          resources: [{ resourceType: ResourceType.BROKER, resourceName: String(node), configurationKeys: null }],
          includeSynonyms: true,
          includeDocumentation: false,
        })
        return answer.results[0]!.errorCode
      })
    const minLag = { name: 'log.cleaner.min.compaction.lag.ms', configOperation: ConfigOperation.SET, value: '100000' }
    const maxLag = { name: 'log.cleaner.max.compaction.lag.ms', configOperation: ConfigOperation.SET, value: '10000' }
    // The node changed is not the controller, nor is the node the change goes through (which forwards it).
    const { controller, other: target } = await controllerAndOther()
    const via = cluster().nodeIds.find((id) => id !== controller && id !== target && !down.has(id))!
    const name = String(target)
    try {
      expect(await alterBrokerAt(target, name, [minLag])).toMatchObject({ errorCode: ErrorCode.NONE })
      // Through the node itself the conflicting maximum is refused...
      expect(await alterBrokerAt(target, name, [maxLag])).toMatchObject({ errorCode: ErrorCode.INVALID_CONFIG })
      // ...and so it must be through another node: the node would otherwise hold min > max.
      expect(await alterBrokerAt(via, name, [maxLag])).toMatchObject({ errorCode: ErrorCode.INVALID_CONFIG })
      // A maximum for every node meets each node's own minimum too, wherever it enters.
      for (const id of [via, controller, target]) expect(await alterBrokerAt(id, '', [maxLag])).toMatchObject({ errorCode: ErrorCode.INVALID_CONFIG })
      // The node still answers for its own configs (a conflict let through made it close the connection).
      expect(await describeOwn(target)).toBe(ErrorCode.NONE)
    } finally {
      const clear = [minLag, maxLag].map((c) => ({ name: c.name, configOperation: ConfigOperation.DELETE, value: null }))
      await alterBrokerAt(via, name, clear)
    }
  })

  it('keeps new partitions and configs across a restart of every node and a controller failover', async () => {
    const expected = { 'cleanup.policy': 'delete,compact', 'retention.ms': '86400000', 'max.message.bytes': '2048' }
    for (const id of cluster().nodeIds) await cluster().nodes.get(id)!.stop()
    await Promise.all(cluster().nodeIds.map((id) => cluster().restart(id)))
    await waitFor('three unfenced brokers again', async () => (await cluster().status(1)).liveBrokers.length === 3)
    await everyNodeDescribes(TUNED, expected)
    for (const id of cluster().nodeIds) {
      // Each node replicates its new partitions again: back in the ISR of every one it is a replica of.
      await waitFor(`node ${id} with eight partitions of '${GROWN}', each ISR whole`, async () => {
        const partitions = await partitionsOf(cluster().nodes.get(id)!, GROWN)
        return partitions.length === 8 && partitions.every((p) => p.isrNodes.length === p.replicaNodes.length)
      })
    }
    const consumer = kafka('grown-rereader').consumer({ groupId: 'grown-rereaders', maxWaitTimeInMs: 200 })
    // By partition and offset, as above: what the log holds, each record once.
    const records = new Map<string, string>()
    await consumer.connect()
    try {
      await consumer.subscribe({ topic: GROWN, fromBeginning: true })
      await consumer.run({ eachMessage: async ({ partition, message }) => void records.set(`${partition}@${message.offset}`, message.value!.toString()) })
      // A group joining a cluster that restarted a moment ago may find its coordinator moving (preferred-leader
      // elections as the nodes rejoin the ISRs) and join again.
      await waitFor('every record of the new partitions read back', () => records.size >= 32, { timeoutMs: 90_000 })
    } finally {
      await consumer.disconnect()
    }
    const readBack = [...records.values()]
    expect(readBack.filter((v) => v.startsWith('p')).sort()).toEqual([3, 4, 5].flatMap((p) => Array.from({ length: 10 }, (_, i) => `p${p}-${i}`)).sort())
    expect(readBack.filter((v) => v.startsWith('manual-')).sort()).toEqual(['manual-6', 'manual-7'])

    const { controller } = await controllerAndOther()
    await cluster().nodes.get(controller)!.kill()
    down.add(controller)
    const survivor = cluster().nodeIds.find((id) => id !== controller)!
    await waitFor('a new active controller', async () => {
      const status = await cluster().status(survivor)
      return status.controllerId >= 0 && status.controllerId !== controller && status.liveBrokers.length === 2
    })
    await everyNodeDescribes(TUNED, expected)
    expect((await alterAt(survivor, TUNED, [{ name: 'retention.ms', configOperation: ConfigOperation.SET, value: '7200000' }])).errorCode).toBe(ErrorCode.NONE)
    expect((await createPartitionsAt(survivor, [{ name: GROWN, count: 9, assignments: null }])).results[0]!.errorCode).toBe(ErrorCode.NONE)
    await cluster().restart(controller)
    down.delete(controller)
    await everyNodeDescribes(TUNED, { ...expected, 'retention.ms': '7200000' })
    await waitFor(`node ${controller} with nine partitions of '${GROWN}'`, async () => (await partitionsOf(cluster().nodes.get(controller)!, GROWN)).length === 9)
  })

  it('lets a node that was down while a topic was deleted and created again under its name replace its old log, with no error', async () => {
    const RECREATED = 'recreated'
    await withAdmin(1, (admin) => admin.createTopics({ topics: [{ topic: RECREATED, numPartitions: 1, replicationFactor: 3 }], waitForLeaders: true }))
    const writer = kafka('recreated-old').producer()
    await writer.connect()
    await writer.send({ topic: RECREATED, acks: -1, messages: ['old-0', 'old-1', 'old-2'].map((value) => ({ value })) })
    await writer.disconnect()
    const { other: victim } = await controllerAndOther()
    await cluster().nodes.get(victim)!.kill()
    down.add(victim)
    const survivor = cluster().nodeIds.find((id) => id !== victim)!
    await withAdmin(survivor, async (admin) => {
      await admin.deleteTopics({ topics: [RECREATED] })
      // The two live nodes only: the one that is down is no replica of the new topic.
      await admin.createTopics({ topics: [{ topic: RECREATED, numPartitions: 1, replicationFactor: 2 }], waitForLeaders: true })
    })
    const newId = await topicIdAt(survivor, RECREATED)
    const restarted = await cluster().restart(victim)
    down.delete(victim)
    // It names the new topic (its id) and has dropped the old log: its Metadata answers for the new one.
    await waitFor(`node ${victim} following the new '${RECREATED}'`, async () => (await topicIdAt(victim, RECREATED)) === newId && restarted.output().includes(`deleted topic '${RECREATED}'`))
    expect(restarted.output()).toContain(`topic '${RECREATED}' (${newId}) replaces the local topic of that name`)
    expect(loggedErrors(restarted)).toEqual([])
  })

  /** The id node `node`'s Metadata v12 gives `topic` (the zero UUID when it does not know it). */
  async function topicIdAt(node: number, topic: string): Promise<string> {
    return withClient(cluster().nodes.get(node)!, async (client) => {
      const answer = await client.request<MetadataRequest, MetadataResponse>(metadata, 12, {
        topics: [{ topicId: ZERO_UUID, name: topic }],
        allowAutoTopicCreation: false,
        includeClusterAuthorizedOperations: false,
        includeTopicAuthorizedOperations: false,
      })
      return answer.topics.find((t) => t.name === topic)?.topicId ?? ZERO_UUID
    })
  }
})

function sorted(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)))
}
