/**
 * Transactional consume-transform-produce through kafkajs, one transaction per fetched batch, as an exactly-once
 * stream task does it: read a batch of the input (read_committed), write one output record per input record, commit
 * the consumed offsets with sendOffsets, commit the transaction.
 *
 *   node dist/bench/transactions.js [options]        # --help lists them, with their defaults
 *
 * `--fetch-kb` is the consumer's maxBytesPerPartition, which bounds a batch and so sets the transaction size. The
 * input is written first by a plain kafkajs producer; the loop is timed from the first batch to the output
 * holding every record. Prints one JSON object: records/s, transactions and their mean size, and the same loop
 * without transactions (plain sends and offset commits) for comparison. On a shared machine the figures are
 * indicative only.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Kafka, logLevel, type Producer } from 'kafkajs'
import { benchCommand, number } from './args.js'
import { startBroker } from './broker-process.js'

const COMMAND = benchCommand(
  'transactions',
  'node dist/bench/transactions.js [options]',
  'kafkajs consume-transform-produce, one transaction per fetched batch, beside the same loop plain. Prints JSON.',
)
  .option('--records <n>', 'input records', number(), 200_000)
  .option('--partitions <n>', 'partitions of the input and output topics', number(), 4)
  .option('--record-bytes <n>', 'record value size', number(), 100)
  .option('--fetch-kb <n>', "the consumer's maxBytesPerPartition, KiB: it bounds a transaction", number(), 1024)
const flags = COMMAND.parse().opts()
const RECORDS = flags.records
const PARTITIONS = flags.partitions
const RECORD_BYTES = flags.recordBytes
const FETCH_BYTES = flags.fetchKb * 1024

interface LoopResult {
  seconds: number
  recordsPerSec: number
  transactions: number
  recordsPerTransaction: number
}

async function fill(kafka: Kafka, topic: string): Promise<void> {
  const producer = kafka.producer()
  await producer.connect()
  const value = 'x'.repeat(RECORD_BYTES)
  for (let sent = 0; sent < RECORDS; sent += 1000) {
    const count = Math.min(1000, RECORDS - sent)
    await producer.send({ topic, messages: Array.from({ length: count }, (_, i) => ({ key: String(sent + i), value })) })
  }
  await producer.disconnect()
}

/** One consume-transform-produce loop over `input` into `output`, until every input record has been handled. */
async function runLoop(kafka: Kafka, input: string, output: string, transactional: boolean): Promise<LoopResult> {
  const groupId = `${input}-${transactional ? 'eos' : 'alos'}`
  const producer: Producer = transactional
    ? kafka.producer({ transactionalId: `${groupId}-producer`, idempotent: true, maxInFlightRequests: 1 })
    : kafka.producer()
  await producer.connect()
  const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 100, maxBytesPerPartition: FETCH_BYTES })
  await consumer.connect()
  await consumer.subscribe({ topic: input, fromBeginning: true })
  let handled = 0
  let transactions = 0
  let started = 0
  let finished: () => void = () => undefined
  const done = new Promise<void>((resolve) => (finished = resolve))
  await consumer.run({
    autoCommit: !transactional,
    eachBatchAutoResolve: true,
    eachBatch: async ({ batch }) => {
      if (started === 0) started = performance.now()
      const messages = batch.messages.map((m) => ({ key: m.key, value: m.value }))
      const next = String(Number(batch.lastOffset()) + 1)
      if (transactional) {
        const txn = await producer.transaction()
        try {
          await txn.send({ topic: output, messages })
          await txn.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: batch.partition, offset: next }] }] })
          await txn.commit()
        } catch (error) {
          await txn.abort().catch(() => undefined)
          throw error
        }
        transactions++
      } else {
        await producer.send({ topic: output, messages })
      }
      handled += messages.length
      if (handled >= RECORDS) finished()
    },
  })
  await done
  const seconds = (performance.now() - started) / 1000
  await consumer.disconnect()
  await producer.disconnect()
  return { seconds, recordsPerSec: Math.round(handled / seconds), transactions, recordsPerTransaction: transactions > 0 ? Math.round(handled / transactions) : 0 }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'brook-txn-bench-'))
  const broker = await startBroker({ dataDir: join(dir, 'node'), args: ['--group-initial-rebalance-delay-ms', '0'] })
  try {
    const kafka = new Kafka({ clientId: 'brook-txn-bench', brokers: [`${broker.host}:${broker.port}`], logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: ['in-eos', 'out-eos', 'in-alos', 'out-alos'].map((topic) => ({ topic, numPartitions: PARTITIONS })) })
    await admin.disconnect()
    await fill(kafka, 'in-eos')
    await fill(kafka, 'in-alos')
    const transactional = await runLoop(kafka, 'in-eos', 'out-eos', true)
    const plain = await runLoop(kafka, 'in-alos', 'out-alos', false)
    console.log(JSON.stringify({ records: RECORDS, partitions: PARTITIONS, recordBytes: RECORD_BYTES, fetchKB: FETCH_BYTES / 1024, transactional, plain }, null, 2))
  } finally {
    await broker.stop().catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
