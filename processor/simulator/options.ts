/**
 * The options of `simulateFleet` and `replay`, their defaults, and their command-line flags, in one place: each flag
 * definition carries its check, which both the flag parser and the functions' own validation use, so a value is
 * refused with the same message wherever it comes from. Values are refused, never clamped.
 *
 * A flag's `key` is the option's name, which is also what commander calls the flag's value (`--late-fraction` ->
 * `lateFraction`). `fleetOptionsFromFlags` / `replayOptionsFromFlags` turn parsed flag values into options; only
 * `--as-fast-as-possible` (-> speedup) and `--replay <csv...>` (-> files) change names on the way.
 */
import type { KafkaConfig } from 'kafkajs'
import { SimulatorError, SimulatorErrorCode } from './errors.js'
import { gapFractionLimit } from './fleet.js'
import { FLEET_SENSORS, SENSOR_MODELS, type FleetSensor } from './sensors.js'

/** How to reach the cluster. */
export interface ConnectionOptions {
  /** One or more `host:port` (`--bootstrap-server`). */
  bootstrapServers: string[]
  /** Further kafkajs client settings (ssl, sasl, clientId, timeouts), for clusters that need them. */
  kafka?: Omit<KafkaConfig, 'brokers'>
}

/**
 * Where a run is before its first batch goes out: `preparing-topic` once the cluster has answered (the topic is
 * created or checked next), `sending` once the producer is connected and readings can go.
 */
export type RunStage = 'preparing-topic' | 'sending'

/** Event time per wall-clock time: 1 is real time, 60 a minute of readings per second; or no pacing at all. */
export type Speedup = number | 'as-fast-as-possible'

/** Progress of a run, reported after every acknowledged batch. */
export interface Progress {
  /** Readings acknowledged by the cluster so far. */
  sent: number
  /** Readings the run will send in all, when known (a replay, a fleet run with a count). */
  total: number | null
  /** Event time (ms since the epoch) of the last reading acknowledged. */
  eventTimeMs: number
  /** Wall-clock ms since sending started. */
  elapsedMs: number
}

/** Where the run's lines go (topic created, warnings). Defaults to stderr. */
export interface Log {
  info(message: string): void
  warn(message: string): void
}

export interface RunOptions {
  /** Topic to write to; created if missing. */
  topic?: string
  /** Partitions of the topic when the run creates it (default: the cluster's num.partitions). */
  partitions?: number
  /** Replicas of each partition when the run creates the topic (default: -1, the cluster's default.replication.factor). */
  replicationFactor?: number
  speedup?: Speedup
  /** Stops the run: batches in flight are awaited, nothing more is sent, and the summary is returned. */
  signal?: AbortSignal
  onProgress?: (progress: Progress) => void
  /**
   * Hears each RunStage as the run reaches it. Until the first, the run is connecting: a stop then has no batch in
   * flight to wait for, only kafkajs's connection attempts.
   */
  onStage?: (stage: RunStage) => void
  log?: Log
  /** Most readings per produce request. */
  batchSize?: number
}

export interface FleetOptions extends ConnectionOptions, RunOptions {
  devices?: number
  /** Readings per second of event time for the whole fleet (with speedup 1, per second of wall-clock time). */
  rate?: number
  sensors?: FleetSensor[]
  seed?: number
  /** Fraction of readings sent more than `latenessMs` after their event time. */
  lateFraction?: number
  /** Fraction of readings sent a little after later ones (within a quarter of the lateness). */
  outOfOrderFraction?: number
  /** Fraction of device time spent quiet (gaps of 30 s to 5 min). */
  gapFraction?: number
  /** Fraction of readings that carry an injected fault (spike, stuck-at, dropout). */
  faultRate?: number
  latenessMs?: number
  /** Send this many readings (the fleet's first: the ones held back go out last, at once), then stop. */
  count?: number
  /** Stop after this much wall-clock time. Without count or duration, the run goes on until `signal` aborts. */
  durationMs?: number
  /**
   * Event time of the first slot (ms since the epoch). Default: now for real-time runs; for faster runs whose length
   * is known, early enough that the run ends around now (topics refuse timestamps more than
   * message.timestamp.after.max.ms, an hour by default, ahead of the broker clock).
   */
  startMs?: number
}

