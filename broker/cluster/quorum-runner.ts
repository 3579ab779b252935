/**
 * The controller quorum in a node: one RaftNode with the node's QuorumController as its state machine, its log in the
 * node's LevelDB (`storage/raft-level-store.ts`), its messages carried to the other voters as Kafka's wire messages
 * (raft-wire.ts) over the voters' controller listeners.
 *
 * Everything that touches the RaftNode is one step of one queue, run one at a time, exactly as the simulation runs
 * it (broker/cluster/README.md, "Using it"):
 *
 *   call (receive / tick / a controller operation that proposes)
 *     └─> drain ─> writes? ─> store.write (atomic, synced) ─> persisted() ─> drain again ...
 *                    └─> messages: requests to peers, responses to the requests waiting in handlers
 *   then the next tick is scheduled at raft.nextDeadlineMs() (at most CONTROLLER_TICK_MS away, for the
 *   controller's session timeouts)
 *
 * so nothing leaves the node before what it depends on is durable (a vote, an acknowledged offset).
 *
 * Messages: a request to a peer goes out on that peer's quorum connection (one per voter, made on demand and made
 * again after any failure); its response comes back as a `receive` step with the request's correlation id. A
 * request from a peer arrives through a handler (handlers/quorum.ts), becomes a `receive` step under a correlation
 * id of this node's, and the handler answers with the response the member drains for it. A lost message is only a
 * lost message: the member's own timeouts send again.
 *
 * Controller operations (BrokerRegistration, BrokerHeartbeat, CreateTopics, DeleteTopics, AllocateProducerIds,
 * AlterPartition, ElectLeaders, UnregisterBroker...) are steps too: the
 * controller proposes inside the step, and the operation answers once its last record is applied in the epoch it was
 * proposed in (`committed`), or with NOT_CONTROLLER when a batch of another epoch took its offsets, or
 * REQUEST_TIMED_OUT after COMMIT_TIMEOUT_MS. Each committed image is handed to the `onImage` listeners (the node's
 * local logs follow it).
 *
 * A clean stop of the leader hands over first (`resign`): the member resigns with EndQuorumEpoch and keeps running,
 * answering pre-votes and votes, until it learns of a leader of a later epoch or an election timeout has passed.
 *
 * A failed store write or a broken Raft invariant is fatal for the member: the runner stops (every later operation
 * answers NOT_CONTROLLER or an error) and reports it through `onFatal`; it cannot know what survived.
 */
import { ErrorCode, KafkaError } from '../../protocol/errors.js'
import { METADATA_TOPIC, ZERO_UUID } from '../../protocol/constants.js'
import { describeQuorum, type DescribeQuorumResponse } from '../../protocol/messages/describe-quorum.js'
import { ConnectionError, KafkaClient } from '../../client/kafka-client.js'
import type { ApiSpec } from '../../protocol/schema.js'
import type { RaftSnapshot, RaftStore } from '../../storage/raft-store.js'
import type { Logger } from '../logger.js'
import { monotonicMs } from '../clock.js'
import { RaftNode, type CommittedBatch, type LeaderAndEpoch, type RaftStateMachine, type ReplicaDescription } from './raft/node.js'
import { raftConfig, type RaftConfig } from './raft/config.js'
import type { EndQuorumEpochRequest, EndQuorumEpochResponse, RaftEnvelope, RaftRequest, RaftResponse } from './raft/messages.js'
import {
  QuorumController,
  type AlterPartitionRequest,
  type AlterTopicConfigsRequest,
  type BrokerHeartbeatRequest,
  type BrokerRegistrationRequest,
  type ControllerResult,
  type CreatePartitionsRequest,
  type CreateTopicRequest,
  type ElectionResult,
  type PartitionReassignmentRequest,
  type ReassignmentResult,
  type ElectLeadersRequest,
} from './controller/controller.js'
import type { MetadataImage } from './metadata/image.js'
import { fromWireResponse, toWireRequest } from './raft-wire.js'
import { sourceAddressOf, type QuorumVoter } from './voters.js'

/** How often the active controller looks at broker sessions and preferred leaders (its `tick`), at most. */
export const CONTROLLER_TICK_MS = 250
/** How long a controller operation waits for its records to commit before answering REQUEST_TIMED_OUT. */
export const COMMIT_TIMEOUT_MS = 5000

/**
 * A node's channels to the active controller, as Kafka's brokers have one NodeToControllerChannelManager per purpose
 * (BrokerServer): a request is asked again, at whichever leader the quorum member then knows, until
 * `retryTimeoutMs` from its first send have passed (Kafka's retryTimeoutMs, counted from the request's creation),
 * and one send waits at most `requestTimeoutMs` for its answer (Kafka's NetworkClient request timeout,
 * min(controller.socket.timeout.ms, retryTimeoutMs)). Give-ups are REQUEST_TIMED_OUT (`requestActiveController`).
 */
