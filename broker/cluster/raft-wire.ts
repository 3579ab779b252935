/**
 * The controller quorum's messages (raft/messages.ts) on Kafka's wire, field by field as KafkaRaftClient sends them:
 *
 *   VoteRequest / VoteResponse                   Vote v2              (preVote is v2's field, KIP-996)
 *   BeginQuorumEpochRequest / ...Response        BeginQuorumEpoch v1
 *   EndQuorumEpochRequest / ...Response          EndQuorumEpoch v1    (preferredSuccessors as preferredCandidates too)
 *   FetchRequest / FetchResponse                 Fetch v17            (ReplicaState.ReplicaId, the metadata topic id)
 *   FetchSnapshotRequest / ...Response           FetchSnapshot v1
 *
 * Each wraps the one partition of `__cluster_metadata` (partition 0; Fetch names it by Kafka's fixed metadata topic
 * id) in Topics[0].Partitions[0]. An error is at the partition level, except INCONSISTENT_CLUSTER_ID, which Kafka
 * puts at the top level; decoding takes the top-level error first. Directory ids (KIP-853) are the zero uuid: the
 * voter set is static.
 *
 * The log's batches travel as magic-2 record batches: a data batch holds each record as a record's value, at the
 * batch's base offset, with partitionLeaderEpoch = the batch's epoch; a leader-change batch is a control batch whose
 * one record has the LEADER_CHANGE key (version 0, type 2) and a LeaderChangeMessage as value. A receiver that cannot
 * read a message (a truncated batch, a record it does not know) throws `RaftWireError`; the transport drops such a
 * message, and the member asks again.
 */
import { METADATA_TOPIC, METADATA_TOPIC_ID, ZERO_UUID } from '../../protocol/constants.js'
import { codecFor, encodeToBuffer } from '../../protocol/codec.js'
import { ErrorCode } from '../../protocol/errors.js'
import { Reader } from '../../protocol/reader.js'
import { Attribute, batchesIn, decodeRecords, encodeRecordBatch, readBatchHeader } from '../../protocol/record-batch.js'
import type { ApiSpec, MessageSpec } from '../../protocol/schema.js'
import { vote, type VoteRequest as WireVoteRequest, type VoteResponse as WireVoteResponse } from '../../protocol/messages/vote.js'
import {
  beginQuorumEpoch,
  type BeginQuorumEpochRequest as WireBeginRequest,
  type BeginQuorumEpochResponse as WireBeginResponse,
} from '../../protocol/messages/begin-quorum-epoch.js'
import {
  endQuorumEpoch,
  type EndQuorumEpochRequest as WireEndRequest,
  type EndQuorumEpochResponse as WireEndResponse,
} from '../../protocol/messages/end-quorum-epoch.js'
import { fetch, type FetchRequest as WireFetchRequest, type FetchResponse as WireFetchResponse } from '../../protocol/messages/fetch.js'
import {
  fetchSnapshot,
  type FetchSnapshotRequest as WireSnapshotRequest,
  type FetchSnapshotResponse as WireSnapshotResponse,
} from '../../protocol/messages/fetch-snapshot.js'
import type { LeaderChangeRecord, RaftBatch } from '../../storage/raft-store.js'
import type { RaftRequest, RaftResponse } from './raft/messages.js'

/** The version of each quorum API Brook sends and accepts (the only ones that carry every field). */
export const RAFT_API_VERSIONS = { vote: 2, beginQuorumEpoch: 1, endQuorumEpoch: 1, fetch: 17, fetchSnapshot: 1 } as const

export class RaftWireError extends Error {
  override readonly name = 'RaftWireError'
}

/** A request on the wire: which API, at which version, with which body. */
export interface WireRequest {
  readonly api: ApiSpec
  readonly version: number
  readonly body: unknown
}

/** Kafka's ControlRecordType.LEADER_CHANGE, and the control record key's version. */
const LEADER_CHANGE_TYPE = 2
const CONTROL_KEY_VERSION = 0

