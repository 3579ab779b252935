/**
 * exactly_once when a leader dies mid-commit and its partition moves to a broker that has already answered for
 * another partition. kafkajs 2.2.4 cuts such a send short when it spans both partitions: its retry has no broker left
 * to send the moved partition to, and a transaction committed after it would lose that partition's output for good
 * (processor/runtime/whole-sends.ts). The runner sends each partition's output as a send of its own
 * (sendPerPartition), so the moved partition's send is retried at its new leader.
 *
 * Here, on a three-node cluster of real processes, a doubling pipeline reads one input partition and writes an output
 * topic whose partition X is on nodes A and B (A leading) and whose partition Y is led by B. A leads nothing else the
 * pipeline needs: not the input partition, not the group's or the task's transaction coordinator. A first batch goes
 * through; then A is paused with SIGSTOP and a second batch is produced. The pipeline's next commit sends its output
 * to every partition; once B has written Y, A is killed with kill -9, the controller fences A and B takes X, and
 * kafkajs sends X again, to B. The read_committed output holds every doubled value once, and the commit went through
 * without the task starting again. (When the runner sent all partitions in one kafkajs send, kafkajs resolved it
 * without X; the runner's check of the answer then aborted the transaction and redid the batch, and without that
 * check 81 of 400 values were missing.)
 */
import { describe, expect, it } from 'vitest'
import { TopologyBuilder, runPipeline, type Topology } from '../../processor/index.js'
import { CoordinatorType } from '../../protocol/constants.js'
import { agreedCoordinator, agreedPlacement, QUICK_CLUSTER_ARGS, useCluster } from '../helpers/cluster.js'
import { latestOffsetAt } from '../helpers/kafka.js'
import { waitFor } from '../helpers/wait.js'
import { readSettled, readTopic, stateDir, values } from './helpers.js'

const INPUT = 'eos-cut-short-input'
const OUTPUT = 'eos-cut-short-doubled'
/** Input records per batch: a first batch while every node answers, then the one kafkajs cuts short. */
const BATCH = 200

function doubling(): Topology {
  const b = new TopologyBuilder()
  b.stream<{ n: number }>(INPUT)
    .map((v) => ({ n: v.n * 2 }))
    .to(OUTPUT)
  return b.build()
}

