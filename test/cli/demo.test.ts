/**
 * `brook demo` (what `npm start` runs) as a process: it starts a three-node cluster (`brook dev`), the simulator and
 * the iot pipeline, shows windows and alerts as they come (where the cluster is, then one line per second, when
 * stdout is not a terminal or is one of no size), goes on producing windows when a node is killed, and on SIGINT
 * stops everything, leaving no process behind and no client retrying against the stopped cluster — also under npm,
 * where Ctrl-C reaches it twice (from the terminal and from npm), and when it is killed with kill -9. Its summary's
 * late figure is what its pipeline wrote to readings-late, read back from the cluster run again on its data.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { spawn } from 'node:child_process'
import { join, resolve } from 'node:path'
import kafkajs, { type Admin } from 'kafkajs'
import { BROOK_CLI } from '../helpers/broker.js'
import { killedAtFileEnd } from '../helpers/file-end.js'
import { alive, descendants, runningOf } from '../helpers/processes.js'
import { settled } from '../processor/helpers.js'
import { brook, expectOneLineError, spawnBrook, until } from './run-brook.js'

const { Kafka, logLevel } = kafkajs

const REPO = resolve(import.meta.dirname, '../..')
const root = mkdtempSync(join(tmpdir(), 'brook-demo-'))
/** Children of a demo killed with -9, killed here should the test fail to see them go. */
const orphans: number[] = []
/** script(1) processes a failed test left running; killing one hangs up its terminal, which stops the demo in it. */
const terminals = killedAtFileEnd()
afterAll(() => {
  for (const pid of orphans.filter(alive)) process.kill(pid, 'SIGKILL')
  rmSync(root, { recursive: true, force: true })
})

/** The demo's flags for a quick run: free ports, small windows, and a threshold every pressure window (about 1013 hPa) is above. */
const QUICK = ['--base-port', '0', '--devices', '3', '--rate', '60', '--stats-window', '2s', '--average-window', '4s', '--average-advance', '2s', '--grace', '0', '--threshold-above', '50']

/**
 * The same on one node, for the tests of the demo's own handling of its processes and summary: what they check does
 * not depend on the cluster's size, and three nodes cost each of them about half a minute more on two cores.
 */
const QUICK_ONE_NODE = [...QUICK, '--nodes', '1']

/** Once the first windows have closed: a stats window written, and an alert printed. */
const showsWindowsAndAlerts = (stdout: string): boolean =>
  /^alert device-\d+ pressure .*: max [\d.]+ above 50$/m.test(stdout) && /written: .*readings-stats-1m [1-9]/.test(stdout)

/** What the demo prints when it has stopped everything. */
function expectStoppedCleanly(stdout: string, dataDir: string): void {
  expect(stdout).toMatch(/^pipeline brook-demo: [\d,]+ records in, [\d,]+ out \([\d,]+ windows?, [\d,]+ alerts?\)/m)
  expect(stdout).toMatch(/^simulator: [\d,]+ readings sent/m)
  expect(stdout).toContain(`cluster: stopped; the data stays in ${dataDir} for the next run`)
}

/** The demo's cluster is up: `brook dev`'s line, as the view logs it. */
const clusterUp = (stdout: string): RegExpExecArray | null => /cluster: brook dev: \d+ nodes? up .*; bootstrap servers (\S+)$/m.exec(stdout)

/** The view's title, printed once the demo runs when the view is plain lines: where the cluster is and how to watch it. */
const watchLine = (stdout: string): RegExpExecArray | null => /^Watch from another terminal: brook consume readings-alerts --bootstrap-server (\S+) /m.exec(stdout)

/** The pids of the cluster's nodes among `processes` (`brook start` children of `brook dev`), by node id. */
function nodePids(processes: number[]): Map<number, number> {
  const nodes = new Map<number, number>()
  for (const pid of processes) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      const at = args.indexOf('--node-id')
      if (args.includes('start') && at >= 0) nodes.set(Number(args[at + 1]), pid)
    } catch {
      // Gone meanwhile.
    }
  }
  return nodes
}

