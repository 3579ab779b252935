/**
 * Planning: a Topology cut into sub-topologies at its keyBy nodes, with the names of every topic it reads and
 * writes. A sub-topology is the unit of work of a task: one task per sub-topology and partition of its source.
 *
 *   source topic ─▶ [sub-topology 0: nodes up to keyBy ─▶ <app>-<name>-repartition]
 *   <app>-<name>-repartition ─▶ [sub-topology 1: nodes after keyBy ...]
 *
 * All stateful operators of a sub-topology share one store per task (`<subtopology>-store`) and one compacted
 * changelog topic `<applicationId>-<subtopology>-store-changelog`, partitioned like the source: a commit writes
 * the task's state changes and then a marker holding its input position (runtime/changelog.ts).
 */
import { TopologyError } from '../errors.js'
import { STATEFUL_KINDS, type EventTimeSpec, type ProcessorNode, type SourceNode, type TableSpec, type Topology } from './topology.js'

export interface SubTopology {
  readonly index: number
  /** The source topic's name for a stream, the keyBy's name after a repartition. */
  readonly name: string
  readonly sourceTopic: string
  /** The source node, or the keyBy node whose repartition topic this sub-topology reads. */
  readonly source: SourceNode | Extract<ProcessorNode, { kind: 'keyBy' }>
  readonly eventTime: EventTimeSpec
  /** The first nodes after the source. */
  readonly roots: readonly ProcessorNode[]
  readonly stateful: readonly ProcessorNode[]
  readonly storeName: string
  /** Null when the sub-topology keeps no state. */
  readonly changelogTopic: string | null
  /** Topics written by sinks, keyBy (repartition) and late records. */
  readonly outputTopics: readonly string[]
  readonly repartitionTopics: readonly string[]
}

export interface Plan {
  readonly applicationId: string
  readonly subtopologies: readonly SubTopology[]
  readonly tables: readonly TableSpec[]
  readonly lateTopic: string
  readonly deadLetterTopic: string
}

export interface PlanOptions {
  applicationId: string
  /** Where late records go unless an operator names its own; `<applicationId>-late` by default. */
  lateTopic?: string
  /** Where unreadable records go; `<applicationId>-dlq` by default. */
  deadLetterTopic?: string
}

/**
 * `topic` as a source, table, sink or late-records option names it, or as the plan makes it (a changelog, a
 * repartition topic, the dead-letter topic), checked against Kafka's rules for topic names (1 to 249 of letters,
 * digits, '.', '_' and '-'; not '.' or '..'): a TopologyError naming its role otherwise, before anything connects,
 * rather than the cluster's INVALID_TOPIC_EXCEPTION, which names no topic, when the pipeline creates it.
 */
export function checkedTopic(role: string, topic: unknown): string {
  if (typeof topic !== 'string' || !/^[A-Za-z0-9._-]{1,249}$/.test(topic) || topic === '.' || topic === '..') {
    throw new TopologyError(`${role} topic ${typeof topic === 'string' ? `'${topic}'` : String(topic)} is not a Kafka topic name: 1 to 249 letters, digits, '.', '_' and '-', not '.' or '..'`)
  }
  return topic
}

export function repartitionTopic(applicationId: string, keyByName: string): string {
  return `${applicationId}-${keyByName}-repartition`
}

export function changelogTopic(applicationId: string, storeName: string): string {
  return `${applicationId}-${storeName}-changelog`
}

