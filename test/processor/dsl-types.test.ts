/**
 * The DSL's types as a pipeline author meets them under `"strict": true`. They are checked by the type-check `npm test`
 * runs first (`tsc -p test/tsconfig.json`): an `expectTypeOf` that does not hold, or a `@ts-expect-error` on a line
 * that compiles, fails it. At run time each test builds the topology it typed and looks at what it describes.
 */
import { describe, expect, expectTypeOf, it } from 'vitest'
import { TopologyBuilder, avg, bytes, count, describeTopology, first, hopping, max, percentile, session, staticTable, stddev, sum, tumbling, type AggregationSpec, type Deserializer, type EmitMode, type RecordKey, type Stream, type WindowResultValue, type WindowSpec } from '../../processor/index.js'

describe('DSL types', () => {
  it('countByValue gives { value, count } without a window, and windowStart and windowEnd as well with one', () => {
    const b = new TopologyBuilder()
    const colors = b.stream<{ color: string }>('colors')
    const running = colors.countByValue((v) => v.color, { name: 'by-color' })
    running.map((v) => {
      expectTypeOf(v).toEqualTypeOf<{ value: string; count: number }>()
      // @ts-expect-error a running count has no window
      return v.windowStart
    })
    colors.countByValue((v) => v.color, { name: 'by-color-1m', window: tumbling({ size: '1m', grace: 0 }) }).map((v) => {
      expectTypeOf(v).toEqualTypeOf<WindowResultValue<{ value: string; count: number }>>()
      expectTypeOf(v.windowStart).toEqualTypeOf<number>()
      return v.count
    })
    expect(describeTopology(b.build(), { applicationId: 'types' })).toContain('by-color-1m')
  })

  it("a global table's or a static table's row type reaches enrich's joiner, without undefined for an inner join", () => {
    const b = new TopologyBuilder()
    const plants = b.globalTable<{ name: string }>('plants')
    const limits = staticTable('limits', { d1: { limit: 7 } })
    const readings = b.stream<{ device: string; value: number }>('readings')
    readings
      .enrich(plants, (reading, plant) => {
        expectTypeOf(plant).toEqualTypeOf<{ name: string } | undefined>()
        return { ...reading, plant: plant?.name ?? null }
      })
      .to('with-plants')
    readings
      .enrich(limits, (reading, limit) => {
        expectTypeOf(limit).toEqualTypeOf<{ limit: number }>()
        return { ...reading, over: reading.value > limit.limit }
      }, { join: 'inner' })
      .to('over-limit')
    // @ts-expect-error the joiner's row type is the table's
    readings.enrich(plants, (reading, plant: { height: number } | undefined) => ({ ...reading, plant }))
    expect(describeTopology(b.build(), { applicationId: 'types' })).toMatch(/enrich[\s\S]*enrich/)
  })

  it("flatMap takes an array or another iterable of values, but not a string (an iterable of its characters)", () => {
    const b = new TopologyBuilder()
    const people = b.stream<{ name: string; nicknames: string[]; age: number }>('people')
    expectTypeOf(people.flatMap((p) => p.nicknames)).toEqualTypeOf<Stream<string>>()
    expectTypeOf(people.flatMap((p) => new Set([p.age]))).toEqualTypeOf<Stream<number>>()
    expectTypeOf(
      people.flatMap(function* (p) {
        yield { name: p.name }
      }),
    ).toEqualTypeOf<Stream<{ name: string }>>()
    // @ts-expect-error a string would be one record per character
    people.flatMap((p) => p.name)
    // @ts-expect-error nor a string some of the time
    people.flatMap((p) => (p.age > 0 ? p.nicknames : p.name))
    // A stream of unknown (any) values, as a JavaScript pipeline has, is not checked: the run time refuses the string.
    b.stream('untyped').flatMap((v) => v.name)
    expect(describeTopology(b.build(), { applicationId: 'types' })).toMatch(/flatMap[\s\S]*flatMap/)
  })

  it("an aggregation's field names a numeric field of the stream's values, loose where the values have no type", () => {
    interface Reading {
      deviceId: string
      value: number
      quality?: number | null
      reading: { celsius: number; unit: string }
      extra: unknown
    }
    const b = new TopologyBuilder()
    const grouped = b.stream<Reading>('typed-readings').groupByKey()
    grouped.aggregate({ n: count(), total: sum('value'), q: avg('quality'), c: max('reading.celsius'), e: stddev('extra.anything'), f: sum((r: Reading) => r.value) }, { name: 'fine' })
    // @ts-expect-error no field 'unknown'
    grouped.aggregate({ total: sum('unknown') }, { name: 'unknown-field' })
    // @ts-expect-error deviceId is a string, not a number
    grouped.aggregate({ mean: avg('deviceId') }, { name: 'string-field' })
    // @ts-expect-error reading is an object: its numeric field is reading.celsius
    grouped.windowedBy(tumbling({ size: '1m', grace: 0 })).aggregate({ p: percentile('reading', 0.5) }, { name: 'object-field' })
    // @ts-expect-error a path below a number
    grouped.windowedBy(tumbling({ size: '1m', grace: 0 })).aggregate({ p: max('reading.unit') }, { name: 'nested-string' })
    // A stream whose values have no type (any, as a JavaScript pipeline's) takes any field name: the run time checks it.
    b.stream('untyped-readings').groupByKey().aggregate({ total: sum('nope'), mean: avg('nope.deeper') }, { name: 'untyped' })
    b.stream<unknown>('unknown-readings').groupByKey().aggregate({ total: sum('nope') }, { name: 'unknown-values' })
    expect(describeTopology(b.build(), { applicationId: 'types' })).toContain('untyped')
  })

  it("an aggregate's results carry the group's fields and each output by name, typed by its kind", () => {
    interface Reading {
      deviceId: string
      sensor: string
      value: number
    }
    const b = new TopologyBuilder()
    const readings = b.stream<Reading>('typed-results')
    const bySensor = readings.groupByKey({ fields: (r) => ({ deviceId: r.deviceId, sensor: r.sensor }) })
    bySensor
      .windowedBy(tumbling({ size: '1m', grace: 0 }))
      .aggregate({ n: count(), mean: avg('value'), top: max('value'), sd: stddev('value'), p99: percentile('value', 0.99), earliest: first('value') }, { name: 'stats-1m' })
      .map((v) => {
        expectTypeOf(v).toEqualTypeOf<{ deviceId: string; sensor: string; windowStart: number; windowEnd: number; n: number; mean: number; top: number; sd: number | null; p99: number; earliest: number }>()
        // @ts-expect-error no output 'avg': the outputs are named as written
        return v.avg
      })
    // Without a fields function the results carry the record key (null for a record without one).
    readings.groupByKey().aggregate({ total: sum('value') }, { name: 'running-total' }).map((v, c) => {
      expectTypeOf(v).toEqualTypeOf<{ key: string | null; total: number }>()
      expectTypeOf(c.key).toEqualTypeOf<string | null>()
      return v.total
    })
    // After groupBy the key is the selector's string.
    readings.groupBy((r) => r.sensor, { name: 'by-sensor' }).aggregate({ n: count() }, { name: 'per-sensor' }).map((v) => {
      expectTypeOf(v).toEqualTypeOf<{ key: string; n: number }>()
      return v.n
    })
    // Aggregations typed as a whole (kinds not known as written): every output may be null.
    const loose: Record<string, AggregationSpec<'value'>> = { mean: avg('value') }
    readings.groupByKey().aggregate(loose, { name: 'loose' }).map((v) => {
      expectTypeOf(v.mean).toEqualTypeOf<number | null>()
      return v
    })
    // An output named like a group field is the output at run time (the result is the fields, then the bounds, then
    // the outputs), and so is its type; a group field named windowStart is the window's bound.
    readings
      .groupByKey({ fields: (r) => ({ deviceId: r.deviceId, n: r.sensor, windowStart: r.sensor }) })
      .windowedBy(tumbling({ size: '1m', grace: 0 }))
      .aggregate({ n: count() }, { name: 'n-over-field' })
      .map((v) => {
        expectTypeOf(v).toEqualTypeOf<{ deviceId: string; n: number; windowStart: number; windowEnd: number }>()
        return v.n
      })
    // A value function returns a number (or null or undefined for none): anything else is a dead letter at run time.
    readings.groupByKey().aggregate({ top: max((r: Reading) => r.value * 2) }, { name: 'doubled' })
    // @ts-expect-error a string is no number
    readings.groupByKey().aggregate({ top: max((r: Reading) => r.deviceId) }, { name: 'string-selector' })
    expect(describeTopology(b.build(), { applicationId: 'types' })).toMatch(/stats-1m[\s\S]*running-total[\s\S]*per-sensor/)
  })

  it("a reduce's results carry the group's fields and the reduced value; session windows in emit mode update add retractions", () => {
    const b = new TopologyBuilder()
    const readings = b.stream<{ deviceId: string; value: number }>('reduced')
    readings.groupByKey().reduce((x, y) => (x.value >= y.value ? x : y), { name: 'running-max' }).map((v) => {
      expectTypeOf(v).toEqualTypeOf<{ key: string | null; value: { deviceId: string; value: number } }>()
      return v.value.value
    })
    readings
      .groupByKey()
      .windowedBy(hopping({ size: '5m', advance: '1m', grace: 0 }))
      .reduce((x, y) => ({ ...x, value: x.value + y.value }), { name: 'hopping-sum', emit: 'update' })
      .map((v) => {
        expectTypeOf(v).toEqualTypeOf<WindowResultValue<{ key: string | null; value: { deviceId: string; value: number } }>>()
        // @ts-expect-error only session windows retract
        return v.retracted
      })
    const sessions = readings.groupByKey().windowedBy(session({ gap: '10s', grace: 0 }))
    sessions.aggregate({ n: count() }, { name: 'sessions-final' }).map((v) => {
      expectTypeOf(v).toEqualTypeOf<{ key: string | null; windowStart: number; windowEnd: number; n: number }>()
      return v.n
    })
    sessions.aggregate({ n: count() }, { name: 'sessions-update', emit: 'update' }).map((v) => {
      // @ts-expect-error a retraction holds no outputs
      v.n.toFixed()
      return v.retracted === true ? null : v.n.toFixed()
    })
    sessions.reduce((_x, y) => y, { name: 'sessions-last', emit: 'update' }).map((v) => (v.retracted ? v.windowStart : v.value.value))
    // A window or an emit mode not known as written may be a session's retraction.
    const windowOf = (): WindowSpec => tumbling({ size: '1m', grace: 0 })
    const emitOf = (): EmitMode => 'final'
    readings.groupByKey().windowedBy(windowOf()).aggregate({ n: count() }, { name: 'some-window', emit: emitOf() }).map((v) => {
      expectTypeOf(v.retracted).toEqualTypeOf<true | undefined>()
      return v
    })
    expect(describeTopology(b.build(), { applicationId: 'types' })).toMatch(/running-max[\s\S]*hopping-sum[\s\S]*sessions-last/)
  })

  it('a source read with key: bytes() gives user code its keys as Buffers, down to a keyBy, whose keys are text', () => {
    const b = new TopologyBuilder()
    const raw = b.stream<{ id: string }>('raw-keys', { key: bytes() })
    raw
      .filter((_v, c) => {
        expectTypeOf(c.key).toEqualTypeOf<Buffer | null>()
        return true
      })
      .groupByKey()
      .updateStateByKey<number>((state, _v, c) => {
        expectTypeOf(c.key).toEqualTypeOf<Buffer | null>()
        return (state ?? 0) + 1
      }, { name: 'per-raw-key' })
      .to('raw-counts')
    raw.keyBy((v) => v.id, { name: 'by-id' }).print({ format: (_v, c) => {
      expectTypeOf(c.key).toEqualTypeOf<string | null>()
      return c.key ?? ''
    } })
    b.stream('text-keys').print({ format: (_v, c) => {
      expectTypeOf(c.key).toEqualTypeOf<string | null>()
      return c.key ?? ''
    } })
    expect(describeTopology(b.build(), { applicationId: 'types' })).toContain('source raw-keys (bytes keys, json')
  })

  it('options whose key deserializer may give either kind of key make a stream of RecordKey keys', () => {
    const b = new TopologyBuilder()
    const sourceOf = (keys: 'text' | 'bytes'): { key?: Deserializer<RecordKey | null>; name?: string } => (keys === 'bytes' ? { key: bytes(), name: 'either' } : { name: 'either' })
    b.stream<{ n: number }>('either-keyed', sourceOf('bytes')).map((v, c) => {
      expectTypeOf(c.key).toEqualTypeOf<RecordKey | null>()
      return v
    }).to('either-out')
    expect(describeTopology(b.build(), { applicationId: 'types' })).toContain('source either-keyed (bytes keys')
  })

  it('a helper takes streams of either key type through a K extends RecordKey, exported with the DSL', () => {
    const b = new TopologyBuilder()
    const positive = <K extends RecordKey>(s: Stream<{ n: number }, K>, name: string): Stream<{ n: number }, K> => s.filter((v) => v.n > 0, { name })
    positive(b.stream<{ n: number }>('bytes-keyed', { key: bytes() }), 'positive-bytes').map((v, c) => {
      expectTypeOf(c.key).toEqualTypeOf<Buffer | null>()
      return v
    }).to('positive-bytes')
    positive(b.stream<{ n: number }>('text-keyed'), 'positive-text').map((v, c) => {
      expectTypeOf(c.key).toEqualTypeOf<string | null>()
      return v
    }).to('positive-text')
    expect(describeTopology(b.build(), { applicationId: 'types' })).toContain('filter positive-')
  })
})
