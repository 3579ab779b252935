/**
 * An event time is a number of ms from 0 to Date's limit: anything else is a dead letter (BAD_TIMESTAMP) rather than
 * a stream time that makes every later record of the task late.
 */
import { describe, expect, it } from 'vitest'
import { RecordError } from '../../processor/errors.js'
import { MAX_EVENT_TIME_MS, checkedEventTime } from '../../processor/runtime/task.js'
import { isLateForTimeWindows, tumbling, type TimeWindowSpec } from '../../processor/windows/spec.js'

describe('checkedEventTime', () => {
  it('takes whole and fractional ms from 0 to the limit', () => {
    expect(checkedEventTime(0)).toBe(0)
    expect(checkedEventTime(1_700_000_000_000.9)).toBe(1_700_000_000_000)
    expect(checkedEventTime(MAX_EVENT_TIME_MS)).toBe(MAX_EVENT_TIME_MS)
  })

  it('refuses negative, non-finite, non-numeric and out-of-range times as BAD_TIMESTAMP', () => {
    for (const bad of [-5, NaN, Infinity, '1700000000000', null, undefined, 1e300, 1.7e18, MAX_EVENT_TIME_MS + 1]) {
      expect(() => checkedEventTime(bad)).toThrow(RecordError)
      try {
        checkedEventTime(bad)
      } catch (error) {
        expect((error as RecordError).code).toBe('BAD_TIMESTAMP')
      }
    }
  })

  it('keeps window arithmetic exact at the limit: the newest record is never late for its own window', () => {
    const spec = tumbling({ size: '1m', grace: '10s' }) as TimeWindowSpec
    expect(isLateForTimeWindows(MAX_EVENT_TIME_MS, MAX_EVENT_TIME_MS, spec)).toBe(false)
    // What 1e300 did before: a window end that rounds back onto the record's own time.
    expect(isLateForTimeWindows(1e300, 1e300, spec)).toBe(true)
  })
})
