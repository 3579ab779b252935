/**
 * The first moments of a topic on a three-node cluster. CreateTopics is answered once the receiving node's metadata
 * image holds the topic, and that node's Metadata names each partition's leader from then on; the node opens the
 * topic's logs and makes its replicas a moment later. A Produce, Fetch or ListOffsets sent in between to a partition
 * the image names the node leader of is answered as Kafka's broker answers a partition its metadata cache holds and
 * its ReplicaManager does not yet host (ReplicaManager.getPartitionOrError): NOT_LEADER_OR_FOLLOWER, which every
 * client retries after a metadata refresh, never UNKNOWN_TOPIC_OR_PARTITION or UNKNOWN_TOPIC_ID (which librdkafka
 * reports as a permanent error for the partition). A topic the node has not heard of at all stays
 * UNKNOWN_TOPIC_OR_PARTITION, as Kafka's KafkaApis answers one its metadata cache does not hold.
 */
import { describe, expect, it } from 'vitest'
import { QUICK_CLUSTER_ARGS, useCluster } from '../../helpers/cluster.js'
import { waitFor } from '../../helpers/wait.js'
import { withClient } from '../../helpers/kafka.js'
import { handBuiltBatch } from '../../helpers/wire.js'
import type { KafkaClient } from '../../../client/kafka-client.js'
import { createTopics, type CreateTopicsRequest, type CreateTopicsResponse } from '../../../protocol/messages/create-topics.js'
import { produce, type ProduceRequest, type ProduceResponse } from '../../../protocol/messages/produce.js'
import { fetch, type FetchRequest, type FetchResponse } from '../../../protocol/messages/fetch.js'
import { listOffsets, type ListOffsetsRequest, type ListOffsetsResponse } from '../../../protocol/messages/list-offsets.js'
import { metadata, type MetadataRequest, type MetadataResponse } from '../../../protocol/messages/metadata.js'
import { ZERO_UUID } from '../../../protocol/constants.js'

// Kafka's error codes (the protocol guide's table).
const NONE = 0
const UNKNOWN_TOPIC_OR_PARTITION = 3
const NOT_LEADER_OR_FOLLOWER = 6
const UNKNOWN_TOPIC_ID = 100

/** Enough partitions that opening their logs takes the node a while after it answers CreateTopics. */
const PARTITIONS = 300

