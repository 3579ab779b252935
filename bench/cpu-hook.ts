/**
 * Records the CPU time of every Node process of a test run, for `cpu-report.js`: loaded into each process with
 *
 *   NODE_OPTIONS="--import $PWD/dist/bench/cpu-hook.js" BROOK_CPU_LOG=/tmp/cpu.jsonl npx vitest run
 *
 * Each process appends JSON lines to BROOK_CPU_LOG: its pid, parent, command line, the test file it belongs to, and
 * `process.cpuUsage()` (user and system seconds, every thread) at exit and every 3 s (every second in a vitest
 * worker), so a process killed with SIGKILL loses at most its last interval. A vitest worker records the file it runs
 * (vitest's `__vitest_worker__.filepath`) and hands it on to the processes it starts through their environment
 * (BROOK_CPU_FILE), which is how a broker or a `brook` command is attributed to the file that started it even when
 * workers run file after file. Without BROOK_CPU_LOG it does nothing.
 */
import { appendFileSync } from 'node:fs'

/** One line of the log. `kind`: `snap` (periodic), `switch` (a worker moved to another file), `exit`. */
export interface CpuSample {
  kind: 'snap' | 'switch' | 'exit'
  pid: number
  ppid: number
  /** The command line after `node`, relative to the working directory, cut at 300 characters. */
  argv: string
  /** The test file (below test/) the process belongs to; '' when none. */
  file: string
  /** CPU seconds since the process started, user and system, every thread. */
  user: number
  sys: number
  /** The wall clock, ms since the epoch. */
  at: number
}

const log = process.env.BROOK_CPU_LOG
if (log !== undefined && log !== '') record(log)

function record(path: string): void {
  const cwd = `${process.cwd()}/`
  const argv = process.argv.slice(1).map((word) => (word.startsWith(cwd) ? word.slice(cwd.length) : word)).join(' ').slice(0, 300)
  const isWorker = /vitest\/dist\/workers\//.test(argv)
  const testFile = (): string => ((globalThis as { __vitest_worker__?: { filepath?: string } }).__vitest_worker__?.filepath ?? '').replace(/.*\/test\//, '')
  const inherited = process.env.BROOK_CPU_FILE ?? ''
  const write = (kind: CpuSample['kind']): void => {
    const usage = process.cpuUsage()
    const sample: CpuSample = {
      kind,
      pid: process.pid,
      ppid: process.ppid,
      argv,
      file: isWorker ? testFile() : inherited,
      user: usage.user / 1e6,
      sys: usage.system / 1e6,
      at: Date.now(),
    }
    try {
      appendFileSync(path, `${JSON.stringify(sample)}\n`)
    } catch {
      // A log that cannot be written loses samples, never the process.
    }
  }
  if (isWorker) {
    let current = ''
    setInterval(() => {
      const file = testFile()
      process.env.BROOK_CPU_FILE = file
      if (file !== current) {
        write('switch')
        current = file
      }
    }, 10).unref()
  }
  setInterval(() => write('snap'), isWorker ? 1000 : 3000).unref()
  process.on('exit', () => write('exit'))
  // vitest ends its workers with SIGTERM, whose default action runs no 'exit' listener: the last file a worker ran
  // would keep none of its CPU. Ending on it as process.exit does (as vitest's own workers do under --cpu-prof)
  // writes the sample first.
  if (isWorker) process.once('SIGTERM', () => process.exit())
}
