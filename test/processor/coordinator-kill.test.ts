/**
 * exactly_once on a three-node cluster whose group coordinator is killed with kill -9 mid-run. The IoT pipeline runs
 * in a child process, committing every 150 ms, while an idempotent producer keeps sending readings of 12 devices to
 * three RF=3 partitions, so every task has a transaction open most of the time. About 1 s after the pipeline's
 * group first becomes Stable, the node FindCoordinator names as the group's coordinator is killed with kill -9 (the
 * group moves to another node; a commit in flight fails, and a task whose first transaction is aborted has no saved
 * position yet), and 10 s later it is started again on its data directory. The pipeline goes on; once it has
 * processed every reading and stopped cleanly, its read_committed output equals an uninterrupted computation of the
 * readings the input topic holds: every stats window, hopping average and threshold alert once, with the same values.
 * (This was a manual trial; it found an aborted first transaction whose records were never processed again, and an
 * exactly-once store ahead of the group's committed offset.)
 *
 * The reference is computed over the input as the topic holds it, since that is what the pipeline reads; every reading
 * the producer was told was written (acks=all) must be in it. kafkajs 2.2.4 resolves a send without writing a
 * partition whose leader moved to a broker that had already answered the same send (processor/runtime/whole-sends.ts):
 * written as a plain kafkajs loop, the feeder lost the batch in flight at the kill in most runs, and the pipeline's
 * transactions committed without an output partition in about one run in four. The feeder sends again what an
 * answer does not name, as the processor and the simulator do. (Its retry of a send over several partitions can also
 * write a batch twice, which the reference, the input as held, takes in; the summary says how many readings the input
 * holds twice.)
 */
import { afterEach, expect, test } from 'vitest'
import type { Kafka, Message } from 'kafkajs'
import { unanswered } from '../../processor/runtime/whole-sends.js'
import { agreedCoordinator, allUnfenced, QUICK_CLUSTER_ARGS, startCluster, type TestCluster } from '../helpers/cluster.js'
import { waitFor } from '../helpers/wait.js'
import { CoordinatorType } from '../../protocol/constants.js'
import { expectedStats, fleet, windowsOf, type FleetReading } from './fleet.js'
import { readSettled, stateDir, values, type ReadRecord } from './helpers.js'
import { startProcessor, type ProcessorProcess } from './processes.js'

const APP = 'coordinator-kill'
const TOPICS = { inputTopic: `${APP}-readings`, statsTopic: `${APP}-stats`, averagesTopic: `${APP}-avg`, alertsTopic: `${APP}-alerts`, lateTopic: `${APP}-late` }
const PARTITIONS = 3
const MINUTE = 60_000
const STATS_WINDOW_MS = MINUTE
const AVERAGE_WINDOW_MS = 2 * MINUTE
const AVERAGE_ADVANCE_MS = MINUTE
const GRACE_MS = 10_000
const ALERT_ABOVE = 100
/** How long after the group first becomes Stable its coordinator is killed, and how long it stays down. */
const KILL_AFTER_STABLE_MS = 1000
const DOWN_MS = 10_000

let cluster: TestCluster | undefined
let processor: ProcessorProcess | undefined
let feeder: ReturnType<typeof feed> | undefined
afterEach(async () => {
  await processor?.kill()
  await feeder?.finish().catch(() => undefined)
  await cluster?.destroy()
  processor = cluster = feeder = undefined
})

/**
 * The readings: 12 devices on 3 partitions, a reading a second for up to 4 hours of event time, about one in 2000 above
 * the alert threshold.
 */
function readings(): FleetReading[] {
  const all = fleet({ devices: 12, sensors: ['temperature'], readings: 4 * 3600, intervalMs: 1000, startMs: Date.UTC(2024, 0, 1), partitions: PARTITIONS, seed: 11 })
  for (let i = 997; i < all.length; i += 1999) all[i] = { ...all[i]!, value: 150 + (i % 7) }
  return all
}

/**
 * Sends `readings` in order, 5 seconds of event time (60 readings) at a time with a short pause between sends, through
 * an idempotent producer that rides out leader changes, until `finish` is called (or every reading is sent): the
 * pipeline has new input all along, so each commit interval opens a transaction. `sent` is how many were acknowledged.
 */
