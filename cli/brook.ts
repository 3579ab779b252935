#!/usr/bin/env node
/**
 * `brook`: the one composition root, a commander program whose commands call into broker/ (and later processor/).
 * Commands parse and check their arguments here, call one module, and print; errors reach the user as one line on
 * stderr (`brook: ...`) with exit code 1, never as a stack trace.
 */
import { Command, InvalidArgumentError, Option } from 'commander'
import { open } from 'node:fs/promises'
import type { ReadStream } from 'node:fs'
import { once } from 'node:events'
import { DEFAULT_CONFIG, type BrokerConfig } from '../broker/config.js'
import { LOG_LEVELS, NUMERIC_SETTINGS, checkCombined, readConfigFile, type NumericSetting } from './start-options.js'
import { ClusterClient, parseBootstrapServers, type BrokerAddress } from '../client/cluster-client.js'
import {
  alterTopicConfigs,
  createTopic,
  deleteTopic,
  describeTopics,
  listTopics,
  type TopicDescription,
} from '../client/admin.js'
import {
  GROUP_STATES,
  deleteGroup,
  describeGroup,
  describeGroupOffsets,
  listGroups,
  resetGroupOffsets,
  type GroupDescription,
  type GroupMember,
  type PlannedOffset,
  type ResetScope,
  type ResetTarget,
  type TopicPartitions,
  type TopicSelection,
} from '../client/group-admin.js'
import {
  DEFAULT_PRODUCER_OPTIONS,
  PRODUCER_COMPRESSIONS,
  produceLines,
  type Acks,
  type ProduceSummary,
  type ProducerCompression,
} from '../client/console-producer.js'
import { consumeRecords, formatRecord, type ConsumedRecord, type StartPosition } from '../client/console-consumer.js'
import { counted } from '../client/wording.js'
import { IsolationLevel } from '../protocol/constants.js'

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

/** Milliseconds since the epoch, or an ISO 8601 date (`2024-05-01T12:00:00Z`; without a zone, local time). */
function timestamp(name: string) {
  return (value: string): bigint => {
    if (/^\d+$/.test(value)) return BigInt(value)
    const ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN
    if (Number.isNaN(ms)) throw new InvalidArgumentError(`${name} takes milliseconds since the epoch or an ISO 8601 date`)
    return BigInt(ms)
  }
}

/** An int64 offset or delta (`--to-offset`, `--shift-by`). */
function offset(name: string, options: { signed: boolean }) {
  return (value: string): bigint => {
    if (!(options.signed ? /^[-+]?\d+$/ : /^\d+$/).test(value)) {
      throw new InvalidArgumentError(`${name} takes ${options.signed ? 'a whole number (negative to move back)' : 'a non-negative offset'}`)
    }
    const n = BigInt(value)
    if (n > 2n ** 63n - 1n || n < -(2n ** 63n)) throw new InvalidArgumentError(`${name} must fit in a 64-bit integer`)
    return n
  }
}

/** `--topic orders` or `--topic orders:0,2` (repeatable), as kafka-consumer-groups.sh takes it. */
function topicPartitions(value: string, previous: TopicSelection[] = []): TopicSelection[] {
  const match = /^([^:]+)(?::(\d+(?:,\d+)*))?$/.exec(value)
  if (!match) throw new InvalidArgumentError(`--topic takes topic or topic:partition,partition..., not '${value}'`)
  return [...previous, { topic: match[1]!, partitions: match[2]?.split(',').map(Number) }]
}

