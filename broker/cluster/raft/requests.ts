/**
 * Outgoing requests of a quorum member (Kafka's RequestManager): at most one in flight per destination, resent when
 * unanswered for `requestTimeoutMs`, paused for `retryBackoffMs` after an error. A response counts only if it answers
 * the request in flight to its source, so late, duplicated or reordered responses are dropped. Everything is
 * forgotten when the member changes state: the new state sends its own requests.
 */
export class RequestManager {
  private readonly inflight = new Map<number, { correlationId: number; deadlineMs: number }>()
  private readonly backoffUntil = new Map<number, number>()
  private nextCorrelationId: number

  constructor(
    private readonly requestTimeoutMs: number,
    private readonly retryBackoffMs: number,
    random: () => number,
  ) {
    // A restarted member must not take a response meant for its previous incarnation as its own.
    this.nextCorrelationId = Math.floor(random() * 0x3fffffff)
  }

  /** Nothing in flight to `destination` (or it timed out) and no backoff pending. */
  isReady(destination: number, nowMs: number): boolean {
    const inflight = this.inflight.get(destination)
    if (inflight && nowMs < inflight.deadlineMs) return false
    return nowMs >= (this.backoffUntil.get(destination) ?? -Infinity)
  }

  /** Whether any request is in flight and not timed out. */
  hasInflight(nowMs: number): boolean {
    for (const { deadlineMs } of this.inflight.values()) if (nowMs < deadlineMs) return true
    return false
  }

  /** Records a request sent now; returns its correlation id. */
  send(destination: number, nowMs: number): number {
    const correlationId = this.nextCorrelationId
    this.nextCorrelationId = (this.nextCorrelationId + 1) | 0
    this.inflight.set(destination, { correlationId, deadlineMs: nowMs + this.requestTimeoutMs })
    this.backoffUntil.delete(destination)
    return correlationId
  }

  /** Whether a response is the one awaited from `source`; if so, the request is no longer in flight. */
  receive(source: number, correlationId: number): boolean {
    const inflight = this.inflight.get(source)
    if (!inflight || inflight.correlationId !== correlationId) return false
    this.inflight.delete(source)
    return true
  }

  backoff(destination: number, nowMs: number): void {
    this.backoffUntil.set(destination, nowMs + this.retryBackoffMs)
  }

  reset(): void {
    this.inflight.clear()
    this.backoffUntil.clear()
  }

  /** The next time after `nowMs` a request times out or a backoff ends (Infinity if none). */
  nextDeadlineMs(nowMs: number): number {
    let next = Infinity
    for (const { deadlineMs } of this.inflight.values()) if (deadlineMs > nowMs && deadlineMs < next) next = deadlineMs
    for (const until of this.backoffUntil.values()) if (until > nowMs && until < next) next = until
    return next
  }
}
