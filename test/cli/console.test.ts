import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { readPartition, withClient } from '../helpers/kafka.js'
import { KafkaClient } from '../../client/kafka-client.js'
import { fetch, type FetchRequest, type FetchResponse } from '../../protocol/messages/fetch.js'
import { At, Attribute, batchesIn } from '../../protocol/record-batch.js'
import { ZERO_UUID } from '../../protocol/constants.js'
import { brook, brookBytes, kcat, lines, spawnBrook, until } from './run-brook.js'

const kafkajs = createRequire(import.meta.url)('kafkajs') as typeof import('kafkajs')

describe('brook produce and brook consume', () => {
  let broker: BrokerProcess
  let server: string[]
  beforeAll(async () => {
    broker = await startBroker()
    server = ['--bootstrap-server', broker.address]
  })
  afterAll(async () => {
    await broker.stop()
    broker.cleanup()
  })

  async function createTopic(name: string, partitions: number): Promise<void> {
    expect((await brook(['topics', 'create', name, '--partitions', String(partitions), ...server])).code).toBe(0)
  }

  async function consumeAll(topic: string, ...flags: string[]): Promise<string[]> {
    const result = await brook(['consume', topic, '--from-beginning', '--timeout-ms', '300', ...flags, ...server])
    expect(result.code, result.stderr).toBe(0)
    return lines(result.stdout)
  }

  /** The compression codec of every batch stored in a partition, read with a raw Fetch. */
  async function storedCodecs(topic: string, partition: number): Promise<number[]> {
    const client = await KafkaClient.connect(broker.host, broker.port)
    try {
      const response = await client.request<FetchRequest, FetchResponse>(fetch, 12, {
        clusterId: null,
        replicaId: -1,
        replicaState: { replicaId: -1, replicaEpoch: -1n },
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 1 << 24,
        isolationLevel: 0,
        sessionId: 0,
        sessionEpoch: -1,
        topics: [{
          topic,
          topicId: ZERO_UUID,
          partitions: [{ partition, currentLeaderEpoch: -1, fetchOffset: 0n, lastFetchedEpoch: -1, logStartOffset: -1n, partitionMaxBytes: 1 << 24, replicaDirectoryId: ZERO_UUID }],
        }],
        forgottenTopicsData: [],
        rackId: '',
      })
      const records = response.responses[0]!.partitions[0]!.records as Buffer
      return [...batchesIn(records)].map((batch) => batch.readInt16BE(At.attributes) & Attribute.compressionMask)
    } finally {
      client.close()
    }
  }

  it('writes keyed lines with headers that brook consume and kcat read back', async () => {
    await createTopic('keyed', 3)
    const input = ['user-1:login', 'user-2:login', 'user-1:view page', 'user-3:logout:now']
    const produced = await brook(['produce', 'keyed', '--key-separator', ':', '--header', 'source=cli', '--header', 'trace=', ...server], { input: input.join('\n') + '\n' })
    expect(produced.code, produced.stderr).toBe(0)
    expect(produced.stdout).toBe('')
    expect(produced.stderr).toMatch(/^produced 4 records in \d+ batch(es)? to keyed \(partition \d: \d(, partition \d: \d)*\)\n$/)

    const consumed = await consumeAll('keyed', '--print-key', '--print-headers')
    expect(consumed.sort()).toEqual([
      'source:cli,trace:\tuser-1\tlogin',
      'source:cli,trace:\tuser-1\tview page',
      'source:cli,trace:\tuser-2\tlogin',
      'source:cli,trace:\tuser-3\tlogout:now',
    ])

    const read = await kcat(['-b', broker.address, '-C', '-t', 'keyed', '-e', '-q', '-f', '%k %s %h\n'])
    expect(lines(read).sort()).toEqual([
      'user-1 login source=cli,trace=',
      'user-1 view page source=cli,trace=',
      'user-2 login source=cli,trace=',
      'user-3 logout:now source=cli,trace=',
    ])
    // Per key, records stay in the order they were written.
    expect(lines(read).filter((line) => line.startsWith('user-1 '))).toEqual(['user-1 login source=cli,trace=', 'user-1 view page source=cli,trace='])
  })

  it('prints just the values by default, and offset, partition and timestamp when asked', async () => {
    await createTopic('plain', 1)
    await brook(['produce', 'plain', ...server], { input: 'one\ntwo\n' })
    expect(await consumeAll('plain')).toEqual(['one', 'two'])
    const detailed = await consumeAll('plain', '--print-offset', '--print-partition', '--print-timestamp', '--print-key', '--print-headers')
    expect(detailed[1]).toMatch(/^CreateTime:\d+\tPartition:0\tOffset:1\tNO_HEADERS\tnull\ttwo$/)
  })

  it('writes keys, values and header values as their bytes, as Kafka\'s formatter does: binary payloads reach a file unchanged', async () => {
    await createTopic('binary', 1)
    // None of these is UTF-8: decoded as text, each would become U+FFFD.
    const key = Buffer.from([0xc3, 0x28])
    const value = Buffer.from([0xff, 0xfe, 0x00, 0x62, 0x69, 0x6e])
    const header = Buffer.from([0x80, 0x81])
    const client = new kafkajs.Kafka({ brokers: [broker.address], logLevel: kafkajs.logLevel.NOTHING })
    const producer = client.producer()
    await producer.connect()
    try {
      await producer.send({ topic: 'binary', messages: [{ key, value, headers: { h: header } }] })
    } finally {
      await producer.disconnect()
    }
    const result = await brookBytes(['consume', 'binary', '--from-beginning', '--timeout-ms', '300', '--print-headers', '--print-key', ...server])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toEqual(Buffer.concat([Buffer.from('h:'), header, Buffer.from('\t'), key, Buffer.from('\t'), value, Buffer.from('\n')]))
  })

  it('puts each key on the partition kafkajs\'s default partitioner chooses', async () => {
    await createTopic('placed-by-brook', 5)
    await createTopic('placed-by-kafkajs', 5)
    const keys = Array.from({ length: 40 }, (_, i) => `device-${i * 7919}`)
    await brook(['produce', 'placed-by-brook', '--key-separator', '=', ...server], { input: keys.map((k) => `${k}=x\n`).join('') })

    const client = new kafkajs.Kafka({ brokers: [broker.address], logLevel: kafkajs.logLevel.NOTHING })
    const producer = client.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner })
    await producer.connect()
    try {
      await producer.send({ topic: 'placed-by-kafkajs', messages: keys.map((key) => ({ key, value: 'x' })) })
    } finally {
      await producer.disconnect()
    }

    const placement = async (topic: string): Promise<Map<string, string>> =>
      new Map((await consumeAll(topic, '--print-partition', '--print-key')).map((line) => {
        const [partition, key] = line.split('\t')
        return [key!, partition!]
      }))
    const byBrook = await placement('placed-by-brook')
    expect(byBrook.size).toBe(keys.length)
    expect(new Set(byBrook.values()).size).toBeGreaterThan(1)
    expect(byBrook).toEqual(await placement('placed-by-kafkajs'))
  })

  it('writes to the partition given, reads one partition, and reads from an offset inside a batch', async () => {
    await createTopic('offsets', 2)
    const values = Array.from({ length: 10 }, (_, i) => `value-${i}`)
    // One batch: all ten lines arrive before the linger time passes.
    await brook(['produce', 'offsets', '--partition', '1', ...server], { input: values.join('\n') })
    expect(await storedCodecs('offsets', 1)).toHaveLength(1)

    const fromOffset = await brook(['consume', 'offsets', '--partition', '1', '--offset', '7', '--timeout-ms', '300', '--print-offset', ...server])
    expect(lines(fromOffset.stdout)).toEqual(['Offset:7\tvalue-7', 'Offset:8\tvalue-8', 'Offset:9\tvalue-9'])
    const otherPartition = await brook(['consume', 'offsets', '--partition', '0', '--from-beginning', '--timeout-ms', '300', ...server])
    expect(otherPartition).toMatchObject({ code: 0, stdout: '' })
    const earliest = await brook(['consume', 'offsets', '--offset', 'earliest', '--timeout-ms', '300', ...server])
    expect(lines(earliest.stdout)).toEqual(values)
  })

  it('reads from a timestamp, given in milliseconds or as an ISO date', async () => {
    await createTopic('timed', 2)
    await brook(['produce', 'timed', ...server], { input: 'old-1\nold-2\n' })
    const stamps = (await consumeAll('timed', '--print-timestamp')).map((line) => Number(/^CreateTime:(\d+)\t/.exec(line)![1]))
    const last = Math.max(...stamps)
    // Every record produced from now on is stamped after `last`.
    await until(() => Date.now() > last + 1)
    await brook(['produce', 'timed', ...server], { input: 'new-1\nnew-2\n' })

    const byMs = await brook(['consume', 'timed', '--from-timestamp', String(last + 1), '--timeout-ms', '300', ...server])
    expect(lines(byMs.stdout).sort()).toEqual(['new-1', 'new-2'])
    const byDate = await brook(['consume', 'timed', '--from-timestamp', new Date(last + 1).toISOString(), '--timeout-ms', '300', ...server])
    expect(lines(byDate.stdout).sort()).toEqual(['new-1', 'new-2'])
  })

  it('compresses batches with each codec and reads them back; kcat (librdkafka) reads them too', async () => {
    for (const codec of ['gzip', 'snappy', 'lz4', 'zstd'] as const) {
      const topic = `compressed-${codec}`
      await createTopic(topic, 1)
      const values = Array.from({ length: 200 }, (_, i) => `${codec} reading ${i} temperature=21.5`)
      const produced = await brook(['produce', topic, '--compression', codec, '--acks', '1', ...server], { input: values.join('\n') })
      expect(produced.code, produced.stderr).toBe(0)
      const codecs = await storedCodecs(topic, 0)
      expect(codecs.length).toBeGreaterThan(0)
      expect(new Set(codecs)).toEqual(new Set([{ gzip: 1, snappy: 2, lz4: 3, zstd: 4 }[codec]]))
      expect(await consumeAll(topic)).toEqual(values)
      expect(lines(await kcat(['-b', broker.address, '-C', '-t', topic, '-e', '-q']))).toEqual(values)
    }
  })

  it('reads batches that kcat compressed with zstd', async () => {
    await kcat(['-b', broker.address, '-P', '-t', 'kcat-zstd', '-z', 'zstd'], 'a\nb\nc\n')
    expect(await consumeAll('kcat-zstd', '--isolation-level', 'read_committed')).toEqual(['a', 'b', 'c'])
  })

  it('produces from a file with acks=0, and reads it back', async () => {
    await createTopic('from-file', 1)
    const dir = mkdtempSync(join(tmpdir(), 'brook-cli-'))
    try {
      const file = join(dir, 'lines.txt')
      writeFileSync(file, 'x\r\ny\r\nz\r\n')
      const produced = await brook(['produce', 'from-file', '--file', file, '--acks', '0', ...server])
      expect(produced.stderr).toMatch(/^sent \(acks=0, not acknowledged\) 3 record/)
      expect(await consumeAll('from-file')).toEqual(['x', 'y', 'z'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('claims no record written with acks=0: a refused batch shows only as the connection the broker closes, and the records as sent', async () => {
    expect((await brook(['topics', 'create', 'unanswered', '--config', 'max.message.bytes=200', ...server])).code).toBe(0)
    // One batch of three records, too large for the topic: the broker closes the connection instead of answering.
    const refused = await brook(['produce', 'unanswered', '--acks', '0', ...server], { input: `before\n${'x'.repeat(500)}\nafter\n` })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^brook: connection to \S+ (closed|failed: [^(]+) \(a broker closes the connection of an acks=0 producer when it refuses a batch; --acks 1 says why\); 3 records were sent \(acks=0, not acknowledged\)\n$/)
    const badLine = await brook(['produce', 'unanswered', '--acks', '0', '--key-separator', ':', ...server], { input: 'k:v\nno separator\n' })
    expect(badLine).toMatchObject({ code: 1, stderr: "brook: line 2 has no key separator ':': 'no separator'; the record before it was sent (acks=0, not acknowledged)\n" })
  })

  it('writes acks=all batches as an idempotent producer: a new producer id per run, each partition\'s sequences from 0', async () => {
    await createTopic('idempotent', 2)
    /** Each batch of a partition as (producerId, producerEpoch, baseSequence, recordsCount). */
    const producerFields = (partition: number): Promise<[bigint, number, number, number][]> =>
      withClient(broker, async (client) =>
        (await readPartition(client, 'idempotent', partition)).batches.map(({ header }) => [header.producerId, header.producerEpoch, header.baseSequence, header.recordsCount]),
      )
    // 40-byte values against a 100-byte batch.size: two records a batch, five batches a partition.
    const values = (run: string): string => Array.from({ length: 10 }, (_, i) => `${run} reading ${i}`.padEnd(40, '.')).join('\n')
    for (const run of ['first', 'second']) {
      for (const partition of [0, 1]) {
        const produced = await brook(['produce', 'idempotent', '--partition', String(partition), '--batch-size', '100', ...server], { input: values(run) })
        expect(produced.code, produced.stderr).toBe(0)
      }
    }
    const ids = new Set<bigint>()
    for (const partition of [0, 1]) {
      const batches = await producerFields(partition)
      expect(batches).toHaveLength(10)
      const [first, second] = [batches.slice(0, 5), batches.slice(5)]
      for (const run of [first, second]) {
        const producerId = run[0]![0]
        expect(producerId).toBeGreaterThanOrEqual(0n)
        expect(run).toEqual([0, 2, 4, 6, 8].map((baseSequence) => [producerId, 0, baseSequence, 2]))
      }
      ids.add(first[0]![0]).add(second[0]![0])
    }
    // Four runs of brook produce, four producer ids.
    expect(ids.size).toBe(4)

    await createTopic('not-idempotent', 1)
    for (const acks of ['1', '0']) {
      const produced = await brook(['produce', 'not-idempotent', '--acks', acks, ...server], { input: `acks ${acks}\n` })
      expect(produced.code, produced.stderr).toBe(0)
    }
    const plain = await withClient(broker, async (client) => (await readPartition(client, 'not-idempotent', 0)).batches.map(({ header }) => [header.producerId, header.producerEpoch, header.baseSequence]))
    expect(plain).toEqual([[-1n, -1, -1], [-1n, -1, -1]])
  })

  it('stops after --max-messages', async () => {
    await createTopic('many', 1)
    await brook(['produce', 'many', ...server], { input: Array.from({ length: 20 }, (_, i) => `m${i}`).join('\n') })
    const result = await brook(['consume', 'many', '--from-beginning', '--max-messages', '4', ...server])
    expect(result).toMatchObject({ code: 0, stdout: 'm0\nm1\nm2\nm3\n', stderr: 'Processed a total of 4 messages\n' })
  })

  it('follows a partition with long-poll fetches until Ctrl-C', async () => {
    await createTopic('followed', 1)
    const consumer = spawnBrook(['consume', 'followed', '--offset', '0', ...server])
    await brook(['produce', 'followed', ...server], { input: 'first\n' })
    await until(() => consumer.stdout() === 'first\n')
    await brook(['produce', 'followed', ...server], { input: 'second\n' })
    await until(() => consumer.stdout() === 'first\nsecond\n')
    consumer.child.kill('SIGINT')
    expect(await consumer.exited).toBe(0)
    expect(consumer.stderr()).toBe('Processed a total of 2 messages\n')
  })

  it('sends lines as they are typed (linger), and sends the rest and stops on Ctrl-C', async () => {
    await createTopic('typed', 1)
    const producer = spawnBrook(['produce', 'typed', ...server])
    producer.child.stdin!.write('a\nb\n')
    const read = (): Promise<string> => kcat(['-b', broker.address, '-C', '-t', 'typed', '-e', '-q'])
    await until(async () => (await read()) === 'a\nb\n')
    producer.child.stdin!.write('c\n')
    producer.child.kill('SIGINT')
    expect(await producer.exited).toBe(0)
    expect(producer.stderr()).toMatch(/^produced [23] records in \d batch(es)? to typed \(partition 0: [23]\)\n$/)
  })

  it('creates no topic when there is no line to produce, as Kafka\'s console producer asks for a topic only at its first record', async () => {
    const empty = await brook(['produce', 'never-written', ...server], { input: '' })
    expect(empty).toMatchObject({ code: 0, stderr: 'produced 0 records in 0 batches to never-written\n' })
    const missing = await brook(['topics', 'describe', 'never-written', ...server])
    expect(missing).toMatchObject({ code: 1, stderr: "brook: topic 'never-written': UNKNOWN_TOPIC_OR_PARTITION (the topic does not exist)\n" })
  })

  it('refuses a line without the key separator, an unknown partition, a batch over max.message.bytes and a missing topic', async () => {
    await createTopic('strict', 2)
    const noSeparator = await brook(['produce', 'strict', '--key-separator', ':', ...server], { input: 'k:v\nno separator\n' })
    expect(noSeparator).toMatchObject({ code: 1, stderr: "brook: line 2 has no key separator ':': 'no separator'; the record before it was produced\n" })
    const noSeparatorFirst = await brook(['produce', 'strict', '--key-separator', ':', ...server], { input: 'no separator\nk:v\n' })
    expect(noSeparatorFirst).toMatchObject({ code: 1, stderr: "brook: line 1 has no key separator ':': 'no separator'\n" })

    const noPartition = await brook(['produce', 'strict', '--partition', '2', ...server], { input: 'x\n' })
    expect(noPartition).toMatchObject({ code: 1, stderr: "brook: topic 'strict' has 2 partitions; there is no partition 2\n" })
    const noPartitionToRead = await brook(['consume', 'strict', '--partition', '9', '--timeout-ms', '300', ...server])
    expect(noPartitionToRead).toMatchObject({ code: 1, stderr: "brook: topic 'strict' has 2 partitions; there is no partition 9\n" })

    expect((await brook(['topics', 'create', 'small', '--config', 'max.message.bytes=200', ...server])).code).toBe(0)
    const tooLarge = await brook(['produce', 'small', ...server], { input: 'x'.repeat(500) + '\n' })
    expect(tooLarge.code).toBe(1)
    expect(tooLarge.stderr).toMatch(/^brook: cannot produce to small-0: MESSAGE_TOO_LARGE \(.*max\.message\.bytes.*\)\n$/)

    const missing = await brook(['consume', 'no-such-topic', '--timeout-ms', '300', ...server])
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: "brook: topic 'no-such-topic': UNKNOWN_TOPIC_OR_PARTITION (the topic does not exist)\n" })
  })

  it('keeps every request within --max-request-size: batches are sent before they outgrow it, and a line too large for it is refused before it is sent', async () => {
    // A node that closes the connection of a request above 64 KiB, as one above socket.request.max.bytes (100 MiB by
    // default) is closed: a producer that sent one would only see a lost connection, again and again.
    const small = await startBroker({ args: ['--socket-request-max-bytes', '65536'] })
    try {
      const target = ['--bootstrap-server', small.address]
      expect((await brook(['topics', 'create', 'requests', ...target])).code).toBe(0)
      // Twenty 10 KB lines that one batch would hold (--batch-size 1 MB, read at once): 200 KB, sent as batches of 64 KiB at most.
      const values = Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, '0')}-${'v'.repeat(10_000)}`)
      const produced = await brook(['produce', 'requests', '--batch-size', '1000000', '--max-request-size', '65536', ...target], { input: values.join('\n') + '\n' })
      expect(produced).toMatchObject({ code: 0, stderr: expect.stringMatching(/^produced 20 records in [4-9] batches to requests/) })

      const tooLarge = await brook(['produce', 'requests', '--max-request-size', '65536', ...target], { input: `before\n${'x'.repeat(70_000)}\nafter\n` })
      expect(tooLarge).toMatchObject({
        code: 1,
        stderr: 'brook: line 2 is 70077 bytes as a record batch, more than --max-request-size allows (65536; a broker closes the connection of a request larger than its socket.request.max.bytes); the record before it was produced\n',
      })
      expect(lines(await kcat(['-b', small.address, '-C', '-t', 'requests', '-e', '-q']))).toEqual([...values, 'before'])
      expect(small.output()).not.toContain('invalid frame size')
    } finally {
      await small.stop()
      small.cleanup()
    }
  })

  it('splits a batch the broker refuses as larger than max.message.bytes, as Kafka\'s producer does: only a record too large on its own fails, and the records before it are produced', async () => {
    expect((await brook(['topics', 'create', 'capped', '--config', 'max.message.bytes=2000', ...server])).code).toBe(0)
    // 40 records of about 110 bytes: one batch of about 4.5 KB (the default batch.size is 16 KB), split until it fits.
    const values = Array.from({ length: 40 }, (_, i) => `${String(i).padStart(2, '0')}-${'v'.repeat(100)}`)
    for (const acks of ['all', '1']) {
      const produced = await brook(['produce', 'capped', '--acks', acks, ...server], { input: values.join('\n') + '\n' })
      expect(produced).toMatchObject({ code: 0, stderr: expect.stringMatching(/^produced 40 records in /) })
    }
    expect(await consumeAll('capped')).toEqual([...values, ...values])
    // A record too large on its own, between two small ones in the same batch: the one before it is produced, and the
    // error says so; the command stops there, as at a bad line, so the one after it is not.
    const tooLarge = await brook(['produce', 'capped', ...server], { input: `before\n${'x'.repeat(3000)}\nafter\n` })
    expect(tooLarge.code).toBe(1)
    expect(tooLarge.stderr).toMatch(/^brook: cannot produce to capped-0: MESSAGE_TOO_LARGE \(.*max\.message\.bytes.*\); 1 other record was produced\n$/)
    expect((await consumeAll('capped')).slice(80)).toEqual(['before'])
  })
})
