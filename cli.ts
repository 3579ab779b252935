#!/usr/bin/env node
/**
 * `brook`: the one composition root, a commander program whose commands call into broker/ (and later processor/).
 * Commands parse and check their arguments here, call one module, and print; errors reach the user as one line on
 * stderr (`brook: ...`) with exit code 1, never as a stack trace.
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import { readFileSync } from 'node:fs'
import { open } from 'node:fs/promises'
import type { ReadStream } from 'node:fs'
import { once } from 'node:events'
import { DEFAULT_CONFIG, type BrokerConfig } from './broker/config.js'
import { ClusterClient, parseBootstrapServers } from './broker/cluster-client.js'
import { IsolationLevel, createTopic, deleteTopic, describeTopics, listTopics, type TopicDescription } from './broker/admin.js'
import {
  DEFAULT_PRODUCER_OPTIONS,
  PRODUCER_COMPRESSIONS,
  produceLines,
  type Acks,
  type ProduceSummary,
  type ProducerCompression,
} from './broker/console-producer.js'
import { consumeRecords, formatRecord, type StartPosition } from './broker/console-consumer.js'

const DEFAULT_BOOTSTRAP_SERVER = 'localhost:9092'

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`)
    const n = Number(value)
    if (n < min || n > max) throw new InvalidArgumentError(`${name} must be between ${min} and ${max}`)
    return n
  }
}

/** `key=value` for repeatable options; the value may be empty, the key may not. */
function keyValue(name: string) {
  return (value: string, previous: [string, string][] = []): [string, string][] => {
    const at = value.indexOf('=')
    if (at <= 0) throw new InvalidArgumentError(`${name} takes key=value, not '${value}'`)
    return [...previous, [value.slice(0, at), value.slice(at + 1)]]
  }
}

function startOffset(value: string): StartPosition {
  if (value === 'earliest' || value === 'latest') return { from: value }
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('--offset takes a non-negative offset, earliest or latest')
  return { from: 'offset', offset: BigInt(value) }
}

/** Milliseconds since the epoch, or an ISO 8601 date (`2024-05-01T12:00:00Z`). */
function timestamp(value: string): bigint {
  if (/^\d+$/.test(value)) return BigInt(value)
  const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN
  if (Number.isNaN(ms)) throw new InvalidArgumentError('--from-timestamp takes milliseconds since the epoch or an ISO 8601 date')
  return BigInt(ms)
}

/** A command that talks to a cluster: it takes --bootstrap-server (or BROOK_BOOTSTRAP_SERVER). */
function clientCommand(parent: Command, nameAndArgs: string, description: string): Command {
  return parent
    .command(nameAndArgs)
    .description(description)
    .addOption(
      new Option('--bootstrap-server <host:port>', 'broker(s) to connect to, comma-separated')
        .env('BROOK_BOOTSTRAP_SERVER')
        .default(DEFAULT_BOOTSTRAP_SERVER),
    )
}

/** Connects, runs `use`, and always closes the connections, so the process can exit. */
async function withCluster<T>(options: { bootstrapServer: string }, use: (cluster: ClusterClient) => Promise<T>): Promise<T> {
  let servers
  try {
    servers = parseBootstrapServers(options.bootstrapServer)
  } catch (error) {
    throw new Error(`--bootstrap-server: ${(error as Error).message}`)
  }
  const cluster = await ClusterClient.connect(servers)
  try {
    return await use(cluster)
  } finally {
    cluster.close()
  }
}

const program = new Command()
program
  .name('brook')
  .description('A Kafka you can npm install: a Kafka-wire-compatible broker, admin tools and a stream processor')
  .version('0.1.0')
  .configureOutput({ outputError: (message, write) => write(message.replace(/^error: /, 'brook: ')) })

