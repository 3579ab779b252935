/**
 * DescribeLogDirs: v0-4 (KIP-113; `kafka-log-dirs.sh --describe`, Admin.describeLogDirs), answered by each node for
 * its own logs, as Kafka's ReplicaManager.describeLogDirs does.
 *
 * Behaviour
 * - One log directory: the node's data directory (`--data-dir`, Kafka's `log.dirs`), as an absolute path. Every
 *   partition log lives in its LevelDB store, so a partition's size is the bytes of its stored batches
 *   (`PartitionLog.sizeBytes`: from the log start to the log end, as Kafka sums its segments).
 * - `topics` null asks for every partition this node holds; otherwise the partitions named, of which those not held
 *   here are left out, as is a topic none of whose partitions remain (Kafka: `filterNot(_.partitions().isEmpty)`).
 *   A single node holds every partition; a cluster node the partitions its metadata image makes it a replica of (the
 *   internal topics included; the metadata log is not a partition log and is never listed).
 * - offsetLag is max(highWatermark - logEndOffset, 0), Kafka's getLogEndOffsetLag for a current log (0 unless the HW
 *   is past the log end); isFutureKey is always false: Brook has one log directory, so AlterReplicaLogDirs has
 *   nothing to move.
 * - A node whose storage failed (it refuses every write until restarted, storage/README.md) answers its directory
 *   with KAFKA_STORAGE_ERROR and no topics, as Kafka answers an offline log directory.
 * - Without ACLs the CLUSTER DESCRIBE check always passes; the top-level errorCode (v3+) is NONE.
 *
 * Version notes
 * - v2 is the first flexible version; v3 adds the top-level errorCode; v4 adds totalBytes and usableBytes of the
 *   volume the directory is on (statfs: blocks and blocks available to an unprivileged user, Java's getTotalSpace
 *   and getUsableSpace), -1 where the volume cannot be read.
 */
import { statfs } from 'node:fs/promises'
import { resolve } from 'node:path'
import {
  describeLogDirs,
  type DescribeLogDirsRequest,
  type DescribeLogDirsResponse,
  type DescribeLogDirsResponseDescribeLogDirsTopic,
} from '../../protocol/messages/describe-log-dirs.js'
import { ErrorCode } from '../../protocol/errors.js'
import { defineHandler, type BrokerServices } from '../handler.js'
import type { Partition } from '../partition.js'

export const describeLogDirsHandler = defineHandler<DescribeLogDirsRequest, DescribeLogDirsResponse>(
  describeLogDirs,
  '0-4',
  async (request, { services }) => {
    const logDir = resolve(services.config.dataDir)
    const volume = await volumeOf(logDir)
    const failed = services.topics.storageFailed
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.NONE,
      results: [{
        errorCode: failed ? ErrorCode.KAFKA_STORAGE_ERROR : ErrorCode.NONE,
        logDir,
        topics: failed ? [] : describedTopics(services, request.topics),
        ...volume,
      }],
    }
  },
)

/** The topics of this node's logs that `asked` names (null: all), each with the partitions held here. */
function describedTopics(services: BrokerServices, asked: DescribeLogDirsRequest['topics']): DescribeLogDirsResponseDescribeLogDirsTopic[] {
  const wanted = asked === null ? null : new Map<string, Set<number>>()
  for (const { topic, partitions } of asked ?? []) {
    const indexes = wanted!.get(topic) ?? new Set<number>()
    for (const index of partitions) indexes.add(index)
    wanted!.set(topic, indexes)
  }
  const described: DescribeLogDirsResponseDescribeLogDirsTopic[] = []
  for (const topic of services.topics.list()) {
    const indexes = wanted?.get(topic.name)
    if (wanted && !indexes) continue
    const partitions = topic.partitions
      .filter((partition) => (indexes?.has(partition.index) ?? true) && heldHere(services, partition))
      .map((partition) => ({
        partitionIndex: partition.index,
        partitionSize: BigInt(partition.log.sizeBytes),
        offsetLag: offsetLagOf(partition),
        isFutureKey: false,
      }))
    if (partitions.length > 0) described.push({ name: topic.name, partitions })
  }
  return described
}

/** A single node holds every partition; a cluster node those it is a replica of (a local log exists for every one). */
function heldHere(services: BrokerServices, partition: Partition): boolean {
  return !services.replicas || services.replicas.get(partition.topic.topicId, partition.index) !== undefined
}

function offsetLagOf(partition: Partition): bigint {
  const lag = partition.highWatermark - partition.log.logEndOffset
  return lag > 0n ? lag : 0n
}

/** The volume's size and what an unprivileged user may still write, in bytes; -1 for both where statfs fails. */
async function volumeOf(dir: string): Promise<{ totalBytes: bigint; usableBytes: bigint }> {
  try {
    const stats = await statfs(dir, { bigint: true })
    return { totalBytes: stats.blocks * stats.bsize, usableBytes: stats.bavail * stats.bsize }
  } catch {
    return { totalBytes: -1n, usableBytes: -1n }
  }
}
