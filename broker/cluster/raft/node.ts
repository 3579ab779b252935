/**
 * A member of a Raft quorum in Kafka's KRaft style (KafkaRaftClient; KIP-595, KIP-630 snapshots, KIP-996 pre-vote):
 * a pure, deterministic core with no sockets, timers or clock of its own. The caller feeds it time and messages and
 * carries out what it asks for:
 *
 *   node.receive(envelope, nowMs)   a message from another member
 *   node.tick(nowMs)                time passed (call it by nextDeadlineMs(), or more often)
 *   node.propose(records, nowMs)    the leader appends a batch
 *   node.resign(nowMs)              a leader steps down before a clean shutdown
 *   const { writes, messages } = node.drain()
 *   await store.write(writes); node.persisted(nowMs)    only when there are writes
 *   transport.send(messages)                            only after the writes are durable
 *
 * Between `drain()` returning writes and `persisted()`, no other call may be made (queue what arrives), so a member
 * never acts on what it has not persisted: a vote is durable before the response granting it leaves, entries are
 * durable before the fetch that acknowledges them, and the leader counts its own entries toward the high watermark
 * only once they are durable. Committed data batches go to the state machine's `apply`, in offset order, once per
 * incarnation (a restarted member restores its latest snapshot and applies from there).
 *
 * Replication is pull-based: followers (and observers, members that are not voters) send Fetch with their log end
 * offset and last epoch; the leader answers with the batches that follow, with the epoch and end offset where the
 * follower's log diverges (it truncates there), or with the id of a snapshot to fetch first (its offset is below the
 * leader's log start). Fetches with nothing new wait at the leader up to fetchMaxWaitMs. The leader's first batch in
 * its epoch is a leader-change record; the high watermark is the offset a majority of voters holds, moving only past
 * an entry of the current epoch (leader-state.ts). quorum-state.ts has the roles, their transitions and invariants.
 *
 * The voters are a static set given at start: dynamic quorum reconfiguration (KIP-853) is not supported.
 */
import { ErrorCode } from '../../../protocol/errors.js'
import {
  batchEndOffset,
  checkPersistentState,
  type ElectionState,
  type RaftBatch,
  type RaftPersistentState,
  type RaftSnapshot,
  type RaftWrite,
} from '../../../storage/raft-store.js'
import { CHECK_QUORUM_TIMEOUT_FACTOR, raftConfig, type RaftConfig } from './config.js'
import { LeaderState, type ReplicaState } from './leader-state.js'
import { RaftLog } from './log.js'
import {
  type BeginQuorumEpochRequest,
  type BeginQuorumEpochResponse,
  type EndQuorumEpochRequest,
  type EndQuorumEpochResponse,
  type FetchRequest,
  type FetchResponse,
  type FetchSnapshotRequest,
  type FetchSnapshotResponse,
  type RaftEnvelope,
  type RaftMessage,
  type VoteRequest,
  type VoteResponse,
} from './messages.js'
import {
  EpochElection,
  canGrantVote,
  MAX_EPOCH,
  compareLogEnds,
  electionOf,
  sameElection,
  votedIdOf,
  type EpochState,
  type FollowerState,
  type Role,
} from './quorum-state.js'
import { RequestManager } from './requests.js'

/** A committed data batch, as handed to the state machine. */
export interface CommittedBatch {
  readonly baseOffset: bigint
  readonly lastOffset: bigint
  readonly epoch: number
  readonly records: readonly Buffer[]
}

/** One replica as its leader sees it (DescribeQuorum's ReplicaState): null where the leader has not heard of it yet. */
export interface ReplicaDescription {
  readonly replicaId: number
  readonly endOffset: bigint | null
  readonly lastFetchMs: number | null
}

export interface LeaderAndEpoch {
  /** null while no leader is known. */
  readonly leaderId: number | null
  readonly epoch: number
  /**
   * Only when the local member is reported as leader: the leader it followed last, and when a message from that
   * leader last came (ms, the member's clock): a fetch answer, or later its resignation (EndQuorumEpoch) or its vote. A
   * member is elected only once a majority stopped hearing from the leader or it resigned, so this is when that leader
   * was last known to be alive; absent when the member heard from no leader since the last one it followed or led.
   */
  readonly predecessor?: LeaderContact
}

/** A leader and the last time (ms) a follower heard from it. */
export interface LeaderContact {
  readonly leaderId: number
  readonly lastHeardMs: number
}

/**
 * What the replicated log drives (Kafka's RaftClient.Listener). Calls are synchronous, from inside the member's
 * calls, and must not call back into the member (queue a proposal and make it after the call returns); an exception
 * from one is a bug of the state machine and propagates to the caller.
 */
export interface RaftStateMachine {
  /** A committed data batch; batches come in offset order, each once per incarnation of the member. */
  apply(batch: CommittedBatch): void
  /** The state after the last applied batch, as bytes (kept as the snapshot, served to followers that lag). */
  snapshot(): Buffer
  /** Replaces the state with a snapshot's: at start (the member's latest) and when a lagging member fetched one. */
  restore(snapshot: RaftSnapshot): void
  /**
   * The known leader changed. The local member is reported as leader only once it has applied everything before
   * its epoch (so a controller acts on complete state).
   */
  leaderChange?(leader: LeaderAndEpoch): void
}

export interface RaftNodeOptions {
  nodeId: number
  /** The voters' node ids (a static set); a member not among them is an observer. */
  voters: readonly number[]
  clusterId: string
  stateMachine: RaftStateMachine
  /** Uniform in [0, 1): election timeout jitter, backoffs, the voter an observer asks first. */
  random: () => number
  /** What `RaftStore.load()` returned. */
  persisted: RaftPersistentState
  nowMs: number
  config?: Partial<RaftConfig>
}

/** Writes to persist (in order, atomically) before sending the messages. */
export interface RaftOutput {
  readonly writes: RaftWrite[]
  readonly messages: RaftEnvelope[]
}

export type ProposeResult =
  | { readonly ok: true; readonly baseOffset: bigint; readonly lastOffset: bigint; readonly epoch: number }
  /** NOT_LEADER_OR_FOLLOWER (not the leader, or not in the epoch asked for) or MESSAGE_TOO_LARGE. */
  | { readonly ok: false; readonly errorCode: number; readonly leaderId: number | null; readonly epoch: number }

