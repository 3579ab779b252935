/**
 * The processor's bench scenarios (not part of `npm run bench`): `node dist/bench/processor-bench.js [options]`.
 *
 *   throughput  N readings of D devices in a 4-partition topic, read twice in this process: by a bare kafkajs
 *               eachBatch loop that JSON-parses every value, then by the built-in iot pipeline (at_least_once).
 *               Reported: records/s of each, and the CPU each spent per record (process.cpuUsage, every thread of
 *               this process) and its garbage-collection pauses per record; the pipeline's own work is its CPU per
 *               record minus the bare loop's, as a share of the bare loop's. `phases` says when each loop ran (ms
 *               since this process started), for `node --cpu-prof` and profile-summary's --from-ms/--to-ms.
 *   latency     readings stamped with the current time at a steady rate through the iot pipeline with 5 s stats
 *               windows (grace 1 s): for each final window, the time from window end + grace to the commit that
 *               wrote it (p50/p99).
 *   restore     K devices with one open window each (K state keys) in a child-process instance, killed with
 *               SIGKILL once committed; then restarted on its state directory (replays the changelog tail) and on
 *               an empty one (replays the whole changelog): time until every task runs, and the restore time.
 *   backlog     N readings of D devices (one a second each) written to a P-partition topic before the pipeline
 *               starts, caught up through a keyBy (D / 10 sites) into 1-minute tumbling counts with --backlog-grace
 *               (exactly_once), twice: with event-time alignment of the source tasks (the default) and without.
 *               Reported for each: seconds and records/s until both sub-topologies have read everything, commits,
 *               and late records (runtime/alignment.ts says why they come without alignment).
 *   boundary    A window boundary: G groups (devices with one sensor), one reading each in the same minute, then one
 *               reading a minute past that window's end and grace on each of P partitions, which closes every
 *               group's windows at once, through the iot pipeline (exactly_once, 1-minute stats and 1-minute
 *               averages, so each group closes two windows). Reported: seconds from the last input record read to
 *               the last window committed (the time the boundary holds the input), per group, the CPU of this
 *               process meanwhile, GC pauses, commits, and `phase` for profile-summary's --from-ms/--to-ms.
 *   task        The processor's own work without Kafka: one task of the iot pipeline (one of P partitions: D / P
 *               devices, N / P readings) driven in this process on prepared messages, with its LevelDB store, a
 *               commit every --task-commit-records records (prepareCommit, the changelog messages, the local
 *               write). Reported: CPU per reading of processing and of commits, GC pauses per reading, and the
 *               number of scavenges (minor GCs), which follows the bytes allocated; the most stable figures on a
 *               shared machine (no broker, no kafkajs, no network). The messages are made before the timed part
 *               and outside it; each run's `phase` says when it ran, for profile-summary's --from-ms/--to-ms (a
 *               profile of the whole process also holds the making of 250,000 messages and its GC).
 *
 * Options: `--help` lists them, with their defaults; `--skip a,b` leaves scenarios out, `--only a,b` runs just those.
 * Figures on a shared machine are indicative: compare the two loops of one run, not runs of different days.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { constants, PerformanceObserver } from 'node:perf_hooks'
import kafkajs from 'kafkajs'
import { avg, count, eventTime, iotPipeline, runPipeline, TopologyBuilder, tumbling } from '../processor/index.js'
import { newMetrics } from '../processor/runtime/metrics.js'
import { Task } from '../processor/runtime/task.js'
import { CacheBudget, TaskStore } from '../processor/state/task-store.js'
import { planTopology } from '../processor/topology/plan.js'
import { badCommandLine, benchCommand, number } from './args.js'
import { startBroker, type BrokerProcess } from './broker-process.js'
import { LocalTask } from './local-task.js'
import { percentile } from './measure.js'

const { ConfigResourceTypes, Kafka, logLevel } = kafkajs

interface Options {
  devices: number
  readings: number
  partitions: number
  latencySeconds: number
  latencyRate: number
  restoreKeys: number
  instanceHeapMb: number | undefined
  commitIntervalMs: number
  taskCommitRecords: number
  repeat: number
  backlogReadings: number
  backlogDevices: number
  backlogGraceMs: number
  boundaryGroups: number
  brokerCpuProfDir: string | undefined
  skip: Set<string>
}

const SCENARIOS = ['throughput', 'latency', 'restore', 'task', 'backlog', 'boundary'] as const

const COMMAND = benchCommand(
  'processor-bench',
  'node dist/bench/processor-bench.js [options]',
  "The processor's scenarios (throughput, latency, restore, task, backlog, boundary). The report is JSON on stdout; progress goes to stderr.",
)
  .option('--devices <n>', 'devices', number(), 10_000)
  .option('--readings <n>', 'readings of the throughput and task scenarios', number(), 1_000_000)
  .option('--partitions <n>', 'partitions of the input topics', number(), 4)
  .option('--commit-interval-ms <n>', "the pipeline's commit interval in the throughput scenario", number(), 1000)
  .option('--latency-seconds <n>', 'how long the latency scenario produces', number(), 20)
  .option('--latency-rate <n>', 'its readings/s', number(), 20_000)
  .option('--restore-keys <n>', 'state keys of the restore scenario', number(), 1_000_000)
  .option('--instance-heap-mb <n>', "V8's old-space limit of the restore scenario's instances (--max-old-space-size; default: Node's)", number())
  .option('--task-commit-records <n>', "records between two commits of the task scenario (a task's share of 100,000 readings/s with 1 s commits)", number(), 25_000)
  .option('--repeat <n>', 'runs of the task scenario', number(), 1)
  .option('--backlog-readings <n>', 'readings of the backlog scenario', number(), 200_000)
  .option('--backlog-devices <n>', 'devices of the backlog scenario', number(), 100)
  .option('--backlog-grace-ms <n>', "the backlog scenario's window grace", number(), 10_000)
  .option('--boundary-groups <n>', 'groups whose windows the boundary scenario closes at once (over --partitions partitions)', number(), 100_000)
  .option('--broker-cpu-prof <dir>', "run the throughput, latency, backlog and boundary scenarios' broker with --cpu-prof, its profile into <dir>")
  .option('--skip <a,b>', 'scenarios to leave out')
  .option('--only <a,b>', 'the scenarios to run')

function parse(argv: string[]): Options {
  const values = COMMAND.parse(argv, { from: 'user' }).opts()
  const names = (flag: 'skip' | 'only'): string[] => {
    const list = values[flag]?.split(',') ?? []
    if (list.some((n) => !(SCENARIOS as readonly string[]).includes(n))) badCommandLine(COMMAND, `--${flag} takes ${SCENARIOS.join(', ')}, not '${values[flag]}'`)
    return list
  }
  const only = values.only === undefined ? SCENARIOS : names('only')
  const skip = new Set([...names('skip'), ...SCENARIOS.filter((s) => !only.includes(s))])
  return {
    devices: values.devices,
    readings: values.readings,
    partitions: values.partitions,
    latencySeconds: values.latencySeconds,
    latencyRate: values.latencyRate,
    restoreKeys: values.restoreKeys,
    instanceHeapMb: values.instanceHeapMb,
    commitIntervalMs: values.commitIntervalMs,
    taskCommitRecords: values.taskCommitRecords,
    repeat: values.repeat,
    backlogReadings: values.backlogReadings,
    backlogDevices: values.backlogDevices,
    backlogGraceMs: values.backlogGraceMs,
    boundaryGroups: values.boundaryGroups,
    brokerCpuProfDir: values.brokerCpuProf,
    skip,
  }
}

const log = (line: string) => process.stderr.write(`processor-bench: ${line}\n`)

function reading(device: number, ts: number, value: number): { key: string; value: string } {
  const deviceId = `device-${device}`
  return { key: deviceId, value: JSON.stringify({ deviceId, sensor: 'temperature', value, unit: 'C', ts }) }
}

async function produce(kafka: InstanceType<typeof Kafka>, topic: string, count: number, make: (i: number) => { key: string; value: string }): Promise<void> {
  const producer = kafka.producer()
  await producer.connect()
  for (let i = 0; i < count; i += 5_000) {
    const messages = []
    for (let j = i; j < Math.min(count, i + 5_000); j++) messages.push(make(j))
    await producer.send({ topic, messages, acks: 1 })
  }
  await producer.disconnect()
}

/** A kafkajs client of `broker`, once it has created `topic` with `partitions` partitions. */
async function withTopic(broker: BrokerProcess, topic: string, partitions: number): Promise<InstanceType<typeof Kafka>> {
  const kafka = new Kafka({ brokers: [`${broker.host}:${broker.port}`], logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }] })
  await admin.disconnect()
  return kafka
}

