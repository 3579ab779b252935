/**
 * `brook simulate`: a simulated fleet of IoT devices sending readings, or (`--replay <csv>...`) real `timestamp,value`
 * series replayed as readings with their own event times. A thin command over `simulateFleet` and `replay`
 * (processor/simulator/): their flag table (COMMON_FLAGS, FLEET_FLAGS, REPLAY_FLAGS) declares the flags, checks their
 * values and turns them into options, so a value is refused here with the same message the functions give.
 *
 * Ctrl-C stops the run cleanly (the batch in flight is acknowledged) and the summary is printed. A stop that waits
 * (the cluster down: kafkajs retries the batch for 45 s of backoff, its connection attempts on top; or the cluster
 * never reached, and kafkajs still trying to connect) says what it waits for after a few seconds; a second Ctrl-C exits without the summary, and a batch that fails after the first one is named in the
 * summary, with exit code 1. The progress bar goes to stderr, on a terminal only; the summary to stdout.
 */
import { InvalidArgumentError, Option, type CommandUnknownOpts } from '@commander-js/extra-typings'
import type { FleetSummary, ReplaySummary, Unconfirmed } from '../processor/simulator/index.js'
// The simulator's flag table and errors, not its index: declaring and checking the flags loads neither its runs nor
// kafkajs, which the action loads once the flags are checked.
import {
  COMMON_FLAGS,
  FLEET_FLAGS,
  REPLAY_FLAGS,
  fleetOptionsFromFlags,
  replayOptionsFromFlags,
  type ConnectionOptions,
  type FlagDefinition,
  type FlagValues,
  type RunStage,
} from '../processor/simulator/options.js'
import { SimulatorError } from '../processor/simulator/errors.js'
import { clientCommand } from './client-command.js'
import { noticeIfSlowStop, onStopSignal } from './interrupt.js'
import { count, iso, many } from './pipeline-format.js'
import { KAFKA_CONFIG_DESCRIPTION, brokerList, explainedFailure, kafkaSettings } from './kafkajs-options.js'
import { replicationFactor } from './parsers.js'

/**
 * A simulator flag as a commander option; a bad value is the simulator's own one-line message, and flags it conflicts
 * with are refused with it in commander's. The default is shown, not set (the simulator applies it); `defaultValue`
 * names the default of a command that sets its own.
 */
export function simulatorOption(def: FlagDefinition, defaultValue: unknown = def.defaultValue): Option {
  const defaultText = defaultValue === undefined ? '' : ` (default: ${String(defaultValue)})`
  // A description may name the simulator's own default in words, which a command's own default replaces.
  const description = defaultValue === def.defaultValue ? def.description : def.description.replace(/ \(default: [^)]*\)$/, '')
  const option = new Option(def.argument === null ? def.flag : `${def.flag} ${def.argument}`, `${description}${defaultText}`)
  if (def.conflicts !== undefined) option.conflicts([...def.conflicts])
  if (def.argument === null) return option
  const parse = (text: string): unknown => {
    try {
      return def.parse(text)
    } catch (error) {
      if (error instanceof SimulatorError) throw new InvalidArgumentError(error.message)
      throw error
    }
  }
  // A variadic flag (`--replay <csv...>`) collects its values; commander hands the parser the list so far.
  return def.argument.endsWith('...>') ? option.argParser((text, previous: unknown[] | undefined) => [...(previous ?? []), parse(text)]) : option.argParser(parse)
}

