/**
 * A restore from a compacted changelog. Every commit of a task writes its changed groups and then a marker under the
 * one key `\x00position`, so compaction keeps only the newest marker: the records of earlier commits that are still
 * the latest of their groups (a key that has not changed since) lose their marker. A restore that applied a commit
 * only when its marker came after its records dropped them: a task restored on an empty state directory forgot
 * every group not written by the last commit, and counted from zero again (a trial on a three-node cluster re-emitted
 * a session window closed 26 minutes earlier, from a stale local store the restore did not bring up to date).
 *
 * In at_least_once a commit cut short by a crash leaves records with no marker after them too. The rules of
 * runtime/changelog.ts tell the two apart; here, on changelogs written by a real pipeline or by hand with kafkajs in
 * the real format (encoded by the task store), and compacted by the broker:
 * - either guarantee: the groups earlier commits wrote last are kept;
 * - at_least_once: a group whose committed record was compacted away for the record of a commit cut short after it
 *   takes that record's value (its input then counts twice, at least once) instead of starting from zero;
 * - at_least_once: the first commit after a restore that found a cut-short record writes its group again, before
 *   its marker, so that no later restore applies the cut-short record with that marker.
 */
import { randomBytes } from 'node:crypto'
import type { Message } from 'kafkajs'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { count, planTopology, runPipeline, TopologyBuilder, type ProcessingGuarantee, type Topology } from '../../processor/index.js'
import { CompiledAggregations } from '../../processor/aggregate/aggregations.js'
import { COMMIT_HEADER, commitMessages } from '../../processor/runtime/changelog.js'
import { Groups } from '../../processor/runtime/groups.js'
import { KeyedAggregate, keyedEntryCodec } from '../../processor/runtime/keyed-operators.js'
import { CacheBudget, commitIdOf, COMMIT_ID_BYTES, encodeMarker, POSITION_KEY, TaskStore } from '../../processor/state/task-store.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { readSettled, readTopic, stateDir, values, type ReadRecord } from './helpers.js'

let setting: KafkajsBroker

