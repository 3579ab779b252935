/**
 * Group coordinators on a three-node cluster, through real clients: __consumer_offsets is created through the
 * controller on first use with its partitions' leaders spread over the nodes (that FindCoordinator answered
 * COORDINATOR_NOT_AVAILABLE, and a new leader answering COORDINATOR_LOAD_IN_PROGRESS until it has loaded its
 * partition); FindCoordinator on every node (v0-3 and
 * v4's batch) names the leader of the group's partition; a node that is not a group's coordinator answers its group
 * requests NOT_COORDINATOR; kafkajs consumers of one group bootstrapped through different nodes form one group whose
 * assignments cover every partition once, and whose committed offsets every node's admin reads back; a kcat (-G)
 * member bootstrapped through a node that is not its coordinator consumes and commits there. Transactions too: a
 * kafkajs transactional producer writes to partitions led by all three nodes (markers go to each leader) and commits
 * offsets to a group coordinated elsewhere; read_committed consumers see its commits and never its abort. While a
 * group's coordinator is down it has none (COORDINATOR_NOT_AVAILABLE); restarted, it loads the group's offsets again.
 * At the wire: a leader verifies a transactional batch with the transaction's coordinator on another node
 * (AddPartitionsToTxn v4 verifyOnly), and transactional requests sent to other nodes are NOT_COORDINATOR.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { ConfigResourceTypes, Kafka, logLevel, type Consumer } from 'kafkajs'
import { useCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { withClient } from '../../helpers/kafka.js'
import { startKcatGroupMember } from '../../helpers/kcat-group.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { CoordinatorType, ZERO_UUID } from '../../../protocol/constants.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../../protocol/messages/find-coordinator.js'
import { metadata, type MetadataRequest, type MetadataResponse } from '../../../protocol/messages/metadata.js'
import { heartbeat, type HeartbeatRequest, type HeartbeatResponse } from '../../../protocol/messages/heartbeat.js'
import { offsetFetch, type OffsetFetchRequest, type OffsetFetchResponse } from '../../../protocol/messages/offset-fetch.js'
import { partitionForGroup } from '../../../broker/group/offsets-topic.js'
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../../../protocol/messages/init-producer-id.js'
import { addPartitionsToTxn, type AddPartitionsToTxnRequest, type AddPartitionsToTxnResponse } from '../../../protocol/messages/add-partitions-to-txn.js'
import { endTxn, type EndTxnRequest, type EndTxnResponse } from '../../../protocol/messages/end-txn.js'
import { produce, type ProduceRequest, type ProduceResponse } from '../../../protocol/messages/produce.js'
import { Attribute, encodeRecordBatch } from '../../../protocol/record-batch.js'

const TOPIC = 'readings'
const PARTITIONS = 6
const OFFSETS_PARTITIONS = 6
const GROUP = 'dashboards'

describe('group coordinators on a three-node cluster', () => {
  const cluster = useCluster({
    nodes: 3,
    extraArgs: ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '3000', '--offsets-topic-partitions', String(OFFSETS_PARTITIONS), '--group-initial-rebalance-delay-ms', '1000'],
  })

  function kafka(clientId: string, node: number): Kafka {
    return new Kafka({ clientId, brokers: [cluster().nodes.get(node)!.address], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 12 } })
  }

  async function findCoordinatorAt(node: number, groupId: string, version: number): Promise<{ errorCode: number; nodeId: number; port: number }> {
    return withClient(cluster().nodes.get(node)!, async (client) => {
      const body = version >= 4 ? { keyType: CoordinatorType.GROUP, coordinatorKeys: [groupId] } : { key: groupId, keyType: CoordinatorType.GROUP }
      const answer = await client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, version, body)
      return version >= 4 ? answer.coordinators![0]! : { errorCode: answer.errorCode!, nodeId: answer.nodeId!, port: answer.port! }
    })
  }

  /** Node 1's Metadata v12 of __consumer_offsets. */
  function offsetsTopicAtNode1(): Promise<MetadataResponse['topics'][number]> {
    return offsetsTopicAt(1)
  }

  /** A node's Metadata v12 of __consumer_offsets (from its metadata image). */
  async function offsetsTopicAt(node: number): Promise<MetadataResponse['topics'][number]> {
    const answer = await withClient(cluster().nodes.get(node)!, (client) =>
      client.request<MetadataRequest, MetadataResponse>(metadata, 12, { topics: [{ topicId: ZERO_UUID, name: '__consumer_offsets' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }),
    )
    return answer.topics[0]!
  }

  /** The node that leads partition `index` of __consumer_offsets, as node 1's Metadata says. */
  async function offsetsLeader(index: number): Promise<number> {
    const topic = await offsetsTopicAtNode1()
    expect(topic.errorCode).toBe(ErrorCode.NONE)
    expect(topic.isInternal).toBe(true)
    expect(topic.partitions).toHaveLength(OFFSETS_PARTITIONS)
    return topic.partitions.find((p) => p.partitionIndex === index)!.leaderId
  }

  beforeAll(async () => {
    const admin = kafka('setup', 1).admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 3 }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
  })

  it('creates __consumer_offsets through the controller, and every node names the leader of a group\'s partition as its coordinator', async () => {
    // The first FindCoordinator has the topic created and is answered COORDINATOR_NOT_AVAILABLE, as Kafka's
    // KafkaApis.getCoordinator answers it: the client asks again after its backoff.
    expect(await findCoordinatorAt(2, GROUP, 3)).toMatchObject({ errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE })
    // From the moment its metadata makes it the leader of the group's partition, a node answers the group's requests
    // as loading (or served), never NOT_COORDINATOR, which would send the client straight back to it.
    const index = partitionForGroup(GROUP, OFFSETS_PARTITIONS)
    const leaderToBe = await waitFor('node 2 to name the leader of the group\'s partition', async () => {
      const topic = await offsetsTopicAt(2)
      const leader = topic.errorCode === ErrorCode.NONE ? topic.partitions.find((p) => p.partitionIndex === index)!.leaderId : -1
      return leader > 0 && leader
    })
    await waitFor(`node ${leaderToBe} to know it leads the partition`, async () => {
      const topic = await offsetsTopicAt(leaderToBe)
      return topic.errorCode === ErrorCode.NONE && topic.partitions.find((p) => p.partitionIndex === index)!.leaderId === leaderToBe
    })
    const early = await withClient(cluster().nodes.get(leaderToBe)!, (client) =>
      client.request<Partial<OffsetFetchRequest>, OffsetFetchResponse>(offsetFetch, 8, { groups: [{ groupId: GROUP, memberId: null, memberEpoch: -1, topics: null }], requireStable: false }),
    )
    expect([ErrorCode.NONE, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS]).toContain(early.groups![0]!.errorCode)
    const first = await waitFor('a coordinator for the group', async () => {
      const answer = await findCoordinatorAt(2, GROUP, 3)
      return answer.errorCode === ErrorCode.NONE && answer
    })
    // Node 2 answered once it knew the new topic; node 1 learns of it from the metadata log moments later.
    await waitFor('node 1 to know __consumer_offsets', async () => (await offsetsTopicAtNode1()).errorCode === ErrorCode.NONE)
    const leader = await offsetsLeader(partitionForGroup(GROUP, OFFSETS_PARTITIONS))
    expect(first.nodeId).toBe(leader)
    expect(first.port).toBe(cluster().nodes.get(leader)!.port)
    // Leaders of the internal topic spread over the nodes like any topic's.
    const leaders = await Promise.all(Array.from({ length: OFFSETS_PARTITIONS }, (_, i) => offsetsLeader(i)))
    expect(new Set(leaders).size).toBe(3)
    for (const id of cluster().nodeIds) {
      for (const version of [0, 3, 4]) {
        const answer = await findCoordinatorAt(id, GROUP, version)
        expect({ node: id, version, errorCode: answer.errorCode, coordinator: answer.nodeId }).toEqual({ node: id, version, errorCode: ErrorCode.NONE, coordinator: leader })
      }
    }
    // Groups of other partitions have other coordinators: one per node among these.
    const groups = Array.from({ length: 40 }, (_, i) => `group-${i}`)
    const coordinators = new Set<number>()
    for (const groupId of groups) coordinators.add((await findCoordinatorAt(1, groupId, 4)).nodeId)
    expect([...coordinators].sort()).toEqual([1, 2, 3])
  })

  it('answers NOT_COORDINATOR to group requests sent to a node that does not coordinate the group', async () => {
    const coordinator = (await findCoordinatorAt(1, GROUP, 4)).nodeId
    const other = cluster().nodeIds.find((id) => id !== coordinator)!
    await withClient(cluster().nodes.get(other)!, async (client) => {
      const beat = await client.request<HeartbeatRequest, HeartbeatResponse>(heartbeat, 4, { groupId: GROUP, generationId: 1, memberId: 'someone', groupInstanceId: null })
      expect(beat.errorCode).toBe(ErrorCode.NOT_COORDINATOR)
      const fetched = await client.request<Partial<OffsetFetchRequest>, OffsetFetchResponse>(offsetFetch, 8, { groups: [{ groupId: GROUP, memberId: null, memberEpoch: -1, topics: null }], requireStable: false })
      expect(fetched.groups![0]!.errorCode).toBe(ErrorCode.NOT_COORDINATOR)
      const old = await client.request<Partial<OffsetFetchRequest>, OffsetFetchResponse>(offsetFetch, 1, { groupId: GROUP, topics: [{ name: TOPIC, partitionIndexes: [0] }] })
      expect(old.topics![0]!.partitions[0]!.errorCode).toBe(ErrorCode.NOT_COORDINATOR)
    })
  })

  it('makes kafkajs consumers bootstrapped through different nodes one group, and every node reads its committed offsets', async () => {
    const producer = kafka('producer', 1).producer()
    await producer.connect()
    const sent = Array.from({ length: 60 }, (_, i) => ({ key: `sensor-${i}`, value: `reading-${i}` }))
    await producer.send({ topic: TOPIC, messages: sent })
    await producer.disconnect()

    const assignments = new Map<number, number[]>()
    const received: string[] = []
    const consumers: Consumer[] = []
    try {
      for (const node of cluster().nodeIds) {
        const consumer = kafka(`member-via-${node}`, node).consumer({ groupId: GROUP, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 200 })
        consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => assignments.set(node, [...(payload.memberAssignment[TOPIC] ?? [])].sort((a, b) => a - b)))
        await consumer.connect()
        await consumer.subscribe({ topic: TOPIC, fromBeginning: true })
        await consumer.run({ eachMessage: async ({ message }) => void received.push(message.value!.toString()) })
        consumers.push(consumer)
      }
      // One group: the three members' assignments cover every partition once (separate groups would each take all).
      const covered = await waitFor('one group of three members covering every partition', () => {
        if (assignments.size !== 3) return false
        const all = [...assignments.values()].flat().sort((a, b) => a - b)
        return all.length === PARTITIONS && [...assignments.values()].every((a) => a.length > 0) && all
      })
      expect(covered).toEqual(Array.from({ length: PARTITIONS }, (_, i) => i))
      await waitFor('every record consumed', () => new Set(received).size === sent.length)
      const admin = kafka('describer', 3).admin()
      await admin.connect()
      try {
        const { groups } = await admin.describeGroups([GROUP])
        expect(groups[0]!.members).toHaveLength(3)
        expect(groups[0]!.state).toBe('Stable')
      } finally {
        await admin.disconnect()
      }
    } finally {
      // Disconnecting commits what each member consumed.
      for (const consumer of consumers) await consumer.disconnect()
    }

    const ends = new Map<number, string>()
    const lookup = kafka('ends', 1).admin()
    await lookup.connect()
    try {
      for (const { partition, high } of await lookup.fetchTopicOffsets(TOPIC)) ends.set(partition, high)
    } finally {
      await lookup.disconnect()
    }
    for (const node of cluster().nodeIds) {
      const admin = kafka(`offsets-via-${node}`, node).admin()
      await admin.connect()
      try {
        const [committed] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] })
        const byPartition = new Map(committed!.partitions.map((p) => [p.partition, p.offset]))
        expect({ node, offsets: Object.fromEntries(byPartition) }).toEqual({ node, offsets: Object.fromEntries(ends) })
      } finally {
        await admin.disconnect()
      }
    }
  })

  it('commits a kafkajs transaction over partitions led by every node, whose read_committed consumers see commits and never aborts', async () => {
    const ledger = 'ledger'
    const readers = 'ledger-readers'
    const admin = kafka('ledger-admin', 1).admin()
    await admin.connect()
    try {
      // Replicated, as every topic of this cluster: kafkajs's admin fails its metadata refresh on any partition without a
      // leader (LEADER_NOT_AVAILABLE, as Kafka answers for one), which a later test's kill would leave otherwise.
      await admin.createTopics({ topics: [{ topic: ledger, numPartitions: PARTITIONS, replicationFactor: 3 }], waitForLeaders: true })
      const leaders = (await admin.fetchTopicMetadata({ topics: [ledger] })).topics[0]!.partitions.map((p) => p.leader)
      expect(new Set(leaders).size).toBe(3)
    } finally {
      await admin.disconnect()
    }
    const transactionalId = 'ledger-writer'
    const txnCoordinator = await waitFor('a transaction coordinator', async () => {
      const answer = await withClient(cluster().nodes.get(1)!, (client) => client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, 4, { keyType: CoordinatorType.TRANSACTION, coordinatorKeys: [transactionalId] }))
      return answer.coordinators![0]!.errorCode === ErrorCode.NONE && answer.coordinators![0]!.nodeId
    })
    expect(cluster().nodeIds).toContain(txnCoordinator)

    const producer = kafka('ledger-producer', 2).producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const batch = (prefix: string) => Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, value: `${prefix}-${partition}` }))
    try {
      const first = await producer.transaction()
      await first.send({ topic: ledger, messages: batch('committed') })
      await first.commit()
      const second = await producer.transaction()
      await second.send({ topic: ledger, messages: batch('aborted') })
      await second.abort()
      const third = await producer.transaction()
      await third.send({ topic: ledger, messages: batch('committed-again') })
      await third.sendOffsets({ consumerGroupId: readers, topics: [{ topic: ledger, partitions: [{ partition: 0, offset: '2' }] }] })
      await third.commit()
    } finally {
      await producer.disconnect()
    }

    const read = async (node: number, readUncommitted: boolean, expected: number): Promise<string[]> => {
      const values: string[] = []
      const consumer = kafka(`ledger-reader-${node}-${readUncommitted}`, node).consumer({ groupId: `ledger-check-${node}-${readUncommitted}`, readUncommitted, maxWaitTimeInMs: 200 })
      await consumer.connect()
      try {
        await consumer.subscribe({ topic: ledger, fromBeginning: true })
        await consumer.run({ eachMessage: async ({ message }) => void values.push(message.value!.toString()) })
        await waitFor(`${expected} records through node ${node}`, () => values.length >= expected)
      } finally {
        await consumer.disconnect()
      }
      return values.sort()
    }
    const committed = [...batch('committed'), ...batch('committed-again')].map((m) => m.value).sort()
    // Each partition's committed-again record follows its aborted one: reading it means the aborted one was passed.
    expect(await read(3, false, committed.length)).toEqual(committed)
    expect(await read(1, true, PARTITIONS * 3)).toEqual([...committed, ...batch('aborted').map((m) => m.value)].sort())
    for (const node of cluster().nodeIds) {
      const reader = kafka(`ledger-offsets-${node}`, node).admin()
      await reader.connect()
      try {
        const [offsets] = await reader.fetchOffsets({ groupId: readers, topics: [ledger] })
        expect(offsets!.partitions.find((p) => p.partition === 0)!.offset).toBe('2')
      } finally {
        await reader.disconnect()
      }
    }
    // As Kafka creates it: compacted, and a transaction's state acknowledged only once two replicas hold it
    // (transaction.state.log.min.isr).
    const admin2 = kafka('ledger-configs', 2).admin()
    await admin2.connect()
    try {
      const described = await admin2.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: '__transaction_state', configNames: ['cleanup.policy', 'min.insync.replicas'] }], includeSynonyms: false })
      const entries = Object.fromEntries(described.resources[0]!.configEntries.map((e) => [e.configName, e.configValue]))
      expect(entries).toEqual({ 'cleanup.policy': 'compact', 'min.insync.replicas': '2' })
    } finally {
      await admin2.disconnect()
    }
  })

  it('verifies a transactional batch at a leader that is not its transaction\'s coordinator with that coordinator, and refuses transactional requests at other nodes', async () => {
    const transactionalId = 'wire-verifier'
    const coordinator = await waitFor('a transaction coordinator', async () => {
      const answer = await withClient(cluster().nodes.get(1)!, (client) => client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, 4, { keyType: CoordinatorType.TRANSACTION, coordinatorKeys: [transactionalId] }))
      return answer.coordinators![0]!.errorCode === ErrorCode.NONE && answer.coordinators![0]!.nodeId
    })
    const other = cluster().nodeIds.find((id) => id !== coordinator)!
    const init = (node: number) =>
      withClient(cluster().nodes.get(node)!, (client) =>
        client.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, 4, { transactionalId, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 }),
      )
    expect((await init(other)).errorCode).toBe(ErrorCode.NOT_COORDINATOR)
    const initialized = await init(coordinator)
    expect(initialized.errorCode).toBe(ErrorCode.NONE)
    const producerId = initialized.producerId!
    const { producerEpoch } = initialized

    const ledger = (await withClient(cluster().nodes.get(1)!, (client) =>
      client.request<MetadataRequest, MetadataResponse>(metadata, 12, { topics: [{ topicId: ZERO_UUID, name: 'ledger' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }),
    )).topics[0]!
    const { partitionIndex, leaderId } = ledger.partitions.find((p) => p.leaderId !== coordinator)!
    const produceTxn = (sequence: number) =>
      withClient(cluster().nodes.get(leaderId)!, async (client) => {
        const records = encodeRecordBatch([{ value: Buffer.from(`verified-${sequence}`) }], { producerId, producerEpoch, baseSequence: sequence, flags: Attribute.transactional })
        const answer = await client.request<ProduceRequest, ProduceResponse>(produce, 9, { transactionalId, acks: -1, timeoutMs: 10_000, topicData: [{ name: 'ledger', partitionData: [{ index: partitionIndex, records }] }] })
        return answer.responses[0]!.partitionResponses[0]!.errorCode
      })
    const add = (node: number, version: number, verifyOnly: boolean) =>
      withClient(cluster().nodes.get(node)!, async (client) => {
        const topics = [{ name: 'ledger', partitions: [partitionIndex] }]
        const body: Partial<AddPartitionsToTxnRequest> =
          version >= 4
            ? { transactions: [{ transactionalId, producerId, producerEpoch, verifyOnly, topics }] }
            : { v3AndBelowTransactionalId: transactionalId, v3AndBelowProducerId: producerId, v3AndBelowProducerEpoch: producerEpoch, v3AndBelowTopics: topics }
        const answer = await client.request<Partial<AddPartitionsToTxnRequest>, AddPartitionsToTxnResponse>(addPartitionsToTxn, version, body)
        return version >= 4 ? answer.resultsByTransaction![0]!.topicResults[0]!.resultsByPartition[0]!.partitionErrorCode : answer.resultsByTopicV3AndBelow![0]!.resultsByPartition[0]!.partitionErrorCode
      })

    // Not added to the transaction: the leader asks the coordinator, which says so.
    expect(await produceTxn(0)).toBe(ErrorCode.INVALID_TXN_STATE)
    expect(await add(coordinator, 4, true)).toBe(ErrorCode.INVALID_TXN_STATE)
    expect(await add(other, 4, true)).toBe(ErrorCode.NOT_COORDINATOR)
    expect(await add(other, 3, false)).toBe(ErrorCode.NOT_COORDINATOR)
    expect(await add(coordinator, 3, false)).toBe(ErrorCode.NONE)
    expect(await add(coordinator, 4, true)).toBe(ErrorCode.NONE)
    expect(await produceTxn(0)).toBe(ErrorCode.NONE)
    const ended = await withClient(cluster().nodes.get(coordinator)!, (client) => client.request<EndTxnRequest, EndTxnResponse>(endTxn, 3, { transactionalId, producerId, producerEpoch, committed: false }))
    expect(ended.errorCode).toBe(ErrorCode.NONE)
  })

  it('moves a group to the new leader of its partition when its coordinator is killed, with its committed offsets, and takes the restarted node back', async () => {
    const before = await waitFor('a coordinator', async () => {
      const answer = await findCoordinatorAt(1, GROUP, 4)
      return answer.errorCode === ErrorCode.NONE && answer.nodeId
    })
    const other = cluster().nodeIds.find((id) => id !== before)!
    const offsetsVia = async (node: number) => {
      const admin = kafka(`restart-offsets-${node}`, node).admin()
      await admin.connect()
      try {
        const [committed] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] })
        return Object.fromEntries(committed!.partitions.map((p) => [p.partition, p.offset]))
      } finally {
        await admin.disconnect()
      }
    }
    const committed = await offsetsVia(other)
    expect(Object.values(committed).some((offset) => offset !== '-1')).toBe(true)
    await cluster().nodes.get(before)!.kill()
    // __consumer_offsets has three replicas: an ISR member is elected leader of the group's partition and replays it.
    const successor = await waitFor('another coordinator', async () => {
      const answer = await findCoordinatorAt(other, GROUP, 4)
      return answer.errorCode === ErrorCode.NONE && answer.nodeId !== before && answer.nodeId
    })
    expect(cluster().nodeIds).toContain(successor)
    expect(await waitFor('the offsets read back from the new coordinator', async () => offsetsVia(other))).toEqual(committed)
    await cluster().restart(before)
    const admin = kafka('restart-describe', before).admin()
    await admin.connect()
    try {
      expect(await waitFor('the offsets read back through the restarted node', async () => {
        const [read] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] })
        return Object.fromEntries(read!.partitions.map((p) => [p.partition, p.offset]))
      })).toEqual(committed)
      expect((await admin.describeGroups([GROUP])).groups[0]!.state).toBe('Empty')
    } finally {
      await admin.disconnect()
    }
  })

  it('lets a kcat group member bootstrapped through a node that is not its coordinator consume and commit', async () => {
    const groupId = Array.from({ length: 50 }, (_, i) => `kcat-group-${i}`).find((g) => partitionForGroup(g, OFFSETS_PARTITIONS) !== partitionForGroup(GROUP, OFFSETS_PARTITIONS))!
    const coordinator = await waitFor('a coordinator for the kcat group', async () => {
      const answer = await findCoordinatorAt(1, groupId, 4)
      return answer.errorCode === ErrorCode.NONE && answer.nodeId
    })
    const bootstrap = cluster().nodes.get(cluster().nodeIds.find((id) => id !== coordinator)!)!.address
    const member = startKcatGroupMember({ broker: bootstrap, groupId, topics: [TOPIC] })
    try {
      await waitFor('kcat consumes every record', () => member.records.length >= 60, { timeoutMs: 60_000 })
      expect(member.assigned).toEqual(Array.from({ length: PARTITIONS }, (_, i) => i))
    } finally {
      expect(await member.stop()).toBe(0)
    }
    const admin = kafka('kcat-offsets', coordinator === 1 ? 2 : 1).admin()
    await admin.connect()
    try {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [TOPIC] })
      const total = committed!.partitions.reduce((sum, p) => sum + Number(p.offset), 0)
      expect(total).toBe(60)
    } finally {
      await admin.disconnect()
    }
  })
})
