/**
 * The test watchdog (./global.ts, ./worker.ts, ./stall.ts) on runs of its own: vitest runs fixtures/blocked.ts, whose
 * worker loops without end after starting a child process, beside fixtures/quick.ts, with a short file limit (and a
 * short stall limit, so the stall thread reports the function the loop is in), then with a short run limit. Each run
 * ends failed instead of hanging, the watchdog names the file and the test, the blocked worker's child is killed with
 * it, and the other file still passes. Then fixtures/gone.ts, whose worker is killed in
 * its second test: vitest says only "Worker exited unexpectedly" (or EPIPE), the watchdog names the file and the test (and not
 * fixtures/skipped.ts, whose worker ends normally without running a hook).
 */
import { describe, expect, it, vi } from 'vitest'
import { runNestedVitest } from '../helpers/nested-vitest.js'
import { alive } from '../helpers/processes.js'

/** Runs vitest on the fixtures with `env`; its exit code and its output without colours. */
function runFixtures(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return runNestedVitest('test/watchdog/fixture.config.ts', env)
}

/** The pid of the blocked test's `sleep`, from the watchdog's list of what it killed; checks it is gone. */
async function expectSleeperKilled(output: string): Promise<void> {
  const sleeper = Number(/(\d+) \(sleep 1000\)/.exec(output)?.[1])
  expect(sleeper, output).toBeGreaterThan(0)
  await vi.waitFor(() => expect(alive(sleeper)).toBe(false), { timeout: 5000 })
}

describe('the test watchdog', () => {
  it('names and kills a worker blocked past the file limit, with what it started, and the run ends failed', async () => {
    const { code, output } = await runFixtures({ BROOK_TEST_FILE_LIMIT_S: '6', BROOK_TEST_STALL_S: '2' })
    expect(code, output).toBe(1)
    expect(output).toMatch(/watchdog: \S*test\/watchdog\/fixtures\/blocked\.ts has run for \d+ s, more than the 6 s a test file may take/)
    expect(output).toContain('watchdog: it is in the test "test/watchdog/fixtures/blocked.ts > blocks its worker"')
    // Where it was stuck, from the worker's stall thread (stall.ts): the blocked fixture's loop, paused in place.
    expect(output).toMatch(/watchdog: its event loop has not turned since \d{4}-\d\d-\d\dT[\d:.]+Z; its main thread was in:\nwatchdog: +spinWithoutYielding \S*test\/watchdog\/fixtures\/blocked\.ts:\d+:\d+/)
    expect(output).toMatch(/Test Files +1 passed \(2\)/)
    await expectSleeperKilled(output)
  })

  it('past the run limit, names the files still running and kills every worker, and the run ends failed', async () => {
    // The limit counts from vitest's start: on a loaded machine the blocked file's worker needs seconds to be in its test.
    const { code, output } = await runFixtures({ BROOK_TEST_FILE_LIMIT_S: '600', BROOK_TEST_RUN_LIMIT_S: '8' })
    expect(code, output).toBe(1)
    expect(output).toMatch(/watchdog: the run has taken \d+ s, more than the 8 s it may take/)
    expect(output).toMatch(/watchdog: files still running: \d+: \S*test\/watchdog\/fixtures\/blocked\.ts \("test\/watchdog\/fixtures\/blocked\.ts > blocks its worker"\)/)
    expect(output).toMatch(/Test Files +1 passed \(2\)/)
    await expectSleeperKilled(output)
  })

  it('names the file and the test of a worker killed before its file ended', async () => {
    const { code, output } = await runFixtures({ BROOK_WATCHDOG_FIXTURES: 'gone,quick,skipped' })
    expect(code, output).toBe(1)
    expect(output).toMatch(/watchdog: the worker \d+ running \S*test\/watchdog\/fixtures\/gone\.ts is gone before the file ended: killed by a signal/)
    expect(output).toMatch(/watchdog: it was in the test "test\/watchdog\/fixtures\/gone\.ts > takes its worker away" or the hooks after it, \d+ MiB resident/)
    // vitest's own report of the loss: "Worker exited unexpectedly", or, when it wrote to the worker before it saw the
    // exit, "Worker forks emitted error" with the EPIPE of that write.
    expect(output).toMatch(/Worker exited unexpectedly|Worker forks emitted error[\s\S]*EPIPE/)
    // A file whose tests are all skipped runs no hook, and its worker ends normally: not named.
    expect(output).not.toMatch(/skipped\.ts is gone/)
  })
})