export interface ReplayOptions extends ConnectionOptions, RunOptions {
  /** `timestamp,value` CSV files; each becomes one series. */
  files: string[]
  /** Device of every file (default: the file's name without its extension). */
  deviceId?: string
  /** Sensor of every file (default: recognised in the file's name: temperature, occupancy, speed, travel_time...). */
  sensor?: string
  /** Unit of every file (default: the sensor's unit). */
  unit?: string
}

const DEFAULT_TOPIC = 'readings'
/** Readings per produce request: a few hundred KB, large enough that per-request costs fade. */
const DEFAULT_BATCH_SIZE = 2000

export const FLEET_DEFAULTS = {
  topic: DEFAULT_TOPIC,
  devices: 100,
  rate: 100,
  sensors: FLEET_SENSORS,
  seed: 1,
  lateFraction: 0.01,
  outOfOrderFraction: 0.02,
  gapFraction: 0.01,
  faultRate: 0.001,
  latenessMs: 120_000,
  speedup: 1,
  batchSize: DEFAULT_BATCH_SIZE,
} as const

export const REPLAY_DEFAULTS = {
  topic: DEFAULT_TOPIC,
  // Real time would take months for the NAB series; a replay feeds history, so it runs unpaced unless told.
  speedup: 'as-fast-as-possible',
  batchSize: DEFAULT_BATCH_SIZE,
} as const

/** A problem with a value, as the end of a sentence that starts with the flag's name; null if the value is fine. */
type Check = (value: unknown) => string | null

export interface FlagDefinition {
  /** The option it sets, and commander's name for its value. */
  key: string
  flag: string
  /** `<n>`, `<names>`, `<csv...>`; null for a switch. */
  argument: string | null
  description: string
  /** Shown in --help; the functions apply the same defaults themselves. */
  defaultValue?: unknown
  /** Keys of the flags it cannot be given with: the command line refuses them together (commander's `conflicts`). */
  conflicts?: readonly string[]
  /** The value from the flag's text (a switch gets none); throws SimulatorError (INVALID_OPTION) naming the flag. */
  parse(text?: string): unknown
  /** The same check for a value given to the functions directly. */
  check: Check
}

const LIMIT = {
  devices: 10_000_000,
  rate: 100_000_000,
  partitions: 100_000,
  batchSize: 1_000_000,
  /** 2^53 - 1: the largest whole number a JavaScript number holds exactly. */
  safe: Number.MAX_SAFE_INTEGER,
} as const

function wholeNumber(min: number, max: number): Check {
  return (value) => (Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max ? null : `must be a whole number from ${min} to ${max}`)
}

function positiveNumber(max: number): Check {
  return (value) => (typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= max ? null : `must be a number above 0 and at most ${max}`)
}

const fraction: Check = (value) => (typeof value === 'number' && value >= 0 && value <= 1 ? null : 'must be a fraction from 0 to 1')

const speedup: Check = (value) => (value === 'as-fast-as-possible' ? null : positiveNumber(1e12)(value))

/** Kafka's rule for topic names (org.apache.kafka.common.internals.Topic#validate). */
const topicName: Check = (value) => {
  if (typeof value !== 'string' || value === '' || value === '.' || value === '..') return 'must be a topic name'
  if (value.length > 249) return 'must be at most 249 characters'
  return /^[a-zA-Z0-9._-]+$/.test(value) ? null : 'may hold only letters, digits, ".", "_" and "-"'
}

const text: Check = (value) => (typeof value === 'string' && value.trim() !== '' ? null : 'must not be empty')

