/**
 * Admin requests while the active controller is paused (SIGSTOP), as a long GC pause or a stopped VM leaves it. Clients
 * never reach the KRaft controller: Metadata and DescribeCluster name a live broker as controller (the answering node,
 * one of a KRaft broker's random picks, KRaftMetadataCache.getControllerId, KIP-590), and that broker forwards
 * CreateTopics, DeleteTopics and the config changes to the controller it knows, following the quorum to the next one
 * it elects (Kafka's NodeToControllerChannelManager). So librdkafka's admin calls, which go to the controller its
 * Metadata named, are answered once the quorum has elected another controller, within librdkafka's request timeout:
 * named the paused controller, librdkafka waited on it until that timeout, and a CreateTopics forwarded to it was
 * answered NOT_CONTROLLER. The calls are made through confluent-kafka-python's AdminClient (Debian's
 * python3-confluent-kafka on the system librdkafka; that test is skipped, saying why, without it).
 *
 * A forwarded request waits for a controller as long as Kafka's forwarding does (60 s from its first send), not
 * only as long as one election takes: with the controller and a second node paused, the third knows no controller
 * until the second is back, and a kafkajs CreateTopics sent to it meanwhile, kept waiting past the 6 s after which
 * nodes used to answer NOT_CONTROLLER, is answered by the controller elected then (kafkajs with retries off, so an
 * early NOT_CONTROLLER would fail it rather than be retried). That test pauses for 8 s, and takes about 10.
 *
 * A node whose image lags the controller's (stopped while two topics were created, then the controller stopped) does
 * not answer UNKNOWN_TOPIC_OR_PARTITION for them: it forwards a DeleteTopics (by name, and by id, answered with the
 * topic's name) and an IncrementalAlterConfigs, which the controller elected next carries out.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { useCluster } from '../../helpers/cluster.js'
import { confluentKafkaMissing, fixtureAnswers } from '../../helpers/confluent-kafka.js'
import { createTopic, partitionsOf, withClient } from '../../helpers/kafka.js'
import { waitFor } from '../../helpers/wait.js'
import { metadata, type MetadataRequest, type MetadataResponse } from '../../../protocol/messages/metadata.js'
import { describeCluster, type DescribeClusterRequest, type DescribeClusterResponse } from '../../../protocol/messages/describe-cluster.js'
import { deleteTopics, type DeleteTopicsRequest, type DeleteTopicsResponse } from '../../../protocol/messages/delete-topics.js'
import { ResourceType, ZERO_UUID } from '../../../protocol/constants.js'
import { incrementalAlterConfigs, type IncrementalAlterConfigsRequest, type IncrementalAlterConfigsResponse } from '../../../protocol/messages/incremental-alter-configs.js'
import { describeConfigs, type DescribeConfigsRequest, type DescribeConfigsResponse } from '../../../protocol/messages/describe-configs.js'

const missing = confluentKafkaMissing()
if (missing !== null) console.log(`paused-controller librdkafka test skipped: ${missing}`)

interface AdminAnswer {
  call: string
  resource: string
  error: string | null
}

/** Runs confluent-admin.py's calls through `bootstrap`; resolves with one answer per call once it exits. */
function adminCalls(bootstrap: string, calls: [string, string][]): Promise<AdminAnswer[]> {
  return fixtureAnswers<AdminAnswer>('confluent-admin.py', [bootstrap, ...calls.flat()])
}

