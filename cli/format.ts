/**
 * What the commands print, in the layouts of Kafka's own tools (kafka-topics.sh, kafka-consumer-groups.sh,
 * kafka-console-consumer.sh, kafka-transactions.sh), so that output a user knows from Kafka reads the same here.
 */
import type { TopicDescription } from '../client/admin.js'
import type { GroupDescription, GroupMember, GroupOffsets, ListedGroup, OffsetDeletion, PlannedOffset, TopicPartitions } from '../client/group-admin.js'
import { producedVerb, type Acks, type ProduceSummary } from '../client/console-producer.js'
import type { ConsumedRecord } from '../client/console-consumer.js'
import type { ListedTransaction, ProducerDescription, TransactionDescription } from '../client/transaction-admin.js'
import type { ClusterStatus, TopicPartition } from '../client/cluster-admin.js'
import type { OngoingReassignment } from '../client/reassignments.js'
import type { LogDirDescription } from '../client/log-dirs.js'
import { failedElections, type ElectionOutcome } from '../client/leader-election.js'
import { errorText } from '../client/kafka-client.js'
import { ElectionType } from '../protocol/constants.js'
import { counted } from '../client/wording.js'
import { ErrorCode, errorInfo } from '../protocol/errors.js'
import { hostPort } from '../client/address.js'

/**
 * kafka-topics.sh --describe's layout (`Adding Replicas` and `Removing Replicas` while a reassignment is under way),
 * with the leader epoch and the log start and end offsets added; offsets its
 * leader could not give are `unavailable`, the reason last (`OffsetsUnavailable: leader 1 unreachable (...)`).
 */
export function formatTopic(topic: TopicDescription, only?: PartitionFilter): string {
  const configs = topic.configs.map((c) => `${c.name}=${c.value}`).join(',')
  // With a partition filter kafka-topics.sh prints the matching partitions' lines only.
  const lines = only === undefined ? [
    [`Topic: ${topic.name}`, `TopicId: ${topic.topicId ?? ''}`, `PartitionCount: ${topic.partitions.length}`,
      `ReplicationFactor: ${topic.replicationFactor}`, `Configs: ${configs}`].join('\t'),
  ] : []
  for (const p of topic.partitions) {
    if (only !== undefined && !partitionMatches(topic, p, only)) continue
    lines.push(
      '\t' +
        [`Topic: ${topic.name}`, `Partition: ${p.partition}`, `Leader: ${p.leader < 0 ? 'none' : p.leader}`,
          `LeaderEpoch: ${p.leaderEpoch}`, `Replicas: ${p.replicas.join(',')}`, `Isr: ${p.isr.join(',')}`,
          ...(p.addingReplicas.length + p.removingReplicas.length > 0 ? [`Adding Replicas: ${p.addingReplicas.join(',')}`, `Removing Replicas: ${p.removingReplicas.join(',')}`] : []),
          `LogStartOffset: ${p.logStartOffset ?? 'unavailable'}`, `LogEndOffset: ${p.logEndOffset ?? 'unavailable'}`,
          ...(p.offsetsUnavailable === null ? [] : [`OffsetsUnavailable: ${p.offsetsUnavailable}`])].join('\t'),
    )
  }
  return lines.join('\n')
}

/**
 * kafka-topics.sh --describe's partition filters: `under-replicated` (ISR smaller than the replicas), `under-min-isr`
 * (ISR smaller than the topic's min.insync.replicas: acks=all is refused there, KIP-351), `at-min-isr` (ISR as large
 * as min.insync.replicas: one more replica lost and acks=all is refused), `unavailable` (no live leader).
 */
export type PartitionFilter = 'under-replicated' | 'under-min-isr' | 'at-min-isr' | 'unavailable'

