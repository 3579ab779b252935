/**
 * The test watchdog (./global.ts, ./worker.ts) on a run of its own: vitest runs fixtures/blocked.ts, whose worker
 * loops without end after starting a child process, beside fixtures/quick.ts, with a 4 s file limit. The run ends
 * failed instead of hanging, the watchdog names the file and the test, the blocked worker's child is killed with it,
 * and the other file still passes.
 */
import { describe, expect, it, vi } from 'vitest'
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

const REPO = resolve(import.meta.dirname, '../..')

/** Whether `pid` runs: it exists and is not a zombie waiting for its new parent to reap it. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

describe('the test watchdog', () => {
  it('names and kills a worker blocked past the file limit, with what it started, and the run ends failed', async () => {
    const run = spawn(process.execPath, [resolve(REPO, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/watchdog/fixture.config.ts'], {
      cwd: REPO,
      env: { ...process.env, BROOK_TEST_FILE_LIMIT_S: '4' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    run.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    run.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const closed = new Promise<number | null>((done) => run.once('close', done))
    let code: number | null
    try {
      code = await closed
    } finally {
      if (run.exitCode === null) run.kill('SIGKILL')
    }
    const plain = output.replace(/\x1b\[[0-9;]*m/g, '')

    expect(code, plain).toBe(1)
    expect(plain).toMatch(/watchdog: \S*test\/watchdog\/fixtures\/blocked\.ts has run for \d+ s, more than the 4 s a test file may take/)
    expect(plain).toContain('watchdog: it is in the test "test/watchdog/fixtures/blocked.ts > blocks its worker"')
    expect(plain).toMatch(/Test Files +1 passed \(2\)/)
    // The child the blocked test started is named among what was killed, and is gone.
    const sleeper = Number(/killing its worker and what it started: \d+ \([^)]*\), (\d+) \(sleep 1000\)/.exec(plain)?.[1])
    expect(sleeper).toBeGreaterThan(0)
    await vi.waitFor(() => expect(running(sleeper)).toBe(false), { timeout: 5000 })
  })
})
