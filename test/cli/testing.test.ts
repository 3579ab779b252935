/**
 * Brook as the Kafka of another project's tests: `brook/testing`'s startBrook (one node and a cluster, found through
 * its IPC message whatever the log level, stopped with its temporary directory removed, a bad flag refused in Brook's
 * words), and what such a test suite does to the processes it starts: a parent that ends while `brook start` or
 * `brook dev` still loads (the IPC channel already closed before the node listens for it), a parent that ends without
 * stop(), and a parent that stops reading the node's log.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Kafka, logLevel } from 'kafkajs'
import { startBrook, type RunningBrook } from '../../dist/cli/testing.js'
import { BROOK_CLI } from '../helpers/broker.js'
import { dataDirectoryHolder } from '../../storage/database.js'
import { killedAtFileEnd, removedAtFileEnd } from '../helpers/file-end.js'
import { alive, descendants } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const running = killedAtFileEnd()
const dirs = removedAtFileEnd()

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'brook-testing-'))
  dirs.push(dir)
  return dir
}

function kafkaOf(brook: RunningBrook, clientId: string): Kafka {
  return new Kafka({ brokers: brook.bootstrapServers, clientId, logLevel: logLevel.NOTHING })
}

/** Produces `values` to a new topic of `brook` (acks=all) and reads them back with a new consumer group. */
async function roundTrip(brook: RunningBrook, topic: string, replicationFactor: number): Promise<string[]> {
  const kafka = kafkaOf(brook, `testing-${topic}`)
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor }], waitForLeaders: true })
  await admin.disconnect()
  const producer = kafka.producer()
  await producer.connect()
  const values = ['a', 'b', 'c'].map((value) => `${topic}-${value}`)
  await producer.send({ topic, acks: -1, messages: values.map((value) => ({ key: value, value })) })
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId: `${topic}-group`, maxWaitTimeInMs: 100 })
  const read: string[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => void read.push(message.value!.toString()) })
    await waitFor('the records read back', () => read.length >= values.length)
  } finally {
    await consumer.disconnect()
  }
  return read.sort()
}

describe('startBrook (brook/testing)', { concurrent: true }, () => {
  it('starts one node on a free port in a temporary directory that stop() removes, with the process', async () => {
    const brook = await startBrook()
    try {
      expect(brook.bootstrapServers).toHaveLength(1)
      expect(brook.bootstrapServer).toMatch(/^127\.0\.0\.1:\d+$/)
      expect(existsSync(brook.dataDir)).toBe(true)
      expect(await roundTrip(brook, 'single', 1)).toEqual(['single-a', 'single-b', 'single-c'])
    } finally {
      await brook.stop()
    }
    expect(alive(brook.pid)).toBe(false)
    expect(existsSync(brook.dataDir)).toBe(false)
    // A second stop() changes nothing.
    await brook.stop()
  })

  it('finds the node through its IPC message when --log-level hides the listening line, and keeps a data directory it was given', async () => {
    const dataDir = tempDir()
    const logged: string[] = []
    const brook = await startBrook({ dataDir, args: ['--log-level', 'warn'], log: (line) => logged.push(line) })
    try {
      expect(brook.dataDir).toBe(dataDir)
      expect(logged.filter((line) => line.includes('listening on'))).toEqual([])
      expect(await roundTrip(brook, 'quiet', 1)).toEqual(['quiet-a', 'quiet-b', 'quiet-c'])
    } finally {
      await brook.stop()
    }
    expect(existsSync(join(dataDir, 'db'))).toBe(true)
  })

  it('starts a three-node cluster (brook dev) whose replicated topics take acks=all, and stop() ends every node', async () => {
    const brook = await startBrook({ nodes: 3 })
    let nodes: number[] = []
    try {
      expect(brook.bootstrapServers).toHaveLength(3)
      nodes = descendants(brook.pid)
      expect(nodes).toHaveLength(3)
      expect(await roundTrip(brook, 'replicated', 3)).toEqual(['replicated-a', 'replicated-b', 'replicated-c'])
    } finally {
      await brook.stop()
    }
    await waitFor('every node to end', () => nodes.every((pid) => !alive(pid)))
    expect(existsSync(brook.dataDir)).toBe(false)
  })

  it("rejects with Brook's own one-line error for a bad flag, leaving nothing running, and refuses options it cannot honour", async () => {
    const dataDir = tempDir()
    await expect(startBrook({ dataDir, args: ['--log-level', 'loud'] })).rejects.toThrow(/^startBrook: Brook exited \(code 1\) before it listened; it said:\nbrook: option '--log-level <level>' argument 'loud' is invalid/)
    await expect(startBrook({ args: ['--data-dir', dataDir] })).rejects.toThrow('startBrook: give the data directory as the dataDir option, not as --data-dir in args')
    await expect(startBrook({ timeoutMs: 0 })).rejects.toThrow('startBrook: timeoutMs must be a positive number of ms (or Infinity), got 0')
    await expect(startBrook({ nodes: '3' as unknown as number })).rejects.toThrow('startBrook: nodes must be a whole number of at least 1, got "3"')
  })

  it('stops a cluster it gave up waiting for, every node with it, so that the same data directory starts at once; Infinity waits without limit', async () => {
    const dataDir = tempDir()
    // Given up once a node listens: brook dev's nodes run then, and the cluster is not up yet.
    const giveUp = new AbortController()
    const log = (line: string): void => void (line.includes('listening on') && giveUp.abort())
    await expect(startBrook({ nodes: 3, dataDir, log, signal: giveUp.signal })).rejects.toThrow('startBrook: abandoned (its signal was aborted) before Brook listened')
    // Rejected once every node has stopped: none holds its data directory any more.
    expect([1, 2, 3].map((id) => dataDirectoryHolder(join(dataDir, `node-${id}`)))).toEqual([null, null, null])
    await expect(startBrook({ nodes: 3, dataDir, timeoutMs: 1000 })).rejects.toThrow(/^startBrook: Brook did not listen within 1000 ms/)
    const brook = await startBrook({ nodes: 3, dataDir, timeoutMs: Infinity })
    await brook.stop()
    expect(existsSync(join(dataDir, 'node-1', 'db'))).toBe(true)
  })
})