/** Kafka's LeaderChangeMessage (clients/src/main/resources/common/message/LeaderChangeMessage.json), v0. */
const leaderChangeMessage = {
  name: 'LeaderChangeMessage', type: 'data', validVersions: '0', flexibleVersions: '0+',
  fields: [
    { name: 'version', type: 'int16', versions: '0+' },
    { name: 'leaderId', type: 'int32', versions: '0+' },
    { name: 'voters', type: '[]Voter', versions: '0+', fields: [{ name: 'voterId', type: 'int32', versions: '0+' }] },
    { name: 'grantingVoters', type: '[]Voter', versions: '0+', fields: [{ name: 'voterId', type: 'int32', versions: '0+' }] },
  ],
} as const satisfies MessageSpec

interface LeaderChangeMessage {
  version: number
  leaderId: number
  voters: { voterId: number }[]
  grantingVoters: { voterId: number }[]
}

/** The batches as record batches, one after another (what a Fetch response's `records` holds). */
export function encodeRaftBatches(batches: readonly RaftBatch[]): Buffer[] {
  return batches.map((batch) => {
    if (batch.type === 'data') {
      return encodeRecordBatch(
        batch.records.map((value) => ({ value })),
        { baseOffset: batch.baseOffset, partitionLeaderEpoch: batch.epoch },
      )
    }
    const key = Buffer.alloc(4)
    key.writeInt16BE(CONTROL_KEY_VERSION, 0)
    key.writeInt16BE(LEADER_CHANGE_TYPE, 2)
    const message: LeaderChangeMessage = {
      version: 0,
      leaderId: batch.leaderChange.leaderId,
      voters: batch.leaderChange.voters.map((voterId) => ({ voterId })),
      grantingVoters: batch.leaderChange.grantingVoters.map((voterId) => ({ voterId })),
    }
    return encodeRecordBatch([{ key, value: encodeToBuffer(leaderChangeMessage, 0, message) }], {
      baseOffset: batch.baseOffset,
      partitionLeaderEpoch: batch.epoch,
      flags: Attribute.control,
    })
  })
}

/** Record batches back into the log's batches; throws RaftWireError on bytes that are not such batches. */
export function decodeRaftBatches(records: Buffer | readonly Buffer[] | null): RaftBatch[] {
  if (records === null) return []
  const bytes = Buffer.isBuffer(records) ? records : Buffer.concat(records as Buffer[])
  const batches: RaftBatch[] = []
  try {
    for (const batch of batchesIn(bytes)) {
      const header = readBatchHeader(batch)
      const decoded = decodeRecords(batch)
      if (decoded.length === 0) throw new RaftWireError(`an empty batch at offset ${header.baseOffset}`)
      if ((header.attributes & Attribute.control) === 0) {
        batches.push({
          type: 'data',
          baseOffset: header.baseOffset,
          epoch: header.partitionLeaderEpoch,
          records: decoded.map((record) => {
            if (record.value === null) throw new RaftWireError(`a record without a value at offset ${record.offset}`)
            return Buffer.from(record.value)
          }),
        })
        continue
      }
      const record = decoded[0]!
      if (decoded.length !== 1 || record.key === null || record.key.length < 4 || record.key.readInt16BE(2) !== LEADER_CHANGE_TYPE || record.value === null) {
        throw new RaftWireError(`a control batch at offset ${header.baseOffset} that is not one leader change`)
      }
      const message = codecFor<LeaderChangeMessage>(leaderChangeMessage, 0).decode(new Reader(record.value))
      const leaderChange: LeaderChangeRecord = {
        leaderId: message.leaderId,
        voters: message.voters.map((voter) => voter.voterId),
        grantingVoters: message.grantingVoters.map((voter) => voter.voterId),
      }
      batches.push({ type: 'leaderChange', baseOffset: header.baseOffset, epoch: header.partitionLeaderEpoch, leaderChange })
    }
  } catch (error) {
    if (error instanceof RaftWireError) throw error
    throw new RaftWireError(`the metadata log's records cannot be read: ${(error as Error).message}`)
  }
  return batches
}

