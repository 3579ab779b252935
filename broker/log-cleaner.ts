/**
 * Retention and compaction, run every log.retention.check.interval.ms over every partition, per its cleanup.policy.
 *
 * delete:  batches at the start of the log whose newest record is older than retention.ms are deleted whole, and so
 *          is each next oldest batch while the partition would still hold at least retention.bytes without it (Kafka's
 *          deleteRetentionSizeBreachedSegments: `size - retention.bytes - segment >= 0`, so retention.bytes=0 deletes
 *          everything); the log start offset moves to the first batch kept. A batch plays the part of Kafka's segment
 *          (UnifiedLog.deleteOldSegments): deletion stops at the first batch that must stay, and takes a batch only
 *          if it ends at or below the high watermark, the newest one included (Kafka rolls the active segment to
 *          delete it). A log whose every batch expired is left empty, its log start equal to its log end, and the
 *          next append continues at that offset.
 * compact: the latest record of each key is kept; older records of the key are removed from their batches, which
 *          are rewritten in place with their offsets unchanged (sparse offsets are legal in a batch, as after Kafka's
 *          cleaner). A tombstone (null value) is dropped once it is older than delete.retention.ms (by its
 *          timestamp). Records newer than min.compaction.lag.ms, the last batch, and anything at or above the high
 *          watermark are left alone. A partition is compacted when the share of not-yet-compacted bytes reaches
 *          min.cleanable.dirty.ratio, when its oldest uncompacted record is older than max.compaction.lag.ms, or
 *          when a tombstone it kept has since expired (KIP-534: a log nobody writes to still loses its tombstones).
 */
import { Attribute, At, lastOffsetOf, type Record } from '../protocol/record-batch.js'
import { inflationLimit } from '../protocol/compression.js'
import { batchInflater } from './batch-inflater.js'
import type { BrokerConfig } from './config.js'
import type { Logger } from './logger.js'
import type { Partition } from './partition.js'
import type { TopicManager } from './topics.js'
import type { Rewrite } from '../storage/partition-log.js'
import { StorageError } from '../storage/log-store.js'
import { counted } from '../client/wording.js'

export class LogCleaner {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  /** Per partition: every offset below this has been compacted once. Lost on restart, which only costs a pass. */
  private readonly cleanedUpTo = new WeakMap<Partition, bigint>()
  /** Per partition: when the first tombstone kept by the last compaction expires (Infinity: none kept). */
  private readonly tombstonesExpireAt = new WeakMap<Partition, number>()