/** Runs `script` (an ES module) with node; its stdout lines are handed to `onLine`. */
function runScript(script: string, onLine: (line: string) => void): ChildProcess {
  const file = join(tempDir(), 'parent.mjs')
  writeFileSync(file, script)
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] })
  running.add(child)
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => chunk.split('\n').filter(Boolean).forEach(onLine))
  return child
}

describe('the processes a test suite starts', { concurrent: true }, () => {
  // The parent closes the channel at once: the node finds it closed when it gets to look, long before it listens.
  for (const command of ['start --port 0', 'dev --nodes 1 --base-port 0'] as const) {
    it(`brook ${command.split(' ')[0]} stops by itself when the program that started it with an IPC channel ended while it was still loading`, async () => {
      const dataDir = tempDir()
      const child = spawn(process.execPath, [BROOK_CLI, ...command.split(' '), '--data-dir', join(dataDir, 'data')], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] })
      running.add(child)
      child.disconnect()
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      expect(await exited).toBe(0)
      expect(descendants(child.pid!)).toEqual([])
    })
  }

  for (const nodes of [1, 3]) {
    it(`${nodes === 1 ? 'a node' : 'a cluster'} started with startBrook stops by itself, its temporary directory removed, when the test process ends without stop()`, async () => {
      let pid = 0
      let dataDir = ''
      const parent = runScript(
        `import { startBrook } from ${JSON.stringify(new URL('../../dist/cli/testing.js', import.meta.url).href)}\n` +
          `const brook = await startBrook({ nodes: ${nodes} })\nconsole.log(brook.pid, brook.dataDir)\n`,
        (line) => {
          ;[pid, dataDir] = [Number(line.split(' ')[0]), line.split(' ')[1]!]
          // Removed at the file's end should the test fail.
          dirs.push(dataDir)
        },
      )
      // The script's only work is done: with Brook unreferenced, the script ends by itself.
      const code = await new Promise<number | null>((resolve) => parent.once('exit', (exitCode) => resolve(exitCode)))
      expect(code).toBe(0)
      expect(pid).toBeGreaterThan(0)
      const nodePids = nodes === 1 ? [] : descendants(pid)
      await waitFor('Brook to end', () => !alive(pid) && nodePids.every((node) => !alive(node)))
      await waitFor('its temporary directory to be removed', () => !existsSync(dataDir))
    })
  }

  it('a node whose reader of its log went away keeps serving, and stops cleanly', async () => {
    const child = spawn(process.execPath, [BROOK_CLI, 'start', '--port', '0', '--data-dir', join(tempDir(), 'data')], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    running.add(child)
    const bootstrap = await new Promise<string>((resolve) => child.on('message', (message: { type: string; bootstrapServers: string }) => message.type === 'brook:ready' && resolve(message.bootstrapServers)))
    child.stderr!.destroy()
    child.stdout!.destroy()
    // Each creation is logged, to a pipe nobody reads any more.
    const admin = new Kafka({ brokers: [bootstrap], logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    try {
      for (let i = 0; i < 5; i++) await admin.createTopics({ topics: [{ topic: `unread-${i}` }] })
      expect((await admin.listTopics()).filter((topic) => topic.startsWith('unread-')).sort()).toEqual(['unread-0', 'unread-1', 'unread-2', 'unread-3', 'unread-4'])
    } finally {
      await admin.disconnect()
    }
    expect(child.exitCode).toBe(null)
    child.kill('SIGTERM')
    expect(await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))).toBe(0)
  })
})
