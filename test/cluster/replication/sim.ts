/**
 * Three replicas of one partition and a controller on the simulated network and clock of test/cluster/raft/sim/.
 * Each replica runs the loop a node runs (one call, drain, persist the writes, then send and answer), with the
 * checker looking after every step. The controller (node 0, test-controller.ts) learns liveness from heartbeats,
 * fences brokers it has not heard from for a session timeout, elects leaders from the ISR, answers AlterPartition,
 * and sends the partition state to every replica on each change and periodically, over the same faulty network.
 *
 * Faults: crashes (the replica restarts from what it persisted; a crash point may fall between drain and persist, or
 * between persist and send), pauses (messages queue, no timer fires, then everything lands with the clock ahead),
 * partitions, lossy / duplicating / reordering links, and leadership moved by the controller.
 */
import { ErrorCode } from '../../../protocol/errors.js'
import type { ReplicationConfig } from '../../../broker/cluster/replication/config.js'
import { applyReplicaWrites, EMPTY_REPLICA, type PersistedReplica } from '../../../broker/cluster/replication/log.js'
import type {
  AlterPartitionRequest,
  AlterPartitionResponse,
  PartitionState,
  ReplicaEnvelope,
} from '../../../broker/cluster/replication/messages.js'
import { PartitionReplica, type ProduceResult } from '../../../broker/cluster/replication/partition.js'
import { SimNetwork } from '../raft/sim/network.js'
import { Random } from '../raft/sim/random.js'
import { Scheduler } from '../raft/sim/scheduler.js'
import { ReplicationChecker, type ReplicaView } from './checker.js'
import { TestController } from './test-controller.js'

export const CONTROLLER = 0
export const REPLICAS = [1, 2, 3] as const

/** Replication timings scaled down for simulated time. */
export const SIM_REPLICATION_CONFIG: Partial<ReplicationConfig> = {
  replicaLagTimeMaxMs: 400,
  replicaFetchWaitMaxMs: 50,
  replicaFetchBackoffMs: 20,
  requestTimeoutMs: 150,
  replicaFetchMaxRecords: 8,
}
const SESSION_TIMEOUT_MS = 300
const HEARTBEAT_INTERVAL_MS = 50
const METADATA_INTERVAL_MS = 100

export type SimMessage =
  | { readonly kind: 'replica'; readonly envelope: ReplicaEnvelope }
  | { readonly kind: 'alterPartition'; readonly from: number; readonly request: AlterPartitionRequest }
  | { readonly kind: 'alterPartitionResponse'; readonly response: AlterPartitionResponse }
  | { readonly kind: 'metadata'; readonly state: PartitionState; readonly fenced: readonly number[] }
  | { readonly kind: 'heartbeat'; readonly from: number }

class SimReplicaNode {
  replica: PartitionReplica | null = null
  store: PersistedReplica = EMPTY_REPLICA
  paused = false
  inbox: SimMessage[] = []
  incarnation = 0
  tickToken = 0

  constructor(readonly id: number) {}
}

interface PendingProduce {
  readonly values: readonly string[]
  readonly acks: number
  readonly replicaId: number
}

export interface SimSummary {
  readonly produced: number
  /** Records consumers read (from the leader, up to the HW). */
  readonly consumed: number
  readonly acknowledgedAll: number
  readonly acknowledgedOne: number
  /** acks=1 records acknowledged and then absent from the final log: Kafka allows this loss. */
  readonly lostAcksOne: number
  readonly leaderEpochs: number
  readonly isrChanges: number
  readonly truncations: number
  readonly messages: number
}

export class ReplicationSim {
  readonly scheduler = new Scheduler()
  readonly random: Random
  readonly network: SimNetwork<SimMessage>
  readonly checker = new ReplicationChecker()
  readonly controller = new TestController(REPLICAS)
  readonly nodes = new Map<number, SimReplicaNode>()
  readonly trace: string[] = []
  /** Chance, at each of two points of every step (before persisting, before sending), that the replica crashes there. */
  crashPointRate = 0
  private readonly lastHeartbeat = new Map<number, number>()
  private readonly pending = new Map<number, PendingProduce>()
  private readonly acksOne: { offset: bigint; values: readonly string[]; epoch: number }[] = []
  private nextRequestId = 0
  private nextValue = 0
  private steps = 0
  private isrChanges = 0
  private truncations = 0
  private acknowledgedAll = 0
  private consumedRecords = 0

  constructor(
    readonly seed: number,
    readonly config: Partial<ReplicationConfig>,
    private readonly options: { traceMessages: boolean },
  ) {
    this.random = new Random(seed)
    this.network = new SimNetwork(this.scheduler, this.random.fork(1), (destination, message) =>
      this.deliver(destination, message),
    )
    for (const id of REPLICAS) {
      this.nodes.set(id, new SimReplicaNode(id))
      this.lastHeartbeat.set(id, 0)
    }
  }