program
  .command('start')
  .description('run one broker node in the foreground')
  .option('--config <file>', 'JSON file with any of the options below (flags win)')
  .option('--node-id <n>', `node id (default ${DEFAULT_CONFIG.nodeId})`, integer('--node-id', 0, 2147483647))
  .option('--host <host>', `interface to listen on (default ${DEFAULT_CONFIG.host})`)
  .option('--port <port>', `port to listen on (default ${DEFAULT_CONFIG.port})`, integer('--port', 0, 65535))
  .option('--advertised-host <host>', 'host clients are told to connect to (default: --host)')
  .option('--data-dir <dir>', `data directory (default ${DEFAULT_CONFIG.dataDir})`)
  .option('--fsync', 'sync every write to disk before acknowledging it')
  .option('--no-auto-create-topics', 'do not create unknown topics on Metadata requests')
  .option('--default-partitions <n>', `partitions of auto-created topics (default ${DEFAULT_CONFIG.defaultPartitions})`, integer('--default-partitions', 1, 10000))
  .option('--log-level <level>', 'error, warn, info or debug (default info)')
  .action(async (options: Record<string, unknown>) => {
    // Loaded here so that the client commands do not pay for the broker's storage modules at startup.
    const { Broker } = await import('./broker/broker.js')
    const fromFile = options.config ? (JSON.parse(readFileSync(String(options.config), 'utf8')) as Partial<BrokerConfig>) : {}
    const flags: Partial<BrokerConfig> = {}
    for (const key of ['nodeId', 'host', 'port', 'advertisedHost', 'dataDir', 'fsync', 'defaultPartitions', 'logLevel'] as const) {
      if (options[key] !== undefined) (flags as Record<string, unknown>)[key] = options[key]
    }
    if (options.autoCreateTopics === false) flags.autoCreateTopics = false
    const config = { ...fromFile, ...flags }
    if (config.dataDir === undefined && config.nodeId !== undefined) config.dataDir = `.brook/node-${config.nodeId}`
    const broker = await Broker.start(config)
    const shutdown = (): void => {
      void broker.stop().then(() => process.exit(0))
    }
    process.once('SIGINT', shutdown)
    process.once('SIGTERM', shutdown)
  })

// ---- brook topics: what kafka-topics.sh gives ----

const topics = program.command('topics').description('create, list, describe and delete topics (kafka-topics.sh)')

clientCommand(topics, 'create <name>', 'create a topic')
  .option('--partitions <n>', 'number of partitions (default: the broker\'s num.partitions)', integer('--partitions', 1, 2147483647))
  .option('--replication-factor <n>', 'copies of each partition (default: the broker\'s default)', integer('--replication-factor', 1, 32767))
  .option('--config <key=value>', 'a topic config, e.g. retention.ms=86400000 (repeatable)', keyValue('--config'))
  .option('--if-not-exists', 'succeed when the topic already exists')
  .action(async (name: string, options: { bootstrapServer: string; partitions?: number; replicationFactor?: number; config?: [string, string][]; ifNotExists?: boolean }) => {
    const result = await withCluster(options, (cluster) =>
      createTopic(cluster, {
        name,
        partitions: options.partitions,
        replicationFactor: options.replicationFactor,
        configs: Object.fromEntries(options.config ?? []),
        ifNotExists: options.ifNotExists ?? false,
      }),
    )
    console.log(result.created ? `Created topic ${name}.` : `Topic ${name} already exists.`)
  })

clientCommand(topics, 'list', 'list topic names').action(async (options: { bootstrapServer: string }) => {
  const names = await withCluster(options, listTopics)
  for (const name of names) console.log(name)
})

clientCommand(topics, 'describe [name]', 'partitions, leaders, replicas, offsets and configs of one topic or all')
  .action(async (name: string | undefined, options: { bootstrapServer: string }) => {
    const described = await withCluster(options, (cluster) => describeTopics(cluster, name === undefined ? null : [name]))
    for (const topic of described) console.log(formatTopic(topic))
  })

clientCommand(topics, 'delete <name>', 'delete a topic and its data').action(async (name: string, options: { bootstrapServer: string }) => {
  await withCluster(options, (cluster) => deleteTopic(cluster, name))
  console.log(`Deleted topic ${name}.`)
})