/** Splits an error code between the top level (INCONSISTENT_CLUSTER_ID, as Kafka) and the partition. */
function errorLevels(errorCode: number): { top: number; partition: number } {
  return errorCode === ErrorCode.INCONSISTENT_CLUSTER_ID ? { top: errorCode, partition: ErrorCode.NONE } : { top: ErrorCode.NONE, partition: errorCode }
}

function onlyPartition<P>(topics: readonly { partitions: readonly P[] }[] | undefined, api: string): P {
  const partition = topics?.[0]?.partitions[0]
  if (partition === undefined) throw new RaftWireError(`${api} names no partition of ${METADATA_TOPIC}`)
  return partition
}

/**
 * The one partition a quorum request names, which must be `__cluster_metadata` partition 0 and nothing else (Kafka's
 * RaftUtil.hasValidTopicPartition): a request naming another topic, another partition or more than one is not about
 * this quorum, and no member may act on it. Throws RaftWireError (the handler answers INVALID_REQUEST).
 */
function metadataPartition<T extends { partitions: readonly unknown[] }>(
  topics: readonly T[],
  api: string,
  isMetadataTopic: (topic: T) => boolean,
  indexOf: (partition: T['partitions'][number]) => number,
): T['partitions'][number] {
  const [topic] = topics
  if (topics.length !== 1 || !isMetadataTopic(topic!)) throw new RaftWireError(`a quorum ${api} must name ${METADATA_TOPIC} alone`)
  const [partition] = topic!.partitions
  if (topic!.partitions.length !== 1 || indexOf(partition!) !== 0) throw new RaftWireError(`a quorum ${api} must name partition 0 of ${METADATA_TOPIC} alone`)
  return partition!
}

/** The wire request for a quorum request. */
export function toWireRequest(message: RaftRequest): WireRequest {
  switch (message.type) {
    case 'VoteRequest': {
      const body: WireVoteRequest = {
        clusterId: message.clusterId,
        voterId: message.voterId,
        topics: [{
          topicName: METADATA_TOPIC,
          partitions: [{
            partitionIndex: 0,
            candidateEpoch: message.candidateEpoch,
            candidateId: message.candidateId,
            candidateDirectoryId: ZERO_UUID,
            voterDirectoryId: ZERO_UUID,
            lastOffsetEpoch: message.lastOffsetEpoch,
            lastOffset: message.lastOffset,
            preVote: message.preVote,
          }],
        }],
      }
      return { api: vote, version: RAFT_API_VERSIONS.vote, body }
    }
    case 'BeginQuorumEpochRequest': {
      const body: WireBeginRequest = {
        clusterId: message.clusterId,
        voterId: message.voterId,
        topics: [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: 0, voterDirectoryId: ZERO_UUID, leaderId: message.leaderId, leaderEpoch: message.leaderEpoch }] }],
        leaderEndpoints: [],
      }
      return { api: beginQuorumEpoch, version: RAFT_API_VERSIONS.beginQuorumEpoch, body }
    }
    case 'EndQuorumEpochRequest': {
      const body: WireEndRequest = {
        clusterId: message.clusterId,
        topics: [{
          topicName: METADATA_TOPIC,
          partitions: [{
            partitionIndex: 0,
            leaderId: message.leaderId,
            leaderEpoch: message.leaderEpoch,
            preferredSuccessors: [...message.preferredSuccessors],
            preferredCandidates: message.preferredSuccessors.map((candidateId) => ({ candidateId, candidateDirectoryId: ZERO_UUID })),
          }],
        }],
        leaderEndpoints: [],
      }
      return { api: endQuorumEpoch, version: RAFT_API_VERSIONS.endQuorumEpoch, body }
    }
    case 'FetchRequest': {
      const body: WireFetchRequest = {
        clusterId: message.clusterId,
        replicaId: -1,
        replicaState: { replicaId: message.replicaId, replicaEpoch: -1n },
        maxWaitMs: message.maxWaitMs,
        minBytes: 0,
        maxBytes: message.maxBytes,
        isolationLevel: 0,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [{
          topic: METADATA_TOPIC,
          topicId: METADATA_TOPIC_ID,
          partitions: [{
            partition: 0,
            currentLeaderEpoch: message.currentLeaderEpoch,
            fetchOffset: message.fetchOffset,
            lastFetchedEpoch: message.lastFetchedEpoch,
            logStartOffset: message.logStartOffset,
            partitionMaxBytes: message.maxBytes,
            replicaDirectoryId: ZERO_UUID,
          }],
        }],
        forgottenTopicsData: [],
        rackId: '',
      }
      return { api: fetch, version: RAFT_API_VERSIONS.fetch, body }
    }
    case 'FetchSnapshotRequest': {
      const body: WireSnapshotRequest = {
        clusterId: message.clusterId,
        replicaId: message.replicaId,
        maxBytes: message.maxBytes,
        topics: [{
          name: METADATA_TOPIC,
          partitions: [{
            partition: 0,
            currentLeaderEpoch: message.currentLeaderEpoch,
            snapshotId: { endOffset: message.snapshotId.endOffset, epoch: message.snapshotId.epoch },
            position: message.position,
            replicaDirectoryId: ZERO_UUID,
          }],
        }],
      }
      return { api: fetchSnapshot, version: RAFT_API_VERSIONS.fetchSnapshot, body }
    }
  }
}

