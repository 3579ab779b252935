/**
 * A three-node cluster of real processes under a seeded nemesis, Jepsen-style: clients write and read all along while
 * nodes are killed, paused, restarted and cut off; then everything heals, the cluster must settle, and every
 * acknowledged record is checked (bench/nemesis-workload.ts holds the clients and the invariants).
 *
 *   nodes 1..3 on 127.0.0.31-33 (--hosts), client and controller ports from 29001 (--first-port), RF 3, min ISR 2
 *   warm-up 5 s ─▶ faults for --duration s, one every --gap-ms after the last ended ─▶ heal ─▶ probe produce and
 *   read by a new group ─▶ settle (every partition led, ISR of 3) ─▶ 5 s more load ─▶ stop clients ─▶ read all, check
 *
 * The faults (--faults, picked with the seed; a fault's target and hold time too):
 *   kill, killctl, killleader       kill -9 a random node / the active controller / a partition's leader; restart 4-12 s later
 *   pause, pauseleader, pauseshort  SIGSTOP a node (a leader) past its session timeout, or one shorter than it
 *   term                            SIGTERM, a clean shutdown (kill -9 after 20 s), restart 4-12 s later
 *   isolate                         a node cut from its peers and from the clients (127.0.0.1) for 4-12 s
 *   isolateleader                   a partition's leader cut from its peers, not from the clients
 *   bridge, oneway                  one link cut both ways / one way only
 *   killtwo, killall                kill -9 two nodes (0-3 s apart) / all three, restart them 4-12 s later
 *   cascade                         kill -9 a leader, then the new leader of a partition 1-6 s later
 *   flap                            kill -9, restart, kill -9 again 0.5-4 s after it listens, restart
 * With --overlap the process faults and the network faults run in two loops at once, the second 2.5 s behind.
 * With --reassign a loop of its own moves partitions to random replica sets of 1-3 nodes, or cancels a move, all along
 * (bench/nemesis-reassignments.ts); after healing every partition it touched goes back to all three nodes.
 *
 * iptables rules carry the comment `brook-nemesis` and are removed at the end, on Ctrl-C and on a failure (and any a
 * killed run left are removed at the start). Every node is killed at the end. The data directory is removed unless
 * --keep, or a violation or a failure keeps it (with result.json and each node's log).
 *
 * `node dist/bench/nemesis.js --seed 11 --duration 120` (root, for iptables; kcat on PATH; after `npm run build`)
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Admin } from 'kafkajs'
import { Option } from '@commander-js/extra-typings'
import { Random } from '../processor/simulator/random.js'
import { badCommandLine, benchCommand, number, numbers } from './args.js'
import { startCluster, type ClusterProcesses } from './cluster-process.js'
import { dropPackets, iptablesUnusable, removeTaggedRules, type Cut } from './iptables.js'
import { liveGroupId, PARTITIONS, quietKafka, runKcat, TOPIC, transactionalId, TXN_PARTITIONS, TXN_TOPIC, Workload } from './nemesis-workload.js'
import { movablePartitions, Reassigner } from './nemesis-reassignments.js'

const PROCESS_FAULTS = ['kill', 'killctl', 'killleader', 'pause', 'pauseleader', 'pauseshort', 'term', 'killtwo', 'killall', 'cascade', 'flap'] as const
const NETWORK_FAULTS = ['isolate', 'isolateleader', 'bridge', 'oneway'] as const
const FAULTS = [...PROCESS_FAULTS, ...NETWORK_FAULTS]
type Fault = (typeof FAULTS)[number]
const TAG = 'brook-nemesis'
/** The clients connect from 127.0.0.1; `isolate` cuts a node from it too. */
const CLIENT_ADDRESS = '127.0.0.1'
/** Quick fencing (Kafka's defaults: 2 s and 9 s), so that a fault moves leadership within seconds. */
const SESSION_TIMEOUT_MS = 3000
const NODES = 3

