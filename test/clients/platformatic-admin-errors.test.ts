/**
 * @platformatic/kafka 1.35's Admin against a three-node cluster, given bad input: what each refusal's error code and
 * message are, as a user of the client sees them in the answer it attaches to its error; and the leader epoch
 * ListOffsets names after a leader change. Each expectation is Kafka's answer to the same request, with the class of
 * Kafka's that gives it.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { Admin, ConfigResourceTypes, Producer, ProduceAcks, stringSerializers } from '@platformatic/kafka'
import { QUICK_CLUSTER_ARGS, useCluster } from '../helpers/cluster.js'
import { waitFor } from '../helpers/wait.js'
import { ErrorCode } from '../../protocol/errors.js'
import { ConfigOperation } from '../../protocol/constants.js'

/** The per-resource answers a refused config request carried (platformatic nests the response inside its errors). */
async function refusedResources(request: Promise<unknown>): Promise<{ errorCode: number; errorMessage: string | null }[]> {
  const error = await request.then(
    () => {
      throw new Error('the request was not refused')
    },
    (e: unknown) => e,
  )
  const walk = (e: { response?: { results?: unknown[]; responses?: unknown[] }; errors?: unknown[] }): unknown[] | undefined =>
    e.response?.results ?? e.response?.responses ?? e.errors?.map((inner) => walk(inner as typeof e)).find((found) => found !== undefined)
  const resources = walk(error as Parameters<typeof walk>[0])
  if (resources === undefined) throw error
  return resources as { errorCode: number; errorMessage: string | null }[]
}

