/**
 * A cluster node as a broker of its cluster (Kafka's BrokerLifecycleManager): it registers with the active
 * controller (BrokerRegistration) and heartbeats to it every `broker.heartbeat.interval.ms` (BrokerHeartbeat, with
 * the offset of the last metadata record it applied), so the controller unfences it once it has caught up to its
 * registration and fences it when its heartbeats stop for `broker.session.timeout.ms`. While fenced it heartbeats
 * every FENCED_HEARTBEAT_MS, so that it is unfenced as soon as it has caught up.
 *
 *   registering ──BrokerRegistration ok (brokerEpoch)──> fenced ──heartbeat: isFenced false──> unfenced
 *        ^                                                 │  ^                                   │
 *        └──── STALE_BROKER_EPOCH / BROKER_ID_NOT_REGISTERED ┘  └──── heartbeat: isFenced true ─────┘
 *
 * The active controller is the leader the node's own quorum member knows (every node of a Brook cluster is a
 * voter); each request goes to it on its controller listener. NOT_CONTROLLER, a timeout or a lost connection only
 * means the leader changed or is changing: the next attempt goes to whichever voter the member then knows as
 * leader (a request still in flight when the member learns of a new leader is given up at once), after a backoff that starts at RETRY_BACKOFF_MS and doubles with each failure in a row up to the heartbeat
 * interval (Kafka's exponential backoff), so a quorum without a leader is not asked ten times a second. A new incarnation id each start tells the controller that a returning node is a new
 * process (Kafka's incarnation id).
 *
 * Controlled shutdown (KIP-631, Kafka's BrokerLifecycleManager.beginControlledShutdown): a node that stops while it
 * shares an ISR with another live broker (it leads a partition with followers in the ISR, or follows one in the ISR)
 * first heartbeats with wantShutDown every RETRY_BACKOFF_MS, still serving its clients; the controller fences it,
 * moving its leaderships to other ISR members and taking it out of the ISRs, and answers shouldShutDown once the
 * brokers that remain have applied that. So a clean stop of a leader is one leader change, not a session timeout
 * of silence, and acks=all does not wait on a follower that is gone. The node waits at most
 * `broker.session.timeout.ms` (what its silence would have cost), then stops anyway. A node that shares no ISR with a
 * live broker (a single node, a node that only leads partitions no other replica keeps up with) stops at once.
 *
 *   unfenced ──stop: shares an ISR──> heartbeat wantShutDown ──isFenced, shouldShutDown false──> ... ──shouldShutDown──> stopped
 *                                          (every 100 ms, for at most broker.session.timeout.ms)
 */
import { ErrorCode, errorInfo } from '../../protocol/errors.js'
import { brokerRegistration, type BrokerRegistrationRequest, type BrokerRegistrationResponse } from '../../protocol/messages/broker-registration.js'
import { brokerHeartbeat, type BrokerHeartbeatRequest, type BrokerHeartbeatResponse } from '../../protocol/messages/broker-heartbeat.js'
import type { Logger } from '../logger.js'
import { monotonicMs } from '../clock.js'
import type { NodeEndpoint } from '../handler.js'
import type { QuorumRunner } from './quorum-runner.js'
import { CLIENT_LISTENER_NAME, type MetadataImage } from './metadata/image.js'

/** The first wait before trying again after a failed registration or heartbeat (Kafka's initial backoff, 100 ms). */
export const RETRY_BACKOFF_MS = 100

/**
 * How soon a fenced node heartbeats again: the controller unfences it on the first heartbeat that finds it caught up
 * to its registration, and until then it leads nothing (Kafka's BrokerLifecycleManager asks every 10 ms while it is
 * starting). At the heartbeat interval a restarted node would stay fenced for up to that interval after catching up.
 */
export const FENCED_HEARTBEAT_MS = RETRY_BACKOFF_MS

/** Kafka's SecurityProtocol.PLAINTEXT id, the only listener a Brook node has. */
const PLAINTEXT = 0