function cpuMicros(): number {
  const { user, system } = process.cpuUsage()
  return user + system
}

/**
 * Garbage-collection pauses of this process (ms, main thread), summed since the bench started, and how many were
 * minor (scavenges: their number follows the bytes allocated, the young generation being of fixed size).
 */
let gcMs = 0
let scavenges = 0
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcMs += entry.duration
    if ((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++
  }
}).observe({ entryTypes: ['gc'] })

async function throughputScenario(broker: BrokerProcess, options: Options) {
  const kafka = await withTopic(broker, 'bench-readings', options.partitions)
  const start = Date.UTC(2024, 0, 1)
  log(`producing ${options.readings} readings of ${options.devices} devices`)
  await produce(kafka, 'bench-readings', options.readings, (i) => reading(i % options.devices, start + Math.floor(i / options.devices) * 1000, 20 + (i % 97) / 10))

  log('bare kafkajs eachBatch loop')
  const consumer = kafka.consumer({ groupId: 'bench-bare', maxWaitTimeInMs: 250 })
  await consumer.connect()
  await consumer.subscribe({ topics: ['bench-readings'], fromBeginning: true })
  let seen = 0
  let sum = 0
  let firstAt = 0
  let cpuAtFirst = 0
  let gcAtFirst = 0
  const bare = await new Promise<{ seconds: number; cpuMicros: number; gcMs: number; fromMs: number; toMs: number }>((done) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        if (firstAt === 0) {
          firstAt = performance.now()
          cpuAtFirst = cpuMicros()
          gcAtFirst = gcMs
        }
        for (const message of batch.messages) sum += (JSON.parse(message.value!.toString()) as { value: number }).value
        seen += batch.messages.length
        if (seen >= options.readings) {
          const now = performance.now()
          done({ seconds: (now - firstAt) / 1000, cpuMicros: cpuMicros() - cpuAtFirst, gcMs: gcMs - gcAtFirst, fromMs: firstAt, toMs: now })
        }
      },
    })
  })
  await consumer.disconnect()

  log('iot pipeline')
  const stateDir = mkdtempSync(join(tmpdir(), 'brook-bench-state-'))
  const pipeline = await runPipeline(iotPipeline({ inputTopic: 'bench-readings', statsTopic: 'bench-stats-1m', averagesTopic: 'bench-avg-5m', alertsTopic: 'bench-alerts', lateTopic: 'bench-late' }), {
    applicationId: 'bench-iot',
    bootstrapServers: `${broker.host}:${broker.port}`,
    stateDir,
    processingGuarantee: 'at_least_once',
    commitIntervalMs: options.commitIntervalMs,
    log: () => {},
  })
  let pipelineFirst = 0
  let pipelineCpu = 0
  let pipelineGc = 0
  while (pipeline.metrics().recordsIn < options.readings) {
    if (pipelineFirst === 0 && pipeline.metrics().recordsIn > 0) {
      pipelineFirst = performance.now()
      pipelineCpu = cpuMicros()
      pipelineGc = gcMs
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  const pipelineEnd = performance.now()
  const processor = { seconds: (pipelineEnd - pipelineFirst) / 1000, cpuMicros: cpuMicros() - pipelineCpu, gcMs: gcMs - pipelineGc, metrics: pipeline.metrics() }
  await pipeline.stop()
  rmSync(stateDir, { recursive: true, force: true })
  const perRecord = (cpu: number) => cpu / options.readings
  return {
    readings: options.readings,
    devices: options.devices,
    bareLoop: { recordsPerSec: Math.round(options.readings / bare.seconds), cpuMicrosPerRecord: +perRecord(bare.cpuMicros).toFixed(2), gcMicrosPerRecord: +perRecord(bare.gcMs * 1000).toFixed(2), checksum: sum },
    iotPipeline: {
      recordsPerSec: Math.round(options.readings / processor.seconds),
      cpuMicrosPerRecord: +perRecord(processor.cpuMicros).toFixed(2),
      gcMicrosPerRecord: +perRecord(processor.gcMs * 1000).toFixed(2),
      windowsEmitted: processor.metrics.windowsEmitted,
      commits: processor.metrics.commits,
    },
    ownWorkShareOfBareLoop: +((processor.cpuMicros - bare.cpuMicros) / bare.cpuMicros).toFixed(2),
    // For profile-summary's --from-ms/--to-ms with `node --cpu-prof`: ms since this process started.
    phases: { bareLoop: { fromMs: Math.round(bare.fromMs), toMs: Math.round(bare.toMs) }, iotPipeline: { fromMs: Math.round(pipelineFirst), toMs: Math.round(pipelineEnd) } },
  }
}

async function latencyScenario(broker: BrokerProcess, options: Options) {
  const kafka = await withTopic(broker, 'latency-readings', options.partitions)
  const stateDir = mkdtempSync(join(tmpdir(), 'brook-bench-state-'))
  const graceMs = 1000
  const pipeline = await runPipeline(iotPipeline({ inputTopic: 'latency-readings', statsTopic: 'latency-stats', averagesTopic: 'latency-avg', alertsTopic: 'latency-alerts', lateTopic: 'latency-late', statsWindow: '5s', grace: graceMs }), {
    applicationId: 'bench-latency',
    bootstrapServers: `${broker.host}:${broker.port}`,
    stateDir,
    processingGuarantee: 'at_least_once',
    commitIntervalMs: 100,
    log: () => {},
  })
  const latencies: number[] = []
  pipeline.events.on('output', (o: { topic: string; value: string }) => {
    if (o.topic === 'latency-stats') latencies.push(Date.now() - ((JSON.parse(o.value) as { windowEnd: number }).windowEnd + graceMs))
  })
  const producer = kafka.producer()
  await producer.connect()
  const devices = Math.min(options.devices, 1000)
  const tickMs = 100
  const perTick = Math.round((options.latencyRate * tickMs) / 1000)
  let device = 0
  for (const end = Date.now() + options.latencySeconds * 1000; Date.now() < end; ) {
    const at = Date.now()
    const messages = []
    for (let i = 0; i < perTick; i++) messages.push(reading(device++ % devices, Date.now(), 20 + Math.random()))
    await producer.send({ topic: 'latency-readings', messages, acks: 1 })
    await new Promise((r) => setTimeout(r, Math.max(0, tickMs - (Date.now() - at))))
  }
  await producer.disconnect()
  await new Promise((r) => setTimeout(r, 8000))
  await pipeline.stop()
  rmSync(stateDir, { recursive: true, force: true })
  const sorted = [...latencies].sort((a, b) => a - b)
  return { windows: sorted.length, rate: options.latencyRate, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99), maxMs: sorted.at(-1) }
}

