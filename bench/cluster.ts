/**
 * A replicated cluster against a single node, on the same machine, in turns:
 *
 *   node dist/bench/cluster.js [options]        # --help lists them, with their defaults
 *   node dist/bench/cluster.js --scenarios failover --failover-repeat 3 --broker-args="--broker-session-timeout-ms 9000"
 *
 * Three nodes (bench/cluster-process.ts) and one single node (bench/broker-process.ts) run side by side for the
 * whole bench, so every turn of a scenario measures each setup back to back, and the ratios come from the same
 * minute of a shared machine. `--broker-args` go to every node, the single one included.
 *
 * - throughput: the bench's pre-encoded generator (produce-load.ts): `--topics` topics of one partition, each on a
 *   connection of its own to its partition's leader with `--window` requests in flight, 16 KiB batches of 100-byte
 *   records, `--total-mb` per setup and turn. Setups: RF=3 acks=all (-1) on the cluster, RF=1 acks=1 on the single
 *   node, RF=1 acks=1 on the cluster. A cluster spreads its partitions' leaders over the nodes, so each leader takes
 *   a share of the load and replicates it to the two others.
 * - latency: kafkajs producing at a fixed offered rate (`--rate` records/s, open loop: record i is due at
 *   start + i / rate, and whatever is due is sent every millisecond whether or not earlier sends were answered) to
 *   a one-partition topic, at most `--max-in-flight` requests at a time (Kafka's max.in.flight.requests.per.connection,
 *   default 5: what is due meanwhile waits and goes in the next request, as a Kafka producer's batches gather), and a
 *   kafkajs consumer (a group of one) reading it. A record's latency runs from its intended send time to the
 *   consumer's receipt, so a stalled producer shows as latency, not as fewer samples (coordinated omission). The first second is warm-up and not counted. Percentiles are exact (every sample,
 *   sorted). Setups: RF=3 acks=all and RF=1 acks=1 on the cluster, RF=1 acks=1 on the single node.
 * - failover: a kafkajs idempotent producer (acks=all, one request in flight carrying every record due meanwhile)
 *   sends `--failover-rate` records/s to an RF=3 topic of one partition while a fault hits (a) the partition's leader,
 *   kill -9, (b) the leader, SIGSTOP, and SIGCONT once a survivor's metadata names a new leader,
 *   (c) the active controller, kill -9. Per fault: the longest time between two acknowledgements around it
 *   (`noProgressMs`, counted up to 2 s after the first acknowledgement once a new leader or controller is named, so
 *   that an answer already on its way when the fault hit does not end the window early), the time from the fault to
 *   the acknowledgement that ended that stall (`progressAfterFaultMs`), and the time until a survivor's metadata
 *   names a new leader (or DescribeCluster a new controller). A killed node is restarted, and the next
 *   fault waits until the ISR is whole and (up to 30 s) the preferred leader leads again. The cluster fences a node
 *   it has not heard from for broker.session.timeout.ms (`brook start --broker-session-timeout-ms`, default 9000):
 *   the bench reports the value it ran with. A client notices a stopped leader only when its request times out
 *   (kafkajs's requestTimeout is `--request-timeout-ms`) or the leader, resumed, answers NOT_LEADER_OR_FOLLOWER: the
 *   stall after a SIGSTOP ends no earlier than the SIGCONT, sent as soon as the bench sees the new leader.
 *
 * The kafkajs clients' sockets set TCP_NODELAY, as Kafka's Java client does (kafkajs leaves Nagle's algorithm on);
 * `--nagle` measures kafkajs as it comes.
 *
 * Every figure carries the load average read when it was taken. Prints one JSON object; on a shared machine the
 * figures are indicative, the ratios less so.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { DEFAULT_CONFIG } from '../broker/config.js'
import { ClusterClient } from '../client/cluster-client.js'
import { socketFactory } from '../processor/runtime/sockets.js'
import { badCommandLine, benchCommand, number } from './args.js'
import { makeBatchPool, batchCount, type BatchPool } from './batches.js'
import { startBroker, type BrokerProcess } from './broker-process.js'
import { startCluster, type ClusterProcesses } from './cluster-process.js'
import { MB, median, percentile, startCpuMeter, throughput } from './measure.js'
import { produceLoad } from './produce-load.js'

const MiB = 1024 * 1024
const SCENARIO_NAMES = ['throughput', 'latency', 'failover']
const COMMAND = benchCommand(
  'cluster',
  'node dist/bench/cluster.js [options]',
  'A 3-node cluster beside a single node, in turns: produce RF=3 acks=all vs RF=1, latency at a fixed rate, failover times. Prints JSON.',
)
  .option('--scenarios <a,b>', `the scenarios to run, of ${SCENARIO_NAMES.join(', ')}`, SCENARIO_NAMES.join(','))
  .option('--repeat <n>', 'turns of the throughput and latency scenarios', number(), 3)
  .option('--total-mb <n>', 'MiB produced per setup and turn (throughput)', number(), 64)
  .option('--warmup-mb <n>', 'MiB produced per setup before the turns, not measured (throughput): each node compiles its hot paths meanwhile', number(), 8)
  .option('--topics <n>', 'one-partition topics, one connection each (throughput)', number(), 3)
  .option('--window <n>', 'requests in flight per connection (throughput)', number(), 5)
  .option('--rate <n>', 'records/s offered (latency)', number(), 5000)
  .option('--latency-seconds <n>', 'how long the latency scenario produces', number(), 10)
  .option('--failover-repeat <n>', 'runs of each fault (failover)', number(), 3)
  .option('--failover-rate <n>', 'records/s of the idempotent producer (failover)', number(), 100)
  .option('--max-in-flight <n>', "the latency producer's requests in flight", number(), 5)
  .option('--request-timeout-ms <n>', "kafkajs's requestTimeout", number(), 5000)
  .option('--broker-args <args>', 'brook start flags for every node, e.g. --broker-args "--broker-session-timeout-ms 9000"', '')
  .option('--nagle', "kafkajs with Nagle's algorithm on, as it comes", false)
  .option('--broker-cpu-prof <dir>', 'run every node under node --cpu-prof, profiles in <dir> (written when the nodes stop at the end)')
const flags = COMMAND.parse().opts()
const SCENARIOS = new Set(flags.scenarios.split(','))
for (const name of SCENARIOS) if (!SCENARIO_NAMES.includes(name)) badCommandLine(COMMAND, `--scenarios takes ${SCENARIO_NAMES.join(', ')}, not '${name}'`)
const REPEAT = flags.repeat
const TOTAL_BYTES = flags.totalMb * MiB
const WARMUP_BYTES = flags.warmupMb * MiB
const TOPICS = flags.topics
const WINDOW = flags.window
const RATE = flags.rate
const LATENCY_SECONDS = flags.latencySeconds
const WARMUP_SECONDS = 1
const MAX_IN_FLIGHT = flags.maxInFlight
const FAILOVER_REPEAT = flags.failoverRepeat
const FAILOVER_RATE = flags.failoverRate
const REQUEST_TIMEOUT_MS = flags.requestTimeoutMs
const BROKER_ARGS = flags.brokerArgs.split(/\s+/).filter((arg) => arg.length > 0)
const SESSION_TIMEOUT_MS = Number(valueOf(BROKER_ARGS, '--broker-session-timeout-ms') ?? DEFAULT_CONFIG.brokerSessionTimeoutMs)
const NAGLE = flags.nagle
const NODE_ARGS = flags.brokerCpuProf ? ['--cpu-prof', '--cpu-prof-dir', flags.brokerCpuProf] : []
const POLL_MS = 50

/** The value after `flag` in `args`, if given. */
function valueOf(args: readonly string[], flag: string): string | undefined {
  const at = args.indexOf(flag)
  return at >= 0 ? args[at + 1] : undefined
}

