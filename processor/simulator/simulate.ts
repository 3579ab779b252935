/**
 * `simulateFleet`: the simulated fleet (fleet.ts) sent to a topic, paced by the sender (sender.ts), until a count,
 * a duration or an abort stops it.
 */
import { withTopicProducer, STDERR_LOG } from './connection.js'
import { Fleet } from './fleet.js'
import { resolveFleetOptions, type FleetOptions, type ResolvedFleetOptions } from './options.js'
import { DELIVERY_KINDS, FAULT_KINDS, type DeliveryKind, type FaultKind, type Outgoing } from './reading.js'
import { sendPaced, type Unconfirmed } from './sender.js'
import type { FleetSensor } from './sensors.js'

export interface FleetSummary {
  topic: string
  /** Whether the run created the topic. */
  topicCreated: boolean
  seed: number
  devices: number
  sensors: FleetSensor[]
  /** Event time of the first slot: with the seed and the options, it fixes every reading. */
  startMs: number
  /** Readings acknowledged by the cluster. */
  sent: number
  /** Acknowledged readings by injected fault. */
  faults: Record<FaultKind, number>
  /** Acknowledged readings by delivery: out of order, late. */
  delivery: Record<DeliveryKind, number>
  /** Slots the fleet went through, and those left empty because their device was in a gap. */
  slots: number
  gapped: number
  /**
   * Readings made and not sent when the run stopped: held back for later delivery, or waiting for their time or their
   * batch (none after a counted run that ran to its end). With `sent`, `gapped` and an `unconfirmed` batch's readings,
   * they account for every slot.
   */
  held: number
  /** Readings of a counted run held back until the count was reached and sent at its end (Fleet.counts.flushed). */
  flushed: number
  /** Lowest and highest event time acknowledged (null when nothing was sent). */
  firstTs: number | null
  lastTs: number | null
  elapsedMs: number
  readingsPerSecond: number
  aborted: boolean
  /** Readings of the batch in flight when the run was stopped that the cluster did not acknowledge. */
  unconfirmed: Unconfirmed | null
  /** Warnings about the topic (also logged). */
  warnings: string[]
}

/**
 * Runs a simulated fleet against a cluster and resolves with what it sent. Options and defaults: FleetOptions and
 * FLEET_DEFAULTS (options.ts). Throws SimulatorError: INVALID_OPTION before connecting, BROKER_REFUSED when the
 * cluster cannot be reached, the topic cannot be created, or readings are refused.
 */
export async function simulateFleet(options: FleetOptions): Promise<FleetSummary> {
  const o = resolveFleetOptions(options)
  const log = o.log ?? STDERR_LOG
  const start = o.startMs === undefined ? defaultStart(o, Date.now()) : { startMs: o.startMs, runsAhead: false }
  if (start.runsAhead) {
    log.warn('event time runs ahead of the clock in a run faster than real time with no count (or duration, with a --speedup); brokers refuse records stamped more than message.timestamp.after.max.ms (an hour by default) ahead of their clock')
  }
  const startMs = start.startMs
  const fleet = new Fleet({ ...o, startMs })
  const faults = Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>
  const delivery = Object.fromEntries(DELIVERY_KINDS.map((kind) => [kind, 0])) as Record<DeliveryKind, number>
  let firstTs: number | null = null
  let lastTs: number | null = null
  let sent = 0

  return withTopicProducer(o, { topic: o.topic, partitions: o.partitions, replicationFactor: o.replicationFactor, oldestTs: startMs, retentionWarning: 'deleted-on-arrival' }, log, async (producer, topic, sends) => {
    const count = o.count
    // A counted run ends with the readings it held back, so that it sends `count` readings, late ones included.
    const next = count === undefined ? (): Outgoing => fleet.next() : (): Outgoing | null => fleet.nextOf(count)
    const result = await sendPaced(next, {
      producer,
      sends,
      topic: o.topic,
      speedup: o.speedup,
      batchSize: o.batchSize,
      signal: o.signal,
      log,
      deadlineMs: o.durationMs === undefined ? undefined : Date.now() + o.durationMs,
      onAcked(batch, elapsedMs) {
        for (const { reading, fault, delivery: how } of batch) {
          if (fault !== null) faults[fault]++
          if (how !== null) delivery[how]++
          if (firstTs === null || reading.ts < firstTs) firstTs = reading.ts
          if (lastTs === null || reading.ts > lastTs) lastTs = reading.ts
        }
        sent += batch.length
        o.onProgress?.({ sent, total: o.count ?? null, eventTimeMs: batch[batch.length - 1]!.reading.ts, elapsedMs })
      },
    })
    const counts = fleet.counts
    return {
      topic: o.topic,
      topicCreated: topic.created,
      seed: o.seed,
      devices: o.devices,
      sensors: o.sensors,
      startMs,
      sent: result.sent,
      faults,
      delivery,
      slots: counts.slots,
      gapped: counts.gapped,
      held: counts.held + result.unsent,
      flushed: counts.flushed,
      firstTs,
      lastTs,
      elapsedMs: result.elapsedMs,
      readingsPerSecond: result.elapsedMs > 0 ? (result.sent * 1000) / result.elapsedMs : 0,
      aborted: result.aborted,
      unconfirmed: result.unconfirmed,
      warnings: topic.warnings,
    }
  })
}

/**
 * A run in real time or slower starts at now. A faster run whose length is known starts early enough to end around
 * now: brokers refuse timestamps more than message.timestamp.after.max.ms (an hour by default) ahead of their clock.
 * Otherwise it starts at now and its event time runs ahead of the clock.
 */
function defaultStart(o: ResolvedFleetOptions, nowMs: number): { startMs: number; runsAhead: boolean } {
  if (o.speedup !== 'as-fast-as-possible' && o.speedup <= 1) return { startMs: nowMs, runsAhead: false }
  if (o.count !== undefined) return { startMs: nowMs - Math.ceil((o.count * 1000) / o.rate), runsAhead: false }
  if (o.durationMs !== undefined && o.speedup !== 'as-fast-as-possible') return { startMs: nowMs - o.durationMs * o.speedup, runsAhead: false }
  return { startMs: nowMs, runsAhead: true }
}
