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
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** What a worker writes about itself: its file, since when (ms since the epoch), and the test it is in (null: none yet). */
export interface WorkerEntry {
  file: string
  startedAt: number
  test: string | null
}

/** The longest test file takes about 100 s on 2 cores; ten minutes is a hang. */
const FILE_LIMIT_MS = Number(process.env.BROOK_TEST_FILE_LIMIT_S ?? 600) * 1000
/**
 * The whole run takes 10-13 minutes on 2 cores. Past 40, whatever holds it (a worker that finished its file but does
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
      const files = entries(dir).map(({ pid, entry }) => `${pid}: ${entry.file}${entry.test === null ? '' : ` ("${entry.test}")`}`)
      process.stderr.write(
        [
          `\nwatchdog: the run has taken ${Math.round((Date.now() - runStartedAt) / 1000)} s, more than the ${RUN_LIMIT_MS / 1000} s it may take`,
          `watchdog: files still running: ${files.length > 0 ? files.join(', ') : 'none'}`,
          `watchdog: killing every process under vitest: ${workers.map((p) => `${p} (${commandOf(p)})`).join(', ')}`,
          '',
        ].join('\n'),
      )
      for (const p of workers.reverse()) {
        try {
          process.kill(p, 'SIGKILL')
        } catch {
          // Gone already.
        }
      }
    }
    for (const { pid, entry } of entries(dir)) {
      if (killed.has(pid) || Date.now() - entry.startedAt < FILE_LIMIT_MS) continue
      killed.add(pid)
      const tree = [pid, ...descendants(pid)]
      process.stderr.write(
        [
          `\nwatchdog: ${entry.file} has run for ${Math.round((Date.now() - entry.startedAt) / 1000)} s, more than the ${FILE_LIMIT_MS / 1000} s a test file may take`,
          `watchdog: it is in ${entry.test === null ? 'no test yet (collecting, or in a beforeAll hook)' : `the test "${entry.test}" or the hooks after it`}`,
          `watchdog: killing its worker and what it started: ${tree.map((p) => `${p} (${commandOf(p)})`).join(', ')}`,
          '',
        ].join('\n'),
      )
      for (const p of tree.reverse()) {
        try {
          process.kill(p, 'SIGKILL')
        } catch {
          // Gone already.
        }
      }
    }
  }, CHECK_EVERY_MS).unref()
  return () => {
    clearInterval(timer)
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The entries of live workers. */
function entries(dir: string): { pid: number; entry: WorkerEntry }[] {
  const found: { pid: number; entry: WorkerEntry }[] = []
  for (const name of readdirSync(dir)) {
    const pid = Number(name)
    try {
      process.kill(pid, 0)
      found.push({ pid, entry: JSON.parse(readFileSync(join(dir, name), 'utf8')) as WorkerEntry })
    } catch {
      // A worker gone (its entry is stale), or an entry being written.
    }
  }
  return found
}

/** Every process under `root`, from /proc. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      // The command in parentheses may hold spaces; the parent pid is the second field after it.
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      children.set(parent, [...(children.get(parent) ?? []), Number(name)])
    } catch {
      // Gone meanwhile.
    }
  }
  const found: number[] = []
  const queue = [root]
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child)
      queue.push(child)
    }
  }
  return found
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(0, 4).join(' ')
  } catch {
    return '?'
  }
}