const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits
/** The 1, 5 and 15 minute load averages, as /proc/loadavg gives them. */
const load = (): number[] => loadavg().map((n) => round(n, 2))

function spread(values: readonly number[]): { median: number; min: number; max: number } {
  return { median: round(median(values), 3), min: round(Math.min(...values), 3), max: round(Math.max(...values), 3) }
}

/** Polls `probe` every POLL_MS until it gives a value, or throws after `timeoutMs`. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined && value !== false) return value
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(POLL_MS)
  }
}

interface PartitionState {
  leader: number
  leaderEpoch: number
  replicas: number[]
  isr: number[]
  /** host:port of every broker the answer listed, by id. */
  brokers: Map<number, { host: string; port: number }>
}

/** Partition 0 of `topic` as the node at `address` describes it (Metadata). */
async function partitionState(address: string, topic: string): Promise<PartitionState> {
  const [host, port] = address.split(':')
  const client = await ClusterClient.connect([{ host: host!, port: Number(port) }], { timeoutMs: 2_000 })
  try {
    const answer = await client.metadata([topic], { allowAutoTopicCreation: false })
    const partition = answer.topics.find((t) => t.name === topic)?.partitions.find((p) => p.partitionIndex === 0)
    if (!partition || partition.errorCode !== 0) throw new Error(`${topic}-0 is not described`)
    return {
      leader: partition.leaderId,
      leaderEpoch: partition.leaderEpoch ?? -1,
      replicas: [...partition.replicaNodes],
      isr: [...partition.isrNodes],
      brokers: new Map(answer.brokers.map((b) => [b.nodeId, { host: b.host, port: b.port }])),
    }
  } finally {
    client.close()
  }
}

