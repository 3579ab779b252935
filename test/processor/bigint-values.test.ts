/**
 * A deserializer of one's own may read int64 fields as BigInts, as json-bigint and Java-minded parsers do. A reading
 * whose aggregated field or event time is then a BigInt is not a number: a dead letter (NOT_NUMERIC, BAD_TIMESTAMP)
 * whose reason shows the value, and processing goes on. Before, the reason was worded with JSON.stringify, which
 * throws on a BigInt, so the record failed its task three times and stopped the pipeline.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { HeaderNames, TopologyBuilder, eventTime, runPipeline, sum, tumbling, type Deserializer } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { readTopic, stateDir, values } from './helpers.js'

let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-bigint-values' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

interface Reading {
  v: number | bigint
  ts: number | bigint
  /** The fields this reading's producer wrote as int64, which the deserializer reads as BigInts. */
  int64?: string[]
}

/** JSON whose fields named in `int64` become BigInts. */
const int64Json: Deserializer<Reading> = {
  name: 'int64 json',
  deserialize: (bytes) => {
    const reading = JSON.parse(bytes!.toString()) as Reading
    for (const field of reading.int64 ?? []) {
      const raw = reading[field as 'v' | 'ts']
      reading[field as 'v' | 'ts'] = BigInt(raw)
    }
    return reading
  },
}

test('a BigInt where a number belongs is a dead letter naming it, and the rest is processed', async () => {
  const b = new TopologyBuilder()
  b.stream<Reading>('int64-readings', { value: int64Json, eventTime: eventTime.field('ts') })
    .groupByKey()
    .windowedBy(tumbling({ size: '10s', grace: 0 }))
    // @ts-expect-error v may be a BigInt, which sum's type refuses (a numeric field only): at run time too, as this shows
    .aggregate({ total: sum('v') }, { name: 'totals' })
    .to('int64-totals')
  const logged: string[] = []
  const pipeline = await runPipeline(b.build(), { applicationId: 'int64', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
  try {
    const reading = (value: Reading) => ({ key: 'd1', value: JSON.stringify(value) })
    await setting.producer.send({
      topic: 'int64-readings',
      messages: [
        reading({ v: 1, ts: 1000 }),
        reading({ v: 5, ts: 2000, int64: ['v'] }),
        reading({ v: 7, ts: 3000, int64: ['ts'] }),
        reading({ v: 2, ts: 4000 }),
        reading({ v: 4, ts: 20_000 }),
      ],
    })
    const dead = await readTopic(setting.kafka, 'int64-dlq', (r) => r.length >= 2)
    expect(dead.map((r) => [r.headers[HeaderNames.errorOffset], r.headers[HeaderNames.errorCode], r.headers[HeaderNames.errorReason]])).toEqual([
      ['1', 'NOT_NUMERIC', "field 'v' is not a number: 5n"],
      ['2', 'BAD_TIMESTAMP', 'event time 3000n is not a timestamp in ms since the epoch'],
    ])
    expect(values(await readTopic(setting.kafka, 'int64-totals', (r) => r.length >= 1))).toEqual([{ key: 'd1', windowStart: 0, windowEnd: 10_000, total: 3 }])
    await waitFor('the dead-letter counter', () => pipeline.metrics().deadLetters === 2)
    expect(logged.filter((line) => line.includes('re-initializing'))).toEqual([])
  } finally {
    await pipeline.stop()
  }
})
