/**
 * __transaction_state's min.insync.replicas (transaction.state.log.min.isr, Kafka's TransactionStateManager): a cluster
 * node creates the topic with it, and a transaction coordinator writes a transaction's state only while the
 * partition's ISR holds that many replicas, answering COORDINATOR_NOT_AVAILABLE otherwise (Kafka's coordinator maps
 * NOT_ENOUGH_REPLICAS so), which producers retry. Three real node processes with `--transaction-state-log-min-isr 3`,
 * so that one node killed is enough to take the ISR below it; one partition, so the coordinator is that partition's
 * leader. Then five, for a commit whose markers are written while the ISR is below it: its completion waits for the
 * ISR instead of leaving the transaction prepared.
 */
import { describe, expect, it } from 'vitest'
import { ConfigResourceTypes } from 'kafkajs'
import { QUICK_CLUSTER_ARGS, useCluster } from '../../helpers/cluster.js'
import { partitionsOf, withClient } from '../../helpers/kafka.js'
import { waitFor } from '../../helpers/wait.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { CoordinatorType } from '../../../protocol/constants.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../../protocol/messages/find-coordinator.js'
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../../../protocol/messages/init-producer-id.js'
import { describeLogDirs, type DescribeLogDirsRequest, type DescribeLogDirsResponse } from '../../../protocol/messages/describe-log-dirs.js'
import { ClusterClient } from '../../../client/cluster-client.js'
import { describeTransaction } from '../../../client/transaction-admin.js'
import { fetchPartition } from '../../helpers/kafka.js'

const STATE_TOPIC = '__transaction_state'

describe('__transaction_state min.insync.replicas on a three-node cluster', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: [...QUICK_CLUSTER_ARGS, '--transaction-state-log-min-isr', '3', '--transaction-state-log-num-partitions', '1'] })

  /** InitProducerId for `transactionalId` at node `node`, once FindCoordinator there names a coordinator; its error code. */
  async function initAtCoordinator(transactionalId: string): Promise<{ coordinator: number; errorCode: number }> {
    const coordinator = await waitFor(`a coordinator for ${transactionalId}`, async () => {
      const answer = await withClient(cluster().nodes.get(cluster().nodeIds[0]!)!, (client) =>
        client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, 4, { keyType: CoordinatorType.TRANSACTION, coordinatorKeys: [transactionalId] }),
      )
      return answer.coordinators![0]!.errorCode === ErrorCode.NONE && answer.coordinators![0]!.nodeId
    })
    const answer = await withClient(cluster().nodes.get(coordinator)!, (client) =>
      client.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, 4, { transactionalId, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 }),
    )
    return { coordinator, errorCode: answer.errorCode }
  }

  it('creates the topic with it, refuses a transaction state write while the ISR is below it, and takes them again once it is whole', async () => {
    // The first InitProducerId creates the topic; its coordinator loads the partition, then answers.
    const first = await waitFor('a transactional id initialized with the whole ISR', async () => {
      const answer = await initAtCoordinator('min-isr-first')
      return answer.errorCode === ErrorCode.NONE && answer
    })
    const admin = cluster().kafka('min-isr-admin').admin()
    await admin.connect()
    try {
      const described = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: STATE_TOPIC, configNames: ['min.insync.replicas'] }], includeSynonyms: false })
      expect(described.resources[0]!.configEntries.map((e) => [e.configName, e.configValue])).toEqual([['min.insync.replicas', '3']])
    } finally {
      await admin.disconnect()
    }

    // A follower of the partition killed: fenced after the session timeout, it leaves the ISR, which falls below 3.
    const leader = first.coordinator
    const follower = cluster().nodeIds.find((id) => id !== leader)!
    await cluster().nodes.get(follower)!.kill()
    await waitFor(`node ${follower} out of ${STATE_TOPIC}-0's ISR`, async () => {
      const [partition] = await partitionsOf(cluster().nodes.get(leader)!, STATE_TOPIC)
      return partition !== undefined && partition.leaderId === leader && !partition.isrNodes.includes(follower)
    }, { timeoutMs: 60_000 })
    /** The bytes of the partition's log at the leader (DescribeLogDirs): what it appended, acknowledged or not. */
    const stateBytes = async (): Promise<bigint> => {
      const answer = await withClient(cluster().nodes.get(leader)!, (client) =>
        client.request<DescribeLogDirsRequest, DescribeLogDirsResponse>(describeLogDirs, 4, { topics: [{ topic: STATE_TOPIC, partitions: [0] }] }),
      )
      return answer.results[0]!.topics[0]!.partitions[0]!.partitionSize
    }
    const before = await stateBytes()
    expect(await initAtCoordinator('min-isr-second')).toEqual({ coordinator: leader, errorCode: ErrorCode.COORDINATOR_NOT_AVAILABLE })
    // Refused before the write, as Kafka's acks=-1 append is: no state record the coordinator did not take is left in
    // the log, for the next coordinator to replay.
    expect(await stateBytes()).toBe(before)

    // Back in the ISR, the same request is taken.
    await cluster().restart(follower)
    await waitFor(`node ${follower} back in ${STATE_TOPIC}-0's ISR`, async () => {
      const [partition] = await partitionsOf(cluster().nodes.get(leader)!, STATE_TOPIC)
      return partition !== undefined && partition.isrNodes.length === 3
    }, { timeoutMs: 60_000 })
    expect((await waitFor('the transactional id initialized again', async () => {
      const answer = await initAtCoordinator('min-isr-second')
      return answer.errorCode === ErrorCode.NONE && answer
    })).errorCode).toBe(ErrorCode.NONE)
  }, 180_000)
})