/** Group states for `groups list --state`, comma-separated or repeated, in any case. */
function groupStates(value: string, previous: string[] = []): string[] {
  const states = value.split(',').map((item) => item.trim()).filter((item) => item !== '')
  return [
    ...previous,
    ...states.map((state) => {
      const known = GROUP_STATES.find((s) => s.toLowerCase() === state.toLowerCase())
      if (!known) throw new InvalidArgumentError(`--state takes ${GROUP_STATES.join(', ')}, not '${state}'`)
      return known
    }),
  ]
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

function bootstrapServers(options: { bootstrapServer: string }): BrokerAddress[] {
  try {
    return parseBootstrapServers(options.bootstrapServer)
  } catch (error) {
    throw new Error(`--bootstrap-server: ${(error as Error).message}`)
  }
}

/** Connects, runs `use`, and always closes the connections, so the process can exit. */
async function withCluster<T>(options: { bootstrapServer: string }, use: (cluster: ClusterClient) => Promise<T>): Promise<T> {
  const cluster = await ClusterClient.connect(bootstrapServers(options))
  try {
    return await use(cluster)
  } finally {
    cluster.close()
  }
}

const program = new Command()
program
  .name('brook')
  .description('A Kafka you can npm install: a single-node, Kafka-wire-compatible broker on LevelDB, with commands to manage its topics and consumer groups and to produce and consume records')
  .version('0.1.0')
  .configureOutput({ outputError: (message, write) => write(message.replace(/^error: /, 'brook: ')) })

/** A numeric broker setting as a `brook start` flag; its default is shown in --help but not set, so --config can. */
function settingOption(setting: NumericSetting): Option {
  const name = setting.kafkaName ? `${setting.kafkaName}: ` : ''
  return new Option(`${setting.flag} <${setting.unit}>`, `${name}${setting.description} (default: ${DEFAULT_CONFIG[setting.key]})`).argParser(
    integer(setting.flag, setting.min, setting.max),
  )
}

const settingOptions = NUMERIC_SETTINGS.map((setting) => ({ setting, option: settingOption(setting) }))
// Node id and port come first in --help, where a reader looks for them; the group, offsets and log settings last.
const addressed = (setting: NumericSetting): boolean => setting.key === 'nodeId' || setting.key === 'port'
const startCommand = program
  .command('start')
  .description('run one broker node in the foreground')
  .option('--config <file>', 'JSON file with any of these settings under their BrokerConfig names (nodeId, groupInitialRebalanceDelayMs...); flags win')
for (const { option } of settingOptions.filter(({ setting }) => addressed(setting))) startCommand.addOption(option)
startCommand
  .option('--host <host>', `interface to listen on (default: ${DEFAULT_CONFIG.host})`)
  .option('--advertised-host <host>', 'host clients are told to connect to (default: --host)')
  .option('--data-dir <dir>', 'data directory (default: .brook/node-<node id>)')
  .option('--fsync', 'sync every write to disk before acknowledging it')
  .option('--no-auto-create-topics', 'do not create unknown topics on Metadata requests')
  .option('--no-record-validation', 'log.record.validation.enable=false: check only the header and CRC of produced batches, not their records')
  .addOption(new Option('--log-level <level>', `log level (default: ${DEFAULT_CONFIG.logLevel})`).choices(LOG_LEVELS))
for (const { option } of settingOptions.filter(({ setting }) => !addressed(setting))) startCommand.addOption(option)
startCommand.action(async (options: Record<string, unknown>) => {
  const fromFile = options.config === undefined ? {} : readConfigFile(String(options.config))
  const flags: Record<string, unknown> = {}
  for (const key of ['host', 'advertisedHost', 'dataDir', 'fsync', 'logLevel'] as const) {
    if (options[key] !== undefined) flags[key] = options[key]
  }
  if (options.autoCreateTopics === false) flags.autoCreateTopics = false
  if (options.recordValidation === false) flags.recordValidation = false
  for (const { setting, option } of settingOptions) {
    const value = options[option.attributeName()]
    if (value !== undefined) flags[setting.key] = value
  }
  const config: Partial<BrokerConfig> = { ...fromFile, ...flags }
  checkCombined(config)
  if (config.dataDir === undefined && config.nodeId !== undefined) config.dataDir = `.brook/node-${config.nodeId}`
  // Loaded here so that the client commands do not pay for the broker's storage modules at startup.
  const { Broker } = await import('../broker/broker.js')
  const broker = await Broker.start(config)
  // A rejection that nothing awaits belongs to one request or one background task, not to the node: it is logged
  // as the bug it is and the node keeps serving, as Kafka's threads log what they did not expect and carry on.
  process.on('unhandledRejection', (reason) => broker.log.error(`unhandled rejection: ${(reason as Error)?.stack ?? reason}`))
  const shutdown = (): void => {
    broker.stop().then(
      () => process.exit(0),
      (error: Error) => {
        broker.log.error(`stopping failed: ${error.stack ?? error}`)
        process.exit(1)
      },
    )
  }
  process.once('SIGINT', shutdown)
  process.once('SIGTERM', shutdown)
})

// ---- brook topics: what kafka-topics.sh (and kafka-configs.sh for topics) gives ----

const topics = program.command('topics').description('create, list, describe and delete topics, and alter their configs (kafka-topics.sh, kafka-configs.sh)')

clientCommand(topics, 'create <name>', 'create a topic')
  .option('--partitions <n>', 'number of partitions (default: the broker\'s num.partitions)', integer('--partitions', 1, 2147483647))
  .option('--replication-factor <n>', 'copies of each partition; a single node holds one (default: 1)', integer('--replication-factor', 1, 32767))
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

clientCommand(topics, 'alter-config <name>', 'set or remove topic configs (kafka-configs.sh --alter); unlisted configs keep their values')
  .option('--set <key=value>', 'set a config, e.g. retention.ms=86400000 (repeatable)', keyValue('--set'))
  .option('--delete <key>', 'remove a config so that its default applies again (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
  .action(async (name: string, options: { bootstrapServer: string; set?: [string, string][]; delete?: string[] }) => {
    if (!options.set && !options.delete) throw new InvalidArgumentError('give at least one --set key=value or --delete key')
    const names = [...(options.set ?? []).map(([key]) => key), ...(options.delete ?? [])]
    const twice = names.find((key, i) => names.indexOf(key) !== i)
    if (twice !== undefined) throw new InvalidArgumentError(`config '${twice}' is named more than once`)
    await withCluster(options, (cluster) => alterTopicConfigs(cluster, name, { set: options.set ?? [], delete: options.delete ?? [] }))
    console.log(`Completed updating config for topic ${name}.`)
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

// ---- brook groups: what kafka-consumer-groups.sh gives ----

const groups = program.command('groups').description('list, describe (offsets and lag), delete consumer groups and reset their offsets (kafka-consumer-groups.sh)')

/** Columns padded to their widest cell, one space apart, as kafka-consumer-groups.sh prints them. */
function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i]!.length)))
  return [headers, ...rows].map((cells) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' ').trimEnd()).join('\n')
}