/** TCP_NODELAY as Kafka's Java client and Brook's processor set it (processor/runtime/sockets.ts), unless `--nagle`. */
const noDelaySockets = socketFactory({ noDelay: !NAGLE })

function kafkaOf(bootstrap: readonly string[], clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers: [...bootstrap],
    socketFactory: noDelaySockets,
    logLevel: logLevel.NOTHING,
    requestTimeout: REQUEST_TIMEOUT_MS,
    retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 60 },
  })
}

/** Creates one-partition topics and waits until each has a leader and a whole ISR. */
async function createTopics(bootstrap: readonly string[], names: readonly string[], replicationFactor: number): Promise<void> {
  const admin = kafkaOf(bootstrap, 'brook-cluster-bench-admin').admin()
  await admin.connect()
  try {
    await admin.createTopics({ waitForLeaders: true, topics: names.map((topic) => ({ topic, numPartitions: 1, replicationFactor })) })
  } finally {
    await admin.disconnect()
  }
  for (const topic of names) {
    await waitFor(`${topic} with a leader and ${replicationFactor} replicas in sync`, async () => {
      const state = await partitionState(bootstrap[0]!, topic)
      return state.leader >= 0 && state.isr.length === replicationFactor
    })
  }
}

interface Setup {
  name: string
  bootstrap: string[]
  replicationFactor: number
  acks: 1 | -1
  pids: Record<string, number>
}

// ---------------------------------------------------------------------------------------------------------------
// Throughput

async function produceTurn(setup: Setup, topics: readonly string[], pool: BatchPool, totalBytes: number) {
  const leaders = await Promise.all(topics.map(async (topic) => {
    const state = await partitionState(setup.bootstrap[0]!, topic)
    return { topic, leader: state.leader, address: state.brokers.get(state.leader)! }
  }))
  const meter = startCpuMeter(setup.pids)
  const loadAvg = load()
  const started = performance.now()
  const results = await Promise.all(leaders.map(({ topic, address }) =>
    produceLoad({
      host: address.host,
      port: address.port,
      topic,
      partitions: 1,
      version: 9,
      pool,
      totalBatches: batchCount(totalBytes / topics.length, pool),
      batchesPerRequest: 1,
      window: WINDOW,
      connections: 1,
      acks: setup.acks,
    })))
  const seconds = (performance.now() - started) / 1000
  const cpu = meter?.()
  const errors = results.reduce((sum, r) => sum + r.errors, 0)
  if (errors > 0) throw new Error(`${setup.name}: ${errors} partition errors, the first ${results.find((r) => r.firstError)?.firstError}`)
  const total = throughput(results.reduce((s, r) => s + r.bytes, 0), results.reduce((s, r) => s + r.records, 0), seconds)
  const mainCores = cpu ? Object.values(cpu.mainThreads).reduce((s, c) => s + c, 0) : null
  return {
    MBps: round(total.MBps),
    recordsPerSec: Math.round(total.recordsPerSec),
    requestP99Ms: round(Math.max(...results.map((r) => r.latencyMs.p99))),
    leaders: leaders.map((l) => l.leader),
    brokerCores: cpu ? round(Object.values(cpu.processes).reduce((s, c) => s + c, 0), 2) : null,
    brokerMainCores: mainCores === null ? null : round(mainCores, 2),
    // The brokers' main threads (where their JavaScript runs) per MB produced: what a change to the replication path
    // costs shows here first, where MB/s follows the machine's load.
    brokerMainMsPerMB: mainCores === null ? null : round((mainCores * 1000) / total.MBps),
    othersCores: cpu ? round(cpu.others, 2) : null,
    load: loadAvg,
  }
}