  get now(): number {
    return this.scheduler.nowMs
  }

  node(id: number): SimReplicaNode {
    return this.nodes.get(id)!
  }

  start(): void {
    for (const id of REPLICAS) this.restart(id)
    this.controllerLoop()
  }

  note(line: string): void {
    this.trace.push(`${String(this.now).padStart(6)} ${line}`)
    if (this.trace.length > 500) this.trace.splice(0, this.trace.length - 400)
  }

  // ---- faults ----

  crash(id: number): void {
    const node = this.node(id)
    if (!node.replica) return
    this.note(`r${id} crashed (${this.describe(node.replica)})`)
    node.replica = null
    node.paused = false
    node.inbox = []
    node.tickToken++
    this.network.reset(id)
  }

  restart(id: number): void {
    const node = this.node(id)
    if (node.replica) return
    node.incarnation++
    node.replica = new PartitionReplica({
      replicaId: id,
      persisted: node.store,
      config: this.config,
      firstCorrelationId: node.incarnation * 1_000_000,
    })
    this.note(`r${id} started (incarnation ${node.incarnation}) LEO=${node.replica.logEndOffset} HW=${node.replica.highWatermark}`)
    const incarnation = node.incarnation
    const heartbeat = (): void => {
      if (node.incarnation !== incarnation || !node.replica) return
      if (!node.paused) this.network.send(id, CONTROLLER, { kind: 'heartbeat', from: id })
      this.scheduler.after(HEARTBEAT_INTERVAL_MS, heartbeat)
    }
    heartbeat()
  }

  pause(id: number): void {
    const node = this.node(id)
    if (!node.replica || node.paused) return
    node.paused = true
    node.tickToken++
    this.note(`r${id} paused`)
  }

  async resume(id: number): Promise<void> {
    const node = this.node(id)
    if (!node.paused) return
    node.paused = false
    this.note(`r${id} resumed`)
    const inbox = node.inbox
    node.inbox = []
    for (const message of inbox) {
      if (!node.replica || node.paused) return
      await this.handle(node, message)
    }
    if (node.replica && !node.paused) this.step(node, (r) => r.tick(this.now))
  }

  /** The controller moves leadership to another live ISR member (a preferred-leader election, say). */
  moveLeader(): void {
    const candidates = this.controller.state.isr.filter((id) => id !== this.controller.state.leader)
    if (candidates.length === 0) return
    const to = this.random.pick(candidates)
    if (this.controller.moveLeader(to)) {
      this.note(`controller moved leadership to r${to}: ${this.describeState()}`)
      this.broadcast()
    }
  }

  // ---- clients ----

  /** A producer sends to the replica the controller names leader (as a client's metadata would), or a random one. */
  produce(options: { acks: number; toAny: boolean; timeoutMs: number }): void {
    const target = options.toAny || this.controller.state.leader < 0 ? this.random.pick(REPLICAS) : this.controller.state.leader
    const node = this.node(target)
    if (!node.replica || node.paused) return
    const count = this.random.int(1, 3)
    const values = Array.from({ length: count }, () => `v${this.nextValue++}`)
    const requestId = this.nextRequestId++
    this.pending.set(requestId, { values, acks: options.acks, replicaId: target })
    this.step(node, (r) =>
      r.produce(
        { requestId, acks: options.acks, records: values.map((v) => Buffer.from(v)), timeoutMs: options.timeoutMs },
        this.now,
      ),
    )
  }

  /** A consumer reads from the replica the controller names leader (or any), from an offset below its HW. */
  consume(options: { toAny: boolean }): void {
    const target = options.toAny || this.controller.state.leader < 0 ? this.random.pick(REPLICAS) : this.controller.state.leader
    const replica = this.node(target).replica
    if (!replica || this.node(target).paused) return
    const fetchOffset = BigInt(this.random.int(0, Number(replica.highWatermark)))
    const epoch = this.random.chance(0.5) ? -1 : this.controller.state.leaderEpoch
    const result = replica.fetch({ fetchOffset, currentLeaderEpoch: epoch, maxRecords: 20 })
    if (result.errorCode !== ErrorCode.NONE) return
    this.checker.consumed(target, result.batches, result.highWatermark)
    this.consumedRecords += result.batches.reduce((n, batch) => n + batch.records.length, 0)
  }

  // ---- the run ----

  /** Every live replica, and every down one as its store holds it. */
  views(): Map<number, ReplicaView> {
    const views = new Map<number, ReplicaView>()
    for (const node of this.nodes.values()) {
      views.set(node.id, { id: node.id, replica: node.replica, batches: node.replica?.batches() ?? node.store.batches })
    }
    return views
  }