export class RaftNode {
  readonly nodeId: number
  readonly clusterId: string
  readonly voters: ReadonlySet<number>
  readonly isVoter: boolean
  readonly config: RaftConfig
  private readonly otherVoters: readonly number[]
  private readonly stateMachine: RaftStateMachine
  private readonly random: () => number
  private readonly requests: RequestManager
  private readonly log: RaftLog
  private state!: EpochState
  private persistedElection: ElectionState | null
  private hw: bigint | null = null
  private applied: bigint
  private bytesSinceSnapshot = 0
  private durableEndOffset: bigint
  private drainedEndOffset: bigint
  private awaitingPersist = false
  private writes: RaftWrite[] = []
  private messages: RaftEnvelope[] = []
  private nextPollMs = 0
  private notifiedLeader: LeaderAndEpoch | null = null
  /**
   * The leader this member follows or last followed, once it answered a fetch, and when a message from it last came;
   * cleared when another leader is known.
   */
  private leaderContact: LeaderContact | null = null
  /** Taken from leaderContact when this member became leader, for the notification of its leadership. */
  private predecessor: LeaderContact | null = null

  constructor(options: RaftNodeOptions) {
    const { nodeId, voters, persisted, nowMs } = options
    if (!Number.isInteger(nodeId) || nodeId < 0)
      throw new Error(`raft node id must be a non-negative integer, got ${nodeId}`)
    if (
      voters.length === 0 ||
      new Set(voters).size !== voters.length ||
      voters.some((v) => !Number.isInteger(v) || v < 0)
    ) {
      throw new Error(`raft voters must be distinct non-negative integers, got [${voters.join(', ')}]`)
    }
    if (options.clusterId === '') throw new Error('raft cluster id must not be empty')
    checkPersistentState(persisted)
    this.nodeId = nodeId
    this.clusterId = options.clusterId
    this.voters = new Set(voters)
    this.isVoter = this.voters.has(nodeId)
    this.otherVoters = [...voters].filter((v) => v !== nodeId).sort((a, b) => a - b)
    this.config = raftConfig(options.config)
    this.stateMachine = options.stateMachine
    this.random = options.random
    this.requests = new RequestManager(this.config.requestTimeoutMs, this.config.retryBackoffMs, this.random)
    this.log = new RaftLog(persisted.snapshot, persisted.batches)
    this.applied = this.log.logStartOffset
    // Everything in a snapshot was committed when it was taken.
    if (persisted.snapshot) this.hw = persisted.snapshot.endOffset
    this.durableEndOffset = this.drainedEndOffset = this.log.endOffset
    this.persistedElection = persisted.election
    if (persisted.snapshot) this.stateMachine.restore(persisted.snapshot)

    const election = persisted.election ?? { epoch: 0, leaderId: null, votedId: null }
    if (election.epoch < this.log.lastFetchedEpoch) {
      // The log is ahead of the election state it was written with: start unattached in the log's epoch.
      this.becomeUnattached(this.log.lastFetchedEpoch, null, nowMs)
    } else if (this.isVoter && election.leaderId === nodeId) {
      this.becomeResigned(election.epoch, [], nowMs)
    } else if (election.leaderId !== null && election.leaderId !== nodeId) {
      this.becomeFollower(election.epoch, election.leaderId, election.votedId, nowMs)
    } else {
      this.becomeUnattached(election.epoch, election.votedId, nowMs)
    }
    // A lone voter need not wait out an election timeout: nobody else can lead (as KafkaRaftClient does).
    if (this.isVoter && this.voters.size === 1) this.becomeProspective(nowMs)
    this.poll(nowMs)
  }

  // ---- what the caller drives ---------------------------------------------------------------------------------------

  tick(nowMs: number): void {
    this.enter()
    this.poll(nowMs)
  }

  receive(envelope: RaftEnvelope, nowMs: number): void {
    this.enter()
    if (envelope.destination !== this.nodeId)
      throw new Error(`raft node ${this.nodeId} got a message for ${envelope.destination}`)
    // Any message from the leader last followed shows it alive then (its vote, its resignation, not only a fetch
    // answer): a successor's controller counts that node's broker session from it.
    if (this.leaderContact?.leaderId === envelope.source) this.leaderContact = { leaderId: envelope.source, lastHeardMs: nowMs }
    this.dispatch(envelope, nowMs)
    this.poll(nowMs)
  }

  /**
   * Appends `records` as one batch if this member leads (in `options.epoch`, when given). The result's offsets are
   * final only if the batch commits: the state machine then gets it at those offsets in that epoch; a batch of
   * another epoch at those offsets means it was lost with its leader. Empty `records` is a bug and throws.
   */
  propose(records: readonly Buffer[], nowMs: number, options: { epoch?: number } = {}): ProposeResult {
    this.enter()
    if (records.length === 0) throw new Error('raft propose needs at least one record')
    const state = this.state
    if (state.role !== 'Leader' || (options.epoch !== undefined && options.epoch !== state.epoch)) {
      return {
        ok: false,
        errorCode: ErrorCode.NOT_LEADER_OR_FOLLOWER,
        leaderId: this.knownLeaderId(),
        epoch: state.epoch,
      }
    }
    let bytes = 0
    for (const record of records) bytes += record.length
    if (bytes > this.config.maxBatchBytes) {
      return { ok: false, errorCode: ErrorCode.MESSAGE_TOO_LARGE, leaderId: this.nodeId, epoch: state.epoch }
    }
    const baseOffset = this.log.endOffset
    this.appendAsLeader(state, { type: 'data', baseOffset, epoch: state.epoch, records: [...records] }, nowMs)
    this.poll(nowMs)
    return { ok: true, baseOffset, lastOffset: baseOffset + BigInt(records.length) - 1n, epoch: state.epoch }
  }

  /**
   * A leader hands over before a clean stop (KIP-595): it becomes Resigned, refuses proposals from then on, and
   * sends EndQuorumEpoch to the other voters naming them most caught-up first, so the first starts an election at
   * once instead of after its fetch timeout. Resigned, it still answers fetches (with NOT_LEADER_OR_FOLLOWER) and
   * grants pre-votes and, in later epochs, votes to up-to-date logs: keep it running until `leaderId` names another
   * member in a later epoch (or an election timeout has passed) for the handover to need no one else. Other roles
   * and a lone voter ignore it (a lone voter has no one to hand over to).
   */
  resign(nowMs: number): void {
    this.enter()
    if (this.state.role === 'Leader' && this.voters.size > 1)
      this.becomeResigned(this.state.epoch, this.state.preferredSuccessors(), nowMs)
    this.poll(nowMs)
  }

  /** Takes the writes to persist and the messages to send after them. */
  drain(): RaftOutput {
    const output = { writes: this.writes, messages: this.messages }
    this.writes = []
    this.messages = []
    this.drainedEndOffset = this.log.endOffset
    if (output.writes.length > 0) this.awaitingPersist = true
    else this.durableEndOffset = this.drainedEndOffset
    return output
  }

