/**
 * `brook/testing`: a real Brook for a project's own tests, as Testcontainers' KafkaContainer gives a real Kafka to a
 * JVM project's, without Docker. `startBrook()` runs `brook start` (one node) or `brook dev` (a cluster) as a child
 * process on ports free at the time, in a temporary data directory, and resolves once clients can use it:
 *
 *   import { startBrook } from 'brook/testing'
 *   const brook = await startBrook()                          // beforeAll
 *   const kafka = new Kafka({ brokers: brook.bootstrapServers })
 *   await brook.stop()                                         // afterAll: the process ended, its directory removed
 *
 * The node is `node <brook>/dist/cli/brook.js` itself, not `npx brook`, whose npm and shell pass on neither a signal
 * nor the IPC channel. Over that channel the node says where it listens (whatever `--log-level` hides), and it stops
 * by itself, its temporary directory removed, when the test process ends without `stop()`, even by kill -9 or a
 * runner's timeout. Kafka's
 * `group.initial.rebalance.delay.ms` is 0 (as Testcontainers and Kafka's shipped server.properties set it), so a new
 * consumer group gets its records at once instead of after 3 s.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ReadyMessage } from './interrupt.js'
import { BROOK_PROGRAM } from './demo-cluster.js'

/**
 * The file startBrook puts in a data directory it made: `brook start` and `brook dev` remove a data directory holding
 * it once they have stopped (their data closed, every node exited), so that a test process that ended without
 * `stop()` leaves no directory behind either.
 */
export const TEMPORARY_DIR_MARKER = 'brook-testing-temporary-directory'

/** Removes `dataDir` if startBrook made it (it holds TEMPORARY_DIR_MARKER); for `brook start` and `brook dev`. */
export function removeIfTemporary(dataDir: string): void {
  if (existsSync(join(dataDir, TEMPORARY_DIR_MARKER))) rmSync(dataDir, { recursive: true, force: true })
}

/** How `startBrook` starts Brook. */
export interface StartBrookOptions {
  /** 1 (the default): one node (`brook start`); more: a replicated cluster of that many nodes (`brook dev --nodes`). */
  nodes?: number
  /**
   * The data directory; by default a new temporary one (`brook-test-*` in the system's temporary directory), which
   * Brook removes when it stops, through `stop()` or by itself when the test process ended without it (a given one
   * is kept).
   */
  dataDir?: string
  /**
   * More flags of `brook start` (one node) or `brook dev` (a cluster), e.g. `['--log-level', 'debug']` or
   * `['--config', 'brook.json']`; they come after startBrook's own, so a flag given here wins.
   */
  args?: readonly string[]
  /** Each line Brook logs (stderr), e.g. `console.error`; by default the lines are dropped. */
  log?: (line: string) => void
  /**
   * How long to wait for Brook to listen (ms, a positive number; default 60000; Infinity: no limit): then the promise
   * rejects and Brook is stopped.
   */
  timeoutMs?: number
  /** Gives up waiting when aborted (a test runner's signal, say): the promise rejects and Brook is stopped. */
  signal?: AbortSignal
}

/** A Brook started by `startBrook`. */
export interface RunningBrook {
  /** Where clients reach it, one `host:port` per node: kafkajs's `brokers`. */
  readonly bootstrapServers: string[]
  /** The same, comma-separated: librdkafka's and Kafka's `bootstrap.servers`, kcat's `-b`. */
  readonly bootstrapServer: string
  readonly clusterId: string
  readonly dataDir: string
  /** The `brook start` or `brook dev` process. */
  readonly pid: number
  /**
   * Stops it cleanly (SIGTERM; after 30 s, SIGKILL) and removes the data directory startBrook made; resolves once the
   * process has ended. Calling it again does nothing more.
   */
  stop(): Promise<void>
}

/**
 * Starts Brook as a child process and resolves once it listens (and, for a cluster, once every node is a live
 * broker). Rejects with Brook's own one-line error (a bad flag, a port in use...), on the timeout or when `signal` is
 * aborted, once Brook has stopped (every node of a cluster), leaving no process and no directory of its own behind;
 * rejects at once, starting nothing, on options it cannot honour (`nodes` or `timeoutMs` out of range, `--data-dir`
 * in `args`).
 */