/** A table cell: '-' where Kafka's tool shows a missing value. */
function cell(value: string | number | bigint | null | undefined): string {
  return value === null || value === undefined || value === '' ? '-' : String(value)
}

clientCommand(groups, 'list', 'list consumer groups with their protocol type and state')
  .option('--state <states>', `only groups in these states (comma-separated, any case): ${GROUP_STATES.join(', ')}`, groupStates)
  .action(async (options: { bootstrapServer: string; state?: string[] }) => {
    const listed = await withCluster(options, (cluster) => listGroups(cluster, { states: options.state ?? [] }))
    if (listed.length === 0) return
    console.log(formatTable(['GROUP', 'PROTOCOL-TYPE', 'STATE'], listed.map((g) => [g.groupId, cell(g.protocolType), cell(g.state)])))
  })

interface DescribeFlags {
  bootstrapServer: string
  members?: boolean
  state?: boolean
}

clientCommand(groups, 'describe <group>', 'committed offset, log end offset, lag and owner of each partition (or --members, --state)')
  .addOption(new Option('--members', 'one line per member: client, host and assigned partitions').conflicts('state'))
  .option('--state', 'the group\'s state, coordinator, assignment strategy and member count')
  .action(async (groupId: string, options: DescribeFlags) => {
    await withCluster(options, async (cluster) => {
      if (options.state || options.members) {
        const group = await describeGroup(cluster, groupId)
        noteGroupState(group)
        if (options.state) console.log(formatGroupState(group))
        else if (group.members.length > 0) console.log(formatMembers(group))
        return
      }
      const { group, partitions } = await describeGroupOffsets(cluster, groupId)
      noteGroupState(group)
      const rows = partitions.map((p) => [
        groupId, p.topic, String(p.partition), cell(p.committedOffset), cell(p.logEndOffset), cell(p.lag),
        cell(p.member?.memberId), cell(p.member?.host), cell(p.member?.clientId),
      ])
      // Members without partitions get a line of their own, as in Kafka's tool.
      for (const m of group.members.filter((m) => m.assignment.length === 0)) rows.push([groupId, '-', '-', '-', '-', '-', m.memberId, cell(m.host), cell(m.clientId)])
      if (rows.length === 0) return
      console.log(formatTable(['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID'], rows))
    })
  })

