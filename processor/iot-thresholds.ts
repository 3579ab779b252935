/**
 * The built-in IoT pipeline's default threshold bands (iot.ts), apart from the pipeline so that a command shows them
 * in its --help (`brook process`, `brook demo`) without loading the DSL and its libraries.
 */
import type { ThresholdBounds } from './anomaly.js'

/**
 * The threshold bands of the built-in pipeline when neither thresholdAbove nor thresholdBelow is given, per sensor
 * name: for the four sensors of `brook simulate` (simulator/sensors.ts), bounds a healthy reading does not reach, so
 * that a window alerts on what the simulator's faults make (a spike, a sensor reading its no-signal value: -127 °C, or
 * 0) and not on the weather. Over a week of event time from 40 simulated devices, for each of three seeds, healthy
 * readings stayed within 12.5..30.7 °C, 19.4..76.3 %, 992..1036 hPa and 0..5.5 mm/s. Vibration has no lower bound
 * (a healthy machine at rest reads 0) and its upper one is ISO 10816's 7.1 mm/s.
 */
export const DEFAULT_THRESHOLDS = {
  temperature: { above: 40, below: 5 },
  humidity: { above: 90, below: 5 },
  pressure: { above: 1050, below: 975 },
  vibration: { above: 7.1 },
} as const satisfies Record<string, ThresholdBounds>
/** The default threshold on a window's max for a sensor DEFAULT_THRESHOLDS does not name. */
export const DEFAULT_THRESHOLD_ABOVE = 100
