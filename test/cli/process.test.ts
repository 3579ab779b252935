/**
 * `brook process` as a user runs it: a pipeline module (the TypeScript fixture as written, and the same pipeline
 * compiled to JavaScript in a project that depends on brook) and the built-in `iot` pipeline against a real broker
 * process, fed with kafkajs and read back with kafkajs; `--describe` against the topology; a bad module or bad flags
 * as one line and exit code 1; `--processing-guarantee exactly_once` on a cluster without transactions (a proxy that
 * hides the transaction APIs from ApiVersions) as one line and exit code 1, with no topic created.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import ts from 'typescript'
import kafkajs, { type Admin, type Kafka as KafkaClient, type Message } from 'kafkajs'
import { describeTopology, iotPipeline } from '../../processor/index.js'
import { FAST_GROUPS, startConfiguredBroker } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { startProxy } from '../helpers/tcp-proxy.js'
import { TRANSACTION_APIS } from '../processor/transaction-apis.js'
import { waitFor } from '../helpers/wait.js'
import { brook, expectOneLineError, lines, spawnBrook, until } from './run-brook.js'

const { Kafka, logLevel } = kafkajs

const REPO = resolve(import.meta.dirname, '../..')
const FIXTURE = join(REPO, 'test/fixtures/pipelines/fixture-pipeline.ts')

/** Event times of the fixed inputs: a minute boundary ten minutes ago, so that every window size used divides it. */
const BASE = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000

const dirs: string[] = []
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** A project that depends on brook (node_modules/brook is this checkout) with the fixture compiled to JavaScript. */
function compiledPipelineProject(): string {
  const project = tempDir('brook-pipeline-project-')
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'plant', type: 'module', dependencies: { brook: '*' } }))
  mkdirSync(join(project, 'node_modules'))
  symlinkSync(REPO, join(project, 'node_modules', 'brook'), 'dir')
  const { outputText } = ts.transpileModule(readFileSync(FIXTURE, 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } })
  const file = join(project, 'fixture-pipeline.js')
  writeFileSync(file, outputText)
  return file
}

/** Sum of the high watermarks of a topic's partitions (0 while it does not exist). */
async function recordsIn(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic).catch(() => [])
  return offsets.reduce((sum, p) => sum + Number(p.high), 0)
}

interface Output {
  key: string | null
  /** The value as text (parsed by the caller where it is JSON). */
  text: string
  headers: Record<string, string>
}

let readers = 0

/** Every record of a topic as of now, per partition in offset order, read with a kafkajs group consumer. */
async function readAll(kafka: KafkaClient, admin: Admin, topic: string): Promise<Output[]> {
  const expected = await recordsIn(admin, topic)
  const consumer = kafka.consumer({ groupId: `cli-read-${process.pid}-${readers++}`, maxWaitTimeInMs: 200 })
  const read: (Output & { partition: number; offset: number })[] = []
  try {
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, string> = {}
        for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value)
        read.push({ partition, offset: Number(message.offset), key: message.key?.toString() ?? null, text: message.value?.toString() ?? '', headers })
      },
    })
    await waitFor(`${expected} records of ${topic}`, () => read.length >= expected)
  } finally {
    await consumer.disconnect()
  }
  return read.sort((a, b) => a.partition - b.partition || a.offset - b.offset).map(({ key, text, headers }) => ({ key, text, headers }))
}

/**
 * Waits until each topic holds its number of records, then reads them. A wait that fails says what the pipeline
 * printed.
 */
async function readOutputs(kafka: KafkaClient, admin: Admin, run: { stderr: () => string }, expected: Record<string, number>): Promise<Record<string, Output[]>> {
  for (const [topic, n] of Object.entries(expected)) {
    await waitFor(`${n} records on ${topic}`, async () => (await recordsIn(admin, topic)) >= n, { timeoutMs: 90_000 }).catch((error: Error) => {
      throw new Error(`${error.message}; the pipeline printed:\n${run.stderr()}`)
    })
  }
  const read: Record<string, Output[]> = {}
  for (const topic of Object.keys(expected)) read[topic] = await readAll(kafka, admin, topic)
  return read
}

/** The JSON values of some outputs. */
const values = (outputs: Output[]): Record<string, unknown>[] => outputs.map((o) => JSON.parse(o.text) as Record<string, unknown>)

/** Waits until the group has a member, and gives its client id (what --kafka-config's clientId sets). */
async function memberClientId(admin: Admin, groupId: string): Promise<string> {
  return waitFor(`a member of ${groupId}`, async () => (await admin.describeGroups([groupId])).groups[0]?.members[0]?.clientId, { timeoutMs: 60_000 })
}

function reading(deviceId: string, offsetMs: number, value: number, sensor?: string): Message {
  return { key: deviceId, value: JSON.stringify({ deviceId, ...(sensor ? { sensor, unit: '°C' } : {}), value, ts: BASE + offsetMs }) }
}

