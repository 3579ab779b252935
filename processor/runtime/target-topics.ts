/**
 * Scoping a kafkajs client's first Metadata request to the topics it will use.
 *
 * kafkajs 2.2.4 keeps, per client, the set of topics its metadata covers (`cluster.targetTopics`). A new client starts
 * with an empty set, and kafkajs encodes an empty topic list as null, which Metadata reads as "every topic in the
 * cluster" (Metadata request v1+, kafka-message-specs/MetadataRequest.json). It then fails the whole answer when any
 * partition in it has an error. Kafka, like Brook, answers LEADER_NOT_AVAILABLE for a partition whose replicas are
 * all down, so while any partition anywhere in the cluster is offline, a client whose first request is such a refresh
 * cannot start:
 *
 *   - an idempotent or transactional producer: `connect` (idempotent) and `transaction()` (transactional) initialize
 *     the producer id after refreshing metadata for the producer's target topics;
 *   - an admin client: `createTopics` and `describeCluster` refresh metadata for all topics.
 *
 * `withTargetTopics` makes a client whose target set starts with the given topics, so that refresh asks about those
 * topics only. It reaches kafkajs's cluster factory, a private symbol-keyed member of the Kafka instance
 * (`Symbol('private:Kafka:createCluster')`); with a kafkajs that has no such member, the client is made as before.
 * The topics must exist: kafkajs fails a refresh that names an unknown topic.
 */
import type { Kafka } from 'kafkajs'

const CREATE_CLUSTER = 'private:Kafka:createCluster'

type ClusterFactory = (...args: unknown[]) => { targetTopics?: unknown }

/**
 * Calls `make` (which must create one kafkajs client from `kafka` synchronously, e.g. `() => kafka.producer({...})`)
 * so that the client's metadata starts out covering `topics` rather than every topic in the cluster. With no topics,
 * or a kafkajs without the cluster factory this reaches, it is `make()`. Throws what `make` throws.
 */
export function withTargetTopics<T>(kafka: Kafka, topics: readonly string[], make: () => T): T {
  const members = kafka as unknown as Record<symbol, unknown>
  const key = Object.getOwnPropertySymbols(kafka).find((symbol) => symbol.description === CREATE_CLUSTER)
  const factory = key === undefined ? undefined : members[key]
  if (topics.length === 0 || key === undefined || typeof factory !== 'function') return make()
  members[key] = (...args: unknown[]) => {
    const cluster = (factory as ClusterFactory)(...args)
    if (cluster.targetTopics instanceof Set) for (const topic of topics) cluster.targetTopics.add(topic)
    return cluster
  }
  try {
    return make()
  } finally {
    members[key] = factory
  }
}
