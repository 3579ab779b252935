/**
 * A `brook start` that fails says why in one line and leaves nothing behind: no data directory it created, no
 * database directory inside one that existed. A data directory another node holds is refused with a message that
 * names the cause. A start that opens stored topics says so before it gets to listening.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import kafkajs from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { brook } from '../cli/run-brook.js'

describe('a failed brook start', () => {
  const dir = mkdtempSync(join(tmpdir(), 'brook-startup-'))
  let running: BrokerProcess
  afterAll(async () => {
    await running?.stop()
    running?.cleanup()
    rmSync(dir, { recursive: true, force: true })
  })

  it('on a busy port removes the data directory it created, and what it created inside an existing one', async () => {
    running = await startBroker()
    const fresh = join(dir, 'fresh', 'node-1')
    const existing = join(dir, 'existing')
    mkdirSync(existing)

    for (const dataDir of [fresh, existing]) {
      const result = await brook(['start', '--host', '127.0.0.1', '--port', String(running.port), '--data-dir', dataDir])
      expect(result).toMatchObject({ code: 1, stderr: `brook: port ${running.port} on 127.0.0.1 is already in use\n` })
    }
    expect(existsSync(join(dir, 'fresh'))).toBe(false)
    expect(readdirSync(existing)).toEqual([])
  })

  it('on a data directory another node has open names that cause, and leaves the directory alone', async () => {
    const result = await brook(['start', '--host', '127.0.0.1', '--port', '0', '--data-dir', running.dataDir])
    expect(result).toMatchObject({ code: 1, stderr: `brook: the data directory ${running.dataDir} is already in use by another Brook process\n` })
    expect(readdirSync(running.dataDir)).toEqual(['db'])
  })
})

describe('a brook start on stored topics', () => {
  it('says how many topics and partitions it is opening, and where, before it listens', async () => {
    const first = await startBroker()
    let again: BrokerProcess | undefined
    try {
      expect(first.output()).not.toContain('opening ')
      const admin = new kafkajs.Kafka({ brokers: [first.address], logLevel: kafkajs.logLevel.NOTHING }).admin()
      await admin.connect()
      await admin.createTopics({ topics: [{ topic: 'two', numPartitions: 2 }, { topic: 'three', numPartitions: 3 }], waitForLeaders: true })
      await admin.disconnect()
      await first.stop()
      again = await first.restart()
      const output = again.output()
      const opening = output.indexOf(`opening 2 topics (5 partitions) in ${first.dataDir}\n`)
      expect(opening).toBeGreaterThan(-1)
      expect(opening).toBeLessThan(output.indexOf('listening on '))
    } finally {
      await (again ?? first).stop()
      first.cleanup()
    }
  })
})
