/**
 * The Raft core under deterministic simulation: thousands of seeded runs (chaos.ts), each checked against Raft's
 * safety properties while it runs (checker.ts) and for liveness once the network heals.
 *
 *   BROOK_RAFT_RUNS=20000 npx vitest run test/cluster/raft/simulation.test.ts   more seeds (default 5000)
 *   BROOK_RAFT_SEED=1234 npx vitest run test/cluster/raft/simulation.test.ts    replay one seed, tracing messages
 */
import { describe, expect, test } from 'vitest'
import { runSeed, type RunFailure, type RunSummary } from './chaos.js'

const DEFAULT_RUNS = 5000
const replay = process.env.BROOK_RAFT_SEED
const runs = Number(process.env.BROOK_RAFT_RUNS ?? DEFAULT_RUNS)
const seeds = replay !== undefined ? [Number(replay)] : Array.from({ length: runs }, (_, i) => i + 1)

describe('raft under simulation', () => {
  // A run takes about 4 ms of CPU: the timeout grows with the count, for long local runs on a busy machine.
  test(
    `${seeds.length} seeded runs keep Raft's safety properties and recover once healed`,
    { timeout: 120_000 + 25 * seeds.length },
    async () => {
      const summaries: RunSummary[] = []
      for (const seed of seeds) {
        try {
          summaries.push(await runSeed(seed, { traceMessages: replay !== undefined }))
        } catch (caught) {
          // A safety violation, a liveness failure, or an invariant the core itself enforces (it throws): all are bugs.
          const error = caught as RunFailure
          const trace = error.trace?.join('\n') ?? ''
          throw new Error(
            `seed ${seed}: ${error.name}: ${error.message}\n` +
              `replay: BROOK_RAFT_SEED=${seed} npx vitest run test/cluster/raft/simulation.test.ts\n` +
              `last events:\n${trace}`,
          )
        }
      }
      const sum = (pick: (s: RunSummary) => number): number => summaries.reduce((total, s) => total + pick(s), 0)
      const percentiles = (pick: (s: RunSummary) => number): string => {
        const sorted = summaries.map(pick).sort((a, b) => a - b)
        return `p50 ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms`
      }
      console.log(
        `raft simulation: ${summaries.length} runs, ${sum((s) => s.committedBatches)} committed batches, ` +
          `${sum((s) => s.leaders)} leaders, ${sum((s) => s.messages)} messages, ` +
          `${summaries.filter((s) => s.snapshotFetches > 0).length} runs with a snapshot fetch; simulated time to a ` +
          `new commit: with a majority connected ${percentiles((s) => s.majorityRecoveryMs)}, ` +
          `once healed ${percentiles((s) => s.recoveryMs)}`,
      )
      expect(summaries).toHaveLength(seeds.length)
    },
  )

  test('a seed replays the same run', async () => {
    const seed = seeds[0]!
    const first = await runSeed(seed)
    const second = await runSeed(seed)
    expect(second).toEqual(first)
  })
})