  checkAll(): void {
    const views = this.views()
    const controller = this.controller.state
    for (const view of views.values()) this.checker.observe(view, views, { full: true, controller })
  }

  /** Whether every replica is up, in the ISR, at one log end and HW, under one leader. */
  converged(): boolean {
    const state = this.controller.state
    if (state.leader < 0 || state.isr.length !== REPLICAS.length) return false
    const leader = this.node(state.leader).replica
    if (!leader || leader.role !== 'Leader' || leader.leaderEpoch !== state.leaderEpoch) return false
    if (leader.state!.isr.length !== REPLICAS.length || leader.isrChangePending) return false
    return REPLICAS.every((id) => {
      const replica = this.node(id).replica
      return (
        replica !== null &&
        !this.node(id).paused &&
        replica.leaderEpoch === state.leaderEpoch &&
        replica.logEndOffset === leader.logEndOffset &&
        replica.highWatermark === leader.logEndOffset
      )
    })
  }

  summary(): SimSummary {
    const leader = this.node(this.controller.state.leader).replica!
    const entries = new Map<number, string>()
    for (const batch of leader.batches()) {
      batch.records.forEach((record, i) => entries.set(Number(batch.baseOffset) + i, `e${batch.leaderEpoch}:${record}`))
    }
    let lost = 0
    for (const ack of this.acksOne) {
      ack.values.forEach((value, i) => {
        if (entries.get(Number(ack.offset) + i) !== `e${ack.epoch}:${value}`) lost++
      })
    }
    return {
      produced: this.nextValue,
      consumed: this.consumedRecords,
      acknowledgedAll: this.acknowledgedAll,
      acknowledgedOne: this.acksOne.reduce((n, ack) => n + ack.values.length, 0),
      lostAcksOne: lost,
      leaderEpochs: this.controller.state.leaderEpoch + 1,
      isrChanges: this.isrChanges,
      truncations: this.truncations,
      messages: this.network.stats.delivered,
    }
  }

  describe(replica: PartitionReplica): string {
    return (
      `${replica.role} e${replica.leaderEpoch} LEO=${replica.logEndOffset} HW=${replica.highWatermark}` +
      (replica.role === 'Leader' ? ` isr=[${replica.state!.isr}] maximal=[${replica.maximalIsr}]` : '')
    )
  }

  private describeState(): string {
    const s = this.controller.state
    return `leader=${s.leader} e${s.leaderEpoch} isr=[${s.isr}] pe${s.partitionEpoch}`
  }

  // ---- the controller ----

  private controllerLoop(): void {
    const check = (): void => {
      for (const id of REPLICAS) {
        const silent = this.now - this.lastHeartbeat.get(id)! > SESSION_TIMEOUT_MS
        if (silent && !this.controller.isFenced(id)) {
          this.controller.fence(id)
          this.note(`controller fenced r${id}: ${this.describeState()}`)
          this.broadcast()
        } else if (!silent && this.controller.isFenced(id)) {
          this.controller.unfence(id)
          this.note(`controller unfenced r${id}: ${this.describeState()}`)
          this.broadcast()
        }
      }
      this.scheduler.after(HEARTBEAT_INTERVAL_MS, check)
    }
    const publish = (): void => {
      this.broadcast()
      this.scheduler.after(METADATA_INTERVAL_MS, publish)
    }
    check()
    publish()
  }

  private broadcast(): void {
    const fenced = REPLICAS.filter((id) => this.controller.isFenced(id))
    for (const id of REPLICAS) this.network.send(CONTROLLER, id, { kind: 'metadata', state: this.controller.state, fenced })
  }

  private controllerReceive(message: SimMessage): void {
    if (message.kind === 'heartbeat') {
      this.lastHeartbeat.set(message.from, this.now)
    } else if (message.kind === 'alterPartition') {
      const before = this.controller.state
      const response = this.controller.alterPartition(message.request)
      if (response.errorCode === ErrorCode.NONE) {
        this.isrChanges++
        this.note(`controller: r${message.from} AlterPartition [${message.request.newIsr}]: ${this.describeState()}`)
      } else if (this.options.traceMessages) {
        this.note(`controller: r${message.from} AlterPartition [${message.request.newIsr}] refused ${response.errorCode} (${before.partitionEpoch})`)
      }
      this.network.send(CONTROLLER, message.from, { kind: 'alterPartitionResponse', response })
      if (response.errorCode === ErrorCode.NONE) this.broadcast()
    }
  }

  // ---- replicas ----

  private deliver(destination: number, message: SimMessage): void | Promise<void> {
    if (destination === CONTROLLER) return this.controllerReceive(message)
    const node = this.node(destination)
    if (!node.replica) return
    if (this.options.traceMessages) this.note(`-> r${destination} ${describeMessage(message)}`)
    if (node.paused) {
      node.inbox.push(message)
      return
    }
    return this.handle(node, message)
  }

