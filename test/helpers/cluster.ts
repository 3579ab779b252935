/**
 * A replicated Brook cluster of real processes for tests: N nodes on 127.0.0.1 (or each on its own loopback address,
 * `hosts`, client and controller listeners both, so that iptables rules can cut links between nodes), each a voter
 * of the controller quorum, with client and controller ports chosen free before any starts (the voters list names
 * them all), a new cluster id, and their own data directories. Every process is killed when the test process exits,
 * as a safety net behind the test's own afterAll. The layout (addresses, ports, cluster id, each node's arguments) is
 * `planCluster` of bench/cluster-process.ts, which the cluster bench starts its nodes with too. On a machine shared
 * with other test runs that keep to port ranges of their own, BROOK_TEST_FIRST_PORT fixes the ports instead (node id's
 * client port BROOK_TEST_FIRST_PORT + 2 * (id - 1), its controller port the next one).
 */
import { Kafka, logLevel } from 'kafkajs'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { startBroker, type BrokerProcess, type StartOptions } from './broker.js'
import { waitFor } from './wait.js'
import { partitionsOf, withClient } from './kafka.js'
import { findCoordinator, type FindCoordinatorRequest, type FindCoordinatorResponse } from '../../protocol/messages/find-coordinator.js'
import type { MetadataResponsePartition } from '../../protocol/messages/metadata.js'
import { ClusterClient } from '../../client/cluster-client.js'
import { clusterStatus, type ClusterStatus } from '../../client/cluster-admin.js'
import { planCluster } from '../../bench/cluster-process.js'

export { freePorts } from '../../bench/cluster-process.js'

export interface TestCluster {
  readonly clusterId: string
  /** `controller.quorum.voters` as given to every node. */
  readonly voters: string
  readonly nodeIds: readonly number[]
  /** Node `id`'s address (client and controller listener). */
  host(id: number): string
  /** The running process of each node (a killed node stays until it is started again). */
  readonly nodes: Map<number, BrokerProcess>
  /** Node `id`'s controller listener. */
  controllerPort(id: number): number
  /** The `brook start` arguments of node `id`, beyond host, port and data directory. */
  args(id: number): string[]
  /**
   * Starts node `id` again on its data directory and port (after a kill or stop); a port held by another process is
   * tried again every 500 ms for 10 s.
   */
  restart(id: number): Promise<BrokerProcess>
  /** DescribeQuorum and DescribeCluster through node `id`'s client listener. */
  status(id: number): Promise<ClusterStatus>
  /**
   * A kafkajs client bootstrapped through the nodes of `bootstrap` (default: all), quiet, retrying every 100 ms to
   * 1 s (`retries`, default 30) so it rides out leader changes; `requestTimeout` in ms (default kafkajs's 30 s).
   */
  kafka(clientId: string, bootstrap?: readonly number[], options?: { requestTimeout?: number; retries?: number }): Kafka
  /** Kills every process and removes the data directories. */
  destroy(): Promise<void>
}

/**
 * `brook start` arguments for quick cluster tests: brokers heartbeat every 500 ms and are fenced after 3 s without one
 * (Kafka's 2 s and 9 s would make each failover wait), and a new group forms at once instead of after Kafka's 3 s
 * group.initial.rebalance.delay.ms (every reader of `readAll` is a group of its own).
 */
export const QUICK_CLUSTER_ARGS: readonly string[] = ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '3000', '--group-initial-rebalance-delay-ms', '0']

export interface ClusterOptions {
  nodes: number
  /** Arguments for every node's `brook start`. */
  extraArgs?: readonly string[]
  /** Node id -> its address, for client and controller listener (default: 127.0.0.1 for every node). */
  hosts?: readonly string[]
  /** Node id -> its data directory, for nodes whose data must be somewhere given (a tmpfs); others get a new one. */
  dataDirs?: Readonly<Record<number, string>>
  /** Every node's log.retention.ms, as startBroker takes it (default: kept for ever, TEST_LOG_RETENTION_MS). */
  logRetentionMs?: StartOptions['logRetentionMs']
  /** Node id -> environment variables added to that node's process (at every start), as startBroker's `env`. */
  env?: Readonly<Record<number, Readonly<Record<string, string>>>>
}

/**
 * Starts `nodes` cluster nodes (ids 1..n) and waits until each listens; `hosts[id - 1]` is node id's address. The
 * ports are free when chosen but closed again before the nodes bind them, so a test running beside this one may take
 * one in between: a node that finds its port in use starts the whole cluster again on new ports (three tries).
 */
export async function startCluster(options: ClusterOptions): Promise<TestCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(options)
    } catch (error) {
      if (attempt >= 3 || !/is already in use/.test((error as Error).message)) throw error
    }
  }
}

