/**
 * Worker processes: the raw scenarios run in their own Node process (a fresh heap and JIT, like the broker's), take
 * their input as one JSON argument and report on stdout as JSON lines.
 *
 *   parent: spawnWorker('level-worker.js', input) --argv JSON--> worker
 *   worker: report({ ... }) --stdout line--> parent: next()
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { join } from 'node:path'

export interface Worker {
  readonly pid: number
  /** The next JSON line the worker reports. */
  next<T>(): Promise<T>
  /** Resolves when the worker exits with code 0. */
  readonly exited: Promise<void>
}

export function spawnWorker(script: string, input: unknown): Worker {
  const child = spawn(process.execPath, [join(import.meta.dirname, script), JSON.stringify(input)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<void>((resolve, reject) => {
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${script} exited with ${code ?? signal}:\n${stderr}`)),
    )
  })
  exited.catch(() => undefined)
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  return {
    pid: child.pid!,
    exited,
    async next<T>(): Promise<T> {
      const line = await lines.next()
      if (line.done) {
        // Stdout closed: the exit status (with stderr) says why, if it was a failure.
        await exited
        throw new Error(`${script} ended without reporting:\n${stderr}`)
      }
      return JSON.parse(line.value as string) as T
    },
  }
}

/** In a worker: its input. */
export function workerInput<T>(): T {
  return JSON.parse(process.argv[2] ?? '{}') as T
}

/** In a worker: one report line to the parent. */
export function report(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}
