/**
 * What one client can make a node hold: abuse scenarios for the network layer, measured as the broker process's
 * resident memory (VmRSS, sampled every 250 ms) and another client's Metadata latency meanwhile. They print figures;
 * nothing here passes or fails.
 *
 *   npm run build
 *   node dist/bench/abuse.js --help                                   # every option, with its default
 *   node dist/bench/abuse.js --scenario flood --connections 1         # acks=0 produce flood, 1 MiB frames
 *   node dist/bench/abuse.js --scenario flood --connections 8 --seconds 20
 *   node dist/bench/abuse.js --scenario flood --acks 1                # the same load as a well-behaved producer
 *   node dist/bench/abuse.js --scenario fetch --pipelined 1           # a Fetch for 2^31-1 bytes, answer not read
 *   node dist/bench/abuse.js --scenario fetch --pipelined 6 --partition-mb 1024
 *   node dist/bench/abuse.js --scenario fetch --connections 8 --partition-mb 1024  # 8 clients, each not reading
 *   node dist/bench/abuse.js --scenario idle --connections 3000       # connections that sit after one request
 *   ... --broker-args="--queued-max-request-bytes 52428800"           # any `brook start` flags
 *
 * - flood: every connection writes one pre-encoded acks=0 Produce frame (one batch of --frame-kb) again and again, as
 *   fast as its socket takes it (a write, then the next once the socket drains), for --seconds. Then each sends an
 *   acks=1 request and waits for its answer, which comes after every earlier request on that connection was handled,
 *   and the partition's log end offset says how many records were stored (all that were sent, or the node lost some).
 *   With --acks 1 the connections keep 16 requests in flight instead, as a producer does: the memory the same write
 *   rate costs without any abuse, to hold the flood's figures against.
 * - fetch: --partition-mb of 1 MiB batches are produced first, and the broker is restarted on that data (so that the
 *   memory the writes left is not counted); then each of --connections connections sends --pipelined Fetch requests with maxBytes =
 *   partitionMaxBytes = 2^31-1 and does not read for --seconds; then they read, and the answers' sizes are reported.
 * - idle: --connections connections each get one ApiVersions answer and then sit; RSS before and after.
 */
import { connect, type Socket } from 'node:net'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KafkaClient, checkError } from '../client/kafka-client.js'
import { encodeRequestFrame } from '../protocol/frame.js'
import { createTopics, type CreateTopicsRequest, type CreateTopicsResponse } from '../protocol/messages/create-topics.js'
import { produce, type ProduceRequest } from '../protocol/messages/produce.js'
import { fetch, type FetchRequest } from '../protocol/messages/fetch.js'
import { metadata, type MetadataRequest, type MetadataResponse } from '../protocol/messages/metadata.js'
import { listOffsets, type ListOffsetsRequest, type ListOffsetsResponse } from '../protocol/messages/list-offsets.js'
import { apiVersions } from '../protocol/messages/api-versions.js'
import { IsolationLevel, ZERO_UUID } from '../protocol/constants.js'
import { Option } from '@commander-js/extra-typings'
import { benchCommand, number } from './args.js'
import { makeBatchPool } from './batches.js'
import { startBroker, type BrokerProcess } from './broker-process.js'
import { percentile } from './measure.js'
import { produceLoad } from './produce-load.js'

const TOPIC = 'abuse'
const MiB = 1024 * 1024
const INT32_MAX = 2_147_483_647
const SAMPLE_MS = 250
/** Requests in flight per connection in the acks=1 flood, as the bench's produce keeps. */
const ACKS_1_WINDOW = 16

const COMMAND = benchCommand(
  'abuse',
  'node dist/bench/abuse.js --scenario <flood|fetch|idle> [options]',
  "What one client can make a node hold: the broker's RSS and another client's Metadata latency. Prints JSON.",
)
  .addOption(new Option('--scenario <name>', 'the scenario').choices(['flood', 'fetch', 'idle'] as const).makeOptionMandatory())
  .option('--connections <n>', 'connections of the abusing client', number(), 1)
  .option('--seconds <n>', 'how long the flood runs, or the fetches go unread', number(), 20)
  .option('--frame-kb <n>', 'the batch in each flood frame, KiB', number(), 1024)
  .option('--pipelined <n>', 'Fetch requests per connection (fetch)', number(), 1)
  .option('--partition-mb <n>', 'MiB produced before the fetches (fetch)', number(), 1024)
  .addOption(new Option('--acks <acks>', '1: the flood as a well-behaved producer, 16 requests in flight').choices(['0', '1'] as const).default('0'))
  .option('--broker-args <args>', 'brook start flags, e.g. --broker-args "--queued-max-request-bytes 52428800"', '')