/** What Kafka's tool says on stderr before describing a group that is not Stable; a missing group is an error. */
function noteGroupState(group: GroupDescription): void {
  if (group.state === 'Dead') throw new Error(`consumer group '${group.groupId}' does not exist`)
  if (group.state === 'Empty') console.error(`Consumer group '${group.groupId}' has no active members.`)
  if (group.state === 'PreparingRebalance' || group.state === 'CompletingRebalance') console.error(`Warning: Consumer group '${group.groupId}' is rebalancing.`)
}

function formatGroupState(group: GroupDescription): string {
  const { host, port, nodeId } = group.coordinator
  return formatTable(
    ['GROUP', 'COORDINATOR (ID)', 'ASSIGNMENT-STRATEGY', 'STATE', '#MEMBERS'],
    [[group.groupId, `${host}:${port} (${nodeId})`, cell(group.protocol), group.state, String(group.members.length)]],
  )
}

/** Kafka's ASSIGNMENT column: `topic(0,1),other(2)`. */
function formatAssignment(assignment: readonly TopicPartitions[]): string {
  return cell(assignment.map(({ topic, partitions }) => `${topic}(${partitions.join(',')})`).join(','))
}

function formatMembers(group: GroupDescription): string {
  const count = (m: GroupMember): number => m.assignment.reduce((n, { partitions }) => n + partitions.length, 0)
  const rows = group.members.map((m) => [group.groupId, m.memberId, cell(m.groupInstanceId), cell(m.host), cell(m.clientId), String(count(m)), formatAssignment(m.assignment)])
  return formatTable(['GROUP', 'CONSUMER-ID', 'GROUP-INSTANCE-ID', 'HOST', 'CLIENT-ID', '#PARTITIONS', 'ASSIGNMENT'], rows)
}

clientCommand(groups, 'delete <group>', 'delete a group and its committed offsets (only when it has no active members)')
  .action(async (groupId: string, options: { bootstrapServer: string }) => {
    await withCluster(options, (cluster) => deleteGroup(cluster, groupId))
    console.log(`Deleted consumer group ${groupId}.`)
  })

interface ResetFlags {
  bootstrapServer: string
  topic?: TopicSelection[]
  allTopics?: boolean
  toEarliest?: boolean
  toLatest?: boolean
  toOffset?: bigint
  toDatetime?: bigint
  shiftBy?: bigint
  execute?: boolean
}

clientCommand(groups, 'reset-offsets <group>', 'plan new committed offsets for an inactive group, and commit them with --execute')
  .addOption(new Option('--topic <topic[:partitions]>', 'a topic, or some of its partitions (orders:0,2); repeatable').argParser(topicPartitions).conflicts('allTopics'))
  .option('--all-topics', 'every topic the group has committed offsets for')
  .option('--to-earliest', 'the log start offset')
  .option('--to-latest', 'the log end offset')
  .option('--to-offset <n>', 'this offset (moved into [log start, log end] if outside)', offset('--to-offset', { signed: false }))
  .option('--to-datetime <ISO date|ms>', 'the first offset at or after this time, e.g. 2024-05-01T12:00:00Z (local time without a zone)', timestamp('--to-datetime'))
  .option('--shift-by <n>', 'the committed offset plus n (negative moves back)', offset('--shift-by', { signed: true }))
  .addOption(new Option('--dry-run', 'only print the plan (the default)').conflicts('execute'))
  .option('--execute', 'commit the new offsets')
  .action(async (groupId: string, options: ResetFlags) => {
    const targets: ResetTarget[] = [
      ...(options.toEarliest ? [{ to: 'earliest' } as const] : []),
      ...(options.toLatest ? [{ to: 'latest' } as const] : []),
      ...(options.toOffset !== undefined ? [{ to: 'offset', offset: options.toOffset } as const] : []),
      ...(options.toDatetime !== undefined ? [{ to: 'datetime', timestamp: options.toDatetime } as const] : []),
      ...(options.shiftBy !== undefined ? [{ to: 'shift', by: options.shiftBy } as const] : []),
    ]
    if (targets.length !== 1) throw new InvalidArgumentError('give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by')
    if (!options.topic && !options.allTopics) throw new InvalidArgumentError('give --topic <topic> (repeatable) or --all-topics')
    const scope: ResetScope = options.allTopics ? { allTopics: true } : { allTopics: false, topics: options.topic! }
    const execute = options.execute ?? false
    const plan = await withCluster(options, (cluster) =>
      resetGroupOffsets(cluster, groupId, { scope, target: targets[0]!, execute, onNotice: (message) => console.error(`brook: ${message}`) }),
    )
    console.log(formatPlan(groupId, plan))
    if (!execute) console.error('Dry run: nothing was committed. Add --execute to reset these offsets.')
  })

