/**
 * @platformatic/kafka 1.35's Admin against a three-node cluster, given bad input: what each refusal's error code and
 * message are, as a user of the client sees them in the answer it attaches to its error. Each expectation is Kafka's
 * answer to the same request, with the class of Kafka's that gives it.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { Admin, ConfigResourceTypes } from '@platformatic/kafka'
import { QUICK_CLUSTER_ARGS, useCluster } from '../helpers/cluster.js'
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
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })
  const admins: Admin[] = []
  afterAll(async () => {
    for (const admin of admins) await admin.close()
  })

  function admin(): Admin {
    const bootstrapBrokers = cluster().nodeIds.map((id) => `${cluster().host(id)}:${cluster().nodes.get(id)!.port}`)
    const client = new Admin({ clientId: `plt-errors-${admins.length}`, bootstrapBrokers, retries: 0 })
    admins.push(client)
    return client
  }

  it('config requests naming an illegal topic name are INVALID_TOPIC_EXCEPTION (an empty one INVALID_REQUEST when altered), not UNKNOWN_TOPIC_OR_PARTITION', async () => {
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
  })

  it('IncrementalAlterConfigs SET without a value is INVALID_REQUEST and changes nothing; a DELETE needs none', async () => {
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
    await client.incrementalAlterConfigs({ resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: 'plt-null-set', configs: [{ name: 'retention.ms', configOperation: ConfigOperation.DELETE }] }] })
    expect(await retention()).toBe('604800000')
  })
})