/** The pid of the demo's `brook dev` among `processes`. */
function devPid(processes: number[]): number | undefined {
  return processes.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('dev'))
}

/**
 * Runs `brook dev` of `nodes` nodes again on a demo's data directory (free ports), hands its bootstrap servers to `use`, then stops it
 * and returns what its nodes logged.
 */
async function withClusterOn<T>(dataDir: string, nodes: number, use: (brokers: string[]) => Promise<T>): Promise<{ result: T; log: string }> {
  const dev = spawnBrook(['dev', '--nodes', String(nodes), '--base-port', '0', '--data-dir', dataDir])
  try {
    await until(() => /bootstrap servers \S+/.test(dev.stdout()) || dev.child.exitCode !== null, `brook dev to start again on ${dataDir}`, { context: () => dev.stderr().slice(-3000) })
    const servers = /bootstrap servers (\S+)/.exec(dev.stdout())
    if (!servers) throw new Error(`brook dev did not start on ${dataDir}: ${dev.stderr().slice(-2000)}`)
    const result = await use(servers[1]!.split(','))
    dev.child.kill('SIGINT')
    await until(() => dev.child.exitCode !== null || dev.child.signalCode !== null, 'brook dev to stop on SIGINT', { context: () => dev.stderr().slice(-3000), timeoutMs: 30_000 })
    expect(await dev.exited).toBe(0)
    return { result, log: dev.stderr() }
  } finally {
    if (dev.child.exitCode === null) dev.child.kill('SIGKILL')
  }
}

/**
 * Two lanes side by side (the demos mostly wait for windows to close): the demos of three nodes one after another, and
 * those of one node one after another.
 */