const sensorList: Check = (value) => {
  if (!Array.isArray(value) || value.length === 0) return `must name one or more of ${FLEET_SENSORS.join(', ')}`
  const unknown = value.find((name) => !Object.hasOwn(SENSOR_MODELS, name))
  if (unknown !== undefined) return `has '${unknown}'; the simulated sensors are ${FLEET_SENSORS.join(', ')}`
  const twice = value.find((name, i) => value.indexOf(name) !== i)
  return twice === undefined ? null : `names '${twice}' twice`
}

const files: Check = (value) => (Array.isArray(value) && value.length > 0 && value.every((f) => text(f) === null) ? null : 'needs one or more CSV files')

function invalid(flag: string, problem: string): SimulatorError {
  return new SimulatorError(SimulatorErrorCode.invalidOption, `${flag} ${problem}`)
}

/** A flag whose text is a number (decimal, no units), checked by `check`. */
function numberFlag(key: string, flag: string, argument: string, description: string, check: Check, defaultValue?: unknown): FlagDefinition {
  return {
    key,
    flag,
    argument,
    description,
    defaultValue,
    check,
    parse(value) {
      const n = value !== undefined && /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(value) ? Number(value) : NaN
      const problem = check(n)
      if (problem !== null) throw invalid(flag, `${problem}, not '${value}'`)
      return n
    },
  }
}

function textFlag(key: string, flag: string, argument: string, description: string, check: Check, defaultValue?: unknown): FlagDefinition {
  return {
    key,
    flag,
    argument,
    description,
    defaultValue,
    check,
    parse(value) {
      const problem = check(value)
      if (problem !== null) throw invalid(flag, `${problem}, not '${value}'`)
      return value
    },
  }
}

/** Flags of both modes. */
export const COMMON_FLAGS: readonly FlagDefinition[] = [
  textFlag('topic', '--topic', '<name>', 'topic to write readings to (created if missing)', topicName, DEFAULT_TOPIC),
  numberFlag('partitions', '--partitions', '<n>', "partitions of the topic, if it is created (default: the cluster's num.partitions)", wholeNumber(1, LIMIT.partitions)),
  numberFlag('speedup', '--speedup', '<n>', 'event time per wall-clock time: 1 is real time, 60 sends a minute of readings per second', speedup),
  {
    key: 'asFastAsPossible',
    flag: '--as-fast-as-possible',
    argument: null,
    description: 'send as fast as the cluster takes readings, with no pacing',
    check: (value) => (typeof value === 'boolean' ? null : 'is a switch'),
    parse: () => true,
  },
  numberFlag('batchSize', '--batch-size', '<n>', 'most readings per produce request', wholeNumber(1, LIMIT.batchSize), DEFAULT_BATCH_SIZE),
]

