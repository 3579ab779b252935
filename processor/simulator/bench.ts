/**
 * Throughput of the simulator against a running cluster (any Kafka; start a Brook broker first):
 *
 *   node dist/processor/simulator/bench.js --bootstrap-server 127.0.0.1:9092 [--devices 10000] [--count 500000]
 *     [--partitions 4] [--batch-size 2000] [--nab ../shared/data/nab]
 *
 * - generation: the fleet's readings made and turned into messages (JSON) in this process, nothing sent: the
 *   ceiling the simulator itself puts on a run;
 * - fleet: `--count` readings of `--devices` devices (four sensors each) as fast as possible, to a new topic;
 * - replay: every CSV under `--nab` (NAB's eight series) as fast as possible, to a new topic.
 * Each line gives readings/s over the whole call (connecting, creating the topic, a replay's first pass over its
 * files), readings/s while sending (from the run's summary), and the CPU this process used per wall second of the
 * whole call (the broker's is not counted).
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Fleet } from './fleet.js'
import { FLEET_DEFAULTS, type Log } from './options.js'
import { toMessage } from './reading.js'
import { replay } from './replay.js'
import { simulateFleet } from './simulate.js'

const USAGE = 'usage: node dist/processor/simulator/bench.js --bootstrap-server host:port [--devices n] [--count n] [--partitions n] [--batch-size n] [--nab dir]\n'

let parsed
try {
  parsed = parseArgs({
    options: {
      'bootstrap-server': { type: 'string' },
      devices: { type: 'string', default: '10000' },
      count: { type: 'string', default: '500000' },
      partitions: { type: 'string', default: '4' },
      'batch-size': { type: 'string', default: String(FLEET_DEFAULTS.batchSize) },
      nab: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
} catch (error) {
  process.stderr.write(`bench: ${(error as Error).message.split('\n')[0]}\n${USAGE}`)
  process.exit(2)
}
const { values } = parsed

if (values.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}
if (values['bootstrap-server'] === undefined) {
  process.stderr.write(USAGE)
  process.exit(2)
}
const bootstrapServers = values['bootstrap-server'].split(',')
const devices = Number(values.devices)
const count = Number(values.count)
const partitions = Number(values.partitions)
const batchSize = Number(values['batch-size'])
const quiet: Log = { info: () => {}, warn: (message) => process.stderr.write(`warning: ${message}\n`) }
const stamp = Date.now()

interface Figure {
  what: string
  readings: number
  seconds: number
  sendingPerSecond: number
  cpuCores: number
}

/** Runs `work` (which returns readings sent and readings/s while sending), timing it and the CPU of this process. */
async function measure(what: string, work: () => Promise<{ sent: number; readingsPerSecond: number }>): Promise<Figure> {
  const cpu = process.cpuUsage()
  const started = performance.now()
  const { sent, readingsPerSecond } = await work()
  const seconds = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  return { what, readings: sent, seconds, sendingPerSecond: readingsPerSecond, cpuCores: (used.user + used.system) / 1e6 / seconds }
}

function csvFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => path.endsWith('.csv') && statSync(path).isFile())
    .sort()
}

const figures: Figure[] = []
const model = { ...FLEET_DEFAULTS, sensors: [...FLEET_DEFAULTS.sensors], devices, rate: devices, startMs: stamp - count * 1000 }
figures.push(
  await measure(`generation: ${devices} devices, JSON messages, nothing sent`, async () => {
    const fleet = new Fleet(model)
    const started = performance.now()
    let bytes = 0
    for (let i = 0; i < count; i++) bytes += (toMessage(fleet.next()).value as string).length
    return { sent: bytes > 0 ? count : 0, readingsPerSecond: (count * 1000) / (performance.now() - started) }
  }),
)
figures.push(
  await measure(`fleet: ${devices} devices, as fast as possible, ${partitions} partitions`, async () => {
    return simulateFleet({ bootstrapServers, devices, rate: devices, count, speedup: 'as-fast-as-possible', topic: `bench-fleet-${stamp}`, partitions, batchSize, log: quiet })
  }),
)
if (values.nab !== undefined) {
  const files = csvFiles(values.nab)
  figures.push(
    await measure(`replay: ${files.length} NAB files, as fast as possible, ${partitions} partitions`, async () => {
      return replay({ bootstrapServers, files, speedup: 'as-fast-as-possible', topic: `bench-replay-${stamp}`, partitions, batchSize, log: quiet })
    }),
  )
}

const n = (value: number): string => Math.round(value).toLocaleString('en-US')
const rows = figures.map((f) => `| ${f.what} | ${n(f.readings)} | ${f.seconds.toFixed(2)} | ${n(f.readings / f.seconds)} | ${n(f.sendingPerSecond)} | ${f.cpuCores.toFixed(2)} |`)
process.stdout.write(['| run | readings | s | readings/s | readings/s while sending | CPU of this process, cores |', '|---|---|---|---|---|---|', ...rows, ''].join('\n'))