/** kafka-topics.sh --describe's layout, with the leader epoch and the log start and end offsets added. */
function formatTopic(topic: TopicDescription): string {
  const configs = topic.configs.map((c) => `${c.name}=${c.value}`).join(',')
  const lines = [
    [`Topic: ${topic.name}`, `TopicId: ${topic.topicId ?? ''}`, `PartitionCount: ${topic.partitions.length}`,
      `ReplicationFactor: ${topic.replicationFactor}`, `Configs: ${configs}`].join('\t'),
  ]
  for (const p of topic.partitions) {
    lines.push(
      '\t' +
        [`Topic: ${topic.name}`, `Partition: ${p.partition}`, `Leader: ${p.leader < 0 ? 'none' : p.leader}`,
          `LeaderEpoch: ${p.leaderEpoch}`, `Replicas: ${p.replicas.join(',')}`, `Isr: ${p.isr.join(',')}`,
          `LogStartOffset: ${p.logStartOffset}`, `LogEndOffset: ${p.logEndOffset}`].join('\t'),
    )
  }
  return lines.join('\n')
}

// ---- brook produce / consume: the console producer and consumer ----

interface ProduceFlags {
  bootstrapServer: string
  file?: string
  keySeparator?: string
  header?: [string, string][]
  partition?: number
  acks: string
  compression: ProducerCompression
  batchSize: number
  lingerMs: number
}

clientCommand(program, 'produce <topic>', 'write each line of stdin (or --file) as a record')
  .option('--file <path>', 'read lines from this file instead of stdin')
  .option('--key-separator <sep>', 'split each line into key and value at the first <sep> (lines without it are an error)')
  .option('--header <key=value>', 'add this header to every record (repeatable)', keyValue('--header'))
  .option('--partition <n>', 'write every record to this partition (default: Kafka\'s partitioner: murmur2 of the key, sticky for no key)', integer('--partition', 0, 2147483647))
  .addOption(new Option('--acks <acks>', 'acknowledgements to wait for: 0, 1, or -1/all (every in-sync replica)').choices(['0', '1', '-1', 'all']).default('-1'))
  .addOption(new Option('--compression <codec>', 'compress batches').choices(PRODUCER_COMPRESSIONS).default(DEFAULT_PRODUCER_OPTIONS.compression))
  .option('--batch-size <bytes>', 'close a partition\'s batch at this many bytes (batch.size)', integer('--batch-size', 1, 100 * 1024 * 1024), DEFAULT_PRODUCER_OPTIONS.batchBytes)
  .option('--linger-ms <ms>', 'send an unfilled batch this long after its first record (linger.ms)', integer('--linger-ms', 0, 3_600_000), DEFAULT_PRODUCER_OPTIONS.lingerMs)
  .action(async (topic: string, options: ProduceFlags) => {
    if (options.keySeparator === '') throw new InvalidArgumentError('--key-separator cannot be empty')
    // Open the file before connecting, so that a wrong path is reported as such.
    const input = options.file === undefined ? process.stdin : await openInput(options.file)
    // Ctrl-C ends the input: what was read is still sent and acknowledged before the summary.
    const stop = new AbortController()
    const onSigint = (): void => stop.abort()
    process.once('SIGINT', onSigint)
    const acks = (options.acks === 'all' ? -1 : Number(options.acks)) as Acks
    try {
      const summary = await withCluster(options, (cluster) =>
        produceLines(cluster, input, {
          ...DEFAULT_PRODUCER_OPTIONS,
          topic,
          acks,
          compression: options.compression,
          partition: options.partition,
          batchBytes: options.batchSize,
          lingerMs: options.lingerMs,
          keySeparator: options.keySeparator,
          headers: options.header,
          signal: stop.signal,
        }),
      )
      console.error(formatSummary(topic, summary, acks))
    } finally {
      process.off('SIGINT', onSigint)
      if (input !== process.stdin) input.destroy()
    }
  })

