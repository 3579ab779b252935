/**
 * A kafkajs group member running in a child process (kafkajs-member.mjs), for tests that must kill a consumer the
 * hard way. Its events arrive as JSON lines; `kill()` is SIGKILL, so the coordinator only learns of the death when the
 * member's session timeout passes.
 */
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { killedAtFileEnd } from './file-end.js'

const SCRIPT = resolve(import.meta.dirname, 'kafkajs-member.mjs')
const running = killedAtFileEnd()

export interface ChildConsumerOptions {
  brokers: string[]
  groupId: string
  topic: string
  sessionTimeout: number
  heartbeatInterval: number
  rebalanceTimeout: number
  clientId?: string
}

export interface ChildConsumer {
  /** Partitions of the latest assignment (null before the first join). */
  readonly assigned: number[] | null
  readonly messages: { partition: number; offset: string; value: string | null }[]
  output(): string
  kill(): Promise<void>
}

export function startChildConsumer(options: ChildConsumerOptions): ChildConsumer {
  const child = spawn(process.execPath, [SCRIPT, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  const exited = new Promise<void>((done) => child.once('exit', () => {
    running.delete(child)
    done()
  }))
  let pending = ''
  let log = ''
  const state: { assigned: number[] | null; messages: ChildConsumer['messages'] } = { assigned: null, messages: [] }
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString()
    log += chunk.toString()
    const lines = pending.split('\n')
    pending = lines.pop()!
    for (const line of lines) {
      const event = JSON.parse(line) as { event: string; partitions?: number[]; partition?: number; offset?: string; value?: string | null }
      if (event.event === 'assigned') state.assigned = [...event.partitions!].sort((a, b) => a - b)
      else state.messages.push({ partition: event.partition!, offset: event.offset!, value: event.value ?? null })
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()))
  return {
    get assigned() {
      return state.assigned
    },
    messages: state.messages,
    output: () => log,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
  }
}
