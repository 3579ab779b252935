/**
 * The node's request budget: how many requests (`queued.max.requests`) and how many request bytes
 * (`queued.max.request.bytes`) all connections together may hold at once. A connection takes a request's place and
 * bytes when it reads the frame's size, before the rest of the frame (so partly received frames count), and gives
 * them back when the request is answered; a request parked on others or on time (a long-polling Fetch, a JoinGroup
 * waiting for the rebalance) gives back its place at once, as Kafka's purgatory holds requests outside the request
 * queue. A connection that finds no room stops reading and waits here; waiters are woken in arrival order.
 *
 *   take(size):  requests < queued.max.requests  and  bytes < queued.max.request.bytes  ->  requests += 1, bytes += size
 *
 * The byte check is Kafka's non-strict memory pool (SocketServer's SimpleMemoryPool with strict = false): a frame is
 * admitted whenever any room is left, however large it is, so a request larger than what remains still gets through
 * (never a deadlock). One difference: a frame of at most SMALL_REQUEST_BYTES is admitted even when the pool is full,
 * as long as queued.max.requests allows. Kafka's handlers copy a produce request into the page cache and free its
 * buffer within microseconds; Brook holds it until LevelDB has written it, which under a flood takes a whole group
 * commit, and a Metadata request or a heartbeat should not wait that long. The bytes held stay below
 *   queued.max.request.bytes + socket.request.max.bytes + queued.max.requests x SMALL_REQUEST_BYTES
 * (100 MiB + 100 MiB + 8 MiB with the defaults).
 */
import type { Logger } from './logger.js'

const SHORTAGE_LOG_INTERVAL_MS = 10_000
/** Frames this small are admitted while the byte pool is full (but never beyond queued.max.requests). */
export const SMALL_REQUEST_BYTES = 16 * 1024

export interface RequestBudgetLimits {
  /** `queued.max.requests`. */
  maxRequests: number
  /** `queued.max.request.bytes`. */
  maxBytes: number
}

export class RequestBudget {
  private requests = 0
  private bytes = 0
  /** Connections waiting for room, with the size of the frame each waits to read, in arrival order. */
  private readonly waiting = new Map<() => void, number>()
  private wakeScheduled = false
  /** When a full budget was last logged: at most one line per SHORTAGE_LOG_INTERVAL_MS, as a flood refills it at once. */
  private shortageLoggedAt = -Infinity

  constructor(
    private readonly limits: RequestBudgetLimits,
    private readonly log: Logger,
  ) {}

  private hasRoomFor(size: number): boolean {
    return this.requests < this.limits.maxRequests && (this.bytes < this.limits.maxBytes || size <= SMALL_REQUEST_BYTES)
  }

  /** Takes one request's place and `size` bytes if there is room; false (nothing taken) otherwise. */
  take(size: number): boolean {
    if (!this.hasRoomFor(size)) {
      const now = Date.now()
      if (now - this.shortageLoggedAt >= SHORTAGE_LOG_INTERVAL_MS) {
        this.shortageLoggedAt = now
        this.log.debug(
          `request budget full (${this.requests} requests of queued.max.requests ${this.limits.maxRequests}, ` +
            `${this.bytes} bytes of queued.max.request.bytes ${this.limits.maxBytes}): connections wait before reading more`,
        )
      }
      return false
    }
    this.requests++
    this.bytes += size
    return true
  }

  /** Gives back a request's place (when it is answered or parked). */
  releaseRequest(): void {
    this.requests--
    this.wakeSoon()
  }

  /** Gives back bytes taken with `take`. */
  releaseBytes(size: number): void {
    this.bytes -= size
    this.wakeSoon()
  }

  /** Calls `wake` once there is room for a frame of `size` bytes (it should then try `take` again). */
  wait(size: number, wake: () => void): void {
    this.waiting.set(wake, size)
  }

  /** Forgets a waiter (its connection closed). */
  cancel(wake: () => void): void {
    this.waiting.delete(wake)
  }

  // Waking is deferred to a microtask so that a waiter never runs inside the connection that gave room back.
  private wakeSoon(): void {
    if (this.wakeScheduled || this.waiting.size === 0) return
    this.wakeScheduled = true
    queueMicrotask(() => {
      this.wakeScheduled = false
      // In arrival order; a small frame is not kept waiting behind a large one that the byte pool holds back.
      for (const [wake, size] of [...this.waiting]) {
        if (this.requests >= this.limits.maxRequests) break
        if (!this.waiting.has(wake) || !this.hasRoomFor(size)) continue
        this.waiting.delete(wake)
        wake()
      }
    })
  }
}