export const CONTROLLER_CHANNELS = {
  /**
   * A client's request forwarded to the controller (KIP-590): Kafka's "forwarding" channel, retryTimeoutMs 60 s,
   * each send min(controller.socket.timeout.ms 30 s, 60 s). Kafka answers the client only after those 60 s
   * (ForwardingManager's onTimeout: the request's error response for a TimeoutException), not sooner: an answer
   * the client would retry (NOT_CONTROLLER) while the controller it asked may still carry the change out would have
   * the retry find the change made (TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_OR_PARTITION).
   */
  forwarding: { retryTimeoutMs: 60_000, requestTimeoutMs: 30_000 },
  /**
   * The node's own requests, and changes it asks for while a client waits on another request: the commit timeout
   * and a second, for the window and each send. Each caller asks again itself, or has its client ask again, so a
   * short window costs nothing, and a long one would hold up what waits on it: AlterPartition (replica-manager.ts)
   * takes a give-up as an outcome unknown and sends again after a backoff from the replica's state then (Kafka's
   * alter-partition channel never gives up; the retry does the same); AllocateProducerIds (producer-id-blocks.ts)
   * holds no client request (InitProducerId is answered COORDINATOR_LOAD_IN_PROGRESS at once while a block is on its
   * way, as Kafka's RPCProducerIdManager answers), and a failed one is sent again by the next InitProducerId; a
   * topic auto-created for Metadata or an internal topic created for FindCoordinator holds that request, answered
   * LEADER_NOT_AVAILABLE or COORDINATOR_NOT_AVAILABLE and asked again (Kafka's AutoTopicCreationManager does not hold
   * it). Registration and heartbeats (broker-lifecycle.ts) send on these channels themselves, one send per attempt,
   * each given up at a leader change (Kafka's "heartbeat" channel retries for broker.session.timeout.ms / 2).
   */
  internal: { retryTimeoutMs: COMMIT_TIMEOUT_MS + 1000, requestTimeoutMs: COMMIT_TIMEOUT_MS + 1000 },
} as const

/** Which of `CONTROLLER_CHANNELS` a request to the active controller goes through. */
export type ControllerChannelName = keyof typeof CONTROLLER_CHANNELS

export interface QuorumRunnerOptions {
  nodeId: number
  clusterId: string
  /** Every voter, this node among them. */
  voters: readonly QuorumVoter[]
  store: RaftStore
  log: Logger
  /** `broker.session.timeout.ms`, for the controller. */
  brokerSessionTimeoutMs: number
  /** `auto.leader.rebalance.enable`, for the controller (Kafka: true). */
  autoLeaderRebalanceEnable?: boolean
  /** `leader.imbalance.check.interval.seconds` in ms, for the controller (Kafka: 300 s). */
  leaderImbalanceCheckIntervalMs?: number
  raftConfig?: Partial<RaftConfig>
  /** The member stopped on a failure it cannot recover from (a failed write, a broken invariant). */
  onFatal: (error: Error) => void
}

/**
 * Whether a decoded response holds `errorCode` in any of its `errorCode` fields, at any depth (Kafka's
 * AbstractResponse.errorCounts, which NodeToControllerRequestThread looks for NOT_CONTROLLER in).
 */
function holdsErrorCode(response: unknown, errorCode: number): boolean {
  if (Array.isArray(response)) return response.some((item) => holdsErrorCode(item, errorCode))
  if (response === null || typeof response !== 'object' || Buffer.isBuffer(response)) return false
  return Object.entries(response).some(([field, value]) => (field === 'errorCode' ? value === errorCode : holdsErrorCode(value, errorCode)))
}

/**
 * What a forwarding node answers for a request `requestActiveController` failed: the KafkaError's code
 * (REQUEST_TIMED_OUT once the channel's window passed), or UNKNOWN_SERVER_ERROR for an answer it could not read or a
 * version the controller did not take (Kafka's ForwardingManager on a version mismatch or an unparsable answer);
 * the message says why.
 */
export function controllerRequestFailure(error: unknown): { readonly errorCode: number; readonly errorMessage: string } {
  const message = error instanceof Error ? error.message : String(error)
  return { errorCode: error instanceof KafkaError ? error.code : ErrorCode.UNKNOWN_SERVER_ERROR, errorMessage: message }
}

/** DescribeQuorum's answer for the metadata partition, as the leader knows it (Kafka's DescribeQuorumResponse v0-2). */
export type QuorumDescription = DescribeQuorumResponse

/**
 * A connection to one voter's controller listener, made on demand and dropped after any failure, so the next
 * request connects again (the voter may have restarted); one the peer closed while idle is made again before the
 * next request goes out.
 */
export class PeerChannel {
  private client: Promise<KafkaClient> | null = null

  constructor(
    readonly voter: QuorumVoter,
    private readonly options: { clientId: string; timeoutMs: number; localAddress?: string | undefined },
  ) {}

  /** Sends `body` as `api` at `version`; rejects on a connection failure, a timeout or an unsupported version. */
  async request<Res>(api: ApiSpec, version: number, body: unknown): Promise<Res> {
    let connecting = (this.client ??= KafkaClient.connect(this.voter.host, this.voter.port, this.options))
    let client: KafkaClient | null = null
    try {
      client = await connecting
      if (client.failed) {
        // The peer closed the connection since the last request (it stopped or restarted): connect again instead of
        // failing this request on it, as Kafka's NetworkClient, which sees the close when it happens, does.
        if (this.client === connecting) this.client = null
        connecting = this.client ??= KafkaClient.connect(this.voter.host, this.voter.port, this.options)
        client = await connecting
      }
      client.version(api, String(version))
      return await client.request<unknown, Res>(api, version, body)
    } catch (error) {
      if (this.client === connecting) this.client = null
      client?.close()
      throw error
    }
  }

  close(): void {
    const client = this.client
    this.client = null
    client?.then((c) => c.close(), () => undefined)
  }
}