  /** The writes of the last `drain()` are durable. */
  persisted(nowMs: number): void {
    if (!this.awaitingPersist) throw new Error('raft persisted() without drained writes')
    this.awaitingPersist = false
    this.durableEndOffset = this.drainedEndOffset
    if (this.state.role === 'Leader') this.maybeAdvanceHighWatermark(this.state, nowMs)
    this.poll(nowMs)
  }

  /** When to call `tick` next at the latest (Infinity: only messages can move this member). */
  nextDeadlineMs(): number {
    return this.nextPollMs
  }

  // ---- what the caller may look at ----------------------------------------------------------------------------------

  get role(): Role {
    return this.state.role
  }

  get epoch(): number {
    return this.state.epoch
  }

  /** The leader of the current epoch if known (this member included). */
  get leaderId(): number | null {
    return this.knownLeaderId()
  }

  get votedId(): number | null {
    return votedIdOf(this.state, this.nodeId)
  }

  /** The offset below which every entry is committed, or null before this member learns it. */
  get highWatermark(): bigint | null {
    return this.hw
  }

  /** The next offset to apply: everything below it was applied (or restored from a snapshot). */
  get appliedOffset(): bigint {
    return this.applied
  }

  get logStartOffset(): bigint {
    return this.log.logStartOffset
  }

  get logEndOffset(): bigint {
    return this.log.endOffset
  }

  get latestSnapshot(): RaftSnapshot | null {
    return this.log.snapshot
  }

  /**
   * While this member leads: each replica's end offset and last fetch time as the leader knows them (Kafka's
   * DescribeQuorum), itself first with its durable end offset; null in any other role. Observers are those heard from
   * within OBSERVER_SESSION_TIMEOUT_MS of `nowMs` (the member's clock), at most MAX_OBSERVERS (leader-state.ts).
   */
  replicaStates(nowMs: number): { voters: ReplicaDescription[]; observers: ReplicaDescription[] } | null {
    const state = this.state
    if (state.role !== 'Leader') return null
    const describe = (states: ReadonlyMap<number, ReplicaState>): ReplicaDescription[] =>
      [...states].map(([replicaId, replica]) => ({ replicaId, endOffset: replica.endOffset, lastFetchMs: replica.lastFetchMs }))
    return {
      voters: [{ replicaId: this.nodeId, endOffset: this.durableEndOffset, lastFetchMs: null }, ...describe(state.voterStates)],
      observers: describe(state.observers(nowMs)),
    }
  }

  /** The batches held, from logStartOffset on (read-only). */
  entries(): readonly RaftBatch[] {
    return this.log.entries()
  }

  // ---- loop ---------------------------------------------------------------------------------------------------------

  private enter(): void {
    if (this.awaitingPersist) throw new Error('raft: persist the drained writes and call persisted() first')
  }

  /** Acts on expired timers and sends what the state needs, until the state stops changing (Kafka's poll). */
  private poll(nowMs: number): void {
    for (let round = 0; round < 8; round++) {
      const before = this.state
      this.pollState(nowMs)
      if (this.state === before) break
    }
    this.nextPollMs = Math.min(this.stateDeadlineMs(), this.requests.nextDeadlineMs(nowMs))
    this.maybeNotifyLeader()
  }

  private pollState(nowMs: number): void {
    const state = this.state
    switch (state.role) {
      case 'Leader': {
        if (state.hasCheckQuorumExpired(nowMs)) {
          this.becomeResigned(state.epoch, state.preferredSuccessors(), nowMs)
          return
        }
        for (const parked of state.takeParked((fetch) => fetch.deadlineMs <= nowMs))
          this.answerFetch(state, parked.envelope, nowMs, { mayPark: false })
        for (const voter of state.takeVotersToAnnounceTo(nowMs)) {
          if (!this.requests.isReady(voter, nowMs)) continue
          this.send(
            voter,
            {
              type: 'BeginQuorumEpochRequest',
              clusterId: this.clusterId,
              voterId: voter,
              leaderId: this.nodeId,
              leaderEpoch: state.epoch,
            },
            nowMs,
          )
        }
        return
      }
      case 'Follower': {
        if (nowMs >= state.fetchDeadlineMs) {
          if (this.isVoter) this.becomeProspective(nowMs)
          else this.becomeUnattached(state.epoch, state.votedId, nowMs)
          return
        }
        if (this.requests.isReady(state.leaderId, nowMs)) this.sendFetch(state, nowMs)
        return
      }
      case 'Unattached': {
        if (this.isVoter) {
          if (nowMs >= state.electionDeadlineMs) this.becomeProspective(nowMs)
          return
        }
        // An observer finds the leader by fetching from a voter, which answers with the leader it knows.
        if (this.requests.hasInflight(nowMs)) return
        const ready = this.otherVoters.filter((voter) => this.requests.isReady(voter, nowMs))
        if (ready.length === 0) return
        const voter = ready[Math.floor(this.random() * ready.length)]!
        this.send(voter, this.fetchRequest(state.epoch), nowMs)
        return
      }
      case 'Prospective': {
        // In MAX_EPOCH there is no next epoch to stand in: a won pre-vote counts as lost.
        if (state.election.isWon && state.epoch < MAX_EPOCH) {
          this.becomeCandidate(nowMs)
          return
        }
        if (state.election.isWon || state.election.isLost || nowMs >= state.electionDeadlineMs) {
          if (state.leaderId !== null) this.becomeFollower(state.epoch, state.leaderId, state.votedId, nowMs)
          else this.becomeUnattached(state.epoch, state.votedId, nowMs)
          return
        }
        this.sendVoteRequests(state.epoch, state.election, { preVote: true }, nowMs)
        return
      }
      case 'Candidate': {
        if (state.election.isWon) {
          this.becomeLeader(nowMs)
          return
        }
        if (state.backoffUntilMs === null && state.election.isLost)
          state.backoffUntilMs = nowMs + this.electionBackoffMs()
        if (state.backoffUntilMs !== null) {
          if (nowMs >= state.backoffUntilMs) this.becomeProspective(nowMs)
          return
        }
        if (nowMs >= state.electionDeadlineMs) {
          this.becomeProspective(nowMs)
          return
        }
        this.sendVoteRequests(state.epoch, state.election, { preVote: false }, nowMs)
        return
      }
      case 'Resigned': {
        if (nowMs >= state.electionDeadlineMs) {
          // In MAX_EPOCH it stays in it, voted for itself (it led it), so it grants no second vote there.
          if (state.epoch < MAX_EPOCH) this.becomeUnattached(state.epoch + 1, null, nowMs)
          else this.becomeUnattached(state.epoch, this.nodeId, nowMs)
          return
        }
        for (const voter of state.unackedVoters) {
          if (!this.requests.isReady(voter, nowMs)) continue
          this.send(
            voter,
            {
              type: 'EndQuorumEpochRequest',
              clusterId: this.clusterId,
              leaderId: this.nodeId,
              leaderEpoch: state.epoch,
              preferredSuccessors: state.preferredSuccessors,
            },
            nowMs,
          )
        }
        return
      }
    }
  }

