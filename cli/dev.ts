/**
 * `brook dev`: a replicated cluster on this machine for development, as one command. It starts N `brook start`
 * processes (node ids 1..N), each a voter of the controller quorum:
 *
 *   node i   client listener 127.0.0.1:<base-port + i - 1>    controller listener 127.0.0.1:<base-port + 100 + i - 1>
 *            data in <data-dir>/node-i
 *
 * The ports follow from `--base-port` alone, so a restart with the same flags gives every node the address the
 * others knew it by. `--base-port 0` (tests, a second cluster beside one on 9092) takes a base port whose N client
 * and N controller ports are free at that moment; the bootstrap line says which. The cluster id is made once and kept in `<data-dir>/cluster-id` (written back from node-1's data should it go missing): `brook dev` run again on the
 * same data directory starts the same cluster, and each node rejoins on its own data. Once every node listens, the
 * quorum has a leader, every node is a registered, unfenced broker and every partition's leader serves it, it prints
 * the bootstrap servers on stdout;
 * the nodes' own log lines go to its stderr.
 *
 * Every node is given `default.replication.factor` = min(3, N), as Kafka gives its internal topics
 * (offsets.topic.replication.factor, capped at the brokers): topics created with the cluster's defaults (by kcat's
 * auto-creation, kafkajs without a replication factor, the simulator and the processor, which ask for -1 as Kafka
 * Streams' replication.factor does) survive the loss of a node, which is what a replicated cluster is run to show.
 *
 * Each node runs in a process group of its own with an IPC channel to `brook dev`: Ctrl-C (or SIGTERM, SIGHUP)
 * reaches `brook dev` only, which stops every node with SIGTERM (a clean stop each) and ends when all are gone; should
 * `brook dev` itself be killed, the channels close and the nodes stop as on SIGTERM. Started in turn by a Node
 * program with an IPC channel (`brook demo`), `brook dev` stops its nodes the same way when that channel closes: the
 * program's end, even by kill -9, leaves no node behind. A node that exits on its own is
 * reported on stderr with its exit code and the command that starts it again (for a rolling restart; a node started
 * so is not `brook dev`'s to stop); the others keep running, and `brook dev` ends (code 1) when none is left.
 * A node that exits before the cluster is up (its port in use, its data directory unusable) stops the others: a
 * cluster that can never be whole is not left half started. Nor is its data: once every node has exited, what this
 * run made (the data directory, or in one that existed its cluster id file and the node directories not there
 * before) is removed, and what existed before the run is kept, so a failed restart of a cluster leaves its data as it
 * was. With a fixed `--base-port`, a port already taken is refused before anything is made (`--base-port 0` takes
 * free ones); one taken between that check and its node's listen is such a failed start, after which `--base-port 0`
 * starts the nodes again, on the same data, on ports drawn anew (PORT_DRAWS starts at most). When the last start
 * loses a port too, it says that it gave up and why in one line on stderr, and exits 1.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import type { CommandUnknownOpts } from '@commander-js/extra-typings'
import { Option } from '@commander-js/extra-typings'
import { DEFAULT_CONFIG } from '../broker/config.js'
import { checkClusterId, newClusterId } from '../broker/cluster/voters.js'
import { brookNodeId, dataDirectoryHolder, dataDirectoryLockHolder, holderText, processArgs, runsBrook, storedClusterId, type LockHolder } from '../broker/data-directory.js'
import type { ClusterClient } from '../client/cluster-client.js'
import { IsolationLevel, OffsetSpec } from '../protocol/constants.js'
import { ErrorCode } from '../protocol/errors.js'
import { BROOK_PROGRAM } from './demo-cluster.js'
import { removeIfTemporary } from './testing.js'
import { integer } from './parsers.js'
import { ignoreOutputErrors, noticeIfSlowStop, onParentEnd, onStopSignal, STOP_WITH_CLUSTER, tellParent } from './interrupt.js'
import { LOG_LEVELS, NUMERIC_SETTINGS, checkHeartbeats } from './start-options.js'
import { counted } from '../client/wording.js'
import { drawPort, portFree, systemFreePort } from './ports.js'
import { hostPort } from '../client/address.js'

/** How far above a node's client port its controller listener is. */
export const CONTROLLER_PORT_OFFSET = 100
/** The most nodes a `brook dev` cluster has. */
export const MAX_NODES = 9
/** The highest base port: node MAX_NODES's controller listener must still be a port. */
export const MAX_BASE_PORT = 65535 - CONTROLLER_PORT_OFFSET - MAX_NODES
const READY_POLL_MS = 250
/**
 * How long, once the nodes are up, the announcement waits for every partition to be led by its preferred replica with
 * its whole ISR, and then for every leader to serve its partitions (`unsettledPartition`), before it is made anyway.
 */
