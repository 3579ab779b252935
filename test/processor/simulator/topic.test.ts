/**
 * What the run says about an existing topic's configs, line by line (the lines a user reads before a replay's
 * readings vanish or are refused). Against a broker: replay.test.ts.
 */
import { describe, expect, it } from 'vitest'
import { topicWarnings } from '../../../processor/simulator/index.js'

const NOW = Date.UTC(2026, 0, 5, 12, 0, 0)
const DAY = 86_400_000
const plan = { topic: 'readings', oldestTs: Date.UTC(2013, 11, 2, 21, 15), retentionWarning: 'any-finite' as const }

function warnings(configs: Record<string, string>, overrides: Partial<typeof plan> | { retentionWarning: 'deleted-on-arrival' } = {}) {
  return topicWarnings({ ...plan, ...overrides }, new Map(Object.entries(configs)), NOW)
}

describe('topicWarnings', () => {
  it('says nothing about a topic that keeps records forever and takes any timestamp', () => {
    expect(warnings({ 'retention.ms': '-1', 'message.timestamp.before.max.ms': '9223372036854775807', 'message.timestamp.type': 'CreateTime' })).toEqual([])
  })

  it('says when a finite retention deletes readings as soon as they are written', () => {
    expect(warnings({ 'retention.ms': String(7 * DAY) })).toEqual([
      "topic readings has retention.ms=604800000 (7 days) and retention acts on record timestamps: readings stamped before 2025-12-29T12:00:00Z (the oldest are from 2013-12-02T21:15:00Z) will be deleted at the broker's next retention check, minutes after they are written; set retention.ms=-1 on readings to keep them",
    ])
    expect(warnings({ 'retention.ms': String(7 * DAY) }, { retentionWarning: 'deleted-on-arrival' })).toHaveLength(1)
  })

  it('says when replayed readings will age out, and stays quiet about a live fleet', () => {
    const recent = { oldestTs: NOW - 2 * DAY }
    expect(warnings({ 'retention.ms': String(7 * DAY) }, recent)).toEqual([
      'topic readings has retention.ms=604800000 (7 days) and retention acts on record timestamps: the readings (from 2026-01-03T12:00:00Z on) will be deleted as their event time ages past 7 days, from 2026-01-10T12:00:00Z on; set retention.ms=-1 on readings to keep them',
    ])
    expect(warnings({ 'retention.ms': String(7 * DAY) }, { ...recent, retentionWarning: 'deleted-on-arrival' })).toEqual([])
  })

  it('says when the topic refuses old timestamps, or restamps them', () => {
    expect(warnings({ 'retention.ms': '-1', 'message.timestamp.before.max.ms': String(DAY), 'message.timestamp.type': 'LogAppendTime' })).toEqual([
      'topic readings refuses records stamped more than 1 day behind the broker clock (message.timestamp.before.max.ms=86400000): readings stamped before 2026-01-04T12:00:00Z will be refused with INVALID_TIMESTAMP, which stops the run; set message.timestamp.before.max.ms=9223372036854775807 on readings to accept them',
      "topic readings has message.timestamp.type=LogAppendTime: the broker stamps records with their append time, so record timestamps will not be the readings' event times (their ts field still is)",
    ])
    expect(warnings({ 'retention.ms': '-1', 'message.timestamp.before.max.ms': String(DAY) }, { oldestTs: NOW - 3_600_000 })).toEqual([])
  })
})