/** Cuts the topology at keyBy nodes; validates names. */
export function planTopology(topology: Topology, options: PlanOptions): Plan {
  const { applicationId } = options
  if (!/^[A-Za-z0-9._-]+$/.test(applicationId)) throw new TopologyError(`application id '${applicationId}' may only hold letters, digits, '.', '_' and '-'`)
  const lateTopic = options.lateTopic ?? `${applicationId}-late`
  const subtopologies: SubTopology[] = []
  /** Topics written by `to()`, and by windows' late records. */
  const sinks = new Set<string>()
  const lateTopics = new Set<string>()
  const pending: { source: SubTopology['source']; sourceTopic: string; name: string; eventTime: EventTimeSpec }[] = topology.sources.map((s) => ({
    source: s,
    sourceTopic: s.topic,
    name: s.topic,
    eventTime: s.eventTime,
  }))
  while (pending.length > 0) {
    const next = pending.shift()!
    const stateful: ProcessorNode[] = []
    const outputs = new Set<string>()
    const repartitions: string[] = []
    const visit = (nodes: readonly ProcessorNode[]): void => {
      for (const node of nodes) {
        if (STATEFUL_KINDS.has(node.kind)) stateful.push(node)
        if (node.kind === 'sink') {
          outputs.add(node.topic)
          sinks.add(node.topic)
        }
        if ((node.kind === 'aggregate' || node.kind === 'reduce') && node.window) {
          outputs.add(node.lateTopic ?? lateTopic)
          lateTopics.add(node.lateTopic ?? lateTopic)
        }
        if (node.kind === 'keyBy') {
          const topic = repartitionTopic(applicationId, node.name)
          outputs.add(topic)
          repartitions.push(topic)
          // A record's event time travels as the repartition record's timestamp.
          pending.push({ source: node, sourceTopic: topic, name: node.name, eventTime: { from: 'timestamp' } })
          continue
        }
        visit(node.children)
      }
    }
    visit(next.source.children)
    const storeName = `${next.name}-store`
    subtopologies.push({
      index: subtopologies.length,
      name: next.name,
      sourceTopic: next.sourceTopic,
      source: next.source,
      eventTime: next.eventTime,
      roots: next.source.children,
      stateful,
      storeName,
      changelogTopic: stateful.length > 0 ? changelogTopic(applicationId, storeName) : null,
      outputTopics: [...outputs],
      repartitionTopics: repartitions,
    })
  }
  const deadLetterTopic = options.deadLetterTopic ?? `${applicationId}-dlq`
  // Names made of the application id and operator names may pass 249 characters even when each part is legal.
  for (const topic of lateTopics) checkedTopic('late-records', topic)
  checkedTopic('dead-letter', deadLetterTopic)
  for (const s of subtopologies) {
    for (const topic of s.repartitionTopics) checkedTopic('repartition', topic)
    if (s.changelogTopic) checkedTopic('changelog', s.changelogTopic)
  }
  // What the pipeline writes itself must not also get a sink's records, which its readers would take for its own.
  const roles = new Map<string, string>()
  for (const topic of lateTopics) roles.set(topic, 'late-records topic')
  for (const s of subtopologies) {
    for (const topic of s.repartitionTopics) roles.set(topic, 'repartition topic')
    if (s.changelogTopic) roles.set(s.changelogTopic, 'changelog topic')
  }
  // Nor may the dead-letter topic be one the pipeline reads or writes otherwise: dead letters written to a source
  // come back as input, fail again and are written again (once per failing branch: without end, and growing).
  // (Sharing the late-records topic is harmless: both keep the input record as read, told apart by their headers.)
  const deadLetterRole = (roles.get(deadLetterTopic) === 'late-records topic' ? undefined : roles.get(deadLetterTopic))
    ?? (subtopologies.some((s) => s.sourceTopic === deadLetterTopic) ? 'source topic' : undefined)
    ?? (topology.tables.some((t) => t.kind === 'topic' && t.topic === deadLetterTopic) ? 'global table topic' : undefined)
  if (deadLetterRole) throw new TopologyError(`the dead-letter topic ${deadLetterTopic} is the pipeline's own ${deadLetterRole}: give dead letters a topic of their own`)
  roles.set(deadLetterTopic, 'dead-letter topic')
  for (const topic of sinks) {
    const role = roles.get(topic)
    if (role) throw new TopologyError(`to('${topic}') writes to the pipeline's own ${role}: give the sink a topic of its own`)
  }
  const sourceTopics = new Set(subtopologies.map((s) => s.sourceTopic))
  for (const s of subtopologies) {
    for (const topic of s.outputTopics) {
      if (sourceTopics.has(topic) && !s.repartitionTopics.includes(topic)) throw new TopologyError(`topic ${topic} is both read and written by this pipeline`)
    }
  }
  // Kafka refuses a topic whose name differs from another's only in '.' and '_' (their metric names would be one):
  // said here, naming both, rather than as INVALID_TOPIC_EXCEPTION when the pipeline creates its topics.
  const byMetricName = new Map<string, { topic: string; role: string }>()
  const named: [string, string][] = [
    ...[...roles].map(([topic, role]): [string, string] => [topic, role]),
    ...[...sinks].map((topic): [string, string] => [topic, 'output topic']),
    ...[...sourceTopics].map((topic): [string, string] => [topic, 'source topic']),
    ...topology.tables.flatMap((table): [string, string][] => (table.kind === 'topic' ? [[table.topic, 'global table topic']] : [])),
  ]
  for (const [topic, role] of named) {
    const metricName = topic.replaceAll('.', '_')
    const other = byMetricName.get(metricName)
    if (other && other.topic !== topic) {
      throw new TopologyError(`the ${other.role} ${other.topic} and the ${role} ${topic} differ only in '.' and '_', which Kafka does not allow in one cluster (their metric names would be the same): rename one`)
    }
    byMetricName.set(metricName, { topic, role })
  }
  return { applicationId, subtopologies, tables: topology.tables, lateTopic, deadLetterTopic }
}