/**
 * The five blocks run as lanes side by side (describe { concurrent: true } of it.sequential tests), since much of their
 * time is waiting: for windows to close, for kafkajs to give up on a cluster that is not there. One test at a time in
 * each: those against the broker share its topics of fixed names, and those that run many commands at once take both
 * cores while they start.
 */
describe('brook process against a broker', { concurrent: true }, () => {
  let broker: BrokerProcess
  let kafka: KafkaClient
  let admin: Admin

  beforeAll(async () => {
    broker = await startConfiguredBroker(FAST_GROUPS)
    kafka = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING })
    admin = kafka.admin()
    await admin.connect()
  })
  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
    broker?.cleanup()
    expect(loggedErrors(broker)).toEqual([])
  })
  afterEach(async () => {
    // Each pipeline reads and writes topics of fixed names: the next one starts on none of them.
    const topics = (await admin.listTopics()).filter((t) => !t.startsWith('__'))
    if (topics.length > 0) await admin.deleteTopics({ topics })
  })

  const fixtureInput: Message[] = [
    reading('d1', 1_000, 1),
    reading('d1', 2_000, 2),
    reading('d1', 3_000, -5), // dropped by the pipeline's filter
    reading('d2', 5_000, 10),
    { key: 'd2', value: 'not json' }, // to the dead-letter topic
    reading('d1', 12_000, 4),
    reading('d2', 15_000, 20),
    reading('d1', 30_000, 0), // stream time 30 s: the first two windows close (no grace)
    reading('d2', 8_000, 7), // its window closed: late
  ]
  const fixtureWindows = [
    { deviceId: 'd1', windowStart: BASE, windowEnd: BASE + 10_000, count: 2, sum: 3 },
    { deviceId: 'd2', windowStart: BASE, windowEnd: BASE + 10_000, count: 1, sum: 10 },
    { deviceId: 'd1', windowStart: BASE + 10_000, windowEnd: BASE + 20_000, count: 1, sum: 4 },
    { deviceId: 'd2', windowStart: BASE + 10_000, windowEnd: BASE + 20_000, count: 1, sum: 20 },
  ]

  const modules = [
    { kind: 'a TypeScript module', file: () => FIXTURE },
    { kind: 'a compiled JavaScript module in a project that depends on brook', file: compiledPipelineProject },
  ]
  for (const { kind, file } of modules) {
    it.sequential(`runs ${kind} with kafkajs settings from --kafka-config: exactly the expected windows, the late record and the dead letter; Ctrl-C stops it cleanly`, async () => {
      await admin.createTopics({ topics: [{ topic: 'fixture-in', numPartitions: 1 }], waitForLeaders: true })
      // kafkajs settings from a TypeScript module, as a user keeps secrets out of a JSON file.
      const settings = join(tempDir('brook-settings-'), 'kafka.ts')
      writeFileSync(settings, "const settings: { clientId: string } = { clientId: 'plant-' + (6 + 1) }\nexport default settings\n")
      const run = spawnBrook([
        'process', file(), '--bootstrap-server', broker.address, '--application-id', 'fixture', '--state-dir', tempDir('brook-state-'), '--processing-guarantee', 'at_least_once', '--commit-interval-ms', '200',
        // Exactly the windows the records close: none closed on idle time however slowly the test reads them back.
        '--kafka-config', settings, '--idle-timeout-ms', '600000',
      ])
      expect(await memberClientId(admin, 'fixture')).toBe('plant-7')
      const producer = kafka.producer()
      await producer.connect()
      await producer.send({ topic: 'fixture-in', messages: fixtureInput })
      await producer.disconnect()

      const out = await readOutputs(kafka, admin, run, { 'fixture-out': 4, 'fixture-late': 1, 'fixture-dlq': 1 })
      run.child.kill('SIGINT')
      expect(await run.exited).toBe(0)
      expect(values(out['fixture-out']!)).toEqual(fixtureWindows)
      expect(values(out['fixture-late']!)).toEqual([{ deviceId: 'd2', value: 7, ts: BASE + 8_000 }])
      expect(out['fixture-late']![0]!.headers['brook.late.operator']).toBe('sums-10s')
      expect(out['fixture-dlq']!.map((r) => [r.key, r.text, r.headers['brook.error.code']])).toEqual([['d2', 'not json', 'NOT_JSON']])
      expect(run.stdout()).toBe('')
      expect(run.stderr()).toContain('brook process: fixture: stopped; 9 records in, 6 out (4 windows, 0 alerts), 1 late, 1 dead letter')
    })
  }

  it.sequential('leaves one transactions probe id per application behind, however often it starts with exactly_once', async () => {
    await admin.createTopics({ topics: [{ topic: 'fixture-in', numPartitions: 1 }], waitForLeaders: true })
    for (let start = 0; start < 2; start++) {
      const run = spawnBrook(['process', FIXTURE, '--bootstrap-server', broker.address, '--application-id', 'probed', '--state-dir', tempDir('brook-state-'), '--processing-guarantee', 'exactly_once'])
      await waitFor('the pipeline to start', () => / started \(exactly_once, /.test(run.stderr()))
      expect(run.stderr()).toMatch(/ started \(exactly_once, 1 sub-topology\)\n/)
      run.child.kill('SIGINT')
      expect(await run.exited).toBe(0)
    }
    const listed = await brook(['transactions', 'list', '--bootstrap-server', broker.address])
    expect(listed.code).toBe(0)
    const probes = lines(listed.stdout).map((line) => line.split(/\s+/)[0]!).filter((id) => id.startsWith('probed-probe'))
    expect(probes).toEqual(['probed-probe'])
  })

  it.sequential('refuses in one line to start on a state directory another running instance holds, naming its pid, and starts on it once that one was killed', async () => {
    await admin.createTopics({ topics: [{ topic: 'fixture-in', numPartitions: 1 }], waitForLeaders: true })
    const dir = tempDir('brook-state-shared-')
    const args = ['process', FIXTURE, '--bootstrap-server', broker.address, '--application-id', 'shared-state', '--state-dir', dir, '--processing-guarantee', 'at_least_once']
    const first = spawnBrook(args)
    await waitFor('the first instance to start', () => / started \(at_least_once, /.test(first.stderr()))
    expectOneLineError(
      await brook(args),
      `shared-state: could not start on ${broker.address}: the state directory ${dir} is in use by another instance (pid ${first.child.pid}, instance `,
    )
    // The lock goes with the process, kill -9 included: nothing stale is left to remove by hand. (Another application
    // id, so that the start does not wait for the group to expel the killed member.)
    first.child.kill('SIGKILL')
    await first.exited
    const second = spawnBrook(args.map((arg) => (arg === 'shared-state' ? 'shared-state-again' : arg)))
    await waitFor('an instance to start on the directory the killed one held', () => / started \(at_least_once, /.test(second.stderr()) || second.child.exitCode !== null)
    second.child.kill('SIGINT')
    expect(await second.exited).toBe(0)
  })

  it.sequential('runs the built-in iot pipeline with its window sizes and threshold as flags: stats, averages, alerts and late readings', async () => {
    await admin.createTopics({ topics: [{ topic: 'readings', numPartitions: 1 }], waitForLeaders: true })
    const settings = join(tempDir('brook-settings-'), 'kafka.json')
    writeFileSync(settings, JSON.stringify({ clientId: 'iot-line-3', connectionTimeout: 5000 }))
    const run = spawnBrook([
      'process', 'iot', '--bootstrap-server', broker.address, '--state-dir', tempDir('brook-state-'), '--processing-guarantee', 'at_least_once', '--commit-interval-ms', '200',
      '--stats-window', '10s', '--average-window', '20s', '--average-advance', '10s', '--grace', '0', '--threshold-above', '50', '--kafka-config', settings,
      '--idle-timeout-ms', '600000', '--compression-type', 'gzip',
    ])
    expect(await memberClientId(admin, 'iot')).toBe('iot-line-3')
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({
      topic: 'readings',
      messages: [
        reading('d1', 1_000, 20, 'temperature'),
        reading('d1', 4_000, 30, 'temperature'),
        reading('d1', 7_000, 60, 'temperature'),
        reading('d1', 12_000, 25, 'temperature'),
        reading('d1', 40_000, 21, 'temperature'), // closes every window that ends by 40 s
        reading('d1', 2_000, 22, 'temperature'), // late for the stats window and both average windows it falls in
      ],
    })
    await producer.disconnect()

    const out = await readOutputs(kafka, admin, run, { 'readings-stats-1m': 2, 'readings-avg-5m': 3, 'readings-alerts': 1, 'readings-late': 1 })
    run.child.kill('SIGINT')
    expect(await run.exited).toBe(0)
    const group = { deviceId: 'd1', sensor: 'temperature' }
    const [first, second] = values(out['readings-stats-1m']!)
    expect(first).toMatchObject({ ...group, windowStart: BASE, windowEnd: BASE + 10_000, count: 3, min: 20, max: 60 })
    expect(first!.avg).toBeCloseTo(110 / 3, 9)
    expect(first!.stddev).toBeCloseTo(Math.sqrt(((20 - 110 / 3) ** 2 + (30 - 110 / 3) ** 2 + (60 - 110 / 3) ** 2) / 2), 9)
    // Percentiles come from DDSketch, within 1% of the value at rank floor(q * (n - 1)).
    expect(Math.abs((first!.p50 as number) - 30)).toBeLessThanOrEqual(0.3)
    expect(second).toMatchObject({ ...group, windowStart: BASE + 10_000, windowEnd: BASE + 20_000, count: 1, min: 25, max: 25, avg: 25 })
    expect(values(out['readings-avg-5m']!)).toEqual([
      { ...group, windowStart: BASE - 10_000, windowEnd: BASE + 10_000, count: 3, avg: 110 / 3 },
      { ...group, windowStart: BASE, windowEnd: BASE + 20_000, count: 4, avg: 33.75 },
      { ...group, windowStart: BASE + 10_000, windowEnd: BASE + 30_000, count: 1, avg: 25 },
    ])
    expect(values(out['readings-alerts']!)).toEqual([{ ...group, windowStart: BASE, windowEnd: BASE + 10_000, value: 60, baseline: 50, score: 10, reason: 'max 60 above 50' }])
    // The reading is written once, naming every windowed operator that found it late.
    const late = { deviceId: 'd1', sensor: 'temperature', unit: '°C', value: 22, ts: BASE + 2_000 }
    expect(out['readings-late']!.map((r) => [r.headers['brook.late.operator'], JSON.parse(r.text)])).toEqual([['stats-10s,avg-20s-every-10s', late]])
    expect(run.stderr()).toContain('brook process: iot: stopped; 6 records in')
    expect(run.stderr()).toContain(', 1 late, ')
  })

  it.sequential('stops with one line, and no stack trace in its log, when a task fails three times at one offset', async () => {
    await admin.createTopics({ topics: [{ topic: 'failing-in', numPartitions: 1 }], waitForLeaders: true })
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic: 'failing-in', messages: [1, 2, 13, 4].map((value) => ({ key: 'k', value: JSON.stringify({ value }) })) })
    await producer.disconnect()
    const result = await brook(['process', join(REPO, 'test/fixtures/pipelines/failing-reduce.mjs'), '--bootstrap-server', broker.address, '--state-dir', tempDir('brook-failing-'), '--commit-interval-ms', '100'])
    expect(result.code).toBe(1)
    expect(lines(result.stderr).at(-1)).toBe('brook: the pipeline stopped after an error: task 0_0 failed 3 times in a row at offset 2 of failing-in-0: bad 13')
    expect(result.stderr).toContain('stopping after an error: task 0_0 failed 3 times in a row at offset 2 of failing-in-0')
    expect(result.stderr).not.toMatch(/\n\s+at /)
  })

  it.sequential('stops cleanly, with its summary and no stack trace, when the reader of its stdout goes away (| head)', async () => {
    await admin.createTopics({ topics: [{ topic: 'printing-in', numPartitions: 1 }], waitForLeaders: true })
    const run = spawnBrook(['process', join(REPO, 'test/fixtures/pipelines/printing.mjs'), '--bootstrap-server', broker.address, '--state-dir', tempDir('brook-printing-'), '--commit-interval-ms', '100'])
    await waitFor('the pipeline to start', () => run.stderr().includes('started'), { timeoutMs: 60_000 })
    // What `head -1` does once it has its line: the read end of the pipe closes, and the next write fails (EPIPE).
    run.child.stdout!.destroy()
    const producer = kafka.producer()
    await producer.connect()
    await producer.send({ topic: 'printing-in', messages: [1, 2, 3].map((value) => ({ key: 'k', value: JSON.stringify({ value }) })) })
    await producer.disconnect()
    expect(await run.exited).toBe(0)
    expect(run.stderr()).toContain('brook process: printing: stopped; ')
    expect(run.stderr()).not.toContain('EPIPE')
    expect(run.stderr()).not.toMatch(/\n\s+at /)
  })

  it.sequential('says in one line that the cluster has no SASL when --kafka-config asks for it', async () => {
    const dir = tempDir('brook-process-sasl-')
    const config = join(dir, 'sasl.json')
    writeFileSync(config, JSON.stringify({ sasl: { mechanism: 'plain', username: 'reader', password: 'secret' } }))
    const result = await brook(['process', 'iot', '--bootstrap-server', broker.address, '--state-dir', dir, '--kafka-config', config])
    expectOneLineError(result, `iot: could not start on ${broker.address}: the cluster does not support SASL (it answers SaslHandshake ILLEGAL_SASL_STATE, as a PLAINTEXT listener does; Brook has no SASL)`)
  })

  it.sequential('names each topic it could not create and why, in one line', async () => {
    const result = await brook(['process', 'iot', '--bootstrap-server', broker.address, '--state-dir', tempDir('brook-process-rf-'), '--application-id', 'too-many-replicas', '--input-topic', 'too-many-replicas-in', '--replication-factor', '3'])
    expectOneLineError(result, `too-many-replicas: could not start on ${broker.address}: could not create the pipeline's topics (`)
    expect(result.stderr).toContain('too-many-replicas-in: INVALID_REPLICATION_FACTOR')
    expect(result.stderr).toContain('; replicationFactor 3 is more than the brokers alive: set replicationFactor (--replication-factor) to at most their number')
  })
})

