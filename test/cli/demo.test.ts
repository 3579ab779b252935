/**
 * `brook demo` (what `npm start` runs) as a process: it starts its broker, the simulator and the iot pipeline, shows
 * windows and alerts as they come (one line per second when stdout is not a terminal), and on SIGINT stops
 * everything, leaving no process behind — also under npm, where Ctrl-C reaches it twice (from the terminal and from
 * npm), and when it is killed with kill -9. Its summary's late figure is what its pipeline wrote to readings-late.
 */
import { afterAll, expect, it } from 'vitest'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { spawn } from 'node:child_process'
import { join, resolve } from 'node:path'
import kafkajs from 'kafkajs'
import { startBroker } from '../helpers/broker.js'
import { settled } from '../processor/helpers.js'
import { brook, expectOneLineError, spawnBrook, until } from './run-brook.js'

const { Kafka, logLevel } = kafkajs

const REPO = resolve(import.meta.dirname, '../..')
const root = mkdtempSync(join(tmpdir(), 'brook-demo-'))
/** Children of a demo killed with -9, killed here should the test fail to see them go. */
const orphans: number[] = []
afterAll(() => {
  for (const pid of orphans.filter(alive)) process.kill(pid, 'SIGKILL')
  rmSync(root, { recursive: true, force: true })
})

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

/** The demo's flags for a quick run: small windows, and a threshold every pressure window (about 1013 hPa) is above. */
const QUICK = ['--port', '0', '--devices', '3', '--rate', '60', '--stats-window', '2s', '--average-window', '4s', '--average-advance', '2s', '--grace', '0', '--threshold-above', '50']

/** Once the first windows have closed: a stats window written, and an alert printed. */
const showsWindowsAndAlerts = (stdout: string): boolean =>
  /^alert device-\d+ pressure .*: max [\d.]+ above 50$/m.test(stdout) && /written: .*readings-stats-1m [1-9]/.test(stdout)

/** What the demo prints when it has stopped everything. */
function expectStoppedCleanly(stdout: string, dataDir: string): void {
  expect(stdout).toMatch(/^pipeline brook-demo: [\d,]+ records in, [\d,]+ out \([\d,]+ windows?, [\d,]+ alerts?\)/m)
  expect(stdout).toMatch(/^simulator: [\d,]+ readings sent/m)
  expect(stdout).toContain(`broker: stopped; the data stays in ${dataDir} for the next run`)
}

it('runs a broker, the simulator and the iot pipeline, shows windows and alerts, and stops all of it on SIGINT', async () => {
  const dataDir = join(root, 'demo')
  const demo = spawnBrook(['demo', ...QUICK, '--data-dir', dataDir])
  await until(() => showsWindowsAndAlerts(demo.stdout()))
  const children = descendants(demo.child.pid!)
  expect(children.length).toBeGreaterThan(0)
  expect(demo.stdout()).toMatch(/simulator [\d,]+ readings\/s · pipeline in [\d,]+ readings\/s/)
  expect(demo.stdout()).toMatch(/^log .* broker: INFO \[node 1\] listening on 127\.0\.0\.1:\d+/m)

  demo.child.kill('SIGINT')
  expect(await demo.exited).toBe(0)
  expectStoppedCleanly(demo.stdout(), dataDir)
  expect(demo.stderr()).toBe('')
  for (const child of children) expect(alive(child), `process ${child} left running`).toBe(false)
})

it('killed with kill -9, leaves no broker behind: the broker sees its channel to the demo close and stops cleanly', async () => {
  const dataDir = join(root, 'killed')
  const demo = spawnBrook(['demo', ...QUICK, '--data-dir', dataDir])
  await until(() => /listening on 127\.0\.0\.1:\d+/.test(demo.stdout()))
  const children = descendants(demo.child.pid!)
  expect(children.length).toBeGreaterThan(0)
  orphans.push(...children)
  demo.child.kill('SIGKILL')
  await demo.exited
  // Polled: the test fails by its timeout if a child stays.
  await until(() => children.every((pid) => !alive(pid)))
  // It stopped as on SIGTERM: its data opens again.
  const broker = await startBroker({ dataDir: join(dataDir, 'node-1') })
  await broker.stop()
  expect(broker.output()).not.toMatch(/ERROR/)
})