  private handle(node: SimReplicaNode, message: SimMessage): void {
    switch (message.kind) {
      case 'replica':
        if (message.envelope.message.type === 'ReplicaFetchResponse' && message.envelope.message.divergingEpoch)
          this.truncations++
        return this.step(node, (r) => r.receive(message.envelope, this.now))
      case 'alterPartitionResponse':
        return this.step(node, (r) => r.receiveAlterPartitionResponse(message.response, this.now))
      case 'metadata':
        return this.step(node, (r) => {
          if (r.applyPartitionState(message.state, this.now)) this.note(`r${node.id} applied ${this.describeStateOf(message.state)}`)
          r.setIneligibleReplicas(message.fenced, this.now)
        })
      default:
        return
    }
  }

  private describeStateOf(s: PartitionState): string {
    return `leader=${s.leader} e${s.leaderEpoch} isr=[${s.isr}] pe${s.partitionEpoch}`
  }

  /** One call into a replica, then drain, persist, send and answer, as a node's loop does. */
  private step(node: SimReplicaNode, call: (replica: PartitionReplica) => void): void {
    const replica = node.replica!
    const before = `${replica.role}${replica.leaderEpoch}`
    call(replica)
    const output = replica.drain()
    if (output.writes.length > 0 && this.crashPoint(node, 'before persisting')) return this.bounce(node)
    node.store = applyReplicaWrites(node.store, output.writes)
    if (this.crashPoint(node, 'before sending')) return this.bounce(node)
    for (const envelope of output.messages)
      this.network.send(envelope.source, envelope.destination, { kind: 'replica', envelope })
    for (const request of output.alterPartition)
      this.network.send(node.id, CONTROLLER, { kind: 'alterPartition', from: node.id, request })
    for (const result of output.produceResults) this.produced(replica, result)
    if (`${replica.role}${replica.leaderEpoch}` !== before) this.note(`r${node.id} ${this.describe(replica)}`)
    const views = this.views()
    const full = ++this.steps % 50 === 0
    this.checker.observe(views.get(node.id)!, views, { full, controller: this.controller.state })
    const deadline = replica.nextDeadlineMs()
    if (deadline === Infinity) return
    const token = ++node.tickToken
    this.scheduler.at(Math.max(deadline, this.now + 1), () => {
      if (node.tickToken !== token || node.replica !== replica || node.paused) return
      this.step(node, (r) => r.tick(this.now))
    })
  }

  private produced(replica: PartitionReplica, result: ProduceResult): void {
    const request = this.pending.get(result.requestId)
    if (!request) return
    this.pending.delete(result.requestId)
    if (result.errorCode !== ErrorCode.NONE) return
    const batch = replica.batches().find((b) => b.baseOffset === result.baseOffset)!
    if (request.acks === -1) {
      this.acknowledgedAll += request.values.length
      this.checker.acknowledge(result.baseOffset, request.values, batch.leaderEpoch, replica.leaderEpoch)
    } else {
      this.acksOne.push({ offset: result.baseOffset, values: request.values, epoch: batch.leaderEpoch })
    }
  }

  private crashPoint(node: SimReplicaNode, where: string): boolean {
    if (this.crashPointRate === 0 || !this.random.chance(this.crashPointRate)) return false
    this.note(`r${node.id} crash point ${where}`)
    return true
  }

  private bounce(node: SimReplicaNode): void {
    this.crash(node.id)
    const incarnation = node.incarnation
    this.scheduler.after(this.random.int(0, 100), () => {
      if (node.incarnation === incarnation) this.restart(node.id)
    })
  }
}

function describeMessage(message: SimMessage): string {
  if (message.kind !== 'replica') return `${message.kind}`
  const { source, message: m } = message.envelope
  switch (m.type) {
    case 'ReplicaFetchRequest':
      return `Fetch from r${source} e${m.currentLeaderEpoch} offset=${m.fetchOffset} last=${m.lastFetchedEpoch}`
    case 'ReplicaFetchResponse':
      return (
        `FetchResponse from r${source} err=${m.errorCode} e${m.leaderEpoch} hw=${m.highWatermark} ` +
        `batches=${m.batches.map((b) => `${b.baseOffset}e${b.leaderEpoch}x${b.records.length}`).join(',')} ` +
        `diverging=${m.divergingEpoch ? `${m.divergingEpoch.epoch}@${m.divergingEpoch.endOffset}` : '-'}`
      )
    case 'OffsetForLeaderEpochRequest':
      return `OffsetForLeaderEpoch from r${source} e${m.currentLeaderEpoch} epoch=${m.leaderEpoch}`
    case 'OffsetForLeaderEpochResponse':
      return `OffsetForLeaderEpochResponse from r${source} err=${m.errorCode} ${m.leaderEpoch}@${m.endOffset}`
  }
}