describe('brook process on a cluster without transactions', { concurrent: true }, () => {
  it.sequential('refuses to start in one line when exactly_once is asked for, naming at_least_once, and creates no topic', async () => {
    // The broker listens on 127.0.0.2 and advertises 127.0.0.1, where the proxy listens with the same port.
    const broker = await startConfiguredBroker(FAST_GROUPS, { args: ['--host', '127.0.0.2', '--advertised-host', '127.0.0.1'] })
    const proxy = await startProxy({ listenHost: '127.0.0.1', targetHost: '127.0.0.2', port: broker.port })
    for (const api of TRANSACTION_APIS) proxy.hide(api.request.apiKey)
    const address = `127.0.0.1:${broker.port}`
    const admin = new Kafka({ brokers: [address], logLevel: logLevel.NOTHING }).admin()
    try {
      const result = await brook(['process', 'iot', '--bootstrap-server', address, '--state-dir', tempDir('brook-state-'), '--processing-guarantee', 'exactly_once'])
      expectOneLineError(
        result,
        `iot: could not start on ${address}: exactly_once needs transactions, which the cluster does not support (its ApiVersions does not list InitProducerId (API key 22)); run with processingGuarantee at_least_once (--processing-guarantee at_least_once) to process without them`,
      )
      await admin.connect()
      expect((await admin.listTopics()).filter((topic) => !topic.startsWith('__'))).toEqual([])
    } finally {
      await admin.disconnect()
      await proxy.close()
      await broker.stop()
      broker.cleanup()
    }
  })
})

