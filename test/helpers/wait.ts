/**
 * Waiting for a condition instead of sleeping: tests never assert on timings, they poll what a user would look at
 * (a group's members, a log start offset, a consumer's output) until it holds or a generous deadline passes.
 */

export interface WaitOptions {
  /** Fails after this long; generous, since the machine is shared and rebalances take seconds. */
  timeoutMs?: number
  intervalMs?: number
}

/**
 * Polls `probe` until it returns a value other than undefined/false and returns that value. A probe that throws is
 * treated as "not yet" (the broker may be restarting); the last error is reported if the deadline passes.
 */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, options: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 45_000)
  let lastError: unknown = null
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
      lastError = null
    } catch (error) {
      lastError = error
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : ''
      throw new Error(`timed out waiting for ${what}${cause}`)
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100))
  }
}