const flags = COMMAND.parse().opts()

const scenario = flags.scenario
const connections = flags.connections
const seconds = flags.seconds

/** Resident memory of a process, in MB (10^6 bytes). */
function rssMB(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Math.round((Number(match![1]) * 1024) / 1e6)
}

/** CPU seconds a process (all its threads) has used (Linux, /proc/<pid>/stat: utime + stime, in clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/**
 * Waits until a process has used under 5% of a core for two seconds in a row (at most two minutes): a restarted broker
 * replays and compacts its database first, which moves RSS by hundreds of MB on its own.
 */
async function quiet(pid: number): Promise<void> {
  let calm = 0
  for (let second = 0; second < 120 && calm < 2; second++) {
    const before = cpuSeconds(pid)
    await new Promise((resolve) => setTimeout(resolve, 1000))
    calm = cpuSeconds(pid) - before < 0.05 ? calm + 1 : 0
  }
  // Resets the peak (VmHWM), so that the peak reported is the scenario's (Linux 4.0+; best effort elsewhere).
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
  } catch {
    // Without it the peak includes the replay.
  }
}

/** Samples RSS every 250 ms; `stop` returns the highest value of each second, in order. */
function sampleRss(pid: number): { stop(): number[] } {
  const started = performance.now()
  const perSecond: number[] = []
  const timer = setInterval(() => {
    const second = Math.floor((performance.now() - started) / 1000)
    perSecond[second] = Math.max(perSecond[second] ?? 0, rssMB(pid))
  }, SAMPLE_MS)
  return {
    stop() {
      clearInterval(timer)
      return Array.from(perSecond, (value) => value ?? 0)
    },
  }
}

/** Another client asking for Metadata in a loop; `stop` returns its latencies. */
function probeMetadata(broker: BrokerProcess): { stop(): Promise<{ answers: number; p50Ms: number; p99Ms: number; maxMs: number }> } {
  let running = true
  const latencies: number[] = []
  const loop = (async () => {
    const client = await KafkaClient.connect(broker.host, broker.port, { clientId: 'abuse-metadata', timeoutMs: 600_000 })
    const version = client.version(metadata)
    try {
      while (running) {
        const sent = performance.now()
        await client.request<Partial<MetadataRequest>, MetadataResponse>(metadata, version, { topics: [{ name: TOPIC, topicId: ZERO_UUID }], allowAutoTopicCreation: false })
        latencies.push(performance.now() - sent)
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    } finally {
      client.close()
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      latencies.sort((a, b) => a - b)
      const round = (ms: number): number => Math.round(ms * 10) / 10
      return { answers: latencies.length, p50Ms: round(percentile(latencies, 50)), p99Ms: round(percentile(latencies, 99)), maxMs: round(latencies.at(-1) ?? 0) }
    },
  }
}

async function createTopic(broker: BrokerProcess): Promise<void> {
  const admin = await KafkaClient.connect(broker.host, broker.port, { clientId: 'abuse' })
  try {
    const request: CreateTopicsRequest = { topics: [{ name: TOPIC, numPartitions: 1, replicationFactor: 1, assignments: [], configs: [] }], timeoutMs: 30_000, validateOnly: false }
    const response = await admin.request<CreateTopicsRequest, CreateTopicsResponse>(createTopics, 7, request)
    for (const topic of response.topics) checkError(topic.errorCode, `creating topic ${topic.name}`, topic.errorMessage)
  } finally {
    admin.close()
  }
}

async function logEndOffset(broker: BrokerProcess): Promise<bigint> {
  const client = await KafkaClient.connect(broker.host, broker.port, { clientId: 'abuse' })
  try {
    const response = await client.request<Partial<ListOffsetsRequest>, ListOffsetsResponse>(listOffsets, 5, {
      replicaId: -1,
      isolationLevel: IsolationLevel.READ_UNCOMMITTED,
      topics: [{ name: TOPIC, partitions: [{ partitionIndex: 0, currentLeaderEpoch: -1, timestamp: -1n, maxNumOffsets: 1 }] }],
    })
    return response.topics[0]!.partitions[0]!.offset ?? -1n
  } finally {
    client.close()
  }
}

function produceFrame(batch: Buffer, acks: 0 | 1, correlationId: number): Buffer {
  const request: ProduceRequest = { transactionalId: null, acks, timeoutMs: 30_000, topicData: [{ name: TOPIC, partitionData: [{ index: 0, records: batch }] }] }
  return Buffer.concat(encodeRequestFrame(produce, 7, correlationId, 'abuse', request))
}

function open(broker: BrokerProcess): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: broker.host, port: broker.port })
    socket.once('connect', () => resolve(socket))
    socket.once('error', reject)
  })
}