const PREFERRED_WAIT_MS = 15_000
const SERVING_WAIT_MS = 45_000
/** Base ports `--base-port 0` tries before it gives up. */
const FREE_BASE_PORT_ATTEMPTS = 50
/** How many times, at most, `--base-port 0` starts the nodes: again on ports drawn anew when one was taken meanwhile. */
const PORT_DRAWS = 3

/**
 * What `brook dev --help` says of a `brook start` setting it hands to every node when given (the heartbeat interval
 * and session timeout of nodes at the active controller: a shorter session shows a lost node sooner; a new group's
 * first rebalance delay, 0 in tests), with start's bounds for its parser.
 */
function passedSetting(key: 'brokerHeartbeatIntervalMs' | 'brokerSessionTimeoutMs' | 'groupInitialRebalanceDelayMs'): { description: string; parse: (value: string) => number } {
  const setting = NUMERIC_SETTINGS.find((s) => s.key === key)!
  const what = setting.description.replace(/^with --controller-quorum-voters: /, '')
  return { description: `${setting.kafkaName} of every node: ${what} (default: ${DEFAULT_CONFIG[key]})`, parse: integer(setting.flag, setting.min, setting.max) }
}
const HEARTBEAT = passedSetting('brokerHeartbeatIntervalMs')
const SESSION = passedSetting('brokerSessionTimeoutMs')
const REBALANCE_DELAY = passedSetting('groupInitialRebalanceDelayMs')

/** The addresses of node `id` (1-based) of a `brook dev` cluster on `basePort`. */
export function devNodePorts(basePort: number, id: number): { port: number; controllerPort: number } {
  return { port: basePort + id - 1, controllerPort: basePort + CONTROLLER_PORT_OFFSET + id - 1 }
}

/** Node `id`'s data directory in the cluster's data directory. */
function nodeDataDir(dataDir: string, id: number): string {
  return join(dataDir, `node-${id}`)
}

/** Every port of a cluster of `nodes` nodes on `basePort`, each with what listens on it. */
function clusterPorts(basePort: number, nodes: number): { port: number; listener: string }[] {
  return Array.from({ length: nodes }, (_, i) => devNodePorts(basePort, i + 1)).flatMap(({ port, controllerPort }, i) => [
    { port, listener: `node ${i + 1}'s client listener` },
    { port: controllerPort, listener: `node ${i + 1}'s controller listener` },
  ])
}

/** The first port of a cluster of `nodes` nodes on `basePort` that is taken now, or undefined when all are free. */
async function firstTakenPort(host: string, basePort: number, nodes: number): Promise<{ port: number; listener: string } | undefined> {
  const ports = clusterPorts(basePort, nodes)
  const free = await Promise.all(ports.map(({ port }) => portFree(host, port)))
  return ports.find((_, i) => !free[i])
}

/**
 * Refuses a `--base-port` one of whose ports is taken now, before anything is made: a node started on it could only
 * fail. Throws a one-line message naming the first such port.
 */
async function checkPortsFree(host: string, basePort: number, nodes: number, dataDir: string): Promise<void> {
  const taken = await firstTakenPort(host, basePort, nodes)
  if (!taken) return
  // Most often the holder is a node of this very cluster, left running (started by hand, or by a brook dev killed
  // with kill -9): its data directory's lock names it, where another --base-port would only meet that lock next.
  const running = Array.from({ length: nodes }, (_, i) => dataDirectoryHolder(nodeDataDir(dataDir, i + 1))).find((holder) => holder !== null)
  const still = running ? `; a node of this cluster is still running: ${running}` : ''
  throw new Error(`port ${taken.port} on ${host} is already in use (${taken.listener} with --base-port ${basePort}); free it, or give another --base-port${still}`)
}

