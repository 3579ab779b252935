/**
 * The node's clock for timeouts: milliseconds on the monotonic clock (`performance.now()`, CLOCK_MONOTONIC), which a
 * step of the wall clock (NTP, a laptop's suspend and resume) does not move. Kafka times its delayed operations the
 * same way (SystemTimer's hiResClockMs, System.nanoTime): group members' session, rebalance and sync timeouts, and a
 * parked Fetch's maxWaitMs. Only differences of its values mean something, and only inside this process: what is
 * stored or sent (commit timestamps, a group's state timestamp, record timestamps, retention) stays on `Date.now()`.
 */
export function monotonicMs(): number {
  return performance.now()
}
