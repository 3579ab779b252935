/**
 * Where a test worker's main thread is stuck, for the watchdog (./global.ts). A worker whose event loop stops turning
 * (a synchronous loop, a promise chain that never yields) cannot say so itself, and killing it after the file limit
 * tells only which test it was in. So each worker runs a small thread beside its main thread: the main thread bumps a
 * shared counter every BEAT_MS; when the counter has not moved for the stall limit (BROOK_TEST_STALL_S, 60 s: no
 * test blocks its loop that long), the thread pauses the main thread through the inspector (`Session.connectToMainThread`,
 * a `Debugger.pause`, which V8 takes between two JavaScript instructions), writes the paused call stack to
 * `<BROOK_TEST_WORKERS>/<pid>.stall` and resumes it. A main thread that does not pause within PAUSE_WAIT_MS is blocked
 * outside JavaScript (a synchronous system call), and the file says that instead. The watchdog prints the file beside
 * its kill; a stall that ends by itself leaves the file, which the watchdog prints when the worker's file ends late or
 * its worker is gone.
 *
 * Nothing is paused, and nothing written, while the loop turns.
 */
import { Worker } from 'node:worker_threads'
import { join } from 'node:path'

const BEAT_MS = 500
const PAUSE_WAIT_MS = 5000

/** The stall report's path for worker process `pid` under the watchdog's directory. */
export function stallReportPath(dir: string, pid: number): string {
  return join(dir, `${pid}.stall`)
}

/**
 * The thread's code (CommonJS, run with `eval`: a worker thread does not go through vitest's TypeScript transform).
 * workerData: `{ beats: SharedArrayBuffer, stallMs, pauseWaitMs, report }`.
 */
const THREAD = `
const { workerData } = require('node:worker_threads')
const { Session } = require('node:inspector')
const { writeFileSync } = require('node:fs')
const beats = new Int32Array(workerData.beats)
let seen = Atomics.load(beats, 0)
let movedAt = Date.now()
let reported = false
setInterval(() => {
  const now = Atomics.load(beats, 0)
  if (now !== seen) {
    seen = now
    movedAt = Date.now()
    reported = false
    return
  }
  if (reported || Date.now() - movedAt < workerData.stallMs) return
  reported = true
  const since = new Date(movedAt).toISOString()
  const session = new Session()
  session.connectToMainThread()
  let done = false
  const finish = (lines) => {
    if (done) return
    done = true
    writeFileSync(workerData.report, [since, ...lines].join('\\n') + '\\n')
  }
  const timer = setTimeout(() => {
    finish(['(blocked outside JavaScript: it did not pause within ' + workerData.pauseWaitMs + ' ms)'])
    session.disconnect()
  }, workerData.pauseWaitMs)
  // A paused frame names its script by id; Debugger.enable announces every script, with its file name.
  const scripts = new Map()
  session.on('Debugger.scriptParsed', ({ params }) => scripts.set(params.scriptId, params.url))
  session.once('Debugger.paused', ({ params }) => {
    clearTimeout(timer)
    finish(params.callFrames.slice(0, 30).map((frame) =>
      (frame.functionName || '(anonymous)') + ' ' + (frame.url || scripts.get(frame.location.scriptId) || '?') + ':' +
        (frame.location.lineNumber + 1) + ':' + (frame.location.columnNumber + 1)))
    session.post('Debugger.resume', () => session.disconnect())
  })
  session.post('Debugger.enable', () => session.post('Debugger.pause'))
}, 1000)
`

/**
 * Starts the stall thread for this worker process (once; later calls do nothing), writing its report for the
 * watchdog's directory `dir`. The thread and the beat are unref'd: they never keep a worker alive.
 */
export function watchForStalls(dir: string): void {
  const marker = Symbol.for('brook.test.stallWatch')
  const holder = globalThis as Record<symbol, unknown>
  if (holder[marker] !== undefined) return
  holder[marker] = true
  const beats = new Int32Array(new SharedArrayBuffer(4))
  setInterval(() => Atomics.add(beats, 0, 1), BEAT_MS).unref()
  const stallMs = Number(process.env.BROOK_TEST_STALL_S ?? 60) * 1000
  const thread = new Worker(THREAD, {
    eval: true,
    workerData: { beats: beats.buffer, stallMs, pauseWaitMs: PAUSE_WAIT_MS, report: stallReportPath(dir, process.pid) },
  })
  // A report that cannot be made (the watchdog's directory gone at the run's end) must not fail the file it watches.
  thread.on('error', () => undefined)
  thread.unref()
}
