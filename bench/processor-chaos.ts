/**
 * The built-in IoT pipeline, exactly_once, on a three-node cluster whose nodes are killed with -9 one after another
 * while it runs, against the same pipeline on a single node left alone: the read_committed outputs must be equal.
 *
 *   simulated fleet (same seed, same first slot) ──▶ readings on the cluster (RF 3)  ──▶ brook process iot ──▶ outputs ─┐
 *                                                └─▶ readings on a single node        ──▶ brook process iot ──▶ outputs ─┴▶ compared
 *   meanwhile on the cluster: kill -9 a random node --kill-after-ms after the last restart, start it again
 *   --down-ms later, until the pipeline's committed offsets reach the end of its input
 *
 * Each output topic (stats, averages, alerts, late readings) is read whole by a read_committed consumer on both sides
 * and compared as a multiset of key and value: a record missing on the cluster is lost work, one too many is a
 * duplicate. Prints one line per topic and a JSON summary; exits 1 when any topic differs.
 *
 * `node dist/bench/processor-chaos.js [--readings 1200000] [--seed 24]` (needs `npm run build`; `brook process` runs
 * from dist/).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import kafkajs, { type Kafka } from 'kafkajs'
import { simulateFleet } from '../processor/simulator/index.js'
import { benchCommand, number } from './args.js'
import { startBroker } from './broker-process.js'
import { startCluster } from './cluster-process.js'

const BROOK = resolve(import.meta.dirname, '../cli/brook.js')
const APPLICATION_ID = 'chaos'
const INPUT = 'readings'
const OUTPUTS = ['readings-stats-1m', 'readings-avg-5m', 'readings-alerts', 'readings-late']
/** Quick fencing, so that a killed node's partitions move within seconds (Kafka's defaults: 2 s and 9 s). */
const NODE_ARGS = ['--broker-heartbeat-interval-ms', '500', '--broker-session-timeout-ms', '3000', '--default-replication-factor', '3', '--group-initial-rebalance-delay-ms', '0']

const command = benchCommand('processor-chaos', 'node dist/bench/processor-chaos.js [options]', 'the IoT pipeline on a three-node cluster with nodes killed -9 while it runs, against the same pipeline on one undisturbed node')
  .option('--readings <n>', 'readings the simulated fleet sends', number(1), 1_200_000)
  .option('--seed <n>', 'seed of the simulated fleet', number(0), 24)
  .option('--devices <n>', 'simulated devices (4 sensors each)', number(1), 60)
  .option('--partitions <n>', 'partitions of the input topic', number(1), 3)
  .option('--kill-after-ms <ms>', 'time from a restart (or the start) to the next kill', number(0), 6000)
  .option('--down-ms <ms>', 'how long a killed node stays down', number(0), 10_000)
  .option('--commit-interval-ms <ms>', "the pipeline's commit interval", number(1), 200)
  .option('--max-seconds <s>', 'give up when the pipeline has not caught up after this long', number(1), 900)
  .option('--keep', 'keep the data directories and logs (their path is printed)')
command.parse()
const options = command.opts()

const root = mkdtempSync(join(tmpdir(), 'brook-chaos-'))
const quiet = (brokers: string[]): Kafka => new kafkajs.Kafka({ clientId: 'chaos-bench', brokers, logLevel: kafkajs.logLevel.NOTHING, retry: { retries: 20, initialRetryTime: 100, maxRetryTime: 1000 } })
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms))