const command = benchCommand('nemesis', 'node dist/bench/nemesis.js [options]', 'a three-node cluster under seeded kills, pauses and network cuts while clients write and read; every acknowledged record is checked')
  .option('--seed <n>', 'seed of the faults, their targets and hold times (default: the clock)', number(0))
  .option('--duration <s>', 'seconds of faults', number(1), 240)
  .addOption(new Option('--faults <list>', 'comma-separated faults to draw from').default(FAULTS.join(',')))
  .option('--overlap', 'process and network faults in two loops at once')
  .option('--reassign', 'also reassign random partitions to random replica sets (or cancel), in a loop of their own (KIP-455)')
  .addOption(new Option('--gap-ms <min,max>', 'pause between two faults, drawn between min and max').argParser(numbers).default([1000, 5000], '1000,5000'))
  .option('--pad <bytes>', "bytes of padding in each produced record's value", number(0), 0)
  .option('--lag <ms>', "the nodes' --replica-lag-time-max-ms", number(0), 5000)
  .option('--hosts <a,b,c>', "the three nodes' addresses (iptables cuts links between them)", '127.0.0.31,127.0.0.32,127.0.0.33')
  .option('--first-port <n>', "node 1's client port; node i's are first-port + 2(i-1) (client) and the next (controller)", number(1), 29001)
  .option('--tmp-dir <dir>', 'where the data directory is made', tmpdir())
  .option('--keep', 'keep the data directory and node logs (their path is printed)')
  .option('--quiet', 'no progress lines on stderr')
command.parse()
const options = command.opts()

const seed = Math.round(options.seed ?? Date.now() % 100_000)
const faults = options.faults.split(',') as Fault[]
const unknown = faults.filter((fault) => !FAULTS.includes(fault))
if (unknown.length > 0) badCommandLine(command, `unknown fault ${unknown.join(', ')}; known: ${FAULTS.join(', ')}`)
const hosts = options.hosts.split(',')
if (hosts.length !== NODES || new Set(hosts).size !== NODES) badCommandLine(command, `--hosts needs ${NODES} distinct addresses`)
const [gapMinMs, gapMaxMs] = options.gapMs
if (options.gapMs.length !== 2 || gapMinMs! > gapMaxMs!) badCommandLine(command, '--gap-ms needs min,max with min <= max')
const wantsNetwork = faults.some((fault) => (NETWORK_FAULTS as readonly string[]).includes(fault))
const unusable = wantsNetwork ? iptablesUnusable(TAG) : null
if (unusable !== null) badCommandLine(command, `${unusable}; leave ${NETWORK_FAULTS.join(', ')} out of --faults`)

const random = new Random(seed)
const pick = <T>(list: readonly T[]): T => list[random.int(0, list.length - 1)]!
const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms))
const startMs = Date.now()
const since = (): string => `${((Date.now() - startMs) / 1000).toFixed(1)}s`
const log = (line: string): void => void (options.quiet || process.stderr.write(`[${since()}] ${line}\n`))

mkdirSync(options.tmpDir, { recursive: true })
const root = mkdtempSync(join(options.tmpDir, `nemesis-${seed}-`))

/**
 * The nodes as the nemesis sees them: running or not, paused or not. A node that exits with a non-zero code when no
 * fault stopped it is a violation; each process's output is appended to `<root>/node-<id>.log` when it exits.
 */
class Nodes {
  private readonly running = new Set<number>()
  private readonly paused = new Set<number>()
  /** Nodes the nemesis is stopping or killing now: their exit is expected. */
  private readonly stopping = new Set<number>()
  readonly exitedOnTheirOwn: string[] = []
  readonly ids: readonly number[]

  constructor(readonly cluster: ClusterProcesses) {
    this.ids = cluster.plan.nodeIds
    for (const id of this.ids) this.watch(id)
  }

  alive(id: number): boolean {
    return this.running.has(id)
  }

  isPaused(id: number): boolean {
    return this.paused.has(id)
  }

  private watch(id: number): void {
    const node = this.cluster.nodes.get(id)!
    this.running.add(id)
    void node.exited.then((code) => {
      this.running.delete(id)
      this.paused.delete(id)
      appendFileSync(join(root, `node-${id}.log`), node.output())
      log(`node ${id} (pid ${node.pid}) exited ${code ?? 'on a signal'}`)
      if (code !== null && code !== 0 && !this.stopping.has(id)) this.exitedOnTheirOwn.push(`node ${id} (pid ${node.pid}) exited with code ${code} at ${since()} (see node-${id}.log)`)
    })
  }