describe('exactly_once when a leader dies mid-send', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })

  it('commits the output of a partition whose leader died mid-send, once, at its new leader: the output holds each value once', { timeout: 150_000 }, async () => {
    const admin = cluster().kafka('eos-cut-short-admin').admin()
    await admin.connect()
    try {
      await admin.createTopics({
        topics: [
          { topic: INPUT, numPartitions: 1, replicationFactor: 3 },
          { topic: OUTPUT, numPartitions: 3, replicationFactor: 2 },
        ],
        waitForLeaders: true,
      })
    } finally {
      await admin.disconnect()
    }
    const inputLeader = (await agreedPlacement(cluster(), INPUT, 1, 3))[0]!.leaderId
    const outputPartitions = await agreedPlacement(cluster(), OUTPUT, 3, 2)
    const controller = (await cluster().status(1)).controllerId
    // An application whose group coordinator and whose task's transaction coordinator leave a node A, other than the
    // input's leader and the controller (whose loss would hold up A's fencing), that leads an output partition X whose other replica B leads a partition Y
    // that A does not hold (Y's high watermark, which the test watches, must not wait for A).
    let chosen: { app: string; a: number; x: number; y: number } | undefined
    for (let i = 0; chosen === undefined; i++) {
      expect(i, 'no application name leaves a node free of what the pipeline needs').toBeLessThan(40)
      const app = `eos-cut-short-${i}`
      const busy = new Set([inputLeader, controller, await agreedCoordinator(cluster(), app, CoordinatorType.GROUP), await agreedCoordinator(cluster(), `${app}-0_0`, CoordinatorType.TRANSACTION)])
      for (const x of outputPartitions) {
        const y = outputPartitions.find((p) => p.leaderId === x.replicaNodes[1] && !p.replicaNodes.includes(x.leaderId))
        if (!busy.has(x.leaderId) && y) {
          chosen = { app, a: x.leaderId, x: x.partitionIndex, y: y.partitionIndex }
          break
        }
      }
    }
    const { app, a, x, y } = chosen
    const b = outputPartitions[x]!.replicaNodes[1]!
    const survivors = cluster().nodeIds.filter((id) => id !== a)
    // The pipeline bootstraps from B and C: kafkajs asks its seed broker for metadata, and A will not answer.
    const servers = survivors.map((id) => cluster().nodes.get(id)!.address)

    const logged: string[] = []
    const pipeline = await runPipeline(doubling(), {
      applicationId: app,
      bootstrapServers: servers,
      stateDir: stateDir(),
      processingGuarantee: 'exactly_once',
      commitIntervalMs: 100,
      // The pipeline's own topics (dead letters, late records) keep a copy off A. With one replica on A, kafkajs could
      // not even connect the task's new producer after A died: it fails a Metadata answer in which any partition has
      // no leader, and the task would wait for A to come back.
      replicationFactor: 2,
      // kafkajs sends some requests (FindCoordinator among them) to any broker it is connected to: one sent to A while
      // A is paused waits out this, not kafkajs's 30 s.
      kafka: { requestTimeout: 5000 },
      log: (line) => logged.push(line),
    })
    /** What a failure adds: the placement, the pipeline's counters and its log. */
    const state = () => `a=${a} b=${b} x=${x} y=${y}, metrics ${JSON.stringify(pipeline.metrics())}, the pipeline logged:\n${logged.join('\n')}`
    const victim = cluster().nodes.get(a)!
    const producer = cluster().kafka('eos-cut-short-input', survivors).producer({ idempotent: true })
    await producer.connect()
    try {
      const batch = (from: number) => Array.from({ length: BATCH }, (_, i) => ({ key: `k${from + i}`, value: JSON.stringify({ n: from + i }) }))
      await producer.send({ topic: INPUT, messages: batch(0), acks: -1 })
      await readTopic(cluster().kafka('eos-cut-short-first', survivors), OUTPUT, (records) => records.length >= BATCH)
      // A stops answering; the second batch's output request for X sits in its socket. Once B has written Y, A dies:
      // kafkajs's request to it fails on the closed connection, and kafkajs retries X at A until the controller has
      // fenced A (3 s after its last heartbeat) and moved X to B, which answered the same send already.
      victim.child.kill('SIGSTOP')
      try {
        const written = await latestOffsetAt(cluster().nodes.get(b)!, OUTPUT, y)
        await producer.send({ topic: INPUT, messages: batch(BATCH), acks: -1 })
        await waitFor(`B to have written the second batch's output to partition ${y}`, async () => (await latestOffsetAt(cluster().nodes.get(b)!, OUTPUT, y)) > written, { intervalMs: 20 }).catch((error: Error) => {
          throw new Error(`${error.message}; ${state()}`)
        })
      } finally {
        await victim.kill()
      }
      // Read until every value is there and nothing more has come for a while: a value written twice would show.
      const output = await readSettled(cluster().kafka('eos-cut-short-check', survivors), OUTPUT, (read) => read.length >= 2 * BATCH, state, { timeoutMs: 60_000 })
      const doubled = values<{ n: number }>(output).map((v) => v.n).sort((p, q) => p - q)
      expect(doubled).toEqual(Array.from({ length: 2 * BATCH }, (_, i) => 2 * i))
    } finally {
      await producer.disconnect()
      await pipeline.stop()
    }
    // Nothing was cut short, and the commit needed no second try.
    expect(logged.filter((line) => line.includes('no result for') || line.includes('re-initializing')), logged.join('\n')).toEqual([])
  })
})
