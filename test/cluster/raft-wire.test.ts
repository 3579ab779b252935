/**
 * The quorum's messages on Kafka's wire (broker/cluster/raft-wire.ts): each message, encoded with Kafka's own codec
 * at the version Brook sends and decoded again, is the message it was, and log batches survive as record batches.
 */
import { describe, expect, it } from 'vitest'
import { codecFor, encodeToBuffer } from '../../protocol/codec.js'
import { Reader } from '../../protocol/reader.js'
import { ErrorCode } from '../../protocol/errors.js'
import { Attribute, encodeRecordBatch } from '../../protocol/record-batch.js'
import type { ApiSpec } from '../../protocol/schema.js'
import {
  decodeRaftBatches,
  encodeRaftBatches,
  fromWireRequest,
  fromWireResponse,
  RaftWireError,
  toWireRequest,
  toWireResponse,
} from '../../broker/cluster/raft-wire.js'
import type { RaftRequest, RaftResponse } from '../../broker/cluster/raft/messages.js'
import type { RaftBatch } from '../../storage/raft-store.js'

const CLUSTER = 'Qb80q1giSkHZ7GZk8-LDdQ'

const batches: RaftBatch[] = [
  { type: 'leaderChange', baseOffset: 0n, epoch: 1, leaderChange: { leaderId: 2, voters: [1, 2, 3], grantingVoters: [2, 3] } },
  { type: 'data', baseOffset: 1n, epoch: 1, records: [Buffer.from('first'), Buffer.from([0, 1, 2, 255])] },
  { type: 'data', baseOffset: 3n, epoch: 4, records: [Buffer.alloc(0)] },
]

const requests: { source: number; message: RaftRequest }[] = [
  { source: 2, message: { type: 'VoteRequest', clusterId: CLUSTER, voterId: 1, candidateEpoch: 5, candidateId: 2, lastOffsetEpoch: 4, lastOffset: 17n, preVote: true } },
  { source: 3, message: { type: 'VoteRequest', clusterId: CLUSTER, voterId: 1, candidateEpoch: 6, candidateId: 3, lastOffsetEpoch: 4, lastOffset: 17n, preVote: false } },
  { source: 2, message: { type: 'BeginQuorumEpochRequest', clusterId: CLUSTER, voterId: 3, leaderId: 2, leaderEpoch: 6 } },
  { source: 2, message: { type: 'EndQuorumEpochRequest', clusterId: CLUSTER, leaderId: 2, leaderEpoch: 6, preferredSuccessors: [3, 1] } },
  {
    source: 3,
    message: { type: 'FetchRequest', clusterId: CLUSTER, replicaId: 3, maxWaitMs: 500, maxBytes: 8 << 20, currentLeaderEpoch: 6, fetchOffset: 40n, lastFetchedEpoch: 5, logStartOffset: 10n },
  },
  {
    source: 1,
    message: { type: 'FetchSnapshotRequest', clusterId: CLUSTER, replicaId: 1, maxBytes: 1 << 20, currentLeaderEpoch: 6, snapshotId: { endOffset: 30n, epoch: 5 }, position: 4096n },
  },
]

const leader = { leaderId: 2, leaderEpoch: 6 }
const responses: { apiOf: RaftRequest['type']; message: RaftResponse }[] = [
  { apiOf: 'VoteRequest', message: { type: 'VoteResponse', errorCode: ErrorCode.NONE, ...leader, voteGranted: true } },
  { apiOf: 'VoteRequest', message: { type: 'VoteResponse', errorCode: ErrorCode.INCONSISTENT_CLUSTER_ID, leaderId: -1, leaderEpoch: -1, voteGranted: false } },
  { apiOf: 'BeginQuorumEpochRequest', message: { type: 'BeginQuorumEpochResponse', errorCode: ErrorCode.FENCED_LEADER_EPOCH, leaderId: 3, leaderEpoch: 7 } },
  { apiOf: 'EndQuorumEpochRequest', message: { type: 'EndQuorumEpochResponse', errorCode: ErrorCode.NONE, ...leader } },
  {
    apiOf: 'FetchRequest',
    message: { type: 'FetchResponse', errorCode: ErrorCode.NONE, highWatermark: 3n, logStartOffset: 0n, divergingEpoch: null, snapshotId: null, currentLeader: leader, records: batches },
  },
  {
    apiOf: 'FetchRequest',
    message: { type: 'FetchResponse', errorCode: ErrorCode.NONE, highWatermark: 40n, logStartOffset: 0n, divergingEpoch: { epoch: 4, endOffset: 12n }, snapshotId: null, currentLeader: leader, records: [] },
  },
  {
    apiOf: 'FetchRequest',
    message: { type: 'FetchResponse', errorCode: ErrorCode.NONE, highWatermark: 40n, logStartOffset: 30n, divergingEpoch: null, snapshotId: { endOffset: 30n, epoch: 5 }, currentLeader: leader, records: [] },
  },
  {
    apiOf: 'FetchSnapshotRequest',
    message: { type: 'FetchSnapshotResponse', errorCode: ErrorCode.NONE, snapshotId: { endOffset: 30n, epoch: 5 }, currentLeader: leader, size: 9000n, position: 4096n, unalignedRecords: Buffer.from('snapshot bytes') },
  },
]

