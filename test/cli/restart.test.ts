import { describe, expect, it } from 'vitest'
import { startBroker } from '../helpers/broker.js'
import { brook, kcat, lines, spawnBrook, until } from './run-brook.js'

describe('brook produce and brook consume while their only node restarts', () => {
  it('wait for the node to come back, as Kafka\'s producer and console consumer do: every line typed before, during and after the restart is produced and consumed once', async () => {
    let broker = await startBroker()
    try {
      const server = ['--bootstrap-server', broker.address]
      expect((await brook(['topics', 'create', 'restarted', '--partitions', '1', ...server])).code).toBe(0)
      const consumer = spawnBrook(['consume', 'restarted', '--from-beginning', ...server])
      const producer = spawnBrook(['produce', 'restarted', ...server])
      // A producer that gave up closes its stdin: what is typed after that is lost, and the test says so below.
      producer.child.stdin!.on('error', () => {})
      const context = (): string => `producer: ${producer.stderr()}\nconsumer: ${consumer.stderr()}`
      const typed: string[] = []
      const type = (): void => {
        const line = `line ${typed.length}`
        typed.push(line)
        producer.child.stdin!.write(`${line}\n`)
      }
      let consumerGone = false
      void consumer.exited.then(() => (consumerGone = true))

      for (let i = 0; i < 20; i++) type()
      await until(() => consumerGone || lines(consumer.stdout()).length === 20, 'the first 20 lines consumed', { context })

      // A slow typist, one line every 20 ms, who goes on while the node stops and starts again on its data.
      let typing = true
      const typist = (async () => {
        while (typing) {
          type()
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      })()
      await broker.stop()
      await until(() => consumerGone || consumer.stderr().includes('waiting for one to come back'), 'the consumer to wait for the node', { context })
      broker = await broker.restart()
      const typedBeforeRestart = typed.length
      await until(() => consumerGone || lines(consumer.stdout()).length > typedBeforeRestart + 20, 'lines typed after the restart consumed', { context })
      typing = false
      await typist
      producer.child.stdin!.end()

      expect(await producer.exited, context()).toBe(0)
      expect(producer.stderr()).toMatch(new RegExp(`^produced ${typed.length} records in \\d+ batches to restarted \\(partition 0: ${typed.length}\\)\\n$`))
      await until(() => consumerGone || lines(consumer.stdout()).length >= typed.length, 'every line consumed', { context })
      consumer.child.kill('SIGINT')
      expect(await consumer.exited, context()).toBe(0)
      expect(lines(consumer.stdout())).toEqual(typed)
      // Told while it waits and when it reads on (more than once, should the stopping node have answered a last time).
      const waited = 'brook: no broker answers \\(cannot connect to a broker at [^)]+\\); waiting for one to come back\\nbrook: a broker answers again; reading on\\n'
      expect(consumer.stderr()).toMatch(new RegExp(`^(${waited})+Processed a total of ${typed.length} messages\\n$`))
      expect(lines(await kcat(['-b', broker.address, '-C', '-t', 'restarted', '-e', '-q']))).toEqual(typed)
    } finally {
      await broker.stop()
      broker.cleanup()
    }
  })
})
