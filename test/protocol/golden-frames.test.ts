/**
 * Golden request frames: bytes that real clients (kafkajs, kcat/librdkafka, @platformatic/kafka) sent, captured by
 * test/fixtures/capture-frames.test.ts. Each one must decode completely, say what the client was asked to do, and
 * encode back to exactly the client's bytes. The expected values below were read off the capture commands (topic
 * names, partition counts, acks...), never computed by the codec under test.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { requestHeaderVersion } from '../../protocol/frame.js'
import { parseRange, inRange } from '../../protocol/versions.js'
import { Attribute, checkProducedBatch, decodeRecords, readBatchHeader } from '../../protocol/record-batch.js'
import { Compression } from '../../protocol/compression.js'
import { codecFor } from '../../protocol/codec.js'
import { DecodeError, Reader } from '../../protocol/reader.js'
import { consumerProtocolSubscription } from '../../protocol/messages/consumer-protocol-subscription.js'
import { consumerProtocolAssignment } from '../../protocol/messages/consumer-protocol-assignment.js'
import { HANDLERS } from '../../broker/dispatcher.js'
import { loadFrames, type LoadedFrame } from '../fixtures/frames.js'
import { decodeRequestFrame, encodeRequestFrame } from './request-frame.js'

const frames = loadFrames()
const ZERO_UUID = '00000000-0000-0000-0000-000000000000'

/**
 * Versions no client available here can send (frames/README.md says why). The coverage test below fails when one of
 * these gets a fixture, or when an advertised boundary version has neither a fixture nor an entry here.
 */
const NOT_SENDABLE: Readonly<Record<string, readonly number[]>> = {
  // kafkajs stops at v6, librdkafka 2.0.2 at v4, @platformatic/kafka starts at v9. (spec-frames.test.ts has v8.)
  Metadata: [8],
  // kafkajs stops at v3, librdkafka at v4, @platformatic/kafka implements v7 only. (spec-frames.test.ts has v5.)
  CreateTopics: [5],
  // kafkajs and librdkafka stop at v1, @platformatic/kafka implements v6 only. (spec-frames.test.ts has both.)
  DeleteTopics: [3, 4],
  // kafkajs and librdkafka stop at v2, @platformatic/kafka implements v4-6.
  FindCoordinator: [3],
  // kafkajs and librdkafka 2.0.2 do not implement it, @platformatic/kafka implements v1 only.
  IncrementalAlterConfigs: [0],
  // kafkajs stops at v1, librdkafka 2.0.2 sends v0 only, @platformatic/kafka implements v3-5. (spec-frames.test.ts has v2.)
  AddPartitionsToTxn: [2],
  // kafkajs and librdkafka 2.0.2 stop at v1, @platformatic/kafka implements v3-4. (spec-frames.test.ts has v2.)
  EndTxn: [2],
  // Sent by a transaction coordinator to partition leaders; no client implements it. (spec-frames.test.ts has both.)
  WriteTxnMarkers: [0, 1],
  // kafkajs, librdkafka 2.0.2 and @platformatic/kafka do not implement it. (spec-frames.test.ts has both.)
  ElectLeaders: [1, 2],
  // kafkajs and librdkafka 2.0.2 do not implement it, @platformatic/kafka implements v2-4.
  DescribeLogDirs: [1],
  // kafkajs sends v1 only after a handshake that succeeded, which a PLAINTEXT listener never answers; @platformatic/kafka
  // implements v2 only.
  SaslAuthenticate: [1],
}

/**
 * Frames a client sends with bytes after the last field. librdkafka 2.0.2's ListGroups v3+ request writes its
 * tag section and then gets a second one from the flexible-request framing (rd_kafka_ListGroupsRequest calls
 * rd_kafka_buf_write_tags itself); Kafka and Brook ignore what follows a request's last field.
 */
const TRAILING_BYTES: Readonly<Record<string, number>> = {
  'list-groups-v3-librdkafka': 1,
}

/**
 * The topics a JoinGroup's consumer-protocol metadata subscribes to (ConsumerProtocolSubscription.json), read with
 * the layout of `version` (by default the version the metadata names).
 */
function subscribedTopics(metadata: Buffer, version = metadata.readInt16BE(0)): string[] {
  const reader = new Reader(metadata, 2)
  const subscription = codecFor<{ topics: string[] }>(consumerProtocolSubscription, version).decode(reader)
  expect(reader.remaining).toBe(0)
  return subscription.topics
}

/** What a SyncGroup assignment hands out (ConsumerProtocolAssignment.json). */
function assignedPartitions(assignment: Buffer): { topic: string; partitions: number[] }[] {
  const reader = new Reader(assignment, 2)
  return codecFor<{ assignedPartitions: { topic: string; partitions: number[] }[] }>(consumerProtocolAssignment, assignment.readInt16BE(0)).decode(
    reader,
  ).assignedPartitions
}

