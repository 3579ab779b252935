/**
 * What every scenario reports: bytes and records moved over wall time, and where the CPU went meanwhile. The CPU
 * split matters on a shared 2-core machine: it tells a broker that is busy from one that is starved by the client,
 * by a worker, or by someone else's tests (`others`, everything on the machine that is not ours).
 *
 * CPU figures are in cores (CPU seconds / wall seconds), read from /proc (Linux); elsewhere they are left out.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

export const MB = 1e6

export interface Throughput {
  bytes: number
  records: number
  seconds: number
  MBps: number
  recordsPerSec: number
}

export function throughput(bytes: number, records: number, seconds: number): Throughput {
  return { bytes, records, seconds, MBps: bytes / seconds / MB, recordsPerSec: records / seconds }
}

export interface CpuUse {
  /** Cores used by each watched process (all its threads), by name. */
  processes: Record<string, number>
  /**
   * Cores used by each watched process's main thread, where its JavaScript runs; the rest is V8's helpers (GC,
   * compiler), libuv's thread pool (LevelDB reads and writes) and LevelDB's compaction thread.
   */
  mainThreads: Record<string, number>
  /** Cores used by this (the client) process. */
  client: number
  /** Cores used by everything else on the machine. */
  others: number
  machine: number
}

let clockTicks: number | undefined
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

/** Busy CPU seconds of the whole machine (all cores), from the first line of /proc/stat. */
function machineSeconds(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields
  return (user + nice + system + irq + softirq + steal) / ticksPerSecond()
}

/** User + system CPU seconds of a process, or of one of its threads (0 once it is gone). */
function processSeconds(pid: number, thread?: number): number {
  try {
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8')
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond()
  } catch {
    return 0
  }
}

/** Starts measuring CPU use; the returned function stops and reports. Null where /proc is missing. */
export function startCpuMeter(pids: Record<string, number>): (() => CpuUse) | null {
  try {
    machineSeconds()
  } catch {
    return null
  }
  const start = performance.now()
  const machine0 = machineSeconds()
  const self0 = process.cpuUsage()
  const processes0 = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processSeconds(pid)]))
  const main0 = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, processSeconds(pid, pid)]))
  return () => {
    const wall = (performance.now() - start) / 1000
    const self = process.cpuUsage(self0)
    const client = (self.user + self.system) / 1e6 / wall
    const processes = Object.fromEntries(
      Object.entries(pids).map(([name, pid]) => [name, (processSeconds(pid) - processes0[name]!) / wall]),
    )
    const mainThreads = Object.fromEntries(
      Object.entries(pids).map(([name, pid]) => [name, (processSeconds(pid, pid) - main0[name]!) / wall]),
    )
    const machine = (machineSeconds() - machine0) / wall
    // A watched process may be this one (a worker measuring itself): count it once.
    const watchedOthers = Object.entries(pids).filter(([, pid]) => pid !== process.pid)
    const ours = client + watchedOthers.reduce((sum, [name]) => sum + processes[name]!, 0)
    return { processes, mainThreads, client, others: Math.max(0, machine - ours), machine }
  }
}

/**
 * Waits until process `pid` (all its threads) uses less than `idleCores` over `windowMs`, or until `maxMs` have
 * passed; resolves to the milliseconds waited. A reopened LevelDB compacts the level-0 files the writes before it left,
 * for seconds, on its own thread: a read measured meanwhile is charged for that work in proportion to how long the
 * read lasts, so a slower reader pays more of the writes' debt. Where /proc is missing it resolves at once.
 */
export async function waitUntilIdle(pid: number, options: { idleCores?: number; windowMs?: number; maxMs?: number } = {}): Promise<number> {
  const { idleCores = 0.05, windowMs = 250, maxMs = 60_000 } = options
  const start = performance.now()
  for (;;) {
    const before = processSeconds(pid)
    await sleep(windowMs)
    const used = processSeconds(pid) - before
    if (used < (idleCores * windowMs) / 1000 || performance.now() - start >= maxMs) return performance.now() - start
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** A latency percentile (nearest rank) of sorted milliseconds. */
export function percentile(sortedMs: readonly number[], p: number): number {
  if (sortedMs.length === 0) return 0
  return sortedMs[Math.min(sortedMs.length - 1, Math.ceil((p / 100) * sortedMs.length) - 1)]!
}

/**
 * V8's used heap in bytes after two full collections (so what is still reachable, not garbage that a collection has
 * yet to find). Errors: when the process runs without `node --expose-gc`.
 */
export function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run with node --expose-gc')
  gc()
  gc()
  return process.memoryUsage().heapUsed
}
