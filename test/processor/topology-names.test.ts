/**
 * Topic names in a topology are checked against Kafka's rules when the topology is built, before anything connects:
 * a bad source, table, sink, late-records or dead-letter topic, or a changelog or repartition topic whose name the
 * application id makes too long, is a TopologyError naming its role and the rule, not an error about an operator
 * name (a source's operator is named after its topic) or a broker's INVALID_TOPIC_EXCEPTION later; so are two topics
 * of the pipeline whose names differ only in '.' and '_'.
 */
import { describe, expect, it } from 'vitest'
import { TopologyBuilder } from '../../processor/topology/builder.js'
import { count, sum, tumbling } from '../../processor/index.js'
import { TopologyError } from '../../processor/errors.js'
import { planTopology } from '../../processor/topology/plan.js'

const RULE = "is not a Kafka topic name: 1 to 249 letters, digits, '.', '_' and '-', not '.' or '..'"

describe('topic names in a topology', () => {
  it.each([['bad topic!'], [''], ['..'], ['x'.repeat(250)], ['température']])('refuses the source topic %j', (topic) => {
    expect(() => new TopologyBuilder().stream(topic)).toThrow(new TopologyError(`source topic '${topic}' ${RULE}`))
  })

  it("refuses topics of the pipeline whose names differ only in '.' and '_' (Kafka refuses the second), naming both, before anything connects", () => {
    const keyed = new TopologyBuilder()
    const readings = keyed.stream('readings')
    readings.keyBy(() => 'k', { name: 'a.b' }).to('one')
    readings.keyBy(() => 'k', { name: 'a_b' }).to('two')
    expect(() => planTopology(keyed.build(), { applicationId: 't11' })).toThrow(
      new TopologyError("the repartition topic t11-a.b-repartition and the repartition topic t11-a_b-repartition differ only in '.' and '_', which Kafka does not allow in one cluster (their metric names would be the same): rename one"),
    )
    const sinks = new TopologyBuilder()
    sinks.stream('sensor.readings').to('sensor_readings')
    expect(() => planTopology(sinks.build(), { applicationId: 'app' })).toThrow(/^the output topic sensor_readings and the source topic sensor\.readings differ only in '\.' and '_'/)
    const tables = new TopologyBuilder()
    tables.globalTable('sites.v1')
    tables.stream('readings').to('sites_v1')
    expect(() => planTopology(tables.build(), { applicationId: 'app' })).toThrow(/^the output topic sites_v1 and the global table topic sites\.v1 differ only in '\.' and '_'/)
  })

  it('refuses a bad sink or global table topic, naming its role', () => {
    const builder = new TopologyBuilder()
    expect(() => builder.stream('readings').to('alerts/high')).toThrow(new TopologyError(`sink topic 'alerts/high' ${RULE}`))
    expect(() => builder.globalTable('devices list')).toThrow(new TopologyError(`global table topic 'devices list' ${RULE}`))
  })

  it("refuses a late-records or dead-letter topic, and an application id that makes its own topics' names too long, naming the topic's role", () => {
    const windowed = (lateTopic?: string) => {
      const builder = new TopologyBuilder()
      const readings = builder.stream('readings')
      readings.groupByKey().windowedBy(tumbling({ size: '1m', grace: 0 })).aggregate({ n: count() }, { name: 'per-minute', lateTopic }).to('counts')
      readings.keyBy(() => 'k', { name: 'by-k' }).to('keyed')
      return builder
    }
    expect(() => windowed('late readings')).toThrow(new TopologyError(`late-records topic 'late readings' ${RULE}`))
    const topology = windowed().build()
    expect(() => planTopology(topology, { applicationId: 'app', lateTopic: 'late/readings' })).toThrow(new TopologyError(`late-records topic 'late/readings' ${RULE}`))
    expect(() => planTopology(topology, { applicationId: 'app', deadLetterTopic: 'dead letters' })).toThrow(new TopologyError(`dead-letter topic 'dead letters' ${RULE}`))
    // 'a' x 230 is a legal application id and '<id>-dlq' a legal topic, but '<id>-readings-store-changelog' has 255 characters.
    const long = 'a'.repeat(230)
    expect(() => planTopology(topology, { applicationId: long, lateTopic: 'late', deadLetterTopic: 'dlq' })).toThrow(new TopologyError(`changelog topic '${long}-readings-store-changelog' ${RULE}`))
    const keyed = new TopologyBuilder()
    keyed.stream('readings').keyBy(() => 'k', { name: 'by-k' }).to('keyed')
    expect(() => planTopology(keyed.build(), { applicationId: 'a'.repeat(236), deadLetterTopic: 'dlq' })).toThrow(new TopologyError(`repartition topic '${'a'.repeat(236)}-by-k-repartition' ${RULE}`))
    expect(planTopology(topology, { applicationId: 'a'.repeat(224) }).subtopologies[0]!.changelogTopic).toBe(`${'a'.repeat(224)}-readings-store-changelog`)
  })

  it('takes the longest legal name and names with dots, underscores and dashes', () => {
    const builder = new TopologyBuilder()
    builder.stream('x'.repeat(249)).to('site_1.readings-clean')
    builder.globalTable('.devices')
    expect(builder.build().sources.map((source) => source.topic)).toEqual(['x'.repeat(249)])
  })
})

