/**
 * `brook groups list|describe|delete|reset-offsets|delete-offsets` (the built CLI) against a real broker process, with a
 * real kafkajs consumer group as the thing described, and kafkajs's admin as the independent witness of what
 * reset-offsets commits and delete-offsets removes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker } from '../helpers/kafkajs-broker.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { waitFor } from '../helpers/wait.js'
import { committedOffsets } from './committed-offsets.js'
import { brook, expectOneLineError, lines } from './run-brook.js'

/** A table's rows (header left out), each split into its cells. */
function rows(stdout: string): string[][] {
  return lines(stdout).slice(1).map((line) => line.split(/\s+/))
}

describe('brook groups', () => {
  let broker: BrokerProcess
  let server: string[]
  let kafka: Kafka
  let admin: Admin
  let producer: Producer

  beforeAll(async () => {
    ;({ broker, kafka, admin, producer } = await startKafkajsBroker(FAST_GROUPS, { clientId: 'groups-cli-test' }))
    server = ['--bootstrap-server', broker.address]
  })
  afterAll(async () => {
    await stopKafkajsBroker({ broker, admin, producer })
  })

  const committed = (groupId: string, topic: string): Promise<string[]> => committedOffsets(admin, groupId, topic)

  /** `count` records to each of `partitions`, with timestamps `baseMs + i * 1000` for the i-th of a partition. */
  async function produce(topic: string, partitions: number[], count: number, baseMs = Date.now()): Promise<void> {
    await producer.send({
      topic,
      messages: partitions.flatMap((partition) =>
        Array.from({ length: count }, (_, i) => ({ partition, value: `${topic}-${partition}-${i}`, timestamp: String(baseMs + i * 1000) })),
      ),
    })
  }

  it('describes a live kafkajs group (offsets, lag, members, state), refuses to delete or reset it, and deletes it once empty', async () => {
    await admin.createTopics({ topics: [{ topic: 'readings', numPartitions: 4 }] })
    await produce('readings', [0, 1, 2], 10)
    const consumer: Consumer = kafka.consumer({ groupId: 'dashboard', sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200 })
    let memberId = ''
    let read = 0
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => (memberId = payload.memberId))
    try {
      await consumer.connect()
      await consumer.subscribe({ topics: ['readings'], fromBeginning: true })
      await consumer.run({ eachMessage: async () => void read++ })
      await waitFor('the consumer to read and commit 10 records in each of partitions 0-2', async () => {
        const offsets = await committed('dashboard', 'readings')
        return read === 30 && offsets.join() === '10,10,10,-1'
      })
      // Paused, the member stays in the group (it heartbeats) but reads no more: what is produced now is its lag.
      consumer.pause([{ topic: 'readings' }])
      await produce('readings', [0, 1, 2], 3)

      const described = await brook(['groups', 'describe', 'dashboard', ...server])
      expect(described).toMatchObject({ code: 0, stderr: '' })
      expect(lines(described.stdout)[0]!.split(/\s+/)).toEqual(['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID'])
      const owner = [memberId, '/127.0.0.1', 'groups-cli-test']
      expect(rows(described.stdout)).toEqual([
        ['dashboard', 'readings', '0', '10', '13', '3', ...owner],
        ['dashboard', 'readings', '1', '10', '13', '3', ...owner],
        ['dashboard', 'readings', '2', '10', '13', '3', ...owner],
        // Nothing committed for an empty partition: '-' for the offset and the lag, as Kafka's tool shows.
        ['dashboard', 'readings', '3', '-', '0', '-', ...owner],
      ])

      const members = await brook(['groups', 'describe', 'dashboard', '--members', ...server])
      expect(rows(members.stdout)).toEqual([['dashboard', memberId, '-', '/127.0.0.1', 'groups-cli-test', '4', 'readings(0,1,2,3)']])
      const state = await brook(['groups', 'describe', 'dashboard', '--state', ...server])
      expect(lines(state.stdout)[1]).toMatch(new RegExp(`^dashboard +${broker.address.replaceAll('.', '\\.')} \\(1\\) +RoundRobinAssigner +Stable +1$`))

      expect(rows((await brook(['groups', 'list', ...server])).stdout)).toContainEqual(['dashboard', 'consumer', 'Stable'])
      expect(rows((await brook(['groups', 'list', '--state', 'Empty', ...server])).stdout).map((r) => r[0])).not.toContain('dashboard')
      expect(rows((await brook(['groups', 'list', '--state', 'empty,STABLE', ...server])).stdout)).toContainEqual(['dashboard', 'consumer', 'Stable'])

      expect(await brook(['groups', 'delete', 'dashboard', ...server])).toMatchObject({
        code: 1,
        stdout: '',
        stderr: "brook: cannot delete group 'dashboard': NON_EMPTY_GROUP (the group has active members; stop its consumers first)\n",
      })
      for (const mode of [[], ['--execute']]) {
        const reset = await brook(['groups', 'reset-offsets', 'dashboard', '--all-topics', '--to-earliest', ...mode, ...server])
        expect(reset).toMatchObject({ code: 1, stdout: '' })
        expect(reset.stderr).toBe(
          "brook: offsets of group 'dashboard' can only be reset while the group is inactive, but it is Stable with 1 member; stop its consumers first\n",
        )
      }
      expect(await committed('dashboard', 'readings')).toEqual(['10', '10', '10', '-1'])
    } finally {
      await consumer.disconnect()
    }

    await waitFor('the group to be empty', async () => (await admin.describeGroups(['dashboard'])).groups[0]!.state === 'Empty')
    const empty = await brook(['groups', 'describe', 'dashboard', ...server])
    expect(empty).toMatchObject({ code: 0, stderr: "Consumer group 'dashboard' has no active members.\n" })
    expect(rows(empty.stdout)).toEqual([0, 1, 2].map((p) => ['dashboard', 'readings', String(p), '10', '13', '3', '-', '-', '-']))
    expect(await brook(['groups', 'describe', 'dashboard', '--members', ...server])).toMatchObject({ code: 0, stdout: '' })

    expect(await brook(['groups', 'delete', 'dashboard', ...server])).toMatchObject({ code: 0, stdout: 'Deleted consumer group dashboard.\n' })
    expect(await brook(['groups', 'describe', 'dashboard', ...server])).toMatchObject({ code: 1, stdout: '', stderr: "brook: consumer group 'dashboard' does not exist\n" })
    expect(rows((await brook(['groups', 'list', ...server])).stdout).map((r) => r[0])).not.toContain('dashboard')
    expect(await committed('dashboard', 'readings')).toEqual(['-1', '-1', '-1', '-1'])
  })

  it('resets the offsets of an inactive group: a dry run prints the plan and changes nothing, --execute commits it', async () => {
    await admin.createTopics({ topics: [{ topic: 'ledger', numPartitions: 2 }] })
    // The i-th record of each partition is stamped base + i seconds, so a time picks an offset.
    const base = Date.UTC(2024, 4, 1, 12, 0, 0)
    await produce('ledger', [0, 1], 10, base)
    const reset = (...args: string[]) => brook(['groups', 'reset-offsets', 'billing', ...args, ...server])

    // A group that does not exist yet can be given offsets (Kafka allows Dead as well as Empty).
    const initial = await reset('--topic', 'ledger', '--to-latest', '--execute')
    expect(initial).toMatchObject({ code: 0, stderr: '' })
    expect(rows(initial.stdout)).toEqual([['billing', 'ledger', '0', '10'], ['billing', 'ledger', '1', '10']])
    expect(await committed('billing', 'ledger')).toEqual(['10', '10'])

    const dryRun = await reset('--all-topics', '--to-earliest')
    expect(dryRun.code).toBe(0)
    expect(lines(dryRun.stdout)[0]!.split(/\s+/)).toEqual(['GROUP', 'TOPIC', 'PARTITION', 'NEW-OFFSET'])
    expect(rows(dryRun.stdout)).toEqual([['billing', 'ledger', '0', '0'], ['billing', 'ledger', '1', '0']])
    expect(dryRun.stderr).toBe('Dry run: nothing was committed. Add --execute to reset these offsets.\n')
    expect(await committed('billing', 'ledger')).toEqual(['10', '10'])

    expect((await reset('--topic', 'ledger', '--shift-by', '-3', '--execute')).code).toBe(0)
    expect(await committed('billing', 'ledger')).toEqual(['7', '7'])

    // Past the log end: the log end, with a notice, as Kafka's tool does; only the partition named moves.
    const clamped = await reset('--topic', 'ledger:1', '--to-offset', '50', '--execute')
    expect(clamped).toMatchObject({ code: 0, stderr: 'brook: new offset 50 is past the log end offset of ledger-1; using 10\n' })
    expect(rows(clamped.stdout)).toEqual([['billing', 'ledger', '1', '10']])
    expect(await committed('billing', 'ledger')).toEqual(['7', '10'])

    const byTime = await reset('--topic', 'ledger', '--to-datetime', new Date(base + 4500).toISOString(), '--execute')
    expect(rows(byTime.stdout)).toEqual([['billing', 'ledger', '0', '5'], ['billing', 'ledger', '1', '5']])
    expect(await committed('billing', 'ledger')).toEqual(['5', '5'])

    // The describe of a group that has only committed offsets (never a member).
    const described = await brook(['groups', 'describe', 'billing', ...server])
    expect(described.stderr).toBe("Consumer group 'billing' has no active members.\n")
    expect(rows(described.stdout)).toEqual([
      ['billing', 'ledger', '0', '5', '10', '5', '-', '-', '-'],
      ['billing', 'ledger', '1', '5', '10', '5', '-', '-', '-'],
    ])

    const noPartition = await reset('--topic', 'ledger:7', '--to-earliest')
    expect(noPartition).toMatchObject({ code: 1, stderr: "brook: topic 'ledger' has 2 partitions; there is no partition 7\n" })
    const noTopic = await reset('--topic', 'nowhere', '--to-earliest')
    expect(noTopic).toMatchObject({ code: 1, stderr: "brook: topic 'nowhere': UNKNOWN_TOPIC_OR_PARTITION (the topic does not exist)\n" })
    const noCommit = await brook(['groups', 'reset-offsets', 'newcomer', '--topic', 'ledger', '--shift-by', '1', ...server])
    expect(noCommit).toMatchObject({ code: 1, stderr: 'brook: cannot shift the offset of ledger-0: the group has no committed offset for it\n' })
  })

  it('deletes offsets of some topics or partitions (kafka-consumer-groups.sh --delete-offsets), keeps those a live member subscribes to, and says when the group does not exist', async () => {
    await admin.createTopics({ topics: [{ topic: 'audit', numPartitions: 2 }, { topic: 'payments', numPartitions: 3 }, { topic: 'live', numPartitions: 1 }] })
    await produce('audit', [0, 1], 4)
    await produce('payments', [0, 1, 2], 4)
    await produce('live', [0], 4)
    // Offsets committed by Brook's own reset-offsets, to a group without members.
    for (const topic of ['audit', 'payments']) {
      expect((await brook(['groups', 'reset-offsets', 'keeper', '--topic', topic, '--to-latest', '--execute', ...server])).code).toBe(0)
    }
    const deleteOffsets = (groupId: string, ...args: string[]) => brook(['groups', 'delete-offsets', groupId, ...args, ...server])

    // Kafka's words, its typo included, then the table.
    expect(await deleteOffsets('keeper', '--topic', 'audit')).toEqual({
      code: 0,
      stdout: 'Request succeed for deleting offsets with topic audit group keeper\n\nTOPIC PARTITION STATUS\naudit 0         Successful\naudit 1         Successful\n',
      stderr: '',
    })
    expect(await committed('keeper', 'audit')).toEqual(['-1', '-1'])
    expect(rows((await brook(['groups', 'describe', 'keeper', ...server])).stdout).map((row) => row.slice(1, 4))).toEqual([
      ['payments', '0', '4'],
      ['payments', '1', '4'],
      ['payments', '2', '4'],
    ])

    const some = await deleteOffsets('keeper', '--topic', 'payments:0,2')
    expect(some).toMatchObject({ code: 0, stderr: '' })
    expect(lines(some.stdout)).toEqual(['Request succeed for deleting offsets with topic payments:0,2 group keeper', '', 'TOPIC    PARTITION STATUS', 'payments 0         Successful', 'payments 2         Successful'])
    expect(await committed('keeper', 'payments')).toEqual(['-1', '4', '-1'])

    // Errors of single partitions are rows of the table (Kafka's tool prints the exception there), and fail the command.
    const missing = await deleteOffsets('keeper', '--topic', 'nowhere', '--topic', 'payments:1,7')
    expect(missing.code).toBe(1)
    expect(lines(missing.stdout)).toEqual([
      'TOPIC    PARTITION    STATUS',
      'nowhere  Not Provided Error: UNKNOWN_TOPIC_OR_PARTITION',
      'payments 1            Successful',
      'payments 7            Error: UNKNOWN_TOPIC_OR_PARTITION',
    ])
    expect(missing.stderr).toBe("brook: cannot delete offsets of group 'keeper' for 2 partitions; STATUS says why\n")
    expect(await committed('keeper', 'payments')).toEqual(['-1', '-1', '-1'])

    // A live member subscribes to 'live': its offsets stay, those of 'audit' (committed before it joined) go.
    expect((await brook(['groups', 'reset-offsets', 'watchers', '--topic', 'audit', '--to-latest', '--execute', ...server])).code).toBe(0)
    const consumer: Consumer = kafka.consumer({ groupId: 'watchers', sessionTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200 })
    try {
      await consumer.connect()
      await consumer.subscribe({ topics: ['live'], fromBeginning: true })
      await consumer.run({ eachMessage: async () => {} })
      await waitFor('the consumer to commit its offset of live-0', async () => (await committed('watchers', 'live')).join() === '4')
      const subscribed = await deleteOffsets('watchers', '--topic', 'live', '--topic', 'audit')
      expect(subscribed.code).toBe(1)
      expect(lines(subscribed.stdout)).toEqual(['TOPIC PARTITION STATUS', 'audit 0         Successful', 'audit 1         Successful', 'live  0         Error: GROUP_SUBSCRIBED_TO_TOPIC'])
      expect(subscribed.stderr).toBe("brook: cannot delete offsets of group 'watchers' for 1 partition; STATUS says why\n")
      expect(await committed('watchers', 'live')).toEqual(['4'])
      expect(await committed('watchers', 'audit')).toEqual(['-1', '-1'])
    } finally {
      await consumer.disconnect()
    }

    expectOneLineError(await deleteOffsets('nobody', '--topic', 'audit'), "cannot delete offsets of group 'nobody': GROUP_ID_NOT_FOUND (the group does not exist)")
    expectOneLineError(await deleteOffsets('keeper', '--topic', 'audit:x'), "--topic takes topic or topic:partition,partition..., not 'audit:x'")
    expectOneLineError(await deleteOffsets('keeper'), "required option '--topic <topic[:partitions]>' not specified")
  })
})
