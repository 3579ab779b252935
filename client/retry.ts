/**
 * Asking a cluster again after a retriable answer. Kafka's clients retry metadata, coordinator and leader errors for
 * a bounded time, after `retry.backoff.ms` (growing to `retry.backoff.max.ms` for the producer, KIP-580): a topic just
 * created has no leaders for a moment, a coordinator answers COORDINATOR_LOAD_IN_PROGRESS while it loads, a
 * partition's leader moves or restarts, the active controller dies and the quorum elects another. One loop serves
 * every such request in `client/`.
 */

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number
  /** Wait between two attempts, in ms; with `backoffMaxMs`, the first wait. */
  readonly backoffMs: number
  /**
   * Each wait doubles the one before, up to this many ms (Kafka's retry.backoff.max.ms, KIP-580, without its
   * jitter: one command line has no herd to spread); absent, every wait is `backoffMs`.
   */
  readonly backoffMaxMs?: number
  /**
   * No attempt starts later than this many ms after the first (Kafka's default.api.timeout.ms for an admin
   * operation); absent, only `attempts` bounds the loop.
   */
  readonly timeoutMs?: number
}

/** Metadata and coordinators settling: 20 attempts 100 ms apart (about 2 s). */
export const SETTLING: RetryPolicy = { attempts: 20, backoffMs: 100 }
/**
 * A node lost or restarted (Kafka's AdminClient on NOT_CONTROLLER, NOT_COORDINATOR, a partition leader's retriable
 * error or a failed connection: metadata again, then the node that took over), 250 ms apart for up to 30 s, Kafka's
 * request.timeout.ms: the quorum elects a new controller within its fetch and election timeouts (about 3 s), a dead
 * broker leaves the metadata, its partitions and coordinators moving to others, once the controller fences it
 * (broker.session.timeout.ms, 9 s), and a restarted one takes its partitions back once it has caught up with the
 * metadata log, all well inside it; a cluster without a quorum gets a clear error.
 */
export const NODE_LOSS: RetryPolicy = { attempts: Number.MAX_SAFE_INTEGER, backoffMs: 250, timeoutMs: 30_000 }
/**
 * A produced batch refused with a retriable error, or whose leader cannot be reached: Kafka's producer waits
 * retry.backoff.ms (100 ms) doubling up to retry.backoff.max.ms (1 s) between attempts, until delivery.timeout.ms
 * (120 s). A command line gives up sooner, after NODE_LOSS's 30 s, which covers what a batch waits for: a dead leader
 * fenced and replaced, a restarted one back with its partitions, a leader learning of a topic just created.
 */
export const DELIVERY: RetryPolicy = { attempts: Number.MAX_SAFE_INTEGER, backoffMs: 100, backoffMaxMs: 1000, timeoutMs: NODE_LOSS.timeoutMs }

/** What an attempt returns when it wants another. */
export const AGAIN: unique symbol = Symbol('again')

/**
 * Runs `attempt(last)` until it returns something other than AGAIN, waiting as the policy says between attempts
 * (`backoffMs`, doubling up to `backoffMaxMs` when set), and returns that. `last` is true on the final attempt (the
 * policy's last, or the last to start within its timeout), which must decide (return a value or throw); AGAIN from it
 * is an Error. Errors an attempt throws end the loop at once.
 */
export async function retrying<T>(policy: RetryPolicy, attempt: (last: boolean) => Promise<T | typeof AGAIN>): Promise<T> {
  const deadline = policy.timeoutMs === undefined ? Infinity : Date.now() + policy.timeoutMs
  let backoffMs = policy.backoffMs
  for (let n = 1; ; n++) {
    const last = n >= policy.attempts || Date.now() + backoffMs > deadline
    const result = await attempt(last)
    if (result !== AGAIN) return result
    if (last) throw new Error(`no answer after ${n} attempts`)
    await new Promise((resolve) => setTimeout(resolve, backoffMs))
    if (policy.backoffMaxMs !== undefined) backoffMs = Math.min(backoffMs * 2, policy.backoffMaxMs)
  }
}

/**
 * `send` for the attempts of a retry loop whose request is not idempotent (a deletion): each call is told whether an
 * earlier attempt already sent the request, so that an answer meaning "already done" can be read as that attempt's
 * work (its outcome was unknown: its answer lost with its connection, or a node that lost its role after it may have
 * written the change).
 */
export function toldIfResent<A extends unknown[], T>(send: (resent: boolean, ...args: A) => Promise<T>): (...args: A) => Promise<T> {
  let sent = false
  return (...args) => {
    const resent = sent
    sent = true
    return send(resent, ...args)
  }
}

/** `message` as the last attempt of a policy bounded by time ends it: `...; gave up after 30 s`. */
export function gaveUp(policy: RetryPolicy, message: string): string {
  return `${message}; gave up after ${(policy.timeoutMs ?? 0) / 1000} s`
}