  private stateDeadlineMs(): number {
    const state = this.state
    switch (state.role) {
      case 'Leader': {
        let next =
          this.voters.size > 1 ? Math.min(state.checkQuorumDeadlineMs, state.beginQuorumEpochDeadlineMs) : Infinity
        for (const parked of state.parkedFetches) next = Math.min(next, parked.deadlineMs)
        return next
      }
      case 'Follower':
        return state.fetchDeadlineMs
      case 'Candidate':
        return state.backoffUntilMs ?? state.electionDeadlineMs
      case 'Unattached':
      case 'Prospective':
      case 'Resigned':
        return state.electionDeadlineMs
    }
  }

  private dispatch(envelope: RaftEnvelope, nowMs: number): void {
    const message: RaftMessage = envelope.message
    switch (message.type) {
      case 'VoteRequest':
        return this.handleVoteRequest(envelope as RaftEnvelope<VoteRequest>, nowMs)
      case 'VoteResponse':
        return this.handleVoteResponse(envelope as RaftEnvelope<VoteResponse>, nowMs)
      case 'BeginQuorumEpochRequest':
        return this.handleBeginQuorumEpochRequest(envelope as RaftEnvelope<BeginQuorumEpochRequest>, nowMs)
      case 'BeginQuorumEpochResponse':
      case 'EndQuorumEpochResponse':
        return this.handleEpochAck(envelope as RaftEnvelope<BeginQuorumEpochResponse | EndQuorumEpochResponse>, nowMs)
      case 'EndQuorumEpochRequest':
        return this.handleEndQuorumEpochRequest(envelope as RaftEnvelope<EndQuorumEpochRequest>, nowMs)
      case 'FetchRequest':
        return this.handleFetchRequest(envelope as RaftEnvelope<FetchRequest>, nowMs)
      case 'FetchResponse':
        return this.handleFetchResponse(envelope as RaftEnvelope<FetchResponse>, nowMs)
      case 'FetchSnapshotRequest':
        return this.handleFetchSnapshotRequest(envelope as RaftEnvelope<FetchSnapshotRequest>, nowMs)
      case 'FetchSnapshotResponse':
        return this.handleFetchSnapshotResponse(envelope as RaftEnvelope<FetchSnapshotResponse>, nowMs)
    }
  }

  // ---- transitions --------------------------------------------------------------------------------------------------

  private transitionTo(next: EpochState, nowMs: number): void {
    const previous = this.state as EpochState | undefined
    this.state = next
    this.requests.reset()
    const election = electionOf(next, this.nodeId)
    if (!sameElection(this.persistedElection, election)) {
      this.writes.push({ type: 'election', election })
      this.persistedElection = election
    }
    // Fetches a former leader held are answered now, with the error that sends each follower on.
    if (previous?.role === 'Leader')
      for (const parked of previous.parkedFetches) this.handleFetchRequest(parked.envelope, nowMs)
  }

  private becomeUnattached(epoch: number, votedId: number | null, nowMs: number): void {
    const electionDeadlineMs = this.isVoter ? nowMs + this.randomElectionTimeoutMs() : Infinity
    this.transitionTo({ role: 'Unattached', epoch, votedId, electionDeadlineMs }, nowMs)
  }

  private becomeProspective(nowMs: number): void {
    const state = this.state
    this.transitionTo(
      {
        role: 'Prospective',
        epoch: state.epoch,
        votedId: votedIdOf(state, this.nodeId),
        leaderId: state.role === 'Follower' ? state.leaderId : state.role === 'Prospective' ? state.leaderId : null,
        electionDeadlineMs: nowMs + this.randomElectionTimeoutMs(),
        election: new EpochElection(this.voters, this.nodeId),
      },
      nowMs,
    )
  }

  private becomeCandidate(nowMs: number): void {
    this.transitionTo(
      {
        role: 'Candidate',
        epoch: this.state.epoch + 1,
        electionDeadlineMs: nowMs + this.randomElectionTimeoutMs(),
        election: new EpochElection(this.voters, this.nodeId),
        backoffUntilMs: null,
      },
      nowMs,
    )
  }

  private becomeLeader(nowMs: number): void {
    const candidate = this.state
    if (candidate.role !== 'Candidate') throw new Error(`raft cannot lead from ${candidate.role}`)
    const epochStartOffset = this.log.endOffset
    const grantingVoters = candidate.election.grantingVoters()
    this.predecessor = this.leaderContact
    this.leaderContact = null
    const leader = new LeaderState(this.nodeId, candidate.epoch, epochStartOffset, grantingVoters, this.voters, nowMs, {
      checkQuorumMs: Math.round(this.config.fetchTimeoutMs * CHECK_QUORUM_TIMEOUT_FACTOR),
      beginQuorumEpochMs: Math.round(this.config.fetchTimeoutMs / 2),
    })
    this.transitionTo(leader, nowMs)
    const voters = [...this.voters].sort((a, b) => a - b)
    this.appendAsLeader(
      leader,
      {
        type: 'leaderChange',
        baseOffset: epochStartOffset,
        epoch: leader.epoch,
        leaderChange: { leaderId: this.nodeId, voters, grantingVoters },
      },
      nowMs,
    )
  }

  private becomeFollower(epoch: number, leaderId: number, votedId: number | null, nowMs: number): void {
    if (this.leaderContact?.leaderId !== leaderId) this.leaderContact = null
    this.transitionTo(
      {
        role: 'Follower',
        epoch,
        leaderId,
        votedId,
        fetchDeadlineMs: nowMs + this.config.fetchTimeoutMs,
        hasFetchedFromLeader: false,
        snapshotFetch: null,
      },
      nowMs,
    )
  }

  private becomeResigned(epoch: number, preferredSuccessors: readonly number[], nowMs: number): void {
    this.transitionTo(
      {
        role: 'Resigned',
        epoch,
        electionDeadlineMs: nowMs + this.randomElectionTimeoutMs(),
        unackedVoters: new Set(this.otherVoters),
        preferredSuccessors,
      },
      nowMs,
    )
  }