  /** Starts node `id` again on its data directory, and waits until it listens. */
  async start(id: number): Promise<void> {
    try {
      await this.cluster.restart(id)
    } catch (error) {
      appendFileSync(join(root, `node-${id}.log`), (error as Error).message)
      this.exitedOnTheirOwn.push(`node ${id} did not start at ${since()} (see node-${id}.log)`)
      return
    }
    this.watch(id)
    log(`node ${id} started, pid ${this.cluster.nodes.get(id)!.pid}`)
  }

  /** kill -9 (a paused node too), and waits until it is gone. */
  async kill(id: number): Promise<void> {
    if (!this.alive(id)) return
    this.stopping.add(id)
    await this.cluster.nodes.get(id)!.kill()
    this.stopping.delete(id)
  }

  /** SIGTERM, a clean shutdown; kill -9 when it takes more than 20 s. */
  async terminate(id: number): Promise<void> {
    const node = this.cluster.nodes.get(id)!
    this.stopping.add(id)
    process.kill(node.pid, 'SIGTERM')
    const exited = await Promise.race([node.exited.then(() => true), sleep(20_000).then(() => false)])
    if (!exited) {
      note(`term: node ${id} did not stop in 20 s, kill -9`)
      await node.kill()
    }
    this.stopping.delete(id)
  }

  /** SIGSTOP for `ms`, then SIGCONT. */
  async pause(id: number, ms: number): Promise<void> {
    const { pid } = this.cluster.nodes.get(id)!
    process.kill(pid, 'SIGSTOP')
    this.paused.add(id)
    await sleep(ms)
    if (this.paused.delete(id)) process.kill(pid, 'SIGCONT')
  }

  /** Every node running and none paused. */
  async heal(): Promise<void> {
    for (const id of this.ids) {
      if (this.paused.delete(id)) process.kill(this.cluster.nodes.get(id)!.pid, 'SIGCONT')
      if (!this.alive(id)) await this.start(id)
    }
  }
}

/** Every cut in place; healed together. */
const cuts: Cut[] = []
function drop(pairs: [string, string][]): void {
  cuts.push(dropPackets(pairs, TAG))
}
function healNetwork(): void {
  for (const cut of cuts.splice(0)) cut.heal()
}

/** `work` with an admin client of the cluster, failed after `timeoutMs` whatever the client's retries. */
const admin = async <T>(bootstrap: readonly string[], work: (admin: Admin) => Promise<T>, timeoutMs = 8000): Promise<T> => {
  const client = quietKafka(bootstrap, 'nemesis-admin', { retries: 2 }).admin()
  const timeout = sleep(timeoutMs).then(() => Promise.reject(new Error('admin request timed out')))
  try {
    await Promise.race([client.connect(), timeout])
    return await Promise.race([work(client), timeout])
  } finally {
    timeout.catch(() => {})
    client.disconnect().catch(() => {})
  }
}

interface Metadata {
  controller: number | null
  brokers: number[]
  partitions: { topic: string; partition: number; leader: number; replicas: number[]; isr: number[] }[]
}

/** The active controller, the live brokers, and each partition's leader, replicas and ISR (of `topics`), as kafkajs sees them. */
async function metadata(bootstrap: readonly string[], topics: readonly string[] = [TOPIC, TXN_TOPIC]): Promise<Metadata> {
  return admin(bootstrap, async (client) => {
    const [cluster, described] = await Promise.all([client.describeCluster(), client.fetchTopicMetadata({ topics: [...topics] })])
    const partitions = described.topics.flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr })))
    return { controller: cluster.controller, brokers: cluster.brokers.map((b) => b.nodeId), partitions }
  })
}

async function leaderOf(bootstrap: readonly string[], partition: number): Promise<number> {
  return (await metadata(bootstrap)).partitions.find((p) => p.topic === TOPIC && p.partition === partition)?.leader ?? -1
}

/**
 * Why the cluster is not settled (a broker missing, a partition without a leader, with fewer replicas than nodes or a
 * short ISR, a reassignment under way), or null. With a `reassigner`, the internal partitions it may move are checked
 * too, and whether ListPartitionReassignments lists any under way.
 */
