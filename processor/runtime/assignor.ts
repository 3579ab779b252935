/**
 * The consumer group's partition assignor (a kafkajs custom PartitionAssigner, protocol name `brook-tasks`).
 * Kafka Streams assigns tasks, not partitions; so does this: a task is (sub-topology, partition), and the member
 * that gets a task gets every topic partition of it — the source partition and the same partition of the
 * sub-topology's changelog, which the runner reads to restore the task's state (kafkajs has no manual `assign`).
 *
 * Sticky and balanced: each member reports the tasks it owns (in its subscription's userData); every member gets
 * floor(T/M) or ceil(T/M) tasks, keeping the ones it owned as far as balance allows, so a rebalance moves (and
 * restores) only the tasks that must move. Ties go by member id and task id, so every leader computes the same.
 *
 * One topology per group. The leader plans the tasks from its own topology, so a member running another (a rolling
 * upgrade to a version with a `keyBy` added, say) was handed partitions it had not subscribed to, which kafkajs drops,
 * or was never handed the topics only it reads: results silently wrong, or a repartition topic no one read. Each
 * member's subscription names its topology's fingerprint (topology-fingerprint.ts); the leader gives tasks only to
 * the members whose fingerprint is its own, and the others an assignment without partitions whose userData says why,
 * on which they stop (runner.ts, refusedByLeader), as Kafka Streams' group protocol refuses a member whose topology
 * differs (KIP-1071, STREAMS_INVALID_TOPOLOGY_EPOCH). A member of a Brook version before the fingerprint sends none,
 * and gets no tasks either.
 *
 * The userData (JSON; fields are only ever added, and a reader takes a missing one as absent):
 *
 *   subscription  { owned: string[] (task ids), topology: string (fingerprint) }
 *   assignment    { topology: string (the leader's fingerprint), error?: 'TOPOLOGY_MISMATCH' }
 */
import kafkajs, { type PartitionAssigner } from 'kafkajs'
import { ProcessorErrorCode, TopologyError } from '../errors.js'
import type { Plan } from '../topology/plan.js'

const { AssignerProtocol } = kafkajs

export const ASSIGNOR_NAME = 'brook-tasks'

/** A task's id: `<sub-topology index>_<partition>`, as Kafka Streams writes task ids. */
export const taskId = (sub: number, partition: number): string => `${sub}_${partition}`

/** Balanced, sticky: `owned` maps member id to the task ids it reported. Returns member id to task ids. */
export function assignTasks(tasks: readonly string[], members: readonly string[], owned: ReadonlyMap<string, readonly string[]>): Map<string, string[]> {
  const sortedMembers = [...members].sort()
  const result = new Map(sortedMembers.map((m) => [m, [] as string[]]))
  if (sortedMembers.length === 0) return result
  const base = Math.floor(tasks.length / sortedMembers.length)
  let extra = tasks.length % sortedMembers.length
  // Members that owned more get the ceil(T/M) slots first, so fewer tasks move.
  const byOwned = [...sortedMembers].sort((a, b) => (owned.get(b)?.length ?? 0) - (owned.get(a)?.length ?? 0) || (a < b ? -1 : 1))
  const capacity = new Map<string, number>()
  for (const m of byOwned) capacity.set(m, base + (extra-- > 0 ? 1 : 0))
  const valid = new Set(tasks)
  const taken = new Set<string>()
  for (const m of sortedMembers) {
    for (const task of [...(owned.get(m) ?? [])].sort()) {
      if (!valid.has(task) || taken.has(task) || result.get(m)!.length >= capacity.get(m)!) continue
      result.get(m)!.push(task)
      taken.add(task)
    }
  }
  for (const task of tasks) {
    if (taken.has(task)) continue
    const m = sortedMembers.filter((x) => result.get(x)!.length < capacity.get(x)!)[0] ?? sortedMembers[0]!
    result.get(m)!.push(task)
    taken.add(task)
  }
  return result
}

/** A subscription's userData, as this assignor writes it (see the top of this file). */
interface SubscriptionData {
  owned?: string[]
  topology?: string
}

/** An assignment's userData, as this assignor writes it. */
interface AssignmentData {
  topology?: string
  error?: typeof ProcessorErrorCode.topologyMismatch
}