function formatPlan(groupId: string, plan: readonly PlannedOffset[]): string {
  return formatTable(['GROUP', 'TOPIC', 'PARTITION', 'NEW-OFFSET'], plan.map((p) => [groupId, p.topic, String(p.partition), String(p.newOffset)]))
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
  return `${verb} ${counted(summary.records, 'record')} in ${counted(summary.batches, 'batch', 'batches')} to ${topic}${partitions ? ` (${partitions})` : ''}`
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
  group?: string
  verbose?: boolean
}

clientCommand(program, 'consume <topic>', 'print the records of a topic, one value per line (by default from the end, following new records)')
  .addOption(new Option('--group <id>', 'consume as a member of this consumer group, committing offsets; partitions are shared with the group\'s other members').conflicts(['partition', 'offset', 'fromTimestamp']))
  .addOption(new Option('--from-beginning', 'start at the earliest offset of each partition (with --group: where the group has no committed offset)').conflicts(['offset', 'fromTimestamp']))
  .addOption(new Option('--offset <n|earliest|latest>', 'start at this offset in each partition').argParser(startOffset).conflicts('fromTimestamp'))
  .addOption(new Option('--from-timestamp <ms|ISO date>', 'start at the first record at or after this time').argParser(timestamp('--from-timestamp')))
  .option('--partition <n>', 'read only this partition (default: all)', integer('--partition', 0, 2147483647))
  .option('--max-messages <n>', 'exit after this many records', integer('--max-messages', 1, Number.MAX_SAFE_INTEGER))
  .option('--timeout-ms <ms>', 'exit when nothing arrives for this long (with --group: counted from joining the group; default: run until Ctrl-C)', integer('--timeout-ms', 1, 2147483647))
  .addOption(new Option('--isolation-level <level>', 'read_committed hides aborted and open transactions').choices(['read_committed', 'read_uncommitted']).default('read_uncommitted'))
  .option('--print-key', 'print the key before the value')
  .option('--print-headers', 'print the headers (k:v,k:v)')
  .option('--print-offset', 'print the offset')
  .option('--print-partition', 'print the partition')
  .option('--print-timestamp', 'print the timestamp and its type')
  .option('--verbose', 'with --group, show the group client\'s (kafkajs) logs on stderr')
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
        const readCommitted = options.isolationLevel === 'read_committed'
        let records: AsyncIterable<ConsumedRecord>
        if (options.group === undefined) {
          records = consumeRecords(cluster, {
            topic,
            partitions: options.partition === undefined ? undefined : [options.partition],
            start,
            isolationLevel: readCommitted ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED,
            idleTimeoutMs: options.timeoutMs,
            signal: stop.signal,
            onNotice: (message) => console.error(`brook: ${message}`),
          })
        } else {
          // The topic must exist: a group member would otherwise wait for it without a word.
          await cluster.topic(topic, { allowAutoTopicCreation: false })
          // Loaded here so that the other commands do not pay for loading kafkajs.
          const { consumeAsGroupMember } = await import('../client/console-group-consumer.js')
          records = consumeAsGroupMember({
            servers: bootstrapServers(options),
            groupId: options.group,
            topic,
            fromBeginning: options.fromBeginning ?? false,
            readUncommitted: !readCommitted,
            idleTimeoutMs: options.timeoutMs,
            signal: stop.signal,
            verbose: options.verbose,
          })
        }
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
    console.error(`Processed a total of ${counted(count, 'message')}`)
  })

program.parseAsync().catch((error: Error) => {
  console.error(`brook: ${error.message}`)
  process.exitCode = 1
})
