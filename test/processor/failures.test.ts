/**
 * User code that throws, on a real broker. What runs before any state changes (an event-time function, an
 * aggregation's value function, a deserializer, as well as filter/map/flatMap/keyBy/enrich/updateStateByKey) sends
 * the record to the dead-letter topic and processing goes on (an aggregate's fields function too, when it returns no
 * object or a field JSON cannot write); so does such a function that returns a Promise (an
 * async map or filter), which would otherwise write {} or let every record through. An error that cannot be laid on one record before state
 * changes (here a reduce function) makes the task start again from its last commit, at most three times at the same
 * offset: then the pipeline stops with one error that says where, instead of restarting forever (the dead letters
 * of work done again count once, when committed). Output a sink's
 * serializer cannot write (it throws, or returns something that is not a Buffer, a string or null) is a dead letter
 * too, and stops nothing. A changelog topic deleted under a running pipeline stops it with one error naming the
 * topic (its state went with it), instead of commits retrying forever or the topic coming back empty and uncompacted;
 * so do a deleted source topic, as Kafka Streams stops on one (MissingSourceTopicException), and a deleted global
 * table's topic, instead of the pipeline waiting for good.
 * A source topic with more partitions than its changelog (partitions added to it) is refused at start and stops a
 * running pipeline once its consumer sees them, naming both topics, as Kafka Streams refuses such a changelog. An
 * existing repartition topic whose partition count is not the keyBy's is used as it is, with a warning.
 * Output the cluster refuses as such (a repartition record stamped in 2100: INVALID_TIMESTAMP), and state the store
 * cannot encode (an updateStateByKey state holding a cycle), stop the pipeline after three tries from the same
 * commit, instead of re-initializing the task forever. A countByValue whose selector returns no string names the
 * countByValue in the dead letter, not its internal keyBy. A global table row that cannot be read is a dead letter
 * and the key keeps its previous value (Kafka Streams' LogAndContinue for global stores).
 */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { HeaderNames, TopologyBuilder, count, eventTime, planTopology, runPipeline, sum, tumbling, type Serializer } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { waitFor } from '../helpers/wait.js'
import { delayingSockets, readTopic, stateDir, values, type ReadRecord } from './helpers.js'
import { kcat } from '../cli/run-brook.js'
import { initProducerId } from '../../protocol/messages/init-producer-id.js'

let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-failures' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

interface Event {
  reading?: { n: number; ts: number }
}

const event = (key: string, value: unknown) => ({ key, value: JSON.stringify(value) })

/** A stateful pipeline: the sum of `n` per key, from `<app>-input` to `<app>-sums`. */
function summing(app: string) {
  const b = new TopologyBuilder()
  b.stream<{ n: number }>(`${app}-input`).groupByKey().reduce((a, v) => ({ n: a.n + v.n }), { name: 'sums' }).to(`${app}-sums`)
  return b.build()
}

/** The error a pipeline stops with, or null when it is stopped without one. */
function stopError(pipeline: { closed: Promise<void> }): Promise<Error | null> {
  return pipeline.closed.then(
    () => null,
    (error: Error) => error,
  )
}