async function throughputScenario(setups: readonly Setup[]) {
  const pool = makeBatchPool({ batches: 256, batchBytes: 16_384, recordBytes: 100 })
  const topicsOf = new Map(setups.map((s) => [s.name, Array.from({ length: TOPICS }, (_, i) => `throughput-${s.name}-${i}`)]))
  for (const setup of setups) await createTopics(setup.bootstrap, topicsOf.get(setup.name)!, setup.replicationFactor)
  if (WARMUP_BYTES > 0) for (const setup of setups) await produceTurn(setup, topicsOf.get(setup.name)!, pool, WARMUP_BYTES)
  const turns: Record<string, Awaited<ReturnType<typeof produceTurn>>>[] = []
  for (let turn = 0; turn < REPEAT; turn++) {
    // Each turn starts with another setup, so none is always measured first (or last) in a turn.
    const order = setups.map((_, i) => setups[(i + turn) % setups.length]!)
    const results: Record<string, Awaited<ReturnType<typeof produceTurn>>> = {}
    for (const setup of order) results[setup.name] = await produceTurn(setup, topicsOf.get(setup.name)!, pool, TOTAL_BYTES)
    turns.push(results)
  }
  const [base] = setups.filter((s) => s.name === 'single-rf1-acks1')
  const ratios = Object.fromEntries(
    setups.filter((s) => s !== base).map((s) => [`${s.name}/single-rf1-acks1`, spread(turns.map((t) => t[s.name]!.MBps / t[base!.name]!.MBps))]),
  )
  return {
    batchBytes: 16_384,
    recordBytes: 100,
    topics: TOPICS,
    window: WINDOW,
    mbPerTurn: TOTAL_BYTES / MB,
    turns,
    MBps: Object.fromEntries(setups.map((s) => [s.name, spread(turns.map((t) => t[s.name]!.MBps))])),
    recordsPerSec: Object.fromEntries(setups.map((s) => [s.name, spread(turns.map((t) => t[s.name]!.recordsPerSec))])),
    ratios,
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Latency at a fixed offered rate

async function latencyRun(setup: Setup, topic: string) {
  const kafka = kafkaOf(setup.bootstrap, `brook-latency-${topic}`)
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  const consumer = kafka.consumer({ groupId: `latency-${topic}`, maxWaitTimeInMs: 500 })
  await producer.connect()
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const total = Math.round(RATE * (WARMUP_SECONDS + LATENCY_SECONDS))
  const intervalMs = 1000 / RATE
  const latencies = new Float64Array(total).fill(-1)
  let received = 0
  let start = 0
  let allReceived: () => void = () => undefined
  const done = new Promise<void>((resolve) => (allReceived = resolve))
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()))
  await consumer.run({
    // No commits, as Kafka's own end-to-end latency tool (EndToEndLatency: enable.auto.commit=false): kafkajs with
    // autoCommit commits after every batch it hands over (whatever autoCommitInterval says) and fetches again only
    // once that commit is answered, which put a (replicated, on the cluster) __consumer_offsets write into the
    // latency of every record.
    autoCommit: false,
    eachBatchAutoResolve: true,
    eachBatch: async ({ batch }) => {
      const now = performance.now()
      for (const message of batch.messages) {
        const i = Number(message.value!.toString())
        if (latencies[i] === -1) received++
        latencies[i] = now - (start + i * intervalMs)
      }
      if (received === total) allReceived()
    },
  })
  await joined
  await sleep(500)
  const meter = startCpuMeter(setup.pids)
  const loadAvg = load()
  // The client's own event-loop delay: a record received while the loop is held counts that delay in its latency.
  const loopDelay = monitorEventLoopDelay({ resolution: 1 })
  loopDelay.enable()
  const ackMs: number[] = []
  let errors = 0
  let sent = 0
  let inFlight = 0
  start = performance.now()
  while (sent < total) {
    const due = Math.min(total, Math.floor((performance.now() - start) / intervalMs) + 1)
    // As a Kafka producer's sender: what is due waits (and gathers into one request) while the in-flight requests
    // are at their limit; its latency still counts from its intended send time.
    if (due > sent && inFlight < MAX_IN_FLIGHT) {
      const messages = Array.from({ length: due - sent }, (_, k) => ({ value: String(sent + k) }))
      const sentAt = performance.now()
      inFlight++
      producer.send({ topic, acks: setup.acks, messages }).then(
        () => void ackMs.push(performance.now() - sentAt),
        () => void errors++,
      ).finally(() => inFlight--)
      sent = due
    }
    await sleep(1)
  }
  await Promise.race([done, sleep(30_000)])
  loopDelay.disable()
  const cpu = meter?.()
  await consumer.disconnect()
  await producer.disconnect()
  const counted = Array.from(latencies.subarray(RATE * WARMUP_SECONDS)).filter((ms) => ms >= 0).sort((a, b) => a - b)
  ackMs.sort((a, b) => a - b)
  return {
    p50Ms: round(percentile(counted, 50), 2),
    p99Ms: round(percentile(counted, 99), 2),
    p999Ms: round(percentile(counted, 99.9), 2),
    maxMs: round(counted.at(-1) ?? 0, 2),
    samples: counted.length,
    missing: total - received,
    produceErrors: errors,
    sendAckP50Ms: round(percentile(ackMs, 50), 2),
    sendAckP99Ms: round(percentile(ackMs, 99), 2),
    clientLoopDelayP99Ms: round(loopDelay.percentile(99) / 1e6, 2),
    clientLoopDelayMaxMs: round(loopDelay.max / 1e6, 2),
    brokerCores: cpu ? round(Object.values(cpu.processes).reduce((s, c) => s + c, 0), 2) : null,
    clientCores: cpu ? round(cpu.client, 2) : null,
    othersCores: cpu ? round(cpu.others, 2) : null,
    load: loadAvg,
  }
}

