/**
 * The simulated fleet as a pure, deterministic stream: `new Fleet(model).next()` returns the readings in the order
 * they are sent, forever, computed from the model alone (no clock, no Kafka). The same model gives the same stream,
 * so a run with a count sends a known prefix of it and a test can compute what a pipeline should make of it.
 *
 * The schedule. Every device reads each of its sensors once per round; the fleet's slots are spread evenly over event
 * time at `rate` slots per second:
 *
 *   slot i  ->  round ⌊i / (devices x sensors)⌋, device ⌊(i mod N) / sensors⌋, sensor i mod sensors
 *               ts = startMs + ⌊i x 1000 / rate⌋
 *
 * What happens to a slot, each from its own seeded stream (so that, for one seed, changing the fault rate changes
 * which readings are faulted but not the healthy values, and changing the gap fraction changes nothing else):
 *
 *   gap          the device is quiet for 30 s to 5 min of event time: its slots are left empty (`gapped`).
 *                Gaps start so that `gapFraction` of device-rounds fall in one on average.
 *   fault        an episode on one series: a spike (one reading jumps by the sensor's spike size), stuck-at (the
 *                value freezes at the last healthy one for 5-20 readings), or dropout (the sensor reports its
 *                no-signal value for 3-10 readings). Episodes start so that `faultRate` of readings are faulted.
 *   out-of-order the reading is held back by up to a quarter of the lateness, then sent.
 *   late         the reading is held back by more than the lateness (lateness to twice the lateness), then sent.
 *
 *   slot ──gapped──▶ (nothing)
 *     │
 *     └─value (healthy or fault)─┬─on time──────────────────────────────────▶ sent at ts
 *                                └─held back (out-of-order or late)──▶ heap ─▶ sent at ts + delay
 *
 * A reading's `brook-delivery` label is decided when it is sent, against the highest event time the fleet has sent
 * so far (its stream time): older is out-of-order, older by more than the lateness is late. That is what a consumer
 * of a partition carrying many devices observes; a partition with few devices has a lower stream time of its own.
 */
import { MinHeap } from './heap.js'
import { normalFrom, Random, seedHash, unitHash3 } from './random.js'
import type { FaultKind, Outgoing, Reading } from './reading.js'
import { DRIFT_HOURS, SENSOR_MODELS, type FleetSensor, type SensorModel } from './sensors.js'

/** Everything the stream of readings depends on. */
export interface FleetModel {
  devices: number
  sensors: readonly FleetSensor[]
  /** Slots per second of event time, for the whole fleet. */
  rate: number
  /** A whole number from 0 to 2^53-1. */
  seed: number
  /** Event time of slot 0, ms since the epoch. */
  startMs: number
  latenessMs: number
  /** Fractions of readings, each from 0 to 1; lateFraction + outOfOrderFraction at most 1. */
  lateFraction: number
  outOfOrderFraction: number
  gapFraction: number
  faultRate: number
}

/** What the fleet has done so far (all slots generated, whether sent yet or not). */
export interface FleetCounts {
  slots: number
  gapped: number
  /** Readings held back and not yet sent. */
  held: number
  /**
   * Readings of a counted run (`nextOf`) that were still held back when the slots had made the count, sent at once at
   * its end with their delay cut short. They are labelled against the stream time there like any other, so in a run
   * whose event time spans less than the lateness the late fraction goes out here labelled `out-of-order`, though a
   * windowed consumer with a grace shorter than how far they are behind counts most of them late.
   */
  flushed: number
}

const GAP_MS = [30_000, 300_000] as const
/** Fault kinds by share of episodes, and episode lengths in readings. */
const FAULT_EPISODES: readonly { kind: FaultKind; share: number; length: readonly [number, number] }[] = [
  { kind: 'spike', share: 0.5, length: [1, 1] },
  { kind: 'stuck', share: 0.25, length: [5, 20] },
  { kind: 'dropout', share: 0.25, length: [3, 10] },
]
const FAULT_CODE = { spike: 1, stuck: 2, dropout: 3 } as const satisfies Record<FaultKind, number>
const FAULT_BY_CODE: readonly (FaultKind | null)[] = [null, 'spike', 'stuck', 'dropout']
const MEAN_EPISODE = FAULT_EPISODES.reduce((sum, e) => sum + e.share * ((e.length[0] + e.length[1]) / 2), 0)
/** Salts of the seeded streams and of the fixed per-series properties. */
const STREAM = { values: 1, faults: 2, delivery: 3, gaps: 4 } as const
const PROPERTY = { baseline: 1, amplitude: 2, peak: 3, drift: 4, driftAngle: 5 } as const