interface CommitWaiter {
  readonly epoch: number
  readonly lastOffset: bigint
  readonly resolve: (errorCode: number) => void
}

export class QuorumRunner implements RaftStateMachine {
  readonly nodeId: number
  readonly clusterId: string
  /** The address this node connects to the other nodes from (its own voter entry's, sourceAddressOf), or undefined. */
  readonly localAddress: string | undefined
  readonly controller: QuorumController
  private raft!: RaftNode
  private readonly store: RaftStore
  /** The voters of `controller.quorum.voters`, whose controller listeners DescribeQuorum v2 names (its Nodes). */
  private readonly voters: readonly QuorumVoter[]
  private readonly log: Logger
  private readonly onFatal: (error: Error) => void
  /** Quorum messages, one channel per other voter. */
  private readonly raftChannels = new Map<number, PeerChannel>()
  /**
   * Requests to a voter's controller listener, one connection per voter for each of `CONTROLLER_CHANNELS` ('internal'
   * also carries registration, heartbeats and a forwarded DescribeQuorum), so that a client's request waiting out a
   * slow controller never holds the node's own.
   */
  private readonly controlChannels: Record<ControllerChannelName, Map<number, PeerChannel>> = { forwarding: new Map(), internal: new Map() }
  private queue: Promise<void> = Promise.resolve()
  /** The controller operations waiting for their step (`operate`), which they share; null while none waits. */
  private operations: { calls: ((nowMs: number) => void)[]; done: Promise<void> } | null = null
  private timer: NodeJS.Timeout | null = null
  private nextInboundId = 0
  private readonly inbound = new Map<string, (response: RaftResponse) => void>()
  private waiters: CommitWaiter[] = []
  private known: LeaderAndEpoch = { leaderId: null, epoch: -1 }
  private failure: Error | null = null
  private stopped = false
  /** The whole cluster is stopping (`peersStopping`): a voter that cannot be reached is one that stopped first. */
  private peersGoing = false
  private readonly imageListeners: ((image: MetadataImage) => void)[] = []
  private readonly leaderListeners = new Set<(leader: LeaderAndEpoch) => void>()

  private constructor(options: QuorumRunnerOptions) {
    this.nodeId = options.nodeId
    this.clusterId = options.clusterId
    this.store = options.store
    this.voters = options.voters
    this.log = options.log
    this.onFatal = options.onFatal
    this.controller = new QuorumController({
      nodeId: options.nodeId,
      clusterNodeIds: options.voters.map((voter) => voter.id),
      log: () => this.raft,
      newTopicId: () => crypto.randomUUID(),
      brokerSessionTimeoutMs: options.brokerSessionTimeoutMs,
      info: (text) => this.log.info(text),
      ...(options.autoLeaderRebalanceEnable === undefined ? {} : { autoLeaderRebalanceEnable: options.autoLeaderRebalanceEnable }),
      ...(options.leaderImbalanceCheckIntervalMs === undefined ? {} : { leaderImbalanceCheckIntervalMs: options.leaderImbalanceCheckIntervalMs }),
    })
    // A quorum request unanswered past the request timeout is lost anyway (the member sends again); a controller
    // request may wait for its commit.
    const clientId = `brook-quorum-${options.nodeId}`
    const raftTimeoutMs = raftConfig(options.raftConfig).requestTimeoutMs + 1000
    const self = options.voters.find((voter) => voter.id === options.nodeId)
    this.localAddress = self && sourceAddressOf(self)
    const localAddress = this.localAddress
    for (const voter of options.voters) {
      for (const name of ['forwarding', 'internal'] as const) {
        this.controlChannels[name].set(voter.id, new PeerChannel(voter, { clientId, timeoutMs: CONTROLLER_CHANNELS[name].requestTimeoutMs, localAddress }))
      }
      if (voter.id !== options.nodeId) this.raftChannels.set(voter.id, new PeerChannel(voter, { clientId, timeoutMs: raftTimeoutMs, localAddress }))
    }
  }

  /** Loads the member's state from `store`, restores its latest snapshot, and starts its loop. */
  static async start(options: QuorumRunnerOptions): Promise<QuorumRunner> {
    const runner = new QuorumRunner(options)
    const persisted = await options.store.load()
    runner.raft = new RaftNode({
      nodeId: options.nodeId,
      voters: options.voters.map((voter) => voter.id),
      clusterId: options.clusterId,
      stateMachine: runner,
      random: Math.random,
      persisted,
      nowMs: monotonicMs(),
      config: options.raftConfig ?? {},
    })
    await runner.step(() => undefined)
    return runner
  }

  // ---- what the node looks at -------------------------------------------------------------------------------------

  /** The leader of the current epoch as this member knows it (the active controller once it has caught up). */
  get leaderId(): number | null {
    return this.raft.leaderId
  }

  /** The offset of the last metadata record this member applied (-1 before any). */
  get appliedOffset(): bigint {
    return this.controller.image.provenance.offset
  }

  /**
   * The 'internal' channel to a voter's controller listener (CONTROLLER_CHANNELS), for the node's own controller
   * requests; null for an id that is not a voter.
   */
  controlChannel(voterId: number): PeerChannel | null {
    return this.controlChannels.internal.get(voterId) ?? null
  }

