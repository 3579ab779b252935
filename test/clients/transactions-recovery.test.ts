/**
 * Transactions across broker restarts, with kafkajs producing and kcat (librdkafka) reading under both isolation
 * levels:
 * - a clean stop and kill -9 with committed transactions and one open: after the restart the committed ones are
 *   visible, the open one is not (it stays open, holding the last stable offset, until it is ended), and a new
 *   producer of its transactional id aborts it;
 * - kill -9 at the two points of the two-phase commit, through the `failpoint` setting (the node SIGKILLs itself):
 *   after PrepareCommit is written and before any marker, and after the first partition's marker only. After the
 *   restart the coordinator completes the commit: every partition's records become visible, exactly once.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { configArgs } from '../helpers/broker-config.js'
import { listOffset, withClient } from '../helpers/kafka.js'
import { kcat } from '../helpers/kcat.js'
import { waitFor } from '../helpers/wait.js'

let brokers: BrokerProcess[] = []
const producers: Producer[] = []
afterEach(async () => {
  for (const producer of producers.splice(0)) await producer.disconnect().catch(() => undefined)
  for (const broker of brokers) {
    await broker.stop()
    broker.cleanup()
  }
  brokers = []
})

function kafkaOf(broker: BrokerProcess): Kafka {
  return new Kafka({ clientId: 'txn-recovery', brokers: [broker.address], logLevel: logLevel.NOTHING, retry: { retries: 2, initialRetryTime: 100 } })
}

async function setUp(broker: BrokerProcess, topic: string): Promise<Kafka> {
  const kafka = kafkaOf(broker)
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }] })
  await admin.disconnect()
  return kafka
}

async function transactional(kafka: Kafka, transactionalId: string): Promise<Producer> {
  const producer = kafka.producer({ transactionalId, idempotent: true, maxInFlightRequests: 1 })
  producers.push(producer)
  await producer.connect()
  return producer
}

async function kcatValues(broker: BrokerProcess, topic: string, isolation: 'read_committed' | 'read_uncommitted'): Promise<string[]> {
  const { stdout } = await kcat(['-C', '-b', broker.address, '-t', topic, '-e', '-q', '-X', `isolation.level=${isolation}`, '-f', '%s\\n'])
  return stdout.split('\n').filter((line) => line !== '').sort()
}

/** Whether both partitions' last stable offsets have caught up with their high watermarks. */
async function stable(broker: BrokerProcess, topic: string): Promise<boolean> {
  return withClient(broker, async (client) => {
    for (const p of [0, 1]) {
      const hw = (await listOffset(client, topic, p, -1n)).offset
      const lso = (await listOffset(client, topic, p, -1n, 7, { readCommitted: true })).offset
      if (hw !== lso) return false
    }
    return true
  })
}

describe('transactions across restarts', () => {
  for (const stopping of ['stop', 'kill'] as const) {
    test(`${stopping === 'stop' ? 'a clean stop' : 'kill -9'} with committed transactions and an open one: same visibility after`, async () => {
      let broker = await startBroker()
      brokers.push(broker)
      const topic = `txn-restart-${stopping}`
      const kafka = await setUp(broker, topic)
      const producer = await transactional(kafka, `txn-restart-${stopping}`)
      for (const round of [1, 2]) {
        const txn = await producer.transaction()
        await txn.send({ topic, messages: [{ value: `c${round}-0`, partition: 0 }, { value: `c${round}-1`, partition: 1 }] })
        await txn.commit()
      }
      const open = await producer.transaction()
      await open.send({ topic, messages: [{ value: 'open-0', partition: 0 }, { value: 'open-1', partition: 1 }] })
      const committed = ['c1-0', 'c1-1', 'c2-0', 'c2-1']
      expect(await kcatValues(broker, topic, 'read_committed')).toEqual(committed)

      await broker[stopping]()
      broker = await broker.restart()
      brokers = [broker]
      expect(await kcatValues(broker, topic, 'read_committed')).toEqual(committed)
      expect(await kcatValues(broker, topic, 'read_uncommitted')).toEqual([...committed, 'open-0', 'open-1'].sort())
      expect(await stable(broker, topic)).toBe(false)
      // A new producer of the id aborts what the old one left open; it is never visible.
      const next = await transactional(kafkaOf(broker), `txn-restart-${stopping}`)
      const txn = await next.transaction()
      await txn.send({ topic, messages: [{ value: 'after-0', partition: 0 }] })
      await txn.commit()
      expect(await kcatValues(broker, topic, 'read_committed')).toEqual([...committed, 'after-0'].sort())
      expect(await stable(broker, topic)).toBe(true)
    }, 120_000)
  }

  for (const failpoint of ['transaction-prepared', 'transaction-marker-written'] as const) {
    test(`kill -9 at '${failpoint}': the commit is completed after the restart, visible exactly once`, async () => {
      const dying = await startBroker({ args: configArgs({ failpoint }) })
      brokers.push(dying)
      const topic = `txn-${failpoint}`
      const kafka = await setUp(dying, topic)
      const producer = await transactional(kafka, `txn-${failpoint}`)
      const txn = await producer.transaction()
      await txn.send({ topic, messages: [{ value: 'p0', partition: 0 }, { value: 'p1', partition: 1 }] })
      // The node dies in the middle of the commit: the client never hears the answer.
      await expect(txn.commit()).rejects.toThrow()
      await dying.kill()
      expect(dying.child.signalCode).toBe('SIGKILL')
      expect(dying.output()).toContain(`failpoint '${failpoint}' reached`)

      const broker = await startBroker({ dataDir: dying.dataDir, port: dying.port })
      brokers = [broker]
      await waitFor('the interrupted commit to complete', () => stable(broker, topic))
      expect(broker.output()).toContain('was interrupted in PrepareCommit')
      expect(await kcatValues(broker, topic, 'read_committed')).toEqual(['p0', 'p1'])
      expect(await kcatValues(broker, topic, 'read_uncommitted')).toEqual(['p0', 'p1'])
      // The coordinator is healthy: the id goes on with a new transaction.
      const next = await transactional(kafkaOf(broker), `txn-${failpoint}`)
      const again = await next.transaction()
      await again.send({ topic, messages: [{ value: 'later', partition: 1 }] })
      await again.commit()
      expect(await kcatValues(broker, topic, 'read_committed')).toEqual(['later', 'p0', 'p1'])
    }, 120_000)
  }
})