  /**
   * Acts on a leader and epoch another member reported (-1: unknown leader). Returns whether the state changed.
   * Two leaders in one epoch would break election safety: that throws.
   */
  private maybeTransition(leaderId: number, epoch: number, nowMs: number): boolean {
    const state = this.state
    // No member is in a later epoch than MAX_EPOCH (quorum-state.ts): one that says so is not believed.
    if (epoch > MAX_EPOCH) return false
    if (epoch > state.epoch) {
      if (leaderId >= 0 && leaderId !== this.nodeId) this.becomeFollower(epoch, leaderId, null, nowMs)
      // An observer moves on only to a known leader: in an epoch without one it could wait for a leader that never
      // comes (no voter tells an observer), while the leader of its own epoch still serves it.
      else if (this.isVoter) this.becomeUnattached(epoch, null, nowMs)
      else return false
      return true
    }
    if (epoch < state.epoch || leaderId < 0 || leaderId === this.nodeId) return false
    switch (state.role) {
      case 'Follower':
        if (state.leaderId !== leaderId)
          throw new Error(`raft epoch ${epoch} has two leaders: ${state.leaderId} and ${leaderId}`)
        return false
      case 'Leader':
      case 'Resigned':
        throw new Error(`raft epoch ${epoch} has two leaders: ${this.nodeId} and ${leaderId}`)
      case 'Prospective':
        // It knows this leader already: it is trying to replace it (KIP-996), and being told about it is no news.
        if (state.leaderId === leaderId) return false
        if (state.leaderId !== null)
          throw new Error(`raft epoch ${epoch} has two leaders: ${state.leaderId} and ${leaderId}`)
        this.becomeFollower(epoch, leaderId, state.votedId, nowMs)
        return true
      case 'Unattached':
      case 'Candidate':
        this.becomeFollower(epoch, leaderId, votedIdOf(state, this.nodeId), nowMs)
        return true
    }
  }

  /** The responder is not of this quorum (another cluster, another voter set): nothing it says about leaders counts. */
  private isForeignResponse(source: number, errorCode: number, nowMs: number): boolean {
    if (errorCode !== ErrorCode.INCONSISTENT_CLUSTER_ID && errorCode !== ErrorCode.INCONSISTENT_VOTER_SET)
      return false
    this.requests.backoff(source, nowMs)
    return true
  }

  private knownLeaderId(): number | null {
    const state = this.state
    switch (state.role) {
      case 'Leader':
        return this.nodeId
      case 'Follower':
        return state.leaderId
      case 'Prospective':
        return state.leaderId
      default:
        return null
    }
  }

  private maybeNotifyLeader(): void {
    const leaderId = this.knownLeaderId()
    const epoch = this.state.epoch
    if (this.notifiedLeader?.leaderId === leaderId && this.notifiedLeader.epoch === epoch) return
    // The local leader is announced once its state machine has everything before its epoch.
    if (this.state.role === 'Leader' && this.applied <= this.state.epochStartOffset) return
    const predecessor = this.state.role === 'Leader' ? this.predecessor : null
    this.notifiedLeader = predecessor ? { leaderId, epoch, predecessor } : { leaderId, epoch }
    this.stateMachine.leaderChange?.(this.notifiedLeader)
  }

  // ---- votes --------------------------------------------------------------------------------------------------------

  private sendVoteRequests(epoch: number, election: EpochElection, options: { preVote: boolean }, nowMs: number): void {
    for (const voter of this.otherVoters) {
      if (election.hasResponded(voter) || !this.requests.isReady(voter, nowMs)) continue
      this.send(
        voter,
        {
          type: 'VoteRequest',
          clusterId: this.clusterId,
          voterId: voter,
          candidateEpoch: epoch,
          candidateId: this.nodeId,
          lastOffsetEpoch: this.log.lastFetchedEpoch,
          lastOffset: this.log.endOffset,
          preVote: options.preVote,
        },
        nowMs,
      )
    }
  }

  private handleVoteRequest(envelope: RaftEnvelope<VoteRequest>, nowMs: number): void {
    const request = envelope.message
    const reject = (errorCode: number): void =>
      this.respond(envelope, {
        type: 'VoteResponse',
        errorCode,
        leaderId: this.knownLeaderId() ?? -1,
        leaderEpoch: this.state.epoch,
        voteGranted: false,
      })
    if (request.clusterId !== this.clusterId) return reject(ErrorCode.INCONSISTENT_CLUSTER_ID)
    if (
      !this.isVoter ||
      !this.voters.has(request.candidateId) ||
      (request.voterId >= 0 && request.voterId !== this.nodeId)
    ) {
      return reject(ErrorCode.INCONSISTENT_VOTER_SET)
    }
    // An epoch no election could follow (quorum-state.ts, MAX_EPOCH): refused before anything changes or is persisted.
    if (request.candidateEpoch > MAX_EPOCH) return reject(ErrorCode.INVALID_REQUEST)
    if (request.candidateEpoch < this.state.epoch) return reject(ErrorCode.FENCED_LEADER_EPOCH)
    if (!request.preVote && request.candidateEpoch > this.state.epoch)
      this.becomeUnattached(request.candidateEpoch, null, nowMs)
    const isLogUpToDate =
      compareLogEnds(
        { epoch: request.lastOffsetEpoch, offset: request.lastOffset },
        { epoch: this.log.lastFetchedEpoch, offset: this.log.endOffset },
      ) >= 0
    const state = this.state
    const voteGranted = canGrantVote(state, {
      candidateId: request.candidateId,
      isLogUpToDate,
      preVote: request.preVote,
    })
    if (
      voteGranted &&
      !request.preVote &&
      (state.role === 'Unattached' || state.role === 'Prospective') &&
      state.votedId === null
    ) {
      this.becomeUnattached(state.epoch, request.candidateId, nowMs)
    }
    this.respond(envelope, {
      type: 'VoteResponse',
      errorCode: ErrorCode.NONE,
      leaderId: this.knownLeaderId() ?? -1,
      leaderEpoch: this.state.epoch,
      voteGranted,
    })
  }

  private handleVoteResponse(envelope: RaftEnvelope<VoteResponse>, nowMs: number): void {
    if (!this.requests.receive(envelope.source, envelope.correlationId)) return
    const response = envelope.message
    if (this.isForeignResponse(envelope.source, response.errorCode, nowMs)) return
    if (this.maybeTransition(response.leaderId, response.leaderEpoch, nowMs)) return
    const state = this.state
    if (response.errorCode !== ErrorCode.NONE) {
      this.requests.backoff(envelope.source, nowMs)
      return
    }
    // A pre-vote may be answered from an older epoch; a vote is answered in the candidate's epoch.
    if (state.role === 'Prospective') state.election.record(envelope.source, response.voteGranted)
    else if (state.role === 'Candidate' && response.leaderEpoch === state.epoch)
      state.election.record(envelope.source, response.voteGranted)
  }