/** As kafka-topics.sh's PartitionDescription: the topic's min.insync.replicas as set, a leaderless partition under it. */
function partitionMatches(topic: TopicDescription, p: TopicDescription['partitions'][number], only: PartitionFilter): boolean {
  const minIsr = topic.minInsyncReplicas
  switch (only) {
    case 'under-replicated':
      return p.isr.length < p.replicas.length
    case 'under-min-isr':
      return p.leader < 0 || (minIsr !== null && p.isr.length < minIsr)
    case 'at-min-isr':
      return minIsr !== null && p.isr.length === minIsr
    case 'unavailable':
      return p.leader < 0
  }
}

/** `topics reassignments`: one row per partition being reassigned; null when none is. */
export function formatReassignments(ongoing: readonly OngoingReassignment[]): string | null {
  if (ongoing.length === 0) return null
  return formatTable(
    ['TOPIC', 'PARTITION', 'REPLICAS', 'ADDING', 'REMOVING'],
    ongoing.map((r) => [r.topic, String(r.partition), r.replicas.join(','), cell(r.addingReplicas.join(',')), cell(r.removingReplicas.join(','))]),
  )
}

/**
 * `topics log-dirs`: per node a line with its log directory and its volume (or the directory's error), then one row
 * per replica it holds: TOPIC PARTITION SIZE (bytes) OFFSET-LAG. `--json` prints kafka-log-dirs.sh's JSON instead.
 */
export function formatLogDirs(described: readonly LogDirDescription[]): string {
  return described.map((d) => {
    const volume = d.totalBytes === null || d.usableBytes === null ? '' : ` (volume ${d.totalBytes} bytes, ${d.usableBytes} usable)`
    const head = `Node ${d.nodeId}: ${d.logDir}${d.error === null ? volume : `: ${d.error}`}`
    if (d.partitions.length === 0) return d.error === null ? `${head}
(no replicas)` : head
    const rows = d.partitions.map((p) => [p.topic, String(p.partition), String(p.sizeBytes), String(p.offsetLag)])
    return `${head}
${formatTable(['TOPIC', 'PARTITION', 'SIZE', 'OFFSET-LAG'], rows)}`
  }).join('\n\n')
}

/**
 * `topics elect-leaders`: kafka-leader-election.sh's lines (LeaderElectionCommand), partitions as `topic-partition`:
 * `Successfully completed leader election (PREFERRED) for partitions t-0, t-1` for those elected, `Valid replica already
 * elected for partitions t-2` for ELECTION_NOT_NEEDED, and a line per partition that failed, its error by Kafka name
 * where the tool prints the exception (`Error completing leader election (PREFERRED) for partition: t-3:
 * PREFERRED_LEADER_NOT_AVAILABLE (...)`). When the controller answered for no partition (asked for all, it leaves out
 * those that needed no election), where Kafka's tool prints nothing: `No partition needed a preferred leader election.`
 */
export function formatElection(electionType: ElectionType, outcomes: readonly ElectionOutcome[]): string {
  const type = electionType === ElectionType.PREFERRED ? 'PREFERRED' : 'UNCLEAN'
  if (outcomes.length === 0) return `No partition needed ${electionType === ElectionType.PREFERRED ? 'a preferred' : 'an unclean'} leader election.`
  const named = (list: readonly ElectionOutcome[]): string => list.map((o) => `${o.topic}-${o.partition}`).join(', ')
  const elected = outcomes.filter((o) => o.errorCode === ErrorCode.NONE)
  const notNeeded = outcomes.filter((o) => o.errorCode === ErrorCode.ELECTION_NOT_NEEDED)
  return [
    ...(elected.length > 0 ? [`Successfully completed leader election (${type}) for partitions ${named(elected)}`] : []),
    ...(notNeeded.length > 0 ? [`Valid replica already elected for partitions ${named(notNeeded)}`] : []),
    ...failedElections(outcomes).map((o) => `Error completing leader election (${type}) for partition: ${o.topic}-${o.partition}: ${errorText(o.errorCode, o.errorMessage)}`),
  ].join('\n')
}

/** Columns padded to their widest cell, one space apart, as kafka-consumer-groups.sh prints them. */
function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i]!.length)))
  return [headers, ...rows].map((cells) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' ').trimEnd()).join('\n')
}

