/**
 * The node's request budget on its own (it holds no I/O): Kafka's non-strict pool, the place count (taken apart from
 * the bytes, once a frame is in whole), the small-frame allowance, and the order in which waiting connections are
 * woken.
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
    expect(budget.takeBytes(9 * MiB)).toBe(true)
    expect(budget.takeBytes(100 * MiB)).toBe(true)
    expect(budget.takeBytes(MiB)).toBe(false)
    budget.releaseBytes(100 * MiB)
    expect(budget.takeBytes(MiB)).toBe(true)
  })

  it('admits frames of up to 16 KiB while the byte pool is full', () => {
    const budget = new RequestBudget({ maxRequests: 3, maxBytes: MiB }, quiet)
    expect(budget.takeBytes(2 * MiB)).toBe(true)
    expect(budget.takeBytes(SMALL_REQUEST_BYTES + 1)).toBe(false)
    expect(budget.takeBytes(SMALL_REQUEST_BYTES)).toBe(true)
    expect(budget.takeBytes(100)).toBe(true)
  })

  it('gives queued.max.requests places apart from the bytes: none beyond the limit until one comes back', () => {
    const budget = new RequestBudget({ maxRequests: 2, maxBytes: MiB }, quiet)
    expect(budget.takeRequest()).toBe(true)
    expect(budget.takeRequest()).toBe(true)
    expect(budget.takeRequest()).toBe(false)
    // Bytes of frames still coming in are not places.
    expect(budget.takeBytes(100)).toBe(true)
    budget.releaseRequest()
    expect(budget.takeRequest()).toBe(true)
  })

  it('wakes waiters in arrival order once there is room for what each waits for', async () => {
    const budget = new RequestBudget({ maxRequests: 1, maxBytes: MiB }, quiet)
    expect(budget.takeBytes(2 * MiB)).toBe(true)
    expect(budget.takeRequest()).toBe(true)
    const woken: string[] = []
    budget.wait(MiB, () => woken.push('large'))
    budget.wait('request', () => {
      woken.push('place')
      budget.takeRequest()
    })
    budget.wait('request', () => woken.push('second place'))
    // A parked request gives back its place, not its bytes: the pool is still full for the large frame, and the
    // first waiter for a place takes it.
    budget.releaseRequest()
    await settled()
    expect(woken).toEqual(['place'])
    budget.releaseBytes(2 * MiB)
    await settled()
    expect(woken).toEqual(['place', 'large'])
  })

  it('forgets a waiter whose connection closed', async () => {
    const budget = new RequestBudget({ maxRequests: 1, maxBytes: MiB }, quiet)
    expect(budget.takeRequest()).toBe(true)
    let woken = false
    const wake = (): void => void (woken = true)
    budget.wait('request', wake)
    budget.cancel(wake)
    budget.releaseRequest()
    budget.releaseBytes(10)
    await settled()
    expect(woken).toBe(false)
  })
})