async function unsettled(bootstrap: readonly string[], reassigner: Reassigner | null): Promise<string | null> {
  const topics = [...new Set([TOPIC, TXN_TOPIC, ...(reassigner?.partitions.map((p) => p.topic) ?? [])])]
  const { brokers, partitions } = await metadata(bootstrap, topics)
  if (brokers.length !== NODES) return `brokers ${brokers.join(',')}`
  const checked = partitions.filter((p) => p.topic === TOPIC || p.topic === TXN_TOPIC || reassigner?.partitions.some((m) => m.topic === p.topic && m.partition === p.partition))
  const bad = checked.find((p) => p.leader < 0 || p.replicas.length !== NODES || p.isr.length !== NODES)
  if (bad !== undefined) return `${bad.topic}-${bad.partition} leader ${bad.leader} replicas ${bad.replicas.join(',')} isr ${bad.isr.join(',')}`
  const ongoing = reassigner === null ? [] : await reassigner.ongoing()
  return ongoing.length === 0 ? null : `reassignments under way: ${ongoing.map((r) => `${r.topic}-${r.partition} [${r.replicas}] adding [${r.addingReplicas}] removing [${r.removingReplicas}]`).join('; ')}`
}

const faultLog: string[] = []
/** Faults injected, by kind (a step that only restarted a down node or skipped a paused one is none). */
const injected = new Map<Fault, number>()
function note(line: string): void {
  faultLog.push(`${since()} ${line}`)
  log(`NEMESIS ${line}`)
}

/** Draws one fault of `kinds` and runs it to its end (the target back up, or the cut healed). */
async function nemesisStep(nodes: Nodes, bootstrap: readonly string[], kinds: readonly Fault[]): Promise<void> {
  if (kinds.length === 0) return sleep(1000)
  const kind = pick(kinds)
  const holdMs = random.int(4000, 12_000)
  const host = (id: number): string => nodes.cluster.plan.host(id)
  let target = pick(nodes.ids)
  try {
    if (kind === 'killctl') target = (await metadata(bootstrap)).controller ?? -1
    if (kind === 'killleader' || kind === 'isolateleader' || kind === 'pauseleader' || kind === 'cascade') target = await leaderOf(bootstrap, random.int(0, PARTITIONS - 1))
  } catch (error) {
    note(`${kind}: metadata failed (${(error as Error).message}); random node ${target}`)
  }
  if (!nodes.ids.includes(target)) target = pick(nodes.ids)
  const network = (NETWORK_FAULTS as readonly string[]).includes(kind)
  if (!network) {
    const down = nodes.ids.find((id) => !nodes.alive(id))
    if (down !== undefined) {
      note(`${kind}: node ${down} not alive, restarting it`)
      return nodes.start(down)
    }
    if (nodes.isPaused(target)) return note(`${kind}: node ${target} is paused, skipped`)
  } else if (!nodes.alive(target)) note(`${kind}: node ${target} down, cutting it anyway`)
  injected.set(kind, (injected.get(kind) ?? 0) + 1)
  const other = pick(nodes.ids.filter((id) => id !== target))
  const peers = nodes.ids.filter((id) => id !== target)
  const bothWays = (a: string, b: string): [string, string][] => [[a, b], [b, a]]
  switch (kind) {
    case 'kill':
    case 'killctl':
    case 'killleader':
      note(`${kind}: kill -9 node ${target}, restart after ${holdMs} ms`)
      await nodes.kill(target)
      await sleep(holdMs)
      return nodes.start(target)
    case 'pauseshort': {
      const ms = random.int(500, SESSION_TIMEOUT_MS - 500)
      note(`pauseshort: SIGSTOP node ${target} for ${ms} ms`)
      return nodes.pause(target, ms)
    }
    case 'pause':
    case 'pauseleader': {
      const ms = SESSION_TIMEOUT_MS + random.int(1000, 8000)
      note(`${kind}: SIGSTOP node ${target} for ${ms} ms`)
      return nodes.pause(target, ms)
    }
    case 'term':
      note(`term: SIGTERM node ${target}, restart after ${holdMs} ms`)
      await nodes.terminate(target)
      await sleep(holdMs)
      return nodes.start(target)
    case 'killtwo': {
      const gapMs = random.int(0, 3000)
      note(`killtwo: kill -9 node ${target}, ${gapMs} ms later node ${other}, restart both after ${holdMs} ms`)
      await nodes.kill(target)
      await sleep(gapMs)
      await nodes.kill(other)
      await sleep(holdMs)
      await nodes.start(target)
      await sleep(random.int(0, 3000))
      return nodes.start(other)
    }
    case 'killall':
      note(`killall: kill -9 all nodes, restart after ${holdMs} ms`)
      await Promise.all(nodes.ids.map((id) => nodes.kill(id)))
      await sleep(holdMs)
      await Promise.all(nodes.ids.map((id) => nodes.start(id)))
      return
    case 'cascade': {
      const partition = random.int(0, PARTITIONS - 1)
      const waitMs = random.int(1000, 6000)
      note(`cascade: kill -9 node ${target}, then after ${waitMs} ms the leader of partition ${partition}`)
      await nodes.kill(target)
      await sleep(waitMs)
      const second = await leaderOf(bootstrap, partition).catch(() => -1)
      const killSecond = second >= 1 && second !== target && nodes.alive(second)
      if (killSecond) {
        note(`cascade: kill -9 node ${second} (leader of ${partition}); restart ${target} after ${holdMs} ms`)
        await nodes.kill(second)
      } else note(`cascade: leader of ${partition} is ${second}, not killed`)
      await sleep(holdMs)
      await nodes.start(target)
      if (killSecond) {
        await sleep(random.int(0, 5000))
        await nodes.start(second)
      }
      return
    }
    case 'flap':
      note(`flap: kill -9 node ${target}, restart at once, kill -9 again soon after it listens, restart`)
      await nodes.kill(target)
      await nodes.start(target)
      await sleep(random.int(500, 4000))
      await nodes.kill(target)
      await sleep(random.int(0, 3000))
      return nodes.start(target)
    case 'isolate':
      note(`isolate: node ${target} cut from peers and clients for ${holdMs} ms`)
      drop([...peers.flatMap((id) => bothWays(host(target), host(id))), ...bothWays(host(target), CLIENT_ADDRESS)])
      break
    case 'isolateleader':
      note(`isolateleader: node ${target} cut from peers (not clients) for ${holdMs} ms`)
      drop(peers.flatMap((id) => bothWays(host(target), host(id))))
      break
    case 'bridge':
      note(`bridge: link ${target}<->${other} cut for ${holdMs} ms`)
      drop(bothWays(host(target), host(other)))
      break
    case 'oneway':
      note(`oneway: packets ${target}->${other} dropped for ${holdMs} ms`)
      drop([[host(target), host(other)]])
      break
  }
  await sleep(holdMs)
  healNetwork()
}

