/**
 * kafka-python 2.0.2 (Debian's python3-kafka; skipped, saying why, without it) against one real broker process: its
 * producer, consumer and admin client as a user drives them, through `test/fixtures/kafka-python-client.py`.
 *
 * kafka-python picks its API versions from the broker's ApiVersions by its own table (it takes Brook for a Kafka 2.5)
 * and then sends older versions than the other clients: Produce 7, Fetch 4, ListOffsets 1, Metadata 1, JoinGroup 2,
 * SyncGroup 1, OffsetCommit 2, OffsetFetch 1, CreateTopics 3, DescribeConfigs 2, AlterConfigs 1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { fixtureAnswers } from '../helpers/confluent-kafka.js'
import { kafkaPythonMissing } from '../helpers/kafka-python.js'

const missing = kafkaPythonMissing()
if (missing !== null) console.log(`kafka-python test skipped: ${missing}`)

type Step = { step: string } & Record<string, unknown>

describe.skipIf(missing !== null)('kafka-python against one node', () => {
  let broker: BrokerProcess

  beforeAll(async () => {
    broker = await startBroker({ args: ['--group-initial-rebalance-delay-ms', '0'] })
  })

  afterAll(async () => {
    if (broker) expect(loggedErrors(broker)).toEqual([])
    await broker?.stop()
    broker?.cleanup()
  })

  /** The steps `scenario` of kafka-python-client.py went through, by name. */
  async function run(scenario: string, prefix: string): Promise<Map<string, Step[]>> {
    const steps = await fixtureAnswers<Step>('kafka-python-client.py', [broker.address, scenario, prefix])
    const byName = new Map<string, Step[]>()
    for (const { step, ...seen } of steps) byName.set(step, [...(byName.get(step) ?? []), { step, ...seen }])
    return byName
  }

  it('writes with acks 0, 1 and all, plain and gzip, and reads back by assignment, seek and timestamp', async () => {
    const steps = await run('produce', 'kp-produce')
    expect(steps.get('produce')!.map(({ acks, codec, offsets }) => [acks, codec, offsets])).toEqual([
      ['0', null, [false]], // an acks=0 producer learns no offsets
      ['1', null, [true]],
      ['all', null, [true]],
      ['1', 'gzip', [true]],
      ['all', 'gzip', [true]],
    ])
    // 10 records per producer, spread 4/3/3 over the partitions: 20, 15 and 15.
    expect(steps.get('read')).toEqual([{ step: 'read', count: 50, values: ['0-None-0', '0-None-1', '0-None-2'], per_partition: [20, 15, 15] }])
    expect(steps.get('end_offsets')).toEqual([{ step: 'end_offsets', offsets: [20, 15, 15] }])
    expect(steps.get('offsets_for_times')).toEqual([{ step: 'offsets_for_times', epoch: [0, 0, 0], future: [null, null, null] }])
    expect(steps.get('seek')).toEqual([{ step: 'seek', offset: 5 }])
    // OFFSET_OUT_OF_RANGE, and the consumer's auto.offset.reset=earliest takes it back to the start.
    expect(steps.get('seek past end')).toEqual([{ step: 'seek past end', offset: 0 }])
  })

  it('shares a topic between two members of a group, commits, and gives a leaving member\'s partitions to the other', async () => {
    const steps = await run('group', 'kp-group')
    expect(steps.get('first member')).toEqual([{ step: 'first member', assigned: [0, 1, 2, 3], read: 40, committed: [10, 10, 10, 10] }])
    const [two] = steps.get('two members')!
    const first = two!.first as number[]
    const second = two!.second as number[]
    // The range assignor's two and two; which member gets which half is the leader's choice.
    expect(first.length).toBe(2)
    expect([...first, ...second].sort()).toEqual([0, 1, 2, 3])
    expect(steps.get('describe')).toEqual([{ step: 'describe', state: 'Stable', protocol: 'range', members: 2, assigned: [0, 1, 2, 3] }])
    expect(steps.get('commit_async')).toEqual([{ step: 'commit_async', error: null }])
    expect(steps.get('after leave')).toEqual([{ step: 'after leave', second: [0, 1, 2, 3] }])
    expect(steps.get('group offsets')).toEqual([
      { step: 'group offsets', offsets: [[0, 7, 'async'], [1, 10, ''], [2, 10, ''], [3, 10, '']] },
    ])
    expect(steps.get('list groups')).toEqual([{ step: 'list groups', listed: [['kp-group-group', 'consumer']] }])
    expect(steps.get('describe empty')).toEqual([{ step: 'describe empty', state: 'Empty' }])
    expect(steps.get('delete group')).toEqual([
      { step: 'delete group', results: [['kp-group-group', 'NoError'], ['kp-group-none', 'GroupIdNotFoundError']] },
    ])
  })

  it('creates, configures, grows and deletes topics, and gets Kafka\'s errors for bad requests', async () => {
    const steps = await run('admin', 'kp-admin')
    const error = (name: string) => steps.get(name)!.map((step) => step.error)
    expect(error('create')).toEqual([null])
    expect(error('create again')).toEqual(['TopicAlreadyExistsError']) // TOPIC_ALREADY_EXISTS (36)
    expect(error('create unknown config')).toEqual(['InvalidConfigurationError']) // INVALID_CONFIG (40)
    expect(error('create 0 partitions')).toEqual(['InvalidPartitionsError']) // INVALID_PARTITIONS (37)
    expect(error('create too many replicas')).toEqual(['InvalidReplicationFactorError']) // INVALID_REPLICATION_FACTOR (38)
    expect(steps.get('configs')).toEqual([{ step: 'configs', configs: { 'max.message.bytes': '20000', 'retention.ms': '100000' } }])
    // AlterConfigs replaces the topic's configs: max.message.bytes, not named, is back to its default.
    expect(steps.get('alter')).toEqual([{ step: 'alter', errors: [0], configs: { 'retention.ms': '200000' } }])
    expect(steps.get('alter bad value')).toEqual([{ step: 'alter bad value', errors: [40], configs: { 'retention.ms': '200000' } }])
    expect(error('grow')).toEqual([null])
    expect(error('shrink')).toEqual(['InvalidPartitionsError'])
    expect(steps.get('describe')).toEqual([{ step: 'describe', partitions: [0, 1, 2, 3] }])
    expect(error('delete')).toEqual([null])
    expect(error('delete unknown')).toEqual(['UnknownTopicOrPartitionError']) // UNKNOWN_TOPIC_OR_PARTITION (3)
    expect(steps.get('list')).toEqual([{ step: 'list', present: false }])
  })
})
