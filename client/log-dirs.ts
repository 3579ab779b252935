/**
 * Log directories on the wire, what kafka-log-dirs.sh --describe does through Admin.describeLogDirs (KIP-113):
 * DescribeLogDirs at every node, each answering for the partition replicas it holds.
 */
import type { ClusterClient } from './cluster-client.js'
import { errorText } from './kafka-client.js'
import { ErrorCode } from '../protocol/errors.js'
import { describeLogDirs as describeLogDirsApi, type DescribeLogDirsRequest, type DescribeLogDirsResponse } from '../protocol/messages/describe-log-dirs.js'

/** One node's log directory, as DescribeLogDirs answers it. */
export interface LogDirDescription {
  nodeId: number
  /** The directory's absolute path on the node. */
  logDir: string
  /** The directory's error as `<NAME> (<message>)` (KAFKA_STORAGE_ERROR for a node whose storage failed), or null. */
  error: string | null
  /** The volume's size and the bytes still usable on it; null where the node does not say (v0-3, or -1). */
  totalBytes: bigint | null
  usableBytes: bigint | null
  /** The replicas it holds, by topic then partition. */
  partitions: LogDirPartition[]
}

export interface LogDirPartition {
  topic: string
  partition: number
  /** Bytes of the replica's log. */
  sizeBytes: bigint
  /** How far the log end is behind the high watermark (0 for a current log that is not behind). */
  offsetLag: bigint
  /** A log that will replace the current one once it catches up (AlterReplicaLogDirs); Brook never has one. */
  isFuture: boolean
}

/**
 * DescribeLogDirs (v0-4, the highest both sides implement) at every node Metadata lists, in node id order; `topic`
 * keeps only that topic's replicas, as kafka-log-dirs.sh's `--topic-list` filters the answers. A node lost meanwhile
 * is waited out as `ClusterClient.atEveryNode` says. Errors: UNKNOWN_TOPIC_OR_PARTITION for a topic that does not
 * exist; a node's directory error is reported in `error`, not thrown.
 */
export async function describeLogDirs(cluster: ClusterClient, topic: string | null): Promise<LogDirDescription[]> {
  if (topic !== null) await cluster.topicsNamed([topic], 'fail')
  const perNode = await cluster.atEveryNode('cannot describe the log directories', async (client, nodeId) => {
    const version = client.version(describeLogDirsApi, '0-4')
    const response = await client.request<DescribeLogDirsRequest, DescribeLogDirsResponse>(describeLogDirsApi, version, { topics: null })
    if (response.errorCode) throw new Error(`cannot describe the log directories of node ${nodeId}: ${errorText(response.errorCode)}`)
    return response.results.map((result): LogDirDescription => ({
      nodeId,
      logDir: result.logDir,
      error: result.errorCode === ErrorCode.NONE ? null : errorText(result.errorCode),
      totalBytes: result.totalBytes === undefined || result.totalBytes < 0n ? null : result.totalBytes,
      usableBytes: result.usableBytes === undefined || result.usableBytes < 0n ? null : result.usableBytes,
      partitions: result.topics
        .filter((t) => topic === null || t.name === topic)
        .flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionIndex, sizeBytes: p.partitionSize, offsetLag: p.offsetLag, isFuture: p.isFutureKey })))
        .sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition)),
    }))
  })
  return perNode.flat()
}

/**
 * The JSON kafka-log-dirs.sh --describe prints, so that scripts written for it read Brook's:
 * `{"version":1,"brokers":[{"broker":1,"logDirs":[{"logDir":"/data","error":null,"partitions":[{"partition":"t-0",
 * "size":85,"offsetLag":0,"isFuture":false}]}]}]}` (sizes as JSON numbers, exact below 2^53 bytes).
 */
export function logDirsJson(described: readonly LogDirDescription[]): string {
  const nodeIds = [...new Set(described.map((d) => d.nodeId))]
  return JSON.stringify({
    version: 1,
    brokers: nodeIds.map((broker) => ({
      broker,
      logDirs: described.filter((d) => d.nodeId === broker).map((d) => ({
        logDir: d.logDir,
        error: d.error === null ? null : d.error.split(' ')[0],
        partitions: d.partitions.map((p) => ({ partition: `${p.topic}-${p.partition}`, size: Number(p.sizeBytes), offsetLag: Number(p.offsetLag), isFuture: p.isFuture })),
      })),
    })),
  })
}
