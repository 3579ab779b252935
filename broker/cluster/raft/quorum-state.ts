/**
 * The roles of a quorum member and the rules between them (Kafka's QuorumState and EpochState classes, KIP-595,
 * with KIP-996's pre-vote). Epochs are Raft's terms.
 *
 *                election timeout            majority of pre-votes          majority of votes
 *   Unattached ───────────────────> Prospective ───────────────────> Candidate ─────────────────> Leader
 *      ^  ^                          │   │  ^                            │  (epoch + 1, votes                 │
 *      │  └── pre-votes lost or ─────┘   │  └── election lost (after ─────┘   for itself)                    │
 *      │      timed out, no leader known │      backoff) or timed out                        check-quorum    │
 *      │                                 │ pre-votes lost or timed out,                      fails, or       │
 *      │                                 v leader known                                      resign()        v
 *      │                              Follower ── fetch timeout ──> Prospective                          Resigned
 *      │                                 (EndQuorumEpoch from its leader: the fetch timeout is cut to a     │
 *      │                                  backoff by its place among the preferred successors, 0 if first)  │
 *      │                                                                                                    │
 *      └──────────────────────────── election timeout: Unattached(epoch + 1) ───────────────────────────────┘
 *
 *   Any role: a higher epoch with a known leader -> Follower of it; without one -> Unattached in that epoch.
 *   Unattached, Prospective, Candidate: the leader of their own epoch -> Follower of it.
 *   Granting a vote (not a pre-vote): Unattached or Prospective -> Unattached, voted for the candidate.
 *   Observers (members that are not voters) only move between Unattached and Follower, to a higher epoch only with
 *   its leader; an Unattached observer asks voters for the leader with Fetch requests.
 *   A member restarts in what it persisted: Resigned if it was the leader (it neither leads nor votes again in that
 *   epoch), Follower of the leader it knew, else Unattached with its vote.
 *
 * Invariants
 * - The persisted epoch never decreases, and a member never acts in an epoch below the one it persisted.
 * - At most one vote per epoch: the vote is persisted before the response that grants it is sent, so each epoch has
 *   at most one leader (a leader was granted votes by a majority in its epoch).
 * - A vote is granted only to a candidate whose log is at least as up to date: (lastOffsetEpoch, lastOffset)
 *   compared epoch first, then offset. With commit by majority, every leader holds every committed entry.
 * - Pre-votes change no state. A voter grants one only to an up-to-date log, and a Follower only if it has not
 *   fetched successfully from its leader in this epoch (or since that leader resigned with EndQuorumEpoch): a member
 *   cut off from a working quorum cannot raise the epoch and depose its leader when it comes back. A leader that a
 *   majority stopped fetching from resigns (check-quorum). Resignation only starts an election sooner: no vote rule
 *   depends on it.
 * - No member takes an epoch above MAX_EPOCH (INT32_MAX - 1): an epoch is an int32 on the wire, so in an epoch of
 *   INT32_MAX no election could follow. A Vote, BeginQuorumEpoch or EndQuorumEpoch naming a later epoch is answered
 *   INVALID_REQUEST and changes nothing (nothing is persisted), a response naming one is ignored, and a member in
 *   MAX_EPOCH neither stands for the next epoch nor moves to it after resigning.
 */
import type { ElectionState } from '../../../storage/raft-store.js'
import type { LeaderState } from './leader-state.js'
import { majority } from './config.js'

export const Role = {
  Unattached: 'Unattached',
  Prospective: 'Prospective',
  Candidate: 'Candidate',
  Leader: 'Leader',
  Follower: 'Follower',
  Resigned: 'Resigned',
} as const
export type Role = (typeof Role)[keyof typeof Role]

/** The largest epoch a member takes (see the invariants above): INT32_MAX - 1. */
export const MAX_EPOCH = 0x7fffffff - 1

/** The tally of a pre-vote or vote round (Kafka's EpochElection); the local voter grants itself. */
export class EpochElection {
  private readonly granted = new Set<number>()
  private readonly rejected = new Set<number>()

  constructor(
    private readonly voters: ReadonlySet<number>,
    localId: number,
  ) {
    this.granted.add(localId)
  }

  record(voterId: number, granted: boolean): void {
    if (!this.voters.has(voterId) || this.granted.has(voterId) || this.rejected.has(voterId)) return
    ;(granted ? this.granted : this.rejected).add(voterId)
  }

  hasResponded(voterId: number): boolean {
    return this.granted.has(voterId) || this.rejected.has(voterId)
  }

