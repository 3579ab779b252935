/**
 * The cluster `brook demo` runs on: the `brook` program itself in a child process, so that the broker has a core of
 * its own and is stopped the way a user stops it (SIGTERM, a clean shutdown). The child gets a process group of its
 * own: Ctrl-C in the terminal reaches the demo only, which stops the pipeline and the simulator before the broker.
 * Being in another group, it would outlive a demo killed with kill -9, so it also gets an IPC channel to the demo:
 * `brook start` stops cleanly when that channel closes, which the kernel does whenever the demo ends.
 *
 * Its address comes from the `listening on host:port` line every Brook node logs when it is ready.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The built `brook` program (this file's neighbour in dist/cli/). */
export const BROOK_PROGRAM = fileURLToPath(new URL('./brook.js', import.meta.url))

export interface ClusterOptions {
  /** Port of the (first) node; 0 takes any free port. */
  port: number
  /** Where the cluster keeps its data: `<dataDir>/node-<id>`. */
  dataDir: string
}

/**
 * The command that starts the cluster: one node. When `brook dev` starts a three-node cluster, this is the one line
 * to change (to `['dev', ...]` with its flags); the rest only needs a node's `listening on` line.
 */
const clusterArgs = (o: ClusterOptions): string[] => ['start', '--port', String(o.port), '--data-dir', join(o.dataDir, 'node-1')]

export interface DemoCluster {
  /** `host:port` of the node(s) that announced themselves, for kafkajs. */
  readonly bootstrapServers: string[]
  readonly pid: number
  /** Resolves with the exit code (or signal) when the process is gone. */
  readonly exited: Promise<string>
  /** SIGTERM, then waits for a clean exit. */
  stop(): Promise<void>
  /** SIGKILL, for a demo that is itself being killed. */
  kill(): void
}

const LISTENING = /listening on (\S+):(\d+)/
/** A node's log line without its timestamp: `INFO [node 1] created topic 'readings'`. */
const TIMESTAMP = /^\S+Z (?=[A-Z]+ )/

/**
 * Starts the cluster and resolves once a node listens. Every line the cluster logs goes to `onLog`. Rejects with the
 * cluster's own last line when it exits before listening (a port in use, a data directory it cannot open).
 */
export function startDemoCluster(options: ClusterOptions, onLog: (line: string) => void): Promise<DemoCluster> {
  const child = spawn(process.execPath, [BROOK_PROGRAM, ...clusterArgs(options)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true })
  const bootstrapServers: string[] = []
  const lastLines: string[] = []
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
        // The node's own one-line errors start `brook: `, which the demo's message adds again.
        const line = raw.replace(TIMESTAMP, '').replace(/^brook: /, '')
        if (line.trim() === '') continue
        lastLines.push(line)
        if (lastLines.length > 5) lastLines.shift()
        onLog(line)
        const listening = LISTENING.exec(line)
        if (listening) {
          bootstrapServers.push(`${listening[1]}:${listening[2]}`)
          resolve(cluster)
        }
      }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('error', reject)
    void exited.then((how) => reject(new Error(`the broker exited (${how}) before listening: ${lastLines.at(-1) ?? 'no output'}`)))
  })
}