beforeAll(async () => {
  // The log cleaner looks every 200 ms, so the changelog is compacted while the test waits.
  setting = await startKafkajsBroker({ ...FAST_GROUPS, logRetentionCheckIntervalMs: 200 }, { clientId: 'compacted-restore' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

/** A count per key of `input`, written to `output`: its aggregate is named `counts`. */
function counting(input: string, output: string): Topology {
  const b = new TopologyBuilder()
  b.stream<{ n: number }>(input).groupByKey().aggregate({ count: count() }, { name: 'counts' }).to(output)
  return b.build()
}

/** The changelog topic of the topology's one stateful sub-topology. */
function changelogOf(topology: Topology, applicationId: string): string {
  return planTopology(topology, { applicationId }).subtopologies[0]!.changelogTopic!
}

/**
 * Creates a one-partition input and its changelog, compacted as soon as the cleaner finds anything to remove (or,
 * with `compactionLagMs`, only records older than that).
 */
async function createTopics(input: string, changelog: string, options: { compactionLagMs?: number } = {}): Promise<void> {
  const lag = options.compactionLagMs === undefined ? [] : [{ name: 'min.compaction.lag.ms', value: String(options.compactionLagMs) }]
  await setting.admin.createTopics({
    topics: [
      { topic: input, numPartitions: 1 },
      { topic: changelog, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }, { name: 'min.cleanable.dirty.ratio', value: '0.01' }, ...lag] },
    ],
  })
}

/** Every record of the changelog now, read until `done` holds. */
function readChangelog(changelog: string, done: (records: ReadRecord[]) => boolean): Promise<ReadRecord[]> {
  return readTopic(setting.kafka, changelog, done)
}

const counted = (key: string, n: number) => (r: ReadRecord[]) => values(r).some((v) => v.key === key && v.count === n)

test.each<ProcessingGuarantee>(['exactly_once', 'at_least_once'])('%s: a task restored from a compacted changelog keeps the groups that earlier commits wrote last', async (guarantee) => {
  const [input, output, applicationId] = [`cr-${guarantee}-in`, `cr-${guarantee}-out`, `compacted-restore-${guarantee}`]
  const topology = counting(input, output)
  const changelog = changelogOf(topology, applicationId)
  await createTopics(input, changelog)
  const options = { applicationId, bootstrapServers: setting.broker.address, commitIntervalMs: 100, processingGuarantee: guarantee }
  const send = (key: string) => setting.producer.send({ topic: input, messages: [{ key, value: JSON.stringify({ n: 1 }) }] })

  const first = await runPipeline(topology, { ...options, stateDir: stateDir() })
  try {
    await send('a')
    await readTopic(setting.kafka, output, counted('a', 1))
    // Commits that change only b: each writes b and a marker, so a's record is left behind an older marker.
    for (let n = 1; n <= 3; n++) {
      await send('b')
      await readTopic(setting.kafka, output, counted('b', n))
    }
  } finally {
    await first.stop()
  }
  // Compacted: the markers of the last commits left, b's, and a's record without its own. The cleaner leaves a
  // partition's last batch alone: in exactly_once the last transaction's commit marker, so one commit marker is left;
  // in at_least_once the last commit's marker, so the one before it stays too.
  const markers = async () => (await readChangelog(changelog, (r) => r.length > 0)).filter((r) => r.key === POSITION_KEY).length
  await expect.poll(markers, { timeout: 30_000, interval: 500 }).toBe(guarantee === 'exactly_once' ? 1 : 2)

  // Another instance, on an empty state directory, restores the task from the changelog alone.
  const second = await runPipeline(topology, { ...options, stateDir: stateDir() })
  try {
    await send('a')
    const out = values(await readTopic(setting.kafka, output, (r) => values(r).filter((v) => v.key === 'a').length >= 2))
    expect(out.filter((v) => v.key === 'a').map((v) => v.count)).toEqual([1, 2])
  } finally {
    await second.stop()
  }
})

/**
 * The state of a task of `counting`, kept in a task store of its own and committed as the runner commits: each
 * commit's records and marker as `commitMessages` gives them to the producer, in the bytes a pipeline writes.
 */
class HandWrittenTask {
  private readonly accumulation = new CompiledAggregations({ count: count() })
  private readonly groups = new Groups(undefined)
  private readonly counts: KeyedAggregate

  private constructor(private readonly store: TaskStore) {
    this.counts = new KeyedAggregate(this.accumulation, store.register('counts', keyedEntryCodec(this.accumulation)))
  }

  static async open(): Promise<HandWrittenTask> {
    return new HandWrittenTask(await TaskStore.open(stateDir(), new CacheBudget(1 << 20)))
  }

  /** Counts one input record of `key`, as the `counts` aggregate does. */
  async count(key: string): Promise<void> {
    const { group, fields } = this.groups.of(key, undefined)
    await this.counts.process(key, group, fields, this.accumulation.extract({ n: 1 }), 0)
  }

  /** The messages of a commit of the groups counted since the last one, whose marker says the input resumes at `position`. */
  async commit(position: number): Promise<{ records: Message[]; marker: Message }> {
    const commit = randomBytes(COMMIT_ID_BYTES)
    const changes = await this.store.dirtyRecords(commit)
    const marker = { key: POSITION_KEY, value: encodeMarker({ position: String(position), streamTimes: {}, records: changes.length }, commit) }
    await this.store.commitLocal([...changes, marker], 0)
    return commitMessages({ changes, marker, commit: commit.toString('hex') }, 0)
  }

  async close(): Promise<void> {
    await this.store.close()
  }
}

/** Sends each message to `topic` in a request of its own (a batch of its own in the log, as a commit's chunks are). */
async function sendEach(topic: string, messages: readonly Message[]): Promise<void> {
  for (const message of messages) await setting.producer.send({ topic, messages: [message], acks: -1 })
}

test('at_least_once: a group whose committed record was compacted away for a cut-short commit keeps that commit\'s value, not zero', async () => {
  const [input, output, applicationId] = ['cs-in', 'cs-out', 'cut-short-compacted']
  const topology = counting(input, output)
  const changelog = changelogOf(topology, applicationId)
  await createTopics(input, changelog)
  // Input offsets 0, 1, 2.
  await setting.producer.send({ topic: input, messages: ['g', 'g', 'h'].map((key) => ({ key, value: JSON.stringify({ n: 1 }) })) })

  // What a task killed mid-commit left: commit B counted input 0 (g = 1), wrote its marker (position 1) and then the
  // group's offset; commit C counted inputs 1 and 2 (g = 2, h = 1) and wrote its records, in two requests, but was
  // killed before its marker.
  const task = await HandWrittenTask.open()
  try {
    await task.count('g')
    const b = await task.commit(1)
    await task.count('g')
    await task.count('h')
    const c = await task.commit(3)
    expect(c.records.map((m) => m.key)).toEqual(['\x01g', '\x01h'])
    await sendEach(changelog, [...b.records, b.marker, ...c.records])
  } finally {
    await task.close()
  }
  await setting.admin.setOffsets({ groupId: applicationId, topic: input, partitions: [{ partition: 0, offset: '1' }] })
  // Compacted: B's record of g (offset 0) gave way to C's; B's marker stays, the newest, now after none of its records.
  const compacted = () => readChangelog(changelog, (r) => r.some((m) => m.key === '\x01h')).then((r) => r.map((m) => [Number(m.offset), m.key]))
  await expect.poll(compacted, { timeout: 30_000, interval: 500 }).toEqual([[1, POSITION_KEY], [2, '\x01g'], [3, '\x01h']])

  // A task restored there on an empty state directory resumes at B's position, input 1, from C's counts: inputs 1
  // and 2 count twice (at least once), and g does not start from zero again (which would make it 1, input 0 lost).
  const pipeline = await runPipeline(topology, { applicationId, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 100, processingGuarantee: 'at_least_once' })
  try {
    const out = values(await readSettled(setting.kafka, output, (r) => counted('g', 3)(r) && counted('h', 2)(r), (r) => `output: ${JSON.stringify(values(r))}`))
    expect(out.map((v) => [v.key, v.count])).toEqual([['g', 3], ['h', 2]])
  } finally {
    await pipeline.stop()
  }
})

test('at_least_once: the first commit after a restore that left out a cut-short record writes its group again, before its marker', async () => {
  const [input, output, applicationId] = ['rw-in', 'rw-out', 'cut-short-rewritten']
  const topology = counting(input, output)
  const changelog = changelogOf(topology, applicationId)
  // Nothing is compacted while the test runs: the log shows every record the pipeline writes.
  await createTopics(input, changelog, { compactionLagMs: 3_600_000 })
  await setting.producer.send({ topic: input, messages: [{ key: 'g', value: JSON.stringify({ n: 1 }) }] })

  // Commit B counted the one input record; a commit C cut short after it wrote h (from input since deleted, say).
  const task = await HandWrittenTask.open()
  let cutShortCommit: string | null
  try {
    await task.count('g')
    const b = await task.commit(1)
    await task.count('h')
    const c = await task.commit(2)
    cutShortCommit = commitIdOf(c.marker.value as Buffer)
    await sendEach(changelog, [...b.records, b.marker, ...c.records])
  } finally {
    await task.close()
  }

  // C's record of h is left out (nothing was compacted), and the task has no input to process. Its first commit
  // writes h again as the store has it, which is not at all: a tombstone of another commit, then that commit's marker.
  const pipeline = await runPipeline(topology, { applicationId, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 100, processingGuarantee: 'at_least_once' })
  try {
    const records = await readChangelog(changelog, (r) => r.filter((m) => m.key === POSITION_KEY).length >= 2)
    expect(records.map((m) => [Number(m.offset), m.key, m.value === null ? null : 'state'])).toEqual([
      [0, '\x01g', 'state'],
      [1, POSITION_KEY, 'state'],
      [2, '\x01h', 'state'],
      [3, '\x01h', null],
      [4, POSITION_KEY, 'state'],
    ])
    expect(records[3]!.headers[COMMIT_HEADER]).toMatch(/^[0-9a-f]{16}$/)
    expect(records[3]!.headers[COMMIT_HEADER]).not.toBe(cutShortCommit)
  } finally {
    await pipeline.stop()
  }
})
