/**
 * Asking a cluster again after a retriable answer. Kafka's clients retry metadata, coordinator and leader errors for
 * a bounded time with a fixed backoff (`retry.backoff.ms`): a topic just created has no leaders for a moment, a
 * coordinator answers COORDINATOR_LOAD_IN_PROGRESS while it loads, a partition's leader moves, the active controller
 * dies and the quorum elects another. One loop serves every such request in `client/`.
 */

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number
  /** Wait between two attempts, in ms. */
  readonly backoffMs: number
  /**
   * No attempt starts later than this many ms after the first (Kafka's default.api.timeout.ms for an admin
   * operation); absent, only `attempts` bounds the loop.
   */
  readonly timeoutMs?: number
}

/** Metadata and coordinators settling: 20 attempts 100 ms apart (about 2 s). */
export const SETTLING: RetryPolicy = { attempts: 20, backoffMs: 100 }
/** Leaders being elected (a cluster just started, a leader lost): 20 attempts 250 ms apart (about 5 s). */
export const LEADER_CHANGE: RetryPolicy = { attempts: 20, backoffMs: 250 }
/**
 * A node lost (Kafka's AdminClient on NOT_CONTROLLER, NOT_COORDINATOR or a failed connection: metadata again, then
 * the node that took over), 250 ms apart for up to 30 s, Kafka's request.timeout.ms: the quorum elects a new
 * controller within its fetch and election timeouts (about 3 s), and a dead broker leaves the metadata, its
 * partitions and coordinators moving to others, once the controller fences it (broker.session.timeout.ms, 9 s), both
 * well inside it; a cluster without a quorum gets a clear error.
 */
export const NODE_LOSS: RetryPolicy = { attempts: Number.MAX_SAFE_INTEGER, backoffMs: 250, timeoutMs: 30_000 }

/** What an attempt returns when it wants another. */
export const AGAIN: unique symbol = Symbol('again')

/**
 * Runs `attempt(last)` until it returns something other than AGAIN, waiting `policy.backoffMs` between attempts, and
 * returns that. `last` is true on the final attempt (the policy's last, or the last to start within its timeout),
 * which must decide (return a value or throw); AGAIN from it is an Error. Errors an attempt throws end the loop at
 * once.
 */
export async function retrying<T>(policy: RetryPolicy, attempt: (last: boolean) => Promise<T | typeof AGAIN>): Promise<T> {
  const deadline = policy.timeoutMs === undefined ? Infinity : Date.now() + policy.timeoutMs
  for (let n = 1; ; n++) {
    const last = n >= policy.attempts || Date.now() + policy.backoffMs > deadline
    const result = await attempt(last)
    if (result !== AGAIN) return result
    if (last) throw new Error(`no answer after ${n} attempts`)
    await new Promise((resolve) => setTimeout(resolve, policy.backoffMs))
  }
}
