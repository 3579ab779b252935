/**
 * Runs the real kcat (librdkafka 2.0.2 on Debian bookworm) as a child process. Asynchronous, so a test can run kcat
 * while it also talks to the broker; a non-zero exit rejects with kcat's stderr, which names librdkafka's error.
 */
import { spawn } from 'node:child_process'
import { createReadStream } from 'node:fs'

export const KCAT = '/usr/bin/kcat'

export interface KcatOptions {
  /** Written to kcat's stdin (then closed); without it stdin is closed at once. */
  input?: string | Buffer
  /** A file streamed to kcat's stdin (large inputs). */
  inputFile?: string
  /** Kills kcat after this long (a hung kcat fails the test instead of hanging it). */
  timeoutMs?: number
}

export interface KcatResult {
  stdout: string
  stderr: string
}

export function kcat(args: readonly string[], options: KcatOptions = {}): Promise<KcatResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(KCAT, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk))
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      const result = { stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') }
      if (code === 0) resolve(result)
      else reject(new Error(`kcat ${args.join(' ')} exited with ${signal ?? code}:\n${result.stderr}`))
    })
    // kcat may exit (an error) before reading all of its input; that is reported by the exit code, not EPIPE.
    child.stdin.on('error', () => undefined)
    if (options.inputFile !== undefined) createReadStream(options.inputFile).pipe(child.stdin)
    else child.stdin.end(options.input ?? '')
  })
}

/** The request versions librdkafka logged as sent (`-d protocol`): `{ Metadata: [4], Produce: [7] }`. */
export function sentVersions(debugLog: string): Record<string, number[]> {
  const versions: Record<string, Set<number>> = {}
  for (const match of debugLog.matchAll(/Sent (\w+)Request \(v(\d+)/g)) {
    ;(versions[match[1]!] ??= new Set()).add(Number(match[2]))
  }
  return Object.fromEntries(Object.entries(versions).map(([api, set]) => [api, [...set].sort((a, b) => a - b)]))
}