/**
 * Refuses a data directory some of whose nodes are running now (`brook start` processes: a brook dev on other ports,
 * or nodes started by hand), before anything starts: each node would otherwise fail on its lock, a line each. One
 * line, naming the brook dev that runs them when one does, else the first node running and how to stop it. A
 * directory held by another program is left to the node, whose own error names it.
 */
function checkNotRunning(dataDir: string, nodes: number): void {
  const running = Array.from({ length: nodes }, (_, i) => ({ id: i + 1, holder: dataDirectoryLockHolder(nodeDataDir(dataDir, i + 1)) })).filter(
    (node): node is { id: number; holder: LockHolder } => node.holder !== null && brookNodeId(node.holder) !== null,
  )
  if (running.length === 0) return
  const parents = new Set(running.map(({ holder }) => parentPid(holder.pid)))
  const [parent] = parents
  if (parents.size === 1 && parent !== undefined && parent !== null && runsBrook(processArgs(parent), 'dev')) {
    const ids = running.map(({ id }) => id)
    throw new Error(`the cluster in ${dataDir} is already running (${ids.length > 1 ? 'nodes' : 'node'} ${ids.join(', ')}, under brook dev, pid ${parent}); \`kill ${parent}\` stops it cleanly`)
  }
  const first = running[0]!
  throw new Error(`the data directory ${nodeDataDir(dataDir, first.id)} is already in use by another Brook process: ${holderText(first.holder)}`)
}

/** A process's parent (from /proc/<pid>/stat), or null when it cannot be read. */
function parentPid(pid: number): number | null {
  try {
    // pid (comm) state ppid ...: the command name may hold spaces and parentheses, so the fields after its last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return null
  }
}

/**
 * A base port for `nodes` nodes on `host` whose client and controller ports are all free now. It is drawn at random
 * below the system's ephemeral ports, so that no client connection made meanwhile (on this machine, by any
 * program) can take one of them before the nodes listen; where that leaves no room, one the system hands out as
 * free. Free now is not free later (another program may listen on one first; that node then fails to start, as on a
 * taken fixed port, and `brook dev` draws again). Throws a one-line message after FREE_BASE_PORT_ATTEMPTS tries.
 */
export async function freeBasePort(host: string, nodes: number): Promise<number> {
  for (let attempt = 0; attempt < FREE_BASE_PORT_ATTEMPTS; attempt++) {
    const base = drawPort(CONTROLLER_PORT_OFFSET + nodes, MAX_BASE_PORT) ?? (await systemFreePort(host))
    if (base > MAX_BASE_PORT) continue
    if ((await firstTakenPort(host, base, nodes)) === undefined) return base
  }
  throw new Error(`found no ${nodes * 2} free ports for the cluster on ${host} in ${FREE_BASE_PORT_ATTEMPTS} tries; give --base-port`)
}

/**
 * The cluster id kept in the data directory, made (and written) the first time. A missing file beside node directories
 * is written again from the lowest node's data (a new id would make a cluster their data does not belong to, which
 * every node would refuse). Throws a one-line message.
 */
async function clusterIdOf(dataDir: string): Promise<string> {
  if (existsSync(dataDir) && !statSync(dataDir).isDirectory()) throw new Error(`the data directory ${dataDir} is a file, not a directory`)
  const file = join(dataDir, 'cluster-id')
  if (existsSync(file)) {
    const id = readFileSync(file, 'utf8').trim()
    try {
      checkClusterId(id)
    } catch (error) {
      throw new Error(`${file} does not hold a cluster id: ${(error as Error).message}`)
    }
    return id
  }
  // The node directories' databases keep the id (a node directory without one, or a file, is its node's start to refuse).
  const nodeDirs = existsSync(dataDir) ? readdirSync(dataDir).filter((name) => /^node-[1-9]\d*$/.test(name)) : []
  for (const name of nodeDirs.sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))) {
    const kept = await storedClusterId(join(dataDir, name)).catch((error: Error) => {
      throw new Error(`${file} is missing, and the cluster id ${name}'s data keeps could not be read: ${error.message}`)
    })
    if (kept === undefined) continue
    writeFileSync(file, `${kept}\n`)
    process.stderr.write(`brook dev: ${file} was missing; wrote cluster ${kept} back into it, from ${name}'s data\n`)
    return kept
  }
  // One level at a time: Node 20's recursive mkdir spins for ever under a parent that takes no directories (/proc).
  try {
    for (const path of missingDirectories(dataDir)) mkdirSync(path)
  } catch (error) {
    throw new Error(`cannot make the data directory ${dataDir}: ${(error as Error).message}`)
  }
  const id = newClusterId()
  writeFileSync(file, `${id}\n`)
  return id
}

