/**
 * Three QuorumControllers on the simulated Raft cluster (test/cluster/raft/sim-cluster.ts), with simulated brokers
 * that register and heartbeat to whichever controller is active, as a broker's lifecycle manager does. The
 * controllers run beside the recording state machine the Raft checker watches, so every Raft safety check still
 * runs; `checkInvariants` adds the controller's, across every live node:
 *
 * - each committed image keeps the image's invariants (imageProblems), and no fenced or unregistered broker leads;
 * - batch by batch, on every member: leaderEpoch never goes back, one leaderEpoch has one leader on every member,
 *   and a batch that gives a partition's ISR a broker it did not have is either an AlterPartition (same leader,
 *   same leaderEpoch, live replicas only) or an unclean election (a topic that enables it or a test that asked ElectLeaders for one, the new leader alone);
 * - each registered broker's epoch is that of an acknowledged registration, none shared; acknowledged
 *   producer-id blocks that committed are distinct and add up to the image's next producer id.
 */
import { expect } from 'vitest'
import { QuorumController, PRODUCER_ID_BLOCK_SIZE, type ControllerResult } from '../../../broker/cluster/controller/controller.js'
import { configResourceKey, imageProblems, NO_LEADER, type MetadataImage, type PartitionRegistration, type TopicImage } from '../../../broker/cluster/metadata/image.js'
import { encodeMetadataSnapshot } from '../../../broker/cluster/metadata/snapshot.js'
import type { CommittedBatch, RaftStateMachine } from '../../../broker/cluster/raft/node.js'
import { ResourceType } from '../../../protocol/constants.js'
import { ErrorCode } from '../../../protocol/errors.js'
import { SimCluster } from '../raft/sim-cluster.js'
import { Random } from '../raft/sim/random.js'

export const SESSION_TIMEOUT_MS = 1000
export const HEARTBEAT_INTERVAL_MS = 200
/** `leader.imbalance.check.interval.seconds`, scaled down as the Raft timings are. */
export const LEADER_IMBALANCE_CHECK_INTERVAL_MS = 2000

export interface SimBroker {
  readonly id: number
  alive: boolean
  incarnation: number
  brokerEpoch: bigint | null
  lastHeartbeatMs: number
}

export class ControllerSim {
  readonly brokers = new Map<number, SimBroker>()
  /** `${epoch}:${lastOffset}` of every batch some node applied. */
  private readonly committedBatches = new Set<string>()
  private readonly acknowledged: { kind: 'register' | 'producerIds'; epoch: number; lastOffset: bigint; value: bigint }[] = []
  /** `${topicId}/${partition}@${leaderEpoch}` -> leader, across all nodes. */
  private readonly leaders = new Map<string, number>()
  /** Topics a test asked an UNCLEAN ElectLeaders for: they may elect outside the ISR whatever their config says. */
  readonly uncleanElectionsAsked = new Set<string>()
  /** The reassignments that ended in a committed batch, as `${topicId}/${partition}@${partitionEpoch}` (completed or cancelled). */
  readonly reassignmentsEnded = new Set<string>()

  private constructor(
    readonly cluster: SimCluster,
    readonly random: Random,
  ) {}

  /** `controller` overrides the controllers' rebalance settings (LEADER_IMBALANCE_CHECK_INTERVAL_MS, enabled, by default). */
  static async start(options: {
    seed: number
    brokerIds: readonly number[]
    maxBytesBetweenSnapshots?: number
    controller?: { autoLeaderRebalanceEnable?: boolean; leaderImbalanceCheckIntervalMs?: number }
  }): Promise<ControllerSim> {
    const random = new Random(options.seed).fork(7)
    let sim: ControllerSim | null = null
    const cluster = await SimCluster.start({
      voters: [1, 2, 3],
      seed: options.seed,
      config: { maxBytesBetweenSnapshots: options.maxBytesBetweenSnapshots ?? 1 << 20 },
      machine: (node) => {
        const controller = new QuorumController({
          nodeId: node.id,
          // The simulated brokers may outnumber the three voters: every one of them is a node of the cluster.
          clusterNodeIds: [...new Set([1, 2, 3, ...options.brokerIds])],
          log: () => node.raft!,
          newTopicId: () => uuid(random),
          brokerSessionTimeoutMs: SESSION_TIMEOUT_MS,
          leaderImbalanceCheckIntervalMs: LEADER_IMBALANCE_CHECK_INTERVAL_MS,
          ...options.controller,
        })
        return tap(controller, (batch, before, after) => {
          sim?.committedBatches.add(`${batch.epoch}:${batch.lastOffset}`)
          sim?.checkBatch(node.id, before, after)
        })
      },
    })
    sim = new ControllerSim(cluster, random)
    for (const id of options.brokerIds) sim.brokers.set(id, { id, alive: true, incarnation: 0, brokerEpoch: null, lastHeartbeatMs: -Infinity })
    return sim
  }