async function startClusterOnce(options: ClusterOptions): Promise<TestCluster> {
  const firstPort = process.env.BROOK_TEST_FIRST_PORT === undefined ? undefined : Number(process.env.BROOK_TEST_FIRST_PORT)
  const { clusterId, voters, nodeIds: ids, host, clientPort, controllerPort, args } = await planCluster({ ...options, firstPort })
  const nodes = new Map<number, BrokerProcess>()
  const dataDirs = new Map<number, string>()
  const started = await Promise.allSettled(ids.map((id) => startBroker({ host: host(id), port: clientPort(id), dataDir: options.dataDirs?.[id], logRetentionMs: options.logRetentionMs, args: args(id), env: options.env?.[id] })))
  for (const [i, result] of started.entries()) {
    if (result.status === 'fulfilled') {
      nodes.set(ids[i]!, result.value)
      dataDirs.set(ids[i]!, result.value.dataDir)
    }
  }
  const failed = started.find((result) => result.status === 'rejected')
  if (failed) {
    await Promise.all([...nodes.values()].map((node) => node.kill()))
    for (const [id, node] of nodes) if (options.dataDirs?.[id] === undefined) node.cleanup()
    throw failed.reason
  }
  return {
    clusterId,
    voters,
    nodeIds: ids,
    host,
    nodes,
    controllerPort,
    args,
    async restart(id) {
      // The node's ports were free while it was down: another test file's search for free ports (bench/cluster-process.ts
      // freePorts, which holds each port it tries for a moment) may hold one just then. Try again for a while.
      for (let attempt = 1; ; attempt++) {
        try {
          const node = await startBroker({ host: host(id), port: clientPort(id), dataDir: dataDirs.get(id)!, logRetentionMs: options.logRetentionMs, args: args(id), env: options.env?.[id] })
          nodes.set(id, node)
          return node
        } catch (error) {
          if (attempt >= 20 || !/is already in use/.test((error as Error).message)) throw error
          await new Promise((resolve) => setTimeout(resolve, 500))
        }
      }
    },
    async status(id) {
      const client = await ClusterClient.connect([{ host: host(id), port: clientPort(id) }], { timeoutMs: 10_000 })
      try {
        return await clusterStatus(client)
      } finally {
        client.close()
      }
    },
    kafka(clientId, bootstrap = ids, options = {}) {
      return new Kafka({
        clientId,
        brokers: bootstrap.map((id) => nodes.get(id)!.address),
        logLevel: logLevel.NOTHING,
        ...(options.requestTimeout === undefined ? {} : { requestTimeout: options.requestTimeout }),
        retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: options.retries ?? 30 },
      })
    },
    async destroy() {
      await Promise.all([...nodes.values()].map((node) => node.kill()))
      for (const node of nodes.values()) node.cleanup()
    },
  }
}

/** Waits until node 1 names an active controller and every node of `cluster` as an unfenced broker. */
export async function allUnfenced(cluster: TestCluster): Promise<void> {
  await waitFor(`${cluster.nodeIds.length} unfenced brokers`, async () => {
    const status = await cluster.status(1)
    return status.controllerId >= 0 && status.liveBrokers.length === cluster.nodeIds.length
  })
}

/**
 * One cluster for every test of the enclosing describe block (or file), for tests that each use topics and groups of
 * their own and leave every node running when they end: started before the first test and ready once every node is an
 * unfenced broker, destroyed after the last. Returns the accessor of the running cluster.
 */
export function useCluster(options: ClusterOptions): () => TestCluster {
  let cluster: TestCluster | undefined
  beforeAll(async () => {
    cluster = await startCluster(options)
    await allUnfenced(cluster)
  })
  afterAll(async () => {
    await cluster?.destroy()
  })
  return () => {
    if (cluster === undefined) throw new Error('the cluster of useCluster has not started')
    return cluster
  }
}

/**
 * A cluster of its own for each test that starts one, for tests that need a pristine cluster (other settings or
 * sizes, a fresh controller, outages of the whole cluster): `start` starts it and waits until every node is an
 * unfenced broker; it is destroyed after the test. `running()` is the running test's cluster.
 */
export function clusterPerTest(): { start(options: ClusterOptions): Promise<TestCluster>; running(): TestCluster } {
  let cluster: TestCluster | undefined
  afterEach(async () => {
    await cluster?.destroy()
    cluster = undefined
  })
  const running = (): TestCluster => {
    if (cluster === undefined) throw new Error('this test has started no cluster')
    return cluster
  }
  return {
    async start(options) {
      cluster = await startCluster(options)
      await allUnfenced(cluster)
      return cluster
    },
    running,
  }
}

/** The node FindCoordinator (v3) names as the coordinator of `key` (a CoordinatorType), once every node names the same one. */
export async function agreedCoordinator(cluster: TestCluster, key: string, keyType: number): Promise<number> {
  return waitFor(`every node to name one coordinator of ${key}`, async () => {
    const named = await Promise.all(
      cluster.nodeIds.map((id) =>
        withClient(cluster.nodes.get(id)!, async (client) => {
          const answer = await client.request<Partial<FindCoordinatorRequest>, FindCoordinatorResponse>(findCoordinator, 3, { key, keyType })
          return answer.errorCode === 0 ? answer.nodeId! : -1
        }),
      ),
    )
    return named[0]! >= 0 && named.every((id) => id === named[0]) ? named[0]! : undefined
  })
}

/**
 * `topic`'s partitions once every node describes all `partitions` of them with `replicas` replicas in sync, each led by
 * its first replica (where the controller places leaders while every node is up).
 */
export async function agreedPlacement(cluster: TestCluster, topic: string, partitions: number, replicas: number): Promise<MetadataResponsePartition[]> {
  return waitFor(`${topic}'s replicas in sync on every node`, async () => {
    const views = await Promise.all(cluster.nodeIds.map((id) => partitionsOf(cluster.nodes.get(id)!, topic)))
    const agreed = views.every((view) => view.length === partitions && view.every((p) => p.isrNodes.length === replicas && p.leaderId === p.replicaNodes[0]))
    return agreed && views[0]!
  })
}