/** Flags of the simulated fleet (`brook simulate`). */
export const FLEET_FLAGS: readonly FlagDefinition[] = [
  numberFlag('devices', '--devices', '<n>', 'simulated devices', wholeNumber(1, LIMIT.devices), FLEET_DEFAULTS.devices),
  numberFlag('rate', '--rate', '<readings/s>', 'readings per second for the whole fleet', positiveNumber(LIMIT.rate), FLEET_DEFAULTS.rate),
  {
    key: 'sensors',
    flag: '--sensors',
    argument: '<names>',
    description: `sensors of every device, comma-separated: ${FLEET_SENSORS.join(', ')}`,
    defaultValue: FLEET_DEFAULTS.sensors.join(','),
    check: sensorList,
    parse(value) {
      const names = (value ?? '').split(',').map((name) => name.trim()).filter((name) => name !== '')
      const problem = sensorList(names)
      if (problem !== null) throw invalid('--sensors', problem)
      return names
    },
  },
  numberFlag('seed', '--seed', '<n>', 'seed of the fleet: the same seed and options give the same readings', wholeNumber(0, LIMIT.safe), FLEET_DEFAULTS.seed),
  numberFlag('lateFraction', '--late-fraction', '<f>', 'fraction of readings sent later than --lateness-ms after their event time', fraction, FLEET_DEFAULTS.lateFraction),
  numberFlag('outOfOrderFraction', '--out-of-order-fraction', '<f>', 'fraction of readings sent a little after later ones', fraction, FLEET_DEFAULTS.outOfOrderFraction),
  numberFlag('gapFraction', '--gap-fraction', '<f>', 'fraction of time a device is quiet (gaps of 30 s to 5 min)', fraction, FLEET_DEFAULTS.gapFraction),
  numberFlag('faultRate', '--fault-rate', '<f>', 'fraction of readings with an injected fault (spike, stuck-at, dropout)', fraction, FLEET_DEFAULTS.faultRate),
  numberFlag('latenessMs', '--lateness-ms', '<ms>', 'how late a late reading is, at least (e.g. beyond a window\'s grace)', wholeNumber(1, LIMIT.safe), FLEET_DEFAULTS.latenessMs),
  // Each says when the run ends: given both, a count cut short by the duration would send fewer readings than asked.
  { ...numberFlag('count', '--count', '<n>', 'send this many readings, the held-back ones last, then stop', wholeNumber(1, LIMIT.safe)), conflicts: ['durationMs'] },
  numberFlag('durationMs', '--duration-ms', '<ms>', 'stop after this long (default: run until interrupted)', wholeNumber(1, LIMIT.safe)),
  numberFlag('startMs', '--start-ms', '<ms>', 'event time of the first slot, ms since the epoch (default: now, or early enough for a counted or sped-up run to end about now): with --seed, runs send the same readings', wholeNumber(0, LIMIT.safe)),
]

/** Flags of a replay (`brook simulate --replay <csv...>`). */
export const REPLAY_FLAGS: readonly FlagDefinition[] = [
  {
    key: 'replay',
    flag: '--replay',
    argument: '<csv...>',
    description: 'replay timestamp,value CSV files (such as the NAB series) as readings with their own event times',
    check: files,
    parse: (value) => value,
  },
  textFlag('deviceId', '--device-id', '<id>', 'device of the replayed readings (default: each file\'s name)', text),
  textFlag('sensor', '--sensor', '<name>', 'sensor of the replayed readings (default: recognised in each file\'s name)', text),
  textFlag('unit', '--unit', '<unit>', 'unit of the replayed readings (default: the sensor\'s)', text),
]

/** Checks the values present in `options` against `flags`; throws SimulatorError (INVALID_OPTION) at the first problem. */
function checkOptions(options: object, flags: readonly FlagDefinition[]): void {
  const values = options as Record<string, unknown>
  for (const def of flags) {
    const value = values[def.key]
    if (value === undefined) continue
    const problem = def.check(value)
    if (problem !== null) throw invalid(`${def.key} (${def.flag})`, problem)
  }
}

function checkConnection(options: ConnectionOptions): void {
  const servers = options.bootstrapServers
  if (!Array.isArray(servers) || servers.length === 0 || !servers.every((s) => typeof s === 'string' && /^\S+:\d+$/.test(s))) {
    throw invalid('bootstrapServers (--bootstrap-server)', 'needs one or more host:port')
  }
}

export type ResolvedFleetOptions = FleetOptions & Required<Pick<FleetOptions, keyof typeof FLEET_DEFAULTS>>
export type ResolvedReplayOptions = ReplayOptions & Required<Pick<ReplayOptions, keyof typeof REPLAY_DEFAULTS>>

