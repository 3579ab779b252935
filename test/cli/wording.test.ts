/**
 * What the CLI says in words: counts agree with their nouns ("1 partition", "1 record in 1 batch", "1 message"), in
 * the client commands and in what `brook start` prints, and `brook --help` and the package describe what Brook is
 * today, not what it will be.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { brook } from './run-brook.js'

describe('CLI wording', () => {
  let broker: BrokerProcess
  let server: string[]
  beforeAll(async () => {
    broker = await startBroker()
    server = ['--bootstrap-server', broker.address]
  })
  afterAll(async () => {
    await broker?.stop()
    broker?.cleanup()
  })

  it('says "1 record", "1 batch", "1 message" and "1 partition", never "1 partitions" or "record(s)"', async () => {
    expect((await brook(['topics', 'create', 'single', '--partitions', '1', ...server])).code).toBe(0)
    expect(await brook(['produce', 'single', ...server], { input: 'only\n' })).toMatchObject({
      code: 0,
      stderr: 'produced 1 record in 1 batch to single (partition 0: 1)\n',
    })
    expect(await brook(['produce', 'single', ...server], { input: 'two\nthree\n' })).toMatchObject({
      code: 0,
      stderr: 'produced 2 records in 1 batch to single (partition 0: 2)\n',
    })
    expect(await brook(['consume', 'single', '--from-beginning', '--max-messages', '1', ...server])).toMatchObject({
      code: 0,
      stdout: 'only\n',
      stderr: 'Processed a total of 1 message\n',
    })
    expect(await brook(['consume', 'single', '--partition', '1', '--timeout-ms', '300', ...server])).toMatchObject({
      code: 1,
      stderr: "brook: topic 'single' has 1 partition; there is no partition 1\n",
    })
    // What `brook start` printed about the topic it created and the one auto-created for a producer.
    expect((await brook(['produce', 'auto', ...server], { input: 'x\n' })).code).toBe(0)
    expect(broker.output()).toContain("created topic 'single' with 1 partition\n")
    expect(broker.output()).toContain("auto-created topic 'auto' with 1 partition\n")
    expect(broker.output()).not.toMatch(/\b1 (partitions|topics|records|members|groups)\b/)
  })

  it('brook --help and package.json describe the broker, its cluster, the commands and the stream processing that exist', async () => {
    const help = await brook(['--help'])
    expect(help.code).toBe(0)
    const description = help.stdout.split('\n\n')[1]!.replace(/\s+/g, ' ')
    expect(description).toContain('Kafka-wire-compatible broker on LevelDB that runs as one node or as a replicated cluster')
    expect(description).toContain('stream-processing pipelines')
    const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { description: string }
    expect(pkg.description).toContain('Kafka-wire-compatible broker on LevelDB that runs as one node or as a replicated cluster')
    expect(pkg.description).toContain('stream-processing pipelines')
    const topicsCreate = (await brook(['topics', 'create', '--help'])).stdout.replace(/\s+/g, ' ')
    expect(topicsCreate).toContain("--replication-factor <n> copies of each partition, at most one per live node (default: the cluster's default.replication.factor)")
  })
})
