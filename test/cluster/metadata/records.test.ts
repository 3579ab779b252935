/**
 * The metadata log's record framing (broker/cluster/metadata/records.ts): every record type in every version its
 * spec defines survives a round trip, frames written byte by byte from Kafka's JSON decode to what they say, and
 * bytes that are not a record give a MetadataRecordError naming the problem (never another exception, never a
 * record made of garbage).
 */
import { describe, expect, it } from 'vitest'
import {
  decodeMetadataRecord,
  decodeVersioned,
  encodeMetadataRecord,
  metadataRecordSpec,
  metadataRecordVersions,
  MetadataRecordError,
  metadataRecord,
  type MetadataRecord,
  type MetadataRecordType,
} from '../../../broker/cluster/metadata/records.js'
import { Random } from '../raft/sim/random.js'
import { randomMessage } from './spec-values.js'

const TYPES: MetadataRecordType[] = [
  'RegisterBrokerRecord',
  'UnregisterBrokerRecord',
  'TopicRecord',
  'PartitionRecord',
  'ConfigRecord',
  'PartitionChangeRecord',
  'FenceBrokerRecord',
  'UnfenceBrokerRecord',
  'RemoveTopicRecord',
  'FeatureLevelRecord',
  'ProducerIdsRecord',
  'NoOpRecord',
]

const hex = (lines: string): Buffer =>
  Buffer.from(
    lines
      .split('\n')
      .map((line) => line.replace(/#.*/, '').replace(/\s+/g, ''))
      .join(''),
    'hex',
  )

const TOPIC_ID = '5f1c6a4e-0b2d-4c47-9a3e-6d1f2b7c8e90'

describe('metadata record framing', () => {
  it('knows every version of every record type', () => {
    const versions = Object.fromEntries(TYPES.map((type) => [type, metadataRecordVersions(type)]))
    expect(versions).toEqual({
      RegisterBrokerRecord: [0, 1, 2, 3],
      UnregisterBrokerRecord: [0],
      TopicRecord: [0],
      PartitionRecord: [0, 1, 2],
      ConfigRecord: [0],
      PartitionChangeRecord: [0, 1, 2],
      FenceBrokerRecord: [0],
      UnfenceBrokerRecord: [0],
      RemoveTopicRecord: [0],
      FeatureLevelRecord: [0],
      ProducerIdsRecord: [0],
      NoOpRecord: [0],
    })
  })

  for (const type of TYPES) {
    for (const version of metadataRecordVersions(type)) {
      it(`${type} v${version} round-trips (200 random values)`, () => {
        const random = new Random(version * 100 + metadataRecordSpec(type).apiKey!)
        for (let i = 0; i < 200; i++) {
          const data = randomMessage(metadataRecordSpec(type), version, random)
          const record = { type, data } as MetadataRecord
          const bytes = encodeMetadataRecord(record, { version })
          const decoded = decodeVersioned(bytes)
          expect(decoded.version).toBe(version)
          expect(decoded.record.type).toBe(type)
          expect(decoded.record.data).toMatchObject(data)
          expect(encodeMetadataRecord(decoded.record, { version })).toEqual(bytes)
        }
      })
    }
  }

  it('writes version 0 unless told otherwise', () => {
    const bytes = encodeMetadataRecord(metadataRecord('FenceBrokerRecord', { id: 2, epoch: 42n }))
    expect(decodeVersioned(bytes).version).toBe(0)
  })

  it('decodes FenceBrokerRecord v0 written from FenceBrokerRecord.json and encodes it back exactly', () => {
    const bytes = hex(`
      01                # frame version 1 (ApiMessageAndVersion)
      07                # apiKey 7: FenceBrokerRecord
      00                # version 0
      00000002          # Id
      000000000000002a  # Epoch 42
      00                # tagged fields: none
    `)
    const record = decodeMetadataRecord(bytes)
    expect(record).toEqual({ type: 'FenceBrokerRecord', data: { id: 2, epoch: 42n } })
    expect(encodeMetadataRecord(record)).toEqual(bytes)
  })

  it('decodes PartitionChangeRecord v0 with tagged Isr and Leader and encodes it back exactly', () => {
    const bytes = hex(`
      01 05 00                            # frame 1, apiKey 5: PartitionChangeRecord, version 0
      00000002                            # PartitionId
      5f1c6a4e0b2d4c479a3e6d1f2b7c8e90    # TopicId
      02                                  # tagged fields: 2
      00 09 03 00000001 00000003          #   tag 0 Isr, 9 bytes: compact array of 2: [1, 3]
      01 04 00000003                      #   tag 1 Leader, 4 bytes: 3
    `)
    const record = decodeMetadataRecord(bytes)
    expect(record).toMatchObject({
      type: 'PartitionChangeRecord',
      data: { partitionId: 2, topicId: TOPIC_ID, isr: [1, 3], leader: 3, replicas: null, leaderRecoveryState: -1 },
    })
    expect(encodeMetadataRecord(record)).toEqual(bytes)
  })

  describe('bad frames', () => {
    const valid = encodeMetadataRecord(
      metadataRecord('PartitionRecord', {
        partitionId: 0,
        topicId: TOPIC_ID,
        replicas: [1, 2, 3],
        isr: [1, 2],
        removingReplicas: [],
        addingReplicas: [],
        leader: 1,
        leaderEpoch: 4,
        partitionEpoch: 7,
      }),
    )
    const problem = (bytes: Buffer): string => {
      try {
        decodeMetadataRecord(bytes)
      } catch (error) {
        expect(error).toBeInstanceOf(MetadataRecordError)
        return (error as Error).message
      }
      throw new Error(`${bytes.toString('hex')} decoded`)
    }

    it('name what is wrong', () => {
      expect(problem(Buffer.alloc(0))).toMatch(/frame version does not decode/)
      expect(problem(hex('00 03 00'))).toBe('metadata record frame version 0, expected 1')
      expect(problem(hex('02 03 00'))).toBe('metadata record frame version 2, expected 1')
      expect(problem(hex('01 63 00'))).toBe('unknown metadata record type 99')
      expect(problem(hex('01 03 03'))).toBe('PartitionRecord has no version 3 (valid: 0-2)')
      expect(problem(hex('01 ff ff ff ff 7f'))).toMatch(/type does not decode/)
      expect(problem(hex('01 ff ff 03'))).toMatch(/type does not decode: 65535 is not a short/)
      expect(problem(Buffer.concat([valid, hex('00')]))).toBe('1 bytes after PartitionRecord v0')
    })

    it('every truncation of a valid frame is an error', () => {
      for (let length = 0; length < valid.length; length++) problem(valid.subarray(0, length))
    })

    it('random and mutated bytes decode or give a MetadataRecordError, nothing else', () => {
      const random = new Random(7)
      let decoded = 0
      for (let i = 0; i < 20_000; i++) {
        const bytes =
          i % 2 === 0
            ? Buffer.from(Array.from({ length: random.int(0, 40) }, () => random.int(0, 255)))
            : Buffer.from(valid).fill(random.int(0, 255), random.int(0, valid.length - 1), random.int(0, valid.length))
        try {
          decodeMetadataRecord(bytes)
          decoded++
        } catch (error) {
          expect(error).toBeInstanceOf(MetadataRecordError)
        }
      }
      expect(decoded).toBeGreaterThan(0)
    })
  })
})
