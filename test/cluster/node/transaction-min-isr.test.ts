/**
 * __transaction_state's min.insync.replicas (transaction.state.log.min.isr, Kafka's TransactionStateManager): a cluster
 * node creates the topic with it, and a transaction coordinator writes a transaction's state only while the
 * partition's ISR holds that many replicas, answering COORDINATOR_NOT_AVAILABLE otherwise (Kafka's coordinator maps
 * NOT_ENOUGH_REPLICAS so), which producers retry. Three real node processes with `--transaction-state-log-min-isr 3`,
 * so that one node killed is enough to take the ISR below it; one partition, so the coordinator is that partition's
 * leader.
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
