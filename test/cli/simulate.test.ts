/**
 * `brook simulate` as a user runs it, against a real broker process: the readings it reports are the ones a kafkajs
 * consumer reads back (the seeded fleet's, reading for reading; a CSV series' rows, with their own event times), and
 * bad flags are one line on stderr with exit code 1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import kafkajs, { type Admin, type Kafka as KafkaClient } from 'kafkajs'
import { Fleet, resolveFleetOptions } from '../../processor/simulator/index.js'
import { FAST_GROUPS, startConfiguredBroker } from '../helpers/broker-config.js'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { readTopic } from '../processor/simulator/read-back.js'
import { brook, expectOneLineError, lines, spawnBrook, until } from './run-brook.js'

const { ConfigResourceTypes, Kafka, logLevel } = kafkajs

describe('brook simulate', () => {
  let broker: BrokerProcess
  let kafka: KafkaClient
  let admin: Admin
  let dir: string

  beforeAll(async () => {
    // Kafka's retention default, which decides what brook simulate sets on the topics it creates.
    broker = await startConfiguredBroker(FAST_GROUPS, { logRetentionMs: 'kafka-default' })
    kafka = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING })
    admin = kafka.admin()
    await admin.connect()
    dir = mkdtempSync(join(tmpdir(), 'brook-simulate-'))
  })
  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
    broker?.cleanup()
    rmSync(dir, { recursive: true, force: true })
    expect(loggedErrors(broker)).toEqual([])
  })

  async function retentionMs(topic: string): Promise<string | undefined> {
    const described = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }], includeSynonyms: false })
    return described.resources[0]?.configEntries[0]?.configValue
  }

  // Two lanes side by side: the runs against the shared broker (topics of their own names, one at a time), and the
  // refusals and failures that need no broker or start their own, whose time is mostly a client giving up.
  describe('against a broker', { concurrent: true }, () => {
    it.sequential('sends the seeded fleet: a consumer reads back exactly the readings of the Fleet stream, keyed by deviceId and stamped with ts', async () => {
      const flags = { seed: 7, devices: 6, rate: 50, count: 500, lateFraction: 0.02, faultRate: 0.01 }
      const result = await brook([
        'simulate', '--bootstrap-server', broker.address, '--topic', 'sim-fleet', '--partitions', '2', '--as-fast-as-possible',
        '--seed', String(flags.seed), '--devices', String(flags.devices), '--rate', String(flags.rate), '--count', String(flags.count),
        '--late-fraction', String(flags.lateFraction), '--fault-rate', String(flags.faultRate),
      ])
      expect(result.stderr).not.toContain('brook:')
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(/^sent 500 readings to sim-fleet \(created\) in /)
      expect(result.stdout).toContain('fleet: seed 7, 6 devices x 4 sensors (temperature, humidity, pressure, vibration)')
      // The run picks its first event time (early enough to end around now) and says which: the stream is fixed by it.
      const startMs = Date.parse(/first slot at (\S+)/.exec(result.stdout)![1]!)

      const consumed = await readTopic(kafka, admin, 'sim-fleet')
      expect(consumed).toHaveLength(500)
      for (const record of consumed) {
        expect(record.key).toBe(record.reading.deviceId)
        expect(record.timestamp).toBe(record.reading.ts)
      }
      const fleet = new Fleet({ ...resolveFleetOptions({ bootstrapServers: [broker.address], ...flags }), startMs })
      const expected = Array.from({ length: 500 }, () => fleet.nextOf(500)!.reading)
      for (const partition of [0, 1]) {
        const onPartition = consumed.filter((r) => r.partition === partition)
        const devices = new Set(onPartition.map((r) => r.key))
        expect(onPartition.map((r) => r.reading)).toEqual(expected.filter((reading) => devices.has(reading.deviceId)))
      }
    })

    it.sequential('sends the same readings, at the same event times, on every run with the same --seed and --start-ms', async () => {
      const startMs = 1_700_000_000_000
      const runs = await Promise.all(['sim-start-a', 'sim-start-b'].map((topic) =>
        brook(['simulate', '--bootstrap-server', broker.address, '--topic', topic, '--as-fast-as-possible', '--seed', '3', '--devices', '4', '--count', '40', '--start-ms', String(startMs)]),
      ))
      for (const [i, run] of runs.entries()) {
        expect(run.code, run.stderr).toBe(0)
        expect(Date.parse(/first slot at (\S+)/.exec(run.stdout)![1]!)).toBe(startMs)
        // The broker's default retention would delete readings from 2023 minutes after they are written: the topic the
        // run created keeps them instead, as a replay's does, and the run says so, with no warning left to give.
        const topic = ['sim-start-a', 'sim-start-b'][i]!
        expect(run.stderr).toContain(`set retention.ms=-1 on topic ${topic}: the readings start at 2023-11-14T22:13:20Z, and the cluster's default retention.ms=604800000 would delete them minutes after they are written\n`)
        expect(run.stderr).not.toContain('warning:')
        expect(await retentionMs(topic)).toBe('-1')
      }
      const [a, b] = await Promise.all(['sim-start-a', 'sim-start-b'].map((topic) => readTopic(kafka, admin, topic)))
      expect(a).toHaveLength(40)
      expect(b!.map((r) => r.reading)).toEqual(a!.map((r) => r.reading))
      expect(Math.min(...a!.map((r) => r.reading.ts))).toBeGreaterThanOrEqual(startMs)
    })

    it.sequential('keeps the retention of a topic that exists with --start-ms before it, and warns that the oldest readings will be deleted', async () => {
      await admin.createTopics({ topics: [{ topic: 'sim-start-existing' }], waitForLeaders: true })
      const result = await brook(['simulate', '--bootstrap-server', broker.address, '--topic', 'sim-start-existing', '--as-fast-as-possible', '--count', '10', '--start-ms', '1700000000000'])
      expect(result.code, result.stderr).toBe(0)
      expect(result.stderr).toContain('warning: topic sim-start-existing has retention.ms=604800000 (7 days) and retention acts on record timestamps: readings stamped before ')
      expect(result.stderr).toContain('; set retention.ms=-1 on sim-start-existing to keep them')
      expect(result.stderr).not.toContain('set retention.ms=-1 on topic')
      expect(await retentionMs('sim-start-existing')).toBe('604800000')
    })

    it.sequential('says in one warning that --partitions or --replication-factor does not change a topic that exists, and sends to it as it is', async () => {
      await admin.createTopics({ topics: [{ topic: 'sim-existing', numPartitions: 2 }], waitForLeaders: true })
      const result = await brook(['simulate', '--bootstrap-server', broker.address, '--topic', 'sim-existing', '--partitions', '4', '--as-fast-as-possible', '--count', '20'])
      expect(result.code, result.stderr).toBe(0)
      expect(result.stderr).toBe('warning: topic sim-existing exists with 2 partitions, not the 4 asked for: the partition count applies only to a topic the run creates (brook topics add-partitions grows one; keys may then map to other partitions)\n')
      expect(result.stdout).toMatch(/^sent 20 readings to sim-existing in /)
      // So does --replication-factor (the topic has one replica on this node).
      const replicated = await brook(['simulate', '--bootstrap-server', broker.address, '--topic', 'sim-existing', '--replication-factor', '3', '--as-fast-as-possible', '--count', '5'])
      expect(replicated.code, replicated.stderr).toBe(0)
      expect(replicated.stderr).toBe('warning: topic sim-existing exists with 1 replica per partition, not the 3 asked for: the replication factor applies only to a topic the run creates\n')
      // -1 asks for the cluster's default, whatever the topic has.
      const defaulted = await brook(['simulate', '--bootstrap-server', broker.address, '--topic', 'sim-existing', '--replication-factor', '-1', '--as-fast-as-possible', '--count', '5'])
      expect([defaulted.code, defaulted.stderr]).toEqual([0, ''])
    })

    it.sequential('sends the readings it held back (late, out of order) before a counted run ends: the count is the fleet\'s first readings, none missing', async () => {
      const flags = { seed: 3, devices: 5, rate: 50, count: 300, lateFraction: 0.2, latenessMs: 1000 }
      const result = await brook([
        'simulate', '--bootstrap-server', broker.address, '--topic', 'sim-held', '--as-fast-as-possible', '--seed', String(flags.seed), '--devices', String(flags.devices),
        '--rate', String(flags.rate), '--count', String(flags.count), '--late-fraction', String(flags.lateFraction), '--lateness-ms', String(flags.latenessMs),
      ])
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(/^sent 300 readings to sim-held/)
      expect(result.stdout).toContain(', 0 readings held back and not sent')
      const startMs = Date.parse(/first slot at (\S+)/.exec(result.stdout)![1]!)
      const consumed = await readTopic(kafka, admin, 'sim-held')
      // The fleet's first 300 readings in slot order: delays change when a reading is sent, never which readings there are.
      const onTime = new Fleet({ ...resolveFleetOptions({ bootstrapServers: [broker.address], ...flags, lateFraction: 0, outOfOrderFraction: 0 }), startMs })
      const slotOrder = (r: { ts: number; deviceId: string; sensor: string }) => `${String(r.ts).padStart(15, '0')} ${r.deviceId} ${r.sensor}`
      const expected = Array.from({ length: 300 }, () => onTime.next().reading)
      expect(consumed.map((r) => r.reading).sort((a, b) => (slotOrder(a) < slotOrder(b) ? -1 : 1))).toEqual(expected)
      // Some went out late, after readings more than the lateness newer, and the summary counts them as sent.
      const late = consumed.filter((r) => r.headers['brook-delivery'] === 'late').length
      expect(late).toBeGreaterThan(0)
      expect(result.stdout).toContain(`, ${late} late;`)
    })

    it.sequential('replays a timestamp,value CSV as readings with their own event times, skipping and reporting a bad row', async () => {
      const csv = join(dir, 'boiler.csv')
      writeFileSync(csv, ['timestamp,value', '2014-01-01 00:00:00,20.5', '2014-01-01 00:05:00,21', '2014-01-01 00:10:00,oops', '2014-01-01 00:15:00,22.25', ''].join('\n'))
      const result = await brook(['simulate', '--bootstrap-server', broker.address, '--replay', csv, '--sensor', 'temperature', '--device-id', 'boiler-1', '--topic', 'sim-replay', '--as-fast-as-possible'])
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(/^replayed 3 of 3 readings to sim-replay \(created\) in /)
      expect(result.stdout).toContain(`${csv}: device boiler-1, temperature (°C), 3 rows, 2014-01-01T00:00:00.000Z to 2014-01-01T00:15:00.000Z`)
      expect(result.stdout).toContain('1 bad row skipped')
      expect(result.stderr).toContain(`${csv}:4: skipped`)
      // Historical event times are kept as record timestamps, so the topic it creates never expires them.
      expect(result.stderr).toContain('retention.ms=-1')

      const consumed = await readTopic(kafka, admin, 'sim-replay')
      const ts = (text: string) => Date.parse(`${text}Z`)
      expect(consumed.map((r) => ({ key: r.key, reading: r.reading, timestamp: r.timestamp }))).toEqual(
        [
          ['2014-01-01T00:00:00', 20.5],
          ['2014-01-01T00:05:00', 21],
          ['2014-01-01T00:15:00', 22.25],
        ].map(([time, value]) => ({
          key: 'boiler-1',
          reading: { deviceId: 'boiler-1', sensor: 'temperature', value, unit: '°C', ts: ts(time as string) },
          timestamp: ts(time as string),
        })),
      )
    })

    it.sequential('runs until Ctrl-C without --count, then prints its summary and exits 0', async () => {
      const run = spawnBrook(['simulate', '--bootstrap-server', broker.address, '--topic', 'sim-endless', '--devices', '3', '--rate', '200'])
      const sent = async () => ((await admin.fetchTopicOffsets('sim-endless').catch(() => [])) as { high: string }[]).reduce((sum, p) => sum + Number(p.high), 0)
      await until(async () => (await sent()) >= 100)
      run.child.kill('SIGINT')
      expect(await run.exited).toBe(0)
      const reported = Number(/^sent ([\d,]+) readings to sim-endless/.exec(run.stdout())![1]!.replace(/,/g, ''))
      expect(run.stdout()).toContain('; interrupted')
      // Only acknowledged readings are counted: the topic holds exactly what the summary says was sent.
      expect(await sent()).toBe(reported)
      // Every slot is accounted for: sent, in a gap, or made and not sent (held back, or waiting for its time).
      const [, slots, gapped, held] = /\n {2}([\d,]+) slots \(([\d,]+) in gaps\), ([\d,]+) readings? held back and not sent\n/.exec(run.stdout())!.map((n) => Number(n.replace(/,/g, '')))
      expect(reported + gapped! + held!, run.stdout()).toBe(slots)
    })

    it.sequential('refuses a --gap-fraction at which every device would stay quiet for good, rather than spinning without sending', async () => {
      // 100 devices of 4 sensors at 100 readings/s read every 4 s: gaps of 8 to 75 rounds, so the fleet tops out below
      // 41.5 / 42.5. 10,000 devices at 100 readings/s read every 400 s: one-round gaps, below 0.5.
      const cases: [string[], string][] = [
        [['--gap-fraction', '1'], '--gap-fraction) must be below 0.9764 with 100 devices of 4 sensors at 100 readings/s'],
        [['--gap-fraction', '0.99'], '--gap-fraction) must be below 0.9764'],
        [['--gap-fraction', '0.6', '--devices', '10000'], '--gap-fraction) must be below 0.5 with 10000 devices'],
        [['--gap-fraction', '1', '--devices', '1', '--sensors', 'temperature'], '--gap-fraction) must be below 0.9999 with 1 device of 1 sensor at 100 readings/s'],
      ]
      for (const [args, message] of cases) {
        const run = spawnBrook(['simulate', '--bootstrap-server', broker.address, '--topic', 'sim-quiet', '--count', '3', '--as-fast-as-possible', ...args])
        await until(() => run.child.exitCode !== null, `brook simulate ${args.join(' ')} to exit`, { timeoutMs: 20_000, context: run.stderr })
        expectOneLineError({ code: await run.exited, stderr: run.stderr() }, message)
      }
      // Just below the limit, a device still reads now and then, and a counted run ends.
      const result = await brook(['simulate', '--bootstrap-server', broker.address, '--topic', 'sim-quiet', '--count', '3', '--as-fast-as-possible', '--gap-fraction', '0.97'])
      expect(result.stderr).not.toContain('brook:')
      expect(result.code).toBe(0)
    })

    it.sequential('says in one line that the cluster has no SASL when --kafka-config asks for it', async () => {
      const config = join(dir, 'sasl.json')
      writeFileSync(config, JSON.stringify({ sasl: { mechanism: 'scram-sha-512', username: 'sensor', password: 'secret' } }))
      const result = await brook(['simulate', '--bootstrap-server', broker.address, '--count', '5', '--kafka-config', config])
      expectOneLineError(result, `cannot connect to ${broker.address}: the cluster does not support SASL (it answers SaslHandshake ILLEGAL_SASL_STATE, as a PLAINTEXT listener does; Brook has no SASL)`)
    })

    it.sequential('takes --replication-factor for the topic it creates, and says in one line when the cluster has fewer brokers', async () => {
      const result = await brook(['simulate', '--bootstrap-server', broker.address, '--topic', 'sim-replicas', '--count', '5', '--replication-factor', '2'])
      expectOneLineError(result, 'cannot create topic sim-replicas: Topic creation errors: INVALID_REPLICATION_FACTOR')
      expect(result.stderr).toContain('; replicationFactor 2 is more than the brokers alive: set replicationFactor (--replication-factor) to at most their number')
      const replay = join(dir, 'one-replica.csv')
      writeFileSync(replay, '2024-05-01T00:00:00Z,1\n')
      const fits = await brook(['simulate', '--bootstrap-server', broker.address, '--topic', 'sim-one-replica', '--replay', replay, '--sensor', 'temperature', '--replication-factor', '1'])
      expect(fits.code, fits.stderr).toBe(0)
      expect(fits.stdout).toMatch(/^replayed 1 of 1 reading to sim-one-replica \(created\)/)
    })
  })

  describe('without one', { concurrent: true }, () => {
    it.sequential('refuses bad flags in one line, before connecting', async () => {
      const nowhere = ['--bootstrap-server', '127.0.0.1:1']
      const cases: [string[], string][] = [
        [['--devices', '0'], '--devices must be a whole number from 1'],
        [['--devices', 'many'], "--devices must be a whole number from 1 to 10000000, not 'many'"],
        [['--rate', '-5'], '--rate must be a number above 0'],
        [['--late-fraction', '1.5'], '--late-fraction'],
        [['--sensors', 'temperature,smell'], 'smell'],
        [['--speedup', '2', '--as-fast-as-possible'], '--as-fast-as-possible'],
        [['--count', '5', '--duration-ms', '1000'], "option '--count <n>' cannot be used with option '--duration-ms <ms>'"],
        [['--duration-ms', '1000', '--count', '5'], "option '--count <n>' cannot be used with option '--duration-ms <ms>'"],
        [['--replay', join(dir, 'x.csv'), '--devices', '3'], '--devices does not apply to --replay'],
        [['--replay', join(dir, 'x.csv'), '--count', '5'], '--count does not apply to --replay'],
        [['--replay', join(dir, 'x.csv'), '--duration-ms', '1000'], '--duration-ms does not apply to --replay'],
        // A missing file is said so plainly, before its name is asked for a sensor.
        [['--replay', join(dir, 'missing.csv'), '--sensor', 'temperature'], `cannot read ${join(dir, 'missing.csv')}: no such file`],
        [['--replay', join(dir, 'missing.csv')], `cannot read ${join(dir, 'missing.csv')}: no such file`],
        // A directory is said so, with or without --sensor, with how to name its files.
        [['--replay', dir], `cannot read ${dir}: it is a directory; name the CSV files in it (a shell glob such as ${join(dir, '*.csv')} works)`],
        [['--replay', dir, '--sensor', 'temperature'], `cannot read ${dir}: it is a directory; name the CSV files in it`],
        [['--replication-factor', '0'], "--replication-factor must be -1 (the cluster's default) or between 1 and 32767"],
        [['--bogus'], "unknown option '--bogus'"],
        [['--bootstrap-server', 'no-port'], '--bootstrap-server'],
        [['--kafka-config', join(dir, 'absent.json')], 'cannot read'],
      ]
      const results = await Promise.all(cases.map(([args]) => brook(['simulate', ...nowhere, ...args])))
      results.forEach((result, i) => expectOneLineError(result, cases[i]![1]))
    })

    it.sequential('refuses a replay with no readable row, after its warnings about the bad ones, rather than replaying nothing and exiting 0', async () => {
      const nowhere = ['--bootstrap-server', '127.0.0.1:1']
      const headerOnly = join(dir, 'header-only.csv')
      const garbage = join(dir, 'garbage.csv')
      writeFileSync(headerOnly, 'timestamp,value\n')
      writeFileSync(garbage, 'garbage\nmore,garbage\n')
      expectOneLineError(await brook(['simulate', ...nowhere, '--replay', headerOnly, '--sensor', 'temperature']), `no readable timestamp,value rows in ${headerOnly}: nothing to replay`)
      const bad = await brook(['simulate', ...nowhere, '--replay', garbage, '--sensor', 'temperature'])
      expect(bad.code).toBe(1)
      expect(lines(bad.stderr)).toEqual([
        `warning: ${garbage}:1: skipped: expected 2 fields, found 1`,
        `warning: ${garbage}:2: skipped: unparsable timestamp 'more'`,
        `brook: no readable timestamp,value rows in ${garbage} (2 bad rows skipped): nothing to replay`,
      ])
    })

    it.sequential('says in one line that it cannot reach the cluster', async () => {
      expectOneLineError(await brook(['simulate', '--bootstrap-server', '127.0.0.1:1', '--count', '5']), 'cannot connect to 127.0.0.1:1')
    })

    it.sequential('says on Ctrl-C before it ever connected that nothing was sent, not that it waits for a batch in flight', async () => {
      // The first connection attempt shows that the run is connecting (its Ctrl-C handler is set by then); the port is
      // closed at once, so every later attempt is refused, as at an address where no broker runs.
      const listener = createServer()
      const attempted = new Promise<void>((resolve) =>
        listener.once('connection', (socket) => {
          socket.destroy()
          listener.close()
          resolve()
        }),
      )
      await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
      const address = `127.0.0.1:${(listener.address() as AddressInfo).port}`
      // kafkajs's connection attempts outlast the 3 s before the stop says what it waits for.
      const config = join(dir, 'slow-connect.json')
      writeFileSync(config, JSON.stringify({ retry: { retries: 3, initialRetryTime: 2000, maxRetryTime: 4000 } }))
      const run = spawnBrook(['simulate', '--bootstrap-server', address, '--count', '5', '--kafka-config', config])
      await attempted
      run.child.kill('SIGINT')
      expect(await run.exited).toBe(1)
      expect(lines(run.stderr())).toEqual([
        `brook simulate: stopping: not connected to ${address} yet, so nothing was sent; waiting for kafkajs to connect or give up (is the cluster there?); Ctrl-C again exits at once`,
        expect.stringMatching(new RegExp(`^brook: cannot connect to ${address.replace(/\./g, '\\.')}: `)),
      ])
      expect(run.stdout()).toBe('')
    })

    /** A `brook simulate` run of three devices to `topic`, once the broker holds some of its readings. */
    async function simulateUntilWritten(address: string, topic: string, kafkaConfig: string): Promise<ReturnType<typeof spawnBrook>> {
      const run = spawnBrook(['simulate', '--bootstrap-server', address, '--topic', topic, '--devices', '3', '--rate', '200', '--kafka-config', kafkaConfig])
      const probe = new Kafka({ brokers: [address], logLevel: logLevel.NOTHING }).admin()
      await probe.connect()
      await until(async () => ((await probe.fetchTopicOffsets(topic).catch(() => [])) as { high: string }[]).some((p) => Number(p.high) > 0))
      await probe.disconnect()
      return run
    }

    it.sequential('says what a Ctrl-C waits for while the cluster is down, and prints the summary with the batch in flight when it fails', async () => {
      const doomed = await startBroker()
      // Retries of about 10 s in all: long enough for the stop to say what it waits for, short enough for the test.
      const config = join(dir, 'slow-retries.json')
      writeFileSync(config, JSON.stringify({ retry: { retries: 3, initialRetryTime: 2000, maxRetryTime: 4000 } }))
      try {
        const run = await simulateUntilWritten(doomed.address, 'sim-stop-down', config)
        await doomed.kill()
        run.child.kill('SIGINT')
        await until(() => run.stderr().includes('brook simulate: stopping: '), 'the stop to say what it waits for', { timeoutMs: 20_000, context: run.stderr })
        expect(lines(run.stderr()).at(-1)).toBe('brook simulate: stopping: waiting for the cluster to acknowledge the batch in flight (a node down?); Ctrl-C again exits without it and without the summary: the readings in flight may or may not have been written')
        // The summary is printed, and exit code 1 says that some readings may not have been written.
        expect(await run.exited, run.stderr()).toBe(1)
        expect(run.stdout()).toMatch(/^sent [\d,]+ readings? to sim-stop-down \(created\) in .*; interrupted\n/)
        expect(run.stdout()).toMatch(new RegExp(`\n  [\\d,]+ readings? in flight at the stop not acknowledged, and may or may not have been written \\(topic sim-stop-down: could not deliver readings after [\\d,]+ were sent: broker ${doomed.address.replace(/\./g, '\\.')} is unreachable \\(.+\\)\\)\n$`))
        expect(run.stderr()).not.toContain('brook: ')
      } finally {
        await doomed.kill()
        doomed.cleanup()
      }
    })

    it.sequential('says the cluster became unreachable, not that it refused readings, when the broker goes away during a run', async () => {
      const doomed = await startBroker()
      // Two retries instead of the simulator's seven (about 38 s, enough to ride out a node's failover): this is about
      // the message, not the wait.
      const config = join(dir, 'few-retries.json')
      writeFileSync(config, JSON.stringify({ retry: { retries: 2 } }))
      try {
        const run = await simulateUntilWritten(doomed.address, 'sim-gone', config)
        await doomed.kill()
        expect(await run.exited).toBe(1)
        expect(run.stderr()).toMatch(
          // The run's own lines (created topic ...) come first; the error is the last line.
          new RegExp(`^created topic sim-gone\n(warning: .*\n)*brook: topic sim-gone: could not deliver readings after \\d{1,3}(,\\d{3})* were sent: broker ${doomed.address.replace(/\./g, '\\.')} is unreachable \\(.+\\)\n$`),
        )
      } finally {
        await doomed.kill()
        doomed.cleanup()
      }
  })
  })
})