export async function startBrook(options: StartBrookOptions = {}): Promise<RunningBrook> {
  const nodes = options.nodes ?? 1
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`startBrook: nodes must be a whole number of at least 1, got ${JSON.stringify(nodes)}`)
  const timeoutMs = options.timeoutMs ?? 60_000
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0)) throw new Error(`startBrook: timeoutMs must be a positive number of ms (or Infinity), got ${JSON.stringify(timeoutMs)}`)
  if (options.args?.some((arg) => arg === '--data-dir' || arg.startsWith('--data-dir='))) {
    throw new Error('startBrook: give the data directory as the dataDir option, not as --data-dir in args, so that the directory startBrook reports and removes is the one Brook uses')
  }
  const madeDir = options.dataDir === undefined
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'brook-test-'))
  if (madeDir) writeFileSync(join(dataDir, TEMPORARY_DIR_MARKER), 'Made by brook/testing\'s startBrook: Brook removes this directory when it stops.\n')
  const removeDir = (): void => {
    if (madeDir) rmSync(dataDir, { recursive: true, force: true })
  }
  const own =
    nodes === 1
      ? ['start', '--port', '0', '--data-dir', dataDir, '--group-initial-rebalance-delay-ms', '0']
      : ['dev', '--nodes', String(nodes), '--base-port', '0', '--data-dir', dataDir, '--group-initial-rebalance-delay-ms', '0']
  const child = spawn(process.execPath, [BROOK_PROGRAM, ...own, ...(options.args ?? [])], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
  // What it logs is read as it comes (a pipe nobody reads would stall the node once full), and the last lines are
  // kept to say why a start failed.
  const recent: string[] = []
  for (const stream of [child.stdout!, child.stderr!]) {
    let partial = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n')
      partial = lines.pop()!
      for (const line of lines) {
        recent.push(line)
        if (recent.length > 20) recent.shift()
        options.log?.(line)
      }
    })
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  /**
   * Stops Brook: SIGTERM, which `brook dev` passes on to its nodes and waits for (SIGKILL would leave them to notice
   * their channel closed, seconds later, still holding the data directory); SIGKILL after 30 s.
   */
  const end = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(killer)
    }
  }
  let ready: ReadyMessage
  let abandon = (): void => undefined
  try {
    ready = await new Promise<ReadyMessage>((resolve, reject) => {
      // Node's timers take at most 2^31 - 1 ms (and clamp more to 1 ms): a longer wait is no limit.
      const timer = timeoutMs < 2 ** 31 ? setTimeout(() => reject(new Error(`startBrook: Brook did not listen within ${timeoutMs} ms${lastWords(recent)}`)), timeoutMs) : undefined
      abandon = (): void => {
        clearTimeout(timer)
        reject(new Error('startBrook: abandoned (its signal was aborted) before Brook listened'))
      }
      if (options.signal?.aborted) abandon()
      options.signal?.addEventListener('abort', abandon, { once: true })
      child.on('message', (message: ReadyMessage) => {
        if (message?.type !== 'brook:ready') return
        clearTimeout(timer)
        resolve(message)
      })
      child.once('error', (error) => {
        clearTimeout(timer)
        reject(new Error(`startBrook: cannot run ${BROOK_PROGRAM}: ${error.message}`))
      })
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`startBrook: Brook exited (${signal ?? `code ${code}`}) before it listened${lastWords(recent)}`))
      })
    })
  } catch (error) {
    await end()
    removeDir()
    throw error
  } finally {
    options.signal?.removeEventListener('abort', abandon)
  }
  // A test process that ends without stop() is not held open by Brook: the node, seeing its channel close, stops.
  child.unref()
  child.channel?.unref()
  for (const stream of [child.stdout, child.stderr] as unknown as { unref?: () => void }[]) stream.unref?.()
  let stopping: Promise<void> | null = null
  const bootstrapServers = ready.bootstrapServers.split(',')
  return {
    bootstrapServers,
    bootstrapServer: ready.bootstrapServers,
    clusterId: ready.clusterId,
    dataDir,
    pid: child.pid!,
    stop: () =>
      (stopping ??= (async () => {
        await end()
        removeDir()
      })()),
  }
}

/** The last lines Brook wrote, for an error message: its own one-line error is among them. */
function lastWords(lines: readonly string[]): string {
  const said = lines.filter((line) => line.trim() !== '').slice(-5)
  return said.length === 0 ? '' : `; it said:\n${said.join('\n')}`
}