/** The last non-flexible and the first flexible version inside an advertised range. */
function boundaryVersions(flexibleVersions: string, advertised: string): number[] {
  const { min, max } = parseRange(advertised)
  const versions: number[] = []
  const firstFlexible = flexibleVersions === 'none' ? max + 1 : parseRange(flexibleVersions).min
  if (firstFlexible - 1 >= min && firstFlexible - 1 <= max) versions.push(firstFlexible - 1)
  if (firstFlexible >= min && firstFlexible <= max) versions.push(firstFlexible)
  return versions
}

function recordsOf(body: any, topic = 0, partition = 0): Buffer {
  return body.topicData[topic].partitionData[partition].records
}

const text = (buffer: Buffer | null): string | null => (buffer === null ? null : buffer.toString())

/** What each captured request asked for; one entry per fixture, checked by a human against the capture command. */
/**
 * What the ACL frames carry, bindings as the spec numbers them: resource type TOPIC 2, pattern LITERAL 3, operation
 * READ 3, permission ALLOW 3; `describe` adds the DescribeAcls frame of a client that filters on that binding's types.
 */
function aclFrames(suffix: string, options: { describe?: boolean } = {}): Record<string, (header: any, body: any) => void> {
  const binding = { resourceType: 2, resourceName: 'golden-acl', resourcePatternType: 3, principal: 'User:alice', host: '*', operation: 3, permissionType: 3 }
  const filter = { resourceTypeFilter: 2, resourceNameFilter: 'golden-acl', patternTypeFilter: 3, principalFilter: 'User:alice', hostFilter: '*', operation: 3, permissionType: 3 }
  return {
    ...(options.describe
      ? { [`describe-acls-${suffix}`]: (_: unknown, body: unknown) => expect(body).toEqual({ ...filter, resourceNameFilter: null, principalFilter: null, hostFilter: null }) }
      : {}),
    [`create-acls-${suffix}`]: (_, body) => expect(body).toEqual({ creations: [binding] }),
    [`delete-acls-${suffix}`]: (_, body) => expect(body).toEqual({ filters: [filter] }),
  }
}