async function backlogScenario(broker: BrokerProcess, options: Options) {
  const kafka = await withTopic(broker, 'backlog-readings', options.partitions)
  const devices = options.backlogDevices
  const start = Date.UTC(2024, 0, 1)
  log(`producing a backlog of ${options.backlogReadings} readings of ${devices} devices`)
  await produce(kafka, 'backlog-readings', options.backlogReadings, (i) => reading(i % devices, start + Math.floor(i / devices) * 1000, 20 + (i % 97) / 10))
  const run = async (aligned: boolean) => {
    const name = aligned ? 'aligned' : 'unaligned'
    log(`catching up, ${name}`)
    const builder = new TopologyBuilder()
    builder
      .stream<{ deviceId: string; ts: number; value: number }>('backlog-readings', { eventTime: eventTime.field('ts') })
      .keyBy((r) => `site-${Number(r.deviceId.slice('device-'.length)) % Math.max(1, Math.floor(devices / 10))}`, { name: 'by-site' })
      .groupByKey()
      .windowedBy(tumbling({ size: '1m', grace: options.backlogGraceMs }))
      .aggregate({ readings: count(), avg: avg('value') }, { name: 'site-1m' })
      .to(`backlog-${name}-counts`)
    const stateDir = mkdtempSync(join(tmpdir(), 'brook-bench-state-'))
    const began = performance.now()
    const pipeline = await runPipeline(builder.build(), {
      applicationId: `bench-backlog-${name}`,
      bootstrapServers: `${broker.host}:${broker.port}`,
      stateDir,
      partitions: options.partitions,
      eventTimeAlignment: aligned,
      log: () => {},
    })
    while (pipeline.metrics().recordsIn < 2 * options.backlogReadings) await new Promise((r) => setTimeout(r, 20))
    const seconds = (performance.now() - began) / 1000
    await pipeline.stop()
    const metrics = pipeline.metrics()
    rmSync(stateDir, { recursive: true, force: true })
    return { seconds: +seconds.toFixed(2), recordsPerSec: Math.round(options.backlogReadings / seconds), commits: metrics.commits, late: metrics.late }
  }
  const aligned = await run(true)
  const unaligned = await run(false)
  return { readings: options.backlogReadings, devices, partitions: options.partitions, graceMs: options.backlogGraceMs, aligned, unaligned }
}