  controller(id: number): QuorumController | null {
    const node = this.cluster.node(id)
    return node.raft && node.extra ? (node.extra as TappedController).controller : null
  }

  /** Live, unpaused nodes whose controller is active (more than one while an old leader has not learned it lost). */
  activeIds(): number[] {
    return [1, 2, 3].filter((id) => !this.cluster.node(id).paused && this.controller(id)?.activeEpoch != null)
  }

  /** Runs `operation` on an active controller (a random one if several think they are); null if none is. */
  async onActive<T>(operation: (controller: QuorumController) => ControllerResult<T>): Promise<ControllerResult<T> | null> {
    const active = this.activeIds()
    if (active.length === 0) return null
    const id = this.random.pick(active)
    return this.cluster.act(id, () => operation(this.controller(id)!))
  }

  /** One controller is active, and every member is up and follows it in its epoch. */
  settledLeadership(): boolean {
    const active = this.activeIds()
    if (active.length !== 1) return false
    const epoch = this.cluster.node(active[0]!).raft!.epoch
    return [1, 2, 3].every((id) => {
      const raft = this.cluster.node(id).raft
      return raft !== null && !this.cluster.node(id).paused && raft.epoch === epoch && raft.leaderId === active[0]
    })
  }

  /** Every live broker is registered at the epoch it holds and unfenced, in every member's committed image. */
  brokersSettled(): boolean {
    return this.images().every(({ image }) =>
      [...this.brokers.values()].every((broker) => {
        const registration = image.brokers.get(broker.id)
        return !broker.alive || (registration?.brokerEpoch === broker.brokerEpoch && !registration.fenced)
      }),
    )
  }

  /** Whether a successful proposal committed (in the epoch it was proposed in: a batch of another epoch there means it was lost). */
  committed(result: { epoch: number; lastOffset: bigint }): boolean {
    return this.committedBatches.has(`${result.epoch}:${result.lastOffset}`)
  }

  /**
   * An operation as a client of the controller sees it: sent to an active controller, answered once its proposal
   * committed, sent again when it was lost with a leadership (or no controller was active) until `timeoutMs`.
   */
  async request<T>(operation: (controller: QuorumController) => ControllerResult<T>, timeoutMs = 5000): Promise<ControllerResult<T>> {
    const end = this.cluster.now + timeoutMs
    while (this.cluster.now < end) {
      const result = await this.onActive(operation)
      if (result && !result.ok && result.errorCode === ErrorCode.NOT_CONTROLLER) continue
      if (result && (!result.ok || result.lastOffset < 0n)) return result
      if (result) {
        // Settled once committed, or once some member applied past it without it (another batch took its offsets), or
        // once a leader of a later epoch applied its whole log without it (an idle cluster may never write past it).
        const settled = (): boolean =>
          this.committed(result) ||
          [1, 2, 3].some((id) => {
            const raft = this.cluster.node(id).raft
            if (!raft) return false
            return raft.appliedOffset > result.lastOffset || (raft.role === 'Leader' && raft.epoch > result.epoch && raft.appliedOffset >= raft.logEndOffset)
          })
        while (!settled() && this.cluster.now < end) await this.run(20)
        if (this.committed(result)) return result
      } else {
        await this.run(50)
      }
    }
    throw new Error(`no answer within ${timeoutMs} ms of simulated time`)
  }

  /** Ticks every controller, then lets each live broker register or heartbeat when due. */
  async drive(): Promise<void> {
    const now = this.cluster.now
    for (const id of [1, 2, 3]) {
      if (this.controller(id)) await this.cluster.act(id, () => this.controller(id)?.tick(now))
    }
    for (const broker of this.brokers.values()) {
      if (!broker.alive || now - broker.lastHeartbeatMs < HEARTBEAT_INTERVAL_MS) continue
      broker.lastHeartbeatMs = now
      if (broker.brokerEpoch === null) await this.register(broker)
      else await this.heartbeat(broker)
    }
  }