/** Calls `onFrame` with the size (size prefix excluded) of each response frame as its last byte arrives. */
function onFrames(socket: Socket, onFrame: (size: number) => void): () => void {
  let head = Buffer.alloc(0)
  let size = 0
  // -1 while reading a size prefix.
  let remaining = -1
  const onData = (chunk: Buffer): void => {
    let at = 0
    while (at < chunk.length || remaining === 0) {
      if (remaining === 0) {
        remaining = -1
        onFrame(size)
      } else if (remaining < 0) {
        const taken = chunk.subarray(at, at + 4 - head.length)
        head = Buffer.concat([head, taken])
        at += taken.length
        if (head.length < 4) return
        size = remaining = head.readInt32BE(0)
        head = Buffer.alloc(0)
      } else {
        const n = Math.min(remaining, chunk.length - at)
        remaining -= n
        at += n
      }
    }
  }
  socket.on('data', onData)
  return () => socket.off('data', onData)
}

/** Resolves with the sizes of the next `count` response frames on the socket. */
function readFrames(socket: Socket, count: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const sizes: number[] = []
    const onClose = (): void => reject(new Error(`the broker closed the connection after ${sizes.length} answers`))
    const stop = onFrames(socket, (size) => {
      sizes.push(size)
      if (sizes.length < count) return
      stop()
      socket.off('close', onClose)
      resolve(sizes)
    })
    socket.once('close', onClose)
  })
}

interface Flooder {
  readonly socket: Socket
  sent: number
  answered: number
  onAnswer: () => void
}

async function flood(node: Node): Promise<void> {
  const broker = node.current
  await createTopic(broker)
  const acks = flags.acks === '1' ? 1 : 0
  const pool = makeBatchPool({ batches: 1, batchBytes: flags.frameKb * 1024, recordBytes: 1000 })
  const batch = pool.batches[0]!
  const frame = produceFrame(batch, acks, 1)
  let running = true
  const flooders = (await Promise.all(Array.from({ length: connections }, () => open(broker)))).map((socket) => {
    const flooder: Flooder = { socket, sent: 0, answered: 0, onAnswer: () => undefined }
    // acks=0: as fast as the socket takes the frames. acks=1: ACKS_1_WINDOW requests in flight, as a producer keeps.
    const pump = (): void => {
      while (running && (acks === 0 || flooder.sent - flooder.answered < ACKS_1_WINDOW)) {
        flooder.sent++
        if (!socket.write(frame)) return
      }
    }
    onFrames(socket, () => {
      flooder.answered++
      pump()
      flooder.onAnswer()
    })
    socket.on('drain', pump)
    pump()
    return flooder
  })
  const before = rssMB(broker.pid)
  const rss = sampleRss(broker.pid)
  const probe = probeMetadata(broker)
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
  running = false
  const latency = await probe.stop()
  const timeline = rss.stop()
  // An acks=1 request behind the flood is answered once everything before it on its connection was handled.
  const last = produceFrame(batch, 1, 2)
  await Promise.all(flooders.map((flooder) => new Promise<void>((resolve, reject) => {
    flooder.socket.write(last)
    flooder.sent++
    const expected = acks === 1 ? flooder.sent : 1
    flooder.onAnswer = () => {
      if (flooder.answered < expected) return
      flooder.socket.destroy()
      resolve()
    }
    flooder.socket.once('close', () => reject(new Error('the broker closed a flooding connection')))
  })))
  const stored = Number(await logEndOffset(broker))
  const frames = flooders.reduce((sum, flooder) => sum + flooder.sent, 0)
  report({
    scenario: `flood, ${connections} connection(s), acks=${acks} frames of ${frame.length} bytes, ${seconds} s`,
    rssMB: { before, peak: rssMB(broker.pid, 'VmHWM'), perSecond: timeline },
    metadataDuringFlood: latency,
    framesSent: frames,
    MBpsSent: Math.round((frames * frame.length) / 1e6 / seconds),
    recordsSent: frames * pool.recordsPerBatch,
    recordsStored: stored,
  })
}