  /**
   * Sends a request to the active controller's listener through one of `CONTROLLER_CHANNELS`, as Kafka's
   * NodeToControllerChannelManager does: to the leader this member knows now. When the member learns of another
   * leader or epoch before the answer (the one asked was paused, cut off or resigned), the request goes to the new
   * leader at once instead of waiting out the send's timeout on the old one; while an election is under way, to the
   * leader it elects; and a lost connection, a send unanswered within the channel's requestTimeoutMs, or an answer
   * holding NOT_CONTROLLER (a leader not yet active, or one that just lost its leadership) is asked again after a
   * backoff from 100 ms (or at the next leader change), at the leader known then. So a CreateTopics forwarded as the
   * controller stopped is answered by its successor, elected within the quorum's fetch timeout, or by the one elected
   * once a majority of the voters is back, if that is within the channel's retryTimeoutMs from the first send.
   *
   * Errors: once retryTimeoutMs have passed, a KafkaError of REQUEST_TIMED_OUT saying why (no active controller known,
   * the one asked could not be reached, did not answer in time, or answered NOT_CONTROLLER), which the caller answers
   * as Kafka's ForwardingManager answers its onTimeout (the request's error response for a TimeoutException); an
   * answer that cannot be read, or a version the controller does not take, at once as that Error (Kafka answers
   * UNKNOWN_SERVER_ERROR: `controllerRequestFailure`). A request given up on may still have been carried out by a
   * controller it reached; its successor answers a retry as it finds the metadata (TOPIC_ALREADY_EXISTS for a topic
   * that was created), as after Kafka's forwarding gives up.
   */
  async requestActiveController<Res>(api: ApiSpec, version: number, body: unknown, options: { channel: ControllerChannelName }): Promise<Res> {
    const { retryTimeoutMs } = CONTROLLER_CHANNELS[options.channel]
    const channels = this.controlChannels[options.channel]
    const deadline = monotonicMs() + retryTimeoutMs
    const after = `${retryTimeoutMs / 1000} s`
    // Why the last attempt got no answer to return, said once the window has passed.
    let lastFailure: string | null = null
    for (let backoffMs = 100; ; backoffMs = Math.min(2 * backoffMs, 1000)) {
      while (this.leaderId === null && monotonicMs() < deadline) await this.nextLeaderChange(deadline - monotonicMs())
      const leaderId = this.leaderId
      const channel = leaderId === null ? undefined : channels.get(leaderId)
      if (!channel) throw new KafkaError(ErrorCode.REQUEST_TIMED_OUT, `no active controller was known within ${after}: the controller quorum has no leader, a majority of its voters being down or cut off from each other`)
      if (monotonicMs() >= deadline) throw new KafkaError(ErrorCode.REQUEST_TIMED_OUT, lastFailure ?? `the active controller (node ${leaderId}) did not answer within ${after}`)
      const changed = this.nextLeaderChange(deadline - monotonicMs())
      let outcome: { readonly response: Res } | { readonly changed: LeaderAndEpoch | null }
      try {
        outcome = await Promise.race([channel.request<Res>(api, version, body).then((response) => ({ response })), changed.then((leader) => ({ changed: leader }))])
      } catch (error) {
        // Kafka's channel takes a lost connection (or a send that timed out) for a controller that may have moved: it
        // asks again. Anything else is no network failure, and asking again would not change it.
        if (!(error instanceof ConnectionError)) throw error
        lastFailure = `the active controller (node ${leaderId}) could not be reached within ${after}: ${error.message}`
        await this.nextLeaderChange(Math.min(backoffMs, deadline - monotonicMs()))
        continue
      } finally {
        changed.cancel()
      }
      const notController = 'response' in outcome && holdsErrorCode(outcome.response, ErrorCode.NOT_CONTROLLER)
      if ('response' in outcome && !notController) return outcome.response
      lastFailure = notController ? `node ${leaderId}, the leader this node knows, was not the active controller within ${after}` : `the active controller (node ${leaderId}) did not answer within ${after}`
      if (notController) await this.nextLeaderChange(Math.min(backoffMs, deadline - monotonicMs()))
    }
  }

  /**
   * The next leader or epoch this member learns of within `timeoutMs` (a leader, or none while an election is under
   * way), or null when none comes by then; `cancel()` stops waiting at once, with null.
   */
  private nextLeaderChange(timeoutMs: number): Promise<LeaderAndEpoch | null> & { cancel(): void } {
    let cancel = (): void => undefined
    const promise = new Promise<LeaderAndEpoch | null>((resolve) => {
      const settle = (leader: LeaderAndEpoch | null): void => {
        clearTimeout(timer)
        stopListening()
        resolve(leader)
      }
      const stopListening = this.onLeaderChange(settle)
      const timer = setTimeout(() => settle(null), Math.max(0, timeoutMs))
      timer.unref()
      cancel = () => settle(null)
    })
    return Object.assign(promise, { cancel: () => cancel() })
  }