interface Held {
  reading: Reading
  fault: FaultKind | null
  dueMs: number
  /** Generation order: breaks ties between equal due times. */
  seq: number
}

/** A gap's shortest and longest length in rounds (a round: every device reads each of its sensors once). */
function gapRounds(model: Pick<FleetModel, 'devices' | 'sensors' | 'rate'>): readonly [number, number] {
  const roundMs = (model.devices * model.sensors.length * 1000) / model.rate
  return [Math.max(1, Math.round(GAP_MS[0] / roundMs)), Math.max(1, Math.round(GAP_MS[1] / roundMs))]
}

/**
 * The gap fraction a fleet must stay below: gaps of mean length L rounds, each starting with probability p at a
 * round its device is not in one, cover p·L / (1 + p·L) of the rounds (startProbability), so p reaches 1 at
 * L / (1 + L). From there on a device starts a new gap as soon as one ends and never reads again: a run would
 * generate empty slots forever, without a pause where Ctrl-C could stop it. With 30 s to 5 min gaps that is 0.976
 * with the defaults (a round every 4 s) and 0.5 once a round lasts 200 s or more (10,000 devices of 4 sensors at
 * 100 readings/s).
 */
export function gapFractionLimit(model: Pick<FleetModel, 'devices' | 'sensors' | 'rate'>): number {
  const [shortest, longest] = gapRounds(model)
  const meanLength = (shortest + longest) / 2
  return meanLength / (1 + meanLength)
}

/**
 * Probability that an episode starts at a step where none is running, for episodes of mean length `meanLength` to
 * cover `fraction` of the steps: in the long run fraction = p·L / (1 + p·L).
 */
function startProbability(fraction: number, meanLength: number): number {
  if (fraction <= 0) return 0
  if (fraction >= 1) return 1
  return fraction / ((1 - fraction) * meanLength)
}

/** The digits of a fleet's device numbers: at least five, so that ids sort as numbers. */
function deviceIdWidth(devices: number): number {
  return Math.max(5, String(devices - 1).length)
}

function deviceId(device: number, width: number): string {
  return `device-${String(device).padStart(width, '0')}`
}

/** The ids of a fleet's devices: `device-00000` on, zero-padded to at least five digits so they sort as numbers. */
export function deviceIds(devices: number): string[] {
  const width = deviceIdWidth(devices)
  return Array.from({ length: devices }, (_, d) => deviceId(d, width))
}

/**
 * The fleet's readings in send order: `next()` forever; `counts` says what the slots so far came to.
 *
 * Memory grows with the series that have reported, not with `devices`: a series' fixed properties are hashed when
 * its reading is made, its state arrays are zero until its first reading (the zeroed pages of a large typed array
 * take no memory until written), and device ids are formatted per reading. About 22 bytes per series that has
 * reported, so a fleet of ten million devices starts at once.
 */
export class Fleet {
  private readonly idWidth: number
  private readonly models: SensorModel[]
  /** Per sensor position, the sensor's index in SENSOR_MODELS: properties hash on it, not on the position. */
  private readonly sensorCodes: number[]
  private readonly seedHashed: number
  /** The id of the device of the last reading made: a device's sensors read one after the other. */
  private lastId = { device: -1, id: '' }
  private readonly series: number
  private readonly spacingMs: number
  private readonly driftDecay: number
  private readonly driftStep: number
  private readonly gapStart: number
  private readonly gapRounds: readonly [number, number]
  private readonly faultStart: number
  private readonly random: Record<keyof typeof STREAM, Random>

  // Per series (device x sensor), indexed by slot mod series; `started` is 1 once the series has made a reading.
  private readonly started: Uint8Array
  private readonly drift: Float64Array
  private readonly lastHealthy: Float64Array
  private readonly faultLeft: Int32Array
  private readonly faultCode: Uint8Array
  // Per device: rounds of the current gap still to come, and whether this round is quiet.
  private readonly gapLeft: Int32Array
  private readonly quiet: Uint8Array