async function latencyScenario(setups: readonly Setup[]) {
  const turns: Record<string, Awaited<ReturnType<typeof latencyRun>>>[] = []
  for (let turn = 0; turn < REPEAT; turn++) {
    const order = setups.map((_, i) => setups[(i + turn) % setups.length]!)
    const results: Record<string, Awaited<ReturnType<typeof latencyRun>>> = {}
    for (const setup of order) {
      const topic = `latency-${setup.name}-${turn}`
      await createTopics(setup.bootstrap, [topic], setup.replicationFactor)
      results[setup.name] = await latencyRun(setup, topic)
    }
    turns.push(results)
  }
  const summary = (key: 'p50Ms' | 'p99Ms' | 'maxMs') => Object.fromEntries(setups.map((s) => [s.name, spread(turns.map((t) => t[s.name]![key]))]))
  return {
    offeredRecordsPerSec: RATE,
    maxInFlight: MAX_IN_FLIGHT,
    nagle: NAGLE,
    seconds: LATENCY_SECONDS,
    warmupSeconds: WARMUP_SECONDS,
    turns,
    p50Ms: summary('p50Ms'),
    p99Ms: summary('p99Ms'),
    maxMs: summary('maxMs'),
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Failover

type Fault = 'kill-leader' | 'sigstop-leader' | 'kill-controller'

/**
 * An idempotent producer at a fixed rate: one request in flight, each carrying every record that fell due while the
 * previous one was out (as a Kafka producer's batch gathers); every acknowledgement's time is kept.
 */
function steadyProducer(producer: Producer, topic: string) {
  const acks: number[] = []
  const errorMessages = new Set<string>()
  let errors = 0
  let sent = 0
  let running = true
  const start = performance.now()
  const loop = (async () => {
    while (running) {
      const due = Math.floor(((performance.now() - start) * FAILOVER_RATE) / 1000) + 1
      if (due <= sent) {
        await sleep(1000 / FAILOVER_RATE)
        continue
      }
      const messages = Array.from({ length: due - sent }, (_, k) => ({ value: String(sent + k) }))
      sent = due
      try {
        await producer.send({ topic, messages })
        acks.push(performance.now())
      } catch (error) {
        errors++
        errorMessages.add((error as Error).message)
      }
    }
  })()
  return {
    acks,
    errors: () => errors,
    errorMessages,
    async stop() {
      running = false
      await loop
    },
  }
}

async function failoverRun(cluster: ClusterProcesses, topic: string, fault: Fault, producer: ReturnType<typeof steadyProducer>) {
  const addressOf = (id: number): string => `127.0.0.1:${cluster.plan.clientPort(id)}`
  const whole = async (): Promise<PartitionState | false> => {
    const state = await partitionState(addressOf(1), topic)
    const status = await cluster.status(1)
    return state.isr.length === 3 && status.liveBrokers.length === 3 && status.controllerId >= 0 && state
  }
  await waitFor('a whole ISR and three live brokers', whole, 120_000)
  // A node back in the ISR takes its partitions' leadership back (preferred-leader election); the producer's stall
  // from that move must not be charged to the next fault.
  const preferred = await waitFor('the preferred leader leading', async () => {
    const state = await whole()
    return state && state.leader === state.replicas[0] && state
  }, 30_000).catch(() => undefined)
  const before = preferred ?? (await waitFor('a whole ISR', whole))
  const status = await cluster.status(1)
  const target = fault === 'kill-controller' ? status.controllerId : before.leader
  const survivor = cluster.plan.nodeIds.find((id) => id !== target)!
  const node = cluster.nodes.get(target)!
  const loadAvg = load()
  await sleep(1000)
  const t0 = performance.now()
  if (fault === 'sigstop-leader') process.kill(node.pid, 'SIGSTOP')
  else await node.kill()
  const elected = await waitFor(fault === 'kill-controller' ? 'a new controller' : 'a new leader', async () => {
    if (fault === 'kill-controller') {
      const seen = await cluster.status(survivor)
      return seen.controllerId >= 0 && seen.controllerId !== target && performance.now()
    }
    const state = await partitionState(addressOf(survivor), topic)
    return state.leader >= 0 && state.leader !== target && state.leaderEpoch > before.leaderEpoch && performance.now()
  }, 120_000)
  // A stopped leader resumes once its successor leads: it then answers its clients NOT_LEADER_OR_FOLLOWER.
  let resumed = performance.now()
  if (fault === 'sigstop-leader') process.kill(node.pid, 'SIGCONT')
  // The stall ends no earlier than the new leader (or controller) is named: an acknowledgement of a request answered
  // just before the fault may land just after it, and must not end the window before the stall shows.
  const recovered = await waitFor('an acknowledgement after the new leader is named', async () => producer.acks.find((at) => at > elected), 120_000).catch(() => {
    throw new Error(`no acknowledgement within 120 s of ${fault} of node ${target}; the producer's errors: ${[...producer.errorMessages].join('; ')}`)
  })
  // Some more acknowledgements, so a second stall right after the first one is seen too.
  await sleep(2000)
  const acks = producer.acks.filter((at) => at > t0 - 1000 && at <= recovered + 2000)
  let noProgressMs = 0
  let stallEnd = t0
  for (let i = 1; i < acks.length; i++) {
    if (acks[i]! > t0 && acks[i]! - acks[i - 1]! > noProgressMs) {
      noProgressMs = acks[i]! - acks[i - 1]!
      stallEnd = acks[i]!
    }
  }
  if (fault !== 'sigstop-leader') {
    resumed = performance.now()
    await cluster.restart(target)
  }
  await waitFor('the node back in the ISR', async () => (await partitionState(addressOf(survivor), topic)).isr.length === 3, 120_000)
  const rejoinMs = performance.now() - resumed
  return {
    target,
    targetWasLeader: target === before.leader,
    targetWasController: target === status.controllerId,
    preferredLeaderLed: preferred !== undefined,
    noProgressMs: Math.round(noProgressMs),
    progressAfterFaultMs: Math.round(stallEnd - t0),
    electedAfterMs: Math.round(elected - t0),
    rejoinedIsrAfterMs: Math.round(rejoinMs),
    producerErrorsSoFar: producer.errors(),
    load: loadAvg,
  }
}

async function failoverScenario(cluster: ClusterProcesses) {
  const topic = 'failover'
  await createTopics(cluster.bootstrap, [topic], 3)
  const kafka = kafkaOf(cluster.bootstrap, 'brook-failover-bench')
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await producer.connect()
  const steady = steadyProducer(producer, topic)
  const faults: Fault[] = ['kill-leader', 'sigstop-leader', 'kill-controller']
  const runs: Record<Fault, Awaited<ReturnType<typeof failoverRun>>[]> = { 'kill-leader': [], 'sigstop-leader': [], 'kill-controller': [] }
  try {
    for (let turn = 0; turn < FAILOVER_REPEAT; turn++) {
      for (const fault of faults) runs[fault].push(await failoverRun(cluster, topic, fault, steady))
    }
  } finally {
    await steady.stop()
    await producer.disconnect().catch(() => undefined)
  }
  return {
    brokerSessionTimeoutMs: SESSION_TIMEOUT_MS,
    producer: { recordsPerSec: FAILOVER_RATE, requestTimeoutMs: REQUEST_TIMEOUT_MS, acknowledged: steady.acks.length, errors: steady.errors(), errorMessages: [...steady.errorMessages] },
    runs,
    noProgressMs: Object.fromEntries(faults.map((f) => [f, spread(runs[f].map((r) => r.noProgressMs))])),
    electedAfterMs: Object.fromEntries(faults.map((f) => [f, spread(runs[f].map((r) => r.electedAfterMs))])),
  }
}

// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'brook-cluster-bench-'))
  const startedAt = new Date().toISOString()
  const loadAtStart = load()
  let cluster: ClusterProcesses | undefined
  let single: BrokerProcess | undefined
  try {
    cluster = await startCluster({ nodes: 3, dataDir: join(dir, 'cluster'), extraArgs: BROKER_ARGS, nodeArgs: NODE_ARGS })
    single = await startBroker({ dataDir: join(dir, 'single'), args: BROKER_ARGS, nodeArgs: NODE_ARGS })
    const live = cluster
    await waitFor('three live brokers and a controller', async () => {
      const status = await live.status(1)
      return status.controllerId >= 0 && status.liveBrokers.length === 3
    }, 120_000)
    const clusterPids = Object.fromEntries([...cluster.nodes].map(([id, node]) => [`node${id}`, node.pid]))
    const setups: Setup[] = [
      { name: 'cluster-rf3-acksall', bootstrap: cluster.bootstrap, replicationFactor: 3, acks: -1, pids: clusterPids },
      { name: 'single-rf1-acks1', bootstrap: [`${single.host}:${single.port}`], replicationFactor: 1, acks: 1, pids: { single: single.pid } },
      { name: 'cluster-rf1-acks1', bootstrap: cluster.bootstrap, replicationFactor: 1, acks: 1, pids: clusterPids },
    ]
    const result: Record<string, unknown> = { startedAt, loadAtStart, brokerArgs: BROKER_ARGS }
    if (SCENARIOS.has('throughput')) result.throughput = await throughputScenario(setups)
    if (SCENARIOS.has('latency')) result.latency = await latencyScenario(setups)
    if (SCENARIOS.has('failover')) result.failover = await failoverScenario(cluster)
    result.loadAtEnd = load()
    console.log(JSON.stringify(result, null, 2))
    // A profiled node writes its profile only when it exits cleanly.
    if (NODE_ARGS.length > 0) await Promise.all([...cluster.nodes.values(), single].map((node) => node.stop().catch(() => undefined)))
  } finally {
    await cluster?.kill()
    await single?.kill()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