export type BrokerLifecycleState = 'registering' | 'fenced' | 'unfenced'

export interface BrokerLifecycleOptions {
  quorum: QuorumRunner
  /** The client listener, as the controller records it (RegisterBrokerRecord's endpoint). */
  endpoint: NodeEndpoint
  /** `broker.heartbeat.interval.ms`. */
  heartbeatIntervalMs: number
  /** `broker.session.timeout.ms`: the longest a controlled shutdown waits for the controller. */
  sessionTimeoutMs: number
  log: Logger
  /** Told of each change of state (the node's local logs wait for the first 'unfenced': caught up). */
  onStateChange?: (state: BrokerLifecycleState) => void
}

export class BrokerLifecycle {
  private readonly incarnationId = crypto.randomUUID()
  private brokerEpoch: bigint | null = null
  private current: BrokerLifecycleState = 'registering'
  private timer: NodeJS.Timeout | null = null
  private stopped = false
  private inFlight: Promise<void> = Promise.resolve()
  private failures = 0
  /** Since when (monotonic ms) registrations or heartbeats have failed in a row; null while they succeed. */
  private failingSinceMs: number | null = null
  /** A WARN said the heartbeats fail, and no line has said they reach the controller again. */
  private failingTold = false
  /** When (monotonic ms) a registration or heartbeat last reached the controller; null before the first. */
  private lastReachedMs: number | null = null

  constructor(private readonly options: BrokerLifecycleOptions) {}

  get state(): BrokerLifecycleState {
    return this.current
  }

  /** The broker epoch of this node's current registration, null while it is (re)registering. */
  get currentBrokerEpoch(): bigint | null {
    return this.brokerEpoch
  }

  /** Starts registering; heartbeats follow until `stop`. */
  start(): void {
    this.schedule(0)
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    await this.inFlight
  }

