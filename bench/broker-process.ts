/**
 * A Brook broker as a separate process, as users run it: `node dist/cli/brook.js start --port 0 --data-dir <dir>`, its
 * address taken from the "listening on host:port" line. (test/helpers/broker.ts does the same for tests, but it
 * resolves the CLI relative to its source folder, which does not hold once it is compiled into dist/bench.)
 */
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'

const CLI = resolve(import.meta.dirname, '../cli/brook.js')
const START_TIMEOUT_MS = 60_000

export interface BrokerProcess {
  readonly host: string
  readonly port: number
  readonly pid: number
  /** Settles when the process is gone: its exit code, or null when a signal ended it. */
  readonly exited: Promise<number | null>
  /** Milliseconds from spawn to listening (includes opening and recovering the data directory). */
  readonly startMs: number
  output(): string
  /** SIGTERM, then wait for the process to exit (a clean shutdown closes the database). */
  stop(): Promise<void>
  /** SIGKILL (kill -9), then wait for the process to be gone. */
  kill(): Promise<void>
}

export interface BrokerOptions {
  dataDir: string
  /** The address both listeners bind (127.0.0.1 by default; a node of its own 127/8 address can be cut off with iptables). */
  host?: string
  /** The client port; 0 (the default) lets the system choose one. */
  port?: number
  /** Arguments for node itself, such as --cpu-prof. */
  nodeArgs?: string[]
  /** More `brook start` flags. */
  args?: string[]
}

/** Spawns `brook start` with `options` and waits for its "listening on" line (60 s at most). */
export async function startBroker(options: BrokerOptions): Promise<BrokerProcess> {
  const started = performance.now()
  const host = options.host ?? '127.0.0.1'
  const args = [...(options.nodeArgs ?? []), CLI, 'start', '--host', host, '--port', String(options.port ?? 0), '--data-dir', options.dataDir, ...(options.args ?? [])]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const killOnExit = (): void => void child.kill('SIGKILL')
  process.once('exit', killOnExit)
  let output = ''
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      const match = /listening on (?:\[[^\]\s]+\]|[^:\s]+):(\d+)/.exec(output)
      if (match) resolve(Number(match[1]))
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    void exited.then((code) => reject(new Error(`broker exited with code ${code} before listening:\n${output}`)))
    setTimeout(() => reject(new Error(`broker did not start within ${START_TIMEOUT_MS} ms:\n${output}`)), START_TIMEOUT_MS).unref()
  })
  return {
    host,
    port,
    pid: child.pid!,
    exited,
    startMs: performance.now() - started,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      const code = await exited
      process.removeListener('exit', killOnExit)
      if (code !== 0) throw new Error(`broker exited with code ${code}:\n${output}`)
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
      process.removeListener('exit', killOnExit)
    },
  }
}
