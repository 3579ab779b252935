/**
 * The nemesis's reassignment fault (KIP-455), through Brook's own client (client/reassignments.ts): at random times a
 * random partition of the workload's topics (or the `__consumer_offsets` partition of the live group, or the
 * `__transaction_state` partition of the transactional id) is moved to a random replica set of 1-3 of the nodes in a
 * random order (its first replica the preferred leader), sometimes cancelled 0-500 ms later, while the
 * process and network faults go on. Replica sets shrink, grow and move between nodes, leaders move with them, and a
 * reassignment is often started, replaced or cancelled while a node it adds or removes is down, paused or cut off.
 *
 *   draw ─▶ AlterPartitionReassignments at the controller (any node forwards it) ─▶ answered or refused ─▶ gap
 *
 * A refusal (a cancel with nothing under way, an assignment naming a fenced-out broker's partition that cannot be
 * led) and a request that cannot reach the controller in time are counted, not violations: the cluster decides.
 * After healing `restore` moves every partition touched back to all three nodes, so that the settled cluster is the
 * one the run started with; the settle check then also requires that no reassignment is under way.
 */
import type { BrokerAddress } from '../client/address.js'
import { ClusterClient } from '../client/cluster-client.js'
import { listReassignments, reassignPartitions, type OngoingReassignment } from '../client/reassignments.js'
import { partitionForGroup, OFFSETS_TOPIC_PARTITIONS } from '../broker/group/offsets-topic.js'
import { Random } from '../processor/simulator/random.js'

/** Internal topics whose one partition the workload uses is reassigned too. */
const OFFSETS_TOPIC = '__consumer_offsets'
const TRANSACTION_STATE_TOPIC = '__transaction_state'
/** One move in this many is cancelled soon after it starts. */
const CANCEL_ONE_IN = 5
/** A reassignment request gives up after this long (a controller cut off, every node down). */
const REQUEST_TIMEOUT_MS = 20_000

/** A partition the reassignment fault may move. */
export interface MovablePartition {
  readonly topic: string
  readonly partition: number
}

/**
 * The partitions the fault draws from: every partition of the workload's topics, the live group's partition of
 * `__consumer_offsets` and the transactional id's partition of `__transaction_state` (both created by the first
 * client that needs them, so a draw may find them missing at first).
 */
export function movablePartitions(topics: readonly { name: string; partitions: number }[], groupId: string, transactionalId: string): MovablePartition[] {
  const workload = topics.flatMap(({ name, partitions }) => Array.from({ length: partitions }, (_, partition) => ({ topic: name, partition })))
  return [
    ...workload,
    { topic: OFFSETS_TOPIC, partition: partitionForGroup(groupId, OFFSETS_TOPIC_PARTITIONS) },
    { topic: TRANSACTION_STATE_TOPIC, partition: partitionForGroup(transactionalId, OFFSETS_TOPIC_PARTITIONS) },
  ]
}

/** What the reassignment fault did: the summary's `reassignments`. */
export interface ReassignmentCounts {
  started: number
  cancelled: number
  refused: number
  failed: number
}

/**
 * Draws and sends reassignments with its own seeded random (so the other faults' draws stay those of the seed), one
 * every gap, until told to stop; `restore` puts every touched partition back on all nodes.
 */
export class Reassigner {
  readonly counts: ReassignmentCounts = { started: 0, cancelled: 0, refused: 0, failed: 0 }
  private readonly random: Random
  private readonly touched = new Map<string, MovablePartition>()

  constructor(
    private readonly options: {
      readonly bootstrap: readonly BrokerAddress[]
      readonly nodeIds: readonly number[]
      readonly partitions: readonly MovablePartition[]
      readonly seed: number
      /** Writes one line to the fault log. */
      readonly note: (line: string) => void
    },
  ) {
    this.random = new Random(options.seed, 7)
  }

  /** The partitions this fault may move. */
  get partitions(): readonly MovablePartition[] {
    return this.options.partitions
  }

