/**
 * A node that dies while it only follows the pipeline's partitions (it leads none of them and coordinates neither the
 * group nor the task's transactions) stops costing the pipeline's commits once the controller has fenced it. kafkajs
 * 2.2.4 looks coordinators up (FindCoordinator, at every sendOffsets) through a broker of its metadata picked at
 * random, and a dead one fails the lookup, which kafkajs tries again after its backoff without refreshing its
 * metadata; with kafkajs's default metadataMaxAge (5 minutes) a task's transactional producer kept the dead node that
 * long, and on a 3-node `brook dev` the commits took 1-3 s and the output came every 3 s instead of every 1.4 s
 * (processor/runtime/runner.ts, TASK_PRODUCER_METADATA_MAX_AGE_MS).
 *
 * On a three-node cluster (a node is fenced 3 s after its last heartbeat), an exactly_once pipeline copies a stream
 * of records, committing every 200 ms, while the node that neither leads its topics nor coordinates is killed with
 * kill -9. Once both live nodes have fenced it and a task producer's metadata has had time to age (10 s) and be asked
 * for again, the pipeline's clients try the dead node no more: no connection to its port is attempted for 10 s while
 * records keep coming and every one of them is copied.
 */
import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterEach, expect, test } from 'vitest'
import type { ISocketFactory } from 'kafkajs'
import { TopologyBuilder, runPipeline, type RunningPipeline } from '../../processor/index.js'
import { agreedCoordinator, allUnfenced, QUICK_CLUSTER_ARGS, startCluster, type TestCluster } from '../helpers/cluster.js'
import { waitFor } from '../helpers/wait.js'
import { CoordinatorType } from '../../protocol/constants.js'
import { readTopic, stateDir } from './helpers.js'

const APP = 'dead-follower'
const INPUT = `${APP}-in`
const OUTPUT = `${APP}-out`
/** From the fencing on: longer than TASK_PRODUCER_METADATA_MAX_AGE_MS (10 s) and a commit interval, with room to spare. */
const AGED_MS = 15_000
/** How long the pipeline must leave the dead node alone. */
const QUIET_MS = 10_000

let cluster: TestCluster | undefined
let pipeline: RunningPipeline | undefined
let feeding = false
afterEach(async () => {
  feeding = false
  await pipeline?.stop().catch(() => {})
  await cluster?.destroy()
})

/** Plain sockets that count the connections attempted to each port. */
function countingConnections(attempts: Map<number, number>): ISocketFactory {
  return ({ host, port, onConnect }) => {
    attempts.set(port, (attempts.get(port) ?? 0) + 1)
    const socket: Socket = connect({ host, port }, onConnect)
    socket.setNoDelay(true)
    return socket
  }
}

test('a dead follower is tried no more once it is fenced and the task producer has asked for metadata again', { timeout: 240_000 }, async () => {
  cluster = await startCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })
  await allUnfenced(cluster)
  const group = await agreedCoordinator(cluster, APP, CoordinatorType.GROUP)
  const transactions = await agreedCoordinator(cluster, `${APP}-0_0`, CoordinatorType.TRANSACTION)
  const victim = cluster.nodeIds.find((id) => id !== group && id !== transactions)!
  const leader = cluster.nodeIds.find((id) => id !== victim)!
  const replicas = [leader, ...cluster.nodeIds.filter((id) => id !== leader)]
  const kafka = cluster.kafka(APP)
  const admin = kafka.admin()
  await admin.connect()
  // Every topic of the pipeline led elsewhere: the dead node leads nothing the pipeline writes or reads.
  await admin.createTopics({ topics: [INPUT, OUTPUT, `${APP}-late`, `${APP}-dlq`].map((topic) => ({ topic, replicaAssignment: [{ partition: 0, replicas }] })), waitForLeaders: true })
  await admin.disconnect()

  const builder = new TopologyBuilder()
  builder.stream<{ n: number }>(INPUT).map((r) => ({ n: r.n })).to(OUTPUT)
  const attempts = new Map<number, number>()
  const lines: string[] = []
  pipeline = await runPipeline(builder.build(), {
    applicationId: APP,
    bootstrapServers: cluster.nodeIds.map((id) => cluster!.nodes.get(id)!.address),
    stateDir: stateDir(),
    commitIntervalMs: 200,
    replicationFactor: 3,
    kafka: { socketFactory: countingConnections(attempts) },
    log: (line) => lines.push(line),
  })

  const producer = kafka.producer()
  await producer.connect()
  let sent = 0
  feeding = true
  const feed = (async () => {
    while (feeding) {
      await producer.send({ topic: INPUT, messages: [{ key: `k${sent}`, value: JSON.stringify({ n: sent }) }] })
      sent++
      await sleep(50)
    }
  })()
  await waitFor('the first records copied', () => pipeline!.metrics().recordsOut >= 20, { timeoutMs: 60_000 })

  const dead = cluster.nodes.get(victim)!
  const deadPort = Number(dead.address.split(':').pop())
  await dead.kill()
  const live = cluster.nodeIds.filter((id) => id !== victim)
  await waitFor(`node ${victim} fenced`, async () => (await Promise.all(live.map((id) => cluster!.status(id)))).every((status) => !status.liveBrokers.some((b) => b.brokerId === victim)))
  await sleep(AGED_MS)
  const before = attempts.get(deadPort) ?? 0
  const copiedBefore = pipeline.metrics().recordsOut
  await sleep(QUIET_MS)
  const tried = (attempts.get(deadPort) ?? 0) - before
  const copied = pipeline.metrics().recordsOut - copiedBefore
  feeding = false
  await feed
  await producer.disconnect()

  const output = await readTopic(kafka, OUTPUT, (r) => r.length >= sent, { timeoutMs: 90_000 })
  console.log(`node ${victim} killed (group coordinator ${group}, transaction coordinator ${transactions}, leader ${leader}); connections tried to it: ${attempts.get(deadPort) ?? 0} in all, ${tried} in the ${QUIET_MS / 1000} s checked; ${copied} records copied meanwhile, ${sent} sent`)
  expect(copied, lines.join('\n')).toBeGreaterThan(0)
  expect(tried, lines.join('\n')).toBe(0)
  expect(new Set(output.map((r) => (JSON.parse(r.value!) as { n: number }).n)).size).toBe(sent)
})
