/**
 * A node's first retention pass comes 30 s after its start (Kafka's LogManager schedules kafka-log-retention with
 * InitialTaskDelayMs), not one whole log.retention.check.interval.ms (5 minutes by default) later: a node restarted
 * more often than that (a rolling restart of a `brook dev` cluster, a node killed -9 and started again) still applies
 * its topics' retention.ms.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { startBroker, type BrokerProcess } from '../helpers/broker.js'
import { createTopic, listOffset, producePartition, withClient } from '../helpers/kafka.js'
import { handBuiltBatch } from '../helpers/wire.js'
import { waitFor } from '../helpers/wait.js'
import { OffsetSpec } from '../../protocol/constants.js'

describe('the first retention pass, at the default log.retention.check.interval.ms', () => {
  let broker: BrokerProcess | undefined

  afterAll(async () => {
    await broker?.stop()
    broker?.cleanup()
  })

  it('moves the log start past expired batches soon after the node starts, not one interval (5 minutes) later', async () => {
    const node = (broker = await startBroker())
    await createTopic(node, 'expiring', { configs: { 'retention.ms': '60000' } })
    const tenMinutesAgo = BigInt(Date.now() - 600_000)
    const produced = await withClient(node, (client) => producePartition(client, 'expiring', 0, handBuiltBatch(['a', 'b', 'c'], { timestamp: tenMinutesAgo })))
    expect(produced.errorCode).toBe(0)

    const earliest = async (): Promise<bigint | false> => {
      const offset = await withClient(node, (client) => listOffset(client, 'expiring', 0, OffsetSpec.EARLIEST))
      return offset.errorCode === 0 && offset.offset
    }
    // Half the 5 minutes a first pass one interval after the start would take.
    await waitFor('the first retention pass', async () => (await earliest()) === 3n, { timeoutMs: 150_000 })
    // The node logs the move after making it, and its output reaches this process a moment later.
    await waitFor('the log line of the move', () => node.output().includes('expiring-0: retention moved the log start to 3'))
  }, 200_000)
})
