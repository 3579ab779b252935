/**
 * UnregisterBroker (KIP-500 era's `kafka-cluster.sh unregister`) on three real nodes: a node killed with SIGKILL is
 * unregistered with `brook cluster unregister --id`, and DescribeCluster, Metadata and `brook cluster status` no
 * longer list it as a broker, its partitions keep it as a replica but not in their ISR, and the leaderships it held
 * have moved; an id that is not registered is refused with BROKER_ID_NOT_REGISTERED, by the CLI and when a node that
 * is not the controller forwards the request (which it answers once its own image shows the change); the node started
 * again registers again. The broker session is a
 * minute long here, so nothing but the unregistration takes the killed node out of the cluster while the test runs.
 * A node unregistered while it runs (Kafka allows it) registers again at its next heartbeat, and its partitions take
 * it back into their ISR. A single node does not answer UnregisterBroker, and the CLI says so as kafka-cluster.sh does.
 */
import { describe, expect, it } from 'vitest'
import { startBroker } from '../../helpers/broker.js'
import { clusterPerTest, QUICK_CLUSTER_ARGS, type TestCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { withClient } from '../../helpers/kafka.js'
import { brook, expectOneLineError, lines } from '../../cli/run-brook.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { metadata, type MetadataRequest, type MetadataResponse } from '../../../protocol/messages/metadata.js'
import { unregisterBroker, type UnregisterBrokerRequest, type UnregisterBrokerResponse } from '../../../protocol/messages/unregister-broker.js'
import { produce, type ProduceRequest, type ProduceResponse } from '../../../protocol/messages/produce.js'
import { fetch, type FetchRequest, type FetchResponse } from '../../../protocol/messages/fetch.js'
import { encodeRecordBatch } from '../../../protocol/record-batch.js'
import { ZERO_UUID } from '../../../protocol/constants.js'
import { describeTopicPartitions, type DescribeTopicPartitionsRequest, type DescribeTopicPartitionsResponse } from '../../../protocol/messages/describe-topic-partitions.js'

const TOPIC = 'spread'

describe('unregistering a broker of a three-node cluster', () => {
  const clusters = clusterPerTest()

  function metadataOf(cluster: TestCluster, id: number): Promise<MetadataResponse> {
    return withClient(cluster.nodes.get(id)!, (client) =>
      client.request<MetadataRequest, MetadataResponse>(metadata, 12, { topics: null, allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }),
    )
  }

  it('takes a node killed with SIGKILL out of DescribeCluster, Metadata, the ISRs and `brook cluster status`, and refuses an id not registered', async () => {
    const cluster = await clusters.start({ nodes: 3, extraArgs: ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '60000'] })
    const server = ['--bootstrap-server', cluster.nodeIds.map((id) => cluster.nodes.get(id)!.address).join(',')]
    expect((await brook(['topics', 'create', TOPIC, '--partitions', '3', '--replication-factor', '3', ...server])).code).toBe(0)
    // Every node leads one partition once every node's image has the topic (the controller spreads the leaders).
    await waitFor('the topic on every node', async () => {
      for (const id of cluster.nodeIds) if ((await metadataOf(cluster, id)).topics.find((t) => t.name === TOPIC)?.partitions.length !== 3) return false
      return true
    })
    const controller = (await cluster.status(1)).controllerId
    const victim = cluster.nodeIds.find((id) => id !== controller)!
    const survivors = cluster.nodeIds.filter((id) => id !== victim)
    const before = (await metadataOf(cluster, survivors[0]!)).topics.find((t) => t.name === TOPIC)!
    expect(before.partitions.some((p) => p.leaderId === victim)).toBe(true)

    await cluster.nodes.get(victim)!.kill()
    const unregistered = await brook(['cluster', 'unregister', '--id', String(victim), ...server])
    expect(unregistered).toMatchObject({ code: 0, stdout: `Broker ${victim} is no longer registered.\n`, stderr: '' })

    // Every survivor's image shows it (the node that answered did before answering).
    await waitFor('the survivors to list only each other', async () => {
      for (const id of survivors) if ((await cluster.status(id)).liveBrokers.map((b) => b.brokerId).join() !== survivors.join()) return false
      return true
    })
    for (const id of survivors) {
      const answer = await metadataOf(cluster, id)
      expect(answer.brokers.map((b) => b.nodeId).sort()).toEqual(survivors)
      const topic = answer.topics.find((t) => t.name === TOPIC)!
      for (const partition of topic.partitions) {
        expect([...partition.replicaNodes].sort()).toEqual([1, 2, 3])
        expect(partition.isrNodes).not.toContain(victim)
        expect(survivors).toContain(partition.leaderId)
        expect(partition.offlineReplicas).toEqual([victim])
      }
      // DescribeTopicPartitions (KIP-966, what Kafka 3.8+'s admin asks first) answers from the same image.
      const described = await withClient(cluster.nodes.get(id)!, (client) =>
        client.request<DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse>(describeTopicPartitions, 0, { topics: [{ name: TOPIC }], responsePartitionLimit: 2000, cursor: null }))
      expect(described.nextCursor).toBeNull()
      expect(described.topics).toEqual([expect.objectContaining({ errorCode: ErrorCode.NONE, name: TOPIC, topicId: topic.topicId, isInternal: false })])
      expect(described.topics[0]!.partitions.map(({ partitionIndex, leaderId, leaderEpoch, replicaNodes, isrNodes, offlineReplicas }) => ({ partitionIndex, leaderId, leaderEpoch, replicaNodes, isrNodes, offlineReplicas })))
        .toEqual(topic.partitions.map(({ partitionIndex, leaderId, leaderEpoch, replicaNodes, isrNodes, offlineReplicas }) => ({ partitionIndex, leaderId, leaderEpoch, replicaNodes, isrNodes, offlineReplicas })))
    }

    // KIP-951: a survivor asked for a partition the other leads answers NOT_LEADER_OR_FOLLOWER with that leader, its
    // epoch and its endpoint (Produce v10, Fetch v16); Produce v9 has no room for them.
    const [asked, other] = survivors as [number, number]
    const described = (await metadataOf(cluster, asked)).topics.find((t) => t.name === TOPIC)!
    const led = described.partitions.find((p) => p.leaderId === other)!
    const hint = { leaderId: other, leaderEpoch: led.leaderEpoch }
    const otherEndpoint = { nodeId: other, host: cluster.host(other), port: cluster.nodes.get(other)!.port, rack: null }
    await withClient(cluster.nodes.get(asked)!, async (client) => {
      const produced = (version: number) =>
        client.request<ProduceRequest, ProduceResponse>(produce, version, {
          transactionalId: null,
          acks: -1,
          timeoutMs: 10_000,
          topicData: [{ name: TOPIC, partitionData: [{ index: led.partitionIndex, records: encodeRecordBatch([{ value: Buffer.from('elsewhere') }]) }] }],
        })
      const v10 = await produced(10)
      expect(v10.responses[0]!.partitionResponses[0]).toMatchObject({ errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, currentLeader: hint })
      expect(v10.nodeEndpoints).toEqual([otherEndpoint])
      const v9 = await produced(9)
      expect(v9.responses[0]!.partitionResponses[0]!.errorCode).toBe(ErrorCode.NOT_LEADER_OR_FOLLOWER)
      expect(v9.nodeEndpoints ?? []).toEqual([])
      const fetched = await client.request<Partial<FetchRequest>, FetchResponse>(fetch, 16, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 1,
        maxBytes: 1 << 20,
        isolationLevel: 0,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [{ topic: TOPIC, topicId: described.topicId!, partitions: [{ partition: led.partitionIndex, currentLeaderEpoch: -1, fetchOffset: 0n, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 1 << 20, replicaDirectoryId: ZERO_UUID }] }],
        forgottenTopicsData: [],
        rackId: '',
      })
      expect(fetched.responses[0]!.partitions[0]).toMatchObject({ errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER, currentLeader: hint })
      expect(fetched.nodeEndpoints).toEqual([otherEndpoint])
    })

    const status = await brook(['cluster', 'status', ...server])
    expect(status).toMatchObject({ code: 0, stderr: '' })
    const row = (id: number) => lines(status.stdout).find((line) => line.split(/\s+/)[0] === String(id))!.split(/\s+/)
    // BROKER, then ENDPOINT: none for a broker no longer registered, the client listener of the others.
    expect(row(victim).slice(-2)).toEqual(['fenced', '-'])
    for (const id of survivors) expect(row(id).slice(-2)).toEqual(['unfenced', cluster.nodes.get(id)!.address])
    expect(status.stdout).toMatch(/\tUnderReplicatedPartitions: 3\tOfflinePartitions: 0\n/)
    // The same partitions through kafka-topics.sh's filters: three under-replicated, none without a leader.
    const filtered = async (flag: string) => lines((await brook(['topics', 'describe', ...server, flag])).stdout)
    expect(await filtered('--under-replicated-partitions')).toHaveLength(3)
    expect(await filtered('--unavailable-partitions')).toEqual([])

    // Unregistered already, or never registered: BROKER_ID_NOT_REGISTERED, in one line and exit 1.
    for (const id of [victim, 42]) {
      expectOneLineError(await brook(['cluster', 'unregister', '--id', String(id), ...server]), `cannot unregister broker ${id}: BROKER_ID_NOT_REGISTERED (broker ${id} is not registered)`)
    }
    // A node that is not the controller forwards it to the controller, and answers as it does.
    const follower = survivors.find((id) => id !== controller)!
    const forwarded = await withClient(cluster.nodes.get(follower)!, (client) =>
      client.request<UnregisterBrokerRequest, UnregisterBrokerResponse>(unregisterBroker, 0, { brokerId: 42 }),
    )
    expect(forwarded).toMatchObject({ errorCode: ErrorCode.BROKER_ID_NOT_REGISTERED, errorMessage: 'broker 42 is not registered' })

    // Started again, the node registers again and is a live broker as before.
    await cluster.restart(victim)
    await waitFor('the node back as a live broker', async () => (await cluster.status(survivors[0]!)).liveBrokers.length === 3)
  })

  it('runs a request that a node which is not the controller forwards, and that node no longer lists the broker once it answers', async () => {
    const cluster = await clusters.start({ nodes: 3, extraArgs: ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '60000'] })
    const controller = (await cluster.status(1)).controllerId
    const [victim, follower] = cluster.nodeIds.filter((id) => id !== controller) as [number, number]
    await cluster.nodes.get(victim)!.kill()
    const answer = await withClient(cluster.nodes.get(follower)!, (client) =>
      client.request<UnregisterBrokerRequest, UnregisterBrokerResponse>(unregisterBroker, 0, { brokerId: victim }),
    )
    expect(answer).toMatchObject({ errorCode: ErrorCode.NONE, errorMessage: null })
    // Right after the answer, on the node that forwarded it (it answers once its image shows the change).
    expect((await metadataOf(cluster, follower)).brokers.map((b) => b.nodeId).sort()).toEqual([controller, follower].sort())
  })

  it('lets a node unregistered while it runs register again, and its partitions take it back into their ISR', async () => {
    const cluster = await clusters.start({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })
    const server = ['--bootstrap-server', cluster.nodeIds.map((id) => cluster.nodes.get(id)!.address).join(',')]
    expect((await brook(['topics', 'create', TOPIC, '--partitions', '3', '--replication-factor', '3', ...server])).code).toBe(0)
    const fullIsrs = async (id: number): Promise<boolean> => {
      const topic = (await metadataOf(cluster, id)).topics.find((t) => t.name === TOPIC)
      return topic?.partitions.length === 3 && topic.partitions.every((p) => p.isrNodes.length === 3 && p.leaderId >= 0)
    }
    await waitFor('every ISR whole', () => fullIsrs(1))
    // The active controller's own node: its controller unregisters it, and it registers with itself again.
    const controller = (await cluster.status(1)).controllerId
    const unregistered = await brook(['cluster', 'unregister', '--id', String(controller), ...server])
    expect(unregistered).toMatchObject({ code: 0, stdout: `Broker ${controller} is no longer registered.\n`, stderr: '' })
    await waitFor('the node registered and unfenced again, and every ISR whole again', async () => {
      for (const id of cluster.nodeIds) {
        if ((await cluster.status(id)).liveBrokers.length !== 3 || !(await fullIsrs(id))) return false
      }
      return true
    })
    expect(cluster.nodes.get(controller)!.output()).toContain('no longer knows this registration (BROKER_ID_NOT_REGISTERED); registering again')
  })

  it('is not offered by a single node: the CLI says the cluster does not support it', async () => {
    const node = await startBroker()
    try {
      expectOneLineError(
        await brook(['cluster', 'unregister', '--id', '1', '--bootstrap-server', node.address]),
        `cannot unregister broker 1: the target cluster does not support the broker unregistration API (the node at ${node.address} does not answer UnregisterBroker`,
      )
    } finally {
      await node.stop()
      node.cleanup()
    }
  })
})