describe('brook process through a cluster outage', { concurrent: true }, () => {
  // The reminder a long wait repeats every 30 s is checked on a fake clock (test/processor/cluster-wait.test.ts).
  it.sequential('says when it starts waiting for the cluster, and says when processing resumes', { timeout: 240_000 }, async () => {
    let node = await startConfiguredBroker(FAST_GROUPS)
    try {
      const run = spawnBrook(['process', 'iot', '--bootstrap-server', node.address, '--state-dir', tempDir('brook-process-outage-'), '--application-id', 'outage', '--input-topic', 'outage-in'])
      await until(() => run.stderr().includes('brook process: outage: instance '), 'the pipeline to start', { context: run.stderr })
      await node.kill()
      const waiting = 'brook process: waiting for the cluster ('
      await until(() => run.stderr().includes(waiting), 'the pipeline to say it waits for the cluster', { context: run.stderr })
      node = await node.restart()
      await until(() => run.stderr().includes('brook process: the cluster answers again: processing resumed after '), 'the pipeline to say it resumed', { context: run.stderr })
      // One line to start the wait, however often kafkajs and the runner retried meanwhile.
      expect(lines(run.stderr()).filter((line) => line.startsWith(waiting)), run.stderr()).toHaveLength(1)
      run.child.kill('SIGINT')
      expect(await run.exited, run.stderr()).toBe(0)
    } finally {
      await node.kill()
      node.cleanup()
    }
  })
  it.sequential('a Ctrl-C during the start against a cluster that does not answer stops it there, and leaves no state directory', { timeout: 120_000 }, async () => {
    const node = await startConfiguredBroker(FAST_GROUPS)
    try {
      // Stopped (SIGSTOP): connections are accepted, no request is answered, so each client's connect waits out its
      // request timeout (30 s), and the start waited all of them out before it heard a Ctrl-C.
      node.child.kill('SIGSTOP')
      const state = join(tempDir('brook-process-abort-'), 'state')
      const run = spawnBrook(['process', 'iot', '--bootstrap-server', node.address, '--state-dir', state, '--application-id', 'abandoned'])
      // The start has begun once it holds its state directory.
      await until(() => existsSync(join(state, '.lock')), 'the start to lock its state directory', { context: run.stderr })
      run.child.kill('SIGINT')
      expect(await run.exited, run.stderr()).toBe(0)
      expect(lines(run.stderr())).toEqual(['brook process: abandoned: stopped during its start (Ctrl-C)'])
      expect(existsSync(state)).toBe(false)
    } finally {
      node.child.kill('SIGCONT')
      await node.kill()
      node.cleanup()
    }
  })
})