/** `brook process iot` on `bootstrap`, its stderr in `<root>/<name>.log`. */
function startProcessor(name: string, bootstrap: string[]): { child: ChildProcess; exited: Promise<number | null> } {
  const args = ['process', 'iot', '--application-id', APPLICATION_ID, '--bootstrap-server', bootstrap.join(','), '--state-dir', join(root, `state-${name}`), '--partitions', String(options.partitions), '--commit-interval-ms', String(options.commitIntervalMs), '--idle-timeout-ms', '3600000', '--stats-window', '10s', '--average-window', '30s', '--average-advance', '10s', '--grace', '2s']
  const child = spawn(process.execPath, [BROOK, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
  child.stderr!.pipe(createWriteStream(join(root, `${name}.log`)))
  return { child, exited: new Promise((done) => child.once('exit', (code) => done(code))) }
}

/** Records of the pipeline's input not yet covered by its group's committed offsets, or null when the cluster did not answer. */
async function lag(kafka: Kafka): Promise<number | null> {
  const admin = kafka.admin({ retry: { retries: 1 } })
  try {
    await admin.connect()
    const ends = await admin.fetchTopicOffsets(INPUT)
    const [committed] = await admin.fetchOffsets({ groupId: APPLICATION_ID, topics: [INPUT] })
    return ends.reduce((sum, end) => sum + Number(end.high) - Math.max(0, Number(committed?.partitions.find((p) => p.partition === end.partition)?.offset ?? 0)), 0)
  } catch {
    return null
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

/**
 * Every record of `topic` (read_committed) as `key|value` (`partition|offset|key|value` with `placed`), read until
 * each partition's end offset.
 */
async function readAll(kafka: Kafka, topic: string, placed = false): Promise<string[]> {
  const admin = kafka.admin()
  await admin.connect()
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]))
  await admin.disconnect()
  const records: string[] = []
  const reached = new Map<number, number>()
  const consumer = kafka.consumer({ groupId: `chaos-reader-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const done = () => [...ends].every(([p, end]) => (reached.get(p) ?? 0) >= end)
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) records.push(`${placed ? `${batch.partition}|${m.offset}|` : ''}${m.key?.toString() ?? ''}|${m.value?.toString() ?? ''}`)
      reached.set(batch.partition, Number(batch.lastOffset()) + 1)
    },
  })
  for (const deadline = Date.now() + 120_000; !done() && Date.now() < deadline; ) await sleep(200)
  await consumer.disconnect()
  if (!done()) throw new Error(`${topic}: not read to its end within 2 minutes`)
  return records
}

/** Records in `a` and not in `b`, counted with multiplicity. */
function surplus(a: string[], b: string[]): number {
  const counts = new Map<string, number>()
  for (const record of b) counts.set(record, (counts.get(record) ?? 0) + 1)
  let extra = 0
  for (const record of a) {
    const left = counts.get(record) ?? 0
    if (left > 0) counts.set(record, left - 1)
    else extra++
  }
  return extra
}

const cluster = await startCluster({ nodes: 3, dataDir: join(root, 'cluster'), extraArgs: NODE_ARGS })
const single = await startBroker({ dataDir: join(root, 'single'), args: ['--group-initial-rebalance-delay-ms', '0'] })
const clusterKafka = quiet(cluster.bootstrap)
const singleKafka = quiet([`${single.host}:${single.port}`])
const processors: { child: ChildProcess; exited: Promise<number | null> }[] = []
let failed = false
try {
  // Topics get three replicas: every node must be an unfenced broker before the first is created.
  for (const deadline = Date.now() + 120_000; ; await sleep(200)) {
    const status = await cluster.status(1).catch(() => null)
    if (status !== null && status.controllerId >= 0 && status.liveBrokers.length === cluster.plan.nodeIds.length) break
    if (Date.now() > deadline) throw new Error('the cluster did not have three live brokers within 2 minutes')
  }
  // The same seed and first slot give the same readings, in the same order, on both sides.
  const fleet = { topic: INPUT, partitions: options.partitions, count: options.readings, seed: options.seed, devices: options.devices, speedup: 'as-fast-as-possible' as const, startMs: Date.now() - options.readings * 1000, log: { info: () => {}, warn: () => {} } }
  await simulateFleet({ ...fleet, bootstrapServers: cluster.bootstrap })
  await simulateFleet({ ...fleet, bootstrapServers: [`${single.host}:${single.port}`] })
  const [singleInput, clusterInput] = [await readAll(singleKafka, INPUT, true), await readAll(clusterKafka, INPUT, true)]
  if (surplus(singleInput, clusterInput) + surplus(clusterInput, singleInput) > 0) throw new Error('the two inputs differ (the simulated fleet sent other readings, or in another order)')
  processors.push(startProcessor('single', [`${single.host}:${single.port}`]), startProcessor('cluster', cluster.bootstrap))
  const startedMs = Date.now()
  // A kill's stall: from the kill to the first commit after it that moved the group's committed offsets on.
  const kills: { node: number; atMs: number; stallMs?: number }[] = []
  let down: number | null = null
  let lastChangeMs = startedMs
  let caughtUpMs: number | null = null
  let lastLag = Infinity
  while (caughtUpMs === null) {
    await sleep(500)
    const now = Date.now()
    if (processors[1]!.child.exitCode !== null) throw new Error(`the cluster's pipeline exited (${processors[1]!.child.exitCode}); see ${join(root, 'cluster.log')}`)
    if (now - startedMs > options.maxSeconds * 1000) throw new Error(`the cluster's pipeline did not catch up within ${options.maxSeconds} s`)
    const left = await lag(clusterKafka)
    if (left !== null && left < lastLag) {
      lastLag = left
      for (const kill of kills) kill.stallMs ??= Date.now() - startedMs - kill.atMs
    }
    if (down === null && now - lastChangeMs >= options.killAfterMs && left !== 0) {
      down = cluster.plan.nodeIds[Math.floor(Math.random() * cluster.plan.nodeIds.length)]!
      await cluster.nodes.get(down)!.kill()
      kills.push({ node: down, atMs: Date.now() - startedMs })
      lastChangeMs = Date.now()
    } else if (down !== null && now - lastChangeMs >= options.downMs) {
      await cluster.restart(down)
      down = null
      lastChangeMs = Date.now()
    } else if (down === null && kills.length > 0 && left === 0) {
      caughtUpMs = Date.now() - startedMs
    }
  }
  for (let deadline = Date.now() + 300_000; (await lag(singleKafka)) !== 0; await sleep(1000)) {
    if (Date.now() > deadline) throw new Error('the single node\'s pipeline did not catch up within 5 minutes')
  }
  for (const p of processors) p.child.kill('SIGTERM')
  await Promise.all(processors.map((p) => p.exited))
  const topics: Record<string, { single: number; cluster: number; missing: number; extra: number }> = {}
  for (const topic of OUTPUTS) {
    const [expected, actual] = [await readAll(singleKafka, topic), await readAll(clusterKafka, topic)]
    topics[topic] = { single: expected.length, cluster: actual.length, missing: surplus(expected, actual), extra: surplus(actual, expected) }
    console.log(`${topic}: single node ${expected.length}, cluster ${actual.length}, missing ${topics[topic].missing}, extra ${topics[topic].extra}`)
  }
  failed = Object.values(topics).some((t) => t.missing > 0 || t.extra > 0)
  const stalls = kills.flatMap((k) => (k.stallMs === undefined ? [] : [k.stallMs / 1000])).sort((a, b) => a - b)
  console.log(`${kills.length} kills; from a kill to the next commit that moved the committed offsets on: median ${stalls[Math.floor(stalls.length / 2)]?.toFixed(1)} s, longest ${stalls.at(-1)?.toFixed(1)} s`)
  console.log(JSON.stringify({ readings: options.readings, seed: options.seed, kills: kills.length, killed: kills.map((k) => `${k.node}@${(k.atMs / 1000).toFixed(0)}s`), stallSeconds: kills.map((k) => (k.stallMs === undefined ? null : Number((k.stallMs / 1000).toFixed(1)))), caughtUpSeconds: (caughtUpMs / 1000).toFixed(1), topics, equal: !failed }))
} catch (error) {
  failed = true
  console.error(`processor-chaos: ${(error as Error).message}`)
} finally {
  for (const p of processors) if (p.child.exitCode === null) p.child.kill('SIGKILL')
  await cluster.kill()
  await single.kill()
  if (options.keep || failed) console.error(`data and logs kept in ${root}`)
  else rmSync(root, { recursive: true, force: true })
}
process.exit(failed ? 1 : 0)
