/**
 * `brook consume <topic> --group <id>` (the built CLI, kafkajs inside) against a real broker process: members share the
 * partitions, every record is read once, what was printed is what is committed, a restart resumes there, and SIGTERM
 * leaves the group as Ctrl-C does. A member
 * whose group coordinator cannot be found (a proxy swallows the answer to its FindCoordinator, and kafkajs gives up
 * for good) is replaced after a backoff, as Kafka's console consumer keeps looking, and reads every record once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AssignerProtocol, type Admin, type Producer } from 'kafkajs'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker } from '../helpers/kafkajs-broker.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { waitFor } from '../helpers/wait.js'
import { committedOffsets } from './committed-offsets.js'
import { asksForGroup, brokerBehindProxy } from '../helpers/tcp-proxy.js'
import { findCoordinator } from '../../protocol/messages/find-coordinator.js'
import { brook, kcat, lines, spawnBrook } from './run-brook.js'

describe('brook consume --group', () => {
  let broker: BrokerProcess
  let server: string[]
  let admin: Admin
  let producer: Producer

  beforeAll(async () => {
    ;({ broker, admin, producer } = await startKafkajsBroker(FAST_GROUPS, { clientId: 'consume-group-test' }))
    server = ['--bootstrap-server', broker.address]
  })
  afterAll(async () => {
    await stopKafkajsBroker({ broker, admin, producer })
  })

  const committed = (groupId: string, topic: string): Promise<string[]> => committedOffsets(admin, groupId, topic)

  it('two members split the partitions and read every record once; a restart resumes from the committed offsets', async () => {
    await admin.createTopics({ topics: [{ topic: 'meters', numPartitions: 4 }] })
    const args = ['consume', 'meters', '--group', 'meter-readers', '--from-beginning', '--print-partition', ...server]
    const members = [spawnBrook(args), spawnBrook(args)]
    try {
      // Produce only once both own partitions, so that each record is read by the member it was assigned to.
      await waitFor('a Stable group of two members with two partitions each', async () => {
        const [group] = (await admin.describeGroups(['meter-readers'])).groups
        if (group!.state !== 'Stable' || group!.members.length !== 2) return false
        return group!.members.every((m) => AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment.meters?.length === 2)
      })
      const values = Array.from({ length: 40 }, (_, i) => `reading-${i}`)
      await producer.send({ topic: 'meters', messages: values.map((value, i) => ({ partition: i % 4, value })) })
      const read = (): string[][] => members.map((m) => lines(m.stdout()))
      await waitFor('all 40 records to be printed', () => read().flat().length >= 40)
      await waitFor('the commits to reach the end of every partition', async () => (await committed('meter-readers', 'meters')).join() === '10,10,10,10')

      const [first, second] = read().map((output) => output.map((line) => line.split('\t') as [string, string]))
      expect([...first!, ...second!].map(([, value]) => value).sort()).toEqual([...values].sort())
      const partitionsOf = (output: [string, string][]): string[] => [...new Set(output.map(([partition]) => partition))].sort()
      expect(partitionsOf(first!)).toHaveLength(2)
      expect(partitionsOf(second!)).toHaveLength(2)
      expect([...partitionsOf(first!), ...partitionsOf(second!)].sort()).toEqual(['Partition:0', 'Partition:1', 'Partition:2', 'Partition:3'])

      // Ctrl-C: each member leaves the group cleanly and reports its count.
      for (const member of members) member.child.kill('SIGINT')
      expect(await Promise.all(members.map((m) => m.exited))).toEqual([0, 0])
      const total = (n: number): string => `Processed a total of ${n} ${n === 1 ? 'message' : 'messages'}\n`
      expect(members.map((m) => m.stderr()).sort()).toEqual([total(first!.length), total(second!.length)].sort())
    } finally {
      for (const member of members) member.child.kill('SIGKILL')
    }
    await waitFor('the group to be empty', async () => (await admin.describeGroups(['meter-readers'])).groups[0]!.state === 'Empty')

    // A restarted member starts at the committed offsets: --from-beginning only applies where there are none.
    await producer.send({ topic: 'meters', messages: Array.from({ length: 8 }, (_, i) => ({ partition: i % 4, value: `late-${i}` })) })
    // --max-messages ends it: an idle timeout counts from joining the group, and a loaded machine can take longer
    // than a short one before the first fetch comes back. A member that started from the beginning would print old
    // records instead.
    const restarted = await brook(['consume', 'meters', '--group', 'meter-readers', '--from-beginning', '--max-messages', '8', '--timeout-ms', '30000', ...server])
    expect(restarted.code, restarted.stderr).toBe(0)
    expect(lines(restarted.stdout).sort()).toEqual(Array.from({ length: 8 }, (_, i) => `late-${i}`).sort())
    expect(await committed('meter-readers', 'meters')).toEqual(['12', '12', '12', '12'])
  })

  it('leaves the group on SIGTERM, as on Ctrl-C: the group is empty as soon as the process has exited', async () => {
    await admin.createTopics({ topics: [{ topic: 'gauges', numPartitions: 2 }] })
    await producer.send({ topic: 'gauges', messages: [{ partition: 0, value: 'gauge-0' }, { partition: 1, value: 'gauge-1' }] })
    const member = spawnBrook(['consume', 'gauges', '--group', 'gauge-readers', '--from-beginning', ...server])
    try {
      await waitFor('both records to be printed', () => lines(member.stdout()).length >= 2)
      await waitFor('the commits to reach the end of both partitions', async () => (await committed('gauge-readers', 'gauges')).join() === '1,1')
      member.child.kill('SIGTERM')
      expect(await member.exited).toBe(0)
      expect(member.stderr()).toBe('Processed a total of 2 messages\n')
      // Had it not left, its member would hold both partitions until its session timed out (kafkajs: 30 s).
      const [group] = (await admin.describeGroups(['gauge-readers'])).groups
      expect([group!.state, group!.members.length]).toEqual(['Empty', 0])
    } finally {
      member.child.kill('SIGKILL')
    }
  })

  it('commits exactly what --max-messages printed, in the same format as without a group', async () => {
    await brook(['topics', 'create', 'tickets', '--partitions', '1', ...server])
    const input = Array.from({ length: 10 }, (_, i) => `key-${i}:ticket-${i}`).join('\n')
    expect((await brook(['produce', 'tickets', '--key-separator', ':', '--header', 'source=cli', ...server], { input })).code).toBe(0)
    const print = ['--print-key', '--print-headers', '--print-offset', '--print-partition', '--print-timestamp']

    const first = await brook(['consume', 'tickets', '--group', 'support', '--from-beginning', '--max-messages', '3', ...print, ...server])
    expect(first).toMatchObject({ code: 0, stderr: 'Processed a total of 3 messages\n' })
    expect(await committed('support', 'tickets')).toEqual(['3'])
    const second = await brook(['consume', 'tickets', '--group', 'support', '--from-beginning', '--max-messages', '7', ...print, ...server])
    expect(second.code).toBe(0)
    expect(await committed('support', 'tickets')).toEqual(['10'])

    const plain = await brook(['consume', 'tickets', '--from-beginning', '--timeout-ms', '300', ...print, ...server])
    expect(lines(first.stdout + second.stdout)).toEqual(lines(plain.stdout))
    expect(lines(first.stdout)[0]).toMatch(/^CreateTime:\d+\tPartition:0\tOffset:0\tsource:cli\tkey-0\tticket-0$/)

    // Without --from-beginning a new group starts at the end (Kafka's auto.offset.reset=latest).
    const fromEnd = await brook(['consume', 'tickets', '--group', 'late-joiners', '--timeout-ms', '300', ...server])
    expect(fromEnd).toMatchObject({ code: 0, stdout: '', stderr: 'Processed a total of 0 messages\n' })
  })

  it('reads batches of every codec: gzip, snappy and lz4 from brook produce, zstd from kcat', async () => {
    await brook(['topics', 'create', 'codecs', '--partitions', '1', ...server])
    for (const codec of ['gzip', 'snappy', 'lz4']) {
      expect((await brook(['produce', 'codecs', '--compression', codec, ...server], { input: `${codec}-1\n${codec}-2\n` })).code).toBe(0)
    }
    await kcat(['-b', broker.address, '-P', '-t', 'codecs', '-z', 'zstd'], 'zstd-1\nzstd-2\n')
    const read = await brook(['consume', 'codecs', '--group', 'codec-readers', '--from-beginning', '--max-messages', '8', '--timeout-ms', '30000', ...server])
    expect(read.code, read.stderr).toBe(0)
    expect(lines(read.stdout)).toEqual(['gzip-1', 'gzip-2', 'snappy-1', 'snappy-2', 'lz4-1', 'lz4-2', 'zstd-1', 'zstd-2'])
  })

  it('says so when the topic does not exist', async () => {
    const missing = await brook(['consume', 'no-such-topic', '--group', 'g', '--timeout-ms', '300', ...server])
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: "brook: topic 'no-such-topic': UNKNOWN_TOPIC_OR_PARTITION (the topic does not exist)\n" })
  })

  it('keeps looking for a group coordinator kafkajs could not find: the member is replaced after a backoff and reads every record once', async () => {
    const setup = await brokerBehindProxy(FAST_GROUPS)
    const proxied = ['--bootstrap-server', setup.address]
    let member: ReturnType<typeof spawnBrook> | undefined
    try {
      expect((await brook(['topics', 'create', 'beacons', '--partitions', '2', ...proxied])).code).toBe(0)
      const values = Array.from({ length: 30 }, (_, i) => `beacon-${i}`)
      expect((await brook(['produce', 'beacons', ...proxied], { input: values.join('\n') + '\n' })).code).toBe(0)
      setup.proxy.dropNextAnswer(findCoordinator.request.apiKey, asksForGroup('beacon-readers'))
      member = spawnBrook(['consume', 'beacons', '--group', 'beacon-readers', '--from-beginning', ...proxied])
      await waitFor('all 30 records to be printed', () => lines(member!.stdout()).length >= 30, { timeoutMs: 60_000 })
      expect(setup.proxy.dropped).toBe(1)
      expect(member.stderr()).toMatch(/^brook: the group consumer stopped \(.+\); starting it again in 1000 ms\n$/)
      member.child.kill('SIGINT')
      expect(await member.exited).toBe(0)
      expect(lines(member.stdout()).sort()).toEqual([...values].sort())
      expect(member.stderr()).toMatch(/Processed a total of 30 messages\n$/)
    } finally {
      member?.child.kill('SIGKILL')
      await setup.close()
    }
  })
})
