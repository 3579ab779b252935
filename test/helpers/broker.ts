/**
 * Starts real Brook broker processes (`node dist/cli/brook.js start`) for tests: each on a free port of 127.0.0.1 (or
 * another loopback address given as `host`), with its own data directory, stopped (or killed) by the test and, as a
 * safety net, when the test file ends.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { killedAtFileEnd } from './file-end.js'

/** The built `brook` program (package.json's bin); `npm run build` first. */
export const BROOK_CLI = resolve(import.meta.dirname, '../../dist/cli/brook.js')
const running = killedAtFileEnd()
/** Preloaded into each broker: it kills itself once the test process that started it is gone (a run interrupted). */
const EXIT_WITH_PARENT = pathToFileURL(resolve(import.meta.dirname, 'exit-with-parent.mjs')).href

export interface BrokerProcess {
  readonly host: string
  readonly port: number
  /** host:port, for kcat's -b and kafkajs's brokers. */
  readonly address: string
  readonly dataDir: string
  readonly child: ChildProcess
  /** Everything the process wrote to stderr and stdout. */
  output(): string
  /** SIGTERM and wait for a clean exit. */
  stop(): Promise<void>
  /** SIGKILL (kill -9) and wait for the process to be gone. */
  kill(): Promise<void>
  /** Starts a new process on the same data directory and port. */
  restart(): Promise<BrokerProcess>
  /** Removes the data directory (after stop or kill). */
  cleanup(): void
}

export interface StartOptions {
  dataDir?: string
  /** The address the client listener binds and advertises (default 127.0.0.1; Linux routes all of 127/8 to lo). */
  host?: string
  port?: number
  args?: string[]
  /** Starts the process under `ulimit -n` of this many open files (through sh, which then execs node). */
  openFileLimit?: number
  /** The node's log.retention.ms (`--log-retention-ms`): TEST_LOG_RETENTION_MS unless given; 'kafka-default' sets none. */
  logRetentionMs?: number | 'kafka-default'
  /** Added to the process's environment (LD_PRELOAD of libfaketime, say). */
  env?: Record<string, string>
}

/**
 * Test nodes keep batches for ever unless a test says otherwise. Tests write batches stamped in 2023 (test/helpers/
 * wire.ts, the kcat and ListOffsets tests) and sensor readings from 2013-2015 to topics of the default retention.ms,
 * and a node's first retention pass comes 30 s after its start (broker/log-cleaner.ts): at Kafka's default of 7 days,
 * what a test wrote could be gone before it reads it back. Tests of retention set retention.ms on their topics.
 */
export const TEST_LOG_RETENTION_MS = -1

/** `--log-retention-ms` for startBroker: placed before the caller's args, so that one of those wins. */
function logRetentionArgs(logRetentionMs: number | 'kafka-default' = TEST_LOG_RETENTION_MS): string[] {
  return logRetentionMs === 'kafka-default' ? [] : ['--log-retention-ms', String(logRetentionMs)]
}

export async function startBroker(options: StartOptions = {}): Promise<BrokerProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'brook-test-'))
  const host = options.host ?? '127.0.0.1'
  const args = ['--import', EXIT_WITH_PARENT, BROOK_CLI, 'start', '--host', host, '--port', String(options.port ?? 0), '--data-dir', dataDir, ...logRetentionArgs(options.logRetentionMs), ...(options.args ?? [])]
  const env = options.env === undefined ? undefined : { ...process.env, ...options.env }
  const child =
    options.openFileLimit === undefined
      ? spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env })
      : spawn('sh', ['-c', `ulimit -n ${options.openFileLimit} && exec "$0" "$@"`, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
  running.add(child)
  let output = ''
  /** host:port once the broker listens. */
  let listening: string | null = null
  let exitAsked = false
  const exited = new Promise<void>((resolve) => child.once('exit', (code) => {
    running.delete(child)
    // A broker that fails by itself once it listened (a fatal error: an exit code other than 0, not a signal the test
    // sent) is named with its last output, so that a test failing after it says why, not only that it stopped answering.
    if (listening !== null && !exitAsked && code !== null && code !== 0) process.stderr.write(`broker on ${listening} exited by itself with code ${code}; its last output:\n${output.slice(-4000)}\n`)
    resolve()
  }))
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      // An IPv6 host is written in brackets: listening on [::1]:9092.
      const match = /listening on (?:\[[^\]\s]+\]|[^:\s]+):(\d+)/.exec(output)
      if (match) {
        listening = `${host}:${match[1]}`
        resolve(Number(match[1]))
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('exit', (code) => reject(new Error(`broker exited with code ${code} before listening:\n${output}`)))
    setTimeout(() => reject(new Error(`broker did not start within 30 s:\n${output}`)), 30_000).unref()
  }).catch(async (error: unknown) => {
    // A broker that never listened leaves nothing behind: its process is gone, and so is the directory made for it.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true })
    throw error
  })
  const handle: BrokerProcess = {
    host,
    port,
    address: `${host}:${port}`,
    dataDir,
    child,
    output: () => output,
    async stop() {
      exitAsked = true
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
    async kill() {
      exitAsked = true
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
    restart: () => startBroker({ ...options, dataDir, port }),
    cleanup: () => rmSync(dataDir, { recursive: true, force: true }),
  }
  return handle
}
