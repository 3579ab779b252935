/**
 * The node's request budget: how many requests (`queued.max.requests`) and how many request bytes
 * (`queued.max.request.bytes`) all connections together may hold at once. A connection takes a frame's bytes when it
 * reads the frame's size, before the rest of the frame (so partly received frames count against the byte pool, as
 * in Kafka's memory pool), and a request's place once the whole frame is in (as Kafka's RequestChannel counts only
 * whole requests: a client that sends the start of frames and stalls holds no place, and cannot stop the node from
 * serving others); both go back when the request is answered. A request parked on others or on time (a long-polling
 * Fetch, a JoinGroup waiting for the rebalance) gives back its place at once, as Kafka's purgatory holds requests
 * outside the request queue. A connection that finds no room stops reading and waits here; waiters are woken in
 * arrival order.
 *
 *   takeBytes(size):  bytes < queued.max.request.bytes (or size <= SMALL_REQUEST_BYTES)  ->  bytes += size
 *   takeRequest():    requests < queued.max.requests                                     ->  requests += 1
 *
 * The byte check is Kafka's non-strict memory pool (SocketServer's SimpleMemoryPool with strict = false): a frame is
 * admitted whenever any room is left, however large it is, so a request larger than what remains still gets through
 * (never a deadlock). One difference: a frame of at most SMALL_REQUEST_BYTES is admitted even when the pool is full.
 * Kafka's handlers copy a produce request into the page cache and free its buffer within microseconds; Brook holds it
 * until LevelDB has written it, which under a flood takes a whole group commit, and a Metadata request or a heartbeat
 * should not wait that long. The bytes held stay below
 *   queued.max.request.bytes + socket.request.max.bytes + connections x SMALL_REQUEST_BYTES
 * (100 MiB + 100 MiB + 16 KiB a connection with the defaults).
 */
import type { Logger } from './logger.js'
import { monotonicMs } from './clock.js'

const SHORTAGE_LOG_INTERVAL_MS = 10_000
/** Frames this small are admitted while the byte pool is full (but never beyond queued.max.requests). */
export const SMALL_REQUEST_BYTES = 16 * 1024

/** What a connection waits for: the bytes of a frame of this size, or a request's place. */
export type Need = number | 'request'

export interface RequestBudgetLimits {
  /** `queued.max.requests`. */
  maxRequests: number
  /** `queued.max.request.bytes`. */
  maxBytes: number
}

export class RequestBudget {
  private requests = 0
  private bytes = 0
  /** Connections waiting for room, with what each waits for, in arrival order. */
  private readonly waiting = new Map<() => void, Need>()
  private wakeScheduled = false
  /** When a full budget was last logged: at most one line per SHORTAGE_LOG_INTERVAL_MS, as a flood refills it at once. */
  private shortageLoggedAt = -Infinity

  constructor(
    private readonly limits: RequestBudgetLimits,
    private readonly log: Logger,
  ) {}

  private hasRoomFor(need: Need): boolean {
    return need === 'request' ? this.requests < this.limits.maxRequests : this.bytes < this.limits.maxBytes || need <= SMALL_REQUEST_BYTES
  }

  /** Takes `size` bytes of the byte pool for a frame whose size was just read, if there is room; false otherwise. */
  takeBytes(size: number): boolean {
    if (!this.hasRoomFor(size)) return this.short()
    this.bytes += size
    return true
  }

  /** Takes one request's place for a frame received whole, if there is room; false otherwise. */
  takeRequest(): boolean {
    if (!this.hasRoomFor('request')) return this.short()
    this.requests++
    return true
  }

  /** Logs a full budget at most once per SHORTAGE_LOG_INTERVAL_MS; returns false. */
  private short(): false {
    const now = monotonicMs()
    if (now - this.shortageLoggedAt >= SHORTAGE_LOG_INTERVAL_MS) {
      this.shortageLoggedAt = now
      this.log.debug(
        `request budget full (${this.requests} requests of queued.max.requests ${this.limits.maxRequests}, ` +
          `${this.bytes} bytes of queued.max.request.bytes ${this.limits.maxBytes}): connections wait before reading more`,
      )
    }
    return false
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

  /**
   * Calls `wake` once there is room for what `need` names: the bytes of a frame of that size, or 'request', a place
   * (it should then try `takeBytes` or `takeRequest` again).
   */
  wait(need: Need, wake: () => void): void {
    this.waiting.set(wake, need)
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
      // In arrival order; a small frame is not kept waiting behind a large one that the byte pool holds back. A woken
      // connection takes what it waited for at once, so the next waiter sees what is left.
      for (const [wake, need] of [...this.waiting]) {
        if (!this.waiting.has(wake) || !this.hasRoomFor(need)) continue
        this.waiting.delete(wake)
        wake()
      }
    })
  }
}
