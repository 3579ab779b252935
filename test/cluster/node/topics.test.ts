/**
 * Topics on a three-node cluster, through real clients: CreateTopics and DeleteTopics go to the active controller
 * (forwarded by the other nodes), the partitions' leaders spread over the nodes, every node's Metadata answers from
 * its metadata image (three brokers, itself as controller, each partition's leader and epoch), each
 * leader serves its partitions and the other nodes answer NOT_LEADER_OR_FOLLOWER, so kafkajs and kcat find the
 * leaders from any bootstrap node. A replication factor above the live brokers is refused (replication itself is
 * replication.test.ts's); an auto-creation the controller refuses is answered LEADER_NOT_AVAILABLE, as Kafka answers
 * while a creation is under way, and the node logs why once, except a name that collides with an existing topic's,
 * which is refused (INVALID_TOPIC_EXCEPTION) as on a single node; `brook produce` asks again for --max-block-ms, as a Kafka
 * producer waits max.block.ms for a topic's metadata, and then says so.
 */
import { describe, expect, it } from 'vitest'
import { Kafka, logLevel } from 'kafkajs'
import { clusterPerTest, QUICK_CLUSTER_ARGS, useCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { kcat } from '../../helpers/kcat.js'
import { fetchPartition, producePartition, withClient } from '../../helpers/kafka.js'
import { handBuiltBatch } from '../../helpers/wire.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { brook, expectOneLineError } from '../../cli/run-brook.js'
import { metadata, type MetadataRequest, type MetadataResponse } from '../../../protocol/messages/metadata.js'
import { createTopics, type CreateTopicsRequest, type CreateTopicsResponse } from '../../../protocol/messages/create-topics.js'
import { deleteTopics, type DeleteTopicsRequest, type DeleteTopicsResponse } from '../../../protocol/messages/delete-topics.js'
import { CoordinatorType, ZERO_UUID } from '../../../protocol/constants.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../../protocol/messages/find-coordinator.js'
import { listOffsets, type ListOffsetsRequest, type ListOffsetsResponse } from '../../../protocol/messages/list-offsets.js'

const TOPIC = 'spread'
const PARTITIONS = 6

describe('topics on a three-node cluster', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })

  /** Node `id`'s Metadata v12 for every topic. */
  function metadataOf(id: number): Promise<MetadataResponse> {
    return withClient(cluster().nodes.get(id)!, (client) =>
      client.request<MetadataRequest, MetadataResponse>(metadata, 12, { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }),
    )
  }

  /** Each partition's leader of `TOPIC`, as node 1 answers. */
  async function leaders(): Promise<Map<number, number>> {
    const topic = (await metadataOf(1)).topics.find((t) => t.name === TOPIC)!
    return new Map(topic.partitions.map((p) => [p.partitionIndex, p.leaderId]))
  }

  function kafka(clientId: string): Kafka {
    return new Kafka({ clientId, brokers: [cluster().nodes.get(1)!.address], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 10 } })
  }

  it('creates a topic through the controller with its leaders spread, and every node answers Metadata from the image', async () => {
    const admin = kafka('cluster-admin').admin()
    await admin.connect()
    try {
      expect(await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }], waitForLeaders: true })).toBe(true)
    } finally {
      await admin.disconnect()
    }
    for (const id of cluster().nodeIds) {
      const answer = await waitFor(`node ${id} lists the topic`, async () => {
        const seen = await metadataOf(id)
        return seen.topics.some((t) => t.name === TOPIC) && seen
      })
      expect(answer.brokers.map((b) => [b.nodeId, b.port])).toEqual(cluster().nodeIds.map((n) => [n, cluster().nodes.get(n)!.port]))
      // The controller named is the answering node, a live broker that forwards to the active controller (KIP-590).
      expect(answer.controllerId).toBe(id)
      const topic = answer.topics.find((t) => t.name === TOPIC)!
      expect(topic.partitions).toHaveLength(PARTITIONS)
      for (const partition of topic.partitions) {
        expect(partition.errorCode).toBe(ErrorCode.NONE)
        expect(partition.replicaNodes).toEqual([partition.leaderId])
        expect(partition.isrNodes).toEqual([partition.leaderId])
        expect(partition.leaderEpoch).toBe(0)
      }
      // Leaders spread evenly: two partitions on each node.
      const counts = cluster().nodeIds.map((n) => topic.partitions.filter((p) => p.leaderId === n).length)
      expect(counts).toEqual([2, 2, 2])
    }
  })

  it('refuses a replication factor above the live brokers, and forwards CreateTopics from a node that is not the controller', async () => {
    const controller = (await cluster().status(1)).controllerId
    const other = cluster().nodeIds.find((id) => id !== controller)!
    const answer = await withClient(cluster().nodes.get(other)!, (client) =>
      client.request<CreateTopicsRequest, CreateTopicsResponse>(createTopics, 7, {
        topics: [
          { name: 'replicated', numPartitions: 3, replicationFactor: 4, assignments: [], configs: [] },
          { name: 'forwarded', numPartitions: 2, replicationFactor: -1, assignments: [], configs: [] },
          { name: TOPIC, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
        ],
        timeoutMs: 10_000,
        validateOnly: false,
      }),
    )
    const [replicated, forwarded, existing] = answer.topics
    expect(replicated!.errorCode).toBe(ErrorCode.INVALID_REPLICATION_FACTOR)
    expect(replicated!.errorMessage).toMatch(/larger than the 3 live brokers/)
    expect(forwarded!.errorCode).toBe(ErrorCode.NONE)
    expect(forwarded!.replicationFactor).toBe(1)
    expect(existing!.errorCode).toBe(ErrorCode.TOPIC_ALREADY_EXISTS)
    // Answered once the forwarding node's own image holds it.
    const seen = (await metadataOf(other)).topics.find((t) => t.name === 'forwarded')
    expect(seen?.topicId).toBe(forwarded!.topicId)
  })

  it('refuses a null config value and the metadata log\'s name as a single node and Kafka\'s controller do, forwarded or validateOnly', async () => {
    const controller = (await cluster().status(1)).controllerId
    const other = cluster().nodeIds.find((id) => id !== controller)!
    for (const validateOnly of [true, false]) {
      const answer = await withClient(cluster().nodes.get(other)!, (client) =>
        client.request<CreateTopicsRequest, CreateTopicsResponse>(createTopics, 7, {
          topics: [
            { name: 'null-config', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [{ name: 'retention.ms', value: null }] },
            { name: '__cluster_metadata', numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] },
          ],
          timeoutMs: 10_000,
          validateOnly,
        }),
      )
      expect(answer.topics.map((t) => [t.name, t.errorCode, t.errorMessage])).toEqual([
        ['null-config', ErrorCode.INVALID_CONFIG, "config 'retention.ms' needs a value"],
        ['__cluster_metadata', ErrorCode.INVALID_REQUEST, 'Creation of internal topic __cluster_metadata is prohibited.'],
      ])
    }
    const names = (await metadataOf(controller)).topics.map((t) => t.name)
    expect(names).not.toContain('null-config')
    expect(names).not.toContain('__cluster_metadata')
  })

  it('creates a topic with a manual replica assignment from kafkajs, forwarded by a node that is not the controller, and refuses a bad one naming why', async () => {
    const controller = (await cluster().status(1)).controllerId
    const other = cluster().nodeIds.find((id) => id !== controller)!
    const [a, b, c] = cluster().nodeIds as [number, number, number]
    const admin = new Kafka({ clientId: 'manual-assignment', brokers: [cluster().nodes.get(other)!.address], logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin()
    await admin.connect()
    try {
      const replicaAssignment = [
        { partition: 0, replicas: [c, a] },
        { partition: 1, replicas: [b, c] },
        { partition: 2, replicas: [a, b] },
      ]
      expect(await admin.createTopics({ topics: [{ topic: 'placed', replicaAssignment }], waitForLeaders: true })).toBe(true)
      const placed = await waitFor('every node to list placed', async () => {
        const answers = await Promise.all(cluster().nodeIds.map(async (id) => (await metadataOf(id)).topics.find((t) => t.name === 'placed')))
        return answers.every((t) => t !== undefined && t.partitions.length === 3) && answers[0]!
      })
      const partitions = [...placed.partitions].sort((x, y) => x.partitionIndex - y.partitionIndex)
      expect(partitions.map((p) => ({ replicas: p.replicaNodes, isr: [...p.isrNodes].sort(), leader: p.leaderId }))).toEqual(
        replicaAssignment.map(({ replicas }) => ({ replicas, isr: [...replicas].sort(), leader: replicas[0] })),
      )

      const refusal = (assignment: { partition: number; replicas: number[] }[]) =>
        admin.createTopics({ topics: [{ topic: 'misplaced', replicaAssignment: assignment }] }).then(
          () => null,
          (error: { errors?: { type: string }[] }) => error.errors?.[0]?.type,
        )
      expect(await refusal([{ partition: 0, replicas: [a, 9] }])).toBe('INVALID_REPLICA_ASSIGNMENT')
      expect(await refusal([{ partition: 0, replicas: [a, a] }])).toBe('INVALID_REPLICA_ASSIGNMENT')
      expect(await refusal([{ partition: 0, replicas: [a] }, { partition: 1, replicas: [b, c] }])).toBe('INVALID_REPLICA_ASSIGNMENT')
      expect(await refusal([{ partition: 1, replicas: [a] }])).toBe('INVALID_REPLICA_ASSIGNMENT')
      expect(await admin.listTopics()).not.toContain('misplaced')
    } finally {
      await admin.disconnect()
    }
    // The message names what is wrong.
    const answer = await withClient(cluster().nodes.get(other)!, (client) =>
      client.request<CreateTopicsRequest, CreateTopicsResponse>(createTopics, 7, {
        topics: [{ name: 'misplaced', numPartitions: -1, replicationFactor: -1, assignments: [{ partitionIndex: 0, brokerIds: [a, 9] }], configs: [] }],
        timeoutMs: 10_000,
        validateOnly: false,
      }),
    )
    expect(answer.topics[0]).toMatchObject({ errorCode: ErrorCode.INVALID_REPLICA_ASSIGNMENT, errorMessage: 'partition 0 names broker 9, which is not registered' })
  })

  it('carries keyed messages from a kafkajs producer to a kafkajs consumer group, through all three leaders', async () => {
    const producer = kafka('cluster-producer').producer()
    await producer.connect()
    const sent = Array.from({ length: 60 }, (_, i) => ({ key: `key-${i}`, value: `value-${i}` }))
    try {
      await producer.send({ topic: TOPIC, messages: sent })
    } finally {
      await producer.disconnect()
    }
    const consumer = kafka('cluster-consumer').consumer({ groupId: 'cluster-readers', maxWaitTimeInMs: 200 })
    const received = new Map<string, number>()
    await consumer.connect()
    try {
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true })
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          received.set(message.value!.toString(), partition)
        },
      })
      await waitFor('every message consumed', () => received.size >= sent.length)
    } finally {
      await consumer.disconnect()
    }
    expect([...received.keys()].sort()).toEqual(sent.map((m) => m.value).sort())
    const byLeader = await leaders()
    expect(new Set([...received.values()].map((p) => byLeader.get(p)))).toEqual(new Set(cluster().nodeIds))
  })

  it('shows kcat three brokers and the leaders, and produces and consumes through a partition led by another node', async () => {
    const bootstrap = cluster().nodes.get(1)!.address
    const listed = (await kcat(['-L', '-b', bootstrap, '-t', TOPIC])).stdout
    expect(listed).toMatch(/ 3 brokers:/)
    for (const id of cluster().nodeIds) expect(listed).toContain(`broker ${id} at 127.0.0.1:${cluster().nodes.get(id)!.port}`)
    const byLeader = await leaders()
    for (const [partition, leader] of byLeader) expect(listed).toMatch(new RegExp(`partition ${partition}, leader ${leader}, replicas: ${leader}, isrs: ${leader}`))

    const [partition] = [...byLeader].find(([, leader]) => leader !== 1)!
    await kcat(['-P', '-b', bootstrap, '-t', TOPIC, '-p', String(partition)], { input: 'kcat-one\nkcat-two\n' })
    const consumed = await kcat(['-C', '-b', bootstrap, '-t', TOPIC, '-p', String(partition), '-o', 'beginning', '-e', '-q'])
    expect(consumed.stdout.split('\n')).toEqual(expect.arrayContaining(['kcat-one', 'kcat-two']))
  })

  it('answers NOT_LEADER_OR_FOLLOWER to a Produce, Fetch or ListOffsets for a partition another node leads', async () => {
    const byLeader = await leaders()
    const [partition, leader] = [...byLeader].find(([, l]) => l !== 2)!
    await withClient(cluster().nodes.get(2)!, async (client) => {
      const produced = await producePartition(client, TOPIC, partition, handBuiltBatch(['to the wrong node']))
      expect(produced.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER)
      expect((await fetchPartition(client, { topic: TOPIC, partition, offset: 0n })).errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER)
      const offsets = await client.request<Partial<ListOffsetsRequest>, ListOffsetsResponse>(listOffsets, 7, {
        replicaId: -1,
        isolationLevel: 0,
        topics: [{ name: TOPIC, partitions: [{ partitionIndex: partition, currentLeaderEpoch: -1, timestamp: -1n, maxNumOffsets: 1 }] }],
      })
      expect(offsets.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER)
    })
    await withClient(cluster().nodes.get(leader)!, async (client) => {
      expect((await producePartition(client, TOPIC, partition, handBuiltBatch(['to the leader']))).errorCode).toBe(ErrorCode.NONE)
      expect((await fetchPartition(client, { topic: TOPIC, partition, offset: 0n })).errorCode).toBe(ErrorCode.NONE)
    })
  })

  it('auto-creates a topic a Metadata request names, through the controller, and answers that request LEADER_NOT_AVAILABLE as Kafka does', async () => {
    // A leader named in this answer could refuse a produce sent at once (its log opens after it applies the image):
    // kafka-python (retries=0 by default) failed its first send to a new topic that way.
    const answer = await withClient(cluster().nodes.get(3)!, (client) =>
      client.request<MetadataRequest, MetadataResponse>(metadata, 12, { topics: [{ topicId: '00000000-0000-0000-0000-000000000000', name: 'auto' }], allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }),
    )
    expect(answer.topics.map((t) => [t.name, t.errorCode, t.partitions.length])).toEqual([['auto', ErrorCode.LEADER_NOT_AVAILABLE, 0]])
    for (const id of cluster().nodeIds) {
      await waitFor(`node ${id} lists the auto-created topic`, async () => (await metadataOf(id)).topics.find((t) => t.name === 'auto')?.partitions.length === 1)
    }
  })

  it('keeps the records of a node restarted on its data directory, which leads its partitions again at a later leader epoch', async () => {
    const byLeader = await leaders()
    const [partition, leader] = [...byLeader].find(([, l]) => l !== 1)!
    const bootstrap = cluster().nodes.get(1)!.address
    const read = async () => (await kcat(['-C', '-b', bootstrap, '-t', TOPIC, '-p', String(partition), '-o', 'beginning', '-e', '-q'])).stdout.split('\n').filter(Boolean)
    const before = await read()
    expect(before.length).toBeGreaterThan(0)
    await cluster().nodes.get(leader)!.stop()
    await cluster().restart(leader)
    const epoch = await waitFor('the restarted node leading its partition again', async () => {
      const seen = (await metadataOf(1)).topics.find((t) => t.name === TOPIC)!.partitions.find((p) => p.partitionIndex === partition)!
      return seen.leaderId === leader && seen.leaderEpoch! > 0 && seen.leaderEpoch!
    })
    expect(epoch).toBeGreaterThan(0)
    expect(await read()).toEqual(before)
  })

  it('refuses to delete an internal topic named by its id (DeleteTopics v6), as by its name', async () => {
    // FindCoordinator has the controller create __consumer_offsets on first use.
    const offsets = await waitFor('__consumer_offsets', async () => {
      await withClient(cluster().nodes.get(1)!, (client) => client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, 4, { keyType: CoordinatorType.GROUP, coordinatorKeys: ['any'] }))
      return (await metadataOf(1)).topics.find((t) => t.name === '__consumer_offsets')
    })
    const controller = (await cluster().status(1)).controllerId
    // Asked of the active controller, which runs the deletion itself, and of another node, which forwards it.
    for (const id of [controller, cluster().nodeIds.find((node) => node !== controller)!]) {
      const answer = await withClient(cluster().nodes.get(id)!, (client) =>
        client.request<DeleteTopicsRequest, DeleteTopicsResponse>(deleteTopics, 6, {
          topics: [{ name: null, topicId: offsets.topicId! }, { name: '__consumer_offsets', topicId: ZERO_UUID }],
          topicNames: [],
          timeoutMs: 10_000,
        }),
      )
      expect(answer.responses.map((r) => [r.name, r.errorCode])).toEqual([
        ['__consumer_offsets', ErrorCode.INVALID_TOPIC_EXCEPTION],
        ['__consumer_offsets', ErrorCode.INVALID_TOPIC_EXCEPTION],
      ])
    }
    expect((await metadataOf(controller)).topics.find((t) => t.name === '__consumer_offsets')?.topicId).toBe(offsets.topicId)
  })

  it('deletes the topic from every node', async () => {
    const admin = kafka('cluster-deleter').admin()
    await admin.connect()
    try {
      await admin.deleteTopics({ topics: [TOPIC] })
    } finally {
      await admin.disconnect()
    }
    for (const id of cluster().nodeIds) {
      await waitFor(`node ${id} without the topic`, async () => !(await metadataOf(id)).topics.some((t) => t.name === TOPIC))
      await waitFor(`node ${id} dropped its logs`, () => cluster().nodes.get(id)!.output().includes(`deleted topic '${TOPIC}'`))
    }
  })
})

