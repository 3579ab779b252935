/** Runs vitest in a child process on a fixture config (tests of the suite's own machinery: the watchdog, file-end cleanup). */
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'

const REPO = resolve(import.meta.dirname, '../..')

/**
 * Runs `vitest run --config <config>` (a path from the repository's root) with `env` added to this process's; resolves
 * with its exit code and its output (stdout and stderr, colour codes removed) once it has closed.
 */
export async function runNestedVitest(config: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const run = spawn(process.execPath, [resolve(REPO, 'node_modules/vitest/vitest.mjs'), 'run', '--config', config], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  run.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  run.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  try {
    const code = await new Promise<number | null>((done) => run.once('close', done))
    return { code, output: output.replace(/\x1b\[[0-9;]*m/g, '') }
  } finally {
    if (run.exitCode === null) run.kill('SIGKILL')
  }
}
