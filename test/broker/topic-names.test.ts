/**
 * The topic registry's name rules in process, over real services on a real LevelDB database
 * (test/helpers/in-process-node.ts): a name that differs from an existing topic's only in '.' versus '_' is refused when
 * this node creates the topic, and hosted when a cluster's metadata image names it (with its topic id), since there
 * the controller alone decides which topics exist; a name in use is refused either way. test/broker/topics.test.ts
 * shows the refusal through real clients, test/cluster/controller/controller.test.ts the controller's.
 */
import { randomUUID } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { ErrorCode } from '../../protocol/errors.js'
import { openNode, type InProcessNode } from '../helpers/in-process-node.js'

describe('topic names in the registry', () => {
  let node: InProcessNode | undefined
  afterEach(async () => {
    await node?.close()
  })

  it('refuses a colliding name it would create, and hosts one the metadata image names', async () => {
    node = await openNode()
    const topics = node.services.topics
    await node.createTopic('plant.temp')
    await expect(node.createTopic('plant_temp')).rejects.toMatchObject({ code: ErrorCode.INVALID_TOPIC_EXCEPTION, message: "topic 'plant_temp' collides with existing topics: plant.temp" })
    const fromImage = { partitions: 1, replicationFactor: 1, config: topics.parseConfig({}) }
    const hosted = await topics.create({ name: 'plant_temp', topicId: randomUUID(), ...fromImage })
    expect(topics.get('plant_temp')?.topicId).toBe(hosted.topicId)
    await expect(topics.create({ name: 'plant.temp', topicId: randomUUID(), ...fromImage })).rejects.toMatchObject({ code: ErrorCode.TOPIC_ALREADY_EXISTS })
  })
})
