/**
 * A source read with `key: bytes()` (Kafka Streams' `Serdes.ByteArray()` for keys), on a real broker: keys that are
 * no UTF-8 text (a Java IntegerSerializer's four bytes, 0xff 0xfe) are neither refused (BAD_KEY, as text keys are) nor
 * merged with another key (0xff 0xfe is not U+FFFD's UTF-8, ef bf bd); user code gets them as Buffers, a running
 * aggregate keeps one group per key across a restart (its state holds the key as latin1 text), and its results reach
 * the sink keyed by the very bytes read, with the key's base64 as the result's `key` field.
 */
import { afterAll, beforeAll, expect, expectTypeOf, test } from 'vitest'
import { TopologyBuilder, bytes, count, runPipeline, sum, type RunningPipeline } from '../../processor/index.js'
import { FAST_GROUPS } from '../helpers/broker-config.js'
import { startKafkajsBroker, stopKafkajsBroker, type KafkajsBroker } from '../helpers/kafkajs-broker.js'
import { readTopic, stateDir, values, type ReadRecord } from './helpers.js'

let setting: KafkajsBroker

beforeAll(async () => {
  setting = await startKafkajsBroker(FAST_GROUPS, { clientId: 'processor-bytes-keys' })
})
afterAll(async () => {
  await stopKafkajsBroker(setting)
})

/** IntegerSerializer's 200; bytes no UTF-8 decoder reads; U+FFFD's own UTF-8, which a lossy decode makes of 0xff 0xfe. */
const KEYS = { int200: Buffer.of(0x00, 0x00, 0x00, 0xc8), ffFe: Buffer.of(0xff, 0xfe), replacement: Buffer.of(0xef, 0xbf, 0xbd) }

function pipeline() {
  const b = new TopologyBuilder()
  const readings = b.stream<{ n: number }>('bk-readings', { key: bytes() })
  readings
    .map((v, context) => {
      expectTypeOf(context.key).toEqualTypeOf<Buffer | null>()
      return { ...v, keyHex: context.key?.toString('hex') ?? null }
    })
    .to('bk-seen')
  readings.groupByKey().aggregate({ count: count(), total: sum('n') }, { name: 'bk-totals' }).to('bk-totals')
  return b.build()
}

/** The last total of each key (hex) read from the sink, with the key's bytes as the record holds them. */
function lastTotals(records: readonly ReadRecord[]): Map<string, { keyBytes: Buffer; value: { key: string; count: number; total: number } }> {
  const last = new Map<string, { keyBytes: Buffer; value: { key: string; count: number; total: number } }>()
  for (const r of records) last.set(r.keyBytes!.toString('hex'), { keyBytes: r.keyBytes!, value: JSON.parse(r.value!) })
  return last
}

test('keys read as bytes reach user code as Buffers, keep a group each through a keyed aggregation and a restart, and reach the sink byte for byte', async () => {
  const dir = stateDir()
  const options = { applicationId: 'bytes-keys', bootstrapServers: setting.broker.address, stateDir: dir, commitIntervalMs: 200, log: () => {} }
  let running: RunningPipeline = await runPipeline(pipeline(), options)
  try {
    await setting.producer.send({
      topic: 'bk-readings',
      messages: [
        { key: KEYS.int200, value: '{"n":1}' },
        { key: KEYS.ffFe, value: '{"n":2}' },
        { key: KEYS.int200, value: '{"n":3}' },
        { key: KEYS.replacement, value: '{"n":4}' },
      ],
    })
    const seen = await readTopic(setting.kafka, 'bk-seen', (r) => r.length >= 4)
    expect(seen.map((r) => [r.keyBytes!.toString('hex'), values<{ keyHex: string }>([r])[0]!.keyHex])).toEqual([
      ['000000c8', '000000c8'],
      ['fffe', 'fffe'],
      ['000000c8', '000000c8'],
      ['efbfbd', 'efbfbd'],
    ])
    const totals = lastTotals(await readTopic(setting.kafka, 'bk-totals', (r) => lastTotals(r).get('000000c8')?.value.total === 4 && lastTotals(r).size === 3))
    expect(totals.get('000000c8')).toEqual({ keyBytes: KEYS.int200, value: { key: KEYS.int200.toString('base64'), count: 2, total: 4 } })
    expect(totals.get('fffe')).toEqual({ keyBytes: KEYS.ffFe, value: { key: KEYS.ffFe.toString('base64'), count: 1, total: 2 } })
    expect(totals.get('efbfbd')).toEqual({ keyBytes: KEYS.replacement, value: { key: KEYS.replacement.toString('base64'), count: 1, total: 4 } })
    expect(running.metrics().deadLetters).toBe(0)

    // Again on the same state: each key's group is found under its bytes.
    await running.stop()
    running = await runPipeline(pipeline(), options)
    await setting.producer.send({ topic: 'bk-readings', messages: [{ key: KEYS.int200, value: '{"n":5}' }, { key: KEYS.ffFe, value: '{"n":6}' }] })
    const after = lastTotals(await readTopic(setting.kafka, 'bk-totals', (r) => lastTotals(r).get('000000c8')?.value.total === 9 && lastTotals(r).get('fffe')?.value.total === 8))
    expect(after.get('000000c8')).toEqual({ keyBytes: KEYS.int200, value: { key: KEYS.int200.toString('base64'), count: 3, total: 9 } })
    expect(after.get('fffe')).toEqual({ keyBytes: KEYS.ffFe, value: { key: KEYS.ffFe.toString('base64'), count: 2, total: 8 } })
  } finally {
    await running.stop()
  }
})

test('a source switched between text and bytes keys is refused at the start, from its state directory and from the changelog, instead of splitting the state of keys past ASCII in two', async () => {
  // `é` is one character as text (its UTF-8 decoded) and two as bytes (held as latin1): two groups for one key.
  const switching = (keys: 'text' | 'bytes') => {
    const b = new TopologyBuilder()
    const readings = keys === 'bytes' ? b.stream<{ n: number }>('bk-switch', { key: bytes() }) : b.stream<{ n: number }>('bk-switch')
    readings.groupByKey().aggregate({ total: sum('n') }, { name: 'switch-totals' }).to('bk-switch-totals')
    return b.build()
  }
  const dir = stateDir()
  const options = { applicationId: 'bytes-keys-switch', bootstrapServers: setting.broker.address, stateDir: dir, commitIntervalMs: 100, log: () => {} }
  const text = await runPipeline(switching('text'), options)
  try {
    await setting.producer.send({ topic: 'bk-switch', messages: [{ key: 'é', value: '{"n":1}' }] })
    await readTopic(setting.kafka, 'bk-switch-totals', (r) => r.length >= 1)
  } finally {
    await text.stop()
  }
  const refusal = async (stateDirectory: string): Promise<string | undefined> => {
    const started = await runPipeline(switching('bytes'), { ...options, stateDir: stateDirectory })
    try {
      await setting.producer.send({ topic: 'bk-switch', messages: [{ key: 'é', value: '{"n":2}' }] })
      return await started.closed.then(
        () => undefined,
        (error: Error) => error.message,
      )
    } finally {
      await started.stop()
    }
  }
  const refused = /operator switch-totals holds the state of a running aggregate of moments of field 'n', but is now a running aggregate of moments of field 'n' keyed by the bytes of each record key: the state of one would be read as the other's/
  expect(await refusal(dir)).toMatch(refused)
  // A new instance restores the task from the changelog, whose last marker names the layout too.
  expect(await refusal(stateDir())).toMatch(refused)
})
