/**
 * Replication under deterministic simulation: seeded runs (chaos.ts) of three replicas and a controller with
 * crashes, pauses, partitions, lossy links and leader changes, each checked at every step (checker.ts) and for
 * convergence once healed.
 *
 *   BROOK_REPLICATION_RUNS=5000 npx vitest run test/cluster/replication/simulation.test.ts   more seeds (default 500)
 *   BROOK_REPLICATION_SEED=1234 npx vitest run test/cluster/replication/simulation.test.ts   replay one seed, tracing messages
 */
import { describe, expect, test } from 'vitest'
import { runSeed, type RunFailure } from './chaos.js'
import type { SimSummary } from './sim.js'

const DEFAULT_RUNS = 500
const replay = process.env.BROOK_REPLICATION_SEED
const runs = Number(process.env.BROOK_REPLICATION_RUNS ?? DEFAULT_RUNS)
const seeds = replay !== undefined ? [Number(replay)] : Array.from({ length: runs }, (_, i) => i + 1)

describe('replication under simulation', () => {
  test(
    `${seeds.length} seeded runs keep every acks=all record and converge once healed`,
    { timeout: 120_000 + 100 * seeds.length },
    async () => {
      const summaries: SimSummary[] = []
      for (const seed of seeds) {
        try {
          summaries.push(await runSeed(seed, { traceMessages: replay !== undefined }))
        } catch (caught) {
          const error = caught as RunFailure
          throw new Error(
            `seed ${seed}: ${error.message}\n` +
              `replay: BROOK_REPLICATION_SEED=${seed} npx vitest run test/cluster/replication/simulation.test.ts\n` +
              `last events:\n${error.trace?.join('\n') ?? ''}`,
          )
        }
      }
      const sum = (pick: (s: SimSummary) => number): number => summaries.reduce((total, s) => total + pick(s), 0)
      console.log(
        `replication simulation: ${summaries.length} runs, ${sum((s) => s.produced)} records produced, ` +
          `${sum((s) => s.consumed)} consumed, ` +
          `${sum((s) => s.acknowledgedAll)} acknowledged with acks=all (none lost), ` +
          `${sum((s) => s.acknowledgedOne)} with acks=1 of which ${sum((s) => s.lostAcksOne)} lost ` +
          `(in ${summaries.filter((s) => s.lostAcksOne > 0).length} runs), ${sum((s) => s.leaderEpochs)} leader epochs, ` +
          `${sum((s) => s.isrChanges)} ISR changes, ${sum((s) => s.truncations)} divergingEpoch answers, ` +
          `${sum((s) => s.messages)} messages`,
      )
      expect(summaries).toHaveLength(seeds.length)
    },
  )

  test('a seed replays the same run', async () => {
    const seed = seeds[0]!
    const first = await runSeed(seed, { traceMessages: false })
    const second = await runSeed(seed, { traceMessages: false })
    expect(second).toEqual(first)
  })
})
