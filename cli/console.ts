/**
 * `brook produce` and `brook consume`: the console producer and consumer (kafka-console-producer.sh,
 * kafka-console-consumer.sh). Ctrl-C ends either one cleanly: the producer still sends and acknowledges what it read,
 * the consumer prints its count.
 */
import { InvalidArgumentError, Option, type CommandUnknownOpts } from '@commander-js/extra-typings'
import { open, type FileHandle } from 'node:fs/promises'
import type { ReadStream } from 'node:fs'
import { once } from 'node:events'
import { DEFAULT_PRODUCER_OPTIONS, produceLines, type Acks } from '../client/console-producer.js'
import { consumeRecords, type ConsumedRecord, type StartPosition } from '../client/console-consumer.js'
import { counted } from '../client/wording.js'
import { IsolationLevel } from '../protocol/constants.js'
import { COMPRESSION_NAMES } from '../protocol/compression.js'
import { bootstrapServers, clientCommand, withCluster } from './client-command.js'
import { cannotRead } from './files.js'
import { formatRecord, formatSummary } from './format.js'
import { endSoon, onStopSignal } from './interrupt.js'
import { integer, keyValue, startOffset, timestamp } from './parsers.js'
import { GROUP_CONSUMER_RETRY, clusterUnavailable, consumerRestartDelayMs } from '../processor/runtime/consumer-restarts.js'
import { guardFetches } from '../processor/runtime/fetch-guards.js'

/** --acks as the producer's acks: all is -1, every in-sync replica. */
const ACKS = { '0': 0, '1': 1, '-1': -1, all: -1 } as const satisfies Record<string, Acks>
const NEWLINE = Buffer.from('\n')

const ISOLATION_LEVELS = { read_uncommitted: IsolationLevel.READ_UNCOMMITTED, read_committed: IsolationLevel.READ_COMMITTED } as const

async function openInput(path: string): Promise<ReadStream> {
  let handle: FileHandle
  try {
    handle = await open(path, 'r')
  } catch (error) {
    throw cannotRead(path, error)
  }
  // Linux opens a directory for reading; only the first read would fail (EISDIR, without the path).
  if ((await handle.stat()).isDirectory()) {
    await handle.close()
    throw cannotRead(path, { code: 'EISDIR' })
  }
  return handle.createReadStream()
}

export function addProduceCommand(program: CommandUnknownOpts): void {
  clientCommand(program, 'produce <topic>', 'write each line of stdin (or --file) as a record')
    .option('--file <path>', 'read lines from this file instead of stdin')
    .option('--key-separator <sep>', 'split each line into key and value at the first <sep> (lines without it are an error)')
    .option('--header <key=value>', 'add this header to every record (repeatable)', keyValue('--header'))
    .option('--partition <n>', 'write every record to this partition (default: Kafka\'s partitioner: murmur2 of the key, sticky for no key)', integer('--partition', 0, 2147483647))
    .addOption(new Option('--acks <acks>', 'acknowledgements to wait for: 0, 1, or -1/all (every in-sync replica)').choices(['0', '1', '-1', 'all']).default('-1'))
    .addOption(new Option('--compression <codec>', 'compress batches').choices(COMPRESSION_NAMES).default(DEFAULT_PRODUCER_OPTIONS.compression))
    .option('--batch-size <bytes>', 'close a partition\'s batch at this many bytes (batch.size)', integer('--batch-size', 1, 100 * 1024 * 1024), DEFAULT_PRODUCER_OPTIONS.batchBytes)
    .option('--linger-ms <ms>', 'send an unfilled batch this long after its first record (linger.ms)', integer('--linger-ms', 0, 3_600_000), DEFAULT_PRODUCER_OPTIONS.lingerMs)
    .option('--max-block-ms <ms>', 'wait this long for the topic\'s metadata, e.g. while a topic it auto-creates has no leader yet (max.block.ms)', integer('--max-block-ms', 0, 3_600_000), DEFAULT_PRODUCER_OPTIONS.maxBlockMs)
    .option('--max-request-size <bytes>', 'refuse a line whose record needs a larger request, as a broker closes the connection of one above its socket.request.max.bytes (max.request.size)', integer('--max-request-size', 1, 2_147_483_647), DEFAULT_PRODUCER_OPTIONS.maxRequestBytes)
    .action(async (topic, options) => {
      if (options.keySeparator === '') throw new InvalidArgumentError('--key-separator cannot be empty')
      // Open the file before connecting, so that a wrong path is reported as such.
      const input = options.file === undefined ? process.stdin : await openInput(options.file)
      // Ctrl-C (or SIGTERM, or SIGHUP) ends the input: what was read is still sent and acknowledged before the summary.
      const stop = new AbortController()
      const removeStopSignal = onStopSignal({ stop: () => stop.abort() })
      const acks = ACKS[options.acks]
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
            maxBlockMs: options.maxBlockMs,
            maxRequestBytes: options.maxRequestSize,
            keySeparator: options.keySeparator,
            headers: options.header,
            signal: stop.signal,
          }),
        )
        console.error(formatSummary(topic, summary, acks))
      } finally {
        removeStopSignal()
        if (input !== process.stdin) input.destroy()
      }
    })
}