/** The JSON of a userData, or {} for one that is empty or not JSON (another assignor's, or none). */
function userDataOf<T extends object>(userData: Buffer | null | undefined): Partial<T> {
  try {
    return (JSON.parse(userData?.toString() || '{}') as Partial<T> | null) ?? {}
  } catch {
    return {}
  }
}

export interface TaskAssignerOptions {
  /** This member's topology fingerprint (topology-fingerprint.ts): the leader assigns tasks to its equals only. */
  topology: string
  /** The tasks this member owns; read each time it joins. */
  ownedTasks: () => readonly string[]
}

/** The kafkajs assigner for a plan. */
export function taskAssigner(plan: Plan, options: TaskAssignerOptions): PartitionAssigner {
  const { topology, ownedTasks } = options
  return ({ cluster }) => ({
    name: ASSIGNOR_NAME,
    version: 1,
    protocol: ({ topics }) => {
      const data: SubscriptionData = { owned: [...ownedTasks()], topology }
      return { name: ASSIGNOR_NAME, metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.from(JSON.stringify(data)) }) }
    },
    async assign({ members }) {
      const tasks: string[] = []
      for (const sub of plan.subtopologies) {
        const count = cluster.findTopicPartitionMetadata(sub.sourceTopic).length
        for (let p = 0; p < count; p++) tasks.push(taskId(sub.index, p))
      }
      const owned = new Map<string, string[]>()
      const refused: string[] = []
      for (const member of members) {
        const data = userDataOf<SubscriptionData>(AssignerProtocol.MemberMetadata.decode(member.memberMetadata)?.userData)
        if (data.topology === topology) owned.set(member.memberId, data.owned ?? [])
        else refused.push(member.memberId)
      }
      const assignment = assignTasks(tasks, [...owned.keys()], owned)
      // A changelog the metadata shows with fewer partitions than its source (partitions added to the source while
      // the application ran) has none for the new tasks: their start stops the pipeline with a TopologyError naming
      // both topics, and kafkajs is not handed a partition that does not exist. Given one, its fetch loop failed with a
      // TypeError of its own (`Cannot read properties of undefined (reading '1')`), which stopped the pipeline first
      // whenever it came before the task's start (`failures.test.ts`).
      const changelogPartitions = new Map<string, number>()
      for (const sub of plan.subtopologies) if (sub.changelogTopic) changelogPartitions.set(sub.changelogTopic, cluster.findTopicPartitionMetadata(sub.changelogTopic).length)
      const granted = Buffer.from(JSON.stringify({ topology } satisfies AssignmentData))
      const refusal = Buffer.from(JSON.stringify({ topology, error: ProcessorErrorCode.topologyMismatch } satisfies AssignmentData))
      const refusals = refused.map((memberId) => ({ memberId, memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: {}, userData: refusal }) }))
      const grants = [...assignment].map(([memberId, memberTasks]) => {
        const topics: Record<string, number[]> = {}
        for (const id of memberTasks) {
          const [sub, partition] = id.split('_').map(Number) as [number, number]
          const s = plan.subtopologies[sub]!
          ;(topics[s.sourceTopic] ??= []).push(partition)
          const changelogCount = s.changelogTopic ? changelogPartitions.get(s.changelogTopic)! : 0
          // Unknown to the metadata (0): assigned as the source is, as before.
          if (s.changelogTopic && (changelogCount === 0 || partition < changelogCount)) (topics[s.changelogTopic] ??= []).push(partition)
        }
        return { memberId, memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: topics, userData: granted }) }
      })
      return [...grants, ...refusals]
    },
  })
}

/**
 * The error a member stops with when its assignment (the bytes the leader sent, as DescribeGroups gives them back)
 * refuses it for running another topology than the leader's; null for any other assignment. `topology`: this
 * member's fingerprint, named in the message beside the leader's.
 */
export function topologyRefusal(memberAssignment: Buffer, options: { applicationId: string; topology: string }): TopologyError | null {
  if (memberAssignment.length === 0) return null
  const data = userDataOf<AssignmentData>(AssignerProtocol.MemberAssignment.decode(memberAssignment)?.userData)
  if (data.error !== ProcessorErrorCode.topologyMismatch) return null
  return new TopologyError(
    `another instance of application '${options.applicationId}' runs a different topology (${options.topology} here, ${data.topology ?? 'unknown'} in the group's leader): a pipeline whose topology changed cannot be rolled; stop every instance of the old version first`,
    ProcessorErrorCode.topologyMismatch,
  )
}
