/**
 * Replays of real series against a real broker process, read back with a kafkajs consumer: every row once, with its
 * own event time as record timestamp; the topic's retention chosen or warned about; bad rows reported and skipped.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs'
import { replay, SimulatorError, type Log, type Progress, type ReplayOptions } from '../../../processor/simulator/index.js'
import { FAST_GROUPS, startConfiguredBroker } from '../../helpers/broker-config.js'
import type { BrokerProcess } from '../../helpers/broker.js'
import { loggedErrors } from '../../helpers/broker-log.js'
import { readTopic } from './read-back.js'

const NAB = resolve(import.meta.dirname, '../../fixtures/nab')
const MACHINE_TEMPERATURE = join(NAB, 'realKnownCause/machine_temperature_system_failure.csv')
const SPEED = join(NAB, 'realTraffic/speed_7578.csv')

/** The rows of a NAB file, read without the replay's CSV code: `2013-12-02 21:15:00` is UTC. */
function naiveRows(file: string): { ts: number; value: number }[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [timestamp, value] = line.split(',')
      return { ts: Date.parse(`${timestamp!.replace(' ', 'T')}Z`), value: Number(value) }
    })
}

function capture(): Log & { lines: string[] } {
  const lines: string[] = []
  return { lines, info: (m) => void lines.push(`info: ${m}`), warn: (m) => void lines.push(`warn: ${m}`) }
}

