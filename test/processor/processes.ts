/**
 * Processor instances as child processes (pipeline-process.mjs on dist/), for tests that kill them with SIGKILL,
 * plus what the exactly-once tests need to know about the broker.
 */
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import type { IotPipelineOptions, Metrics, RunOptions, TaskStatus } from '../../processor/index.js'
import { waitFor } from '../helpers/wait.js'
import { killedAtFileEnd } from '../helpers/file-end.js'

const SCRIPT = resolve(import.meta.dirname, 'pipeline-process.mjs')
const running = killedAtFileEnd()

export interface ProcessorProcess {
  readonly metrics: (Metrics & { tasks: TaskStatus[] }) | null
  readonly guarantee: string | null
  readonly restored: { task: string; records: number; ms: number }[]
  output(): string
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>
  /** SIGTERM (a clean stop: final commit, leave the group). */
  stop(): Promise<void>
}

export function startProcessor(pipeline: IotPipelineOptions, run: Omit<RunOptions, 'log' | 'print'>): ProcessorProcess {
  const child = spawn(process.execPath, [SCRIPT, JSON.stringify({ pipeline, run })], { stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  const exited = new Promise<void>((done) => child.once('exit', () => {
    running.delete(child)
    done()
  }))
  const state = { metrics: null as ProcessorProcess['metrics'], guarantee: null as string | null, restored: [] as ProcessorProcess['restored'], log: '' }
  let pending = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString()
    const lines = pending.split('\n')
    pending = lines.pop()!
    for (const line of lines) {
      const event = JSON.parse(line) as { event: string } & Record<string, unknown>
      if (event.event === 'metrics') state.metrics = event as unknown as ProcessorProcess['metrics']
      else if (event.event === 'started') state.guarantee = event.guarantee as string
      else if (event.event === 'restored') state.restored.push(event as unknown as ProcessorProcess['restored'][number])
      state.log += `${line}\n`
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => (state.log += chunk.toString()))
  return {
    get metrics() {
      return state.metrics
    },
    get guarantee() {
      return state.guarantee
    },
    restored: state.restored,
    output: () => state.log,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}

/** Waits until the instance runs every task it was given (none restoring) and has at least `tasks` of them. */
export async function untilRunning(instance: ProcessorProcess, tasks = 1): Promise<void> {
  await waitFor(`a processor running ${tasks} task(s)\n${instance.output().slice(-2000)}`, () => {
    const m = instance.metrics
    return m !== null && m.tasks.length >= tasks && m.tasks.every((t) => t.state === 'running')
  })
}
