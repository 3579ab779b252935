/**
 * The simulator's options as the command line will give them: each flag's parsing and refusals, the mapping from
 * flag values to options, and the defaults applied by the functions.
 */
import { describe, expect, it } from 'vitest'
import {
  COMMON_FLAGS,
  FLEET_DEFAULTS,
  FLEET_FLAGS,
  REPLAY_FLAGS,
  fleetOptionsFromFlags,
  replayOptionsFromFlags,
  resolveFleetOptions,
  resolveReplayOptions,
  type FlagDefinition,
} from '../../../processor/simulator/index.js'

const connection = { bootstrapServers: ['127.0.0.1:9092'] }
const flag = (name: string): FlagDefinition => [...COMMON_FLAGS, ...FLEET_FLAGS, ...REPLAY_FLAGS].find((f) => f.flag === name)!

describe('simulator flags', () => {
  it('each have a distinct flag and key, named as commander names their values', () => {
    const all = [...COMMON_FLAGS, ...FLEET_FLAGS, ...REPLAY_FLAGS]
    expect(new Set(all.map((f) => f.flag)).size).toBe(all.length)
    for (const f of all) expect(f.key).toBe(f.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()))
  })

  it('parse good values', () => {
    expect(flag('--devices').parse('10000')).toBe(10000)
    expect(flag('--rate').parse('2.5')).toBe(2.5)
    expect(flag('--sensors').parse('temperature, vibration')).toEqual(['temperature', 'vibration'])
    expect(flag('--late-fraction').parse('0.05')).toBe(0.05)
    expect(flag('--speedup').parse('3600')).toBe(3600)
    expect(flag('--topic').parse('iot.readings-1')).toBe('iot.readings-1')
  })

  it.each([
    ['--devices', '0', "--devices must be a whole number from 1 to 10000000, not '0'"],
    ['--devices', '1.5', "--devices must be a whole number from 1 to 10000000, not '1.5'"],
    ['--rate', 'fast', "--rate must be a number above 0 and at most 100000000, not 'fast'"],
    ['--rate', '0x10', "--rate must be a number above 0 and at most 100000000, not '0x10'"],
    ['--late-fraction', '1.5', "--late-fraction must be a fraction from 0 to 1, not '1.5'"],
    ['--fault-rate', '', "--fault-rate must be a fraction from 0 to 1, not ''"],
    ['--sensors', 'temperature,light', "--sensors has 'light'; the simulated sensors are temperature, humidity, pressure, vibration"],
    ['--sensors', 'humidity,humidity', "--sensors names 'humidity' twice"],
    ['--seed', '-1', "--seed must be a whole number from 0 to 9007199254740991, not '-1'"],
    ['--speedup', '0', "--speedup must be a number above 0 and at most 1000000000000, not '0'"],
    ['--topic', 'a/b', "--topic may hold only letters, digits, \".\", \"_\" and \"-\", not 'a/b'"],
  ])('refuse %s %j', (name, text, message) => {
    expect(() => flag(name).parse(text)).toThrow(message)
  })
})

describe('options from flags', () => {
  it('turn --as-fast-as-possible into the speedup and keep the rest', () => {
    expect(fleetOptionsFromFlags({ devices: 10_000, rate: 50_000, asFastAsPossible: true, topic: 'bench' }, connection)).toEqual({
      ...connection,
      devices: 10_000,
      rate: 50_000,
      topic: 'bench',
      speedup: 'as-fast-as-possible',
    })
    expect(replayOptionsFromFlags({ replay: ['a.csv', 'b.csv'], deviceId: 'm1', speedup: 60 }, connection)).toEqual({ ...connection, files: ['a.csv', 'b.csv'], deviceId: 'm1', speedup: 60 })
  })

  it('refuse contradicting and foreign flags', () => {
    expect(() => fleetOptionsFromFlags({ speedup: 2, asFastAsPossible: true }, connection)).toThrow('--speedup and --as-fast-as-possible exclude each other')
    expect(() => fleetOptionsFromFlags({ deviceId: 'x' }, connection)).toThrow('--device-id does not apply to a simulated fleet')
    expect(() => replayOptionsFromFlags({ replay: ['a.csv'], devices: 5 }, connection)).toThrow('--devices does not apply to --replay')
    // Given at their default values, they are given all the same.
    expect(() => replayOptionsFromFlags({ replay: ['a.csv'], devices: FLEET_DEFAULTS.devices }, connection)).toThrow('--devices does not apply to --replay')
    expect(() => replayOptionsFromFlags({ replay: ['a.csv'], seed: FLEET_DEFAULTS.seed }, connection)).toThrow('--seed does not apply to --replay')
  })
})

describe('resolving options', () => {
  it('applies the defaults', () => {
    expect(resolveFleetOptions(connection)).toMatchObject({ ...FLEET_DEFAULTS, sensors: [...FLEET_DEFAULTS.sensors] })
    expect(resolveReplayOptions({ ...connection, files: ['a.csv'] })).toMatchObject({ topic: 'readings', speedup: 'as-fast-as-possible' })
  })

  it('refuses what the flags would refuse, naming the option and its flag', () => {
    expect(() => resolveFleetOptions({ ...connection, devices: 0 })).toThrow('devices (--devices) must be a whole number from 1 to 10000000')
    expect(() => resolveFleetOptions({ ...connection, lateFraction: 0.6, outOfOrderFraction: 0.6 })).toThrow('lateFraction + outOfOrderFraction (--late-fraction, --out-of-order-fraction) must be at most 1')
    expect(() => resolveFleetOptions({ bootstrapServers: [] })).toThrow('bootstrapServers (--bootstrap-server) needs one or more host:port')
    expect(() => resolveReplayOptions({ ...connection, files: [] })).toThrow('replay (--replay) needs one or more CSV files')
  })
})