describe('a commit whose markers are written while __transaction_state is below its min.insync.replicas', () => {
  // Five nodes: one killed to hold the markers back and one to take the ISR below 3 leave the three a quorum needs.
  const cluster = useCluster({ nodes: 5, extraArgs: [...QUICK_CLUSTER_ARGS, '--transaction-state-log-min-isr', '3', '--transaction-state-log-num-partitions', '1'] })

  it('is completed once the ISR is whole again: the commit succeeds and the id serves its next producer', async () => {
    const transactionalId = 'prepared-while-short'
    // Its EndTxn is answered once the transaction is complete, after both nodes are back: more than kafkajs's 30 s on
    // a loaded machine.
    const producer = cluster().kafka('prepared-producer', cluster().nodeIds, { requestTimeout: 120_000 }).producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const nextProducer = cluster().kafka('prepared-next-producer').producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
    const admin = cluster().kafka('prepared-admin').admin()
    await admin.connect()
    const client = await ClusterClient.connect(cluster().nodeIds.map((id) => ({ host: cluster().host(id), port: cluster().nodes.get(id)!.port })))
    try {
      // The first transaction's InitProducerId creates __transaction_state, whose partition 0's leader coordinates the
      // id. The topic written lives only on a node outside that partition's replicas, so that killing it holds the
      // COMMIT marker back without touching the coordinator's ISR.
      const transaction = await producer.transaction()
      const state = await waitFor(`${STATE_TOPIC}-0 led with its whole ISR`, async () => {
        const [partition] = await partitionsOf(cluster().nodes.get(cluster().nodeIds[0]!)!, STATE_TOPIC)
        return partition !== undefined && partition.leaderId >= 0 && partition.isrNodes.length === 3 && partition
      })
      const coordinator = state.leaderId
      const elsewhere = cluster().nodeIds.find((id) => !state.replicaNodes.includes(id))!
      const follower = state.replicaNodes.find((id) => id !== coordinator)!
      await admin.createTopics({ topics: [{ topic: 'prepared-out', replicaAssignment: [{ partition: 0, replicas: [elsewhere] }] }], waitForLeaders: true })

      await transaction.send({ topic: 'prepared-out', messages: [{ partition: 0, value: 'committed while the ISR was short' }] })
      await cluster().nodes.get(elsewhere)!.kill()
      const committed = transaction.commit()
      committed.catch(() => undefined)
      await waitFor('the transaction prepared, its marker waiting for its partition', async () => (await describeTransaction(client, transactionalId)).state === 'PrepareCommit')

      // A follower of __transaction_state-0 killed: out of the ISR, which falls below 3.
      await cluster().nodes.get(follower)!.kill()
      await waitFor(`node ${follower} out of ${STATE_TOPIC}-0's ISR`, async () => {
        const [partition] = await partitionsOf(cluster().nodes.get(coordinator)!, STATE_TOPIC)
        return partition !== undefined && partition.leaderId === coordinator && !partition.isrNodes.includes(follower)
      }, { timeoutMs: 60_000 })
      // The partition back: its marker is written (a read_committed fetch there reads past the record), and the
      // transaction's completion is refused while the ISR is short.
      const out = await cluster().restart(elsewhere)
      await waitFor('the COMMIT marker written to prepared-out-0', async () => {
        const answer = await withClient(out, (c) => fetchPartition(c, { topic: 'prepared-out', partition: 0, offset: 0n, isolationLevel: 1 }))
        return answer.errorCode === ErrorCode.NONE && answer.lastStableOffset === 2n
      }, { timeoutMs: 60_000 })

      await cluster().restart(follower)
      await waitFor(`node ${follower} back in ${STATE_TOPIC}-0's ISR`, async () => {
        const [partition] = await partitionsOf(cluster().nodes.get(coordinator)!, STATE_TOPIC)
        return partition !== undefined && partition.isrNodes.length === 3
      }, { timeoutMs: 60_000 })
      // Completed then, not left prepared (where every EndTxn of the producer would be CONCURRENT_TRANSACTIONS until
      // the partition moved), and the producer's commit answered.
      await waitFor('the transaction completed', async () => (await describeTransaction(client, transactionalId)).state === 'CompleteCommit')
      await committed

      // Its next producer fences the first and commits a transaction of its own.
      await nextProducer.connect()
      const next = await nextProducer.transaction()
      await next.send({ topic: 'prepared-out', messages: [{ partition: 0, value: 'the next producer' }] })
      await next.commit()
      expect((await describeTransaction(client, transactionalId)).state).toBe('CompleteCommit')
    } finally {
      client.close()
      await admin.disconnect()
      await producer.disconnect()
      await nextProducer.disconnect()
    }
  }, 240_000)
})
