/**
 * The ready-made progress bar, drawn into a stream that says it is a terminal, as a user would see it.
 */
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createProgressBar } from '../../../processor/simulator/index.js'

function terminal(): Writable & { text: () => string } {
  let written = ''
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      written += chunk.toString()
      done()
    },
  })
  return Object.assign(stream, { isTTY: true, columns: 160, cursorTo: () => true, clearLine: () => true, moveCursor: () => true, text: () => written })
}

describe('createProgressBar', () => {
  it('draws a bar with the share sent, the event time reached and the rate', () => {
    const stream = terminal()
    const bar = createProgressBar({ stream, label: 'replay' })
    bar.onProgress({ sent: 19_176, total: 38_352, eventTimeMs: Date.UTC(2014, 0, 28, 4, 10), elapsedMs: 2000 })
    bar.stop()
    expect(stream.text()).toContain('replay [')
    expect(stream.text()).toContain('] 50% | 19,176/38,352 readings | event time 2014-01-28T04:10:00Z | 9,588/s')
  })

  it('draws a count without a bar when the total is not known', () => {
    const stream = terminal()
    const bar = createProgressBar({ stream })
    bar.onProgress({ sent: 1_000, total: null, eventTimeMs: Date.UTC(2026, 0, 5), elapsedMs: 500 })
    bar.stop()
    expect(stream.text()).toContain('sent 1,000 readings | event time 2026-01-05T00:00:00Z | 2,000/s')
    expect(stream.text()).not.toContain('%')
  })
})
