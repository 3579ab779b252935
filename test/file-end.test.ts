/**
 * The cleanup of ./helpers/file-end.ts as each file ends, whether vitest isolates files or runs them one after another
 * in the same worker: vitest runs fixtures/file-end/first.ts and second.ts in one worker, each leaving a `sleep` and a
 * directory registered by a helper both import (as test/helpers/broker.ts registers brokers); when the run is over,
 * neither process runs and neither directory is left.
 */
import { describe, expect, it, vi } from 'vitest'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runNestedVitest } from './helpers/nested-vitest.js'
import { alive } from './helpers/processes.js'

/** Runs vitest on the fixtures; its exit code, its output, and the processes and directories the files left. */
async function runFixtures(isolate: boolean): Promise<{ code: number | null; output: string; left: { pid: number; dir: string }[] }> {
  const scratch = mkdtempSync(join(tmpdir(), 'brook-test-file-end-run-'))
  const leftFile = join(scratch, 'left')
  try {
    const { code, output } = await runNestedVitest('test/fixtures/file-end/config.ts', { BROOK_FILE_END_ISOLATE: String(isolate), BROOK_FILE_END_LEFT: leftFile })
    const left = existsSync(leftFile) ? readFileSync(leftFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { pid: number; dir: string }) : []
    return { code, output, left }
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}

describe('the cleanup as a test file ends', () => {
  for (const isolate of [false, true]) {
    it(`kills the processes and removes the directories each file left, ${isolate ? 'with' : 'without'} isolation`, async () => {
      const { code, output, left } = await runFixtures(isolate)
      try {
        expect(code, output).toBe(0)
        expect(left, output).toHaveLength(2)
        await vi.waitFor(() => expect(left.filter(({ pid }) => alive(pid))).toEqual([]), { timeout: 5000 })
        expect(left.filter(({ dir }) => existsSync(dir))).toEqual([])
      } finally {
        for (const { pid, dir } of left) {
          if (alive(pid)) process.kill(pid, 'SIGKILL')
          rmSync(dir, { recursive: true, force: true })
        }
      }
    })
  }
})