describe('brook process --describe', { concurrent: true }, () => {
  // Nothing listens there: --describe does not connect.
  const nowhere = ['--bootstrap-server', '127.0.0.1:1']

  it.sequential('prints the built-in pipeline as its topology describes it, with the flags applied', async () => {
    const plain = await brook(['process', 'iot', '--describe', ...nowhere])
    expect(plain.code).toBe(0)
    expect(plain.stdout).toBe(`${describeTopology(iotPipeline({}), { applicationId: 'iot' })}\n`)
    for (const part of ['source readings', 'tumbling 1m, grace 10s', 'hopping 5m every 1m', '-> readings-stats-1m', '-> readings-avg-5m', '-> readings-alerts', 'late -> readings-late', 'changelog iot-readings-store-changelog', 'dead letters -> iot-dlq']) {
      expect(plain.stdout).toContain(part)
    }

    const flagged = await brook(['process', 'iot', '--describe', ...nowhere, '--application-id', 'plant', '--input-topic', 'raw', '--stats-window', '30s', '--alerts-topic', 'alarms', '--late-topic', 'stragglers', '--dead-letter-topic', 'bad'])
    expect(flagged.code).toBe(0)
    expect(flagged.stdout).toBe(
      `${describeTopology(iotPipeline({ inputTopic: 'raw', statsWindow: '30s', alertsTopic: 'alarms', lateTopic: 'stragglers' }), { applicationId: 'plant', lateTopic: 'stragglers', deadLetterTopic: 'bad' })}\n`,
    )
    for (const part of ['source raw', 'tumbling 30s', '-> alarms', 'late -> stragglers', 'changelog plant-raw-store-changelog', 'dead letters -> bad']) expect(flagged.stdout).toContain(part)
  })

  it.sequential("prints a module's topology, named after its file by default", async () => {
    const result = await brook(['process', FIXTURE, '--describe', ...nowhere])
    expect(result.code).toBe(0)
    const text = result.stdout
    expect(text).toMatch(/^Topology \(application id fixture-pipeline; dead letters -> fixture-pipeline-dlq\)\n/)
    for (const part of ['source fixture-in (json, event time: field \'ts\')', '-> filter', 'aggregate sums-10s', '{ count: count, sum: sum(value) }', 'tumbling 10s, grace 0ms', 'late -> fixture-pipeline-late', '-> fixture-out', 'changelog fixture-pipeline-fixture-in-store-changelog']) {
      expect(text).toContain(part)
    }
  })
})