describe('replay against a broker', () => {
  let broker: BrokerProcess
  let kafka: Kafka
  let admin: Admin
  let bootstrapServers: string[]
  let dir: string

  beforeAll(async () => {
    broker = await startConfiguredBroker(FAST_GROUPS)
    bootstrapServers = [broker.address]
    kafka = new Kafka({ brokers: bootstrapServers, logLevel: logLevel.NOTHING })
    admin = kafka.admin()
    await admin.connect()
    dir = mkdtempSync(join(tmpdir(), 'brook-replay-'))
  })
  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
    broker?.cleanup()
    expect(loggedErrors(broker)).toEqual([])
    rmSync(dir, { recursive: true, force: true })
  })

  async function topicConfig(topic: string, name: string): Promise<string | undefined> {
    const described = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: [name] }], includeSynonyms: false })
    return described.resources[0]!.configEntries.find((entry) => entry.configName === name)?.configValue
  }

  function run(options: Partial<ReplayOptions> & Pick<ReplayOptions, 'files'>) {
    return replay({ bootstrapServers, speedup: 'as-fast-as-possible', ...options })
  }

  it('replays the NAB machine temperature and a traffic series as fast as possible: every row once, in event-time order, stamped with its CSV time', async () => {
    const log = capture()
    const progress: Progress[] = []
    const summary = await run({ files: [MACHINE_TEMPERATURE, SPEED], topic: 'nab', partitions: 3, log, onProgress: (p) => void progress.push(p) })
    const expected = { machine_temperature_system_failure: naiveRows(MACHINE_TEMPERATURE), speed_7578: naiveRows(SPEED) }
    expect(expected.machine_temperature_system_failure).toHaveLength(22_695)
    expect(expected.speed_7578).toHaveLength(1_127)
    expect(summary).toMatchObject({ topic: 'nab', topicCreated: true, sent: 23_822, total: 23_822, badRowCount: 0, aborted: false })
    expect(summary.series.map(({ deviceId, sensor, unit, rows }) => ({ deviceId, sensor, unit, rows }))).toEqual([
      { deviceId: 'machine_temperature_system_failure', sensor: 'temperature', unit: '°C', rows: 22_695 },
      { deviceId: 'speed_7578', sensor: 'speed', unit: 'mph', rows: 1_127 },
    ])

    const consumed = await readTopic(kafka, admin, 'nab')
    expect(consumed).toHaveLength(23_822)
    for (const [deviceId, rows] of Object.entries(expected)) {
      const mine = consumed.filter((r) => r.key === deviceId)
      // One device, one partition: its readings in offset order are the file's rows, in order, each once.
      expect(new Set(mine.map((r) => r.partition)).size).toBe(1)
      expect(mine.map((r) => ({ ts: r.reading.ts, value: r.reading.value }))).toEqual(rows)
      for (const r of mine) {
        expect(r.timestamp).toBe(r.reading.ts)
        expect(r.reading.deviceId).toBe(deviceId)
        expect(typeof r.reading.value).toBe('number')
      }
    }

    expect(await topicConfig('nab', 'retention.ms')).toBe('-1')
    expect(log.lines).toHaveLength(1)
    expect(log.lines[0]).toMatch(/^info: created topic nab with retention\.ms=-1, message\.timestamp\.before\.max\.ms=9223372036854775807: replayed readings keep their event times \(from 2013-12-02T21:15:00Z\)/)
    expect(progress.at(-1)).toMatchObject({ sent: 23_822, total: 23_822, eventTimeMs: expected.speed_7578.at(-1)!.ts })
  })

  it('merges several files in event-time order, paced, and skips bad rows, reporting each with file:line', async () => {
    const a = join(dir, 'occupancy_a.csv')
    const b = join(dir, 'occupancy_b.csv')
    writeFileSync(
      a,
      [
        'timestamp,value',
        '2015-09-01 10:00:00,1.5',
        '2015-09-01 10:10:00,abc',
        '2015-09-01 10:20:00,2.5',
        'yesterday,3',
        '2015-09-01 10:40:00',
        '2015-02-30 10:45:00,4',
        '2015-09-01 10:50:00,5.5',
        '"2015-09-01 11:00:00,8',
      ].join('\n'),
    )
    writeFileSync(b, ['timestamp,value', '2015-09-01 10:05:00,10', '2015-09-01 10:25:00,', '2015-09-01 10:35:00,30', '2015-09-01 10:55:00,1e400', ''].join('\r\n'))
    const log = capture()
    // Paced (an hour of event time in 0.6 s): the schedule, not only the unpaced path, delivers every reading in order.
    const summary = await run({ files: [a, b], topic: 'merged', partitions: 1, log, speedup: 6000 })
    expect(summary).toMatchObject({ sent: 5, total: 5, badRowCount: 7 })
    expect(summary.badRows).toEqual([
      { file: a, line: 3, reason: "unparsable value 'abc'" },
      { file: a, line: 5, reason: "unparsable timestamp 'yesterday'" },
      { file: a, line: 6, reason: 'expected 2 fields, found 1' },
      { file: a, line: 7, reason: "unparsable timestamp '2015-02-30 10:45:00'" },
      { file: a, line: 9, lastLine: 9, reason: 'Quote Not Closed: the parsing is finished with an opening quote' },
      { file: b, line: 3, reason: "unparsable value ''" },
      { file: b, line: 5, reason: "unparsable value '1e400'" },
    ])
    expect(log.lines).toContain(`warn: ${a}:3: skipped: unparsable value 'abc'`)
    const consumed = await readTopic(kafka, admin, 'merged')
    expect(consumed.map((r) => [r.key, r.reading.value, r.timestamp])).toEqual([
      ['occupancy_a', 1.5, Date.UTC(2015, 8, 1, 10, 0)],
      ['occupancy_b', 10, Date.UTC(2015, 8, 1, 10, 5)],
      ['occupancy_a', 2.5, Date.UTC(2015, 8, 1, 10, 20)],
      ['occupancy_b', 30, Date.UTC(2015, 8, 1, 10, 35)],
      ['occupancy_a', 5.5, Date.UTC(2015, 8, 1, 10, 50)],
    ])
    expect(consumed.every((r) => r.reading.sensor === 'occupancy' && r.reading.unit === '%')).toBe(true)
  })

  it('warns about an existing topic whose finite retention would delete the replayed readings', async () => {
    await admin.createTopics({ topics: [{ topic: 'short-lived', numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] })
    const log = capture()
    const summary = await run({ files: [SPEED], topic: 'short-lived', log })
    expect(summary).toMatchObject({ topicCreated: false, sent: 1_127 })
    expect(log.lines).toHaveLength(1)
    expect(log.lines[0]).toMatch(
      /^warn: topic short-lived has retention\.ms=3600000 \(1 hour\) and retention acts on record timestamps: readings stamped before \S+ \(the oldest are from 2015-09-08T11:39:00Z\) will be deleted at the broker's next retention check, minutes after they are written; set retention\.ms=-1 on short-lived to keep them$/,
    )
    expect(summary.warnings).toEqual([log.lines[0]!.slice('warn: '.length)])
    expect(await topicConfig('short-lived', 'retention.ms')).toBe('3600000')
  })

  it('warns about a topic that refuses old timestamps, and stops with the broker\'s refusal', async () => {
    await admin.createTopics({ topics: [{ topic: 'recent-only', numPartitions: 1, configEntries: [{ name: 'message.timestamp.before.max.ms', value: '86400000' }] }] })
    const log = capture()
    const failure = await run({ files: [SPEED], topic: 'recent-only', log }).catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(SimulatorError)
    expect((failure as SimulatorError).code).toBe('BROKER_REFUSED')
    expect((failure as SimulatorError).message).toMatch(/^topic recent-only: the cluster refused readings after 0 were sent: INVALID_TIMESTAMP/)
    expect(log.lines.some((line) => line.startsWith('warn: topic recent-only refuses records stamped more than 1 day behind the broker clock (message.timestamp.before.max.ms=86400000)'))).toBe(true)
  })
})
