/**
 * The node's logger (broker/logger.ts): `warnOncePer` logs a repeated warning at most once per interval per key,
 * timed on the monotonic clock, so that a step of the wall clock (NTP, a laptop's resume) neither silences a key for
 * the step's length nor lets it log again at once. The clocks are stepped in-process: Date.now for the wall clock,
 * performance.now for the monotonic one.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Logger } from '../../broker/logger.js'

/** The lines the logger writes while `run` runs. */
function written(run: () => void): string[] {
  const lines: string[] = []
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk).trimEnd())
    return true
  })
  try {
    run()
  } finally {
    write.mockRestore()
  }
  return lines
}

describe('Logger.warnOncePer', () => {
  afterEach(() => vi.restoreAllMocks())

  it('logs a key again once its interval has passed on the monotonic clock, whatever the wall clock did meanwhile', () => {
    const log = new Logger('node 1')
    let wallMs = Date.parse('2026-12-07T10:00:00Z')
    let monotonic = 1_000_000
    vi.spyOn(Date, 'now').mockImplementation(() => wallMs)
    vi.spyOn(performance, 'now').mockImplementation(() => monotonic)

    const lines = written(() => {
      log.warnOncePer('old-client', 'an old client', 60_000)
      // The wall clock steps back an hour; a minute and a second pass.
      wallMs -= 3_600_000
      monotonic += 30_000
      log.warnOncePer('old-client', 'an old client', 60_000)
      monotonic += 31_000
      wallMs += 61_000
      log.warnOncePer('old-client', 'an old client', 60_000)
      // The wall clock steps forward two hours; no time passes.
      wallMs += 7_200_000
      log.warnOncePer('old-client', 'an old client', 60_000)
    })
    expect(lines.map((line) => line.replace(/^\S+ /, ''))).toEqual([
      'WARN [node 1] an old client',
      'WARN [node 1] an old client (1 more like it not logged since 2026-12-07T10:00:00.000Z)',
    ])
  })
})