  // ---- epoch announcements ------------------------------------------------------------------------------------------

  private handleBeginQuorumEpochRequest(envelope: RaftEnvelope<BeginQuorumEpochRequest>, nowMs: number): void {
    const request = envelope.message
    const errorCode = this.checkVoterRequest(request.clusterId, request.leaderId, request.leaderEpoch, request.voterId)
    if (errorCode === ErrorCode.NONE) this.maybeTransition(request.leaderId, request.leaderEpoch, nowMs)
    this.respond(envelope, {
      type: 'BeginQuorumEpochResponse',
      errorCode,
      leaderId: this.knownLeaderId() ?? -1,
      leaderEpoch: this.state.epoch,
    })
  }

  private handleEndQuorumEpochRequest(envelope: RaftEnvelope<EndQuorumEpochRequest>, nowMs: number): void {
    const request = envelope.message
    const errorCode = this.checkVoterRequest(request.clusterId, request.leaderId, request.leaderEpoch, -1)
    if (errorCode === ErrorCode.NONE) {
      this.maybeTransition(request.leaderId, request.leaderEpoch, nowMs)
      const state = this.state
      if (state.role === 'Follower' && state.epoch === request.leaderEpoch && state.leaderId === request.leaderId) {
        // The leader is leaving: the voters it named go first, the most caught-up at once. The leader said it is
        // gone, so this member grants pre-votes again (KIP-996): a successor is not refused for a leader that
        // resigned. Votes still compare logs, so this only makes the election sooner.
        state.fetchDeadlineMs = Math.min(
          state.fetchDeadlineMs,
          nowMs + this.endQuorumEpochBackoffMs(request.preferredSuccessors.indexOf(this.nodeId)),
        )
        state.hasFetchedFromLeader = false
      }
    }
    this.respond(envelope, {
      type: 'EndQuorumEpochResponse',
      errorCode,
      leaderId: this.knownLeaderId() ?? -1,
      leaderEpoch: this.state.epoch,
    })
  }

  /**
   * BeginQuorumEpoch and EndQuorumEpoch come from voters to voters, never from an older epoch, nor from one above
   * MAX_EPOCH (INVALID_REQUEST).
   */
  private checkVoterRequest(clusterId: string, leaderId: number, leaderEpoch: number, voterId: number): number {
    if (clusterId !== this.clusterId) return ErrorCode.INCONSISTENT_CLUSTER_ID
    if (!this.isVoter || !this.voters.has(leaderId) || (voterId >= 0 && voterId !== this.nodeId))
      return ErrorCode.INCONSISTENT_VOTER_SET
    if (leaderEpoch > MAX_EPOCH) return ErrorCode.INVALID_REQUEST
    if (leaderEpoch < this.state.epoch) return ErrorCode.FENCED_LEADER_EPOCH
    return ErrorCode.NONE
  }

  private handleEpochAck(
    envelope: RaftEnvelope<BeginQuorumEpochResponse | EndQuorumEpochResponse>,
    nowMs: number,
  ): void {
    if (!this.requests.receive(envelope.source, envelope.correlationId)) return
    const response = envelope.message
    if (this.isForeignResponse(envelope.source, response.errorCode, nowMs)) return
    if (this.maybeTransition(response.leaderId, response.leaderEpoch, nowMs)) return
    const state = this.state
    if (response.errorCode !== ErrorCode.NONE) {
      this.requests.backoff(envelope.source, nowMs)
      return
    }
    if (state.role === 'Resigned' && response.leaderEpoch === state.epoch) state.unackedVoters.delete(envelope.source)
  }

  // ---- the leader's side of replication -----------------------------------------------------------------------------

  private handleFetchRequest(envelope: RaftEnvelope<FetchRequest>, nowMs: number): void {
    const request = envelope.message
    const state = this.state
    const errorCode = this.checkLeaderRequest(request.clusterId, request.currentLeaderEpoch)
    if (errorCode !== ErrorCode.NONE || state.role !== 'Leader') {
      this.respond(envelope, this.fetchResponse(errorCode, { records: [] }))
      return
    }
    if (this.voters.has(request.replicaId)) state.recordVoterFetch(request.replicaId, nowMs)
    this.answerFetch(state, envelope, nowMs, { mayPark: true })
  }

  /** Kafka's validateLeaderOnlyRequest: FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH or NOT_LEADER_OR_FOLLOWER. */
  private checkLeaderRequest(clusterId: string, currentLeaderEpoch: number): number {
    if (clusterId !== this.clusterId) return ErrorCode.INCONSISTENT_CLUSTER_ID
    if (currentLeaderEpoch < this.state.epoch) return ErrorCode.FENCED_LEADER_EPOCH
    if (currentLeaderEpoch > this.state.epoch) return ErrorCode.UNKNOWN_LEADER_EPOCH
    if (this.state.role !== 'Leader') return ErrorCode.NOT_LEADER_OR_FOLLOWER
    return ErrorCode.NONE
  }

  private answerFetch(
    state: LeaderState,
    envelope: RaftEnvelope<FetchRequest>,
    nowMs: number,
    options: { mayPark: boolean },
  ): void {
    const request = envelope.message
    const position = this.log.validateFetch(request.fetchOffset, request.lastFetchedEpoch)
    if (position.kind === 'diverging') {
      this.respond(
        envelope,
        this.fetchResponse(ErrorCode.NONE, {
          divergingEpoch: { epoch: position.epoch, endOffset: position.endOffset },
        }),
      )
      return
    }
    if (position.kind === 'snapshot') {
      this.respond(envelope, this.fetchResponse(ErrorCode.NONE, { snapshotId: position.snapshotId }))
      return
    }
    if (state.updateReplicaEndOffset(request.replicaId, request.fetchOffset, nowMs))
      this.maybeAdvanceHighWatermark(state, nowMs)
    const records = this.log.read(request.fetchOffset, Math.min(request.maxBytes, this.config.fetchMaxBytes))
    const replica = state.replica(request.replicaId, nowMs)
    const newHighWatermark =
      this.hw !== null && (replica.lastSentHighWatermark === null || this.hw > replica.lastSentHighWatermark)
    if (options.mayPark && records.length === 0 && request.maxWaitMs > 0 && !newHighWatermark) {
      state.park({ envelope, deadlineMs: nowMs + Math.min(request.maxWaitMs, this.config.fetchMaxWaitMs) })
      return
    }
    replica.lastSentHighWatermark = this.hw
    this.respond(envelope, this.fetchResponse(ErrorCode.NONE, { records }))
  }