  /**
   * Stops heartbeating and, when this node shares an ISR with another live broker of its image, asks the controller
   * for a controlled shutdown (see the top of this module). Resolves with what happened: 'not needed', 'done' (the
   * controller said the node may stop) or 'timed out' (no such answer within `broker.session.timeout.ms`).
   */
  async controlledShutdown(): Promise<'not needed' | 'done' | 'timed out'> {
    await this.stop()
    const { quorum, log, sessionTimeoutMs } = this.options
    const brokerEpoch = this.brokerEpoch
    if (this.current !== 'unfenced' || brokerEpoch === null || !sharesIsrWithLiveBroker(quorum.controller.image, quorum.nodeId)) return 'not needed'
    log.info('controlled shutdown: asking the controller to move this node\'s leaderships and take it out of the ISRs')
    const deadline = monotonicMs() + sessionTimeoutMs
    while (monotonicMs() < deadline) {
      const leaderId = quorum.leaderId
      const channel = leaderId === null ? null : quorum.controlChannel(leaderId)
      try {
        const request: BrokerHeartbeatRequest = {
          brokerId: quorum.nodeId,
          brokerEpoch,
          currentMetadataOffset: quorum.appliedOffset,
          wantFence: false,
          wantShutDown: true,
          offlineLogDirs: [],
        }
        const response = channel ? await channel.request<BrokerHeartbeatResponse>(brokerHeartbeat, 0, request) : null
        if (response?.errorCode === ErrorCode.NONE && response.shouldShutDown) {
          log.info(`controlled shutdown: the controller (node ${leaderId}) moved this node's leaderships; stopping`)
          return 'done'
        }
        // A registration the controller no longer knows leads nothing and is in no ISR.
        if (response?.errorCode === ErrorCode.STALE_BROKER_EPOCH || response?.errorCode === ErrorCode.BROKER_ID_NOT_REGISTERED) return 'not needed'
      } catch (error) {
        log.debug(`controlled shutdown: controller (node ${leaderId}) unreachable: ${(error as Error).message}`)
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_BACKOFF_MS, Math.max(0, deadline - monotonicMs()))))
    }
    log.warn(`controlled shutdown: the controller did not let this node stop within ${sessionTimeoutMs} ms; stopping anyway`)
    return 'timed out'
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.inFlight = this.attempt().then((nextMs) => this.schedule(nextMs ?? this.backoff()))
    }, delayMs)
  }

  /** The next retry's delay after one more failure in a row. */
  private backoff(): number {
    const delayMs = Math.min(RETRY_BACKOFF_MS * 2 ** this.failures, this.options.heartbeatIntervalMs)
    this.failures++
    return delayMs
  }

  /** One registration or heartbeat; resolves with when to send the next, or null after a failure (back off). */
  private async attempt(): Promise<number | null> {
    const { quorum, log } = this.options
    const leaderId = quorum.leaderId
    const channel = leaderId === null ? null : quorum.controlChannel(leaderId)
    if (leaderId === null || !channel) {
      this.failed(leaderId === null ? 'no active controller is known (the controller quorum has no leader)' : `node ${leaderId}, the active controller, is not a voter this node knows`)
      return null
    }
    try {
      if (this.brokerEpoch === null) {
        const { endpoint } = this.options
        const request: BrokerRegistrationRequest = {
          brokerId: quorum.nodeId,
          clusterId: quorum.clusterId,
          incarnationId: this.incarnationId,
          listeners: [{ name: CLIENT_LISTENER_NAME, host: endpoint.host, port: endpoint.port, securityProtocol: PLAINTEXT }],
          features: [],
          rack: null,
          isMigratingZkBroker: false,
          logDirs: [],
          previousBrokerEpoch: -1n,
        }
        const response = await this.unlessControllerChanges(channel.request<BrokerRegistrationResponse>(brokerRegistration, 0, request), leaderId)
        if (response.errorCode !== ErrorCode.NONE) {
          if (response.errorCode !== ErrorCode.NOT_CONTROLLER) log.warn(`registering with the controller (node ${leaderId}): ${errorInfo(response.errorCode).name}`)
          return null
        }
        this.failures = 0
        this.succeeded(leaderId)
        this.brokerEpoch = response.brokerEpoch ?? -1n
        this.transition('fenced', `registered with the controller (node ${leaderId}) at broker epoch ${this.brokerEpoch}`)
        return 0
      }
      const request: BrokerHeartbeatRequest = {
        brokerId: quorum.nodeId,
        brokerEpoch: this.brokerEpoch,
        currentMetadataOffset: quorum.appliedOffset,
        wantFence: false,
        wantShutDown: false,
        offlineLogDirs: [],
      }
      const response = await this.unlessControllerChanges(channel.request<BrokerHeartbeatResponse>(brokerHeartbeat, 0, request), leaderId)
      switch (response.errorCode) {
        case ErrorCode.NONE:
          this.failures = 0
          this.succeeded(leaderId)
          this.transition(response.isFenced ? 'fenced' : 'unfenced', response.isFenced ? `fenced by the controller (node ${leaderId})` : `unfenced by the controller (node ${leaderId})`)
          return response.isFenced ? FENCED_HEARTBEAT_MS : this.options.heartbeatIntervalMs
        case ErrorCode.STALE_BROKER_EPOCH:
        case ErrorCode.BROKER_ID_NOT_REGISTERED:
          this.brokerEpoch = null
          this.failures = 0
          this.succeeded(leaderId)
          this.transition('registering', `the controller (node ${leaderId}) no longer knows this registration (${errorInfo(response.errorCode).name}); registering again`)
          return 0
        default:
          // NOT_CONTROLLER: a leader not active yet, or one that just lost its leadership; the next attempt goes to the new one.
          if (response.errorCode !== ErrorCode.NOT_CONTROLLER) this.failed(`the controller (node ${leaderId}) answered a heartbeat with ${errorInfo(response.errorCode).name}`)
          return null
      }
    } catch (error) {
      log.debug(`controller (node ${leaderId}) unreachable: ${(error as Error).message}`)
      this.failed(`cannot send a heartbeat to the controller (node ${leaderId}): ${(error as Error).message}`)
      return null
    }
  }

  /**
   * One more failed heartbeat or registration. Once they have failed for a third of `broker.session.timeout.ms` in a
   * row (longer than a controller failover takes), a WARN says so, once a minute, as Kafka's BrokerLifecycleManager
   * warns of a heartbeat that fails: past the whole session the controller fences this node.
   */
  private failed(why: string): void {
    const nowMs = monotonicMs()
    this.failingSinceMs ??= nowMs
    const { sessionTimeoutMs, log } = this.options
    if (nowMs - this.failingSinceMs < sessionTimeoutMs / 3) return
    this.failingTold = true
    log.warnOncePer('broker-heartbeat', `${why}; for ${Math.round(nowMs - this.failingSinceMs)} ms now (the controller fences a node it has not heard from for broker.session.timeout.ms, ${sessionTimeoutMs} ms)`)
  }

  /**
   * A registration or heartbeat reached the controller (node `leaderId`). After a silence longer than
   * `broker.session.timeout.ms` (this node paused, or cut off from the controller) a WARN says the controller will
   * have fenced it meanwhile, moving its leaderships: the heartbeat that ends the silence is usually answered
   * unfenced at once, so nothing else would say so; after a shorter run of failures that was reported, an INFO.
   */
  private succeeded(leaderId: number): void {
    const nowMs = monotonicMs()
    const { sessionTimeoutMs, log } = this.options
    const silentMs = this.lastReachedMs === null ? 0 : Math.round(nowMs - this.lastReachedMs)
    if (this.current === 'unfenced' && silentMs > sessionTimeoutMs) {
      log.warn(`heartbeats reach the controller (node ${leaderId}) again after ${silentMs} ms without one, longer than broker.session.timeout.ms (${sessionTimeoutMs} ms): the controller will have fenced this node meanwhile, and the partitions it led moved to other ISR members`)
    } else if (this.failingTold) {
      log.info(`heartbeats reach the controller (node ${leaderId}) again, after ${silentMs} ms`)
    }
    this.lastReachedMs = nowMs
    this.failingSinceMs = null
    this.failingTold = false
  }

  /**
   * `request`'s answer, or a rejection as soon as the quorum learns of another leader or epoch. A heartbeat to a
   * controller that was cut off or paused would otherwise hold the next one back for the whole request timeout, long
   * enough for the new controller, which starts every broker's session when it takes over, to fence this broker (the
   * new controller may be this very node). Kafka's NodeToControllerChannelManager likewise sends to the new
   * controller once it changes.
   */
  private unlessControllerChanges<T>(request: Promise<T>, leaderId: number): Promise<T> {
    let stopListening = (): void => undefined
    const changed = new Promise<never>((_, reject) => {
      stopListening = this.options.quorum.onLeaderChange(() => reject(new Error(`node ${leaderId} is no longer the active controller`)))
    })
    return Promise.race([request, changed]).finally(() => stopListening())
  }

  private transition(next: BrokerLifecycleState, why: string): void {
    if (next === this.current) return
    this.current = next
    this.options.log.info(why)
    this.options.onStateChange?.(next)
  }
}

/**
 * Whether `nodeId` is in the ISR of some partition together with another live (registered, unfenced) broker: then
 * its going away changes a leadership or an ISR, which a controlled shutdown does before it stops.
 */
export function sharesIsrWithLiveBroker(image: MetadataImage, nodeId: number): boolean {
  const live = (id: number): boolean => id !== nodeId && image.brokers.get(id)?.fenced === false
  for (const topic of image.topicsById.values()) {
    for (const partition of topic.partitions.values()) {
      if (partition.isr.includes(nodeId) && partition.isr.some(live)) return true
    }
  }
  return false
}
