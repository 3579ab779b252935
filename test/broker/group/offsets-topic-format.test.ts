/**
 * What `__consumer_offsets` holds, read the way a monitoring tool reads it on Kafka: raw batches fetched from the
 * topic, keys and values decoded here by hand from the spec layout (reference/kafka-message-specs/internal/
 * group-coordinator/*.json; each key and value is an int16 version followed by the fields), never with the broker's
 * own offsets-topic.ts:
 *
 *   OffsetCommitKey     v0-1: group:string topic:string partition:int32
 *   OffsetCommitValue   v3:   offset:int64 leaderEpoch:int32 metadata:string commitTimestamp:int64
 *   GroupMetadataKey    v2:   group:string
 *   GroupMetadataValue  v3:   protocolType:string generation:int32 protocol:string? leader:string?
 *                             currentStateTimestamp:int64 members:[memberId:string groupInstanceId:string?
 *                             clientId:string clientHost:string rebalanceTimeout:int32 sessionTimeout:int32
 *                             subscription:bytes assignment:bytes]
 *
 * and each group's records live in partition abs(String.hashCode(groupId)) % 50 (GroupMetadataManager.partitionFor).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AssignerProtocol, Kafka, logLevel, type Admin } from 'kafkajs'
import type { KafkaClient } from '../../../client/kafka-client.js'
import { startConfiguredBroker, FAST_GROUPS } from '../../helpers/broker-config.js'
import type { BrokerProcess } from '../../helpers/broker.js'
import { connect, createTopic, readPartition, recordsOf } from '../../helpers/kafka.js'
import { commit } from '../../helpers/groups-wire.js'
import { waitFor } from '../../helpers/wait.js'
import { loggedErrors } from '../../helpers/broker-log.js'

/** A big-endian reader for the non-flexible layouts above. */
class Fields {
  private at = 0
  constructor(private readonly bytes: Buffer) {}
  int16(): number {
    return this.bytes.readInt16BE((this.at += 2) - 2)
  }
  int32(): number {
    return this.bytes.readInt32BE((this.at += 4) - 4)
  }
  int64(): bigint {
    return this.bytes.readBigInt64BE((this.at += 8) - 8)
  }
  string(): string | null {
    const length = this.int16()
    if (length < 0) return null
    return this.bytes.toString('utf8', this.at, (this.at += length))
  }
  bytes32(): Buffer {
    const length = this.int32()
    return this.bytes.subarray(this.at, (this.at += length))
  }
  get done(): boolean {
    return this.at === this.bytes.length
  }
}

type Decoded =
  | { kind: 'offset'; keyVersion: number; group: string; topic: string; partition: number; value: null | { version: number; offset: bigint; leaderEpoch: number; metadata: string; commitTimestamp: bigint } }
  | { kind: 'group'; keyVersion: number; group: string; value: null | GroupValue }

interface GroupValue {
  version: number
  protocolType: string
  generation: number
  protocol: string | null
  leader: string | null
  currentStateTimestamp: bigint
  members: { memberId: string; groupInstanceId: string | null; clientId: string; clientHost: string; rebalanceTimeout: number; sessionTimeout: number; subscription: Buffer; assignment: Buffer }[]
}

function decode(key: Buffer, value: Buffer | null): Decoded {
  const k = new Fields(key)
  const keyVersion = k.int16()
  if (keyVersion === 0 || keyVersion === 1) {
    const group = k.string()!
    const topic = k.string()!
    const partition = k.int32()
    expect(k.done).toBe(true)
    if (value === null) return { kind: 'offset', keyVersion, group, topic, partition, value: null }
    const v = new Fields(value)
    const version = v.int16()
    expect(version).toBe(3)
    const decoded = { version, offset: v.int64(), leaderEpoch: v.int32(), metadata: v.string()!, commitTimestamp: v.int64() }
    expect(v.done).toBe(true)
    return { kind: 'offset', keyVersion, group, topic, partition, value: decoded }
  }
  expect(keyVersion).toBe(2)
  const group = k.string()!
  expect(k.done).toBe(true)
  if (value === null) return { kind: 'group', keyVersion, group, value: null }
  const v = new Fields(value)
  const version = v.int16()
  expect(version).toBe(3)
  const decoded: GroupValue = {
    version,
    protocolType: v.string()!,
    generation: v.int32(),
    protocol: v.string(),
    leader: v.string(),
    currentStateTimestamp: v.int64(),
    members: [],
  }
  const count = v.int32()
  for (let i = 0; i < count; i++) {
    decoded.members.push({
      memberId: v.string()!,
      groupInstanceId: v.string(),
      clientId: v.string()!,
      clientHost: v.string()!,
      rebalanceTimeout: v.int32(),
      sessionTimeout: v.int32(),
      subscription: v.bytes32(),
      assignment: v.bytes32(),
    })
  }
  expect(v.done).toBe(true)
  return { kind: 'group', keyVersion, group, value: decoded }
}

/** GroupMetadataManager.partitionFor: Utils.abs(groupId.hashCode) % offsets.topic.num.partitions. */
function partitionFor(groupId: string, partitions = 50): number {
  let hash = 0
  for (let i = 0; i < groupId.length; i++) hash = (Math.imul(hash, 31) + groupId.charCodeAt(i)) | 0
  return (hash === -2147483648 ? 0 : Math.abs(hash)) % partitions
}