// Every block is a lane (describe { concurrent: true } of tests one after another): the blocks run side by side on the
// one broker, each on applications and topics of its own, since their pipelines mostly wait (for commits, rebalances,
// kafkajs retrying a deleted topic).
describe('user code that throws', { concurrent: true }, () => {
  test.sequential('an event-time function, an aggregation value function and a deserializer that throw dead-letter the record; the rest is processed', async () => {
    const b = new TopologyBuilder()
    b.stream<Event>('fail-events', {
      // A function of the value that throws (a TypeError) for a value without `reading`.
      eventTime: eventTime.of((v) => v.reading!.ts),
      value: {
        name: 'versioned json',
        deserialize: (bytes) => {
          const text = bytes!.toString()
          if (text.startsWith('!')) throw new Error('the first byte is not a version this reader knows')
          return JSON.parse(text) as Event
        },
      },
    })
      .groupByKey()
      .windowedBy(tumbling({ size: '10s', grace: 0 }))
      .aggregate({ total: sum((v: Event) => (v.reading!.n < 0 ? (null as unknown as { n: number }).n : v.reading!.n)) }, { name: 'totals' })
      .to('fail-totals')
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: 'fail-dlq', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    try {
      await setting.producer.send({
        topic: 'fail-events',
        messages: [
          event('d1', { reading: { n: 1, ts: 1000 } }),
          event('d1', { other: true }),
          event('d1', { reading: { n: -5, ts: 2000 } }),
          { key: 'd1', value: '!v9' },
          event('d1', { reading: { n: 2, ts: 3000 } }),
          event('d1', { reading: { n: 4, ts: 20_000 } }),
        ],
      })
      const dead = await readTopic(setting.kafka, 'fail-dlq-dlq', (r) => r.length >= 3)
      expect(dead.map((r) => [r.headers[HeaderNames.errorOffset], r.headers[HeaderNames.errorCode], r.headers[HeaderNames.errorReason]])).toEqual([
        ['1', 'USER_FUNCTION_FAILED', expect.stringMatching(/^the event time function of fail-events threw: /)],
        ['2', 'USER_FUNCTION_FAILED', expect.stringMatching(/^the value function of 'total' threw: /)],
        ['3', 'USER_FUNCTION_FAILED', 'the deserializer of fail-events threw: the first byte is not a version this reader knows'],
      ])
      expect(values(await readTopic(setting.kafka, 'fail-totals', (r) => r.length >= 1))).toEqual([{ key: 'd1', windowStart: 0, windowEnd: 10_000, total: 3 }])
      await waitFor('the dead-letter counter', () => pipeline.metrics().deadLetters === 3)
      expect(logged.filter((line) => line.includes('re-initializing'))).toEqual([])
    } finally {
      await pipeline.stop()
    }
  })

  test.sequential('a function that throws with the whole record in its message dead-letters a 700 KB record with the reason cut, and processing goes on', async () => {
    // The reason is a header: whole, with the value's first 512 KiB beside it, the dead letter passed the topic's
    // max.message.bytes (1,048,588), was refused at every retry, and the pipeline stopped.
    const b = new TopologyBuilder()
    b.stream<{ value: unknown }>('fail-messages')
      .map((r) => {
        if (typeof r.value !== 'number') throw new Error(`bad reading: ${JSON.stringify(r)}`)
        return r
      })
      .to('fail-messages-out')
    const pipeline = await runPipeline(b.build(), { applicationId: 'fail-messages', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200 })
    try {
      const huge = JSON.stringify({ value: 'x', padding: 'y'.repeat(700_000) })
      await setting.producer.send({ topic: 'fail-messages', messages: [{ key: 'd1', value: huge }, event('d1', { value: 1 })] })
      const [dead] = await readTopic(setting.kafka, 'fail-messages-dlq', (r) => r.length >= 1)
      const reason = dead!.headers[HeaderNames.errorReason]!
      expect(reason.length).toBeLessThan(2048)
      expect(reason).toMatch(/^map map-1 threw: bad reading: \{"value":"x","padding":"yyy/)
      expect(reason).toMatch(/… \(700056 characters in all\)$/)
      expect(dead!.headers[HeaderNames.errorValueBytes]).toBe(String(huge.length))
      expect(values(await readTopic(setting.kafka, 'fail-messages-out', (r) => r.length >= 1))).toEqual([{ value: 1 }])
    } finally {
      await pipeline.stop()
    }
  })

  test.sequential('an async map or filter dead-letters the record, saying so, instead of writing {} or letting every record through', async () => {
    // A Promise where a value is expected: JSON writes it as {}, and as a filter's answer it is always true. One that
    // rejects, left alone, would be a rejection no one handles, which ends the process.
    const b = new TopologyBuilder()
    const source = b.stream<{ n: number; keep: boolean }>('fail-async')
    source.map(async (r) => {
      if (r.n < 0) throw new Error('negative')
      return { ...r, doubled: r.n * 2 }
    }).to('fail-async-mapped')
    // TypeScript refuses an async predicate; a pipeline run without type checks (tsx, JavaScript) does not.
    source.filter((async (r: { keep: boolean }) => r.keep) as unknown as (r: { keep: boolean }) => boolean).to('fail-async-kept')
    source.to('fail-async-copy')
    const pipeline = await runPipeline(b.build(), { applicationId: 'fail-async', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200 })
    try {
      await setting.producer.send({ topic: 'fail-async', messages: [event('a', { n: 1, keep: false }), event('a', { n: -1, keep: true })] })
      const dead = await readTopic(setting.kafka, 'fail-async-dlq', (r) => r.length >= 4)
      expect(dead.map((r) => [r.headers[HeaderNames.errorOffset], r.headers[HeaderNames.errorCode], r.headers[HeaderNames.errorReason]])).toEqual([
        ['0', 'USER_FUNCTION_FAILED', 'map map-1 returned a Promise: user functions run synchronously (an async one would write {} and let every record through a filter)'],
        ['0', 'USER_FUNCTION_FAILED', 'filter filter-3 returned a Promise: user functions run synchronously (an async one would write {} and let every record through a filter)'],
        ['1', 'USER_FUNCTION_FAILED', 'map map-1 returned a Promise: user functions run synchronously (an async one would write {} and let every record through a filter)'],
        ['1', 'USER_FUNCTION_FAILED', 'filter filter-3 returned a Promise: user functions run synchronously (an async one would write {} and let every record through a filter)'],
      ])
      expect(values(await readTopic(setting.kafka, 'fail-async-copy', (r) => r.length >= 2))).toEqual([{ n: 1, keep: false }, { n: -1, keep: true }])
      await waitFor('the dead-letter counter', () => pipeline.metrics().deadLetters === 4)
    } finally {
      await pipeline.stop()
    }
  })

  test.sequential('a reading nested too deep for the repartition encoding dead-letters it behind a keyBy, instead of stopping the pipeline', async () => {
    // Valid JSON that JSON.parse takes but msgpack (the repartition topic's encoding) cannot write: its encoder
    // recurses, and 20,000 nested arrays overflow the stack. Thrown as it was, the RangeError failed the task at the
    // same offset three times and stopped the pipeline: one reading a device sent could stop the whole fleet's.
    const b = new TopologyBuilder()
    b.stream<{ site: string; n: number }>('fail-deep').keyBy((r) => r.site, { name: 'by-site' }).to('fail-deep-out')
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: 'fail-deep', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    try {
      const deep = `{"site":"a","n":1,"extra":${'['.repeat(20_000)}${']'.repeat(20_000)}}`
      await setting.producer.send({ topic: 'fail-deep', messages: [{ key: 'd1', value: deep }, event('d1', { site: 'a', n: 2 })] })
      const [dead] = await readTopic(setting.kafka, 'fail-deep-dlq', (r) => r.length >= 1)
      expect([dead!.headers[HeaderNames.errorOffset], dead!.headers[HeaderNames.errorCode], dead!.headers[HeaderNames.errorReason]]).toEqual([
        '0',
        'SERIALIZATION_FAILED',
        'keyBy by-site cannot encode the value for fail-deep-by-site-repartition: Maximum call stack size exceeded',
      ])
      expect(dead!.value).toBe(deep)
      expect(values(await readTopic(setting.kafka, 'fail-deep-out', (r) => r.length >= 1))).toEqual([{ site: 'a', n: 2 }])
      await waitFor('the dead-letter counter', () => pipeline.metrics().deadLetters === 1)
      expect(logged.filter((line) => line.includes('re-initializing'))).toEqual([])
    } finally {
      await pipeline.stop()
    }
  })

  test.sequential('a reading whose group (key and fields) is too large for a changelog record dead-letters it, instead of stopping the pipeline', async () => {
    // The group string keys the changelog record and the fields travel in its value too, so a 700 KB device id (the
    // reading itself within the topic's max.message.bytes) made a changelog record of 1.4 MB: MESSAGE_TOO_LARGE at
    // every commit, and the pipeline stopped after three tries, for one device's reading.
    const b = new TopologyBuilder()
    b.stream<{ deviceId: string; value: number; ts: number }>('fail-group', { eventTime: eventTime.field('ts') })
      .groupByKey({ fields: (r) => ({ deviceId: r.deviceId }) })
      .windowedBy(tumbling({ size: '10s', grace: 0 }))
      .aggregate({ total: sum('value') }, { name: 'totals' })
      .to('fail-group-totals')
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: 'fail-group', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    try {
      await setting.producer.send({
        topic: 'fail-group',
        messages: [
          event('k', { deviceId: 'x'.repeat(700_000), value: 1, ts: 1000 }),
          event('k', { deviceId: 'd1', value: 2, ts: 2000 }),
          event('k', { deviceId: 'd1', value: 3, ts: 20_000 }),
        ],
      })
      const [dead] = await readTopic(setting.kafka, 'fail-group-dlq', (r) => r.length >= 1)
      expect([dead!.headers[HeaderNames.errorOffset], dead!.headers[HeaderNames.errorCode], dead!.headers[HeaderNames.errorReason]]).toEqual([
        '0',
        'GROUP_TOO_LARGE',
        'the group of aggregate totals (the record key and fields) takes 700,002 bytes, more than 262,144: its state would not fit a changelog record',
      ])
      expect(values(await readTopic(setting.kafka, 'fail-group-totals', (r) => r.length >= 1))).toEqual([{ deviceId: 'd1', windowStart: 0, windowEnd: 10_000, total: 2 }])
      expect(logged.filter((line) => line.includes('re-initializing'))).toEqual([])
    } finally {
      await pipeline.stop()
    }
  })

  test.sequential('a fields function that returns no object, or a field value JSON cannot write, dead-letters the record, instead of stopping the pipeline', async () => {
    // A BigInt or a cycle in the fields failed the task at that record (the group is the fields' JSON), and null failed
    // it only when the window was emitted, long after; either way three times, and the pipeline stopped.
    const b = new TopologyBuilder()
    b.stream<{ site: unknown; value: number; ts: number }>('fail-fields', { eventTime: eventTime.field('ts') })
      .groupByKey({ fields: (r) => (r.site === 'none' ? (null as unknown as Record<string, unknown>) : { site: r.site === 'big' ? 10n : r.site }) })
      .windowedBy(tumbling({ size: '10s', grace: 0 }))
      .aggregate({ total: sum('value') }, { name: 'site-totals' })
      .to('fail-fields-totals')
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: 'fail-fields', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    try {
      await setting.producer.send({
        topic: 'fail-fields',
        messages: [
          event('k', { site: 'none', value: 1, ts: 1000 }),
          event('k', { site: 'big', value: 2, ts: 2000 }),
          event('k', { site: 's1', value: 3, ts: 3000 }),
          event('k', { site: 's1', value: 4, ts: 20_000 }),
        ],
      })
      const dead = await readTopic(setting.kafka, 'fail-fields-dlq', (r) => r.length >= 2)
      expect(dead.map((r) => [r.headers[HeaderNames.errorOffset], r.headers[HeaderNames.errorCode], r.headers[HeaderNames.errorReason]])).toEqual([
        ['0', 'USER_FUNCTION_FAILED', 'the fields function of aggregate site-totals returned null, not an object of fields'],
        ['1', 'USER_FUNCTION_FAILED', "the fields function of aggregate site-totals returned field 'site', which cannot be part of a group: Do not know how to serialize a BigInt"],
      ])
      expect(values(await readTopic(setting.kafka, 'fail-fields-totals', (r) => r.length >= 1))).toEqual([{ site: 's1', windowStart: 0, windowEnd: 10_000, total: 3 }])
      expect(logged.filter((line) => line.includes('re-initializing'))).toEqual([])
    } finally {
      await pipeline.stop()
    }
  })

  test.sequential('a sink serializer that throws or returns no bytes dead-letters that output, with the reason; other outputs and the pipeline go on', async () => {
    interface Reading {
      n: number
      ts: number
    }
    const picky: Serializer<Reading> = {
      name: 'picky',
      serialize: (v) => {
        if (v.n === 13) throw new Error('13 is never written')
        if (v.n === 7) return v.n as unknown as string
        return JSON.stringify(v)
      },
    }
    const capped: Serializer<{ total: number }> = {
      name: 'capped',
      serialize: (v) => {
        if (v.total > 100) throw new RangeError(`total ${v.total} is over 100`)
        return JSON.stringify(v)
      },
    }
    const b = new TopologyBuilder()
    const readings = b.stream<Reading>('fail-out', { eventTime: eventTime.field('ts') })
    readings.to('fail-out-direct', { name: 'direct', value: picky })
    // JSON cannot write a BigInt: the default serializer throws, and the dead letter holds the value as Node shows it.
    readings.map((r) => (r.n === 5 ? { ...r, big: 10n } : r)).to('fail-out-big', { name: 'big-out' })
    // A map that returns nothing: JSON writes no value for undefined, and a tombstone is asked for with null only.
    readings.map((r) => (r.n === 1 ? undefined : r)).to('fail-out-undefined', { name: 'undefined-out' })
    readings
      .groupByKey()
      .windowedBy(tumbling({ size: '10s', grace: 0 }))
      .aggregate({ total: sum('n') }, { name: 'out-totals' })
      .to('fail-out-totals', { name: 'totals-out', value: capped as Serializer<unknown> })
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: 'fail-out', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    try {
      await setting.producer.send({
        topic: 'fail-out',
        messages: [
          event('d1', { n: 1, ts: 1000 }),
          event('d1', { n: 13, ts: 2000 }),
          event('d1', { n: 7, ts: 3000 }),
          event('d2', { n: 200, ts: 4000 }),
          event('d1', { n: 5, ts: 5000 }),
          event('d1', { n: 2, ts: 20_000 }),
        ],
      })
      const dead = await readTopic(setting.kafka, 'fail-out-dlq', (r) => r.length >= 5)
      const origin = (r: ReadRecord) => [r.headers[HeaderNames.errorOperator], r.headers[HeaderNames.errorOffset] ?? null, r.headers[HeaderNames.errorCode], r.headers[HeaderNames.errorReason]]
      expect(dead.map(origin)).toEqual([
        ['undefined-out', '0', 'SERIALIZATION_FAILED', 'the serializer of fail-out-undefined (json) returned undefined, not a Buffer, a string or null'],
        ['direct', '1', 'SERIALIZATION_FAILED', 'the serializer of fail-out-direct (picky) threw: 13 is never written'],
        ['direct', '2', 'SERIALIZATION_FAILED', 'the serializer of fail-out-direct (picky) returned number, not a Buffer, a string or null'],
        ['big-out', '4', 'SERIALIZATION_FAILED', expect.stringMatching(/^the serializer of fail-out-big \(json\) threw: .*BigInt/)],
        // A window result comes from no one input record: the dead letter holds the result itself.
        ['totals-out', null, 'SERIALIZATION_FAILED', 'the serializer of fail-out-totals (capped) threw: total 200 is over 100'],
      ])
      expect(dead.map((r) => [r.key, r.value])).toEqual([
        ['d1', 'undefined'],
        ['d1', JSON.stringify({ n: 13, ts: 2000 })],
        ['d1', JSON.stringify({ n: 7, ts: 3000 })],
        ['d1', '{ n: 5, ts: 5000, big: 10n }'],
        ['d2', JSON.stringify({ key: 'd2', windowStart: 0, windowEnd: 10_000, total: 200 })],
      ])
      expect(values(await readTopic(setting.kafka, 'fail-out-direct', (r) => r.length >= 3))).toEqual([
        { n: 1, ts: 1000 },
        { n: 200, ts: 4000 },
        { n: 5, ts: 5000 },
        { n: 2, ts: 20_000 },
      ])
      expect(values<Reading>(await readTopic(setting.kafka, 'fail-out-big', (r) => r.length >= 5)).map((v) => v.n)).toEqual([1, 13, 7, 200, 2])
      expect(values(await readTopic(setting.kafka, 'fail-out-totals', (r) => r.length >= 1))).toEqual([{ key: 'd1', windowStart: 0, windowEnd: 10_000, total: 26 }])
      await waitFor('the dead-letter counter', () => pipeline.metrics().deadLetters === 5)
      expect(logged.filter((line) => line.includes('re-initializing'))).toEqual([])
    } finally {
      await pipeline.stop()
    }
  })

  test.sequential('a reduce function that throws on every try stops the pipeline after three tries at the same offset, with one error saying where, and skips nothing', async () => {
    const sums = (reducer: (a: { n: number }, v: { n: number }) => { n: number }) => {
      const b = new TopologyBuilder()
      b.stream<{ n: number }>('fail-reduce').groupByKey().reduce(reducer, { name: 'sums' }).to('fail-sums')
      return b.build()
    }
    const options = { applicationId: 'fail-loop', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200 }
    const logged: string[] = []
    const strict = sums((a, v) => {
      if (v.n < 0) throw new Error(`cannot add ${v.n}`)
      return { n: a.n + v.n }
    })
    const pipeline = await runPipeline(strict, { ...options, log: (line) => logged.push(line) })
    const stopped = pipeline.closed.then(
      () => null,
      (error: Error) => error,
    )
    try {
      // The record that is not JSON is a dead letter each of the three times the task runs it, never committed.
      await setting.producer.send({ topic: 'fail-reduce', messages: [event('k', { n: 1 }), event('k', { n: 2 }), { key: 'k', value: 'not json' }, event('k', { n: -1 }), event('k', { n: 3 })] })
      const error = await stopped
      expect(error?.message).toBe('task 0_0 failed 3 times in a row at offset 3 of fail-reduce-0: cannot add -1')
      expect(logged.filter((line) => line.includes('re-initializing'))).toHaveLength(2)
      expect(pipeline.metrics().deadLetters).toBe(0)
      // After the error the pipeline has stopped already; stop() then resolves (the error is `closed`'s), as Kafka
      // Streams' close() returns on an instance in ERROR: a shutdown handler's unguarded stop() never rejects.
      await expect(pipeline.stop()).resolves.toBeUndefined()
    } finally {
      await pipeline.stop()
    }
    // Stopping committed nothing past the failing record: a fixed reduce function, restarted, adds it.
    const fixed = await runPipeline(sums((a, v) => ({ n: a.n + v.n })), { ...options, log: () => {} })
    try {
      // A running reduce writes { key, value } at commits; 6 would mean the -1 was skipped.
      const sum = (r: { value: string | null }) => (JSON.parse(r.value!) as { value: { n: number } }).value.n
      const results = await readTopic(setting.kafka, 'fail-sums', (r) => r.some((x) => [5, 6].includes(sum(x))))
      expect(sum(results.at(-1)!)).toBe(5)
      // Counted once its commit is durable, however many times the work was done before.
      await waitFor('the dead-letter counter', () => fixed.metrics().deadLetters === 1)
      expect((await readTopic(setting.kafka, 'fail-loop-dlq', (r) => r.length >= 1)).map((r) => r.headers[HeaderNames.errorOffset])).toEqual(['2'])
    } finally {
      await fixed.stop()
    }
  })
})

describe('an async reduce function', { concurrent: true }, () => {
  test.sequential('stops the pipeline after three tries at the same offset, saying that it returned a Promise, instead of keeping one as the state', async () => {
    // Its Promise would be the group's state (written as {}); one that rejects would end the process.
    const b = new TopologyBuilder()
    b.stream<{ n: number }>('fail-async-reduce')
      .groupByKey()
      .reduce((async (a: { n: number }, v: { n: number }) => {
        if (v.n < 0) throw new Error('negative')
        return { n: a.n + v.n }
      }) as unknown as (a: { n: number }, v: { n: number }) => { n: number }, { name: 'async-sums' })
      .to('fail-async-sums')
    const pipeline = await runPipeline(b.build(), { applicationId: 'fail-async-reduce', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: () => {} })
    const stopped = stopError(pipeline)
    try {
      await setting.producer.send({ topic: 'fail-async-reduce', messages: [event('k', { n: 1 }), event('k', { n: -1 })] })
      const error = await stopped
      expect(error?.message).toBe('task 0_0 failed 3 times in a row at offset 1 of fail-async-reduce-0: the reduce function returned a Promise: user functions run synchronously')
    } finally {
      await pipeline.stop().catch(() => {})
    }
  })
})

describe('output the cluster refuses', { concurrent: true }, () => {
  test.sequential('a reading stamped in 2100 behind a keyBy (its repartition record refused: INVALID_TIMESTAMP) stops the pipeline after three tries, saying why', async () => {
    // The event time travels as the repartition record's timestamp, which the broker refuses past
    // message.timestamp.after.max.ms (KIP-937); every retry from the last commit meets it again.
    const b = new TopologyBuilder()
    b.stream<{ ts: number }>('refused-input', { eventTime: eventTime.field('ts') })
      .keyBy(() => 'all', { name: 'everything' })
      .groupByKey()
      .windowedBy(tumbling({ size: '5s', grace: 0 }))
      .aggregate({ total: sum('ts') }, { name: 'all-5s' })
      .to('refused-totals')
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: 'refused', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    const stopped = stopError(pipeline)
    try {
      await setting.producer.send({ topic: 'refused-input', messages: [event('a', { ts: 1000 }), event('b', { ts: Date.UTC(2100, 0, 1) }), event('c', { ts: 2000 })] })
      const error = await stopped
      // Offset 0 is the last commit's position, not the reading to blame (offset 1): the error says so, and which records.
      expect(error?.message).toMatch(/^task 0_0 failed 3 times in a row at offset 0 of refused-input-0: the cluster refused records the task wrote since its last commit \(INVALID_TIMESTAMP: .*timestamp.*\): records stamped with their event time \(repartition records, /i)
      expect(logged.filter((line) => line.includes('re-initializing'))).toHaveLength(2)
    } finally {
      await pipeline.stop().catch(() => {})
    }
  })
})

describe('state the store cannot keep', { concurrent: true }, () => {
  test.sequential('an updateStateByKey state holding a cycle is a dead letter naming the operator, and processing goes on', async () => {
    // The state was encoded (msgpack) only at the commit, which failed the same way at every retry and stopped the
    // pipeline after three; it is copied as the store keeps it when it is put, so the record that made it is refused.
    const b = new TopologyBuilder()
    b.stream<{ n: number; cycle?: boolean }>('cyclic-input')
      .groupByKey()
      .updateStateByKey((_state, v) => {
        if (!v.cycle) return { n: v.n }
        const state: Record<string, unknown> = { n: v.n }
        state.self = state
        return state
      }, { name: 'latest' })
      .to('cyclic-states')
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: 'cyclic', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    try {
      await setting.producer.send({ topic: 'cyclic-input', messages: [event('a', { n: 1 }), event('b', { n: 2, cycle: true }), event('b', { n: 3 })] })
      expect(values(await readTopic(setting.kafka, 'cyclic-states', (r) => r.length >= 2))).toEqual([{ n: 1 }, { n: 3 }])
      const [dead] = await readTopic(setting.kafka, 'cyclic-dlq', (r) => r.length >= 1)
      expect([dead!.key, dead!.headers[HeaderNames.errorOffset], dead!.headers[HeaderNames.errorCode]]).toEqual(['b', '1', 'SERIALIZATION_FAILED'])
      expect(dead!.headers[HeaderNames.errorReason]).toMatch(/^updateState latest returned state for group "b" that cannot be stored: /)
      expect(logged.filter((line) => line.includes('re-initializing'))).toEqual([])
    } finally {
      await pipeline.stop()
    }
  })

  test.sequential('an updateStateByKey state holding a Set is a dead letter saying what it would read back as, instead of failing every record of its group after a restart', async () => {
    // msgpack gives a Set back as an array and a Map as a plain object: the state worked while cached, and after a
    // restart every record of the group was a dead letter (`tags.add is not a function`).
    const b = new TopologyBuilder()
    b.stream<{ tag: string }>('set-state-input')
      .groupByKey()
      .updateStateByKey<{ tags: Set<string> }>((state, v) => ({ tags: (state?.tags ?? new Set<string>()).add(v.tag) }), { name: 'tags' })
      .map((state) => [...state.tags])
      .to('set-state-tags')
    const pipeline = await runPipeline(b.build(), { applicationId: 'set-state', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: () => {} })
    try {
      await setting.producer.send({ topic: 'set-state-input', messages: [event('a', { tag: 'red' })] })
      const [dead] = await readTopic(setting.kafka, 'set-state-dlq', (r) => r.length >= 1)
      expect([dead!.headers[HeaderNames.errorCode], dead!.headers[HeaderNames.errorReason]]).toEqual([
        'SERIALIZATION_FAILED',
        'updateState tags returned state for group "a" that cannot be stored: its tags is a Set, which the store gives back as an array: keep state as plain objects, arrays, strings, numbers, booleans, null and Dates',
      ])
      await waitFor('the dead-letter counter', () => pipeline.metrics().deadLetters === 1)
    } finally {
      await pipeline.stop()
    }
  })

  test.sequential('a value whose msgpack is too large for an internal topic (a repartition record, a reduce or updateStateByKey state) is a dead letter, and the records around it are processed', async () => {
    // msgpack writes each fractional number in 9 bytes: 240,000 `0.1` are 960 KB of JSON, within the topic's
    // max.message.bytes, and 2.16 MB of msgpack. The cluster refused the repartition or changelog record at every
    // commit, and the pipeline stopped after three tries, the records before it never written either.
    const b = new TopologyBuilder()
    const readings = b.stream<{ site: string; samples?: number[]; n: number }>('fail-big')
    readings.keyBy((r) => r.site, { name: 'by-site' }).to('fail-big-by-site')
    readings.groupByKey().updateStateByKey<{ last: { samples?: number[]; n: number } }>((_state, v) => ({ last: v }), { name: 'last' }).to('fail-big-last')
    readings.groupByKey().reduce((a, v) => ({ ...v, n: a.n + v.n }), { name: 'total' }).to('fail-big-total')
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: 'fail-big', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    try {
      const big = JSON.stringify({ site: 'a', samples: Array.from({ length: 240_000 }, () => 0.1), n: 2 })
      expect(big.length).toBeLessThan(1_000_000)
      await setting.producer.send({ topic: 'fail-big', messages: [event('k', { site: 'a', n: 1 }), { key: 'k', value: big }, event('k', { site: 'a', n: 3 })] })
      expect(values(await readTopic(setting.kafka, 'fail-big-by-site', (r) => r.length >= 2))).toEqual([{ site: 'a', n: 1 }, { site: 'a', n: 3 }])
      expect(values(await readTopic(setting.kafka, 'fail-big-last', (r) => r.length >= 2))).toEqual([{ last: { site: 'a', n: 1 } }, { last: { site: 'a', n: 3 } }])
      expect(values(await readTopic(setting.kafka, 'fail-big-total', (r) => r.some((record) => JSON.parse(record.value!).value.n === 4))).at(-1)).toEqual({ key: 'k', value: { site: 'a', n: 4 } })
      const dead = await readTopic(setting.kafka, 'fail-big-dlq', (r) => r.length >= 3)
      expect(dead.map((record) => [record.headers[HeaderNames.errorOffset], record.headers[HeaderNames.errorCode]])).toEqual([
        ['1', 'SERIALIZATION_FAILED'],
        ['1', 'SERIALIZATION_FAILED'],
        ['1', 'SERIALIZATION_FAILED'],
      ])
      expect(dead.map((record) => record.headers[HeaderNames.errorReason]).sort()).toEqual([
        expect.stringMatching(/^keyBy by-site would write 2,?\d{3},?\d{3} bytes of msgpack to fail-big-by-site-repartition, above the 1000000 an internal topic's record may take$/),
        expect.stringMatching(/^the value takes \d+ bytes of msgpack, above the 1000000 a changelog record may take as the reduce's state$/),
        expect.stringMatching(/^updateState last returned state for group "k" of \d+ bytes of msgpack, above the 1000000 a changelog record may take$/),
      ])
      expect(logged.filter((line) => line.includes('re-initializing'))).toEqual([])
    } finally {
      await pipeline.stop()
    }
  })
})

describe('a reduce or updateStateByKey state that cannot be kept', { concurrent: true }, () => {
  test.sequential('a reduced value that grows past the limit or that the store cannot keep, and a key too large for a changelog record, are dead letters; the state stays as it was and processing goes on', async () => {
    const b = new TopologyBuilder()
    const input = b.stream<{ s: string; kind?: string }>('grow-input')
    input.groupByKey().reduce((a, v) => (v.kind === 'map' ? ({ s: a.s, m: new Map() } as unknown as typeof a) : { s: a.s + v.s }), { name: 'joined' }).to('grow-joined')
    input.groupByKey().updateStateByKey<number>((n) => (n ?? 0) + 1, { name: 'seen' }).to('grow-seen')
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: 'grow', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    try {
      const part = 'x'.repeat(400_000)
      // One request each: together they would pass the topic's max.message.bytes.
      for (const message of [event('k', { s: part }), event('k', { s: part }), event('k', { s: part }), event('k', { s: 'y', kind: 'map' }), event('k', { s: 'z' })]) {
        await setting.producer.send({ topic: 'grow-input', messages: [message] })
      }
      // kcat for a 300 KB key: kafkajs 2.2.4's producer takes seconds to minutes over keys past about 100 KB.
      await kcat(['-P', '-b', setting.broker.address, '-t', 'grow-input', '-K', '|'], `${'b'.repeat(300_000)}|${JSON.stringify({ s: 'w' })}\n`)
      // 400 KB, 800 KB, then 1.2 MB refused; the Map refused; then 800 KB + 'z'.
      const joined = values(await readTopic(setting.kafka, 'grow-joined', (r) => r.some((record) => JSON.parse(record.value!).value.s.endsWith('z')))).map((v) => (v as { value: { s: string } }).value.s.length)
      expect(joined.at(-1)).toBe(800_001)
      expect(joined).not.toContain(1_200_000)
      const dead = await readTopic(setting.kafka, 'grow-dlq', (r) => r.length >= 4)
      const ofK = dead.filter((record) => record.key === 'k')
      expect(ofK.map((record) => [record.headers[HeaderNames.errorOffset], record.headers[HeaderNames.errorCode]])).toEqual([
        ['2', 'SERIALIZATION_FAILED'],
        ['3', 'SERIALIZATION_FAILED'],
      ])
      expect(ofK[0]!.headers[HeaderNames.errorReason]).toMatch(/^the reduced value takes \d+ bytes of msgpack, above the 1000000 a changelog record may take as the reduce's state$/)
      expect(ofK[1]!.headers[HeaderNames.errorReason]).toMatch(/^the reduced value cannot be kept as the reduce's state: its m is a Map/)
      const ofBigKey = dead.filter((record) => record.key !== 'k')
      expect(ofBigKey.map((record) => record.headers[HeaderNames.errorCode])).toEqual(['GROUP_TOO_LARGE', 'GROUP_TOO_LARGE'])
      expect(ofBigKey.map((record) => record.headers[HeaderNames.errorReason]).sort()).toEqual([
        'the group of reduce joined (the record key and fields) takes 300,000 bytes, more than 262,144: its state would not fit a changelog record',
        'the group of updateState seen (the record key and fields) takes 300,000 bytes, more than 262,144: its state would not fit a changelog record',
      ])
      expect(logged.filter((line) => line.includes('re-initializing'))).toEqual([])
    } finally {
      await pipeline.stop()
    }
  })
})

describe('open windows of one group', { concurrent: true }, () => {
  test.sequential("a windowed reduce's record that would take its group's open windows past what one changelog record holds is a dead letter (GROUP_TOO_LARGE); the windows stay as they were and the pipeline goes on", async () => {
    // One-minute windows with a ten-minute grace: three windows of one key stay open together, and a group's open
    // windows are one changelog record. Each value is within the limit; three of them together are not.
    const b = new TopologyBuilder()
    b.stream<{ s: string; ts: number }>('wgrow-input', { eventTime: eventTime.of((v) => v.ts) })
      .groupByKey()
      .windowedBy(tumbling({ size: '1m', grace: '10m' }))
      .reduce((a, v) => ({ s: a.s + v.s, ts: v.ts }), { name: 'joined', emit: 'update' })
      .to('wgrow-joined')
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: 'wgrow', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    try {
      const part = 'x'.repeat(400_000)
      // One request each: together they would pass the topic's max.message.bytes.
      for (const message of [event('k', { s: part, ts: 0 }), event('k', { s: part, ts: 60_000 }), event('k', { s: part, ts: 120_000 }), event('k', { s: 'z', ts: 61_000 })]) {
        await setting.producer.send({ topic: 'wgrow-input', messages: [message] })
      }
      const dead = await readTopic(setting.kafka, 'wgrow-dlq', (r) => r.length >= 1)
      expect(dead.map((record) => [record.key, record.headers[HeaderNames.errorOffset], record.headers[HeaderNames.errorCode]])).toEqual([['k', '2', 'GROUP_TOO_LARGE']])
      expect(dead[0]!.headers[HeaderNames.errorReason]).toMatch(/^the open windows of group "k" would hold 12000\d\d bytes of msgpack with this value of 4000\d\d, past the 1000000 one changelog record holds/)
      // The record after it is processed: the second window gets its 'z'.
      const joined = await readTopic(setting.kafka, 'wgrow-joined', (r) => values(r).some((v) => (v as { value: { s: string } }).value.s.endsWith('z')))
      const last = values(joined).at(-1) as { windowStart: number; value: { s: string } }
      expect([last.windowStart, last.value.s.length]).toEqual([60_000, 400_001])
      expect(values(joined).map((v) => (v as { windowStart: number }).windowStart)).not.toContain(120_000)
      expect(logged.filter((line) => line.includes('re-initializing') || line.includes('refused'))).toEqual([])
      await waitFor('the dead-letter counter', () => pipeline.metrics().deadLetters === 1)
    } finally {
      await pipeline.stop()
    }
  })
})

describe("a group's state past Kafka's default max.message.bytes", { concurrent: true }, () => {
  /** Two reduces of one group, each keeping a 600 KB value (within its own limit); the group's one changelog record holds both. */
  function twoStates(prefix: string): TopologyBuilder {
    const b = new TopologyBuilder()
    const input = b.stream<{ s: string }>(`${prefix}-input`)
    input.groupByKey().reduce((_a, v) => v, { name: 'latest' }).map((r) => ({ n: r.value.s.length })).to(`${prefix}-latest`)
    input.groupByKey().reduce((a, v) => (v.s.length > a.s.length ? v : a), { name: 'longest' }).map((r) => ({ n: r.value.s.length })).to(`${prefix}-longest`)
    return b
  }

  test.sequential("fits the changelog the pipeline creates, whose max.message.bytes is sized for its operators, and is restored from it", async () => {
    const b = twoStates('twofit')
    const changelog = planTopology(b.build(), { applicationId: 'twofit' }).subtopologies[0]!.changelogTopic!
    const first = await runPipeline(b.build(), { applicationId: 'twofit', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: () => {} })
    try {
      await setting.producer.send({ topic: 'twofit-input', messages: [event('k', { s: 'x'.repeat(600_000) })] })
      expect(values(await readTopic(setting.kafka, 'twofit-latest', (r) => r.length >= 1))).toEqual([{ n: 600_000 }])
      expect(values(await readTopic(setting.kafka, 'twofit-longest', (r) => r.length >= 1))).toEqual([{ n: 600_000 }])
    } finally {
      await first.stop()
    }
    const { resources } = await setting.admin.describeConfigs({ resources: [{ type: 2, name: changelog, configNames: ['max.message.bytes', 'cleanup.policy'] }], includeSynonyms: false })
    // Two operators of 1,000,000 bytes each, the group twice (256 KiB), and 64 KiB of the record's own.
    expect(Object.fromEntries(resources[0]!.configEntries.map((e) => [e.configName, e.configValue]))).toEqual({ 'max.message.bytes': '2589824', 'cleanup.policy': 'compact' })
    // A new state directory: the state comes back from the changelog, the 600 KB group record included.
    const second = await runPipeline(b.build(), { applicationId: 'twofit', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: () => {} })
    try {
      await setting.producer.send({ topic: 'twofit-input', messages: [event('k', { s: 'y'.repeat(10) })] })
      expect(values(await readTopic(setting.kafka, 'twofit-latest', (r) => r.length >= 2)).at(-1)).toEqual({ n: 10 })
      expect(values(await readTopic(setting.kafka, 'twofit-longest', (r) => r.length >= 2)).at(-1)).toEqual({ n: 600_000 })
      expect(second.metrics().restoredRecords).toBeGreaterThanOrEqual(1)
    } finally {
      await second.stop()
    }
  })

  test.sequential("stops the pipeline on a changelog made before with Kafka's default, with an error naming it; raising that topic's max.message.bytes lets it go on", async () => {
    const b = twoStates('twostate')
    const changelog = planTopology(b.build(), { applicationId: 'twostate' }).subtopologies[0]!.changelogTopic!
    // As an earlier version of the pipeline, or another tool, left it.
    await setting.admin.createTopics({ waitForLeaders: true, topics: [{ topic: changelog, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] })
    const options = { applicationId: 'twostate', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: () => {} }
    const first = await runPipeline(b.build(), options)
    await setting.producer.send({ topic: 'twostate-input', messages: [event('k', { s: 'x'.repeat(600_000) })] })
    const error = await stopError(first)
    await first.stop()
    expect(/one record of (\S+) holding every stateful operator's state of the group/.exec(error?.message ?? '')?.[1]).toBe(changelog)
    expect(error?.message).toMatch(/^task 0_0 failed 3 times in a row at offset 0 of twostate-input-0: the cluster refused records the task wrote since its last commit \(MESSAGE_TOO_LARGE: .*\): a record above its topic's max\.message\.bytes, an output or a group's state, which is one record of \S+ holding every stateful operator's state of the group and every open window .*; raise that topic's max\.message\.bytes, or keep less state per group$/)
    // The remedy the error gives, as an operator would apply it.
    await setting.admin.alterConfigs({ validateOnly: false, resources: [{ type: 2, name: changelog, configEntries: [{ name: 'cleanup.policy', value: 'compact' }, { name: 'max.message.bytes', value: '4000000' }] }] })
    const second = await runPipeline(b.build(), options)
    try {
      expect(values(await readTopic(setting.kafka, 'twostate-latest', (r) => r.length >= 1))).toEqual([{ n: 600_000 }])
      expect(values(await readTopic(setting.kafka, 'twostate-longest', (r) => r.length >= 1))).toEqual([{ n: 600_000 }])
    } finally {
      await second.stop()
    }
  })
})

describe('state shared with user code', { concurrent: true }, () => {
  test.sequential('user functions and operators further on get copies: what they change in place reaches no state, so results never depend on a restart (as Kafka Streams stores serialize on put and deserialize on get)', async () => {
    const b = new TopologyBuilder()
    const input = b.stream<{ tag: string; n: number; fail?: boolean }>('shared-input')
    // A function that changes the state in place and then throws: the record is a dead letter, and the state is as before.
    const seen = input.groupByKey().updateStateByKey<{ n: number; seen: string[] }>((state, v) => {
      const current = state ?? { n: 0, seen: [] }
      current.n++
      current.seen.push(v.tag)
      if (v.fail) throw new Error('refused after changing the state')
      return current
    }, { name: 'seen' })
    seen.to('shared-seen')
    // An operator after it that changes the value it gets: the state (and what was already sent) stays as it was.
    seen.map((state) => Object.assign(state, { touched: true })).to('shared-touched')
    // A running reduce, and a branch declared after it that changes the record in place: the reduce keeps what it was given.
    input.groupByKey().reduce((a, v) => ({ tag: 'sum', n: a.n + v.n }), { name: 'sum' }).to('shared-sum')
    input.map((v) => Object.assign(v, { n: v.n * 100 })).to('shared-scaled')
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: 'shared', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    try {
      await setting.producer.send({ topic: 'shared-input', messages: [event('k', { tag: 't1', n: 1 }), event('k', { tag: 't2', n: 2, fail: true }), event('k', { tag: 't3', n: 3 })] })
      expect(values(await readTopic(setting.kafka, 'shared-seen', (r) => r.length >= 2))).toEqual([
        { n: 1, seen: ['t1'] },
        { n: 2, seen: ['t1', 't3'] },
      ])
      expect(values(await readTopic(setting.kafka, 'shared-touched', (r) => r.length >= 2))).toEqual([
        { n: 1, seen: ['t1'], touched: true },
        { n: 2, seen: ['t1', 't3'], touched: true },
      ])
      expect(values(await readTopic(setting.kafka, 'shared-sum', (r) => r.some((record) => JSON.parse(record.value!).value.n === 6))).at(-1)).toEqual({ key: 'k', value: { tag: 'sum', n: 6 } })
      expect(values(await readTopic(setting.kafka, 'shared-scaled', (r) => r.length >= 3)).map((v) => (v as { n: number }).n)).toEqual([100, 200, 300])
      expect(logged.filter((line) => line.includes('re-initializing'))).toEqual([])
    } finally {
      await pipeline.stop()
    }
  })
})

describe('global table rows shared with user code', { concurrent: true }, () => {
  test.sequential("each lookup of a global table gets the row as the table topic holds it: a joiner or an operator further on that changes the row changes nothing in the table", async () => {
    await setting.admin.createTopics({ topics: [{ topic: 'shared-gt-plants', numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] })
    await setting.producer.send({ topic: 'shared-gt-plants', messages: [event('p1', { name: 'a1' })] })
    const b = new TopologyBuilder()
    const plants = b.globalTable<{ name: string; seen?: number[] }>('shared-gt-plants')
    b.stream<{ n: number }>('shared-gt-events')
      .enrich(plants, (e, plant: { name: string; seen?: number[] } | undefined) => ({ n: e.n, plant }), { join: 'inner' })
      .map((joined) => {
        // Decorates the row it was given, in place.
        joined.plant!.seen = [...(joined.plant!.seen ?? []), joined.n]
        return joined
      })
      .to('shared-gt-enriched')
    const pipeline = await runPipeline(b.build(), { applicationId: 'shared-gt', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: () => {} })
    try {
      await setting.producer.send({ topic: 'shared-gt-events', messages: [1, 2, 3].map((n) => event('p1', { n })) })
      expect(values(await readTopic(setting.kafka, 'shared-gt-enriched', (r) => r.length >= 3))).toEqual([
        { n: 1, plant: { name: 'a1', seen: [1] } },
        { n: 2, plant: { name: 'a1', seen: [2] } },
        { n: 3, plant: { name: 'a1', seen: [3] } },
      ])
    } finally {
      await pipeline.stop()
    }
  })
})

describe('headers and keys', { concurrent: true }, () => {
  test.sequential("a record's headers go with it to the sinks (KIP-244) and into its dead letter; a key that is no UTF-8 text is a dead letter (BAD_KEY) keeping the key's bytes, instead of being merged with another key", async () => {
    const b = new TopologyBuilder()
    const input = b.stream<{ n: number }>('headers-input')
    input.to('headers-copy')
    input.keyBy(() => 'all', { name: 'one-key' }).map((v) => v).to('headers-rekeyed')
    input.groupByKey().aggregate({ count: count() }, { name: 'counts' }).to('headers-counts')
    const pipeline = await runPipeline(b.build(), { applicationId: 'headers', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: () => {} })
    try {
      // 0x000000c8 and 0x000000ff (Java's IntegerSerializer of 200 and 255) both decode to "\0\0\0\uFFFD".
      await setting.producer.send({
        topic: 'headers-input',
        messages: [
          // A binary value and a name given three times: Kafka headers are an ordered list of byte values.
          { key: 'd1', value: JSON.stringify({ n: 1 }), headers: { traceparent: '00-abc-01', 'content-type': 'application/json', bin: Buffer.from('00fffe80c328', 'hex'), dup: ['first', 'second', 'third'] } },
          { key: Buffer.from('000000c8', 'hex'), value: JSON.stringify({ n: 2 }), headers: { traceparent: '00-def-01' } },
          { key: Buffer.from('000000ff', 'hex'), value: JSON.stringify({ n: 3 }) },
          { key: 'd1', value: 'not json', headers: { traceparent: '00-ghi-01' } },
        ],
      })
      const sent = { traceparent: Buffer.from('00-abc-01'), 'content-type': Buffer.from('application/json'), bin: Buffer.from('00fffe80c328', 'hex'), dup: ['first', 'second', 'third'].map((v) => Buffer.from(v)) }
      const [copied] = await readTopic(setting.kafka, 'headers-copy', (r) => r.length >= 1)
      expect(copied!.rawHeaders).toEqual(sent)
      const [rekeyed] = await readTopic(setting.kafka, 'headers-rekeyed', (r) => r.length >= 1)
      expect([rekeyed!.key, rekeyed!.rawHeaders]).toEqual(['all', sent])
      const dead = await readTopic(setting.kafka, 'headers-dlq', (r) => r.length >= 3)
      expect(dead.map((record) => [record.keyBytes?.toString('hex'), record.headers[HeaderNames.errorCode], record.headers.traceparent])).toEqual([
        ['000000c8', 'BAD_KEY', '00-def-01'],
        ['000000ff', 'BAD_KEY', undefined],
        ['6431', 'NOT_JSON', '00-ghi-01'],
      ])
      expect(dead[0]!.headers[HeaderNames.errorReason]).toBe("the record's key (4 bytes, 0x000000c8) is not UTF-8 text: the processor's keys are strings")
      // Only d1 was counted: the two keys that are no text did not become one key counted twice.
      expect(values(await readTopic(setting.kafka, 'headers-counts', (r) => r.length >= 1)).map((v) => (v as { count: number }).count)).toEqual([1])
    } finally {
      await pipeline.stop()
    }
  })
})

describe('countByValue', { concurrent: true }, () => {
  test.sequential('a record whose selector returns no string, or throws, is a dead letter whose reason names the countByValue and what the selector returned, never its internal keyBy', async () => {
    // countByValue is made of a keyBy (to repartition by the value) and a count; the reason named `keyBy
    // kinds-by-value`, an operator the user never wrote, and said only `returned number`.
    const b = new TopologyBuilder()
    b.stream<{ kind?: unknown }>('fail-cbv')
      .countByValue(
        (e) => {
          if (e.kind === 'boom') throw new Error('no kind to count')
          return e.kind as string
        },
        { name: 'kinds' },
      )
      .to('fail-cbv-counts')
    const pipeline = await runPipeline(b.build(), { applicationId: 'fail-cbv', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: () => {} })
    try {
      await setting.producer.send({ topic: 'fail-cbv', messages: [event('d1', { kind: 'open' }), event('d1', { kind: 42 }), event('d1', {}), event('d1', { kind: 'boom' }), event('d2', { kind: 'open' })] })
      const dead = await readTopic(setting.kafka, 'fail-cbv-dlq', (r) => r.length >= 3)
      const counts = 'countByValue kinds counts the strings its selector returns (String(...) a value to count it)'
      expect(dead.map((r) => [r.headers[HeaderNames.errorOffset], r.headers[HeaderNames.errorCode], r.headers[HeaderNames.errorReason]])).toEqual([
        ['1', 'USER_FUNCTION_FAILED', `the selector of countByValue kinds returned number 42, not a string: ${counts}`],
        ['2', 'USER_FUNCTION_FAILED', `the selector of countByValue kinds returned undefined, not a string: ${counts}`],
        ['3', 'USER_FUNCTION_FAILED', 'the selector of countByValue kinds threw: no kind to count'],
      ])
      // The readable records are counted.
      await readTopic(setting.kafka, 'fail-cbv-counts', (r) => values(r).some((v) => v.value === 'open' && v.count === 2))
      await waitFor('the dead-letter counter', () => pipeline.metrics().deadLetters === 3)
    } finally {
      await pipeline.stop()
    }
  })
})

describe('a global table row that cannot be read', { concurrent: true }, () => {
  test.sequential('is a dead letter naming the table, counted, and the key keeps its previous value, as Kafka Streams skips it with LogAndContinue', async () => {
    // Before, such a row was skipped with a log line only: nothing in the dead-letter topic or the counter said that
    // the table had not taken it.
    const admin = setting.kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: 'fail-gt-limits', numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] })
    await admin.disconnect()
    await setting.producer.send({ topic: 'fail-gt-limits', messages: [event('d1', { limit: 7 })] })
    const b = new TopologyBuilder()
    const limits = b.globalTable<{ limit: number }>('fail-gt-limits')
    b.stream<{ n: number }>('fail-gt-events')
      .enrich(limits, (e, limit: { limit: number } | undefined) => ({ ...e, limit: limit?.limit ?? null }))
      .to('fail-gt-enriched')
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: 'fail-gt', bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    try {
      // A new row of d1 that is not JSON, and a first row of d2 that is not either.
      // And a row whose key is no UTF-8 text: it would read as the key "d\uFFFD" any other such bytes read as too.
      await setting.producer.send({ topic: 'fail-gt-limits', messages: [{ key: 'd1', value: 'limit=8' }, { key: 'd2', value: '{"limit":' }, { key: Buffer.of(0x64, 0xff), value: JSON.stringify({ limit: 9 }) }] })
      const dead = await readTopic(setting.kafka, 'fail-gt-dlq', (r) => r.length >= 3, { timeoutMs: 20_000 })
      expect(dead.map((r) => [r.keyBytes?.toString('hex'), r.value, r.headers[HeaderNames.errorCode], r.headers[HeaderNames.errorTopic], r.headers[HeaderNames.errorPartition], r.headers[HeaderNames.errorOffset]])).toEqual([
        ['6431', 'limit=8', 'NOT_JSON', 'fail-gt-limits', '0', '1'],
        ['6432', '{"limit":', 'NOT_JSON', 'fail-gt-limits', '0', '2'],
        ['64ff', '{"limit":9}', 'BAD_KEY', 'fail-gt-limits', '0', '3'],
      ])
      expect(dead[0]!.headers[HeaderNames.errorReason]).toMatch(/^global table fail-gt-limits: the row of key d1 cannot be read \(value is not JSON: .+\); the table keeps the key's previous value$/)
      expect(dead[2]!.headers[HeaderNames.errorReason]).toBe("global table fail-gt-limits: the record's key (2 bytes, 0x64ff) is not UTF-8 text: the processor's keys are strings; the row is left out")
      await waitFor('the dead-letter counter', () => pipeline.metrics().deadLetters === 3)
      expect(logged.filter((line) => line.startsWith('global table fail-gt-limits: the row of key'))).toHaveLength(2)
      expect(logged.filter((line) => line.startsWith("global table fail-gt-limits: the record's key"))).toHaveLength(1)
      // d1 keeps the limit it had; d2 never had one.
      await setting.producer.send({ topic: 'fail-gt-events', messages: [event('d1', { n: 1 }), event('d2', { n: 2 })] })
      expect(values(await readTopic(setting.kafka, 'fail-gt-enriched', (r) => r.length >= 2))).toEqual([
        { n: 1, limit: 7 },
        { n: 2, limit: null },
      ])
    } finally {
      await pipeline.stop()
    }
  })
})

describe('a global table whose topic does not exist', { concurrent: true }, () => {
  test.sequential('ends the start with one error naming the topic, before the pipeline creates any topic, and leaves no state directory it made', async () => {
    const b = new TopologyBuilder()
    const plants = b.globalTable('fail-missing-plants')
    b.stream<{ plant: string }>('fail-table-events')
      .enrich(plants, (v, plant) => ({ ...v, plant }))
      .to('fail-table-enriched')
    const parent = stateDir()
    await expect(runPipeline(b.build(), { applicationId: 'fail-table', bootstrapServers: setting.broker.address, stateDir: join(parent, 'made', 'by-the-start') })).rejects.toThrow(
      'global table topic fail-missing-plants does not exist: create it first (a global table reads an existing topic, usually compacted)',
    )
    // The start made `made/by-the-start` (and held its lock there); it goes, the directory that was there stays.
    expect(readdirSync(parent)).toEqual([])
    const admin = setting.kafka.admin()
    await admin.connect()
    try {
      const topics = await admin.listTopics()
      expect(topics.filter((t) => t.startsWith('fail-table'))).toEqual([])
    } finally {
      await admin.disconnect()
    }
  })
})

describe('topics deleted under a running pipeline', { concurrent: true }, () => {
  // Two applications of their own: the two guarantees side by side too.
  test.each(['exactly_once', 'at_least_once'] as const)('%s: a deleted changelog topic stops the pipeline with one error naming it, and is not created again', async (guarantee) => {
    const app = `gone-${guarantee}`
    const logged: string[] = []
    const pipeline = await runPipeline(summing(app), { applicationId: app, processingGuarantee: guarantee, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, kafka: { retry: { initialRetryTime: 50 } }, log: (line) => logged.push(line) })
    const stopped = stopError(pipeline)
    try {
      await setting.producer.send({ topic: `${app}-input`, messages: [event('k', { n: 1 })] })
      await readTopic(setting.kafka, `${app}-sums`, (r) => r.length >= 1)
      const changelog = (await setting.admin.listTopics()).find((t) => t.startsWith(`${app}-`) && t.endsWith('-changelog'))!
      await setting.admin.deleteTopics({ topics: [changelog] })
      await setting.producer.send({ topic: `${app}-input`, messages: [event('k', { n: 2 })] })
      const error = await stopped
      expect(error?.message).toMatch(new RegExp(`^${changelog} no longer exists: deleted while the pipeline ran`))
      // Created again by a producer's metadata request, it would be an empty topic without cleanup.policy=compact.
      expect(await setting.admin.listTopics()).not.toContain(changelog)
    } finally {
      await pipeline.stop().catch(() => {})
    }
  })

  // kafkajs's fetches fail (UNKNOWN_TOPIC_OR_PARTITION) and it retries them with no rebalance: unwatched, the pipeline
  // waited for good, and a topic created again was read from the offset reached in the old one.
  test.each(['exactly_once', 'at_least_once'] as const)('%s: a deleted source topic stops the pipeline with one line naming it', async (guarantee) => {
    const app = `gone-source-${guarantee}`
    const logged: string[] = []
    const pipeline = await runPipeline(summing(app), { applicationId: app, processingGuarantee: guarantee, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    const stopped = stopError(pipeline)
    try {
      // A producer of its own, gone before the delete: a kafkajs producer asks for every topic it has written to at
      // each metadata refresh (another test's send to a new topic makes one), with allowAutoTopicCreation, and the
      // broker would create the source again.
      const producer = setting.kafka.producer()
      await producer.connect()
      await producer.send({ topic: `${app}-input`, messages: [event('k', { n: 1 })] }).finally(() => producer.disconnect())
      await readTopic(setting.kafka, `${app}-sums`, (r) => r.length >= 1)
      await setting.admin.deleteTopics({ topics: [`${app}-input`] })
      const error = await stopped
      expect(error?.message).toMatch(new RegExp(`^${app}-input no longer exists: deleted while the pipeline ran \\(a source topic`))
      expect(logged.filter((line) => line.startsWith('stopping after an error'))).toEqual([`stopping after an error: ${error?.message}`])
      expect(error?.message).not.toContain('\n')
    } finally {
      await pipeline.stop().catch(() => {})
    }
  })

  test('a deleted sink topic stops the pipeline with one line naming it as an output, created again empty at the next start', async () => {
    const app = 'gone-sink'
    const logged: string[] = []
    const pipeline = await runPipeline(summing(app), { applicationId: app, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    const stopped = stopError(pipeline)
    try {
      await setting.producer.send({ topic: `${app}-input`, messages: [event('k', { n: 1 })] })
      await readTopic(setting.kafka, `${app}-sums`, (r) => r.length >= 1)
      await setting.admin.deleteTopics({ topics: [`${app}-sums`] })
      await setting.producer.send({ topic: `${app}-input`, messages: [event('k', { n: 2 })] })
      const error = await stopped
      expect(error?.message).toMatch(new RegExp(`^${app}-sums no longer exists: deleted while the pipeline ran \\(an output topic \\(a sink, the late-records or the dead-letter topic\\) is created again, empty`))
      expect(error?.message).not.toContain('changelog or repartition')
      expect(logged.filter((line) => line.startsWith('stopping after an error'))).toEqual([`stopping after an error: ${error?.message}`])
    } finally {
      await pipeline.stop().catch(() => {})
    }
    expect(await setting.admin.listTopics()).not.toContain(`${app}-sums`)
    const again = await runPipeline(summing(app), { applicationId: app, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: () => {} })
    await again.stop()
    expect(await setting.admin.listTopics()).toContain(`${app}-sums`)
  })

  test('a deleted global table topic stops the pipeline with one line naming it', async () => {
    const app = 'gone-table'
    await setting.admin.createTopics({ topics: [{ topic: `${app}-limits`, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }] })
    // A producer of its own, gone before the delete (see above).
    const producer = setting.kafka.producer()
    await producer.connect()
    await producer.send({ topic: `${app}-limits`, messages: [event('d1', { limit: 7 })] }).finally(() => producer.disconnect())
    const b = new TopologyBuilder()
    const limits = b.globalTable<{ limit: number }>(`${app}-limits`)
    b.stream<{ n: number }>(`${app}-events`)
      .enrich(limits, (e, limit: { limit: number } | undefined) => ({ ...e, limit: limit?.limit ?? null }))
      .to(`${app}-enriched`)
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: app, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    const stopped = stopError(pipeline)
    try {
      await setting.admin.deleteTopics({ topics: [`${app}-limits`] })
      const error = await stopped
      expect(error?.message).toMatch(new RegExp(`^${app}-limits no longer exists: deleted while the pipeline ran \\(a global table reads an existing topic: create it again`))
      expect(logged.filter((line) => line.startsWith('stopping after an error'))).toEqual([`stopping after an error: ${error?.message}`])
    } finally {
      await pipeline.stop().catch(() => {})
    }
  })
})

describe('a source topic whose partition count no longer fits its changelog', { concurrent: true }, () => {
  test.sequential('refuses to start, naming both topics, when the changelog has fewer partitions than the source', async () => {
    const app = 'recount-start'
    const first = await runPipeline(summing(app), { applicationId: app, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: () => {} })
    await first.stop()
    await setting.admin.createPartitions({ topicPartitions: [{ topic: `${app}-input`, count: 2 }] })
    const started = runPipeline(summing(app), { applicationId: app, bootstrapServers: setting.broker.address, stateDir: stateDir(), log: () => {} })
    await expect(started).rejects.toMatchObject({ name: 'TopologyError', code: 'BAD_STATE' })
    await expect(started).rejects.toThrow(/^changelog recount-start-\S+-changelog has 1 partitions but recount-start-input has 2: its state would reach the wrong tasks/)
  })

  test.sequential('an existing repartition topic with another partition count is used as it is, with one warning naming both counts', async () => {
    const app = 'recount-repartition'
    await setting.admin.createTopics({ topics: [{ topic: `${app}-by-key-repartition`, numPartitions: 3 }], waitForLeaders: true })
    const b = new TopologyBuilder()
    b.stream<{ k: string; n: number }>(`${app}-input`)
      .keyBy((v) => v.k, { name: 'by-key', partitions: 2 })
      .groupByKey()
      .reduce((a, v) => ({ k: v.k, n: a.n + v.n }), { name: 'sums' })
      .to(`${app}-sums`)
    const logged: string[] = []
    const pipeline = await runPipeline(b.build(), { applicationId: app, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, log: (line) => logged.push(line) })
    try {
      expect(logged.filter((line) => line.includes('repartition topic'))).toEqual([
        `repartition topic ${app}-by-key-repartition already exists with 3 partitions, not the 2 keyBy by-key plans: the stages after it run on 3 (to change that, stop every instance and delete the application's repartition and changelog topics and state directories)`,
      ])
      await setting.producer.send({ topic: `${app}-input`, messages: ['a', 'b', 'c', 'a'].map((k) => event(k, { k, n: 1 })) })
      type Sum = { key: string; value: { k: string; n: number } }
      // The latest sum of each key, over the sums topic's three partitions (each read as far as it is written).
      const latest = (records: readonly ReadRecord[]) => Object.fromEntries(values<Sum>(records).map((v) => [v.key, v.value.n]))
      const out = await readTopic(setting.kafka, `${app}-sums`, (r) => Object.keys(latest(r)).length === 3 && latest(r).a === 2)
      expect(latest(out)).toEqual({ a: 2, b: 1, c: 1 })
      // The stage after the keyBy runs on the repartition topic's partitions: its changelog has 3.
      const changelog = (await setting.admin.listTopics()).find((t) => t.startsWith(`${app}-`) && t.endsWith('-changelog'))!
      const [described] = (await setting.admin.fetchTopicMetadata({ topics: [changelog] })).topics
      expect(described!.partitions).toHaveLength(3)
    } finally {
      await pipeline.stop()
    }
  })

  test.sequential('a stateless source may grow: records of a partition added while the pipeline runs are processed', async () => {
    const app = 'recount-stateless'
    const b = new TopologyBuilder()
    b.stream<{ n: number }>(`${app}-input`).map((v) => ({ n: v.n * 10 })).to(`${app}-out`)
    const pipeline = await runPipeline(b.build(), { applicationId: app, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, metadataMaxAgeMs: 1000, log: () => {} })
    try {
      await setting.producer.send({ topic: `${app}-input`, messages: [{ ...event('k', { n: 1 }), partition: 0 }] })
      await readTopic(setting.kafka, `${app}-out`, (r) => r.length >= 1)
      await setting.admin.createPartitions({ topicPartitions: [{ topic: `${app}-input`, count: 2 }] })
      // A producer that knows the new partition: kafkajs drops a record for a partition its metadata lacks.
      const producer = setting.kafka.producer()
      await producer.connect()
      await producer.send({ topic: `${app}-input`, messages: [{ ...event('k', { n: 2 }), partition: 1 }] }).finally(() => producer.disconnect())
      const out = await readTopic(setting.kafka, `${app}-out`, (r) => r.length >= 2)
      expect(values(out).map((v) => v.n).sort()).toEqual([10, 20])
    } finally {
      await pipeline.stop()
    }
  })

  test.sequential('stops a running pipeline with one error naming both topics when partitions are added to its source, instead of stalling the new task', async () => {
    const app = 'recount-running'
    // The consumer notices the new partition at its next metadata refresh, then the group rebalances. The new task's
    // start is held (its InitProducerId answered 3 s late) so that kafkajs's fetch loop runs with the new assignment
    // first: handed the changelog's missing partition 1, it failed with a TypeError of its own, which stopped the
    // pipeline before the task could say what is wrong (processor/runtime/assignor.ts).
    const kafka = { socketFactory: delayingSockets(initProducerId.request.apiKey, `${app}-0_1`, 3000) }
    const pipeline = await runPipeline(summing(app), { applicationId: app, bootstrapServers: setting.broker.address, stateDir: stateDir(), commitIntervalMs: 200, metadataMaxAgeMs: 1000, kafka, log: () => {} })
    const stopped = stopError(pipeline)
    try {
      await setting.producer.send({ topic: `${app}-input`, messages: [event('k', { n: 1 })] })
      await readTopic(setting.kafka, `${app}-sums`, (r) => r.length >= 1)
      await setting.admin.createPartitions({ topicPartitions: [{ topic: `${app}-input`, count: 2 }] })
      const error = await stopped
      expect(error).toMatchObject({ name: 'TopologyError', code: 'BAD_STATE' })
      expect(error?.message).toMatch(/^recount-running-input now has a partition 1 but changelog recount-running-\S+-changelog has 1 partition: partitions were added to the source topic while the application ran/)
    } finally {
      await pipeline.stop().catch(() => {})
    }
  })
})
