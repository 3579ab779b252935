/**
 * `brook demo` (what `npm start` runs) as a process: it starts its broker, the simulator and the iot pipeline, shows
 * windows and alerts as they come (one line per second when stdout is not a terminal), and on SIGINT stops
 * everything, leaving no process behind.
 */
import { afterAll, expect, it } from 'vitest'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnBrook, until } from './run-brook.js'

const dataDir = mkdtempSync(join(tmpdir(), 'brook-demo-'))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

/** The live descendants of a process (Linux: the parent pid is the fourth field of /proc/<pid>/stat). */
function descendants(root: number): number[] {
  const parents = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // The command name (second field) is in parentheses and may hold spaces: the fields after it are plain.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      parents.set(Number(entry), ppid)
    } catch {
      // The process ended while the list was read.
    }
  }
  const found: number[] = []
  const visit = (pid: number): void => {
    for (const [child, parent] of parents) {
      if (parent === pid) {
        found.push(child)
        visit(child)
      }
    }
  }
  visit(root)
  return found
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

it('runs a broker, the simulator and the iot pipeline, shows windows and alerts, and stops all of it on SIGINT', async () => {
  const demo = spawnBrook([
    'demo', '--port', '0', '--data-dir', dataDir, '--devices', '3', '--rate', '60',
    '--stats-window', '2s', '--average-window', '4s', '--average-advance', '2s', '--grace', '0', '--threshold-above', '50',
  ])
  const pid = demo.child.pid!
  // Every pressure window (about 1013 hPa) is above 50: an alert once the first windows close.
  await until(() => /^alert device-\d+ pressure .*: max [\d.]+ above 50$/m.test(demo.stdout()) && /written: .*readings-stats-1m [1-9]/.test(demo.stdout()))
  const children = descendants(pid)
  expect(children.length).toBeGreaterThan(0)
  expect(demo.stdout()).toMatch(/simulator [\d,]+ readings\/s · pipeline in [\d,]+ readings\/s/)
  expect(demo.stdout()).toMatch(/^log .* broker: INFO \[node 1\] listening on 127\.0\.0\.1:\d+/m)

  demo.child.kill('SIGINT')
  expect(await demo.exited).toBe(0)
  const out = demo.stdout()
  expect(out).toMatch(/^pipeline brook-demo: [\d,]+ records in, [\d,]+ out \([\d,]+ windows, [\d,]+ alerts\)/m)
  expect(out).toMatch(/^simulator: [\d,]+ readings sent/m)
  expect(out).toContain(`broker: stopped; the data stays in ${dataDir} for the next run`)
  expect(demo.stderr()).toBe('')
  for (const child of children) expect(alive(child), `process ${child} left running`).toBe(false)
})
