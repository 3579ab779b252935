/**
 * A watchdog over the test workers (vitest `globalSetup`, in vitest's main process). A test's own timeout cannot fire
 * while its worker's event loop is blocked (a synchronous loop, a synchronous child process that never returns, a
 * promise chain that never yields), and then the whole run waits for that worker forever. The watchdog notices a
 * file that has run longer than FILE_LIMIT_MS, prints the file, the test it is in and the worker's processes, then
 * kills the worker and every process under it (broker nodes its tests started), so the run goes on and ends failed,
 * naming the file, instead of hanging.
 *
 * Workers say what they run through ./worker.ts (a `setupFiles` entry), in the directory made here and passed down
 * as BROOK_TEST_WORKERS. BROOK_TEST_FILE_LIMIT_S overrides the limit (its own test uses a short one).
 *
 * The whole run is bounded too (RUN_LIMIT_MS, BROOK_TEST_RUN_LIMIT_S): past it, the files still running are named and
 * every process under vitest is killed, whatever holds the run.
 *
 * A worker that is gone before its file ended (vitest then says only "Worker exited unexpectedly") is named too, with
 * its test, its last resident memory, and what the kernel logged about its pid (a segfault, an OOM kill). Vitest turns
 * a `process.exit` in a worker into a failed test, so such a worker was killed by a signal or crashed in native code.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { descendants } from '../helpers/processes.js'
import { stallReportPath } from './stall.js'

/**
 * What a worker writes about itself: its file, since when (ms since the epoch), the test it is in (null: none yet), and
 * its resident memory when it last wrote (bytes).
 */
export interface WorkerEntry {
  file: string
  startedAt: number
  test: string | null
  rssBytes: number
  /** The file's hooks started running (false: collecting, or every test skipped, when no hook runs). */
  started: boolean
}

/** The longest test file takes about 100 s on 2 cores; ten minutes is a hang. */
const FILE_LIMIT_MS = Number(process.env.BROOK_TEST_FILE_LIMIT_S ?? 600) * 1000
/**
 * The whole run takes 13-15 minutes on 2 cores. Past 40, whatever holds it (a worker that finished its file but does
 * not exit, say) is named and every worker is killed.
 */
const RUN_LIMIT_MS = Number(process.env.BROOK_TEST_RUN_LIMIT_S ?? 2400) * 1000
const CHECK_EVERY_MS = Math.min(10_000, FILE_LIMIT_MS / 4, RUN_LIMIT_MS / 4)

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'brook-test-workers-'))
  process.env.BROOK_TEST_WORKERS = dir
  const killed = new Set<number>()
  const runStartedAt = Date.now()
  let runReported = false
  const timer = setInterval(() => {
    if (!runReported && Date.now() - runStartedAt >= RUN_LIMIT_MS) {
      runReported = true
      const workers = descendants(process.pid).filter((pid) => !killed.has(pid))
      for (const pid of workers) killed.add(pid)
      const files = entries(dir).map(({ pid, entry }) => `${pid}: ${entry.file}${entry.test === null ? '' : ` ("${entry.test}")`}`)
      stop(workers, [
        `the run has taken ${Math.round((Date.now() - runStartedAt) / 1000)} s, more than the ${RUN_LIMIT_MS / 1000} s it may take`,
        `files still running: ${files.length > 0 ? files.join(', ') : 'none'}`,
        'killing every process under vitest',
      ])
    }
    reportGone(dir, killed)
    for (const { pid, entry } of entries(dir)) {
      const stall = stallLines(dir, pid)
      if (stall.length > 0) {
        const where = entry.test === null ? 'no test yet' : `the test "${entry.test}" or the hooks after it`
        process.stderr.write(`\n${[`the worker ${pid} running ${entry.file} is stuck, in ${where}`, ...stall].map((line) => `watchdog: ${line}`).join('\n')}\n`)
      }
      if (killed.has(pid) || Date.now() - entry.startedAt < FILE_LIMIT_MS) continue
      killed.add(pid)
      stop([pid, ...descendants(pid)], [
        `${entry.file} has run for ${Math.round((Date.now() - entry.startedAt) / 1000)} s, more than the ${FILE_LIMIT_MS / 1000} s a test file may take`,
        `it is in ${entry.test === null ? 'no test yet (collecting, or in a beforeAll hook)' : `the test "${entry.test}" or the hooks after it`}`,
        ...stallLines(dir, pid),
        'killing its worker and what it started',
      ])
    }
  }, CHECK_EVERY_MS).unref()
  return () => {
    clearInterval(timer)
    reportGone(dir, killed)
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Prints `lines` as the watchdog's, the last naming `processes` (pid and command), then kills them with SIGKILL,
 * children first.
 */
function stop(processes: readonly number[], lines: readonly string[]): void {
  const named = `${lines.at(-1)}: ${processes.map((p) => `${p} (${commandOf(p)})`).join(', ')}`
  process.stderr.write(`\n${[...lines.slice(0, -1), named].map((line) => `watchdog: ${line}`).join('\n')}\n`)
  for (const p of [...processes].reverse()) {
    try {
      process.kill(p, 'SIGKILL')
    } catch {
      // Gone already.
    }
  }
}

/** The entries of live workers (`live`), or of workers gone before their file ended. */
function entries(dir: string, live = true): { pid: number; entry: WorkerEntry }[] {
  const found: { pid: number; entry: WorkerEntry }[] = []
  for (const name of readdirSync(dir)) {
    if (!/^\d+$/.test(name)) continue
    const pid = Number(name)
    if (running(pid) !== live) continue
    try {
      found.push({ pid, entry: JSON.parse(readFileSync(join(dir, name), 'utf8')) as WorkerEntry })
    } catch {
      // An entry being written, or removed as its file ended.
    }
  }
  return found
}

/** Whether `pid` runs: it exists and is not a zombie. */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}