/** Faults of `kinds` one after another, `--gap-ms` apart, until `endMs`. */
async function nemesisLoop(nodes: Nodes, bootstrap: readonly string[], kinds: readonly Fault[], endMs: number): Promise<void> {
  while (Date.now() < endMs) {
    await nemesisStep(nodes, bootstrap, kinds)
    await sleep(random.int(gapMinMs!, gapMaxMs!))
  }
}

/** Polls `attempt` every `everyMs` until it returns a value, for `withinMs` at most: ms from `fromMs`, or null. */
async function timeUntil(fromMs: number, withinMs: number, everyMs: number, attempt: () => Promise<boolean>): Promise<number | null> {
  while (Date.now() - fromMs < withinMs) {
    if (await attempt().catch(() => false)) return Date.now() - fromMs
    await sleep(everyMs)
  }
  return null
}

/** ms from `fromMs` until a new consumer group read `probe`, or null after 60 s. */
async function groupReads(bootstrap: readonly string[], probe: string, fromMs: number): Promise<number | null> {
  const reader = quietKafka(bootstrap, 'nemesis-probe', { retries: 50 }).consumer({ groupId: `nemesis-probe-${seed}-${Date.now()}`, maxWaitTimeInMs: 200 })
  let seen = false
  try {
    await reader.connect()
    await reader.subscribe({ topics: [TOPIC], fromBeginning: true })
    await reader.run({ eachMessage: async ({ message }) => void (seen ||= message.value?.toString().split(' ')[0] === probe) })
    return await timeUntil(Date.now(), 60_000, 200, async () => seen).then((ms) => (ms === null ? null : Date.now() - fromMs))
  } catch (error) {
    log(`probe group read failed: ${(error as Error).message}`)
    return null
  } finally {
    await reader.disconnect().catch(() => {})
  }
}

