/**
 * What a running pipeline tells the user while it waits for the cluster. When the cluster is down, the runner's own
 * retries (a task's re-initialization every 0.25-5 s, the group consumer's restarts every 1-30 s) are few, but each
 * try can spend minutes inside kafkajs's retries: its connect, InitProducerId, OffsetFetch and ListOffsets each retry
 * with the client's backoff, and its cluster retries its metadata refresh inside them. The runner's per-try lines then
 * stop, and the pipeline would look hung. So a wait gets three kinds of line, and none per kafkajs retry:
 *
 *   (not waiting) ──begin(): a task cannot re-initialize, the group consumer stopped──▶ waiting
 *        ▲           logs "waiting for the cluster (...): <what>"                         │ every CHECK_MS:
 *        │                                                                                 │  REMINDER_MS since the
 *        └──────────── resumed(): every task running, the consumer in its group ◀─────────┘  last line: "still waiting"
 *                      logs "the cluster answers again: processing resumed after <n> s"
 *
 * Invariant: the timer runs exactly while waiting; stop() (the pipeline stopping) ends it without a line.
 */

/** How often a wait looks whether processing has resumed. */
const CHECK_MS = 1000
/** How often a wait that goes on says so again. */
const REMINDER_MS = 30_000

export interface ClusterWaitOptions {
  log: (line: string) => void
  /** Whether processing has resumed: every task running, the group consumer in its group. */
  resumed: () => boolean
  /** What the pipeline waits for, e.g. `task 0_0 to re-initialize from its committed state`. */
  waitingFor: () => string
}

export class ClusterWait {
  private wait: { sinceMs: number; saidMs: number; lastError: string; timer: NodeJS.Timeout } | null = null

  constructor(private readonly options: ClusterWaitOptions) {}

  /** A failure that leaves a task or the group consumer waiting for the cluster; the first of a wait is said. */
  begin(error: string): void {
    if (this.wait !== null) {
      this.wait.lastError = error
      return
    }
    const now = Date.now()
    this.wait = { sinceMs: now, saidMs: now, lastError: error, timer: setInterval(() => this.check(), CHECK_MS).unref() }
    this.options.log(`waiting for the cluster (${error}): ${this.options.waitingFor()}; processing resumes by itself once it answers`)
  }

  /** Ends a wait without a line (the pipeline is stopping). */
  stop(): void {
    if (this.wait !== null) clearInterval(this.wait.timer)
    this.wait = null
  }

  private check(): void {
    const wait = this.wait
    if (wait === null) return
    const now = Date.now()
    const waited = `${Math.round((now - wait.sinceMs) / 1000)} s`
    if (this.options.resumed()) {
      this.stop()
      this.options.log(`the cluster answers again: processing resumed after ${waited} of waiting`)
    } else if (now - wait.saidMs >= REMINDER_MS) {
      wait.saidMs = now
      this.options.log(`still waiting for the cluster, since ${new Date(wait.sinceMs).toISOString()} (${waited}): ${this.options.waitingFor()}; last error: ${wait.lastError}`)
    }
  }
}
