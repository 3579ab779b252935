/**
 * Which guarantee a pipeline runs with, decided only by what the cluster definitively says about transactions:
 * - the only bootstrap server goes down for a few seconds just as the pipeline asks about transactions (a proxy in
 *   front of the broker closes every connection at the probe's FindCoordinator and refuses new ones for a while):
 *   the pipeline asks again, then runs exactly_once; nothing is downgraded on a connection error.
 * - exactly_once asked for explicitly of a cluster without transactions (the proxy leaves the transaction APIs out
 *   of ApiVersions, as a broker from before transactions): runPipeline rejects, saying what to run instead. (The
 *   default guarantee on such a cluster runs at_least_once with a log line: recovery.test.ts.)
 * - a three-node cluster with a node killed -9, not yet fenced by the controller, that coordinates the probe's
 *   transactional id: a pipeline started at once with all three bootstrap servers runs exactly_once and processes,
 *   and says that the dead-letter topic it created has one replica (the cluster's default.replication.factor).
 * - no answer at all (nothing listens at the bootstrap server): the probe asks again until its bound, then fails with
 *   one error that names at_least_once as the way to run without transactions.
 */
import { createServer } from 'node:net'
import kafkajs from 'kafkajs'
import { describe, expect, test } from 'vitest'
import { GuaranteeError, ProcessorErrorCode, TopologyBuilder, runPipeline, type Topology } from '../../processor/index.js'
import { transactionsSupported } from '../../processor/runtime/guarantee.js'
import { CoordinatorType } from '../../protocol/constants.js'
import { findCoordinator } from '../../protocol/messages/find-coordinator.js'
import { agreedCoordinator, QUICK_CLUSTER_ARGS, useCluster } from '../helpers/cluster.js'
import { proxiedBrokerPerTest, readTopic, stateDir, values } from './helpers.js'
import { TRANSACTION_APIS } from './transaction-apis.js'

const DOWNGRADE = 'the cluster does not support transactions'

/** Doubles `n` from `<app>-input` into `<app>-doubled`. */
function doubling(app: string): Topology {
  const b = new TopologyBuilder()
  b.stream<{ n: number }>(`${app}-input`)
    .map((v) => ({ n: v.n * 2 }))
    .to(`${app}-doubled`)
  return b.build()
}

/** Sends `{ n: 21 }` through the pipeline of `app` and waits for `{ n: 42 }` (read_committed). */
async function expectProcessing(kafka: kafkajs.Kafka, app: string): Promise<void> {
  const producer = kafka.producer()
  await producer.connect()
  try {
    await producer.send({ topic: `${app}-input`, messages: [{ key: 'k', value: JSON.stringify({ n: 21 }) }] })
  } finally {
    await producer.disconnect()
  }
  expect(values(await readTopic(kafka, `${app}-doubled`, (records) => records.length >= 1))).toEqual([{ n: 42 }])
}

describe('a single broker behind a proxy', () => {
  const broker = proxiedBrokerPerTest()

  const behindProxy = () => broker.start('processor-guarantee')

  test('the bootstrap server down for a few seconds while the pipeline asks about transactions: it asks again and runs exactly_once', async () => {
    const app = 'guarantee-outage'
    const { address, kafka, proxy } = await behindProxy()
    proxy.outageAt(findCoordinator.request.apiKey, { downMs: 4000 })
    const logged: string[] = []
    const pipeline = broker.track(await runPipeline(doubling(app), { applicationId: app, bootstrapServers: address, stateDir: stateDir(), commitIntervalMs: 100, log: (line) => logged.push(line) }))
    expect(proxy.outages).toBe(1)
    expect(pipeline.processingGuarantee).toBe('exactly_once')
    expect(logged.some((line) => line.startsWith('cannot tell yet whether the cluster supports transactions ('))).toBe(true)
    expect(logged.filter((line) => line.includes(DOWNGRADE))).toEqual([])
    await expectProcessing(kafka, app)
  })

  test('exactly_once asked for of a cluster without transactions: runPipeline rejects and names at_least_once', async () => {
    const app = 'guarantee-explicit'
    const { address, proxy } = await behindProxy()
    for (const api of TRANSACTION_APIS) proxy.hide(api.request.apiKey)
    const logged: string[] = []
    const started = runPipeline(doubling(app), { applicationId: app, bootstrapServers: address, processingGuarantee: 'exactly_once', stateDir: stateDir(), log: (line) => logged.push(line) })
    await expect(started).rejects.toMatchObject({ name: 'GuaranteeError', code: ProcessorErrorCode.transactionsUnsupported })
    await expect(started).rejects.toThrow(
      'exactly_once needs transactions, which the cluster does not support (its ApiVersions does not list InitProducerId (API key 22)); run with processingGuarantee at_least_once (--processing-guarantee at_least_once) to process without them',
    )
    expect(logged.filter((line) => line.includes(DOWNGRADE))).toEqual([])
  })
})