describe('a topic just created on a three-node cluster', () => {
  const cluster = useCluster({ nodes: 3, extraArgs: QUICK_CLUSTER_ARGS })

  function produceAll(client: KafkaClient, topic: string, partitions: readonly number[]): Promise<ProduceResponse> {
    return client.request<ProduceRequest, ProduceResponse>(produce, 9, {
      transactionalId: null,
      acks: 1,
      timeoutMs: 10_000,
      topicData: [{ name: topic, partitionData: partitions.map((index) => ({ index, records: handBuiltBatch([`first to ${index}`]) })) }],
    })
  }

  function fetchAll(client: KafkaClient, version: 12 | 13, topic: { name: string; topicId: string }, partitions: readonly number[]): Promise<FetchResponse> {
    return client.request<Partial<FetchRequest>, FetchResponse>(fetch, version, {
      replicaId: -1,
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1024 * 1024,
      isolationLevel: 0,
      sessionId: 0,
      sessionEpoch: -1,
      topics: [
        {
          topic: version < 13 ? topic.name : '',
          topicId: version < 13 ? ZERO_UUID : topic.topicId,
          partitions: partitions.map((partition) => ({
            partition,
            currentLeaderEpoch: -1,
            fetchOffset: 0n,
            lastFetchedEpoch: -1,
            logStartOffset: -1n,
            partitionMaxBytes: 1024,
            replicaDirectoryId: ZERO_UUID,
          })),
        },
      ],
      forgottenTopicsData: [],
      rackId: '',
    })
  }

  function listLatest(client: KafkaClient, topic: string, partitions: readonly number[]): Promise<ListOffsetsResponse> {
    return client.request<ListOffsetsRequest, ListOffsetsResponse>(listOffsets, 7, {
      replicaId: -1,
      isolationLevel: 0,
      timeoutMs: 10_000,
      topics: [{ name: topic, partitions: partitions.map((partitionIndex) => ({ partitionIndex, currentLeaderEpoch: -1, timestamp: -1n, maxNumOffsets: 1 })) }],
    })
  }

  it('answers NOT_LEADER_OR_FOLLOWER, never an unknown topic, until its leader serves the partitions', async () => {
    const node = cluster().nodes.get(1)!
    await withClient(node, async (client) => {
      const created = await client.request<Partial<CreateTopicsRequest>, CreateTopicsResponse>(createTopics, 7, {
        topics: [{ name: 'fresh', numPartitions: PARTITIONS, replicationFactor: 1, assignments: [], configs: [] }],
        timeoutMs: 10_000,
        validateOnly: false,
      })
      expect(created.topics[0]!.errorCode).toBe(NONE)
      const topic = { name: 'fresh', topicId: created.topics[0]!.topicId! }
      const all = Array.from({ length: PARTITIONS }, (_, i) => i)
      // Sent at once, before the node may have opened the topic's logs: the answers below are what a client sees in
      // the moment after CreateTopics.
      const [produced, fetchedByName, fetchedById, listed, described] = await Promise.all([
        produceAll(client, topic.name, all),
        fetchAll(client, 12, topic, all),
        fetchAll(client, 13, topic, all),
        listLatest(client, topic.name, all),
        client.request<MetadataRequest, MetadataResponse>(metadata, 12, {
          topics: [{ topicId: ZERO_UUID, name: topic.name }],
          allowAutoTopicCreation: false,
          includeClusterAuthorizedOperations: false,
          includeTopicAuthorizedOperations: false,
        }),
      ])
      const codes = new Set([
        ...produced.responses[0]!.partitionResponses.map((p) => p.errorCode),
        ...fetchedByName.responses[0]!.partitions.map((p) => p.errorCode),
        ...fetchedById.responses[0]!.partitions.map((p) => p.errorCode),
        ...listed.topics[0]!.partitions.map((p) => p.errorCode),
      ])
      expect([...codes].filter((code) => code !== NONE && code !== NOT_LEADER_OR_FOLLOWER)).toEqual([])
      // The node's Metadata holds the topic from the CreateTopics answer on, and names node 1 leader of some partitions.
      const led = described.topics[0]!.partitions.filter((p) => p.leaderId === 1).map((p) => p.partitionIndex)
      expect(led.length).toBeGreaterThan(0)

      // The leader serves them once its replicas are made.
      await waitFor('node 1 takes the produce to every partition it leads', async () => {
        const answer = await produceAll(client, topic.name, led)
        return answer.responses[0]!.partitionResponses.every((p) => p.errorCode === NONE)
      })
      const fetched = await fetchAll(client, 13, topic, led)
      expect(fetched.responses[0]!.partitions.map((p) => p.errorCode)).toEqual(led.map(() => NONE))
    })
  })

  it('answers UNKNOWN_TOPIC_OR_PARTITION and UNKNOWN_TOPIC_ID for a topic no node has heard of', async () => {
    await withClient(cluster().nodes.get(2)!, async (client) => {
      const produced = await produceAll(client, 'never-created', [0])
      expect(produced.responses[0]!.partitionResponses[0]!.errorCode).toBe(UNKNOWN_TOPIC_OR_PARTITION)
      const fetchedByName = await fetchAll(client, 12, { name: 'never-created', topicId: ZERO_UUID }, [0])
      expect(fetchedByName.responses[0]!.partitions[0]!.errorCode).toBe(UNKNOWN_TOPIC_OR_PARTITION)
      const fetchedById = await fetchAll(client, 13, { name: '', topicId: '00000000-0000-0000-0000-000000000001' }, [0])
      expect(fetchedById.responses[0]!.partitions[0]!.errorCode).toBe(UNKNOWN_TOPIC_ID)
      const listed = await listLatest(client, 'never-created', [0])
      expect(listed.topics[0]!.partitions[0]!.errorCode).toBe(UNKNOWN_TOPIC_OR_PARTITION)
    })
  })
})