/** The fleet's options with defaults applied; throws SimulatorError (INVALID_OPTION) on a bad value. */
export function resolveFleetOptions(options: FleetOptions): ResolvedFleetOptions {
  checkConnection(options)
  checkOptions(options, [...COMMON_FLAGS, ...FLEET_FLAGS])
  const resolved = { ...FLEET_DEFAULTS, sensors: [...FLEET_DEFAULTS.sensors], ...definedOnly(options), bootstrapServers: options.bootstrapServers }
  if (resolved.lateFraction + resolved.outOfOrderFraction > 1) {
    throw invalid('lateFraction + outOfOrderFraction (--late-fraction, --out-of-order-fraction)', 'must be at most 1')
  }
  const gapLimit = gapFractionLimit(resolved)
  if (resolved.gapFraction >= gapLimit) {
    const roundS = (resolved.devices * resolved.sensors.length) / resolved.rate
    throw invalid('gapFraction (--gap-fraction)', `must be below ${Math.floor(gapLimit * 10_000) / 10_000} with ${resolved.devices} device${resolved.devices === 1 ? '' : 's'} of ${resolved.sensors.length} sensor${resolved.sensors.length === 1 ? '' : 's'} at ${resolved.rate} readings/s: a device reads every ${roundS} s and a gap lasts 30 s to 5 min, so at ${resolved.gapFraction} every device would be quiet for good and no reading would ever be sent`)
  }
  if (options.startMs !== undefined && !Number.isSafeInteger(options.startMs)) throw invalid('startMs', 'must be a whole number of ms since the epoch')
  return resolved
}

/** The replay's options with defaults applied; throws SimulatorError (INVALID_OPTION) on a bad value. */
export function resolveReplayOptions(options: ReplayOptions): ResolvedReplayOptions {
  checkConnection(options)
  checkOptions({ ...options, replay: options.files }, [...COMMON_FLAGS, ...REPLAY_FLAGS])
  return { ...REPLAY_DEFAULTS, ...definedOnly(options), bootstrapServers: options.bootstrapServers, files: options.files }
}

/** `{a: 1, b: undefined}` -> `{a: 1}`, so that an option left undefined keeps its default. */
function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>
}

/** Flag values as commander parses them: keyed by FlagDefinition.key. */
export type FlagValues = Record<string, unknown>

function speedupFromFlags(values: FlagValues): Speedup | undefined {
  if (values.asFastAsPossible === true) {
    if (values.speedup !== undefined) throw invalid('--speedup', 'and --as-fast-as-possible exclude each other')
    return 'as-fast-as-possible'
  }
  return values.speedup as number | undefined
}

/** Throws SimulatorError (INVALID_OPTION) for the first flag of `foreign` given, even at its default value. */
function refuseForeign(values: FlagValues, foreign: readonly FlagDefinition[], mode: string): void {
  const given = foreign.find((def) => values[def.key] !== undefined)
  if (given !== undefined) throw invalid(given.flag, `does not apply to ${mode}`)
}

/** `brook simulate` flags -> options of simulateFleet. Throws SimulatorError (INVALID_OPTION) on a replay flag. */
export function fleetOptionsFromFlags(values: FlagValues, connection: ConnectionOptions): FleetOptions {
  refuseForeign(values, REPLAY_FLAGS, 'a simulated fleet')
  const options: Record<string, unknown> = { ...connection }
  for (const def of [...COMMON_FLAGS, ...FLEET_FLAGS]) if (values[def.key] !== undefined) options[def.key] = values[def.key]
  delete options.asFastAsPossible
  options.speedup = speedupFromFlags(values)
  return options as unknown as FleetOptions
}

/** `brook simulate --replay <csv...>` flags -> options of replay. Throws SimulatorError (INVALID_OPTION) on a fleet flag. */
export function replayOptionsFromFlags(values: FlagValues, connection: ConnectionOptions): ReplayOptions {
  refuseForeign(values, FLEET_FLAGS, '--replay')
  const options: Record<string, unknown> = { ...connection, files: values.replay }
  for (const def of [...COMMON_FLAGS, ...REPLAY_FLAGS]) if (def.key !== 'replay' && values[def.key] !== undefined) options[def.key] = values[def.key]
  delete options.asFastAsPossible
  options.speedup = speedupFromFlags(values)
  return options as unknown as ReplayOptions
}
