/**
 * The simulator's public face: what `brook simulate`, `npm start` and tests use. It speaks to a cluster through
 * kafkajs only, so it runs against any Kafka.
 *
 * - `simulateFleet(options)`: a seeded fleet of devices sending readings, paced, until a count, a duration or an abort.
 * - `replay(options)`: `timestamp,value` CSV series as readings with their own event times.
 * - `Fleet`: the fleet's readings as a pure, deterministic stream, to compute what a pipeline should make of a run.
 * - `FLEET_FLAGS`, `REPLAY_FLAGS`, `COMMON_FLAGS`, `*_DEFAULTS`, `*OptionsFromFlags`: the command line, in one place.
 * - `createProgressBar()`: a ready-made terminal progress bar for `onProgress`.
 */
export { simulateFleet, type FleetSummary } from './simulate.js'
export { replay, planSeries, MAX_LISTED_BAD_ROWS, type ReplaySummary, type ReplayedSeries, type SeriesPlan } from './replay.js'
export { Fleet, deviceIds, type FleetModel, type FleetCounts } from './fleet.js'
export {
  COMMON_FLAGS,
  FLEET_DEFAULTS,
  FLEET_FLAGS,
  REPLAY_DEFAULTS,
  REPLAY_FLAGS,
  fleetOptionsFromFlags,
  replayOptionsFromFlags,
  resolveFleetOptions,
  resolveReplayOptions,
  type ConnectionOptions,
  type FlagDefinition,
  type FlagValues,
  type FleetOptions,
  type Log,
  type Progress,
  type ReplayOptions,
  type RunOptions,
  type RunStage,
  type Speedup,
} from './options.js'
export { DELIVERY_HEADER, DELIVERY_KINDS, FAULT_HEADER, FAULT_KINDS, toMessage, type DeliveryKind, type FaultKind, type LabelledReading, type Outgoing, type Reading } from './reading.js'
export { FLEET_SENSORS, SENSOR_MODELS, SENSOR_UNITS, sensorFromFileName, type FleetSensor, type SensorModel } from './sensors.js'
export { badRowPosition, parseTimestamp, type BadRow } from './csv-series.js'
export { HISTORY_TOPIC_CONFIGS, topicWarnings } from './topic.js'
export { SimulatorError, SimulatorErrorCode } from './errors.js'
export { STDERR_LOG } from './connection.js'
export type { Unconfirmed } from './sender.js'
export { createProgressBar, type ProgressBar, type ProgressBarOptions } from './progress-bar.js'
