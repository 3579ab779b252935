/**
 * A long-running `kcat -G` (librdkafka's balanced consumer) as a child process: its records arrive on stdout as
 * `partition offset value` lines (-u: unbuffered, or a pipe would hold them until exit), its rebalances on stderr ("% Group g rebalanced (memberid ...): assigned: t [0],
 * t [1]"). `stop()` sends SIGTERM, on which kcat closes its consumer: a final commit and a LeaveGroup (none for a
 * static member, KIP-345); `kill()` is a crash.
 */
import { spawn } from 'node:child_process'
import { KCAT } from './kcat.js'
import { killedAtFileEnd } from './file-end.js'

const running = killedAtFileEnd()

export interface KcatGroupMember {
  readonly records: { partition: number; offset: bigint; value: string }[]
  /** Partitions of the latest "assigned:" line (empty after a revoke, null before any). */
  readonly assigned: number[] | null
  stderr(): string
  /** The member id of the latest rebalance kcat reported (null before any). */
  readonly memberId: string | null
  /** How many rebalances ("assigned" or "revoked") kcat has reported. */
  rebalances(): number
  stop(): Promise<number | null>
  /** SIGKILL: no final commit, no LeaveGroup. */
  kill(): Promise<void>
}

export function startKcatGroupMember(options: { broker: string; groupId: string; topics: string[]; config?: Record<string, string> }): KcatGroupMember {
  const config = {
    'auto.offset.reset': 'earliest',
    'session.timeout.ms': '6000',
    'heartbeat.interval.ms': '300',
    'auto.commit.interval.ms': '200',
    ...options.config,
  }
  const args = ['-b', options.broker, '-G', options.groupId, '-u', '-f', '%p %o %s\\n', ...Object.entries(config).flatMap(([k, v]) => ['-X', `${k}=${v}`]), ...options.topics]
  const child = spawn(KCAT, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    running.delete(child)
    resolve(code)
  }))
  const state: { records: KcatGroupMember['records'] } = { records: [] }
  let pending = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString()
    const lines = pending.split('\n')
    pending = lines.pop()!
    for (const line of lines) {
      const [partition, offset, ...value] = line.split(' ')
      state.records.push({ partition: Number(partition), offset: BigInt(offset!), value: value.join(' ') })
    }
  })
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  return {
    records: state.records,
    get assigned() {
      let assigned: number[] | null = null
      for (const match of stderr.matchAll(/rebalanced \(memberid [^)]*\): (assigned|revoked): (.*)\n/g)) {
        assigned = match[1] === 'assigned' ? [...match[2]!.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1])).sort((a, b) => a - b) : []
      }
      return assigned
    },
    stderr: () => stderr,
    get memberId() {
      return [...stderr.matchAll(/rebalanced \(memberid ([^)]*)\)/g)].at(-1)?.[1] ?? null
    },
    rebalances: () => [...stderr.matchAll(/rebalanced \(memberid [^)]*\): (assigned|revoked)/g)].length,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      return exited
    },
  }
}
