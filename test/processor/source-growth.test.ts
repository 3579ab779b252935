/**
 * A pipeline on a three-node cluster takes the partitions added to its stateless source. kafkajs 2.2.4 looks for new
 * partitions in each of its fetchers' fetches (one fetcher per node that leads a partition it reads), so with two
 * fetchers both rejoin the group at once with the same member id. Brook's coordinator answered the first JoinGroup,
 * superseded by the second, with UNKNOWN_MEMBER_ID; kafkajs then cleared the member id its two joins share and joined
 * again as a new member, and the pipeline went on without its new partitions (not one record of them in 30 s). It now
 * answers a superseded JoinGroup (and SyncGroup) with the answer of the request that superseded it
 * (broker/group/coordinator.ts). On one broker there is one fetcher, so `failures.test.ts`'s case of the same on a
 * single node never showed it.
 */
import { afterAll, expect, test } from 'vitest'
import { TopologyBuilder, runPipeline, type RunningPipeline } from '../../processor/index.js'
import { allUnfenced, startCluster, type TestCluster } from '../helpers/cluster.js'
import { readTopic, stateDir, values } from './helpers.js'

const APP = 'source-growth'

let cluster: TestCluster | undefined
let pipeline: RunningPipeline | undefined
afterAll(async () => {
  await pipeline?.stop().catch(() => {})
  await cluster?.destroy()
})

test('a pipeline on a three-node cluster processes the records of a partition added to its stateless source', { timeout: 180_000 }, async () => {
  cluster = await startCluster({ nodes: 3, extraArgs: ['--group-initial-rebalance-delay-ms', '0'] })
  await allUnfenced(cluster)
  const kafka = cluster.kafka(APP)
  const admin = kafka.admin()
  await admin.connect()
  const builder = new TopologyBuilder()
  builder.stream<{ n: number }>(`${APP}-input`).map((v) => ({ n: v.n * 10 })).to(`${APP}-out`)
  pipeline = await runPipeline(builder.build(), {
    applicationId: APP,
    bootstrapServers: cluster.nodeIds.map((id) => cluster!.nodes.get(id)!.address),
    stateDir: stateDir(),
    commitIntervalMs: 200,
    // The consumer sees the new partition within a second.
    metadataMaxAgeMs: 1000,
    replicationFactor: 3,
    log: () => {},
  })
  const producer = kafka.producer()
  await producer.connect()
  try {
    await producer.send({ topic: `${APP}-input`, messages: [{ key: 'k', value: JSON.stringify({ n: 1 }), partition: 0 }] })
    await readTopic(kafka, `${APP}-out`, (r) => r.length >= 1)
    await admin.createPartitions({ topicPartitions: [{ topic: `${APP}-input`, count: 2 }] })
    // A producer that knows the new partition: kafkajs drops a record for a partition its metadata lacks.
    const grown = kafka.producer()
    await grown.connect()
    await grown.send({ topic: `${APP}-input`, messages: [{ key: 'k', value: JSON.stringify({ n: 2 }), partition: 1 }] }).finally(() => grown.disconnect())
    const out = await readTopic(kafka, `${APP}-out`, (r) => r.length >= 2, { timeoutMs: 30_000 })
    expect(values<{ n: number }>(out).map((v) => v.n).sort((a, b) => a - b)).toEqual([10, 20])
    expect(pipeline.metrics().tasks.map((t) => t.id).sort()).toEqual(['0_0', '0_1'])
  } finally {
    await producer.disconnect()
    await admin.disconnect()
  }
})
