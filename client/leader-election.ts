/**
 * Leader elections on the wire, what kafka-leader-election.sh does through the Admin client (KIP-460): ElectLeaders
 * v0-2 at the active controller through `ClusterClient.atController` (any node forwards it there, KIP-590). v0 (KIP-183's
 * ElectPreferredLeaders) has no election type and elects preferred replicas only, so an unclean election needs v1.
 */
import { CONTROLLER_REQUEST_TIMEOUT_MS, type ClusterClient } from './cluster-client.js'
import { checkError } from './kafka-client.js'
import type { TopicSelection } from './group-admin.js'
import { ElectionType } from '../protocol/constants.js'
import { ErrorCode } from '../protocol/errors.js'
import { electLeaders as electLeadersApi, type ElectLeadersRequest, type ElectLeadersResponse } from '../protocol/messages/elect-leaders.js'

/** How long the controller may take; below the client's 30 s request timeout, so its answer arrives first. */
const TIMEOUT_MS = 15_000

/** What the controller answered for one partition. */
export interface ElectionOutcome {
  readonly topic: string
  readonly partition: number
  /** NONE: a leader was elected. */
  readonly errorCode: number
  readonly errorMessage: string | null
}

export interface ElectLeadersOptions {
  electionType: ElectionType
  /**
   * The partitions, by topic (a topic without partitions: every partition Metadata lists for it); null: every partition
   * of the cluster, asked as a null list, as kafka-leader-election.sh --all-topic-partitions asks.
   */
  topics: readonly TopicSelection[] | null
}

/**
 * Elects leaders (ElectLeadersRequest.json): PREFERRED makes each partition's first replica its leader where that
 * replica is live and in the ISR; UNCLEAN elects a leader for each partition that has none, from any live replica.
 * Returns each partition's outcome in topic and partition order: NONE (elected), ELECTION_NOT_NEEDED (the preferred
 * replica leads already; for UNCLEAN, the partition has a leader), PREFERRED_LEADER_NOT_AVAILABLE,
 * ELIGIBLE_LEADERS_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION, with the controller's message. Asked for every partition
 * (`topics` null), the controller answers only for those it elected a leader for or could not, as Kafka's
 * ReplicationControlManager does: on a single node, whose partitions never need an election, nothing. A request sent
 * again after a lost answer finds the partitions the first attempt elected ELECTION_NOT_NEEDED.
 * Errors: a topic named without partitions that Metadata does not know; NOT_CONTROLLER (the answer's, or a
 * partition's in v0, which has no top-level error) and lost connections once `atController` has waited them out
 * (30 s); any other top-level error of the answer (v1+); UNCLEAN at a controller that has only v0.
 */
export async function electLeaders(cluster: ClusterClient, options: ElectLeadersOptions): Promise<ElectionOutcome[]> {
  const topicPartitions = options.topics === null ? null : await partitionsOf(cluster, options.topics)
  const context = 'cannot elect leaders'
  const outcomes = await cluster.atController(context, async (client) => {
    const version = client.version(electLeadersApi)
    if (version === 0 && options.electionType !== ElectionType.PREFERRED) {
      throw new Error(`the broker at ${client.address} cannot run an unclean election (it needs ElectLeaders v1)`)
    }
    const response = await client.request<ElectLeadersRequest, ElectLeadersResponse>(electLeadersApi, version, {
      electionType: options.electionType,
      topicPartitions,
      timeoutMs: TIMEOUT_MS,
    }, { timeoutMs: CONTROLLER_REQUEST_TIMEOUT_MS })
    checkError(response.errorCode ?? ErrorCode.NONE, context)
    const answered = response.replicaElectionResults.flatMap(({ topic, partitionResult }) =>
      partitionResult.map(({ partitionId, errorCode, errorMessage }): ElectionOutcome => ({ topic, partition: partitionId, errorCode, errorMessage })),
    )
    const moved = answered.find((outcome) => outcome.errorCode === ErrorCode.NOT_CONTROLLER)
    if (moved) checkError(moved.errorCode, context, moved.errorMessage)
    return answered
  })
  return outcomes.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)
}

/** The outcomes that are failures: neither elected (NONE) nor ELECTION_NOT_NEEDED, as kafka-leader-election.sh counts them. */
export function failedElections(outcomes: readonly ElectionOutcome[]): ElectionOutcome[] {
  return outcomes.filter((o) => o.errorCode !== ErrorCode.NONE && o.errorCode !== ErrorCode.ELECTION_NOT_NEEDED)
}

/** The partitions of `topics` as ElectLeaders names them, those of a topic named alone from Metadata. */
async function partitionsOf(cluster: ClusterClient, topics: readonly TopicSelection[]): Promise<ElectLeadersRequest['topicPartitions']> {
  const whole = topics.filter((t) => t.partitions === undefined).map((t) => t.topic)
  const described = await cluster.topicsNamed(whole, 'fail')
  const byTopic = new Map<string, Set<number>>()
  for (const { topic, partitions } of topics) {
    const listed = partitions ?? described.get(topic)!.partitions.map((p) => p.partitionIndex)
    byTopic.set(topic, new Set([...(byTopic.get(topic) ?? []), ...listed]))
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions: [...partitions].sort((a, b) => a - b) }))
}
