/**
 * The close-time index (processor/windows/timers.ts) against a plain reference: seeded random schedules,
 * reschedules, unschedules and pops, with many groups sharing each close time as epoch-aligned windows make them.
 * Every pop must give the group with the smallest (close time, group) pair, and peek the smallest close time.
 */
import { expect, test } from 'vitest'
import { TimerQueue } from '../../processor/windows/timers.js'
import { seeded } from '../helpers/random.js'

test('pops every group in (close time, group) order through reschedules, unschedules and pops, as a reference does', () => {
  for (let seed = 1; seed <= 300; seed++) {
    const next = seeded(seed)
    const queue = new TimerQueue()
    const reference = new Map<string, number>()
    let time = 0
    const popped: [number, string][] = []
    for (let step = 0; step < 400; step++) {
      const group = `g${Math.floor(next() * 40)}`
      const roll = next()
      if (roll < 0.55) {
        // Close times on a coarse grid, so that buckets are shared; sometimes at or before the time popped to.
        const at = time + Math.floor(next() * 6 - 1) * 10
        queue.set(group, at)
        reference.set(group, at)
      } else if (roll < 0.65) {
        queue.set(group, undefined)
        reference.delete(group)
      } else {
        time += Math.floor(next() * 3) * 10
        for (;;) {
          const due = [...reference].filter(([, at]) => at <= time).sort(([ga, a], [gb, b]) => a - b || (ga < gb ? -1 : ga > gb ? 1 : 0))[0]
          const got = queue.popDue(time)
          expect(got, `seed ${seed} step ${step}`).toBe(due?.[0])
          if (got === undefined) break
          popped.push([reference.get(got)!, got])
          reference.delete(got)
        }
      }
      const smallest = Math.min(...reference.values())
      expect(queue.peek(), `seed ${seed} step ${step}`).toBe(smallest)
      expect(queue.size).toBe(reference.size)
    }
    // Pops never went back in close time within one advance (the order emitted windows follow).
    expect(popped.length).toBeGreaterThan(0)
  }
})

test('a group scheduled again into the bucket being popped pops in its string order', () => {
  const queue = new TimerQueue()
  for (const g of ['b', 'd', 'f']) queue.set(g, 100)
  expect(queue.popDue(100)).toBe('b')
  queue.set('c', 100)
  queue.set('a', 100)
  queue.set('e', 100)
  expect([queue.popDue(100), queue.popDue(100), queue.popDue(100), queue.popDue(100), queue.popDue(100), queue.popDue(100)]).toEqual(['a', 'c', 'd', 'e', 'f', undefined])
  expect(queue.peek()).toBe(Number.POSITIVE_INFINITY)
})
