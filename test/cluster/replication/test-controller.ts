/**
 * The controller's part in data replication, reduced to one partition: the QuorumController's rules (elect the first
 * live ISR member in replica order with a bumped leaderEpoch, remove a fenced broker from the ISR unless it is the
 * last member, apply AlterPartition at the current leader and partition epochs with live replicas only), without a
 * Raft log under it. Every change bumps partitionEpoch. Unclean election is off: with no live ISR member the
 * partition has no leader (-1) until one returns.
 */
import { ErrorCode } from '../../../protocol/errors.js'
import type {
  AlterPartitionRequest,
  AlterPartitionResponse,
  PartitionState,
} from '../../../broker/cluster/replication/messages.js'

export class TestController {
  state: PartitionState
  private readonly fenced = new Set<number>()
  /** Every (leaderEpoch -> leader) this controller handed out. */
  readonly leaders = new Map<number, number>()

  constructor(replicas: readonly number[]) {
    this.state = { leader: replicas[0]!, leaderEpoch: 0, isr: [...replicas], replicas: [...replicas], partitionEpoch: 0 }
    this.leaders.set(0, replicas[0]!)
  }

  isFenced(id: number): boolean {
    return this.fenced.has(id)
  }

  /** KIP-497's AlterPartition, as QuorumController.alterPartition checks it. */
  alterPartition(request: AlterPartitionRequest): AlterPartitionResponse {
    const fail = (errorCode: number): AlterPartitionResponse => ({ correlationId: request.correlationId, errorCode, state: null })
    const state = this.state
    if (request.brokerId !== state.leader || request.leaderEpoch !== state.leaderEpoch)
      return fail(ErrorCode.FENCED_LEADER_EPOCH)
    if (request.partitionEpoch !== state.partitionEpoch) return fail(ErrorCode.INVALID_UPDATE_VERSION)
    if (!request.newIsr.includes(state.leader)) return fail(ErrorCode.INVALID_REQUEST)
    if (request.newIsr.some((id) => !state.replicas.includes(id) || this.fenced.has(id)))
      return fail(ErrorCode.INELIGIBLE_REPLICA)
    this.change({ isr: [...request.newIsr] })
    return { correlationId: request.correlationId, errorCode: ErrorCode.NONE, state: this.state }
  }

  /** A broker stopped heartbeating: out of every ISR (unless last), leadership moves if it led. */
  fence(id: number): void {
    if (this.fenced.has(id)) return
    this.fenced.add(id)
    const state = this.state
    const isr = state.isr.length > 1 ? state.isr.filter((member) => member !== id) : state.isr
    if (state.leader === id) this.elect(isr)
    else if (isr.length !== state.isr.length) this.change({ isr })
  }

  /** A broker heartbeats again; a leaderless partition whose ISR holds it gets it as leader. */
  unfence(id: number): void {
    if (!this.fenced.delete(id)) return
    if (this.state.leader === -1 && this.state.isr.includes(id)) this.elect(this.state.isr)
  }

  /** Moves leadership to another live ISR member (a preferred-leader or controlled-shutdown election). */
  moveLeader(to: number): boolean {
    const state = this.state
    if (to === state.leader || !state.isr.includes(to) || this.fenced.has(to)) return false
    this.change({ leader: to, leaderEpoch: state.leaderEpoch + 1 })
    this.leaders.set(this.state.leaderEpoch, to)
    return true
  }

  private elect(isr: readonly number[]): void {
    const leader = this.state.replicas.find((id) => isr.includes(id) && !this.fenced.has(id)) ?? -1
    this.change({ leader, isr: [...isr], leaderEpoch: this.state.leaderEpoch + 1 })
    if (leader >= 0) this.leaders.set(this.state.leaderEpoch, leader)
  }

  private change(fields: Partial<PartitionState>): void {
    this.state = { ...this.state, ...fields, partitionEpoch: this.state.partitionEpoch + 1 }
  }
}