describe('auto-creation the controller refuses', () => {
  const { start } = clusterPerTest()

  it('is answered LEADER_NOT_AVAILABLE, so clients ask again (brook produce for --max-block-ms), and the node logs why once per topic', async () => {
    // One node whose default.replication.factor needs two live brokers.
    const cluster = await start({ nodes: 1, extraArgs: [...QUICK_CLUSTER_ARGS, '--default-replication-factor', '2'] })
    const node = cluster.nodes.get(1)!
    const ask = () =>
      withClient(node, (client) =>
        client.request<MetadataRequest, MetadataResponse>(metadata, 12, { topics: [{ topicId: '00000000-0000-0000-0000-000000000000', name: 'unplaceable' }], allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }),
      )
    for (let i = 0; i < 3; i++) expect((await ask()).topics.map((t) => [t.name, t.errorCode])).toEqual([['unplaceable', ErrorCode.LEADER_NOT_AVAILABLE]])
    const logged = node.output().split('\n').filter((line) => line.includes("cannot auto-create topic 'unplaceable'"))
    expect(logged).toHaveLength(1)
    expect(logged[0]).toMatch(/INFO .*cannot auto-create topic 'unplaceable' yet: INVALID_REPLICATION_FACTOR \(replication factor 2 with 1 live brokers?\); clients are answered LEADER_NOT_AVAILABLE and ask again$/)
    // brook produce asks again for --max-block-ms (30 s by default), as a Kafka producer waits max.block.ms for a
    // topic's metadata, then says so.
    const produced = await brook(['produce', 'unplaceable', '--bootstrap-server', node.address, '--max-block-ms', '3000'], { input: 'reading\n' })
    expectOneLineError(
      produced,
      "topic 'unplaceable': LEADER_NOT_AVAILABLE",
    )
    expect(produced.stderr).toMatch(/; gave up after 3 s\n$/)
  })

  it('a name colliding with an existing topic\'s (\'.\' versus \'_\') is refused with INVALID_TOPIC_EXCEPTION, as on a single node, so kcat fails at once instead of waiting', async () => {
    const cluster = await start({ nodes: 1, extraArgs: QUICK_CLUSTER_ARGS })
    const node = cluster.nodes.get(1)!
    await kcat(['-b', node.address, '-P', '-t', 'plant.temp'], { input: 'first\n' })
    const ask = () =>
      withClient(node, (client) =>
        client.request<MetadataRequest, MetadataResponse>(metadata, 12, { topics: [{ topicId: '00000000-0000-0000-0000-000000000000', name: 'plant_temp' }], allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }),
      )
    for (let i = 0; i < 2; i++) expect((await ask()).topics.map((t) => [t.name, t.errorCode])).toEqual([['plant_temp', ErrorCode.INVALID_TOPIC_EXCEPTION]])
    const logged = node.output().split('\n').filter((line) => line.includes("auto-creat") && line.includes("'plant_temp'"))
    expect(logged).toHaveLength(1)
    expect(logged[0]).toMatch(/INFO .*not auto-creating topic 'plant_temp': INVALID_TOPIC_EXCEPTION \(topic 'plant_temp' collides with existing topics: plant.temp\); clients are answered INVALID_TOPIC_EXCEPTION$/)
    // librdkafka fails the message with the broker's error, or refuses it as a topic it does not know once the
    // refusal is in its metadata cache; either way at once, not after message.timeout.ms (5 minutes).
    await expect(kcat(['-b', node.address, '-P', '-t', 'plant_temp'], { input: 'second\n', timeoutMs: 30_000 })).rejects.toThrow(
      /Delivery failed for message: Broker: Invalid topic|Failed to produce message .*: Local: Unknown topic/,
    )
    const produced = await brook(['produce', 'plant_temp', '--bootstrap-server', node.address, '--max-block-ms', '20000'], { input: 'third\n' })
    expectOneLineError(produced, "topic 'plant_temp': INVALID_TOPIC_EXCEPTION")
  })
})
