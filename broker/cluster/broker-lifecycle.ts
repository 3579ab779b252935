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
 * leader, after a backoff that starts at RETRY_BACKOFF_MS and doubles with each failure in a row up to the heartbeat
 * interval (Kafka's exponential backoff), so a quorum without a leader is not asked ten times a second. A new incarnation id each start tells the controller that a returning node is a new
 * process (Kafka's incarnation id).
 */
import { ErrorCode, errorInfo } from '../../protocol/errors.js'
import { brokerRegistration, type BrokerRegistrationRequest, type BrokerRegistrationResponse } from '../../protocol/messages/broker-registration.js'
import { brokerHeartbeat, type BrokerHeartbeatRequest, type BrokerHeartbeatResponse } from '../../protocol/messages/broker-heartbeat.js'
import type { Logger } from '../logger.js'
import type { NodeEndpoint } from '../handler.js'
import type { QuorumRunner } from './quorum-runner.js'

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
    if (!channel) return null
    try {
      if (this.brokerEpoch === null) {
        const { endpoint } = this.options
        const request: BrokerRegistrationRequest = {
          brokerId: quorum.nodeId,
          clusterId: quorum.clusterId,
          incarnationId: this.incarnationId,
          listeners: [{ name: 'PLAINTEXT', host: endpoint.host, port: endpoint.port, securityProtocol: PLAINTEXT }],
          features: [],
          rack: null,
          isMigratingZkBroker: false,
          logDirs: [],
          previousBrokerEpoch: -1n,
        }
        const response = await channel.request<BrokerRegistrationResponse>(brokerRegistration, 0, request)
        if (response.errorCode !== ErrorCode.NONE) {
          if (response.errorCode !== ErrorCode.NOT_CONTROLLER) log.warn(`registering with the controller (node ${leaderId}): ${errorInfo(response.errorCode).name}`)
          return null
        }
        this.failures = 0
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
      const response = await channel.request<BrokerHeartbeatResponse>(brokerHeartbeat, 0, request)
      switch (response.errorCode) {
        case ErrorCode.NONE:
          this.failures = 0
          this.transition(response.isFenced ? 'fenced' : 'unfenced', response.isFenced ? `fenced by the controller (node ${leaderId})` : `unfenced by the controller (node ${leaderId})`)
          return response.isFenced ? FENCED_HEARTBEAT_MS : this.options.heartbeatIntervalMs
        case ErrorCode.STALE_BROKER_EPOCH:
        case ErrorCode.BROKER_ID_NOT_REGISTERED:
          this.brokerEpoch = null
          this.failures = 0
          this.transition('registering', `the controller (node ${leaderId}) no longer knows this registration (${errorInfo(response.errorCode).name}); registering again`)
          return 0
        default:
          return null
      }
    } catch (error) {
      log.debug(`controller (node ${leaderId}) unreachable: ${(error as Error).message}`)
      return null
    }
  }

  private transition(next: BrokerLifecycleState, why: string): void {
    if (next === this.current) return
    this.current = next
    this.options.log.info(why)
    this.options.onStateChange?.(next)
  }
}
