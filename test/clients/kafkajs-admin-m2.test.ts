/**
 * kafkajs 2.2.4's admin client on groups, offsets, topic configs and record deletion, against a real broker process:
 * listGroups, describeGroups (assignments decoded with kafkajs's own AssignerProtocol), deleteGroups, fetchOffsets,
 * setOffsets / resetOffsets (which kafkajs implements by joining the group with a throwaway consumer that waits out
 * one default 5 s fetch before it leaves, so each takes seconds whatever the broker does),
 * describeConfigs, alterConfigs and deleteTopicRecords, each checked by what a user of kafkajs sees.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, AssignerProtocol, ConfigResourceTypes, Kafka, ResourcePatternTypes, type Admin, type Consumer, type Producer } from 'kafkajs'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import type { BrokerProcess } from '../helpers/broker.js'
import { waitFor } from '../helpers/wait.js'
import { startKafkajsBroker, stopKafkajsBroker } from '../helpers/kafkajs-broker.js'

const CONSUMER_TIMINGS = { sessionTimeout: 3000, rebalanceTimeout: 6000, heartbeatInterval: 300, maxWaitTimeInMs: 200 }

describe('kafkajs admin: groups, offsets, configs, records', () => {
  let broker: BrokerProcess
  let kafka: Kafka
  let admin: Admin
  let producer: Producer
  const consumers: Consumer[] = []

  beforeAll(async () => {
    ;({ broker, kafka, admin, producer } = await startKafkajsBroker(FAST_GROUPS, { clientId: 'admin-m2', retry: { retries: 0 } }))
  })
  afterEach(async () => {
    for (const consumer of consumers.splice(0)) await consumer.disconnect()
  })
  afterAll(async () => {
    await stopKafkajsBroker({ broker, admin, producer })
  })

  /** A running kafkajs consumer that records what it reads. */
  async function consume(groupId: string, topic: string, fromBeginning = true) {
    const consumer = kafka.consumer({ groupId, ...CONSUMER_TIMINGS })
    consumers.push(consumer)
    const read: { partition: number; offset: string; value: string }[] = []
    let assigned: number[] = []
    let fetches = 0
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => (assigned = payload.memberAssignment[topic] ?? []))
    consumer.on(consumer.events.FETCH, () => fetches++)
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning })
    await consumer.run({ eachMessage: async ({ partition, message }) => void read.push({ partition, offset: message.offset, value: message.value!.toString() }) })
    return { consumer, read, assigned: () => assigned, fetches: () => fetches }
  }

  async function stop(consumer: Consumer): Promise<void> {
    consumers.splice(consumers.indexOf(consumer), 1)
    await consumer.disconnect()
  }

  async function produce(topic: string, count: number, partitions: number, label = 'r'): Promise<void> {
    await producer.send({ topic, messages: Array.from({ length: count }, (_, i) => ({ partition: i % partitions, value: `${label}-${i}` })) })
  }

  describe('groups', () => {
    it('listGroups and describeGroups show a live group: members, client ids, subscriptions and assignments', async () => {
      await admin.createTopics({ topics: [{ topic: 'shipments', numPartitions: 4 }] })
      const first = await consume('dispatch', 'shipments')
      const second = await consume('dispatch', 'shipments')
      await waitFor('a Stable group of two', async () => {
        const [group] = (await admin.describeGroups(['dispatch'])).groups
        return group!.state === 'Stable' && group!.members.length === 2 && first.assigned().length === 2 && second.assigned().length === 2
      })

      const { groups } = await admin.listGroups()
      expect(groups).toContainEqual({ groupId: 'dispatch', protocolType: 'consumer' })
      const [group] = (await admin.describeGroups(['dispatch'])).groups
      expect(group).toMatchObject({ groupId: 'dispatch', errorCode: 0, state: 'Stable', protocolType: 'consumer', protocol: 'RoundRobinAssigner' })
      expect(group!.members.map((m) => m.clientId)).toEqual(['admin-m2', 'admin-m2'])
      expect(group!.members.every((m) => m.clientHost === '/127.0.0.1')).toBe(true)
      const assignments = group!.members.map((m) => AssignerProtocol.MemberAssignment.decode(m.memberAssignment)!.assignment)
      expect(assignments.flatMap((a) => a.shipments!).sort()).toEqual([0, 1, 2, 3])
      expect(assignments.map((a) => [...a.shipments!].sort()).sort()).toEqual([[...first.assigned()].sort(), [...second.assigned()].sort()].sort())
      for (const member of group!.members) {
        expect(AssignerProtocol.MemberMetadata.decode(member.memberMetadata)).toMatchObject({ topics: ['shipments'] })
      }
      // A group nobody ever used is described as Dead, with no error, as Kafka does before DescribeGroups v6.
      const [unknown] = (await admin.describeGroups(['never-used'])).groups
      expect(unknown).toMatchObject({ groupId: 'never-used', state: 'Dead', members: [] })
    })

    it('deleteGroups refuses a group with members (NON_EMPTY_GROUP) and deletes it, offsets and all, once it is empty', async () => {
      await admin.createTopics({ topics: [{ topic: 'returns', numPartitions: 1 }] })
      await produce('returns', 3, 1)
      const member = await consume('refunds', 'returns')
      await waitFor('the member to read and commit', async () => (await admin.fetchOffsets({ groupId: 'refunds', topics: ['returns'] }))[0]!.partitions[0]!.offset === '3')

      const refused = await admin.deleteGroups(['refunds']).catch((error: { name: string; groups: { groupId: string; error: { type: string } }[] }) => error)
      expect(refused).toMatchObject({ name: 'KafkaJSDeleteGroupsError', groups: [{ groupId: 'refunds', error: { type: 'NON_EMPTY_GROUP' } }] })
      expect((await admin.listGroups()).groups.map((g) => g.groupId)).toContain('refunds')

      await stop(member.consumer)
      await waitFor('the group to be empty', async () => (await admin.describeGroups(['refunds'])).groups[0]!.state === 'Empty')
      expect(await admin.deleteGroups(['refunds'])).toEqual([{ groupId: 'refunds', errorCode: 0 }])
      expect((await admin.listGroups()).groups.map((g) => g.groupId)).not.toContain('refunds')
      expect((await admin.fetchOffsets({ groupId: 'refunds', topics: ['returns'] }))[0]!.partitions).toEqual([{ partition: 0, offset: '-1', metadata: null }])
      const again = await admin.deleteGroups(['refunds']).catch((error: { groups: { error: { type: string } }[] }) => error)
      expect(again).toMatchObject({ groups: [{ error: { type: 'GROUP_ID_NOT_FOUND' } }] })
    })
  })

  describe('offsets', () => {
    it('fetchOffsets answers -1 for partitions without a commit', async () => {
      await admin.createTopics({ topics: [{ topic: 'quiet', numPartitions: 3 }] })
      expect(await admin.fetchOffsets({ groupId: 'nobody-committed', topics: ['quiet'] })).toEqual([
        { topic: 'quiet', partitions: [0, 1, 2].map((partition) => ({ partition, offset: '-1', metadata: null })) },
      ])
    })

    it('setOffsets and resetOffsets move an empty group, and its next consumer starts where they said; a live group is refused', async () => {
      await admin.createTopics({ topics: [{ topic: 'ledger', numPartitions: 2 }] })
      await produce('ledger', 20, 2, 'first')
      await admin.setOffsets({ groupId: 'accounting', topic: 'ledger', partitions: [{ partition: 0, offset: '7' }, { partition: 1, offset: '3' }] })
      expect((await admin.fetchOffsets({ groupId: 'accounting', topics: ['ledger'] }))[0]!.partitions).toEqual([
        { partition: 0, offset: '7', metadata: null },
        { partition: 1, offset: '3', metadata: null },
      ])

      const reader = await consume('accounting', 'ledger')
      await waitFor('the reader to catch up', () => reader.read.length >= 3 + 7)
      expect(reader.read.filter((r) => r.partition === 0).map((r) => r.offset)).toEqual(['7', '8', '9'])
      expect(reader.read.filter((r) => r.partition === 1).map((r) => r.offset)).toEqual(['3', '4', '5', '6', '7', '8', '9'])
      await expect(admin.resetOffsets({ groupId: 'accounting', topic: 'ledger', earliest: true })).rejects.toThrow(/no running instances/)
      await stop(reader.consumer)
      await waitFor('the group to be empty', async () => (await admin.describeGroups(['accounting'])).groups[0]!.state === 'Empty')

      // kafkajs commits the sentinels -2 (earliest) or -1 (latest), which its consumers resolve with ListOffsets.
      // (fetchOffsets' resolveOffsets would commit the resolved offsets with one more throwaway consumer.)
      await admin.resetOffsets({ groupId: 'accounting', topic: 'ledger', earliest: true })
      expect((await admin.fetchOffsets({ groupId: 'accounting', topics: ['ledger'] }))[0]!.partitions.map((p) => p.offset)).toEqual(['-2', '-2'])
      const replay = await consume('accounting', 'ledger')
      await waitFor('a replay from the beginning', () => replay.read.length >= 20)
      expect(replay.read.map((r) => r.value).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `first-${i}`).sort())
      await stop(replay.consumer)
      await waitFor('the group to be empty', async () => (await admin.describeGroups(['accounting'])).groups[0]!.state === 'Empty')

      // -1 is "no offset" (OffsetFetch), so a consumer that was told to start from the end does.
      await admin.resetOffsets({ groupId: 'accounting', topic: 'ledger', earliest: false })
      expect((await admin.fetchOffsets({ groupId: 'accounting', topics: ['ledger'] }))[0]!.partitions.map((p) => p.offset)).toEqual(['-1', '-1'])
      const tail = await consume('accounting', 'ledger', false)
      // Its position (the log end) is looked up before its first fetch; only records produced after that are new to it.
      await waitFor('the tail reader to join and fetch', () => tail.assigned().length === 2 && tail.fetches() > 0)
      await produce('ledger', 4, 2, 'second')
      await waitFor('the new records', () => tail.read.length >= 4)
      expect(tail.read.map((r) => r.value).sort()).toEqual(['second-0', 'second-1', 'second-2', 'second-3'])
    })
  })

  describe('topic configs', () => {
    it('describeConfigs lists every topic config, defaults marked as such', async () => {
      await admin.createTopics({ topics: [{ topic: 'configured', numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '3600000' }] }] })
      const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: 'configured' }] })
      expect(resources[0]).toMatchObject({ errorCode: 0, resourceName: 'configured' })
      const entries = new Map(resources[0]!.configEntries.map((e) => [e.configName, e]))
      for (const name of ['cleanup.policy', 'retention.ms', 'retention.bytes', 'max.message.bytes', 'message.timestamp.type', 'min.insync.replicas', 'segment.ms', 'delete.retention.ms', 'min.compaction.lag.ms', 'min.cleanable.dirty.ratio']) {
        expect(entries.has(name), name).toBe(true)
      }
      expect(entries.get('retention.ms')).toMatchObject({ configValue: '3600000', isDefault: false })
      expect(entries.get('cleanup.policy')).toMatchObject({ configValue: 'delete', isDefault: true })
      expect(entries.get('retention.bytes')).toMatchObject({ configValue: '-1', isDefault: true })
      expect(entries.get('max.message.bytes')).toMatchObject({ configValue: '1048588', isDefault: true })
    })

    it('alterConfigs changes what describeConfigs shows; an invalid value is INVALID_CONFIG and changes nothing', async () => {
      await admin.createTopics({ topics: [{ topic: 'altered', numPartitions: 1 }] })
      const describe = async () => {
        const { resources } = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: 'altered' }] })
        return new Map(resources[0]!.configEntries.map((e) => [e.configName, e.configValue]))
      }
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: 'altered', configEntries: [{ name: 'cleanup.policy', value: 'compact' }, { name: 'retention.ms', value: '60000' }] }],
      })
      const altered = await describe()
      expect([altered.get('cleanup.policy'), altered.get('retention.ms')]).toEqual(['compact', '60000'])

      for (const bad of [
        { name: 'retention.ms', value: 'soon' },
        { name: 'cleanup.policy', value: 'shred' },
        { name: 'min.cleanable.dirty.ratio', value: '1.5' },
        { name: 'no.such.config', value: '1' },
      ]) {
        const error = await admin
          .alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: 'altered', configEntries: [{ name: 'segment.ms', value: '1000' }, bad] }] })
          .catch((e: { type: string }) => e)
        expect(error, JSON.stringify(bad)).toMatchObject({ type: 'INVALID_CONFIG' })
      }
      // Not even the valid config sent beside the bad one was applied.
      expect(await describe()).toEqual(altered)

      // validateOnly checks without changing.
      await admin.alterConfigs({ validateOnly: true, resources: [{ type: ConfigResourceTypes.TOPIC, name: 'altered', configEntries: [{ name: 'retention.ms', value: '5' }] }] })
      expect((await describe()).get('retention.ms')).toBe('60000')
    })
  })

  describe('ACLs', () => {
    // Kafka's error name and code, as the protocol guide lists them: Brook has no authorizer, as a Kafka without one.
    const SECURITY_DISABLED = { type: 'SECURITY_DISABLED', code: 54 }
    const binding = {
      resourceType: AclResourceTypes.TOPIC,
      resourceName: 'orders',
      resourcePatternType: ResourcePatternTypes.LITERAL,
      principal: 'User:alice',
      host: '*',
      operation: AclOperationTypes.READ,
      permissionType: AclPermissionTypes.ALLOW,
    }

    it('describeAcls, createAcls and deleteAcls (v1) are SECURITY_DISABLED, as on a Kafka without an authorizer', async () => {
      await expect(admin.describeAcls({ resourceType: AclResourceTypes.ANY, resourcePatternType: ResourcePatternTypes.ANY, operation: AclOperationTypes.ANY, permissionType: AclPermissionTypes.ANY }))
        .rejects.toMatchObject(SECURITY_DISABLED)
      await expect(admin.createAcls({ acl: [binding] })).rejects.toMatchObject(SECURITY_DISABLED)
      await expect(admin.deleteAcls({ filters: [binding] })).rejects.toMatchObject(SECURITY_DISABLED)
    })
  })

  describe('deleteTopicRecords', () => {
    it('moves the low watermark: fetchTopicOffsets shows it, and a consumer from the beginning starts there', async () => {
      await admin.createTopics({ topics: [{ topic: 'purged', numPartitions: 2 }] })
      await produce('purged', 20, 2)
      // kafkajs looks partition leaders up in its metadata cache before anything else (admin deleteTopicRecords), so
      // it must have seen the topic; fetchTopicOffsets loads it, and shows the starting point.
      expect((await admin.fetchTopicOffsets('purged')).map((p) => p.low)).toEqual(['0', '0'])
      await admin.deleteTopicRecords({ topic: 'purged', partitions: [{ partition: 0, offset: '6' }, { partition: 1, offset: '-1' }] })
      expect(await admin.fetchTopicOffsets('purged')).toEqual([
        { partition: 0, offset: '10', high: '10', low: '6' },
        { partition: 1, offset: '10', high: '10', low: '10' },
      ])
      const reader = await consume('purged-reader', 'purged')
      await waitFor('the records left', () => reader.read.length >= 4)
      await produce('purged', 2, 2, 'later')
      await waitFor('the later records', () => reader.read.length >= 6)
      expect(reader.read.filter((r) => r.partition === 0).map((r) => r.offset)).toEqual(['6', '7', '8', '9', '10'])
      expect(reader.read.filter((r) => r.partition === 1).map((r) => r.offset)).toEqual(['10'])
    })

    it('a compacted topic refuses (POLICY_VIOLATION): only compaction removes its records, as in Kafka', async () => {
      await admin.createTopics({ topics: [{ topic: 'compacted-records', numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] })
      await producer.send({ topic: 'compacted-records', messages: [{ key: 'k', value: 'v1' }, { key: 'k', value: 'v2' }] })
      await admin.fetchTopicOffsets('compacted-records')
      const error = await admin.deleteTopicRecords({ topic: 'compacted-records', partitions: [{ partition: 0, offset: '1' }] }).catch((e: unknown) => e)
      expect((error as { cause: unknown }).cause).toMatchObject({ partitions: [{ partition: 0, error: { type: 'POLICY_VIOLATION' } }] })
      expect(await admin.fetchTopicOffsets('compacted-records')).toEqual([{ partition: 0, offset: '2', high: '2', low: '0' }])
    })

    it('an internal topic refuses (INVALID_TOPIC_EXCEPTION) whatever its cleanup.policy, as Kafka\'s ReplicaManager does', async () => {
      // fetchOffsets looks the group's coordinator up, which creates __consumer_offsets.
      await admin.createTopics({ topics: [{ topic: 'read-by-a-group', numPartitions: 1 }] })
      await waitFor('__consumer_offsets', () => admin.fetchOffsets({ groupId: 'internal-records', topics: ['read-by-a-group'] }).then(() => true))
      await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: '__consumer_offsets', configEntries: [{ name: 'cleanup.policy', value: 'compact,delete' }] }] })
      const before = await admin.fetchTopicOffsets('__consumer_offsets')
      const error = await admin.deleteTopicRecords({ topic: '__consumer_offsets', partitions: [{ partition: 0, offset: '-1' }] }).catch((e: unknown) => e)
      expect((error as { cause: unknown }).cause).toMatchObject({ partitions: [{ partition: 0, error: { type: 'INVALID_TOPIC_EXCEPTION' } }] })
      expect(await admin.fetchTopicOffsets('__consumer_offsets')).toEqual(before)
    })

    it('an offset beyond the high watermark is refused (OFFSET_OUT_OF_RANGE) and deletes nothing', async () => {
      await admin.createTopics({ topics: [{ topic: 'guarded-records', numPartitions: 1 }] })
      await produce('guarded-records', 5, 1)
      await admin.fetchTopicOffsets('guarded-records')
      const error = await admin.deleteTopicRecords({ topic: 'guarded-records', partitions: [{ partition: 0, offset: '50' }] }).catch((e: unknown) => e)
      // kafkajs wraps the broker's per-partition answer once its retries (none here) are spent.
      expect((error as { cause: unknown }).cause).toMatchObject({ name: 'KafkaJSDeleteTopicRecordsError', partitions: [{ partition: 0, error: { type: 'OFFSET_OUT_OF_RANGE' } }] })
      expect(await admin.fetchTopicOffsets('guarded-records')).toEqual([{ partition: 0, offset: '5', high: '5', low: '0' }])
    })
  })
})