describe('a three-node cluster with a node killed -9', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })

  test('the node coordinating the probe killed, a pipeline started at once through all three nodes runs exactly_once', async () => {
    // An application whose group another node coordinates: the kill is then one the transaction probe meets.
    let app = ''
    let coordinator = 0
    for (let i = 0; app === ''; i++) {
      const candidate = `guarantee-node-down-${i}`
      const transactions = await agreedCoordinator(cluster(), `${candidate}-probe`, CoordinatorType.TRANSACTION)
      if (transactions !== (await agreedCoordinator(cluster(), candidate, CoordinatorType.GROUP))) [app, coordinator] = [candidate, transactions]
    }
    const admin = cluster().kafka('processor-guarantee').admin()
    await admin.connect()
    try {
      await admin.createTopics({ topics: [`${app}-input`, `${app}-doubled`].map((topic) => ({ topic, numPartitions: 1, replicationFactor: 3 })), waitForLeaders: true })
    } finally {
      await admin.disconnect()
    }
    const servers = cluster().nodeIds.map((id) => cluster().nodes.get(id)!.address)
    await cluster().nodes.get(coordinator)!.kill()
    const logged: string[] = []
    const pipeline = await runPipeline(doubling(app), { applicationId: app, bootstrapServers: servers, stateDir: stateDir(), commitIntervalMs: 100, log: (line) => logged.push(line) })
    try {
      expect(pipeline.processingGuarantee).toBe('exactly_once')
      expect(logged.filter((line) => line.includes(DOWNGRADE))).toEqual([])
      // The cluster's default.replication.factor is 1: the dead-letter topic the pipeline made has one replica.
      const single = logged.filter((line) => line.startsWith('the pipeline created '))
      expect(single).toHaveLength(1)
      expect(single[0]).toMatch(
        new RegExp(`^the pipeline created ${app}-dlq with one replica on a cluster of [23] brokers \\(replicationFactor -1: the cluster's default\\.replication\\.factor\\): while that node is down, a task that has to start again waits for it; set replicationFactor \\(--replication-factor\\) to 2 or 3$`),
      )
      await expectProcessing(cluster().kafka('processor-guarantee-check', cluster().nodeIds.filter((id) => id !== coordinator)), app)
    } finally {
      await pipeline.stop()
    }
  })
})

describe('a cluster that never answers', () => {
  test('the probe asks again until its bound, then fails naming at_least_once', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    await new Promise<void>((resolve) => server.close(() => resolve()))
    // No retries of kafkajs's own: each attempt of the probe meets the refused connection at once.
    const kafka = new kafkajs.Kafka({ clientId: 'processor-guarantee', brokers: [`127.0.0.1:${port}`], logLevel: kafkajs.logLevel.NOTHING, retry: { retries: 0 } })
    const logged: string[] = []
    const probe = transactionsSupported(kafka, 'guarantee-nobody', { log: (line) => logged.push(line), maxBlockMs: 3000 })
    await expect(probe).rejects.toThrow(GuaranteeError)
    await expect(probe).rejects.toMatchObject({ code: ProcessorErrorCode.transactionsUnknown })
    await expect(probe).rejects.toThrow(/^could not find out whether the cluster supports transactions within 3 s \(\d+ attempts?; last: Connection error: connect ECONNREFUSED .*\); exactly_once needs them: .*--processing-guarantee at_least_once/)
    expect(logged.length).toBeGreaterThan(0)
    for (const line of logged) expect(line).toMatch(/^cannot tell yet whether the cluster supports transactions \(Connection error: connect ECONNREFUSED .*\); asking again in /)
  })
})