/** What a stop that takes a while waits for, by how far the run had got when it was asked to stop. */
function stopNotice(stage: RunStage | 'connecting', servers: readonly string[]): string {
  switch (stage) {
    case 'connecting':
      return `brook simulate: stopping: not connected to ${servers.join(',')} yet, so nothing was sent; waiting for kafkajs to connect or give up (is the cluster there?); Ctrl-C again exits at once`
    case 'preparing-topic':
      return 'brook simulate: stopping: nothing was sent yet; waiting for the cluster to create or describe the topic; Ctrl-C again exits at once'
    case 'sending':
      return 'brook simulate: stopping: waiting for the cluster to acknowledge the batch in flight (a node down?); Ctrl-C again exits without it and without the summary: the readings in flight may or may not have been written'
  }
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

/** The summary's line for a stopped run's batch in flight that failed; none when there was none. */
function unconfirmedLines(unconfirmed: Unconfirmed | null): string[] {
  if (unconfirmed === null) return []
  return [`  ${many(unconfirmed.readings, 'reading')} in flight at the stop not acknowledged, and may or may not have been written (${unconfirmed.reason})`]
}

/**
 * A counted run's held-back readings sent at its end: labelled against the stream time there, so mostly `out of
 * order`, but behind it by up to twice the lateness, past the close of a pipeline's windows (`brook process iot`:
 * window end + 10 s grace), whose readings-late then counts them.
 */
function flushedLines(flushed: number): string[] {
  if (flushed === 0) return []
  return [`  ${many(flushed, 'reading')} held back until the count was reached, sent at the end (counted above as out of order or late against the stream time there; a windowed pipeline counts those behind their window's close + grace as late)`]
}

function formatFleetSummary(summary: FleetSummary): string {
  const lines = [
    `sent ${many(summary.sent, 'reading')} to ${summary.topic}${summary.topicCreated ? ' (created)' : ''} in ${seconds(summary.elapsedMs)} (${count(summary.readingsPerSecond)}/s)${summary.aborted ? '; interrupted' : ''}`,
    `  fleet: seed ${summary.seed}, ${many(summary.devices, 'device')} x ${many(summary.sensors.length, 'sensor')} (${summary.sensors.join(', ')}), first slot at ${iso(summary.startMs)}`,
    `  event time ${iso(summary.firstTs)} to ${iso(summary.lastTs)}`,
    `  delivery: ${count(summary.delivery['out-of-order'])} out of order, ${count(summary.delivery.late)} late; faults: ${count(summary.faults.spike)} spike, ${count(summary.faults.stuck)} stuck-at, ${count(summary.faults.dropout)} dropout`,
    `  ${many(summary.slots, 'slot')} (${count(summary.gapped)} in gaps), ${many(summary.held, 'reading')} held back and not sent`,
    ...flushedLines(summary.flushed),
    ...unconfirmedLines(summary.unconfirmed),
  ]
  return lines.join('\n')
}

function formatReplaySummary(summary: ReplaySummary): string {
  const lines = [
    `replayed ${count(summary.sent)} of ${many(summary.total, 'reading')} to ${summary.topic}${summary.topicCreated ? ' (created)' : ''} in ${seconds(summary.elapsedMs)} (${count(summary.readingsPerSecond)}/s)${summary.aborted ? '; interrupted' : ''}`,
    ...summary.series.map((s) => `  ${s.file}: device ${s.deviceId}, ${s.sensor} (${s.unit}), ${many(s.rows, 'row')}, ${iso(s.firstTs)} to ${iso(s.lastTs)}`),
    ...unconfirmedLines(summary.unconfirmed),
  ]
  if (summary.badRowCount > 0) lines.push(`  ${many(summary.badRowCount, 'bad row')} skipped`)
  return lines.join('\n')
}

export function addSimulateCommand(program: CommandUnknownOpts): void {
  const command = clientCommand(program, 'simulate', 'send simulated sensor readings from a fleet of devices, or replay timestamp,value CSV series (--replay), keyed by device id')
    .option('--kafka-config <file>', KAFKA_CONFIG_DESCRIPTION)
    // Parsed as `brook process` parses it: the same values are accepted and refused with the same message.
    .option('--replication-factor <n>', "replication factor of the topic, if it is created (default: -1, the cluster's)", replicationFactor)
  for (const def of [...COMMON_FLAGS, ...FLEET_FLAGS, ...REPLAY_FLAGS]) command.addOption(simulatorOption(def))
  command.action(async (options) => {
    // The table's flags are read by their keys (FlagDefinition.key is commander's name for each value).
    const values: FlagValues = command.opts()
    const connection: ConnectionOptions = { bootstrapServers: brokerList(options), kafka: await kafkaSettings(options) }
    const replaying = values.replay !== undefined
    // Flags are checked (and foreign ones refused) before anything connects.
    const fleetOptions = replaying ? null : { ...fleetOptionsFromFlags(values, connection), replicationFactor: options.replicationFactor }
    const replayOptions = replaying ? { ...replayOptionsFromFlags(values, connection), replicationFactor: options.replicationFactor } : null
    const { createProgressBar, replay, simulateFleet } = await import('../processor/simulator/index.js')
    const stop = new AbortController()
    const bar = createProgressBar({ label: replaying ? 'replay' : 'simulate' })
    let stage: RunStage | 'connecting' = 'connecting'
    const onStage = (reached: RunStage): void => {
      stage = reached
    }
    let cancelNotice = (): void => {}
    const removeHandlers = onStopSignal({
      stop: () => {
        stop.abort()
        cancelNotice = noticeIfSlowStop(stopNotice(stage, connection.bootstrapServers))
      },
    })
    try {
      let unconfirmed: Unconfirmed | null
      if (replayOptions) {
        const summary = await replay({ ...replayOptions, onProgress: bar.onProgress, onStage, signal: stop.signal }).finally(() => bar.stop())
        process.stdout.write(`${formatReplaySummary(summary)}\n`)
        unconfirmed = summary.unconfirmed
      } else {
        const summary = await simulateFleet({ ...fleetOptions!, onProgress: bar.onProgress, onStage, signal: stop.signal }).finally(() => bar.stop())
        process.stdout.write(`${formatFleetSummary(summary)}\n`)
        unconfirmed = summary.unconfirmed
      }
      // Readings that may not have been written: the summary says which, and the exit code that not all of it went.
      if (unconfirmed !== null) process.exitCode = 1
    } catch (error) {
      throw error instanceof Error ? await explainedFailure(connection.bootstrapServers, error) : error
    } finally {
      cancelNotice()
      removeHandlers()
    }
  })
}
