/**
 * `brook dev` as a user runs it: three node processes whose bootstrap servers it prints once the cluster is ready; a
 * kafkajs producer and consumer group work through them; SIGINT stops every node; run again on the same data
 * directory it starts the same cluster (same id), whose records are still there; a node that dies is reported; and
 * SIGTERM stops the rest. Its data directory refuses another number of nodes, and each node's refuses other voters or
 * a start as a single node. A data directory that is a file is a one-line error, and a node that cannot start (its port
 * taken) stops the others rather than leaving a cluster that can never be whole. A port already taken is refused in
 * one line before anything is made; a cluster that fails to come up removes what its run made and keeps what was there
 * before, so the same data directory starts once the port is free, and a failed restart leaves the cluster's data intact.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Kafka, logLevel } from 'kafkajs'
import { brook, expectOneLineError, lines, spawnBrook, until } from './run-brook.js'
import { waitFor } from '../helpers/wait.js'
import { descendants } from '../helpers/processes.js'
import { freeBasePort as freeBasePortOn } from '../../cli/dev.js'
import { LogStore } from '../../storage/log-store.js'
import { ClusterClient } from '../../client/cluster-client.js'
import { parseBootstrapServers } from '../../client/address.js'
import { clusterStatus } from '../../client/cluster-admin.js'

const TOPIC = 'dev-readings'
/** One replica per partition, its leaders spread over the three nodes: a dead node leaves one of them offline. */
const UNREPLICATED = 'dev-unreplicated'

/** A base port whose three client ports and three controller ports (100 above) are all free. */
const freeBasePort = (): Promise<number> => freeBasePortOn('127.0.0.1', 3)

/** The pids of the `brook start` processes whose data lives under `dataDir`. */
function nodePids(dataDir: string): number[] {
  const listing = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8', timeout: 10_000 })
  return listing
    .split('\n')
    .filter((line) => line.includes(' start ') && line.includes(dataDir))
    .map((line) => Number(line.trim().split(/\s+/)[0]))
}

function startDev(basePort: number, dataDir: string, more: string[] = []) {
  const dev = spawnBrook(['dev', '--base-port', String(basePort), '--data-dir', dataDir, ...more])
  const ready = (async () => {
    await until(() => /bootstrap servers (\S+)/.test(dev.stdout()) || dev.child.exitCode !== null)
    const match = /nodes up \(cluster (\S+), controller node \d+\); bootstrap servers (\S+)/.exec(dev.stdout())
    if (!match) throw new Error(`brook dev did not start: ${dev.stderr().slice(-2000)}`)
    return { clusterId: match[1]!, brokers: match[2]!.split(',') }
  })()
  return { ...dev, ready }
}

/**
 * A plain server listening on `port` of 127.0.0.1, as another program holding the port would. It closes what connects
 * (`brook dev` asking whether its cluster is up), so that its own close need not wait for those connections.
 */
function holdPort(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy())
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}

const release = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()))

/**
 * The client port (`--port`) of the next node `brook dev` starts whose port is not in `seen`, read from the node's
 * command line as soon as it is spawned (a few hundred ms, loading Brook, before the node listens on it); null once
 * `brook dev` has exited.
 */
async function nextDrawnPort(dev: ChildProcess, seen: ReadonlySet<number>): Promise<number | null> {
  while (dev.exitCode === null) {
    for (const pid of descendants(dev.pid!)) {
      let args: string[]
      try {
        args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      } catch {
        continue // the process ended since it was listed
      }
      if (!args.includes('start') || !args.includes('--port')) continue
      const port = Number(args[args.indexOf('--port') + 1])
      if (!seen.has(port)) return port
    }
    await new Promise((r) => setTimeout(r, 2))
  }
  return null
}

/** The names in `dir` and the cluster id it holds: what a failed run must leave as it was. */
function contents(dir: string): { names: string[]; clusterId: string } {
  return { names: readdirSync(dir).sort(), clusterId: readFileSync(join(dir, 'cluster-id'), 'utf8') }
}

function kafka(brokers: string[], clientId: string): Kafka {
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING, retry: { initialRetryTime: 100, retries: 12 } })
}

