/**
 * Ctrl-C for the commands that run until they are stopped (`simulate`, `process`, `demo`): the first SIGINT, SIGTERM
 * or SIGHUP (its terminal closed) starts a clean stop (the command finishes its work and prints its summary); a later
 * one, while the clean stop is still under way, ends the process at once. After SIGHUP there is no terminal to write
 * to: output that fails is dropped, so the clean stop goes on.
 *
 * A signal that comes within REPEAT_WINDOW_MS of the first is the same Ctrl-C, not a second one: the terminal sends
 * SIGINT to its whole foreground process group, so under `npm start` or `npx brook` the command gets it from the
 * terminal and once more from npm, which forwards the signals it receives to its child.
 */

const REPEAT_WINDOW_MS = 1000
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

export interface StopSignalOptions {
  /** Called on the first signal: start the clean stop. */
  stop: () => void
  /** Called before the process exits on a later signal (e.g. to kill child processes that must not outlive it). */
  force?: () => void
}

/** Installs the handlers; the returned function removes them (call it once the command has stopped). */
export function onStopSignal(options: StopSignalOptions): () => void {
  let firstAtMs: number | null = null
  const handler = (signal: NodeJS.Signals): void => {
    const now = Date.now()
    if (signal === 'SIGHUP') ignoreOutputErrors()
    if (firstAtMs === null) {
      firstAtMs = now
      options.stop()
      return
    }
    if (now - firstAtMs < REPEAT_WINDOW_MS) return
    options.force?.()
    process.stderr.write(`brook: ${signal} again: exiting without a clean stop\n`)
    process.exit(130)
  }
  for (const signal of SIGNALS) process.on(signal, handler)
  return () => {
    for (const signal of SIGNALS) process.off(signal, handler)
  }
}

/**
 * How long a clean stop runs before the command says what it is waiting for (ms): a clean stop waits for the cluster
 * (the final commit of `brook process`, the batch in flight of `brook simulate`), through a leader's failover when a
 * node is down (the controller fences it after broker.session.timeout.ms, 9 s) and for as long as the client retries
 * when the cluster is gone, as Kafka Streams' close() waits for its last commit and the producer's close() for its
 * sends.
 */
const STOP_NOTICE_MS = 3000

/**
 * Writes `line` to stderr if the clean stop is still under way STOP_NOTICE_MS from now (a function is asked then for
 * the line, null for none); the returned function cancels it.
 */
export function noticeIfSlowStop(line: string | (() => string | null)): () => void {
  const timer = setTimeout(() => {
    const text = typeof line === 'string' ? line : line()
    if (text !== null) process.stderr.write(`${text}\n`)
  }, STOP_NOTICE_MS).unref()
  return () => clearTimeout(timer)
}

/**
 * Calls `ended` once when the Node program that started this one with an IPC channel (`stdio: [..., 'ipc']`) has
 * ended, however it ended (kill -9 included, which no signal would tell), and at once when it ended before this was
 * called: a channel that closed while the command's modules were loading emitted its 'disconnect' to nobody, and
 * `process.channel` is then null, but `process.send` stays defined. The channel is unreferenced, so it keeps nothing
 * running. Without a channel, nothing happens.
 */
export function onParentEnd(ended: () => void): void {
  if (typeof process.send !== 'function') return
  if (!process.connected) {
    setImmediate(ended)
    return
  }
  process.channel?.unref()
  process.once('disconnect', ended)
}

/** Output to a terminal that has gone fails (EIO, EPIPE); without a listener that failure would end the process. */
export function ignoreOutputErrors(): void {
  for (const stream of [process.stdout, process.stderr]) if (stream.listenerCount('error') === 0) stream.on('error', () => {})
}

/**
 * What `brook dev` sends each node on its IPC channel when it stops the whole cluster (cli/start.ts): stop without a
 * controlled shutdown, as Kafka's `controlled.shutdown.enable=false`, since no node will be left to take leaderships.
 */
export const STOP_WITH_CLUSTER = 'brook:stop-with-cluster'

/**
 * What `brook start` sends on its IPC channel once it listens, and `brook dev` once its cluster is up, whatever
 * `--log-level` hides: where clients reach it (`host:port`, comma-separated for a cluster) and its cluster id.
 * brook/testing's startBrook waits for it.
 */
export interface ReadyMessage {
  readonly type: 'brook:ready'
  readonly bootstrapServers: string
  readonly clusterId: string
}

/** Sends `message` to the program that started this one with an IPC channel, if it is still there. */
export function tellParent(message: ReadyMessage): void {
  if (typeof process.send === 'function' && process.connected) process.send(message, undefined, {}, () => {})
}

/** How long a command that is done may take to end by itself (output flushed, sockets closed) before it is ended. */
const END_AFTER_MS = 2000

/**
 * Ends the process END_AFTER_MS from now with `code` (default: process.exitCode, else 0), unless it has ended by
 * itself before: a command that is done must not be kept alive by kafkajs clients still retrying a cluster that went
 * away.
 */
export function endSoon(code?: number): void {
  setTimeout(() => process.exit(code ?? process.exitCode ?? 0), END_AFTER_MS).unref()
}
