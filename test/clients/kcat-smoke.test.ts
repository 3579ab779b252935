import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'

describe('kcat against one node', () => {
  let broker: BrokerProcess
  beforeAll(async () => {
    broker = await startBroker()
  })
  afterAll(async () => {
    await broker.stop()
    broker.cleanup()
  })

  it('lists the broker as its own controller', () => {
    const out = execFileSync('kcat', ['-b', broker.address, '-L'], { encoding: 'utf8' })
    expect(out).toContain(`broker 1 at ${broker.address} (controller)`)
  })

  it('reads back what it wrote, in order', () => {
    const lines = Array.from({ length: 50 }, (_, i) => `line-${i}`)
    execFileSync('kcat', ['-b', broker.address, '-P', '-t', 'smoke'], { input: lines.join('\n') + '\n' })
    const out = execFileSync('kcat', ['-b', broker.address, '-C', '-t', 'smoke', '-e', '-q'], { encoding: 'utf8' })
    expect(out.trim().split('\n')).toEqual(lines)
  })
})