  async register(broker: SimBroker): Promise<void> {
    const result = await this.onActive((controller) =>
      controller.registerBroker(
        {
          brokerId: broker.id,
          incarnationId: `00000000-0000-4000-8000-${String(broker.id * 1000 + broker.incarnation).padStart(12, '0')}`,
          endPoints: [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 9090 + broker.id, securityProtocol: 0 }],
          rack: null,
        },
        this.cluster.now,
      ),
    )
    if (result?.ok) {
      broker.brokerEpoch = result.brokerEpoch
      this.acknowledged.push({ kind: 'register', epoch: result.epoch, lastOffset: result.lastOffset, value: result.brokerEpoch })
    }
  }

  async heartbeat(broker: SimBroker, options: { wantFence?: boolean } = {}): Promise<void> {
    const active = this.activeIds()
    if (active.length === 0) return
    const id = this.random.pick(active)
    const controller = this.controller(id)!
    const result = await this.cluster.act(id, () =>
      controller.heartbeat(
        {
          brokerId: broker.id,
          brokerEpoch: broker.brokerEpoch!,
          currentMetadataOffset: controller.image.provenance.offset,
          wantFence: options.wantFence ?? false,
          wantShutDown: false,
        },
        this.cluster.now,
      ),
    )
    // A registration that was lost with its leader, or replaced: register again, as a broker does.
    if (result && !result.ok && result.errorCode !== ErrorCode.NOT_CONTROLLER) broker.brokerEpoch = null
  }

  async allocateProducerIds(broker: SimBroker): Promise<void> {
    if (broker.brokerEpoch === null) return
    const brokerEpoch = broker.brokerEpoch
    const result = await this.onActive((controller) => controller.allocateProducerIds({ brokerId: broker.id, brokerEpoch }, this.cluster.now))
    if (result?.ok) this.acknowledged.push({ kind: 'producerIds', epoch: result.epoch, lastOffset: result.lastOffset, value: result.producerIdStart })
  }

  /** A broker process dies: it stops heartbeating. */
  killBroker(id: number): void {
    const broker = this.brokers.get(id)!
    broker.alive = false
    broker.brokerEpoch = null
  }

  /** It comes back as a new incarnation and registers again. */
  reviveBroker(id: number): void {
    const broker = this.brokers.get(id)!
    broker.alive = true
    broker.incarnation++
    broker.lastHeartbeatMs = -Infinity
  }

  /** Runs the brokers' and controllers' periodic work every 50 ms of simulated time for `durationMs`. */
  async run(durationMs: number, options: { check?: boolean } = {}): Promise<void> {
    const end = this.cluster.now + durationMs
    while (this.cluster.now < end) {
      await this.drive()
      if (options.check ?? true) this.checkInvariants()
      await this.cluster.run(50)
    }
  }

  /** Runs until `condition` holds, checking invariants; fails with `what` after `timeoutMs` of simulated time. */
  async runUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const end = this.cluster.now + timeoutMs
    while (!condition()) {
      if (this.cluster.now >= end) throw new Error(`not within ${timeoutMs} ms of simulated time: ${what}`)
      await this.run(50)
    }
  }

  images(): { id: number; image: MetadataImage }[] {
    return [1, 2, 3].flatMap((id) => {
      const controller = this.controller(id)
      return controller ? [{ id, image: controller.image }] : []
    })
  }

  /** Every live controller holds the same committed image (compared as its snapshot records). */
  imagesAgree(): boolean {
    const images = this.images()
    if (images.length === 0) return false
    const first = encodeMetadataSnapshot(images[0]!.image)
    return images.every(({ image }) => encodeMetadataSnapshot(image).equals(first))
  }

  /** The invariants of every member's committed image. */
  checkInvariants(): void {
    for (const { id, image } of this.images()) {
      expect(imageProblems(image), `node ${id}`).toEqual([])
      for (const topic of image.topicsById.values()) {
        for (const [partitionId, partition] of topic.partitions) {
          if (partition.leader === NO_LEADER) continue
          const where = `node ${id}: partition ${partitionId} of '${topic.name}'`
          expect(image.brokers.get(partition.leader)?.fenced, `${where}: leader ${partition.leader} is fenced or unregistered`).toBe(false)
        }
      }
    }
  }

  /** The invariants of one committed batch on member `id`: how it changed each partition. */
  checkBatch(id: number, before: MetadataImage, after: MetadataImage): void {
    for (const topic of after.topicsById.values()) {
      const unclean =
        this.uncleanElectionsAsked.has(topic.name) || after.configs.get(configResourceKey(ResourceType.TOPIC, topic.name))?.get('unclean.leader.election.enable') === 'true'
      for (const [partitionId, partition] of topic.partitions) {
        const where = `node ${id}: partition ${partitionId} of '${topic.name}' at offset ${after.provenance.offset}`
        const epochKey = `${topic.topicId}/${partitionId}@${partition.leaderEpoch}`
        const leader = this.leaders.get(epochKey)
        if (leader === undefined) this.leaders.set(epochKey, partition.leader)
        else expect(partition.leader, `${where}: leaderEpoch ${partition.leaderEpoch} has two leaders`).toBe(leader)
        const old = before.topicsById.get(topic.topicId)?.partitions.get(partitionId)
        if (!old) continue
        expect(partition.leaderEpoch, `${where}: leaderEpoch went back`).toBeGreaterThanOrEqual(old.leaderEpoch)
        if (old.addingReplicas.length + old.removingReplicas.length > 0 && partition.addingReplicas.length + partition.removingReplicas.length === 0) {
          this.reassignmentsEnded.add(`${topic.topicId}/${partitionId}@${partition.partitionEpoch}`)
        }
        const added = partition.isr.filter((broker) => !old.isr.includes(broker))
        if (added.length === 0) continue
        const alterPartition =
          partition.leader === old.leader &&
          partition.leaderEpoch === old.leaderEpoch &&
          added.every((broker) => partition.replicas.includes(broker) && after.brokers.get(broker)?.fenced === false)
        const uncleanElection = unclean && partition.leader !== old.leader && partition.isr.length === 1 && partition.isr[0] === partition.leader
        // The AlterPartition that takes a reassignment's last added replica in completes it in the same record, with a
        // new leader epoch (KIP-455): the members it adds are replicas, each live, as in any AlterPartition.
        const reassignmentCompleted =
          old.addingReplicas.length + old.removingReplicas.length > 0 &&
          partition.addingReplicas.length + partition.removingReplicas.length === 0 &&
          partition.leaderEpoch === old.leaderEpoch + 1 &&
          added.every((broker) => old.replicas.includes(broker) && after.brokers.get(broker)?.fenced === false)
        expect(alterPartition || uncleanElection || reassignmentCompleted, `${where}: the isr [${old.isr}] -> [${partition.isr}], leader ${old.leader} -> ${partition.leader}`).toBe(true)
      }
    }
  }

  /** A random partition of the committed image of a random active controller (null: none active, or no topic). */
  private randomPartition(): { topic: TopicImage; partitionIndex: number; partition: PartitionRegistration } | null {
    const active = this.activeIds()
    if (active.length === 0) return null
    const topics = [...this.controller(this.random.pick(active))!.image.topicsById.values()]
    if (topics.length === 0) return null
    const topic = this.random.pick(topics)
    const partitionIndex = this.random.int(0, topic.partitions.size - 1)
    return { topic, partitionIndex, partition: topic.partitions.get(partitionIndex)! }
  }

  /**
   * A partition leader's AlterPartition, as a broker sends it after its followers caught up or fell behind: the new
   * ISR is the leader and some of the replicas it sees live, at the epochs in the image the controller last committed.
   * Whether the controller took it.
   */
  async alterPartition(): Promise<boolean> {
    const picked = this.randomPartition()
    if (!picked) return false
    const { topic, partitionIndex, partition } = picked
    const leader = this.brokers.get(partition.leader)
    if (!leader?.alive || leader.brokerEpoch === null) return false
    const followers = partition.replicas.filter((id) => id !== leader.id && this.brokers.get(id)?.alive && this.random.chance(0.7))
    const brokerEpoch = leader.brokerEpoch
    const result = await this.onActive((controller) =>
      controller.alterPartition(
        {
          brokerId: leader.id,
          brokerEpoch,
          topicId: topic.topicId,
          partitionIndex,
          leaderEpoch: partition.leaderEpoch,
          partitionEpoch: partition.partitionEpoch,
          newIsr: [leader.id, ...followers],
        },
        this.cluster.now,
      ),
    )
    return result?.ok ?? false
  }

  /**
   * An AlterPartitionReassignments for one random partition, as an operator sends it: a new target of 1-3 random
   * brokers, or (one time in five) a cancel. Whether the controller took it.
   */
  async reassign(brokerIds: readonly number[]): Promise<boolean> {
    const picked = this.randomPartition()
    if (!picked) return false
    const { topic, partitionIndex } = picked
    const pool = [...brokerIds]
    const target = Array.from({ length: this.random.int(1, 3) }, () => pool.splice(this.random.int(0, pool.length - 1), 1)[0]!)
    const replicas = this.random.chance(0.2) ? null : target
    const result = await this.onActive((controller) => controller.alterPartitionReassignments({ partitions: [{ topic: topic.name, partitionIndex, replicas }] }, this.cluster.now))
    return result?.ok === true && result.results[0]?.errorCode === 0
  }

  /** At the end: what was acknowledged and committed is in the image as acknowledged. */
  checkAcknowledged(image: MetadataImage): { registrations: number; producerIdBlocks: number } {
    const committed = this.acknowledged.filter((ack) => this.committedBatches.has(`${ack.epoch}:${ack.lastOffset}`))
    const registrations = committed.filter((ack) => ack.kind === 'register').map((ack) => ack.value)
    expect(new Set(registrations).size, 'two registrations share a brokerEpoch').toBe(registrations.length)
    for (const broker of image.brokers.values()) {
      expect(registrations, `broker ${broker.brokerId}'s epoch is no acknowledged registration`).toContain(broker.brokerEpoch)
    }
    const starts = committed.filter((ack) => ack.kind === 'producerIds').map((ack) => ack.value)
    expect(new Set(starts).size, 'a producer-id block was handed out twice').toBe(starts.length)
    expect(image.producerIds.nextProducerId).toBe(BigInt(starts.length) * PRODUCER_ID_BLOCK_SIZE)
    for (const start of starts) expect(start % PRODUCER_ID_BLOCK_SIZE).toBe(0n)
    return { registrations: registrations.length, producerIdBlocks: starts.length }
  }
}

