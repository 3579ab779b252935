/**
 * Two versions of a pipeline in one consumer group, as a rolling upgrade that adds a `keyBy` makes them: `brook
 * process` twice against one broker process, the instance that joins running the other topology. The group's leader
 * planned the tasks from its own topology alone: led by the version without the keyBy, the other instance was handed
 * a changelog partition it had not subscribed to (kafkajs drops it), no one read the repartition topic, and 49 of 100
 * windows came out wrong; led by the version with it, the other instance was handed the repartition tasks, dropped
 * them and processed nothing while lag grew; nothing was logged either way. Now the instance that joins stops with one
 * line and exit code 1, having processed nothing, and the leader's output is exact (assignor.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolve } from 'node:path'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { lines, spawnBrook } from '../cli/run-brook.js'
import { readSettled, stateDir, values } from './helpers.js'

const FIXTURE = resolve(import.meta.dirname, '../fixtures/pipelines/rolling-counts.mjs')

/** Event times from a minute boundary ten minutes ago: the fixture's 10 s windows divide it. */
const BASE = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000
const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5']
/** 60 readings, half a second apart, over the six keys: three windows of 10 s, all within the fixture's 1 min grace. */
const READINGS = Array.from({ length: 60 }, (_, i) => ({ k: KEYS[i % KEYS.length]!, v: i, ts: BASE + i * 500 }))

interface Window {
  k: string
  windowStart: number
  count: number
  total: number
}

/** The windows the readings make, by key and start. */
function expectedWindows(): Window[] {
  const windows = new Map<string, Window>()
  for (const { k, v, ts } of READINGS) {
    const windowStart = Math.floor(ts / 10_000) * 10_000
    const window = windows.get(`${k}@${windowStart}`) ?? { k, windowStart, count: 0, total: 0 }
    window.count++
    window.total += v
    windows.set(`${k}@${windowStart}`, window)
  }
  return [...windows.values()].sort(byKeyAndStart)
}

const byKeyAndStart = (a: Window, b: Window): number => (a.k < b.k ? -1 : a.k > b.k ? 1 : a.windowStart - b.windowStart)

let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-mixed-topologies' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

async function send(topic: string, readings: readonly { k: string; v: number; ts: number }[]): Promise<void> {
  await setting.producer.send({ topic, messages: readings.map((r) => ({ key: r.k, value: JSON.stringify(r) })) })
}

/** Sum of the high watermarks of a topic's partitions. */
async function recordsIn(topic: string): Promise<number> {
  const offsets = await setting.admin.fetchTopicOffsets(topic)
  return offsets.reduce((sum, p) => sum + Number(p.high), 0)
}

/** A failed wait's error with what an instance printed. */
const saying = (instance: { stderr: () => string }) => (error: Error): never => {
  throw new Error(`${error.message}; the instance printed:\n${instance.stderr()}`)
}

const versions = {
  'the aggregation on the source': {},
  'a keyBy before the aggregation': { ROLLING_KEY_BY: '1' },
} as const

describe('two topologies in one group', () => {
  for (const [leading, joining] of [
    ['the aggregation on the source', 'a keyBy before the aggregation'],
    ['a keyBy before the aggregation', 'the aggregation on the source'],
  ] as const) {
    it(`led by ${leading}, an instance with ${joining} stops in one line having processed nothing, and the leader's output is exact`, async () => {
      const prefix = leading === 'the aggregation on the source' ? 'mixed-v1-led' : 'mixed-v2-led'
      const app = `${prefix}-app`
      await setting.admin.createTopics({ topics: [{ topic: `${prefix}-in`, numPartitions: 3 }], waitForLeaders: true })
      const args = (dir: string): string[] => ['process', FIXTURE, '--bootstrap-server', setting.broker.address, '--application-id', app, '--state-dir', dir, '--commit-interval-ms', '100']
      await send(`${prefix}-in`, READINGS.slice(0, 30))

      const leader = spawnBrook(args(stateDir()), { env: { ROLLING_PREFIX: prefix, ...versions[leading] } })
      await waitFor(`${app} to run its tasks alone`, async () => {
        const [group] = (await setting.admin.describeGroups([app])).groups
        return group?.state === 'Stable' && group.members.length === 1 && group.members[0]!.memberAssignment.length > 0
      }, { timeoutMs: 60_000 }).catch(saying(leader))

      const joiner = spawnBrook(args(stateDir()), { env: { ROLLING_PREFIX: prefix, ...versions[joining] } })
      let joinerCode: number | null | undefined
      void joiner.exited.then((code) => (joinerCode = code))
      await waitFor(`the instance with ${joining} to stop`, () => joinerCode !== undefined, { timeoutMs: 60_000 }).catch(saying(joiner))
      expect(joinerCode).toBe(1)
      const said = lines(joiner.stderr())
      expect(said.at(-1)).toMatch(
        new RegExp(`^brook: the pipeline stopped after an error: another instance of application '${app}' runs a different topology \\(([0-9a-f]{16}) here, ((?!\\1)[0-9a-f]{16}) in the group's leader\\): a pipeline whose topology changed cannot be rolled; stop every instance of the old version first$`),
      )
      // No task of the joiner started (each says so in a line when it does), and it stopped without a stack trace.
      expect(joiner.stderr()).not.toMatch(/task \d+_\d+/)
      expect(joiner.stderr()).toContain(`brook process: ${app}: stopped; 0 records in`)
      expect(joiner.stderr()).not.toMatch(/\n\s+at /)

      await send(`${prefix}-in`, READINGS.slice(30))
      // Behind a keyBy, the readings reach the repartition topic before what closes their windows, which would make
      // them late in the task after it.
      if ('ROLLING_KEY_BY' in versions[leading]) await waitFor(`the readings in ${app}-by-k-repartition`, async () => (await recordsIn(`${app}-by-k-repartition`)) >= READINGS.length)
      // One reading per key ten minutes on closes each key's windows (its own stays open).
      await send(`${prefix}-in`, KEYS.map((k) => ({ k, v: 0, ts: BASE + 10 * 60_000 })))

      const expected = expectedWindows()
      const records = await readSettled(setting.kafka, `${prefix}-out`, (read) => read.length >= expected.length, () => leader.stderr(), { timeoutMs: 60_000 })
      const output = values<Omit<Window, 'k'>>(records).map(({ windowStart, count, total }, i) => ({ k: records[i]!.key!, windowStart, count, total }))
      expect(output.sort(byKeyAndStart)).toEqual(expected)
      leader.child.kill('SIGINT')
      expect(await leader.exited).toBe(0)
    }, 180_000)
  }
})