async function bigFetch(node: Node): Promise<void> {
  const writer = node.current
  await createTopic(writer)
  const pool = makeBatchPool({ batches: 16, batchBytes: MiB, recordBytes: 1000 })
  const batches = Math.ceil((flags.partitionMb * MiB) / pool.batches[0]!.length)
  const produced = await produceLoad({ host: writer.host, port: writer.port, topic: TOPIC, partitions: 1, version: 7, pool, totalBatches: batches, batchesPerRequest: 1, window: 8, connections: 1 })
  if (produced.errors > 0) throw new Error(`producing the partition failed: ${produced.firstError}`)
  // A fresh process on the same data, so that the memory the writes left behind is not counted against the fetch.
  const broker = await node.restart()
  await quiet(broker.pid)
  const pipelined = flags.pipelined
  const request: FetchRequest = {
    clusterId: null,
    replicaId: -1,
    replicaState: { replicaId: -1, replicaEpoch: -1n },
    maxWaitMs: 0,
    minBytes: 1,
    maxBytes: INT32_MAX,
    isolationLevel: IsolationLevel.READ_UNCOMMITTED,
    sessionId: 0,
    sessionEpoch: -1,
    topics: [{ topic: TOPIC, topicId: ZERO_UUID, partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: 0n, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: INT32_MAX, replicaDirectoryId: ZERO_UUID }] }],
    forgottenTopicsData: [],
    rackId: '',
  }
  const before = rssMB(broker.pid)
  const sockets = await Promise.all(Array.from({ length: connections }, () => open(broker)))
  for (const socket of sockets) socket.pause()
  const rss = sampleRss(broker.pid)
  const probe = probeMetadata(broker)
  for (const socket of sockets) {
    for (let i = 0; i < pipelined; i++) socket.write(Buffer.concat(encodeRequestFrame(fetch, 11, i + 1, 'abuse', request)))
  }
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000))
  const latency = await probe.stop()
  const timeline = rss.stop()
  const sizes: number[] = []
  for (const socket of sockets) {
    const answers = readFrames(socket, pipelined)
    socket.resume()
    sizes.push(...(await answers))
    socket.destroy()
  }
  report({
    scenario: `fetch of 2^31-1 bytes from a ${Math.round((batches * pool.batches[0]!.length) / 1e6)} MB partition, ${connections} connection(s), ${pipelined} pipelined each, not read for ${seconds} s`,
    rssMB: { before, peak: rssMB(broker.pid, 'VmHWM'), perSecond: timeline },
    metadataMeanwhile: latency,
    answerMB: sizes.map((size) => Math.round(size / 1e5) / 10),
  })
}

async function idle(node: Node): Promise<void> {
  const broker = node.current
  const before = rssMB(broker.pid)
  const probe = Buffer.concat(encodeRequestFrame(apiVersions, 0, 1, 'abuse', {}))
  const sockets: Socket[] = []
  for (let opened = 0; opened < connections; opened += 100) {
    const wave = await Promise.all(Array.from({ length: Math.min(100, connections - opened) }, async () => {
      const socket = await open(broker)
      const answered = readFrames(socket, 1)
      socket.write(probe)
      await answered
      return socket
    }))
    sockets.push(...wave)
  }
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const after = rssMB(broker.pid)
  for (const socket of sockets) socket.destroy()
  report({ scenario: `${connections} idle connections (one ApiVersions each)`, rssMB: { before, withConnections: after, perConnectionKB: Math.round(((after - before) * 1e6) / connections / 1024 * 10) / 10 } })
}

function report(result: object): void {
  console.log(JSON.stringify(result, null, 2))
}

/** The broker process of a scenario; `restart` replaces it with a fresh one on the same data directory. */
interface Node {
  readonly current: BrokerProcess
  restart(): Promise<BrokerProcess>
}

const SCENARIOS: Record<typeof scenario, (node: Node) => Promise<void>> = { flood, fetch: bigFetch, idle }
const run = SCENARIOS[scenario]
const dataDir = mkdtempSync(join(tmpdir(), 'brook-abuse-'))
const start = (): Promise<BrokerProcess> => startBroker({ dataDir, args: flags.brokerArgs.split(' ').filter((arg) => arg !== '') })
let current = await start()
try {
  await run({
    get current() {
      return current
    },
    async restart() {
      await current.stop()
      current = await start()
      return current
    },
  })
} finally {
  await current.stop()
  rmSync(dataDir, { recursive: true, force: true })
}