/** Through Kafka's codec for `spec` at `version` and back. */
function overTheWire(spec: ApiSpec['request'] | ApiSpec['response'], version: number, body: unknown): unknown {
  return codecFor(spec, version).decode(new Reader(encodeToBuffer(spec, version, body)))
}

describe('the quorum on the wire', () => {
  it.each(requests.map((r) => [r.message.type, r] as const))('%s round-trips', (_type, { source, message }) => {
    const wire = toWireRequest(message)
    const decoded = overTheWire(wire.api.request, wire.version, wire.body)
    expect(fromWireRequest(wire.api.apiKey, decoded)).toEqual({ source, message })
  })

  it.each(responses.map((r, i) => [`${r.message.type} #${i}`, r] as const))('%s round-trips', (_name, { apiOf, message }) => {
    const request = requests.find((r) => r.message.type === apiOf)!
    const wire = toWireRequest(request.message)
    const decoded = overTheWire(wire.api.response, wire.version, toWireResponse(message))
    expect(fromWireResponse(wire.api.apiKey, decoded)).toEqual(message)
  })

  it('puts INCONSISTENT_CLUSTER_ID at the top level and other errors on the partition, as Kafka does', () => {
    const clash = toWireResponse({ type: 'VoteResponse', errorCode: ErrorCode.INCONSISTENT_CLUSTER_ID, leaderId: -1, leaderEpoch: -1, voteGranted: false }) as {
      errorCode: number
      topics: { partitions: { errorCode: number }[] }[]
    }
    expect(clash.errorCode).toBe(ErrorCode.INCONSISTENT_CLUSTER_ID)
    expect(clash.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.NONE)
    const fenced = toWireResponse({ type: 'BeginQuorumEpochResponse', errorCode: ErrorCode.FENCED_LEADER_EPOCH, ...leader }) as typeof clash
    expect(fenced.errorCode).toBe(ErrorCode.NONE)
    expect(fenced.topics[0]!.partitions[0]!.errorCode).toBe(ErrorCode.FENCED_LEADER_EPOCH)
  })

  it('carries a leader change as a control batch and data as record values, at their offsets and epochs', () => {
    const encoded = encodeRaftBatches(batches)
    expect(encoded[0]!.readInt16BE(21) & Attribute.control).toBe(Attribute.control)
    expect(encoded[1]!.readInt16BE(21) & Attribute.control).toBe(0)
    expect(decodeRaftBatches(Buffer.concat(encoded))).toEqual(batches)
    expect(decodeRaftBatches(null)).toEqual([])
  })

  it('refuses a control batch that is not a leader change, and a record without a value', () => {
    const commitMarker = Buffer.alloc(4)
    commitMarker.writeInt16BE(1, 2)
    const marker = encodeRecordBatch([{ key: commitMarker, value: Buffer.alloc(6) }], { baseOffset: 0n, partitionLeaderEpoch: 1, flags: Attribute.control })
    expect(() => decodeRaftBatches(marker)).toThrow(RaftWireError)
    const tombstone = encodeRecordBatch([{ key: null, value: null }], { baseOffset: 0n, partitionLeaderEpoch: 1 })
    expect(() => decodeRaftBatches(tombstone)).toThrow(RaftWireError)
  })

  it('refuses a request that names no partition of the metadata log', () => {
    const wire = toWireRequest(requests[0]!.message)
    expect(() => fromWireRequest(wire.api.apiKey, { ...(wire.body as object), topics: [] })).toThrow(RaftWireError)
    const fetchWire = toWireRequest(requests[4]!.message)
    const body = fetchWire.body as { topics: { topicId: string }[] }
    expect(() => fromWireRequest(fetchWire.api.apiKey, { ...body, topics: [{ ...body.topics[0], topicId: '00000000-0000-0000-0000-000000000009' }] })).toThrow(RaftWireError)
  })
})
