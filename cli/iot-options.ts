/**
 * The built-in IoT pipeline's settings as flags (`brook process iot` and `brook demo`): one table, from flag to
 * `IotPipelineOptions` key, with a parser per kind of value. The flags are added in a loop, so their values are read
 * by key (and typed by the parser that made them); a flag left out leaves the pipeline's own default.
 */
import { InvalidArgumentError, Option, type CommandUnknownOpts } from '@commander-js/extra-typings'
// The processor's light modules, not its index: declaring and checking these flags loads no DSL, runtime or kafkajs.
import type { IotPipelineOptions } from '../processor/index.js'
import { TopologyError } from '../processor/errors.js'
import { DEFAULT_THRESHOLD_ABOVE, DEFAULT_THRESHOLDS } from '../processor/iot-thresholds.js'
import { toMs, type Duration } from '../processor/time.js'
import { integer } from './parsers.js'

interface IotFlag {
  key: keyof IotPipelineOptions
  flag: string
  argument: string
  description: string
  /** The pipeline's own default, as --help shows it. */
  defaultText: string
  parse: (text: string) => string | number
}

function topicName(flag: string) {
  return (text: string): string => {
    if (text.trim() === '') throw new InvalidArgumentError(`${flag} takes a topic name`)
    return text
  }
}

/** `1m`, `10s`, `500ms`, `2h`, or a number of milliseconds, as the DSL takes durations. */
function duration(flag: string, { positive }: { positive: boolean }) {
  return (text: string): Duration => {
    const value: Duration = /^\d+$/.test(text) ? Number(text) : (text as Duration)
    let ms: number
    try {
      ms = toMs(value, flag)
    } catch (error) {
      if (error instanceof TopologyError) throw new InvalidArgumentError(error.message)
      throw error
    }
    if (positive && ms <= 0) throw new InvalidArgumentError(`${flag} must be more than 0 ms`)
    return value
  }
}

/** The default bands' bounds on one side, for a flag's help: `temperature 40, humidity 90, ...`. */
function defaultBands(side: 'above' | 'below'): string {
  return Object.entries(DEFAULT_THRESHOLDS).flatMap(([sensor, band]: [string, { above?: number; below?: number }]) => (band[side] === undefined ? [] : [`${sensor} ${band[side]}`])).join(', ')
}

function finiteNumber(flag: string) {
  return (text: string): number => {
    const value = text.trim() === '' ? NaN : Number(text)
    if (!Number.isFinite(value)) throw new InvalidArgumentError(`${flag} takes a number`)
    return value
  }
}

const WINDOWS_MAX = 1_000_000

/** Defaults are the pipeline's own (processor/iot.ts); they are shown here, not set, so that a flag left out leaves them. */
export const IOT_FLAGS: readonly IotFlag[] = [
  { key: 'inputTopic', flag: '--input-topic', argument: '<topic>', description: 'readings to read', defaultText: 'readings', parse: topicName('--input-topic') },
  { key: 'statsTopic', flag: '--stats-topic', argument: '<topic>', description: 'per-window stats', defaultText: 'readings-stats-1m', parse: topicName('--stats-topic') },
  { key: 'averagesTopic', flag: '--averages-topic', argument: '<topic>', description: 'hopping-window averages', defaultText: 'readings-avg-5m', parse: topicName('--averages-topic') },
  { key: 'alertsTopic', flag: '--alerts-topic', argument: '<topic>', description: 'threshold and z-score alerts', defaultText: 'readings-alerts', parse: topicName('--alerts-topic') },
  { key: 'lateTopic', flag: '--late-topic', argument: '<topic>', description: 'readings that came after their windows closed', defaultText: 'readings-late', parse: topicName('--late-topic') },
  { key: 'statsWindow', flag: '--stats-window', argument: '<duration>', description: 'size of the tumbling stats windows: 1m, 30s, 500ms or ms', defaultText: '1m', parse: duration('--stats-window', { positive: true }) },
  { key: 'averageWindow', flag: '--average-window', argument: '<duration>', description: 'size of the hopping average windows', defaultText: '5m', parse: duration('--average-window', { positive: true }) },
  { key: 'averageAdvance', flag: '--average-advance', argument: '<duration>', description: 'how often a hopping average window starts', defaultText: '1m', parse: duration('--average-advance', { positive: true }) },
  { key: 'grace', flag: '--grace', argument: '<duration>', description: 'how late a reading may come and still count in its window', defaultText: '10s', parse: duration('--grace', { positive: false }) },
  { key: 'thresholdAbove', flag: '--threshold-above', argument: '<value>', description: 'alert when a window\'s max is above this, for every sensor', defaultText: `per sensor: ${defaultBands('above')}, any other ${DEFAULT_THRESHOLD_ABOVE}; none when only --threshold-below is given`, parse: finiteNumber('--threshold-above') },
  { key: 'thresholdBelow', flag: '--threshold-below', argument: '<value>', description: 'alert when a window\'s min is below this, for every sensor', defaultText: `per sensor: ${defaultBands('below')}; none when only --threshold-above is given`, parse: finiteNumber('--threshold-below') },
  { key: 'zScoreThreshold', flag: '--z-score-threshold', argument: '<z>', description: 'alert when a window\'s average is this many standard deviations from its baseline', defaultText: '4', parse: finiteNumber('--z-score-threshold') },
  { key: 'zScoreBaselineWindows', flag: '--z-score-baseline-windows', argument: '<n>', description: 'previous windows of the same device and sensor that make the baseline', defaultText: '30', parse: integer('--z-score-baseline-windows', 1, WINDOWS_MAX) },
  { key: 'zScoreMinBaselineWindows', flag: '--z-score-min-baseline-windows', argument: '<n>', description: 'windows a baseline needs before it scores anything', defaultText: '10', parse: integer('--z-score-min-baseline-windows', 1, WINDOWS_MAX) },
]

/** Adds the IoT pipeline's flags to a command; `defaults` names the defaults of a command that sets its own. */
export function addIotOptions(command: CommandUnknownOpts, defaults: Partial<Record<keyof IotPipelineOptions, string>> = {}): void {
  for (const def of IOT_FLAGS) {
    command.addOption(new Option(`${def.flag} ${def.argument}`, `${def.description} (default: ${defaults[def.key] ?? def.defaultText})`).argParser(def.parse))
  }
}

/** The IoT pipeline's options given on the command line (only those given), with the flags that gave them. */
export function iotOptionsFrom(command: CommandUnknownOpts): { options: IotPipelineOptions; flags: string[] } {
  const options: Record<string, unknown> = {}
  const flags: string[] = []
  for (const def of IOT_FLAGS) {
    const value = command.getOptionValue(def.key)
    if (value === undefined) continue
    options[def.key] = value
    flags.push(def.flag)
  }
  return { options: options as IotPipelineOptions, flags }
}