/**
 * Refuses a node's own data directory (a `brook start` or `brook dev` node's, which holds its LevelDB database in `db/`,
 * storage/database.ts `databaseDir`) given as the cluster's: a new cluster would be made inside that node's data.
 * Throws a one-line message naming the directory that holds it.
 */
function checkNotNodeDataDir(dataDir: string): void {
  if (!existsSync(join(dataDir, 'db'))) return
  const parent = dirname(resolve(dataDir))
  const hint = /^node-[1-9]\d*$/.test(basename(resolve(dataDir))) && existsSync(join(parent, 'cluster-id'))
    ? `; its cluster's data directory is ${parent}`
    : ''
  throw new Error(`the data directory ${dataDir} is a node's own data directory (it holds db/), not a cluster's: brook dev keeps a cluster id and node-N directories in its --data-dir${hint}`)
}

/**
 * Refuses a data directory that holds the nodes of a cluster of another size: the nodes' controller quorum voters
 * cannot change, and new, empty voters could outvote the old ones and elect a leader whose metadata log has no topics
 * (each node refuses it too, broker.ts `loadIdentity`; this says so before any node starts). Node directories that
 * are not node-1 to node-K (some missing) are no cluster any --nodes could start, and the message says so rather than
 * name a --nodes that would be refused in turn. Throws a one-line message.
 */
function checkNodeCount(dataDir: string, nodes: number): void {
  // A data directory that is a file is clusterIdOf's to refuse.
  if (!existsSync(dataDir) || !statSync(dataDir).isDirectory()) return
  const existing = readdirSync(dataDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && /^node-[1-9]\d*$/.test(entry.name))
    .map((entry) => Number(entry.name.slice('node-'.length)))
    .sort((a, b) => a - b)
  const whole = existing.every((id, i) => id === i + 1)
  if (existing.length === 0 || (existing.length === nodes && whole)) return
  // Node directories none of which holds a database (mount points made ready for the nodes) are a new cluster.
  if (existing.every((id) => !existsSync(join(nodeDataDir(dataDir, id), 'db')))) return
  const held = `${dataDir} holds the data of ${counted(existing.length, 'node')} (${existing.map((id) => `node-${id}`).join(', ')})`
  if (whole) {
    throw new Error(`${held}, not ${nodes}: a cluster's controller quorum cannot change; run it with --nodes ${existing.length}, or give another --data-dir`)
  }
  const missing = Array.from({ length: existing.at(-1)! }, (_, i) => i + 1).filter((id) => !existing.includes(id))
  throw new Error(
    `${held} but no ${missing.map((id) => `node-${id}`).join(', ')}: a cluster's nodes are node-1 to node-N, so no --nodes starts it; ` +
      `remove ${dataDir} if its data is not needed, or give another --data-dir`,
  )
}

/** `dir` and its parents that do not exist, the topmost first (empty when `dir` exists). */
function missingDirectories(dir: string): string[] {
  const missing: string[] = []
  for (let path = resolve(dir); !existsSync(path) && dirname(path) !== path; path = dirname(path)) missing.unshift(path)
  return missing
}

/**
 * What this run is about to make of the data directory, found before it makes any: the topmost directory of its
 * path that does not exist (the data directory or a parent), or, in a data directory that exists, the cluster id
 * file and the node directories not there yet. `remove()` removes them again, for a cluster that never came up;
 * call it only once every node has exited, so that none still writes in its directory; what it cannot remove it says
 * on stderr. What existed before the run is never among them.
 */