  private fetchResponse(
    errorCode: number,
    fields: Partial<Pick<FetchResponse, 'records' | 'divergingEpoch' | 'snapshotId'>>,
  ): FetchResponse {
    return {
      type: 'FetchResponse',
      errorCode,
      highWatermark: this.hw ?? -1n,
      logStartOffset: this.log.logStartOffset,
      divergingEpoch: fields.divergingEpoch ?? null,
      snapshotId: fields.snapshotId ?? null,
      currentLeader: { leaderId: this.knownLeaderId() ?? -1, leaderEpoch: this.state.epoch },
      records: fields.records ?? [],
    }
  }

  private handleFetchSnapshotRequest(envelope: RaftEnvelope<FetchSnapshotRequest>, nowMs: number): void {
    const request = envelope.message
    const state = this.state
    const answer = (errorCode: number, chunk?: { size: bigint; data: Buffer }): void =>
      this.respond(envelope, {
        type: 'FetchSnapshotResponse',
        errorCode,
        snapshotId: request.snapshotId,
        currentLeader: { leaderId: this.knownLeaderId() ?? -1, leaderEpoch: this.state.epoch },
        size: chunk?.size ?? -1n,
        position: request.position,
        unalignedRecords: chunk?.data ?? Buffer.alloc(0),
      })
    const errorCode = this.checkLeaderRequest(request.clusterId, request.currentLeaderEpoch)
    if (errorCode !== ErrorCode.NONE || state.role !== 'Leader') return answer(errorCode)
    if (this.voters.has(request.replicaId)) state.recordVoterFetch(request.replicaId, nowMs)
    const snapshot = this.log.snapshot
    if (
      !snapshot ||
      snapshot.endOffset !== request.snapshotId.endOffset ||
      snapshot.epoch !== request.snapshotId.epoch
    ) {
      return answer(ErrorCode.SNAPSHOT_NOT_FOUND)
    }
    const size = BigInt(snapshot.data.length)
    if (request.position < 0n || request.position > size) return answer(ErrorCode.POSITION_OUT_OF_RANGE)
    const start = Number(request.position)
    const maxBytes = Math.min(request.maxBytes, this.config.fetchMaxBytes)
    answer(ErrorCode.NONE, { size, data: snapshot.data.subarray(start, start + maxBytes) })
  }

  private appendAsLeader(state: LeaderState, batch: RaftBatch, nowMs: number): void {
    this.log.append([batch])
    this.writes.push({ type: 'append', batches: [batch] })
    for (const parked of state.takeParked(() => true))
      this.answerFetch(state, parked.envelope, nowMs, { mayPark: false })
  }

  private maybeAdvanceHighWatermark(state: LeaderState, nowMs: number): void {
    const offset = state.majorityEndOffset(this.durableEndOffset)
    if (offset === null || (this.hw !== null && offset <= this.hw)) return
    this.hw = offset
    this.applyCommitted()
    for (const parked of state.takeParked(() => true))
      this.answerFetch(state, parked.envelope, nowMs, { mayPark: false })
  }

  // ---- the follower's side of replication ---------------------------------------------------------------------------

  private fetchRequest(epoch: number): FetchRequest {
    return {
      type: 'FetchRequest',
      clusterId: this.clusterId,
      replicaId: this.nodeId,
      maxWaitMs: this.config.fetchMaxWaitMs,
      maxBytes: this.config.fetchMaxBytes,
      currentLeaderEpoch: epoch,
      fetchOffset: this.log.endOffset,
      lastFetchedEpoch: this.log.lastFetchedEpoch,
      logStartOffset: this.log.logStartOffset,
    }
  }

  private sendFetch(state: FollowerState, nowMs: number): void {
    const snapshot = state.snapshotFetch
    if (snapshot) {
      this.send(
        state.leaderId,
        {
          type: 'FetchSnapshotRequest',
          clusterId: this.clusterId,
          replicaId: this.nodeId,
          maxBytes: this.config.fetchMaxBytes,
          currentLeaderEpoch: state.epoch,
          snapshotId: { endOffset: snapshot.endOffset, epoch: snapshot.epoch },
          position: snapshot.position,
        },
        nowMs,
      )
    } else {
      this.send(state.leaderId, this.fetchRequest(state.epoch), nowMs)
    }
  }

  /** A response from the leader this member follows in its epoch, or null. */
  private leaderResponse(source: number, leaderEpoch: number, errorCode: number, nowMs: number): FollowerState | null {
    if (errorCode !== ErrorCode.NONE) {
      this.requests.backoff(source, nowMs)
      return null
    }
    const state = this.state
    if (state.role !== 'Follower' || state.leaderId !== source || state.epoch !== leaderEpoch) return null
    state.fetchDeadlineMs = nowMs + this.config.fetchTimeoutMs
    state.hasFetchedFromLeader = true
    this.leaderContact = { leaderId: source, lastHeardMs: nowMs }
    return state
  }

  private handleFetchResponse(envelope: RaftEnvelope<FetchResponse>, nowMs: number): void {
    if (!this.requests.receive(envelope.source, envelope.correlationId)) return
    const response = envelope.message
    if (this.isForeignResponse(envelope.source, response.errorCode, nowMs)) return
    if (this.maybeTransition(response.currentLeader.leaderId, response.currentLeader.leaderEpoch, nowMs)) return
    const state = this.leaderResponse(envelope.source, response.currentLeader.leaderEpoch, response.errorCode, nowMs)
    if (!state) return
    if (response.divergingEpoch) {
      this.truncateDivergingTail(response.divergingEpoch)
    } else if (response.snapshotId) {
      state.snapshotFetch = {
        endOffset: response.snapshotId.endOffset,
        epoch: response.snapshotId.epoch,
        position: 0n,
        chunks: [],
      }
    } else {
      const first = response.records[0]
      if (first) {
        // A response to an older fetch position (the log changed since) is of no use.
        if (first.baseOffset !== this.log.endOffset) return
        this.log.append(response.records)
        this.writes.push({ type: 'append', batches: response.records })
      }
      if (response.highWatermark >= 0n) {
        const end = this.log.endOffset
        this.setHighWatermark(response.highWatermark < end ? response.highWatermark : end)
      }
    }
  }

