/**
 * What the simulator knows about sensors: how each kind of the simulated fleet behaves (range, baselines, noise,
 * drift, daily cycle, what its faults look like), and which unit a replayed series gets from its sensor name.
 *
 * A healthy reading of a simulated sensor is
 *
 *   value = baseline + cycle(ts) + drift + noise          clamped to [min, max], rounded to `decimals`
 *
 *   baseline  per device, uniform in `baseline` (fixed by the seed and the device)
 *   cycle     amplitude x cos(2 pi (hours(ts) - peakHour) / periodHours); the fleet's site keeps UTC
 *   drift     a mean-reverting random walk (Ornstein-Uhlenbeck) with standard deviation `drift` and a time
 *             constant of DRIFT_HOURS: sensor ageing, weather, load; it wanders but does not run away
 *   noise     normal, standard deviation `noise`
 */

export interface DailyCycle {
  periodHours: number
  /** Per-device amplitude, uniform in this range. */
  amplitude: readonly [number, number]
  /** Hour (UTC) of the cycle's maximum; each device is up to an hour either side. */
  peakHour: number
}

export interface SensorModel {
  unit: string
  /** The measuring range: healthy readings are clamped to it. */
  min: number
  max: number
  baseline: readonly [number, number]
  noise: number
  drift: number
  cycle: DailyCycle | null
  /** Size of a spike's jump from the healthy value, uniform in this range. */
  spike: readonly [number, number]
  /** Spikes go both ways, or only up (a shock on a vibration sensor never lowers it). */
  spikeDirection: 'both' | 'up'
  /** What the sensor reports while its signal is lost. */
  dropoutValue: number
  decimals: number
}

/** Time constant of every sensor's drift. */
export const DRIFT_HOURS = 6

/**
 * The sensors a simulated device can carry. Ranges are those of common industrial parts (temperature -40..85 °C,
 * pressure within the extremes ever recorded at the surface, vibration velocity per ISO 10816, where healthy machines
 * run below ~3 mm/s). Dropout values are what such parts report without a signal: a DS18B20 reads -127 °C when
 * disconnected; a humidity, pressure or vibration front end with no input reads 0.
 */
export const SENSOR_MODELS = {
  temperature: {
    unit: '°C',
    min: -40,
    max: 85,
    baseline: [18, 26],
    noise: 0.15,
    drift: 0.8,
    cycle: { periodHours: 24, amplitude: [1.5, 4], peakHour: 15 },
    spike: [15, 35],
    spikeDirection: 'both',
    dropoutValue: -127,
    decimals: 2,
  },
  humidity: {
    unit: '%',
    min: 0,
    max: 100,
    baseline: [35, 60],
    noise: 0.6,
    drift: 3,
    // Relative humidity peaks around dawn, when the air is coolest.
    cycle: { periodHours: 24, amplitude: [4, 10], peakHour: 5 },
    spike: [20, 40],
    spikeDirection: 'both',
    dropoutValue: 0,
    decimals: 1,
  },
  pressure: {
    unit: 'hPa',
    min: 870,
    max: 1085,
    baseline: [1005, 1022],
    noise: 0.1,
    drift: 4,
    // The atmospheric tide: two maxima a day, around 10:00 and 22:00 local time.
    cycle: { periodHours: 12, amplitude: [0.5, 1.2], peakHour: 10 },
    spike: [30, 80],
    spikeDirection: 'both',
    dropoutValue: 0,
    decimals: 1,
  },
  vibration: {
    unit: 'mm/s',
    min: 0,
    max: 50,
    baseline: [1, 4],
    noise: 0.2,
    drift: 0.3,
    cycle: null,
    spike: [10, 30],
    spikeDirection: 'up',
    dropoutValue: 0,
    decimals: 2,
  },
} as const satisfies Record<string, SensorModel>

export type FleetSensor = keyof typeof SENSOR_MODELS

export const FLEET_SENSORS = Object.keys(SENSOR_MODELS) as readonly FleetSensor[]

/**
 * Units of the series a replay recognises in file names (the NAB traffic files: occupancy in %, speed in mph, travel
 * time in s), beside the fleet's own sensors. NAB does not state the unit of its machine temperature; it gets the
 * temperature sensor's °C unless the replay is told otherwise.
 */
export const SENSOR_UNITS: Readonly<Record<string, string>> = {
  ...Object.fromEntries(FLEET_SENSORS.map((name) => [name, SENSOR_MODELS[name].unit])),
  occupancy: '%',
  speed: 'mph',
  travel_time: 's',
}

/** File-name patterns, tried in order: `TravelTime_387.csv` is travel_time, `speed_7578.csv` speed. */
const NAME_PATTERNS: readonly (readonly [RegExp, string])[] = [
  [/travel[_-]?time/i, 'travel_time'],
  [/occupancy/i, 'occupancy'],
  [/speed/i, 'speed'],
  [/temperature|temp(?![a-z])/i, 'temperature'],
  [/humidity/i, 'humidity'],
  [/pressure/i, 'pressure'],
  [/vibration/i, 'vibration'],
]

/** The sensor a series' file name names, or null. */
export function sensorFromFileName(fileName: string): string | null {
  return NAME_PATTERNS.find(([pattern]) => pattern.test(fileName))?.[1] ?? null
}
