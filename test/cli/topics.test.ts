import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { KafkaClient } from '../../client/kafka-client.js'
import { metadata, type MetadataRequest, type MetadataResponse } from '../../protocol/messages/metadata.js'
import { ZERO_UUID } from '../../protocol/constants.js'
import { brook, expectOneLineError, kcat, lines } from './run-brook.js'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fetchPartition, splitBatches, withClient } from '../helpers/kafka.js'

describe('brook topics', () => {
  let broker: BrokerProcess
  let server: string[]
  beforeAll(async () => {
    broker = await startBroker()
    server = ['--bootstrap-server', broker.address]
  })
  afterAll(async () => {
    await broker.stop()
    broker.cleanup()
  })

  /** The topic id as the broker's Metadata gives it (8-4-4-4-12 hex). */
  async function topicIdOf(name: string): Promise<string> {
    const client = await KafkaClient.connect(broker.host, broker.port)
    try {
      const response = await client.request<MetadataRequest, MetadataResponse>(metadata, 12, {
        topics: [{ topicId: ZERO_UUID, name }],
        allowAutoTopicCreation: false,
        includeClusterAuthorizedOperations: false,
        includeTopicAuthorizedOperations: false,
      })
      return response.topics[0]!.topicId!
    } finally {
      client.close()
    }
  }

  it('creates, lists, describes and deletes a topic', async () => {
    const created = await brook(['topics', 'create', 'orders', '--partitions', '3', '--config', 'retention.ms=3600000', '--config', 'cleanup.policy=compact', ...server])
    expect(created).toMatchObject({ code: 0, stdout: 'Created topic orders.\n', stderr: '' })

    // A compacted topic refuses records without a key (as Kafka does), so kcat writes keyed ones.
    await kcat(['-b', broker.address, '-P', '-t', 'orders', '-p', '1', '-K', ':'], 'a:1\nb:2\nc:3\n')

    const listed = await brook(['topics', 'list', ...server])
    expect(listed.code).toBe(0)
    expect(lines(listed.stdout)).toContain('orders')

    const described = await brook(['topics', 'describe', 'orders', ...server])
    expect(described.code).toBe(0)
    // Kafka prints topic ids as Uuid.toString(): URL-safe base64 of the 16 bytes, no padding.
    const topicId = Buffer.from((await topicIdOf('orders')).replaceAll('-', ''), 'hex').toString('base64url')
    expect(lines(described.stdout)).toEqual([
      `Topic: orders\tTopicId: ${topicId}\tPartitionCount: 3\tReplicationFactor: 1\tConfigs: cleanup.policy=compact,retention.ms=3600000`,
      '\tTopic: orders\tPartition: 0\tLeader: 1\tLeaderEpoch: 0\tReplicas: 1\tIsr: 1\tLogStartOffset: 0\tLogEndOffset: 0',
      '\tTopic: orders\tPartition: 1\tLeader: 1\tLeaderEpoch: 0\tReplicas: 1\tIsr: 1\tLogStartOffset: 0\tLogEndOffset: 3',
      '\tTopic: orders\tPartition: 2\tLeader: 1\tLeaderEpoch: 0\tReplicas: 1\tIsr: 1\tLogStartOffset: 0\tLogEndOffset: 0',
    ])

    const deleted = await brook(['topics', 'delete', 'orders', ...server])
    expect(deleted).toMatchObject({ code: 0, stdout: 'Deleted topic orders.\n' })
    expect(lines((await brook(['topics', 'list', ...server])).stdout)).not.toContain('orders')
  })

  it('log-dirs shows the node\'s data directory and the bytes of each partition (kafka-log-dirs.sh --describe, and its JSON)', async () => {
    await brook(['topics', 'create', 'sized', '--partitions', '2', ...server])
    await kcat(['-b', broker.address, '-P', '-t', 'sized', '-p', '1'], 'one\ntwo\nthree\n')
    const fetched = await withClient(broker, (client) => fetchPartition(client, { topic: 'sized', partition: 1, offset: 0n }))
    const size = splitBatches(fetched.records).reduce((sum, batch) => sum + batch.bytes.length, 0)
    expect(size).toBeGreaterThan(0)

    const table = await brook(['topics', 'log-dirs', 'sized', ...server])
    expect(table.code).toBe(0)
    const [head, ...rows] = lines(table.stdout)
    expect(head).toMatch(new RegExp(`^Node 1: ${broker.dataDir} \\(volume \\d+ bytes, \\d+ usable\\)$`))
    expect(rows.map((row) => row.split(/ +/))).toEqual([['TOPIC', 'PARTITION', 'SIZE', 'OFFSET-LAG'], ['sized', '0', '0', '0'], ['sized', '1', String(size), '0']])

    const json = await brook(['topics', 'log-dirs', 'sized', '--json', ...server])
    expect(JSON.parse(json.stdout)).toEqual({
      version: 1,
      brokers: [{
        broker: 1,
        logDirs: [{
          logDir: broker.dataDir,
          error: null,
          partitions: [{ partition: 'sized-0', size: 0, offsetLag: 0, isFuture: false }, { partition: 'sized-1', size, offsetLag: 0, isFuture: false }],
        }],
      }],
    })

    // Without a name every topic the node holds is listed; a name that is no topic is Kafka's error.
    expect(lines((await brook(['topics', 'log-dirs', ...server])).stdout).filter((row) => row.startsWith('sized '))).toHaveLength(2)
    const missing = await brook(['topics', 'log-dirs', 'absent', ...server])
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: "brook: topic 'absent': UNKNOWN_TOPIC_OR_PARTITION (the topic does not exist)\n" })
    expect((await brook(['topics', 'delete', 'sized', ...server])).code).toBe(0)
  })

  it('offsets prints topic:partition:offset at a time, as kafka-get-offsets.sh does, leaving out partitions with no offset then', async () => {
    await brook(['topics', 'create', 'ends', '--partitions', '3', ...server])
    await kcat(['-b', broker.address, '-P', '-t', 'ends', '-p', '1'], 'a\nb\nc\n')
    await kcat(['-b', broker.address, '-P', '-t', 'ends', '-p', '2'], 'd\n')
    const at = async (...args: string[]) => {
      const result = await brook(['topics', 'offsets', ...args, ...server])
      expect(result).toMatchObject({ code: 0, stderr: '' })
      return lines(result.stdout)
    }
    expect(await at('ends')).toEqual(['ends:0:0', 'ends:1:3', 'ends:2:1'])
    expect(await at('ends', '--time', '-1')).toEqual(['ends:0:0', 'ends:1:3', 'ends:2:1'])
    expect(await at('ends', '--time', 'earliest', '--partitions', '2,1')).toEqual(['ends:1:0', 'ends:2:0'])
    // The first offset whose timestamp is at or after the time: every record of 1 and 2 is after 2020, none before
    // 2100, and partition 0 has no record at all.
    expect(await at('ends', '--time', '2020-01-01T00:00:00Z')).toEqual(['ends:1:0', 'ends:2:0'])
    expect(await at('ends', '--time', String(Date.UTC(2100, 0)))).toEqual([])
    expect((await at('--time', 'latest')).filter((line) => line.startsWith('ends:'))).toEqual(['ends:0:0', 'ends:1:3', 'ends:2:1'])

    expectOneLineError(await brook(['topics', 'offsets', 'ends', '--partitions', '9', ...server]), 'could not match any topic-partitions with the specified filters')
    expectOneLineError(await brook(['topics', 'offsets', 'ends', '--time', 'soon', ...server]), "--time takes -1 or latest, -2 or earliest")
    expectOneLineError(await brook(['topics', 'offsets', 'ends', '--time', '18446744073709551615', ...server]), '--time must fit in a 64-bit integer')
    const help = await brook(['topics', 'offsets', '--help'])
    expect(help).toMatchObject({ code: 0, stderr: '' })
    expect(help.stdout).toContain('(default: latest)')
    expectOneLineError(await brook(['topics', 'offsets', 'absent', ...server]), "topic 'absent': UNKNOWN_TOPIC_OR_PARTITION")
    expect((await brook(['topics', 'delete', 'ends', ...server])).code).toBe(0)
  })

  it('delete-records moves the log start up to an offset, as kafka-delete-records.sh does (its JSON file too), and reports each partition', async () => {
    await brook(['topics', 'create', 'trimmed', '--partitions', '2', ...server])
    await kcat(['-b', broker.address, '-P', '-t', 'trimmed', '-p', '0'], 'a\nb\nc\nd\n')
    await kcat(['-b', broker.address, '-P', '-t', 'trimmed', '-p', '1'], 'e\nf\n')
    const header = ['Executing records delete operation', 'Records delete operation completed:']

    const one = await brook(['topics', 'delete-records', 'trimmed', '--before', '2', '--partitions', '0', ...server])
    expect(one).toMatchObject({ code: 0, stderr: '' })
    expect(lines(one.stdout)).toEqual([...header, 'partition: trimmed-0\tlow_watermark: 2'])
    // Past partition 1's high watermark (2): its error is printed beside the other's answer, and the exit code is 1.
    const both = await brook(['topics', 'delete-records', 'trimmed', '--before', '3', ...server])
    expect(both.code).toBe(1)
    expect(lines(both.stdout)).toEqual([...header, 'partition: trimmed-0\tlow_watermark: 3', 'partition: trimmed-1\terror: OFFSET_OUT_OF_RANGE (the offset is outside the range the partition holds)'])
    expect(lines((await brook(['topics', 'offsets', 'trimmed', '--time', 'earliest', ...server])).stdout)).toEqual(['trimmed:0:3', 'trimmed:1:0'])

    const dir = mkdtempSync(join(tmpdir(), 'brook-cli-'))
    try {
      const file = join(dir, 'offsets.json')
      writeFileSync(file, JSON.stringify({ partitions: [{ topic: 'trimmed', partition: 1, offset: -1 }], version: 1 }))
      const fromFile = await brook(['topics', 'delete-records', '--offset-json-file', file, ...server])
      expect(fromFile).toMatchObject({ code: 0, stderr: '' })
      expect(lines(fromFile.stdout)).toEqual([...header, 'partition: trimmed-1\tlow_watermark: 2'])
      writeFileSync(file, JSON.stringify({ partitions: [{ topic: 'trimmed', partition: 1, offset: 1 }, { topic: 'trimmed', partition: 1, offset: 2 }] }))
      expectOneLineError(await brook(['topics', 'delete-records', '--offset-json-file', file, ...server]), 'trimmed-1 appears twice')
      expectOneLineError(await brook(['topics', 'delete-records', 'trimmed', '--offset-json-file', file, ...server]), 'give no topic, --before or --partitions beside it')
      // A topic or partition that does not exist is found before anything is deleted, wherever the file names it.
      for (const missing of [{ topic: 'absent', partition: 0 }, { topic: 'trimmed', partition: 9 }]) {
        writeFileSync(file, JSON.stringify({ partitions: [{ topic: 'trimmed', partition: 0, offset: 4 }, { ...missing, offset: 1 }] }))
        expectOneLineError(await brook(['topics', 'delete-records', '--offset-json-file', file, ...server]), missing.topic === 'absent' ? "topic 'absent': UNKNOWN_TOPIC_OR_PARTITION" : "topic 'trimmed' has no partition 9")
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    expect(lines((await brook(['topics', 'offsets', 'trimmed', '--time', 'earliest', ...server])).stdout)).toEqual(['trimmed:0:3', 'trimmed:1:2'])
    expectOneLineError(await brook(['topics', 'delete-records', 'trimmed', ...server]), 'give a topic and --before, or --offset-json-file')
    expectOneLineError(await brook(['topics', 'delete-records', 'trimmed', '--before', '-2', ...server]), "--before takes a non-negative offset, or high-watermark (or -1), not '-2'")
    expectOneLineError(await brook(['topics', 'delete-records', 'absent', '--before', '1', ...server]), "topic 'absent': UNKNOWN_TOPIC_OR_PARTITION")
    expect((await brook(['topics', 'delete', 'trimmed', ...server])).code).toBe(0)
  })

  it('describe filters partitions as kafka-topics.sh does: under-replicated, under and at min.insync.replicas, unavailable', async () => {
    // One replica each: `strict` asks two in sync (as set: kafka-topics.sh compares the ISR with the config), `loose` one.
    expect((await brook(['topics', 'create', 'strict', '--partitions', '2', '--config', 'min.insync.replicas=2', ...server])).code).toBe(0)
    expect((await brook(['topics', 'create', 'loose', '--partitions', '1', ...server])).code).toBe(0)
    const shown = async (flag: string): Promise<string[]> => {
      const result = await brook(['topics', 'describe', ...server, flag])
      expect(result).toMatchObject({ code: 0, stderr: '' })
      // Only partition lines, as kafka-topics.sh prints with a filter; the other tests' topics may be listed too.
      expect(lines(result.stdout).every((line) => line.startsWith('\tTopic: '))).toBe(true)
      return lines(result.stdout).map((line) => /Topic: (\S+)\tPartition: (\d+)/.exec(line)!.slice(1).join('-')).filter((p) => /^(strict|loose)-/.test(p))
    }
    expect(await shown('--under-min-isr-partitions')).toEqual(['strict-0', 'strict-1'])
    expect(await shown('--at-min-isr-partitions')).toEqual(['loose-0'])
    expect(await shown('--under-replicated-partitions')).toEqual([])
    expect(await shown('--unavailable-partitions')).toEqual([])
    expectOneLineError(
      await brook(['topics', 'describe', 'strict', '--under-min-isr-partitions', '--unavailable-partitions', ...server]),
      'give at most one of --under-replicated-partitions, --under-min-isr-partitions, --at-min-isr-partitions and --unavailable-partitions',
    )
    for (const name of ['strict', 'loose']) expect((await brook(['topics', 'delete', name, ...server])).code).toBe(0)
  })

  it('describes every topic when no name is given, in name order', async () => {
    await brook(['topics', 'create', 'zeta', ...server])
    await brook(['topics', 'create', 'alpha', '--partitions', '2', ...server])
    const described = await brook(['topics', 'describe', ...server])
    expect(described.code).toBe(0)
    const headers = lines(described.stdout).filter((line) => line.startsWith('Topic: '))
    expect(headers.map((line) => line.split('\t')[0])).toEqual(['Topic: alpha', 'Topic: zeta'])
    expect(headers[0]).toContain('PartitionCount: 2')
  })

  it('treats an existing topic as an error unless --if-not-exists', async () => {
    await brook(['topics', 'create', 'twice', ...server])
    const again = await brook(['topics', 'create', 'twice', ...server])
    expect(again.code).toBe(1)
    expect(again.stderr).toBe("brook: cannot create topic 'twice': TOPIC_ALREADY_EXISTS (topic 'twice' already exists)\n")
    expect(await brook(['topics', 'create', 'twice', '--if-not-exists', ...server])).toMatchObject({ code: 0, stderr: '' })
  })

  it('creates a topic with --replica-assignment as kafka-topics.sh writes it, and refuses a malformed one or one beside --partitions in one line', async () => {
    expect(await brook(['topics', 'create', 'assigned', '--replica-assignment', '1,1', ...server])).toMatchObject({ code: 0, stdout: 'Created topic assigned.\n', stderr: '' })
    const described = lines((await brook(['topics', 'describe', 'assigned', ...server])).stdout).slice(1)
    expect(described.map((line) => /Partition: (\d+)\tLeader: (\d+)\tLeaderEpoch: \d+\tReplicas: ([\d,]+)/.exec(line)!.slice(1))).toEqual([
      ['0', '1', '1'],
      ['1', '1', '1'],
    ])
    expect(await brook(['topics', 'create', 'misassigned', '--replica-assignment', '1:x', ...server])).toMatchObject({
      code: 1,
      stderr: "brook: option '--replica-assignment <list>' argument '1:x' is invalid. --replica-assignment: partition 0 must be broker ids separated by ':' (partitions by ','), not '1:x'\n",
    })
    expect(await brook(['topics', 'create', 'misassigned', '--replica-assignment', '1', '--partitions', '2', ...server])).toMatchObject({
      code: 1,
      stderr: 'brook: --replica-assignment gives the partitions and their replicas: leave out --partitions and --replication-factor\n',
    })
    const unknownBroker = await brook(['topics', 'create', 'misassigned', '--replica-assignment', '7', ...server])
    expect(unknownBroker).toMatchObject({ code: 1, stderr: "brook: cannot create topic 'misassigned': INVALID_REPLICA_ASSIGNMENT (broker 7 does not exist)\n" })
  })

  it('reassign on a single node: its only broker is accepted and changes nothing, any other is refused, and nothing is ever under way', async () => {
    expect(await brook(['topics', 'create', 'staying', '--partitions', '2', ...server])).toMatchObject({ code: 0 })
    expect(await brook(['topics', 'reassign', 'staying', '--replica-assignment', '1,1', '--wait', ...server])).toMatchObject({
      code: 0,
      // kafka-reassign-partitions.sh --verify's words.
      stdout: 'Started the reassignment of 2 partitions of topic staying.\nReassignment of partition staying-0 is completed.\nReassignment of partition staying-1 is completed.\n',
    })
    expect(await brook(['topics', 'reassign', 'staying', '--replica-assignment', '2', ...server])).toMatchObject({
      code: 1,
      stderr: 'brook: cannot reassign staying-0: INVALID_REPLICA_ASSIGNMENT ([2] for partition 0 of \'staying\': this single node (broker 1) is the only broker)\n',
    })
    expect(await brook(['topics', 'reassign', 'staying', '--replica-assignment', '1,1,1', ...server])).toMatchObject({
      code: 1,
      stderr: 'brook: --replica-assignment lists 3 partitions, but topic staying has 2\n',
    })
    expect(await brook(['topics', 'reassign', 'staying', '--cancel', ...server])).toMatchObject({ code: 0, stdout: 'No reassignment of topic staying is under way.\n' })
    expect(await brook(['topics', 'reassign', 'staying', ...server])).toMatchObject({ code: 1, stderr: 'brook: give either --replica-assignment <list> or --cancel\n' })
    expect(await brook(['topics', 'reassignments', ...server])).toMatchObject({ code: 0, stdout: 'No partition reassignment is under way.\n' })
    expect(await brook(['topics', 'reassignments', 'absent', ...server])).toMatchObject({
      code: 1,
      stderr: "brook: cannot list partition reassignments: UNKNOWN_TOPIC_OR_PARTITION (topic 'absent' does not exist)\n",
    })
  })

  it('passes the broker\'s errors on by Kafka name: unknown config, replication factor, missing topic, colliding name', async () => {
    const unknownConfig = await brook(['topics', 'create', 'bad', '--config', 'no.such.config=1', ...server])
    expect(unknownConfig.code).toBe(1)
    expect(unknownConfig.stderr).toBe("brook: cannot create topic 'bad': INVALID_CONFIG (unknown topic config 'no.such.config')\n")

    const replication = await brook(['topics', 'create', 'bad', '--replication-factor', '3', ...server])
    expect(replication.code).toBe(1)
    expect(replication.stderr).toMatch(/^brook: cannot create topic 'bad': INVALID_REPLICATION_FACTOR \(.+\)\n$/)

    // describe and delete say the same of a topic that does not exist.
    const describeMissing = await brook(['topics', 'describe', 'missing', ...server])
    expect(describeMissing).toMatchObject({ code: 1, stdout: '', stderr: "brook: topic 'missing': UNKNOWN_TOPIC_OR_PARTITION (the topic does not exist)\n" })
    const deleteMissing = await brook(['topics', 'delete', 'missing', ...server])
    expect(deleteMissing).toMatchObject({ code: 1, stdout: '', stderr: "brook: cannot delete topic 'missing': UNKNOWN_TOPIC_OR_PARTITION (the topic does not exist)\n" })

    expect((await brook(['topics', 'create', 'plant.temp', ...server])).code).toBe(0)
    const colliding = await brook(['topics', 'create', 'plant_temp', ...server])
    expect(colliding).toMatchObject({
      code: 1,
      stdout: '',
      stderr: "brook: cannot create topic 'plant_temp': INVALID_TOPIC_EXCEPTION (topic 'plant_temp' collides with existing topics: plant.temp)\n",
    })
  })

  it('alter-config sets and deletes configs; describe shows only what is set on the topic; a bad value changes nothing', async () => {
    await brook(['topics', 'create', 'tuned', '--config', 'retention.ms=3600000', ...server])
    const configsOf = async (): Promise<string> => /\tConfigs: (.*)$/m.exec((await brook(['topics', 'describe', 'tuned', ...server])).stdout)![1]!

    const set = await brook(['topics', 'alter-config', 'tuned', '--set', 'cleanup.policy=compact', '--set', 'max.message.bytes=2048', ...server])
    expect(set).toMatchObject({ code: 0, stdout: 'Completed updating config for topic tuned.\n', stderr: '' })
    expect(await configsOf()).toBe('cleanup.policy=compact,max.message.bytes=2048,retention.ms=3600000')

    // Deleting returns a config to its default, which describe no longer lists.
    expect((await brook(['topics', 'alter-config', 'tuned', '--delete', 'max.message.bytes', '--delete', 'retention.ms', '--set', 'retention.bytes=1000000', ...server])).code).toBe(0)
    expect(await configsOf()).toBe('cleanup.policy=compact,retention.bytes=1000000')

    const bad = await brook(['topics', 'alter-config', 'tuned', '--set', 'segment.ms=1000', '--set', 'retention.ms=soon', ...server])
    expect(bad).toMatchObject({
      code: 1,
      stdout: '',
      stderr: "brook: cannot alter the configs of topic 'tuned': INVALID_CONFIG (invalid value 'soon' for retention.ms: must be a whole number)\n",
    })
    const unknown = await brook(['topics', 'alter-config', 'tuned', '--set', 'retention.minutes=5', ...server])
    expect(unknown.stderr).toBe("brook: cannot alter the configs of topic 'tuned': INVALID_CONFIG (unknown topic config 'retention.minutes')\n")
    // Nothing of a refused change was applied, not even its valid part.
    expect(await configsOf()).toBe('cleanup.policy=compact,retention.bytes=1000000')

    const missing = await brook(['topics', 'alter-config', 'missing', '--set', 'retention.ms=1', ...server])
    expect(missing).toMatchObject({ code: 1, stderr: "brook: cannot alter the configs of topic 'missing': UNKNOWN_TOPIC_OR_PARTITION (topic 'missing' does not exist)\n" })
  })

  it('add-partitions grows a topic, keeps its records where they were, and refuses a count not above the current one', async () => {
    await brook(['topics', 'create', 'growing', '--partitions', '2', ...server])
    await kcat(['-b', broker.address, '-P', '-t', 'growing', '-p', '1'], 'kept\n')

    const added = await brook(['topics', 'add-partitions', 'growing', '--partitions', '4', ...server])
    expect(added).toMatchObject({ code: 0, stdout: 'Topic growing now has 4 partitions.\n', stderr: '' })
    const described = lines((await brook(['topics', 'describe', 'growing', ...server])).stdout)
    expect(described[0]).toContain('\tPartitionCount: 4\t')
    expect(described.slice(1).map((line) => /Partition: (\d+)\t.*LogEndOffset: (\d+)$/.exec(line)!.slice(1).join('='))).toEqual(['0=0', '1=1', '2=0', '3=0'])
    // The new partitions take records at once.
    expect(await kcat(['-b', broker.address, '-P', '-t', 'growing', '-p', '3'], 'new\n')).toBe('')

    // Kafka's words (ReplicationControlManager.createPartitionsForTopic).
    expect(await brook(['topics', 'add-partitions', 'growing', '--partitions', '4', ...server])).toMatchObject({
      code: 1,
      stdout: '',
      stderr: "brook: cannot add partitions to topic 'growing': INVALID_PARTITIONS (Topic already has 4 partition(s).)\n",
    })
    expect((await brook(['topics', 'add-partitions', 'growing', '--partitions', '2', ...server])).stderr).toBe(
      "brook: cannot add partitions to topic 'growing': INVALID_PARTITIONS (The topic growing currently has 4 partition(s); 2 would not be an increase.)\n",
    )
    expect((await brook(['topics', 'add-partitions', 'missing', '--partitions', '2', ...server])).stderr).toBe(
      "brook: cannot add partitions to topic 'missing': UNKNOWN_TOPIC_OR_PARTITION (topic 'missing' does not exist)\n",
    )
    expect(await brook(['topics', 'add-partitions', 'growing', ...server])).toMatchObject({ code: 1, stderr: "brook: required option '--partitions <n>' not specified\n" })
    expect((await brook(['topics', 'add-partitions', 'growing', '--partitions', 'many', ...server])).stderr).toMatch(/^brook: .*--partitions must be a whole number\n$/)

    // --replica-assignment lists every partition, as kafka-topics.sh --alter takes it: those past the current count are added.
    expect(await brook(['topics', 'add-partitions', 'growing', '--partitions', '6', '--replica-assignment', '1,1,1,1,1,1', ...server])).toMatchObject({
      code: 0,
      stdout: 'Topic growing now has 6 partitions.\n',
    })
    expect(lines((await brook(['topics', 'describe', 'growing', ...server])).stdout)[0]).toContain('\tPartitionCount: 6\t')
    expect((await brook(['topics', 'add-partitions', 'growing', '--partitions', '7', '--replica-assignment', '1,1,1,1,1,1,5', ...server])).stderr).toBe(
      "brook: cannot add partitions to topic 'growing': INVALID_REPLICA_ASSIGNMENT (broker 5 does not exist)\n",
    )
    expect((await brook(['topics', 'add-partitions', 'growing', '--partitions', '8', '--replica-assignment', '1,1,1,1,1,1,1', ...server])).stderr).toBe(
      "brook: cannot add partitions to topic 'growing': INVALID_REPLICA_ASSIGNMENT (the assignment must cover the 2 new partitions)\n",
    )
    expect((await brook(['topics', 'add-partitions', 'missing', '--partitions', '2', '--replica-assignment', '1,1', ...server])).stderr).toBe(
      "brook: cannot add partitions to topic 'missing': UNKNOWN_TOPIC_OR_PARTITION (topic 'missing' does not exist)\n",
    )
  })

  it('elect-leaders answers in kafka-leader-election.sh\'s words: on one node every partition\'s only replica leads it already', async () => {
    expect((await brook(['topics', 'create', 'elected', '--partitions', '3', ...server])).code).toBe(0)
    const elect = (...args: string[]) => brook(['topics', 'elect-leaders', ...args, ...server])

    expect(await elect('elected')).toEqual({ code: 0, stdout: 'Valid replica already elected for partitions elected-0, elected-1, elected-2\n', stderr: '' })
    expect(await elect('elected', '--partition', '2', '--partition', '0', '--type', 'UNCLEAN')).toEqual({
      code: 0,
      stdout: 'Valid replica already elected for partitions elected-0, elected-2\n',
      stderr: '',
    })
    // Every partition of every topic: the answer leaves out those that needed no election, here all of them.
    expect(await elect()).toEqual({ code: 0, stdout: 'No partition needed a preferred leader election.\n', stderr: '' })

    // A partition that does not exist fails, in Kafka's line for it, its error by name where Kafka prints the exception.
    expect(await elect('elected', '--partition', '1', '--partition', '7')).toEqual({
      code: 1,
      stdout:
        'Valid replica already elected for partitions elected-1\n' +
        "Error completing leader election (PREFERRED) for partition: elected-7: UNKNOWN_TOPIC_OR_PARTITION ('elected' has no partition 7)\n",
      stderr: 'brook: 1 replica could not be elected\n',
    })
    expectOneLineError(await elect('absent'), "topic 'absent': UNKNOWN_TOPIC_OR_PARTITION (the topic does not exist)")
    expectOneLineError(await elect('--partition', '0'), '--partition needs a topic name')
    expectOneLineError(await elect('elected', '--type', 'dirty'), "--type takes preferred or unclean, not 'dirty'")
    expectOneLineError(await elect('elected', '--partition', '-1'), '--partition must be between 0 and 2147483647')
  })

  it('takes the bootstrap server from BROOK_BOOTSTRAP_SERVER', async () => {
    await brook(['topics', 'create', 'from-env', ...server])
    const listed = await brook(['topics', 'list'], { env: { BROOK_BOOTSTRAP_SERVER: broker.address } })
    expect(listed.code).toBe(0)
    expect(lines(listed.stdout)).toContain('from-env')
  })
})