  /**
   * Kafka's truncateToEndOffset: cut the log where it leaves the leader's, never below what is committed. If this log
   * holds the leader's epoch, at the earlier of the two ends of that epoch; if not, at the end of its own last epoch
   * below it (the leader's offset may fall inside a batch of an epoch this log kept longer), and the next fetch
   * narrows it down.
   */
  private truncateDivergingTail(diverging: { epoch: number; endOffset: bigint }): void {
    const own = this.log.endOffsetForEpoch(diverging.epoch)
    const offset =
      own.epoch === diverging.epoch && diverging.endOffset < own.endOffset ? diverging.endOffset : own.endOffset
    if (offset < this.applied || (this.hw !== null && offset < this.hw)) {
      throw new Error(
        `raft node ${this.nodeId} told to truncate to ${offset}, below its committed offset ${this.hw ?? this.applied}`,
      )
    }
    this.log.truncateTo(offset)
    this.writes.push({ type: 'truncate', offset })
    if (this.durableEndOffset > offset) this.durableEndOffset = offset
  }

  private handleFetchSnapshotResponse(envelope: RaftEnvelope<FetchSnapshotResponse>, nowMs: number): void {
    if (!this.requests.receive(envelope.source, envelope.correlationId)) return
    const response = envelope.message
    if (this.isForeignResponse(envelope.source, response.errorCode, nowMs)) return
    if (this.maybeTransition(response.currentLeader.leaderId, response.currentLeader.leaderEpoch, nowMs)) return
    const current = this.state
    if (current.role === 'Follower' && current.snapshotFetch) {
      // The leader moved on to a newer snapshot (fetch again to learn it), or the position is off (start over).
      if (response.errorCode === ErrorCode.SNAPSHOT_NOT_FOUND) current.snapshotFetch = null
      else if (response.errorCode === ErrorCode.POSITION_OUT_OF_RANGE) {
        current.snapshotFetch.position = 0n
        current.snapshotFetch.chunks.length = 0
      }
    }
    const state = this.leaderResponse(envelope.source, response.currentLeader.leaderEpoch, response.errorCode, nowMs)
    const fetch = state?.snapshotFetch
    if (!state || !fetch) return
    if (
      response.snapshotId.endOffset !== fetch.endOffset ||
      response.snapshotId.epoch !== fetch.epoch ||
      response.position !== fetch.position
    )
      return
    fetch.chunks.push(response.unalignedRecords)
    fetch.position += BigInt(response.unalignedRecords.length)
    if (fetch.position > response.size) {
      fetch.position = 0n
      fetch.chunks.length = 0
      return
    }
    if (fetch.position < response.size) return
    state.snapshotFetch = null
    this.installSnapshot({ endOffset: fetch.endOffset, epoch: fetch.epoch, data: Buffer.concat(fetch.chunks) })
  }

  /** Replaces the log with a snapshot fetched from the leader, and the state machine's state with its state. */
  private installSnapshot(snapshot: RaftSnapshot): void {
    if (snapshot.endOffset <= this.applied) {
      throw new Error(
        `raft node ${this.nodeId} fetched a snapshot at ${snapshot.endOffset}, ` +
          `not past its applied offset ${this.applied}`,
      )
    }
    this.writes.push({ type: 'truncate', offset: this.log.logStartOffset }, { type: 'snapshot', snapshot })
    this.log.installSnapshot(snapshot)
    if (this.durableEndOffset > snapshot.endOffset) this.durableEndOffset = snapshot.endOffset
    this.stateMachine.restore(snapshot)
    this.applied = snapshot.endOffset
    this.bytesSinceSnapshot = 0
    if (this.hw === null || this.hw < snapshot.endOffset) this.hw = snapshot.endOffset
  }

  // ---- commit -------------------------------------------------------------------------------------------------------

  private setHighWatermark(offset: bigint): void {
    if (this.hw !== null && offset <= this.hw) return
    this.hw = offset
    this.applyCommitted()
  }

  /** Hands committed data batches to the state machine, then snapshots if enough was applied since the last one. */
  private applyCommitted(): void {
    const hw = this.hw
    if (hw === null) return
    while (this.applied < hw) {
      const batch = this.log.batchAt(this.applied)
      if (!batch) throw new Error(`raft node ${this.nodeId} has no batch at its applied offset ${this.applied}`)
      const end = batchEndOffset(batch)
      if (end > hw) break
      if (batch.type === 'data') {
        this.stateMachine.apply({
          baseOffset: batch.baseOffset,
          lastOffset: end - 1n,
          epoch: batch.epoch,
          records: batch.records,
        })
        for (const record of batch.records) this.bytesSinceSnapshot += record.length
      }
      this.applied = end
    }
    if (this.bytesSinceSnapshot >= this.config.maxBytesBetweenSnapshots && this.applied > this.log.logStartOffset) {
      const snapshot = {
        endOffset: this.applied,
        epoch: this.log.epochAt(this.applied - 1n),
        data: this.stateMachine.snapshot(),
      }
      this.log.compactTo(snapshot)
      this.writes.push({ type: 'snapshot', snapshot })
      this.bytesSinceSnapshot = 0
    }
  }

  // ---- helpers ------------------------------------------------------------------------------------------------------

  private send(destination: number, message: RaftMessage, nowMs: number): void {
    const correlationId = this.requests.send(destination, nowMs)
    this.messages.push({ source: this.nodeId, destination, correlationId, message })
  }

  private respond(request: RaftEnvelope, message: RaftMessage): void {
    this.messages.push({
      source: this.nodeId,
      destination: request.source,
      correlationId: request.correlationId,
      message,
    })
  }

  /** Kafka's randomized election timeout: electionTimeoutMs plus up to as much again. */
  private randomElectionTimeoutMs(): number {
    return this.config.electionTimeoutMs + Math.floor(this.random() * this.config.electionTimeoutMs)
  }

  /**
   * How long a follower told by EndQuorumEpoch waits before asking for pre-votes, by its position in the preferred
   * successors (KafkaRaftClient's endEpochElectionBackoff): the first at once, each next one twice as long from
   * retryBackoffMs up to electionBackoffMaxMs, so the most caught-up voter is usually alone in asking; a voter the
   * leader did not name waits an election timeout.
   */
  private endQuorumEpochBackoffMs(position: number): number {
    if (position < 0) return this.randomElectionTimeoutMs()
    if (position === 0) return 0
    return Math.min(this.config.electionBackoffMaxMs, this.config.retryBackoffMs * 2 ** (position - 1))
  }

  private electionBackoffMs(): number {
    return Math.floor(this.random() * this.config.electionBackoffMaxMs)
  }
}
