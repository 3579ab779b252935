/**
 * What a leader tracks in its epoch (Kafka's LeaderState): each replica's end offset from its fetches, the voters
 * that have not acknowledged the epoch yet, check-quorum, and the fetches it holds until there is something new.
 *
 *   replica end offsets (voters, the leader's own = its durable end offset), sorted:   30  28  12
 *                                                                     majority (2 of 3) ──^
 *   high watermark = 28, if 28 > epochStartOffset (the offset of this epoch's leader-change batch)
 *
 * Invariants
 * - The high watermark counts only voters, and the leader only for what it has persisted.
 * - It moves only past an entry of the current epoch: an entry of an earlier epoch is committed by the first entry
 *   of this epoch reaching a majority, never by its own count (the Raft paper's figure 8).
 * - A replica's end offset only grows within the epoch: a valid fetch proves its log matches the leader's up to the
 *   fetch offset, and that prefix is never truncated in this epoch (a late duplicate of an older fetch is ignored).
 * - Check-quorum: unless a majority of voters (the leader included) fetched within 1.5 fetch timeouts, the leader
 *   resigns, so a leader cut off from its quorum stops claiming to lead.
 */
import type { FetchRequest, RaftEnvelope } from './messages.js'
import { majority } from './quorum-state.js'

export interface ReplicaState {
  /** The end offset of the replica's log that matches the leader's, from its last valid fetch. */
  endOffset: bigint | null
  /** The high watermark in the last fetch response it was sent. */
  lastSentHighWatermark: bigint | null
}

export interface ParkedFetch {
  readonly envelope: RaftEnvelope<FetchRequest>
  readonly deadlineMs: number
}

export class LeaderState {
  readonly role = 'Leader'
  readonly voterStates = new Map<number, ReplicaState>()
  readonly observerStates = new Map<number, ReplicaState>()
  /** Voters to send BeginQuorumEpoch to, until they answer it or fetch. */
  readonly unackedVoters: Set<number>
  parkedFetches: ParkedFetch[] = []
  private readonly fetchedVoters = new Set<number>()
  private checkQuorumDeadline: number

  constructor(
    readonly localId: number,
    readonly epoch: number,
    /** The offset of the leader-change batch that opens the epoch. */
    readonly epochStartOffset: bigint,
    readonly grantingVoters: readonly number[],
    private readonly voters: ReadonlySet<number>,
    nowMs: number,
    private readonly checkQuorumTimeoutMs: number,
  ) {
    for (const voter of voters) {
      if (voter !== localId) this.voterStates.set(voter, { endOffset: null, lastSentHighWatermark: null })
    }
    this.unackedVoters = new Set(this.voterStates.keys())
    this.checkQuorumDeadline = nowMs + checkQuorumTimeoutMs
  }

  get checkQuorumDeadlineMs(): number {
    return this.checkQuorumDeadline
  }

  /** A voter's or an observer's state (an observer's is created on its first fetch). */
  replica(replicaId: number): ReplicaState {
    let state = this.voterStates.get(replicaId) ?? this.observerStates.get(replicaId)
    if (!state) {
      state = { endOffset: null, lastSentHighWatermark: null }
      this.observerStates.set(replicaId, state)
    }
    return state
  }

  /** A voter fetched (or fetched a snapshot) in this epoch: it acknowledges the epoch and counts for check-quorum. */
  recordVoterFetch(voterId: number, nowMs: number): void {
    if (!this.voterStates.has(voterId)) return
    this.unackedVoters.delete(voterId)
    this.fetchedVoters.add(voterId)
    if (this.fetchedVoters.size + 1 >= majority(this.voters.size)) {
      this.fetchedVoters.clear()
      this.checkQuorumDeadline = nowMs + this.checkQuorumTimeoutMs
    }
  }

  hasCheckQuorumExpired(nowMs: number): boolean {
    return this.voters.size > 1 && nowMs >= this.checkQuorumDeadline
  }

  /** Records a valid fetch at `endOffset`; returns whether a voter's end offset grew. */
  updateReplicaEndOffset(replicaId: number, endOffset: bigint): boolean {
    const state = this.replica(replicaId)
    if (state.endOffset !== null && state.endOffset >= endOffset) return false
    state.endOffset = endOffset
    return this.voterStates.has(replicaId)
  }

  /**
   * The offset a majority of voters holds, given the leader's own durable end offset, if it is past the epoch's
   * start (so it covers an entry of this epoch); otherwise null.
   */
  majorityEndOffset(localDurableEndOffset: bigint): bigint | null {
    const ends = [localDurableEndOffset]
    for (const state of this.voterStates.values()) if (state.endOffset !== null) ends.push(state.endOffset)
    const needed = majority(this.voters.size)
    if (ends.length < needed) return null
    ends.sort((a, b) => (a > b ? -1 : a < b ? 1 : 0))
    const offset = ends[needed - 1]!
    return offset > this.epochStartOffset ? offset : null
  }

  /** The other voters, most caught-up first (EndQuorumEpoch's preferred successors). */
  preferredSuccessors(): number[] {
    const rank = (state: ReplicaState): bigint => state.endOffset ?? -1n
    return [...this.voterStates.entries()]
      .sort(([a, x], [b, y]) => (rank(x) > rank(y) ? -1 : rank(x) < rank(y) ? 1 : a - b))
      .map(([id]) => id)
  }

  park(fetch: ParkedFetch): void {
    this.parkedFetches.push(fetch)
  }

  /** Removes and returns the held fetches that `select` picks. */
  takeParked(select: (fetch: ParkedFetch) => boolean): ParkedFetch[] {
    const taken = this.parkedFetches.filter(select)
    if (taken.length > 0) this.parkedFetches = this.parkedFetches.filter((fetch) => !select(fetch))
    return taken
  }
}