  get isWon(): boolean {
    return this.granted.size >= majority(this.voters.size)
  }

  get isLost(): boolean {
    return this.voters.size - this.rejected.size < majority(this.voters.size)
  }

  grantingVoters(): number[] {
    return [...this.granted].sort((a, b) => a - b)
  }
}

export interface UnattachedState {
  readonly role: 'Unattached'
  readonly epoch: number
  readonly votedId: number | null
  readonly electionDeadlineMs: number
}

export interface ProspectiveState {
  readonly role: 'Prospective'
  readonly epoch: number
  readonly votedId: number | null
  /** The leader of this epoch it followed before, to go back to if the pre-votes fail. */
  readonly leaderId: number | null
  readonly electionDeadlineMs: number
  readonly election: EpochElection
}

export interface CandidateState {
  readonly role: 'Candidate'
  readonly epoch: number
  readonly electionDeadlineMs: number
  readonly election: EpochElection
  /** Set once the election is lost: when to go back to Prospective. */
  backoffUntilMs: number | null
}

export interface SnapshotFetch {
  readonly endOffset: bigint
  readonly epoch: number
  position: bigint
  readonly chunks: Buffer[]
}

export interface FollowerState {
  readonly role: 'Follower'
  readonly epoch: number
  readonly leaderId: number
  readonly votedId: number | null
  fetchDeadlineMs: number
  /** A fetch from the leader succeeded in this epoch (pre-votes are then refused, KIP-996). */
  hasFetchedFromLeader: boolean
  /** The snapshot being fetched; regular fetches wait until it is loaded. */
  snapshotFetch: SnapshotFetch | null
}

export interface ResignedState {
  readonly role: 'Resigned'
  readonly epoch: number
  readonly electionDeadlineMs: number
  /** Voters not yet told with EndQuorumEpoch. */
  readonly unackedVoters: Set<number>
  readonly preferredSuccessors: readonly number[]
}

export type EpochState =
  | UnattachedState
  | ProspectiveState
  | CandidateState
  | LeaderState
  | FollowerState
  | ResignedState

/** The vote a member holds in its epoch (a candidate, leader or resigned leader voted for itself). */
export function votedIdOf(state: EpochState, localId: number): number | null {
  switch (state.role) {
    case 'Unattached':
    case 'Prospective':
    case 'Follower':
      return state.votedId
    case 'Candidate':
    case 'Leader':
    case 'Resigned':
      return localId
  }
}

/** What a member persists for its state (Kafka's ElectionState). */
export function electionOf(state: EpochState, localId: number): ElectionState {
  const votedId = votedIdOf(state, localId)
  switch (state.role) {
    case 'Unattached':
    case 'Candidate':
      return { epoch: state.epoch, leaderId: null, votedId }
    case 'Prospective':
      return { epoch: state.epoch, leaderId: state.leaderId, votedId }
    case 'Follower':
      return { epoch: state.epoch, leaderId: state.leaderId, votedId }
    case 'Leader':
    case 'Resigned':
      return { epoch: state.epoch, leaderId: localId, votedId }
  }
}

export function sameElection(a: ElectionState | null, b: ElectionState): boolean {
  return a !== null && a.epoch === b.epoch && a.leaderId === b.leaderId && a.votedId === b.votedId
}

/**
 * Whether a member grants a vote or pre-vote, in the candidate's epoch (the caller has moved to it for a vote).
 * Kafka's `canGrantVote` of each EpochState.
 */
export function canGrantVote(
  state: EpochState,
  request: { candidateId: number; isLogUpToDate: boolean; preVote: boolean },
): boolean {
  const { candidateId, isLogUpToDate, preVote } = request
  switch (state.role) {
    case 'Leader':
      return false
    case 'Follower':
      return preVote && isLogUpToDate && !state.hasFetchedFromLeader
    case 'Candidate':
    case 'Resigned':
      return preVote && isLogUpToDate
    case 'Unattached':
    case 'Prospective':
      if (preVote) return isLogUpToDate
      if (state.votedId !== null) return state.votedId === candidateId
      if (state.role === 'Prospective' && state.leaderId !== null) return false
      return isLogUpToDate
  }
}

/** Kafka's OffsetAndEpoch order: epoch first, then offset. Negative, zero or positive as for a sort. */
export function compareLogEnds(a: { epoch: number; offset: bigint }, b: { epoch: number; offset: bigint }): number {
  if (a.epoch !== b.epoch) return a.epoch - b.epoch
  return a.offset === b.offset ? 0 : a.offset < b.offset ? -1 : 1
}
