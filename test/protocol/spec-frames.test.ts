/**
 * Boundary versions no client on this machine can send (Metadata v8, CreateTopics v5, DeleteTopics v3 and v4,
 * AddPartitionsToTxn v2, EndTxn v2, WriteTxnMarkers v0 and v1, ElectLeaders v1 and v2; see test/fixtures/frames/README.md), written byte by byte from the message JSON and the protocol guide instead. Each
 * line of hex is one field, in the spec's field order; the comment names it. Like the captured frames, each must
 * decode completely to what it says and encode back to exactly these bytes.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import { decodeRequestFrame, encodeRequestFrame } from './request-frame.js'

interface SpecFrame {
  name: string
  bytes: string
  expected: { header: object; body: object }
}

const frame = (lines: string): string =>
  lines
    .split('\n')
    .map((line) => line.replace(/#.*/, '').replace(/\s+/g, ''))
    .join('')

const SPEC_FRAMES: SpecFrame[] = [
  {
    name: 'Metadata v8 (the last non-flexible version; MetadataRequest.json)',
    bytes: frame(`
      0000001e           # size 30
      0003 0008          # request header v1: apiKey 3, version 8
      00000007           # correlationId
      0005 62726f6f6b    # clientId "brook" (int16 length)
      00000001           # Topics: int32 count 1
      0006 73656e736f72  #   Name "sensor" (STRING; nullable only from v10)
      01                 # AllowAutoTopicCreation (4+)
      00                 # IncludeClusterAuthorizedOperations (8-10)
      01                 # IncludeTopicAuthorizedOperations (8+)
    `),
    expected: {
      header: { requestApiKey: 3, requestApiVersion: 8, correlationId: 7, clientId: 'brook' },
      body: { topics: [{ name: 'sensor' }], allowAutoTopicCreation: true, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: true },
    },
  },
  {
    name: 'CreateTopics v5 (the first flexible version; CreateTopicsRequest.json)',
    bytes: frame(`
      0000003d                    # size 61
      0013 0005                   # request header v2: apiKey 19, version 5
      00000008                    # correlationId
      0005 62726f6f6b             # clientId "brook" (int16 length even in header v2)
      00                          # header tagged fields: none
      02                          # Topics: compact array, 1 element
      07 73656e736f72             #   Name "sensor" (COMPACT_STRING: length + 1)
      00000003                    #   NumPartitions
      0001                        #   ReplicationFactor
      01                          #   Assignments: empty compact array
      02                          #   Configs: 1 element
      0d 726574656e74696f6e2e6d73 #     Name "retention.ms"
      08 33363030303030           #     Value "3600000"
      00                          #     tagged fields
      00                          #   tagged fields
      00007530                    # timeoutMs 30000
      00                          # validateOnly
      00                          # tagged fields
    `),
    expected: {
      header: { requestApiKey: 19, requestApiVersion: 5, correlationId: 8, clientId: 'brook' },
      body: {
        topics: [{ name: 'sensor', numPartitions: 3, replicationFactor: 1, assignments: [], configs: [{ name: 'retention.ms', value: '3600000' }] }],
        timeoutMs: 30000,
        validateOnly: false,
      },
    },
  },
  {
    name: 'DeleteTopics v3 (the last non-flexible version; DeleteTopicsRequest.json)',
    bytes: frame(`
      00000027           # size 39
      0014 0003          # request header v1: apiKey 20, version 3
      00000009           # correlationId
      0005 62726f6f6b    # clientId "brook"
      00000002           # TopicNames (0-5): int32 count 2
      0006 73656e736f72  #   "sensor"
      0006 616c65727473  #   "alerts"
      00007530           # TimeoutMs 30000
    `),
    expected: {
      header: { requestApiKey: 20, requestApiVersion: 3, correlationId: 9, clientId: 'brook' },
      body: { topicNames: ['sensor', 'alerts'], timeoutMs: 30000, topics: [] },
    },
  },
  {
    name: 'DeleteTopics v4 (the first flexible version; DeleteTopicsRequest.json)',
    bytes: frame(`
      00000024           # size 36
      0014 0004          # request header v2: apiKey 20, version 4
      0000000a           # correlationId
      0005 62726f6f6b    # clientId "brook"
      00                 # header tagged fields: none
      03                 # TopicNames: compact array, 2 elements
      07 73656e736f72    #   "sensor"
      07 616c65727473    #   "alerts"
      00007530           # TimeoutMs 30000
      00                 # tagged fields
    `),
    expected: {
      header: { requestApiKey: 20, requestApiVersion: 4, correlationId: 10, clientId: 'brook' },
      body: { topicNames: ['sensor', 'alerts'], timeoutMs: 30000, topics: [] },
    },
  },
  {
    name: 'AddPartitionsToTxn v2 (the last non-flexible version; AddPartitionsToTxnRequest.json)',
    bytes: frame(`
      00000048           # size 72
      0018 0002          # request header v1: apiKey 24, version 2
      0000000b           # correlationId
      0005 62726f6f6b    # clientId "brook"
      0005 65746c2d31    # V3AndBelowTransactionalId "etl-1" (0-3)
      0000000000000007   # V3AndBelowProducerId 7
      0002               # V3AndBelowProducerEpoch 2
      00000002           # V3AndBelowTopics: int32 count 2
      0006 73656e736f72  #   Name "sensor"
      00000002           #   Partitions: int32 count 2
      00000000 00000001  #     0, 1
      0006 616c65727473  #   Name "alerts"
      00000001           #   Partitions: int32 count 1
      00000003           #     3
    `),
    expected: {
      header: { requestApiKey: 24, requestApiVersion: 2, correlationId: 11, clientId: 'brook' },
      body: {
        v3AndBelowTransactionalId: 'etl-1',
        v3AndBelowProducerId: 7n,
        v3AndBelowProducerEpoch: 2,
        v3AndBelowTopics: [
          { name: 'sensor', partitions: [0, 1] },
          { name: 'alerts', partitions: [3] },
        ],
      },
    },
  },
  {
    name: 'EndTxn v2 (the last non-flexible version; EndTxnRequest.json)',
    bytes: frame(`
      00000021           # size 33
      001a 0002          # request header v1: apiKey 26, version 2
      0000000c           # correlationId
      0005 62726f6f6b    # clientId "brook"
      0005 65746c2d31    # TransactionalId "etl-1"
      0000000000000007   # ProducerId 7
      0002               # ProducerEpoch 2
      00                 # Committed: false (abort)
    `),
    expected: {
      header: { requestApiKey: 26, requestApiVersion: 2, correlationId: 12, clientId: 'brook' },
      body: { transactionalId: 'etl-1', producerId: 7n, producerEpoch: 2, committed: false },
    },
  },
  {
    name: 'WriteTxnMarkers v0 (the last non-flexible version; WriteTxnMarkersRequest.json)',
    bytes: frame(`
      0000003a           # size 58
      001b 0000          # request header v1: apiKey 27, version 0
      0000000d           # correlationId
      0005 62726f6f6b    # clientId "brook"
      00000001           # Markers: int32 count 1
      0000000000000007   #   ProducerId 7
      0002               #   ProducerEpoch 2
      01                 #   TransactionResult: true (COMMIT)
      00000001           #   Topics: int32 count 1
      0006 73656e736f72  #     Name "sensor"
      00000002           #     PartitionIndexes: int32 count 2
      00000000 00000001  #       0, 1
      00000005           #   CoordinatorEpoch 5
    `),
    expected: {
      header: { requestApiKey: 27, requestApiVersion: 0, correlationId: 13, clientId: 'brook' },
      body: {
        markers: [{ producerId: 7n, producerEpoch: 2, transactionResult: true, topics: [{ name: 'sensor', partitionIndexes: [0, 1] }], coordinatorEpoch: 5 }],
      },
    },
  },
  {
    name: 'WriteTxnMarkers v1 (the first flexible version; WriteTxnMarkersRequest.json)',
    bytes: frame(`
      00000034           # size 52
      001b 0001          # request header v2: apiKey 27, version 1
      0000000e           # correlationId
      0005 62726f6f6b    # clientId "brook"
      00                 # header tagged fields: none
      02                 # Markers: compact array, 1 element
      0000000000000007   #   ProducerId 7
      0002               #   ProducerEpoch 2
      00                 #   TransactionResult: false (ABORT)
      02                 #   Topics: compact array, 1 element
      07 73656e736f72    #     Name "sensor"
      03                 #     PartitionIndexes: compact array, 2 elements
      00000000 00000001  #       0, 1
      00                 #     tagged fields
      00000005           #   CoordinatorEpoch 5
      00                 #   tagged fields
      00                 # tagged fields
    `),
    expected: {
      header: { requestApiKey: 27, requestApiVersion: 1, correlationId: 14, clientId: 'brook' },
      body: {
        markers: [{ producerId: 7n, producerEpoch: 2, transactionResult: false, topics: [{ name: 'sensor', partitionIndexes: [0, 1] }], coordinatorEpoch: 5 }],
      },
    },
  },
  {
    name: 'ElectLeaders v1 (the last non-flexible version; ElectLeadersRequest.json)',
    bytes: frame(`
      0000002c           # size 44
      002b 0001          # request header v1: apiKey 43, version 1
      0000000f           # correlationId
      0005 62726f6f6b    # clientId "brook"
      00                 # ElectionType 0 (PREFERRED; 1+)
      00000001           # TopicPartitions: int32 count 1 (nullable)
      0006 73656e736f72  #   Topic "sensor"
      00000002           #   Partitions: int32 count 2
      00000000 00000001  #     0, 1
      0000ea60           # TimeoutMs 60000
    `),
    expected: {
      header: { requestApiKey: 43, requestApiVersion: 1, correlationId: 15, clientId: 'brook' },
      body: { electionType: 0, topicPartitions: [{ topic: 'sensor', partitions: [0, 1] }], timeoutMs: 60000 },
    },
  },
  {
    name: 'ElectLeaders v2 (the first flexible version; ElectLeadersRequest.json)',
    bytes: frame(`
      00000024           # size 36
      002b 0002          # request header v2: apiKey 43, version 2
      00000010           # correlationId
      0005 62726f6f6b    # clientId "brook"
      00                 # header tagged fields: none
      01                 # ElectionType 1 (UNCLEAN)
      02                 # TopicPartitions: compact array, 1 element
      07 73656e736f72    #   Topic "sensor"
      02                 #   Partitions: compact array, 1 element
      00000003           #     3
      00                 #   tagged fields
      00001388           # TimeoutMs 5000
      00                 # tagged fields
    `),
    expected: {
      header: { requestApiKey: 43, requestApiVersion: 2, correlationId: 16, clientId: 'brook' },
      body: { electionType: 1, topicPartitions: [{ topic: 'sensor', partitions: [3] }], timeoutMs: 5000 },
    },
  },
]

describe('request frames written from the spec, for versions no available client sends', () => {
  describe.each(SPEC_FRAMES.map((f) => [f.name, f] as const))('%s', (_, spec) => {
    const bytes = Buffer.from(spec.bytes, 'hex')
    let decoded: ReturnType<typeof decodeRequestFrame>
    beforeAll(() => {
      decoded = decodeRequestFrame(bytes)
    })

    it('has a size prefix that matches its length', () => {
      expect(bytes.readInt32BE(0)).toBe(bytes.length - 4)
    })

    it('decodes completely to the fields written', () => {
      expect(decoded.leftover).toBe(0)
      expect(decoded.header).toEqual(spec.expected.header)
      expect(decoded.body).toMatchObject(spec.expected.body)
    })

    it('encodes back to exactly these bytes', () => {
      expect(encodeRequestFrame(decoded.api, decoded.header, decoded.body).toString('hex')).toBe(spec.bytes)
    })
  })
})
