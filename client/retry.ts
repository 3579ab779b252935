/**
 * Asking a cluster again after a retriable answer. Kafka's clients retry metadata, coordinator and leader errors for
 * a bounded time with a fixed backoff (`retry.backoff.ms`): a topic just created has no leaders for a moment, a
 * coordinator answers COORDINATOR_LOAD_IN_PROGRESS while it loads, a partition's leader moves. One loop serves every
 * such request in `client/`.
 */

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number
  /** Wait between two attempts, in ms. */
  readonly backoffMs: number
}

/** Metadata and coordinators settling: 20 attempts 100 ms apart (about 2 s). */
export const SETTLING: RetryPolicy = { attempts: 20, backoffMs: 100 }
/** Leaders being elected (a cluster just started, a leader lost): 20 attempts 250 ms apart (about 5 s). */
export const LEADER_CHANGE: RetryPolicy = { attempts: 20, backoffMs: 250 }

/** What an attempt returns when it wants another. */
export const AGAIN: unique symbol = Symbol('again')

/**
 * Runs `attempt(last)` until it returns something other than AGAIN, waiting `policy.backoffMs` between attempts, and
 * returns that. `last` is true on the final attempt, which must decide (return a value or throw); AGAIN from it is
 * an Error. Errors an attempt throws end the loop at once.
 */
export async function retrying<T>(policy: RetryPolicy, attempt: (last: boolean) => Promise<T | typeof AGAIN>): Promise<T> {
  for (let n = 1; ; n++) {
    const result = await attempt(n >= policy.attempts)
    if (result !== AGAIN) return result
    if (n >= policy.attempts) throw new Error(`no answer after ${policy.attempts} attempts`)
    await new Promise((resolve) => setTimeout(resolve, policy.backoffMs))
  }
}
