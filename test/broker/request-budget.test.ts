/**
 * The node's request budget on its own (it holds no I/O): Kafka's non-strict pool, the place count, the small-frame
 * allowance, and the order in which waiting connections are woken.
 */
import { describe, expect, it } from 'vitest'
import { RequestBudget, SMALL_REQUEST_BYTES } from '../../broker/request-budget.js'
import { Logger } from '../../broker/logger.js'

const quiet = new Logger('test', 'error')
const MiB = 1024 * 1024

/** Resolves after queued microtasks (the budget wakes waiters in one). */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

describe('RequestBudget', () => {
  it('admits a frame larger than what remains while any room is left, then nothing large until bytes come back', () => {
    const budget = new RequestBudget({ maxRequests: 500, maxBytes: 10 * MiB }, quiet)
    expect(budget.take(9 * MiB)).toBe(true)
    expect(budget.take(100 * MiB)).toBe(true)
    expect(budget.take(MiB)).toBe(false)
    budget.releaseBytes(100 * MiB)
    budget.releaseRequest()
    expect(budget.take(MiB)).toBe(true)
  })

  it('admits frames of up to 16 KiB while the byte pool is full, but never beyond queued.max.requests', () => {
    const budget = new RequestBudget({ maxRequests: 3, maxBytes: MiB }, quiet)
    expect(budget.take(2 * MiB)).toBe(true)
    expect(budget.take(SMALL_REQUEST_BYTES + 1)).toBe(false)
    expect(budget.take(SMALL_REQUEST_BYTES)).toBe(true)
    expect(budget.take(100)).toBe(true)
    expect(budget.take(100)).toBe(false)
  })

  it('wakes waiters in arrival order once there is room, and a small one even while a large one must wait', async () => {
    const budget = new RequestBudget({ maxRequests: 10, maxBytes: MiB }, quiet)
    expect(budget.take(2 * MiB)).toBe(true)
    const woken: string[] = []
    budget.wait(MiB, () => woken.push('large'))
    budget.wait(100, () => woken.push('small'))
    // A parked request gives back its place, not its bytes: the pool is still full for the large frame.
    budget.releaseRequest()
    await settled()
    expect(woken).toEqual(['small'])
    budget.releaseBytes(2 * MiB)
    await settled()
    expect(woken).toEqual(['small', 'large'])
  })

  it('forgets a waiter whose connection closed', async () => {
    const budget = new RequestBudget({ maxRequests: 1, maxBytes: MiB }, quiet)
    expect(budget.take(10)).toBe(true)
    let woken = false
    const wake = (): void => void (woken = true)
    budget.wait(10, wake)
    budget.cancel(wake)
    budget.releaseRequest()
    budget.releaseBytes(10)
    await settled()
    expect(woken).toBe(false)
  })
})