describe('brook demo', () => {
  describe('of three nodes', { concurrent: true }, () => {
    it.sequential('killed with kill -9, leaves no node behind: brook dev sees its channel to the demo close and stops every node cleanly', async () => {
      const dataDir = join(root, 'killed')
      const demo = spawnBrook(['demo', ...QUICK, '--data-dir', dataDir])
      await until(() => clusterUp(demo.stdout()) !== null)
      const children = descendants(demo.child.pid!)
      expect(nodePids(children).size).toBe(3)
      orphans.push(...children)
      demo.child.kill('SIGKILL')
      await demo.exited
      // Polled: the test fails, naming them, if children stay.
      await until(() => children.every((pid) => !alive(pid)), "the killed demo's children to end", { context: () => runningOf(children) })
      // They stopped as on SIGTERM: the cluster starts again on their data.
      const { log } = await withClusterOn(dataDir, 3, async () => undefined)
      expect(log).not.toMatch(/ERROR/)
    })

    it.sequential('is what npm start runs: a three-node cluster, the simulator and the iot pipeline, windows and alerts shown; Ctrl-C in its terminal (SIGINT to the whole process group, and npm passing it on) stops all of it once', async () => {
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
        expect(children.length).toBeGreaterThan(5) // sh, the demo, brook dev, its three nodes
        expect(nodePids(children).size).toBe(3)
        expect(stdout).toMatch(/simulator [\d,]+ readings\/s · pipeline in [\d,]+ readings\/s/)
        for (const id of [1, 2, 3]) expect(stdout).toMatch(new RegExp(`^log .* cluster: INFO \\[node ${id}\\] listening on 127\\.0\\.0\\.1:\\d+`, 'm'))
        // Every topic the simulator and the pipeline created has three replicas: the cluster's default replication factor.
        const admin = new Kafka({ brokers: clusterUp(stdout)![1]!.split(','), logLevel: logLevel.NOTHING }).admin()
        await admin.connect()
        try {
          const { topics } = await admin.fetchTopicMetadata()
          const created = topics.filter((t) => !t.name.startsWith('__'))
          expect(created.map((t) => t.name).sort()).toEqual(
            ['brook-demo-dlq', 'brook-demo-readings-store-changelog', 'readings', 'readings-alerts', 'readings-avg-5m', 'readings-late', 'readings-stats-1m'],
          )
          for (const topic of created) for (const partition of topic.partitions) expect(partition.replicas, `${topic.name}-${partition.partitionId}`).toHaveLength(3)
        } finally {
          await admin.disconnect()
        }
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

    it.sequential('keeps producing windows when a node is killed with kill -9: the stats topic goes on growing on the two left', async () => {
      const dataDir = join(root, 'node-killed')
      const demo = spawnBrook(['demo', ...QUICK, '--data-dir', dataDir])
      await until(() => showsWindowsAndAlerts(demo.stdout()))
      const children = descendants(demo.child.pid!)
      orphans.push(...children)
      const brokers = clusterUp(demo.stdout())![1]!.split(',')
      /**
       * One question to the cluster through a new kafkajs admin (its first metadata is fresh: a long-lived client keeps a
       * dead leader's address until its metadata ages), without retries, bootstrapped from each node in turn (kafkajs
       * starts at the first of its list, which may be the dead one); null when every node fails it (no leader yet).
       */
      const ask = async <T>(question: (admin: Admin) => Promise<T>): Promise<T | null> => {
        for (const broker of brokers) {
          const admin = new Kafka({ brokers: [broker], logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin()
          try {
            await admin.connect()
            return await question(admin)
          } catch {
            continue
          } finally {
            await admin.disconnect().catch(() => {})
          }
        }
        return null
      }
      /** Records in readings-stats-1m: the sum of its partitions' high watermarks. */
      const statsEnd = (): Promise<number | null> => ask(async (admin) => (await admin.fetchTopicOffsets('readings-stats-1m')).reduce((sum, p) => sum + Number(p.high), 0))
      const leaders = (): Promise<number[] | null> =>
        ask(async (admin) => (await admin.fetchTopicMetadata({ topics: ['readings-stats-1m', 'readings'] })).topics.flatMap((t) => t.partitions.map((p) => p.leader)))
      /** Fails the test with the demo's last lines should it have ended. */
      const stillRunning = (): void => {
        if (demo.child.exitCode !== null) throw new Error(`the demo ended (code ${demo.child.exitCode}):\n${demo.stdout().split('\n').slice(-15).join('\n')}\n${demo.stderr()}`)
      }
      /** What the view last said the pipeline wrote to readings-stats-1m. */
      const written = (): number => Number(/written: .*readings-stats-1m ([\d,]+)/.exec(demo.stdout().split('\n').filter((l) => l.includes('written:')).at(-1)!)![1]!.replace(/,/g, ''))

      // The node that leads partition 0 of the stats topic.
      let victim: number | null = null
      await until(async () => (victim = await ask(async (admin) => (await admin.fetchTopicMetadata({ topics: ['readings-stats-1m'] })).topics[0]!.partitions.find((p) => p.partitionId === 0)!.leader)) !== null)
      process.kill(nodePids(children).get(victim!)!, 'SIGKILL')
      await until(() => new RegExp(`cluster: brook dev: node ${victim} exited \\(SIGKILL\\); 2 still running`).test(demo.stdout()))
      // Once the controller has fenced the node, the two left lead every partition, and the windows the pipeline writes
      // from then on land in the stats topic.
      await until(async () => (stillRunning(), (await leaders())?.every((leader) => leader >= 0 && leader !== victim) === true))
      const after = (await statsEnd()) ?? 0
      const writtenAfter = written()
      await until(async () => (stillRunning(), written() >= writtenAfter + 12 && ((await statsEnd()) ?? -1) >= after + 12))
      stillRunning()
      demo.child.kill('SIGINT')
      expect(await demo.exited, `${demo.stdout().split('\n').slice(-12).join('\n')}\n${demo.stderr()}`).toBe(0)
      expectStoppedCleanly(demo.stdout(), dataDir)
      await until(() => children.every((pid) => !alive(pid)), "the demo's children to end", { context: () => runningOf(children) })
    })
  })

  describe('of one node', { concurrent: true }, () => {
    it.sequential('says in its summary how many readings were late, exactly the records its pipeline committed to readings-late; once it has stopped its cluster, connects to it no more: its view asks for no lag after the stop, so no kafkajs client is left retrying', async () => {
      const dataDir = join(root, 'late')
      // Out-of-order readings (held back up to 30 s) are late for 2 s windows without grace; with the default lateness of
      // 2 minutes the fleet labels none of them late in a run this short.
      const demo = spawnBrook(['demo', ...QUICK_ONE_NODE, '--out-of-order-fraction', '0.2', '--data-dir', dataDir])
      const output = (): string => `${demo.stdout().split('\n').slice(-20).join('\n')}\n${demo.stderr().slice(-3000)}`
      await until(() => /written: .*readings-stats-1m [1-9]/.test(demo.stdout()) && /written: .*readings-late [1-9]/.test(demo.stdout()), 'stats windows and late readings written', { context: output, timeoutMs: 60_000 })
      const ports = clusterUp(demo.stdout())![1]!.split(',').map((address) => Number(address.split(':')[1]))
      demo.child.kill('SIGINT')
      await until(() => demo.stdout().includes('cluster: stopped'), "the demo's cluster stopped after SIGINT", { context: output, timeoutMs: 30_000 })
      // The nodes are gone and their ports free: a listener on each sees any connection the demo still makes, up to its exit.
      const connections: number[] = []
      const listeners = await Promise.all(
        ports.map(
          (port) =>
            new Promise<ReturnType<typeof createServer>>((listening, fail) => {
              const server = createServer((socket) => {
                connections.push(port)
                socket.destroy()
              })
              server.once('error', fail)
              server.listen(port, '127.0.0.1', () => listening(server))
            }),
        ),
      )
      try {
        await until(() => demo.child.exitCode !== null || demo.child.signalCode !== null, 'the demo to exit once its cluster stopped', { context: output, timeoutMs: 20_000 })
        expect(await demo.exited).toBe(0)
      } finally {
        for (const server of listeners) server.close()
      }
      expectStoppedCleanly(demo.stdout(), dataDir)
      expect(connections, 'connections to the stopped cluster\'s ports').toEqual([])

      const summary = /^pipeline brook-demo: .* ([\d,]+) late \(in readings-late\), /m.exec(demo.stdout())
      expect(summary, demo.stdout().split('\n').slice(-4).join('\n')).not.toBeNull()
      const late = Number(summary![1]!.replace(/,/g, ''))
      expect(late).toBeGreaterThan(0)
      // The simulator's line gives no other figure of late readings.
      expect(/^simulator: .*$/m.exec(demo.stdout())![0]).not.toContain('late')

      // What the pipeline committed to readings-late, read back with kafkajs from the cluster run again on the demo's data.
      const { result: read } = await withClusterOn(dataDir, 1, async (brokers) => (await settled(new Kafka({ brokers, logLevel: logLevel.NOTHING }), 'readings-late', late)).length)
      expect(read).toBe(late)
    })

    it.sequential('refuses bad flags in one line before starting anything, and says in one line when its cluster cannot start', async () => {
      const dataDir = join(root, 'refused')
      const cases: [string[], string][] = [
        [['--devices', '0'], '--devices must be a whole number from 1'],
        [['--base-port', '70000'], '--base-port must be between 0 and 65426'],
        [['--nodes', '0'], '--nodes must be between 1 and 9'],
        [['--grace', 'later'], "--grace: 'later' is not a duration"],
        [['--count', '5'], "unknown option '--count'"],
        [['--stats-window', '0'], '--stats-window must be more than 0 ms'],
        [['--stats-topic', 'readings'], 'topic readings is both read and written by this pipeline'],
      ]
      const results = await Promise.all(cases.map(([args]) => brook(['demo', ...args, '--data-dir', dataDir])))
      results.forEach((result, i) => expectOneLineError(result, cases[i]![1]))
      expect(existsSync(dataDir)).toBe(false)

      // Node 1's port already taken: the node says so and exits, brook dev stops the others, and the demo says so in one line.
      const taken = createServer()
      await new Promise<void>((listening) => taken.listen(0, '127.0.0.1', listening))
      try {
        const { port } = taken.address() as AddressInfo
        const result = await brook(['demo', '--base-port', String(port), '--data-dir', dataDir])
        expectOneLineError(result, 'the cluster exited (code 1) before it was up: ')
        // A node names a port of its own that is in use: node 1 the one taken here, or, when another test running
        // beside this one holds a port of node 2 or 3 (client or controller, base + 100) and that node fails first, that one.
        const named = Number(/port (\d+) on 127\.0\.0\.1 is already in use/.exec(result.stderr)?.[1])
        expect([0, 1, 2, 100, 101, 102].map((offset) => port + offset), result.stderr).toContain(named)
      } finally {
        taken.close()
      }
    })

    it.sequential('stops cleanly on SIGHUP (its terminal closed), leaving no process behind', async () => {
      const dataDir = join(root, 'hangup')
      const demo = spawnBrook(['demo', ...QUICK_ONE_NODE, '--data-dir', dataDir])
      await until(() => /written: .*readings-stats-1m [1-9]/.test(demo.stdout()))
      // On a pipe too, the view says where the cluster is (with --base-port 0, nowhere else but in a log line).
      expect(watchLine(demo.stdout())?.[1]).toBe(clusterUp(demo.stdout())![1])
      const children = descendants(demo.child.pid!)
      orphans.push(...children)
      demo.child.kill('SIGHUP')
      expect(await demo.exited).toBe(0)
      expectStoppedCleanly(demo.stdout(), dataDir)
      await until(() => children.every((pid) => !alive(pid)), "the demo's children to end", { context: () => runningOf(children) })
    })

    it.sequential('on a terminal that reports no size (0x0: script without a terminal of its own, some docker -t and CI runners), prints the plain view: where the cluster is and how to watch it, then a line per second', async () => {
      const dataDir = join(root, 'no-size')
      // script(1) runs the demo on a new pseudo-terminal; with no terminal on its own stdin, that one is 0x0.
      const command = [process.execPath, BROOK_CLI, 'demo', ...QUICK_ONE_NODE, '--data-dir', dataDir].map((word) => `'${word}'`).join(' ')
      const script = spawn('script', ['-qfc', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] })
      terminals.add(script)
      let output = ''
      script.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
      const exited = new Promise<number | null>((done) =>
        script.once('close', (code) => {
          terminals.delete(script)
          done(code)
        }),
      )
      const stdout = (): string => output.replace(/\r\n/g, '\n')
      try {
        // A line of a simulator sending: stopped before it sends anything, the demo has no readings to sum up.
        await until(() => watchLine(stdout()) !== null && /^\d\d:\d\d:\d\d simulator [1-9][\d,]* readings\/s · pipeline in /m.test(stdout()))
        expect(watchLine(stdout())![1]).toBe(clusterUp(stdout())![1])
        // No redraw in place: log-update would hide the cursor first.
        expect(output).not.toContain('\x1b[?25l')
        const children = descendants(script.pid!)
        orphans.push(...children)
        const demo = children.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('demo'))!
        process.kill(demo, 'SIGINT')
        expect(await exited).toBe(0)
        expectStoppedCleanly(stdout(), dataDir)
        await until(() => children.every((pid) => !alive(pid)))
      } finally {
        if (script.exitCode === null) script.kill('SIGKILL')
      }
    })

    it.sequential('says so and ends when its cluster dies under it', async () => {
      const dataDir = join(root, 'cluster-died')
      const demo = spawnBrook(['demo', ...QUICK_ONE_NODE, '--data-dir', dataDir])
      await until(() => /written: .*readings-stats-1m [1-9]/.test(demo.stdout()))
      const children = descendants(demo.child.pid!)
      orphans.push(...children)
      // brook dev killed: its nodes see their channels to it close and stop, and the demo sees it gone.
      process.kill(devPid(children)!, 'SIGKILL')
      expect(await demo.exited).toBe(1)
      expect(demo.stdout()).toMatch(/cluster: exited \(SIGKILL\) while the demo ran/)
      expect(demo.stderr()).toMatch(/^brook: the cluster exited \(SIGKILL\)$/m)
      expect(demo.stdout()).toContain(`cluster: exited by itself; the data stays in ${dataDir}`)
      expect(demo.stdout()).toMatch(/^simulator: ([\d,]+ readings sent|stopped without its summary)/m)
      await until(() => children.every((pid) => !alive(pid)))
    })
  })
})