  /**
   * DescribeQuorum (KIP-595, Kafka's KafkaRaftClient.handleDescribeQuorumRequest): the leader answers from what it
   * tracks. Another member forwards the request to the leader when `forward` (a broker's listener, as Kafka's
   * brokers forward it to the controller), else answers NOT_LEADER_OR_FOLLOWER naming the leader it knows.
   */
  async describeQuorum(options: { forward: boolean }): Promise<QuorumDescription> {
    const nowMs = monotonicMs()
    const replicas = this.failure ? null : this.raft.replicaStates(nowMs)
    if (replicas) {
      const leaderEndOffset = this.raft.logEndOffset
      // The member's times are on the monotonic clock; the answer carries wall-clock timestamps (ms since the epoch).
      const wallNowMs = Date.now()
      const wallOf = (monotonic: number): number => Math.round(wallNowMs - (nowMs - monotonic))
      // The leader reports itself as fetched and caught up now; a replica is caught up as of its last fetch when that
      // fetch reached the leader's end (Kafka's ReplicaState.lastCaughtUpTimestamp, approximated).
      const describe = (replica: ReplicaDescription) => {
        const lastFetchMs = replica.replicaId === this.nodeId ? wallNowMs : replica.lastFetchMs === null ? -1 : wallOf(replica.lastFetchMs)
        const caughtUp = replica.replicaId === this.nodeId || replica.endOffset === leaderEndOffset
        return {
          replicaId: replica.replicaId,
          replicaDirectoryId: ZERO_UUID,
          logEndOffset: replica.endOffset ?? -1n,
          lastFetchTimestamp: BigInt(lastFetchMs),
          lastCaughtUpTimestamp: caughtUp ? BigInt(lastFetchMs) : -1n,
        }
      }
      // Kafka's leader names each voter's listeners in Nodes (DescribeQuorum v2, RaftUtil.singletonDescribeQuorumResponse),
      // which Admin.describeMetadataQuorum turns into QuorumInfo.nodes; a static voter set's one listener is the
      // controller listener of `controller.quorum.voters`. Older versions leave Nodes out on the wire.
      const nodes = replicas.voters.flatMap(({ replicaId }) => {
        const voter = this.voters.find((candidate) => candidate.id === replicaId)
        return voter ? [{ nodeId: voter.id, listeners: [{ name: CONTROLLER_LISTENER_NAME, host: voter.host, port: voter.port }] }] : []
      })
      return quorumAnswer(
        ErrorCode.NONE,
        {
          leaderId: this.nodeId,
          leaderEpoch: this.raft.epoch,
          highWatermark: this.raft.highWatermark ?? -1n,
          currentVoters: replicas.voters.map(describe),
          observers: replicas.observers.map(describe),
        },
        nodes,
      )
    }
    const leaderId = this.failure ? null : this.raft.leaderId
    const channel = leaderId === null || leaderId === this.nodeId ? null : this.controlChannel(leaderId)
    if (options.forward && channel) {
      try {
        return await channel.request<QuorumDescription>(describeQuorum, 2, { topics: [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: 0 }] }] })
      } catch (error) {
        this.log.debug(`DescribeQuorum forwarded to node ${leaderId}: ${(error as Error).message}`)
      }
    }
    return quorumAnswer(ErrorCode.NOT_LEADER_OR_FOLLOWER, {
      leaderId: leaderId ?? -1,
      leaderEpoch: this.failure ? -1 : this.raft.epoch,
      highWatermark: -1n,
      currentVoters: [],
      observers: [],
    })
  }

  // ---- what handlers hand in --------------------------------------------------------------------------------------

  /**
   * A quorum request from `source`: resolves with the member's response, or rejects when the member gives none
   * within the request timeout (it dropped the request) or has stopped. An EndQuorumEpoch the member took is logged
   * (`logResignation`).
   */
  receive(source: number, message: RaftRequest): Promise<RaftResponse> {
    const correlationId = this.nextInboundId++
    const key = `${source}/${correlationId}`
    return new Promise<RaftResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.inbound.delete(key)
        reject(new Error(`no answer to ${message.type} from node ${source}`))
      }, this.raft.config.requestTimeoutMs)
      this.inbound.set(key, (response) => {
        clearTimeout(timer)
        if (message.type === 'EndQuorumEpochRequest' && response.type === 'EndQuorumEpochResponse') this.logResignation(message, response)
        resolve(response)
      })
      this.step((raft, nowMs) => raft.receive({ source, destination: this.nodeId, correlationId, message }, nowMs)).catch((error: Error) => {
        clearTimeout(timer)
        this.inbound.delete(key)
        reject(error)
      })
    })
  }

  /**
   * Logs a voter's resignation (EndQuorumEpoch) by the member's answer to it: taken (NONE), an election follows; from
   * an epoch this node has left (FENCED_LEADER_EPOCH: a leader paused past its epoch, resigning on its return), it
   * starts nothing. One the member refused otherwise (INCONSISTENT_VOTER_SET for a leader that is not a voter,
   * INCONSISTENT_CLUSTER_ID) is not logged: it changed nothing, and its leader id is only what the sender claims.
   */
  private logResignation(request: EndQuorumEpochRequest, response: EndQuorumEpochResponse): void {
    if (response.errorCode === ErrorCode.NONE) {
      this.log.info(
        `controller quorum epoch ${request.leaderEpoch}: node ${request.leaderId} resigns (EndQuorumEpoch, preferred successors ` +
          `[${request.preferredSuccessors.join(', ')}]); electing a new leader`,
      )
    } else if (response.errorCode === ErrorCode.FENCED_LEADER_EPOCH) {
      this.log.info(
        `controller quorum epoch ${request.leaderEpoch}: node ${request.leaderId} resigns (EndQuorumEpoch), but this node is at epoch ${response.leaderEpoch} already; nothing to elect`,
      )
    }
  }

  /** BrokerRegistration at the active controller, answered once committed. */
  registerBroker(request: BrokerRegistrationRequest): Promise<ControllerResult<{ brokerEpoch: bigint }>> {
    return this.operate((nowMs) => this.controller.registerBroker(request, nowMs))
  }

  /** BrokerHeartbeat at the active controller, answered once what it changed (fencing) is committed. */
  heartbeat(request: BrokerHeartbeatRequest): Promise<ControllerResult<{ isCaughtUp: boolean; isFenced: boolean; shouldShutDown: boolean }>> {
    return this.operate((nowMs) => this.controller.heartbeat(request, nowMs))
  }

  /** CreateTopics for one topic at the active controller (placement as `QuorumController.createTopic`), answered once committed. */
  createTopic(request: CreateTopicRequest): Promise<ControllerResult<{ topicId: string; assignments: number[][] }>> {
    return this.operate((nowMs) => this.controller.createTopic(request, nowMs))
  }

  /**
   * AlterPartition (KIP-497) for one partition at the active controller: a partition leader's new ISR, answered once
   * committed with the partition's state after it. Errors as `QuorumController.alterPartition`.
   */
  alterPartition(request: AlterPartitionRequest): Promise<ControllerResult<{ leaderId: number; leaderEpoch: number; isr: readonly number[]; partitionEpoch: number }>> {
    return this.operate((nowMs) => this.controller.alterPartition(request, nowMs))
  }

  /** CreatePartitions for one topic at the active controller (as `QuorumController.createPartitions`), answered once committed. */
  createPartitions(request: CreatePartitionsRequest): Promise<ControllerResult<{ assignments: number[][] }>> {
    return this.operate((nowMs) => this.controller.createPartitions(request, nowMs))
  }

  /** A topic's config change at the active controller (as `QuorumController.alterTopicConfigs`), answered once committed. */
  alterTopicConfigs(request: AlterTopicConfigsRequest): Promise<ControllerResult<{ overrides: Readonly<Record<string, string>> }>> {
    return this.operate((nowMs) => this.controller.alterTopicConfigs(request, nowMs))
  }

  /** One BROKER resource's dynamic config change at the active controller (as `QuorumController.alterBrokerConfigs`), answered once committed. */
  alterBrokerConfigs(request: AlterTopicConfigsRequest): Promise<ControllerResult<{ overrides: Readonly<Record<string, string>> }>> {
    return this.operate((nowMs) => this.controller.alterBrokerConfigs(request, nowMs))
  }

  /** ElectLeaders (KIP-460) at the active controller, answered once its elections are committed. */
  electLeaders(request: ElectLeadersRequest): Promise<ControllerResult<{ results: readonly ElectionResult[] }>> {
    return this.operate((nowMs) => this.controller.electLeaders(request, nowMs))
  }

  /** AlterPartitionReassignments (KIP-455) at the active controller (as `QuorumController.alterPartitionReassignments`), answered once committed. */
  alterPartitionReassignments(request: { readonly partitions: readonly PartitionReassignmentRequest[] }): Promise<ControllerResult<{ results: readonly ReassignmentResult[] }>> {
    return this.operate((nowMs) => this.controller.alterPartitionReassignments(request, nowMs))
  }

  /** UnregisterBroker at the active controller (as `QuorumController.unregisterBroker`), answered once committed. */
  unregisterBroker(brokerId: number): Promise<ControllerResult<{ brokerEpoch: bigint }>> {
    return this.operate((nowMs) => this.controller.unregisterBroker(brokerId, nowMs))
  }

  /** DeleteTopics for one topic at the active controller, answered once committed. */
  deleteTopic(name: string): Promise<ControllerResult<{ topicId: string }>> {
    return this.operate((nowMs) => this.controller.deleteTopic(name, nowMs))
  }

  /** AllocateProducerIds (KIP-730) at the active controller: the next block for a registered broker, answered once committed. */
  allocateProducerIds(request: { brokerId: number; brokerEpoch: bigint }): Promise<ControllerResult<{ producerIdStart: bigint; producerIdLen: number }>> {
    return this.operate((nowMs) => this.controller.allocateProducerIds(request, nowMs))
  }

  /**
   * Resolves true once the committed image satisfies `holds` (at once if it does now), false after `timeoutMs`: a node
   * answers a topic change only once its own image shows it, so the client's next Metadata there sees it too.
   */
  imageHolds(holds: (image: MetadataImage) => boolean, timeoutMs: number): Promise<boolean> {
    if (holds(this.controller.image)) return Promise.resolve(true)
    return new Promise<boolean>((resolve) => {
      const listener = (image: MetadataImage): void => {
        if (!holds(image)) return
        done(true)
      }
      const done = (result: boolean): void => {
        clearTimeout(timer)
        const at = this.imageListeners.indexOf(listener)
        if (at >= 0) this.imageListeners.splice(at, 1)
        resolve(result)
      }
      const timer = setTimeout(() => done(false), timeoutMs)
      this.imageListeners.push(listener)
    })
  }

  /** Runs `listener` with each new committed image (after every applied batch and restored snapshot), inside the step. */
  onImage(listener: (image: MetadataImage) => void): void {
    this.imageListeners.push(listener)
  }

  /**
   * Hands the leadership over before a clean stop (KIP-595's EndQuorumEpoch, as KafkaRaftClient's graceful shutdown):
   * when this member leads a quorum of several voters it resigns (RaftNode.resign), so the other voters elect a new
   * leader at once instead of after their fetch timeout, and keeps running, answering pre-votes and votes, until it
   * learns of a leader in a later epoch or an election timeout has passed. Resolves with that leader's id, or null
   * when there was nothing to hand over or no new leader was known in time; never rejects.
   */
  async resign(): Promise<number | null> {
    if (this.failure || this.stopped || this.raft.role !== 'Leader' || this.raft.voters.size === 1) return null
    const epoch = this.raft.epoch
    let stopWaiting = (): void => undefined
    const successor = new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => done(null), this.raft.config.electionTimeoutMs)
      const off = this.onLeaderChange((leader) => {
        if (leader.epoch > epoch && leader.leaderId !== null) done(leader.leaderId)
      })
      const done = (leaderId: number | null): void => {
        clearTimeout(timer)
        off()
        resolve(leaderId)
      }
      stopWaiting = () => done(null)
    })
    this.log.info(`controller quorum epoch ${epoch}: this node resigns before stopping (EndQuorumEpoch to the other voters)`)
    try {
      await this.step((raft, nowMs) => raft.resign(nowMs))
    } catch {
      stopWaiting()
    }
    const leaderId = await successor
    if (leaderId === null) this.log.info(`controller quorum: no new leader known ${this.raft.config.electionTimeoutMs} ms after resigning; stopping anyway`)
    return leaderId
  }

  /**
   * Every node of the cluster is stopping with this one (`brook dev` stopping its cluster): the voters it cannot reach
   * from now on stopped first, which is logged at DEBUG only, not as the WARN a lost voter gets.
   */
  peersStopping(): void {
    this.peersGoing = true
  }

  /** Stops the loop and closes the connections to peers; waits for the step in progress. */
  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    await this.queue
    for (const channel of [...this.raftChannels.values(), ...this.controlChannels.forwarding.values(), ...this.controlChannels.internal.values()]) channel.close()
    for (const waiter of this.waiters) waiter.resolve(ErrorCode.NOT_CONTROLLER)
    this.waiters = []
  }

  // ---- RaftStateMachine: the controller, and the operations waiting for their commit ---------------------------

  apply(batch: CommittedBatch): void {
    this.controller.apply(batch)
    for (const listener of [...this.imageListeners]) listener(this.controller.image)
    this.waiters = this.waiters.filter((waiter) => {
      if (waiter.lastOffset > batch.lastOffset) return true
      // A batch of another epoch at the waiter's offsets means its proposal was lost with the leadership.
      waiter.resolve(waiter.lastOffset >= batch.baseOffset && waiter.epoch === batch.epoch ? ErrorCode.NONE : ErrorCode.NOT_CONTROLLER)
      return false
    })
  }

  snapshot(): Buffer {
    return this.controller.snapshot()
  }

  restore(snapshot: RaftSnapshot): void {
    this.controller.restore(snapshot)
    for (const listener of [...this.imageListeners]) listener(this.controller.image)
    this.log.info(`metadata image restored from the snapshot ending at offset ${snapshot.endOffset} (epoch ${snapshot.epoch})`)
    // Whether a proposal below the snapshot committed in its epoch cannot be told any more: its caller asks again.
    this.waiters = this.waiters.filter((waiter) => {
      if (waiter.lastOffset >= snapshot.endOffset) return true
      waiter.resolve(ErrorCode.NOT_CONTROLLER)
      return false
    })
  }

  leaderChange(leader: LeaderAndEpoch): void {
    this.controller.leaderChange(leader)
    const changed = leader.leaderId !== this.known.leaderId || leader.epoch !== this.known.epoch
    this.known = leader
    if (!changed) return
    const who = leader.leaderId === null ? 'no leader known' : leader.leaderId === this.nodeId ? 'this node leads (active controller)' : `node ${leader.leaderId} leads`
    this.log.info(`controller quorum epoch ${leader.epoch}: ${who}`)
    for (const listener of [...this.leaderListeners]) listener(leader)
  }

  /**
   * Calls `listener` each time the member learns of another leader or epoch (Kafka's RaftClient.Listener
   * handleLeaderChange); returns a function that removes it.
   */
  onLeaderChange(listener: (leader: LeaderAndEpoch) => void): () => void {
    this.leaderListeners.add(listener)
    return () => {
      this.leaderListeners.delete(listener)
    }
  }

  // ---- the loop ---------------------------------------------------------------------------------------------------

  /**
   * Runs a controller operation as a step. What it proposed is waited for from inside the step, before the member
   * drains: a lone voter commits within the same step. Operations queued while earlier steps run share one step, in
   * the order they came: their records reach the metadata log's store in one synced write, as one operation's many
   * records do, instead of one write each. A node back with thousands of partitions asks for as many ISR changes at
   * once, and one write each held the quorum's own messages (queued behind them) past the followers' fetch timeout,
   * so they elected another controller, which met the same queue.
   */
  private async operate<T>(call: (nowMs: number) => ControllerResult<T>): Promise<ControllerResult<T>> {
    let answer: ControllerResult<T> | null = null
    let commit: Promise<number> | null = null
    try {
      await this.operationStep((nowMs) => {
        const result = call(nowMs)
        answer = result
        if (result.ok && result.lastOffset >= 0n) commit = this.committed(result.epoch, result.lastOffset)
      })
    } catch {
      return { ok: false, errorCode: ErrorCode.NOT_CONTROLLER, message: 'the controller quorum member has stopped' }
    }
    const result = answer as ControllerResult<T> | null
    if (result === null) return { ok: false, errorCode: ErrorCode.NOT_CONTROLLER, message: 'the controller quorum member has stopped' }
    if (commit === null) return result
    const errorCode = await (commit as Promise<number>)
    if (errorCode === ErrorCode.NONE) return result
    const message = errorCode === ErrorCode.NOT_CONTROLLER ? 'the controller lost its leadership before the change committed' : `the change did not commit within ${COMMIT_TIMEOUT_MS} ms`
    return { ok: false, errorCode, message }
  }

  /** Resolves with NONE once `lastOffset` is applied in `epoch`, NOT_CONTROLLER if it was lost, REQUEST_TIMED_OUT. */
  private committed(epoch: number, lastOffset: bigint): Promise<number> {
    return new Promise<number>((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter)
        resolve(ErrorCode.REQUEST_TIMED_OUT)
      }, COMMIT_TIMEOUT_MS)
      const waiter: CommitWaiter = {
        epoch,
        lastOffset,
        resolve: (errorCode) => {
          clearTimeout(timer)
          resolve(errorCode)
        },
      }
      this.waiters.push(waiter)
    })
  }

  /** Adds `call` to the controller operations' step queued last, or queues one (see `operate`). */
  private operationStep(call: (nowMs: number) => void): Promise<void> {
    if (this.operations) {
      this.operations.calls.push(call)
      return this.operations.done
    }
    const calls = [call]
    const done = this.step((_raft, nowMs) => {
      this.operations = null
      for (const each of calls) each(nowMs)
    })
    this.operations = { calls, done }
    return done
  }

  /** Queues one step; it runs after every step queued before it. Rejects if the member has failed or stopped. */
  private step(call: (raft: RaftNode, nowMs: number) => void): Promise<void> {
    const run = this.queue.then(() => this.runStep(call))
    this.queue = run.catch(() => undefined)
    return run
  }

  private async runStep(call: (raft: RaftNode, nowMs: number) => void): Promise<void> {
    if (this.failure) throw this.failure
    if (this.stopped) throw new Error('the controller quorum member has stopped')
    try {
      call(this.raft, monotonicMs())
      for (;;) {
        const { writes, messages } = this.raft.drain()
        if (writes.length > 0) {
          await this.store.write(writes)
          this.raft.persisted(monotonicMs())
        }
        for (const envelope of messages) this.send(envelope)
        if (writes.length === 0) break
      }
    } catch (error) {
      this.fail(error as Error)
      throw error
    }
    this.reschedule()
  }

  private reschedule(): void {
    if (this.stopped || this.failure) return
    if (this.timer) clearTimeout(this.timer)
    const nowMs = monotonicMs()
    const deadline = Math.min(this.raft.nextDeadlineMs(), nowMs + CONTROLLER_TICK_MS)
    this.timer = setTimeout(() => {
      this.timer = null
      this.step((raft, tickMs) => {
        raft.tick(tickMs)
        this.controller.tick(tickMs)
      }).catch(() => undefined)
    }, Math.max(0, deadline - nowMs))
  }

  private send(envelope: RaftEnvelope): void {
    const message = envelope.message
    if (message.type.endsWith('Response')) {
      const key = `${envelope.destination}/${envelope.correlationId}`
      const answer = this.inbound.get(key)
      this.inbound.delete(key)
      answer?.(message as RaftResponse)
      return
    }
    const channel = this.raftChannels.get(envelope.destination)
    if (!channel) return
    const wire = toWireRequest(message as RaftRequest)
    channel
      .request<unknown>(wire.api, wire.version, wire.body)
      .then((body) => {
        const response = fromWireResponse(wire.api.apiKey, body)
        return this.step((raft, nowMs) =>
          raft.receive({ source: envelope.destination, destination: this.nodeId, correlationId: envelope.correlationId, message: response }, nowMs),
        )
      })
      .catch((error: Error) => {
        if (this.failure || this.stopped) return
        // A voter this member cannot reach is a WARN, as Kafka's NetworkClient logs it, once a minute per voter: a
        // wrong address in the voters' setting would otherwise only show as leaderships that come and go.
        if (error instanceof ConnectionError && !this.peersGoing) this.log.warnOncePer(`raft-${envelope.destination}`, `controller quorum: cannot reach voter ${envelope.destination}: ${error.message}`)
        else this.log.debug(`${message.type} to node ${envelope.destination}: ${error.message}`)
      })
  }

  private fail(error: Error): void {
    if (this.failure) return
    this.failure = error
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    for (const waiter of this.waiters) waiter.resolve(ErrorCode.NOT_CONTROLLER)
    this.waiters = []
    this.onFatal(error)
  }
}

/** The listener name DescribeQuorum gives the voters' controller listeners (Kafka's usual controller.listener.names). */
const CONTROLLER_LISTENER_NAME = 'CONTROLLER'

function quorumAnswer(
  errorCode: number,
  partition: Omit<QuorumDescription['topics'][number]['partitions'][number], 'partitionIndex' | 'errorCode' | 'errorMessage'>,
  nodes: NonNullable<QuorumDescription['nodes']> = [],
): QuorumDescription {
  return {
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    topics: [{ topicName: METADATA_TOPIC, partitions: [{ partitionIndex: 0, errorCode, errorMessage: null, ...partition }] }],
    nodes,
  }
}