/** The quorum request a wire request of `api` carries, and the member that sent it. Throws RaftWireError. */
export function fromWireRequest(apiKey: number, body: unknown): { source: number; message: RaftRequest } {
  switch (apiKey) {
    case vote.apiKey: {
      const request = body as WireVoteRequest
      const partition = metadataPartition(request.topics, 'Vote', (topic) => topic.topicName === METADATA_TOPIC, (p) => p.partitionIndex)
      return {
        source: partition.candidateId,
        message: {
          type: 'VoteRequest',
          clusterId: request.clusterId ?? '',
          voterId: request.voterId,
          candidateEpoch: partition.candidateEpoch,
          candidateId: partition.candidateId,
          lastOffsetEpoch: partition.lastOffsetEpoch,
          lastOffset: partition.lastOffset,
          preVote: partition.preVote,
        },
      }
    }
    case beginQuorumEpoch.apiKey: {
      const request = body as WireBeginRequest
      const partition = metadataPartition(request.topics, 'BeginQuorumEpoch', (topic) => topic.topicName === METADATA_TOPIC, (p) => p.partitionIndex)
      return {
        source: partition.leaderId,
        message: { type: 'BeginQuorumEpochRequest', clusterId: request.clusterId ?? '', voterId: request.voterId, leaderId: partition.leaderId, leaderEpoch: partition.leaderEpoch },
      }
    }
    case endQuorumEpoch.apiKey: {
      const request = body as WireEndRequest
      const partition = metadataPartition(request.topics, 'EndQuorumEpoch', (topic) => topic.topicName === METADATA_TOPIC, (p) => p.partitionIndex)
      const successors = partition.preferredCandidates.length > 0 ? partition.preferredCandidates.map((c) => c.candidateId) : partition.preferredSuccessors
      return {
        source: partition.leaderId,
        message: { type: 'EndQuorumEpochRequest', clusterId: request.clusterId ?? '', leaderId: partition.leaderId, leaderEpoch: partition.leaderEpoch, preferredSuccessors: successors },
      }
    }
    case fetch.apiKey: {
      const request = body as WireFetchRequest
      const partition = metadataPartition(request.topics, 'Fetch', (topic) => topic.topicId === METADATA_TOPIC_ID, (p) => p.partition)
      // Kafka's KafkaRaftClient.handleFetchRequest refuses these as INVALID_REQUEST; its empty log's lastFetchedEpoch
      // is 0, Brook's -1 (RaftLog.lastFetchedEpoch), so only an epoch below that is refused here.
      if (partition.fetchOffset < 0n || request.maxWaitMs < 0 || partition.lastFetchedEpoch < -1) {
        throw new RaftWireError(`a quorum Fetch must have a fetch offset and a wait of 0 or more and a last fetched epoch of -1 or more (got ${partition.fetchOffset}, ${request.maxWaitMs} ms, ${partition.lastFetchedEpoch})`)
      }
      const replicaId = request.replicaState.replicaId
      return {
        source: replicaId,
        message: {
          type: 'FetchRequest',
          clusterId: request.clusterId ?? '',
          replicaId,
          maxWaitMs: request.maxWaitMs,
          maxBytes: request.maxBytes,
          currentLeaderEpoch: partition.currentLeaderEpoch,
          fetchOffset: partition.fetchOffset,
          lastFetchedEpoch: partition.lastFetchedEpoch,
          logStartOffset: partition.logStartOffset,
        },
      }
    }
    case fetchSnapshot.apiKey: {
      const request = body as WireSnapshotRequest
      const partition = metadataPartition(request.topics, 'FetchSnapshot', (topic) => topic.name === METADATA_TOPIC, (p) => p.partition)
      return {
        source: request.replicaId,
        message: {
          type: 'FetchSnapshotRequest',
          clusterId: request.clusterId ?? '',
          replicaId: request.replicaId,
          maxBytes: request.maxBytes,
          currentLeaderEpoch: partition.currentLeaderEpoch,
          snapshotId: partition.snapshotId,
          position: partition.position,
        },
      }
    }
    default:
      throw new RaftWireError(`API key ${apiKey} is not a quorum API`)
  }
}

