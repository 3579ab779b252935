/**
 * Replicas of one partition driven by hand, for directed tests: each call into a replica is followed by its drain
 * (writes applied to its persisted state, messages queued, AlterPartition requests and produce results collected);
 * messages move only when the test delivers them, time only when it advances.
 */
import { PartitionReplica, type ProduceResult } from '../../../broker/cluster/replication/partition.js'
import type { ReplicationConfig } from '../../../broker/cluster/replication/config.js'
import {
  applyReplicaWrites,
  EMPTY_REPLICA,
  type PersistedReplica,
} from '../../../broker/cluster/replication/log.js'
import type { AlterPartitionRequest, ReplicaEnvelope } from '../../../broker/cluster/replication/messages.js'
import { logEntries } from './checker.js'
import { TestController } from './test-controller.js'

export class Bench {
  now = 1000
  readonly controller: TestController
  readonly replicas = new Map<number, PartitionReplica | null>()
  readonly stores = new Map<number, PersistedReplica>()
  queue: ReplicaEnvelope[] = []
  alterRequests: { from: number; request: AlterPartitionRequest }[] = []
  readonly results = new Map<number, ProduceResult>()
  private nextRequestId = 0
  private readonly incarnations = new Map<number, number>()

  constructor(
    readonly ids: readonly number[],
    readonly config: Partial<ReplicationConfig> = {},
  ) {
    this.controller = new TestController(ids)
    for (const id of ids) {
      this.stores.set(id, EMPTY_REPLICA)
      this.start(id)
    }
  }

  replica(id: number): PartitionReplica {
    const replica = this.replicas.get(id)
    if (!replica) throw new Error(`replica ${id} is down`)
    return replica
  }

  start(id: number): void {
    const incarnation = (this.incarnations.get(id) ?? 0) + 1
    this.incarnations.set(id, incarnation)
    this.replicas.set(
      id,
      new PartitionReplica({
        replicaId: id,
        persisted: this.stores.get(id)!,
        config: this.config,
        firstCorrelationId: incarnation * 1_000_000,
      }),
    )
  }

  /** The process dies: what it did not persist is gone (nothing: every drain is persisted), messages to it too. */
  crash(id: number): void {
    this.replicas.set(id, null)
    this.queue = this.queue.filter((envelope) => envelope.destination !== id)
    this.alterRequests = this.alterRequests.filter((entry) => entry.from !== id)
  }

  step<T>(id: number, call: (replica: PartitionReplica) => T): T {
    const replica = this.replica(id)
    const value = call(replica)
    const output = replica.drain()
    this.stores.set(id, applyReplicaWrites(this.stores.get(id)!, output.writes))
    this.queue.push(...output.messages)
    for (const request of output.alterPartition) this.alterRequests.push({ from: id, request })
    for (const result of output.produceResults) this.results.set(result.requestId, result)
    return value
  }

  /** Hands the controller's current state and fenced brokers to every live replica (or those named). */
  publish(ids: readonly number[] = this.ids): void {
    const fenced = this.ids.filter((id) => this.controller.isFenced(id))
    for (const id of ids) {
      if (!this.replicas.get(id)) continue
      this.step(id, (r) => r.applyPartitionState(this.controller.state, this.now))
      this.step(id, (r) => r.setIneligibleReplicas(fenced, this.now))
    }
  }

  /**
   * Delivers queued messages in order (and what they cause) until none is left, or `rounds` times; `drop` loses
   * the ones it picks.
   */
  deliver(options: { drop?: (envelope: ReplicaEnvelope) => boolean; rounds?: number } = {}): void {
    for (let round = 0; this.queue.length > 0 && round < (options.rounds ?? 1000); round++) {
      const batch = this.queue
      this.queue = []
      for (const envelope of batch) {
        if (options.drop?.(envelope) || !this.replicas.get(envelope.destination)) continue
        this.step(envelope.destination, (r) => r.receive(envelope, this.now))
      }
    }
  }

  /** The controller answers every AlterPartition sent so far; the answer reaches the leader. */
  answerAlterPartitions(): void {
    const requests = this.alterRequests
    this.alterRequests = []
    for (const { from, request } of requests) {
      const response = this.controller.alterPartition(request)
      if (this.replicas.get(from)) this.step(from, (r) => r.receiveAlterPartitionResponse(response, this.now))
    }
  }

  /** Time passes; every live replica ticks. */
  advance(ms: number): void {
    this.now += ms
    for (const id of this.ids) if (this.replicas.get(id)) this.step(id, (r) => r.tick(this.now))
  }

  produce(id: number, values: readonly string[], options: { acks: number; timeoutMs?: number }): number {
    const requestId = this.nextRequestId++
    const records = values.map((v) => Buffer.from(v))
    const timeoutMs = options.timeoutMs ?? 30_000
    this.step(id, (r) => r.produce({ requestId, acks: options.acks, records, timeoutMs }, this.now))
    return requestId
  }

  /** The values of a replica's log, in offset order, with their leader epochs: `e1:a`. */
  values(id: number): string[] {
    return logEntries(this.replicas.get(id)?.batches() ?? this.stores.get(id)!.batches)
  }
}