describe('aggregation output names', () => {
  it("refuses an aggregate of nothing, and an output that would overwrite a window's bounds or the group's key, and takes other names", () => {
    const readings = new TopologyBuilder().stream('readings')
    expect(() => readings.groupByKey().windowedBy(tumbling({ size: '1m', grace: 0 })).aggregate({ windowStart: count() }, { name: 'w' })).toThrow(
      new TopologyError("aggregate w: 'windowStart' would overwrite the result's own field (windowStart, windowEnd, key): name the output otherwise"),
    )
    expect(() => readings.groupByKey().aggregate({ key: count(), total: sum('value') }, { name: 'k' })).toThrow(
      new TopologyError("aggregate k: 'key' would overwrite the result's own field (key): name the output otherwise"),
    )
    expect(() => readings.groupByKey().aggregate({}, { name: 'none' })).toThrow(new TopologyError('aggregate none: no aggregation to compute: name at least one, as in { count: count() }'))
    // With its own fields, a group has no `key` field; and names a window result does not hold are free.
    readings.groupByKey({ fields: (r: { deviceId: string }) => ({ deviceId: r.deviceId }) }).windowedBy(tumbling({ size: '1m', grace: 0 })).aggregate({ key: count(), start: count() }, { name: 'ok' })
  })
})


describe("sinks into the pipeline's own topics", () => {
  const plan = (build: (builder: TopologyBuilder) => void, options: { deadLetterTopic?: string } = {}) => {
    const builder = new TopologyBuilder()
    build(builder)
    return () => planTopology(builder.build(), { applicationId: 'own', ...options })
  }

  it('refuses a sink into the dead-letter, late-records, repartition or changelog topic, naming the role', () => {
    expect(plan((b) => b.stream('readings').to('own-dlq'))).toThrow(new TopologyError("to('own-dlq') writes to the pipeline's own dead-letter topic: give the sink a topic of its own"))
    expect(plan((b) => b.stream('readings').to('rejected'), { deadLetterTopic: 'rejected' })).toThrow(new TopologyError("to('rejected') writes to the pipeline's own dead-letter topic: give the sink a topic of its own"))
    const windowed = (b: TopologyBuilder, sink: string) => {
      const s = b.stream('readings')
      s.groupByKey().windowedBy(tumbling({ size: '1m', grace: 0 })).aggregate({ n: count() }, { name: 'per-minute' }).to('counts')
      s.to(sink)
    }
    expect(plan((b) => windowed(b, 'own-late'))).toThrow(new TopologyError("to('own-late') writes to the pipeline's own late-records topic: give the sink a topic of its own"))
    expect(plan((b) => windowed(b, 'own-readings-store-changelog'))).toThrow(new TopologyError("to('own-readings-store-changelog') writes to the pipeline's own changelog topic: give the sink a topic of its own"))
    expect(plan((b) => b.stream('readings').keyBy(() => 'k', { name: 'by-k' }).to('own-by-k-repartition'))).toThrow(new TopologyError("to('own-by-k-repartition') writes to the pipeline's own repartition topic: give the sink a topic of its own"))
  })

  it('refuses a dead-letter topic the pipeline reads or keeps state in: dead letters in a source would loop', () => {
    const windowed = (b: TopologyBuilder) => {
      const s = b.stream('readings')
      s.groupByKey().windowedBy(tumbling({ size: '1m', grace: 0 })).aggregate({ n: count() }, { name: 'per-minute' }).to('counts')
      s.keyBy(() => 'k', { name: 'by-k' }).to('keyed')
    }
    expect(plan(windowed, { deadLetterTopic: 'readings' })).toThrow(new TopologyError("the dead-letter topic readings is the pipeline's own source topic: give dead letters a topic of their own"))
    expect(plan(windowed, { deadLetterTopic: 'own-by-k-repartition' })).toThrow(new TopologyError("the dead-letter topic own-by-k-repartition is the pipeline's own repartition topic: give dead letters a topic of their own"))
    expect(plan(windowed, { deadLetterTopic: 'own-readings-store-changelog' })).toThrow(new TopologyError("the dead-letter topic own-readings-store-changelog is the pipeline's own changelog topic: give dead letters a topic of their own"))
    // One topic for late records and dead letters stays allowed: neither is read back.
    expect(plan(windowed, { deadLetterTopic: 'own-late' })().deadLetterTopic).toBe('own-late')
    expect(plan((b) => { b.stream('readings').enrich(b.globalTable('sites'), (r) => r).to('out') }, { deadLetterTopic: 'sites' })).toThrow(new TopologyError("the dead-letter topic sites is the pipeline's own global table topic: give dead letters a topic of their own"))
    expect(plan(windowed, { deadLetterTopic: 'rejected' })().deadLetterTopic).toBe('rejected')
  })

  it('takes a sink into the default late-records topic name when no window writes late records there', () => {
    expect(plan((b) => b.stream('readings').to('own-late'))().subtopologies[0]!.outputTopics).toEqual(['own-late'])
  })
})