function feed(kafka: Kafka, topic: string, readings: readonly FleetReading[]) {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  let feeding = true
  let sent = 0
  const sending = (async () => {
    await producer.connect()
    try {
      while (feeding && sent < readings.length) {
        const chunk = readings.slice(sent, sent + 60)
        // kafkajs 2.2.4 resolves a send without writing a partition whose leader moved to a broker that had already
        // answered the same send (processor/runtime/whole-sends.ts): what the answer does not name is sent again.
        let left = [{ topic, messages: chunk.map(({ partition, ...r }): Message => ({ key: r.deviceId, value: JSON.stringify(r), partition })) }]
        for (let resends = 0; left.length > 0; resends++) {
          if (resends > 5) throw new Error(`${left[0]!.messages.length} readings unanswered after ${resends} sends`)
          left = unanswered(left, await producer.sendBatch({ topicMessages: left, acks: -1 }))
        }
        sent += chunk.length
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    } finally {
      await producer.disconnect()
    }
  })()
  // A send that fails for good is reported by `finish`, and named by `state` meanwhile.
  let failure: Error | null = null
  sending.catch((error: Error) => void (failure = error))
  return {
    get sent() {
      return sent
    },
    /** What the feeder has done, for a failure's message. */
    get state(): string {
      return `the feeder sent ${sent} of ${readings.length} readings${failure ? `, then failed: ${failure.message}` : feeding ? ', and is sending' : ''}`
    },
    get feeding() {
      return feeding && sent < readings.length
    },
    /** Stops sending; resolves once the send in flight is acknowledged. */
    async finish(): Promise<void> {
      feeding = false
      await sending
    },
  }
}

/** `deviceId|sensor|windowStart` -> the hopping windows' count and average, for the windows whose end + grace the partition's stream time reached. */
function expectedAverages(readings: readonly FleetReading[]): Map<string, { count: number; avg: number }> {
  const streamTime = new Map<number, number>()
  for (const r of readings) streamTime.set(r.partition, Math.max(streamTime.get(r.partition) ?? -Infinity, r.ts))
  const sums = new Map<string, { count: number; sum: number; end: number; partition: number }>()
  for (const r of readings) {
    // Every window [start, start + size) with start a multiple of the advance that holds r.ts.
    for (let start = Math.floor(r.ts / AVERAGE_ADVANCE_MS) * AVERAGE_ADVANCE_MS; start > r.ts - AVERAGE_WINDOW_MS; start -= AVERAGE_ADVANCE_MS) {
      const key = `${r.deviceId}|${r.sensor}|${start}`
      const s = sums.get(key) ?? { count: 0, sum: 0, end: start + AVERAGE_WINDOW_MS, partition: r.partition }
      s.count++
      s.sum += r.value
      sums.set(key, s)
    }
  }
  const out = new Map<string, { count: number; avg: number }>()
  for (const [key, s] of sums) if (s.end + GRACE_MS <= streamTime.get(s.partition)!) out.set(key, { count: s.count, avg: s.sum / s.count })
  return out
}

const windowKey = (v: Record<string, unknown>) => `${v.deviceId}|${v.sensor}|${v.windowStart}`

/** The records of `topic` once every window of `expected` is among them. */
async function windowsWritten(kafka: Kafka, topic: string, expected: ReadonlySet<string>): Promise<ReadRecord[]> {
  const absent = (records: ReadRecord[]) => {
    const keys = new Set(values(records).map(windowKey))
    return [...expected].filter((key) => !keys.has(key))
  }
  return readSettled(kafka, topic, (records) => absent(records).length === 0, (records) => {
    const lacking = absent(records)
    return `${lacking.length} of ${expected.size} windows not read, ${lacking.slice(0, 10).join(', ')}`
  })
}

/**
 * Each window `records` hold more than once, with where each copy is and which producer wrote its batch (id/epoch,
 * first sequence): what tells a batch a leader appended twice from work a pipeline did twice.
 */
function copies(topic: string, records: readonly ReadRecord[]): string[] {
  const byWindow = new Map<string, ReadRecord[]>()
  for (const r of records) {
    const key = windowKey(JSON.parse(r.value!) as Record<string, unknown>)
    byWindow.set(key, [...(byWindow.get(key) ?? []), r])
  }
  return [...byWindow]
    .filter(([, rs]) => rs.length > 1)
    .map(([key, rs]) => `${topic} ${key}: ${rs.map((r) => `p${r.partition}@${r.offset} (batch at ${r.batch.firstOffset}, producer ${r.batch.producerId}/${r.batch.producerEpoch}, sequence ${r.batch.firstSequence})`).join(' and ')}`)
}

test('the group coordinator\'s node killed with -9 while transactions are open: the read_committed output equals an uninterrupted run, each window once', async () => {
  cluster = await startCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })
  await allUnfenced(cluster)
  const kafka = cluster.kafka(APP)
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: TOPICS.inputTopic, numPartitions: PARTITIONS, replicationFactor: 3 }], waitForLeaders: true })
  const addresses = cluster.nodeIds.map((id) => cluster!.nodes.get(id)!.address)
  const sent = readings()
  const fed = feed(kafka, TOPICS.inputTopic, sent)
  feeder = fed
  const running = startProcessor(
    { ...TOPICS, statsWindow: '1m', grace: '10s', averageWindow: '2m', averageAdvance: '1m', thresholdAbove: ALERT_ABOVE, zScoreThreshold: 1e12 },
    {
      applicationId: APP,
      bootstrapServers: addresses,
      stateDir: stateDir(),
      processingGuarantee: 'exactly_once',
      commitIntervalMs: 150,
      idleTimeoutMs: 3_600_000,
      replicationFactor: 3,
      kafka: { retry: { retries: 100, initialRetryTime: 100, maxRetryTime: 1000 } },
    },
  )
  processor = running
  const processed = () => (running.metrics?.tasks ?? []).reduce((sum, t) => sum + (t.position === null ? 0n : BigInt(t.position)), 0n)

  await waitFor(`the pipeline's group to become Stable\n${running.output().slice(-2000)}`, async () => (await admin.describeGroups([APP])).groups[0]?.state === 'Stable', { timeoutMs: 90_000 })
  await new Promise((resolve) => setTimeout(resolve, KILL_AFTER_STABLE_MS))
  const coordinator = await agreedCoordinator(cluster!, APP, CoordinatorType.GROUP)
  const atKill = { commits: running.metrics?.commits ?? 0, processed: processed(), feeding: fed.feeding }
  await cluster.nodes.get(coordinator)!.kill()
  const killedOutput = cluster.nodes.get(coordinator)!.output()
  await admin.disconnect()
  // The kill landed while the group was Stable (above) and input was still coming.
  expect(atKill.feeding).toBe(true)

  await new Promise((resolve) => setTimeout(resolve, DOWN_MS))
  // Another process on the machine may have taken the node's port while it was down: it starts once the port is free.
  await waitFor(`node ${coordinator} to start again on its port`, () => cluster!.restart(coordinator), { timeoutMs: 60_000 })
  await allUnfenced(cluster)
  // The pipeline goes on with the restarted node back: it processes as many readings again as were sent by then.
  const sentAtRestart = BigInt(fed.sent)
  await waitFor('the pipeline to process readings sent after the restart', () => processed() >= sentAtRestart + 3000n, { timeoutMs: 120_000 }).catch((error: Error) => {
    throw new Error(`${error.message}; ${fed.state}, ${processed()} processed\n${running.output().slice(-3000)}`)
  })
  await fed.finish()
  feeder = undefined

  // What the input holds: every reading up to its partitions' ends, which the pipeline must have processed.
  await admin.connect()
  const inputCount = (await admin.fetchTopicOffsets(TOPICS.inputTopic)).reduce((sum, o) => sum + Number(o.high), 0)
  await admin.disconnect()
  const inputRecords = await readSettled(kafka, TOPICS.inputTopic, (records) => records.length >= inputCount)
  const inputEnds = new Map<string, bigint>()
  for (const r of inputRecords) inputEnds.set(`0_${r.partition}`, BigInt(r.offset) + 1n)
  await waitFor(`every reading processed\n${running.output().slice(-3000)}`, () => {
    const tasks = running.metrics?.tasks ?? []
    return tasks.length === PARTITIONS && tasks.every((t) => t.state === 'running' && t.position !== null && BigInt(t.position) >= inputEnds.get(t.id)!)
  }, { timeoutMs: 120_000 })
  const { late } = running.metrics!
  // A clean stop commits every task: all the pipeline will ever write is then in the topics.
  await running.stop()
  processor = undefined
  // Its counters once the final commit is durable: windows and alerts count what was committed, once.
  const counted = { windows: running.metrics!.windowsEmitted, alerts: running.metrics!.alerts }
  const log = running.output().split('\n').filter((line) => line !== '' && !line.startsWith('{'))

  // The reference is computed over the input as the topic holds it (what the pipeline read), in partition order.
  const input = inputRecords.map((r) => ({ ...(JSON.parse(r.value!) as Omit<FleetReading, 'partition'>), partition: r.partition }))
  const held = new Set(input.map((r) => `${r.deviceId}|${r.ts}`))
  const lost = sent.slice(0, fed.sent).filter((r) => !held.has(`${r.deviceId}|${r.ts}`))
  const inputTwice = input.length - held.size
  // Where the first lost reading would be: the offset of the first reading of its partition that comes after it.
  const lostAt = lost.length === 0 ? null : inputRecords.find((r) => r.partition === lost[0]!.partition && (JSON.parse(r.value!) as FleetReading).ts > lost[0]!.ts)?.offset
  const stats = expectedStats(input, STATS_WINDOW_MS, GRACE_MS)
  const averages = expectedAverages(input)
  const alerts = new Map([...stats].filter(([, s]) => s.max > ALERT_ABOVE).map(([key, s]) => [key, s.max]))
  const statsRecords = await windowsWritten(kafka, TOPICS.statsTopic, new Set(stats.keys()))
  const averagesRecords = await windowsWritten(kafka, TOPICS.averagesTopic, new Set(averages.keys()))
  const statsOut = windowsOf(values(statsRecords))
  const averagesOut = values(averagesRecords)
  const alertsOut = values(await windowsWritten(kafka, TOPICS.alertsTopic, new Set(alerts.keys())))
  const twice = [...copies(TOPICS.statsTopic, statsRecords), ...copies(TOPICS.averagesTopic, averagesRecords)]
  if (twice.length > 0) {
    // What the nodes said about transactions and coordinators, the killed node's first life included.
    const said = (name: string, output: string) => output.split('\n').filter((line) => /transaction|marker|coordinat|loaded|truncat|leader|fenced/i.test(line)).map((line) => `${name}: ${line}`)
    const nodeLines = [...said(`node ${coordinator} (killed)`, killedOutput), ...cluster.nodeIds.flatMap((id) => said(`node ${id}`, cluster!.nodes.get(id)!.output()))]
    console.log(`windows written twice:\n${twice.join('\n')}\nthe nodes' lines:\n${nodeLines.join('\n')}`)
  }
  console.log(`coordinator node ${coordinator} killed after ${atKill.commits} commits, with ${atKill.processed} of the ${input.length} readings (${fed.sent} acknowledged) processed, ${late} late, ${lost.length} acknowledged readings not in the input${lost.length > 0 ? ` (from ${JSON.stringify(lost[0])}, before offset ${lostAt})` : ''}, ${inputTwice} held twice; ${statsOut.windows.size} stats windows (${stats.size} expected, ${statsOut.duplicates} twice), ${averagesOut.length} averages (${averages.size} expected), ${alertsOut.length} alerts (${alerts.size} expected); counted ${counted.windows} windows and ${counted.alerts} alerts; the pipeline's log:\n${log.join('\n')}`)

  // Every reading acknowledged with acks=all is in the input (the feeder sends again what kafkajs left out).
  expect(lost).toEqual([])
  expect(late).toBe(0)
  expect(statsOut.duplicates).toBe(0)
  expect([...statsOut.windows.keys()].sort()).toEqual([...stats.keys()].sort())
  for (const [key, s] of stats) {
    const got = statsOut.windows.get(key)!
    expect({ key, count: got.count, min: got.min, max: got.max }).toEqual({ key, count: s.count, min: s.min, max: s.max })
    expect(got.avg).toBeCloseTo(s.avg, 9)
  }
  expect(averagesOut.map(windowKey).sort()).toEqual([...averages.keys()].sort())
  for (const a of averagesOut) {
    const want = averages.get(windowKey(a))!
    expect({ key: windowKey(a), count: a.count }).toEqual({ key: windowKey(a), count: want.count })
    expect(a.avg as number).toBeCloseTo(want.avg, 9)
  }
  expect(alertsOut.map((a) => [windowKey(a), a.value]).sort()).toEqual([...alerts].sort())
  // The work redone after the kill (the transactions it aborted) is not counted again.
  expect(counted).toEqual({ windows: statsRecords.length + averagesRecords.length, alerts: alertsOut.length })
}, 240_000)