async function openInput(path: string): Promise<ReadStream> {
  try {
    return (await open(path, 'r')).createReadStream()
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`)
  }
}

function formatSummary(topic: string, summary: ProduceSummary, acks: Acks): string {
  const partitions = [...summary.partitions].sort(([a], [b]) => a - b).map(([p, n]) => `partition ${p}: ${n}`).join(', ')
  const verb = acks === 0 ? 'sent (acks=0, not acknowledged)' : 'produced'
  return `${verb} ${summary.records} record(s) in ${summary.batches} batch(es) to ${topic}${partitions ? ` (${partitions})` : ''}`
}

interface ConsumeFlags {
  bootstrapServer: string
  fromBeginning?: boolean
  offset?: StartPosition
  fromTimestamp?: bigint
  partition?: number
  maxMessages?: number
  timeoutMs?: number
  isolationLevel: 'read_committed' | 'read_uncommitted'
  printKey?: boolean
  printHeaders?: boolean
  printOffset?: boolean
  printPartition?: boolean
  printTimestamp?: boolean
}

clientCommand(program, 'consume <topic>', 'print the records of a topic, one value per line (by default from the end, following new records)')
  .addOption(new Option('--from-beginning', 'start at the earliest offset of each partition').conflicts(['offset', 'fromTimestamp']))
  .addOption(new Option('--offset <n|earliest|latest>', 'start at this offset in each partition').argParser(startOffset).conflicts('fromTimestamp'))
  .addOption(new Option('--from-timestamp <ms|ISO date>', 'start at the first record at or after this time').argParser(timestamp))
  .option('--partition <n>', 'read only this partition (default: all)', integer('--partition', 0, 2147483647))
  .option('--max-messages <n>', 'exit after this many records', integer('--max-messages', 1, Number.MAX_SAFE_INTEGER))
  .option('--timeout-ms <ms>', 'exit when nothing arrives for this long (default: run until Ctrl-C)', integer('--timeout-ms', 1, 2147483647))
  .addOption(new Option('--isolation-level <level>', 'read_committed hides aborted and open transactions').choices(['read_committed', 'read_uncommitted']).default('read_uncommitted'))
  .option('--print-key', 'print the key before the value')
  .option('--print-headers', 'print the headers (k:v,k:v)')
  .option('--print-offset', 'print the offset')
  .option('--print-partition', 'print the partition')
  .option('--print-timestamp', 'print the timestamp and its type')
  .action(async (topic: string, options: ConsumeFlags) => {
    const start: StartPosition = options.fromBeginning
      ? { from: 'earliest' }
      : options.fromTimestamp !== undefined
        ? { from: 'timestamp', timestamp: options.fromTimestamp }
        : (options.offset ?? { from: 'latest' })
    const stop = new AbortController()
    const onSigint = (): void => stop.abort()
    process.once('SIGINT', onSigint)
    // A closed pipe (`brook consume t | head`) ends the consumer quietly.
    const onStdoutError = (): void => stop.abort()
    process.stdout.on('error', onStdoutError)
    let count = 0
    try {
      await withCluster(options, async (cluster) => {
        const records = consumeRecords(cluster, {
          topic,
          partitions: options.partition === undefined ? undefined : [options.partition],
          start,
          isolationLevel: options.isolationLevel === 'read_committed' ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED,
          idleTimeoutMs: options.timeoutMs,
          signal: stop.signal,
          onNotice: (message) => console.error(`brook: ${message}`),
        })
        for await (const record of records) {
          if (stop.signal.aborted) break
          if (!process.stdout.write(formatRecord(record, options) + '\n')) await once(process.stdout, 'drain', { signal: stop.signal }).catch(() => {})
          if (++count === options.maxMessages) break
        }
      })
    } finally {
      process.off('SIGINT', onSigint)
      process.stdout.off('error', onStdoutError)
    }
    console.error(`Processed a total of ${count} messages`)
  })

program.parseAsync().catch((error: Error) => {
  console.error(`brook: ${error.message}`)
  process.exitCode = 1
})
