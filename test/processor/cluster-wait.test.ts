/**
 * The lines a pipeline says while it waits for the cluster (processor/runtime/cluster-wait.ts), on the fake clock: one
 * line when the wait begins however often it is begun again, a reminder every 30 s while it lasts, one line when
 * processing resumes, nothing once stopped. `brook process` through a real outage (test/cli/process.test.ts) shows the
 * first and last lines end to end; the reminder's 30 s are waited here instead.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { ClusterWait } from '../../processor/runtime/cluster-wait.js'

describe('ClusterWait', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: Date.parse('2026-01-01T00:00:00Z') })
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  function waitWith(resumed: { value: boolean }): { wait: ClusterWait; said: string[] } {
    const said: string[] = []
    const wait = new ClusterWait({ log: (line) => said.push(line), resumed: () => resumed.value, waitingFor: () => 'task 0_0 to re-initialize' })
    return { wait, said }
  }

  it('says the wait once, reminds every 30 s with the last error, and says when processing resumed', () => {
    const resumed = { value: false }
    const { wait, said } = waitWith(resumed)
    wait.begin('Connection error: ECONNREFUSED')
    wait.begin('KafkaJSNumberOfRetriesExceeded')
    expect(said).toEqual(['waiting for the cluster (Connection error: ECONNREFUSED): task 0_0 to re-initialize; processing resumes by itself once it answers'])
    vi.advanceTimersByTime(29_000)
    expect(said).toHaveLength(1)
    vi.advanceTimersByTime(1_000)
    expect(said[1]).toBe('still waiting for the cluster, since 2026-01-01T00:00:00.000Z (30 s): task 0_0 to re-initialize; last error: KafkaJSNumberOfRetriesExceeded')
    vi.advanceTimersByTime(30_000)
    expect(said[2]).toMatch(/^still waiting for the cluster, since 2026-01-01T00:00:00.000Z \(60 s\): /)
    resumed.value = true
    vi.advanceTimersByTime(1_000)
    expect(said.slice(3)).toEqual(['the cluster answers again: processing resumed after 61 s of waiting'])
    // The wait is over: its timer is gone, and the next failure begins a new one.
    vi.advanceTimersByTime(120_000)
    expect(said).toHaveLength(4)
    resumed.value = false
    wait.begin('Connection error: ECONNRESET')
    expect(said[4]).toMatch(/^waiting for the cluster \(Connection error: ECONNRESET\): /)
  })

  it('ends a wait without a line when the pipeline stops', () => {
    const { wait, said } = waitWith({ value: false })
    wait.begin('Connection error: ECONNREFUSED')
    wait.stop()
    vi.advanceTimersByTime(120_000)
    expect(said).toHaveLength(1)
    expect(vi.getTimerCount()).toBe(0)
  })
})
