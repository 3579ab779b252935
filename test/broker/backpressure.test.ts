/**
 * Backpressure and bounded answers, after Kafka's SocketServer: a connection's requests are read only as fast as the
 * node handles them, within queued.max.requests and queued.max.request.bytes, and one Fetch answer carries at most
 * fetch.max.bytes (one first batch excepted). What is asserted is behaviour, never time or memory: other clients are
 * answered while a flood goes on, every flooded record is stored, answers are capped, and a client that does not read
 * its answers makes the node stop reading its requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ConfigResourceTypes, Kafka, logLevel, type Admin } from 'kafkajs'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { loggedErrors } from '../helpers/broker-log.js'
import { createTopic, fetchPartition, listOffset, producePartition, splitBatches, withClient } from '../helpers/kafka.js'
import { kcat } from '../helpers/kcat.js'
import { waitFor } from '../helpers/wait.js'
import {
  RawConnection,
  fetchBody,
  fetchResponsePartition,
  handBuiltBatch,
  produceBody,
  produceResponseError,
  requestFrame,
} from '../helpers/wire.js'

const MiB = 1024 * 1024
const INT32_MAX = 2_147_483_647

/** The log end offset of partition 0: with offsets from 0, the number of records stored. */
async function recordsStored(broker: BrokerProcess, topic: string): Promise<bigint> {
  return withClient(broker, async (client) => (await listOffset(client, topic, 0, -1n)).offset)
}

