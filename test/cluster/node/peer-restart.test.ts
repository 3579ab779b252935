/**
 * Requests between cluster nodes after one of them restarted: a partition leader that verified a transactional batch
 * with its transaction's coordinator (AddPartitionsToTxn v4 verifyOnly, KIP-890) holds a connection to that node,
 * which the coordinator's restart closes. The leader's next verification there connects again, as Kafka's
 * NetworkClient does once it has seen the close, instead of failing on the closed connection: that failure reached
 * the producer as NOT_ENOUGH_REPLICAS, the first transactional batch at every other leader after each restart of a
 * coordinator's node (librdkafka retries it; Kafka never sends it there). Three real node processes, one
 * __transaction_state partition, so the coordinator is that partition's leader and, restarted, leads it again.
 */
import { describe, expect, it } from 'vitest'
import type { KafkaClient } from '../../../client/kafka-client.js'
import { QUICK_CLUSTER_ARGS, useCluster } from '../../helpers/cluster.js'
import { partitionsOf, withClient } from '../../helpers/kafka.js'
import { waitFor } from '../../helpers/wait.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { CoordinatorType } from '../../../protocol/constants.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../../protocol/messages/find-coordinator.js'
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../../../protocol/messages/init-producer-id.js'
import { addPartitionsToTxn, type AddPartitionsToTxnRequest, type AddPartitionsToTxnResponse } from '../../../protocol/messages/add-partitions-to-txn.js'
import { endTxn, type EndTxnRequest, type EndTxnResponse } from '../../../protocol/messages/end-txn.js'
import { produce, type ProduceRequest, type ProduceResponse } from '../../../protocol/messages/produce.js'
import { Attribute, encodeRecordBatch } from '../../../protocol/record-batch.js'

const TRANSACTIONAL_ID = 'ledger-writer'

describe('a partition leader after its transactions\' coordinator restarted', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: [...QUICK_CLUSTER_ARGS, '--transaction-state-log-num-partitions', '1'] })

  /** The node FindCoordinator at node `via` names for the transactional id, once it names one. */
  const coordinatorVia = (via: number): Promise<number> =>
    waitFor(`a coordinator for '${TRANSACTIONAL_ID}'`, async () => {
      const answer = await withClient(cluster().nodes.get(via)!, (client) =>
        client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, 4, { keyType: CoordinatorType.TRANSACTION, coordinatorKeys: [TRANSACTIONAL_ID] }),
      )
      return answer.coordinators![0]!.errorCode === ErrorCode.NONE && answer.coordinators![0]!.nodeId
    })

  /** One transaction with a batch at `leader`'s partition `index` of 'ledger': the Produce error, then committed. */
  async function transactionAt(coordinator: number, leader: number, index: number): Promise<number> {
    const atCoordinator = <Res>(send: (client: KafkaClient) => Promise<Res>): Promise<Res> => withClient(cluster().nodes.get(coordinator)!, send)
    const initialized = await waitFor('the transactional id initialized', async () => {
      const answer = await atCoordinator((client) =>
        client.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, 4, { transactionalId: TRANSACTIONAL_ID, transactionTimeoutMs: 60_000, producerId: -1n, producerEpoch: -1 }),
      )
      return answer.errorCode === ErrorCode.NONE && answer
    })
    const producer = { producerId: initialized.producerId!, producerEpoch: initialized.producerEpoch }
    const added = await atCoordinator((client) =>
      client.request<Partial<AddPartitionsToTxnRequest>, AddPartitionsToTxnResponse>(addPartitionsToTxn, 3, {
        v3AndBelowTransactionalId: TRANSACTIONAL_ID,
        v3AndBelowProducerId: producer.producerId,
        v3AndBelowProducerEpoch: producer.producerEpoch,
        v3AndBelowTopics: [{ name: 'ledger', partitions: [index] }],
      }),
    )
    expect(added.resultsByTopicV3AndBelow![0]!.resultsByPartition[0]!.partitionErrorCode).toBe(ErrorCode.NONE)
    const produced = await withClient(cluster().nodes.get(leader)!, (client) => {
      const records = encodeRecordBatch([{ value: Buffer.from('entry') }], { ...producer, baseSequence: 0, flags: Attribute.transactional })
      return client.request<ProduceRequest, ProduceResponse>(produce, 9, { transactionalId: TRANSACTIONAL_ID, acks: -1, timeoutMs: 10_000, topicData: [{ name: 'ledger', partitionData: [{ index, records }] }] })
    })
    const ended = await atCoordinator((client) => client.request<EndTxnRequest, EndTxnResponse>(endTxn, 3, { transactionalId: TRANSACTIONAL_ID, ...producer, committed: true }))
    expect(ended.errorCode).toBe(ErrorCode.NONE)
    return produced.responses[0]!.partitionResponses[0]!.errorCode
  }

  it('verifies the first transactional batch after the coordinator\'s restart with it, over a new connection', async () => {
    const admin = cluster().kafka('ledger-admin').admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic: 'ledger', numPartitions: 3, replicationFactor: 3 }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
    const coordinator = await coordinatorVia(1)
    const { partitionIndex, leaderId: leader } = (await partitionsOf(cluster().nodes.get(coordinator)!, 'ledger')).find((p) => p.leaderId !== coordinator)!
    // The leader asks the coordinator over a connection it keeps.
    expect(await transactionAt(coordinator, leader, partitionIndex)).toBe(ErrorCode.NONE)

    await cluster().nodes.get(coordinator)!.kill()
    await waitFor('another coordinator', async () => (await coordinatorVia(leader)) !== coordinator)
    await cluster().restart(coordinator)
    // Back in the ISR, the restarted node is elected leader of the partitions it is the preferred replica of again.
    await waitFor(`node ${coordinator} coordinating '${TRANSACTIONAL_ID}' again`, async () => (await coordinatorVia(leader)) === coordinator)
    expect((await partitionsOf(cluster().nodes.get(leader)!, 'ledger')).find((p) => p.partitionIndex === partitionIndex)!.leaderId).toBe(leader)
    expect(await transactionAt(coordinator, leader, partitionIndex)).toBe(ErrorCode.NONE)
  }, 120_000)
})