export function addConsumeCommand(program: CommandUnknownOpts): void {
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
    .action(async (topic, options) => {
      const start: StartPosition = options.fromBeginning
        ? { from: 'earliest' }
        : options.fromTimestamp !== undefined
          ? { from: 'timestamp', timestamp: options.fromTimestamp }
          : (options.offset ?? { from: 'latest' })
      // Ctrl-C, SIGTERM or SIGHUP stops it cleanly: a group member leaves its group, as Kafka's console consumer does
      // from its shutdown hook, instead of holding its partitions until its session times out.
      const stop = new AbortController()
      const removeStopSignal = onStopSignal({ stop: () => stop.abort() })
      // A closed pipe (`brook consume t | head`) ends the consumer quietly.
      const onStdoutError = (): void => stop.abort()
      process.stdout.on('error', onStdoutError)
      let count = 0
      try {
        await withCluster(options, async (cluster) => {
          const isolationLevel = ISOLATION_LEVELS[options.isolationLevel]
          let records: AsyncIterable<ConsumedRecord>
          if (options.group === undefined) {
            records = consumeRecords(cluster, {
              topic,
              partitions: options.partition === undefined ? undefined : [options.partition],
              start,
              isolationLevel,
              idleTimeoutMs: options.timeoutMs,
              signal: stop.signal,
              onNotice: (message) => console.error(`brook: ${message}`),
            })
          } else {
            // The topic must exist: a group member would otherwise wait for it without a word.
            await cluster.topic(topic, { allowAutoTopicCreation: false })
            // Loaded here so that the other commands do not pay for loading kafkajs.
            const { consumeAsGroupMember } = await import('../client/console-group-consumer.js')
            // Ctrl-C while kafkajs rebuilds its fetchers (a node fenced or back) must not leave it spinning for good, and
            // a dead partition leader must not get it evicted from its group (fetch-guards.ts).
            guardFetches()
            records = consumeAsGroupMember({
              servers: bootstrapServers(options),
              groupId: options.group,
              topic,
              fromBeginning: options.fromBeginning ?? false,
              readUncommitted: isolationLevel === IsolationLevel.READ_UNCOMMITTED,
              idleTimeoutMs: options.timeoutMs,
              signal: stop.signal,
              verbose: options.verbose,
              // Kafka's console consumer keeps looking for a coordinator it cannot find; kafkajs gives up on it.
              restart: { transient: clusterUnavailable, delayMs: consumerRestartDelayMs },
              // Rides out a partition leader it cannot reach until the cluster names a new one, as the pipeline does.
              retry: GROUP_CONSUMER_RETRY,
              onNotice: (message) => console.error(`brook: ${message}`),
            })
          }
          for await (const record of records) {
            if (stop.signal.aborted) break
            if (!process.stdout.write(Buffer.concat([formatRecord(record, options), NEWLINE]))) await once(process.stdout, 'drain', { signal: stop.signal }).catch(() => {})
            if (++count === options.maxMessages) break
          }
        })
      } finally {
        removeStopSignal()
        process.stdout.off('error', onStdoutError)
      }
      console.error(`Processed a total of ${counted(count, 'message')}`)
      // A group member's kafkajs client may still be retrying a coordinator lookup: it must not keep the process alive.
      if (options.group !== undefined) endSoon()
    })
}