interface TappedController extends RaftStateMachine {
  readonly controller: QuorumController
}

/** The controller as the node's state machine, reporting each applied batch with the images before and after it. */
function tap(
  controller: QuorumController,
  applied: (batch: CommittedBatch, before: MetadataImage, after: MetadataImage) => void,
): TappedController {
  return {
    controller,
    apply: (batch) => {
      const before = controller.image
      controller.apply(batch)
      applied(batch, before, controller.image)
    },
    snapshot: () => controller.snapshot(),
    restore: (snapshot) => controller.restore(snapshot),
    leaderChange: (leader) => controller.leaderChange(leader),
  }
}

/** A simulation with one active controller and every broker registered and unfenced. */
export async function startedSim(options: Parameters<typeof ControllerSim.start>[0]): Promise<ControllerSim> {
  const sim = await ControllerSim.start(options)
  await sim.runUntil(() => sim.activeIds().length === 1, 5000, 'a controller is active')
  await sim.runUntil(() => sim.images().every(({ image }) => image.liveBrokers().length === options.brokerIds.length), 5000, 'brokers are unfenced')
  return sim
}

/** Runs an operation as a client would (answered once committed), then waits until every member applied it. */
export async function committed<T>(sim: ControllerSim, operation: (controller: QuorumController) => ControllerResult<T>): Promise<ControllerResult<T>> {
  const result = await sim.request(operation)
  if (result.ok && result.lastOffset >= 0n) {
    await sim.runUntil(() => sim.images().every(({ image }) => image.provenance.offset >= result.lastOffset), 3000, 'every member applies it')
  }
  return result
}

/** The active controller's image. */
export const activeImage = (sim: ControllerSim): MetadataImage => sim.controller(sim.activeIds()[0]!)!.image

export function uuid(random: Random): string {
  const hex = Array.from({ length: 32 }, () => random.int(0, 15).toString(16)).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20)}`
}