function madeByThisRun(dataDir: string, nodes: number): { remove: () => void } {
  const [topmostMissing] = missingDirectories(dataDir)
  const made =
    topmostMissing !== undefined
      ? [topmostMissing]
      : [join(dataDir, 'cluster-id'), ...Array.from({ length: nodes }, (_, i) => nodeDataDir(dataDir, i + 1))].filter((path) => !existsSync(path))
  const remove = (path: string): void => {
    try {
      rmSync(path, { recursive: true, force: true })
    } catch (error) {
      process.stderr.write(`brook dev: cannot remove ${path}, which this run made: ${(error as Error).message}\n`)
    }
  }
  return { remove: () => made.forEach(remove) }
}

export function addDevCommand(program: CommandUnknownOpts): void {
  program
    .command('dev')
    .description(`run a replicated cluster of N nodes on this machine until Ctrl-C (client ports from --base-port, controller listeners ${CONTROLLER_PORT_OFFSET} above them, data in <data-dir>/node-N); a restart on the same data directory rejoins it`)
    .addOption(new Option('--nodes <n>', 'how many nodes, each a controller quorum voter and a broker').default(3).argParser(integer('--nodes', 1, MAX_NODES)))
    .addOption(new Option('--base-port <port>', 'client port of node 1; node N listens on base-port + N - 1 (0: ports free now, printed with the bootstrap servers)').default(9092).argParser(integer('--base-port', 0, MAX_BASE_PORT)))
    .option('--data-dir <dir>', 'where the cluster keeps its cluster id and each node its data (node-N)', './.brook')
    .addOption(new Option('--log-level <level>', `the nodes' log level (default: ${DEFAULT_CONFIG.logLevel})`).choices(LOG_LEVELS))
    .addOption(new Option('--broker-heartbeat-interval-ms <ms>', HEARTBEAT.description).argParser(HEARTBEAT.parse))
    .addOption(new Option('--broker-session-timeout-ms <ms>', SESSION.description).argParser(SESSION.parse))
    .addOption(new Option('--group-initial-rebalance-delay-ms <ms>', REBALANCE_DELAY.description).argParser(REBALANCE_DELAY.parse))
    .action(async (options) => {
      const host = DEFAULT_CONFIG.host
      // Before the cluster id file is made: a refused data directory, or refused ports, leave it as it was.
      checkHeartbeats(options)
      checkNotNodeDataDir(options.dataDir)
      checkNodeCount(options.dataDir, options.nodes)
      if (options.basePort !== 0) await checkPortsFree(host, options.basePort, options.nodes, options.dataDir)
      checkNotRunning(options.dataDir, options.nodes)
      let basePort = options.basePort === 0 ? await freeBasePort(host, options.nodes) : options.basePort
      const made = madeByThisRun(options.dataDir, options.nodes)
      const clusterId = await clusterIdOf(options.dataDir)
      const ids = Array.from({ length: options.nodes }, (_, i) => i + 1)
      const replicationFactor = String(Math.min(3, options.nodes))
      const children = new Map<number, ChildProcess>()
      /** The nodes that said the controller unfenced them (this start's registration, not one kept in the metadata log). */
      const unfenced = new Set<number>()
      // Below info the nodes do not say so; the metadata alone then decides.
      const logsUnfenced = ['info', 'debug'].includes(options.logLevel ?? DEFAULT_CONFIG.logLevel)
      /** Which start of the nodes this is: the first, or one on ports drawn again (see `launch`). */
      let start = 0
      let stopping = false
      /** Whether a stop was asked for (a signal, the parent's end), as against the stop of a failed start. */
      let stopAsked = false
      let up = false
      let failed = false
      /** A port of this start's that another program took before its node listened on it (`--base-port 0`). */
      let portTaken: number | undefined
      let done: (code: number) => void = () => undefined
      const finished = new Promise<number>((resolve) => (done = resolve))
      const stopAll = (signal: NodeJS.Signals): void => {
        for (const child of children.values()) if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      }
      // Should this process end without stopping the nodes (an error that escapes), they end with it.
      const killOnExit = (): void => stopAll('SIGKILL')
      process.on('exit', killOnExit)
      /** Stops every node still running together: without a controlled shutdown (STOP_WITH_CLUSTER), else SIGTERM. */
      const stopCluster = (): void => {
        for (const child of children.values()) {
          if (child.exitCode !== null || child.signalCode !== null) continue
          if (!child.connected || !child.send(STOP_WITH_CLUSTER)) child.kill('SIGTERM')
        }
      }
      const stop = (): void => {
        stopAsked = true
        if (stopping) return
        stopping = true
        process.stderr.write(`brook dev: stopping ${counted(children.size, 'node')}\n`)
        stopCluster()
        // A node that does not answer (paused with SIGSTOP, say) would hold the stop without a word.
        noticeIfSlowStop(() => {
          const left = [...children].filter(([, child]) => child.exitCode === null && child.signalCode === null)
          if (left.length === 0) return null
          const named = left.map(([id, child]) => `node ${id} (pid ${child.pid})`).join(', ')
          return `brook dev: still waiting for ${named} to stop (a node that does not answer, paused with SIGSTOP say, holds the stop); Ctrl-C again stops every node at once`
        })
      }
      // Output that fails (a reader of its output gone) is dropped: the cluster serves on, as each node does.
      ignoreOutputErrors()
      const removeSignals = onStopSignal({ stop, force: () => stopAll('SIGKILL') })
      // The program that started this one is gone (even by kill -9, even while this one loaded): a clean stop, with
      // nobody left to read the output.
      onParentEnd(stop)
      /** Whether this start failed because another program took one of its drawn ports (`--base-port 0`). */
      const lostPort = (): boolean => failed && !stopAsked && options.basePort === 0 && portTaken !== undefined
      /** Whether the nodes start again on ports drawn anew, once every node of a failed start has exited. */
      const drawAgain = (): boolean => lostPort() && start < PORT_DRAWS
      /**
       * Starts every node on `basePort`'s ports. With `--base-port 0`, ports free when drawn may be taken by another
       * program before a node listens on one; the start then fails as any other, and once every node has exited the
       * nodes start again, on the same data, on ports drawn anew (at most PORT_DRAWS starts in all).
       */
      const launch = (): void => {
        const thisStart = ++start
        const voters = ids.map((id) => `${id}@${hostPort(host, devNodePorts(basePort, id).controllerPort)}`).join(',')
        const bootstrap = ids.map((id) => hostPort(host, devNodePorts(basePort, id).port)).join(',')
        const ports = new Set(clusterPorts(basePort, options.nodes).map(({ port }) => port))
        for (const id of ids) {
          const { port } = devNodePorts(basePort, id)
          const args = ['start', '--node-id', String(id), '--host', host, '--port', String(port), '--data-dir', nodeDataDir(options.dataDir, id), '--controller-quorum-voters', voters, `--cluster-id=${clusterId}`, '--default-replication-factor', replicationFactor]
          if (options.logLevel !== undefined) args.push('--log-level', options.logLevel)
          if (options.brokerHeartbeatIntervalMs !== undefined) args.push('--broker-heartbeat-interval-ms', String(options.brokerHeartbeatIntervalMs))
          if (options.brokerSessionTimeoutMs !== undefined) args.push('--broker-session-timeout-ms', String(options.brokerSessionTimeoutMs))
          if (options.groupInitialRebalanceDelayMs !== undefined) args.push('--group-initial-rebalance-delay-ms', String(options.groupInitialRebalanceDelayMs))
          const child = spawn(process.execPath, [BROOK_PROGRAM, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true })
          // Through this process, whose output errors are dropped after SIGHUP: a node never writes to a closed terminal.
          child.stdout!.pipe(process.stderr, { end: false })
          child.stderr!.pipe(process.stderr, { end: false })
          watchLines(child, (line) => {
            if (UNFENCED.test(line)) unfenced.add(id)
            const taken = PORT_IN_USE.exec(line)
            if (taken !== null && ports.has(Number(taken[1]))) portTaken ??= Number(taken[1])
          })
          children.set(id, child)
          child.once('exit', (code, signal) => {
            children.delete(id)
            const exit = `brook dev: node ${id} exited (${signal ?? `code ${code}`})`
            if (!stopping && !up) {
              stopping = true
              failed = true
              process.stderr.write(`${exit} before the cluster was up${children.size > 0 ? '; stopping the others' : ''}\n`)
              stopCluster()
            } else if (!stopping) {
              process.stderr.write(`${exit}${children.size > 0 ? `; ${children.size} still running` : '; it was the last node this brook dev started, so it stops too (run it again with the same flags to start the cluster again)'}\n`)
              // A rolling restart, as with Kafka: the node's own command, which `ps` would otherwise be the only place to
              // read. Given for the last node too: nodes started by hand may still be running, which this one may rejoin.
              process.stderr.write(`brook dev: to start node ${id} again, run from this directory (brook dev will not stop a node started by hand; Ctrl-C in its terminal does): ${shellCommand([process.execPath, BROOK_PROGRAM, ...args])}\n`)
            }
            if (children.size > 0) return
            if (drawAgain()) {
              process.stderr.write(`brook dev: port ${portTaken} was free when drawn, but another program listened on it before its node did; starting the nodes again on other free ports\n`)
              void freeBasePort(host, options.nodes).then(
                (drawn) => {
                  if (stopAsked) return end()
                  basePort = drawn
                  stopping = failed = false
                  portTaken = undefined
                  unfenced.clear()
                  launch()
                },
                (error: Error) => {
                  process.stderr.write(`brook dev: ${error.message}\n`)
                  end()
                },
              )
              return
            }
            // The last draw lost its port too: said in one line, as the run would otherwise end on the node's exit alone.
            if (lostPort()) process.stderr.write(`brook dev: gave up after ${counted(start, 'start')}: every start lost a port to another program (port ${portTaken} the last time); free some ports, or give --base-port\n`)
            end()
          })
        }
        void announceWhenReady({ bootstrap, nodes: options.nodes, clusterId, allUnfenced: () => !logsUnfenced || unfenced.size === options.nodes, still: () => start === thisStart && !stopping && children.size > 0 }).then((ready) => {
          if (start === thisStart) up = ready
        })
      }
      /** Every node has exited for good: none writes in its directory any more. A directory brook/testing's startBrook made goes with the cluster. */
      const end = (): void => {
        if (failed) made.remove()
        removeIfTemporary(options.dataDir)
        done(stopping && !failed ? 0 : 1)
      }
      launch()
      const code = await finished
      removeSignals()
      process.off('exit', killOnExit)
      process.exitCode = code
    })
}