  /** One reassignment (or cancel) after another, `gapMs` apart (drawn between its bounds), until `endMs`. */
  async loop(endMs: number, gapMs: readonly [number, number]): Promise<void> {
    while (Date.now() < endMs) {
      await this.step()
      await sleep(this.random.int(gapMs[0], gapMs[1]))
    }
  }

  /**
   * Draws one partition and one target (1-3 nodes in a random order) and sends it; one time in CANCEL_ONE_IN the move
   * is cancelled 0-500 ms later (most moves of this workload's small logs end within a second, so a cancel at a random
   * time would find nothing under way).
   */
  async step(): Promise<void> {
    const { topic, partition } = this.options.partitions[this.random.int(0, this.options.partitions.length - 1)]!
    const target = this.shuffled(this.options.nodeIds).slice(0, this.random.int(1, this.options.nodeIds.length))
    const cancelAfterMs = this.random.int(1, CANCEL_ONE_IN) === 1 ? this.random.int(0, 500) : null
    await this.reassign(topic, partition, target)
    if (cancelAfterMs === null) return
    await sleep(cancelAfterMs)
    await this.reassign(topic, partition, null)
  }

  private async reassign(topic: string, partition: number, target: readonly number[] | null): Promise<void> {
    const what = `${topic}-${partition} ${target === null ? 'cancel' : `-> [${target}]`}`
    this.touched.set(`${topic}/${partition}`, { topic, partition })
    try {
      await this.send(topic, new Map([[partition, target]]))
      if (target === null) this.counts.cancelled++
      else this.counts.started++
      this.options.note(`reassign: ${what}`)
    } catch (error) {
      const message = (error as Error).message
      // The cluster's answers (Kafka's error names) are refusals; anything else did not reach it in time.
      if (/INVALID_REPLICA_ASSIGNMENT|NO_REASSIGNMENT_IN_PROGRESS|UNKNOWN_TOPIC_OR_PARTITION/.test(message)) this.counts.refused++
      else this.counts.failed++
      this.options.note(`reassign: ${what} not taken: ${message.slice(0, 160)}`)
    }
  }

  /** Moves every partition the fault touched back to all nodes (once the cluster is healed), retrying for `withinMs`. */
  async restore(withinMs: number): Promise<void> {
    const byTopic = new Map<string, Map<number, readonly number[]>>()
    for (const { topic, partition } of this.touched.values()) {
      const targets = byTopic.get(topic) ?? new Map<number, readonly number[]>()
      byTopic.set(topic, targets)
      targets.set(partition, this.shuffled(this.options.nodeIds))
    }
    const untilMs = Date.now() + withinMs
    for (const [topic, targets] of byTopic) {
      for (;;) {
        try {
          await this.send(topic, targets)
          this.options.note(`reassign: restore ${topic} partitions ${[...targets].map(([p, r]) => `${p} -> [${r}]`).join(', ')}`)
          break
        } catch (error) {
          if (Date.now() > untilMs) throw error
          await sleep(1000)
        }
      }
    }
  }

  /** The reassignments under way, of every topic. */
  async ongoing(): Promise<OngoingReassignment[]> {
    return this.withClient((cluster) => listReassignments(cluster, null))
  }

  private send(topic: string, targets: ReadonlyMap<number, readonly number[] | null>): Promise<void> {
    return this.withClient((cluster) => reassignPartitions(cluster, topic, targets))
  }

  private async withClient<T>(use: (cluster: ClusterClient) => Promise<T>): Promise<T> {
    const connecting = ClusterClient.connect(this.options.bootstrap, { timeoutMs: 5000 })
    const timeout = sleep(REQUEST_TIMEOUT_MS).then(() => Promise.reject(new Error('reassignment request timed out')))
    timeout.catch(() => {})
    try {
      return await Promise.race([connecting.then(use), timeout])
    } finally {
      // Closed however it ended: a request still retrying in the client fails at once.
      connecting.then((cluster) => cluster.close(), () => {})
    }
  }

  private shuffled(ids: readonly number[]): number[] {
    const list = [...ids]
    for (let i = list.length - 1; i > 0; i--) {
      const j = this.random.int(0, i)
      ;[list[i], list[j]] = [list[j]!, list[i]!]
    }
    return list
  }
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms))