const EXPECTED: Record<string, (header: any, body: any) => void> = {
  'api-versions-v2-kafkajs': (header, body) => {
    expect(header.clientId).toBe('golden-kafkajs')
    expect(body).toMatchObject({ clientSoftwareName: '', clientSoftwareVersion: '' })
  },
  'api-versions-v3-kcat': (header, body) => {
    expect(header.clientId).toBe('rdkafka')
    expect(body).toMatchObject({ clientSoftwareName: 'librdkafka', clientSoftwareVersion: '2.0.2' })
  },
  'api-versions-v3-platformatic': (header, body) => {
    expect(header.clientId).toBe('golden-platformatic')
    expect(body).toMatchObject({ clientSoftwareName: 'platformatic-kafka', clientSoftwareVersion: '1.35.0' })
  },
  'create-partitions-v1-kafkajs': (_, body) => {
    expect(body).toMatchObject({ topics: [{ name: 'golden-kafkajs', count: 3, assignments: null }], validateOnly: false })
  },
  'create-partitions-v1-platformatic': (_, body) => {
    expect(body).toMatchObject({ topics: [{ name: 'golden-platformatic-capped', count: 2, assignments: null }], validateOnly: false })
  },
  'create-partitions-v2-platformatic': (_, body) => {
    expect(body).toMatchObject({ topics: [{ name: 'golden-platformatic-capped', count: 3, assignments: null }], validateOnly: false })
  },
  'create-partitions-v3-platformatic': (_, body) => {
    expect(body).toMatchObject({ topics: [{ name: 'golden-platformatic', count: 3, assignments: null }], validateOnly: false })
  },
  'create-topics-v3-kafkajs': (_, body) => {
    expect(body).toMatchObject({
      topics: [{ name: 'golden-kafkajs', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [{ name: 'retention.ms', value: '3600000' }] }],
      validateOnly: false,
    })
  },
  'create-topics-v4-librdkafka': (header, body) => {
    expect(header.clientId).toBe('golden-librdkafka')
    expect(body).toMatchObject({
      topics: [{ name: 'golden-librdkafka', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [{ name: 'retention.ms', value: '3600000' }] }],
      validateOnly: false,
    })
  },
  'create-topics-v7-platformatic': (_, body) => {
    expect(body).toMatchObject({
      topics: [{ name: 'golden-platformatic', numPartitions: 2, replicationFactor: 1, assignments: [], configs: [{ name: 'retention.ms', value: '3600000' }] }],
      validateOnly: false,
    })
  },
  'delete-topics-v1-kafkajs': (_, body) => {
    expect(body.topicNames).toEqual(['golden-kafkajs'])
  },
  'delete-topics-v6-platformatic': (_, body) => {
    // v6 names topics in structs (name or id); the client names it and leaves the id zero.
    expect(body.topics).toEqual([{ name: 'golden-platformatic', topicId: ZERO_UUID }])
  },
  'describe-cluster-v0-platformatic': (_, body) => {
    expect(body.includeClusterAuthorizedOperations).toBe(true)
  },
  'alter-partition-reassignments-v0-platformatic': (_, body) => {
    expect(body).toMatchObject({ timeoutMs: 30_000, topics: [{ name: 'golden-platformatic-reassign', partitions: [{ partitionIndex: 0, replicas: [1] }] }] })
  },
  'list-partition-reassignments-v0-platformatic': (_, body) => {
    expect(body).toMatchObject({ timeoutMs: 30_000, topics: [{ name: 'golden-platformatic-reassign', partitionIndexes: [0] }] })
  },
  'unregister-broker-v0-platformatic': (_, body) => {
    expect(body).toEqual({ brokerId: 42 })
  },
  'describe-cluster-v1-platformatic': (_, body) => {
    expect(body).toMatchObject({ includeClusterAuthorizedOperations: false, endpointType: 1 })
  },
  'describe-configs-v2-kafkajs': (_, body) => {
    expect(body).toMatchObject({
      resources: [{ resourceType: 2, resourceName: 'golden-kafkajs', configurationKeys: ['retention.ms', 'cleanup.policy'] }],
      includeSynonyms: false,
    })
  },
  'describe-configs-v3-platformatic': (_, body) => {
    expect(body).toMatchObject({
      resources: [{ resourceType: 2, resourceName: 'golden-platformatic-capped', configurationKeys: null }],
      includeSynonyms: true,
      includeDocumentation: false,
    })
  },
  'describe-configs-v4-platformatic': (_, body) => {
    expect(body).toMatchObject({
      resources: [{ resourceType: 2, resourceName: 'golden-platformatic', configurationKeys: ['retention.ms'] }],
      includeSynonyms: false,
      includeDocumentation: false,
    })
  },
  'fetch-v11-kcat': (_, body) => {
    // librdkafka: sessionless (0 / -1), read_committed by default, fetch.wait.max.ms 500.
    expect(body).toMatchObject({ replicaId: -1, maxWaitMs: 500, isolationLevel: 1, sessionId: 0, sessionEpoch: -1 })
    expect(body.topics).toMatchObject([{ topic: 'golden-kcat', partitions: [{ partition: 0, fetchOffset: 0n }] }])
  },
  'fetch-v12-platformatic': (_, body) => {
    expect(body).toMatchObject({ maxWaitMs: 10, sessionId: 0, sessionEpoch: 0 })
    expect(body.topics).toMatchObject([
      { topic: 'golden-platformatic-capped', partitions: [{ partition: 0, fetchOffset: 0n, currentLeaderEpoch: -1, lastFetchedEpoch: -1, partitionMaxBytes: 1048576 }] },
    ])
  },
  'fetch-v17-platformatic': (_, body) => {
    // v13+ name topics by id only; the id is whatever the broker gave the topic at capture time.
    expect(body.topics).toHaveLength(1)
    expect(body.topics[0].topicId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    expect(body.topics[0].topicId).not.toBe(ZERO_UUID)
    expect(body.topics[0].partitions).toMatchObject([{ partition: 0, fetchOffset: 0n, partitionMaxBytes: 1048576 }])
  },
  'list-offsets-v2-kcat': (_, body) => {
    expect(body).toMatchObject({ replicaId: -1, isolationLevel: 1, topics: [{ name: 'golden-kcat', partitions: [{ partitionIndex: 0, timestamp: -2n }] }] })
  },
  'list-offsets-v2-kcat-timestamp': (_, body) => {
    expect(body.topics).toMatchObject([{ name: 'golden-kcat', partitions: [{ partitionIndex: 0, timestamp: 1700000000000n }] }])
  },
  'list-offsets-v3-kafkajs': (_, body) => {
    // admin.fetchTopicOffsets asks every partition of the (then 2-partition) topic for its latest offset.
    expect(body.topics).toMatchObject([
      { name: 'golden-kafkajs', partitions: [{ partitionIndex: 0, timestamp: -1n }, { partitionIndex: 1, timestamp: -1n }] },
    ])
  },
  'list-offsets-v5-platformatic': (_, body) => {
    expect(body.topics).toMatchObject([{ name: 'golden-platformatic-capped', partitions: [{ partitionIndex: 0, timestamp: -2n }] }])
  },
  'list-offsets-v6-platformatic': (_, body) => {
    expect(body.topics).toMatchObject([{ name: 'golden-platformatic-capped', partitions: [{ partitionIndex: 0, timestamp: -2n }] }])
  },
  'list-offsets-v7-platformatic': (_, body) => {
    expect(body.topics).toMatchObject([{ name: 'golden-platformatic', partitions: [{ partitionIndex: 0, timestamp: -1n }] }])
  },
  'list-offsets-v9-platformatic': (_, body) => {
    expect(body).toMatchObject({ replicaId: -1, isolationLevel: 0, timeoutMs: 0 })
    expect(body.topics).toMatchObject([{ name: 'golden-platformatic', partitions: [{ partitionIndex: 0, timestamp: -1n }] }])
  },
  'describe-acls-v1-kafkajs': (_, body) => {
    expect(body).toEqual({ resourceTypeFilter: 1, resourceNameFilter: null, patternTypeFilter: 1, principalFilter: null, hostFilter: null, operation: 1, permissionType: 1 })
  },
  ...aclFrames('v1-kafkajs'),
  ...aclFrames('v2-platformatic', { describe: true }),
  ...aclFrames('v3-platformatic', { describe: true }),
  'describe-topic-partitions-v0-platformatic': (_, body) => {
    expect(body).toEqual({ topics: [{ name: 'golden-a' }, { name: 'golden-b' }], responsePartitionLimit: 100, cursor: { topicName: 'golden-a', partitionIndex: 1 } })
  },
  'describe-log-dirs-v4-platformatic': (_, body) => {
    expect(body).toEqual({ topics: [{ topic: 'golden-platformatic', partitions: [0, 1, 2] }] })
  },
  'describe-log-dirs-v2-platformatic': (_, body) => {
    expect(body).toEqual({ topics: [{ topic: 'golden-platformatic-capped', partitions: [0] }] })
  },
  'metadata-v4-kcat': (_, body) => {
    // "All topics" is a null array from v1 on (MetadataRequest.json).
    expect(body).toMatchObject({ topics: null, allowAutoTopicCreation: true })
  },
  'metadata-v4-kcat-brokers-only': (_, body) => {
    expect(body).toMatchObject({ topics: [], allowAutoTopicCreation: false })
  },
  'metadata-v6-kafkajs': (_, body) => {
    expect(body).toMatchObject({ topics: [{ name: 'golden-kafkajs' }], allowAutoTopicCreation: false })
  },
  'metadata-v9-platformatic': (_, body) => {
    expect(body).toMatchObject({ topics: [{ name: 'golden-platformatic-capped' }], allowAutoTopicCreation: true })
  },
  'metadata-v12-platformatic': (_, body) => {
    expect(body).toMatchObject({ topics: [{ name: 'golden-platformatic', topicId: ZERO_UUID }], allowAutoTopicCreation: false })
  },
  'produce-v7-kafkajs': (header, body) => {
    expect(header.clientId).toBe('golden-kafkajs')
    expect(body).toMatchObject({ transactionalId: null, acks: -1, topicData: [{ name: 'golden-kafkajs', partitionData: [{ index: 0 }] }] })
    const records = decodeRecords(recordsOf(body))
    expect(records.map((r) => [text(r.key), text(r.value)])).toEqual([
      ['device-1', '{"temperature":21.5}'],
      ['device-2', '{"temperature":19}'],
    ])
    expect(records[0]!.headers.map((h) => [h.key, text(h.value)])).toEqual([['unit', 'C']])
  },
  'produce-v7-kafkajs-gzip': (_, body) => {
    expect(body).toMatchObject({ acks: 1, topicData: [{ name: 'golden-kafkajs', partitionData: [{ index: 1 }] }] })
    expect(readBatchHeader(recordsOf(body)).attributes & Attribute.compressionMask).toBe(Compression.gzip)
    expect(decodeRecords(recordsOf(body)).map((r) => text(r.key))).toEqual(['device-0', 'device-1', 'device-2', 'device-3', 'device-4'])
  },
  'produce-v7-kcat': (header, body) => {
    expect(header.clientId).toBe('rdkafka')
    expect(body).toMatchObject({ acks: -1, topicData: [{ name: 'golden-kcat', partitionData: [{ index: 0 }] }] })
    expect(decodeRecords(recordsOf(body)).map((r) => [text(r.key), text(r.value)])).toEqual([
      ['device-1', '{"temperature":21.5}'],
      ['device-2', '{"temperature":19}'],
    ])
  },
  ...Object.fromEntries(
    (['gzip', 'snappy', 'lz4', 'zstd'] as const).map((codec) => [
      `produce-v7-kcat-${codec}`,
      (_: unknown, body: any) => {
        expect(body).toMatchObject({ acks: -1, topicData: [{ name: 'golden-kcat', partitionData: [{ index: 0 }] }] })
        expect(readBatchHeader(recordsOf(body)).attributes & Attribute.compressionMask).toBe(Compression[codec])
        const records = decodeRecords(recordsOf(body))
        expect(records).toHaveLength(20)
        expect(records.map((r) => r.key)).toEqual(Array(20).fill(null))
        expect(text(records[5]!.value)).toBe('{"deviceId":"sensor-1","temperature":21.5,"unit":"C"}')
      },
    ]),
  ),
  'produce-v8-platformatic': (_, body) => {
    expect(body).toMatchObject({ acks: 1, topicData: [{ name: 'golden-platformatic-capped', partitionData: [{ index: 0 }] }] })
    expect(decodeRecords(recordsOf(body)).map((r) => [text(r.key), text(r.value)])).toEqual([['device-3', '{"humidity":40}']])
  },
  'alter-configs-v1-kafkajs': (_, body) => {
    expect(body).toMatchObject({
      resources: [{ resourceType: 2, resourceName: 'golden-kafkajs-group-topic', configs: [{ name: 'retention.ms', value: '7200000' }] }],
      validateOnly: false,
    })
  },
  'alter-configs-v2-platformatic': (_, body) => {
    expect(body).toMatchObject({
      resources: [{ resourceType: 2, resourceName: 'golden-platformatic-group-topic', configs: [{ name: 'retention.ms', value: '7200000' }] }],
      validateOnly: false,
    })
  },
  'delete-groups-v1-kafkajs': (_, body) => {
    expect(body.groupsNames).toEqual(['golden-kafkajs-group'])
  },
  'delete-groups-v2-platformatic': (_, body) => {
    expect(body.groupsNames).toEqual(['golden-platformatic-group'])
  },
  'delete-records-v1-kafkajs': (_, body) => {
    expect(body.topics).toEqual([{ name: 'golden-kafkajs-group-topic', partitions: [{ partitionIndex: 0, offset: 1n }] }])
  },
  'delete-records-v2-platformatic': (_, body) => {
    expect(body.topics).toEqual([{ name: 'golden-platformatic-group-topic', partitions: [{ partitionIndex: 0, offset: 1n }] }])
  },
  'describe-groups-v4-librdkafka': (header, body) => {
    expect(header.clientId).toBe('golden-librdkafka')
    expect(body).toMatchObject({ groups: ['golden-kcat-group-5'], includeAuthorizedOperations: false })
  },
  'describe-groups-v5-platformatic': (_, body) => {
    expect(body).toMatchObject({ groups: ['golden-platformatic-group'], includeAuthorizedOperations: false })
  },
  'fetch-v11-kafkajs': (_, body) => {
    // kafkajs: sessionless, read_committed by default, the consumer's maxWaitTimeInMs.
    expect(body).toMatchObject({ maxWaitMs: 100, isolationLevel: 1, sessionId: 0, sessionEpoch: -1 })
    expect(body.topics).toMatchObject([{ topic: 'golden-kafkajs-group-topic', partitions: [{ partition: 0, fetchOffset: 0n }] }])
  },
  'find-coordinator-v2-kafkajs': (_, body) => {
    expect(body).toMatchObject({ key: 'golden-kafkajs-group', keyType: 0 })
  },
  'heartbeat-v3-kafkajs': (_, body) => {
    expect(body).toMatchObject({ groupId: 'golden-kafkajs-group', generationId: 1, groupInstanceId: null })
    expect(body.memberId).toMatch(/^golden-kafkajs-/)
  },
  'heartbeat-v4-platformatic': (_, body) => {
    expect(body).toMatchObject({ groupId: 'golden-platformatic-group', generationId: 1, groupInstanceId: null })
    expect(body.memberId).toMatch(/^golden-platformatic-/)
  },
  'incremental-alter-configs-v1-platformatic': (_, body) => {
    // configOperation 0 is SET (IncrementalAlterConfigsRequest.json).
    expect(body).toMatchObject({
      resources: [{ resourceType: 2, resourceName: 'golden-platformatic-group-topic', configs: [{ name: 'cleanup.policy', configOperation: 0, value: 'compact' }] }],
    })
  },
  'join-group-v5-kafkajs': (_, body) => {
    expect(body).toMatchObject({ groupId: 'golden-kafkajs-group', memberId: '', groupInstanceId: null, protocolType: 'consumer' })
    expect(body.protocols.map((p: any) => p.name)).toEqual(['RoundRobinAssigner'])
    expect(subscribedTopics(body.protocols[0].metadata)).toEqual(['golden-kafkajs-group-topic'])
  },
  'join-group-v5-kcat': (header, body) => {
    expect(header.clientId).toBe('rdkafka')
    expect(body).toMatchObject({ groupId: 'golden-kcat-group-5', memberId: '', protocolType: 'consumer' })
    // librdkafka's default partition.assignment.strategy is "range,roundrobin".
    expect(body.protocols.map((p: any) => p.name)).toEqual(['range', 'roundrobin'])
    expect(subscribedTopics(body.protocols[0].metadata)).toEqual(['golden-kcat'])
  },
  'join-group-v6-platformatic': (_, body) => {
    expect(body).toMatchObject({ groupId: 'golden-platformatic-group', memberId: '', protocolType: 'consumer', sessionTimeoutMs: 60000 })
    expect(body.protocols.map((p: any) => p.name)).toEqual(['roundrobin'])
    // @platformatic/kafka 1.35 labels its subscription version 1 but writes only the v0 fields (topics, userData),
    // without v1's ownedPartitions: a strict v1 read runs out of bytes.
    const metadata: Buffer = body.protocols[0].metadata
    expect(metadata.readInt16BE(0)).toBe(1)
    expect(() => subscribedTopics(metadata)).toThrow(DecodeError)
    expect(subscribedTopics(metadata, 0)).toEqual(['golden-platformatic-group-topic'])
  },
  'leave-group-v1-kcat': (_, body) => {
    expect(body).toMatchObject({ groupId: 'golden-kcat-group-5' })
    expect(body.memberId).toMatch(/^rdkafka-/)
  },
  'leave-group-v3-kafkajs': (_, body) => {
    // v3+ leave in batches of members (LeaveGroupRequest.json).
    expect(body.groupId).toBe('golden-kafkajs-group')
    expect(body.members).toHaveLength(1)
    expect(body.members[0].memberId).toMatch(/^golden-kafkajs-/)
  },
  'leave-group-v4-platformatic': (_, body) => {
    expect(body.groupId).toBe('golden-platformatic-group')
    expect(body.members).toHaveLength(1)
    expect(body.members[0].memberId).toMatch(/^golden-platformatic-/)
  },
  'list-groups-v2-kafkajs': (header) => {
    // ListGroups v0-3 have no fields at all.
    expect(header.clientId).toBe('golden-kafkajs')
  },
  'list-groups-v3-librdkafka': (header) => {
    expect(header.clientId).toBe('golden-librdkafka')
  },
  'offset-commit-v5-kafkajs': (_, body) => {
    expect(body).toMatchObject({
      groupId: 'golden-kafkajs-group',
      generationIdOrMemberEpoch: 1,
      topics: [{ name: 'golden-kafkajs-group-topic', partitions: [{ partitionIndex: 0, committedOffset: 2n }] }],
    })
  },
  'offset-commit-v7-kcat': (_, body) => {
    // Two plain records, then four codecs x 20 lines, were produced to golden-kcat: the next offset is 82.
    expect(body).toMatchObject({
      groupId: 'golden-kcat-group-5',
      groupInstanceId: null,
      topics: [{ name: 'golden-kcat', partitions: [{ partitionIndex: 0, committedOffset: 82n }] }],
    })
  },
  'offset-commit-v8-platformatic': (_, body) => {
    expect(body).toMatchObject({
      groupId: 'golden-platformatic-group',
      topics: [{ name: 'golden-platformatic-group-topic', partitions: [{ partitionIndex: 0, committedOffset: 1n }] }],
    })
  },
  'offset-delete-v0-platformatic': (_, body) => {
    expect(body).toEqual({ groupId: 'golden-platformatic-group', topics: [{ name: 'golden-platformatic-group-topic', partitions: [{ partitionIndex: 0 }] }] })
  },
  'offset-fetch-v4-kafkajs': (_, body) => {
    expect(body).toMatchObject({ groupId: 'golden-kafkajs-group', topics: [{ name: 'golden-kafkajs-group-topic', partitionIndexes: [0] }] })
  },
  'offset-fetch-v5-kcat': (_, body) => {
    expect(body).toMatchObject({ groupId: 'golden-kcat-group-5', topics: [{ name: 'golden-kcat', partitionIndexes: [0] }] })
  },
  'offset-fetch-v6-kcat': (_, body) => {
    expect(body).toMatchObject({ groupId: 'golden-kcat-group-6', topics: [{ name: 'golden-kcat', partitionIndexes: [0] }] })
  },
  'sync-group-v3-kafkajs': (_, body) => {
    expect(body).toMatchObject({ groupId: 'golden-kafkajs-group', generationId: 1 })
    expect(body.assignments).toHaveLength(1)
    expect(body.assignments[0].memberId).toBe(body.memberId)
    expect(assignedPartitions(body.assignments[0].assignment)).toEqual([{ topic: 'golden-kafkajs-group-topic', partitions: [0] }])
  },
  'sync-group-v4-platformatic': (_, body) => {
    expect(body).toMatchObject({ groupId: 'golden-platformatic-group', generationId: 1 })
    expect(body.assignments).toHaveLength(1)
    expect(assignedPartitions(body.assignments[0].assignment)).toEqual([{ topic: 'golden-platformatic-group-topic', partitions: [0] }])
  },
  // Transactions. Each capture runs on a fresh broker, where a transactional id's first InitProducerId gets epoch 0.
  'init-producer-id-v1-kafkajs-idempotent': (header, body) => {
    expect(header.clientId).toBe('golden-kafkajs')
    // kafkajs's default transactionTimeout is 60000 ms; it sends it for the idempotent id too.
    expect(body).toMatchObject({ transactionalId: null, transactionTimeoutMs: 60000 })
  },
  'init-producer-id-v1-kafkajs': (_, body) => {
    expect(body).toMatchObject({ transactionalId: 'golden-kafkajs-txn', transactionTimeoutMs: 60000 })
  },
  'init-producer-id-v2-kcat': (header, body) => {
    expect(header.clientId).toBe('rdkafka')
    // An idempotent producer has no transaction, so librdkafka sends no timeout (-1).
    expect(body).toMatchObject({ transactionalId: null, transactionTimeoutMs: -1 })
  },
  'init-producer-id-v4-librdkafka': (header, body) => {
    expect(header.clientId).toBe('golden-librdkafka')
    // librdkafka's transaction.timeout.ms defaults to 60000; v3+ carry the current id and epoch, none yet (-1).
    expect(body).toEqual({ transactionalId: 'golden-librdkafka-txn', transactionTimeoutMs: 60000, producerId: -1n, producerEpoch: -1 })
  },
  ...Object.fromEntries(
    (
      [
        ['add-partitions-to-txn-v0-librdkafka', 'golden-librdkafka-txn'],
        ['add-partitions-to-txn-v1-kafkajs', 'golden-kafkajs-txn'],
        ['add-partitions-to-txn-v3-platformatic', 'golden-platformatic-txn'],
      ] as const
    ).map(([name, transactionalId]) => [
      name,
      (_: unknown, body: any) => {
        // Versions 0-3 name one transaction at the top level; 4+ batch them in `transactions` (KIP-890).
        expect(body).toMatchObject({ v3AndBelowTransactionalId: transactionalId, v3AndBelowProducerEpoch: 0, transactions: [] })
        expect(body.v3AndBelowProducerId).toBeGreaterThanOrEqual(0n)
        // Each scenario's topic has the transactional id's name.
        expect(body.v3AndBelowTopics).toEqual([{ name: transactionalId, partitions: [0] }])
      },
    ]),
  ),
  ...Object.fromEntries(
    (
      [
        ['add-offsets-to-txn-v0-librdkafka', 'golden-librdkafka-txn'],
        ['add-offsets-to-txn-v1-kafkajs', 'golden-kafkajs-txn'],
        ['add-offsets-to-txn-v2-platformatic', 'golden-platformatic-txn'],
        ['add-offsets-to-txn-v3-platformatic', 'golden-platformatic-txn'],
      ] as const
    ).map(([name, transactionalId]) => [
      name,
      (_: unknown, body: any) => {
        expect(body).toMatchObject({ transactionalId, producerEpoch: 0, groupId: `${transactionalId}-group` })
        expect(body.producerId).toBeGreaterThanOrEqual(0n)
      },
    ]),
  ),
  ...Object.fromEntries(
    (
      [
        ['end-txn-v1-kafkajs', 'golden-kafkajs-txn'],
        ['end-txn-v1-librdkafka', 'golden-librdkafka-txn'],
        ['end-txn-v3-platformatic', 'golden-platformatic-txn'],
      ] as const
    ).map(([name, transactionalId]) => [
      name,
      (_: unknown, body: any) => {
        expect(body).toMatchObject({ transactionalId, producerEpoch: 0, committed: true })
        expect(body.producerId).toBeGreaterThanOrEqual(0n)
      },
    ]),
  ),
  'txn-offset-commit-v1-kafkajs': (_, body) => {
    expect(body).toMatchObject({ transactionalId: 'golden-kafkajs-txn', groupId: 'golden-kafkajs-txn-group', producerEpoch: 0 })
    expect(body.topics).toEqual([{ name: 'golden-kafkajs-txn', partitions: [expect.objectContaining({ partitionIndex: 0, committedOffset: 1n, committedMetadata: null })] }])
  },
  'txn-offset-commit-v2-librdkafka': (header, body) => {
    expect(header.clientId).toBe('golden-librdkafka')
    expect(body).toMatchObject({ transactionalId: 'golden-librdkafka-txn', groupId: 'golden-librdkafka-txn-group', producerEpoch: 0 })
    // v2 adds committedLeaderEpoch; the offset list had none (-1). librdkafka writes absent metadata as "", not null.
    expect(body.topics).toEqual([
      { name: 'golden-librdkafka-txn', partitions: [{ partitionIndex: 0, committedOffset: 1n, committedLeaderEpoch: -1, committedMetadata: '' }] },
    ])
  },
  'txn-offset-commit-v3-platformatic': (header, body) => {
    expect(header.clientId).toBe('golden-platformatic')
    // v3 adds the group member's identity (KIP-447); the call passed generation -1, no member, no instance id.
    expect(body).toMatchObject({
      transactionalId: 'golden-platformatic-txn',
      groupId: 'golden-platformatic-txn-group',
      producerEpoch: 0,
      generationId: -1,
      memberId: '',
      groupInstanceId: null,
    })
    expect(body.topics).toEqual([
      { name: 'golden-platformatic-txn', partitions: [{ partitionIndex: 0, committedOffset: 5n, committedLeaderEpoch: -1, committedMetadata: 'checkpoint' }] },
    ])
  },
  'sasl-handshake-v1-kafkajs': (header, body) => {
    expect(header.clientId).toBe('golden-kafkajs')
    expect(body).toEqual({ mechanism: 'PLAIN' })
  },
  'sasl-authenticate-v2-platformatic': (header, body) => {
    expect(header.clientId).toBe('golden-platformatic')
    expect(text(body.authBytes)).toBe('\0alice\0secret')
  },
  'describe-producers-v0-platformatic': (_, body) => {
    expect(body).toEqual({ topics: [{ name: 'golden-platformatic-txn', partitionIndexes: [0] }] })
  },
  'describe-transactions-v0-platformatic': (_, body) => {
    expect(body).toEqual({ transactionalIds: ['golden-platformatic-txn'] })
  },
  'list-transactions-v0-platformatic': (_, body) => {
    expect(body).toMatchObject({ stateFilters: ['ONGOING'], producerIdFilters: [] })
  },
  ...Object.fromEntries(['produce-v9-platformatic', 'produce-v10-platformatic'].map((name) => [name, (_: unknown, body: any) => {
    expect(body).toMatchObject({ acks: -1, topicData: [{ name: 'golden-platformatic-data', partitionData: [{ index: 0 }] }] })
    const [record] = decodeRecords(recordsOf(body))
    expect([text(record!.key), text(record!.value)]).toEqual(['device-1', '{"temperature":21.5}'])
    expect(record!.headers.map((h) => [h.key, text(h.value)])).toEqual([['unit', 'C']])
  }])),
}

describe('golden request frames captured from real clients', () => {
  it('are all there, and each has its expectations written down', () => {
    expect(frames.length).toBeGreaterThan(0)
    expect(frames.map((f) => f.name).sort()).toEqual(Object.keys(EXPECTED).sort())
  })

  describe.each(frames.map((frame) => [frame.name, frame] as [string, LoadedFrame]))('%s', (_, frame) => {
    // Decoded inside each test, so a fixture that no longer decodes fails its tests instead of the whole file.
    let decoded: ReturnType<typeof decodeRequestFrame>
    beforeAll(() => {
      decoded = decodeRequestFrame(frame.bytes)
    })

    it('is one whole frame of the API and version its fixture names', () => {
      expect(frame.bytes.readInt32BE(0)).toBe(frame.bytes.length - 4)
      expect(decoded.header.requestApiKey).toBe(frame.apiKey)
      expect(decoded.header.requestApiVersion).toBe(frame.version)
      expect(decoded.api.name).toBe(frame.api)
    })

    const trailing = TRAILING_BYTES[frame.name] ?? 0
    it(trailing ? `decodes with only the client's ${trailing} trailing byte(s) left over` : 'decodes with nothing left over', () => {
      expect(decoded.leftover).toBe(trailing)
    })

    it('says what the client was asked to do', () => {
      EXPECTED[frame.name]!(decoded.header, decoded.body)
    })

    it("encodes back to the client's exact bytes", () => {
      const payload = frame.bytes.subarray(4, frame.bytes.length - trailing)
      expect(encodeRequestFrame(decoded.api, decoded.header, decoded.body).subarray(4).toString('hex')).toBe(payload.toString('hex'))
    })

    it('uses request header v2 exactly when the version is flexible', () => {
      const flexible = inRange(decoded.api.request.flexibleVersions, frame.version)
      expect(requestHeaderVersion(decoded.api, frame.version)).toBe(flexible ? 2 : 1)
    })

    if (frame.api === 'Produce') {
      it("carries record batches the broker's checks accept", () => {
        for (const topic of decoded.body.topicData) {
          for (const partition of topic.partitionData) {
            expect(checkProducedBatch(partition.records, { allowZstd: frame.version >= 7, maxMessageBytes: 1048588 })).toMatchObject({ ok: true })
          }
        }
      })
    }
  })

  it('cover the last non-flexible and first flexible version of every advertised API that some client can send', () => {
    const missing: string[] = []
    const unexpected: string[] = []
    for (const { api, versions } of HANDLERS) {
      for (const version of boundaryVersions(api.request.flexibleVersions, versions)) {
        const captured = frames.some((f) => f.apiKey === api.apiKey && f.version === version)
        const unsendable = NOT_SENDABLE[api.name]?.includes(version) ?? false
        if (!captured && !unsendable) missing.push(`${api.name} v${version}`)
        if (captured && unsendable) unexpected.push(`${api.name} v${version}`)
      }
    }
    expect(missing, 'advertised boundary versions without a captured frame').toEqual([])
    expect(unexpected, 'versions listed as not sendable that now have a fixture').toEqual([])
  })
})
