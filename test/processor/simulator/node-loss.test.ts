/**
 * `brook simulate` as a user runs it against `brook dev`'s three nodes, the leader of whose topic is killed with
 * kill -9 mid-run: the run goes on and ends on its own, and every reading it says it sent is in the topic once. The
 * sends fail until the controller has fenced the dead node (broker.session.timeout.ms, 9 s) and the partition has a new
 * leader. A producer with kafkajs's default retries (five, about 9 s) ended such runs; Brook's simulator retries for
 * about 44 s (SIMULATOR_RETRY in processor/simulator/connection.ts).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import kafkajs from 'kafkajs'
import { waitFor } from '../../helpers/wait.js'
import { brook, spawnBrook, until } from '../../cli/run-brook.js'
import { readTopic } from './read-back.js'

const { Kafka, logLevel } = kafkajs
const TOPIC = 'node-loss'
const COUNT = 8000

describe('brook simulate when a node of three dies', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'brook-node-loss-'))
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  it('goes on once the dead node\'s partition has a new leader, and the topic holds every reading it sent, once', { timeout: 150_000 }, async () => {
    const dev = spawnBrook(['dev', '--base-port', '0', '--data-dir', dataDir])
    try {
      await until(() => /bootstrap servers \S+/.test(dev.stdout()) || dev.child.exitCode !== null)
      const up = /bootstrap servers (\S+)/.exec(dev.stdout())
      expect(up, dev.stderr()).not.toBeNull()
      const servers = up![1]!.split(',')
      // 8 s of readings at 1,000/s to a topic the run creates (one partition, three replicas: brook dev's defaults);
      // its leader dies a second or two in, and the run catches up once the partition has moved. NODE_ENV unset, as a
      // user runs it: under vitest's NODE_ENV=test kafkajs's own retry defaults are other ones.
      const run = brook(['simulate', '--bootstrap-server', servers.join(','), '--topic', TOPIC, '--rate', '1000', '--count', String(COUNT)], { env: { NODE_ENV: '' } })
      const reader = new Kafka({ brokers: servers, logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1000 } })
      const admin = reader.admin()
      await admin.connect()
      try {
        const written = async (): Promise<number> => ((await admin.fetchTopicOffsets(TOPIC).catch(() => [])) as { high: string }[]).reduce((sum, p) => sum + Number(p.high), 0)
        await waitFor('the simulator to have written readings', async () => (await written()) > 1000, { timeoutMs: 30_000 })
        // The read-back is a consumer group: __consumer_offsets (three replicas) is made now, while every node is up.
        await admin.describeGroups(['node-loss-reader'])
        const leader = (await admin.fetchTopicMetadata({ topics: [TOPIC] })).topics[0]!.partitions[0]!.leader
        const [pid] = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' })
          .split('\n')
          .filter((line) => line.includes(' start ') && line.includes(join(dataDir, `node-${leader}`)))
          .map((line) => Number(line.trim().split(/\s+/)[0]))
        process.kill(pid!, 'SIGKILL')

        const { code, stdout, stderr } = await run
        expect(code, stderr).toBe(0)
        expect(stdout).toMatch(/^sent 8,000 readings to node-loss \(created\) in /m)
        const read = await readTopic(reader, admin, TOPIC)
        const identities = read.map((r) => `${r.reading.deviceId}/${r.reading.sensor}/${r.reading.ts}`)
        expect(new Set(identities).size).toBe(identities.length)
        expect(read).toHaveLength(COUNT)
      } finally {
        await admin.disconnect()
      }
    } finally {
      dev.child.kill('SIGINT')
      await dev.exited
    }
  })
})
