/**
 * The cluster `brook demo` runs on: `brook dev` (N nodes of one replicated cluster, cli/dev.ts) in a child process,
 * so that the nodes have cores of their own and are stopped the way a user stops them (SIGTERM, a clean shutdown of
 * each). The child gets a process group of its own: Ctrl-C in the terminal reaches the demo only, which stops the
 * pipeline and the simulator before the cluster. Being in another group, it would outlive a demo killed with kill -9,
 * so it also gets an IPC channel to the demo: `brook dev` stops its nodes cleanly when that channel closes, which the
 * kernel does whenever the demo ends (and each node, on its own channel to `brook dev`, when `brook dev` ends).
 *
 * Its addresses come from the `bootstrap servers host:port,...` line `brook dev` prints once every node is a live
 * broker; every other line it and its nodes log goes to the demo's view.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/** The built `brook` program (this file's neighbour in dist/cli/). */
export const BROOK_PROGRAM = fileURLToPath(new URL('./brook.js', import.meta.url))

export interface ClusterOptions {
  /** How many nodes. */
  nodes: number
  /** Client port of node 1 (node N listens on basePort + N - 1); 0 takes ports free at the start (`brook dev --base-port 0`). */
  basePort: number
  /** Where the cluster keeps its data: `<dataDir>/cluster-id` and `<dataDir>/node-<id>`. */
  dataDir: string
}

const clusterArgs = (o: ClusterOptions): string[] => ['dev', '--nodes', String(o.nodes), '--base-port', String(o.basePort), '--data-dir', o.dataDir]

export interface DemoCluster {
  /** `host:port` of every node, for kafkajs. */
  readonly bootstrapServers: string[]
  readonly pid: number
  /** Resolves with the exit code (or signal) when the process is gone. */
  readonly exited: Promise<string>
  /** SIGTERM, then waits for a clean exit. */
  stop(): Promise<void>
  /** SIGKILL, for a demo that is itself being killed. */
  kill(): void
}

const READY = /^brook dev: .*bootstrap servers (\S+)$/
/** `brook dev`'s own lines, beside those of its nodes. */
const DEV_LINE = /^brook dev: /
/** A node's error, as its log writes it. */
const ERROR_LINE = /^ERROR /
/** A node's log line without its timestamp: `INFO [node 1] created topic 'readings'`. */
const TIMESTAMP = /^\S+Z (?=[A-Z]+ )/

/**
 * Starts the cluster and resolves once it is up. Every line the cluster logs goes to `onLog`. Rejects, when the
 * cluster exits before it is up, with the last error it logged (a node's port in use, its data directory unusable),
 * or else `brook dev`'s own last line.
 */
export function startDemoCluster(options: ClusterOptions, onLog: (line: string) => void): Promise<DemoCluster> {
  const child = spawn(process.execPath, [BROOK_PROGRAM, ...clusterArgs(options)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true })
  const bootstrapServers: string[] = []
  let lastError: string | null = null
  let lastDevLine: string | null = null
  // Should the demo end without stopping the cluster (an error that escapes it), the cluster ends with it.
  const killOnExit = (): void => void child.kill('SIGKILL')
  process.on('exit', killOnExit)
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => {
      process.off('exit', killOnExit)
      resolve(signal ?? `code ${code}`)
    }),
  )
  return new Promise((resolve, reject) => {
    const cluster: DemoCluster = {
      bootstrapServers,
      pid: child.pid!,
      exited,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
        await exited
      },
      kill() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      },
    }
    let pending = ''
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString()
      const lines = pending.split('\n')
      pending = lines.pop()!
      for (const raw of lines) {
        // One-line errors (a node's that cannot start, or `brook dev`'s) start `brook: `, which the demo's message adds again.
        const stamped = raw.replace(TIMESTAMP, '')
        const line = stamped.replace(/^brook: /, '')
        if (line.trim() === '') continue
        if (line !== stamped || ERROR_LINE.test(line)) lastError = line
        else if (DEV_LINE.test(line)) lastDevLine = line
        onLog(line)
        const ready = READY.exec(line)
        if (ready && bootstrapServers.length === 0) {
          bootstrapServers.push(...ready[1]!.split(','))
          resolve(cluster)
        }
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('error', reject)
    void exited.then((how) => reject(new Error(`the cluster exited (${how}) before it was up: ${lastError ?? lastDevLine ?? 'no output'}`)))
  })
}