async function boundaryScenario(broker: BrokerProcess, options: Options) {
  const kafka = await withTopic(broker, 'boundary-readings', options.partitions)
  const groups = options.boundaryGroups
  const start = Date.UTC(2024, 0, 1)
  log(`producing one reading of each of ${groups} groups, then one closing reading per partition`)
  await produce(kafka, 'boundary-readings', groups, (i) => reading(i, start + 10_000 + (i % 40_000), 20 + (i % 97) / 10))
  const producer = kafka.producer()
  await producer.connect()
  const closers = Array.from({ length: options.partitions }, (_, p) => ({ ...reading(groups + p, start + 2 * 60_000 + 20_000, 20), partition: p }))
  await producer.send({ topic: 'boundary-readings', messages: closers, acks: -1 })
  await producer.disconnect()

  log('closing the boundary')
  const stateDir = mkdtempSync(join(tmpdir(), 'brook-bench-state-'))
  const pipeline = await runPipeline(
    iotPipeline({ inputTopic: 'boundary-readings', statsTopic: 'boundary-stats', averagesTopic: 'boundary-avg', alertsTopic: 'boundary-alerts', lateTopic: 'boundary-late', averageWindow: '1m', averageAdvance: '1m', grace: '10s' }),
    { applicationId: 'bench-boundary', bootstrapServers: `${broker.host}:${broker.port}`, stateDir, log: () => {} },
  )
  const total = groups + options.partitions
  while (pipeline.metrics().recordsIn < total) await new Promise((r) => setTimeout(r, 5))
  const began = performance.now()
  const cpuAtStart = cpuMicros()
  const gcAtStart = gcMs
  const windows = 2 * groups
  while (pipeline.metrics().windowsEmitted < windows) await new Promise((r) => setTimeout(r, 5))
  const ended = performance.now()
  const cpu = cpuMicros() - cpuAtStart
  const gc = gcMs - gcAtStart
  const metrics = pipeline.metrics()
  await pipeline.stop()
  rmSync(stateDir, { recursive: true, force: true })
  const seconds = (ended - began) / 1000
  return {
    groups,
    partitions: options.partitions,
    seconds: +seconds.toFixed(2),
    microsPerGroup: Math.round((seconds * 1e6) / groups),
    cpuMicrosPerGroup: Math.round(cpu / groups),
    gcMicrosPerGroup: Math.round((gc * 1000) / groups),
    windowsEmitted: metrics.windowsEmitted,
    commits: metrics.commits,
    phase: { fromMs: Math.round(began), toMs: Math.round(ended) },
  }
}

