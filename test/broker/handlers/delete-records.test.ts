/**
 * The DeleteRecords handler in process, over real services on a real LevelDB database (test/helpers/in-process-node.ts),
 * for a request no admin client sends: a partition named twice. test/broker/disk-full.test.ts,
 * test/cluster/node/replication.test.ts and the admin clients' tests show DeleteRecords through real clients.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { deleteRecordsHandler } from '../../../broker/handlers/delete-records.js'
import { produceHandler } from '../../../broker/handlers/produce.js'
import type { ProduceRequest, ProduceResponse } from '../../../protocol/messages/produce.js'
import type { DeleteRecordsRequest, DeleteRecordsResponse } from '../../../protocol/messages/delete-records.js'
import { handBuiltBatch } from '../../helpers/wire.js'
import { openNode, type InProcessNode } from '../../helpers/in-process-node.js'

/** ErrorCode values, written out as Kafka's protocol guide lists them. */
const NONE = 0

describe('DeleteRecords, in process', () => {
  let node: InProcessNode
  beforeEach(async () => {
    node = await openNode()
  })
  afterEach(async () => {
    await node?.close()
  })

  it("moves the log start of a partition the request names twice to the later entry's offset, and answers it once, as Kafka keys a DeleteRecords by partition", async () => {
    await node.createTopic('events', { partitions: 2 })
    const produced = (await node.call<ProduceRequest, ProduceResponse>(
      produceHandler,
      { transactionalId: null, acks: 1, timeoutMs: 30_000, topicData: [{ name: 'events', partitionData: [0, 1].map((index) => ({ index, records: handBuiltBatch(['a', 'b', 'c', 'd', 'e']) })) }] },
      { apiVersion: 9 },
    )) as ProduceResponse
    expect(produced.responses[0]!.partitionResponses.map((p) => p.errorCode)).toEqual([NONE, NONE])
    const answer = (await node.call<DeleteRecordsRequest, DeleteRecordsResponse>(
      deleteRecordsHandler,
      {
        topics: [
          { name: 'events', partitions: [{ partitionIndex: 0, offset: 4n }, { partitionIndex: 1, offset: 1n }] },
          { name: 'events', partitions: [{ partitionIndex: 0, offset: 2n }] },
        ],
        timeoutMs: 30_000,
      },
      { apiVersion: 2 },
    )) as DeleteRecordsResponse
    expect(answer.topics.map((t) => [t.name, t.partitions.map((p) => [p.partitionIndex, p.errorCode, p.lowWatermark])])).toEqual([
      ['events', [[0, NONE, 2n], [1, NONE, 1n]]],
    ])
    expect(node.services.topics.partition('events', 0)!.logStartOffset).toBe(2n)
    expect(node.services.topics.partition('events', 1)!.logStartOffset).toBe(1n)
  })
})
