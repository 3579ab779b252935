/**
 * The node's clock for timeouts: milliseconds on the monotonic clock (`performance.now()`, CLOCK_MONOTONIC), which a
 * step of the wall clock (NTP, a laptop's suspend and resume) does not move. Kafka times its delayed operations the
 * same way (SystemTimer's hiResClockMs, System.nanoTime): group members' session, rebalance and sync timeouts, and a
 * parked Fetch's maxWaitMs; its controller times brokers' sessions on time.nanoseconds() (BrokerHeartbeatTracker).
 * On a cluster node every time the controller quorum member is given runs on it too (its election, fetch and
 * check-quorum timeouts, where Kafka's Raft client reads the wall clock: a controller whose clock alone stepped lost
 * its leadership), as do the retry window of a request to the controller and the controlled-shutdown wait. Only
 * differences of its values mean something, and only inside this process: what is stored or sent (commit
 * timestamps, a group's state timestamp, record timestamps, retention, DescribeQuorum's fetch times) stays on
 * `Date.now()`.
 */
export function monotonicMs(): number {
  return performance.now()
}
