/**
 * The cleanup of ./helpers/file-end.ts as each file ends, whether vitest isolates files or runs them one after another
 * in the same worker: vitest runs fixtures/file-end/first.ts and second.ts in one worker, each leaving a `sleep` and a
 * directory registered by a helper both import (as test/helpers/broker.ts registers brokers); when the run is over,
 * neither process runs and neither directory is left.
 */
import { describe, expect, it, vi } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const REPO = resolve(import.meta.dirname, '..')

/** Whether `pid` runs: it exists and is not a zombie waiting for its new parent to reap it. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/** Runs vitest on the fixtures; its exit code, its output, and the processes and directories the files left. */
async function runFixtures(isolate: boolean): Promise<{ code: number | null; output: string; left: { pid: number; dir: string }[] }> {
  const scratch = mkdtempSync(join(tmpdir(), 'brook-test-file-end-run-'))
  const leftFile = join(scratch, 'left')
  const run = spawn(process.execPath, [resolve(REPO, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/fixtures/file-end/config.ts'], {
    cwd: REPO,
    env: { ...process.env, BROOK_FILE_END_ISOLATE: String(isolate), BROOK_FILE_END_LEFT: leftFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  run.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  run.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  try {
    const code = await new Promise<number | null>((done) => run.once('close', done))
    const left = existsSync(leftFile) ? readFileSync(leftFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { pid: number; dir: string }) : []
    return { code, output: output.replace(/\x1b\[[0-9;]*m/g, ''), left }
  } finally {
    if (run.exitCode === null) run.kill('SIGKILL')
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
        await vi.waitFor(() => expect(left.filter(({ pid }) => running(pid))).toEqual([]), { timeout: 5000 })
        expect(left.filter(({ dir }) => existsSync(dir))).toEqual([])
      } finally {
        for (const { pid, dir } of left) {
          if (running(pid)) process.kill(pid, 'SIGKILL')
          rmSync(dir, { recursive: true, force: true })
        }
      }
    })
  }
})
