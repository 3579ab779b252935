/**
 * `brook transactions list|describe|describe-producers` (the built CLI) against a real broker process, with kafkajs
 * transactional and idempotent producers as the things described (DescribeProducers, DescribeTransactions and
 * ListTransactions underneath, as kafka-transactions.sh uses them).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Kafka, logLevel, type Producer, type Transaction } from 'kafkajs'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { brook, lines } from './run-brook.js'

/** A table's rows (header left out), each split into its cells. */
function rows(stdout: string): string[][] {
  return lines(stdout).slice(1).map((line) => line.split(/\s+/))
}

describe('brook transactions', () => {
  let broker: BrokerProcess
  let server: string[]
  let kafka: Kafka
  const producers: Producer[] = []
  let open: Transaction

  beforeAll(async () => {
    broker = await startBroker()
    server = ['--bootstrap-server', broker.address]
    kafka = new Kafka({ clientId: 'txn-cli', brokers: [broker.address], logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: 'cli-txn', numPartitions: 2 }] })
    await admin.disconnect()
    const committer = kafka.producer({ transactionalId: 'cli-done', idempotent: true, maxInFlightRequests: 1 })
    const opener = kafka.producer({ transactionalId: 'cli-open', idempotent: true, maxInFlightRequests: 1 })
    producers.push(committer, opener)
    for (const p of producers) await p.connect()
    const done = await committer.transaction()
    await done.send({ topic: 'cli-txn', messages: [{ value: 'x', partition: 0 }] })
    await done.commit()
    open = await opener.transaction()
    await open.send({ topic: 'cli-txn', messages: [{ value: 'y', partition: 1 }, { value: 'z', partition: 0 }] })
  })
  afterAll(async () => {
    await open?.abort().catch(() => undefined)
    for (const p of producers) await p.disconnect().catch(() => undefined)
    await broker?.stop()
    broker?.cleanup()
  })

  it('lists every transactional id with its coordinator, producer id and state', async () => {
    const { code, stdout, stderr } = await brook(['transactions', 'list', ...server])
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(lines(stdout)[0]!.split(/\s+/)).toEqual(['TransactionalId', 'Coordinator', 'ProducerId', 'TransactionState'])
    expect(rows(stdout).map((r) => [r[0], r[1], r[3]])).toEqual([
      ['cli-done', '1', 'CompleteCommit'],
      ['cli-open', '1', 'Ongoing'],
    ])
  })

  it('describes an open transaction with its partitions, and says so in one line for an unknown id', async () => {
    const { code, stdout } = await brook(['transactions', 'describe', 'cli-open', ...server])
    expect(code).toBe(0)
    const [row] = rows(stdout)
    expect(row!.slice(1, 2).concat(row!.slice(3, 6))).toEqual(['cli-open', '0', 'Ongoing', '60000'])
    expect(row!.at(-1)!.split(',').sort()).toEqual(['cli-txn-0', 'cli-txn-1'])
    const unknown = await brook(['transactions', 'describe', 'cli-nobody', ...server])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1)
    expect(unknown.stderr).toMatch(/^brook: .*TRANSACTIONAL_ID_NOT_FOUND/)
  })

  it('describes the producers of a partition: the committed one and the one with its transaction open there', async () => {
    const { code, stdout } = await brook(['transactions', 'describe-producers', '--topic', 'cli-txn', '--partition', '0', ...server])
    expect(code).toBe(0)
    const found = rows(stdout)
    expect(found).toHaveLength(2)
    // The committer's transaction ended with its marker; the opener's started at offset 2 (after data and marker).
    expect(found.map((r) => r.at(-1)).sort()).toEqual(['2', 'None'])
    const missing = await brook(['transactions', 'describe-producers', '--topic', 'cli-txn', '--partition', '9', ...server])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/^brook: topic 'cli-txn' has no partition 9/)
  })
})