/** The wire response for a quorum response. */
export function toWireResponse(message: RaftResponse): unknown {
  const errors = errorLevels(message.errorCode)
  switch (message.type) {
    case 'VoteResponse':
      return {
        errorCode: errors.top,
        topics: [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: 0, errorCode: errors.partition, leaderId: message.leaderId, leaderEpoch: message.leaderEpoch, voteGranted: message.voteGranted }] }],
      } satisfies WireVoteResponse
    case 'BeginQuorumEpochResponse':
      return {
        errorCode: errors.top,
        topics: [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: 0, errorCode: errors.partition, leaderId: message.leaderId, leaderEpoch: message.leaderEpoch }] }],
      } satisfies WireBeginResponse
    case 'EndQuorumEpochResponse':
      return {
        errorCode: errors.top,
        topics: [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: 0, errorCode: errors.partition, leaderId: message.leaderId, leaderEpoch: message.leaderEpoch }] }],
      } satisfies WireEndResponse
    case 'FetchResponse':
      return {
        throttleTimeMs: 0,
        errorCode: errors.top,
        sessionId: 0,
        responses: [{
          topic: METADATA_TOPIC,
          topicId: METADATA_TOPIC_ID,
          partitions: [{
            partitionIndex: 0,
            errorCode: errors.partition,
            highWatermark: message.highWatermark,
            lastStableOffset: message.highWatermark,
            logStartOffset: message.logStartOffset,
            ...(message.divergingEpoch ? { divergingEpoch: { epoch: message.divergingEpoch.epoch, endOffset: message.divergingEpoch.endOffset } } : {}),
            currentLeader: { leaderId: message.currentLeader.leaderId, leaderEpoch: message.currentLeader.leaderEpoch },
            ...(message.snapshotId ? { snapshotId: { endOffset: message.snapshotId.endOffset, epoch: message.snapshotId.epoch } } : {}),
            abortedTransactions: null,
            preferredReadReplica: -1,
            records: encodeRaftBatches(message.records),
          }],
        }],
      } satisfies WireFetchResponse
    case 'FetchSnapshotResponse':
      return {
        throttleTimeMs: 0,
        errorCode: errors.top,
        topics: [{
          name: METADATA_TOPIC,
          partitions: [{
            index: 0,
            errorCode: errors.partition,
            snapshotId: { endOffset: message.snapshotId.endOffset, epoch: message.snapshotId.epoch },
            currentLeader: { leaderId: message.currentLeader.leaderId, leaderEpoch: message.currentLeader.leaderEpoch },
            size: message.size,
            position: message.position,
            unalignedRecords: message.unalignedRecords,
          }],
        }],
      } satisfies WireSnapshotResponse
  }
}

