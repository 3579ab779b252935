/**
 * Runs the built CLI (`node dist/cli/brook.js ...`) as a user would: a child process with stdin, stdout, stderr and an
 * exit code. BROOK_BOOTSTRAP_SERVER is cleared so that only what a test passes decides where the CLI connects.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { expect } from 'vitest'
import { BROOK_CLI } from '../helpers/broker.js'
import { killedAtFileEnd } from '../helpers/file-end.js'

// Commands left running by a failed test (a consumer without --timeout-ms) must not outlive the test process.
const running = killedAtFileEnd()

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

export interface RunOptions {
  /** Written to stdin, which is then closed; without it stdin is empty. */
  input?: string
  env?: Record<string, string>
}

function environment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra }
  if (!('BROOK_BOOTSTRAP_SERVER' in extra)) delete env.BROOK_BOOTSTRAP_SERVER
  return env
}

export async function brook(args: readonly string[], options: RunOptions = {}): Promise<CliResult> {
  const { code, stdout, stderr } = await brookBytes(args, options)
  return { code, stdout: stdout.toString(), stderr }
}

/** As `brook`, with stdout as the command wrote it: for output that is not text. */
export function brookBytes(args: readonly string[], options: RunOptions = {}): Promise<Omit<CliResult, 'stdout'> & { stdout: Buffer }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BROOK_CLI, ...args], { env: environment(options.env), stdio: 'pipe' })
    // A test that times out while the command runs leaves it to the file's end, which kills it.
    running.add(child)
    const stdout: Buffer[] = []
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.once('error', (error) => {
      running.delete(child)
      fail(error)
    })
    child.once('close', (code) => {
      running.delete(child)
      done({ code, stdout: Buffer.concat(stdout), stderr })
    })
    child.stdin.end(options.input ?? '')
  })
}

/** Starts the CLI and leaves it running (for commands that run until Ctrl-C); its stdin stays open; `env` adds to its environment. */
export function spawnBrook(args: readonly string[], options: Pick<RunOptions, 'env'> = {}): { child: ChildProcess; stdout: () => string; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BROOK_CLI, ...args], { env: environment(options.env), stdio: 'pipe' })
  running.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((done) =>
    child.once('close', (code) => {
      running.delete(child)
      done(code)
    }),
  )
  return { child, stdout: () => stdout, stderr: () => stderr, exited }
}

/**
 * Polls `condition` every 50 ms until it holds. After `timeoutMs` (default 100 s, inside the tests' 120 s) it throws,
 * naming `what` and adding `context()` (the last output of the process waited on, say), so that a test waiting in
 * vain says for what, instead of only timing out.
 */
export async function until(condition: () => boolean | Promise<boolean>, what = 'a condition', options: { timeoutMs?: number; context?: () => string } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 100_000
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`waited ${Math.round(timeoutMs / 1000)} s in vain for ${what}${options.context ? `:\n${options.context()}` : ''}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export function kcat(args: readonly string[], input?: string): Promise<string> {
  return new Promise((done, fail) => {
    const child = execFile('kcat', [...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      error ? fail(new Error(`kcat ${args.join(' ')} failed: ${stderr}`)) : done(stdout),
    )
    child.stdin!.end(input ?? '')
  })
}

/** The lines of a command's stdout (no trailing empty line). */
export function lines(output: string): string[] {
  return output === '' ? [] : output.replace(/\n$/, '').split('\n')
}

/** A failure as the CLI must report it: exit code 1, one line on stderr starting `brook: `, no stack trace. */
export function expectOneLineError(result: { code: number | null; stderr: string }, contains: string): void {
  expect(result.code).toBe(1)
  expect(result.stderr).toMatch(/^brook: [^\n]+\n$/)
  expect(result.stderr).toContain(contains)
  expect(result.stderr).not.toMatch(/\n\s+at /)
}