  private readonly held = new MinHeap<Held>((a, b) => a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.seq < b.seq))
  private slot = 0
  private gapped = 0
  private flushed = 0
  /** Readings the slots have made so far (sent or held back). */
  private made = 0
  private streamTime = -Infinity

  constructor(private readonly model: FleetModel) {
    const { devices, sensors, rate, seed } = model
    this.idWidth = deviceIdWidth(devices)
    this.models = sensors.map((name) => SENSOR_MODELS[name])
    this.sensorCodes = sensors.map((name) => Object.keys(SENSOR_MODELS).indexOf(name))
    this.seedHashed = seedHash(seed)
    this.series = devices * sensors.length
    this.spacingMs = 1000 / rate
    const roundHours = this.series / rate / 3600
    this.driftDecay = Math.exp(-roundHours / DRIFT_HOURS)
    this.driftStep = Math.sqrt(1 - this.driftDecay * this.driftDecay)
    this.gapRounds = gapRounds(model)
    this.gapStart = startProbability(model.gapFraction, (this.gapRounds[0] + this.gapRounds[1]) / 2)
    this.faultStart = startProbability(model.faultRate, MEAN_EPISODE)
    this.random = {
      values: new Random(seed, STREAM.values),
      faults: new Random(seed, STREAM.faults),
      delivery: new Random(seed, STREAM.delivery),
      gaps: new Random(seed, STREAM.gaps),
    }
    this.started = new Uint8Array(this.series)
    this.drift = new Float64Array(this.series)
    this.lastHealthy = new Float64Array(this.series)
    this.faultLeft = new Int32Array(this.series)
    this.faultCode = new Uint8Array(this.series)
    this.gapLeft = new Int32Array(devices)
    this.quiet = new Uint8Array(devices)
    // The fleet starts in its long-run state: some devices are already in a gap, with some of it still to come.
    for (let device = 0; device < devices; device++) {
      if (this.random.gaps.next() < model.gapFraction) this.gapLeft[device] = this.random.gaps.int(1, this.gapRounds[1])
    }
  }

  /** A fixed property of series k (of `device`, at sensor position s), in [0, 1). */
  private fixed(device: number, s: number, property: number): number {
    return unitHash3(this.seedHashed, device, this.sensorCodes[s]!, property)
  }

  /** Series k's state before its first reading. */
  private start(k: number, device: number, s: number, m: SensorModel): void {
    this.started[k] = 1
    this.lastHealthy[k] = NaN
    // The drift starts anywhere in its stationary spread: a device is not fresh from calibration.
    this.drift[k] = m.drift * normalFrom(this.fixed(device, s, PROPERTY.drift), this.fixed(device, s, PROPERTY.driftAngle))
  }

  get counts(): FleetCounts {
    return { slots: this.slot, gapped: this.gapped, held: this.held.size, flushed: this.flushed }
  }

  /** The next reading the fleet sends. The stream never ends. */
  next(): Outgoing {
    return this.nextOf(Number.POSITIVE_INFINITY)!
  }

  /**
   * The next reading of a run of `readings` readings (a `--count`): the stream of `next()` until the slots have made
   * that many readings (sent at once or held back); then the readings still held back, at once, in the order they
   * are due, labelled against the stream time as any other (so a held-back reading that ends the run is late only
   * when the run went on for more than the lateness after it). Null once all of them are out: the run sends the
   * fleet's first `readings` readings, none held back for ever.
   */
  nextOf(readings: number): Outgoing | null {
    for (;;) {
      const top = this.held.peek()
      const ended = this.made >= readings
      if (top !== undefined && (ended || top.dueMs <= this.slotTs(this.slot))) {
        const item = this.held.pop()!
        // After the last slot nothing is left to wait for: the reading goes out where the schedule ended.
        if (ended) {
          item.dueMs = Math.min(item.dueMs, this.slotTs(this.slot))
          this.flushed++
        }
        return this.send(item)
      }
      if (ended) return null
      const generated = this.generate()
      if (generated !== null) return this.send(generated)
    }
  }

  private slotTs(slot: number): number {
    return this.model.startMs + Math.floor(slot * this.spacingMs)
  }

  /** Labels a reading against the fleet's stream time as it goes out. */
  private send(item: Held): Outgoing {
    const ts = item.reading.ts
    let delivery: Outgoing['delivery'] = null
    if (ts < this.streamTime) delivery = this.streamTime - ts > this.model.latenessMs ? 'late' : 'out-of-order'
    else this.streamTime = ts
    return { reading: item.reading, fault: item.fault, delivery, dueMs: item.dueMs }
  }

  /** The next slot: null when it is empty (gap) or its reading was held back, else the reading to send now. */
  private generate(): Held | null {
    const slot = this.slot++
    const ts = this.slotTs(slot)
    const k = slot % this.series
    const sensorCount = this.models.length
    const device = Math.floor(k / sensorCount)
    const s = k % sensorCount
    const m = this.models[s]!

    if (this.started[k] === 0) this.start(k, device, s, m)
    const { value, fault } = this.value(k, device, s, m, ts)
    if (s === 0) this.quiet[device] = this.gapRound(device) ? 1 : 0
    const quiet = this.quiet[device] === 1
    if (this.lastId.device !== device) this.lastId = { device, id: deviceId(device, this.idWidth) }
    const reading: Reading = { deviceId: this.lastId.id, sensor: this.model.sensors[s]!, value, unit: m.unit, ts }

    // The delivery stream is drawn for every slot, gapped or not, so gaps do not shift other readings' fates.
    const delivery = this.random.delivery
    const draw = delivery.next()
    const { lateFraction, outOfOrderFraction, latenessMs } = this.model
    let delayMs = 0
    if (draw < lateFraction) delayMs = latenessMs + this.spacingMs + delivery.next() * latenessMs
    else if (draw < lateFraction + outOfOrderFraction) delayMs = this.spacingMs + (delivery.next() * latenessMs) / 4

    if (quiet) {
      this.gapped++
      return null
    }
    this.made++
    const item: Held = { reading, fault, dueMs: ts + Math.round(delayMs), seq: slot }
    if (delayMs === 0) return item
    this.held.push(item)
    return null
  }

  /** Whether the device is quiet this round (decided at its first sensor); `gapLeft` counts the gap's rounds after it. */
  private gapRound(device: number): boolean {
    if (this.gapLeft[device]! > 0) {
      this.gapLeft[device]!--
      return true
    }
    const gaps = this.random.gaps
    if (gaps.next() >= this.gapStart) return false
    this.gapLeft[device] = gaps.int(this.gapRounds[0], this.gapRounds[1]) - 1
    return true
  }

  /** The series' healthy value at ts (always computed, so the drift moves on), and the fault, if any, over it. */
  private value(k: number, device: number, s: number, m: SensorModel, ts: number): { value: number; fault: FaultKind | null } {
    const values = this.random.values
    let cycle = 0
    if (m.cycle) {
      const amplitude = m.cycle.amplitude[0] + (m.cycle.amplitude[1] - m.cycle.amplitude[0]) * this.fixed(device, s, PROPERTY.amplitude)
      const peakHour = m.cycle.peakHour - 1 + 2 * this.fixed(device, s, PROPERTY.peak)
      cycle = amplitude * Math.cos((2 * Math.PI * (ts / 3_600_000 - peakHour)) / m.cycle.periodHours)
    }
    this.drift[k] = this.drift[k]! * this.driftDecay + m.drift * this.driftStep * values.normal()
    const baseline = m.baseline[0] + (m.baseline[1] - m.baseline[0]) * this.fixed(device, s, PROPERTY.baseline)
    const healthy = round(clamp(baseline + cycle + this.drift[k]! + m.noise * values.normal(), m.min, m.max), m.decimals)

    const faults = this.random.faults
    const start = faults.next()
    if (this.faultLeft[k]! > 0) {
      this.faultLeft[k]!--
    } else if (start < this.faultStart) {
      let pick = faults.next()
      const episode = FAULT_EPISODES.find((e) => (pick -= e.share) < 0) ?? FAULT_EPISODES[FAULT_EPISODES.length - 1]!
      this.faultCode[k] = FAULT_CODE[episode.kind]
      this.faultLeft[k] = faults.int(episode.length[0], episode.length[1]) - 1
    } else {
      this.faultCode[k] = 0
    }
    const fault = FAULT_BY_CODE[this.faultCode[k]!]!
    if (fault === null) {
      this.lastHealthy[k] = healthy
      return { value: healthy, fault }
    }
    switch (fault) {
      case 'spike': {
        const size = m.spike[0] + (m.spike[1] - m.spike[0]) * faults.next()
        const up = m.spikeDirection === 'up' || faults.next() < 0.5
        return { value: round(clamp(healthy + (up ? size : -size), m.min, m.max), m.decimals), fault }
      }
      case 'stuck':
        // A series stuck from its very first reading freezes at that reading's value.
        if (Number.isNaN(this.lastHealthy[k]!)) this.lastHealthy[k] = healthy
        return { value: this.lastHealthy[k]!, fault }
      case 'dropout':
        return { value: m.dropoutValue, fault }
    }
  }
}

function clamp(value: number, min: number, max: number): number {
  return value < min ? min : value > max ? max : value
}

function round(value: number, decimals: number): number {
  const scale = 10 ** decimals
  return Math.round(value * scale) / scale
}