describe('__consumer_offsets holds Kafka\'s record formats', () => {
  let broker: BrokerProcess
  let client: KafkaClient
  let admin: Admin

  beforeAll(async () => {
    broker = await startConfiguredBroker(FAST_GROUPS)
    client = await connect(broker)
    admin = new Kafka({ clientId: 'format-admin', brokers: [broker.address], logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    await createTopic(broker, 'payments', { partitions: 2 })
  })
  afterAll(async () => {
    await admin?.disconnect()
    client?.close()
    await broker?.stop()
    broker?.cleanup()
    // Checked once the process is gone, so that shutdown is included.
    if (broker) expect(loggedErrors(broker)).toEqual([])
  })

  /** Every record of the group's partition, decoded, with the records of other groups left out. */
  async function recordsOfGroup(groupId: string): Promise<Decoded[]> {
    const { batches } = await readPartition(client, '__consumer_offsets', partitionFor(groupId))
    return recordsOf(batches)
      .map((r) => decode(r.key!, r.value))
      .filter((d) => d.group === groupId)
  }

  it('a commit is an OffsetCommitKey v1 / OffsetCommitValue v3 record with offset, leader epoch and metadata', async () => {
    const before = BigInt(Date.now())
    const codes = await commit(client, {
      groupId: 'ledger-sync',
      offsets: { payments: { 0: { offset: 42n, metadata: 'batch 7', leaderEpoch: 0 }, 1: { offset: 17n, metadata: null } } },
    })
    expect(codes).toEqual({ payments: { 0: 0, 1: 0 } })
    const records = await recordsOfGroup('ledger-sync')
    expect(records).toHaveLength(2)
    expect(records.map((r) => r.kind === 'offset' && [r.keyVersion, r.topic, r.partition, r.value?.offset, r.value?.leaderEpoch, r.value?.metadata])).toEqual([
      [1, 'payments', 0, 42n, 0, 'batch 7'],
      // A null metadata is stored as "" (OffsetCommitValue.metadata is not nullable).
      [1, 'payments', 1, 17n, -1, ''],
    ])
    for (const record of records) {
      if (record.kind !== 'offset') throw new Error('expected an offset record')
      expect(record.value!.commitTimestamp).toBeGreaterThanOrEqual(before)
      expect(record.value!.commitTimestamp).toBeLessThanOrEqual(BigInt(Date.now()))
    }
  })

  it('a consumer group writes GroupMetadataKey v2 / GroupMetadataValue v3 with its members, subscriptions and assignments', async () => {
    const kafka = new Kafka({ clientId: 'format-consumer', brokers: [broker.address], logLevel: logLevel.NOTHING })
    const consumer = kafka.consumer({ groupId: 'settlement', sessionTimeout: 4000, rebalanceTimeout: 7000, heartbeatInterval: 300, maxWaitTimeInMs: 200 })
    let memberId = ''
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => (memberId = payload.memberId))
    await consumer.connect()
    await consumer.subscribe({ topics: ['payments'], fromBeginning: true })
    await consumer.run({ eachMessage: async () => undefined })
    await waitFor('the consumer to join', () => memberId !== '')

    const [stable] = (await recordsOfGroup('settlement')).filter((r) => r.kind === 'group')
    if (stable?.kind !== 'group' || !stable.value) throw new Error('no group metadata record')
    expect(stable.keyVersion).toBe(2)
    expect(stable.value).toMatchObject({ protocolType: 'consumer', generation: 1, protocol: 'RoundRobinAssigner', leader: memberId })
    expect(Number(stable.value.currentStateTimestamp)).toBeGreaterThan(Date.now() - 60_000)
    expect(stable.value.members).toHaveLength(1)
    const [member] = stable.value.members
    expect(member).toMatchObject({ memberId, groupInstanceId: null, clientId: 'format-consumer', clientHost: '/127.0.0.1', sessionTimeout: 4000, rebalanceTimeout: 7000 })
    expect(AssignerProtocol.MemberMetadata.decode(member!.subscription)).toMatchObject({ topics: ['payments'] })
    expect(AssignerProtocol.MemberAssignment.decode(member!.assignment)).toMatchObject({ assignment: { payments: [0, 1] } })

    // Leaving empties the group: one more record, a generation later, with no members and no protocol.
    await consumer.disconnect()
    await waitFor('the empty group to be written', async () => (await recordsOfGroup('settlement')).filter((r) => r.kind === 'group').length === 2)
    const empty = (await recordsOfGroup('settlement')).filter((r) => r.kind === 'group')[1]!
    expect(empty.kind === 'group' && empty.value).toMatchObject({ protocolType: 'consumer', generation: 2, protocol: null, members: [] })
  })

  it('deleting a group writes tombstones (null values) for its offsets and its metadata', async () => {
    await commit(client, { groupId: 'short-lived', offsets: { payments: { 0: 5n, 1: 6n } } })
    await admin.deleteGroups(['short-lived'])
    const records = await recordsOfGroup('short-lived')
    const tombstones = records.filter((r) => r.value === null)
    expect(tombstones.map((r) => (r.kind === 'offset' ? `offset ${r.topic}-${r.partition}` : 'group')).sort()).toEqual(['group', 'offset payments-0', 'offset payments-1'])
  })

  it('a group\'s records are all in its partition, abs(hashCode) % 50, and in no other', async () => {
    for (let partition = 0; partition < 50; partition++) {
      const groups = recordsOf((await readPartition(client, '__consumer_offsets', partition)).batches).map((r) => decode(r.key!, r.value).group)
      for (const group of groups) expect(partitionFor(group), `${group} found in partition ${partition}`).toBe(partition)
    }
  })
})