/** The wire response of `api` answering a request with only an error (a request the member cannot take now). */
export function wireErrorResponse(apiKey: number, errorCode: number): unknown {
  const noLeader = { leaderId: -1, leaderEpoch: -1 }
  switch (apiKey) {
    case vote.apiKey:
      return toWireResponse({ type: 'VoteResponse', errorCode, ...noLeader, voteGranted: false })
    case beginQuorumEpoch.apiKey:
      return toWireResponse({ type: 'BeginQuorumEpochResponse', errorCode, ...noLeader })
    case endQuorumEpoch.apiKey:
      return toWireResponse({ type: 'EndQuorumEpochResponse', errorCode, ...noLeader })
    case fetch.apiKey:
      return toWireResponse({ type: 'FetchResponse', errorCode, highWatermark: -1n, logStartOffset: -1n, divergingEpoch: null, snapshotId: null, currentLeader: noLeader, records: [] })
    default:
      return toWireResponse({
        type: 'FetchSnapshotResponse',
        errorCode,
        snapshotId: { endOffset: -1n, epoch: -1 },
        currentLeader: noLeader,
        size: 0n,
        position: 0n,
        unalignedRecords: Buffer.alloc(0),
      })
  }
}

/** The quorum response a wire response of `api` carries. Throws RaftWireError. */
export function fromWireResponse(apiKey: number, body: unknown): RaftResponse {
  switch (apiKey) {
    case vote.apiKey: {
      const response = body as WireVoteResponse
      const partition = onlyPartition(response.topics, 'Vote')
      return { type: 'VoteResponse', errorCode: response.errorCode || partition.errorCode, leaderId: partition.leaderId, leaderEpoch: partition.leaderEpoch, voteGranted: partition.voteGranted }
    }
    case beginQuorumEpoch.apiKey: {
      const response = body as WireBeginResponse
      const partition = onlyPartition(response.topics, 'BeginQuorumEpoch')
      return { type: 'BeginQuorumEpochResponse', errorCode: response.errorCode || partition.errorCode, leaderId: partition.leaderId, leaderEpoch: partition.leaderEpoch }
    }
    case endQuorumEpoch.apiKey: {
      const response = body as WireEndResponse
      const partition = onlyPartition(response.topics, 'EndQuorumEpoch')
      return { type: 'EndQuorumEpochResponse', errorCode: response.errorCode || partition.errorCode, leaderId: partition.leaderId, leaderEpoch: partition.leaderEpoch }
    }
    case fetch.apiKey: {
      const response = body as WireFetchResponse
      const partition = onlyPartition(response.responses, 'Fetch')
      const diverging = partition.divergingEpoch
      const snapshot = partition.snapshotId
      return {
        type: 'FetchResponse',
        errorCode: response.errorCode || partition.errorCode,
        highWatermark: partition.highWatermark,
        logStartOffset: partition.logStartOffset ?? -1n,
        divergingEpoch: diverging && diverging.epoch !== undefined && diverging.epoch >= 0 ? { epoch: diverging.epoch, endOffset: diverging.endOffset ?? -1n } : null,
        snapshotId: snapshot && snapshot.epoch !== undefined && snapshot.epoch >= 0 ? { endOffset: snapshot.endOffset ?? -1n, epoch: snapshot.epoch } : null,
        currentLeader: { leaderId: partition.currentLeader?.leaderId ?? -1, leaderEpoch: partition.currentLeader?.leaderEpoch ?? -1 },
        records: decodeRaftBatches(partition.records),
      }
    }
    case fetchSnapshot.apiKey: {
      const response = body as WireSnapshotResponse
      const partition = onlyPartition(response.topics, 'FetchSnapshot')
      const records = partition.unalignedRecords
      return {
        type: 'FetchSnapshotResponse',
        errorCode: response.errorCode || partition.errorCode,
        snapshotId: partition.snapshotId,
        currentLeader: { leaderId: partition.currentLeader?.leaderId ?? -1, leaderEpoch: partition.currentLeader?.leaderEpoch ?? -1 },
        size: partition.size,
        position: partition.position,
        unalignedRecords: records === null ? Buffer.alloc(0) : Buffer.isBuffer(records) ? Buffer.from(records) : Buffer.concat(records as Buffer[]),
      }
    }
    default:
      throw new RaftWireError(`API key ${apiKey} is not a quorum API`)
  }
}
