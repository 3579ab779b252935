/**
 * `brook process <pipeline>`: runs a stream-processing pipeline against any Kafka cluster, as one instance of the
 * consumer group named by its application id — the built-in `iot` pipeline, or a JavaScript or TypeScript module
 * whose default export is a topology (load-module.ts). `--describe` prints the topology and exits without
 * connecting. Ctrl-C stops it cleanly: a final commit of every task, then it leaves the group.
 *
 * stdout carries what the pipeline's console sinks print, nothing else; the pipeline's log lines and the summary go
 * to stderr.
 */
import { existsSync } from 'node:fs'
import { basename, extname } from 'node:path'
import { Option, type CommandUnknownOpts } from '@commander-js/extra-typings'
import type { RunOptions, Topology } from '../processor/index.js'
import { COMPRESSION_NAMES } from '../processor/runtime/compression-names.js'
import { clientCommand } from './client-command.js'
import { endSoon, noticeIfSlowStop, onStopSignal } from './interrupt.js'
import { addIotOptions, iotOptionsFrom } from './iot-options.js'
import { KAFKA_CONFIG_DESCRIPTION, brokerList, explainedFailure, kafkaSettings } from './kafkajs-options.js'
import { loadTopology } from './load-module.js'
import { integer, replicationFactor } from './parsers.js'
import { formatMetrics } from './pipeline-format.js'

/** The name that runs the built-in pipeline instead of a file. */
export const BUILT_IN_PIPELINE = 'iot'

const PROCESSING_GUARANTEES = ['exactly_once', 'at_least_once'] as const
const INT32_MAX = 2_147_483_647

export function addProcessCommand(program: CommandUnknownOpts): void {
  const command = clientCommand(program, 'process <pipeline>', `run a pipeline: '${BUILT_IN_PIPELINE}' (the built-in IoT pipeline) or a .js/.ts module whose default export is a topology`)
    .option('--application-id <id>', `consumer group id and prefix of the pipeline's internal topics (default: '${BUILT_IN_PIPELINE}', or the module's file name without its extension)`)
    .addOption(new Option('--processing-guarantee <guarantee>', 'exactly_once needs a cluster with transactions: given, a cluster without them makes the start fail; left out, the pipeline says so and runs at_least_once (default: exactly_once)').choices(PROCESSING_GUARANTEES))
    .option('--state-dir <dir>', 'where this instance keeps its task stores; one per instance (default: .brook/processor/<application id>)')
    .option('--commit-interval-ms <ms>', 'how often each task commits its outputs, state and input offsets (default: 1000)', integer('--commit-interval-ms', 1, INT32_MAX))
    .option('--idle-timeout-ms <ms>', 'after this long with no records and the cluster confirming the partition is read to its end, its windows close by the wall clock (default: 10000)', integer('--idle-timeout-ms', 1, INT32_MAX))
    .option('--event-time-alignment-max-wait-ms <ms>', "how long a source task behind a keyBy waits for another's records before it runs ahead (records can then come late behind the keyBy); raise it when many partitions or a loaded machine make late records while catching up (default: 1000)", integer('--event-time-alignment-max-wait-ms', 1, INT32_MAX))
    .option('--cache-max-bytes <bytes>', 'memory for cached state, for the whole instance (default: 67108864)', integer('--cache-max-bytes', 0, Number.MAX_SAFE_INTEGER))
    .option('--partitions <n>', 'partitions of the input topics the pipeline creates when they are missing (default: 1)', integer('--partitions', 1, 100_000))
    .option('--replication-factor <n>', 'replication factor of the topics the pipeline creates (default: -1, the cluster\'s)', replicationFactor)
    .option('--dead-letter-topic <topic>', 'where unreadable records go (default: <application id>-dlq)')
    .addOption(new Option('--compression-type <codec>', 'the codec of every batch the pipeline writes, as Kafka Streams\' producer.compression.type (default: none)').choices(COMPRESSION_NAMES))
    .option('--kafka-config <file>', KAFKA_CONFIG_DESCRIPTION)
    .option('--describe', 'print the topology (sub-topologies, stores, internal topics) and exit without connecting (--kafka-config is still checked)')
  addIotOptions(command)
  command.action(async (pipeline, options) => {
    const builtIn = pipeline === BUILT_IN_PIPELINE
    // A bare word that names no file is the built-in pipeline misspelled (`brook process iott`) rather than a module.
    if (!builtIn && extname(pipeline) === '' && !existsSync(pipeline)) throw new Error(`'${pipeline}' is neither the built-in '${BUILT_IN_PIPELINE}' pipeline nor a file: give '${BUILT_IN_PIPELINE}', or a .js/.ts module whose default export is a topology`)
    const iot = iotOptionsFrom(command)
    // --late-topic means the same for any pipeline: where late records go unless an operator names its own.
    const iotOnly = iot.flags.filter((flag) => flag !== '--late-topic')
    if (!builtIn && iotOnly.length > 0) throw new Error(`${iotOnly[0]} applies to the built-in '${BUILT_IN_PIPELINE}' pipeline only`)
    const applicationId = options.applicationId ?? (builtIn ? BUILT_IN_PIPELINE : basename(pipeline, extname(pipeline)))
    // The processor is loaded a part at a time, as the action comes to need it: the DSL to build the built-in pipeline,
    // the runtime (and kafkajs) only to run one. --help, and arguments refused before a run (a bad flag value, a module
    // that is not there, a bad --kafka-config), never load the runtime or kafkajs, which made them several times dearer.
    const topology: Topology = builtIn ? (await import('../processor/iot.js')).iotPipeline(iot.options) : await loadTopology(pipeline)
    const plan = { applicationId, lateTopic: iot.options.lateTopic, deadLetterTopic: options.deadLetterTopic }
    // Read before --describe returns, so that a bad settings file is found by the command that checks a pipeline.
    const kafka = await kafkaSettings(options)
    if (options.describe) {
      const { describeTopology } = await import('../processor/topology/describe.js')
      process.stdout.write(`${describeTopology(topology, plan)}\n`)
      return
    }
    const run: RunOptions = {
      ...plan,
      bootstrapServers: brokerList(options),
      processingGuarantee: options.processingGuarantee,
      stateDir: options.stateDir,
      commitIntervalMs: options.commitIntervalMs,
      idleTimeoutMs: options.idleTimeoutMs,
      ...(options.eventTimeAlignmentMaxWaitMs === undefined ? {} : { eventTimeAlignment: { maxWaitMs: options.eventTimeAlignmentMaxWaitMs } }),
      cacheMaxBytes: options.cacheMaxBytes,
      partitions: options.partitions,
      replicationFactor: options.replicationFactor,
      compressionType: options.compressionType,
      kafka,
      log: logLine,
    }
    await runUntilStopped(topology, run)
    // Stopped: kafkajs clients still retrying a cluster that went away must not keep the process alive.
    endSoon()
  })
}