describe('a flood of acks=0 produce requests', () => {
  let broker: BrokerProcess
  let admin: Admin

  beforeAll(async () => {
    // A pool of 1 MiB (the least it may be: one largest request), so that a flood fills it at once.
    broker = await startBroker({
      args: ['--socket-request-max-bytes', String(MiB), '--queued-max-request-bytes', String(MiB), '--message-max-bytes', String(MiB), '--log-level', 'debug'],
    })
    admin = new Kafka({ brokers: [broker.address], clientId: 'bystander', logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
  })
  afterAll(async () => {
    await admin?.disconnect()
    await broker?.stop()
    expect(loggedErrors(broker)).toEqual([])
    broker?.cleanup()
  })

  it('is read only as fast as it is stored: another client is answered meanwhile, and every record is stored', async () => {
    await createTopic(broker, 'flooded')
    const values = Array.from({ length: 100 }, (_, i) => `${i}`.padEnd(1000, '.'))
    const frame = requestFrame({ apiKey: 0, apiVersion: 7, correlationId: 1 }, produceBody('flooded', 0, handBuiltBatch(values), 0))
    const flood = await RawConnection.open(broker.port)
    let running = true
    let sent = 0
    const flooding = (async () => {
      while (running) {
        await flood.sendPaced(frame)
        sent++
      }
    })()

    // The flood stops only once the bystander has its answers: were it served only after the flood, this would hang.
    for (let i = 0; i < 5; i++) {
      const { topics } = await admin.fetchTopicMetadata({ topics: ['flooded'] })
      expect(topics[0]!.partitions).toHaveLength(1)
    }
    // A request as large as the whole pool still gets through while the flood keeps the pool full.
    const large = await RawConnection.open(broker.port)
    large.send(requestFrame({ apiKey: 0, apiVersion: 7, correlationId: 2 }, produceBody('flooded', 0, handBuiltBatch(['L'.repeat(MiB - 200)]))))
    expect(produceResponseError(await large.nextFrame(60_000))).toEqual({ correlationId: 2, errorCode: 0 })
    large.destroy()
    running = false
    await flooding

    // Answered after every request before it on the flooding connection was handled.
    flood.send(requestFrame({ apiKey: 0, apiVersion: 7, correlationId: 3 }, produceBody('flooded', 0, handBuiltBatch(['last']))))
    expect(produceResponseError(await flood.nextFrame(60_000))).toEqual({ correlationId: 3, errorCode: 0 })
    flood.destroy()
    expect(await recordsStored(broker, 'flooded')).toBe(BigInt(sent * values.length + 2))
    // The flood met a full budget: the node held it back rather than reading it all.
    expect(broker.output()).toMatch(/request budget full \(\d+ requests of queued\.max\.requests 500, \d+ bytes of queued\.max\.request\.bytes 1048576\)/)
  })

  it('from kcat with acks=0: every record produced is stored', async () => {
    await createTopic(broker, 'kcat-flood')
    const dir = mkdtempSync(join(tmpdir(), 'brook-flood-'))
    try {
      const count = 20_000
      const file = join(dir, 'input')
      writeFileSync(file, Array.from({ length: count }, (_, i) => `${i}`.padEnd(999, '.')).join('\n') + '\n')
      await kcat(['-P', '-b', broker.address, '-t', 'kcat-flood', '-p', '0', '-X', 'acks=0', '-X', 'linger.ms=20', '-l', file], { timeoutMs: 120_000 })
      // acks=0 has no answer to wait for: kcat is done once its requests are written, and the node stores them as it
      // reads them. None may be missing, and none were refused (that would have closed kcat's connection).
      const stored = await waitFor('every record to be stored', async () => {
        const offset = await recordsStored(broker, 'kcat-flood')
        // A timeout says how far the log got: slow, or records missing.
        if (offset < BigInt(count)) throw new Error(`${offset} of ${count} stored`)
        return offset
      })
      expect(stored).toBe(BigInt(count))
      expect(broker.output()).not.toMatch(/closing connection .*acks=0/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('Fetch answers', () => {
  let broker: BrokerProcess
  const fetchMaxBytes = 8 * MiB

  beforeAll(async () => {
    broker = await startBroker({ args: ['--fetch-max-bytes', String(fetchMaxBytes)] })
  })
  afterAll(async () => {
    await broker?.stop()
    expect(loggedErrors(broker)).toEqual([])
    broker?.cleanup()
  })

  it('DescribeConfigs of the broker shows fetch.max.bytes as set (kafkajs)', async () => {
    const admin = new Kafka({ brokers: [broker.address], clientId: 'configs', logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    try {
      const { resources } = await admin.describeConfigs({ resources: [{ type: ConfigResourceTypes.BROKER, name: '1', configNames: ['fetch.max.bytes', 'queued.max.requests'] }], includeSynonyms: false })
      expect(Object.fromEntries(resources[0]!.configEntries.map((e) => [e.configName, e.configValue]))).toEqual({ 'fetch.max.bytes': String(fetchMaxBytes), 'queued.max.requests': '500' })
    } finally {
      await admin.disconnect()
    }
  })

  it('a Fetch for 2^31-1 bytes gets at most fetch.max.bytes, in whole batches, and kcat still reads everything', async () => {
    await createTopic(broker, 'capped')
    await withClient(broker, async (client) => {
      for (let i = 0; i < 12; i++) expect((await producePartition(client, 'capped', 0, handBuiltBatch([`${i}`.padEnd(1_000_000, '.')]))).errorCode).toBe(0)
      const answer = await fetchPartition(client, { topic: 'capped', partition: 0, offset: 0n, maxBytes: INT32_MAX })
      const batches = splitBatches(answer.records)
      const size = batches.reduce((sum, batch) => sum + batch.bytes.length, 0)
      expect(size).toBeLessThanOrEqual(fetchMaxBytes)
      // Whole batches up to the cap: one more would pass it.
      expect(size + batches[0]!.bytes.length).toBeGreaterThan(fetchMaxBytes)
      expect(answer.highWatermark).toBe(12n)
    })
    const { stdout } = await kcat(['-C', '-b', broker.address, '-t', 'capped', '-p', '0', '-o', 'beginning', '-e', '-f', '%o\n'], { timeoutMs: 60_000 })
    expect(stdout.trim().split('\n').map(Number)).toEqual(Array.from({ length: 12 }, (_, i) => i))
  })

  it('a first batch larger than fetch.max.bytes is returned whole, alone (minOneMessage)', async () => {
    await createTopic(broker, 'one-large', { configs: { 'max.message.bytes': String(10 * MiB) } })
    await withClient(broker, async (client) => {
      expect((await producePartition(client, 'one-large', 0, handBuiltBatch(['b'.repeat(9 * MiB)]))).errorCode).toBe(0)
      expect((await producePartition(client, 'one-large', 0, handBuiltBatch(['small']))).errorCode).toBe(0)
      const answer = await fetchPartition(client, { topic: 'one-large', partition: 0, offset: 0n, maxBytes: INT32_MAX })
      const batches = splitBatches(answer.records)
      expect(batches).toHaveLength(1)
      expect(batches[0]!.bytes.length).toBeGreaterThan(fetchMaxBytes)
    })
  })

  it('pipelined fetches a client does not read are not all answered: the node stops reading that connection', async () => {
    await createTopic(broker, 'unread')
    await withClient(broker, async (client) => {
      for (let i = 0; i < 10; i++) expect((await producePartition(client, 'unread', 0, handBuiltBatch([`${i}`.padEnd(1_000_000, '.')]))).errorCode).toBe(0)
    })
    const reader = await RawConnection.open(broker.port)
    reader.pause()
    for (let id = 1; id <= 6; id++) reader.send(requestFrame({ apiKey: 1, apiVersion: 4, correlationId: id }, fetchBody('unread', 0, 0n, INT32_MAX)))
    // Once the first answer is on its way, one more record arrives. A Fetch the node reads from now on sees it.
    await waitFor('the first answer to arrive', () => reader.unreadBytes > 0)
    await withClient(broker, async (client) => expect((await producePartition(client, 'unread', 0, handBuiltBatch(['late']))).errorCode).toBe(0))
    reader.resume()
    const answers = []
    for (let id = 1; id <= 6; id++) answers.push(fetchResponsePartition(await reader.nextFrame(60_000)))
    reader.destroy()
    expect(answers.map((a) => a.correlationId)).toEqual([1, 2, 3, 4, 5, 6])
    for (const answer of answers) {
      expect(answer.errorCode).toBe(0)
      expect(answer.records.length).toBeLessThanOrEqual(fetchMaxBytes)
    }
    // An 8 MiB answer does not fit in the kernel's socket buffers, so the node read at most the first two fetches
    // while the client was not reading; the rest were read, and answered, after the late record.
    const early = answers.filter((a) => a.highWatermark === 10n).length
    expect(early).toBeGreaterThanOrEqual(1)
    expect(early).toBeLessThanOrEqual(2)
    expect(answers.at(-1)!.highWatermark).toBe(11n)
  })
})

describe('Fetch answers not yet sent, across connections (queued.max.response.bytes)', () => {
  let broker: BrokerProcess
  const poolBytes = 8 * MiB

  beforeAll(async () => {
    broker = await startBroker({ args: ['--fetch-max-bytes', String(poolBytes), '--queued-max-response-bytes', String(poolBytes)] })
  })
  afterAll(async () => {
    await broker?.stop()
    expect(loggedErrors(broker)).toEqual([])
    broker?.cleanup()
  })

  it('an answer a client does not read holds its bytes: other fetches get one batch each until it is read', async () => {
    await createTopic(broker, 'pooled')
    await withClient(broker, async (client) => {
      for (let i = 0; i < 10; i++) expect((await producePartition(client, 'pooled', 0, handBuiltBatch([`${i}`.padEnd(1_000_000, '.')]))).errorCode).toBe(0)
    })
    const slow = await RawConnection.open(broker.port)
    slow.pause()
    slow.send(requestFrame({ apiKey: 1, apiVersion: 4, correlationId: 1 }, fetchBody('pooled', 0, 0n, INT32_MAX)))
    // An answer of nearly 8 MiB does not fit in the kernel's socket buffers: it stays in the node until it is read.
    await waitFor('the slow answer to be on its way', () => slow.unreadBytes > 0)

    const batchesFetched = (): Promise<number> =>
      withClient(broker, async (client) => splitBatches((await fetchPartition(client, { topic: 'pooled', partition: 0, offset: 0n, maxBytes: INT32_MAX })).records).length)
    expect(await batchesFetched()).toBe(1)

    slow.resume()
    const answer = fetchResponsePartition(await slow.nextFrame(60_000))
    slow.destroy()
    expect(splitBatches(answer.records).length).toBeGreaterThan(1)
    // Read and gone: the pool is whole again.
    await waitFor('a full answer again', async () => (await batchesFetched()) > 1)
    const { stdout } = await kcat(['-C', '-b', broker.address, '-t', 'pooled', '-p', '0', '-o', 'beginning', '-e', '-f', '%o\n'], { timeoutMs: 60_000 })
    expect(stdout.trim().split('\n').map(Number)).toEqual(Array.from({ length: 10 }, (_, i) => i))
  })
})