describe('@platformatic/kafka 1.35 admin errors on a three-node cluster', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS, logRetentionMs: 'kafka-default' })
  const admins: Admin[] = []
  afterAll(async () => {
    for (const admin of admins) await admin.close()
  })

  const bootstrapBrokersOf = (): string[] => cluster().nodeIds.map((id) => `${cluster().host(id)}:${cluster().nodes.get(id)!.port}`)

  function admin(): Admin {
    const client = new Admin({ clientId: `plt-errors-${admins.length}`, bootstrapBrokers: bootstrapBrokersOf(), retries: 0 })
    admins.push(client)
    return client
  }

  it('config requests naming an illegal topic name are INVALID_TOPIC_EXCEPTION (an empty one INVALID_REQUEST when altered), not UNKNOWN_TOPIC_OR_PARTITION, which a missing topic gets unless a value is bad', async () => {
    const client = admin()
    // ConfigHelper.describeConfigs runs Topic.validate before it looks the topic up.
    for (const name of ['bad name!', '', 'x'.repeat(250)]) {
      const [described] = await refusedResources(client.describeConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: name }] }))
      expect(described).toMatchObject({ errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, errorMessage: expect.stringContaining('topic name') })
    }
    // ControllerConfigurationValidator.validateTopicName: '' is the default resource, which topics do not have.
    const retention = [{ name: 'retention.ms', value: '1000' }]
    const alters = (resourceName: string) => [
      client.alterConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName, configs: retention }] }),
      client.incrementalAlterConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName, configs: [{ ...retention[0]!, configOperation: ConfigOperation.SET }] }] }),
    ]
    for (const request of alters('bad name!')) {
      expect((await refusedResources(request))[0]).toMatchObject({ errorCode: ErrorCode.INVALID_TOPIC_EXCEPTION, errorMessage: expect.stringContaining("'bad name!'") })
    }
    for (const request of alters('')) {
      expect((await refusedResources(request))[0]).toEqual(expect.objectContaining({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Default topic resources are not allowed.' }))
    }
    // A legal name that no topic has is still UNKNOWN_TOPIC_OR_PARTITION.
    const [unknown] = await refusedResources(client.describeConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'no-such-topic' }] }))
    expect(unknown).toMatchObject({ errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION })
    // Changing its configs, too, unless a value is bad: ConfigurationControlManager.validateAlterConfig validates the
    // change (against no configs of the topic's) before its existence check, so that is INVALID_CONFIG.
    for (const [value, errorCode] of [['1000', ErrorCode.UNKNOWN_TOPIC_OR_PARTITION], ['forever', ErrorCode.INVALID_CONFIG]] as const) {
      const configs = [{ name: 'retention.ms', value }]
      const [legacy] = await refusedResources(client.alterConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'no-such-topic', configs }] }))
      const [incremental] = await refusedResources(
        client.incrementalAlterConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'no-such-topic', configs: [{ ...configs[0]!, configOperation: ConfigOperation.SET }] }] }),
      )
      expect([legacy!.errorCode, incremental!.errorCode], value).toEqual([errorCode, errorCode])
    }
  })

  it('IncrementalAlterConfigs SET without a value is INVALID_REQUEST and changes nothing; a DELETE needs none, and of an unknown name changes nothing', async () => {
    const client = admin()
    await client.createTopics({ topics: ['plt-null-set'], partitions: 1, replicas: 3, configs: [{ name: 'retention.ms', value: '5000' }] })
    const retention = async () => {
      const [described] = await client.describeConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'plt-null-set', configurationKeys: ['retention.ms'] }] })
      return described!.configs[0]!.value
    }
    // ConfigAdminManager.preprocess, on the broker that takes the request, before the controller sees it. platformatic's
    // types ask a SET for a value; it sends null when given none, which is the request in question.
    const noValue = null as unknown as string
    const [refused] = await refusedResources(
      client.incrementalAlterConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'plt-null-set', configs: [{ name: 'retention.ms', configOperation: ConfigOperation.SET, value: noValue }] }] }),
    )
    expect(refused).toEqual(expect.objectContaining({ errorCode: ErrorCode.INVALID_REQUEST, errorMessage: 'Null value not supported for : retention.ms' }))
    expect(await retention()).toBe('5000')
    // Removing a name that is no topic config is no change, and no error (ConfigurationControlManager writes no record).
    await client.incrementalAlterConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'plt-null-set', configs: [{ name: 'retention.msec', configOperation: ConfigOperation.DELETE }] }] })
    expect(await retention()).toBe('5000')
    await client.incrementalAlterConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'plt-null-set', configs: [{ name: 'retention.ms', configOperation: ConfigOperation.DELETE }] }] })
    expect(await retention()).toBe('604800000')
  })

  it('ListOffsets earliest names the leader epoch that wrote the log start offset, not the leader epoch of now (the leader kill -9ed)', async () => {
    const client = admin()
    await client.createTopics({ topics: ['plt-earliest-epoch'], partitions: 1, replicas: 3 })
    const producer = new Producer({ clientId: 'plt-earliest-producer', bootstrapBrokers: bootstrapBrokersOf(), serializers: stringSerializers, retries: 20, retryDelay: 250 })
    try {
      // acks on the send: platformatic 1.35's send takes acks only from its own options (else acks=1, unless idempotent),
      // and DeleteRecords below needs the high watermark past offset 4.
      await producer.send({ acks: ProduceAcks.ALL, messages: Array.from({ length: 10 }, (_, i) => ({ topic: 'plt-earliest-epoch', partition: 0, value: `r${i}` })) })
    } finally {
      await producer.close()
    }
    await client.deleteRecords({ topics: [{ name: 'plt-earliest-epoch', partitions: [{ partition: 0, offset: 4n }] }] })
    const leaderOf = async () => (await client.metadata({ topics: ['plt-earliest-epoch'], forceUpdate: true })).topics.get('plt-earliest-epoch')!.partitions[0]!
    const before = await leaderOf()
    expect(before.leaderEpoch).toBe(0)
    await cluster().nodes.get(before.leader)!.kill()
    const after = await waitFor('a new leader of partition 0', async () => {
      const partition = await leaderOf().catch(() => undefined)
      return partition !== undefined && partition.leader !== before.leader && partition.leader >= 1 && partition
    })
    const listed = (timestamp: bigint) =>
      waitFor(`ListOffsets ${timestamp} from the new leader`, async () => {
        const [topic] = await client.listOffsets({ topics: [{ name: 'plt-earliest-epoch', partitions: [{ partitionIndex: 0, timestamp }] }] }).catch(() => [])
        return topic?.partitions[0]
      })
    // UnifiedLog.fetchOffsetByTimestamp: earliest is the leader-epoch cache's entry for the log start offset (epoch 0,
    // which wrote offset 4), latest the cache's latest epoch, the new leader's own.
    expect(await listed(-2n)).toMatchObject({ offset: 4n, leaderEpoch: 0 })
    expect(await listed(-1n)).toMatchObject({ offset: 10n, leaderEpoch: after.leaderEpoch })
    expect(after.leaderEpoch).toBeGreaterThan(0)
    await cluster().restart(before.leader)
  })
})
