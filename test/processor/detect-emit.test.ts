/**
 * Detectors read the final results of a windowed aggregation: one per group and window, when it closes. An
 * aggregation in emit mode update writes a window's content so far at every commit, so a detector behind it alerted
 * on windows before they closed and took each update for a window of its baseline (a trial: an alert on value 100,
 * the first reading of a window whose average came to 55, "baseline of 29 windows" after 10 windows). The builder
 * refuses it.
 */
import { describe, expect, it } from 'vitest'
import { avg, rateOfChange, session, threshold, TopologyBuilder, TopologyError, tumbling, zScore } from '../../processor/index.js'

describe('detect', () => {
  it("is refused after an aggregation or reduce in emit mode update, and taken after one in emit mode final", () => {
    const readings = new TopologyBuilder().stream<{ value: number }>('readings')
    const live = readings.groupByKey().windowedBy(tumbling({ size: '1m', grace: 0 })).aggregate({ avg: avg('value') }, { name: 'live', emit: 'update' })
    expect(() => live.detect(zScore({ field: 'avg' }), { name: 'z' })).toThrow(
      new TopologyError("detect z reads final window results, but aggregate live emits 'update' (each window's content so far, at every commit): detect on an aggregation with emit 'final'"),
    )
    const reduced = readings.groupByKey().windowedBy(session({ gap: '1m', grace: 0 })).reduce((a, b) => ({ value: a.value + b.value }), { name: 'summed', emit: 'update' })
    expect(() => reduced.detect(threshold({ field: 'value', above: 1 }), { name: 't' })).toThrow(/detect t reads final window results, but reduce summed emits 'update'/)

    const final = readings.groupByKey().windowedBy(tumbling({ size: '1m', grace: 0 })).aggregate({ avg: avg('value') }, { name: 'final' })
    final.detect(zScore({ field: 'avg' }), { name: 'z-final' })
    final.detect(rateOfChange({ field: 'avg', maxPerSecond: 1 }), { name: 'rate-final' })
  })
})