/**
 * Names each worker gone before its file ended (but those the watchdog killed, and those whose file never started
 * its hooks: a file with every test skipped ends without the afterAll that removes its entry), and removes its entry.
 */
function reportGone(dir: string, killed: ReadonlySet<number>): void {
  for (const { pid, entry } of entries(dir, false)) {
    rmSync(join(dir, String(pid)), { force: true })
    if (killed.has(pid) || !entry.started) {
      rmSync(stallReportPath(dir, pid), { force: true })
      continue
    }
    const lines = [
      `the worker ${pid} running ${entry.file} is gone before the file ended: killed by a signal (a kill, the kernel's OOM killer) or crashed in native code`,
      `it was in ${entry.test === null ? 'a beforeAll hook' : `the test "${entry.test}" or the hooks after it`}, ${Math.round(entry.rssBytes / 2 ** 20)} MiB resident when it started that`,
      ...stallLines(dir, pid),
      ...kernelLines(pid).map((line) => `the kernel logged: ${line}`),
    ]
    process.stderr.write(`\n${lines.map((line) => `watchdog: ${line}`).join('\n')}\n`)
  }
}

/**
 * What the stall thread of worker `pid` (./stall.ts) saw: since when its event loop has not turned, and the call
 * stack its main thread was paused in (or that it was blocked outside JavaScript). Nothing when it never stalled.
 * The report is removed once read.
 */
function stallLines(dir: string, pid: number): string[] {
  const path = stallReportPath(dir, pid)
  let report: string
  try {
    report = readFileSync(path, 'utf8')
  } catch {
    return []
  }
  rmSync(path, { force: true })
  const [since, ...frames] = report.trimEnd().split('\n')
  return [`its event loop has not turned since ${since}; its main thread was in:`, ...frames.map((frame) => `    ${frame}`)]
}

/** What the kernel logged about `pid` (a segfault, an OOM kill), where dmesg may be read. */
function kernelLines(pid: number): string[] {
  try {
    const log = execFileSync('dmesg', [], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 })
    return log.split('\n').filter((line) => new RegExp(`\\b${pid}\\b`).test(line)).slice(-5)
  } catch {
    return []
  }
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(0, 4).join(' ')
  } catch {
    return '?'
  }
}