describe('brook process errors', { concurrent: true }, () => {
  let dir: string
  const nowhere = ['--bootstrap-server', '127.0.0.1:1']
  beforeAll(() => {
    dir = tempDir('brook-modules-')
    writeFileSync(join(dir, 'number.mjs'), 'export default 42\n')
    writeFileSync(join(dir, 'no-default.mjs'), 'export const topology = {}\n')
    writeFileSync(join(dir, 'broken.mjs'), 'export default {\n')
    // ES module syntax in a package that says it is CommonJS: Node's own warning would make the error two lines more.
    mkdirSync(join(dir, 'commonjs'))
    writeFileSync(join(dir, 'commonjs', 'package.json'), JSON.stringify({ type: 'commonjs' }))
    writeFileSync(join(dir, 'commonjs', 'pipeline.js'), "import { TopologyBuilder } from 'brook'\nexport default new TopologyBuilder().build()\n")
    writeFileSync(join(dir, 'misplaced.mjs'), 'const b = new Map(\n\nexport default b\n')
    writeFileSync(join(dir, 'throws.mjs'), "throw new Error('no sensors configured')\n")
    // A top-level await that nothing settles: Node empties its event loop and would exit 0, saying nothing.
    writeFileSync(join(dir, 'waits.mjs'), 'export default await new Promise(() => {})\n')
    // keyBy without its options (a module the compiler never checked).
    writeFileSync(
      join(dir, 'nameless.mjs'),
      `import { TopologyBuilder } from '${join(REPO, 'dist/processor/index.js')}'\nconst b = new TopologyBuilder()\nb.stream('nameless-in').keyBy((v) => v.id).to('nameless-out')\nexport default b.build()\n`,
    )
    writeFileSync(join(dir, 'broken.ts'), 'const x: number = \nexport default x\n')
    writeFileSync(join(dir, 'broken.mts'), 'const x: number = \nexport default x\n')
    writeFileSync(join(dir, 'broken.cts'), 'const x: number = \nexport default x\n')
    // Outside a project that depends on brook (and outside a checkout), 'brook' is nowhere to be found.
    writeFileSync(join(dir, 'elsewhere.mts'), "import { TopologyBuilder } from 'brook'\nexport default new TopologyBuilder().build()\n")
    writeFileSync(join(dir, 'elsewhere.ts'), "import { TopologyBuilder } from 'brook'\nexport default new TopologyBuilder().build()\n")
    // A project that depends on brook but does not say "type": "module": its .ts and .cts pipelines load as CommonJS.
    mkdirSync(join(dir, 'plain', 'node_modules'), { recursive: true })
    writeFileSync(join(dir, 'plain', 'package.json'), JSON.stringify({ name: 'plant', dependencies: { brook: '*' } }))
    symlinkSync(REPO, join(dir, 'plain', 'node_modules', 'brook'), 'dir')
    copyFileSync(FIXTURE, join(dir, 'plain', 'pipeline.ts'))
    copyFileSync(FIXTURE, join(dir, 'plain', 'pipeline.cts'))
    writeFileSync(join(dir, 'brokers.json'), JSON.stringify({ brokers: ['elsewhere:9092'] }))
    writeFileSync(join(dir, 'typo.json'), JSON.stringify({ sasll: {} }))
    writeFileSync(join(dir, 'client-id.json'), JSON.stringify({ clientId: 5, ssl: true }))
    // kafkajs would take each of these without a word: a misspelt retry setting is ignored, a negative time used.
    writeFileSync(join(dir, 'retry-typo.json'), JSON.stringify({ retry: { retriez: 3 } }))
    writeFileSync(join(dir, 'retry-type.json'), JSON.stringify({ retry: { retries: '3' } }))
    writeFileSync(join(dir, 'retry-fraction.json'), JSON.stringify({ retry: { retries: 2.5 } }))
    writeFileSync(join(dir, 'retry-negative.json'), JSON.stringify({ retry: { initialRetryTime: -100 } }))
    writeFileSync(join(dir, 'retry-array.json'), JSON.stringify({ retry: [3] }))
    writeFileSync(join(dir, 'negative-timeout.json'), JSON.stringify({ requestTimeout: -1 }))
    writeFileSync(join(dir, 'infinite-timeout.mjs'), 'export default { connectionTimeout: Infinity }\n')
    writeFileSync(join(dir, 'retry-good.json'), JSON.stringify({ requestTimeout: 5000, retry: { retries: 0, initialRetryTime: 100, maxRetryTime: 1000, factor: 0.2, multiplier: 2 } }))
  })

  it.sequential('says in one line what is wrong with the pipeline module, naming the file', async () => {
    const file = (name: string) => join(dir, name)
    const cases: [string[], string][] = [
      [['process', file('missing.js')], `cannot read ${file('missing.js')}: no such file`],
      [['process', dir], `cannot read ${dir}: it is a directory`],
      [['process', file('number.mjs')], `${file('number.mjs')} does not export a topology: its default export is a number`],
      [['process', file('no-default.mjs')], `${file('no-default.mjs')} does not export a topology: its default export is missing`],
      // Where, too: Node's SyntaxError from import() does not say it, node --check does.
      [['process', file('broken.mjs')], `${file('broken.mjs')}:2: Unexpected end of input`],
      [['process', file('misplaced.mjs')], `${file('misplaced.mjs')}:3:1: Unexpected token 'export'`],
      [['process', file('throws.mjs')], `${file('throws.mjs')}: no sensors configured`],
      [['process', file('waits.mjs'), '--describe'], `${file('waits.mjs')}: never finished loading: a top-level await waits for a promise that nothing settles`],
      [['process', file('nameless.mjs'), '--describe'], `${file('nameless.mjs')}: keyBy needs options with a name, as in keyBy(..., { name: 'my-keyBy' }): it names the operator's state and topics`],
      [['process', file('commonjs/pipeline.js')], `${file('commonjs/pipeline.js')}:1:1: Cannot use import statement outside a module (${file('commonjs/pipeline.js')} loads as CommonJS, since no package.json above it says "type": "module"; name it .mjs, or add "type": "module")`],
      [['process', file('broken.ts')], `${file('broken.ts')}: `],
      // esbuild's report names the file where the error is, the .mts or .cts itself (tsx compiles it under a .ts name).
      [['process', file('broken.mts'), '--describe'], `${file('broken.mts')}: Transform failed with 1 error: ${file('broken.mts')}:2:0: ERROR: `],
      [['process', file('broken.cts'), '--describe'], `${file('broken.cts')}: Transform failed with 1 error: ${file('broken.cts')}:2:0: ERROR: `],
      [['process', file('elsewhere.mts')], "Cannot find package 'brook' imported from"],
      [['process', file('elsewhere.mts')], "(install brook in the pipeline's project, npm install brook, or keep the pipeline in a brook checkout)"],
      // Outside any project a .ts file loads as CommonJS too, which the hint adds; Node's require stack is left out.
      [
        ['process', file('elsewhere.ts')],
        `${file('elsewhere.ts')}: Cannot find module 'brook' (install brook in the pipeline's project, npm install brook, or keep the pipeline in a brook checkout; it also loads as CommonJS, since no package.json above it says "type": "module": name it .mts, or add "type": "module")`,
      ],
    ]
    const results = await Promise.all(cases.map(([args]) => brook([...args, ...nowhere])))
    results.forEach((result, i) => expectOneLineError(result, cases[i]![1]))
    // A syntax error is no matter of module systems: no hint to rename the file.
    for (const result of results.filter((_, i) => cases[i]![0][1]!.startsWith(file('broken.')))) expect(result.stderr).not.toContain('loads as CommonJS')
  })

  it.sequential('says only that a TypeScript pipeline loading as CommonJS must load as an ES module, not what brook\'s modules compiled into CommonJS then throw', async () => {
    const tsFile = join(dir, 'plain', 'pipeline.ts')
    const ctsFile = join(dir, 'plain', 'pipeline.cts')
    const [fromTs, fromCts] = await Promise.all([brook(['process', tsFile, ...nowhere]), brook(['process', ctsFile, '--describe', ...nowhere])])
    expect(fromTs.code).toBe(1)
    expect(fromTs.stderr).toBe(`brook: ${tsFile}: a pipeline must load as an ES module (${tsFile} loads as CommonJS, since no package.json above it says "type": "module"; name it .mts, or add "type": "module")\n`)
    expect(fromCts.code).toBe(1)
    expect(fromCts.stderr).toBe(`brook: ${ctsFile}: a pipeline must load as an ES module (${ctsFile} loads as CommonJS, as every .cts file does; name it .mts)\n`)
  })

  it.sequential('refuses bad flags in one line before connecting, and says so in one line when the cluster is not there', async () => {
    const cases: [string[], string][] = [
      [['process', FIXTURE, '--stats-window', '1m'], "--stats-window applies to the built-in 'iot' pipeline only"],
      [['process', 'iot', '--processing-guarantee', 'twice'], "'twice' is invalid"],
      [['process', 'iot', '--compression-type', 'brotli'], "'brotli' is invalid. Allowed choices are none, gzip, snappy, lz4, zstd"],
      [['process', 'iot', '--commit-interval-ms', '0'], '--commit-interval-ms must be between 1 and'],
      [['process', 'iot', '--event-time-alignment-max-wait-ms', '0'], '--event-time-alignment-max-wait-ms must be between 1 and'],
      [['process', 'iot', '--replication-factor', '0'], "--replication-factor must be -1 (the cluster's default) or between 1 and 32767"],
      [['process', 'iot', '--threshold-above', '5', '--threshold-below', '10'], 'brook: thresholdBelow (--threshold-below) 10 must be below thresholdAbove (--threshold-above) 5: with the band empty, every window would raise an alert'],
      [['process', 'iot', '--grace', 'soon'], "--grace: 'soon' is not a duration"],
      [['process', 'iot', '--z-score-threshold', 'high'], '--z-score-threshold takes a number'],
      [['process', 'iot', '--kafka-config', join(dir, 'brokers.json')], 'brokers is not a setting here; --bootstrap-server gives them'],
      [['process', 'iot', '--kafka-config', join(dir, 'typo.json')], "unknown setting 'sasll'"],
      // --describe connects to nothing but still checks the settings it would run with.
      [['process', 'iot', '--describe', '--kafka-config', join(dir, 'typo.json')], "unknown setting 'sasll'"],
      // Not kafkajs's own words (Node's 'The "string" argument must be of type string ... Received type number (5)').
      [['process', 'iot', '--kafka-config', join(dir, 'client-id.json')], 'client-id.json: clientId must be a string, not 5'],
      [['process', 'iot', '--kafka-config', join(dir, 'retry-typo.json')], "retry-typo.json: unknown setting 'retry.retriez' (kafkajs's retry takes maxRetryTime, initialRetryTime, factor, multiplier, retries, restartOnFailure)"],
      [['process', 'iot', '--kafka-config', join(dir, 'retry-type.json')], 'retry-type.json: retry.retries must be a number, not "3"'],
      [['process', 'iot', '--kafka-config', join(dir, 'retry-fraction.json')], 'retry-fraction.json: retry.retries must be a whole number, 0 or more, not 2.5'],
      [['process', 'iot', '--kafka-config', join(dir, 'retry-negative.json')], 'retry-negative.json: retry.initialRetryTime must be a number of ms, 0 or more, not -100'],
      [['process', 'iot', '--kafka-config', join(dir, 'retry-array.json')], 'retry-array.json: retry must be an object, not [3]'],
      [['process', 'iot', '--kafka-config', join(dir, 'negative-timeout.json')], 'negative-timeout.json: requestTimeout must be a number of ms, 0 or more, not -1'],
      [['process', 'iot', '--kafka-config', join(dir, 'infinite-timeout.mjs')], 'infinite-timeout.mjs: connectionTimeout must be a number of ms, 0 or more, not Infinity'],
      [['process', 'iot', '--bootstrap-server', 'no-port'], '--bootstrap-server'],
      [['process'], "missing required argument 'pipeline'"],
      // Node 20's recursive mkdir never returns under /proc: the state directory is made one level at a time.
      [['process', 'iot', '--state-dir', '/proc/brook-nowhere/state'], 'iot: could not start on 127.0.0.1:1: cannot make the state directory /proc/brook-nowhere/state: '],
      [['process', 'iot', '--state-dir', join(dir, 'brokers.json', 'state')], `iot: could not start on 127.0.0.1:1: cannot use the state directory ${join(dir, 'brokers.json', 'state')}: ${join(dir, 'brokers.json')} is a file, not a directory`],
      // The flags are fine; the cluster is not there.
      [['process', 'iot', '--state-dir', dir], 'iot: could not start on 127.0.0.1:1: '],
      // Nested settings that are right pass the check.
      [['process', 'iot', '--state-dir', join(dir, 'retry-good'), '--kafka-config', join(dir, 'retry-good.json')], 'iot: could not start on 127.0.0.1:1: '],
    ]
    const results = await Promise.all(cases.map(([args]) => brook([...args, ...(args.includes('--bootstrap-server') ? [] : nowhere)])))
    results.forEach((result, i) => expectOneLineError(result, cases[i]![1]))
  })
})