function instance(broker: BrokerProcess, stateDir: string, heapMb: number | undefined) {
  const script = resolve(import.meta.dirname, 'processor-instance.js')
  const config = { bootstrapServers: `${broker.host}:${broker.port}`, applicationId: 'bench-restore', stateDir, topic: 'restore-readings' }
  const heap = heapMb === undefined ? [] : [`--max-old-space-size=${heapMb}`]
  const child = spawn(process.execPath, [...heap, script, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const events: Record<string, any>[] = []
  let pending = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString()
    const lines = pending.split('\n')
    pending = lines.pop()!
    for (const line of lines) events.push(JSON.parse(line))
  })
  let exitCode: string | null = null
  const exited = new Promise<void>((done) => child.once('exit', (code, signal) => ((exitCode = String(code ?? signal)), done())))
  const lastMetrics = () => events.filter((e) => e.event === 'metrics').at(-1)
  return {
    events,
    lastMetrics,
    async until(what: string, test: () => boolean, timeoutMs = 600_000) {
      const deadline = Date.now() + timeoutMs
      while (!test()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
        if (exitCode !== null) throw new Error(`the instance exited (${exitCode}) while waiting for ${what}`)
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    /** The child's peak resident set so far (VmHWM, MB), or null once it has exited. */
    peakRssMb(): number | null {
      try {
        const line = readFileSync(`/proc/${child.pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'))
        return line === undefined ? null : Math.round(Number(line.split(/\s+/)[1]) / 1024)
      } catch {
        return null
      }
    },
    async kill() {
      child.kill('SIGKILL')
      await exited
    },
  }
}

async function restoreScenario(broker: BrokerProcess, options: Options) {
  const kafka = await withTopic(broker, 'restore-readings', options.partitions)
  const start = Date.UTC(2024, 0, 1)
  log(`producing ${options.restoreKeys} readings of distinct devices (one open window each)`)
  await produce(kafka, 'restore-readings', options.restoreKeys, (i) => reading(i, start + (i % 1000), 20))
  const stateDir = mkdtempSync(join(tmpdir(), 'brook-bench-state-'))
  const first = instance(broker, stateDir, options.instanceHeapMb)
  await first.until('the state to be built and committed', () => {
    const m = first.lastMetrics()
    return m !== undefined && m.recordsIn >= options.restoreKeys && m.tasks.every((t: { position: string | null }) => t.position !== null) && m.commits >= options.partitions * 2
  })
  await new Promise((r) => setTimeout(r, 2500))
  await first.kill()
  log('killed; restarting on the same state directory')
  const runningAfter = async (dir: string) => {
    const next = instance(broker, dir, options.instanceHeapMb)
    await next.until('every task running', () => {
      const m = next.lastMetrics()
      return m !== undefined && m.tasks.length === options.partitions && m.tasks.every((t: { state: string }) => t.state === 'running')
    })
    const restored = next.events.filter((e) => e.event === 'restored')
    const result = { untilRunningMs: next.lastMetrics()!.sinceStartMs, restoredRecords: restored.reduce((n, e) => n + e.records, 0), longestTaskRestoreMs: Math.max(...restored.map((e) => e.ms)), peakRssMb: next.peakRssMb() }
    await next.kill()
    return result
  }
  const sameDir = await runningAfter(stateDir)
  // The broker looks every 2 s; with any share of the log dirty enough, the changelog the next instance reads holds
  // each partition's newest marker only, as a changelog that has run for a while does.
  const changelogAdmin = kafka.admin()
  await changelogAdmin.connect()
  const changelogs = (await changelogAdmin.listTopics()).filter((t) => t.startsWith('bench-restore-') && t.endsWith('-changelog'))
  await changelogAdmin.alterConfigs({ validateOnly: false, resources: changelogs.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configEntries: [{ name: 'min.cleanable.dirty.ratio', value: '0.01' }] })) })
  await changelogAdmin.disconnect()
  await new Promise((r) => setTimeout(r, 8000))
  log('restarting on an empty state directory')
  const emptyDir = mkdtempSync(join(tmpdir(), 'brook-bench-state-'))
  const fromChangelog = await runningAfter(emptyDir)
  rmSync(stateDir, { recursive: true, force: true })
  rmSync(emptyDir, { recursive: true, force: true })
  return { keys: options.restoreKeys, localStoreCurrent: sameDir, fullChangelogReplay: fromChangelog }
}

/**
 * One task of the iot pipeline driven in this process: the messages are made beforehand (as kafkajs hands them
 * over: Buffers, string offsets and timestamps), so what is timed is the task's processing, its commits' encoding
 * and its LevelDB writes, nothing of Kafka.
 */
async function taskScenario(options: Options) {
  const devices = Math.max(1, Math.round(options.devices / options.partitions))
  const readings = Math.round(options.readings / options.partitions)
  const start = Date.UTC(2024, 0, 1)
  const messages = Array.from({ length: readings }, (_, i) => {
    const r = reading(i % devices, start + Math.floor(i / devices) * 1000, 20 + (i % 97) / 10)
    return { key: Buffer.from(r.key), value: Buffer.from(r.value), offset: String(i), timestamp: String(start), attributes: 0, headers: {} }
  })
  const plan = planTopology(iotPipeline({ inputTopic: 'bench-readings' }), { applicationId: 'bench-task' })
  const runs = []
  for (let run = 0; run < options.repeat; run++) {
    const stateDir = mkdtempSync(join(tmpdir(), 'brook-bench-task-'))
    const store = await TaskStore.open(stateDir, new CacheBudget(64 * 1024 * 1024))
    const metrics = newMetrics()
    const task = new Task(plan.subtopologies[0]!, 0, store, { plan, tables: new Map(), metrics })
    await task.load()
    const local = new LocalTask(task)
    let processMicros = 0
    let commitMicros = 0
    const gcBefore = gcMs
    const scavengesBefore = scavenges
    const began = performance.now()
    for (let from = 0; from < readings; from += options.taskCommitRecords) {
      let cpu = cpuMicros()
      for (let i = from; i < Math.min(readings, from + options.taskCommitRecords); i++) {
        const pending = local.process(messages[i]!)
        if (pending) await pending
      }
      processMicros += cpuMicros() - cpu
      cpu = cpuMicros()
      await local.commit()
      commitMicros += cpuMicros() - cpu
    }
    const ended = performance.now()
    const seconds = (ended - began) / 1000
    const gc = gcMs - gcBefore
    await store.close()
    rmSync(stateDir, { recursive: true, force: true })
    runs.push({
      recordsPerSec: Math.round(readings / seconds),
      cpuMicrosPerRecord: +((processMicros + commitMicros) / readings).toFixed(2),
      processMicrosPerRecord: +(processMicros / readings).toFixed(2),
      commitMicrosPerRecord: +(commitMicros / readings).toFixed(2),
      gcMicrosPerRecord: +((gc * 1000) / readings).toFixed(2),
      scavenges: scavenges - scavengesBefore,
      changelogRecords: local.changelogRecords,
      windowsEmitted: metrics.windowsEmitted,
      // For profile-summary's --from-ms/--to-ms: the run without the preparation of its messages (ms since this
      // process started).
      phase: { fromMs: Math.round(began), toMs: Math.round(ended) },
    })
  }
  return { devices, readings, commitEveryRecords: options.taskCommitRecords, runs }
}

/** Runs `scenarios` against a broker process of their own (`args` added to its command line), then stops it. */
async function withBroker(args: string[], scenarios: (broker: BrokerProcess) => Promise<unknown>, nodeArgs: string[] = []): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'brook-bench-broker-'))
  const broker = await startBroker({ dataDir, nodeArgs, args: ['--group-initial-rebalance-delay-ms', '0', ...args] })
  try {
    await scenarios(broker)
  } finally {
    await broker.stop()
    rmSync(dataDir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2))
  const report: Record<string, unknown> = { options: { ...options, skip: [...options.skip] } }
  if (!options.skip.has('task')) report.task = await taskScenario(options)
  if (!['throughput', 'latency', 'backlog', 'boundary'].every((s) => options.skip.has(s))) {
    await withBroker([], async (broker) => {
      if (!options.skip.has('throughput')) report.throughput = await throughputScenario(broker, options)
      if (!options.skip.has('latency')) report.latency = await latencyScenario(broker, options)
      if (!options.skip.has('backlog')) report.backlog = await backlogScenario(broker, options)
      if (!options.skip.has('boundary')) report.boundary = await boundaryScenario(broker, options)
    }, options.brokerCpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', options.brokerCpuProfDir])
  }
  // A broker of its own that compacts every 2 s, so that the restore on an empty state directory reads a compacted
  // changelog, without the cleaner's work in the other scenarios' figures.
  if (!options.skip.has('restore')) await withBroker(['--log-retention-check-interval-ms', '2000'], async (broker) => (report.restore = await restoreScenario(broker, options)))
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
}

await main()