/** Both topics, RF 3 and min ISR 2, retried until the cluster has its brokers (30 s at most). */
async function createTopics(bootstrap: readonly string[]): Promise<void> {
  const minIsr = [{ name: 'min.insync.replicas', value: '2' }]
  const topics = [
    { topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: NODES, configEntries: minIsr },
    { topic: TXN_TOPIC, numPartitions: TXN_PARTITIONS, replicationFactor: NODES, configEntries: minIsr },
  ]
  for (let attempt = 0; ; attempt++) {
    try {
      await admin(bootstrap, (client) => client.createTopics({ waitForLeaders: true, topics }), 20_000)
      return
    } catch (error) {
      if (attempt > 30) throw error
      await sleep(1000)
    }
  }
}

/** The whole run: start, load, faults, heal, settle, check. Returns the summary and every violation. */
async function run(cluster: ClusterProcesses): Promise<{ summary: Record<string, unknown>; violations: string[] }> {
  const nodes = new Nodes(cluster)
  const { bootstrap } = cluster
  await createTopics(bootstrap)
  log(`topics created: ${JSON.stringify((await metadata(bootstrap)).partitions.map((p) => `${p.topic}-${p.partition}@${p.leader}`))}`)
  const workload = new Workload({ bootstrap, seed, padBytes: options.pad, log })
  workload.start()
  const progress = setInterval(() => log(`progress: acknowledged ${workload.acknowledged}, live reads ${workload.liveReadCount}, live group joins ${workload.liveGroupJoins}`), 15_000)
  await sleep(5000)
  const endMs = Date.now() + options.duration * 1000
  const movable = movablePartitions([{ name: TOPIC, partitions: PARTITIONS }, { name: TXN_TOPIC, partitions: TXN_PARTITIONS }], liveGroupId(seed), transactionalId(seed))
  const reassigner = options.reassign ? new Reassigner({ bootstrap: cluster.plan.nodeIds.map((id) => ({ host: cluster.plan.host(id), port: cluster.plan.clientPort(id) })), nodeIds: nodes.ids, partitions: movable, seed, note }) : null
  const reassigning = reassigner?.loop(endMs, [gapMinMs!, gapMaxMs!]) ?? Promise.resolve()
  if (options.overlap) {
    const [processKinds, networkKinds] = [faults.filter((f) => !NETWORK_FAULTS.includes(f as never)), faults.filter((f) => NETWORK_FAULTS.includes(f as never))]
    await Promise.all([nemesisLoop(nodes, bootstrap, processKinds, endMs), sleep(2500).then(() => nemesisLoop(nodes, bootstrap, networkKinds, endMs))])
  } else await nemesisLoop(nodes, bootstrap, faults, endMs)
  await reassigning
  clearInterval(progress)
  log('nemesis done; healing')
  healNetwork()
  await nodes.heal()
  const healedMs = Date.now()
  if (reassigner !== null) {
    // Back on all three nodes, so that the probe's partition takes acks=all again and the settled cluster is the first one.
    await reassigner.restore(60_000).catch((error: Error) => log(`restoring the reassigned partitions failed: ${error.message}`))
    log(`reassigned partitions restored ${Date.now() - healedMs} ms after healing`)
  }
  const probe = `probe-${seed}-${healedMs}`
  const produceArgs = ['-P', '-b', bootstrap.join(','), '-t', TOPIC, '-p', '0', '-X', 'acks=all', '-X', 'message.timeout.ms=10000']
  const probeProduceMs = await timeUntil(healedMs, 120_000, 500, async () => (await runKcat(produceArgs, probe + '\n', 20_000)).code === 0)
  log(`probe produce ${probeProduceMs === null ? 'FAILED within 120 s' : `ok ${probeProduceMs} ms after healing`}`)
  const probeGroupReadMs = probeProduceMs === null ? null : await groupReads(bootstrap, probe, healedMs)
  log(`probe group read ${probeGroupReadMs === null ? 'FAILED within 60 s' : `ok ${probeGroupReadMs} ms after healing`}`)
  let why: string | null = null
  const settleMs = await timeUntil(healedMs, 180_000, 1000, async () => {
    why = await unsettled(bootstrap, reassigner).catch((error: Error) => error.message)
    return why === null
  })
  log(`settled ${settleMs === null ? `NOT within 180 s: ${why}` : `${settleMs} ms after healing`}`)
  // The workload runs a few more seconds on the healed cluster.
  await sleep(5000)
  await workload.stop(90_000)
  log('workload stopped; reading every partition')
  const check = await workload.check(probe)
  const violations = [...check.violations, ...nodes.exitedOnTheirOwn]
  if (probeProduceMs === null) violations.push('the probe was not produced within 120 s of healing')
  if (probeGroupReadMs === null) violations.push('a new consumer group did not read the probe within 60 s of healing')
  if (settleMs === null) violations.push(`the cluster did not settle within 180 s of healing: ${why}`)
  const summary = {
    seed,
    durationS: options.duration,
    overlap: options.overlap === true,
    faults: [...injected.values()].reduce((sum, n) => sum + n, 0),
    faultKinds: Object.fromEntries(injected),
    ...(reassigner === null ? {} : { reassignments: reassigner.counts }),
    sent: workload.sent,
    acknowledged: workload.acknowledged,
    kafkajsAcknowledged: workload.kafkajsAcknowledged,
    kcatAcknowledged: workload.kcatAcknowledged,
    notAcknowledged: workload.notAcknowledged,
    readBack: check.readBack,
    lost: check.lost,
    duplicates: check.duplicates,
    orderViolations: check.orderViolations,
    liveReads: workload.liveReadCount,
    staleLiveReads: check.staleLiveReads,
    pollSkips: check.pollSkips,
    liveGroupJoins: workload.liveGroupJoins,
    txnCommitted: workload.txnCommitted.length,
    txnAborted: workload.txnAborted.length,
    txnUnknown: workload.txnUnknown,
    txnLost: check.txnLost,
    txnDuplicates: check.txnDuplicates,
    abortedRead: check.abortedRead,
    probeProduceMs,
    probeGroupReadMs,
    settleMs,
    longestAckGapMs: workload.longestAckGapMs,
    nodesExitedOnTheirOwn: nodes.exitedOnTheirOwn,
    violations: violations.length,
  }
  log(`transaction errors: ${JSON.stringify([...workload.txnErrors])}`)
  log(`faults:\n  ${faultLog.join('\n  ')}`)
  return { summary, violations }
}