/** `words` as a POSIX shell reads them back: each quoted only when it holds more than letters, digits and `@%+=:,./-`. */
function shellCommand(words: readonly string[]): string {
  return words.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`)).join(' ')
}

/** The line a node logs when the controller unfences its registration (broker/cluster/broker-lifecycle.ts). */
const UNFENCED = /\] unfenced by the controller /
/** The line a node prints when one of its ports is taken (broker/acceptor.ts). */
const PORT_IN_USE = /\bport (\d+) on \S+ is already in use\b/

/** Calls `onLine` with each whole line the node writes (stdout or stderr). */
function watchLines(child: ChildProcess, onLine: (line: string) => void): void {
  for (const stream of [child.stdout!, child.stderr!]) {
    let pending = ''
    stream.on('data', (chunk: Buffer) => {
      pending += chunk.toString()
      const lines = pending.split('\n')
      pending = lines.pop()!
      lines.forEach(onLine)
    })
  }
}

/**
 * Prints the bootstrap servers once the cluster is ready, asking the nodes in turn while `still()` holds: a quorum
 * leader, every node a live broker in the metadata, and every node unfenced in this run (`allUnfenced()`). The
 * metadata alone does not tell: after a restart of the whole cluster it still holds the previous run's registrations,
 * unfenced, until each node registers again (with `--log-level` warn or error the nodes do not log it, and the
 * metadata decides). Then, as `unsettledPartition` says, every partition led where it will stay and served by its
 * leader, so that the first client does not meet leaderships still moving; past SERVING_WAIT_MS it is printed anyway,
 * with what is not settled on stderr. True once printed, false when `still()` stopped holding first.
 */
async function announceWhenReady(options: { bootstrap: string; nodes: number; clusterId: string; allUnfenced: () => boolean; still: () => boolean }): Promise<boolean> {
  const servers = options.bootstrap.split(',').map((server) => {
    const [host, port] = server.split(':')
    return { host: host!, port: Number(port) }
  })
  // Brook's client, loaded once nodes are starting: `brook dev` refused, or its --help, loads none of it.
  const [{ ClusterClient }, { clusterStatus }] = await Promise.all([import('../client/cluster-client.js'), import('../client/cluster-admin.js')])
  let upSince: number | undefined
  for (let attempt = 0; options.still(); attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS))
    const server = servers[attempt % servers.length]!
    try {
      const client = await ClusterClient.connect([server], { timeoutMs: 2000 })
      try {
        const status = await clusterStatus(client)
        if (status.controllerId >= 0 && status.liveBrokers.length === options.nodes && options.allUnfenced()) {
          upSince ??= Date.now()
          const unsettled = await unsettledPartition(client, Date.now() - upSince < PREFERRED_WAIT_MS)
          if (unsettled !== null && Date.now() - upSince < SERVING_WAIT_MS) continue
          if (unsettled !== null) process.stderr.write(`brook dev: the cluster is up, but ${unsettled}\n`)
          process.stdout.write(`brook dev: ${options.nodes} node${options.nodes === 1 ? '' : 's'} up (cluster ${options.clusterId}, controller node ${status.controllerId}); bootstrap servers ${options.bootstrap}\n`)
          tellParent({ type: 'brook:ready', bootstrapServers: options.bootstrap, clusterId: options.clusterId })
          return true
        }
      } finally {
        client.close()
      }
    } catch {
      // Not listening yet, or no quorum leader to answer: ask again.
    }
  }
  return false
}

/**
 * Why the cluster's partitions are not yet served as they will stay, or null when they are: a partition without a
 * leader; with `waitForPreferred`, one whose ISR lacks a replica or whose leader is not its preferred replica (the
 * controller's auto leader rebalance moves the leadership there once that replica rejoins the ISR, which clients
 * would meet as NOT_LEADER_OR_FOLLOWER); and a leader, as the metadata names it, that does not answer ListOffsets for
 * the partition yet (a node's metadata image holds a leadership before the leader itself has taken it up, as in Kafka).
 * After a restart of the whole cluster, every leadership moves while the nodes register again.
 */
async function unsettledPartition(client: ClusterClient, waitForPreferred: boolean): Promise<string | null> {
  const [{ listOffsetsAt }, { errorText }] = await Promise.all([import('../client/admin.js'), import('../client/kafka-client.js')])
  const byLeader = new Map<number, Map<string, number[]>>()
  for (const topic of (await client.metadata(null, { allowAutoTopicCreation: false })).topics) {
    if (topic.errorCode !== ErrorCode.NONE || topic.name === null) return `topic ${topic.name ?? '?'} is described with ${errorText(topic.errorCode)}`
    for (const partition of topic.partitions) {
      const name = `${topic.name}-${partition.partitionIndex}`
      const preferred = partition.replicaNodes[0]
      if (partition.leaderId < 0) return `${name} has no leader`
      if (waitForPreferred && partition.leaderId !== preferred) return `${name} is led by node ${partition.leaderId}, not by its preferred replica ${preferred}`
      if (waitForPreferred && partition.isrNodes.length < partition.replicaNodes.length) return `${name} has not all its replicas in its ISR`
      const topics = byLeader.get(partition.leaderId) ?? new Map<string, number[]>()
      byLeader.set(partition.leaderId, topics)
      topics.set(topic.name, [...(topics.get(topic.name) ?? []), partition.partitionIndex])
    }
  }
  for (const [leaderId, topics] of byLeader) {
    const leader = await client.node(leaderId)
    for (const [topic, indexes] of topics) {
      const answers = await listOffsetsAt(leader, topic, indexes, { timestamp: OffsetSpec.LATEST, isolationLevel: IsolationLevel.READ_UNCOMMITTED })
      for (const index of indexes) {
        const errorCode = answers.get(index)?.errorCode ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if (errorCode !== ErrorCode.NONE) return `node ${leaderId}, the leader of ${topic}-${index}, answers ListOffsets with ${errorText(errorCode)}`
      }
    }
  }
  return null
}