async function consumeAll(brokers: string[], groupId: string, count: number): Promise<string[]> {
  const values: string[] = []
  // A short fetch wait: the consumer stops once it has read everything, and its stop waits for the fetch in flight.
  const consumer = kafka(brokers, groupId).consumer({ groupId, maxWaitTimeInMs: 200 })
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void values.push(message.value!.toString()) })
    await waitFor(`${count} records`, () => values.length >= count)
  } finally {
    await consumer.disconnect()
  }
  return values.sort()
}

describe('brook dev', () => {
  /** Every test's data directories are below this one, each its own: nodePids of one never finds another's nodes. */
  const root = mkdtempSync(join(tmpdir(), 'brook-dev-'))
  afterAll(() => {
    for (const pid of nodePids(root)) process.kill(pid, 'SIGKILL')
    rmSync(root, { recursive: true, force: true })
  })

  // Two lanes side by side, since the tests mostly wait for nodes to start and a cluster to settle: the cluster run,
  // stopped and run again, and the refused and failed starts one after another.
  describe('run again', { concurrent: true }, () => {
    it.sequential('runs three nodes that kafkajs produces to and consumes from, stops them all on SIGINT, and rejoins the same cluster when run again', async () => {
      const dataDir = join(root, 'rejoined')
      const basePort = await freeBasePort()
      const first = startDev(basePort, dataDir)
      const { clusterId, brokers } = await first.ready
      expect(brokers).toEqual([0, 1, 2].map((i) => `127.0.0.1:${basePort + i}`))
      expect(readFileSync(join(dataDir, 'cluster-id'), 'utf8').trim()).toBe(clusterId)
      expect(nodePids(dataDir)).toHaveLength(3)

      const admin = kafka(brokers, 'dev-admin').admin()
      await admin.connect()
      try {
        // Without a replication factor (-1), a topic gets the cluster's default.replication.factor: min(3, nodes).
        await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: 3 }, { topic: UNREPLICATED, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true })
        const { topics } = await admin.fetchTopicMetadata({ topics: [TOPIC] })
        expect(topics[0]!.partitions.map((p) => p.replicas.length)).toEqual([3, 3, 3])
      } finally {
        await admin.disconnect()
      }
      const producer = kafka(brokers, 'dev-producer').producer()
      await producer.connect()
      const sent = Array.from({ length: 30 }, (_, i) => `reading-${String(i).padStart(2, '0')}`)
      await producer.send({ topic: TOPIC, messages: sent.map((value, i) => ({ key: `sensor-${i}`, value })) })
      await producer.disconnect()
      expect(await consumeAll(brokers, 'dev-first', sent.length)).toEqual(sent)

      // Run again on other ports while it runs: one line naming the brook dev that runs it, before any node starts.
      expectOneLineError(
        await brook(['dev', '--base-port', String(await freeBasePort()), '--data-dir', dataDir]),
        `the cluster in ${dataDir} is already running (nodes 1, 2, 3, under brook dev, pid ${first.child.pid}); \`kill ${first.child.pid}\` stops it cleanly`,
      )
      expect(nodePids(dataDir)).toHaveLength(3)

      first.child.kill('SIGINT')
      expect(await first.exited).toBe(0)
      expect(nodePids(dataDir)).toEqual([])
      expect(first.stderr()).toContain('brook dev: stopping 3 nodes')
      // The whole cluster stops: no node hands its leaderships to another that is stopping too.
      expect(first.stderr()).not.toContain('controlled shutdown')
      // Nor does a node warn that it cannot reach a voter that stopped before it. (At the start, a node may warn about
      // a voter that is not listening yet, as Kafka's NetworkClient does: only what follows the stop counts here.)
      const afterStop = first.stderr().slice(first.stderr().indexOf('brook dev: stopping 3 nodes'))
      expect(afterStop).not.toContain('cannot reach voter')
      expect(first.stderr()).toMatch(/\[node 1\] stopped/)

      // One of its nodes' directories given as a cluster's is refused, naming the cluster's data directory.
      const nodeDir = join(dataDir, 'node-1')
      expectOneLineError(
        await brook(['dev', '--base-port', String(basePort), '--data-dir', nodeDir]),
        `the data directory ${nodeDir} is a node's own data directory (it holds db/), not a cluster's: brook dev keeps a cluster id and node-N directories in its --data-dir; its cluster's data directory is ${resolve(dataDir)}`,
      )
      expect(existsSync(join(nodeDir, 'cluster-id'))).toBe(false)

      // A lost cluster id file is written back from the nodes' data: a new id would make a cluster every node refuses.
      rmSync(join(dataDir, 'cluster-id'))
      // Run again with a shorter session at the controller (Kafka's defaults are 2 s heartbeats and a 9 s session), so
      // the node killed below is fenced sooner.
      const second = startDev(basePort, dataDir, ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '3000'])
      const again = await second.ready
      expect(again.clusterId).toBe(clusterId)
      expect(second.stderr()).toContain(`brook dev: ${join(dataDir, 'cluster-id')} was missing; wrote cluster ${clusterId} back into it, from node-1's data`)
      expect(readFileSync(join(dataDir, 'cluster-id'), 'utf8').trim()).toBe(clusterId)
      // Up means every partition's leader serves: ListOffsets of every partition, asked once without a retry, is
      // answered by the leader the metadata names (the previous run's registrations, still unfenced in the metadata
      // log, no longer pass for live nodes). Its connections get 10 s, not kafkajs's 1 s: on a loaded machine a node
      // just started can take longer to answer its first connection, which is not what this checks.
      const offsets = new Kafka({ brokers: again.brokers, logLevel: logLevel.NOTHING, connectionTimeout: 10_000, retry: { retries: 0 } }).admin()
      await offsets.connect()
      try {
        const ends = await offsets.fetchTopicOffsets(TOPIC)
        expect(ends.reduce((sum, p) => sum + Number(p.high), 0)).toBe(sent.length)
      } finally {
        await offsets.disconnect()
      }
      expect(await consumeAll(again.brokers, 'dev-second', sent.length)).toEqual(sent)

      const [victim] = nodePids(dataDir)
      const victimArgs = execFileSync('ps', ['-o', 'args=', '-p', String(victim)], { encoding: 'utf8', timeout: 10_000 })
      expect(victimArgs).toContain('--broker-heartbeat-interval-ms 500 --broker-session-timeout-ms 3000')
      const victimId = Number(/--node-id (\d+)/.exec(victimArgs)![1])
      process.kill(victim!, 'SIGKILL')
      await until(() => /brook dev: node \d exited \(SIGKILL\); 2 still running/.test(second.stderr()))
      // Once the controller fences the dead node, its partition of the unreplicated topic is offline: described with no
      // leader, the others as before, and counted and named by cluster status beside the fenced node.
      const bootstrap = again.brokers.filter((broker) => !broker.endsWith(`:${basePort + victimId - 1}`)).join(',')
      // Waited for in this process first: the command below, run again every 50 ms until then, would take a core.
      await waitFor(`node ${victimId} fenced`, async () => {
        const client = await ClusterClient.connect(parseBootstrapServers(bootstrap), { timeoutMs: 10_000 })
        try {
          return !(await clusterStatus(client)).liveBrokers.some((broker) => broker.brokerId === victimId)
        } finally {
          client.close()
        }
      })
      let described = ''
      await until(async () => {
        const result = await brook(['topics', 'describe', UNREPLICATED, '--bootstrap-server', bootstrap])
        described = result.code === 0 ? result.stdout : ''
        return /Leader: none/.test(described)
      })
      expect(described.match(/Leader: none/g)).toHaveLength(1)
      expect(described.match(/Leader: \d/g)).toHaveLength(2)
      const offline = /Partition: (\d+)\tLeader: none/.exec(described)![1]
      const status = await brook(['cluster', 'status', '--bootstrap-server', bootstrap])
      expect(status.code).toBe(0)
      expect(status.stdout).toMatch(new RegExp(`^${victimId}\\s+\\S+\\s+\\S+\\s+\\S+\\s+fenced\\s+-$`, 'm'))
      expect(status.stdout).toMatch(/\tOfflinePartitions: 1\n/)
      expect(lines(status.stdout)).toContain(`Offline: ${UNREPLICATED}: ${offline}`)

      // A rolling restart by hand: brook dev printed the killed node's command, exactly as it ran it (ps shows the
      // same), and run from this directory it brings the node back as a live broker of the cluster.
      const restartLine = new RegExp(`^brook dev: to start node ${victimId} again, run from this directory \\(brook dev will not stop a node started by hand; Ctrl-C in its terminal does\\): (.+)$`, 'm')
      const restart = restartLine.exec(second.stderr())![1]!
      expect(restart).toBe(victimArgs.trim())
      const byHand = spawn('sh', ['-c', `exec ${restart}`], { stdio: 'ignore' })
      const byHandExited = new Promise((resolve) => byHand.once('exit', resolve))
      try {
        await waitFor(`node ${victimId} live again`, async () => {
          const client = await ClusterClient.connect(parseBootstrapServers(bootstrap), { timeoutMs: 10_000 })
          try {
            return (await clusterStatus(client)).liveBrokers.some((broker) => broker.brokerId === victimId)
          } finally {
            client.close()
          }
        })
        second.child.kill('SIGTERM')
        expect(await second.exited).toBe(0)
        // brook dev stopped its own nodes only, as it said.
        expect(nodePids(dataDir)).toEqual([byHand.pid])
        // Run again while that node runs: the port it holds is refused naming the node, its pid and how to stop it, and
        // so, with another base port, is the data directory it holds.
        expectOneLineError(
          await brook(['dev', '--base-port', String(basePort), '--data-dir', dataDir]),
          `port ${basePort + victimId - 1} on 127.0.0.1 is already in use (node ${victimId}'s client listener with --base-port ${basePort}); free it, or give another --base-port; a node of this cluster is still running: node ${victimId} (brook start), pid ${byHand.pid}; \`kill ${byHand.pid}\` stops it cleanly`,
        )
        const held = join(dataDir, `node-${victimId}`)
        expectOneLineError(
          await brook(['dev', '--base-port', String(await freeBasePort()), '--data-dir', dataDir]),
          `the data directory ${held} is already in use by another Brook process: node ${victimId} (brook start), pid ${byHand.pid}; \`kill ${byHand.pid}\` stops it cleanly`,
        )
      } finally {
        byHand.kill('SIGTERM')
        await byHandExited
      }
      expect(nodePids(dataDir)).toEqual([])

      // Its nodes' controller quorum cannot change: another --nodes is refused before any node starts, and each node
      // refuses another set of voters, or none (a single node would take writes the cluster later truncates).
      expectOneLineError(
        await brook(['dev', '--nodes', '1', '--base-port', String(basePort), '--data-dir', dataDir]),
        `${dataDir} holds the data of 3 nodes (node-1, node-2, node-3), not 1: a cluster's controller quorum cannot change; run it with --nodes 3, or give another --data-dir`,
      )
      const node1 = join(dataDir, 'node-1')
      expectOneLineError(
        await brook(['start', '--port', '0', '--data-dir', node1]),
        `the data directory ${node1} belongs to a node of a replicated cluster (controller quorum voters 1, 2, 3); start it with its cluster's --controller-quorum-voters (brook dev does), or give a single node another --data-dir`,
      )
      expectOneLineError(
        await brook(['start', '--node-id', '1', '--port', '0', '--data-dir', node1, '--cluster-id', clusterId, '--controller-quorum-voters', `1@127.0.0.1:${basePort + 100}`]),
        `the data directory ${node1} belongs to a cluster whose controller quorum voters are 1, 2, 3, not 1: the voters of a cluster cannot change; start it with the same voters, or use a new data directory`,
      )
    })
  })

  describe('refusing what cannot start', { concurrent: true }, () => {
    it.sequential("refuses to make a single node's data directory a cluster node's, in one line", async () => {
      const single = join(root, 'single')
      const node = spawnBrook(['start', '--port', '0', '--data-dir', join(single, 'node-1')])
      await until(() => /listening on /.test(node.stdout() + node.stderr()) || node.child.exitCode !== null)
      node.child.kill('SIGTERM')
      expect(await node.exited).toBe(0)
      const result = await brook(['dev', '--nodes', '1', '--base-port', String(await freeBasePort()), '--data-dir', single])
      expect(result.code).toBe(1)
      expect(result.stderr).toContain(`the data directory ${join(single, 'node-1')} holds a single node's data; a node of a replicated cluster needs a new data directory`)
      expect(nodePids(single)).toEqual([])
    })

    it.sequential("refuses a node's own data directory as the cluster's, in one line, making nothing in it", async () => {
      const single = join(root, 'own-node')
      const node = spawnBrook(['start', '--port', '0', '--data-dir', single])
      await until(() => /listening on /.test(node.stdout() + node.stderr()) || node.child.exitCode !== null)
      node.child.kill('SIGTERM')
      expect(await node.exited).toBe(0)
      const before = readdirSync(single).sort()
      expectOneLineError(
        await brook(['dev', '--base-port', String(await freeBasePort()), '--data-dir', single]),
        `the data directory ${single} is a node's own data directory (it holds db/), not a cluster's: brook dev keeps a cluster id and node-N directories in its --data-dir`,
      )
      expect(readdirSync(single).sort()).toEqual(before)
    })

    it.sequential('with --base-port 0, starts the nodes again on ports drawn anew when another program listens on one before its node does', async () => {
      const dataDir = join(root, 'port-drawn-again')
      const dev = spawnBrook(['dev', '--nodes', '1', '--base-port', '0', '--data-dir', dataDir])
      // The port drawn shows in the node's command line, a few hundred ms (loading Brook) before the node listens on it:
      // another program takes it then, as one did in a CI run.
      const drawn = (await nextDrawnPort(dev.child, new Set()))!
      const holder = await holdPort(drawn)
      try {
        await until(() => /bootstrap servers (\S+)/.test(dev.stdout()) || dev.child.exitCode !== null, 'brook dev to come up', { context: dev.stderr })
        expect(dev.stderr()).toContain(`port ${drawn} on 127.0.0.1 is already in use`)
        expect(dev.stderr()).toContain('brook dev: node 1 exited (code 1) before the cluster was up\n')
        expect(dev.stderr()).toContain(`brook dev: port ${drawn} was free when drawn, but another program listened on it before its node did; starting the nodes again on other free ports\n`)
        const brokers = /nodes? up \(cluster \S+, controller node 1\); bootstrap servers (\S+)/.exec(dev.stdout())![1]!.split(',')
        expect(brokers).toHaveLength(1)
        expect(brokers[0]).not.toBe(`127.0.0.1:${drawn}`)
        // The cluster serves on its new port, and the port's holder keeps it.
        const admin = kafka(brokers, 'port-taken').admin()
        await admin.connect()
        try {
          expect(await admin.createTopics({ topics: [{ topic: 'after-redraw', numPartitions: 1 }] })).toBe(true)
        } finally {
          await admin.disconnect()
        }
        expect(holder.listening).toBe(true)
        dev.child.kill('SIGINT')
        expect(await dev.exited).toBe(0)
        expect(nodePids(dataDir)).toEqual([])
      } finally {
        await release(holder)
      }
    })

    it.sequential('with --base-port 0, gives up after three starts that each lost a port to another program, saying so in one line, and exits 1', async () => {
      const dataDir = join(root, 'port-drawn-thrice')
      const dev = spawnBrook(['dev', '--nodes', '1', '--base-port', '0', '--data-dir', dataDir])
      // Every port drawn is taken before its node listens on it, as in the test above, three starts running.
      const holders: Server[] = []
      const seen = new Set<number>()
      try {
        for (let port = await nextDrawnPort(dev.child, seen); port !== null; port = await nextDrawnPort(dev.child, seen)) {
          seen.add(port)
          holders.push(await holdPort(port))
        }
        expect(await dev.exited).toBe(1)
        const drawn = [...seen]
        expect(drawn).toHaveLength(3)
        const said = dev.stderr()
        expect(lines(said).filter((line) => / exited \(code 1\) before the cluster was up$/.test(line))).toHaveLength(3)
        expect(lines(said).filter((line) => /starting the nodes again on other free ports$/.test(line))).toHaveLength(2)
        expect(lines(said).filter((line) => line.includes('gave up'))).toEqual([`brook dev: gave up after 3 starts: every start lost a port to another program (port ${drawn[2]} the last time); free some ports, or give --base-port`])
        expect(dev.stdout()).not.toMatch(/bootstrap servers/)
        expect(nodePids(dataDir)).toEqual([])
      } finally {
        await Promise.all(holders.map(release))
      }
    })

    it.sequential('refuses a session timeout no longer than the heartbeat interval in one line, making nothing', async () => {
      const dataDir = join(root, 'short-session')
      expectOneLineError(
        await brook(['dev', '--base-port', String(await freeBasePort()), '--data-dir', dataDir, '--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '1']),
        'broker.session.timeout.ms (1) must be greater than broker.heartbeat.interval.ms (500): each node would be fenced between two of its heartbeats',
      )
      expect(existsSync(dataDir)).toBe(false)
    })

    it.sequential('refuses a data directory that is a file in one line', async () => {
      const file = join(root, 'not-a-directory')
      writeFileSync(file, '')
      expectOneLineError(await brook(['dev', '--base-port', String(await freeBasePort()), '--data-dir', file]), `the data directory ${file} is a file, not a directory`)
      // Under /proc no directory can be made; Node 20's recursive mkdir would spin there for ever.
      expectOneLineError(await brook(['dev', '--base-port', String(await freeBasePort()), '--data-dir', '/proc/brook-nowhere/dev']), 'cannot make the data directory /proc/brook-nowhere/dev: ')
    })

    it.sequential('stops every node and exits 1 when a node cannot start', async () => {
      const basePort = await freeBasePort()
      const failing = join(root, 'failing')
      // Node 2's data directory is a file, so node 2 exits at once while nodes 1 and 3 start.
      mkdirSync(failing)
      writeFileSync(join(failing, 'node-2'), '')
      const result = await brook(['dev', '--base-port', String(basePort), '--data-dir', failing])
      expect(result.code).toBe(1)
      expect(result.stdout).toBe('')
      expect(result.stderr).toContain(`the data directory ${join(failing, 'node-2')} is a file, not a directory`)
      expect(result.stderr).toContain('brook dev: node 2 exited (code 1) before the cluster was up; stopping the others')
      expect(nodePids(failing)).toEqual([])
      // What the run made (the cluster id, nodes 1 and 3's directories) is gone; the file that was there stays.
      expect(readdirSync(failing)).toEqual(['node-2'])
    })

    it.sequential('refuses a port already taken in one line, making nothing, and starts on the same data directory once it is free', async () => {
      const basePort = await freeBasePort()
      const fresh = join(root, 'port-taken', 'data')
      const held = await holdPort(basePort + 1)
      try {
        expectOneLineError(
          await brook(['dev', '--base-port', String(basePort), '--data-dir', fresh]),
          `port ${basePort + 1} on 127.0.0.1 is already in use (node 2's client listener with --base-port ${basePort}); free it, or give another --base-port`,
        )
      } finally {
        await release(held)
      }
      expect(existsSync(join(root, 'port-taken'))).toBe(false)
      const dev = startDev(basePort, fresh)
      await dev.ready
      dev.child.kill('SIGINT')
      expect(await dev.exited).toBe(0)
    })

    it.sequential('removes the data directory it made when a port is taken after its check, once every node has exited', async () => {
      const basePort = await freeBasePort()
      const fresh = join(root, 'port-taken-later')
      const dev = spawnBrook(['dev', '--base-port', String(basePort), '--data-dir', fresh])
      // The directory is made after the ports are checked and right before the nodes start, which take far longer to
      // listen (hundreds of milliseconds) than this takes to see it.
      while (!existsSync(fresh) && dev.child.exitCode === null) await new Promise((resolve) => setTimeout(resolve, 1))
      const held = await holdPort(basePort + 1).catch((error: Error) => {
        throw new Error(`node 2 took its port before the test could: ${error.message}`)
      })
      try {
        expect(await dev.exited).toBe(1)
      } finally {
        await release(held)
      }
      expect(dev.stdout()).toBe('')
      expect(dev.stderr()).toContain(`brook: port ${basePort + 1} on 127.0.0.1 is already in use`)
      expect(dev.stderr()).toContain('brook dev: node 2 exited (code 1) before the cluster was up; stopping the others')
      expect(nodePids(fresh)).toEqual([])
      expect(existsSync(fresh)).toBe(false)
    })

    it.sequential("leaves an existing cluster's data as it was when its restart fails", async () => {
      const basePort = await freeBasePort()
      const existing = join(root, 'restart-fails')
      const first = startDev(basePort, existing)
      await first.ready
      first.child.kill('SIGINT')
      expect(await first.exited).toBe(0)
      const before = contents(existing)
      expect(before.names).toEqual(['cluster-id', 'node-1', 'node-2', 'node-3'])

      // A port taken now is refused before any node starts.
      const held = await holdPort(basePort + 1)
      try {
        expectOneLineError(
          await brook(['dev', '--base-port', String(basePort), '--data-dir', existing]),
          `port ${basePort + 1} on 127.0.0.1 is already in use (node 2's client listener with --base-port ${basePort})`,
        )
      } finally {
        await release(held)
      }
      expect(contents(existing)).toEqual(before)

      // Node 2 fails once started (another process has its database open) and the others are stopped: none of the
      // cluster's data was made by this run, so all of it stays.
      const store = await LogStore.open(join(existing, 'node-2'))
      try {
        const result = await brook(['dev', '--base-port', String(basePort), '--data-dir', existing])
        expect(result.code).toBe(1)
        expect(result.stderr).toContain('is already in use by another Brook process')
        expect(result.stderr).toContain('brook dev: node 2 exited (code 1) before the cluster was up')
      } finally {
        await store.close()
      }
      expect(nodePids(existing)).toEqual([])
      expect(contents(existing)).toEqual(before)
      expect(readdirSync(join(existing, 'node-1')).length).toBeGreaterThan(0)
      const again = startDev(basePort, existing)
      expect((await again.ready).clusterId).toBe(before.clusterId.trim())
      again.child.kill('SIGINT')
      expect(await again.exited).toBe(0)
    })

    it.sequential('starts a new cluster in node directories none of which holds data yet (mount points made ready for the nodes)', async () => {
      const prepared = join(root, 'prepared')
      mkdirSync(join(prepared, 'node-1'), { recursive: true })
      const dev = startDev(await freeBasePort(), prepared)
      expect((await dev.ready).brokers).toHaveLength(3)
      dev.child.kill('SIGINT')
      expect(await dev.exited).toBe(0)
      expect(readdirSync(prepared).sort()).toEqual(['cluster-id', 'node-1', 'node-2', 'node-3'])
    })

    it.sequential('names a node that holds its Ctrl-C stop (paused with SIGSTOP) and how to stop at once, then stops once it goes on', async () => {
      const dev = startDev(await freeBasePort(), join(root, 'paused-at-stop'))
      await dev.ready
      const [paused] = descendants(dev.child.pid!).filter((pid) => /--node-id 2\b/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')))
      expect(paused).toBeGreaterThan(0)
      process.kill(paused!, 'SIGSTOP')
      try {
        dev.child.kill('SIGINT')
        await until(() => /still waiting/.test(dev.stderr()))
        expect(dev.stderr()).toMatch(new RegExp(`^brook dev: still waiting for node 2 \\(pid ${paused}\\) to stop \\(a node that does not answer, paused with SIGSTOP say, holds the stop\\); Ctrl-C again stops every node at once$`, 'm'))
      } finally {
        process.kill(paused!, 'SIGCONT')
      }
      expect(await dev.exited).toBe(0)
    })

    it.sequential('says what is there, and no --nodes to run it with, when node directories are missing below the highest', async () => {
      const partial = join(root, 'partial')
      mkdirSync(join(partial, 'node-3', 'db'), { recursive: true })
      const basePort = String(await freeBasePort())
      expectOneLineError(
        await brook(['dev', '--nodes', '1', '--base-port', basePort, '--data-dir', partial]),
        `${partial} holds the data of 1 node (node-3) but no node-1, node-2: a cluster's nodes are node-1 to node-N, so no --nodes starts it; remove ${partial} if its data is not needed, or give another --data-dir`,
      )
      mkdirSync(join(partial, 'node-1'))
      expectOneLineError(
        await brook(['dev', '--nodes', '2', '--base-port', basePort, '--data-dir', partial]),
        `${partial} holds the data of 2 nodes (node-1, node-3) but no node-2: a cluster's nodes are node-1 to node-N, so no --nodes starts it`,
      )
      expect(readdirSync(partial).sort()).toEqual(['node-1', 'node-3'])
    })
  })
})
