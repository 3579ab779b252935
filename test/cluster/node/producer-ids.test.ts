/**
 * Producer ids on a three-node cluster come from the controller's blocks (KIP-730): InitProducerId on each node hands
 * out ids from a block of its own, none shared with another node, across block boundaries and across restarts on the
 * same data directories; a node restarted without a quorum reads no request until it has caught up, and then answers
 * with an id of a block it got then (or COORDINATOR_LOAD_IN_PROGRESS, retriable, while the block is on its way),
 * never one made up; a kafkajs idempotent producer gets its id through a node of the cluster; a node whose blocks are
 * used up while no controller can give another answers COORDINATOR_LOAD_IN_PROGRESS at once.
 */
import { describe, expect, it } from 'vitest'
import { Kafka, logLevel } from 'kafkajs'
import { QUICK_CLUSTER_ARGS, useCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { connect, withClient } from '../../helpers/kafka.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { initProducerId, type InitProducerIdRequest, type InitProducerIdResponse } from '../../../protocol/messages/init-producer-id.js'
import { describeProducers, type DescribeProducersRequest, type DescribeProducersResponse } from '../../../protocol/messages/describe-producers.js'
import type { KafkaClient } from '../../../client/kafka-client.js'

const BLOCK_SIZE = 1000n
const IDEMPOTENT: InitProducerIdRequest = { transactionalId: null, transactionTimeoutMs: -1, producerId: -1n, producerEpoch: -1 }

describe('producer ids on a three-node cluster', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })
  /** Every id handed out so far, by the node that handed it out (0: a kafkajs producer's, through whichever node it asked). */
  const handedOut = new Map<bigint, number>()

  function ask(client: KafkaClient): Promise<InitProducerIdResponse> {
    return client.request<InitProducerIdRequest, InitProducerIdResponse>(initProducerId, 4, IDEMPOTENT)
  }

  /** One id from node `id`, retrying while it answers COORDINATOR_LOAD_IN_PROGRESS; recorded, and never seen before. */
  async function idFrom(id: number): Promise<bigint> {
    const answer = await withClient(cluster().nodes.get(id)!, (client) =>
      waitFor(`node ${id} handing out a producer id`, async () => {
        const response = await ask(client)
        if (response.errorCode === ErrorCode.COORDINATOR_LOAD_IN_PROGRESS) return false
        return response
      }),
    )
    expect(answer.errorCode).toBe(ErrorCode.NONE)
    expect(answer.producerEpoch).toBe(0)
    const producerId = answer.producerId!
    expect(handedOut.get(producerId), `producer id ${producerId} handed out twice`).toBeUndefined()
    handedOut.set(producerId, id)
    return producerId
  }

  async function allUnfenced(): Promise<void> {
    await waitFor('three unfenced brokers', async () => {
      const status = await cluster().status(1)
      return status.controllerId >= 0 && status.liveBrokers.length === 3
    })
  }

  it('hands out ids from a different controller block on each node', async () => {
    const blocks = new Set<bigint>()
    for (const id of cluster().nodeIds) {
      const first = await idFrom(id)
      const second = await idFrom(id)
      // Ids of one block, in order.
      expect(second).toBe(first + 1n)
      blocks.add(first / BLOCK_SIZE)
    }
    expect(blocks.size).toBe(3)
  })

  it('moves on to a new block of the controller once a node has used up its own', async () => {
    const node = cluster().nodeIds[0]!
    const ids = await withClient(cluster().nodes.get(node)!, async (client) => {
      const got: bigint[] = []
      for (let i = 0; i < Number(BLOCK_SIZE) + 5; i++) {
        const response = await ask(client)
        expect(response.errorCode).toBe(ErrorCode.NONE)
        got.push(response.producerId!)
      }
      return got
    })
    for (const producerId of ids) {
      expect(handedOut.get(producerId), `producer id ${producerId} handed out twice`).toBeUndefined()
      handedOut.set(producerId, node)
    }
    const blocks = new Set(ids.map((producerId) => producerId / BLOCK_SIZE))
    expect(blocks.size).toBe(2)
    // No block a node used is another node's.
    const owners = new Map<bigint, Set<number>>()
    for (const [producerId, owner] of handedOut) owners.set(producerId / BLOCK_SIZE, (owners.get(producerId / BLOCK_SIZE) ?? new Set()).add(owner))
    for (const [block, nodes] of owners) expect(nodes.size, `block ${block} used by nodes ${[...nodes].join(', ')}`).toBe(1)
  })

  it('gives a kafkajs idempotent producer an id no node handed out before', async () => {
    const admin = new Kafka({ clientId: 'pid-admin', brokers: [cluster().nodes.get(1)!.address], logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [{ topic: 'idempotent', numPartitions: 3 }], waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
    const kafka = new Kafka({ clientId: 'pid-producer', brokers: [cluster().nodes.get(2)!.address], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 10 } })
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    try {
      const sent = await producer.send({ topic: 'idempotent', acks: -1, messages: [0, 1, 2].map((partition) => ({ partition, value: `v${partition}` })) })
      expect(sent.every((meta) => meta.errorCode === ErrorCode.NONE)).toBe(true)
    } finally {
      await producer.disconnect()
    }
    // Each partition's leader holds the producer's state: one id, for all three partitions, handed out by no node before.
    // Only the leader answers for a partition (Kafka's ReplicaManager.activeProducerState); every other node says
    // NOT_LEADER_OR_FOLLOWER, so a tool asking a follower is sent to the leader rather than shown a follower's view.
    const seen = new Set<bigint>()
    const codes = new Map<number, number[]>()
    for (const id of cluster().nodeIds) {
      const answer = await withClient(cluster().nodes.get(id)!, (client) =>
        client.request<DescribeProducersRequest, DescribeProducersResponse>(describeProducers, 0, { topics: [{ name: 'idempotent', partitionIndexes: [0, 1, 2] }] }),
      )
      for (const partition of answer.topics[0]!.partitions) {
        codes.set(partition.partitionIndex, [...(codes.get(partition.partitionIndex) ?? []), partition.errorCode])
        if (partition.errorCode === ErrorCode.NONE) for (const state of partition.activeProducers) seen.add(state.producerId)
      }
    }
    for (const [partition, answered] of codes) {
      expect(answered.sort(), `partition ${partition}`).toEqual([ErrorCode.NONE, ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.NOT_LEADER_OR_FOLLOWER])
    }
    expect(seen.size).toBe(1)
    const [producerId] = [...seen]
    expect(handedOut.get(producerId!), `producer id ${producerId} handed out twice`).toBeUndefined()
    handedOut.set(producerId!, 0)
  })

  it('never hands out an id twice after its nodes restart on their data directories, and serves no client until it has caught up with a controller', async () => {
    const highest = [...handedOut.keys()].reduce((a, b) => (a > b ? a : b))
    for (const id of cluster().nodeIds) await cluster().nodes.get(id)!.stop()
    // Alone, node 2 has no quorum: it cannot catch up with the metadata log, so it reads no request (Kafka's brokers
    // enable request processing only after their initial catch-up). A client's InitProducerId waits, and is answered
    // once the other nodes are back and the controller has unfenced it, with an id of a block it got then.
    await cluster().restart(2)
    let answered = false
    const held = connect(cluster().nodes.get(2)!, { timeoutMs: 120_000 }).then(async (client) => {
      try {
        return await ask(client)
      } finally {
        answered = true
        client.close()
      }
    })
    await cluster().restart(1)
    expect(answered, 'node 2 answered before it caught up').toBe(false)
    await cluster().restart(3)
    await allUnfenced()
    const late = await held
    // The block may still be on its way from the controller when the held request is read: that is retriable.
    expect([ErrorCode.NONE, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS]).toContain(late.errorCode)
    if (late.errorCode === ErrorCode.NONE) {
      expect(late.producerId).toBeGreaterThan(highest)
      expect(handedOut.get(late.producerId!), `producer id ${late.producerId} handed out twice`).toBeUndefined()
      handedOut.set(late.producerId!, 2)
    }
    for (const id of cluster().nodeIds) {
      const producerId = await idFrom(id)
      expect(producerId).toBeGreaterThan(highest)
    }
  })

  it('answers InitProducerId at once with COORDINATOR_LOAD_IN_PROGRESS once its blocks are used up and no controller can give another', async () => {
    const [node, ...others] = cluster().nodeIds as [number, ...number[]]
    for (const id of others) await cluster().nodes.get(id)!.stop()
    // A client whose requests give up well before the controller channel's window: a node waiting for a block from
    // a controller it cannot reach would leave these unanswered (RPCProducerIdManager.generateProducerId never waits).
    const answers = await withClient(
      cluster().nodes.get(node)!,
      async (client) => {
        const codes: number[] = []
        // The block in use, and the next one if it had arrived before the quorum went away: at most two blocks.
        for (let i = 0; i < 2 * Number(BLOCK_SIZE) + 1 && codes.length < 3; i++) {
          const response = await ask(client)
          if (response.errorCode === ErrorCode.NONE) {
            expect(handedOut.get(response.producerId!), `producer id ${response.producerId} handed out twice`).toBeUndefined()
            handedOut.set(response.producerId!, node)
          } else codes.push(response.errorCode)
        }
        return codes
      },
      { timeoutMs: 3000 },
    )
    expect(answers).toEqual([ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS])
    for (const id of others) await cluster().restart(id)
    await allUnfenced()
    // With the quorum back, the next block comes: a retry gets an id again.
    await idFrom(node)
  })
})