  constructor(
    private readonly topics: TopicManager,
    private readonly config: BrokerConfig,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.config.retentionCheckIntervalMs)
    this.timer.unref()
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.running
  }

  /** One pass over every partition; passes never overlap. */
  runOnce(now = Date.now()): Promise<void> {
    this.running ??= this.pass(now).finally(() => (this.running = null))
    return this.running
  }

  private async pass(now: number): Promise<void> {
    for (const topic of this.topics.list()) {
      const { config } = topic
      for (const partition of topic.partitions) {
        // A topic deleted during the pass: its logs refuse changes, and there is nothing left to clean.
        if (this.topics.getById(topic.topicId) !== topic) break
        try {
          if (config.cleanupPolicy.delete) await this.applyRetention(partition, config.retentionMs, config.retentionBytes, now)
          if (config.cleanupPolicy.compact) {
            await this.compact(partition, {
              now,
              deleteRetentionMs: config.deleteRetentionMs,
              minCompactionLagMs: config.minCompactionLagMs,
              maxCompactionLagMs: config.maxCompactionLagMs,
              minCleanableDirtyRatio: config.minCleanableDirtyRatio,
              maxMessageBytes: config.maxMessageBytes,
            })
          }
        } catch (error) {
          // Storage refuses writes (the node logged why, once): every other partition would be refused too.
          if (error instanceof StorageError) return
          if (this.topics.getById(topic.topicId) !== topic) break
          this.log.error(`cleaning ${topic.name}-${partition.index} failed: ${(error as Error).message}`)
        }
      }
    }
  }

  private async applyRetention(partition: Partition, retentionMs: number, retentionBytes: number, now: number): Promise<void> {
    const log = partition.log
    let newStart: bigint | null = null
    // How far the partition is above retention.bytes; a batch goes for size only if the rest still reaches the limit.
    let excess = retentionBytes >= 0 ? log.sizeBytes - retentionBytes : -Infinity
    // Kafka deletes a segment only when its upper bound (here: the offset after the batch's last record) is at or
    // below the high watermark, so the log start never passes it: the scan yields exactly those batches.
    for await (const batch of log.scan(log.logStartOffset, partition.highWatermark)) {
      const next = lastOffsetOf(batch) + 1n
      const expired = retentionMs >= 0 && Number(batch.readBigInt64BE(At.maxTimestamp)) < now - retentionMs
      if (!expired && excess - batch.length < 0) break
      excess -= batch.length
      newStart = next
    }
    if (newStart !== null && newStart > log.logStartOffset) {
      await partition.deleteBefore(newStart)
      this.log.info(`${partition.topic.name}-${partition.index}: retention moved the log start to ${newStart}`)
    }
  }

  private async compact(
    partition: Partition,
    settings: { now: number; deleteRetentionMs: number; minCompactionLagMs: number; maxCompactionLagMs: number; minCleanableDirtyRatio: number; maxMessageBytes: number },
  ): Promise<void> {
    const log = partition.log
    // Records are read (and batches rebuilt) through the batch inflater: a large compressed batch off the event loop.
    const inflationBound = (batch: Buffer): number => inflationLimit(Math.max(settings.maxMessageBytes, batch.length))
    const cleanedUpTo = this.cleanedUpTo.get(partition) ?? log.logStartOffset
    // Pass 1: the latest offset of every key, over everything old enough to clean.
    const latest = new Map<string, bigint>()
    let end = log.logStartOffset
    let totalBytes = 0
    let dirtyBytes = 0
    let oldestDirty = Infinity
    for await (const batch of log.scan(log.logStartOffset, partition.highWatermark)) {
      const lastOffset = lastOffsetOf(batch)
      if (lastOffset + 1n >= log.logEndOffset) break
      if (Number(batch.readBigInt64BE(At.maxTimestamp)) > settings.now - settings.minCompactionLagMs) break
      totalBytes += batch.length
      if (lastOffset >= cleanedUpTo) {
        dirtyBytes += batch.length
        oldestDirty = Math.min(oldestDirty, Number(batch.readBigInt64BE(At.baseTimestamp)))
      }
      if ((batch.readInt16BE(At.attributes) & Attribute.control) === 0) {
        for (const record of await batchInflater.decode(batch, inflationBound(batch))) if (record.key) latest.set(record.key.toString('base64'), record.offset)
      }
      end = lastOffset + 1n
    }
    const dueByLag = oldestDirty < settings.now - settings.maxCompactionLagMs
    const tombstonesDue = (this.tombstonesExpireAt.get(partition) ?? Infinity) <= settings.now
    if (totalBytes === 0 || (dirtyBytes / totalBytes < settings.minCleanableDirtyRatio && !dueByLag && !tombstonesDue)) return
    // Pass 2: rewrite the batches that hold superseded records or expired tombstones.
    let tombstonesExpireAt = Infinity
    const keep = (record: Record): boolean => {
      if (!record.key) return true
      if (latest.get(record.key.toString('base64')) !== record.offset) return false
      if (record.value !== null) return true
      const expiresAt = Number(record.timestamp) + settings.deleteRetentionMs
      if (expiresAt <= settings.now) return false
      tombstonesExpireAt = Math.min(tombstonesExpireAt, expiresAt)
      return true
    }
    const changes: Rewrite[] = []
    let removed = 0
    for await (const batch of log.scan(log.logStartOffset, end)) {
      if (batch.readInt16BE(At.attributes) & Attribute.control) continue
      const records = await batchInflater.decode(batch, inflationBound(batch))
      const kept = records.filter(keep)
      if (kept.length === records.length) continue
      removed += records.length - kept.length
      const replacement = kept.length === 0 ? null : await batchInflater.rebuild(batch, kept.map((r) => r.offset), inflationBound(batch))
      changes.push({ previous: batch, replacement })
    }
    if (changes.length > 0) {
      await log.rewrite(changes)
      this.log.info(`${partition.topic.name}-${partition.index}: compaction removed ${counted(removed, 'record')} below offset ${end}`)
    }
    this.cleanedUpTo.set(partition, end)
    this.tombstonesExpireAt.set(partition, tombstonesExpireAt)
  }
}