describe('admin requests while the active controller is paused', () => {
  const cluster = useCluster({ nodes: 3 })

  it('names the answering node as controller in Metadata and DescribeCluster, and the quorum leader in cluster status', async () => {
    const status = await cluster().status(1)
    for (const id of cluster().nodeIds) {
      const node = cluster().nodes.get(id)!
      // Once the node's own image shows every node a live broker (itself among them).
      const [answered, described] = await waitFor(`node ${id} lists three live brokers`, async () => {
        const answers = await withClient(node, (client) =>
          Promise.all([
            client.request<MetadataRequest, MetadataResponse>(metadata, 12, { topics: [], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }),
            client.request<DescribeClusterRequest, DescribeClusterResponse>(describeCluster, 1, { includeClusterAuthorizedOperations: false, endpointType: 1 }),
          ]),
        )
        return answers[0].brokers.length === 3 && answers[1].brokers.length === 3 && answers
      })
      expect(answered.controllerId).toBe(id)
      expect(described.controllerId).toBe(id)
    }
    expect(status.controllerId).toBe(status.leaderId)
    expect(cluster().nodeIds).toContain(status.controllerId)
  })

  it.skipIf(missing !== null)('answers librdkafka\'s CreateTopics, DeleteTopics and DescribeConfigs through another node once the quorum has elected a new controller', async () => {
    const before = await cluster().status(1)
    const controller = before.leaderId
    const other = cluster().nodeIds.find((id) => id !== controller)!
    const bootstrap = cluster().nodes.get(other)!
    await createTopic(bootstrap, 'kept')
    await createTopic(bootstrap, 'doomed')
    // Every node shows both topics before the controller stops: librdkafka may describe 'kept' at any node, which
    // answers DescribeConfigs from its own image, as a Kafka broker does from its metadata cache (a node that had not
    // yet applied the topic when the controller stopped would learn of it only from the next controller).
    for (const id of cluster().nodeIds) {
      await waitFor(`node ${id} shows 'kept' and 'doomed'`, async () => (await partitionsOf(cluster().nodes.get(id)!, 'kept')).length === 1 && (await partitionsOf(cluster().nodes.get(id)!, 'doomed')).length === 1)
    }
    const paused = cluster().nodes.get(controller)!
    paused.child.kill('SIGSTOP')
    let answers: AdminAnswer[]
    try {
      answers = await adminCalls(bootstrap.address, [
        ['create', 'made-while-paused'],
        ['delete', 'doomed'],
        ['describe', 'kept'],
      ])
    } finally {
      paused.child.kill('SIGCONT')
    }
    expect(answers).toEqual([
      { call: 'create', resource: 'made-while-paused', error: null },
      { call: 'delete', resource: 'doomed', error: null },
      { call: 'describe', resource: 'kept', error: null },
    ])
    const after = await waitFor('a new controller with every node a live broker again', async () => {
      const seen = await cluster().status(other)
      return seen.leaderId >= 0 && seen.leaderId !== controller && seen.liveBrokers.length === 3 && seen
    })
    expect(after.leaderEpoch).toBeGreaterThan(before.leaderEpoch)
  })

  it('keeps a CreateTopics forwarded while no controller can be elected until one is, past the 6 s after which it used to answer NOT_CONTROLLER', async () => {
    const controller = await waitFor('an active controller with every node a live broker', async () => {
      const status = await cluster().status(1)
      return status.leaderId >= 0 && status.liveBrokers.length === 3 && status.leaderId
    })
    const [second, asked] = cluster().nodeIds.filter((id) => id !== controller) as [number, number]
    const admin = cluster().kafka('forwarded-while-quorumless', [asked], { retries: 0 }).admin()
    await admin.connect()
    const paused = [controller, second].map((id) => cluster().nodes.get(id)!)
    for (const node of paused) node.child.kill('SIGSTOP')
    try {
      const created = admin.createTopics({ topics: [{ topic: 'made-once-a-quorum-is-back', numPartitions: 1, replicationFactor: 1 }], waitForLeaders: false })
      created.catch(() => undefined)
      // Longer than the 6 s after which the node used to give up and answer NOT_CONTROLLER.
      await sleep(8000)
      paused[1]!.child.kill('SIGCONT')
      expect(await created).toBe(true)
    } finally {
      for (const node of paused) node.child.kill('SIGCONT')
      await admin.disconnect()
    }
    expect(await partitionsOf(cluster().nodes.get(asked)!, 'made-once-a-quorum-is-back')).toHaveLength(1)
  })

  it('forwards a DeleteTopics (by name and by id) and an IncrementalAlterConfigs for topics its own image does not show yet, and the controller elected next makes both changes', async () => {
    const controller = await waitFor('an active controller with every node a live broker', async () => {
      const status = await cluster().status(1)
      return status.leaderId >= 0 && status.liveBrokers.length === 3 && status.leaderId
    })
    const [other, lagging] = cluster().nodeIds.filter((id) => id !== controller) as [number, number]
    const behind = cluster().nodes.get(lagging)!
    const paused = cluster().nodes.get(controller)!
    let byIdTopicId = ZERO_UUID
    // The topic is committed by the controller and `other` while `lagging` is stopped; the controller is stopped
    // before `lagging` resumes, so `lagging` learns of the topic only from the controller elected next.
    behind.child.kill('SIGSTOP')
    try {
      await createTopic(cluster().nodes.get(other)!, 'not-here-yet')
      await createTopic(cluster().nodes.get(other)!, 'configs-not-here-yet')
      await createTopic(cluster().nodes.get(other)!, 'id-not-here-yet')
      const known = await withClient(cluster().nodes.get(other)!, (client) =>
        client.request<MetadataRequest, MetadataResponse>(metadata, 12, { topics: [{ topicId: ZERO_UUID, name: 'id-not-here-yet' }], allowAutoTopicCreation: false, includeClusterAuthorizedOperations: false, includeTopicAuthorizedOperations: false }),
      )
      byIdTopicId = known.topics[0]!.topicId!
      paused.child.kill('SIGSTOP')
    } finally {
      behind.child.kill('SIGCONT')
    }
    try {
      const [deleted, altered, deletedById] = await withClient(behind, (client) =>
        Promise.all([
          client.request<DeleteTopicsRequest, DeleteTopicsResponse>(deleteTopics, 6, { topics: [{ name: 'not-here-yet', topicId: ZERO_UUID }], topicNames: [], timeoutMs: 60_000 }),
          client.request<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>(incrementalAlterConfigs, 1, {
            resources: [{ resourceType: ResourceType.TOPIC, resourceName: 'configs-not-here-yet', configs: [{ name: 'retention.ms', configOperation: 0, value: '3600000' }] }],
            validateOnly: false,
          }),
          client.request<DeleteTopicsRequest, DeleteTopicsResponse>(deleteTopics, 6, { topics: [{ name: null, topicId: byIdTopicId }], topicNames: [], timeoutMs: 60_000 }),
        ]),
      )
      expect(deleted.responses.map((r) => [r.name, r.errorCode])).toEqual([['not-here-yet', 0]])
      // Asked for by id, the answer names the topic, as the controller's answer did.
      expect(deletedById.responses.map((r) => [r.name, r.topicId, r.errorCode])).toEqual([['id-not-here-yet', byIdTopicId, 0]])
      expect(altered.responses.map((r) => [r.resourceName, r.errorCode])).toEqual([['configs-not-here-yet', 0]])
    } finally {
      paused.child.kill('SIGCONT')
    }
    expect(await partitionsOf(cluster().nodes.get(other)!, 'not-here-yet')).toEqual([])
    const described = await withClient(behind, (client) =>
      client.request<DescribeConfigsRequest, DescribeConfigsResponse>(describeConfigs, 4, {
        resources: [{ resourceType: ResourceType.TOPIC, resourceName: 'configs-not-here-yet', configurationKeys: ['retention.ms'] }],
        includeSynonyms: false,
        includeDocumentation: false,
      }),
    )
    expect(described.results[0]?.configs.map((c) => [c.name, c.value])).toEqual([['retention.ms', '3600000']])
  })
})
