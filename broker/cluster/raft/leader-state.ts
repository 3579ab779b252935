/**
 * What a leader tracks in its epoch (Kafka's LeaderState): each replica's end offset from its fetches, when each
 * voter last fetched, check-quorum, and the fetches it holds until there is something new.
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
 * - Every half fetch timeout, the leader sends BeginQuorumEpoch to each voter that has not fetched in that time
 *   (Kafka's needToSendBeginQuorumRequests): a voter that missed the election follows, and a voter that moved to a
 *   later epoch answers with it, so the leader steps down and the next election includes that voter.
 * - Observers (replicas that fetch but are not voters; any replica id a Fetch names) are tracked only while they fetch:
 *   one not heard from for OBSERVER_SESSION_TIMEOUT_MS is dropped (Kafka's LeaderState.clearInactiveObservers), and at
 *   most MAX_OBSERVERS are kept: a new one beyond that evicts the one heard from least recently. An evicted observer
 *   that fetches again starts afresh (its end offset and last high watermark sent come with that fetch), which only
 *   DescribeQuorum and its next fetch's long poll notice.
 */
import type { FetchRequest, RaftEnvelope } from './messages.js'
import { majority } from './config.js'

/** An observer not heard from for this long (ms, the leader's clock) is dropped (Kafka's OBSERVER_SESSION_TIMEOUT_MS). */
export const OBSERVER_SESSION_TIMEOUT_MS = 300_000

/** Observers tracked at most; a new one beyond this evicts the one heard from least recently. */
export const MAX_OBSERVERS = 1000

export interface ReplicaState {
  /** The end offset of the replica's log that matches the leader's, from its last valid fetch. */
  endOffset: bigint | null
  /** When a voter last fetched (or fetched a snapshot) in this epoch; when an observer last fetched. */
  lastFetchMs: number | null
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
  /** The observers heard from, the one heard from least recently first (read it through `observers(nowMs)`). */
  private readonly observerStates = new Map<number, ReplicaState>()
  parkedFetches: ParkedFetch[] = []
  private readonly fetchedVoters = new Set<number>()
  private checkQuorumDeadline: number
  private beginQuorumEpochDeadline: number

  constructor(
    readonly localId: number,
    readonly epoch: number,
    /** The offset of the leader-change batch that opens the epoch. */
    readonly epochStartOffset: bigint,
    readonly grantingVoters: readonly number[],
    private readonly voters: ReadonlySet<number>,
    nowMs: number,
    private readonly timeouts: { checkQuorumMs: number; beginQuorumEpochMs: number },
  ) {
    for (const voter of voters) {
      if (voter !== localId) {
        this.voterStates.set(voter, { endOffset: null, lastFetchMs: null, lastSentHighWatermark: null })
      }
    }
    this.checkQuorumDeadline = nowMs + timeouts.checkQuorumMs
    this.beginQuorumEpochDeadline = nowMs
  }

  get checkQuorumDeadlineMs(): number {
    return this.checkQuorumDeadline
  }

  get beginQuorumEpochDeadlineMs(): number {
    return this.beginQuorumEpochDeadline
  }

  /** Once per BeginQuorumEpoch period (at once when the epoch starts): the voters that did not fetch in it. */
  takeVotersToAnnounceTo(nowMs: number): number[] {
    if (nowMs < this.beginQuorumEpochDeadline) return []
    this.beginQuorumEpochDeadline = nowMs + this.timeouts.beginQuorumEpochMs
    const silent: number[] = []
    for (const [voter, state] of this.voterStates) {
      if (state.lastFetchMs === null || nowMs - state.lastFetchMs >= this.timeouts.beginQuorumEpochMs)
        silent.push(voter)
    }
    return silent
  }

  /**
   * A voter's or an observer's state, for a fetch from it at `nowMs`. An observer's is created on its first fetch (after
   * dropping observers silent for OBSERVER_SESSION_TIMEOUT_MS, and the one heard from least recently when MAX_OBSERVERS
   * are tracked), and each fetch records its time.
   */
  replica(replicaId: number, nowMs: number): ReplicaState {
    const voter = this.voterStates.get(replicaId)
    if (voter) return voter
    let state = this.observerStates.get(replicaId)
    if (state) {
      // Heard from now: last in the order of eviction.
      this.observerStates.delete(replicaId)
    } else {
      this.expireObservers(nowMs)
      while (this.observerStates.size >= MAX_OBSERVERS) this.observerStates.delete(this.observerStates.keys().next().value!)
      state = { endOffset: null, lastFetchMs: null, lastSentHighWatermark: null }
    }
    state.lastFetchMs = nowMs
    this.observerStates.set(replicaId, state)
    return state
  }

  /** The observers heard from within OBSERVER_SESSION_TIMEOUT_MS of `nowMs` (those silent longer are dropped). */
  observers(nowMs: number): ReadonlyMap<number, ReplicaState> {
    this.expireObservers(nowMs)
    return this.observerStates
  }

  /** Drops the observers not heard from for OBSERVER_SESSION_TIMEOUT_MS; they come first in the map. */
  private expireObservers(nowMs: number): void {
    for (const [replicaId, state] of this.observerStates) {
      if (nowMs - state.lastFetchMs! < OBSERVER_SESSION_TIMEOUT_MS) return
      this.observerStates.delete(replicaId)
    }
  }

  /** A voter fetched (or fetched a snapshot) in this epoch: it follows this leader, and counts for check-quorum. */
  recordVoterFetch(voterId: number, nowMs: number): void {
    const state = this.voterStates.get(voterId)
    if (!state) return
    state.lastFetchMs = nowMs
    this.fetchedVoters.add(voterId)
    if (this.fetchedVoters.size + 1 >= majority(this.voters.size)) {
      this.fetchedVoters.clear()
      this.checkQuorumDeadline = nowMs + this.timeouts.checkQuorumMs
    }
  }

  hasCheckQuorumExpired(nowMs: number): boolean {
    return this.voters.size > 1 && nowMs >= this.checkQuorumDeadline
  }

  /** Records a valid fetch at `endOffset`, at `nowMs`; returns whether a voter's end offset grew. */
  updateReplicaEndOffset(replicaId: number, endOffset: bigint, nowMs: number): boolean {
    const state = this.replica(replicaId, nowMs)
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