it('says in its summary how many readings were late: exactly the records its pipeline committed to readings-late', async () => {
  const dataDir = join(root, 'late')
  // Out-of-order readings (held back up to 30 s) are late for 2 s windows without grace; with the default lateness of
  // 2 minutes the fleet labels none of them late in a run this short.
  const demo = spawnBrook(['demo', ...QUICK, '--out-of-order-fraction', '0.2', '--data-dir', dataDir])
  await until(() => /written: .*readings-late [1-9]/.test(demo.stdout()))
  demo.child.kill('SIGINT')
  expect(await demo.exited).toBe(0)
  const summary = /^pipeline brook-demo: .* ([\d,]+) late \(in readings-late\), /m.exec(demo.stdout())
  expect(summary, demo.stdout().split('\n').slice(-4).join('\n')).not.toBeNull()
  const late = Number(summary![1]!.replace(/,/g, ''))
  expect(late).toBeGreaterThan(0)
  // The simulator's line gives no other figure of late readings.
  expect(/^simulator: .*$/m.exec(demo.stdout())![0]).not.toContain('late')

  // What the pipeline committed to readings-late, read back with kafkajs from a broker on the demo's data.
  const broker = await startBroker({ dataDir: join(dataDir, 'node-1') })
  const kafka = new Kafka({ brokers: [broker.address], logLevel: logLevel.NOTHING })
  try {
    expect((await settled(kafka, 'readings-late', late)).length).toBe(late)
  } finally {
    await broker.stop()
  }
})

it('is what npm start runs; Ctrl-C in its terminal (SIGINT to the whole process group, and npm passing it on) stops all of it once', async () => {
  const dataDir = join(root, 'npm-start')
  // A process group of its own, as a terminal gives its foreground job.
  const npm = spawn('npm', ['start', '--', ...QUICK, '--data-dir', dataDir], { cwd: REPO, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  npm.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  npm.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<string>((done) => npm.once('close', (code, signal) => done(signal ?? `code ${code}`)))
  try {
    await until(() => showsWindowsAndAlerts(stdout))
    const children = descendants(npm.pid!)
    expect(children.length).toBeGreaterThan(2) // sh, the demo, its broker
    process.kill(-npm.pid!, 'SIGINT')
    // npm passes the signal on, waits for its script, then ends by the same signal, as a shell expects of it.
    expect(await exited).toBe('SIGINT')
    expectStoppedCleanly(stdout, dataDir)
    expect(stderr).not.toContain('brook:')
    for (const child of children) expect(alive(child), `process ${child} left running`).toBe(false)
  } finally {
    if (npm.exitCode === null && npm.signalCode === null) process.kill(-npm.pid!, 'SIGKILL')
  }
})

it('refuses bad flags in one line before starting anything, and says in one line when its broker cannot start', async () => {
  const dataDir = join(root, 'refused')
  const cases: [string[], string][] = [
    [['--devices', '0'], '--devices must be a whole number from 1'],
    [['--port', '70000'], '--port must be between 0 and 65535'],
    [['--grace', 'later'], "--grace: 'later' is not a duration"],
    [['--count', '5'], "unknown option '--count'"],
  ]
  const results = await Promise.all(cases.map(([args]) => brook(['demo', ...args, '--data-dir', dataDir])))
  results.forEach((result, i) => expectOneLineError(result, cases[i]![1]))
  expect(existsSync(dataDir)).toBe(false)

  // A port already taken: the broker says so and exits; so does the demo, in one line.
  const taken = createServer()
  await new Promise<void>((listening) => taken.listen(0, '127.0.0.1', listening))
  try {
    const { port } = taken.address() as AddressInfo
    expectOneLineError(await brook(['demo', '--port', String(port), '--data-dir', dataDir]), 'the broker exited (code 1) before listening')
  } finally {
    taken.close()
  }
})

it('stops cleanly on SIGHUP (its terminal closed), leaving no process behind', async () => {
  const dataDir = join(root, 'hangup')
  const demo = spawnBrook(['demo', ...QUICK, '--data-dir', dataDir])
  await until(() => /written: .*readings-stats-1m [1-9]/.test(demo.stdout()))
  const children = descendants(demo.child.pid!)
  orphans.push(...children)
  demo.child.kill('SIGHUP')
  expect(await demo.exited).toBe(0)
  expectStoppedCleanly(demo.stdout(), dataDir)
  await until(() => children.every((pid) => !alive(pid)))
})

it('says so and ends when its broker dies under it', async () => {
  const dataDir = join(root, 'broker-died')
  const demo = spawnBrook(['demo', ...QUICK, '--data-dir', dataDir])
  await until(() => /written: .*readings-stats-1m [1-9]/.test(demo.stdout()))
  const children = descendants(demo.child.pid!)
  orphans.push(...children)
  // The broker is the demo's child running `brook start`.
  const broker = children.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('start'))
  expect(broker).toBeDefined()
  process.kill(broker!, 'SIGKILL')
  expect(await demo.exited).toBe(1)
  expect(demo.stdout()).toMatch(/broker: exited \(SIGKILL\) while the demo ran/)
  expect(demo.stderr()).toMatch(/^brook: the broker exited \(SIGKILL\)$/m)
  expect(demo.stdout()).toContain(`broker: exited by itself; the data stays in ${dataDir}`)
  expect(demo.stdout()).toMatch(/^simulator: ([\d,]+ readings sent|stopped without its summary)/m)
  await until(() => children.every((pid) => !alive(pid)))
})
