/**
 * Bootstrapping from a list whose first server hangs (accepts connections, never answers: a stopped node, or one cut
 * off without a reset): the client tries the next server beside it after a second instead of waiting out its
 * request timeout, answers from the live node, and closes the connection it abandoned. A list of servers that all
 * refuse fails with one error naming each. A server that accepts and never answers costs the request timeout, and is
 * named as one that did not answer ApiVersions. A lone node of a three-voter cluster (no quorum, so it serves no client
 * yet) is named as such, not as a request that timed out. An answer that comes after its request timed out is dropped
 * and the connection goes on: only a correlation id the client never gave out says the peer is not Kafka. After
 * INT32_MAX the correlation ids start again at 0 and the connection goes on.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ClusterClient } from '../../client/cluster-client.js'
import { parseBootstrapServers } from '../../client/address.js'
import { KafkaClient, RequestTimedOutError } from '../../client/kafka-client.js'
import { planCluster } from '../../bench/cluster-process.js'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { waitFor } from '../helpers/wait.js'
import { connect, createTopic, fetchPartition } from '../helpers/kafka.js'

let broker: BrokerProcess
let hung: Server
const accepted: Socket[] = []
const closed: Socket[] = []

beforeAll(async () => {
  broker = await startBroker()
  hung = createServer((socket) => {
    accepted.push(socket)
    socket.on('close', () => closed.push(socket))
    socket.on('error', () => {})
    // Read (and ignore) the request, so that the client's close shows here.
    socket.resume()
  })
  await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve))
})

afterAll(async () => {
  for (const socket of accepted) socket.destroy()
  await new Promise((resolve) => hung.close(resolve))
  await broker.kill()
  broker.cleanup()
})

describe('bootstrap servers', () => {
  it('goes on to the next server while the first hangs, and closes the abandoned connection', async () => {
    const hungPort = (hung.address() as { port: number }).port
    // A request timeout far longer than the test's: waiting it out would fail the test.
    const cluster = await ClusterClient.connect(parseBootstrapServers(`127.0.0.1:${hungPort},${broker.address}`), { timeoutMs: 300_000 })
    try {
      expect(cluster.any.address).toBe(broker.address)
      const answer = await cluster.metadata(null, { allowAutoTopicCreation: false })
      expect(answer.brokers.map((b) => `${b.host}:${b.port}`)).toEqual([broker.address])
      expect(accepted.length).toBe(1)
      await waitFor('the hung connection closed by the client', () => closed.length === 1)
    } finally {
      cluster.close()
    }
  }, 60_000)

  it('fails with one error naming every server when none answers', async () => {
    const free = createServer()
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve))
    const port = (free.address() as { port: number }).port
    await new Promise((resolve) => free.close(resolve))
    const refused = ClusterClient.connect(parseBootstrapServers(`127.0.0.1:${port},127.0.0.1:${port}`), { timeoutMs: 5000 })
    await expect(refused).rejects.toThrow(`cannot connect to a broker at 127.0.0.1:${port}: ECONNREFUSED; cannot connect to a broker at 127.0.0.1:${port}: ECONNREFUSED`)
  })

  it('says a server that accepts the connection and never answers did not answer ApiVersions, once its timeout passes', async () => {
    const hungPort = (hung.address() as { port: number }).port
    // Also what a partition's leader paused with SIGSTOP (or hung) gives `topics describe` and `groups describe`: its
    // kernel accepts the connection.
    await expect(KafkaClient.connect('127.0.0.1', hungPort, { timeoutMs: 1000 })).rejects.toThrow(
      `127.0.0.1:${hungPort} accepted the connection but did not answer ApiVersions within 1 s: it is not a Kafka listener, a node paused or hung, or a cluster node not serving clients yet`,
    )
  })

  it('says why a node that accepted the connection never answers: a cluster node serves no client before its quorum has a leader', async () => {
    const plan = await planCluster({ nodes: 3 })
    const lone = await startBroker({ port: plan.clientPort(1), args: plan.args(1) })
    try {
      const hanging = KafkaClient.connect('127.0.0.1', lone.port, { timeoutMs: 2000 })
      await expect(hanging).rejects.toThrow(
        `${lone.address} accepted the connection but did not answer ApiVersions within 2 s: it is not a Kafka listener, a node paused or hung, or a cluster node not serving clients yet`,
      )
    } finally {
      await lone.kill()
      lone.cleanup()
    }
  })

  it('starts its correlation ids again at 0 after INT32_MAX, and goes on on the same connection', async () => {
    await createTopic(broker, 'wrapped-ids')
    const client = await connect(broker)
    try {
      // A replica connection sends about a thousand requests a second: 2^31 of them take weeks, not a test.
      ;(client as unknown as { correlationId: number }).correlationId = 2 ** 31 - 2
      const at = { topic: 'wrapped-ids', partition: 0, offset: 0n }
      // Ids 2^31 - 2, 2^31 - 1, then 0 and 1: before, encoding the third threw a RangeError.
      for (let i = 0; i < 4; i++) expect(await fetchPartition(client, at)).toMatchObject({ errorCode: 0, highWatermark: 0n })
      expect((client as unknown as { correlationId: number }).correlationId).toBe(2)
      expect(client.failed).toBe(false)
    } finally {
      client.close()
    }
  })

  it('drops an answer that comes after its request timed out, and goes on on the same connection', async () => {
    await createTopic(broker, 'late-answers')
    const client = await connect(broker, { timeoutMs: 1000 })
    try {
      // A long poll the broker holds longer than the client waits: its answer comes a second after the timeout.
      const late = { topic: 'late-answers', partition: 0, offset: 0n }
      await expect(fetchPartition(client, { ...late, maxWaitMs: 2000 })).rejects.toThrow(RequestTimedOutError)
      await new Promise((resolve) => setTimeout(resolve, 1500))
      expect(client.failed).toBe(false)
      expect(await fetchPartition(client, late)).toMatchObject({ errorCode: 0, highWatermark: 0n })
    } finally {
      client.close()
    }
  })
})