/** The pipeline's progress and warnings on stderr, each line prefixed `brook process:`. */
function logLine(line: string): void {
  process.stderr.write(`brook process: ${line}\n`)
}

/** Runs the pipeline until Ctrl-C (a clean stop) or a crash (rejects with its error); prints the summary either way. */
async function runUntilStopped(topology: Topology, run: RunOptions): Promise<void> {
  const { logClientRejections, runPipeline } = await import('../processor/index.js')
  let stopping: Promise<void> | null = null
  let pipeline: Awaited<ReturnType<typeof runPipeline>> | null = null
  let interrupted = false
  let cancelNotice = (): void => {}
  const stop = (running: NonNullable<typeof pipeline>): Promise<void> => {
    cancelNotice = noticeIfSlowStop(`brook process: ${run.applicationId}: stopping: the final commit is still under way (the last records' output being sent, or a cluster slow to answer, a node down say); Ctrl-C again exits without it, and the next start redoes the work not committed`)
    return running.stop()
  }
  // A Ctrl-C during the start (connecting, creating topics, joining the group) abandons it (RunOptions.signal): a
  // cluster that does not answer would hold it for the clients' request timeouts, a minute or more.
  const starting = new AbortController()
  const requestStop = (): void => {
    if (interrupted) return
    interrupted = true
    if (pipeline) stopping = stop(pipeline)
    else starting.abort()
  }
  const removeHandlers = onStopSignal({ stop: requestStop })
  // A closed pipe (`brook process pipeline.ts | head`) leaves the console sinks nowhere to print: the pipeline stops
  // cleanly, as on Ctrl-C, rather than dying of the unhandled EPIPE. The listener stays for the process's life, since
  // the final commit prints what it flushes to the same closed pipe.
  process.stdout.on('error', requestStop)
  // For the process's life: kafkajs clients still closing after the pipeline stopped may reject too.
  logClientRejections(run.log ?? logLine)
  try {
    pipeline = await runPipeline(topology, { ...run, signal: starting.signal }).catch(async (error: Error) => {
      if (starting.signal.aborted) return null
      const servers = [run.bootstrapServers].flat()
      throw new Error(`${run.applicationId}: could not start on ${servers.join(',')}: ${(await explainedFailure(servers, error)).message}`)
    })
    if (pipeline === null) {
      process.stderr.write(`brook process: ${run.applicationId}: stopped during its start (Ctrl-C)\n`)
      return
    }
    if (interrupted) stopping = stop(pipeline)
    await pipeline.closed.catch((error: Error) => {
      throw new Error(`the pipeline stopped after an error: ${error.message}`)
    })
    await stopping
  } finally {
    cancelNotice()
    removeHandlers()
    if (pipeline) process.stderr.write(`brook process: ${run.applicationId}: stopped; ${formatMetrics(pipeline.metrics())}\n`)
  }
}