/** A table cell: '-' where Kafka's tool shows a missing value. */
function cell(value: string | number | bigint | null | undefined): string {
  return value === null || value === undefined || value === '' ? '-' : String(value)
}

/** `groups list`; null when there is no group. */
export function formatGroupList(listed: readonly ListedGroup[]): string | null {
  if (listed.length === 0) return null
  return formatTable(['GROUP', 'PROTOCOL-TYPE', 'STATE'], listed.map((g) => [g.groupId, cell(g.protocolType), cell(g.state)]))
}

/** `groups describe`: offsets, lag and owner per partition; null when there is nothing to show. */
export function formatGroupOffsets({ group, partitions }: GroupOffsets): string | null {
  const { groupId } = group
  const rows = partitions.map((p) => [
    groupId, p.topic, String(p.partition), cell(p.committedOffset), cell(p.logEndOffset), cell(p.lag),
    cell(p.member?.memberId), cell(p.member?.host), cell(p.member?.clientId),
  ])
  // Members without partitions get a line of their own, as in Kafka's tool.
  for (const m of group.members.filter((m) => m.assignment.length === 0)) rows.push([groupId, '-', '-', '-', '-', '-', m.memberId, cell(m.host), cell(m.clientId)])
  if (rows.length === 0) return null
  return formatTable(['GROUP', 'TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'LOG-END-OFFSET', 'LAG', 'CONSUMER-ID', 'HOST', 'CLIENT-ID'], rows)
}

/** `groups describe --state`. */
export function formatGroupState(group: GroupDescription): string {
  const { host, port, nodeId } = group.coordinator
  return formatTable(
    ['GROUP', 'COORDINATOR (ID)', 'ASSIGNMENT-STRATEGY', 'STATE', '#MEMBERS'],
    [[group.groupId, `${hostPort(host, port)} (${nodeId})`, cell(group.protocol), group.state, String(group.members.length)]],
  )
}

/** Kafka's ASSIGNMENT column: `topic(0,1),other(2)`. */
function formatAssignment(assignment: readonly TopicPartitions[]): string {
  return cell(assignment.map(({ topic, partitions }) => `${topic}(${partitions.join(',')})`).join(','))
}

/** `groups describe --members`. */
export function formatMembers(group: GroupDescription): string {
  const count = (m: GroupMember): number => m.assignment.reduce((n, { partitions }) => n + partitions.length, 0)
  const rows = group.members.map((m) => [group.groupId, m.memberId, cell(m.groupInstanceId), cell(m.host), cell(m.clientId), String(count(m)), formatAssignment(m.assignment)])
  return formatTable(['GROUP', 'CONSUMER-ID', 'GROUP-INSTANCE-ID', 'HOST', 'CLIENT-ID', '#PARTITIONS', 'ASSIGNMENT'], rows)
}

/** `groups reset-offsets`: the plan, committed or not. */
export function formatPlan(groupId: string, plan: readonly PlannedOffset[]): string {
  return formatTable(['GROUP', 'TOPIC', 'PARTITION', 'NEW-OFFSET'], plan.map((p) => [groupId, p.topic, String(p.partition), String(p.newOffset)]))
}

/**
 * `groups delete-offsets`: TOPIC PARTITION STATUS, as kafka-consumer-groups.sh --delete-offsets prints it: `Successful`,
 * or `Error: ` and Kafka's error name where its tool prints the exception; a topic Metadata could not describe has
 * `Not Provided` for its partition.
 */
export function formatOffsetDeletions(deletions: readonly OffsetDeletion[]): string {
  return formatTable(
    ['TOPIC', 'PARTITION', 'STATUS'],
    deletions.map((d) => [d.topic, d.partition === null ? 'Not Provided' : String(d.partition), d.errorCode === ErrorCode.NONE ? 'Successful' : `Error: ${errorInfo(d.errorCode).name}`]),
  )
}

/** What `produce` says on stderr when its input ends. */
export function formatSummary(topic: string, summary: ProduceSummary, acks: Acks): string {
  const partitions = [...summary.partitions].sort(([a], [b]) => a - b).map(([p, n]) => `partition ${p}: ${n}`).join(', ')
  return `${producedVerb(acks)} ${counted(summary.records, 'record')} in ${counted(summary.batches, 'batch', 'batches')} to ${topic}${partitions ? ` (${partitions})` : ''}`
}

/** Which fields of a record `consume` prints besides its value (the --print-* flags). */
export interface RecordFormat {
  printTimestamp?: boolean
  printPartition?: boolean
  printOffset?: boolean
  printHeaders?: boolean
  printKey?: boolean
}

/**
 * One record as a line, in the order and spelling of Kafka's DefaultMessageFormatter: `CreateTime:<ms>`,
 * `Partition:<n>`, `Offset:<n>`, headers as `k:v,k:v` (`NO_HEADERS`), key, value, separated by tabs; null is `null`.
 * Bytes, not text: keys, values and header values are not decoded.
 */
export function formatRecord(record: ConsumedRecord, format: RecordFormat): Buffer {
  // Keys, values and header values are written as they are, as Kafka's formatter does without a deserializer: bytes
  // that are not UTF-8 (Avro, protobuf) must reach a file unchanged, not as U+FFFD.
  const bytes = (value: Buffer | null): Buffer => value ?? NULL
  const fields: Buffer[] = []
  if (format.printTimestamp) fields.push(Buffer.from(`${record.timestampType}:${record.timestamp}`))
  if (format.printPartition) fields.push(Buffer.from(`Partition:${record.partition}`))
  if (format.printOffset) fields.push(Buffer.from(`Offset:${record.offset}`))
  if (format.printHeaders) {
    const headers = record.headers.flatMap((h, i) => [Buffer.from(`${i > 0 ? ',' : ''}${h.key}:`), bytes(h.value)])
    fields.push(record.headers.length === 0 ? Buffer.from('NO_HEADERS') : Buffer.concat(headers))
  }
  if (format.printKey) fields.push(bytes(record.key))
  fields.push(bytes(record.value))
  return Buffer.concat(fields.flatMap((field, i) => (i > 0 ? [TAB, field] : [field])))
}

const TAB = Buffer.from('\t')
const NULL = Buffer.from('null')

/** `transactions list`, as kafka-transactions.sh lists them; null when there is none. */
export function formatTransactionList(listed: readonly ListedTransaction[]): string | null {
  if (listed.length === 0) return null
  return formatTable(
    ['TransactionalId', 'Coordinator', 'ProducerId', 'TransactionState'],
    listed.map((t) => [t.transactionalId, String(t.coordinatorId), String(t.producerId), t.state]),
  )
}

/** `transactions describe`, kafka-transactions.sh's columns; the duration is counted to `nowMs`. */
export function formatTransaction(t: TransactionDescription, nowMs: number): string {
  const open = t.startTimeMs >= 0n && t.partitions.length > 0
  return formatTable(
    ['CoordinatorId', 'TransactionalId', 'ProducerId', 'ProducerEpoch', 'TransactionState', 'TransactionTimeoutMs', 'CurrentTransactionStartTimeMs', 'TransactionDurationMs', 'TopicPartitions'],
    [[
      String(t.coordinatorId),
      t.transactionalId,
      String(t.producerId),
      String(t.producerEpoch),
      t.state,
      String(t.transactionTimeoutMs),
      open ? String(t.startTimeMs) : 'None',
      open ? String(BigInt(nowMs) - t.startTimeMs) : 'None',
      t.partitions.map((p) => `${p.topic}-${p.partition}`).join(','),
    ]],
  )
}

/** `transactions describe-producers`, kafka-transactions.sh's columns. */
export function formatProducers(producers: readonly ProducerDescription[]): string {
  return formatTable(
    ['ProducerId', 'ProducerEpoch', 'LatestCoordinatorEpoch', 'LastSequence', 'LastTimestamp', 'CurrentTransactionStartOffset'],
    producers.map((p) => [
      String(p.producerId),
      String(p.producerEpoch),
      String(p.coordinatorEpoch),
      String(p.lastSequence),
      String(p.lastTimestamp),
      p.currentTxnStartOffset >= 0n ? String(p.currentTxnStartOffset) : 'None',
    ]),
  )
}

/**
 * `brook cluster status`: the cluster and its active controller, the quorum's leader, epoch and high watermark
 * (kafka-metadata-quorum.sh describe --status), then one row per node: its part in the quorum, its metadata log end
 * offset and lag behind the leader (describe --replication), whether it is a live broker (registered and
 * unfenced) or fenced (fenced, or not registered yet), and a live broker's client endpoint as it registered it (what
 * Metadata tells clients: its advertised host and port; `-` for a fenced one); then how many partitions are under-replicated and offline,
 * listed by topic (partitionList).
 */
export function formatClusterStatus(status: ClusterStatus): string {
  const live = new Map(status.liveBrokers.map((broker) => [broker.brokerId, broker]))
  const ids = [...new Set([...status.voters.map((v) => v.replicaId), ...status.observers.map((o) => o.replicaId), ...live.keys()])].sort((a, b) => a - b)
  const rows = ids.map((id) => {
    const voter = status.voters.find((v) => v.replicaId === id)
    const replica = voter ?? status.observers.find((o) => o.replicaId === id)
    const role = id === status.leaderId ? 'leader' : voter ? 'follower' : replica ? 'observer' : 'none'
    const broker = live.get(id)
    return [String(id), role, cell(replica && replica.logEndOffset >= 0n ? replica.logEndOffset : null), cell(replica?.lag), broker ? 'unfenced' : 'fenced', broker ? hostPort(broker.host, broker.port) : '-']
  })
  return [
    `ClusterId: ${status.clusterId}`,
    `Controller: ${status.controllerId < 0 ? 'none' : status.controllerId}`,
    `LeaderId: ${status.leaderId}\tLeaderEpoch: ${status.leaderEpoch}\tHighWatermark: ${status.highWatermark}`,
    '',
    formatTable(['NODE', 'QUORUM', 'LOG-END-OFFSET', 'LAG', 'BROKER', 'ENDPOINT'], rows),
    '',
    `Partitions: ${status.partitionCount}\tUnderReplicatedPartitions: ${status.underReplicatedPartitions.length}\tOfflinePartitions: ${status.offlinePartitions.length}`,
    ...(status.underReplicatedPartitions.length > 0 ? [`UnderReplicated: ${partitionList(status.underReplicatedPartitions)}`] : []),
    ...(status.offlinePartitions.length > 0 ? [`Offline: ${partitionList(status.offlinePartitions)}`] : []),
  ].join('\n')
}

/** Runs of partitions shown before the rest is only counted: a lost node can leave thousands under-replicated. */
const SHOWN_RUNS = 20

/**
 * Partitions by topic, consecutive ones as a range: `orders: 0-5, 7; payments: 2`, at most SHOWN_RUNS runs, then how
 * many partitions are left out and where to see them.
 */
function partitionList(partitions: readonly TopicPartition[]): string {
  const runs: { topic: string; first: number; last: number }[] = []
  for (const { topic, partition } of partitions) {
    const run = runs.at(-1)
    if (run && run.topic === topic && run.last === partition - 1) run.last = partition
    else runs.push({ topic, first: partition, last: partition })
  }
  const shown = runs.slice(0, SHOWN_RUNS)
  const byTopic = new Map<string, string[]>()
  for (const { topic, first, last } of shown) byTopic.set(topic, [...(byTopic.get(topic) ?? []), first === last ? `${first}` : `${first}-${last}`])
  const listed = [...byTopic].map(([topic, ranges]) => `${topic}: ${ranges.join(', ')}`).join('; ')
  const left = runs.slice(SHOWN_RUNS).reduce((count, { first, last }) => count + last - first + 1, 0)
  return left === 0 ? listed : `${listed} ... and ${left} more (brook topics describe shows each partition's ISR and leader)`
}
