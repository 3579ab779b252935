/**
 * A `brook start` that fails says why in one line and leaves nothing behind: no data directory it created, no
 * database directory inside one that existed. A data directory another node holds is refused with a message that
 * names the cause. A start that opens stored topics says so before it gets to listening. A database whose LevelDB
 * `CURRENT` file is missing is refused, its files left as they are, with the command that puts it back; after it,
 * every record is there. A start whose reads meet a damaged LevelDB table says so in one line naming the data
 * directory (and the partition it was opening), not in LevelDB's words alone.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import kafkajs from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { brook } from '../cli/run-brook.js'
import { damageEveryTable } from '../helpers/corrupt-table.js'

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
    // The holder named by its pid, which a user can stop (or look up with ps) without searching for it.
    const pid = running.child.pid
    expect(result).toMatchObject({ code: 1, stderr: `brook: the data directory ${running.dataDir} is already in use by another Brook process: node 1 (brook start), pid ${pid}; \`kill ${pid}\` stops it cleanly\n` })
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

describe('a brook start on a database without its CURRENT file', () => {
  it('is refused in one line naming the newest MANIFEST, deletes nothing, and starts with every record once CURRENT is back', async () => {
    const first = await startBroker()
    let again: BrokerProcess | undefined
    try {
      const kafka = new kafkajs.Kafka({ brokers: [first.address], logLevel: kafkajs.logLevel.NOTHING })
      const producer = kafka.producer()
      await producer.connect()
      for (let i = 0; i < 10; i++) await producer.send({ topic: 'kept', acks: -1, messages: Array.from({ length: 100 }, (_, k) => ({ value: `v${i * 100 + k}` })) })
      await producer.disconnect()
      await first.stop()
      const db = join(first.dataDir, 'db')
      const manifest = readFileSync(join(db, 'CURRENT'), 'utf8').trim()
      rmSync(join(db, 'CURRENT'))
      const before = readdirSync(db).sort()

      const result = await brook(['start', '--host', '127.0.0.1', '--port', '0', '--data-dir', first.dataDir])
      expect(result).toMatchObject({
        code: 1,
        stderr: expect.stringMatching(
          new RegExp(`^brook: cannot open the database in ${first.dataDir}: ${db}/CURRENT is missing while the directory holds LevelDB's files \\(${manifest}(, \\d+ table files?)?(, \\d+ write-ahead logs?)?\\): opened as it is, LevelDB would start an empty database and delete them; put it back \\(echo ${manifest} > ${db}/CURRENT\\) and start again\\n$`),
        ),
      })
      expect(readdirSync(db).sort()).toEqual(before)
      // Only LevelDB's write-ahead log left (CURRENT, MANIFEST and tables gone): refused too, with no MANIFEST to name.
      const walOnly = join(first.dataDir, 'wal-only')
      mkdirSync(join(walOnly, 'db'), { recursive: true })
      for (const name of before.filter((n) => n.endsWith('.log'))) copyFileSync(join(db, name), join(walOnly, 'db', name))
      const fromWal = await brook(['start', '--host', '127.0.0.1', '--port', '0', '--data-dir', walOnly])
      expect(fromWal).toMatchObject({ code: 1, stderr: expect.stringMatching(/ write-ahead logs?\): opened as it is, LevelDB would start an empty database and delete them; restore the directory from a copy, or move \S+ aside to start with no data\n$/) })
      rmSync(walOnly, { recursive: true })

      execFileSync('sh', ['-c', `echo ${manifest} > ${db}/CURRENT`])
      again = await first.restart()
      const consumer = new kafkajs.Kafka({ brokers: [again.address], logLevel: kafkajs.logLevel.NOTHING }).consumer({ groupId: 'kept-reader' })
      const seen = new Set<string>()
      await consumer.connect()
      await consumer.subscribe({ topic: 'kept', fromBeginning: true })
      await new Promise<void>((resolve) => {
        void consumer.run({ eachMessage: async ({ message }) => { seen.add(message.value!.toString()); if (seen.size === 1000) resolve() } })
      })
      await consumer.disconnect()
      expect(seen.size).toBe(1000)
    } finally {
      await (again ?? first).stop()
      first.cleanup()
    }
  })
})

describe('a brook start on a damaged LevelDB table', () => {
  it('fails in one line naming the data directory and the partition it was opening', async () => {
    const first = await startBroker()
    try {
      const producer = new kafkajs.Kafka({ brokers: [first.address], logLevel: kafkajs.logLevel.NOTHING }).producer()
      await producer.connect()
      for (let i = 0; i < 20; i++) await producer.send({ topic: 'damaged', acks: -1, messages: Array.from({ length: 200 }, (_, k) => ({ key: `k${k}`, value: `v${i}-${k}` })) })
      await producer.disconnect()
      await first.stop()
      // A start writes LevelDB's log out as a table file, whose every data block is then damaged.
      await (await first.restart()).stop()
      damageEveryTable(first.dataDir)
      const result = await brook(['start', '--host', '127.0.0.1', '--port', '0', '--data-dir', first.dataDir])
      expect(result.code).toBe(1)
      // The node's INFO lines ("opening 1 topic ..."), then the one line of the failure: no stack trace.
      const lines = result.stderr.trimEnd().split('\n')
      expect(lines.at(-1)).toMatch(new RegExp(`^brook: cannot open the database in ${first.dataDir}: (cannot open partition \\d+ of topic '[^']+': )?Corruption: .+$`))
      expect(lines.slice(0, -1).filter((line) => !/ INFO \[node 1\] /.test(line))).toEqual([])
    } finally {
      first.cleanup()
    }
  })
})