/** Removes this run's rules and kills every node (a paused one too): the end of a run, Ctrl-C, a failure. */
function tearDown(cluster: ClusterProcesses | null): void {
  try {
    healNetwork()
  } finally {
    removeTaggedRules(TAG)
    for (const node of cluster?.nodes.values() ?? []) {
      try {
        process.kill(node.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
}

let cluster: ClusterProcesses | null = null
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: removing the iptables rules and killing the nodes; data kept in ${root}`)
    tearDown(cluster)
    process.exit(130)
  })
}
// The clients' own failures (a rejected request kafkajs did not await) are not the cluster's.
process.on('unhandledRejection', (error) => log(`unhandled rejection (client side): ${String((error as Error)?.message ?? error)}`))

let failed = true
try {
  if (wantsNetwork) removeTaggedRules(TAG)
  const nodeArgs = ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', String(SESSION_TIMEOUT_MS), '--replica-lag-time-max-ms', String(options.lag), '--group-initial-rebalance-delay-ms', '0', '--no-auto-create-topics']
  log(`seed ${seed}, ${options.duration} s of ${faults.join(',')}${options.overlap ? ' (overlapping)' : ''}, data in ${root}`)
  cluster = await startCluster({ nodes: NODES, dataDir: root, hosts, firstPort: options.firstPort, extraArgs: nodeArgs })
  const { summary, violations } = await run(cluster)
  failed = violations.length > 0
  if (failed) {
    writeFileSync(join(root, 'result.json'), JSON.stringify({ summary, faults: faultLog, violations }, null, 2))
    process.stderr.write(`VIOLATIONS (${violations.length}):\n  ${violations.slice(0, 60).join('\n  ')}\n`)
  }
  console.log(JSON.stringify(summary))
} catch (error) {
  process.stderr.write(`nemesis: ${(error as Error).stack}\n`)
} finally {
  tearDown(cluster)
  await cluster?.kill()
  if (options.keep || failed) process.stderr.write(`data and logs kept in ${root}\n`)
  else rmSync(root, { recursive: true, force: true })
}
process.exit(failed ? 1 : 0)
