/**
 * Runs in each test worker before its file (vitest `setupFiles`): keeps `<BROOK_TEST_WORKERS>/<pid>` saying which
 * file this process runs, since when, and which test it is in, for the watchdog in vitest's main process
 * (./global.ts), with its resident memory then, and whether the file's hooks started (a file whose tests are all
 * skipped runs none, neither the afterAll that removes the entry). The entry goes when the file's last hook has run.
 * It also starts the worker's stall thread (./stall.ts), which says where the main thread is stuck when its event loop
 * stops turning. Nothing is written, and no thread started, without the watchdog.
 */
import { afterAll, beforeAll, beforeEach, expect } from 'vitest'
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { WorkerEntry } from './global.js'
import { watchForStalls } from './stall.js'

const dir = process.env.BROOK_TEST_WORKERS
const file = expect.getState().testPath

if (dir && file) {
  watchForStalls(dir)
  const entry = join(dir, String(process.pid))
  const startedAt = Date.now()
  let started = false
  const write = (test: string | null): void =>
    writeFileSync(entry, JSON.stringify({ file, startedAt, started, test, rssBytes: process.memoryUsage.rss() } satisfies WorkerEntry))
  write(null)
  beforeAll(() => {
    started = true
    write(null)
  })
  beforeEach((context) => write(context.task.fullName ?? context.task.name))
  afterAll(() => rmSync(entry, { force: true }))
}
