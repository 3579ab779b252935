/**
 * A replicated Brook cluster of real processes on loopback: N nodes (ids 1..N), each a voter of the controller
 * quorum and a broker, on 127.0.0.1 or on an address of its own (`hosts`, so that iptables can cut links between
 * nodes), with client and controller ports chosen free before any starts or fixed from `firstPort` (the voters list
 * names them all), a new cluster id, and a data directory each. `planCluster` is the layout alone, which the tests'
 * cluster helper (test/helpers/cluster.ts) shares; `startCluster` runs it with bench/broker-process.ts.
 *
 *   node i   client listener host(i):clientPort(i)   controller listener host(i):controllerPort(i)
 *            brook start --node-id i --controller-quorum-voters 1@host(1):c1,2@...,3@... --cluster-id <id> ...
 */
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { newClusterId } from '../broker/cluster/voters.js'
import { ClusterClient } from '../client/cluster-client.js'
import { clusterStatus, type ClusterStatus } from '../client/cluster-admin.js'
import { startBroker, type BrokerProcess } from './broker-process.js'
import { drawPort } from '../cli/ports.js'

/** Every port `freePorts` has handed out in this process: never handed out again. */
const handedOut = new Set<number>()

/**
 * `count` distinct ports of `host` free now, drawn below the system's ephemeral ports where it leaves room
 * (cli/ports.ts), so that no client connection made before a node listens can take one; each is held open until all
 * are chosen, so none repeats, and none this process was given before is given again: a plan draws each node's
 * ports in a call of its own, and the nodes listen only later, so a port drawn for one node would otherwise be free
 * to draw again for the next (two voters on one port, seen once in CI).
 */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const servers: Server[] = []
  try {
    while (servers.length < count) {
      const server = createServer()
      const listening = await new Promise<boolean>((resolve, reject) => {
        const drawn = drawPort(1)
        if (drawn !== null && handedOut.has(drawn)) return resolve(false)
        server.once('error', (error: NodeJS.ErrnoException) => (drawn !== null && error.code === 'EADDRINUSE' ? resolve(false) : reject(error)))
        server.listen(drawn ?? 0, host, () => resolve(true))
      })
      if (!listening) continue
      const { port } = server.address() as { port: number }
      if (handedOut.has(port)) {
        await new Promise((resolve) => server.close(resolve))
        continue
      }
      servers.push(server)
    }
    const ports = servers.map((server) => (server.address() as { port: number }).port)
    for (const port of ports) handedOut.add(port)
    return ports
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  }
}

export interface ClusterPlan {
  readonly clusterId: string
  /** `controller.quorum.voters` as given to every node. */
  readonly voters: string
  readonly nodeIds: readonly number[]
  /** The address node `id` listens on, client and controller listeners both. */
  host(id: number): string
  clientPort(id: number): number
  controllerPort(id: number): number
  /** The `brook start` arguments of node `id` beyond host, port and data directory: identity, quorum, `extraArgs`. */
  args(id: number): string[]
}

export interface ClusterLayout {
  nodes: number
  /** More `brook start` flags, for every node. */
  extraArgs?: readonly string[]
  /** `hosts[id - 1]` is node id's address (default 127.0.0.1 for every node; a node on an address of its own can be cut off with iptables). */
  hosts?: readonly string[]
  /** Fixed ports rather than free ones: node id's client port is `firstPort + 2 * (id - 1)`, its controller port the next one. */
  firstPort?: number
}

/**
 * Ports, a cluster id and each node's arguments for a cluster of `nodes` nodes. A node's two ports are free on its
 * address when the plan is made, unless `firstPort` fixes them.
 */
export async function planCluster(options: ClusterLayout): Promise<ClusterPlan> {
  const nodeIds = Array.from({ length: options.nodes }, (_, i) => i + 1)
  const host = (id: number): string => options.hosts?.[id - 1] ?? '127.0.0.1'
  const ports = new Map<number, number[]>()
  for (const id of nodeIds) {
    const { firstPort } = options
    ports.set(id, firstPort === undefined ? await freePorts(2, host(id)) : [firstPort + 2 * (id - 1), firstPort + 2 * (id - 1) + 1])
  }
  const clientPort = (id: number): number => ports.get(id)![0]!
  const controllerPort = (id: number): number => ports.get(id)![1]!
  const clusterId = newClusterId()
  const voters = nodeIds.map((id) => `${id}@${host(id)}:${controllerPort(id)}`).join(',')
  return {
    clusterId,
    voters,
    nodeIds,
    host,
    clientPort,
    controllerPort,
    args: (id) => ['--node-id', String(id), '--controller-quorum-voters', voters, `--cluster-id=${clusterId}`, ...(options.extraArgs ?? [])],
  }
}

export interface ClusterProcesses {
  readonly plan: ClusterPlan
  /** The running process of each node (a killed node stays until it is started again). */
  readonly nodes: Map<number, BrokerProcess>
  /** `host:port` of every node, for a client's bootstrap servers. */
  readonly bootstrap: string[]
  /** Starts node `id` again on its data directory and port (after a kill). */
  restart(id: number): Promise<BrokerProcess>
  /** DescribeQuorum and DescribeCluster through node `id`'s client listener. */
  status(id: number): Promise<ClusterStatus>
  /** Kills every process (kill -9: the data directories are thrown away by the caller). */
  kill(): Promise<void>
}

/**
 * Starts a cluster laid out by `options` with data in `<dataDir>/node-<id>` (each node run with `nodeArgs` for node
 * itself), and waits until each listens.
 */
export async function startCluster(options: ClusterLayout & { dataDir: string; nodeArgs?: string[] }): Promise<ClusterProcesses> {
  const plan = await planCluster(options)
  const start = (id: number): Promise<BrokerProcess> =>
    startBroker({ dataDir: join(options.dataDir, `node-${id}`), host: plan.host(id), port: plan.clientPort(id), args: plan.args(id), nodeArgs: options.nodeArgs })
  const nodes = new Map<number, BrokerProcess>()
  const started = await Promise.allSettled(plan.nodeIds.map(start))
  for (const [i, result] of started.entries()) if (result.status === 'fulfilled') nodes.set(plan.nodeIds[i]!, result.value)
  const failed = started.find((result) => result.status === 'rejected')
  if (failed) {
    await Promise.all([...nodes.values()].map((node) => node.kill()))
    throw failed.reason
  }
  return {
    plan,
    nodes,
    bootstrap: plan.nodeIds.map((id) => `${plan.host(id)}:${plan.clientPort(id)}`),
    async restart(id) {
      const node = await start(id)
      nodes.set(id, node)
      return node
    },
    async status(id) {
      const client = await ClusterClient.connect([{ host: plan.host(id), port: plan.clientPort(id) }], { timeoutMs: 5_000 })
      try {
        return await clusterStatus(client)
      } finally {
        client.close()
      }
    },
    async kill() {
      await Promise.all([...nodes.values()].map((node) => node.kill()))
    },
  }
}
